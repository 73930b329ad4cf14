"""LaTeX input: each reading compared with a SymPy expression built directly (real symbols), and the errors."""

from __future__ import annotations

import pytest
import sympy as sp

from pdiff.errors import LimitError, ParseError
from pdiff.latex import is_latex, split_operator, to_plain
from pdiff.parse import parse

x, y, z, t, r = (sp.Symbol(n, real=True) for n in "xyztr")
theta, x_1, x_12, rate = (sp.Symbol(n, real=True) for n in ("theta", "x_1", "x_12", "rate"))
alpha, Pi = (sp.Symbol(n, real=True) for n in ("alpha", "Pi"))

CASES = [
    (r"\frac{x^2}{\sin y}", x**2 / sp.sin(y)),
    (r"\dfrac{1}{1+e^{-x}}", 1 / (1 + sp.exp(-x))),
    (r"\frac12 x", x / 2),
    (r"e^{3x}", sp.exp(3 * x)),
    (r"e^{-x^2}", sp.exp(-x**2)),
    (r"\mathrm{e}^{x}", sp.exp(x)),
    (r"\sqrt{x}", sp.sqrt(x)),
    (r"\sqrt x + 1", sp.sqrt(x) + 1),
    (r"\sqrt[3]{x}", sp.sign(x) * sp.Abs(x) ** sp.Rational(1, 3)),  # the real cube root, as pdiff's cbrt
    (r"\sqrt[4]{x^2+1}", (x**2 + 1) ** sp.Rational(1, 4)),
    (r"\ln x", sp.log(x)),
    (r"\ln|x|", sp.log(sp.Abs(x))),
    (r"\ln \sqrt{x}", sp.log(sp.sqrt(x))),
    (r"\log_{2} x", sp.log(x, 2)),
    (r"\log_{10}(x)", sp.log(x, 10)),
    (r"\log_3 x^2", sp.log(x**2) / sp.log(3)),
    (r"x \cdot y", x * y),
    (r"x \times y", x * y),
    (r"x \div y", x / y),
    (r"x^{2}", x**2),
    (r"x^23", 3 * x**2),  # TeX takes one character after ^
    (r"x^{-1}", 1 / x),
    (r"\left( x+1 \right)^{2}", (x + 1) ** 2),
    (r"\left[ x+1 \right] y", (x + 1) * y),
    (r"\big( x \big) y", x * y),
    (r"\sin^2 x + \cos^{2}(x)", sp.sin(x) ** 2 + sp.cos(x) ** 2),
    (r"\sin^{-1} x", sp.asin(x)),
    (r"\tan^{-1}(x/y)", sp.atan(x / y)),
    (r"\arctan x", sp.atan(x)),
    (r"\sinh x \cosh y", sp.sinh(x) * sp.cosh(y)),
    (r"\sin x \cos x", sp.sin(x) * sp.cos(x)),
    (r"\sin 2x", sp.sin(2 * x)),
    (r"\sin x^2", sp.sin(x**2)),
    (r"\sin(x)^2", sp.sin(x) ** 2),
    (r"\sin \cos x", sp.sin(sp.cos(x))),
    (r"\sin\left(\frac{\pi}{4} x\right)", sp.sin(sp.pi * x / 4)),
    (r"\exp(x y)", sp.exp(x * y)),
    (r"\operatorname{erf}(x)", sp.erf(x)),
    (r"xy", x * y),  # LaTeX math mode: letters side by side are a product
    (r"x_1 + x_{12}", x_1 + x_12),
    (r"\mathrm{rate}\, t", rate * t),
    (r"\theta^2 r", theta**2 * r),
    (r"|x| + |y|", sp.Abs(x) + sp.Abs(y)),
    (r"||x| - 1|", sp.Abs(sp.Abs(x) - 1)),
    (r"\left| x - y \right|", sp.Abs(x - y)),
    (r"\lvert z \rvert", sp.Abs(z)),
    (r"2\pi r", 2 * sp.pi * r),
    (r"$x^{2} y$", x**2 * y),
    (r"\max(x, y)", sp.Max(x, y)),
    (r"0.5 x^{2}", sp.Rational(1, 2) * x**2),
    # scientific notation is one exact number; an e with no digits after it is Euler's number
    (r"2.5E2 + x", 250 + x),
    (r"-324E-3 + x", sp.Rational(-324, 1000) + x),
    (r"1e-3 x", x / 1000),
    (r"3e5x", 300000 * x),
    (r"1E+2 x", 100 * x),
    (r"2e^{x}", 2 * sp.exp(x)),
    (r"2e x", 2 * sp.E * x),
    (r"x^2e5", 5 * sp.E * x**2),  # TeX's one character after ^: x^2 e 5
    # a variable name before a bracket is a product, with the precedence of `x (x+y)`
    (r"\theta(x+y)", theta * (x + y)),
    (r"\alpha(x+1)", alpha * (x + 1)),
    (r"\mathrm{rate}(t+1)", rate * (t + 1)),
    (r"x_1(x+1) + x_{12}\left(y\right)", x_1 * (x + 1) + x_12 * y),
    (r"\theta[x+y]", theta * (x + y)),
    (r"\theta|x|", theta * sp.Abs(x)),
    (r"\frac{1}{\theta(x+1)}", 1 / (theta * (x + 1))),
    (r"\sin \theta(x+1)", sp.sin(theta * (x + 1))),
    (r"\Pi x", Pi * x),
    (r"\log_2 x", sp.log(x, 2)),
    (r"|x| + \sin x", sp.Abs(x) + sp.sin(x)),  # LaTeX for the backslash; the bars still mean abs
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_latex_reads_as_sympy_would_be_built(text, expected):
    result = parse(text, latex=True)
    assert result == expected
    assert all(s.is_real for s in result.free_symbols)


def test_latex_symbols_are_pdiffs_own():
    # the same objects as the plain reading, so derivatives, points and lowering see one set of variables
    assert parse(r"\frac{x}{y}") == parse("x/y")
    assert parse(r"\frac{x}{y}").free_symbols == parse("x/y").free_symbols


def test_detection_and_forcing():
    assert is_latex(r"\sin x") and is_latex("x^{2}") and is_latex("a_{1}") and is_latex("x^ {2}")
    # bars are plain notation too: only what plain text cannot hold makes it LaTeX
    assert not is_latex("|x|") and not is_latex("|x - 1| + 2")
    assert not is_latex("x^2 sin(y)") and not is_latex("xy")
    assert parse("xy", latex=True) == x * y  # forced LaTeX reading: a product
    assert parse(r"\frac{1}{2}") == sp.Rational(1, 2)
    with pytest.raises(ParseError):
        parse(r"\frac{1}{2}", latex=False)  # never read as LaTeX: the plain grammar has no backslash


def test_translation_is_plain_pdiff_text():
    text = to_plain(r"\frac{x^2}{\sin y}")
    assert "\\" not in text and "{" not in text
    assert parse(text, latex=False) == x**2 / sp.sin(y)


BAD = [
    (r"\int x dx", "not supported"),
    (r"\infty", "not supported"),
    (r"\frac{x}", "missing an argument"),
    (r"\frac{x}{y", "is not closed"),
    (r"\left( x", "is not closed"),
    (r"\foo{x}", "unsupported LaTeX command \\foo"),
    (r"\operatorname{evil}(x)", "unknown function"),
    (r"\sin^{x} y", "whole number"),
    (r"|x", "is not closed"),
    (r"x_{\frac12}", "letters and digits"),
    (r"\__import__", "unsupported"),
    (r"x!", "factorials"),
    (r"\sin", "missing the argument"),
    (r"\frac{1}{2}1.1.1", "malformed number"),
    (r"1..2", "malformed number"),
    (r"x + 1.5e3.2", "malformed number"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_latex_is_one_clear_error(text, message):
    with pytest.raises(ParseError) as info:
        parse(text, latex=True)
    assert message in str(info.value)


# refused by the translation itself (pdiff's reader splits equations and a leading operator off before it)
BAD_TRANSLATIONS = [
    (r"x = 2", "'=' is not allowed"),
    # a derivative is the operator in front (split_operator) or PARTIAL, never the algebra d/(d x)
    (r"\frac{d}{dx}(x^3)", "derivative goes first"),
    (r"x^2 + \frac{d}{dx} x", "derivative goes first"),
    (r"\frac{\partial}{\partial x} x y", "derivative goes first"),
    (r"\frac{dy}{dx}", "PARTIAL argument"),
    (r"\frac{df}{dx} + 1", "PARTIAL argument"),
    (r"\frac{d^2 y}{dx^2}", "PARTIAL argument"),
    (r"\dfrac{\mathrm{d}}{\mathrm{d}x} x", "PARTIAL argument"),
    (r"\frac{\partial f}{\partial x}", "PARTIAL argument"),
]


@pytest.mark.parametrize("text, message", BAD_TRANSLATIONS, ids=[b[0] for b in BAD_TRANSLATIONS])
def test_bad_latex_translation_is_one_clear_error(text, message):
    with pytest.raises(ParseError) as info:
        to_plain(text)
    assert message in str(info.value)


def test_errors_point_at_the_latex():
    with pytest.raises(ParseError) as info:
        parse(r"x + \foo")
    assert info.value.column == 4
    assert info.value.caret().splitlines()[1].index("^") == 2 + 4


def test_names_from_latex_go_through_pdiffs_checks():
    # \mathrm{pi} is the name pi, which pdiff reads as the constant; reserved names stay reserved
    with pytest.raises(ParseError):
        parse(r"\mathrm{I} + x")


def test_limits_hold_for_latex():
    with pytest.raises(LimitError):
        parse("\\frac{1}{" * 300 + "x" + "}{2}" * 300)
    with pytest.raises(LimitError):
        parse("\\sin " + "x" * 30_000)


PARTIALS = [
    (r"\frac{\partial^2 f}{\partial x \partial y}", ("y", "x")),  # Leibniz: y applied first
    (r"\frac{\partial^{2} f}{\partial x^{2}}", ("x", "x")),
    (r"\frac{\partial^3 f}{\partial x^2 \partial y}", ("y", "x", "x")),
    (r"\frac{d}{dx}", ("x",)),
    (r"\dfrac{\mathrm{d} f}{\mathrm{d} x}", ("x",)),
    (r"\frac{\partial}{\partial \theta}", ("theta",)),
]


@pytest.mark.parametrize("text, wrt", PARTIALS, ids=[p[0] for p in PARTIALS])
def test_latex_partials(text, wrt):
    from pdiff.latex import partial_to_plain
    from pdiff.notation import parse_partial

    assert parse_partial(partial_to_plain(text), ["theta", "x", "y"]).wrt == wrt


def test_plain_partials_pass_through():
    from pdiff.latex import partial_to_plain

    assert partial_to_plain("d2f/dxdy") == "d2f/dxdy" and partial_to_plain("f_{xy}") == "f_{xy}"
    with pytest.raises(ParseError):
        partial_to_plain(r"\frac{\partial f}{\partial x")


def test_latex_module_does_not_import_the_parser():
    import subprocess
    import sys

    # pdiff.parse imports pdiff.latex: the other way round would be a circle
    code = "import sys, pdiff.latex; print('pdiff.parse' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_fractions_of_d_that_are_not_derivatives_stay_algebra():
    d = sp.Symbol("d", real=True)
    assert parse(r"\frac{a}{dx}", latex=True) == sp.Symbol("a", real=True) / (d * x)
    assert parse(r"\frac{d}{d}", latex=True) == 1
    assert parse(r"\frac{d+1}{dx}", latex=True) == (d + 1) / (d * x)


def _rest(text):
    """split_operator's partial and the parsed LaTeX it applies to."""
    partial, rest = split_operator(text)
    return partial, parse(rest, latex=True)


OPERATORS = [
    (r"\frac{d}{dx} \left[ \frac{x^2+1}{\sqrt{x}} \right]", "df/dx", (x**2 + 1) / sp.sqrt(x), ("x",)),
    (r"\frac{d}{dx}(x^3)", "df/dx", x**3, ("x",)),
    (r"$\frac{d}{dx} x^3$", "df/dx", x**3, ("x",)),
    (r"\frac{d}{dx}[x^2]", "df/dx", x**2, ("x",)),  # no brackets left: plain [x^2] would be a vector
    (r"\frac{d}{dx}\left( x^2 + 1 \right)", "df/dx", x**2 + 1, ("x",)),
    (r"\frac{d}{dx}\{x y\}", "df/dx", x * y, ("x",)),
    (r"\frac{d}{dx}\left\{ x \right\}", "df/dx", x, ("x",)),
    (r"\frac{d}{dx}\big[ x^2 \big]", "df/dx", x**2, ("x",)),
    (r"\frac{d}{dx}\, [(x+1)(x-1)]", "df/dx", (x + 1) * (x - 1), ("x",)),
    (r"\frac{d}{dx} x^2 + 1", "df/dx", x**2 + 1, ("x",)),  # no bracket: the whole rest
    (r"\frac{d}{dx}|x|", "df/dx", sp.Abs(x), ("x",)),
    (r"\dfrac{d}{dx} \sin x", "df/dx", sp.sin(x), ("x",)),
    (r"\frac{\mathrm{d}}{\mathrm{d}x} e^{x}", "df/dx", sp.exp(x), ("x",)),
    (r"\frac{d^2}{dx^2} x^4", "d2f/dx^2", x**4, ("x", "x")),
    (r"\frac{d^{2}}{dx^{2}} x^4", "d2f/dx^2", x**4, ("x", "x")),
    (r"\frac{\partial}{\partial x} x y", "df/dx", x * y, ("x",)),
    (r"\frac{\partial^2}{\partial x \partial y} \left[ x^2 y \right]", "d2f/dxdy", x**2 * y, ("y", "x")),
    (r"\frac{\partial^{2}}{\partial x^{2}} (x^3 y)", "d2f/dx^2", x**3 * y, ("x", "x")),
    (r"\frac{\partial^3}{\partial x^2 \partial y} x^3 y^2", "d3f/dx^2dy", x**3 * y**2, ("y", "x", "x")),
    (r"\frac{\partial^2}{\partial \theta \partial r} (r \theta)", "d2f/dthetadr", r * theta, ("r", "theta")),
]


@pytest.mark.parametrize("text, partial, expected, wrt", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_split_operator(text, partial, expected, wrt):
    from pdiff.notation import parse_partial

    assert _rest(text) == (partial, expected)
    names = sorted(str(s) for s in expected.free_symbols)
    assert parse_partial(partial, names).wrt == wrt


def test_split_operator_worked_example():
    partial, rest = _rest(r"\frac{d}{dx} \left[ \frac{x^2+1}{\sqrt{x}} \right]")
    assert sp.diff(rest, x).subs(x, 4) == sp.Rational(47, 16)


def test_no_leading_operator_is_unchanged():
    for text in (r"\frac{x}{y}", "x^2", r"\frac12 x", r"\sin x \frac{d}{dx}", r"\frac{dy}{dx}", r"\frac{a}{dx} x"):
        assert split_operator(text) == (None, text)


OPERATOR_ERRORS = [
    (r"\frac{d}{dx}(x^2) + 1", "put the whole expression in brackets"),
    (r"\frac{d}{dx}(x+1)(x-1)", "put the whole expression in brackets"),
    (r"\frac{d}{dx}\left[ x \right] y", "put the whole expression in brackets"),
    (r"\frac{d}{dx}", "nothing follows"),
    (r"\frac{d}{dx} \quad", "nothing follows"),
    (r"\frac{d}{dx}()", "nothing inside"),
    (r"\frac{d}{dx}(x", "not closed"),
    (r"\frac{d}{dx}\left[ x \right)", "does not match"),
]


@pytest.mark.parametrize("text, message", OPERATOR_ERRORS, ids=[e[0] for e in OPERATOR_ERRORS])
def test_split_operator_errors(text, message):
    with pytest.raises(ParseError) as info:
        split_operator(text)
    assert message in str(info.value)
