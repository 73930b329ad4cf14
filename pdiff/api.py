"""The Python API: text in, results out. The CLI is a thin layer over these functions.

Order of work in one call: parse and check the input; start the symbolic worker (a forked, bounded process);
meanwhile evaluate the partials with autograd in this process; then collect the exact side until the deadline.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import sympy as sp

from pdiff import bounds, question, symbolic
from pdiff.errors import InputError
from pdiff.notation import Partial
from pdiff.points import check_points, coerce_point
from pdiff.results import DiffReport, DiffResult, Status

# agreement between autograd and the exact value: |autograd - exact| <= atol + rtol * |exact|
TOLERANCES = {"float64": (1e-7, 1e-9), "float32": (1e-3, 1e-5)}
SIMPLIFY_SECONDS = 0.3  # the symbolic job of a call, counted from its start: what derivatives, exact values and
# kinks leave of it goes to simplification (pdiff.simplify), which is polish, not the answer


def _point_label(point: dict[str, sp.Expr]) -> str:
    return ", ".join(f"{name}={symbolic.to_display(value)}" for name, value in point.items())


@dataclass
class Evaluation:
    """Both sides of one call, per entry k and point j; None where a part did not finish."""

    derivatives: dict  # k → SymPy string of the entry (simplified when that finished in time)
    exact: dict  # (k, j) → (exact string, float)
    autograd: list | None  # [k][j] floats (None where the numeric side ran out of time); None without points
    function: list | None  # [c][j] the value of each component at each point (None where not computed)
    kinks: dict  # (k, j) → why entry k has no derivative at point j (a kink: |x| at 0)
    device: str
    missing: str  # why a symbolic part may be missing, for messages
    series: frozenset = field(default_factory=frozenset)  # entries whose exact values are by series (Taylor mode)


def _numeric(components, partials, points, needed, dtype, device, deadline, engine="auto"):
    """(autograd values [component][partial][point], function values [component][point], device name).

    The function itself comes along (the root of autodiff's prefix tree, no extra pass) so that answers at
    points outside the function's domain are flagged even where the derivative formula is finite.
    """
    from pdiff.autodiff import resolve_device, resolve_dtype  # imports torch: only when there is numeric work

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    try:
        return _autograd(components, partials, points, needed, torch_dtype, torch_device, deadline, engine)
    except MemoryError:
        raise bounds.ResourceError("autograd ran out of memory: lower the order or the number of points "
                                   "(PDIFF_MEMORY_MB sets the limit)") from None
    except RuntimeError as exc:
        if "alloc" in str(exc) or "out of memory" in str(exc):
            raise bounds.ResourceError("autograd ran out of memory: lower the order or the number of points "
                                       "(PDIFF_MEMORY_MB sets the limit)") from None
        raise


def _autograd(components, partials, points, needed, torch_dtype, torch_device, deadline, engine="auto"):
    import torch

    from pdiff.autodiff import DeadlineExceeded, first_partials_forward
    from pdiff.lower import lower
    from pdiff.taylor import partials_by_engine

    columns = {name: torch.tensor([float(sp.N(point[name], 17)) for point in points],
                                  dtype=torch_dtype, device=torch_device) for name in needed}
    programs = [lower(component, needed) for component in components]
    size = len(points)
    if len(components) > len(partials) and all(len(p) == 1 for p in partials):
        # a tall Jacobian: forward mode costs one pass per variable instead of one per component
        try:
            tensors = first_partials_forward(programs, columns, [p[0] for p in partials], deadline)
            with torch.no_grad():
                function = [torch.broadcast_to(program(columns), (size,)).cpu().tolist() for program in programs]
            return [[t.cpu().tolist() for t in row] for row in tensors], function, str(torch_device)
        except DeadlineExceeded:
            return [[None] * len(partials) for _ in components], None, str(torch_device)
        except (NotImplementedError, RuntimeError):
            pass  # an operation without a forward-mode formula: reverse mode below
    values, function = [], []
    for program in programs:
        try:
            # nested reverse mode at low orders, Taylor mode above (pdiff.taylor.CROSSOVER)
            *tensors, value = partials_by_engine(program, columns, [*partials, ()], deadline, engine)
            values.append([t.cpu().tolist() for t in tensors])
            function.append(value.cpu().tolist())
        except DeadlineExceeded:
            values.append([None] * len(partials))
            function.append([None] * size)
    return values, function, str(torch_device)


# caches keyed on the parsed question (SymPy objects hash and compare by structure), for sessions such as
# `pdiff shell`: a repeated question skips the worker; a known derivative at new points skips simplification
_OUTCOMES: dict = {}  # (components, partials, entries, points) → the finished worker's outcome
_DERIVATIVES: dict = {}  # (components, partials, entries) → {k: derivative text, simplified where that finished}


def _remember(cache: dict, key, value, size: int = 256) -> None:
    if len(cache) >= size:
        cache.pop(next(iter(cache)))  # the oldest
    cache[key] = value


def evaluate(components: Sequence[sp.Expr], partials: Sequence[tuple[str, ...]],
             points: Sequence[dict[str, sp.Expr]], needed: Sequence[str], *, entries=None, dtype: str, device: str,
             timeout: float, deadline: float, symbolic_side: bool, memory_mb: int,
             engine: str = "auto", simplify: bool = True) -> Evaluation:
    """Entries (linear combinations of partials of components; by default each (component, partial) alone,
    numbered c * len(partials) + p) at every point: autograd here, the exact side in a bounded worker.
    `simplify=False` skips simplifying the derivatives, for a caller that will not show them.

    The worker is forked first, so SymPy runs on the other core while torch computes; it is killed at the deadline.
    """
    from pdiff import taylor_api

    entries = entries or symbolic.identity_entries(len(components), len(partials))
    series = taylor_api.series_partials(partials) if points else ()
    key = (tuple(components), tuple(map(tuple, partials)), tuple(map(tuple, entries)))
    point_key = (key, tuple(tuple(sorted(point.items())) for point in points))
    known = _DERIVATIVES.get(key) if not series else None
    unsimplified = known is not None or not simplify  # the worker need not simplify (known, or not shown)
    # outcomes are kept by whether the worker simplified: one that did not serves only when that is not needed
    cached = (_OUTCOMES.get((point_key, True)) or (_OUTCOMES.get((point_key, False)) if unsimplified else None)
              if symbolic_side else None)
    worker = None
    if symbolic_side and cached is None:
        budget = 0.0 if unsimplified else SIMPLIFY_SECONDS  # 0: the worker skips simplification
        # high orders at points (issue 14): exact values by Taylor series in mpmath, not SymPy's huge derivative
        job, more = (taylor_api.entry_jobs, (series,)) if series else (symbolic.entry_jobs, ())
        worker = bounds.start(job, tuple(components), tuple(map(tuple, partials)), entries,
                              points, budget, bounds.alarm, *more, memory_mb=memory_mb)
    try:
        numeric, function, device_name = (_numeric(components, partials, points, needed, dtype, device, deadline,
                                                   engine) if points else (None, None, None))
    except BaseException:
        if worker:
            worker.close()  # the call is failing: do not wait for the symbolic side
        raise
    outcome = worker.collect(deadline) if worker else cached
    if worker and outcome.finished and not outcome.error:
        _remember(_OUTCOMES, (point_key, not unsimplified), outcome)

    derivatives, exact, kinks = messages_of(outcome)
    if known and symbolic_side:
        derivatives.update(known)
    elif worker and outcome.finished and len(derivatives) == len(entries) and not series and simplify:
        _remember(_DERIVATIVES, key, dict(derivatives))
    autograd = None
    if numeric is not None:
        coefficients = [[(float(coefficient), c, p) for coefficient, c, p in entry] for entry in entries]
        autograd = [[None if any(numeric[c][p] is None for _, c, p in entry)
                     else sum(a * numeric[c][p][j] for a, c, p in entry)
                     for j in range(len(points))] for entry in coefficients]
    missing = (f"the symbolic side failed: {outcome.error}" if outcome and outcome.error
               else f"the symbolic side did not finish within {timeout:g} s")
    in_series = frozenset(k for k, entry in enumerate(entries) if any(p in series for _, _, p in entry))
    return Evaluation(derivatives, exact, autograd, function, kinks, device_name, missing, in_series)


def messages_of(outcome) -> tuple[dict, dict, dict]:
    """The symbolic worker's messages (symbolic.entry_jobs) as derivatives (k → text, simplified where that
    finished), exact values ((k, j) → (text, float)) and kinks ((k, j) → why)."""
    derivatives, exact, simplest, kinks = {}, {}, {}, {}
    for kind, k, *rest in outcome.messages if outcome else ():
        if kind == "derivative":
            derivatives[k] = rest[0]
        elif kind == "simplified":
            simplest[k] = rest[0]
        elif kind == "kink":
            kinks[k, rest[0]] = rest[1]
        else:
            exact[k, rest[0]] = (rest[1], rest[2])
    derivatives.update(simplest)
    return derivatives, exact, kinks


def outside_domain(ev: Evaluation, components: Sequence[int], j: int) -> str | None:
    """A note when a component itself is not a finite real number at point j (then no derivative is an answer)."""
    if ev.function is None:
        return None
    for c in components:
        value = ev.function[c][j]
        if value is not None and not math.isfinite(value):
            which = "f" if len(ev.function) == 1 else f"component {c + 1}"
            return (f"{which} itself evaluates to {value} here "
                    "(outside its domain, at a singularity, or a floating-point overflow)")
    return None


def _why_not_finite(exact_text: str | None) -> str:
    """What an exact value that is not a finite real number says about the point."""
    if exact_text is None:
        return "not a finite number"
    shown = {"zoo": "undefined", "nan": "undefined", "oo": "inf", "-oo": "-inf"}  # SymPy's spellings, for people
    if exact_text in shown:
        return f"the derivative is infinite or undefined here (exact: {shown[exact_text]})"
    if "I" in exact_text:
        return f"the point is outside the real domain (exact: {exact_text})"
    return f"not a finite real number (exact: {exact_text})"


def judge(autograd: float | None, value: float | None, exact_text: str | None,
          rtol: float, atol: float) -> tuple[Status, str | None]:
    """The status of one answer, and why when it is not ok."""
    if autograd is None:
        return Status.TIMEOUT, "autograd did not finish in time"
    exact_finite = value is not None and math.isfinite(value)
    if not math.isfinite(autograd):
        reason = _why_not_finite(exact_text) if exact_text is not None and not exact_finite else "not a finite number"
        return Status.NON_FINITE, f"autograd gives {autograd}: {reason}"
    if value is None:
        return Status.OK, None
    if not exact_finite:
        return Status.DISAGREE, f"autograd gives {autograd!r} but {_why_not_finite(exact_text)}"
    if abs(autograd - value) > atol + rtol * abs(value):
        return Status.DISAGREE, f"autograd {autograd!r} and exact {value!r} differ by {abs(autograd - value):.3g}"
    return Status.OK, None


def derivative(expression: str, partials: Sequence[str] = (), *, wrt: str | Sequence[str] | None = None,
               at: Sequence[str | Mapping[str, object]] = (), dtype: str = "float64", device: str = "auto",
               timeout: float = bounds.DEFAULT_TIMEOUT, symbolic_side: bool = True,
               memory_mb: int = bounds.DEFAULT_MEMORY_MB, latex: bool | None = None,
               var: str | Sequence[str] | None = None, engine: str = "auto", simplify: bool = True) -> DiffReport:
    """Partial derivatives of `expression` at the points `at`, by autograd beside the exact symbolic answer.

    `var`: multi-letter names to read whole (`--var rate`), beside those named in `at` and `wrt`.
    `engine`: auto (nested reverse mode at low orders, Taylor mode above pdiff.taylor.CROSSOVER), reverse or taylor.
    `simplify=False`: the derivatives as SymPy gives them, not simplified (values and verdicts are the same), for
    output that does not show them (plain lines at points); it saves up to SIMPLIFY_SECONDS.

    >>> report = derivative("x^2*y + x*y^2", ["d2f/dxdy"], at=["x=2,y=3"])
    >>> report.results[0].autograd
    10.0
    """
    from pdiff.tensor.language import is_tensor_question

    if is_tensor_question(expression, at, var):  # vectors and matrices as variables: df/dx[1], d2f/dW[0,0]dx[1]
        from pdiff.tensor import compute as tensor_compute

        return tensor_compute.derivative(expression, partials, wrt=wrt, at=at, var=var, dtype=dtype, device=device,
                                         timeout=timeout, symbolic_side=symbolic_side, memory_mb=memory_mb)
    if not timeout > 0:
        raise InputError("--timeout must be positive")
    deadline = time.monotonic() + timeout
    points = [coerce_point(p) for p in at]
    asked = question.read(expression, names=question.declared(points, wrt, var), latex=latex)
    wanted = question.partials(asked, partials, wrt)
    if asked.equation is not None:
        from pdiff import implicit_api

        return implicit_api.derivative(asked, wanted, points, dtype=dtype, device=device, timeout=timeout,
                                       deadline=deadline, symbolic_side=symbolic_side, memory_mb=memory_mb,
                                       source=expression)
    components, is_vector = asked.components, asked.is_vector
    variables = symbolic.variables_of(components)
    if not wanted:
        raise InputError("the expression has no variables: name the partial you want (e.g. df/dx) or use --wrt")
    needed = sorted({*variables, *(n for p in wanted for n in p.wrt)}, key=symbolic.natural_key)
    notes = list(asked.notes)
    filled, evaluated = _fill_unneeded(components, wanted, points, needed) if points else ([], points)
    present = {s.name for c in components for s in c.free_symbols}
    if any(name in present for name in filled):  # a variable f does not have gives 0 whatever its value
        listed = ", ".join(name for name in filled if name in present)
        notes.append(f"the derivatives do not depend on {listed}: {listed} set to 1 for autograd, and f's domain "
                     f"was not checked along {listed}")
    check_points(evaluated, needed)
    if not points and not symbolic_side:
        raise InputError("nothing to compute: give a point with --at, or drop --no-symbolic")
    notes += _high_orders(wanted, points, symbolic_side, engine)
    ev = evaluate(components, [p.wrt for p in wanted], evaluated, needed, dtype=dtype, device=device, timeout=timeout,
                  deadline=deadline, symbolic_side=symbolic_side, memory_mb=memory_mb, engine=engine,
                  simplify=simplify)
    if filled:
        ev.function = None  # f at the stand-in value says nothing about the user's point

    results, problems = diff_results(ev, len(components), wanted, points, is_vector, symbolic_side, dtype)
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])
    shown = components if is_vector else components[0]
    return DiffReport(expression, symbolic.to_text(shown), symbolic.to_display(shown), tuple(variables), is_vector,
                      dtype, ev.device, (rtol, atol), tuple(results), tuple(dict.fromkeys(problems)),
                      read_as=asked.read_as, notes=tuple(notes))


def diff_results(ev: Evaluation, n_components: int, wanted: Sequence[Partial], points: Sequence[dict],
                 is_vector: bool, symbolic_side: bool, dtype: str) -> tuple[list[DiffResult], list[str]]:
    """One DiffResult per (component, partial, point) of an evaluation whose entry k is c * len(wanted) + p,
    judged against the dtype's tolerance; and the problems to report."""
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])
    results, problems = [], []
    for c in range(n_components):
        for p, partial in enumerate(wanted):
            k = c * len(wanted) + p
            text = ev.derivatives.get(k)
            label = partial.text + (f" of component {c + 1}" if is_vector else "")
            if not points:
                status = Status.SYMBOLIC if text is not None else Status.TIMEOUT
                results.append(DiffResult(partial.text, partial.wrt, c if is_vector else None, None, None, text,
                                          None, None, None, None, status))
                if text is None:
                    problems.append(f"{label}: no symbolic derivative ({ev.missing})")
                continue
            for j, point in enumerate(points):
                exact_text, value = ev.exact.get((k, j), (None, None))
                autograd = ev.autograd[k][j]
                status, note = judge(autograd, value, exact_text, rtol, atol)
                domain = outside_domain(ev, [c], j)
                if status is not Status.TIMEOUT and domain:
                    status, note = Status.NON_FINITE, domain
                elif status is not Status.TIMEOUT and (k, j) in ev.kinks:
                    status, note = Status.NON_DIFFERENTIABLE, ev.kinks[k, j]
                if status is Status.OK and symbolic_side and exact_text is None:
                    status, note = Status.TIMEOUT, f"no exact value ({ev.missing})"
                elif status is Status.OK and k in ev.series and exact_text is not None:
                    note = _SERIES_NOTE  # not a problem: says where the exact value came from
                error = (abs(autograd - value) if autograd is not None and value is not None
                         and math.isfinite(autograd) and math.isfinite(value) else None)
                floats = {name: float(sp.N(v, 17)) for name, v in point.items()}
                results.append(DiffResult(partial.text, partial.wrt, c if is_vector else None, floats,
                                          _point_label(point), text, exact_text, value, autograd, error,
                                          status, note))
                if note and note is not _SERIES_NOTE:
                    problems.append(f"{label} at {_point_label(point)}: {note}")
    return results, problems


