"""grad, hessian, jacobian, laplacian, div, curl, dir against SymPy (sympy.hessian, Matrix.jacobian) in float64."""

from __future__ import annotations

import json
import math

import pytest
import sympy as sp
from typer.testing import CliRunner

from pdiff.calculus import compute
from pdiff.cli import app

x, y, z = sp.symbols("x y z", real=True)
a, b, c = sp.symbols("a b c", real=True)
x1, x2 = sp.symbols("x1 x2", real=True)

# (text for pdiff, the same function built directly in SymPy, variables, a point inside the domain)
CATALOGUE = [
    ("x^2 sin(y) + y^3 cos(x)", x**2 * sp.sin(y) + y**3 * sp.cos(x), (x, y), {x: 2, y: 1}),
    ("exp(x y) + ln(1 + x^2 + y^2)", sp.exp(x * y) + sp.log(1 + x**2 + y**2), (x, y), {x: sp.Rational(1, 2), y: -1}),
    ("sqrt(x^2 + y^2 + z^2)", sp.sqrt(x**2 + y**2 + z**2), (x, y, z), {x: 1, y: 2, z: 2}),
    ("atan(y/x) + x z^3", sp.atan(y / x) + x * z**3, (x, y, z), {x: 1, y: 3, z: -2}),
    ("sinh(x) cosh(y) / (1 + z^2)", sp.sinh(x) * sp.cosh(y) / (1 + z**2), (x, y, z), {x: sp.Rational(3, 10), y: 1, z: 2}),
    ("x^y", x**y, (x, y), {x: 2, y: 3}),
    ("erf(x) tanh(y)", sp.erf(x) * sp.tanh(y), (x, y), {x: sp.Rational(1, 3), y: sp.Rational(-1, 2)}),
]


def _floats(matrix) -> list[list[float]]:
    return [[float(v) for v in row] for row in matrix.tolist()]


def _close(got, want, tol=1e-9):
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w, tol)
    else:
        assert math.isclose(got, want, rel_tol=tol, abs_tol=tol), (got, want)


def _point_text(point) -> str:
    return ",".join(f"{s.name}={v}" for s, v in point.items())


@pytest.mark.parametrize("text, expr, variables, point", CATALOGUE)
def test_hessian_matches_sympy(text, expr, variables, point):
    report = compute("hessian", text, at=[_point_text(point)])
    want = _floats(sp.hessian(expr, variables).subs(point).evalf(30))
    result = report.results[0]
    _close(result.autograd, want)
    _close(result.value, want)
    assert report.variables == tuple(v.name for v in variables)
    # a Hessian of a smooth function is symmetric (Clairaut)
    assert result.extra["asymmetry"] <= 1e-12
    eigen = sorted(complex(e).real for e in sp.Matrix(want).eigenvals(multiple=True))
    _close(sorted(result.extra["eigenvalues"]), eigen, 1e-8)
    _close(result.extra["determinant"], float(sp.Matrix(want).det()), 1e-8)
    assert report.exit_code == 0


@pytest.mark.parametrize("text, expr, variables, point", CATALOGUE)
def test_gradient_and_laplacian_match_sympy(text, expr, variables, point):
    where = [_point_text(point)]
    gradient = compute("gradient", text, at=where).results[0]
    _close(gradient.autograd, [float(sp.diff(expr, v).subs(point).evalf(30)) for v in variables])
    laplacian = compute("laplacian", text, at=where).results[0]
    _close(laplacian.autograd, float(sum(sp.diff(expr, v, v) for v in variables).subs(point).evalf(30)))


def test_jacobian_matches_sympy_and_has_determinant():
    field = sp.Matrix([x**2 * y, sp.sin(x) + z, sp.exp(y * z)])
    point = {x: 1, y: 2, z: sp.Rational(1, 2)}
    report = compute("jacobian", "[x^2 y, sin(x) + z, exp(y z)]", at=[_point_text(point)])
    want = field.jacobian([x, y, z]).subs(point).evalf(30)
    _close(report.results[0].autograd, _floats(want))
    _close(report.results[0].extra["determinant"], float(want.det()), 1e-9)


def test_rectangular_jacobian_has_no_determinant():
    report = compute("jacobian", "[x y, x + y, x - y]", at=["x=1,y=2"])
    assert report.shape == (3, 2)
    _close(report.results[0].autograd, [[2, 1], [1, 1], [1, -1]])
    assert "determinant" not in report.results[0].extra


