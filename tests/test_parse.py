"""How pdiff reads text (the rules in pdiff/parse.py's docstring), and how it rejects what it must not read.

Each reading is compared with a SymPy expression built directly in this file, never through pdiff's parser.
Bad inputs are a table: the one-line message (a fragment of it) and the 0-based column the caret points at.
"""

from __future__ import annotations

import pytest
import sympy as sp
from typer.testing import CliRunner

from pdiff.errors import ExitCode, InputError, LimitError, ParseError
from pdiff.parse import parse, parse_number


def S(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


x, y, z, b = S("x"), S("y"), S("z"), S("b")


def same(got, want) -> bool:
    """Equal as SymPy trees, or at least as functions (the difference simplifies to 0)."""
    return got == want or sp.simplify(got - want) == 0


READINGS = [
    # a multi-letter name is one variable
    ("xy", x * y),
    ("x y", x * y),
    ("x*y", x * y),
    ("theta r0 x1", S("theta") * S("r0") * S("x1")),
    ("x_1 + x2", S("x_1") + S("x2")),
    # implicit multiplication binds tighter than * and /
    ("1/2x", 1 / (2 * x)),
    ("1/2 x", 1 / (2 * x)),
    ("x/y z", x / (y * z)),
    ("x/2/y", x / 2 / y),
    ("x^2 y", x**2 * y),
    ("2x", 2 * x),
    ("3 sin(x)", 3 * sp.sin(x)),
    ("(x+1)(x-1)", (x + 1) * (x - 1)),
    ("2(x + y)", 2 * (x + y)),
    ("x(x+1)", x * (x + 1)),  # a one-letter name before a bracket multiplies
    ("e(x+1)", sp.E * (x + 1)),
    ("pi(x+1)", sp.pi * (x + 1)),  # pi is a constant, never a function
    ("2 pi (x + 1)", 2 * sp.pi * (x + 1)),
    # a function without parentheses takes the implicit product that follows it
    ("sin x^2", sp.sin(x**2)),
    ("sin 2x", sp.sin(2 * x)),
    ("sin x y", sp.sin(x * y)),
    ("sin x cos x", sp.sin(x) * sp.cos(x)),
    ("sin x + 1", sp.sin(x) + 1),
    ("sin x * y", sp.sin(x) * y),
    ("exp x^2", sp.exp(x**2)),
    ("ln x", sp.log(x)),
    ("sqrt 4x", 2 * sp.sqrt(x)),
    ("sin(x)^2", sp.sin(x) ** 2),
    ("sin(x) y", sp.sin(x) * y),
    # function powers
    ("sin^2 x", sp.sin(x) ** 2),
    ("sin^2(x)", sp.sin(x) ** 2),
    ("cos^2 x + sin^2 x", sp.Integer(1)),
    ("tan^3(x y)", sp.tan(x * y) ** 3),
    # powers are right-associative; unary minus binds looser than ^
    ("2^3^2", sp.Integer(512)),
    ("2**3**2", sp.Integer(512)),
    ("x^y^z", x ** (y**z)),
    ("-x^2", -(x**2)),
    ("-2^2", sp.Integer(-4)),
    ("2^-1", sp.Rational(1, 2)),
    ("x^-2", x**-2),
    ("x**2", x**2),
    ("(-x)^2", x**2),
    # constants and logarithms
    ("e", sp.E),
    ("pi", sp.pi),
    ("e^x", sp.exp(x)),
    ("e^-x", sp.exp(-x)),
    ("e^(x y)", sp.exp(x * y)),
    ("pi x", sp.pi * x),
    ("log(x)", sp.log(x)),
    ("ln(x)", sp.log(x)),
    ("log(x, b)", sp.log(x) / sp.log(b)),
    ("log(8, 2)", sp.Integer(3)),
    ("log10(1000)", sp.Integer(3)),
    ("log2(x)", sp.log(x) / sp.log(2)),
    # the real cube root
    ("cbrt(-8)", sp.Integer(-2)),
    ("cbrt(27)", sp.Integer(3)),
    # numbers are exact
    ("0.1", sp.Rational(1, 10)),
    ("1e-3", sp.Rational(1, 1000)),
    ("1.5e2", sp.Integer(150)),
    (".5x", x / 2),
    ("2.5E-1", sp.Rational(1, 4)),
    # aliases and other spellings
    ("arcsin(x) + asin(x)", 2 * sp.asin(x)),
    ("arsinh(x)", sp.asinh(x)),
    ("abs(x) - Abs(x)", sp.Integer(0)),
    ("sgn(x)", sp.sign(x)),
    ("min(x, y, 1)", sp.Min(x, y, 1)),
    ("max(x, y)", sp.Max(x, y)),
    ("atan2(y, x)", sp.atan2(y, x)),
    # typographic operators people paste
    ("x·y", x * y),
    ("x×y", x * y),
    ("x − y", x - y),
    ("x² + y³", x**2 + y**3),
    ("  x  +  y  ", x + y),
]


@pytest.mark.parametrize("text, want", READINGS, ids=[t for t, _ in READINGS])
def test_reading(text, want):
    got = parse(text)
    assert same(got, want), f"{text!r} read as {got}, expected {want}"


def test_variables_are_real_symbols():
    # the oracle's real symbols must be the very symbols pdiff builds, or derivatives of abs(x) would differ
    assert parse("x").is_real is True
    assert parse("abs(x)").diff(x) == sp.sign(x)


def test_a_run_of_letters_is_split_unless_declared():
    assert parse("xy") == x * y  # as Wolfram|Alpha, Symbolab and Desmos read it
    assert parse("xy", names={"xy"}) == S("xy")  # declared (--at xy=1, --var xy): one variable
    assert parse("x y").free_symbols == {x, y}


def test_vector():
    assert parse("[x^2, x y]") == [x**2, x * y]
    assert parse("[x, y,]") == [x, y]


def test_parse_number_exact():
    assert parse_number("pi/4") == sp.pi / 4
    assert parse_number("sqrt(2)") == sp.sqrt(2)
    assert parse_number("-1/3") == sp.Rational(-1, 3)
    assert parse_number("1e-3") == sp.Rational(1, 1000)
    with pytest.raises(ParseError, match="expected a number, found variable y"):
        parse_number("2y")


# (text, a fragment of the one-line message, the caret's 0-based column or None when there is no caret)
BAD_INPUTS = [
    # attribute access
    ("x.real", "attribute access is not allowed", 1),
    ("x.__class__", "attribute access is not allowed", 1),
    ("sin(x).func", "attribute access is not allowed", 6),
    # subscripts
    ("x[0]", "unexpected '['", 1),
    ("x[1:2]", "unexpected character ':'", 3),  # slicing: ':' is outside the language
    # lambdas
    ("lambda x: x", "unexpected character ':'", 8),
    ("lambda: 1", "unexpected character ':'", 6),
    # strings
    ("'x'", "strings are not allowed", 0),
    ('"x"', "strings are not allowed", 0),
    ("__import__('os')", "strings are not allowed", 11),
    # comprehensions and other Python code (were read as products of variables named for/in, see git history)
    ("[x for x in y]", "'for' is a Python keyword", 3),
    ("(x for x in y)", "'for' is a Python keyword", 3),
    ("[x for x in y if x]", "'for' is a Python keyword", 3),
    ("x if x else y", "'if' is a Python keyword", 2),
    # malformed numbers (1..2 was read as 1. times .2)
    ("1..2", "malformed number", 2),
    ("1.2.3", "malformed number", 3),
    # sets, dicts and other Python syntax
    ("{x}", "unexpected character '{'", 0),
    ("x == 1", "'==' compares", 2),
    ("x; 1", "unexpected character ';'", 1),
    ("x@y", "unexpected character '@'", 1),
    ("x!", "unexpected character '!'", 1),
    ("x & y", "unexpected character '&'", 2),
    ("x $ y", "unexpected character '$'", 2),
    # unknown functions and names pdiff will not take
    ("foo(x)", "unknown function 'foo'", 0),
    ("x + eval(x)", "unknown function 'eval'", 4),
    ("sinx(2)", "unknown function 'sinx'", 0),
    ("2 + foo(2)", "unknown function 'foo'", 4),  # an unknown multi-letter name before a bracket is not a product
    ("sum(x for x in y)", "unknown function 'sum'", 0),
    ("_x", "names may not start with '_'", 0),
    ("x + I", "'I' is reserved", 4),
    ("oo", "'oo' is reserved", 0),
    ("atan2(x)", "atan2() takes 2 arguments, got 1", 0),
    ("1 + log(x, 2, 3)", "log() takes 1 or 2 arguments, got 3", 4),
    ("min(x)", "min() takes at least 2 arguments", 0),
    # non-ASCII look-alikes
    ("х + 1", "unsupported character 'х' (U+0445)", 0),  # Cyrillic small ha
    ("ｘ + 1", "unsupported character 'ｘ' (U+FF58)", 0),  # full-width x
    ("x + ο", "unsupported character 'ο' (U+03BF)", 4),  # omicron: looks like o
    ("x ∗ y", "unsupported character '∗' (U+2217)", 2),  # asterisk operator
    # unbalanced brackets and missing operands
    ("(x + 1", "unexpected end of expression", 6),
    ("sin(x", "unexpected end of expression", 5),
    ("x + 1)", "unexpected ')'", 5),
    ("(x)(", "unexpected end of expression", 4),
    ("sin()", "unexpected ')'", 4),
    ("x +", "unexpected end of expression", 3),
    ("* x", "unexpected '*'", 0),
    ("x + * y", "unexpected '*'", 4),
    ("x ^^ 2", "unexpected '^'", 3),
    ("x ** ** 2", "unexpected '**'", 5),
    ("x, y", "unexpected ','", 1),
    ("sin -x", "unexpected '-'", 4),
    # empty input
    ("", "empty expression", None),
    ("   ", "empty expression", None),
]


@pytest.mark.parametrize("text, message, column", BAD_INPUTS, ids=[t or "<empty>" for t, _, _ in BAD_INPUTS])
def test_bad_input(text, message, column):
    with pytest.raises(ParseError) as info:
        parse(text)
    error = info.value
    assert message in str(error)
    assert "\n" not in str(error), "the message must be one line"
    assert error.column == column
    if column is not None:
        caret = error.caret()
        line, marker = caret.split("\n")
        assert line == f"  {text}"
        assert marker == " " * (2 + column) + "^"
        # at the offending character, or just past the end when the text stops too early
        assert column == len(text) if "end of expression" in message else text[column] != " "


@pytest.mark.parametrize("text, message", [
    ("1e999", "number out of range"),
    ("2^(10^10)", "power too large"),
    ("10^100000", "power too large"),
    ("x" * 20_001, "longer than 20000 characters"),
    ("(" * 401 + "x" + ")" * 401, "nested deeper than 400 levels"),
])
def test_limits(text, message):
    with pytest.raises(LimitError, match=message):
        parse(text)


def test_huge_but_harmless_power_stays_symbolic_and_fast():
    # x^(10^10) is fine to write: nothing is expanded
    assert parse("x^(10^10)") == x ** (10**10)


def test_every_error_is_an_input_error_with_exit_status_2():
    for text, _message, _column in BAD_INPUTS:
        with pytest.raises(InputError) as info:
            parse(text)
        assert info.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("text, message, column", [
    ("x.real + 1", "attribute access is not allowed", 1),
    ("foo(x) + y", "unknown function 'foo'", 0),
    ("x + х", "unsupported character 'х' (U+0445)", 4),
    ("(x + 1", "unexpected end of expression", 6),
])
def test_cli_shows_one_error_line_and_a_caret(text, message, column):
    from pdiff.cli import app

    result = CliRunner().invoke(app, ["diff", text, "--at", "x=1"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("pdiff: error: ") and message in lines[0]
    assert lines[1] == f"  {text}"
    assert lines[2] == " " * (2 + column) + "^"
    assert "Traceback" not in result.output


# a power after a bracket binds to the bracket, not to the product before it (found grading answers)
@pytest.mark.parametrize("text, want", [
    ("2x(x+1)^2", 2 * x * (x + 1) ** 2),
    ("e^x (sin x + cos x)", sp.exp(x) * (sp.sin(x) + sp.cos(x))),
    ("x^x (ln x + 1)", x**x * (sp.log(x) + 1)),
    ("pi(x+1)^2", sp.pi * (x + 1) ** 2),
    ("sin^(2) x", sp.sin(x) ** 2),
])
def test_power_binds_to_the_bracket(text, want):
    assert sp.simplify(parse(text) - want) == 0


@pytest.mark.parametrize("text, message", [
    ("sin^-1 x", "ambiguous"),
    ("sin^(-1)(x)", "ambiguous"),
    ("x + 1/0", "division by zero"),
    ("x + log(0)", "undefined everywhere"),
])
def test_ambiguous_and_undefined_text_is_refused(text, message):
    with pytest.raises(ParseError, match=message):
        parse(text)
