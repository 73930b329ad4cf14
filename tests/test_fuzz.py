"""Property-based fuzzing of the parser, the notation, the points and the CLI (Hypothesis).

Properties: any text either parses or raises one of pdiff's input errors (never another exception type, never a
RecursionError or ValueError from deep inside SymPy), quickly; the CLI always exits 0, 1 or 2 through its own
error handling, with one `pdiff: error:` line for bad input and never a traceback. Kept small for CI (a few hundred
examples in all); scripts/fuzz_parse.py runs the same targets for as long as you like under atheris.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pdiff.errors import InputError
from pdiff.notation import parse_partial, parse_wrt
from pdiff.parse import FUNCTIONS, parse
from pdiff.points import parse_point

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PER_CALL_SECONDS = 5.0  # a generous bound for one parse on a loaded CI machine; typical is milliseconds

# text close to the grammar: its tokens, look-alikes, Python syntax and control characters, in any order
TOKENS = ["x", "y", "theta", "x1", "e", "pi", "2", "0", "1.5", ".5", "1e3", "1e999", "10", "^", "**", "*", "/", "+",
          "-", "(", ")", "[", "]", ",", " ", "sin", "log", "sqrt", "abs", "min", "atan2", "__import__", "lambda",
          "for", "in", ".", "'", ":", "х", "２", "\u200b", "\u202e", "\x00", "\x1b", "²", "−", "·", "!", "=",
          "\\frac{1}{x}", "{", "}", "_", "d", "f"]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def _grammar_expressions() -> st.SearchStrategy[str]:
    """Well-formed expressions in pdiff's input language, of bounded size."""
    leaves = st.one_of(st.sampled_from(["x", "y", "z", "theta", "pi", "e"]),
                       st.integers(0, 10**6).map(str),
                       st.decimals(0, 1000, places=3, allow_nan=False, allow_infinity=False).map(str))
    unary = sorted(name for name, (_fn, counts) in FUNCTIONS.items() if 1 in counts)

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "^", "**", " "]), inner).map(
                lambda t: f"({t[0]}){t[1]}({t[2]})"),
            st.tuples(st.sampled_from(unary), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(["min", "max", "atan2", "log"]), inner, inner).map(
                lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            inner.map(lambda t: f"-({t})"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


grammar_expressions = _grammar_expressions()


def _bounded(call, *args):
    start = time.monotonic()
    try:
        return call(*args)
    except InputError as exc:
        assert "\n" not in str(exc), "an error message must be one line"
        assert len(str(exc)) < 400, "an error message must stay short"
        return exc
    finally:
        assert time.monotonic() - start < PER_CALL_SECONDS


@FAST
@given(st.text(max_size=200))
def test_parse_any_text(text):
    _bounded(parse, text)


@FAST
@given(st.binary(max_size=200))
def test_parse_any_bytes(data):
    # what a file or argv of invalid UTF-8 becomes in Python: surrogate escapes
    _bounded(parse, data.decode("utf-8", "surrogateescape"))


@FAST
@given(token_soup)
def test_parse_token_soup(text):
    _bounded(parse, text)


@FAST
@given(grammar_expressions)
@example("arctanh((7)^(339))")  # found by this test: a 330-digit constant in the message
def test_parse_grammar_shaped(text):
    result = _bounded(parse, text)
    if not isinstance(result, InputError):
        import sympy as sp

        assert isinstance(result, sp.Expr)
        assert result.free_symbols <= {sp.Symbol(n, real=True) for n in ("x", "y", "z", "theta")}


@FAST
@given(st.one_of(st.text(max_size=80), token_soup), st.lists(st.sampled_from(["x", "y", "theta", "r"]), max_size=3))
def test_partial_notation_any_text(text, variables):
    _bounded(parse_partial, text, variables)
    _bounded(parse_wrt, text)


@FAST
@given(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(TOKENS + ["x=", "=", "y="]), max_size=20).map("".join)))
def test_points_any_text(text):
    _bounded(parse_point, text)


# --- the CLI, in process (typer.testing.CliRunner): the command's own error handling, the exit status --------------

def _invoke(args):
    from typer.testing import CliRunner

    from pdiff.cli import app

    start = time.monotonic()
    result = CliRunner().invoke(app, args, env={"NO_COLOR": "1"})
    seconds = time.monotonic() - start
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in output, (args, output[-2000:])
    if result.exit_code == 2 and "Usage:" not in result.stderr:  # Click's usage errors: one line only via run()
        errors = [line for line in result.stderr.splitlines() if line.startswith("pdiff:")]
        assert len(errors) == 1 and errors[0].startswith("pdiff: error: "), (args, result.stderr)
    return result, seconds


@SLOW
@given(st.one_of(st.text(max_size=60), token_soup))
def test_cli_any_expression(text):
    _result, seconds = _invoke(["diff", "--timeout", "5", "--", text])  # `--`: a leading '-' is not an option
    assert seconds < 5 + 10


@SLOW
@given(grammar_expressions, st.sampled_from(["1", "0", "-1", "1/3", "pi/4", "1e3", "-700"]),
       st.sampled_from(["df/dx", "d2f/dx2", "f_xy", "d3f/dx2dy"]))
def test_cli_grammar_shaped_at_a_point(text, value, partial):
    result, seconds = _invoke(["diff", "--at", f"x={value},y=2,z=3,theta=1", "--timeout", "5", "--format", "json",
                               "--", text, partial])
    assert seconds < 5 + 10
    if result.exit_code == 0:
        import json
        import math

        for row in json.loads(result.stdout)["results"]:
            assert row["autograd"] is not None and math.isfinite(row["autograd"]), "exit 0 with a non-finite answer"


@pytest.mark.parametrize("option", ["--at", "--wrt", "--dtype", "--device", "--format", "--timeout"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(st.text(max_size=40), token_soup))
def test_cli_any_option_value(option, value):
    _invoke(["diff", "--at", "x=1,y=2", f"{option}={value}", "--", "x*y"])
