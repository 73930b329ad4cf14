"""Parquet, Feather and Arrow IPC through pyarrow (imported only here): points in, results out, typed.

In: `--points data.parquet` is read one batch of rows at a time (`ParquetFile.iter_batches`, at most
--chunk-size rows, never more than a row group), `.feather`/`.arrow` one record batch at a time from a memory
map, and a directory as the Parquet files in it (a dataset, in natural order: part.2 before part.10), so memory
stays flat. Integer and floating columns are read as float64 without a text round trip; a column of fixed-size
lists of length k is the element columns x[0]..x[k-1], and of fixed-size lists of them (or an
`arrow.fixed_shape_tensor` of rank 2) W[0,0]..., 0-based, as an .npz array of points × a vector or matrix is.
Errors are those of a CSV with `row N` for `line N`: a missing column, a cell that is not a number (a string,
a bool, a null) or not finite.

Out: `--output FILE.parquet|.feather|.arrow`: the input's columns as they were read (from a CSV, its numbers as
float64 and the rest as strings; element columns x[0].. as one fixed-size list column x), then the computed
columns of the CSV contract as float64 in full precision (abs_diff and rel_diff too), `critical` as bool and
`classification`, `status` as strings; null where the CSV cell is empty. pdiff.dask builds on the same columns.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from pdiff.errors import InputError, PointError
from pdiff.sources import Chunk, PointSource, _missing_message

PARQUET_MAGIC = b"PAR1"
ARROW_MAGIC = b"ARROW1"
EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".feather": "ipc", ".arrow": "ipc", ".ipc": "ipc"}
_ELEMENT = re.compile(r"(.+)\[([0-9]+)(?:,([0-9]+))?\]")


# ---------------------------------------------------------------------------------------------------- layout


class _Element:
    """Where a column of points lives in a batch: a top-level field, and an index into its fixed-size lists."""

    __slots__ = ("dims", "field", "index")

    def __init__(self, field: str, index: tuple[int, ...] = (), dims: tuple[int, ...] = ()):
        self.field, self.index, self.dims = field, index, dims


def _dims(kind: pa.DataType) -> tuple[tuple[int, ...], pa.DataType] | None:
    """A fixed-size list (of fixed-size lists), or a fixed_shape_tensor of rank 1 or 2: its shape and leaf type."""
    if isinstance(kind, pa.ExtensionType):
        shape = getattr(kind, "shape", None)
        permutation = getattr(kind, "permutation", None)
        if shape is None or len(shape) not in (1, 2) or (permutation and list(permutation) != sorted(permutation)):
            return None
        return tuple(shape), kind.storage_type.value_type
    dims = []
    while pa.types.is_fixed_size_list(kind) and len(dims) < 2:
        dims.append(kind.list_size)
        kind = kind.value_type
    if not dims or pa.types.is_fixed_size_list(kind):
        return None
    return tuple(dims), kind


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _layout(schema: pa.Schema) -> dict[str, _Element]:
    """Column name → where it is: numeric fixed-size lists become their element columns, x[0] or W[0,1]."""
    layout: dict[str, _Element] = {}
    for field in schema:
        shaped = _dims(field.type)
        if shaped is not None and _numeric(shaped[1]):
            dims = shaped[0]
            for index in np.ndindex(*dims):
                layout[f"{field.name}[{','.join(map(str, index))}]"] = _Element(field.name, index, dims)
        else:
            layout[field.name] = _Element(field.name)
    return layout


def _spelt(value) -> str:
    """A cell as the CSV and JSONL errors spell it: 'abc' (a string, as a CSV cell), true, null."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _leaf(array: pa.Array) -> pa.Array:
    """The numbers of a (nested) fixed-size list column, row-major; the storage of an extension array."""
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    while pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    return array


def _first_null(array: pa.Array, dims: tuple[int, ...]) -> int | None:
    """The first row with a null: the list itself or any of its elements."""
    if array.null_count:
        return int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
    if dims:
        leaf = _leaf(array)
        if leaf.null_count:
            return int(np.flatnonzero(leaf.is_null().to_numpy(zero_copy_only=False))[0]) // int(np.prod(dims))
    return None


