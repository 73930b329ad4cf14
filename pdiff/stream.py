"""The chunked engine for many points: autograd partials beside the symbolic derivative, lowered and vectorised.

For each chunk of a PointSource: the columns become tensors on the device → the partials by autograd
(pdiff.autodiff, all partials of a component sharing prefixes) → the "exact" column: the SymPy derivative
(computed once, in the bounded worker) lowered by pdiff.lower and evaluated without a graph, always in float64
→ per point |Δ| = |autograd − exact| and the relative difference |Δ| / max(|exact|, tiny) → a running summary.

Speed on CPU comes from cache blocking: a chunk is evaluated in blocks of BLOCK_ROWS rows so the many
intermediate tensors of a reverse pass stay in cache instead of streaming through memory (about 3x faster than
one pass over a million points), and results are written straight into the output arrays (`out=`). Both sides
are replayed per block from one recording made once (pdiff.autodiff.trace_partials: autograd's ops without autograd,
repeated subexpressions and multiplications by one dropped, buffers reused), so the sin, cos and exp that autograd's
formulas and the symbolic derivative both need are computed once; eager partials_at where that fails. The
symbolic derivative is lowered in its evaluation form (symbolic.evaluation_form: fewer operations, same values).
A chunk's outputs are one (4, targets, rows) tensor, so a block compares every target in five ops.
Blocks run on one thread per core side by side (torch ops release the GIL); PDIFF_CPU_WORKERS=N sets the number
(1 on a machine whose cores are busy with other work).
On a GPU the whole chunk is one block and the copy back of chunk k overlaps the reading of chunk k+1.

Entry points: `plan_diff(...)` for `pdiff diff`-style requests and `StreamPlan(...)` for any list of partials
(gradients, Hessians); then `plan.run(source)` yields ChunkValues and fills `plan.summary`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import numpy as np
import sympy as sp
import torch

from pdiff import bounds, symbolic
from pdiff.api import TOLERANCES  # (rtol, atol), the same agreement test as `pdiff diff --at`
from pdiff.autodiff import DeadlineExceeded, resolve_device, resolve_dtype, trace_partials
from pdiff.errors import ExitCode, InputError
from pdiff.lower import UnsupportedError, lower
from pdiff.sources import Chunk, PointSource
from pdiff.taylor import partials_by_engine

EVALUATION_FORM_SECONDS = 1.0  # for all of a plan's derivatives in fewer operations (a few ms each)
MAX_KINK_POINTS = 100  # points on a kink examined by one-sided limits (SymPy, ~10-100 ms each) per run
BLOCK_ROWS = 1 << 15  # CPU cache block: ~40 float64 temporaries of 256 KiB stay within L2/L3
CPU_CHUNK_ROWS = 1 << 16
GPU_CHUNK_ROWS = 1 << 21
OUTPUT_BYTES = 64 << 20  # a chunk's output arrays, at most about this (but at least one block)


MAX_CPU_WORKERS = 4  # a default chunk has 2 blocks; more threads only help with --chunk-size raised


def _cpu_workers() -> int:
    """Threads evaluating CPU blocks side by side: PDIFF_CPU_WORKERS, by default the cores this process may use
    (at most MAX_CPU_WORKERS). On 2 idle cores, 2 threads cut d2f/dxdy at 10^7 points from 0.157 to 0.119 s; with
    one core busy elsewhere they cost 11-15 % (0.160 to 0.180 s), so PDIFF_CPU_WORKERS=1 suits a shared machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        return max(1, int(os.environ.get("PDIFF_CPU_WORKERS", min(cores, MAX_CPU_WORKERS))))
    except ValueError:
        return 1


