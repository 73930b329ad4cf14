"""Many points: `--points FILE|-` (CSV, JSONL, .npy, .npz; Parquet, Feather and Arrow through pdiff.arrow) and
`--grid` → chunks of named float columns.

A source is read lazily, one chunk of rows at a time, so memory stays flat whatever the file size. Each chunk
holds the needed variables as float64 NumPy columns, plus what the output carries through: the raw CSV text of
each row (so a CSV comes back out unchanged, extra columns included) or the extra fields' values.

Errors are input errors that name the line (or row, for binary files) and the column: a missing variable
column, a non-numeric or non-finite cell, a ragged row. Numbers in files are plain decimals (`1.5`, `-2e-3`);
grid ends may be exact expressions (`pi/2`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator, Sequence

import numpy as np
import orjson

from pdiff.errors import InputError, PointError

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_ARROW_EXTENSIONS = (".parquet", ".pq", ".feather", ".arrow", ".ipc")
_ARROW_MAGICS = (b"PAR1", b"ARROW1")


def _arrow():
    """pdiff.arrow, which needs pyarrow (an optional extra)."""
    try:
        from pdiff import arrow
    except ImportError:
        raise InputError("Parquet, Feather and Arrow files need pyarrow: pip install 'pdiff-calc[scale]'") from None
    return arrow


def _is_arrow_path(spec: str) -> bool:
    return spec != "-" and (os.path.isdir(spec) or os.path.splitext(spec)[1].lower() in _ARROW_EXTENSIONS)


@dataclass
class Chunk:
    """Rows `start .. start+len` of a source: the variables as float64 columns and what is carried through."""

    start: int  # 0-based index of the first row in the whole stream
    rows: int  # number of rows
    columns: dict[str, np.ndarray]  # needed variable → float64 values
    first_line: int | None = None  # source line of the first row (text formats); None: rows are numbered
    line_numbers: np.ndarray | None = None  # per-row source lines when they are not consecutive (blank lines)
    raw_rows: list[str] | None = None  # CSV input: each row's text as read (without the line end)
    extra_values: Callable[[], dict[str, list]] | None = None  # extra field → values (computed on demand)
    consumed: int = 0  # bytes of input this chunk took (for a progress bar over files)
    arrow: object | None = None  # Parquet/Feather/Arrow input: the rows as read (a pyarrow RecordBatch)

    def __len__(self) -> int:
        return self.rows

    def where(self, row: int) -> str:
        """`line 17` or `row 17` for a row index within this chunk (1-based as people count)."""
        if self.line_numbers is not None:
            return f"line {int(self.line_numbers[row])}"
        if self.first_line is not None:
            return f"line {self.first_line + row}"
        return f"row {self.start + row + 1}"

    def extras(self) -> dict[str, list]:
        return self.extra_values() if self.extra_values else {}


@dataclass
class PointSource:
    """A stream of points: its fields in input order, the variables among them, and how to read it in chunks."""

    name: str  # for messages: the file name, `stdin` or `--grid`
    kind: str  # csv, jsonl, npy, npz, grid
    fields: list[str]  # input columns in order (variables and extras): the output carries them through
    variables: list[str]  # the needed variables
    read: Callable[[int], Iterator[Chunk]] = field(repr=False)
    total_rows: int | None = None  # when known in advance (binary files, grids)
    total_bytes: int | None = None  # file size for text files, when known
    csv_header: str | None = None  # CSV input with a comma delimiter: the header line as read
    close: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def extras(self) -> list[str]:
        return [name for name in self.fields if name not in self.variables]

    def chunks(self, size: int) -> Iterator[Chunk]:
        if size < 1:
            raise InputError("--chunk-size must be a positive number of rows")
        try:
            yield from self.read(size)
        finally:
            self.close()


def _missing_message(source: str, missing: Sequence[str], present: Sequence[str], what: str) -> str:
    listed = ", ".join(present) or "none"
    return f"{source}: no {what} for {', '.join(missing)} ({what}s: {listed})"


# ---------------------------------------------------------------------------------------------------- files


def open_points(spec: str, variables: Sequence[str], *, stdin: BinaryIO | None = None) -> PointSource:
    """`--points FILE` or `--points -` (stdin): the format comes from the extension, else from the content."""
    variables = list(variables)
    if _is_arrow_path(spec):  # Parquet (a file or a directory of them), Feather, Arrow IPC
        return _arrow().open_path(spec, variables)
    if spec == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        name, size = "stdin", None
    else:
        try:
            stream = open(spec, "rb")
        except OSError as exc:
            raise InputError(f"cannot read --points {spec}: {exc.strerror or exc}") from None
        name = os.path.basename(spec)
        size = os.fstat(stream.fileno()).st_size
    if not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream)  # type: ignore[arg-type]
    head = stream.peek(8)[:8]
    extension = os.path.splitext(spec)[1].lower() if spec != "-" else ""
    try:
        if head.startswith(_ARROW_MAGICS):  # Parquet or Arrow IPC without its extension (stdin)
            data = stream.read()
            if stream is not stdin and spec != "-":
                stream.close()
            return _arrow().open_bytes(data, name, variables)
        if head.startswith(_NPY_MAGIC) or extension == ".npy":
            return _npy_source(stream, name, variables)
        if head.startswith(_ZIP_MAGIC) or extension == ".npz":
            return _npz_source(stream, name, variables)
        if extension in (".jsonl", ".ndjson") or (not extension.startswith(".csv") and head.lstrip()[:1] == b"{"):
            return _jsonl_source(stream, name, variables, size)
        return _csv_source(stream, name, variables, size, "\t" if extension == ".tsv" else ",")
    except BaseException:
        if stream is not stdin and spec != "-":
            stream.close()
        raise


def column_names(spec: str) -> list[str]:
    """The column names of a CSV/TSV header or of a JSONL file's first object, peeked without consuming anything
    (stdin included), so that the reader knows the names the points declare; [] where that cannot be told.
    Parquet, Feather and Arrow files: their schema's columns (x[0], x[1] for a column of fixed-size lists)."""
    if _is_arrow_path(spec):
        try:
            from pdiff import arrow
        except ImportError:
            return []
        return arrow.column_names(spec)
    try:
        if spec == "-":
            buffer = sys.stdin.buffer
            if hasattr(buffer, "peek"):  # a pipe or a file: the buffered bytes, left for the source to read
                head = buffer.peek(65536)
            else:  # an in-memory stream (tests, an embedding program): read and rewind
                start = buffer.tell()
                head = buffer.read(65536)
                buffer.seek(start)
        else:
            with open(spec, "rb") as handle:
                head = handle.read(65536)
        if head.startswith(_ARROW_MAGICS):
            return []
        first = head.split(b"\n", 1)[0].decode("utf-8-sig").strip()
    except (OSError, UnicodeDecodeError, AttributeError, ValueError, io.UnsupportedOperation):
        return []  # the source reports it properly when it opens the file
    if first.startswith("{"):
        try:
            record = orjson.loads(first)
        except orjson.JSONDecodeError:
            return []
        return [str(key) for key in record] if isinstance(record, dict) else []
    if spec.lower().endswith((".npy", ".npz")) or first.startswith("\x93NUMPY"):
        return []
    # the csv module, as the source reads it: a quoted "W[0,1]" keeps its comma
    header = next(csv.reader([first], delimiter="\t" if spec.lower().endswith(".tsv") else ","), [])
    return [name.strip() for name in header if name.strip()]