class _BatchReader:
    """A record batch → a Chunk of the needed variables as float64 columns (checked as a CSV's are)."""

    def __init__(self, name: str, schema: pa.Schema, variables: Sequence[str]):
        self.name = name
        self.layout = _layout(schema)
        self.fields = list(self.layout)
        self.variables = list(variables)
        missing = [v for v in self.variables if v not in self.layout]
        if missing:
            raise PointError(_missing_message(name, missing, self.fields, "column"))
        self.types = {field.name: field.type for field in schema}

    def check_types(self, batch_of_first_rows) -> None:
        """A variable whose column does not hold numbers: the first row's cell named, as a CSV's would be."""
        for v in self.variables:
            element = self.layout[v]
            kind = self.types[element.field]
            if element.dims:  # an element column exists only for numbers
                continue
            if _numeric(kind):
                continue
            first = batch_of_first_rows()
            if first is None or not first.num_rows:
                raise PointError(f"{self.name}: column {v} holds {kind}, not numbers")
            cell = first.column(element.field)[0].as_py()
            raise PointError(f"{self.name} row 1: {v} = {_spelt(cell)} is not a number (column {element.field} "
                             f"holds {kind})")

    def chunk(self, batch: pa.RecordBatch, start: int) -> Chunk:
        n = batch.num_rows
        columns: dict[str, np.ndarray] = {}
        shaped: dict[str, np.ndarray] = {}
        for v in self.variables:
            element = self.layout[v]
            if element.field not in shaped:
                array = batch.column(element.field)
                null = _first_null(array, element.dims)
                if null is not None:
                    raise PointError(f"{self.name} row {start + null + 1}: {v} = null is not a number")
                values = _leaf(array).to_numpy(zero_copy_only=False)
                shaped[element.field] = values.reshape(n, *element.dims) if element.dims else values
            values = shaped[element.field][(slice(None), *element.index)]
            column = np.array(values, dtype=np.float64, order="C")  # a copy: batches may be memory-mapped
            finite = np.isfinite(column)
            if not finite.all():
                i = int(np.flatnonzero(~finite)[0])
                raise PointError(f"{self.name} row {start + i + 1}: {v} = {float(column[i])!r} is not a finite number")
            columns[v] = column
        extras = [f for f in self.fields if f not in self.variables]

        def extra_values() -> dict[str, list]:
            found = {}
            for name in extras:
                element = self.layout[name]
                array = batch.column(element.field)
                if element.dims:
                    values = _leaf(array).to_numpy(zero_copy_only=False).reshape(n, *element.dims)
                    found[name] = values[(slice(None), *element.index)].tolist()
                else:
                    found[name] = array.to_pylist()
            return found

        return Chunk(start, n, columns, extra_values=extra_values if extras else None, arrow=batch)


