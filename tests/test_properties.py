"""Hypothesis: random expressions over pdiff's functions, at random points, autograd against SymPy in float64.

Each example is generated twice at once: the text pdiff reads (in a random mix of its spellings: `^` or `**`,
`*` or implicit products, `f(a)` or `f a`) and the SymPy tree built directly (the oracle). Points where the
oracle's value is not a finite real number, or where a kink (abs, sign, min, max) sits exactly on the point,
are skipped; so are answers too large to compare in float64.

Tolerance: |autograd - oracle| <= 1e-7 * (1 + |oracle|) in float64. Loose next to float64's 1e-16 on purpose:
random nesting can amplify rounding (tan near a pole, 1/(x - y) near x = y); a wrong rule is off by O(1).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

from pdiff.api import derivative
from pdiff.autodiff import partials_at
from pdiff.errors import ParseError
from pdiff.lower import lower
from pdiff.parse import parse

X, Y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
PARTIALS = [(), ("x",), ("y",), ("x", "x"), ("y", "x"), ("x", "y", "y")]
RTOL = 1e-7
BIG = 1e8  # answers above this are not compared (float64 overflow and amplified rounding)
# modest by default (the suite runs on 2 cores); PDIFF_PROPERTY_EXAMPLES=2000 for a deep run
EXAMPLES = int(os.environ.get("PDIFF_PROPERTY_EXAMPLES", "60"))


@dataclass(frozen=True)
class Gen:
    text: str
    expr: sp.Expr
    kinks: tuple = ()  # expressions that must not be 0 at the point (non-differentiable there)
    atom: bool = False  # the text is a name or number: safe without brackets


# one-argument functions: pdiff's name(s) → the SymPy function written independently
UNARY = {
    ("sin",): sp.sin, ("cos",): sp.cos, ("tan",): sp.tan, ("exp",): sp.exp,
    ("ln", "log"): sp.log, ("sqrt",): sp.sqrt, ("atan", "arctan"): sp.atan, ("asin", "arcsin"): sp.asin,
    ("acos",): sp.acos, ("sinh",): sp.sinh, ("cosh",): sp.cosh, ("tanh",): sp.tanh, ("asinh",): sp.asinh,
    ("acosh",): sp.acosh, ("atanh",): sp.atanh, ("erf",): sp.erf, ("sec",): lambda a: 1 / sp.cos(a),
    ("cot",): lambda a: sp.cos(a) / sp.sin(a), ("sech",): lambda a: 1 / sp.cosh(a),
    ("log10",): lambda a: sp.log(a) / sp.log(10),
}
KINKED = {("abs", "Abs"): sp.Abs, ("sign", "sgn"): sp.sign}

variables = st.sampled_from([Gen("x", X, atom=True), Gen("y", Y, atom=True)])
numbers = st.sampled_from([
    Gen("2", sp.Integer(2), atom=True), Gen("3", sp.Integer(3), atom=True), Gen("0.5", sp.Rational(1, 2), atom=True),
    Gen("1.25", sp.Rational(5, 4), atom=True), Gen("pi", sp.pi, atom=True), Gen("e", sp.E, atom=True),
    Gen("(-1)", sp.Integer(-1)),
])
leaves = st.one_of(variables, variables, numbers)


def wrap(g: Gen) -> str:
    return g.text if g.atom else f"({g.text})"


@st.composite
def unary(draw, inner):
    table = draw(st.sampled_from([UNARY, UNARY, UNARY, KINKED]))
    names, function = draw(st.sampled_from(sorted(table.items(), key=lambda kv: kv[0])))
    name = draw(st.sampled_from(names))
    arg = draw(inner)
    bare = arg.text in ("x", "y") and draw(st.booleans())  # `sin x` as well as `sin(x)`
    text = f"{name} {arg.text}" if bare else f"{name}({arg.text})"
    kinks = arg.kinks + ((arg.expr,) if table is KINKED else ())
    return Gen(f"({text})" if bare else text, function(arg.expr), kinks, atom=not bare)


@st.composite
def binary(draw, inner):
    a, b = draw(inner), draw(inner)
    op = draw(st.sampled_from(["+", "-", "*", "/", "implicit", "min", "max", "atan2"]))
    kinks = a.kinks + b.kinks
    if op == "+":
        return Gen(f"{a.text} + {wrap(b)}", a.expr + b.expr, kinks)
    if op == "-":
        return Gen(f"{a.text} - {wrap(b)}", a.expr - b.expr, kinks)
    if op == "*":
        return Gen(f"{wrap(a)}*{wrap(b)}", a.expr * b.expr, kinks)
    if op == "/":
        return Gen(f"{wrap(a)}/{wrap(b)}", a.expr / b.expr, kinks)
    if op == "implicit":  # `2 x`, `(x+1)(y)`, `x sin(y)`: implicit multiplication
        return Gen(f"{wrap(a)} {wrap(b)}" if a.atom or draw(st.booleans()) else f"{wrap(a)}{wrap(b)}",
                   a.expr * b.expr, kinks)
    if op == "atan2":
        return Gen(f"atan2({a.text}, {b.text})", sp.atan2(a.expr, b.expr), kinks, atom=True)
    function = sp.Min if op == "min" else sp.Max
    try:
        expr = function(a.expr, b.expr)
    except ValueError:  # min(acos(2), x): SymPy cannot compare a non-real constant (pdiff rejects it too)
        reject()
    return Gen(f"{op}({a.text}, {b.text})", expr, kinks + (a.expr - b.expr,), atom=True)


@st.composite
def power(draw, inner):
    base = draw(inner)
    exponent = draw(st.sampled_from([(2, sp.Integer(2)), (3, sp.Integer(3)), ("-1", sp.Integer(-1)),
                                     ("-2", sp.Integer(-2)), ("(1/2)", sp.Rational(1, 2)),
                                     ("1.5", sp.Rational(3, 2))]))
    op = draw(st.sampled_from(["^", "**"]))
    return Gen(f"{wrap(base)}{op}{exponent[0]}", base.expr ** exponent[1], base.kinks)


@st.composite
def exp_power(draw, inner):
    # e^(...) and 2^(...): a variable exponent
    base = draw(st.sampled_from([("e", sp.E), ("2", sp.Integer(2))]))
    arg = draw(inner)
    return Gen(f"{base[0]}^{wrap(arg)}", base[1] ** arg.expr, arg.kinks)


expressions = st.recursive(
    leaves,
    lambda inner: st.one_of(unary(inner), binary(inner), power(inner), exp_power(inner)),
    max_leaves=6,
)
coordinates = st.integers(-24, 24).map(lambda k: k / 8)  # binary-exact floats in [-3, 3]
points = st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=4)


def _at(expr: sp.Expr, subs: dict) -> sp.Expr:
    try:
        return expr.xreplace(subs)
    except (ValueError, TypeError):  # Min(zoo, 0): SymPy refuses to build it
        return sp.nan


def _finite_real(value: sp.Expr) -> bool:
    try:
        number = complex(sp.N(value, 25))
    except (TypeError, ValueError, ZeroDivisionError):
        return False  # zoo, nan, an unevaluated DiracDelta
    return number.imag == 0 and math.isfinite(number.real)


def in_real_domain(expr: sp.Expr, subs: dict) -> bool:
    """Every subexpression is a finite real number at the point (acosh(0) is not, though acosh'' at 0 is)."""
    return all(_finite_real(_at(node, subs)) for node in sp.preorder_traversal(expr) if not node.is_Atom)


def oracle(expr: sp.Expr, wrt: tuple[str, ...], point: tuple[float, float], kinks) -> float | None:
    """SymPy's exact value as a float, or None where it should not be compared."""
    subs = {X: sp.Rational(Fraction(point[0])), Y: sp.Rational(Fraction(point[1]))}
    if any(_at(k, subs) == 0 for k in kinks):
        return None
    if not in_real_domain(expr, subs):
        return None
    derivative_ = sp.diff(expr, *(sp.Symbol(n, real=True) for n in wrt)) if wrt else expr
    exact = _at(derivative_, subs)
    if not _finite_real(exact):
        return None
    value = float(sp.N(exact, 25))
    return value if abs(value) <= BIG else None


