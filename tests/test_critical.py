"""`pdiff critical`: critical points against oracles (sympy.solve on an independently computed gradient, and
worked answers for transcendental functions, refined by mpmath), never against pdiff's own output."""

from __future__ import annotations

import csv
import io
import json
import math
import random

import mpmath
import numpy as np
import pytest
import sympy as sp
from typer.testing import CliRunner

from pdiff.cli import app
from pdiff.critical import critical_points

x, y = sp.symbols("x y", real=True)
RUNNER = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"})


def run(*args: str):
    return RUNNER.invoke(app, ["critical", *args])


# ------------------------------------------------------------------------------------------ the examples


def test_quadratic_has_one_minimum():
    result = run("x^2 + x y + y^2 - 3x", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["command"] == "critical"
    assert document["variables"] == ["x", "y"]
    assert {"expression", "read_as"} <= set(document)
    (point,) = document["points"]
    assert point == {"point": {"x": 2.0, "y": -1.0}, "exact": {"x": "2", "y": "-1"}, "value": -3.0,
                     "classification": "local minimum", "eigenvalues": [1.0, 3.0], "method": "exact"}


def test_cubic_has_a_saddle_and_a_minimum():
    result = run("x^3 - 3x + y^2", "--format", "plain")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["-1.0\t0.0\t2.0\tsaddle point", "1.0\t0.0\t-2.0\tlocal minimum"]
    table = run("x^3 - 3x + y^2", "--format", "csv")
    rows = list(csv.reader(io.StringIO(table.stdout)))
    assert rows[0] == ["x", "y", "f", "classification", "method", "eigenvalue_1", "eigenvalue_2"]
    assert rows[1:] == [["-1.0", "0.0", "2.0", "saddle point", "exact", "-6.0", "2.0"],
                        ["1.0", "0.0", "-2.0", "local minimum", "exact", "2.0", "6.0"]]


def test_sin_cos_in_a_box_gives_every_point():
    result = run("sin(x) cos(y)", "--range", "x=-3:3,y=-3:3", "--format", "json")
    assert result.exit_code == 0, result.output
    points = json.loads(result.stdout)["points"]
    h = math.pi / 2
    expected = {(-h, 0.0): "local minimum", (h, 0.0): "local maximum", (0.0, -h): "saddle point",
                (0.0, h): "saddle point"}
    found = {(round(p["point"]["x"], 9), round(p["point"]["y"], 9)): p["classification"] for p in points}
    assert found == {(round(a, 9), round(b, 9)): c for (a, b), c in expected.items()}
    assert all(p["value"] == pytest.approx(math.sin(p["point"]["x"]) * math.cos(p["point"]["y"]), abs=1e-12)
               for p in points)


def test_table_shows_exact_coordinates():
    result = run("x^3 - 3x + y^2", "--format", "table")
    assert result.exit_code == 0
    assert "critical points: 2" in result.stdout
    assert "saddle point" in result.stdout and "local minimum" in result.stdout


# ------------------------------------------------------------------------------------------ honesty and errors


def test_no_critical_points_is_a_clean_answer():
    result = run("x^3 - 2x y + y^3 + x")  # ∇f = 0 has only complex solutions
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no critical points" in result.stderr


def test_a_line_of_critical_points_is_said_to_be_infinite():
    report = critical_points("x^2", wrt="x,y", ranges="x=-1:1,y=-1:1", timeout=5)
    assert any("not isolated" in m and "infinitely many" in m for m in report.messages)
    assert report.points and all(abs(p.point["x"]) < 1e-9 for p in report.points)


def test_periodic_critical_points_without_a_range_use_the_default_box():
    report = critical_points("sin(x)", timeout=5)
    assert any("infinitely many" in m for m in report.messages)
    assert sorted(round(p.point["x"], 9) for p in report.points) == \
        sorted(round(k * math.pi / 2, 9) for k in (-3, -1, 1, 3))
    assert all(p.method == "exact" for p in report.points)


@pytest.mark.parametrize("args", [["[x, y]"], ["x^2 + y^2 = 1"], ["x^2", "--range", "z=0:1"], ["3"],
                                  ["x^2", "--range", "x=1:0"]])
def test_bad_input_is_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------ 50 polynomials


def _polynomials(count: int = 50) -> list[sp.Expr]:
    """Degree ≤ 3 in x and y, fixed seed: quadratics, separable cubics and cubics with a cross term whose
    critical points are isolated (so that the oracle solve is quick and finite)."""
    rng = random.Random(16)
    out = []
    while len(out) < count:
        c = [rng.randint(-3, 3) for _ in range(7)]
        kind = len(out) % 3
        if kind == 0:
            if 4 * c[0] * c[2] - c[1] ** 2 == 0:
                continue
            f = c[0] * x**2 + c[1] * x * y + c[2] * y**2 + c[3] * x + c[4] * y + c[5]
        elif kind == 1:
            if c[0] == 0 or c[3] == 0:
                continue
            f = c[0] * x**3 + c[1] * x**2 + c[2] * x + c[3] * y**3 + c[4] * y**2 + c[5] * y + c[6]
        else:
            if c[0] == 0 or c[3] == 0:
                continue
            f = c[0] * x**3 + c[1] * x**2 + c[2] * x * y + c[3] * y**2 + c[4] * x + c[5] * y
        out.append(f)
    return out


POLYNOMIALS = _polynomials()


def _oracle_points(f: sp.Expr) -> list[tuple[float, float]]:
    gradient = [sp.diff(f, x), sp.diff(f, y)]
    found = []
    for solution in sp.solve(gradient, [x, y], dict=True):
        assert set(solution) == {x, y}, "the test's polynomials have isolated critical points"
        values = [complex(sp.N(solution[v], 30)) for v in (x, y)]
        if all(abs(v.imag) < 1e-12 for v in values):
            found.append((values[0].real, values[1].real))
    return sorted(found)


def _oracle_class(f: sp.Expr, point) -> str | None:
    hessian = sp.hessian(f, (x, y)).subs({x: point[0], y: point[1]})
    eigenvalues = np.linalg.eigvalsh(np.array(hessian.evalf(), dtype=float))
    if np.any(np.abs(eigenvalues) < 1e-6):
        return None  # degenerate: not checked here
    return ("local minimum" if np.all(eigenvalues > 0) else "local maximum" if np.all(eigenvalues < 0)
            else "saddle point")


@pytest.mark.parametrize("f", POLYNOMIALS, ids=[sp.sstr(f) for f in POLYNOMIALS])
def test_polynomial_against_sympy_solve(f):
    report = critical_points(sp.sstr(f).replace("**", "^"), wrt="x,y", timeout=10)
    expected = _oracle_points(f)
    found = sorted((p.point["x"], p.point["y"]) for p in report.points)
    assert len(found) == len(expected), (found, expected)
    for (a, b), (c, d) in zip(found, expected):
        assert a == pytest.approx(c, abs=1e-9) and b == pytest.approx(d, abs=1e-9)
    gradient = sp.lambdify((x, y), [sp.diff(f, x), sp.diff(f, y)])
    for p in report.points:
        assert p.method == "exact"
        assert np.linalg.norm(gradient(p.point["x"], p.point["y"])) < 1e-8
        assert p.value == pytest.approx(float(f.subs({x: p.point["x"], y: p.point["y"]})), abs=1e-9, rel=1e-9)
        wanted = _oracle_class(f, (p.point["x"], p.point["y"]))
        if wanted is not None:
            assert p.classification == wanted
    assert report.complete and report.exit_code == 0


# ------------------------------------------------------------------------------------------ 20 transcendental


def _refine(derivative, guesses):
    """Roots of a one-variable derivative (a SymPy expression in x) near worked guesses, by mpmath."""
    function = sp.lambdify(x, derivative, "mpmath")
    return [float(mpmath.findroot(function, guess)) for guess in guesses]


P = math.pi
TRANSCENDENTAL = [
    # (expression, box, expected critical points in the box)
    ("sin(x) cos(y)", "x=-3:3,y=-3:3", [(P / 2, 0), (-P / 2, 0), (0, P / 2), (0, -P / 2)]),
    ("x e^(-x^2)", "x=-3:3", [(1 / math.sqrt(2),), (-1 / math.sqrt(2),)]),
    ("exp(-(x^2+y^2))", "x=-2:2,y=-2:2", [(0, 0)]),
    ("x sin(x)", "x=-6:6", [(0,)] + [(r,) for r in _refine(sp.sin(x) + x * sp.cos(x), [2.0, -2.0, 4.9, -4.9])]),
    ("cos(x) + cos(y)", "x=-4:4,y=-4:4", [(a, b) for a in (-P, 0, P) for b in (-P, 0, P)]),
    ("sin(x)", "x=-7:7", [(P / 2,), (-P / 2,), (3 * P / 2,), (-3 * P / 2,)]),
    ("cos(x)", "x=-4:4", [(0,), (P,), (-P,)]),
    ("exp(x) - x", "x=-3:3", [(0,)]),
    ("x ln(x)", "x=0.1:3", [(math.exp(-1),)]),
    ("exp(x) cos(y)", "x=-2:2,y=-2:2", []),
    ("sin(x) + sin(y)", "x=-3:3,y=-3:3", [(a, b) for a in (-P / 2, P / 2) for b in (-P / 2, P / 2)]),
    ("x^2 + cos(y)", "x=-4:4,y=-4:4", [(0, 0), (0, P), (0, -P)]),
    ("ln(x^2 + y^2 + 1)", "x=-2:2,y=-2:2", [(0, 0)]),
    ("atan(x) + (y - 1)^2", "x=-3:3,y=-3:3", []),
    ("x exp(-x^2 - y^2)", "x=-2:2,y=-2:2", [(1 / math.sqrt(2), 0), (-1 / math.sqrt(2), 0)]),
    ("cosh(x) + y^2 - 2y", "x=-3:3,y=-3:3", [(0, 1)]),
    ("sin(x)^2", "x=-4:4", [(0,), (P / 2,), (-P / 2,), (P,), (-P,)]),
    ("x^2 + sin(y)", "x=-4:4,y=-4:4", [(0, P / 2), (0, -P / 2)]),
    ("exp(-x^2) cos(x)", "x=-3:3",
     [(0,)] + [(r,) for r in _refine(2 * x * sp.cos(x) + sp.sin(x), [1.8, -1.8])]),
    ("sqrt(x^2 + 1) + sin(y)", "x=-2:2,y=-2:2", [(0, P / 2), (0, -P / 2)]),
]


@pytest.mark.parametrize("expression, box, expected", TRANSCENDENTAL, ids=[t[0] for t in TRANSCENDENTAL])
def test_transcendental_against_known_points(expression, box, expected):
    report = critical_points(expression, ranges=box, timeout=4)
    names = list(report.variables)
    symbols = [sp.Symbol(n, real=True) for n in names]
    from pdiff.question import read

    f = read(expression).components[0]  # the expression as a SymPy object; the oracle differentiates it itself
    gradient = sp.lambdify(symbols, [sp.diff(f, s) for s in symbols])
    for p in report.points:
        assert np.linalg.norm(gradient(*(p.point[n] for n in names))) < 1e-8, p
    found = [tuple(p.point[n] for n in names) for p in report.points]
    for point in expected:
        assert any(max(abs(a - b) for a, b in zip(point, q)) < 1e-7 for q in found), (point, found)
    assert len(found) == len(expected), found
    assert report.exit_code == 0