def test_seed_examples():
    assert compute("hessian", "a^2+b^2+c^2", at=["a=1,b=-2,c=3"]).results[0].autograd == [
        [2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]
    jac = compute("jacobian", "[x1^2, x2^2]", at=["x1=1,x2=2"]).results[0]
    assert jac.autograd == [[2.0, 0.0], [0.0, 4.0]]
    assert jac.extra["determinant"] == 8.0
    # ∇(x y + y z + z x) = (y + z, x + z, x + y)
    assert compute("gradient", "x*y + y*z + z*x", at=["x=1,y=2,z=3"]).results[0].autograd == [5.0, 4.0, 3.0]


@pytest.mark.parametrize("text, classification", [
    ("x^2 + y^2", "local minimum"),
    ("-x^2 - y^2", "local maximum"),
    ("x^2 - y^2", "saddle point"),
    ("x^4 + y^4", "inconclusive"),
    ("x y", "saddle point"),
])
def test_second_derivative_test_at_the_origin(text, classification):
    result = compute("hessian", text, at=["x=0,y=0"]).results[0]
    assert result.extra["critical"] is True
    assert result.extra["classification"] == classification


def test_non_critical_point_is_not_classified_as_extremum():
    result = compute("hessian", "x^2 + y^2", at=["x=1,y=0"]).results[0]
    assert result.extra["critical"] is False
    assert result.extra["classification"] == "not a critical point"
    assert result.extra["second_derivative_test"] == "local minimum"


def test_divergence_curl_and_directional_derivative():
    point = {x: 1, y: 2, z: 3}
    F = [x * y, y * z**2, sp.sin(z * x)]
    div = compute("divergence", "[x y, y z^2, sin(z x)]", at=[_point_text(point)]).results[0]
    _close(div.autograd, float(sum(sp.diff(f, v) for f, v in zip(F, (x, y, z))).subs(point).evalf(30)))
    curl = compute("curl", "[x y, y z^2, sin(z x)]", at=[_point_text(point)]).results[0]
    want = [sp.diff(F[2], y) - sp.diff(F[1], z), sp.diff(F[0], z) - sp.diff(F[2], x),
            sp.diff(F[1], x) - sp.diff(F[0], y)]
    _close(curl.autograd, [float(w.subs(point).evalf(30)) for w in want])
    # D_u f with u = (3, 4)/5
    directional = compute("directional", "x^2 y", along="3,4", at=["x=1,y=2"]).results[0]
    _close(directional.autograd, (2 * 1 * 2) * 3 / 5 + (1**2) * 4 / 5)
    assert directional.exact == "16/5"


def test_wrt_orders_rows_and_columns():
    report = compute("hessian", "x^3 y", wrt="y,x", at=["x=1,y=2"])
    assert report.variables == ("y", "x")
    # row y: (f_yy, ∂/∂y ∂f/∂x) = (0, 3x^2); row x: (3x^2, 6xy)
    assert report.results[0].autograd == [[0.0, 3.0], [3.0, 12.0]]
    assert report.names == ("d2f/dy2", "d2f/dydx", "d2f/dxdy", "d2f/dx2")


def test_several_points_in_one_batch():
    report = compute("gradient", "x^2 y", at=["x=1,y=2", "x=-1,y=3", "x=0,y=0"])
    assert [r.autograd for r in report.results] == [[4.0, 1.0], [-6.0, 1.0], [0.0, 0.0]]


def test_input_errors():
    with pytest.raises(Exception, match="needs as many components as variables"):
        compute("divergence", "[x, y, 0]", at=["x=1,y=1"])
    with pytest.raises(Exception, match="one expression"):
        compute("hessian", "[x, y]")
    with pytest.raises(Exception, match="--along needs 2 numbers"):
        compute("directional", "x y", along="1,2,3")
    with pytest.raises(Exception, match="zero vector"):
        compute("directional", "x y", along="0,0")


runner = CliRunner()


def test_cli_formats_and_exit_codes():
    result = runner.invoke(app, ["hessian", "x^2 - y^2", "--at", "x=0,y=0", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    entry = document["results"][0]
    assert entry["autograd"] == [[2.0, 0.0], [0.0, -2.0]]
    assert entry["value"] == [[2.0, 0.0], [0.0, -2.0]]
    assert entry["classification"] == "saddle point"
    assert sorted(entry["eigenvalues"]) == [-2.0, 2.0]
    assert entry["determinant"] == -4.0
    assert sp.sympify(entry["derivative"][0][0]) == 2  # the test may sympify its own oracle data

    plain = runner.invoke(app, ["hessian", "x^2 - y^2", "--at", "x=0,y=0", "--format", "plain"])
    assert plain.stdout.splitlines() == ["2.0\t0.0", "0.0\t-2.0"]

    table = runner.invoke(app, ["jacobian", "[x1^2, x2^2]", "--at", "x1=1,x2=2", "--format", "csv"])
    lines = table.stdout.splitlines()
    # the --points columns too: every entry's :exact, then :abs_diff, then :rel_diff (tests/test_output_contract.py)
    assert lines[0].startswith("x1,x2,df1/dx1,df1/dx2,df2/dx1,df2/dx2,determinant,max_abs_error,status,df1/dx1:exact,")
    assert lines[1].split(",")[:7] == ["1.0", "2.0", "2.0", "0.0", "0.0", "4.0", "8.0"]

    rendered = runner.invoke(app, ["hessian", "x^2 + y^2", "--at", "x=0,y=0", "--format", "table"])
    assert rendered.exit_code == 0
    assert "local minimum" in rendered.stdout

    bad = runner.invoke(app, ["curl", "[-y, x, 0]", "--at", "x=1,y=2"])
    assert bad.exit_code == 2
    assert "curl needs 3 components" in bad.stderr

    singular = runner.invoke(app, ["grad", "sqrt(x)", "--at", "x=0", "--format", "plain"])
    assert singular.exit_code == 1
    assert "not finite" in singular.stderr


def test_latex_format_for_matrix_commands():
    result = runner.invoke(app, ["hessian", "x^2 sin(y)", "--at", "x=1,y=pi/2", "--format", "latex"])
    assert result.exit_code == 0, result.output
    H = sp.hessian(x**2 * sp.sin(y), (x, y))
    symbolic_row = " \\\\ ".join(" & ".join(sp.latex(H[i, j]) for j in range(2)) for i in range(2))
    assert f"H_f &= \\begin{{pmatrix}} {symbolic_row} \\end{{pmatrix}}" in result.stdout
    at = H.subs({x: 1, y: sp.pi / 2})
    value_row = " \\\\ ".join(" & ".join(sp.latex(at[i, j]) for j in range(2)) for i in range(2))
    assert f"\\begin{{pmatrix}} {value_row} \\end{{pmatrix}}" in result.stdout


def test_latex_input_detected_and_forced():
    # \frac{x^2}{y}: H = [[2/y, -2x/y^2], [-2x/y^2, 2x^2/y^3]] at (1, 2)
    detected = compute("hessian", "\\frac{x^2}{y}", at=["x=1,y=2"]).results[0].autograd
    assert detected == [[1.0, -0.5], [-0.5, 0.25]]
    # forced: in LaTeX letters side by side are a product, so xy is x*y
    forced = runner.invoke(app, ["grad", "xy", "--latex", "--at", "x=1,y=2", "--format", "plain"])
    assert forced.stdout.split() == ["2.0", "1.0"]


def test_hessian_and_gradient_stream_over_a_points_file(tmp_path):
    import csv as csv_module

    expr = x**2 * sp.sin(y) + y**3 * sp.cos(x)
    H = sp.hessian(expr, (x, y))
    rows = [(0.5, -1.0), (2.0, 1.0), (-3.0, 0.25)]
    path = tmp_path / "points.csv"
    path.write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in rows))
    result = runner.invoke(app, ["hessian", "x^2 sin(y) + y^3 cos(x)", "--points", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = list(csv_module.DictReader(result.stdout.splitlines()))
    names = {"d2f/dx2": (0, 0), "d2f/dxdy": (0, 1), "d2f/dydx": (1, 0), "d2f/dy2": (1, 1)}
    for row, (a, b) in zip(table, rows):
        want = H.subs({x: a, y: b}).evalf(30)
        for name, (i, j) in names.items():
            _close(float(row[name]), float(want[i, j]))
    gradient = runner.invoke(app, ["grad", "x^2 sin(y) + y^3 cos(x)", "--grid", "x=0:1:2,y=1:2:2", "-f", "plain"])
    grid = [(0, 1), (0, 2), (1, 1), (1, 2)]
    for line, (a, b) in zip(gradient.stdout.splitlines(), grid):
        want = [float(sp.diff(expr, v).subs({x: a, y: b}).evalf(30)) for v in (x, y)]
        _close([float(v) for v in line.split("\t")], want)
    refused = runner.invoke(app, ["laplacian", "x y", "--points", str(path)])
    assert refused.exit_code == 2