def _same_expression(parsed: sp.Expr, expected: sp.Expr) -> bool:
    """The parser read the text as the generator meant it. simplify proves most; on a kink it may answer a
    Piecewise (cot(2)/sign(x) - cos(2)/(sin(2) sign(x)) is "nan if x = 0, else 0"), so the kink functions are
    taken as opaque symbols, the same in both, before a second try."""
    if parsed == expected or sp.simplify(parsed - expected) == 0:
        return True
    kinks = (parsed - expected).atoms(sp.Abs, sp.sign, sp.Heaviside, sp.Min, sp.Max)
    opaque = {atom: sp.Dummy() for atom in kinks}
    return sp.simplify(parsed.xreplace(opaque) - expected.xreplace(opaque)) == 0


def _has_non_real_constant(expr: sp.Expr) -> bool:
    """A constant subexpression whose value (SymPy, 25 digits) has an imaginary part, or one undefined
    everywhere ((x - x)^-1 is zoo)."""
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return True
    for node in sp.preorder_traversal(expr):
        if node.is_number:  # I itself is an atom
            try:
                if complex(sp.N(node, 25)).imag != 0:
                    return True
            except (TypeError, ValueError, ZeroDivisionError):
                continue
    return False


def _agree(got: float, want: float) -> bool:
    return abs(got - want) <= RTOL * (1 + abs(want))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expressions, points)
