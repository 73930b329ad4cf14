"""Taylor mode (pdiff.taylor) against oracles: SymPy's exact derivatives (orders ≤ 10) and mpmath's numerical
differentiation at 50+ digits (orders to 40); the `taylor` and `tangent` commands against SymPy's series."""

from __future__ import annotations

import json
import math

import mpmath
import pytest
import sympy as sp
import torch
from typer.testing import CliRunner

from pdiff import api, taylor, taylor_api
from pdiff.cli import app
from pdiff.errors import LimitError
from pdiff.lower import lower
from pdiff.notation import parse_partial
from pdiff.parse import parse, symbol
from pdiff.results import Status

runner = CliRunner()


def engine(text: str, point: dict[str, float], partials: list[tuple[str, ...]]) -> list[float]:
    expr = parse(text)
    names = sorted({*point})
    program = lower(expr, names)
    columns = {n: torch.tensor([point[n]], dtype=torch.float64) for n in names}
    return [v.item() for v in taylor.partials_at(program, columns, partials)]


def sympy_value(text: str, point: dict[str, float], wrt: tuple[str, ...]) -> float:
    expr = parse(text)
    derivative = sp.diff(expr, *(symbol(n) for n in wrt)) if wrt else expr
    return float(sp.N(derivative.xreplace({symbol(n): sp.Float(v, 30) for n, v in point.items()}), 30))


def close(got: float, want: float, rtol: float = 1e-10, atol: float = 1e-12) -> bool:
    return abs(got - want) <= atol + rtol * abs(want)


# every function the engine has a rule for, at a point inside its domain (u = a small affine map keeps each
# argument where the function is smooth)
ONE_VARIABLE = [
    ("exp(x)", 0.3), ("log(x)", 1.7), ("sin(x)", 0.4), ("cos(x)", 0.4), ("tan(x)", 0.4), ("cot(x)", 0.7),
    ("sec(x)", 0.4), ("csc(x)", 0.7), ("asin(x)", 0.3), ("acos(x)", 0.3), ("atan(x)", 0.6), ("acot(x)", 1.3),
    ("asec(x)", 1.6), ("acsc(x)", 1.6), ("sinh(x)", 0.4), ("cosh(x)", 0.4), ("tanh(x)", 0.4), ("coth(x)", 0.8),
    ("sech(x)", 0.4), ("csch(x)", 0.8), ("asinh(x)", 0.4), ("acosh(x)", 1.4), ("atanh(x)", 0.4),
    ("acoth(x)", 1.5), ("asech(x)", 0.5), ("acsch(x)", 0.8), ("sqrt(x)", 1.3), ("cbrt(x)", -2.1),
    ("cbrt(x)", 0.9), ("erf(x)", 0.4), ("abs(x)", -0.7), ("abs(x)^3", 0.4), ("sign(x) x^2", -0.5),
    ("x^3", -1.3), ("x^(-2)", -0.8), ("x^(2/3)", 1.4), ("x^pi", 1.2), ("2^x", 0.3), ("x^x", 1.1),
    ("max(x, 1 - x)", 0.2), ("min(x^2, x)", 0.5), ("exp(sin(x))/(1+x^2)", 0.5), ("log(1 + x^2) cos(3x)", -0.4),
]


@pytest.mark.parametrize("text, a", ONE_VARIABLE)
def test_one_variable_against_sympy(text, a):
    partials = [("x",) * n for n in range(9)]
    got = engine(text, {"x": a}, partials)
    for wrt, value in zip(partials, got):
        want = sympy_value(text, {"x": a}, wrt)
        assert close(value, want, 1e-9, 1e-9), (text, len(wrt), value, want)


SEVERAL = [
    ("exp(x y) sin(x + y)", {"x": 0.3, "y": 0.7}, [("y", "y", "x"), ("x", "x", "y", "y"), ("y",) * 3 + ("x",) * 3]),
    ("atan2(y, x)", {"x": 0.8, "y": -0.5}, [("x", "y"), ("x", "x", "y", "y", "y")]),
    ("x^2 y^3 z + sqrt(x + y z)", {"x": 1.2, "y": 0.5, "z": 2.0}, [("x", "y", "z"), ("z", "z", "y", "x", "x")]),
    ("log(x^2 + y^2) / (1 + z^2)", {"x": 0.6, "y": -0.9, "z": 0.3}, [("x", "x", "y", "z", "z")]),
    ("tanh(x - 2y) erf(y)", {"x": 0.2, "y": 0.3}, [("y",) * 4 + ("x",) * 2]),
    ("max(x, y) + abs(x - 2y)", {"x": 0.5, "y": 0.1}, [("x", "y")]),
]


@pytest.mark.parametrize("text, point, partials", SEVERAL)
def test_several_variables_against_sympy(text, point, partials):
    for wrt, value in zip(partials, engine(text, point, partials)):
        want = sympy_value(text, point, wrt)
        assert close(value, want, 1e-9, 1e-9), (text, wrt, value, want)