def _pieces(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Batches of at most `size` rows (zero-copy slices of larger ones), empty ones skipped."""
    for batch in batches:
        for offset in range(0, batch.num_rows, size):
            yield batch.slice(offset, size)


def _source(name: str, kind: str, schema: pa.Schema, variables: Sequence[str], batches, first,
            total_rows: int | None, close=lambda: None) -> PointSource:
    """`batches(size)` yields record batches; `first()` the first one (for the message about a column's type)."""
    reader = _BatchReader(name, schema, variables)
    reader.check_types(first)

    def read(size: int) -> Iterator[Chunk]:
        start = 0
        for batch in _pieces(batches(size), size):
            chunk = reader.chunk(batch, start)
            start += batch.num_rows
            yield chunk

    return PointSource(name, kind, reader.fields, list(variables), read, total_rows=total_rows, close=close)


# ---------------------------------------------------------------------------------------------------- sources


def _natural(path: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", path)]


def dataset_files(directory: str) -> list[str]:
    """The Parquet files of a dataset directory (dask's part.0.parquet ...), in natural order; _metadata and
    hidden files skipped, as pyarrow and dask skip them."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        found += [os.path.join(root, f) for f in files if not f.startswith(("_", ".")) and f.endswith(".parquet")]
    return sorted(found, key=_natural)


def _parquet_file(handle, name: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(handle)
    except (pa.ArrowException, OSError) as exc:
        raise PointError(f"{name}: not a readable Parquet file ({exc})") from None


def parquet_source(paths: list, name: str, variables: Sequence[str]) -> PointSource:
    """One Parquet file, or a dataset's files one after another (their schemas must agree)."""
    if not paths:
        raise PointError(f"{name}: no .parquet files in the directory")
    files = [_parquet_file(path, name) for path in paths]
    schema = files[0].schema_arrow
    for path, file in zip(paths, files):
        if not file.schema_arrow.remove_metadata().equals(schema.remove_metadata()):
            raise PointError(f"{name}: {os.path.basename(str(path))} has other columns than "
                             f"{os.path.basename(str(paths[0]))} ({file.schema_arrow.names} against {schema.names})")
    needed = sorted({_BatchReader(name, schema, variables).layout[v].field for v in variables}
                    | set(schema.names), key=schema.names.index)

    def batches(size: int) -> Iterator[pa.RecordBatch]:
        # one row group at a time: iter_batches over a whole file keeps every row group it has read until the
        # end (pyarrow 26: 171 MB held at the end of 10^7 rows of x, y; 23 MB at most this way)
        for file in files:
            for group in range(file.num_row_groups):
                yield from file.iter_batches(batch_size=size, columns=needed, row_groups=[group])

    def first() -> pa.RecordBatch | None:
        return next(batches(1), None)

    def close() -> None:
        for file in files:
            file.close()

    return _source(name, "parquet", schema, variables, batches, first,
                   sum(file.metadata.num_rows for file in files), close)


def ipc_source(handle, name: str, variables: Sequence[str]) -> PointSource:
    """Feather (v2) / Arrow IPC: the file format (random access to record batches), else the stream format."""
    try:
        reader = ipc.open_file(handle)
        schema, count = reader.schema, reader.num_record_batches
        batches = [lambda i=i: reader.get_batch(i) for i in range(count)]
        total = None
    except pa.ArrowInvalid:
        try:
            handle.seek(0)
            stream = ipc.open_stream(handle)
        except pa.ArrowInvalid:
            try:  # Feather v1 is not Arrow IPC: pyarrow reads it whole
                from pyarrow import feather

                handle.seek(0)
                table = feather.read_table(handle)
            except (pa.ArrowException, OSError, TypeError, ValueError) as exc:
                raise PointError(f"{name}: not a readable Feather or Arrow file ({exc})") from None
            schema, total = table.schema, table.num_rows
            batches = [lambda b=b: b for b in table.to_batches()]
        else:  # a stream is read once, in order
            schema, total = stream.schema, None
            batches = None

    def all_batches(size: int) -> Iterator[pa.RecordBatch]:
        if batches is not None:
            for get in batches:
                yield get()
        else:
            yield from stream

    def first() -> pa.RecordBatch | None:
        if batches is None:  # the stream's first batch cannot be read twice: no row named
            return None
        return next(all_batches(0), None)

    return _source(name, "ipc", schema, variables, all_batches, first, total,
                   handle.close if hasattr(handle, "close") else (lambda: None))


def open_path(spec: str, variables: Sequence[str]) -> PointSource:
    """`--points FILE.parquet|.feather|.arrow` or a directory of Parquet files."""
    name = os.path.basename(os.path.normpath(spec))
    if os.path.isdir(spec):
        return parquet_source(dataset_files(spec), name, variables)
    kind = EXTENSIONS.get(os.path.splitext(spec)[1].lower())
    try:
        with open(spec, "rb") as probe:
            head = probe.read(8)
    except OSError as exc:
        raise InputError(f"cannot read --points {spec}: {exc.strerror or exc}") from None
    if head.startswith(PARQUET_MAGIC) or kind == "parquet":
        return parquet_source([spec], name, variables)
    return ipc_source(pa.memory_map(spec, "r"), name, variables)


def open_bytes(data: bytes, name: str, variables: Sequence[str]) -> PointSource:
    """Parquet or Arrow IPC on stdin (sniffed by its magic bytes): read into memory, then batch by batch."""
    buffer = pa.BufferReader(pa.py_buffer(data))
    if data.startswith(PARQUET_MAGIC):
        return parquet_source([buffer], name, variables)
    return ipc_source(buffer, name, variables)


def table_source(table: pa.Table, variables: Sequence[str], name: str) -> PointSource:
    """Points already in an Arrow table (pdiff.dask's partitions), checked as a file's are."""
    return _source(name, "arrow", table.schema, variables, lambda size: iter(table.to_batches(size)),
                   lambda: next(iter(table.to_batches(1)), None), table.num_rows)


def schema_columns(schema: pa.Schema) -> list[str]:
    """The column names a schema gives to points, element columns included (x[0], W[0,1])."""
    return list(_layout(schema))


def column_names(spec: str) -> list[str]:
    """The columns of a Parquet/Feather/Arrow file or dataset directory, from its schema; [] where unreadable."""
    try:
        if os.path.isdir(spec):
            files = dataset_files(spec)
            return schema_columns(pq.read_schema(files[0])) if files else []
        with open(spec, "rb") as probe:
            head = probe.read(8)
        if head.startswith(PARQUET_MAGIC):
            return schema_columns(pq.read_schema(spec))
        with pa.memory_map(spec, "r") as handle:
            try:
                return schema_columns(ipc.open_file(handle).schema)
            except pa.ArrowInvalid:
                handle.seek(0)
                return schema_columns(ipc.open_stream(handle).schema)
    except (pa.ArrowException, OSError, IndexError):
        return []


# ---------------------------------------------------------------------------------------------------- output


def output_types(plan) -> list[tuple[str, pa.DataType]]:
    """The computed columns (the CSV contract's names and order) with their Arrow types."""
    from pdiff.render.stream import column_names as names_of

    kinds = {"critical": pa.bool_(), "classification": pa.string(), "status": pa.string()} if plan.layout else {}
    return [(name, kinds.get(name, pa.float64())) for name in names_of(plan)]


def _floats(values, mask=None) -> pa.Array:
    array = np.ascontiguousarray(values, dtype=np.float64)
    return pa.array(array, type=pa.float64(), mask=mask) if mask is not None and mask.any() else pa.array(array)


def computed_arrays(plan, values) -> list[pa.Array]:
    """One chunk's computed columns as Arrow arrays, in output_types order (float64 in full precision; null
    where the CSV cell is empty: no exact column, a Hessian's facts on a row with a non-finite entry)."""
    from pdiff.stream import ROW_STATUS

    n = len(values.chunk)
    nulls = pa.nulls(n, pa.float64())
    arrays: list[pa.Array] = []
    if not plan.layout:
        for t in range(len(plan.targets)):
            arrays.append(_floats(values.autograd[t]))
            if plan.symbolic_side:
                arrays += [nulls if a is None else _floats(a)
                           for a in (values.exact[t], values.abs_diff[t], values.rel_diff[t])]
        return arrays
    entries = plan.layout.entries
    arrays += [_floats(values.autograd[t]) for t in range(entries)]
    facts = values.facts
    if facts is not None:
        bad = ~facts["good"]
        numbers = ([facts["eigenvalues"][:, i] for i in range(facts["eigenvalues"].shape[1])]
                   if "eigenvalues" in facts else []) + [facts["determinant"]]
        arrays += [_floats(a, bad) for a in numbers]
        if "critical" in facts:
            arrays.append(pa.array(np.asarray(facts["critical"], dtype=bool), mask=bad if bad.any() else None))
            arrays.append(pa.array(np.asarray(facts["classification"], dtype=object),
                                   type=pa.string(), mask=bad if bad.any() else None))
    largest = values.max_abs
    arrays.append(_floats(largest, ~np.isfinite(largest)))
    arrays.append(pa.array(np.array(ROW_STATUS, dtype=object)[values.status], type=pa.string()))
    if plan.symbolic_side:
        for kind in (values.exact, values.abs_diff, values.rel_diff):
            arrays += [nulls if kind[t] is None else _floats(kind[t]) for t in range(entries)]
    return arrays


def _grouped(fields: list[str], columns: dict) -> dict[str, tuple[str, tuple[int, ...], list[str]]]:
    """Element columns x[0]..x[k-1] (or W[0,0]..W[m-1,n-1]) of float columns, complete → one fixed-size list x:
    first element's name → (x, shape, the elements in row-major order)."""
    found: dict[str, dict[tuple[int, ...], str]] = {}
    for name in fields:
        match = _ELEMENT.fullmatch(name)
        if match and name in columns and match.group(1) not in fields:
            index = tuple(int(i) for i in match.groups()[1:] if i is not None)
            found.setdefault(match.group(1), {})[index] = name
    groups = {}
    for base, elements in found.items():
        ranks = {len(index) for index in elements}
        if len(ranks) != 1:
            continue
        shape = tuple(max(index[d] for index in elements) + 1 for d in range(ranks.pop()))
        if len(elements) != int(np.prod(shape)):
            continue
        ordered = [elements[index] for index in np.ndindex(*shape)]
        groups[ordered[0]] = (base, shape, ordered)
    return groups


def _fixed_list(values: np.ndarray, shape: tuple[int, ...]) -> pa.Array:
    array = pa.array(values.reshape(-1), type=pa.float64())
    for size in reversed(shape):
        array = pa.FixedSizeListArray.from_arrays(array, size)
    return array


class ArrowFileWriter:
    """Results written as they finish: a Parquet row group or an IPC record batch per chunk."""

    def __init__(self, path: str, kind: str, plan, source):
        self.path, self.kind, self.plan, self.source = path, kind, plan, source
        self.types = output_types(plan)
        self.writer = None
        self.input_types: list[pa.DataType] | None = None

    def _input(self, chunk: Chunk) -> tuple[list[str], list[pa.Array]]:
        if chunk.arrow is not None:  # an Arrow input: its columns as they were read, types and all
            batch = chunk.arrow
            return list(batch.schema.names), list(batch.columns)
        fields = list(self.source.fields)
        groups = _grouped(fields, chunk.columns)
        grouped = {name for _, _, names in groups.values() for name in names}
        extras = chunk.extras()
        names, arrays = [], []
        for i, name in enumerate(fields):
            if name in groups:
                base, shape, elements = groups[name]
                stacked = np.stack([chunk.columns[e] for e in elements], axis=1)
                names.append(base)
                arrays.append(_fixed_list(stacked, shape))
            elif name in grouped:
                continue
            elif name in chunk.columns:
                names.append(name)
                arrays.append(_floats(chunk.columns[name]))
            else:
                names.append(name)
                kind = self.input_types[len(arrays)] if self.input_types else None
                arrays.append(self._extra(name, extras[name], kind))
        return names, arrays

    def _extra(self, name: str, values: list, kind: pa.DataType | None) -> pa.Array:
        if self.source.kind == "csv":  # a CSV's cells are text
            return pa.array(values, type=pa.string())
        try:
            return pa.array(values, type=kind if kind is not None and not pa.types.is_null(kind) else None)
        except (pa.ArrowException, TypeError, ValueError):
            raise InputError(f"--output: column {name} holds values of more than one type; a {self.kind} column "
                             f"has one") from None

    def write(self, values) -> None:
        names, arrays = self._input(values.chunk)
        if self.input_types is None:
            self.input_types = [a.type for a in arrays]
        elif any(pa.types.is_null(a.type) for a in arrays):
            arrays = [a.cast(t) if pa.types.is_null(a.type) else a for a, t in zip(arrays, self.input_types)]
        clash = sorted(set(names) & {name for name, _ in self.types})
        if clash:
            raise InputError(f"--output: the input already has a column {clash[0]!r}")
        batch = pa.RecordBatch.from_arrays(arrays + computed_arrays(self.plan, values),
                                           names=names + [name for name, _ in self.types])
        if self.writer is None:
            self.schema = batch.schema
            self.writer = (pq.ParquetWriter(self.path, self.schema) if self.kind == "parquet"
                           else ipc.new_file(self.path, self.schema))
        elif not batch.schema.equals(self.schema):
            try:
                batch = batch.cast(self.schema)
            except (pa.ArrowException, ValueError, TypeError):
                raise InputError(f"--output: the columns change type between chunks ({batch.schema} against "
                                 f"{self.schema})") from None
        if self.kind == "parquet":
            self.writer.write_batch(batch)
        else:
            self.writer.write_batch(batch)

    def close(self) -> None:
        """Finish the file; a run without rows still writes one (with the columns the output would have)."""
        if self.writer is None:
            fields = [pa.field(name, pa.float64() if name in self.source.variables else pa.string())
                      for name in self.source.fields]
            schema = pa.schema(fields + [pa.field(name, kind) for name, kind in self.types])
            self.writer = (pq.ParquetWriter(self.path, schema) if self.kind == "parquet"
                           else ipc.new_file(self.path, schema))
        self.writer.close()


def writer_kind(path: str) -> str | None:
    """parquet or ipc for an Arrow --output file; None for another extension."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())