def test_autograd_matches_sympy(gen, pts):
    if _has_non_real_constant(gen.expr):  # acos(2), sqrt(-1): pdiff works over the reals and refuses them
        with pytest.raises(ParseError):
            parse(gen.text)
        return
    parsed = parse(gen.text)
    assert _same_expression(parsed, gen.expr), f"{gen.text!r} read as {parsed}"
    program = lower(parsed, ["x", "y"])
    columns = {"x": torch.tensor([p[0] for p in pts], dtype=torch.float64),
               "y": torch.tensor([p[1] for p in pts], dtype=torch.float64)}
    got = [t.tolist() for t in partials_at(program, columns, PARTIALS)]
    compared = 0
    for k, wrt in enumerate(PARTIALS):
        for j, point in enumerate(pts):
            want = oracle(gen.expr, wrt, point, gen.kinks)
            if want is None:
                continue
            compared += 1
            assert _agree(got[k][j], want), (
                f"{gen.text!r} d/d{wrt} at {point}: autograd {got[k][j]!r}, SymPy {want!r}")
    assume(compared > 0)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_the_reading_shown_parses_back(gen):
    """read_as (the reading pdiff displays) is pdiff notation that reads back to the same expression."""
    from pdiff.parse import read_input

    if _has_non_real_constant(gen.expr):
        return
    first = read_input(gen.text)
    again = read_input(first.read_as)
    assert again.expression == first.expression or _same_expression(again.expression, first.expression), (
        f"{gen.text!r} shown as {first.read_as!r}, which reads back as {again.expression}")


@settings(max_examples=max(1, EXAMPLES // 5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, st.tuples(coordinates, coordinates))
def test_api_exact_side_matches_sympy(gen, point):
    # through the API with the symbolic side on: pdiff's own exact value must agree with the oracle too
    assume(gen.expr.free_symbols)
    wants = [oracle(gen.expr, wrt, point, gen.kinks) for wrt in [("x",), ("y", "x")]]
    assume(any(w is not None for w in wants))
    report = derivative(gen.text, ["df/dx", "d2f/dxdy"], at=[{"x": point[0], "y": point[1]}], timeout=20)
    for result, want in zip(report.results, wants):
        if want is None:
            continue
        assert result.value is not None and _agree(result.value, want), (gen.text, result)
        assert _agree(result.autograd, want), (gen.text, result)


STREAMED = [("df/dx", ("x",)), ("d2f/dxdy", ("y", "x")), ("d3f/dxdy2", ("y", "y", "x"))]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_stream_exact_column_matches_sympy(gen, pts):
    # the many-point engine: its exact column is SymPy's derivative in an evaluation form (grouped, Horner),
    # replayed together with autograd's ops; both columns must agree with the oracle wherever it has a value
    import numpy as np

    from pdiff import sources, stream

    try:
        parsed = parse(gen.text)
    except ParseError:  # x/(x - x): SymPy folds it to a division by zero, which pdiff reports as such
        reject()
    plan = stream.StreamPlan([parsed], STREAMED, variables=["x", "y"], device="cpu", timeout=20)
    columns = {"x": np.array([p[0] for p in pts]), "y": np.array([p[1] for p in pts])}
    source = sources.array_source(columns, ["x", "y"])
    (values,) = list(plan.run(source))
    compared = 0
    for t, (_, wrt) in enumerate(STREAMED):
        for j, point in enumerate(pts):
            want = oracle(gen.expr, wrt, point, gen.kinks)
            if want is None or values.exact[t] is None:
                continue
            compared += 1
            assert _agree(float(values.exact[t][j]), want), (gen.text, wrt, point, plan.summary.targets[t])
            assert _agree(float(values.autograd[t][j]), want), (gen.text, wrt, point)
    assume(compared > 0)


@pytest.mark.parametrize("text, expr", [
    ("x y", X * Y),
    ("sin x cos y", sp.sin(X) * sp.cos(Y)),
    ("max(x, y^2)", sp.Max(X, Y**2)),
    ("atan2(y, x)", sp.atan2(Y, X)),
    ("2^(x y)", 2 ** (X * Y)),
])
def test_float32(text, expr):
    # float32 end to end against the float64 oracle, with float32's tolerance (a few ulps, amplified)
    values = [(0.5, 1.5), (-1.25, 0.75), (2.0, -0.5)]
    columns = {"x": torch.tensor([v[0] for v in values], dtype=torch.float32),
               "y": torch.tensor([v[1] for v in values], dtype=torch.float32)}
    got = partials_at(lower(parse(text), ["x", "y"]), columns, PARTIALS[:5])
    for k, wrt in enumerate(PARTIALS[:5]):
        assert got[k].dtype == torch.float32
        for j, point in enumerate(values):
            want = oracle(expr, wrt, point, (X - Y**2,) if "max" in text else ())
            assert want is not None
            assert abs(got[k][j].item() - want) <= 1e-5 * (1 + abs(want)), (text, wrt, point)