# ----- Taylor mode (issue 14): engine choice and the exact side of high orders
_SERIES_NOTE = "exact value by Taylor series in mpmath at 50 digits"


def _high_orders(wanted: Sequence[Partial], points, symbolic_side: bool, engine: str) -> list[str]:
    """Check the engine and the size of Taylor-mode partials; the note saying how high orders were computed."""
    from pdiff import taylor, taylor_api

    for partial in wanted:
        if taylor.engine_for(partial.wrt, engine) == "taylor":
            taylor.check_size(partial.wrt)
    high = [p.text for p in wanted if len(p.wrt) > taylor_api.EXACT_SERIES_ORDER]
    if not (high and points and symbolic_side):
        return []
    return [(f"{', '.join(high)}: order above {taylor_api.EXACT_SERIES_ORDER}, the derivative is left unexpanded; "
             f"exact values by Taylor series (mpmath, 50 digits)")]


FILL_SECONDS = 1.0  # to learn whether the derivatives depend on a variable the points leave out


def _fill_unneeded(components, wanted: Sequence[Partial], points: list[dict],
                   needed: Sequence[str]) -> tuple[list[str], list[dict]]:
    """Variables no point gives and no derivative depends on (z in d/dx of 2x^2 + 3z), and the points to evaluate
    with those set to 1. Where SymPy cannot tell within FILL_SECONDS, nothing is filled (the point must give it)."""
    missing = [name for name in needed if all(name not in point for point in points)]
    if not missing:
        return [], points
    try:
        with bounds.alarm(FILL_SECONDS):
            used = {s.name for c in components for p in wanted for s in symbolic.derivative(c, p.wrt).free_symbols}
    except TimeoutError:
        return [], points
    # a variable differentiated by that f does not have (d/dz of x^2) gives 0 whatever its value: filled too
    present = {s.name for c in components for s in c.free_symbols}
    unneeded = [name for name in missing if name not in used and (name not in present or
                                                                   all(name not in p.wrt for p in wanted))]
    return unneeded, [{**point, **{name: sp.Integer(1) for name in unneeded}} for point in points]