def _text(stream: BinaryIO) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def _csv_source(stream: BinaryIO, name: str, variables: list[str], size: int | None, delimiter: str) -> PointSource:
    text = _text(stream)
    header_line = text.readline()
    if not header_line.strip():
        raise PointError(f"{name}: empty input; the first line must name the columns, e.g. x,y")
    try:
        fields = [cell.strip() for cell in next(csv.reader([header_line], delimiter=delimiter))]
    except csv.Error as exc:
        raise PointError(f"{name} line 1: cannot read the header ({exc})") from None
    duplicates = sorted({f for f in fields if fields.count(f) > 1})
    if duplicates:
        raise PointError(f"{name} line 1: column {', '.join(map(repr, duplicates))} appears twice in the header")
    missing = [v for v in variables if v not in fields]
    if missing:
        raise PointError(_missing_message(f"{name} line 1", missing, fields, "column"))
    indices = [fields.index(v) for v in variables]
    width = len(fields)
    sep = delimiter
    comma_header = header_line.rstrip("\r\n") if delimiter == "," else None

    def read(size_rows: int) -> Iterator[Chunk]:
        line_no = 2  # the header was line 1
        start = 0
        while True:
            lines = list(itertools.islice(text, size_rows))
            if not lines:
                return
            first_line = line_no
            line_no += len(lines)
            chunk = _csv_chunk(lines, first_line, start, name, variables, fields, indices, width, sep)
            if chunk is None:  # only blank lines
                continue
            start += len(chunk)
            yield chunk

    return PointSource(name, "csv", fields, variables, read, total_bytes=size, csv_header=comma_header,
                       close=text.close if name != "stdin" else lambda: None)


