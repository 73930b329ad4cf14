"""pdiff's many-point engine over a Dask DataFrame: one plan made on the client, shipped to every worker.

    import dask.dataframe as dd
    import pdiff.dask

    frame = dd.read_parquet("points/")                        # columns x, y, ... (any Dask cluster, or none)
    result = pdiff.dask.derivatives(frame, "x^2 sin(y) + y^3 cos(x)", ["d2f/dxdy"])   # lazy, map_partitions
    table, summary = pdiff.dask.compute(result)               # one pass: the rows and the summary reduced
    summary = pdiff.dask.to_parquet(result, "results/")       # or written by the workers, part.N.parquet

`result` is a dask.dataframe.DataFrame: the input's columns and index, then the computed columns of the CSV
contract (pdiff.arrow.output_types: float64, `critical` boolean, `classification` and `status` strings). Each
partition runs `StreamPlan.run` on its rows, in chunks, exactly as one machine streams a file, so every value is
the one `pdiff diff --points` gives for that row. The plan (the SymPy derivatives, computed once in the bounded
worker on the client) pickles with its lowered programs; the traced replays, which do not pickle, are rebuilt once
per worker process. Each partition keeps its own summary (max differences, non-finite counts, kinks: the budget of
MAX_KINK_POINTS examined points is per partition) and `compute`, `summary` and `to_parquet` reduce them in
partition order; where a value is found is written `partition N row M` (M within the partition, 1-based).

This module is `pdiff.dask`; `import dask` inside it is the Dask package (absolute imports, Python 3).
"""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Sequence
from typing import ClassVar

import cloudpickle
import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pdiff import arrow, bounds, stream
from pdiff.errors import InputError, PointError

SUMMARY = "pdiff.summary"  # a computed partition's attrs key: that partition's StreamSummary


# ---------------------------------------------------------------------------------------------------- plans


class ShippedPlan:
    """A StreamPlan as it travels to the workers: pickled with its lowered programs (cloudpickle), its traced
    replays rebuilt on arrival, once per process (a cache keyed by a token made when the plan was shipped)."""

    _arrived: ClassVar[dict[str, stream.StreamPlan]] = {}

    def __init__(self, plan: stream.StreamPlan, token: str | None = None):
        self.plan, self.token = plan, token or uuid.uuid4().hex

    def __dask_tokenize__(self) -> str:
        return self.token

    def __reduce__(self):
        state = {k: v for k, v in vars(self.plan).items() if k not in ("traced", "exact_traced", "_pool")}
        return _arrive, (self.token, cloudpickle.dumps(state))

    def for_task(self) -> stream.StreamPlan:
        """A copy of the plan for one partition: its own summary and kink budget (the programs are shared)."""
        plan = copy.copy(self.plan)
        base = self.plan.summary
        plan.summary = copy.copy(base)
        plan.summary.targets = [stream.TargetSummary(t.target, derivative=t.derivative, exact=t.exact, note=t.note)
                                for t in base.targets]
        plan.kinks_left = stream.MAX_KINK_POINTS
        plan._pool = None
        return plan


def _arrive(token: str, blob: bytes) -> ShippedPlan:
    plan = ShippedPlan._arrived.get(token)
    if plan is None:
        from pdiff.autodiff import trace_partials

        plan = stream.StreamPlan.__new__(stream.StreamPlan)
        vars(plan).update(cloudpickle.loads(blob))
        # what StreamPlan.__init__ traces, traced again from the same programs: the same replays, bit for bit
        plan._pool = None
        plan.traced = [None if getattr(plan, "taylor", False)  # Taylor-mode plans replay no recording
                       else trace_partials(p, plan.needed, plan.wrts, plan.dtype, plan.device) for p in plan.programs]
        plan.shared = [[] for _ in plan.components]
        plan.exact_traced = [None if p is None else trace_partials(p, plan.needed, [()], plan.exact_dtype, plan.device)
                             for p in plan.exact_programs]
        if plan.exact_dtype == plan.dtype:
            plan._share_replays()
        ShippedPlan._arrived[token] = plan
    return ShippedPlan(plan, token)


def frame_columns(frame) -> list[str]:
    """A frame's columns as points name them: a pyarrow fixed-size list column x (pd.ArrowDtype) is x[0]...."""
    names = []
    for name, kind in frame.dtypes.items():
        pyarrow_type = getattr(kind, "pyarrow_dtype", None)
        if pyarrow_type is not None:
            names += arrow.schema_columns(pa.schema([pa.field(str(name), pyarrow_type)]))
        else:
            names.append(str(name))
    return names


