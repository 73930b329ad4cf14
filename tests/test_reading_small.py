"""Small reading and display fixes: natural variable order, --along brackets, ln|x|' shown as 1/x, inf/undefined.

Expected values are worked by hand or with SymPy, not taken from pdiff's output.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

from pdiff import api, calculus, symbolic
from pdiff.errors import InputError
from pdiff.parse import symbol
from pdiff.results import Status


def test_variables_in_natural_order():
    names = [f"x{i}" for i in range(12)]
    expr = sum(symbol(n) for n in reversed(names))
    assert symbolic.variables_of([expr]) == names  # x0, x1, ..., x9, x10, x11


@pytest.mark.parametrize("names, order", [
    (["x10", "x2"], ["x2", "x10"]),
    (["y", "x", "theta", "r"], ["r", "theta", "x", "y"]),  # letters: as sorted by name
    (["b", "a10", "a9", "a"], ["a", "a9", "a10", "b"]),
    (["x2y", "x10y", "x2"], ["x2", "x2y", "x10y"]),
    (["t", "theta"], ["t", "theta"]),
])
def test_natural_order_cases(names, order):
    assert symbolic.variables_of([sum(symbol(n) for n in names)]) == order


def test_natural_order_reaches_the_gradient():
    report = calculus.compute("gradient", "x10 + 2 x2 + 3 x1", at=["x1=1,x2=1,x10=1"])
    assert report.variables == ("x1", "x2", "x10")
    assert report.results[0].autograd == [3.0, 2.0, 1.0]


# D_u(x^2 y) at (1, 2) along (3, 4)/5: (2xy·3 + x²·4)/5 = (12 + 4)/5 = 3.2
@pytest.mark.parametrize("along", ["(3,4)", "<3,4>", "[3,4]", "3,4", " ( 3 , 4 ) ", "(6, 8)"])
def test_along_brackets(along):
    report = calculus.compute("directional", "x^2 y", along=along, at=["x=1,y=2"])
    (result,) = report.results
    assert result.status is Status.OK
    assert result.autograd == pytest.approx(3.2, rel=1e-12)
    assert result.value == pytest.approx(3.2, rel=1e-12)


@pytest.mark.parametrize("along, message", [
    ("1,,2", "empty component"),
    ("(1,)", "empty component"),
    ("()", "empty component"),
    ("(0,0)", "zero vector"),
    ("<0, 0.0>", "zero vector"),
])
def test_along_errors(along, message):
    with pytest.raises(InputError, match=message) as info:
        calculus.compute("directional", "x^2 y", along=along, at=["x=1,y=2"])
    assert "\n" not in str(info.value)


def test_ln_abs_derivative_is_shown_as_one_over_x():
    report = api.derivative("ln(abs(x))", ["df/dx"], at=["x=-2", "x=0"])
    below, zero = report.results
    assert below.derivative == "1/x"
    assert below.value == -0.5 and below.autograd == -0.5 and below.status is Status.OK
    # at 0 the derivative does not exist: the exact side comes from sign(x)/|x| (nan), not from 1/x (zoo)
    assert zero.status is not Status.OK
    assert zero.exact == "nan" and math.isnan(zero.value)


X = sp.Symbol("x", positive=True)  # for the oracle: where u > 0, d/dx ln|u| is d/dx ln(u)


@pytest.mark.parametrize("expression, u, want", [
    ("log(abs(x))", X, "1/x"),
    ("ln(abs(2 x + 1))", 2 * X + 1, "2/(2*x + 1)"),  # 2 sign(2x+1)/|2x+1|
])
def test_ln_abs_chain_rule_is_shown_plainly(expression, u, want):
    shown = api.derivative(expression, ["df/dx"]).results[0].derivative
    assert shown == want
    assert sp.simplify(sp.diff(sp.log(u), X) - sp.sympify(want, locals={"x": X})) == 0


def test_sign_times_abs_cancels():
    x = symbol("x")
    assert symbolic.simplified(sp.Abs(x) * sp.sign(x) + x**2 * sp.sign(x) / sp.Abs(x)) == 2 * x


def test_simplified_keeps_exact_values_from_the_raw_derivative():
    x = symbol("x")
    raw = symbolic.derivative(sp.log(sp.Abs(x)), ["x"])
    assert raw == sp.sign(x) / sp.Abs(x)
    assert symbolic.simplified(raw) == 1 / x
    assert symbolic.exact_value(raw, {"x": sp.Integer(0)}) is sp.nan
    jobs = list(symbolic.entry_jobs([sp.log(sp.Abs(x))], [("x",)], symbolic.identity_entries(1, 1),
                                    [{"x": sp.Integer(0)}, {"x": sp.Integer(-2)}], 5.0, _no_alarm))
    assert ("exact", 0, 0, "nan") == jobs[1][:4]
    assert ("exact", 0, 1, "-1/2") == jobs[2][:4]
    assert ("simplified", 0, "1/x") in jobs


class _no_alarm:
    def __init__(self, seconds):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_no_piecewise_in_the_shown_derivative():
    # SymPy writes sign(x)/(2 sqrt|x|) as Piecewise((0, Eq(x, 0)), ...), claiming 0 where it is undefined
    x = symbol("x")
    raw = symbolic.derivative(sp.sqrt(sp.Abs(x)), ["x"])
    assert not symbolic.simplified(raw).has(sp.Piecewise)


@pytest.mark.parametrize("value, want", [
    (sp.oo, "inf"),
    (-sp.oo, "-inf"),
    (sp.zoo, "undefined"),
    (sp.nan, "undefined"),
    (sp.Integer(1) / 0, "undefined"),  # SymPy: zoo
    (sp.limit(sp.log(X), X, 0, "+"), "-inf"),  # SymPy: -oo
    (sp.Rational(3, 0), "undefined"),
    (sp.Rational(-1, 2), "-1/2"),
    (sp.sqrt(2) / 2, "sqrt(2)/2"),
    (symbol("x") ** 2, "x^2"),
])
def test_to_display_value(value, want):
    assert symbolic.to_display_value(value) == want
