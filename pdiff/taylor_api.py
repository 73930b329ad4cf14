"""Taylor polynomials, tangent lines and planes (`pdiff taylor`, `pdiff tangent`), and the exact side of
high-order partials (`pdiff diff` above EXACT_SERIES_ORDER).

Exact coefficients come from SymPy (one expansion in a shifted variable t = x - a per variable, nested, in the
bounded worker, within --timeout); the numeric ones from pdiff.taylor (Taylor mode in float64, the same
coefficients autograd's derivatives would give divided by k!). At high orders SymPy's nth derivative is huge (d12
of exp(sin x)/(1+x^2) has 4,000 operations and takes 13 s), so the exact value of such a partial is the same series
propagated in mpmath at 60 digits (pdiff.taylor.exact_partial), reported to 50 and labelled so.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import sympy as sp

from pdiff import bounds, question, symbolic
from pdiff.errors import InputError, LimitError
from pdiff.parse import symbol
from pdiff.points import check_points, coerce_point
from pdiff.results import Status

EXACT_SERIES_ORDER = 8  # above this order the exact value is by series in mpmath (SymPy's d8 of the benchmark
# function has 1,161 operations and takes 1.8 s cumulatively; d12: 4,105 and 13 s)
SERIES_DIGITS = 50
SERIES_NOTE = f"exact value by Taylor series in mpmath at {SERIES_DIGITS} digits"
MAX_TAYLOR_ORDER = 60  # of a polynomial (its coefficients are all printed); one partial may go to taylor.MAX_ORDER


def series_partials(partials: Sequence[Sequence[str]]) -> tuple[int, ...]:
    """The partials whose exact values are computed by series instead of SymPy's derivative."""
    return tuple(p for p, wrt in enumerate(partials) if len(wrt) > EXACT_SERIES_ORDER)


def unexpanded(expr: sp.Expr, wrt: Sequence[str]) -> sp.Expr:
    """The derivative written, not expanded: Derivative(f, (x, 20)) (application order, runs grouped)."""
    groups = [(symbol(name), len(list(run))) for name, run in itertools.groupby(wrt)]
    return sp.Derivative(expr, *groups, evaluate=False)


def _text(value) -> tuple[str, float]:
    """An mpmath result as (SERIES_DIGITS significant digits, float); undefined where it is not a real number."""
    import mpmath

    if isinstance(value, mpmath.mpc):
        if value.imag != 0 and abs(value.imag) > mpmath.mpf(10) ** (-40) * max(1, abs(value.real)):
            return "nan", math.nan
        value = value.real
    if not mpmath.isfinite(value):
        return ("nan", math.nan) if mpmath.isnan(value) else (("oo" if value > 0 else "-oo"),
                                                              math.inf if value > 0 else -math.inf)
    text = mpmath.nstr(value, SERIES_DIGITS, strip_zeros=True, min_fixed=-5, max_fixed=SERIES_DIGITS)
    return text, float(value)


def entry_jobs(components, partials, entries, points, simplify_seconds: float, alarm,
               series: Sequence[int]) -> Iterator[tuple]:
    """symbolic.entry_jobs's messages, with the partials in `series` by Taylor series in mpmath instead of SymPy's
    derivative: ("derivative", k, the unexpanded Derivative) and ("exact", k, j, 50 digits, float). At a point
    on a kink (|u| with u = 0, a Min/Max tie) SymPy's one-sided limits decide, as for low orders."""
    from pdiff import taylor

    series = set(series)
    low = [k for k, entry in enumerate(entries) if not any(p in series for _, _, p in entry)]
    if low:
        for message in symbolic.entry_jobs(components, partials, [entries[k] for k in low], points,
                                           simplify_seconds, alarm):
            yield (message[0], low[message[1]], *message[2:])
    high = [k for k in range(len(entries)) if k not in low]
    for k in high:
        text = sp.Add(*(coefficient * unexpanded(components[c], partials[p]) for coefficient, c, p in entries[k]))
        yield ("derivative", k, symbolic.to_text(text))
    for k in high:
        for j, point in enumerate(points):
            kinked = [(c, p) for _, c, p in entries[k] if symbolic._kink_at(components[c], point)]
            if kinked:  # the one-sided limits of today's engine, on SymPy's derivative chain
                yield from _at_kink(components, partials, entries[k], k, j, point, alarm)
                continue
            import mpmath

            total = mpmath.mpf(0)
            try:
                for coefficient, c, p in entries[k]:
                    with mpmath.mp.workdps(taylor.EXACT_DIGITS):
                        total += taylor.exact_partial(components[c], partials[p], point) * mpmath.mpf(
                            symbolic.to_float(coefficient) if not coefficient.is_Integer else int(coefficient))
            except (ZeroDivisionError, ValueError, OverflowError):
                total = mpmath.nan
            yield ("exact", k, j, *_text(total))