def mp_function(text: str):
    """The same functions, written for mpmath by hand (an oracle independent of pdiff's lowering)."""
    return {
        "exp(sin(x))/(1+x^2)": lambda x: mpmath.exp(mpmath.sin(x)) / (1 + x ** 2),
        "atan(x)": mpmath.atan, "erf(x)": mpmath.erf, "sqrt(x)": mpmath.sqrt, "log(x)": mpmath.log,
        "tan(x)": mpmath.tan, "x^(2/3)": lambda x: x ** (mpmath.mpf(2) / 3), "asin(x)": mpmath.asin,
        "tanh(x)": mpmath.tanh,
    }[text]


HIGH = [("exp(sin(x))/(1+x^2)", 0.5, 20), ("exp(sin(x))/(1+x^2)", -1.25, 40), ("atan(x)", 0.7, 40),
        ("erf(x)", 0.3, 30), ("sqrt(x)", 1.5, 40), ("log(x)", 0.8, 40), ("tan(x)", 0.3, 25), ("x^(2/3)", 1.1, 30),
        ("asin(x)", 0.2, 20), ("tanh(x)", 0.6, 30)]


@pytest.mark.parametrize("text, a, n", HIGH)
def test_high_orders_against_mpmath(text, a, n):
    with mpmath.workdps(60):
        want = mpmath.diff(mp_function(text), mpmath.mpf(a), n)
    got = engine(text, {"x": a}, [("x",) * n])[0]
    assert close(got, float(want), 1e-10, 0), (got, want)
    # the exact side: the same series in mpmath at 60 digits agrees with numerical differentiation to 40
    exact = taylor.exact_partial(parse(text), ("x",) * n, {"x": sp.Rational(a)})
    with mpmath.workdps(60):
        assert abs(exact - want) <= mpmath.mpf(10) ** -40 * abs(want)


