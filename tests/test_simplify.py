"""The staged simplifier (pdiff/simplify.py): equal to the unsimplified derivative, never longer, within its budget;
exact values still come from the unsimplified derivative.

Oracles: the unsimplified derivative itself, compared exactly (SymPy, where a rational function makes that cheap)
and at random points in 30-digit arithmetic (mpmath through evalf); sympy.simplify for the short derivatives that
must read as they did.
"""

from __future__ import annotations

import random
import sys
import time
import zlib
from pathlib import Path

import pytest
import sympy as sp

from pdiff import bounds, simplify, symbolic
from pdiff.parse import parse, symbol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import bench_simplify  # noqa: E402  (the benchmark's corpus: random nested mixed partials and textbook exercises)

_ITEMS = bench_simplify.corpus(30, seed=7)


def _fresh() -> None:
    for cache in (simplify._OPS, simplify._NODE, simplify._EXPANDED, simplify._RESULT):
        cache.clear()


def _values_agree(raw: sp.Expr, new: sp.Expr, rng: random.Random, points: int = 4) -> None:
    names = sorted(raw.free_symbols | new.free_symbols, key=lambda s: s.name)
    for _ in range(points):
        # in (0.1, 0.9): inside every domain of the corpus (sqrt(1 - x^2), ln(x), (x + y)/(x - y) with x != y)
        point = {s: sp.Rational(rng.randint(100, 900), 1000) + sp.Rational(i, 7919) for i, s in enumerate(names)}
        a = complex(raw.xreplace(point).evalf(30))
        b = complex(new.xreplace(point).evalf(30))
        assert abs(a - b) <= 1e-12 * max(1.0, abs(a)), (raw, new, point, a, b)


@pytest.mark.parametrize("text, wrt, origin", _ITEMS, ids=[f"{o}-{i}" for i, (_, _, o) in enumerate(_ITEMS)])
def test_staged_form_is_equal_and_never_longer(text, wrt, origin):
    raw = symbolic.derivative(parse(text), wrt)
    _fresh()
    new = symbolic.simplified(raw, time.monotonic() + 2.0, bounds.alarm)
    assert sp.count_ops(new) <= sp.count_ops(raw)
    if not raw.atoms(sp.Function) and not any(p.is_Pow and not p.exp.is_Integer for p in sp.preorder_traversal(raw)):
        assert sp.cancel(raw - new) == 0  # a rational function: exactly
    _values_agree(raw, new, random.Random(zlib.crc32(text.encode())))


def test_the_bottom_up_steps_alone_are_equal():
    # the cheap pass without full simplify or trigsimp (which the test above may have taken instead)
    rng = random.Random(18)
    for text, wrt, _origin in _ITEMS[:12]:
        raw = symbolic.derivative(parse(text), wrt)
        _fresh()
        new = simplify._as_one_fraction(simplify._node(raw))
        _values_agree(raw, new, rng, points=2)


def test_cheap_steps():
    x, y, u = symbol("x"), symbol("y"), symbol("u")
    # numeric content pulled through a product (36·3 = 108)
    e = 36 * x * (-18 * x**2 * sp.sin(9 * x**2) + 3 * sp.cos(9 * x**2)) * sp.exp(y)
    assert simplify.staged(e) == 108 * x * (-6 * x**2 * sp.sin(9 * x**2) + sp.cos(9 * x**2)) * sp.exp(y)
    # nested fractions over one denominator, the numerator expanded because that is shorter
    e = (-4 * x**4 / (x**4 + 1) + 1) / (x**4 + 1)
    assert simplify.staged(e) == (1 - 3 * x**4) / (x**4 + 1) ** 2
    # exponentials combined
    e = 6 * sp.exp(2 * y) * sp.exp(sp.exp(2 * y)) * sp.cos(x)
    assert simplify.staged(e) == 6 * sp.exp(2 * y + sp.exp(2 * y)) * sp.cos(x)
    # tanh' as SymPy writes it
    shown = simplify.staged(-18 * (3 * x + sp.tanh(u)) * (sp.tanh(u) ** 2 - 1))
    assert sp.sstr(shown) == "18*(3*x + tanh(u))/cosh(u)**2"  # the content kept outside the sum, as factor_terms does
    # terms sharing a factor collected
    c = sp.cos(2 * y) ** 2 + 1
    e = c * x * sp.exp(x) + c * y * sp.exp(y) + x
    assert simplify.staged(e) == c * (x * sp.exp(x) + y * sp.exp(y)) + x


@pytest.mark.parametrize("text, partial", [
    ("x^2 sin(y)", ("x", "y")), ("x^3 - 3 x y^2", ("x", "x")), ("sin(x) cos(x)", ("x",)), ("x^2 y + x y^2", ("x", "y")),
    ("exp(x y)", ("x", "y")), ("ln(x^2 + 1)", ("x", "x")), ("x/(x^2 + 1)", ("x",)), ("sin(x)^2 cos(x)", ("x", "x")),
])
def test_short_derivatives_read_as_simplify_wrote_them(text, partial):
    raw = symbolic.derivative(parse(text), partial)
    want = sp.simplify(raw)
    want = want if sp.count_ops(want) < sp.count_ops(raw) else raw
    _fresh()
    shown = symbolic.simplified(raw, time.monotonic() + 5.0, bounds.alarm)
    assert sp.count_ops(shown) <= sp.count_ops(want)
    if sp.count_ops(shown) == sp.count_ops(want):  # a tie goes to simplify's form: the display people know
        assert shown == want