def make_plan(command: str, frame, expression: str, partials: Sequence[str] = (), *, wrt=None, var=(),
              dtype: str = "float64", device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT,
              symbolic_side: bool = True, latex: bool | None = None) -> stream.StreamPlan:
    """The plan `pdiff diff|grad|hessian|jacobian --points` would make for a file with the frame's columns."""
    from pdiff.tensor import stream as tensor_stream
    from pdiff.tensor.language import is_tensor_question

    columns = frame_columns(frame)
    var = [var] if isinstance(var, str) else list(var)
    if any("[" in c for c in columns) or is_tensor_question(expression, (), var):
        return tensor_stream.plan(command, expression, partials, wrt=wrt, var=var, columns=columns, dtype=dtype,
                                  device=device, timeout=timeout, symbolic_side=symbolic_side)
    names = [*(c for c in columns if c.isidentifier()), *(n.strip() for v in var for n in v.split(","))]
    if command == "diff":
        return stream.plan_diff(expression, partials, wrt=wrt, dtype=dtype, device=device, timeout=timeout,
                                symbolic_side=symbolic_side, names=names, latex=latex)
    return stream.plan_matrix(command, expression, wrt=wrt, dtype=dtype, device=device, timeout=timeout,
                              symbolic_side=symbolic_side, names=names, latex=latex)


# ---------------------------------------------------------------------------------------------------- partitions


def _computed_frame(plan, arrays: list[list[pa.Array]], index) -> pd.DataFrame:
    """The computed columns of one partition as pandas, the same dtypes whatever the rows (meta included)."""
    types = arrow.output_types(plan)
    table = pa.table({name: pa.chunked_array(arrays[i], kind) for i, (name, kind) in enumerate(types)})
    mapping = {pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}
    computed = table.to_pandas(types_mapper=mapping.get)
    computed.index = index
    return computed


def _partition(frame: pd.DataFrame, shipped: ShippedPlan, fields: list[str], chunk_size: int | None,
               partition_info=None) -> pd.DataFrame:
    """One partition: its rows streamed by the plan; the input's columns, then the computed ones."""
    plan = shipped.for_task()
    name = f"partition {partition_info['number']}" if partition_info else "the frame"  # (dask's meta: the frame)
    # numpy columns as they are (a NaN is a NaN, not a finite number, as in a file); others (object, pandas'
    # nullable and pyarrow dtypes) with their missing values as nulls
    table = pa.table({field: pa.array(frame[field].to_numpy(), from_pandas=False)
                      if isinstance(frame[field].dtype, np.dtype) and frame[field].dtype.kind in "iuf"
                      else pa.array(frame[field], from_pandas=True) for field in fields})
    source = arrow.table_source(table, plan.needed, name)
    arrays: list[list[pa.Array]] = [[] for _ in arrow.output_types(plan)]
    for values in plan.run(source, chunk_size):
        for column, array in zip(arrays, arrow.computed_arrays(plan, values)):
            column.append(array)
    computed = _computed_frame(plan, arrays, frame.index)
    result = pd.concat([frame, computed], axis=1) if len(frame.columns) else computed
    result.attrs = {SUMMARY: plan.summary}
    return result


def apply(frame, plan: stream.StreamPlan, chunk_size: int | None = None):
    """Any StreamPlan over a Dask DataFrame's partitions (map_partitions, the plan shipped once)."""
    from pdiff.sources import _missing_message

    if not isinstance(frame, dd.DataFrame):
        raise InputError(f"pdiff.dask takes a dask.dataframe.DataFrame, not {type(frame).__name__}")
    meta = frame._meta
    schema = pa.Schema.from_pandas(meta, preserve_index=False)
    layout = arrow._layout(schema)
    missing = [v for v in plan.needed if v not in layout]
    if missing:
        raise PointError(_missing_message("the frame", missing, list(layout), "column"))
    clash = sorted(set(map(str, meta.columns)) & {name for name, _ in arrow.output_types(plan)})
    if clash:
        raise InputError(f"the frame already has a column {clash[0]!r}, which the results would repeat")
    fields = sorted({layout[v].field for v in plan.needed}, key=list(schema.names).index)
    shipped = ShippedPlan(plan)
    empty = _partition(meta, shipped, fields, chunk_size)
    empty.attrs = {}
    return frame.map_partitions(_partition, shipped, fields, chunk_size, meta=empty)


def _matrix(command: str, frame, expression: str, **options):
    chunk_size = options.pop("chunk_size", None)
    return apply(frame, make_plan(command, frame, expression, **options), chunk_size)


def derivatives(frame, expression: str, partials: Sequence[str] = (), *, wrt=None, dtype: str = "float64",
                device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT, symbolic_side: bool = True,
                latex: bool | None = None, var=(), chunk_size: int | None = None):
    """`pdiff diff EXPRESSION PARTIALS --points` over a Dask DataFrame: a lazy DataFrame with the input's columns
    and LABEL, LABEL:exact, LABEL:abs_diff, LABEL:rel_diff per partial (as the CSV columns, float64)."""
    plan = make_plan("diff", frame, expression, partials, wrt=wrt, var=var, dtype=dtype, device=device,
                     timeout=timeout, symbolic_side=symbolic_side, latex=latex)
    return apply(frame, plan, chunk_size)


def grad(frame, expression: str, **options):
    """`pdiff grad --points` over a Dask DataFrame (options as for derivatives, without partials)."""
    return _matrix("gradient", frame, expression, **options)


