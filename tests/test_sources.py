"""Point sources: CSV, JSONL, .npy, .npz, stdin and grids → chunks of named float columns; errors name the line."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdiff.errors import PointError
from pdiff.sources import array_source, grid_source, open_points, parse_grid


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _all(source, size=1000):
    chunks = list(source.chunks(size))
    columns = {v: np.concatenate([c.columns[v] for c in chunks]) for v in source.variables}
    return chunks, columns


def test_csv_columns_extras_and_raw_rows(tmp_path):
    path = _write(tmp_path, "p.csv", 'label,x,y\na,2,1\n"b,c",-1.5,2e-3\n')
    source = open_points(path, ["x", "y"])
    assert source.kind == "csv" and source.fields == ["label", "x", "y"] and source.extras == ["label"]
    chunks, columns = _all(source)
    assert columns["x"].tolist() == [2.0, -1.5] and columns["y"].tolist() == [1.0, 0.002]
    assert chunks[0].raw_rows == ["a,2,1", '"b,c",-1.5,2e-3']
    assert chunks[0].extras() == {"label": ["a", "b,c"]}
    assert source.csv_header == "label,x,y"


def test_csv_blank_lines_crlf_and_bom_keep_line_numbers(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbfx,y\r\n1,2\r\n\r\n3,4\r\n\r\n5,oops\r\n")
    with pytest.raises(PointError, match=r"p\.csv line 6: y = 'oops' is not a number"):
        _all(open_points(str(path), ["x", "y"]))
    path.write_bytes(b"x,y\r\n1,2\r\n\r\n3,4\r\n")
    chunks, columns = _all(open_points(str(path), ["x", "y"]))
    assert columns["x"].tolist() == [1.0, 3.0]
    assert [chunks[0].where(i) for i in range(2)] == ["line 2", "line 4"]


@pytest.mark.parametrize("text, message", [
    ("x,z\n1,2\n", r"p\.csv line 1: no column for y \(columns: x, z\)"),
    ("x,y\n1,2\n3\n", r"p\.csv line 3: 1 fields, but the header names 2"),
    ("x,y\n1,2\n3,4,5\n", r"p\.csv line 3: 3 fields, but the header names 2"),
    ("x,y\n1,2\n3,abc\n", r"p\.csv line 3: y = 'abc' is not a number"),
    ("x,y\n1,2\n3,\n", r"p\.csv line 3: y = '' is not a number"),
    ("x,y\n1,nan\n", r"p\.csv line 2: y = nan is not a finite number"),
    ("x,y\n1,2\n3,-inf\n", r"p\.csv line 3: y = -inf is not a finite number"),
    ("", r"p\.csv: empty input"),
    ("x,x,y\n1,2,3\n", r"line 1: column 'x' appears twice"),
])
def test_csv_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(PointError, match=message):
        _all(open_points(_write(tmp_path, "p.csv", text), ["x", "y"]))


def test_csv_error_line_is_right_in_a_later_chunk(tmp_path):
    rows = "".join(f"{i},{i}\n" for i in range(50)) + "1,2,3\n"
    with pytest.raises(PointError, match=r"line 52: 3 fields"):
        _all(open_points(_write(tmp_path, "p.csv", "x,y\n" + rows), ["x", "y"]), size=7)


def test_tsv_by_extension(tmp_path):
    _, columns = _all(open_points(_write(tmp_path, "p.tsv", "x\ty\n1\t2\n"), ["x", "y"]))
    assert columns["y"].tolist() == [2.0]


def test_jsonl_values_extras_and_errors(tmp_path):
    path = _write(tmp_path, "p.jsonl", '{"x": 1, "y": 2.5, "id": "a"}\n\n{"x": -3, "y": 0, "id": [1]}\n')
    source = open_points(path, ["x", "y"])
    chunks, columns = _all(source, size=1)
    assert source.kind == "jsonl" and columns["x"].tolist() == [1.0, -3.0]
    assert [c.extras()["id"] for c in chunks] == [["a"], [[1]]]
    assert chunks[1].where(0) == "line 3"
    for text, message in [
        ('{"x": 1, "y": 2}\n{"x": 1}\n', r"line 2: no y"),
        ('{"x": 1, "y": 2}\n{"x": 1, "y": "2"}\n', r'line 2: y = "2" is not a number'),
        ('{"x": 1, "y": 2}\n{"x": 1, "y": true}\n', r"line 2: y = true is not a number"),
        ('{"x": 1, "y": 2}\n{"x": 1, "y": 2\n', r"line 2: not valid JSON"),
        ('{"x": 1, "y": 2}\n{"x": NaN, "y": 2}\n', r"line 2: x = nan is not a finite number"),
        ('{"x": 1, "y": -Infinity}\n', r"line 1: y = -inf is not a finite number"),
        ('{"x": 1, "y": 2}\n[1, 2]\n', r"line 2: expected a JSON object"),
        ('{"x": 1}\n', r"line 1: no value for y"),
    ]:
        with pytest.raises(PointError, match=message):
            _all(open_points(_write(tmp_path, "q.jsonl", text), ["x", "y"]))


def test_npy_structured_and_npz_columns(tmp_path):
    array = np.zeros(5, dtype=[("x", "f8"), ("y", "i4"), ("tag", "U3")])
    array["x"] = np.arange(5) / 2
    array["y"] = np.arange(5)
    array["tag"] = list("abcde")
    np.save(tmp_path / "p.npy", array)
    source = open_points(str(tmp_path / "p.npy"), ["x", "y"])
    chunks, columns = _all(source, size=2)
    assert source.kind == "npy" and source.total_rows == 5 and len(chunks) == 3
    assert columns["x"].tolist() == [0, 0.5, 1, 1.5, 2] and columns["y"].dtype == np.float64
    assert chunks[2].extras() == {"tag": ["e"]} and chunks[2].where(0) == "row 5"

    np.savez(tmp_path / "c.npz", x=np.arange(3.0), y=np.ones(3), w=np.arange(3))
    source = open_points(str(tmp_path / "c.npz"), ["x", "y"])
    _, columns = _all(source)
    assert source.fields == ["x", "y", "w"] and columns["y"].tolist() == [1, 1, 1]

    np.savez(tmp_path / "s.npz", points=array)
    _, columns = _all(open_points(str(tmp_path / "s.npz"), ["x", "y"]))
    assert columns["y"].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p, np.ones((3, 2))), r"1-D structured array"),
    (lambda p: np.savez(p, x=np.ones(3), y=np.ones(2)), r"different lengths"),
    (lambda p: np.savez(p, x=np.ones(3)), r"no column for y"),
    (lambda p: np.savez(p, x=np.ones(3), y=np.array([1, np.inf, 2])), r"row 2: y = inf? ?is not a finite|row 2"),
])
def test_binary_errors(tmp_path, make, message):
    stem = tmp_path / "bad"
    make(stem)
    path = next(tmp_path.glob("bad.*"))
    with pytest.raises(PointError, match=message):
        _all(open_points(str(path), ["x", "y"]))


def test_stdin_is_sniffed_csv_jsonl_npy():
    _, columns = _all(open_points("-", ["x"], stdin=io.BytesIO(b"x\n1\n2\n")))
    assert columns["x"].tolist() == [1, 2]
    _, columns = _all(open_points("-", ["x"], stdin=io.BytesIO(b'{"x": 4}\n{"x": 5}\n')))
    assert columns["x"].tolist() == [4, 5]
    buffer = io.BytesIO()
    np.save(buffer, np.array([(7.0,)], dtype=[("x", "f8")]))
    _, columns = _all(open_points("-", ["x"], stdin=io.BytesIO(buffer.getvalue())))
    assert columns["x"].tolist() == [7]


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(PointError.__mro__[1], match="cannot read --points"):
        open_points(str(tmp_path / "nope.csv"), ["x"])


def test_grid_product_order_and_exact_ends():
    axes = parse_grid("x=-1:1:3, y=0:pi:2")
    assert [name for name, _ in axes] == ["x", "y"]
    assert axes[1][1].tolist() == [0.0, math.pi]
    source = grid_source("x=-1:1:3,y=0:pi:2", ["x", "y"])
    assert source.total_rows == 6
    chunks, columns = _all(source, size=4)
    assert columns["x"].tolist() == [-1, -1, 0, 0, 1, 1]  # the first named varies slowest
    assert columns["y"].tolist() == [0, math.pi] * 3
    assert [len(c) for c in chunks] == [4, 2] and chunks[1].where(0) == "row 5"
    _, columns = _all(grid_source("x=sqrt(2),y=1:2:1", ["x", "y"]))
    assert columns["x"].tolist() == [math.sqrt(2)] and columns["y"].tolist() == [1.0]


@pytest.mark.parametrize("spec, message", [
    ("x=0:1:0,y=1", r"count '0' must be a whole number"),
    ("x=0:1:2.5,y=1", r"must be a whole number"),
    ("x=0:1,y=1", r"start:stop:count"),
    ("x=0:1:2", r"--grid gives no values for y"),
    ("x=0:1:2,y=1,z=3", r"--grid names z, which is not a variable"),
    ("x=0:1:2,x=1", r"given twice"),
    ("x=0:q:2,y=1", r"--grid x=0:q:2"),
    ("x=0:1/0:2,y=1", r"not a finite real number|--grid x"),
    ("x", r"write it like"),
])
def test_grid_errors(spec, message):
    with pytest.raises(PointError, match=message):
        _all(grid_source(spec, ["x", "y"]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(allow_nan=False, allow_infinity=False),
                          st.floats(allow_nan=False, allow_infinity=False)), min_size=1, max_size=40),
       st.integers(min_value=1, max_value=9))
def test_csv_round_trips_exactly_whatever_the_chunk_size(rows, size):
    text = "x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in rows)
    source = open_points("-", ["x", "y"], stdin=io.BytesIO(text.encode()))
    chunks, columns = _all(source, size=size)
    assert columns["x"].tolist() == [a for a, _ in rows] and columns["y"].tolist() == [b for _, b in rows]
    assert [c.start for c in chunks] == list(range(0, len(rows), size))


def test_jsonl_extras_keep_json_values(tmp_path):
    path = _write(tmp_path, "p.jsonl", json.dumps({"x": 1, "meta": {"a": [1, None]}}) + "\n")
    chunks, _ = _all(open_points(path, ["x"]))
    assert chunks[0].extras() == {"meta": [{"a": [1, None]}]}


def test_arrays_in_memory_stream_like_a_file():
    x = np.linspace(0.0, 1.0, 7)
    source = array_source({"x": x, "y": np.arange(7), "tag": np.array(list("abcdefg"))}, ["x", "y"])
    chunks, columns = _all(source, size=3)
    assert columns["x"].tolist() == x.tolist() and columns["y"].tolist() == list(range(7))
    assert [c.extras()["tag"] for c in chunks] == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert chunks[2].where(0) == "row 7"
    for columns_, message in [
        ({"x": x}, r"arrays: no column for y \(columns: x\)"),
        ({"x": x, "y": np.arange(6)}, r"arrays: the columns must be 1-D arrays of one length"),
        ({"x": x.reshape(7, 1), "y": x.reshape(7, 1)}, r"1-D arrays"),
        ({"x": x, "y": np.array(["1"] * 7)}, r"column y holds <U1, not numbers"),
        ({"x": np.array([1.0, np.inf]), "y": np.zeros(2)}, r"arrays row 2: x = inf is not a finite number"),
    ]:
        with pytest.raises(PointError, match=message):
            _all(array_source(columns_, ["x", "y"]))