def _at_kink(components, partials, entry, k, j, point, alarm) -> Iterator[tuple]:
    value, note = sp.S.Zero, None
    for coefficient, c, p in entry:
        chain = [components[c]]
        for name in partials[p]:
            chain.append(symbolic.derivative(chain[-1], [name]))
        value += coefficient * chain[-1]
        try:
            with alarm(symbolic.KINK_SECONDS):
                note = note or symbolic.nondifferentiability(chain, partials[p], point)
        except (TimeoutError, ValueError, TypeError, NotImplementedError):
            pass
    exact = symbolic.exact_value(value, point)
    yield ("exact", k, j, symbolic.to_text(exact), symbolic.to_float(exact))
    if note:
        yield ("kink", k, j, note)


# ------------------------------------------------------------------------------------ Taylor polynomials


@dataclass(frozen=True)
class Coefficient:
    """One term c·Π(v - a_v)^{n_v} of a Taylor polynomial."""

    index: tuple[int, ...]  # the power of each variable, in `variables` order
    exact: str | None  # SymPy string of c (None: not finished)
    value: float | None  # its float
    numeric: float | None  # by Taylor mode in float64 (f's partial / Π n_v!)
    abs_error: float | None
    status: Status
    note: str | None = None


@dataclass(frozen=True)
class TaylorReport:
    """`pdiff taylor`: the polynomial of f at a point up to an order."""

    input: str
    expression: str  # as understood, SymPy string
    display: str
    variables: tuple[str, ...]
    point: dict[str, float]
    point_text: str
    order: int
    coefficients: tuple[Coefficient, ...]
    polynomial: str | None  # SymPy string in the variables (exact coefficients); None when they did not finish
    numeric_polynomial: str  # the same with the float64 coefficients
    remainder_order: int  # the remainder is O(|x - a|^remainder_order)
    dtype: str
    device: str
    tolerance: tuple[float, float]
    tangent: str | None = None  # "tangent line y = ..." / "tangent plane z = ..." for order 1 in 1 or 2 variables
    problems: tuple[str, ...] = ()
    read_as: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self):
        from pdiff.errors import ExitCode

        bad = self.problems or any(c.status is not Status.OK for c in self.coefficients)
        return ExitCode.MATH if bad else ExitCode.OK


def multi_indices(n_variables: int, order: int) -> list[tuple[int, ...]]:
    """Every multi-index of total degree ≤ order, by degree, then lexicographically from the first variable."""
    found = [index for index in itertools.product(range(order + 1), repeat=n_variables) if sum(index) <= order]
    return sorted(found, key=lambda index: (sum(index), tuple(-i for i in index)))


def exact_coefficients(expr: sp.Expr, variables: Sequence[str], point: dict[str, sp.Expr], order: int,
                       indices: Sequence[tuple[int, ...]]) -> Iterator[tuple]:
    """The bounded worker's job: ("coefficient", i, SymPy string, float, the SymPy value) per multi-index, by SymPy series: each
    variable v is a + t_v and f is expanded in t_1, then its coefficients in t_2, ... up to the total order.
    Non-analytic points (a pole, |x| at 0) raise inside SymPy or give non-finite coefficients."""
    shifted = {symbol(v): point[v] + sp.Dummy(f"t_{v}") for v in variables}
    ts = [shifted[symbol(v)] - point[v] for v in variables]
    body = expr.xreplace(shifted)
    if not variables:
        value = symbolic.exact_value(expr, point)
        yield ("coefficient", 0, symbolic.to_text(value), symbolic.to_float(value), value)
        return
    # all orders at once in one variable; several: a scale s·t_v for every variable, so a single series in s
    # up to the total order holds every term of degree ≤ order
    s = sp.Dummy("s")
    scaled = body.xreplace({t: s * t for t in ts}) if len(ts) > 1 else body.xreplace({ts[0]: s})
    expansion = sp.series(scaled, s, 0, order + 1).removeO()
    expansion = sp.expand(expansion)
    if len(ts) == 1:
        poly_terms = {(k,): expansion.coeff(s, k) for k in range(order + 1)}
        for i, index in enumerate(indices):
            value = sp.nsimplify(poly_terms[index]) if poly_terms[index].is_Float else poly_terms[index]
            value = sp.simplify(value) if value.count_ops() < 60 else value
            yield ("coefficient", i, symbolic.to_text(value), symbolic.to_float(value), value)
        return
    by_degree = {k: sp.expand(expansion.coeff(s, k)) for k in range(order + 1)}
    for i, index in enumerate(indices):
        term = by_degree[sum(index)]
        for t, n in zip(ts, index):
            term = term.coeff(t, n)
        term = term.xreplace({t: 0 for t in ts})
        term = sp.simplify(term) if term.count_ops() < 60 else term
        yield ("coefficient", i, symbolic.to_text(term), symbolic.to_float(term), term)


