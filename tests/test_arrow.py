"""Parquet, Feather and Arrow in and out (pdiff.arrow, `--points FILE.parquet`, `--output FILE`): the same values as
the CSV path, float64 columns without a text round trip, fixed-size lists as element columns, and the CSV's
one-line errors for a missing column, a column that is not numbers, nulls and non-finite cells."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq
from pyarrow import feather
from typer.testing import CliRunner

from pdiff import sources, stream
from pdiff.cli import app
from pdiff.errors import PointError

runner = CliRunner()
SEED = "x^2 sin(y) + y^3 cos(x)"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _points(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(-2, 2, n), "y": rng.uniform(-2, 2, n), "tag": [f"p{i}" for i in range(n)]}


def _csv(path, columns):
    names = list(columns)
    rows = zip(*(columns[n] if isinstance(columns[n], list) else [repr(float(v)) for v in columns[n]]
                 for n in names))
    path.write_text(",".join(names) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return str(path)


def _cli(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def _engine(expression, partials, columns, command="diff"):
    """The single-machine engine on arrays in memory: the values every file path must give."""
    if command == "diff":
        plan = stream.plan_diff(expression, partials, device="cpu", names=list(columns))
    else:
        plan = stream.plan_matrix(command, expression, device="cpu", names=list(columns))
    chunks = list(plan.run(sources.array_source({k: np.asarray(v) for k, v in columns.items()
                                                  if k in plan.needed}, plan.needed)))
    return plan, chunks


def test_parquet_in_and_out_gives_the_engine_values_as_float64(tmp_path):
    columns = _points()
    pq.write_table(pa.table(columns), tmp_path / "p.parquet", row_group_size=64)  # several row groups
    out = tmp_path / "r.parquet"
    result = _cli("diff", SEED, "d2f/dxdy", "f_x", "--points", str(tmp_path / "p.parquet"), "-o", str(out),
                  "--chunk-size", "50")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the rows went to the file
    table = pq.read_table(out)
    plan, chunks = _engine(SEED, ["d2f/dxdy", "f_x"], columns)
    names = ["x", "y", "tag"]
    for t in plan.targets:
        names += [t.label, f"{t.label}:exact", f"{t.label}:abs_diff", f"{t.label}:rel_diff"]
    assert table.schema.names == names
    assert all(table.schema.field(n).type == pa.float64() for n in names if n != "tag")
    assert table.column("tag").to_pylist() == columns["tag"]
    for t, target in enumerate(plan.targets):
        for kind, arrays in (("", [c.autograd[t] for c in chunks]), (":exact", [c.exact[t] for c in chunks]),
                             (":abs_diff", [c.abs_diff[t] for c in chunks]),
                             (":rel_diff", [c.rel_diff[t] for c in chunks])):
            np.testing.assert_array_equal(table.column(target.label + kind).to_numpy(), np.concatenate(arrays))
    # the oracle: SymPy's derivative in float64 at a few rows
    x, y = sp.symbols("x y")
    d = sp.diff(sp.sympify("x**2*sin(y) + y**3*cos(x)"), y, x)
    for i in (0, 7, 299):
        expected = float(d.subs({x: columns["x"][i], y: columns["y"][i]}).evalf(30))
        assert math.isclose(table.column("d2f/dxdy")[i].as_py(), expected, rel_tol=1e-12, abs_tol=1e-12)


def test_every_input_and_output_format_agrees_with_the_csv_path(tmp_path):
    columns = _points(120, seed=1)
    csv_path = _csv(tmp_path / "p.csv", columns)
    pq.write_table(pa.table(columns), tmp_path / "p.parquet")
    feather.write_feather(pa.table(columns), tmp_path / "p.feather", chunksize=33)  # record batches of 33 rows
    with pa.OSFile(str(tmp_path / "p.arrow"), "wb") as sink, pa.ipc.new_stream(sink, pa.table(columns).schema) as w:
        w.write_table(pa.table(columns), max_chunksize=50)  # the IPC stream format
    reference = _cli("hessian", "x^2 y - y^3 + exp(x y)", "--points", csv_path, "-f", "csv")
    assert reference.exit_code == 0, reference.output
    rows = list(csv.DictReader(io.StringIO(reference.stdout)))
    runs = [(name, "r.parquet") for name in ("p.parquet", "p.feather", "p.arrow")]
    runs += [("p.parquet", output) for output in ("r.feather", "r.arrow", "r.csv", "r.jsonl")]
    for name, output in runs:
        target = tmp_path / output
        result = _cli("hessian", "x^2 y - y^3 + exp(x y)", "--points", str(tmp_path / name), "-o", str(target))
        assert result.exit_code == 0, (name, output, result.output)
        if output.endswith(".csv"):
            got = list(csv.DictReader(io.StringIO(target.read_text())))
            assert [{k: v for k, v in r.items() if k not in ("x", "y")} for r in got] == \
                   [{k: v for k, v in r.items() if k not in ("x", "y")} for r in rows]
            assert [float(r["x"]) for r in got] == [float(r["x"]) for r in rows]
            continue
        if output.endswith(".jsonl"):
            got = [json.loads(line) for line in target.read_text().splitlines()]
            assert [r["d2f/dxdy"] for r in got] == [float(r["d2f/dxdy"]) for r in rows]
            continue
        table = pq.read_table(target) if output.endswith(".parquet") else feather.read_table(target)
        assert table.schema.names == list(rows[0])
        for key in rows[0]:
            got = table.column(key).to_pylist()
            if key in ("tag", "classification", "status"):
                assert got == [r[key] for r in rows], key
            elif key == "critical":
                assert got == [r[key] == "True" for r in rows]
            elif key.endswith(("abs_diff", "rel_diff")):  # the CSV keeps 3 digits of them
                assert [float(f"{v:.3g}") for v in got] == [float(r[key]) for r in rows], key
            else:
                assert got == [float(r[key]) for r in rows], key
    # a Parquet --output equals the stdout CSV and JSONL byte for byte when it is a text format
    for fmt in ("csv", "jsonl", "json"):
        result = _cli("diff", SEED, "f_y", "--points", str(tmp_path / "p.parquet"), "-o", str(tmp_path / f"s.{fmt}"))
        shown = _cli("diff", SEED, "f_y", "--points", str(tmp_path / "p.parquet"), "-f", fmt)
        assert result.exit_code == shown.exit_code == 0
        assert (tmp_path / f"s.{fmt}").read_text() == shown.stdout


def test_fixed_size_lists_are_element_columns_in_and_out(tmp_path):
    xs = np.array([[1.0, -1.0], [0.5, 2.0]])
    As = np.array([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]])
    x = pa.FixedSizeListArray.from_arrays(pa.array(xs.reshape(-1)), 2)
    A = pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(pa.array(As.reshape(-1)), 2), 2)
    pq.write_table(pa.table({"x": x, "A": A, "id": ["a", "b"]}), tmp_path / "t.parquet")
    assert sources.column_names(str(tmp_path / "t.parquet")) == \
        ["x[0]", "x[1]", "A[0,0]", "A[0,1]", "A[1,0]", "A[1,1]", "id"]
    result = _cli("grad", "x.T @ A @ x", "--wrt", "x", "--points", str(tmp_path / "t.parquet"),
                  "-o", str(tmp_path / "g.parquet"))
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "g.parquet")
    expected = np.einsum("nij,nj->ni", As + As.transpose(0, 2, 1), xs)  # (A + Aᵀ) x
    got = np.stack([table.column("df/dx[0]").to_numpy(), table.column("df/dx[1]").to_numpy()], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert table.schema.field("x").type == x.type and table.schema.field("A").type == A.type  # carried as read
    # from a CSV with element columns, an Arrow output groups them into one fixed-size list column
    header = 'x[0],x[1],"A[0,0]","A[0,1]","A[1,0]","A[1,1]",id\n'
    rows = "".join(",".join(map(repr, [*a.tolist(), *b.reshape(-1).tolist()])) + f",{t}\n"
                   for a, b, t in zip(xs, As, "ab"))
    (tmp_path / "t.csv").write_text(header + rows)
    result = _cli("grad", "x.T @ A @ x", "--wrt", "x", "--points", str(tmp_path / "t.csv"),
                  "-o", str(tmp_path / "c.feather"))
    assert result.exit_code == 0, result.output
    grouped = feather.read_table(tmp_path / "c.feather")
    assert grouped.schema.names[:3] == ["x", "A", "id"] and grouped.schema.field("A").type == A.type
    assert grouped.column("x").to_pylist() == xs.tolist() and grouped.column("A").to_pylist() == As.tolist()
    np.testing.assert_array_equal(grouped.column("df/dx[1]").to_numpy(), table.column("df/dx[1]").to_numpy())


@pytest.mark.parametrize("make, csv_text, message, csv_message", [
    (lambda: {"x": [1.0], "z": [2.0]}, "x,z\n1,2\n",
     r"p\.parquet: no column for y \(columns: x, z\)", r"p\.csv line 1: no column for y \(columns: x, z\)"),
    (lambda: {"x": [1.0, 2.0], "y": ["abc", "1"]}, "x,y\nabc,1\n",
     r"p\.parquet row 1: y = 'abc' is not a number \(column y holds string\)", r"is not a number"),
    (lambda: {"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, None]}, "x,y\n1,1\n2,2\n3,\n",
     r"p\.parquet row 3: y = null is not a number", r"p\.csv line 4: y = '' is not a number"),
    (lambda: {"x": [1.0, 2.0], "y": [True, False]}, "x,y\n1,true\n",
     r"p\.parquet row 1: y = true is not a number \(column y holds bool\)", r"y = 'true' is not a number"),
    (lambda: {"x": [1.0, math.nan], "y": [1.0, 2.0]}, "x,y\n1,1\nnan,2\n",
     r"p\.parquet row 2: x = nan is not a finite number", r"p\.csv line 3: x = nan is not a finite number"),
    (lambda: {"x": [1.0, 2.0], "y": [1.0, -math.inf]}, "x,y\n1,1\n2,-inf\n",
     r"p\.parquet row 2: y = -inf is not a finite number", r"p\.csv line 3: y = -inf is not a finite number"),
])
def test_errors_are_the_csv_one_line_errors(tmp_path, make, csv_text, message, csv_message):
    import re

    pq.write_table(pa.table(make()), tmp_path / "p.parquet")
    (tmp_path / "p.csv").write_text(csv_text)
    with pytest.raises(PointError, match=message):
        list(sources.open_points(str(tmp_path / "p.parquet"), ["x", "y"]).chunks(10))
    for name, expected in (("p.parquet", message), ("p.csv", csv_message)):
        result = _cli("diff", "x y", "f_x", "--points", str(tmp_path / name), "-o", str(tmp_path / "out.parquet"))
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and re.search(expected, result.stderr), result.stderr
        assert not os.path.exists(tmp_path / "out.parquet")  # an input error leaves no half-written file
        assert not [p for p in os.listdir(tmp_path) if p.startswith(".out")]


def test_nulls_and_non_numbers_inside_a_later_batch_and_in_lists(tmp_path):
    y = pa.array([1.0] * 70 + [None] + [1.0] * 9)
    pq.write_table(pa.table({"x": np.ones(80), "y": y}), tmp_path / "p.parquet", row_group_size=16)
    with pytest.raises(PointError, match=r"row 71: y = null is not a number"):
        list(sources.open_points(str(tmp_path / "p.parquet"), ["x", "y"]).chunks(7))
    values = pa.array([1.0, 2.0, None, 4.0])
    lists = pa.FixedSizeListArray.from_arrays(values, 2)
    feather.write_feather(pa.table({"v": lists}), tmp_path / "v.feather")
    with pytest.raises(PointError, match=r"v\.feather row 2: v\[0\] = null is not a number"):
        list(sources.open_points(str(tmp_path / "v.feather"), ["v[0]", "v[1]"]).chunks(10))


def test_batches_stay_within_the_chunk_size_and_a_directory_is_a_dataset(tmp_path):
    columns = _points(100, seed=2)
    (tmp_path / "data").mkdir()
    for i, (a, b) in enumerate([(0, 10), (10, 55), (55, 100)]):  # part.10 after part.2: natural order
        pq.write_table(pa.table({k: v[a:b] for k, v in columns.items()}), tmp_path / "data" / f"part.{i * 5}.parquet",
                       row_group_size=20)
    (tmp_path / "data" / "_metadata").write_bytes(b"not a part")
    source = sources.open_points(str(tmp_path / "data"), ["x", "y"])
    assert source.total_rows == 100 and source.kind == "parquet"
    chunks = list(source.chunks(16))
    assert max(len(c) for c in chunks) <= 16 and [c.start for c in chunks] == \
        list(np.cumsum([0] + [len(c) for c in chunks])[:-1])
    np.testing.assert_array_equal(np.concatenate([c.columns["x"] for c in chunks]), columns["x"])
    assert [t for c in chunks for t in c.extras()["tag"]] == columns["tag"]
    result = _cli("diff", "x y", "f_x", "--points", str(tmp_path / "data"), "-f", "plain")
    assert result.exit_code == 0 and [float(v) for v in result.stdout.split()] == columns["y"].tolist()


def test_stdin_is_sniffed_and_integer_columns_are_numbers(tmp_path):
    sink = io.BytesIO()
    pq.write_table(pa.table({"x": pa.array([1, 2, 3], pa.int32()), "y": [0.5, 0.25, 2.0]}), sink)
    result = _cli("diff", "x^2 y", "f_x", "--points", "-", "-f", "plain", input=sink.getvalue())
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["1.0", "1.0", "12.0"]  # 2 x y
    stream_sink = io.BytesIO()
    feather.write_feather(pa.table({"x": [1.0, 2.0], "y": [1.0, 1.0]}), stream_sink)
    result = _cli("diff", "x^2 y", "f_x", "--points", "-", "-f", "plain", input=stream_sink.getvalue())
    assert result.exit_code == 0 and result.stdout.split() == ["2.0", "4.0"]


def test_grid_to_parquet_and_usage_errors(tmp_path):
    result = _cli("grad", "x^2 + y", "--grid", "x=0:1:3,y=0:1:2", "-o", str(tmp_path / "g.parquet"), "--no-symbolic")
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "g.parquet")
    assert table.schema.names == ["x", "y", "df/dx", "df/dy", "max_abs_error", "status"]
    assert table.column("df/dx").to_pylist() == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    assert table.column("max_abs_error").null_count == 6  # nothing compared: an empty CSV cell, a null here
    for args, message in [(["-o", str(tmp_path / "g.txt")], "the extension names the format"),
                          (["-o", str(tmp_path / "g.parquet"), "-f", "csv"], "does not match --output")]:
        result = _cli("diff", "x y", "f_x", "--grid", "x=0:1:2,y=1", *args)
        assert result.exit_code == 2 and message in result.stderr
    result = _cli("diff", "x y", "f_x", "--at", "x=1,y=2", "-o", str(tmp_path / "a.csv"))
    assert result.exit_code == 2 and "--points and --grid" in result.output


def test_base_commands_import_neither_pyarrow_nor_dask(tmp_path):
    path = _csv(tmp_path / "p.csv", {"x": np.array([1.0]), "y": np.array([2.0])})
    code = ("import sys; from typer.testing import CliRunner; from pdiff.cli import app; from pdiff import sources; "
            "r = CliRunner().invoke(app, ['diff', '--help']); assert r.exit_code == 0 and '--output' in r.output; "
            f"assert sources.column_names({path!r}) == ['x', 'y']; "
            f"assert len(list(sources.open_points({path!r}, ['x']).chunks(10))) == 1; "
            "assert not {'pyarrow', 'dask', 'distributed', 'pandas', 'torch'} & set(sys.modules), 'imported'")
    env = {**os.environ, "PYTHONPATH": ROOT}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(tmp_path), timeout=120)
