"""LaTeX input: each reading compared with a SymPy expression built directly (real symbols), and the errors."""

from __future__ import annotations

import pytest
import sympy as sp

from pdiff.errors import LimitError, ParseError
from pdiff.latex import is_latex, to_plain
from pdiff.parse import parse

x, y, z, t, r = (sp.Symbol(n, real=True) for n in "xyztr")
theta, x_1, x_12, rate = (sp.Symbol(n, real=True) for n in ("theta", "x_1", "x_12", "rate"))

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
    assert is_latex(r"\sin x") and is_latex("x^{2}") and is_latex("a_{1}") and is_latex("|x|")
    assert not is_latex("x^2 sin(y)") and not is_latex("xy")
    x_y = sp.Symbol("xy", real=True)
    assert parse("xy") == x_y  # plain reading: one name
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
    (r"x = 2", "'=' is not allowed"),
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
]


@pytest.mark.parametrize("text, message", BAD, ids=[b[0] for b in BAD])
def test_bad_latex_is_one_clear_error(text, message):
    with pytest.raises(ParseError) as info:
        parse(text, latex=True)
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
