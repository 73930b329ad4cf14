"""One output contract: a command gives the same columns and fields whatever the input mode (--at, --points,
--grid); a Jacobian's entries are named df1/dx everywhere; non-finite exact values read inf/-inf/undefined, never
SymPy's zoo/oo/nan; the reading (read_as, notes) is shown. Oracles: the --at path (calculus._hessian_facts,
calculus.determinant) for the streamed rows, and hand-worked values."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pdiff.cli import app

runner = CliRunner()


def _rows(*args) -> list[dict]:
    result = runner.invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


CASES = [  # command, expression, --at point, a one-point grid at the same point
    ("grad", "x y + y z", "x=1,y=2,z=3", "x=1:1:1,y=2:2:1,z=3:3:1"),
    ("hessian", "x^2 y + y^3 - 3y", "x=0,y=1", "x=0:0:1,y=1:1:1"),  # a local minimum
    ("hessian", "x^2 - y^2 + x y z", "x=0,y=0,z=1", "x=0:0:1,y=0:0:1,z=1:1:1"),  # a saddle point
    ("hessian", "x^2 y + y^3", "x=1,y=2", "x=1:1:1,y=2:2:1"),  # not a critical point
    ("jacobian", "[x y, x + y]", "x=1,y=2", "x=1:1:1,y=2:2:1"),  # square: a determinant
    ("jacobian", "[x y z, x + y]", "x=1,y=2,z=3", "x=1:1:1,y=2:2:1,z=3:3:1"),
]


@pytest.mark.parametrize("command, expression, at, grid", CASES)
@pytest.mark.parametrize("extra", [[], ["--no-symbolic"]])
def test_at_and_grid_give_the_same_columns_and_values(command, expression, at, grid, extra):
    [by_point] = _rows(command, expression, "--at", at, "-f", "csv", *extra)
    [by_grid] = _rows(command, expression, "--grid", grid, "-f", "csv", *extra)
    assert list(by_point) == list(by_grid)
    assert by_point == by_grid  # the same spelling of every value, status and classification included
    assert by_point["status"] == "ok"


def test_the_column_layout_per_command():
    [row] = _rows("hessian", "x^2 y + y^3 - 3y", "--grid", "x=0:0:1,y=1:1:1", "-f", "csv")
    entries = ["d2f/dx2", "d2f/dxdy", "d2f/dydx", "d2f/dy2"]
    assert list(row) == (["x", "y"] + entries + ["eigenvalue_1", "eigenvalue_2", "determinant", "critical",
                                                  "classification", "max_abs_error", "status"]
                         + [f"{e}:{kind}" for kind in ("exact", "abs_diff", "rel_diff") for e in entries])
    # f = x^2 y + y^3 - 3y at (0, 1): gradient (0, 0), Hessian [[2, 0], [0, 6]]
    assert (row["eigenvalue_1"], row["eigenvalue_2"], row["determinant"]) == ("2.0", "6.0", "12.0")
    assert (row["critical"], row["classification"]) == ("True", "local minimum")
    [row] = _rows("jacobian", "[x y, x + y]", "--grid", "x=1:1:1,y=2:2:1", "-f", "csv", "--no-symbolic")
    assert list(row) == ["x", "y", "df1/dx", "df1/dy", "df2/dx", "df2/dy", "determinant", "max_abs_error", "status"]
    assert row["determinant"] == "1.0"  # y·1 − x·1 at (1, 2)


def test_jacobian_entries_are_named_df1_dx_in_every_format():
    names = ["df1/dx", "df1/dy", "df2/dx", "df2/dy"]
    record = json.loads(runner.invoke(app, ["jacobian", "[x y, x + y]", "--grid", "x=1:1:1,y=2:2:1", "-f", "jsonl"])
                        .stdout.splitlines()[0])
    assert [k for k in record if k.startswith("df")][:4] == names
    assert record["df1/dx"] == 2.0 and record["df2/dy"] == 1.0
    document = json.loads(runner.invoke(app, ["jacobian", "[x y, x + y]", "--grid", "x=1:1:1,y=2:2:1",
                                              "-f", "json"]).stdout)
    assert [p["label"] for p in document["partials"]] == names
    assert [p["component"] for p in document["partials"]] == [0, 0, 1, 1]  # JSON's component stays 0-based
    from pdiff.calculus import compute

    assert compute("jacobian", "[x y, x + y]", at=["x=1,y=2"]).names == tuple(names)


def test_streamed_hessian_rows_follow_the_at_rule():
    """hessian_rows and determinants over a stack give, row by row, what _hessian_facts gives at one point."""
    from pdiff.calculus import _hessian_facts, determinant
    from pdiff.stream import determinants, hessian_rows

    rng = np.random.default_rng(3)
    rtol, atol = 1e-9, 1e-12
    for n in (1, 2, 3, 4):
        matrices = rng.integers(-3, 4, size=(300, n, n)).astype(float)
        matrices[:100] = (matrices[:100] + matrices[:100].swapaxes(1, 2))  # symmetric, many singular
        matrices[100:110] = 0.0
        gradient = np.where(rng.random((300, n)) < 0.5, 0.0, rng.normal(size=(300, n)))
        rows = hessian_rows(matrices, gradient, rtol, atol)
        dets = determinants(matrices)
        for i in range(300):
            want = _hessian_facts(matrices[i], gradient[i].tolist(), [None] * n, rtol, atol)
            assert rows["eigenvalues"][i].tolist() == want["eigenvalues"]
            assert bool(rows["critical"][i]) == want["critical"]
            assert rows["classification"][i] == want["classification"]
            assert dets[i] == determinant(matrices[i])


def test_a_hessian_stream_leaves_the_facts_empty_where_an_entry_is_not_finite():
    rows = _rows("hessian", "1/x + y^2", "--grid", "x=0:1:2,y=1:1:1", "-f", "csv")
    assert [r["status"] for r in rows] == ["non-finite", "ok"]
    assert [r["classification"] for r in rows] == ["", "not a critical point"]
    assert rows[0]["eigenvalue_1"] == "" and rows[1]["eigenvalue_1"] == "2.0"


def test_non_finite_exact_values_read_inf_or_undefined():
    # d/dx 1/x = -1/x^2 at 0: SymPy says zoo (complex infinity: no sign)
    [row] = _rows("diff", "1/x", "f_x", "--at", "x=0", "-f", "csv")
    assert row["exact"] == "undefined"
    document = json.loads(runner.invoke(app, ["diff", "1/x", "f_x", "--at", "x=0", "-f", "json"]).stdout)
    assert document["results"][0]["exact"] == "undefined"
    table = runner.invoke(app, ["diff", "1/x", "f_x", "--at", "x=0", "-f", "table"]).stdout
    assert "undefined" in table and "zoo" not in table
    grad = json.loads(runner.invoke(app, ["grad", "1/x + y^2", "--at", "x=0,y=1", "-f", "json"]).stdout)
    assert grad["results"][0]["exact"] == ["undefined", "2"]
    from pdiff.render.common import display_value

    assert [display_value(t) for t in ("zoo", "oo", "-oo", "nan", "-1/2", None)] == [
        "undefined", "inf", "-inf", "undefined", "-1/2", None]


def _diff_report(**reading):
    from pdiff.api import derivative

    return dataclasses.replace(derivative("x^2 + x*y", ["f_x"], at=["x=1,y=2"]), **reading)


READING = {"read_as": "x^2 + x*y", "notes": ("read 'xy' as x*y",)}


def test_diff_documents_carry_the_reading():
    from pdiff.render import diff as render

    document = json.loads(render.json_document(_diff_report(**READING)))
    assert document["read_as"] == "x^2 + x*y" and document["reading"] == ["read 'xy' as x*y"]
    assert json.loads(next(iter(render.jsonl(_diff_report(**READING)))))["read_as"] == "x^2 + x*y"
    plain = json.loads(render.json_document(_diff_report()))  # as the reader filled it: nothing to resolve
    assert plain["read_as"] == "x^2 + x*y" and plain["reading"] == []


def _text(renderable) -> str:
    from rich.console import Console

    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_tables_show_the_reading_only_when_there_are_notes():
    from pdiff.render import diff as render

    lines = _text(render.table(_diff_report(**READING))).splitlines()
    assert lines[0].startswith("f(x, y) = ")
    assert lines[1] == "read as: x^2 + x*y" and "read 'xy' as x*y" in lines[2]
    assert "read as" not in _text(render.table(_diff_report(read_as="x^2 + x*y")))


def test_matrix_documents_and_tables_carry_the_reading():
    from pdiff.calculus import compute
    from pdiff.render import tensor as render

    report = dataclasses.replace(compute("gradient", "x^2 + x*y", at=["x=1,y=2"]), **READING)
    document = json.loads(render.json_document(report))
    assert document["read_as"] == "x^2 + x*y" and document["reading"] == ["read 'xy' as x*y"]
    assert json.loads(next(iter(render.jsonl(report))))["read_as"] == "x^2 + x*y"
    lines = _text(render.table(report)).splitlines()
    assert lines[0].startswith("f(x, y) = ") and lines[1] == "read as: x^2 + x*y"


def test_check_documents_carry_both_readings():
    from pdiff.check import check
    from pdiff.render import check as render

    report = dataclasses.replace(check("x^2", "d/dx", "2x"), read_as="x^2", answer_read_as="2*x")
    document = json.loads(render.json_document(report))
    assert document["read_as"] == "x^2" and document["answer_read_as"] == "2*x"
    assert json.loads(next(iter(render.jsonl(report))))["answer_read_as"] == "2*x"


def test_a_streamed_document_carries_the_reading():
    from pdiff import sources, stream
    from pdiff.render import stream as render

    plan = stream.plan_matrix("gradient", "x^2 + x*y")
    plan.read_as, plan.notes = READING["read_as"], READING["notes"]
    source = sources.grid_source("x=0:1:2,y=1:1:1", plan.needed)
    writer = render.writer("json", plan, source)
    text = writer.header() + "".join(writer.chunk(v) for v in plan.run(source)) + writer.footer(plan.summary)
    document = json.loads(text)
    assert document["read_as"] == "x^2 + x*y" and document["reading"] == ["read 'xy' as x*y"]
    assert [p["label"] for p in document["summary"]["partials"]] == ["df/dx", "df/dy"]
    assert [p["status"] for p in document["points"]] == ["ok", "ok"]
