"""The chunked engine and `pdiff diff --points/--grid`: values against SymPy float64 oracles, chunk-size
independence, output formats, errors and exit codes, and flat memory on a large generated file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy as sp
import torch
from typer.testing import CliRunner

from pdiff import sources, stream
from pdiff.cli import app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
runner = CliRunner()
X, Y = sp.symbols("x y", real=True)
SEED = "x^2 sin(y) + y^3 cos(x)"


def _oracle(expr, wrt, points):
    """SymPy's derivative, evaluated point by point in float64 (an independent path from pdiff.lower)."""
    derivative = sp.diff(expr, *wrt)
    return [float(derivative.subs({X: x, Y: y}).evalf(30)) for x, y in points]


def _run(expression, partials, source, chunk_size=None, **options):
    plan = stream.plan_diff(expression, partials, device="cpu", **options)
    blocks = list(plan.run(source, chunk_size))
    autograd = [np.concatenate([b.autograd[t] for b in blocks]) for t in range(len(plan.targets))]
    exact = [np.concatenate([b.exact[t] for b in blocks]) if plan.summary.targets[t].exact else None
             for t in range(len(plan.targets))]
    return plan, autograd, exact


def test_seed_hessian_entries_at_many_points_match_sympy():
    points = [(2.0, 1.0), (-1.5, 0.25), (0.0, 3.0), (1e-3, -2.0), (10.0, 7.5)]
    source = sources.open_points("-", ["x", "y"], stdin=io.BytesIO(
        ("x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in points)).encode()))
    plan, autograd, exact = _run(SEED, ["f_xx", "d2f/dxdy", "f_yy", "d3f/dx2dy"], source)
    expr = X**2 * sp.sin(Y) + Y**3 * sp.cos(X)
    for t, wrt in enumerate([(X, X), (Y, X), (Y, Y), (Y, X, X)]):
        oracle = _oracle(expr, wrt, points)
        np.testing.assert_allclose(autograd[t], oracle, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(exact[t], oracle, rtol=1e-12, atol=1e-12)
    # the hand-worked seed values at (2, 1)
    assert autograd[0][0] == pytest.approx(2 * math.sin(1) - math.cos(2), abs=1e-14)
    assert autograd[1][0] == pytest.approx(4 * math.cos(1) - 3 * math.sin(2), abs=1e-14)
    assert autograd[2][0] == pytest.approx(-4 * math.sin(1) + 6 * math.cos(2), abs=1e-14)
    summary = plan.summary
    assert summary.finished and summary.points == 5 and summary.exit_code == 0
    assert all(t.max_abs_diff < 1e-12 for t in summary.targets)


@pytest.mark.parametrize("expression, partial, oracle", [
    ("exp(x) * log(y)", "d2f/dxdy", lambda x, y: math.exp(x) / y),
    ("atan2(y, x)", "df/dx", lambda x, y: -y / (x * x + y * y)),
    ("sqrt(x^2 + y^2)", "d2f/dx2", lambda x, y: y * y / (x * x + y * y) ** 1.5),
])
def test_functions_on_a_grid_against_hand_oracles(expression, partial, oracle):
    source = sources.grid_source("x=0.5:2:7,y=0.25:3:5", ["x", "y"])
    plan, autograd, exact = _run(expression, [partial], source, chunk_size=6)
    xs, ys = np.meshgrid(np.linspace(0.5, 2, 7), np.linspace(0.25, 3, 5), indexing="ij")
    expected = [oracle(x, y) for x, y in zip(xs.ravel(), ys.ravel())]
    np.testing.assert_allclose(autograd[0], expected, rtol=1e-12)
    np.testing.assert_allclose(exact[0], expected, rtol=1e-12)


def _cli(*args, input=None):
    return runner.invoke(app, ["diff", *args], input=input)


def _grid_csv(chunk):
    result = _cli(SEED, "d2f/dxdy", "f_x", "--grid", "x=-2:2:37,y=-1:3:11", "-f", "csv",
                  *(["--chunk-size", str(chunk)] if chunk else []))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_results_do_not_depend_on_the_chunk_size():
    reference = _grid_csv(None)
    assert reference.count("\n") == 1 + 37 * 11
    for chunk in (1, 10, 64, 1000):
        assert _grid_csv(chunk) == reference


def test_blocks_on_threads_give_the_same_answers(monkeypatch):
    monkeypatch.setattr(stream, "BLOCK_ROWS", 500)  # many blocks per chunk
    runs = []
    for workers in ("1", "2"):
        monkeypatch.setenv("PDIFF_CPU_WORKERS", workers)
        plan, autograd, exact = _run(SEED, ["d2f/dxdy", "f_xx"],
                                     sources.grid_source("x=-3:3:101,y=-2:2:97", ["x", "y"]), chunk_size=4000)
        runs.append((autograd, exact, plan.summary.targets[0].max_abs_diff, plan.summary.points))
    for a, b in zip(runs[0][0] + runs[0][1], runs[1][0] + runs[1][1]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][2:] == runs[1][2:] and runs[0][3] == 101 * 97


def test_csv_output_carries_the_input_and_adds_columns(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,x,y,note\n7,2,1,"a, b"\n8,-1,0.5,c\n')
    result = _cli(SEED, "d2f/dxdy", "--points", str(path), "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "x", "y", "note", "d2f/dxdy", "d2f/dxdy:exact", "d2f/dxdy:abs_diff",
                       "d2f/dxdy:rel_diff"]
    assert rows[1][:4] == ["7", "2", "1", "a, b"] and rows[2][3] == "c"
    assert float(rows[1][4]) == pytest.approx(4 * math.cos(1) - 3 * math.sin(2), abs=1e-14)
    assert float(rows[1][6]) <= 1e-15


def test_jsonl_json_and_plain_from_stdin():
    data = "x,y,tag\n2,1,a\n0,0,b\n"
    result = _cli(SEED, "d2f/dxdy", "--points", "-", "-f", "jsonl", input=data)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["tag"] for r in records] == ["a", "b"] and records[1]["d2f/dxdy"] == 0.0
    assert records[0]["d2f/dxdy:exact"] == pytest.approx(4 * math.cos(1) - 3 * math.sin(2), abs=1e-14)

    result = _cli(SEED, "d2f/dxdy", "f_xx", "--points", "-", "-f", "json", input=data)
    document = json.loads(result.stdout)
    assert document["columns"][:3] == ["x", "y", "tag"] and len(document["points"]) == 2
    assert document["partials"][0]["wrt"] == ["y", "x"]
    assert document["summary"]["points"] == 2 and document["summary"]["partials"][1]["disagree"] == 0

    result = _cli(SEED, "d2f/dxdy", "f_xx", "--points", "-", "-f", "plain", input=data)
    first = [float(v) for v in result.stdout.splitlines()[0].split("\t")]
    assert first == pytest.approx([4 * math.cos(1) - 3 * math.sin(2), 2 * math.sin(1) - math.cos(2)], abs=1e-14)


def test_npy_with_packed_fields_streams(tmp_path):
    array = np.zeros(3, dtype=[("x", "f8"), ("k", "i4")])  # 12-byte records: x is strided by 12
    array["x"] = [1.0, 2.0, 3.0]
    np.save(tmp_path / "p.npy", array)
    result = _cli("x^3", "--points", str(tmp_path / "p.npy"), "-f", "csv")
    assert result.exit_code == 0, result.output
    assert [row.split(",")[2] for row in result.stdout.splitlines()[1:]] == ["3.0", "12.0", "27.0"]


def test_json_document_with_no_points_is_valid():
    result = _cli("x^2", "--points", "-", "-f", "json", input='{"x": 1}\n\n')
    assert json.loads(result.stdout)["points"][0]["df/dx"] == 2.0


def test_table_shows_a_preview_and_the_summary():
    result = _cli(SEED, "d2f/dxdy", "--grid", "x=0:1:50,y=1", "-f", "table")
    assert result.exit_code == 0
    assert "first 20 of 50 points" in result.stdout and "max |Δ|" in result.stdout


def test_non_finite_exits_1_and_names_the_line():
    result = _cli("log(x)", "--points", "-", "-f", "csv", input="x\n1\n0\n-1\n")
    assert result.exit_code == 1
    # x = 0: autograd's inf; x = -1: the formula 1/x is finite, but log(-1) is not real, so nan as with --at
    assert "df/dx: autograd is not finite at 2 of 3 points (first at stdin line 3)" in result.stderr
    assert result.stdout.splitlines()[2].startswith("0,inf,inf,")
    assert result.stdout.splitlines()[3].startswith("-1,nan,-1.0,")


@pytest.mark.parametrize("bad_row", [0, (1 << 15) + 7, (1 << 16) - 1])
def test_a_non_finite_value_in_any_block_of_a_chunk_is_counted(bad_row):
    """A chunk runs as blocks; a nan in the second block was once lost when the blocks' maxima were merged."""
    n = 1 << 16  # one chunk of two blocks
    x = np.linspace(1.0, 2.0, n)
    x[bad_row] = -1.0  # sqrt(-1): no value, no derivative
    source = sources.array_source({"x": x}, ["x"], name="test")
    plan = stream.plan_diff("sqrt(x)", ["df/dx"], device="cpu")
    list(plan.run(source, n))
    target = plan.summary.targets[0]
    assert target.non_finite == 1 and plan.summary.exit_code == 1
    assert target.first_non_finite == f"test row {bad_row + 1}"


def test_disagreement_is_counted_and_exits_1():
    source = sources.grid_source("x=0:1:11", ["x"])
    plan = stream.plan_diff("x^2", ["df/dx"], device="cpu")
    plan.exact_programs[0] = lambda columns: columns["x"] * 2 + (columns["x"] > 0.55)  # wrong past 0.55
    # replays recorded from the right program (alone, or shared with the partials) would hide the swap
    plan.exact_traced[0], plan.traced[0], plan.shared[0] = None, None, []
    list(plan.run(source, 4))
    target = plan.summary.targets[0]
    assert target.disagree == 5
    assert target.first_disagree == "--grid row 7: autograd 1.2000000000000002, exact 2.2"
    assert target.max_abs_diff == pytest.approx(1.0) and plan.summary.exit_code == 1


@pytest.mark.parametrize("args, message", [
    (["--at", "x=1,y=2", "--grid", "x=0:1:2,y=1"], "use one of --at, --points, --grid"),
    (["--points", "-", "--grid", "x=0:1:2,y=1"], "use one of --at, --points, --grid"),
    (["--grid", "x=0:1:2"], "--grid gives no values for y"),
    (["--points", "-"], "stdin line 3: y = 'z' is not a number"),
    (["--points", "-", "--chunk-size", "0"], "--chunk-size"),
])
def test_input_errors_exit_2(args, message):
    result = _cli(SEED, "d2f/dxdy", *args, input="x,y\n1,2\n3,z\n")
    assert result.exit_code == 2
    assert message in result.stderr


def test_no_symbolic_gives_autograd_only():
    result = _cli(SEED, "f_x", "--grid", "x=0:1:3,y=2", "-f", "csv", "--no-symbolic")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "x,y,f_x"


def test_vector_expression_labels_components():
    result = _cli("[x^2, x y]", "df/dx", "--grid", "x=1:2:2,y=3", "-f", "jsonl")
    record = json.loads(result.stdout.splitlines()[0])
    assert record["df/dx[1]"] == 2.0 and record["df/dx[2]"] == 3.0


def test_float32_compares_against_float64_exact():
    plan, autograd, exact = _run(SEED, ["d2f/dxdy"], sources.grid_source("x=-2:2:9,y=0:1:3", ["x", "y"]),
                                 dtype="float32")
    assert exact[0].dtype == np.float64 and plan.summary.exit_code == 0
    assert 0 < plan.summary.targets[0].max_abs_diff < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    source = lambda: sources.grid_source("x=-2:2:201,y=-1:1:101", ["x", "y"])  # noqa: E731
    _, cpu, _ = _run(SEED, ["d2f/dxdy", "f_xx"], source())
    plan = stream.plan_diff(SEED, ["d2f/dxdy", "f_xx"], device="cuda")
    blocks = list(plan.run(source(), 5000))
    for t in range(2):
        np.testing.assert_allclose(np.concatenate([b.autograd[t] for b in blocks]), cpu[t], rtol=1e-12, atol=1e-12)
    assert plan.summary.exit_code == 0


_MEMORY_PROBE = textwrap.dedent("""
    import os, resource, sys
    import numpy as np
    rows, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "w") as f:
        f.write("x,y\\n")
        rng = np.random.default_rng(0)
        for start in range(0, rows, 100_000):
            block = rng.uniform(-2, 2, (min(100_000, rows - start), 2))
            f.write("".join("%r,%r\\n" % tuple(r) for r in block.tolist()))
    import torch, sympy, pdiff.stream, pdiff.sources, pdiff.render.stream  # imports before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.argv = ["pdiff", "diff", "x^2 sin(y) + y^3 cos(x)", "d2f/dxdy", "--points", path, "-f", "csv",
                "--chunk-size", "20000"]
    sys.stdout = open(os.devnull, "w")
    from pdiff.cli import app
    try:
        app(prog_name="pdiff")
    except SystemExit as exit:
        assert not exit.code, exit.code
    sys.stderr.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) + "\\n")
""")


def test_memory_stays_flat_on_a_large_file(tmp_path):
    """Peak RSS growth with 4x the rows stays within a few MB (a whole-file approach grows by ~30 MB)."""
    growth = {}
    for rows in (50_000, 200_000):
        done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(rows), str(tmp_path / f"{rows}.csv")],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
        assert done.returncode == 0, done.stderr
        growth[rows] = int(done.stderr.strip().splitlines()[-1]) / 1024  # MiB
    assert growth[200_000] - growth[50_000] < 10, growth


def test_full_precision_text_reads_back_as_the_same_floats_and_spells_non_finite_values():
    from pdiff.render.stream import _full, _short

    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(size=2000) * 10.0 ** rng.integers(-300, 300, 2000),
                             [0.0, -0.0, 5e-324, -2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 1e-7,
                              0.1, 1 / 3, float("nan"), float("inf"), float("-inf")]])
    texts = _full(values)
    assert len(texts) == len(values)
    # the oracle is Python's own float(): every text is the same float64, bit for bit (nan as nan)
    assert [math.copysign(1, float(t)) for t in texts] == [math.copysign(1, v) for v in values.tolist()]
    read = np.array([float(t) for t in texts])
    assert np.array_equal(read, values, equal_nan=True)
    assert texts[-3:] == ["nan", "inf", "-inf"]
    # reused text where another column holds the same value; the rest formatted afresh
    other = values.copy()
    other[::3] += 1.0
    again = _full(other, (values, texts))
    assert np.array_equal(np.array([float(t) for t in again]), other, equal_nan=True)
    assert _full(np.array([])) == []
    diffs = [0.0, 1.23456e-17, float("nan"), float("inf"), 123456.0, 0.0, 2.5]
    assert _short(np.array(diffs)) == ["%.3g" % v for v in diffs]  # differences are magnitudes (or nan)


# kinks: the oracle is the hand-worked calculus of |x|, |x|^3 and max(x, y) at their kinks, and SymPy elsewhere

def _csv_rows(result) -> list[dict]:
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_no_derivative_on_a_kink_is_nan_and_exits_1():
    # d/dx |x| y at x = 0: -y from below, +y from above, so there is none; df/dy = |x| is smooth there
    result = _cli("abs(x) y", "df/dx", "df/dy", "--points", "-", "-f", "csv", input="x,y\n-1,2\n0,2\n1,2\n0,3\n")
    assert result.exit_code == 1
    rows = _csv_rows(result)
    assert [float(r["df/dx"]) for r in rows[::2]] == [-2.0, 2.0]
    assert all(math.isnan(float(rows[i][column])) for i in (1, 3)
               for column in ("df/dx", "df/dx:exact", "df/dx:abs_diff", "df/dx:rel_diff"))
    assert [float(r["df/dy"]) for r in rows] == [1.0, 0.0, 1.0, 0.0]
    assert "df/dx: no derivative at 2 of 4 points, written as nan (first at stdin line 3: " in result.stderr
    assert "-2 from below and 2 from above" in result.stderr
    assert "df/dy" not in result.stderr


def test_a_kink_with_derivatives_keeps_them_up_to_the_order_that_exists():
    # |x|^3: 3x|x| and 6|x| are 0 at 0; the third derivative is -6 from below and 6 from above
    result = _cli("abs(x)^3", "df/dx", "d2f/dx2", "d3f/dx3", "--grid", "x=-1:1:5", "-f", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    at_zero = document["points"][2]
    assert at_zero["x"] == 0.0
    assert at_zero["df/dx"] == at_zero["df/dx:exact"] == 0.0
    assert at_zero["d2f/dx2"] == at_zero["d2f/dx2:exact"] == 0.0  # SymPy's exact 0, not 0 * DiracDelta(0)
    assert at_zero["d3f/dx3"] is None  # nan is null in JSON
    partials = {p["label"]: p for p in document["summary"]["partials"]}
    assert [partials[k]["not_differentiable"] for k in ("df/dx", "d2f/dx2", "d3f/dx3")] == [0, 0, 1]
    assert partials["d2f/dx2"]["disagree"] == 0
    others = [p for p in document["points"] if p["x"] != 0.0]
    for point in others:  # away from the kink: SymPy's derivatives of |x|^3 there
        x = point["x"]
        assert point["d3f/dx3"] == _oracle(sp.Abs(X) ** 3, (X, X, X), [(x, 0)])[0]


def test_a_max_tie_has_no_derivative_and_the_rest_match_sympy():
    result = _cli("max(x, y)", "df/dx", "--grid", "x=-1:1:3,y=-1:1:3", "-f", "csv")
    assert result.exit_code == 1
    for row in _csv_rows(result):
        x, y, value = float(row["x"]), float(row["y"]), float(row["df/dx"])
        if x == y:
            assert math.isnan(value)
        else:
            assert value == (1.0 if x > y else 0.0)


def test_kink_points_past_the_budget_are_counted_as_not_examined(monkeypatch):
    monkeypatch.setattr(stream, "MAX_KINK_POINTS", 1)
    source = sources.open_points("-", ["x", "y"], stdin=io.BytesIO(b"x,y\n0,1\n0,2\n0,3\n"))
    plan, autograd, _ = _run("abs(x)^3 + y", ["df/dx"], source)
    summary = plan.summary.targets[0]
    assert summary.not_differentiable == 0 and summary.kink_unexamined == 2
    assert summary.first_kink_unexamined == "stdin line 3"
    assert list(autograd[0]) == [0.0, 0.0, 0.0]  # values kept: only unexamined
    assert any("2 points lie on a kink" in line for line in plan.summary.problems)


def test_no_symbolic_leaves_kinks_to_autograd_as_with_at():
    result = _cli("abs(x)", "df/dx", "--grid", "x=-1:1:3", "-f", "csv", "--no-symbolic")
    assert result.exit_code == 0
    assert [float(r["df/dx"]) for r in _csv_rows(result)] == [-1.0, 0.0, 1.0]


def test_reused_output_arrays_give_the_answers_of_fresh_ones():
    """The CLI lets each chunk overwrite the last one's arrays; a smaller last chunk writes into part of them."""
    expression = sp.sin(X) * Y ** 2 + sp.exp(X * Y / 4)
    grid = "x=-2:2:37,y=-1:3:29"  # 1073 points: chunks of 400, 400 and 273
    fresh, reused = [], []
    for keep, reuse in ((fresh, False), (reused, True)):
        plan = stream.plan_diff("sin(x) y^2 + exp(x y / 4)", ["d2f/dxdy"], device="cpu")
        for values in plan.run(sources.grid_source(grid, ["x", "y"]), 400, reuse_outputs=reuse):
            keep.append((values.chunk.columns["x"].copy(), values.chunk.columns["y"].copy(),
                         values.autograd[0].copy(), values.exact[0].copy()))
        assert plan.summary.exit_code == 0 and plan.summary.points == 37 * 29
    assert [len(k[0]) for k in reused] == [400, 400, 273]
    for a, b in zip(fresh, reused):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    xs, ys, autograd = (np.concatenate([k[i] for k in reused]) for i in range(3))
    want = _oracle(expression, (Y, X), list(zip(xs.tolist(), ys.tolist())))
    np.testing.assert_allclose(autograd, want, rtol=1e-10, atol=1e-12)