def hessian(frame, expression: str, **options):
    """`pdiff hessian --points` over a Dask DataFrame: entries, eigenvalues, determinant, critical, ..."""
    return _matrix("hessian", frame, expression, **options)


def jacobian(frame, expression: str, **options):
    """`pdiff jacobian --points` over a Dask DataFrame."""
    return _matrix("jacobian", frame, expression, **options)


# ---------------------------------------------------------------------------------------------------- summaries


def _summary_of(part: pd.DataFrame):
    found = part.attrs.get(SUMMARY)
    if found is None:
        raise InputError("this frame carries no pdiff summary: pass the frame pdiff.dask.derivatives (or grad, "
                         "hessian, jacobian) returned")
    return found


def reduce_summaries(parts: Sequence[stream.StreamSummary]) -> stream.StreamSummary:
    """Partitions' summaries, in partition order, as one: counts added, the largest differences kept with where
    they are, the first of each problem from the earliest partition that has one."""
    if not parts:
        raise InputError("no partitions to summarise")
    total = copy.copy(parts[0])
    total.targets = []
    for t, first in enumerate(parts[0].targets):
        mine = [part.targets[t] for part in parts]
        merged = stream.TargetSummary(first.target, derivative=next((m.derivative for m in mine if m.derivative),
                                                                    None), exact=all(m.exact for m in mine))
        for count in ("points", "non_finite", "disagree", "not_differentiable", "kink_unexamined"):
            setattr(merged, count, sum(getattr(m, count) for m in mine))
        for kind in ("abs", "rel"):
            for m in mine:  # strictly larger: the earliest partition keeps a tie, as one stream keeps its first
                if getattr(m, f"max_{kind}_diff") > getattr(merged, f"max_{kind}_diff"):
                    setattr(merged, f"max_{kind}_diff", getattr(m, f"max_{kind}_diff"))
                    setattr(merged, f"max_{kind}_at", getattr(m, f"max_{kind}_at"))
        for where in ("first_non_finite", "first_disagree", "first_not_differentiable", "first_kink_unexamined",
                      "note"):
            setattr(merged, where, next((getattr(m, where) for m in mine if getattr(m, where)), None))
        total.targets.append(merged)
    total.points = sum(part.points for part in parts)
    total.seconds = sum(part.seconds for part in parts)
    total.finished = all(part.finished for part in parts)
    return total


def summary(result, **options) -> stream.StreamSummary:
    """The run's summary, reduced across partitions (every partition is computed; only summaries come back).
    `options` go to dask.compute (scheduler=...)."""
    return reduce_summaries(dask.compute(*[dask.delayed(_summary_of)(p) for p in result.to_delayed()], **options))


def compute(result, **options) -> tuple[pd.DataFrame, stream.StreamSummary]:
    """One pass: the rows as one pandas DataFrame, and the summary reduced across partitions."""
    parts = dask.compute(*result.to_delayed(), **options)
    found = reduce_summaries([_summary_of(part) for part in parts])
    table = pd.concat(parts) if len(parts) > 1 else parts[0].copy()
    table.attrs = {}
    return table, found


def _write_part(part: pd.DataFrame, path: str, number: int):
    """A worker writes its partition as PATH/part.N.parquet (under a temporary name, renamed: a retried task
    leaves no half file) and returns the partition's summary."""
    found = _summary_of(part)
    part = part.copy(deep=False)
    part.attrs = {}  # the summary goes back to the client, not into the file's metadata
    target = os.path.join(path, f"part.{number}.parquet")
    temporary = os.path.join(path, f".part.{number}.{uuid.uuid4().hex}.parquet")
    pq.write_table(pa.Table.from_pandas(part, preserve_index=None), temporary)
    os.replace(temporary, target)
    return found


def to_parquet(result, path: str, **options) -> stream.StreamSummary:
    """One pass: each partition written by its worker as PATH/part.N.parquet (a dataset pyarrow, dask and
    `--points PATH` read), the summary reduced and returned. PATH must be reachable by every worker."""
    os.makedirs(path, exist_ok=True)
    tasks = [dask.delayed(_write_part)(p, path, i) for i, p in enumerate(result.to_delayed())]
    return reduce_summaries(dask.compute(*tasks, **options))


def run_cli(plan: stream.StreamPlan, points: str, output: str, address: str, chunk_size: int | None):
    """`--dask SCHEDULER --points DATA --output DIR`: the plan over the Parquet dataset, on that cluster."""
    from distributed import Client

    if not (os.path.isdir(points) or arrow.writer_kind(points) == "parquet"):
        raise InputError("--dask reads Parquet: --points a .parquet file or a directory of them")
    if os.path.splitext(output)[1].lower() not in ("", ".parquet"):
        raise InputError("--dask writes a Parquet dataset: --output a directory (part.N.parquet files in it)")
    try:
        client = Client(address, timeout=10, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
    try:
        frame = dd.read_parquet(points, dtype_backend="pyarrow")
        return to_parquet(apply(frame, plan, chunk_size), output, scheduler=client)
    finally:
        client.close()