class _NoAlarm:
    def __init__(self, seconds):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("text, point, kind", [
    ("ln(x) + (x^2 - 1)/(x - 1)", {"x": sp.Integer(1)}, "cancelled"),  # the shown form has no hole at 1: 1/x + 1
    ("sqrt(x) (x^2 - 1)/(x - 1)", {"x": sp.Integer(1)}, "undefined"),
    ("sqrt(x) (x^2 - 1)/(x - 1)", {"x": sp.Integer(-4)}, "complex"),  # outside sqrt's real domain
    ("ln(x^2 - 1) (x^2 - 4)/(x - 2)", {"x": sp.Integer(2)}, "undefined"),
    ("ln(x^2 - 1) (x^2 - 4)/(x - 2)", {"x": sp.Rational(1, 2)}, "complex"),  # log of a negative number
])
def test_exact_values_come_from_the_unsimplified_derivative(text, point, kind):
    expr = parse(text)
    raw = symbolic.derivative(expr, ["x"])
    messages = list(symbolic.entry_jobs([expr], [("x",)], symbolic.identity_entries(1, 1), [point], 5.0, _NoAlarm))
    kinds = [m[0] for m in messages]
    assert kinds.index("exact") < kinds.index("simplified")  # the exact value never waits on simplification
    exact = next(m for m in messages if m[0] == "exact")
    want = symbolic.exact_value(raw, point)
    assert exact[3] == symbolic.to_text(want)
    shown = symbolic.simplified(raw)
    assert ("simplified", 0, symbolic.to_text(shown)) in messages
    assert sp.count_ops(shown) < sp.count_ops(raw)
    if kind == "complex":
        assert sp.im(want) != 0
    else:  # a removable hole: undefined in the derivative as written, whatever the shown form says
        assert want.has(sp.nan, sp.zoo) or want is sp.nan
    if kind == "cancelled":
        assert shown.xreplace({symbol(n): v for n, v in point.items()}).is_finite  # the display alone would hide it


def test_simplification_stays_within_the_jobs_budget():
    # a derivative the old path spent its whole 2 s on: the job ends soon after its short budget
    expr = parse("sin((x + 2)/(sin(y)^2 + 1))/(exp(8*x*y)*sin(3*x^2)^2 + 1)")
    _fresh()
    start = time.monotonic()
    messages = list(symbolic.entry_jobs([expr], [("y", "x", "x")], symbolic.identity_entries(1, 1),
                                        [{"x": sp.Rational(7, 10), "y": sp.Rational(13, 10)}], 0.2, bounds.alarm))
    assert time.monotonic() - start < 1.5
    assert [m[0] for m in messages][:2] == ["derivative", "exact"]


def test_no_budget_no_simplification():
    x = symbol("x")
    messages = list(symbolic.entry_jobs([x**2 * sp.sin(x)], [("x", "x")], symbolic.identity_entries(1, 1), [], 0.0,
                                        bounds.alarm))
    assert [m[0] for m in messages] == ["derivative"]


def test_a_callers_alarm_keeps_what_was_found():
    # pdiff check calls simplified() inside its own alarm: a timeout there returns the best so far, never raises
    raw = symbolic.derivative(parse("x/(y^2*(x + y)^2/(x^2 + 1)^2 + 1)"), ("y", "x", "y"))
    _fresh()
    with bounds.alarm(0.02):
        shown = symbolic.simplified(raw)
    assert sp.count_ops(shown) <= sp.count_ops(raw)
    _values_agree(raw, shown, random.Random(3), points=2)


def test_results_are_cached_per_subexpression():
    raw = symbolic.derivative(parse("tanh(atan(x y))"), ("x", "y", "y"))
    _fresh()
    first = symbolic.simplified(raw, time.monotonic() + 5.0, bounds.alarm)
    assert simplify._NODE  # subexpressions remembered
    start = time.perf_counter()
    assert symbolic.simplified(raw, time.monotonic() + 5.0, bounds.alarm) == first
    assert time.perf_counter() - start < 0.05


def test_unshown_derivatives_are_not_simplified_and_answers_are_unchanged():
    """`pdiff diff ... --at ... --format plain` prints values only: it asks for no simplification (api's
    simplify=False), and the values, exact values and verdicts are those of the simplified run."""
    from pdiff import api

    expression = "atan(y/x)"
    x, y = symbol("x"), symbol("y")
    oracle = (y**2 - x**2) / (x**2 + y**2) ** 2  # d2f/dxdy, worked by hand
    plain = api.derivative(expression, ["d2f/dxdy"], at=["x=1.3,y=1.85"], simplify=False).results[0]
    shown = api.derivative(expression, ["d2f/dxdy"], at=["x=1.3,y=1.85"]).results[0]
    assert (plain.autograd, plain.exact, plain.value, plain.status) == (
        shown.autograd, shown.exact, shown.value, shown.status)
    assert plain.value == pytest.approx(float(oracle.subs({x: 1.3, y: 1.85})), rel=1e-14)
    for text in (plain.derivative, shown.derivative):
        assert sp.simplify(parse(text) - oracle) == 0
    assert sp.count_ops(parse(plain.derivative)) > sp.count_ops(parse(shown.derivative))  # simplified only when shown