def _monomial(index: Sequence[int], variables: Sequence[str], point: Mapping[str, sp.Expr]) -> sp.Expr:
    factors = [(symbol(v) - point[v] if point[v] != 0 else symbol(v)) ** n
               for v, n in zip(variables, index) if n]
    return sp.Mul(*factors)


def polynomial_text(coefficients: Sequence[sp.Expr], indices: Sequence[tuple[int, ...]], variables: Sequence[str],
                    point: Mapping[str, sp.Expr], printer=symbolic.to_text) -> str:
    """Σ c · Π (v - a_v)^n as a SymPy string, by degree and in the shifts as written (2 + 4*(x - 1) + (y - 2);
    SymPy itself would distribute 4*(x - 1) into 4*x - 4): what people read, and sympify reads back."""
    pieces = []
    for c, index in zip(coefficients, indices):
        if c == 0:
            continue
        mono = _monomial(index, variables, point)
        negative = c.could_extract_minus_sign()
        magnitude = -c if negative else c
        term = magnitude * mono
        if term.is_Add:  # SymPy distributed a number over a shift: keep the product as written
            coefficient = printer(magnitude)
            if magnitude.is_Add:
                coefficient = f"({coefficient})"
            shown = symbolic.to_text(mono) if not mono.is_Add else f"({symbolic.to_text(mono)})"
            if magnitude == 1:
                text = shown
            elif magnitude.is_Rational and not magnitude.is_Integer:  # (x - 4)/4, 3*(x - 4)/4
                text = (shown if magnitude.p == 1 else f"{magnitude.p}*{shown}") + f"/{magnitude.q}"
            else:
                text = f"{coefficient}*{shown}"
        else:
            text = printer(term)
        pieces.append((negative, text))
    if not pieces:
        return "0"
    out = ("-" if pieces[0][0] else "") + pieces[0][1]
    for negative, text in pieces[1:]:
        out += (" - " if negative else " + ") + text
    return out


def _numeric_coefficients(expr, variables, point, indices, dtype: str, device: str, deadline: float):
    import torch

    from pdiff import taylor
    from pdiff.autodiff import resolve_device, resolve_dtype
    from pdiff.lower import lower

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    program = lower(expr, list(variables))
    columns = {v: torch.tensor([float(sp.N(point[v], 17))], dtype=torch_dtype, device=torch_device)
               for v in variables}
    order = max(sum(index) for index in indices)
    # one box holds every multi-index of degree ≤ order: the order in each variable (several variables: the
    # products of the box hold the mixed terms too)
    box = tuple(order for _ in variables)
    values = taylor.box_coefficients(program, columns, list(variables), box, deadline)
    if order == 0:
        return [float(values.reshape(-1)[0])], str(torch_device)
    out = []
    for index in indices:
        scale = 1.0
        for v, n in zip(variables, index):
            scale /= 2.0 ** (taylor.scale_exponent(order) * n)
        out.append(float(values[(0, *index)]) * scale)
    return out, str(torch_device)


