"""Exact derivatives and exact values with SymPy (no torch here).

Simplification is optional polish: it runs under a time budget and the unsimplified derivative is kept when it
does not finish. Exact values are taken from the unsimplified derivative, which keeps the expression's own domain
(simplify may cancel a factor that is zero at the point).
"""

from __future__ import annotations

import math
import time
from typing import Iterator, Sequence

import sympy as sp

from pdiff.parse import symbol


def variables_of(exprs: Sequence[sp.Expr]) -> list[str]:
    """The variable names of the expressions, sorted by name."""
    return sorted({s.name for e in exprs for s in e.free_symbols})


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


def simplified(expr: sp.Expr) -> sp.Expr:
    """A simpler equal form, or the expression itself when simplify does not make it shorter."""
    candidate = sp.simplify(expr)
    return candidate if sp.count_ops(candidate) < sp.count_ops(expr) else expr


def to_text(expr: sp.Expr) -> str:
    """The SymPy string of an expression (parseable by sympy)."""
    return sp.sstr(expr)


def to_display(expr: sp.Expr) -> str:
    """A one-line human reading of an expression: ^ for powers."""
    return sp.sstr(expr).replace("**", "^")


Entry = Sequence[tuple[sp.Expr, int, int]]  # Σ coefficient · ∂(partial p) of component c


def identity_entries(n_components: int, n_partials: int) -> list[list[tuple[sp.Expr, int, int]]]:
    """One entry per (component, partial), numbered c * n_partials + p."""
    return [[(sp.Integer(1), c, p)] for c in range(n_components) for p in range(n_partials)]


def entry_jobs(components: Sequence[sp.Expr], partials: Sequence[Sequence[str]], entries: Sequence[Entry],
               points: Sequence[dict[str, sp.Expr]], simplify_seconds: float, alarm) -> Iterator[tuple]:
    """The symbolic side of a call, as a stream of messages (so a time-out keeps what finished).

    Each entry is a linear combination of partials of components (a gradient entry, a Laplacian, a curl
    component...). Yields ("derivative", k, text), ("exact", k, j, exact text, float), ("simplified", k, text).
    Simplification shares one budget of `simplify_seconds`; `alarm(seconds)` is a context manager that
    interrupts work running past `seconds` with TimeoutError.
    """
    cache: dict[tuple[int, int], sp.Expr] = {}

    def partial(c: int, p: int) -> sp.Expr:
        if (c, p) not in cache:
            cache[c, p] = derivative(components[c], partials[p])
        return cache[c, p]

    raw = []
    for k, entry in enumerate(entries):
        raw.append(sp.Add(*(coefficient * partial(c, p) for coefficient, c, p in entry)))
        yield ("derivative", k, to_text(raw[k]))
    for k, expr in enumerate(raw):
        for j, point in enumerate(points):
            value = exact_value(expr, point)
            yield ("exact", k, j, to_text(value), to_float(value))
    budget_end = time.monotonic() + simplify_seconds  # one budget for all simplifications of the call
    for k, expr in enumerate(raw):
        try:
            with alarm(budget_end - time.monotonic()):
                better = simplified(expr)
        except TimeoutError:
            break
        if better is not expr:
            yield ("simplified", k, to_text(better))
