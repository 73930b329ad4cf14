"""Exact derivatives and exact values with SymPy (no torch here).

Simplification is optional polish: it runs under a time budget and the unsimplified derivative is kept when it
does not finish. Exact values are taken from the unsimplified derivative, which keeps the expression's own domain
(simplify may cancel a factor that is zero at the point).
"""

from __future__ import annotations

import math
import re
import time
from typing import Iterator, Sequence

import sympy as sp

from pdiff.parse import symbol


def natural_key(name: str) -> tuple:
    """x2 before x10: runs of digits compare as numbers, the rest as text (then the name itself breaks ties)."""
    parts = re.split(r"(\d+)", name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), name


def variables_of(exprs: Sequence[sp.Expr]) -> list[str]:
    """The variable names of the expressions in natural order: sorted by name, numbers by value (x2 before x10)."""
    return sorted({s.name for e in exprs for s in e.free_symbols}, key=natural_key)


class _RealAbs(sp.Function):
    """|u| for an argument that is real wherever the expression is defined: d|u| = sign(u) du."""

    def fdiff(self, argindex=1):
        return _RealSign(self.args[0])


class _RealSign(sp.Function):
    """sign(u) for a real argument: d sign(u) = 2 DiracDelta(u) du."""

    def fdiff(self, argindex=1):
        return 2 * sp.DiracDelta(self.args[0])


def derivative(expr: sp.Expr, wrt: Sequence[str]) -> sp.Expr:
    """∂ⁿexpr, differentiating by wrt[0] first.

    pdiff's expressions are real wherever they are defined, but SymPy cannot prove that of an argument like 1/x,
    log(x) or sqrt(x): it leaves Derivative(sign(1/x), x) unevaluated (so cbrt(log(x)) had no exact value at all)
    and writes |log x|' with re/im parts. Abs and sign are differentiated with their real-argument rules instead.
    """
    if not wrt:
        return expr
    if not expr.has(sp.Abs, sp.sign):
        return sp.diff(expr, *(symbol(name) for name in wrt))
    real = expr.replace(sp.Abs, _RealAbs).replace(sp.sign, _RealSign)
    result = sp.diff(real, *(symbol(name) for name in wrt))
    return result.replace(_RealAbs, sp.Abs).replace(_RealSign, sp.sign)


_KINKS = (sp.Abs, sp.sign, sp.Heaviside, sp.DiracDelta)  # where their argument is 0, smoothness may end


def kink_arguments(expr: sp.Expr) -> list[sp.Expr]:
    """Expressions whose zeros are the only places where expr may stop being smooth: u of |u|, sign(u),
    Heaviside(u), DiracDelta(u), and a - b for two arguments of a Min or Max (where they tie)."""
    found = [node.args[0] for node in expr.atoms(*_KINKS)]
    for node in expr.atoms(sp.Min, sp.Max):
        found += [a - b for i, a in enumerate(node.args) for b in node.args[i + 1:]]
    return list(dict.fromkeys(found))


def _kink_at(expr: sp.Expr, point: dict[str, sp.Expr]) -> bool:
    """Whether some |u|, sign(u), Heaviside(u), DiracDelta(u) has u = 0 at the point, or Min/Max arguments tie."""
    return any(sp.expand(exact_value(u, point)) == 0 for u in kink_arguments(expr))


def _one_sided(expr: sp.Expr, name: str, point: dict[str, sp.Expr]) -> tuple[sp.Expr, sp.Expr]:
    """The limits of expr at the point along the line where only `name` moves: from below, from above."""
    t = sp.Dummy("t", real=True)
    line = {symbol(n): value + t if n == name else value for n, value in point.items()}
    along = expr.xreplace(line)
    return sp.limit(along, t, 0, "-"), sp.limit(along, t, 0, "+")


def nondifferentiability(chain: Sequence[sp.Expr], wrt: Sequence[str], point: dict[str, sp.Expr]) -> str | None:
    """Why ∂ⁿf (chain = f, ∂f/∂wrt[0], ...) does not exist at a point on a kink, or None where it does.

    Only points where a kink is active are examined (elsewhere the functions are smooth): each step's function must
    be continuous along its variable and its derivative must have equal, finite one-sided limits there. So |x| at
    0 is flagged (sign: -1 and 1) while |x|^3 at 0 is not (0 and 0).
    """
    for k, name in enumerate(wrt, start=1):
        before, after = chain[k - 1], chain[k]
        if not (_kink_at(before, point) or _kink_at(after, point)):
            continue
        low, high = _one_sided(before, name, point)
        if low != high:
            return f"not differentiable here: the function jumps along {name} ({low} below, {high} above)"
        low, high = _one_sided(after, name, point)
        if low != high or not low.is_finite:
            step = "the derivative" if k == 1 else f"derivative {k}"
            return (f"not differentiable here: along {name}, {step} is {to_text(low)} from below "
                    f"and {to_text(high)} from above")
    return None