def taylor_polynomial(expression: str, *, at: Sequence[str | Mapping[str, object]] = (), order: int = 2,
                      wrt: str | Sequence[str] | None = None, dtype: str = "float64", device: str = "auto",
                      timeout: float = bounds.DEFAULT_TIMEOUT, symbolic_side: bool = True,
                      memory_mb: int = bounds.DEFAULT_MEMORY_MB, latex: bool | None = None,
                      var: str | Sequence[str] | None = None) -> TaylorReport:
    """The Taylor polynomial of `expression` at one point up to `order`: exact coefficients (SymPy series, in
    the bounded worker) beside Taylor mode's float64 ones.

    >>> r = taylor_polynomial("exp(sin x)", at=["x=0"], order=4)
    >>> r.polynomial
    '1 + x + x**2/2 - x**4/8'
    """
    from pdiff.api import TOLERANCES, judge

    if not timeout > 0:
        raise InputError("--timeout must be positive")
    if not 0 <= order <= MAX_TAYLOR_ORDER:
        raise LimitError(f"--order must be between 0 and {MAX_TAYLOR_ORDER}")
    deadline = time.monotonic() + timeout
    points = [coerce_point(p) for p in at]
    if len(points) != 1:
        raise InputError("give exactly one point with --at, e.g. --at x=0")
    point = points[0]
    asked = question.read(expression, names=question.declared(points, wrt, var), latex=latex)
    if asked.equation is not None or asked.is_vector:
        raise InputError("a Taylor polynomial is of one scalar expression (not an equation or a vector)")
    expr = asked.components[0]
    present = symbolic.variables_of([expr])
    variables = question.split_names(wrt) or list(asked.variables)
    if not variables:
        raise InputError("the expression has no variables: there is no polynomial to expand")
    parameters = [v for v in present if v not in variables]
    check_points([point], [*variables, *parameters])
    if len(variables) > 6:
        raise LimitError("a Taylor polynomial in more than 6 variables is too large to print")
    expr_at = expr.xreplace({symbol(p): point[p] for p in parameters})
    indices = multi_indices(len(variables), order)
    if len(indices) > 2000:
        raise LimitError(f"{len(indices)} coefficients: lower the order or the number of variables")
    shown_point = {v: point[v] for v in variables}

    worker = (bounds.start(exact_coefficients, expr_at, tuple(variables), shown_point, order, indices,
                           memory_mb=memory_mb) if symbolic_side else None)
    try:
        numeric, device_name = _numeric_coefficients(expr_at, variables, shown_point, indices, dtype, device,
                                                     deadline)
    except BaseException:
        if worker:
            worker.close()
        raise
    outcome = worker.collect(deadline) if worker else None
    exact, exact_values = {}, {}
    for _kind, i, text, value, expr_value in outcome.messages if outcome else ():
        exact[i] = (text, value)
        exact_values[i] = expr_value
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])
    missing = (f"the symbolic side failed: {outcome.error}" if outcome and outcome.error
               else f"the exact coefficients did not finish within {timeout:g} s")
    coefficients, problems = [], []
    for i, index in enumerate(indices):
        text, value = exact.get(i, (None, None))
        status, note = judge(numeric[i], value, text, rtol, atol)
        if status is Status.OK and symbolic_side and text is None:
            status, note = Status.TIMEOUT, f"no exact coefficient ({missing})"
        error = (abs(numeric[i] - value) if value is not None and math.isfinite(value)
                 and math.isfinite(numeric[i]) else None)
        coefficients.append(Coefficient(index, text, value, numeric[i], error, status, note))
        if note:
            problems.append(f"coefficient of {monomial(index, variables, shown_point)}: {note}")
    polynomial = None
    if symbolic_side and all(c.exact is not None and c.value is not None and math.isfinite(c.value)
                             for c in coefficients):
        polynomial = polynomial_text([exact_values[i] for i in range(len(indices))], indices, variables,
                                     shown_point)
    numeric_polynomial = polynomial_text([sp.Float(c.numeric, 17) if c.numeric else sp.S.Zero
                                          for c in coefficients], indices, variables, shown_point,
                                         lambda e: sp.sstr(e, full_prec=False))
    tangent = None
    if order == 1 and len(variables) in (1, 2):
        shown = (polynomial or numeric_polynomial).replace("**", "^")
        tangent = f"tangent line y = {shown}" if len(variables) == 1 else f"tangent plane z = {shown}"
    label = ", ".join(f"{v}={symbolic.to_display(point[v])}" for v in point)
    floats = {v: float(sp.N(value, 17)) for v, value in point.items()}
    return TaylorReport(expression, symbolic.to_text(expr), symbolic.to_display(expr), tuple(variables), floats,
                        label, order, tuple(coefficients), polynomial, numeric_polynomial, order + 1, dtype,
                        device_name, (rtol, atol), tangent, tuple(problems), asked.read_as, tuple(asked.notes))


def monomial(index: Sequence[int], variables: Sequence[str], point: Mapping[str, sp.Expr]) -> str:
    """(x - 1)^2 (y - 2) for people; 1 for the constant term."""
    if not any(index):
        return "1"
    return symbolic.to_display(_monomial(index, variables, point))
