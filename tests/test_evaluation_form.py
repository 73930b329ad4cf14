"""symbolic.evaluation_form: the derivative the many-point engine lowers for its exact column, in fewer operations.

The oracle is the derivative as SymPy wrote it, evaluated with 50 significant digits; the form under test is
lowered and evaluated in float64 as the engine does.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from pdiff import symbolic
from pdiff.autodiff import trace_partials
from pdiff.lower import lower
from pdiff.parse import parse

CASES = [
    ("exp(x y) sin(x + y^2)", ("y", "x", "x")),
    ("exp(x y) sin(x + y^2)", ("y", "y", "x", "x")),
    ("x^2 sin(y) + y^3 cos(x)", ("y", "x")),
    ("atan(x/y) + log(x^2+y^2) sqrt(x y)", ("x", "y", "x")),
    ("(x^2+1)^5 exp(-x) + y", ("x", "x", "x")),
    ("(x-1)^7 sin(x) + y", ("x", "x")),
    ("abs(x)^3 + y", ("x", "x")),
    ("tanh(x y)^3 / (1 + x^2)", ("x", "y")),
    ("x^3 y^2 - 4 x y + 7", ("x", "y")),
]


def _precise(expr: sp.Expr, point: dict[str, float]) -> float:
    values = {sp.Symbol(name, real=True): sp.Rational(value) for name, value in point.items()}
    return float(sp.N(expr.xreplace(values), 50))


def _lowered_ops(expr: sp.Expr) -> int:
    traced = trace_partials(lower(expr, ["x", "y"]), ["x", "y"], [()])
    assert traced is not None
    return len(traced.ops)


@pytest.mark.parametrize("text, wrt", CASES)
def test_the_form_has_the_derivatives_values_in_float64(text, wrt):
    derivative = symbolic.derivative(parse(text), wrt)
    form = symbolic.evaluation_form(derivative)
    rng = np.random.default_rng(5)
    points = {"x": rng.uniform(0.3, 1.7, 40), "y": rng.uniform(0.3, 1.7, 40)}
    got = lower(form, ["x", "y"])({name: torch.from_numpy(values) for name, values in points.items()})
    got = torch.broadcast_to(got, (40,)).numpy()
    want = [_precise(derivative, {name: float(values[i]) for name, values in points.items()}) for i in range(40)]
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
    assert _lowered_ops(form) <= _lowered_ops(derivative)


def test_sums_are_grouped_by_their_transcendental_factors():
    derivative = symbolic.derivative(parse("exp(x y) sin(x + y^2)"), ("y", "x", "x"))
    form = symbolic.evaluation_form(derivative)
    assert _lowered_ops(form) < _lowered_ops(derivative)  # 24 against 32 when written
    u = sp.Symbol("x", real=True) + sp.Symbol("y", real=True) ** 2
    assert form.count(sp.sin(u)) == 1 and form.count(sp.cos(u)) == 1  # each written once, as a factor


@pytest.mark.parametrize("text, wrt", [("(x-1)^7 + x y^2", ("x",)), ("(x-1)^7 sin(x) + y", ("x", "x"))])
def test_a_factored_power_is_not_expanded_where_expanding_would_cancel(text, wrt):
    """(x - 1)^6 expanded into powers of x loses every digit near x = 1; the form must keep the factor."""
    derivative = symbolic.derivative(parse(text), wrt)
    form = symbolic.evaluation_form(derivative)
    for x in (1 + 1e-6, 1 - 3e-5, 1.001):
        got = float(lower(form, ["x", "y"])({"x": torch.tensor([x], dtype=torch.float64),
                                             "y": torch.tensor([0.0], dtype=torch.float64)})[0])
        want = _precise(derivative, {"x": x, "y": 0.0})
        assert got == pytest.approx(want, rel=1e-12, abs=0)
