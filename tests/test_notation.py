"""Partial-derivative notation → the variables in application order (first applied first).

Conventions from issue 2: Leibniz d2f/dxdy = ∂/∂x(∂f/∂y), so y is applied first: wrt = (y, x);
subscript f_xy = (f_x)_y, x first: wrt = (x, y); --wrt lists the application order directly.
The expected orders below are worked by hand from those conventions, not taken from pdiff's output.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

from pdiff.api import derivative
from pdiff.errors import ExitCode, LimitError, NotationError
from pdiff.notation import Partial, first_partials, parse_partial, parse_wrt

XY = ["x", "y"]

FORMS = [
    # Leibniz, first order
    ("df/dx", XY, ("x",)),
    ("d/dx", XY, ("x",)),
    ("df/dy", XY, ("y",)),
    ("dg/dx", XY, ("x",)),
    # Leibniz, repeated variable
    ("d2f/dx2", XY, ("x", "x")),
    ("d^2f/dx^2", XY, ("x", "x")),
    ("d^2 f / dx^2", XY, ("x", "x")),
    ("d2f/dxdx", XY, ("x", "x")),
    ("d2/dy2", XY, ("y", "y")),
    # Leibniz, mixed: the rightmost variable is applied first
    ("d2f/dxdy", XY, ("y", "x")),
    ("d2f/dydx", XY, ("x", "y")),
    ("d2f/dx dy", XY, ("y", "x")),
    ("d^2f/(dx dy)", XY, ("y", "x")),
    ("d2/dxdy", XY, ("y", "x")),
    ("d3f/dx2dy", XY, ("y", "x", "x")),
    ("d3f/dydx2", XY, ("x", "x", "y")),
    ("d^3f/dx^2dy", XY, ("y", "x", "x")),
    ("d3f/dxdydz", ["x", "y", "z"], ("z", "y", "x")),
    # the curly ∂ with superscripts
    ("∂f/∂x", XY, ("x",)),
    ("∂²f/∂x²", XY, ("x", "x")),
    ("∂²f/∂x∂y", XY, ("y", "x")),
    ("∂²f/∂y∂x", XY, ("x", "y")),
    ("∂³f/∂x²∂y", XY, ("y", "x", "x")),
    ("∂³f/∂x∂y²", XY, ("y", "y", "x")),
    ("∂^2f/∂x∂y", XY, ("y", "x")),
    ("∂2f/∂x2", XY, ("x", "x")),
    # subscripts: left to right
    ("f_x", XY, ("x",)),
    ("f_xy", XY, ("x", "y")),
    ("f_yx", XY, ("y", "x")),
    ("f_xx", XY, ("x", "x")),
    ("f_xxy", XY, ("x", "x", "y")),
    ("f_{xy}", XY, ("x", "y")),
    ("f_{x,y}", XY, ("x", "y")),
    # multi-letter names, resolved against the expression's variables
    ("d2f/dthetadr", ["r", "theta"], ("r", "theta")),
    ("d2f/drdtheta", ["r", "theta"], ("theta", "r")),
    ("d2f/dtheta2", ["r", "theta"], ("theta", "theta")),
    ("∂²f/∂r∂theta", ["r", "theta"], ("theta", "r")),
    ("f_rtheta", ["r", "theta"], ("r", "theta")),
    ("f_thetar", ["r", "theta"], ("theta", "r")),
    ("f_thetatheta", ["r", "theta"], ("theta", "theta")),
    ("d2f/dx1dx2", ["x1", "x2"], ("x2", "x1")),
    ("f_x1x2", ["x1", "x2"], ("x1", "x2")),
    ("∂²f/∂x1²", ["x1"], ("x1", "x1")),
    ("df/dxy", ["xy"], ("xy",)),
    ("f_xy", ["xy"], ("xy",)),  # one variable named xy, as the parser reads `xy`
    ("df/dxy", ["x", "xy", "y"], ("xy",)),
    ("d2f/dthetadt", ["t", "theta"], ("t", "theta")),  # the longer name wins where both fit
    # a reading made of variables beats one padded with unknown single letters (t,t,h,e,t,a)
    ("f_ttheta", ["t", "theta"], ("t", "theta")),
    ("f_thetat", ["t", "theta"], ("theta", "t")),
    ("f_tt", ["t", "theta"], ("t", "t")),
    # multi-digit superscript orders
    ("∂¹⁰f/∂x¹⁰", XY, ("x",) * 10),
    ("d¹²f/dx¹⁰dy²", XY, ("y", "y") + ("x",) * 10),
    ("d²f/dxdy", XY, ("y", "x")),
    # a variable absent from the expression is still a valid request (its partial is 0)
    ("df/dz", XY, ("z",)),
    ("f_z", XY, ("z",)),
    ("d2f/dxdz", XY, ("z", "x")),
]


@pytest.mark.parametrize("text, variables, wrt", FORMS, ids=[f"{t}|{','.join(v)}" for t, v, _ in FORMS])
def test_form(text, variables, wrt):
    partial = parse_partial(text, variables)
    assert partial.wrt == wrt
    assert partial.text == text
    assert partial.order == len(wrt)


@pytest.mark.parametrize("text, wrt", [
    ("x,y", ("x", "y")),
    ("y,x", ("y", "x")),
    ("x", ("x",)),
    (" x , y , x ", ("x", "y", "x")),
    ("theta,r", ("theta", "r")),
])
def test_wrt_lists_the_application_order(text, wrt):
    assert parse_wrt(text).wrt == wrt


@pytest.mark.parametrize("text, message", [
    ("", "--wrt needs at least one variable"),
    (",", "--wrt needs at least one variable"),
    ("1x", "'1x' is not a variable name"),
    ("x y", "'x y' is not a variable name"),
])
def test_wrt_errors(text, message):
    with pytest.raises(NotationError, match=message):
        parse_wrt(text)


@pytest.mark.parametrize("text, message", [
    # the numerator's order does not match the denominator
    ("d2f/dx", "order mismatch in 'd2f/dx': numerator says 2, denominator has 1"),
    ("df/dxdy", "order mismatch in 'df/dxdy': numerator says 1, denominator has 2"),
    ("d3f/dxdy", "order mismatch in 'd3f/dxdy': numerator says 3, denominator has 2"),
    ("d2f/dx2dy", "order mismatch"),
    ("d0f/dx", "order mismatch"),
    ("∂²f/∂x", "order mismatch"),
    ("∂f/∂x∂y", "order mismatch"),
    # not notation at all
    ("", "empty partial derivative"),
    ("x", "cannot read 'x'"),
    ("df", "cannot read 'df'"),
    ("gradient", "cannot read 'gradient'"),
    ("f_", "cannot read 'f_'"),
    ("f_1", "cannot read the variables in 'f_1'"),
    ("df/dxy", "cannot read the variables in 'dxy'"),  # with variables x and y: write dxdy
    ("df/x", "cannot read the variables"),
])
def test_notation_errors(text, message):
    with pytest.raises(NotationError, match=message.replace("(", r"\(")) as info:
        parse_partial(text, XY)
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(info.value)


def test_order_limit():
    with pytest.raises(LimitError, match="order 460 is above the limit"):
        parse_partial("d460f/dx460", XY)
    with pytest.raises(LimitError):
        parse_partial("f_" + "x" * 401, XY)
    with pytest.raises(LimitError):
        parse_wrt(",".join(["x"] * 401))
    assert parse_partial("d400f/dx400", XY).order == 400


def test_leibniz_spelling_round_trips():
    for wrt in [("x",), ("x", "x"), ("y", "x"), ("y", "x", "x"), ("x", "y", "y", "z")]:
        partial = Partial("whatever", wrt)
        assert parse_partial(partial.leibniz, ["x", "y", "z"]).wrt == wrt


def test_first_partials_default():
    assert [p.wrt for p in first_partials(["r", "theta"])] == [("r",), ("theta",)]


# Through the API: the order reaches the result, and the value agrees with SymPy applying the same order.
x, y, z = (sp.Symbol(n, real=True) for n in "xyz")


@pytest.mark.parametrize("text, wrt", [
    ("d2f/dxdy", ("y", "x")),
    ("f_xy", ("x", "y")),
    ("∂³f/∂x²∂y", ("y", "x", "x")),
    ("f_yxx", ("y", "x", "x")),
])
def test_api_reports_application_order_and_value(text, wrt):
    f = x**3 * sp.sin(y) + sp.exp(x * y)
    report = derivative("x^3 sin(y) + e^(x y)", [text], at=["x=0.5,y=2"], symbolic_side=False)
    (result,) = report.results
    assert result.partial == text
    assert result.wrt == wrt
    want = float(sp.diff(f, *(sp.Symbol(n, real=True) for n in wrt)).subs({x: sp.Rational(1, 2), y: 2}))
    assert math.isclose(result.autograd, want, rel_tol=1e-12)


def test_wrt_option_through_the_api():
    report = derivative("x^2 y^3", wrt="y,x", at=["x=2,y=3"], symbolic_side=False)
    (result,) = report.results
    assert result.wrt == ("y", "x")
    assert result.autograd == pytest.approx(2 * 2 * 3 * 3**2, rel=1e-12)  # 6xy^2 at (2, 3) = 108


def test_absent_variable_gives_zero():
    report = derivative("x^2", ["df/dz", "d2f/dxdz", "f_zz"], at=["x=1.5,z=2"], symbolic_side=False)
    assert [r.autograd for r in report.results] == [0.0, 0.0, 0.0]
    assert report.exit_code == ExitCode.OK


def test_order_mismatch_is_an_input_error_through_the_api():
    with pytest.raises(NotationError, match="order mismatch"):
        derivative("x^2 y", ["d2f/dx"], at=["x=1,y=2"], symbolic_side=False)


# The function's name as written: the lead uses it to tell dy/dx (y a function) from a variable y.
@pytest.mark.parametrize("text, variables, function", [
    ("dy/dx", ["x"], "y"),
    ("df/dx", XY, "f"),
    ("d2f/dxdy", XY, "f"),
    ("d/dx", XY, None),
    ("∂/∂x", XY, None),
    ("d2/dxdy", XY, None),
    ("f_xy", XY, "f"),
    ("g_x", XY, "g"),
    ("d^2y/dx^2", ["x"], "y"),
    ("d2y/dx2", ["x"], "y"),
    ("∂²u/∂x∂y", XY, "u"),
    ("∂f/∂x", XY, "f"),
    ("f2_x", XY, "f2"),
])
def test_function_name_as_written(text, variables, function):
    assert parse_partial(text, variables).function == function


def test_wrt_and_defaults_have_no_function():
    assert parse_wrt("x,y").function is None
    assert Partial("df/dx", ("x",)).function is None  # the two-argument constructor still works
    assert first_partials(XY)[0].wrt == ("x",)


# Primes: derivatives by the expression's only variable.
@pytest.mark.parametrize("text, variables, wrt, function", [
    ("f'", ["x"], ("x",), "f"),
    ("f''", ["x"], ("x", "x"), "f"),
    ("f'''", ["x"], ("x", "x", "x"), "f"),
    ("y'", ["x"], ("x",), "y"),
    ("y''", ["t"], ("t", "t"), "y"),
    ("f''", ["theta"], ("theta", "theta"), "f"),
    ("y'", ["y"], ("y",), "y"),  # what y' means when y is the variable is the caller's decision
    ("f′", ["x"], ("x",), "f"),  # the Unicode prime marks
    ("f″", ["x"], ("x", "x"), "f"),
])
def test_prime_notation(text, variables, wrt, function):
    partial = parse_partial(text, variables)
    assert (partial.wrt, partial.function, partial.text) == (wrt, function, text)


@pytest.mark.parametrize("variables, message", [
    ([], "no variables"),
    (["x", "y"], "variables x, y"),
])
def test_prime_needs_exactly_one_variable(variables, message):
    with pytest.raises(NotationError, match=message) as info:
        parse_partial("f''", variables)
    text = str(info.value)
    assert "name the variable" in text and "d2f/dx2 or f_xx" in text and "\n" not in text
    assert info.value.exit_code == ExitCode.USAGE


def test_prime_order_limit():
    with pytest.raises(LimitError):  # order 401 (and longer than the 400 characters notation may have)
        parse_partial("f" + "'" * 401, ["x"])


def test_prime_through_the_api():
    # (x^3 + sin x)'' = 6x - sin x; at x = 2: 12 - sin 2
    report = derivative("x^3 + sin(x)", ["f''"], at=["x=2"], symbolic_side=False)
    (result,) = report.results
    assert result.wrt == ("x", "x")
    assert math.isclose(result.autograd, 12 - math.sin(2), rel_tol=1e-12)