def exact_value(expr: sp.Expr, point: dict[str, sp.Expr]) -> sp.Expr:
    """The exact value at a point given as exact SymPy numbers; nan where SymPy cannot evaluate it.

    xreplace raises on what SymPy left unevaluated (Derivative(..., x) at x = 0 is a "derivative wrt 0"): one
    such value must not stop the worker, which would lose the exact side of every other entry and point.
    """
    mapping = {symbol(name): value for name, value in point.items()}
    try:
        return expr.xreplace(mapping)
    except (ValueError, TypeError, ArithmeticError):
        return sp.nan


def to_float(value: sp.Expr) -> float:
    """A float for an exact value: nan where it is not a real number (complex, undefined)."""
    if value in (sp.oo, -sp.oo):
        return math.inf if value == sp.oo else -math.inf
    try:
        number = complex(sp.N(value, 30))
    except (TypeError, ValueError, ArithmeticError):
        return math.nan  # unevaluated, e.g. DiracDelta(0)
    if number.imag != 0 and abs(number.imag) > 1e-30 * max(1.0, abs(number.real)):
        return math.nan
    return number.real


def _cancel_sign_abs(expr: sp.Expr) -> sp.Expr:
    """sign(u)/|u| → 1/u and sign(u)·|u| → u inside products: equal wherever u ≠ 0 (for real u).

    The derivative of ln|u| is sign(u)/|u| · u'; simplify would write it as Piecewise((0, Eq(u, 0)), (1/u, True)),
    which also claims a value at u = 0, where the derivative does not exist. Only the displayed form is rewritten:
    exact values come from the unsimplified derivative, which is undefined (nan) at u = 0.
    """
    def cancel(product: sp.Expr) -> sp.Expr:
        factors = list(sp.Mul.make_args(product))
        for i, factor in enumerate(factors):
            if not isinstance(factor, sp.sign):
                continue
            u = factor.args[0]
            for j, other in enumerate(factors):
                if other == 1 / sp.Abs(u) or other == sp.Abs(u):
                    factors[i], factors[j] = sp.S.One, (u if other == sp.Abs(u) else 1 / u)
                    break
        return sp.Mul(*factors)

    if not expr.has(sp.sign) or not expr.has(sp.Abs):
        return expr
    return expr.replace(lambda node: node.is_Mul and node.has(sp.sign), cancel)


def simplified(expr: sp.Expr, deadline: float | None = None, alarm=None) -> sp.Expr:
    """A simpler equal form (equal where expr is defined), or the expression itself when nothing is shorter.

    sign(u)/|u| becomes 1/u first (see _cancel_sign_abs); then the staged steps of pdiff.simplify (cheap canonical
    steps, full simplify only for small expressions) until `deadline` (time.monotonic(); `alarm` as in
    pdiff.simplify.staged). A Piecewise that simplify introduces is not taken: it would put a value at the points
    where the derivative is undefined.
    """
    from pdiff.simplify import ops, staged

    cancelled = _cancel_sign_abs(expr)
    best = staged(cancelled, deadline, alarm)
    return best if ops(best) < ops(expr) else expr


def _is_expanded_polynomial(expr: sp.Expr) -> bool:
    """A sum of monomials (numbers times powers of variables): Horner's form only reorders its operations.
    A factored power like (x - 1)^5 is not one: expanding it would cancel catastrophically near x = 1."""
    return expr.is_Add and all(
        factor.is_Number or factor.is_Symbol or (factor.is_Pow and factor.base.is_Symbol and factor.exp.is_Integer
                                                 and factor.exp > 0)
        for term in expr.args for factor in sp.Mul.make_args(term))


def evaluation_form(expr: sp.Expr) -> sp.Expr:
    """An equal expression that takes fewer operations to evaluate at many points: the terms of a sum grouped by
    their non-polynomial factors (sin(u)·(…) + cos(u)·(…)) and expanded polynomial coefficients in Horner form.
    The third derivative of exp(x y) sin(x + y^2) drops from 32 lowered operations to 24. Nothing is expanded or
    cancelled, so the domain and the accuracy stay those of the derivative as SymPy wrote it."""
    if expr.is_Atom:
        return expr
    if not expr.is_Add:  # unevaluated: SymPy would distribute 2*(Horner form) back into a sum
        args = [evaluation_form(arg) for arg in expr.args]
        return expr.func(*args, evaluate=False) if expr.is_Mul or expr.is_Pow else expr.func(*args)
    if _is_expanded_polynomial(expr):
        return sp.horner(expr)
    symbols = expr.free_symbols
    groups: dict[sp.Expr, list[sp.Expr]] = {}
    for term in expr.args:
        factors = sp.Mul.make_args(term)
        rest = sp.Mul(*[f for f in factors if not f.is_polynomial(*symbols)])
        groups.setdefault(rest, []).append(sp.Mul(*[f for f in factors if f.is_polynomial(*symbols)],
                                                  evaluate=False))
    if len(groups) == len(expr.args) or list(groups) == [sp.S.One]:  # nothing to group: each term on its own
        return sp.Add(*[evaluation_form(term) for term in expr.args], evaluate=False)
    return sp.Add(*[sp.Mul(evaluation_form(sp.Add(*coefficients)), evaluation_form(rest), evaluate=False)
                    for rest, coefficients in groups.items()], evaluate=False)