def test_contract_values():
    with mpmath.workdps(60):
        f = mp_function("exp(sin(x))/(1+x^2)")
        d20 = mpmath.diff(f, mpmath.mpf(1) / 2, 20)
        d55 = mpmath.diff(lambda x, y: mpmath.exp(x * y) * mpmath.sin(x + y),
                          (mpmath.mpf(3) / 10, mpmath.mpf(7) / 10), (5, 5))
    result = runner.invoke(app, ["diff", "exp(sin(x))/(1+x^2)", "d20f/dx20", "--at", "x=0.5", "-f", "json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["results"][0]
    assert abs(record["autograd"] - float(d20)) <= 1e-10 * abs(float(d20))
    assert record["status"] == "ok" and "series" in record["note"]
    assert record["derivative"] == "Derivative(exp(sin(x))/(x**2 + 1), (x, 20))"
    with mpmath.workdps(60):
        assert abs(mpmath.mpf(record["exact"]) - d20) <= mpmath.mpf(10) ** -45 * abs(d20)
    report = api.derivative("exp(x y) sin(x + y)", ["d10f/dx5dy5"], at=["x=0.3,y=0.7"])
    r = report.results[0]
    assert r.status is Status.OK and abs(r.autograd - float(d55)) <= 1e-10 * abs(float(d55))
    assert report.exit_code == 0


def test_orders_in_the_hundreds_keep_their_range():
    # 1/150! underflows and 170! overflows float64: the power-of-two scaling keeps both in range
    got = engine("sin(x)", {"x": 0.3}, [("x",) * 150])[0]
    assert close(got, -math.sin(0.3), 1e-12)
    got = engine("exp(2x)", {"x": 0.1}, [("x",) * 300])[0]
    assert close(got, float(sp.Integer(2) ** 300 * sp.exp(sp.Rational(1, 5))), 1e-11)
    got = engine("1/(1 - x)", {"x": 0.5}, [("x",) * 120])[0]  # n! / (1 - x)^(n+1)
    assert close(got, float(sp.factorial(120) * 2 ** 121), 1e-11)


def test_engines_agree_with_sympy_and_each_other_at_low_orders():
    for name in ("reverse", "taylor"):
        report = api.derivative("x^2 sin(y) + y^3 cos(x)", ["d3f/dx2dy"], at=["x=2,y=1"], engine=name)
        r = report.results[0]
        assert r.status is Status.OK and close(r.autograd, r.value, 1e-12)


@pytest.mark.parametrize("text, low, high, point, status", [
    ("abs(x)", "d2f/dx2", "d6f/dx6", "x=0", Status.NON_DIFFERENTIABLE),
    ("abs(x)", "d2f/dx2", "d10f/dx10", "x=0", Status.NON_DIFFERENTIABLE),
    ("max(x, y)", "d2f/dxdy", "d6f/dx3dy3", "x=1,y=1", Status.NON_DIFFERENTIABLE),
    ("sqrt(x)", "d2f/dx2", "d6f/dx6", "x=0", Status.NON_FINITE),
    ("log(x)", "d2f/dx2", "d10f/dx10", "x=-1", Status.NON_FINITE),
    ("1/x", "d2f/dx2", "d12f/dx12", "x=0", Status.NON_FINITE),
    ("asin(x)", "d2f/dx2", "d9f/dx9", "x=2", Status.NON_FINITE),
])
def test_kinks_and_domain_edges(text, low, high, point, status):
    # the status nested reverse mode gives at the point (at order 2, where it is cheap), and Taylor mode's
    assert api.derivative(text, [low], at=[point], engine="reverse").results[0].status is status
    assert api.derivative(text, [low], at=[point], engine="taylor").results[0].status is status
    report = api.derivative(text, [high], at=[point])
    assert report.results[0].status is status, report.results[0]


def test_order_limits():
    assert parse_partial("d400f/dx400", ["x"]).order == 400
    with pytest.raises(LimitError):
        parse_partial("d401f/dx401", ["x"])
    with pytest.raises(LimitError, match="Taylor coefficients"):
        api.derivative("x y z", ["d120f/dx40dy40dz40"], at=["x=1,y=1,z=1"])
    assert taylor.engine_for(("x",) * taylor.CROSSOVER, "auto") == "reverse"
    assert taylor.engine_for(("x",) * (taylor.CROSSOVER + 1), "auto") == "taylor"


def test_many_points_stream_high_orders():
    from pdiff import sources, stream

    plan = stream.plan_diff("sin(x) exp(x)", ["d10f/dx10"], timeout=20)
    source = sources.grid_source("x=-2:2:2001", plan.needed)
    values = list(plan.run(source))
    xs = sources.grid_source("x=-2:2:2001", plan.needed)
    assert plan.summary.exit_code == 0 and plan.summary.points == 2001
    # the oracle: d^n/dx^n e^x sin x = 2^(n/2) e^x sin(x + nπ/4)
    x = torch.linspace(-2, 2, 2001, dtype=torch.float64)
    want = 2 ** 5 * torch.exp(x) * torch.sin(x + 10 * math.pi / 4)
    got = torch.from_numpy(values[0].autograd[0])
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-10)
    del xs


def test_taylor_command_exp_sin():
    result = runner.invoke(app, ["taylor", "exp(sin x)", "--at", "x=0", "--order", "6", "-f", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    x = sp.Symbol("x")
    series = sp.series(sp.exp(sp.sin(x)), x, 0, 7).removeO()
    assert sp.simplify(sp.sympify(document["polynomial"]) - series) == 0
    assert document["remainder_order"] == 7
    for record in document["coefficients"]:
        want = series.coeff(x, record["index"][0])
        assert sp.Rational(record["exact"]) == want
        assert close(record["taylor"], float(want), 1e-13, 1e-15)
    plain = runner.invoke(app, ["taylor", "exp(sin x)", "--at", "x=0", "--order", "6", "-f", "plain"])
    assert plain.stdout == "1 + x + x^2/2 - x^4/8 - x^5/15 - x^6/240\n"


def test_tangent_plane_and_line():
    result = runner.invoke(app, ["taylor", "x^2 y", "--at", "x=1,y=2", "--order", "1", "-f", "plain"])
    assert result.exit_code == 0 and result.stdout == "2 + 4*(x - 1) + (y - 2)\n"
    result = runner.invoke(app, ["tangent", "x^2 y", "--at", "x=1,y=2", "-f", "plain"])
    assert result.stdout == "tangent plane z = 2 + 4*(x - 1) + (y - 2)\n"
    result = runner.invoke(app, ["linearize", "sin(x)", "--at", "x=0", "-f", "plain"])
    assert result.stdout == "tangent line y = x\n"


def test_taylor_several_variables_against_sympy():
    report = taylor_api.taylor_polynomial("exp(x y) sin(x + y)", at=["x=3/10,y=7/10"], order=4)
    assert report.exit_code == 0
    x, y = symbol("x"), symbol("y")
    f = sp.exp(x * y) * sp.sin(x + y)
    for c in report.coefficients:
        i, j = c.index
        want = sp.diff(f, x, i, y, j).subs({x: sp.Rational(3, 10), y: sp.Rational(7, 10)}) / (
            sp.factorial(i) * sp.factorial(j))
        assert close(c.value, float(want), 1e-13, 1e-15) and close(c.numeric, float(want), 1e-12, 1e-14)
    polynomial = sp.sympify(report.polynomial).subs({sp.Symbol("x"): 1, sp.Symbol("y"): 1})
    assert abs(float(polynomial) - sum(float(c.value) * 0.7 ** c.index[0] * 0.3 ** c.index[1]
                                       for c in report.coefficients)) < 1e-12
