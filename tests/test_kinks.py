"""Non-differentiable points are flagged, never printed as ordinary answers; smooth points at kinks are not.

Oracle: one-sided derivatives worked by hand (d|x|/dx is -1 left of 0 and +1 right of it, and so on).
"""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from pdiff.api import derivative
from pdiff.calculus import compute
from pdiff.cli import app
from pdiff.results import Status

# (expression, partial, point, differentiable there?)
CASES = [
    ("abs(x)", "df/dx", "x=0", False),            # -1 | +1
    ("abs(x)", "df/dx", "x=2", True),
    ("abs(x)^3", "d2f/dx2", "x=0", True),         # 6|x| → 0 both sides
    ("abs(x)^3", "d3f/dx3", "x=0", False),        # 6 sign(x): -6 | +6
    ("sqrt(x^2)", "df/dx", "x=0", False),         # |x| for real x
    ("max(x, y)", "df/dx", "x=1,y=1", False),     # 0 | 1
    ("max(x, y)", "df/dx", "x=2,y=1", True),
    ("min(x, y)", "df/dy", "x=1,y=1", False),     # 1 | 0
    ("abs(x - y)", "df/dx", "x=1/2,y=1/2", False),
    ("x abs(y)", "df/dy", "x=0,y=0", True),       # x|y| with x = 0 is 0 along y
    ("abs(x) y", "df/dy", "x=0,y=1", True),       # |x| is a constant along y
    ("sign(x)", "df/dx", "x=0", False),           # a jump
    ("abs(sin(x))", "df/dx", "x=pi", False),      # |sin| at pi: -1 | +1... sin changes sign, slope ±1
    ("abs(x)", "d2f/dxdy", "x=0,y=0", True),      # ∂/∂x of ∂|x|/∂y = 0: y first leaves nothing to break
]


@pytest.mark.parametrize("text, partial, point, smooth", CASES)
def test_kinks_are_flagged(text, partial, point, smooth):
    result = derivative(text, [partial], at=[point]).results[0]
    if smooth:
        assert result.status is Status.OK, result.note
    else:
        assert result.status is Status.NON_DIFFERENTIABLE
        assert "not differentiable" in result.note


def test_one_sided_values_in_the_message():
    note = derivative("abs(x)", ["df/dx"], at=["x=0"]).results[0].note
    assert "-1 from below" in note and "1 from above" in note


def test_cli_prints_nan_and_exits_1():
    runner = CliRunner()
    result = runner.invoke(app, ["diff", "abs(x)", "--at", "x=0", "--at", "x=-3", "--format", "plain"])
    assert result.exit_code == 1
    assert result.stdout.split() == ["nan", "-1.0"]
    document = json.loads(runner.invoke(app, ["diff", "max(x,y)", "df/dx", "--at", "x=1,y=1", "--format", "json"]).stdout)
    assert document["results"][0]["status"] == "non-differentiable"


def test_matrix_commands_blank_only_the_missing_entries():
    result = compute("gradient", "abs(x - y) + x y", at=["x=1,y=2"]).results[0]
    assert result.status is Status.OK  # away from the kink: ∇ = (sign(x-y) + y, -sign(x-y) + x) = (1, 2)
    assert result.autograd == [1.0, 2.0]
    hessian = compute("hessian", "x^2 + abs(y)^3", at=["x=0,y=0"]).results[0]
    assert hessian.status is Status.OK and hessian.autograd == [[2.0, 0.0], [0.0, 0.0]]
    kink = compute("gradient", "abs(x) + y", at=["x=0,y=5"]).results[0]
    assert kink.status is Status.NON_DIFFERENTIABLE
    assert math.isnan(kink.autograd[0]) and kink.autograd[1] == 1.0


def test_kink_arguments_are_where_smoothness_can_end():
    import sympy as sp

    from pdiff.parse import parse, symbol
    from pdiff.symbolic import kink_arguments

    x, y = symbol("x"), symbol("y")
    found = kink_arguments(parse("abs(x - 1) + sign(y) + max(x, y^2, 3) + sin(x)"))
    expected = [x - 1, y, x - y**2, x - 3, y**2 - 3]
    assert len(found) == len(expected)
    for u in expected:  # a tie a - b may come out as b - a: the same zero set
        assert any(sp.expand(f - u) == 0 or sp.expand(f + u) == 0 for f in found), u
    assert kink_arguments(parse("x^2 sin(y)")) == []
