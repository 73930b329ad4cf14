"""Checking each step, apart from the rules: the rule's output against SymPy's derivative of the step's input.

First numerically, at a few points of the step's own real domain (Python floats with the real-domain semantics of
`math`: sqrt(-1), log(0), asin(2) are undefined, not complex; a float disagreement is confirmed at 30 digits before
it counts), then symbolically (SymPy shows the difference is 0) under a time budget. The root is also compared
with torch autograd of the expression as typed. A step SymPy could not decide is "checked" at its points, never
"proven"; one with no point in its domain and no symbolic answer is "unverified".
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from pdiff import bounds, symbolic

RTOL, ATOL = 1e-7, 1e-9  # float screening, as pdiff check
EXACT_RTOL = 1e-10  # a suspect is confirmed when the 30-digit values differ by more than this
POINTS = 4  # agreeing points wanted per step
TRIES = 24  # points drawn at most per step
SCALES = (1.0, 3.0, 0.5, 10.0)


class _Unknown(Exception):
    """A node the float evaluator does not know (an unevaluated Derivative, ...)."""


def _inverse(f):
    def g(v):
        return f(1 / v)
    return g


_FUNCTIONS: dict[type, Callable] = {
    sp.sin: math.sin, sp.cos: math.cos, sp.tan: math.tan,
    sp.cot: lambda v: 1 / math.tan(v), sp.sec: lambda v: 1 / math.cos(v), sp.csc: lambda v: 1 / math.sin(v),
    sp.asin: math.asin, sp.acos: math.acos, sp.atan: math.atan,
    sp.acot: lambda v: math.pi / 2 if v == 0 else math.atan(1 / v),
    sp.asec: _inverse(math.acos), sp.acsc: _inverse(math.asin),
    sp.sinh: math.sinh, sp.cosh: math.cosh, sp.tanh: math.tanh,
    sp.coth: lambda v: 1 / math.tanh(v), sp.sech: lambda v: 1 / math.cosh(v), sp.csch: lambda v: 1 / math.sinh(v),
    sp.asinh: math.asinh, sp.acosh: math.acosh, sp.atanh: math.atanh,
    sp.acoth: _inverse(math.atanh), sp.asech: _inverse(math.acosh), sp.acsch: _inverse(math.asinh),
    sp.exp: math.exp, sp.log: math.log, sp.Abs: abs, sp.erf: math.erf,
    sp.sign: lambda v: (v > 0) - (v < 0),
    sp.Heaviside: lambda v, *h: 1.0 if v > 0 else 0.0 if v < 0 else (float(h[0]) if h else 0.5),
    sp.DiracDelta: lambda v, *k: 0.0 if v != 0 else math.nan,
    sp.atan2: lambda y, x: math.nan if x == 0 and y == 0 else math.atan2(y, x),
    sp.Min: min, sp.Max: max,
}


def evaluate(expr: sp.Expr, point: Mapping[sp.Symbol, float]) -> float:
    """expr at the point in float64; nan outside its real domain (raises _Unknown for what it cannot evaluate)."""
    try:
        value = _value(expr, point)
    except (ValueError, ZeroDivisionError, OverflowError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _value(expr, point) -> float:
    if expr.is_Symbol:
        return point[expr]
    if expr.is_Number or expr.is_NumberSymbol:
        return float(expr)
    args = expr.args
    if expr.is_Add:
        return math.fsum(_value(a, point) for a in args)
    if expr.is_Mul:
        result = 1.0
        for a in args:
            result *= _value(a, point)
        return result
    if expr.is_Pow:
        base, exponent = _value(args[0], point), _value(args[1], point)
        if args[1].is_Integer:
            if base == 0 and exponent < 0:
                raise ZeroDivisionError
            return base ** int(args[1])
        return math.pow(base, exponent)
    function = _FUNCTIONS.get(type(expr))
    if function is None:
        raise _Unknown(type(expr).__name__)
    return float(function(*(_value(a, point) for a in args)))


def _exact(expr: sp.Expr, point: Mapping[sp.Symbol, sp.Rational]) -> float:
    try:
        return symbolic.to_float(expr.xreplace(dict(point)))
    except (TypeError, ValueError, ArithmeticError):
        return math.nan


def _close(a: float, b: float, rtol=RTOL, atol=ATOL) -> bool:
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def points(symbols: Sequence[sp.Symbol], seed: int = 0) -> list[dict[sp.Symbol, sp.Rational]]:
    """TRIES points with every coordinate k/100 (k not a multiple of 5: kinks and holes sit at round values),
    spread over SCALES; the same symbols and seed give the same points."""
    rng = random.Random(f"{seed}:{','.join(sorted(s.name for s in symbols))}")
    drawn = []
    for i in range(TRIES):
        scale = SCALES[i % len(SCALES)]
        point = {}
        for s in symbols:
            k = round((rng.random() * 2 - 1) * scale * 100)
            point[s] = sp.Rational(k + (k % 5 == 0), 100)
        drawn.append(point)
    return drawn


@dataclass(frozen=True)
class Numeric:
    """How a claim fared at points of the domain: agreeing points, and a confirmed counterexample if any."""

    agree: int
    counterexample: str | None = None
    evaluable: bool = True


def _point_text(point) -> str:
    return ", ".join(f"{s.name}={float(v):g}" for s, v in sorted(point.items(), key=lambda kv: kv[0].name))


def compare(claim: sp.Expr, truth: sp.Expr, domain: sp.Expr | None = None, *, wanted: int = POINTS,
            seed: int = 0, extra: Sequence[Mapping[sp.Symbol, sp.Rational]] = ()) -> Numeric:
    """claim against truth where `domain` (default: truth) and truth are defined."""
    domain = truth if domain is None else domain
    symbols = sorted(claim.free_symbols | truth.free_symbols | domain.free_symbols, key=lambda s: s.name)
    agree = 0
    for point in [*extra, *points(symbols, seed)]:
        floats = {s: float(v) for s, v in point.items()}
        try:
            f, t, c = evaluate(domain, floats), evaluate(truth, floats), evaluate(claim, floats)
        except _Unknown:
            return Numeric(agree, evaluable=False)
        if math.isnan(f) or math.isnan(t):
            continue
        if not math.isnan(c) and _close(c, t):
            agree += 1
        else:  # a suspect: confirmed at 30 digits, or float noise after all
            te, ce = _exact(truth, point), _exact(claim, point)
            if math.isnan(_exact(domain, point)) or math.isnan(te):
                continue
            if math.isnan(ce) or not _close(ce, te, EXACT_RTOL, 0.0):
                got = "undefined" if math.isnan(ce) else f"{ce:.10g}"
                return Numeric(agree, f"at {_point_text(point)}: {got}, but the derivative is {te:.10g}")
            agree += 1
        if agree >= wanted:
            break
    return Numeric(agree)


class Budget:
    """Seconds left for symbolic work, spent step by step (each step at most `per_step`)."""

    def __init__(self, seconds: float, per_step: float, per_root: float | None = None):
        self.deadline = time.monotonic() + seconds
        self.per_step = per_step
        self.per_root = per_step if per_root is None else per_root

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def slice(self, root: bool = False) -> float:
        return min(self.per_root if root else self.per_step, self.left())


def is_zero(difference: sp.Expr, seconds: float) -> bool | None:
    """True when SymPy shows the difference is 0 within `seconds`, False when it shows a nonzero constant,
    None when it could not tell."""
    if difference == 0:
        return True
    if seconds <= 0.01:
        return None
    from pdiff.check import _zero_test

    start = time.monotonic()
    try:
        with bounds.alarm(seconds * 0.4):
            for cheap in (sp.expand, lambda e: sp.expand(sp.numer(sp.together(e))),
                          lambda e: sp.expand(sp.powsimp(e)),  # e x^(e-1) = e x^e / x
                          lambda e: sp.cancel(sp.expand(e.rewrite(sp.exp)))):  # sec^2 = tan^2 + 1, fast
                if cheap(difference) == 0:
                    return True
    except TimeoutError:
        pass
    # away from u = 0 (where no derivative is taken): DiracDelta(u) = 0 and sign(u)^2 = 1
    generic = difference.replace(sp.DiracDelta, lambda *a: sp.S.Zero).replace(
        lambda e: e.is_Pow and isinstance(e.base, sp.sign) and e.exp.is_even, lambda e: sp.S.One)
    if generic == 0:
        return True
    left = seconds - (time.monotonic() - start)
    if left <= 0.01:
        return None
    outcome = _zero_test(generic, left * 0.5, bounds.alarm)
    if outcome == "zero":
        return True
    if outcome == "nonzero":
        return False
    return _zero_by_signs(generic, seconds - (time.monotonic() - start))


def _zero_by_signs(difference: sp.Expr, seconds: float) -> bool | None:
    """Zero for every sign of each real variable (|x| = x for x > 0, sqrt(1 - 1/x^2) = sqrt(x^2 - 1)/x): a case
    split, for at most two variables and only where |u|, sign or a root appears."""
    symbols = sorted(difference.free_symbols, key=lambda s: s.name)
    if not symbols or len(symbols) > 2 or seconds <= 0.02 or not difference.has(sp.Abs, sp.sign, sp.Pow):
        return None
    cases = [{}]
    for s in symbols:
        t = sp.Symbol(f"{s.name}_", positive=True)
        cases = [{**case, s: sign * t} for case in cases for sign in (1, -1)]
    share = seconds / len(cases)
    for case in cases:
        try:
            with bounds.alarm(share):
                if sp.simplify(difference.xreplace(case)) != 0:
                    return None
        except TimeoutError:
            return None
    return True


def truth_of(expr: sp.Expr, var: sp.Symbol, seconds: float) -> sp.Expr | None:
    """SymPy's derivative (pdiff.symbolic's real-argument rules for |u| and sign), or None out of time."""
    if seconds <= 0:
        return None
    try:
        with bounds.alarm(seconds):
            return symbolic.derivative(expr, [var.name])
    except TimeoutError:
        return None