def _csv_chunk(lines: list[str], first_line: int, start: int, name: str, variables: list[str],
               fields: list[str], indices: list[int], width: int, sep: str) -> Chunk | None:
    consumed = sum(map(len, lines))
    raw = [line.rstrip("\r\n") for line in lines]
    line_numbers = None
    if not all(raw):  # blank lines are skipped; keep the real line numbers for messages
        kept = [i for i, row in enumerate(raw) if row.strip()]
        if not kept:
            return None
        line_numbers = np.asarray(kept, dtype=np.int64) + first_line
        raw = [raw[i] for i in kept]
        lines = [lines[i] for i in kept]
    block = "\n".join(raw)
    quoted = '"' in block
    if quoted:
        counts = np.array([len(row) for row in csv.reader(raw, delimiter=sep)])
    else:  # fields per row = delimiters per row + 1, counted without a Python loop
        data = np.frombuffer((block + "\n").encode("utf-8"), dtype=np.uint8)
        ends = np.flatnonzero(data == 10)
        line_of_each = np.searchsorted(ends, np.flatnonzero(data == ord(sep)))
        counts = np.bincount(line_of_each, minlength=len(ends)) + 1
    bad = np.flatnonzero(counts != width)

    def where(i: int) -> str:
        return f"{name} line {int(line_numbers[i]) if line_numbers is not None else first_line + i}"

    if bad.size:
        i = int(bad[0])
        raise PointError(f"{where(i)}: {counts[i]} fields, but the header names {width}")
    try:
        values = (np.loadtxt(raw, delimiter=sep, usecols=indices, comments=None, quotechar='"',
                             dtype=np.float64, ndmin=2) if indices else np.empty((len(raw), 0)))
    except ValueError:
        values = None
    if values is None or values.shape[0] != len(raw):  # find the offending cell, for a precise message
        for i, row in enumerate(csv.reader(raw, delimiter=sep)):
            for variable, index in zip(variables, indices):
                try:
                    float(row[index])
                except ValueError:
                    raise PointError(f"{where(i)}: {variable} = {row[index].strip()!r} is not a number") from None
        raise PointError(f"{name}: cannot read lines {first_line}-{first_line + len(lines) - 1}")
    finite = np.isfinite(values)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise PointError(f"{where(int(i))}: {variables[j]} = {float(values[i, j])!r} is not a finite number")
    columns = {v: np.ascontiguousarray(values[:, j]) for j, v in enumerate(variables)}
    extra_indices = [i for i, f in enumerate(fields) if f not in variables]

    def extra_values() -> dict[str, list]:
        rows = list(csv.reader(raw, delimiter=sep)) if quoted or sep != "," else [r.split(",") for r in raw]
        return {fields[i]: [row[i] for row in rows] for i in extra_indices}

    return Chunk(start, len(raw), columns, first_line=first_line, line_numbers=line_numbers,
                 raw_rows=raw if sep == "," else None, extra_values=extra_values if extra_indices else None,
                 consumed=consumed)