def default_chunk_size(device: str | torch.device, targets: int = 1, symbolic_side: bool = True) -> int:
    """Rows per chunk when --chunk-size is not given: small on CPU (memory stays flat), large on a GPU,
    and fewer rows when each row has many outputs (a Hessian of 10 variables has 100), so a chunk's output
    arrays stay near OUTPUT_BYTES."""
    rows = CPU_CHUNK_ROWS if torch.device(device).type == "cpu" else GPU_CHUNK_ROWS
    per_row = 8 * max(1, targets) * (4 if symbolic_side else 1)
    return max(BLOCK_ROWS, min(rows, OUTPUT_BYTES // per_row))


@dataclass(frozen=True)
class Target:
    """One requested quantity: a partial of one component; its label names the output columns."""

    label: str  # `d2f/dxdy`, or `d2f/dxdy[2]` for the second component of a vector
    partial: str  # as typed
    wrt: tuple[str, ...]  # application order
    component: int | None  # index into a vector expression, None for a scalar one


@dataclass
class TargetSummary:
    """The running account of one target over all points so far."""

    target: Target
    derivative: str | None = None  # the SymPy derivative as text (None: did not finish)
    exact: bool = False  # an exact column is being computed
    points: int = 0
    non_finite: int = 0  # autograd is inf or nan
    disagree: int = 0  # autograd is finite but the exact value is not, or they differ beyond the tolerance
    max_abs_diff: float = 0.0  # over points where both are finite
    max_abs_at: str | None = None
    max_rel_diff: float = 0.0
    max_rel_at: str | None = None
    first_non_finite: str | None = None
    first_disagree: str | None = None
    not_differentiable: int = 0  # on a kink where SymPy's one-sided limits differ (|x| at 0): written as nan
    first_not_differentiable: str | None = None
    kink_unexamined: int = 0  # on a kink but past the budget for one-sided limits: the values may not be derivatives
    first_kink_unexamined: str | None = None
    note: str | None = None  # why there is no exact column


@dataclass
class StreamSummary:
    """What a whole run found; `problems` has one line per thing that makes the exit status 1."""

    expression: str
    variables: tuple[str, ...]
    dtype: str
    device: str
    tolerance: tuple[float, float]  # (rtol, atol)
    targets: list[TargetSummary]
    points: int = 0
    seconds: float = 0.0
    finished: bool = False

    @property
    def problems(self) -> list[str]:
        lines = []
        for t in self.targets:
            label = t.target.label
            if t.note:
                lines.append(f"{label}: no exact column ({t.note})")
            if t.non_finite:
                lines.append(f"{label}: autograd is not finite at {t.non_finite} of {t.points} points "
                             f"(first at {t.first_non_finite})")
            if t.disagree:
                lines.append(f"{label}: autograd and the exact value disagree at {t.disagree} of {t.points} "
                             f"points (first at {t.first_disagree})")
            if t.not_differentiable:
                lines.append(f"{label}: no derivative at {t.not_differentiable} of {t.points} points, written as "
                             f"nan (first at {t.first_not_differentiable})")
            if t.kink_unexamined:
                lines.append(f"{label}: {t.kink_unexamined} points lie on a kink (|u| or sign(u) with u = 0, a "
                             f"Min/Max tie) and were not examined; the values there may not be derivatives "
                             f"(first at {t.first_kink_unexamined})")
        return lines

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.MATH if self.problems or not self.finished else ExitCode.OK


@dataclass
class ChunkValues:
    """One chunk's answers, as float64 NumPy arrays in target order (None where there is no exact column)."""

    chunk: Chunk
    autograd: list[np.ndarray]
    exact: list[np.ndarray | None]
    abs_diff: list[np.ndarray | None]
    rel_diff: list[np.ndarray | None]
    # matrix plans only (grad, hessian, jacobian): per row, like `--at` gives per point
    status: np.ndarray | None = None  # ROW_STATUS codes, the worst over the entries
    max_abs: np.ndarray | None = None  # max |autograd − exact| over the entries (nan where none is comparable)
    facts: dict | None = None  # eigenvalues (rows × n), determinant, critical, classification; None on bad rows


ROW_STATUS = ("ok", "disagree", "non-finite", "non-differentiable")  # codes 0-3, worse last (Status values)


@dataclass(frozen=True)
class MatrixLayout:
    """What makes a plan a gradient, Hessian or Jacobian: the first `entries` targets are the answer's entries,
    row-major; any after them are the gradient (a Hessian's criticality), computed but not shown."""

    command: str
    shape: tuple[int, ...]
    entries: int


def _symbolic_work(components: Sequence[sp.Expr], wrts: Sequence[tuple[str, ...]]):
    """The derivatives for the exact column: (component, partial, the form to lower, the derivative as text)."""
    budget_end = time.monotonic() + EVALUATION_FORM_SECONDS
    for c, component in enumerate(components):
        for p, wrt in enumerate(wrts):
            expr = symbolic.derivative(component, wrt)
            try:
                with bounds.alarm(budget_end - time.monotonic()):
                    form = symbolic.evaluation_form(expr)
            except Exception:  # noqa: BLE001  out of time, or a form SymPy will not rebuild: the same values as written
                form = expr
            yield c, p, form, symbolic.to_text(expr)


@dataclass
class _Pending:
    chunk: Chunk
    outputs: torch.Tensor  # (autograd, exact, |Δ|, rel) × target × row, on the device ((1, targets, rows) without
    # the symbolic side): one tensor, so each block compares every target in a few ops
    checks: list  # per block: (max |Δ|, max rel) per target, as two tensors; None without an exact column
    array: np.ndarray | None  # the CPU array behind `outputs`, for reuse by a later chunk


class StreamPlan:
    """Components and partials prepared once (programs lowered, derivatives computed), evaluated per chunk."""

    def __init__(self, components: Sequence[sp.Expr], partials: Sequence[tuple[str, tuple[str, ...]]], *,
                 variables: Sequence[str], is_vector: bool = False, expression: str = "",
                 dtype: str = "float64", device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT,
                 symbolic_side: bool = True, memory_mb: int = bounds.DEFAULT_MEMORY_MB, engine: str = "auto"):
        """`partials` is [(text as typed, wrt in application order)]; every component gets every partial.
        `engine`: auto (nested reverse mode at low orders, Taylor mode above pdiff.taylor.CROSSOVER), reverse or
        taylor."""
        if timeout <= 0:
            raise InputError("--timeout must be positive")
        self.components = list(components)
        self.restricted = [symbolic.restricts_domain(c) for c in self.components]  # need f's domain checked
        self.timeout = timeout
        self.symbolic_side = symbolic_side
        self._pool = None
        self.layout: MatrixLayout | None = None  # set by plan_matrix
        self.read_as, self.notes = "", ()  # how the input was read (set by the caller), for the renderers
        self.variables = list(variables)
        self.needed = sorted({*variables, *(name for _, wrt in partials for name in wrt)})
        self.device = resolve_device(device)
        self.dtype_name = dtype
        self.dtype = resolve_dtype(dtype, self.device)
        # the exact side runs in float64 wherever the device has it (mps has not)
        self.exact_dtype = torch.float64 if self.device.type != "mps" else torch.float32
        self.wrts = [tuple(wrt) for _, wrt in partials]
        # Taylor mode (issue 14): partials above the crossover are propagated series, not recorded reverse passes
        from pdiff import taylor

        self.engine = engine
        self.taylor = any(taylor.engine_for(wrt, engine) == "taylor" for wrt in self.wrts)
        for wrt in self.wrts:
            if taylor.engine_for(wrt, engine) == "taylor":
                taylor.check_size(wrt)
        self.targets = [Target(text + (f"[{c + 1}]" if is_vector else ""), text, tuple(wrt),
                               c if is_vector else None)
                        for c in range(len(self.components)) for text, wrt in partials]
        labels = [t.label for t in self.targets]
        if len(set(labels)) != len(labels):
            raise InputError("the same partial is asked for twice")
        self.summary = StreamSummary(expression, tuple(self.variables), dtype, str(self.device),
                                     TOLERANCES.get(dtype, TOLERANCES["float64"]),
                                     [TargetSummary(t) for t in self.targets])
        start = time.monotonic()
        worker = (bounds.start(_symbolic_work, self.components, self.wrts, memory_mb=memory_mb)
                  if symbolic_side else None)
        self.memory_mb = memory_mb
        self.kinks_left = MAX_KINK_POINTS
        try:
            self.programs = [lower(component, self.needed) for component in self.components]
            # where a component may have a kink (|u|, sign(u)... at u = 0, a Min/Max tie); examined with the
            # symbolic side, as `pdiff diff --at` does
            self.kink_programs = [[lower(u, self.needed) for u in symbolic.kink_arguments(component)]
                                  if symbolic_side else [] for component in self.components]
            # each component's partials as one flat replay of autograd's ops (None: partials_at as is)
            self.traced = [None if self.taylor else trace_partials(program, self.needed, self.wrts, self.dtype,
                                                                   self.device) for program in self.programs]
        finally:
            outcome = worker.collect(start + timeout) if worker else None
        self.exact_programs: list = [None] * len(self.targets)
        self.exact_traced: list = [None] * len(self.targets)
        self.shared: list[list[int]] = [[] for _ in self.components]  # targets whose exact values traced[c] gives
        if outcome is None:
            return
        found = {(c, p): (expr, text) for c, p, expr, text in outcome.messages}
        reason = (f"the symbolic side failed: {outcome.error}" if outcome.error
                  else f"the symbolic derivative did not finish within {timeout:g} s")
        for i, summary in enumerate(self.summary.targets):
            c, p = divmod(i, len(self.wrts))
            if (c, p) not in found:
                summary.note = reason
                continue
            expr, summary.derivative = found[c, p]
            try:
                self.exact_programs[i] = lower(expr, self.needed)
                # the same replay for the value alone (no partials): buffers reused, no allocation per block
                self.exact_traced[i] = trace_partials(self.exact_programs[i], self.needed, [()], self.exact_dtype,
                                                      self.device)
                summary.exact = True
            except UnsupportedError as exc:
                summary.note = f"the derivative cannot be evaluated numerically: {exc}"
        if self.exact_dtype == self.dtype:
            self._share_replays()

    def _share_replays(self) -> None:
        """Record each component's partials and its targets' exact values as one replay where that replays
        faithfully: the transcendentals both sides need (exp(x y), sin and cos of x + y^2) are then computed once
        per block instead of twice (d3f/dx2dy of exp(x y) sin(x + y^2): 0.84 ms per block of 2^15 points with
        two replays, 0.65 ms with one). The exact side's own arithmetic (its sums and products) stays its own:
        only identical ops on identical operands are shared, and they give bitwise identical values either way."""
        per_component = len(self.wrts)
        for c, program in enumerate(self.programs):
            targets = [t for t in range(c * per_component, (c + 1) * per_component)
                       if self.exact_traced[t] is not None]
            if self.traced[c] is None or not targets:
                continue
            both = trace_partials(program, self.needed, self.wrts, self.dtype, self.device,
                                  values=[self.exact_programs[t] for t in targets])
            if both is not None:
                self.traced[c], self.shared[c] = both, targets
                for t in targets:
                    self.exact_traced[t] = None

    # ------------------------------------------------------------------------------------------ evaluation

    def _evaluate_block(self, columns: dict[str, torch.Tensor], exact_columns: dict[str, torch.Tensor],
                        outputs: torch.Tensor, rows: slice, deadline: float) -> tuple | None:
        """Fill outputs[:, :, rows] for every target; returns (max |Δ|, max rel) per target, or None without the
        symbolic side."""
        size = rows.stop - rows.start
        per_component = len(self.wrts)
        autos = outputs[0, :, rows]
        for c, program in enumerate(self.programs):
            mine = range(c * per_component, (c + 1) * per_component)
            traced = self.traced[c]
            if traced is not None:  # straight into the output rows, with the exact values it shares
                traced(columns, deadline, out=[autos[t] for t in mine] + [outputs[1, t, rows] for t in self.shared[c]])
            else:
                for t, value in zip(mine, partials_by_engine(program, columns, self.wrts, deadline, self.engine)):
                    autos[t].copy_(torch.broadcast_to(value, (size,)))
        if outputs.shape[0] == 1:
            return None
        with torch.no_grad():
            exacts = outputs[1, :, rows]
            for t, program in enumerate(self.exact_programs):
                if program is None or t in self.shared[t // per_component]:
                    continue  # none (its rows hold zeros), or written with the partials
                if self.exact_traced[t] is not None:
                    self.exact_traced[t](exact_columns, out=[exacts[t]])
                else:
                    exacts[t].copy_(torch.broadcast_to(program(exact_columns), (size,)))
            # every target at once: a Hessian of 10 compares 100 columns in 5 ops instead of 500
            diff = torch.sub(autos, exacts, out=outputs[2, :, rows]).abs_()
            rel = torch.abs(exacts, out=outputs[3, :, rows]).clamp_min_(torch.finfo(self.exact_dtype).tiny)
            rel = torch.div(diff, rel, out=rel)
            # max |Δ| <= atol means every point agrees (a nan or inf anywhere makes the max fail it); otherwise
            # _finish sorts the chunk's points out exactly: few ops per block in the common case
            return diff.amax(dim=1), rel.amax(dim=1)

    def _submit(self, chunk: Chunk, spare: np.ndarray | None = None) -> _Pending:
        """Queue one chunk's work; `spare`: a finished chunk's output array to write into (CPU)."""
        n = len(chunk)
        deadline = time.monotonic() + self.timeout
        on_cpu = self.device.type == "cpu"
        host = {name: torch.from_numpy(chunk.columns[name]) for name in self.needed}
        if not on_cpu and self.device.type == "cuda":
            host = {name: t.pin_memory() for name, t in host.items()}
        columns = {name: t.to(self.device, self.dtype, non_blocking=True) for name, t in host.items()}
        exact_columns = (columns if self.exact_dtype == self.dtype else
                         {name: t.to(self.device, self.exact_dtype, non_blocking=True) for name, t in host.items()})
        shape = (4 if any(p is not None for p in self.exact_programs) else 1, len(self.targets), n)
        array = None
        if on_cpu:
            array = spare if spare is not None and spare.shape[2] >= n else np.empty(shape)
            outputs = torch.from_numpy(array)[:, :, :n]
        else:
            outputs = torch.empty(shape, dtype=self.exact_dtype, device=self.device)
        if shape[0] == 4:
            missing = [t for t, p in enumerate(self.exact_programs) if p is None]
            if missing:
                outputs[1:, missing] = 0  # compared with the rest, never shown
        step = BLOCK_ROWS if on_cpu else max(n, 1)

        def block(start: int) -> tuple | None:
            rows = slice(start, min(n, start + step))
            block_columns = {name: t[rows] for name, t in columns.items()}
            block_exact = (block_columns if exact_columns is columns
                           else {name: t[rows] for name, t in exact_columns.items()})
            return self._evaluate_block(block_columns, block_exact, outputs, rows, deadline)

        starts = range(0, n, step)
        if self._pool is not None and len(starts) > 1:  # blocks on several cores (torch ops release the GIL)
            checks = list(self._pool.map(block, starts))
        else:
            checks = [block(start) for start in starts]
        return _Pending(chunk, outputs, checks, array)

    def _finish(self, pending: _Pending) -> ChunkValues:
        chunk = pending.chunk
        values = pending.outputs.cpu().numpy()
        arrays = [[values[k, t] if k == 0 or self.exact_programs[t] is not None else None for k in range(4)]
                  if values.shape[0] == 4 else [values[0, t], None, None, None] for t in range(len(self.targets))]
        if values.shape[0] == 4:  # np.max, not max(): a nan in any block must fail the test below
            largest = np.max([b[0].cpu().numpy() for b in pending.checks], axis=0)
            largest_rel = np.max([b[1].cpu().numpy() for b in pending.checks], axis=0)
        kinked = self._kinks(chunk, arrays)
        outside = self._outside_domain(chunk)
        entries = self.layout.entries if self.layout else 0
        codes = np.zeros(len(chunk), dtype=np.int8) if self.layout else None

        def mark(t: int, rows: np.ndarray, code: int) -> None:
            if t < entries:
                np.maximum(codes, np.where(rows, np.int8(code), np.int8(0)), out=codes)

        for t, summary in enumerate(self.summary.targets):
            auto, exact, diff, rel = arrays[t]
            summary.points += len(chunk)
            no_derivative = kinked[t]  # rows whose values were replaced by nan: not counted again below
            off_domain = outside[t // len(self.wrts)]
            if off_domain is not None:  # f itself is not a finite real number there: no derivative is an answer
                replace = off_domain & np.isfinite(auto)  # an inf (log(x) at 0) stays as autograd gave it
                for column in (auto, diff, rel):
                    if column is not None:
                        column[replace] = np.nan
            if exact is None:
                finite = np.isfinite(auto)
                if not finite.all():
                    self._count_non_finite(summary, chunk, finite)
                    mark(t, ~finite, 2)
                continue
            rtol, atol = self.summary.tolerance
            if largest[t] <= atol and no_derivative is None and off_domain is None:  # the common case: all agree
                self._note_max(summary, chunk, float(largest[t]), diff, "abs")
                self._note_max(summary, chunk, float(largest_rel[t]), rel, "rel")
                continue
            finite = np.isfinite(auto)
            if no_derivative is not None:
                finite |= no_derivative
                mark(t, no_derivative, 3)
            if not finite.all():
                self._count_non_finite(summary, chunk, finite)
                mark(t, ~finite, 2)
            with np.errstate(invalid="ignore"):
                disagree = finite & ~(diff <= atol + rtol * np.abs(exact)) | finite & ~np.isfinite(exact)
            if no_derivative is not None:
                disagree &= ~no_derivative
            if disagree.any():
                mark(t, disagree, 1)
                i = int(np.argmax(disagree))
                summary.disagree += int(disagree.sum())
                if summary.first_disagree is None:
                    summary.first_disagree = (f"{self._where(chunk, i)}: autograd {float(auto[i])!r}, "
                                              f"exact {float(exact[i])!r}")
            comparable = np.isfinite(diff)
            if comparable.any():
                self._note_max(summary, chunk, float(diff[comparable].max()), diff, "abs")
                self._note_max(summary, chunk, float(np.nanmax(np.where(comparable, rel, np.nan))), rel, "rel")
        self.summary.points += len(chunk)
        values = ChunkValues(chunk, [a[0] for a in arrays], [a[1] for a in arrays], [a[2] for a in arrays],
                             [a[3] for a in arrays])
        if self.layout:
            values.status = codes
            values.max_abs, values.facts = self._matrix_rows(arrays, len(chunk))
        return values

    def _matrix_rows(self, arrays: list, n: int) -> tuple[np.ndarray, dict | None]:
        """Per row: the largest comparable |Δ| over the entries, and the facts `--at` gives at a point
        (eigenvalues, determinant, criticality, classification), on rows whose entries are all finite."""
        layout = self.layout
        largest = np.full(n, np.nan)
        for auto, exact, diff, rel in arrays[:layout.entries]:
            if diff is not None:
                with np.errstate(invalid="ignore"):
                    np.fmax(largest, np.where(np.isfinite(diff), diff, np.nan), out=largest)
        if layout.command == "gradient" or len(layout.shape) != 2 or layout.shape[0] != layout.shape[1]:
            return largest, None
        size = layout.shape[0]
        matrices = np.stack([a[0] for a in arrays[:layout.entries]], axis=1).reshape(n, size, size)
        good = np.isfinite(matrices).all(axis=(1, 2))
        facts: dict = {"good": good, "determinant": determinants(matrices)}
        if layout.command == "hessian":
            rtol, atol = self.summary.tolerance
            gradient = arrays[layout.entries:]
            # exact zeros decide, as with --at; in float64 that is the exact column, else autograd
            columns = [g[1] if all(h[1] is not None for h in gradient) else g[0] for g in gradient]
            g = np.stack(columns, axis=1) if columns else np.zeros((n, 0))
            facts.update(hessian_rows(np.where(good[:, None, None], matrices, 0.0), g, rtol, atol))
        return largest, facts

    def _where(self, chunk: Chunk, row: int) -> str:
        return f"{self.source_name} {chunk.where(row)}"

    def _outside_domain(self, chunk: Chunk) -> list[np.ndarray | None]:
        """Per component, the rows where the function itself is not a finite real number (ln(x) at x = -1), as
        `--at` flags them even where the derivative's formula (1/x) is finite; None where there are none. One
        forward evaluation per chunk, in float64 on the CPU, for components whose domain is restricted."""
        columns = {name: torch.from_numpy(chunk.columns[name]) for name in self.needed}
        found: list[np.ndarray | None] = []
        with torch.no_grad():
            for program, restricted in zip(self.programs, self.restricted):
                if not restricted:  # defined wherever its derivatives are: nothing to evaluate
                    found.append(None)
                    continue
                value = torch.broadcast_to(program(columns), (len(chunk),))
                bad = ~torch.isfinite(value).numpy()
                found.append(bad if bad.any() else None)
        return found

    def _kinks(self, chunk: Chunk, arrays: list) -> list[np.ndarray | None]:
        """Per target, the rows where SymPy's one-sided limits show there is no derivative (|x| at 0), their
        values set to nan in `arrays`; None where there are none. Candidates are the rows where a kink argument
        is 0 in float64; up to MAX_KINK_POINTS of them per run are examined exactly in the bounded worker (the
        float coordinates as exact rationals), and the rest are counted as not examined."""
        kinked: list[np.ndarray | None] = [None] * len(self.targets)
        per_component = len(self.wrts)
        for c, programs in enumerate(self.kink_programs):
            if not programs:
                continue
            columns = {name: torch.from_numpy(chunk.columns[name]) for name in self.needed}
            on_kink = np.zeros(len(chunk), dtype=bool)
            with torch.no_grad():
                for program in programs:
                    on_kink |= torch.broadcast_to(program(columns) == 0, (len(chunk),)).numpy()
            rows = np.flatnonzero(on_kink)
            if not rows.size:
                continue
            examined = rows[:max(self.kinks_left, 0)]
            self.kinks_left -= examined.size
            notes, exact, complete = self._examine_kinks(c, chunk, examined)
            for p in range(per_component):
                t = c * per_component + p
                summary = self.summary.targets[t]
                auto, exact_column, diff, rel = arrays[t]
                if exact_column is not None:
                    # where there is a derivative, SymPy's exact value stands: the lowered formula can read
                    # 0 * DiracDelta(0) as nan (|x|^3 twice at 0 is 2x^2 DiracDelta(x) + 4x sign(x) + 2|x|)
                    for (q, row), value in exact.items():
                        if q == p and (q, row) not in notes:
                            exact_column[row] = value
                            diff[row] = abs(auto[row] - value)
                            rel[row] = diff[row] / max(abs(value), np.finfo(np.float64).tiny)
                flagged = sorted((row, note) for (q, row), note in notes.items() if q == p)
                if flagged:
                    mask = np.zeros(len(chunk), dtype=bool)
                    mask[[row for row, _ in flagged]] = True
                    for array in arrays[t]:
                        if array is not None:
                            array[mask] = np.nan
                    kinked[t] = mask
                    summary.not_differentiable += len(flagged)
                    if summary.first_not_differentiable is None:
                        summary.first_not_differentiable = f"{self._where(chunk, flagged[0][0])}: {flagged[0][1]}"
                # past the budget, or not reached before the time ran out
                unexamined = rows[examined.size:] if complete else np.setdiff1d(rows, [row for row, _ in flagged])
                if unexamined.size:
                    summary.kink_unexamined += int(unexamined.size)
                    if summary.first_kink_unexamined is None:
                        summary.first_kink_unexamined = self._where(chunk, int(unexamined[0]))
        return kinked

    def _examine_kinks(self, c: int, chunk: Chunk, rows: np.ndarray) -> tuple[dict, dict, bool]:
        """At the given rows, by SymPy: {(partial, row): why there is no derivative} (one-sided limits),
        {(partial, row): the exact value}, and whether every row was examined (the worker finished in time)."""
        if not rows.size:
            return {}, {}, True
        points = [{name: sp.Rational(float(chunk.columns[name][row])) for name in self.needed}
                  for row in rows.tolist()]  # a float's exact value: Rational(0.1) is not 1/10
        job = bounds.start(symbolic.entry_jobs, [self.components[c]], self.wrts,
                           symbolic.identity_entries(1, len(self.wrts)), points, 0.0, bounds.alarm,
                           memory_mb=self.memory_mb)
        outcome = job.collect(time.monotonic() + min(self.timeout, symbolic.KINK_SECONDS * len(points) + 1.0))
        notes = {(message[1], int(rows[message[2]])): message[3]
                 for message in outcome.messages if message[0] == "kink"}
        exact = {(message[1], int(rows[message[2]])): message[4]
                 for message in outcome.messages if message[0] == "exact"}
        return notes, exact, outcome.finished and not outcome.error

    def _count_non_finite(self, summary: TargetSummary, chunk: Chunk, finite: np.ndarray) -> None:
        summary.non_finite += int((~finite).sum())
        if summary.first_non_finite is None:
            summary.first_non_finite = self._where(chunk, int(np.argmin(finite)))

    def _note_max(self, summary: TargetSummary, chunk: Chunk, value: float, values: np.ndarray, kind: str) -> None:
        if not value > getattr(summary, f"max_{kind}_diff"):
            return
        setattr(summary, f"max_{kind}_diff", value)
        setattr(summary, f"max_{kind}_at", self._where(chunk, int(np.flatnonzero(values == value)[0])))

    def run(self, source: PointSource, chunk_size: int | None = None,
            reuse_outputs: bool = False) -> Iterator[ChunkValues]:
        """Evaluate every chunk of `source`, yielding each as it finishes; `self.summary` is kept up to date.

        `reuse_outputs`: a chunk's arrays are overwritten by the next chunk once it is asked for (on CPU), for
        callers that are done with a chunk when they ask for the next, as the CLI's writers are. A Hessian of 10
        has ~100 MB of outputs per chunk: fresh arrays for each cost page faults (hessian10 at 2^20 points, five
        runs: 0.84-1.43 s and 0.8-1.0M faults fresh, 0.81-0.99 s and 0.33M faults reused).

        A chunk whose numeric work runs past --timeout stops the run (the summary says so): the timeout
        bounds each chunk, not the whole stream, so a long file is not cut short by it.
        """
        if not self.needed:
            raise InputError("the expression has no variables: there is nothing to vary over many points")
        missing = [name for name in self.needed if name not in source.variables]
        if missing:
            raise InputError(f"{source.name} was opened without {', '.join(missing)}")
        self.source_name = source.name
        size = chunk_size or default_chunk_size(self.device, len(self.targets), self.symbolic_side)
        started = time.monotonic()
        pipelined = self.device.type != "cpu"
        # On CPU each block's ops are at most BLOCK_ROWS = torch's parallel grain size, so they run on one
        # thread anyway; one intra-op thread also avoids OpenMP barriers that stall when cores are shared.
        threads = torch.get_num_threads()
        if not pipelined:
            torch.set_num_threads(1)
        workers = _cpu_workers()
        self._pool = ThreadPoolExecutor(workers) if not pipelined and workers > 1 else None
        pending = spare = None
        try:
            for chunk in source.chunks(size):
                current = self._submit(chunk, spare)  # on a GPU this only queues the work
                if pending is not None:
                    yield self._finish(pending)
                pending = current
                if not pipelined:
                    yield self._finish(pending)
                    spare = pending.array if reuse_outputs else None  # the caller has moved on
                    pending = None
            if pending is not None:
                yield self._finish(pending)
            self.summary.finished = True
        except DeadlineExceeded:
            for t in self.summary.targets:
                t.note = t.note or f"a chunk ran past --timeout {self.timeout:g} s; the run stopped there"
        finally:
            self.summary.seconds = time.monotonic() - started
            if not pipelined:
                torch.set_num_threads(threads)
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None


def determinants(a: np.ndarray) -> np.ndarray:
    """calculus.determinant over a stack of matrices (rows × n × n): the same closed forms up to 3×3, in the
    same order of operations, so a row's value is the one `--at` gives at that point."""
    n = a.shape[1]
    if n == 1:
        return a[:, 0, 0].copy()
    if n == 2:
        return a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    if n == 3:
        return (a[:, 0, 0] * (a[:, 1, 1] * a[:, 2, 2] - a[:, 1, 2] * a[:, 2, 1])
                - a[:, 0, 1] * (a[:, 1, 0] * a[:, 2, 2] - a[:, 1, 2] * a[:, 2, 0])
                + a[:, 0, 2] * (a[:, 1, 0] * a[:, 2, 1] - a[:, 1, 1] * a[:, 2, 0]))
    return np.linalg.det(a)


def hessian_rows(matrices: np.ndarray, gradient: np.ndarray, rtol: float, atol: float) -> dict:
    """calculus._hessian_facts's eigenvalues, criticality and classification for a stack of Hessians (rows × n
    × n) and their gradients (rows × n), the same rule row by row (tests/test_output_contract.py holds them to
    it); the gradient decides criticality by its float test (|g| ≤ 10 atol)."""
    eigenvalues = np.linalg.eigvalsh((matrices + matrices.swapaxes(1, 2)) / 2)
    scale = np.maximum(1.0, np.abs(eigenvalues).max(axis=1, initial=0.0))
    zero = (atol + rtol * scale)[:, None]
    critical = (np.abs(gradient) <= atol * 10).all(axis=1)
    test = np.where((np.abs(eigenvalues) <= zero).any(axis=1), "inconclusive",
                    np.where((eigenvalues > 0).all(axis=1), "local minimum",
                             np.where((eigenvalues < 0).all(axis=1), "local maximum", "saddle point")))
    return {"eigenvalues": eigenvalues, "critical": critical,
            "classification": np.where(critical, test, "not a critical point")}


def plan_diff(expression: str, partials: Sequence[str] = (), *, wrt: str | Sequence[str] | None = None,
              dtype: str = "float64", device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT,
              symbolic_side: bool = True, names=(), latex: bool | None = None, engine: str = "auto") -> StreamPlan:
    """A StreamPlan for `pdiff diff EXPRESSION PARTIALS... --points/--grid`. `names`: declared names (the grid's
    or file's columns, --var), read whole."""
    from pdiff import question

    asked = question.read(expression, names={*names, *question.declared(wrt=wrt)}, latex=latex)
    if asked.equation is not None:
        raise InputError("implicit differentiation takes points with --at (each point must lie on the curve)")
    components, is_vector = asked.components, asked.is_vector
    variables = symbolic.variables_of(components)
    wanted = question.partials(asked, partials, wrt)
    shown = components if is_vector else components[0]
    stream_plan = StreamPlan(components, [(p.text, tuple(p.wrt)) for p in wanted], variables=variables,
                             is_vector=is_vector, expression=symbolic.to_text(shown), dtype=dtype, device=device,
                             timeout=timeout, symbolic_side=symbolic_side, engine=engine)
    stream_plan.read_as, stream_plan.notes = asked.read_as, asked.notes
    return stream_plan


def plan_matrix(command: str, expression: str, *, wrt: str | Sequence[str] | None = None, dtype: str = "float64",
                device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT,
                symbolic_side: bool = True, names=(), latex: bool | None = None) -> StreamPlan:
    """A StreamPlan for `pdiff grad|hessian|jacobian ... --points/--grid`: one column per entry, named as with
    --at (calculus.plan: df/dx, d2f/dxdy, df1/dx for a Jacobian's first component). Entries that combine several
    partials (Laplacian, div, curl, dir) are not streamed."""
    from pdiff import question
    from pdiff.calculus import plan, read_function, variables_for

    if command not in ("gradient", "hessian", "jacobian"):
        raise InputError("--points and --grid work with diff, grad, hessian and jacobian")
    asked = read_function(command, expression, names={*names, *question.declared(wrt=wrt)}, latex=latex)
    components, is_vector = asked.components, asked.is_vector
    if not wrt and asked.parsed.arguments is not None:
        wrt = asked.variables
    variables = variables_for(components, wrt)
    the_plan = plan(command, components, is_vector, variables)
    if command == "jacobian":
        partials = [(f"df/d{name}", wrt_) for name, wrt_ in zip(variables, the_plan.partials)]
    else:  # a Hessian's gradient too, after its entries: it decides criticality
        partials = [(name, the_plan.partials[entry[0][2]]) for name, entry in zip(the_plan.names, the_plan.entries)]
        partials += [(f"df/d{v}", the_plan.partials[entry[0][2]])
                     for v, entry in zip(variables, the_plan.auxiliary or [])]
    shown = components if is_vector else components[0]
    stream_plan = StreamPlan(components, partials, variables=variables, is_vector=command == "jacobian",
                             expression=symbolic.to_text(shown), dtype=dtype, device=device, timeout=timeout,
                             symbolic_side=symbolic_side)
    # the entries' names as with --at (a Jacobian's df1/dx, not df/dx[1]); `component` stays 0-based
    for i, name in enumerate(the_plan.names):
        target = replace(stream_plan.targets[i], label=name)
        stream_plan.targets[i] = stream_plan.summary.targets[i].target = target
    stream_plan.layout = MatrixLayout(command, tuple(the_plan.shape), len(the_plan.entries))
    stream_plan.read_as, stream_plan.notes = asked.read_as, asked.notes
    return stream_plan