_PARTIAL_DOMAIN = (sp.log, sp.asin, sp.acos, sp.asec, sp.acsc, sp.acosh, sp.atanh, sp.acoth, sp.asech)


def restricts_domain(expr: sp.Expr) -> bool:
    """Whether f may be undefined where its derivative's formula is finite (ln(x) at -1, whose 1/x is -1): a
    logarithm, an inverse function defined on an interval, or a power that is not an integer power. Poles need no
    check (a derivative is infinite where f is), so a polynomial, exp, sin or 1/x answers False."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, _PARTIAL_DOMAIN):
            return True
        if isinstance(node, sp.Pow) and not (node.exp.is_Integer or node.base.is_positive):
            return True
    return False


def to_text(expr: sp.Expr) -> str:
    """The SymPy string of an expression (parseable by sympy)."""
    return sp.sstr(expr)


def to_display(expr: sp.Expr) -> str:
    """A one-line human reading of an expression: ^ for powers."""
    return sp.sstr(expr).replace("**", "^")


def to_display_value(expr: sp.Expr) -> str:
    """An exact value for people: inf and -inf for ±oo, undefined for zoo (complex infinity) and nan, else
    to_display (SymPy itself prints oo, zoo and nan)."""
    if expr == sp.oo:
        return "inf"
    if expr == -sp.oo:
        return "-inf"
    if expr is sp.zoo or expr is sp.nan:
        return "undefined"
    return to_display(expr)


KINK_SECONDS = 2.0  # for the one-sided limits at one point on a kink

Entry = Sequence[tuple[sp.Expr, int, int]]  # Σ coefficient · ∂(partial p) of component c


def identity_entries(n_components: int, n_partials: int) -> list[list[tuple[sp.Expr, int, int]]]:
    """One entry per (component, partial), numbered c * n_partials + p."""
    return [[(sp.Integer(1), c, p)] for c in range(n_components) for p in range(n_partials)]


def entry_jobs(components: Sequence[sp.Expr], partials: Sequence[Sequence[str]], entries: Sequence[Entry],
               points: Sequence[dict[str, sp.Expr]], simplify_seconds: float, alarm) -> Iterator[tuple]:
    """The symbolic side of a call, as a stream of messages (so a time-out keeps what finished).

    Each entry is a linear combination of partials of components (a gradient entry, a Laplacian, a curl
    component...). Yields ("derivative", k, text), ("exact", k, j, exact text, float), ("kink", k, j, why the
    derivative does not exist at point j) and ("simplified", k, text).
    Simplification gets what is left of `simplify_seconds` counted from the start of the job (0: none);
    `alarm(seconds)` is a context manager that interrupts work running past `seconds` with TimeoutError.
    """
    started = time.monotonic()
    chains: dict[tuple[int, tuple[str, ...]], sp.Expr] = {}  # (component, prefix of wrt) → that derivative

    def chain(c: int, p: int) -> list[sp.Expr]:
        """f, ∂f/∂wrt[0], ... ∂ⁿf: each step once, shared by partials with a common prefix."""
        wrt = tuple(partials[p])
        steps = [components[c]]
        for depth in range(1, len(wrt) + 1):
            if (c, wrt[:depth]) not in chains:
                chains[c, wrt[:depth]] = derivative(steps[-1], wrt[depth - 1:depth])
            steps.append(chains[c, wrt[:depth]])
        return steps

    raw = []
    for k, entry in enumerate(entries):
        raw.append(sp.Add(*(coefficient * chain(c, p)[-1] for coefficient, c, p in entry)))
        yield ("derivative", k, to_text(raw[k]))
    for k, expr in enumerate(raw):
        for j, point in enumerate(points):
            value = exact_value(expr, point)
            yield ("exact", k, j, to_text(value), to_float(value))
    for k, entry in enumerate(entries):  # kinks: is the derivative there at all?
        for j, point in enumerate(points):
            for _coefficient, c, p in entry:
                try:
                    with alarm(KINK_SECONDS):
                        note = nondifferentiability(chain(c, p), partials[p], point)
                except (TimeoutError, ValueError, TypeError, NotImplementedError):
                    note = None  # SymPy could not take the limits in time: nothing is claimed
                if note:
                    yield ("kink", k, j, note)
                    break
    # one short budget for the whole job, counted from its start: the derivatives, exact values and kinks above
    # come first (they do not depend on simplification) and simplification gets what is left
    budget_end = started + simplify_seconds
    for k, expr in enumerate(raw):
        if time.monotonic() >= budget_end:
            break
        better = simplified(expr, budget_end, alarm)
        if better is not expr:
            yield ("simplified", k, to_text(better))