def _number(value, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PointError(f"{where}: {name} = {json.dumps(value)} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise PointError(f"{where}: {name} = {value!r} is not a finite number")
    return number


def _jsonl_source(stream: BinaryIO, name: str, variables: list[str], size: int | None) -> PointSource:
    text = _text(stream)
    pending: list[tuple[int, dict]] = []  # the first record, read now to learn the fields
    line_no = 0
    for line in text:
        line_no += 1
        if line.strip():
            pending.append((line_no, _json_record(line, f"{name} line {line_no}")))
            break
    if not pending:
        raise PointError(f"{name}: no points (expected one JSON object per line)")
    fields = list(pending[0][1])
    missing = [v for v in variables if v not in fields]
    if missing:
        raise PointError(_missing_message(f"{name} line {pending[0][0]}", missing, fields, "value"))
    extras = [f for f in fields if f not in variables]
    keys = set(fields)

    def numbered() -> Iterator[tuple[int, str | dict]]:
        yield from pending
        for number, line in enumerate(text, start=line_no + 1):
            yield number, line

    def read(size_rows: int) -> Iterator[Chunk]:
        start = 0
        rows = numbered()
        while True:
            batch = list(itertools.islice(rows, size_rows))
            if not batch:
                return
            numbers, records, consumed = [], [], 0
            for number, line in batch:
                if isinstance(line, str):
                    consumed += len(line)
                    if not line.strip():
                        continue
                    record = _json_record(line, f"{name} line {number}")
                else:
                    record = line
                if record.keys() != keys:
                    absent = [k for k in fields if k not in record]
                    extra = [k for k in record if k not in keys]
                    what = (f"no {', '.join(absent)}" if absent else f"unexpected {', '.join(extra)}")
                    raise PointError(f"{name} line {number}: {what} (the first record has {', '.join(fields)})")
                numbers.append(number)
                records.append(record)
            if not records:
                continue
            columns = {v: np.array([_number(r[v], v, f"{name} line {n}") for n, r in zip(numbers, records)],
                       dtype=np.float64) for v in variables}

            def extra_values(records=records) -> dict[str, list]:
                return {e: [r[e] for r in records] for e in extras}

            yield Chunk(start, len(records), columns, line_numbers=np.asarray(numbers), first_line=numbers[0],
                        extra_values=extra_values if extras else None, consumed=consumed)
            start += len(records)

    return PointSource(name, "jsonl", fields, variables, read, total_bytes=size,
                       close=text.close if name != "stdin" else lambda: None)


def _json_record(line: str, where: str) -> dict:
    try:
        record = orjson.loads(line)  # ~4x json.loads; strict JSON (NaN and Infinity are not JSON)
    except ValueError as exc:  # orjson.JSONDecodeError is json's, with .msg
        try:  # Python's json reads NaN and Infinity, so a variable there gets "not a finite number"
            record = json.loads(line)
        except ValueError:
            raise PointError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise PointError(f"{where}: expected a JSON object like {{\"x\": 1, \"y\": 2}}")
    return record


def _structured_columns(name: str, names: Sequence[str], variables: list[str],
                        column: Callable[[str], np.ndarray], size: int, close: Callable[[], None],
                        kind: str) -> PointSource:
    missing = [v for v in variables if v not in names]
    if missing:
        raise PointError(_missing_message(name, missing, list(names), "column"))
    for v in variables:
        if column(v).dtype.kind not in "iuf":
            raise PointError(f"{name}: column {v} holds {column(v).dtype}, not numbers")
    extras = [n for n in names if n not in variables]

    def read(size_rows: int) -> Iterator[Chunk]:
        for start in range(0, size, size_rows):
            stop = min(size, start + size_rows)
            # a contiguous float64 copy: a structured array's field is strided (torch.from_numpy needs
            # strides in whole elements) and a memory map is read-only
            columns = {v: np.array(column(v)[start:stop], dtype=np.float64, order="C") for v in variables}
            for v, values in columns.items():
                finite = np.isfinite(values)
                if not finite.all():
                    i = int(np.flatnonzero(~finite)[0])
                    raise PointError(f"{name} row {start + i + 1}: {v} = {float(values[i])!r} is not a finite number")

            def extra_values(start=start, stop=stop) -> dict[str, list]:
                return {e: np.asarray(column(e)[start:stop]).tolist() for e in extras}

            yield Chunk(start, stop - start, columns, extra_values=extra_values if extras else None)

    return PointSource(name, kind, list(names), variables, read, total_rows=size, close=close)


def array_source(columns: dict[str, np.ndarray], variables: Sequence[str], name: str = "arrays") -> PointSource:
    """Points already in memory, for library callers: one 1-D array per column, all of one length (columns that
    are not variables are carried through as extras, as a file's are)."""
    arrays = {key: np.asarray(values) for key, values in columns.items()}
    shapes = {values.shape for values in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise PointError(f"{name}: the columns must be 1-D arrays of one length (got shapes "
                         f"{', '.join(f'{key} {values.shape}' for key, values in arrays.items())})")
    size = next(iter(shapes))[0]
    return _structured_columns(name, list(arrays), list(variables), arrays.__getitem__, size, lambda: None, "arrays")


def _npy_source(stream: BinaryIO, name: str, variables: list[str]) -> PointSource:
    try:
        if isinstance(stream, io.BufferedReader) and hasattr(stream, "fileno") and name != "stdin":
            array = np.load(stream.name, mmap_mode="r", allow_pickle=False)  # pages in as chunks are read
            stream.close()
        else:
            array = np.load(io.BytesIO(stream.read()), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PointError(f"{name}: not a readable .npy file ({exc})") from None
    if array.dtype.names is None or array.ndim != 1:
        raise PointError(f"{name}: a .npy points file must be a 1-D structured array with named fields "
                         f"(got shape {array.shape}, dtype {array.dtype})")
    return _structured_columns(name, array.dtype.names, variables, lambda f: array[f], array.shape[0],
                               lambda: None, "npy")


def _npz_source(stream: BinaryIO, name: str, variables: list[str]) -> PointSource:
    try:
        archive = np.load(stream if name != "stdin" else io.BytesIO(stream.read()), allow_pickle=False)
        keys = list(archive.files)
    except (ValueError, OSError, EOFError) as exc:
        raise PointError(f"{name}: not a readable .npz file ({exc})") from None
    cache: dict[str, np.ndarray] = {}

    def column(key: str) -> np.ndarray:
        if key not in cache:
            cache[key] = archive[key]
        return cache[key]

    if len(keys) == 1 and column(keys[0]).dtype.names:  # one structured array inside
        array = column(keys[0])
        return _structured_columns(name, array.dtype.names, variables, lambda f: array[f], array.shape[0],
                                   archive.close, "npz")
    keys, column = _element_columns(keys, column)
    sizes = {k: column(k).shape for k in keys}
    bad = [k for k, shape in sizes.items() if len(shape) != 1]
    if bad:
        raise PointError(f"{name}: array {bad[0]!r} has shape {sizes[bad[0]]}; each named column must be 1-D, or "
                         "points × a vector or matrix")
    if len({shape[0] for shape in sizes.values()}) > 1:
        listed = ", ".join(f"{k}: {shape[0]}" for k, shape in sizes.items())
        raise PointError(f"{name}: the columns have different lengths ({listed})")
    size = next(iter(sizes.values()))[0] if sizes else 0
    return _structured_columns(name, keys, variables, column, size, archive.close, "npz")


def _element_columns(keys: list[str], column):
    """An array of points × a vector (N, k) or × a matrix (N, m, n) is the columns x[0]... or W[0,0]...
    (0-based, as in PyTorch), one per element; 1-D arrays stay one column."""
    elements: dict[str, tuple[str, tuple[int, ...]]] = {}
    names = []
    for key in keys:
        shape = column(key).shape
        if len(shape) in (2, 3):
            for index in np.ndindex(*shape[1:]):
                element = f"{key}[{','.join(map(str, index))}]"
                elements[element] = (key, index)
                names.append(element)
        else:
            names.append(key)

    def element_column(name: str) -> np.ndarray:
        if name in elements:
            key, index = elements[name]
            return column(key)[(slice(None), *index)]
        return column(name)

    return names, element_column


def npz_column_names(path: str) -> list[str]:
    """The columns of an .npz points file, element columns included (x[0], W[0,1]); [] where it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            shapes = {key: archive[key].shape for key in keys}
    except (OSError, ValueError, EOFError):
        return []
    names, _ = _element_columns(keys, lambda key: np.empty((0, *shapes[key][1:]), dtype=np.uint8))
    return names


# ---------------------------------------------------------------------------------------------------- grids


def parse_grid(spec: str) -> list[tuple[str, np.ndarray]]:
    """`x=-1:1:101,y=0:2:51` → [(name, values)]; `start:stop:count` (count ≥ 1), or one value `x=pi/4`."""
    from pdiff.parse import parse_number
    from pdiff.parse import split_top_level

    axes: list[tuple[str, np.ndarray]] = []
    for part in split_top_level(spec):
        if not part.strip():
            continue
        name, eq, rest = part.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier() or not rest.strip():
            raise PointError(f"cannot read {part.strip()!r} in --grid: write it like x=-1:1:101,y=0:2:51")
        if any(name == seen for seen, _ in axes):
            raise PointError(f"variable {name!r} given twice in --grid")
        pieces = rest.split(":")
        if len(pieces) not in (1, 3):
            raise PointError(f"--grid {name}={rest.strip()}: write start:stop:count, e.g. {name}=-1:1:101")
        ends = []
        for text in pieces[:2]:
            try:
                value = parse_number(text)
                number = float(value.evalf(17))
            except (InputError, TypeError, ValueError) as exc:
                raise PointError(f"--grid {name}={rest.strip()}: {exc}") from None
            if not math.isfinite(number):
                raise PointError(f"--grid {name}: {text.strip()} is not a finite real number")
            ends.append(number)
        if len(pieces) == 1:
            axes.append((name, np.array(ends[:1])))
            continue
        count = pieces[2].strip()
        if not count.isdigit() or int(count) < 1:
            raise PointError(f"--grid {name}: the count {count!r} must be a whole number ≥ 1")
        axes.append((name, np.linspace(ends[0], ends[1], int(count))))
    if not axes:
        raise PointError(f"--grid {spec!r} names no variable")
    return axes


def grid_source(spec: str, variables: Sequence[str]) -> PointSource:
    """The Cartesian product of the axes, the first named varying slowest; generated chunk by chunk."""
    variables = list(variables)
    axes = parse_grid(spec)
    names = [name for name, _ in axes]
    missing = [v for v in variables if v not in names]
    if missing:
        raise PointError(f"--grid gives no values for {', '.join(missing)}")
    unknown = [n for n in names if n not in variables]
    if unknown:
        listed = ", ".join(variables) or "none"
        raise PointError(f"--grid names {', '.join(unknown)}, which is not a variable here (variables: {listed})")
    shape = tuple(len(values) for _, values in axes)
    total = math.prod(shape)

    def read(size_rows: int) -> Iterator[Chunk]:
        for start in range(0, total, size_rows):
            flat = np.arange(start, min(total, start + size_rows), dtype=np.int64)
            indices = np.unravel_index(flat, shape)
            yield Chunk(start, len(flat), {name: values[index] for (name, values), index in zip(axes, indices)})

    return PointSource("--grid", "grid", names, variables, read, total_rows=total)
