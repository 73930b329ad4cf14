"""`pdiff critical`: the points where ∇f = 0, each classified by the Hessian test (calculus._hessian_facts).

Two routes, and every point says which one found it:
- exact, in the bounded SymPy worker: a polynomial gradient is solved through a lex Gröbner basis (no complex
  solutions: none at all; not zero-dimensional: the critical points are not isolated) with the real roots of its
  eliminants as exact numbers (rationals, radicals, CRootOf), so realness is decided exactly and nothing is
  missed; anything else goes to sympy.solve (solveset over the reals for one variable, whose periodic families
  are enumerated in the box), whose answers are kept as exact points but never taken as the whole list;
- numeric, here: damped Newton steps on ∇f = 0 with the gradient and Hessian by autograd, from a grid of starts
  over the box (--range, default -5:5 per variable), all starts in one batch; roots are deduplicated and kept
  where |∂f/∂v| ≤ 10·atol for every v and the point is in the box. A numeric root whose coordinates are short
  closed forms (nsimplify) at which SymPy shows ∇f = 0 exactly becomes an exact point.

A polynomial whose exact route finishes with finitely many points needs no numeric search; otherwise the numeric
search runs in the box while the worker works.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from pdiff import bounds, question, symbolic
from pdiff.api import TOLERANCES
from pdiff.calculus import _hessian_facts, read_function, variables_for
from pdiff.errors import InputError
from pdiff.parse import symbol
from pdiff.results import CriticalPoint, CriticalReport

DEFAULT_BOX = (-5.0, 5.0)  # per variable, when --range does not give one
STARTS = {1: 201, 2: 961, 3: 1331}  # numeric starting points; more variables: about 2,400 in all
MAX_NUMERIC_VARIABLES = 12
ITERATIONS = 80
EXACT_SECONDS = 4.0  # at most this long for sympy.solve on a non-polynomial gradient
IDENTIFY_SECONDS = 3.0  # at most this long for recognising numeric roots as closed forms
MAX_IDENTIFY = 40  # numeric roots examined for a closed form
STEP = 1e-6  # a root's remaining Newton step, relative to the box, is at most this
MATCH = 1e-6  # a numeric root within this (relative to the box) of an exact one is that one
CHECK_DIGITS = 50  # exact candidates are tested for ∇f = 0 at this precision


# ------------------------------------------------------------------------------------------ the exact side


def _vanishes(value: sp.Expr) -> bool:
    """Whether an exact number is 0: at CHECK_DIGITS digits, below 1e-40 (the candidates come from finite sets
    of algebraic numbers, so a true non-zero is far larger)."""
    try:
        number = complex(sp.N(value, CHECK_DIGITS))
    except (TypeError, ValueError, ArithmeticError):
        return False
    return abs(number) < 1e-40


def _tidy(value: sp.Expr, alarm) -> sp.Expr:
    """A shorter form of an exact coordinate, when one comes within a moment (radicals; CRootOf stays)."""
    if value.is_Rational or value.has(sp.CRootOf):
        return value
    try:
        with alarm(0.5):
            better = sp.simplify(value)
        return better if sp.count_ops(better) <= sp.count_ops(value) else value
    except TimeoutError:
        return value


def _eliminant(polys, syms, k):
    """The univariate polynomial in syms[k] of the ideal (zero-dimensional: one exists)."""
    order = [s for i, s in enumerate(syms) if i != k] + [syms[k]]
    basis = sp.groebner(polys, *order, order="lex")
    univariate = [p for p in basis.exprs if p.free_symbols <= {syms[k]}]
    return univariate[-1]


def polynomial_solutions(polys, syms, alarm) -> list[dict] | None:
    """Every real solution of a polynomial system, exactly; None when the solutions are not isolated (the
    system is not zero-dimensional over the complex numbers)."""
    basis = sp.groebner(polys, *syms, order="lex")
    exprs = list(basis.exprs)
    if exprs == [1]:
        return []  # no solutions, not even complex ones
    if not basis.is_zero_dimensional:
        return None
    partial: list[dict] = [{}]
    for k in reversed(range(len(syms))):
        v, later = syms[k], set(syms[k + 1:])
        related = [p for p in exprs if v in p.free_symbols and p.free_symbols <= {v} | later]
        roots = None
        grown = []
        for known in partial:
            equations = [sp.Poly(sp.expand(p.xreplace(known)), v) for p in related]
            linear = next((q for q in equations if q.degree() == 1 and not _vanishes(q.LC())), None)
            if linear is not None:
                candidates = [-linear.nth(0) / linear.LC()]
            else:
                if roots is None:
                    eliminant = sp.Poly(_eliminant(polys, syms, k), v).sqf_part()
                    roots = list(dict.fromkeys(sp.real_roots(eliminant)))
                candidates = roots
            for candidate in candidates:
                if all(_vanishes(q.as_expr().xreplace({v: candidate})) for q in equations):
                    grown.append({**known, v: _tidy(candidate, alarm)})
        partial = grown
    return partial


def _family_text(gradient, syms, alarm) -> str | None:
    """How the critical points of a non-isolated system lie (x = 0, y any), when sympy.solve says in a moment."""
    try:
        with alarm(2.0):
            found = sp.solve(gradient, syms, dict=True)
    except (TimeoutError, NotImplementedError, ValueError, TypeError):
        return None
    parts = []
    for solution in found:
        free = [s.name for s in syms if s not in solution]
        equations = " and ".join(f"{s.name} = {symbolic.to_display(solution[s])}" for s in syms if s in solution)
        parts.append(f"{equations}" + (f", {', '.join(free)} any" if free else ""))
    return " or ".join(parts) if parts else None


def _enumerate(solutions, low: float, high: float, limit: int = 1000) -> list[sp.Expr] | None:
    """The members in [low, high] of a set solveset gave (finite sets, unions, n·c + d over the integers);
    None for a form not handled (ConditionSet, intersections...)."""
    if isinstance(solutions, sp.FiniteSet):
        return list(solutions)
    if solutions is sp.S.EmptySet:
        return []
    if isinstance(solutions, sp.Union):
        found = []
        for part in solutions.args:
            inner = _enumerate(part, low, high, limit)
            if inner is None:
                return None
            found += inner
        return found
    if isinstance(solutions, sp.ImageSet) and solutions.base_sets == (sp.S.Integers,):
        (n,), body = solutions.lamda.variables, solutions.lamda.expr
        slope, offset = sp.Poly(body, n).all_coeffs() if body.is_polynomial(n) and sp.degree(body, n) == 1 \
            else (None, None)
        if slope is None:
            return None
        a, b = float(slope), float(offset)
        first, last = sorted(((low - b) / a, (high - b) / a))
        first, last = math.ceil(first - 1e-9), math.floor(last + 1e-9)
        if last - first > limit:
            return None
        return [body.xreplace({n: sp.Integer(i)}) for i in range(first, last + 1)]
    return None


def _exact_point(f, gradient, point, alarm):
    """("point", texts, floats, value text, value) for an exact solution, or None where it is not a finite real
    critical point (sympy.solve may return complex or spurious ones)."""
    floats = {}
    for s, value in point.items():
        number = symbolic.to_float(value)
        if not math.isfinite(number):
            return None
        floats[s.name] = number
    if not all(_vanishes(g.xreplace(point)) for g in gradient):
        return None
    value = f.xreplace(point)
    number = symbolic.to_float(value)
    if not math.isfinite(number):
        return None
    shown = _tidy(value, alarm)
    text = symbolic.to_text(shown) if len(symbolic.to_text(shown)) <= 300 else None
    ordered = sorted(point, key=lambda s: symbolic.natural_key(s.name))
    return ("point", {s.name: symbolic.to_text(point[s]) for s in ordered}, floats, text, number)


def exact_jobs(f: sp.Expr, names: tuple[str, ...], box: dict | None, solve_seconds: float, alarm):
    """The exact side, as messages (run in the bounded worker): ("polynomial", bool); then ("point", ...) per
    exact critical point; ("complete",) when those are all of them; ("family", text or None) when they are not
    isolated; ("infinite", text) when there are infinitely many (a periodic family); ("unsolved", why)."""
    syms = [symbol(name) for name in names]
    gradient = [sp.diff(f, s) for s in syms]
    polynomial = all(g.is_polynomial(*syms) for g in gradient) and not f.has(sp.Abs, sp.sign, sp.Min, sp.Max)
    yield ("polynomial", polynomial)
    if polynomial:
        try:
            found = polynomial_solutions(gradient, syms, alarm)
        except (sp.PolynomialError, sp.polys.polyerrors.PolificationFailed, NotImplementedError,
                sp.polys.polyerrors.CoercionFailed) as exc:
            found, polynomial = "unsolved", False
            yield ("unsolved", f"the Gröbner route failed ({type(exc).__name__})")
        if found is None:
            yield ("family", _family_text(gradient, syms, alarm))
            return
        if found != "unsolved":
            for point in found:
                message = _exact_point(f, gradient, point, alarm)
                if message:
                    yield message
            yield ("complete",)
            return
    if len(syms) == 1 and box is not None:  # solveset knows periodic families
        (s,) = syms
        try:
            with alarm(solve_seconds / 2):
                solutions = sp.solveset(gradient[0], s, sp.S.Reals)
        except (TimeoutError, NotImplementedError, ValueError, TypeError):
            solutions = None
        members = _enumerate(solutions, *box[s.name]) if solutions is not None else None
        if members is not None:
            if not isinstance(solutions, sp.FiniteSet) and solutions is not sp.S.EmptySet:
                yield ("infinite", "infinitely many critical points; showing those in the box")
            for value in members:
                message = _exact_point(f, gradient, {s: value}, alarm)
                if message:
                    yield message
            yield ("complete",)
            return
    try:
        with alarm(solve_seconds):
            found = sp.solve(gradient, syms, dict=True)
    except (TimeoutError, NotImplementedError, ValueError, TypeError) as exc:
        yield ("unsolved", "sympy.solve did not finish" if isinstance(exc, TimeoutError)
               else f"sympy.solve cannot solve it ({type(exc).__name__})")
        return
    for solution in found:
        if set(solution) == set(syms) and not any(v.free_symbols for v in solution.values()):
            message = _exact_point(f, gradient, {s: solution[s] for s in syms}, alarm)
            if message:
                yield message


def identify_jobs(f: sp.Expr, names: tuple[str, ...], roots: list[list[float]], seconds: float, alarm):
    """("identified", i, texts, floats, value text, value) for numeric root i whose coordinates are short closed
    forms (nsimplify, with π) at which SymPy shows ∇f = 0 exactly."""
    syms = [symbol(name) for name in names]
    gradient = [sp.diff(f, s) for s in syms]
    end = time.monotonic() + seconds
    for i, root in enumerate(roots):
        try:
            with alarm(min(1.0, end - time.monotonic())):
                point = {}
                for s, number in zip(syms, root):
                    guess = sp.nsimplify(number, [sp.pi], tolerance=1e-10 * max(1.0, abs(number)))
                    if len(sp.sstr(guess)) > 24 or abs(float(guess) - number) > 1e-8 * max(1.0, abs(number)):
                        break
                    point[s] = guess
                else:
                    if all(sp.simplify(g.xreplace(point)) == 0 for g in gradient):
                        message = _exact_point(f, gradient, point, alarm)
                        if message:
                            yield ("identified", i, *message[1:])
        except TimeoutError:
            if time.monotonic() >= end:
                return


# ------------------------------------------------------------------------------------------ the numeric side


@dataclass
class _Search:
    roots: list[list[float]] = field(default_factory=list)
    starts: int = 0
    finished: bool = True
    family: bool = False


def _gradient_hessian(program, names, points, deadline=None):
    """∇f (B, n) and the Hessian (B, n, n) at the rows of `points`, by autograd (n + 1 reverse passes)."""
    import torch

    from pdiff.autodiff import partials_at

    n = len(names)
    partials = [(v,) for v in names] + [(a, b) for a in names for b in names]
    columns = {v: points[:, i].contiguous() for i, v in enumerate(names)}
    out = partials_at(program, columns, partials, deadline)
    gradient = torch.stack(out[:n], dim=1)
    hessian = torch.stack(out[n:], dim=1).reshape(-1, n, n)
    return gradient, hessian


def _starts(box: list[tuple[float, float]], dtype, device):
    import torch

    n = len(box)
    per = max(2, round(STARTS.get(n, 2400) ** (1 / n)))
    axes = [torch.linspace(lo, hi, per, dtype=dtype, device=device) for lo, hi in box]
    return torch.cartesian_prod(*axes).reshape(-1, n), per


def numeric_search(program, names: Sequence[str], box: list[tuple[float, float]], dtype, device,
                   deadline: float, accept: float) -> _Search:
    """Damped Newton on ∇f = 0 from a grid of starts: a step is taken where it lowers |∇f| (else halved and tried
    again), all starts in one batch; roots are kept where |∂f/∂v| ≤ `accept` and inside the box, deduplicated."""
    import torch

    from pdiff.autodiff import DeadlineExceeded

    points, per = _starts(box, dtype, device)
    search = _Search(starts=points.shape[0])
    low = torch.tensor([b[0] for b in box], dtype=dtype, device=device)
    high = torch.tensor([b[1] for b in box], dtype=dtype, device=device)
    width = high - low
    try:
        gradient, hessian = _gradient_hessian(program, names, points, deadline)
    except DeadlineExceeded:
        search.finished = False
        return search
    try:
        norm = gradient.norm(dim=1)
        alive = torch.isfinite(norm) & torch.isfinite(hessian).flatten(1).all(dim=1)
        norm = torch.where(alive, norm, torch.full_like(norm, math.inf))
        alpha = torch.ones_like(norm)
        longest = 0.5 * width.norm()
        for _ in range(ITERATIONS):
            if time.monotonic() > deadline:
                search.finished = False
                break
            active = alive & (norm > 1e-3 * accept) & (alpha > 1e-10)
            if not bool(active.any()):
                break
            safe = torch.where(torch.isfinite(hessian), hessian, torch.zeros_like(hessian))
            step = -(torch.linalg.pinv(safe, hermitian=True) @ torch.nan_to_num(gradient).unsqueeze(-1)).squeeze(-1)
            length = step.norm(dim=1, keepdim=True)
            step = torch.where(length > longest, step * (longest / length), step)
            candidate = points + alpha.unsqueeze(1) * step
            g_new, h_new = _gradient_hessian(program, names, candidate, deadline)
            n_new = g_new.norm(dim=1)
            inside = ((candidate >= low - width) & (candidate <= high + width)).all(dim=1)
            better = (active & inside & torch.isfinite(n_new) & (n_new < norm)
                      & torch.isfinite(h_new).flatten(1).all(dim=1))
            points = torch.where(better.unsqueeze(1), candidate, points)
            gradient = torch.where(better.unsqueeze(1), g_new, gradient)
            hessian = torch.where(better.view(-1, 1, 1), h_new, hessian)
            norm = torch.where(better, n_new, norm)
            alpha = torch.where(better, torch.clamp(alpha * 2, max=1.0), alpha / 2)
    except DeadlineExceeded:
        search.finished = False
    slack = 1e-9 * width
    # a root is where the gradient is below tolerance *and* Newton's next step is tiny: far out in a flat tail
    # (exp(-x^2) at x = 5) the gradient is below any tolerance but the step to the root is not
    safe = torch.where(torch.isfinite(hessian), hessian, torch.zeros_like(hessian))
    step = (torch.linalg.pinv(safe, hermitian=True) @ torch.nan_to_num(gradient).unsqueeze(-1)).squeeze(-1)
    settled = step.abs().max(dim=1).values <= STEP * max(1.0, float(width.max()))
    keep = (alive & settled & (gradient.abs() <= accept).all(dim=1)
            & ((points >= low - slack) & (points <= high + slack)).all(dim=1))
    found = points[keep].cpu().numpy().astype(float)
    quality = norm[keep].cpu().numpy().astype(float)
    scale = float(width.max())
    roots: list[np.ndarray] = []
    for j in np.argsort(quality, kind="stable"):  # the best of each cluster represents it
        if not any(np.max(np.abs(found[j] - r)) <= MATCH * max(1.0, scale) for r in roots):
            roots.append(found[j])
    search.roots = [[float(v) for v in r] for r in roots]
    # many distinct roots closer together than the starts: they lie on a curve or surface
    spacing = float((width / max(per - 1, 1)).max())
    close = sum(1 for i, r in enumerate(roots) for s in roots[i + 1:] if np.max(np.abs(r - s)) < 1.5 * spacing)
    search.family = close >= 3 and len(roots) >= 4
    return search


# ------------------------------------------------------------------------------------------ the whole call


def _ranges(ranges) -> dict[str, tuple[float, float]]:
    if ranges is None:
        return {}
    if isinstance(ranges, Mapping):
        found = {}
        for name, (low, high) in ranges.items():
            low, high = float(low), float(high)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise InputError(f"--range {name}: the start must be a finite number below the end")
            found[str(name)] = (low, high)
        return found
    from pdiff.plot import parse_ranges

    return parse_ranges(ranges)


def _sort_key(point: CriticalPoint, names) -> tuple:
    return tuple(point.point[n] for n in names)


def critical_points(expression: str, *, wrt: str | Sequence[str] | None = None,
                    ranges: str | Sequence[str] | Mapping[str, tuple[float, float]] | None = None,
                    timeout: float = bounds.DEFAULT_TIMEOUT, dtype: str = "float64", device: str = "auto",
                    var: str | Sequence[str] | None = None, latex: bool | None = None,
                    memory_mb: int = bounds.DEFAULT_MEMORY_MB) -> CriticalReport:
    """The critical points of `expression` (∇f = 0), each with f's value and its Hessian classification.

    `ranges`: the box for the numeric search and the points shown ("x=-3:3,y=-3:3" or {"x": (-3, 3)}); without
    it, every exact point is shown and a numeric search uses -5:5 per variable (a note says so).

    >>> report = critical_points("x^2 + x y + y^2 - 3x")
    >>> [(p.point, p.classification) for p in report.points]
    [({'x': 2.0, 'y': -1.0}, 'local minimum')]
    """
    if not timeout > 0:
        raise InputError("--timeout must be positive")
    started = time.monotonic()
    deadline = started + timeout
    given = _ranges(ranges)
    asked = read_function("critical", expression, names=question.declared((), wrt, var) | set(given), latex=latex)
    if asked.is_vector:
        raise InputError("critical takes one function, not a vector of them")
    f = asked.components[0]
    chosen = question.split_names(wrt) or (asked.variables if asked.parsed.arguments is not None else None)
    used = symbolic.variables_of([f])
    names = variables_for([f], chosen, parameters=used)
    missing = [n for n in used if n not in names]
    if missing:
        raise InputError(f"f uses {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not among "
                         f"the variables ({', '.join(names)}): critical points are taken over every variable, so "
                         f"name {'it' if len(missing) == 1 else 'them'} in --wrt")
    if not names:
        raise InputError("the expression has no variables: a constant has no critical points to find")
    extra = [name for name in given if name not in names]
    if extra:
        raise InputError(f"--range names {', '.join(extra)}, which is not a variable here "
                         f"(variables: {', '.join(names)})")
    box = {name: given.get(name, DEFAULT_BOX) for name in names}
    defaulted = [name for name in names if name not in given]
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])

    from pdiff.autodiff import resolve_device, resolve_dtype
    from pdiff.lower import lower

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    program = lower(f, names)

    messages: list[str] = []
    problems: list[str] = []
    polynomial_guess = f.is_polynomial(*(symbol(n) for n in names))
    solve_seconds = min(EXACT_SECONDS, 0.5 * timeout) if not polynomial_guess else max(0.1, 0.6 * timeout)
    worker = bounds.start(exact_jobs, f, tuple(names), box if given or len(names) == 1 else None, solve_seconds,
                          bounds.alarm, memory_mb=memory_mb)
    search = None
    try:
        if not polynomial_guess:
            search = _search(program, names, box, torch_dtype, torch_device, deadline, atol)
        exact_end = deadline if not polynomial_guess else started + max(0.1, 0.7 * timeout)
        outcome = worker.collect(min(deadline, exact_end))
    except BaseException:
        worker.close()
        raise
    exact = [m for m in outcome.messages if m[0] == "point"]
    complete = any(m[0] == "complete" for m in outcome.messages)
    family = next((m for m in outcome.messages if m[0] == "family"), None)
    infinite = next((m for m in outcome.messages if m[0] == "infinite"), None)
    unsolved = next((m[1] for m in outcome.messages if m[0] == "unsolved"), None)
    if outcome.error:
        unsolved = f"the exact route failed: {outcome.error}"
    elif not outcome.finished and not complete:
        unsolved = f"the exact route did not finish within {timeout:g} s" if polynomial_guess \
            else "the exact route did not finish in time"

    if given:  # only the box's points are shown
        inside = [m for m in exact if all(box[n][0] <= m[2][n] <= box[n][1] for n in names)]
        if len(inside) < len(exact) and complete:
            left = len(exact) - len(inside)
            messages.append(f"{left} critical point{'s' if left != 1 else ''} outside the box not shown")
        exact = inside
    need_numeric = not (complete and family is None and (infinite is None or len(names) == 1))
    if not need_numeric:
        search = None  # the exact list is all of them
    elif search is None:
        search = _search(program, names, box, torch_dtype, torch_device, deadline, atol)

    candidates = [(m[2], {n: m[1][n] for n in names}, m[3], m[4], "exact") for m in exact]  # floats, texts, value text, value, method
    unmatched: list[list[float]] = []
    identified: dict = {}
    if search is not None:
        scale = max(hi - lo for lo, hi in box.values())
        for root in search.roots:
            near = any(max(abs(root[i] - c[0][n]) for i, n in enumerate(names)) <= 1e3 * MATCH * max(1.0, scale)
                       for c in candidates)
            if not near:
                unmatched.append(root)
        if unmatched and not polynomial_guess and not search.family and time.monotonic() < deadline:
            seconds = min(IDENTIFY_SECONDS, max(0.0, deadline - time.monotonic()))
            job = bounds.start(identify_jobs, f, tuple(names), unmatched[:MAX_IDENTIFY], seconds, bounds.alarm,
                               memory_mb=memory_mb)
            identified = {m[1]: m for m in job.collect(min(deadline, time.monotonic() + seconds + 1)).messages
                          if m[0] == "identified"}
        for i, root in enumerate(unmatched):
            if i in identified:
                _, _, texts, floats, text, value = identified[i]
                candidates.append((floats, {n: texts[n] for n in names}, text, value, "exact"))
            else:
                candidates.append(({n: root[k] for k, n in enumerate(names)}, None, None, None, "numeric"))

    points = _classify(program, names, candidates, torch_dtype, torch_device, rtol, atol)
    kinked = [p for p in points if _on_kink(f, names, p.point)]
    if kinked:
        points = [p for p in points if p not in kinked]
        messages.append(f"{len(kinked)} point{'s' if len(kinked) != 1 else ''} the search reached lie on a kink "
                        "(|u|, sign, min, max), where f has no derivative: not listed")
    points.sort(key=lambda p: _sort_key(p, names))

    # what the user should know about how the list was made
    if family is not None:
        how = f" ({family[1]})" if family[1] else ""
        messages.append(f"the critical points are not isolated{how}: infinitely many; showing those the numeric "
                        "search reached in the box")
    if infinite is not None:
        messages.append(infinite[1])
    if search is not None:
        if defaulted:
            messages.append(f"numeric search in the default box {', '.join(f'{n}=-5:5' for n in defaulted)} "
                            "(give --range to search elsewhere)")
        if search.family and family is None:
            messages.append("the numeric roots lie on a curve or surface (not isolated): infinitely many; showing "
                            "those the numeric search reached in the box")
        if any(p.method == "numeric" for p in points):
            messages.append(f"numeric: damped Newton from {search.starts} starting points in the box, kept where "
                            f"every |∂f/∂v| ≤ {10 * atol:g}; points between the starts may be missed")
        if not search.finished:
            problems.append("the numeric search stopped at the deadline: some critical points may be missing")
        if unsolved and points:
            messages.append(f"{unsolved}: the points not found exactly are numeric")
    if symbolic.kink_arguments(f):
        messages.append("f is not differentiable everywhere (|u|, sign, min, max): points without a derivative "
                        "are not searched")
    if not points:
        where = " in the box" if given or search is not None else ""
        if complete and family is None:
            messages.append(f"no critical points{where}")
        elif unsolved or search is None or not search.finished:
            problems.append(f"no critical points found{where}, but there may be some: "
                            f"{unsolved or 'the numeric search did not finish'}")
        else:
            messages.append(f"no critical points found{where} (sympy.solve found none, nor did the numeric search)")
    methods = sorted({p.method for p in points})
    shown = symbolic.to_text(f)
    return CriticalReport(
        input=expression, expression=shown, display=symbolic.to_display(f), variables=tuple(names),
        points=tuple(points), method="+".join(methods) if methods else "none",
        box={n: box[n] for n in names} if search is not None or given else None,
        complete=bool(complete and family is None and not (search and not search.finished)),
        messages=tuple(dict.fromkeys(messages)), problems=tuple(dict.fromkeys(problems)), dtype=dtype,
        device=str(torch_device), tolerance=(rtol, atol), read_as=asked.read_as, notes=asked.notes)


def _on_kink(f, names, point) -> bool:
    """Whether some |u|, sign(u), min/max tie of f has u ≈ 0 at a numeric point (no derivative there)."""
    for u in symbolic.kink_arguments(f):
        value = symbolic.to_float(u.xreplace({symbol(n): sp.Float(point[n], 17) for n in names}))
        if not math.isfinite(value) or abs(value) <= 1e-9:
            return True
    return False


def _search(program, names, box, dtype, device, deadline, atol) -> _Search:
    if len(names) > MAX_NUMERIC_VARIABLES:
        raise InputError(f"the numeric search takes at most {MAX_NUMERIC_VARIABLES} variables")
    return numeric_search(program, names, [box[n] for n in names], dtype, device, deadline, 10 * atol)


def _classify(program, names, candidates, dtype, device, rtol, atol) -> list[CriticalPoint]:
    """f, ∇f and the Hessian at every candidate by autograd (one batch); the Hessian test of calculus."""
    import torch

    if not candidates:
        return []
    rows = torch.tensor([[c[0][n] for n in names] for c in candidates], dtype=dtype, device=device)
    gradient, hessian = _gradient_hessian(program, names, rows)
    with torch.no_grad():
        values = torch.broadcast_to(program({v: rows[:, i] for i, v in enumerate(names)}), (rows.shape[0],))
    gradient, hessian = gradient.cpu().double().numpy(), hessian.cpu().double().numpy()
    values = values.cpu().double().numpy()
    found = []
    for j, (floats, texts, value_text, value, method) in enumerate(candidates):
        if not np.all(np.isfinite(hessian[j])):
            continue
        zero = ["0"] * len(names) if method == "exact" else [None] * len(names)
        facts = _hessian_facts(hessian[j], [float(g) for g in gradient[j]], zero, rtol, atol)
        if not facts["critical"]:
            continue
        f_value = value if value is not None else float(values[j])
        if not math.isfinite(f_value):
            continue
        found.append(CriticalPoint(
            point={n: float(floats[n]) for n in names}, exact=dict(texts) if texts else None, value=f_value,
            value_exact=value_text, classification=facts["second_derivative_test"],
            eigenvalues=tuple(facts["eigenvalues"]), method=method,
            gradient_norm=float(np.linalg.norm(gradient[j]))))
    return found
