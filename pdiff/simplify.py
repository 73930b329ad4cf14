"""Staged simplification of a derivative for display: cheap canonical steps first, full `sympy.simplify` last.

`sympy.simplify` on the nested derivatives people type spends 0.3-2 s and more (mostly in cancel, trigsimp and
exptrigsimp over the whole expression) for a form that is often no shorter. Most of its benefit comes from a
few structural steps, applied here bottom-up, each subexpression once (results are cached, so the partials of
a Hessian, d2f/dxdy beside d2f/dydx, and a resident worker's later questions share the work):

1. at each sum: numeric content and common factors pulled out (`as_content_primitive`, `gcd_terms` at that
   level only, since the terms below are done), terms sharing a factor collected, and nested fractions combined
   over a common denominator (what `together` does, at that level only; a numerator is expanded where that is
   shorter, as `cancel` would, without expanding the denominator);
2. at each product: exponentials combined (`powsimp` where two exp factors meet), 2 sin(u) cos(u) → sin(2u),
   tanh(u)² - 1 → -1/cosh(u)² and tan(u)² + 1 → 1/cos(u)² (equal wherever the left side is defined);
3. where a sum still holds a fraction, the whole expression over one denominator, through powers:
   sqrt(N/D) → sqrt(N)/sqrt(D) where D > 0, so a nested denominator joins the outer one;
4. full `sympy.simplify` only for small derivatives (FULL_OPS) while the budget lasts, its result preferred on
   a tie (short derivatives read as they did when simplify alone wrote them); above that size, `trigsimp` only
   where trig or hyperbolic functions appear and the expression is still small (TRIG_OPS).
5. `logcombine` only where two logarithms meet (without force: SymPy joins them only where the signs it knows
   of pdiff's real symbols make that valid).

At every step the shortest candidate is kept: fewest operations (`count_ops`), then the shortest printed text.
The result is never longer than the input by `count_ops`. Only the display changes: exact values are taken
from the unsimplified derivative, which keeps the expression's own domain.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import sympy as sp
from sympy.core.mul import _keep_coeff

TRIG_SECONDS = 0.1  # at most this long in trigsimp
FULL_SECONDS = 0.25  # at most this long in full simplify
TRIG_OPS = 20  # trigsimp only on expressions with at most this many operations (and above FULL_OPS)
FULL_OPS = 12  # full simplify only on derivatives with at most this many operations (it is quick there)
FACTOR_OPS = 40  # a polynomial numerator is factored (to cancel against the denominator) only up to this size
EXPAND_OPS = 150  # a numerator is expanded (to see whether that is shorter) only up to this size
CACHE_SIZE = 20000  # entries per cache; a full cache is emptied (a resident worker's memory stays bounded)

_TRIG = (sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc, sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.sech, sp.csch)

_OPS: dict = {}  # expression → count_ops
_NODE: dict = {}  # subexpression → its shortest form found by the bottom-up pass
_EXPANDED: dict = {}  # a numerator factor → the shorter of it and its expanded form
_RESULT: dict = {}  # derivative → its staged form (only complete runs are remembered)


def _remember(cache: dict, key, value):
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def ops(expr: sp.Expr) -> int:
    """count_ops, cached."""
    hit = _OPS.get(expr)
    return hit if hit is not None else _remember(_OPS, expr, sp.count_ops(expr))


def shortest(candidates: Sequence[sp.Expr]) -> sp.Expr:
    """The candidate people read fastest: fewest operations, then the shortest text; the first on a tie."""
    low = min(ops(c) for c in candidates)
    tied = [c for c in candidates if ops(c) == low]
    if len(tied) == 1 or all(c == tied[0] for c in tied[1:]):
        return tied[0]
    return min(tied, key=lambda c: len(sp.sstr(c)))


# ---- the steps

def _factor_top(expr: sp.Expr) -> sp.Expr:
    """factor_terms at this level only (the terms below have been through it): 36(-18x² s + 3c) → 108(...)."""
    content, primitive = expr.as_content_primitive()
    if primitive.is_Add:
        primitive = sp.gcd_terms(primitive, isprimitive=True, fraction=False)
    return _keep_coeff(content, primitive)


def _collect_common(expr: sp.Expr) -> sp.Expr:
    """Terms of a sum that share a factor, collected: a·u + b·u + c → (a + b)·u + c, the most shared first."""
    terms, changed = list(expr.args), False
    while len(terms) > 1:
        where: dict = {}
        for i, term in enumerate(terms):
            for factor in set(sp.Mul.make_args(term)):
                if not factor.is_Number:
                    where.setdefault(factor, []).append(i)
        shared = [f for f in where if len(where[f]) >= 2]
        if not shared:
            break
        factor = max(shared, key=lambda f: (len(where[f]), ops(f), sp.default_sort_key(f)))
        if ops(factor) == 0 and len(where[factor]) < 3:  # x·a + x·b: no shorter for a bare symbol
            break
        inside = sp.Add(*[terms[i] / factor for i in where[factor]])
        terms = [t for i, t in enumerate(terms) if i not in where[factor]] + [factor * _factor_top(inside)]
        changed = True
    return sp.Add(*terms) if changed else expr


def _expanded(base: sp.Expr) -> sp.Expr:
    """A sum of products with sums in them, or its expansion (with content pulled out), whichever is shorter."""
    hit = _EXPANDED.get(base)
    if hit is not None:
        return hit
    best = base
    if any(t.is_Mul and any(f.is_Add for f in t.args) for t in base.args) and ops(base) <= EXPAND_OPS:
        flat = sp.expand_mul(base)
        if flat != base:
            best = shortest([base, flat, _factor_top(flat)])
    return _remember(_EXPANDED, base, best)


def _expand_numerator(numerator: sp.Expr) -> sp.Expr:
    factors = []
    for factor in sp.Mul.make_args(numerator):
        base, exponent = factor.as_base_exp()
        factors.append((_expanded(base) if base.is_Add else base) ** exponent)
    return sp.Mul(*factors)


def _has_nested_fraction(expr: sp.Expr) -> bool:
    """A sum (or a product's sum factor) with a term that has a denominator: 1 + x/(x² + 1)."""
    for factor in sp.Mul.make_args(expr) if expr.is_Mul else (expr,):
        base = factor.as_base_exp()[0]
        if base.is_Add and any(sp.fraction(term)[1] != 1 for term in base.args):
            return True
    return False


def _over_common(terms: Sequence[sp.Expr]) -> sp.Expr:
    """A sum as one fraction over a common denominator, at this level only (the terms are done): each base of a
    denominator at its highest power among the terms. What sympy.together does, without walking into the terms
    again (which made it quadratic in a bottom-up pass)."""
    parts = [sp.fraction(term) for term in terms]
    highest: dict = {}
    powers = []
    for _numerator, denominator in parts:
        mine: dict = {}
        for factor in sp.Mul.make_args(denominator):
            base, exponent = factor.as_base_exp()
            if not exponent.is_Rational:
                base, exponent = factor, sp.S.One
            mine[base] = mine.get(base, 0) + exponent
        for base, exponent in mine.items():
            highest[base] = max(highest.get(base, exponent), exponent)
        powers.append(mine)
    numerator = sp.Add(*[n * sp.Mul(*[b ** (e - mine.get(b, 0)) for b, e in highest.items() if e != mine.get(b, 0)])
                         for (n, _d), mine in zip(parts, powers)])
    numerator, denominator = _expand_numerator(numerator), sp.Mul(*[b ** e for b, e in highest.items()])
    fraction = numerator / denominator
    if (numerator.is_Add and ops(numerator) <= FACTOR_OPS and any(b.is_Add for b in highest)
            and numerator.is_polynomial()):
        # a polynomial numerator factored: a factor it shares with the denominator cancels (the rational part's
        # cancel, without expanding the denominator): (x³ - x² - x + 1)/(x (x - 1)²) → (x + 1)/x
        fraction = shortest([fraction, sp.factor(numerator) / denominator])
    return fraction


def _together(expr: sp.Expr) -> sp.Expr:
    """One fraction, its numerator expanded where that is shorter: (1 - 4x⁴/(x⁴ + 1))/(x⁴ + 1) → (1 - 3x⁴)/(x⁴ + 1)².
    A product's sum factors are each put over one denominator (SymPy's Mul gathers the denominators)."""
    if expr.is_Add:
        return _over_common(expr.args)
    return sp.Mul(*[_over_common(f.base.args) ** f.exp if f.is_Pow and f.base.is_Add and f.exp.is_Integer
                    else _over_common(f.args) if f.is_Add else f for f in expr.args])


def _one_fraction(expr: sp.Expr) -> sp.Expr:
    """The whole expression over one denominator, through powers: sqrt(N/D) → sqrt(N)/sqrt(D) where D > 0 (so a
    nested denominator joins the outer one). Function arguments are left as the bottom-up pass wrote them."""
    if expr.is_Atom or isinstance(expr, sp.Function) or not expr.has(sp.Pow):
        return expr
    if expr.is_Pow:
        base = _one_fraction(expr.base)
        if expr.exp.is_Integer:
            return base ** expr.exp
        numerator, denominator = sp.fraction(base)
        if denominator != 1 and denominator.is_positive:
            return _expand_numerator(numerator) ** expr.exp / denominator ** expr.exp
        return base ** expr.exp
    return _together(expr.func(*[_one_fraction(arg) for arg in expr.args]))


def _nested_anywhere(expr: sp.Expr) -> bool:
    """Whether some sum (outside function arguments) has a term with a denominator: only then can the whole
    expression be put over one denominator differently from how the bottom-up pass left it."""
    if expr.is_Atom or isinstance(expr, sp.Function):
        return False
    if expr.is_Add and any(sp.fraction(term)[1] != 1 for term in expr.args):
        return True
    return any(_nested_anywhere(arg) for arg in expr.args)


def _as_one_fraction(expr: sp.Expr) -> sp.Expr:
    if not _nested_anywhere(expr):
        return expr
    whole = _one_fraction(expr)
    return shortest([whole, sp.factor_terms(whole)])


_SQUARES = (  # a sum of two terms → an equal product, wherever the sum is defined
    (lambda u: sp.tanh(u) ** 2 - 1, lambda u: -1 / sp.cosh(u) ** 2),
    (lambda u: 1 - sp.tanh(u) ** 2, lambda u: 1 / sp.cosh(u) ** 2),
    (lambda u: sp.tan(u) ** 2 + 1, lambda u: 1 / sp.cos(u) ** 2),
)


def _squares(product: sp.Expr) -> sp.Expr:
    """tanh(u)² - 1 → -1/cosh(u)² (and 1 - tanh², tan² + 1) among a product's factors: SymPy writes tanh' that way."""
    def rewrite(factor: sp.Expr) -> sp.Expr:
        if factor.is_Add and len(factor.args) == 2:
            for function in factor.atoms(sp.tanh, sp.tan):
                u = function.args[0]
                for pattern, replacement in _SQUARES:
                    if factor == pattern(u):
                        return replacement(u)
        return factor

    return product.func(*[rewrite(factor) for factor in product.args])


def _double_angle(product: sp.Expr) -> sp.Expr:
    """sin(u)·cos(u) → sin(2u)/2 and sinh(u)·cosh(u) → sinh(2u)/2 among a product's factors."""
    factors = list(product.args)
    for factor in product.args:
        if isinstance(factor, (sp.sin, sp.sinh)) and factor in factors:
            u = factor.args[0]
            partner = (sp.cos if isinstance(factor, sp.sin) else sp.cosh)(u)
            if partner in factors:
                factors.remove(factor)
                factors.remove(partner)
                factors += [factor.func(2 * u), sp.Rational(1, 2)]
    return sp.Mul(*factors)


def _exp_factors(product: sp.Expr) -> int:
    return sum(1 for f in product.args if isinstance(f, sp.exp) or (f.is_Pow and isinstance(f.base, sp.exp)))


def _node(expr: sp.Expr) -> sp.Expr:
    """The bottom-up pass: each subexpression's shortest form from the cheap steps, its arguments done first."""
    if expr.is_Atom:
        return expr
    hit = _NODE.get(expr)
    if hit is not None:
        return hit
    args = [_node(arg) for arg in expr.args]
    new = expr.func(*args) if args != list(expr.args) else expr
    candidates = [new]
    if new.is_Add:
        candidates += [_factor_top(new), _collect_common(new)]
    if (new.is_Add or new.is_Mul) and _has_nested_fraction(new):
        candidates.append(_together(new))
    if new.is_Mul:
        candidates.append(sp.Mul(*new.as_content_primitive()))
        if _exp_factors(new) >= 2:
            candidates.append(sp.powsimp(new, combine="exp"))
        if new.has(sp.sin, sp.sinh):
            candidates.append(_double_angle(new))
    for candidate in list(candidates):
        if candidate.is_Mul and candidate.has(sp.tanh, sp.tan):
            candidates.append(_squares(candidate))
    return _remember(_NODE, expr, shortest(candidates))


# ---- the stages, within a budget

def staged(expr: sp.Expr, deadline: float | None = None, alarm: Callable | None = None,
           original: sp.Expr | None = None) -> sp.Expr:
    """A shorter equal form of expr (or expr itself), from the stages above while time lasts.

    `deadline` (time.monotonic()) ends the work; `alarm(seconds)` is a context manager raising TimeoutError after
    `seconds` (bounds.alarm), used to cut each stage at the deadline. Without `alarm` the stages run unguarded and
    a TimeoutError from an alarm set by the caller ends them, keeping what was found so far. `original`: the
    expression full simplify starts from (today's input to it; by default expr).
    """
    hit = _RESULT.get(expr)
    if hit is not None:
        return hit
    best, complete = expr, True
    stages: list = [(None, _node), (None, _as_one_fraction)]  # (its own cap in seconds or None, the step)
    if len(expr.atoms(sp.log)) >= 2:
        stages.append((None, sp.logcombine))
    if ops(expr) <= FULL_OPS:
        stages.append((FULL_SECONDS, None))
    elif expr.has(*_TRIG) and ops(expr) <= TRIG_OPS:
        stages.append((TRIG_SECONDS, sp.trigsimp))
    for cap, step in stages:
        limits = [x for x in (cap, None if deadline is None else deadline - time.monotonic()) if x is not None]
        if limits and min(limits) <= 0:
            complete = False
            break
        try:
            with (alarm(min(limits)) if alarm is not None and limits else _unguarded()):
                if step is None:  # full simplify: preferred on a tie
                    best = _full(original if original is not None else expr, best)
                else:
                    best = shortest([best, step(best)])
        except TimeoutError:
            complete = False
            if alarm is None:  # the caller's own alarm: its time is up
                break
        except (ValueError, TypeError, NotImplementedError, AttributeError, RecursionError):
            pass  # a step SymPy cannot take on this expression: the others still count
    if ops(best) >= ops(expr):
        best = expr
    return _remember(_RESULT, expr, best) if complete else best


class _unguarded:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _full(original: sp.Expr, best: sp.Expr) -> sp.Expr:
    """sympy.simplify of the original, taken where it is no longer than the staged form (so short derivatives read
    as they did when simplify alone wrote them); a Piecewise it introduces is not taken (it would claim values
    where the derivative is undefined)."""
    candidate = sp.simplify(original)
    if candidate.has(sp.Piecewise) and not original.has(sp.Piecewise):
        return best
    return candidate if ops(candidate) <= ops(best) else best
