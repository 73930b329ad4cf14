"""The commands the issue tracker names as a contract for how pdiff *reads* what is typed, through the CLI.

Every expected number comes from an independent oracle: SymPy, computed here from an expression written in this
file with real symbols (never from pdiff's output), or a value worked by hand in a comment.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re

import pytest
import sympy as sp
from typer.testing import CliRunner

from pdiff.cli import app, expressions_not_options

R = {n: sp.Symbol(n, real=True) for n in ("x", "y", "z", "a", "r", "t", "e", "theta", "alpha", "rate")}
x, y, z, a, r, t = (R[n] for n in ("x", "y", "z", "a", "r", "t"))
theta, alpha, rate = R["theta"], R["alpha"], R["rate"]


# --- helpers ---------------------------------------------------------------------------------------------------------

def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def refused(*args: str):
    result = invoke(*args)
    assert result.exit_code == 2, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def plain(*args: str) -> list[list[float]]:
    """Rows of numbers from --format plain (tab-separated columns)."""
    out = ok(*args, "--format", "plain").stdout
    return [[float(v) for v in line.split("\t")] for line in out.strip().splitlines()]


def one(*args: str) -> float:
    ((value,),) = plain(*args)
    return value


def json_of(*args: str) -> dict:
    return json.loads(ok(*args, "--format", "json").stdout)


def at(pairs: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in pairs.items())


def num(expr: sp.Expr, subs: dict) -> float:
    return float(sp.N(expr.subs({R[k]: sp.nsimplify(v) for k, v in subs.items()}), 30))


def close(got: float, want: float, rel: float = 1e-12) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=1e-12)


def assert_dx(text: str, f: sp.Expr, wrt: sp.Symbol, point: dict, *extra: str, order: int = 1):
    partial = f"d/d{wrt}" if order == 1 else f"d{order}f/d{wrt}{order}"
    got = one("diff", text, partial, "--at", at(point), *extra)
    want = num(sp.diff(f, wrt, order), point)
    assert close(got, want), (text, point, got, want)


def same_function(text: str, want: sp.Expr) -> bool:
    got = sp.sympify(text, locals={str(s): s for s in R.values()})  # only on pdiff's output, in this test
    return sp.simplify(got - want) == 0


# --- 1. grad of "x^2 + xy + y^2 - 3x": xy is x·y ------------------------------------------------------------------

F1 = x**2 + x * y + y**2 - 3 * x


def test_grad_xy_is_x_times_y_plain_at_stationary_point():
    # ∇ = (2x + y - 3, x + 2y) = (0, 0) at (2, -1)
    assert ok("grad", "x^2 + xy + y^2 - 3x", "--at", "x=2,y=-1", "--format", "plain").stdout.strip() == "0.0\t0.0"


@pytest.mark.parametrize("point", [{"x": 1.5, "y": 0.25}, {"x": -3, "y": 7}])
def test_grad_xy_values_against_sympy(point):
    (row,) = plain("grad", "x^2 + xy + y^2 - 3x", "--at", at(point))
    want = [num(sp.diff(F1, v), point) for v in (x, y)]
    assert all(close(g, w) for g, w in zip(row, want)), (row, want)


def test_grad_xy_json_variables_read_as_and_reading_note():
    doc = json_of("grad", "x^2 + xy + y^2 - 3x", "--at", "x=2,y=-1")
    assert doc["variables"] == ["x", "y"]
    assert "read_as" in doc and doc["read_as"]
    assert any("xy" in note for note in doc["reading"]), doc["reading"]
    assert [same_function(d, sp.diff(F1, v)) for d, v in zip(doc["derivative"], (x, y))] == [True, True]


# --- 2. sinx -------------------------------------------------------------------------------------------------------

def test_sinx_second_derivative_at_point():
    assert close(one("diff", "sinx", "d2f/dx2", "--at", "x=1"), -math.sin(1))


def test_sinx_second_derivative_symbolic():
    out = ok("diff", "sinx", "d2f/dx2").stdout.strip()
    assert same_function(out, sp.diff(sp.sin(x), x, 2))


# --- 3. check e^(x^2) ---------------------------------------------------------------------------------------------

def test_check_exp_x2_answer_2xe_x2_correct():
    result = ok("check", "e^(x^2)", "d/dx", "--answer", "2xe^(x^2)")
    assert result.stdout.strip().startswith("correct")


# --- 4. function names without brackets ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, f",
    [
        ("sin cos tan x", sp.sin(sp.cos(sp.tan(x)))),
        ("ln sin x", sp.log(sp.sin(x))),
        ("sin cos(x)", sp.sin(sp.cos(x))),
    ],
)
@pytest.mark.parametrize("xv", [0.5, 1.2])
def test_unbracketed_function_chains(text, f, xv):
    assert_dx(text, f, x, {"x": xv})


# --- 5. plain reading with absolute values ------------------------------------------------------------------------

@pytest.mark.parametrize("point", [{"x": 2, "y": -3}, {"x": 0.5, "y": 4}])
def test_log10_times_abs_y(point):
    f = sp.log(x, 10) * sp.Abs(y)
    row = plain("diff", "log10(x)*|y|", "df/dx", "df/dy", "--at", at(point))
    got = [v for (v,) in row] if len(row) == 2 else row[0]
    want = [num(sp.diff(f, v), point) for v in (x, y)]
    assert all(close(g, w) for g, w in zip(got, want)), (got, want)


@pytest.mark.parametrize("xv", [-2, 1.5])
def test_pi_x_abs_x(xv):
    assert_dx("pi x |x|", sp.pi * x * sp.Abs(x), x, {"x": xv})


@pytest.mark.parametrize("xv", [-2, 3])
def test_scientific_times_abs_x(xv):
    assert_dx("1e-3*|x|", sp.Rational(1, 1000) * sp.Abs(x), x, {"x": xv})


# --- 6. LaTeX -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [(), ("--latex",)])
def test_latex_exponent_2_5E2_x(extra):
    assert close(one("diff", "2.5E2 x", "d/dx", "--at", "x=1", *extra), 250.0)


@pytest.mark.parametrize("extra", [(), ("--latex",)])
def test_latex_negative_exponent_number(extra):
    # a leading '-' reaches Click as an option unless the console script's argument pass (or `--`) keeps it whole
    args = expressions_not_options(["diff", "-324E-3 x", "d/dx", "--at", "x=1", *extra])
    assert close(one(*args), -0.324)
    out = ok("diff", "--at", "x=1", *extra, "--format", "plain", "--", "-324E-3 x", "d/dx").stdout
    assert close(float(out.strip()), -0.324)


def test_latex_malformed_number_refused():
    refused("diff", r"\frac{1}{2}1.1.1")


@pytest.mark.parametrize("point", [{"x": 1, "y": 2, "theta": 3}, {"x": -0.5, "y": 4, "theta": -1.25}])
def test_latex_theta_times_bracket(point):
    assert_dx(r"\theta(x+y)", theta * (x + y), x, point)
    assert_dx(r"\theta(x+y)", theta * (x + y), theta, point)


def test_latex_alpha_times_bracket():
    point = {"x": 1, "alpha": 3}
    assert_dx(r"\alpha(x+1)", alpha * (x + 1), x, point)
    assert_dx(r"\alpha(x+1)", alpha * (x + 1), alpha, point)


# --- 7. the derivative operator written in the expression ----------------------------------------------------------

def test_operator_frac_d_dx_left_right_brackets():
    got = one("diff", r"\frac{d}{dx} \left[ \frac{x^2+1}{\sqrt{x}} \right]", "--at", "x=4")
    want = sp.diff((x**2 + 1) / sp.sqrt(x), x).subs(x, 4)
    assert want == sp.Rational(47, 16)
    assert close(got, 2.9375)


@pytest.mark.parametrize(
    "text, point, want",
    [
        (r"\frac{d}{dx}(x^3)", {"x": 2}, sp.diff(x**3, x)),
        (r"\frac{d^2}{dx^2}(x^4)", {"x": 2}, sp.diff(x**4, x, 2)),
        (r"\frac{\partial^2}{\partial x \partial y}(x^2 y^3)", {"x": 2, "y": 3}, sp.diff(x**2 * y**3, x, y)),
        ("d/dx (x^3)", {"x": 2}, sp.diff(x**3, x)),
        ("∂/∂x (x y)", {"x": 2, "y": 5}, sp.diff(x * y, x)),
        # a bracket or a number after the operator is not the order of dx (these were refused)
        ("d/dx (2x)", {"x": 2}, sp.diff(2 * x, x)),
        ("d/dx(2x)", {"x": 2}, sp.diff(2 * x, x)),
        ("d/dx 2x", {"x": 2}, sp.diff(2 * x, x)),
        ("d/dx (2 x + 1)", {"x": 2}, sp.diff(2 * x + 1, x)),
        ("d^2/dx^2 (3x^4)", {"x": 2}, sp.diff(3 * x**4, x, 2)),
    ],
)
def test_operator_in_expression(text, point, want):
    assert close(one("diff", text, "--at", at(point)), num(want, point))


def test_operator_agreeing_partial_is_fine():
    assert close(one("diff", r"\frac{d}{dx}(x^3)", "d/dx", "--at", "x=2"), 12.0)


@pytest.mark.parametrize(
    "text, partial, point",
    [
        (r"\frac{d}{dx}(x^3)", "d2f/dx2", "x=2"),
        (r"\frac{d^2}{dx^2}(x^4)", "d/dx", "x=2"),
        (r"\frac{\partial^2}{\partial x \partial y}(x^2 y^3)", "d/dx", "x=1,y=2"),
        ("d/dx (x^3)", "d/dy", "x=2"),
        ("∂/∂x (x y)", "d/dy", "x=1,y=2"),
    ],
)
def test_operator_with_disagreeing_partial_refused(text, partial, point):
    refused("diff", text, partial, "--at", point)


# --- 8. dy/dx of an expression (not an equation) -------------------------------------------------------------------

def test_dy_dx_of_expression_refused_not_2x():
    result = refused("diff", "x^2+y^2-25", "dy/dx")
    assert "2*x" not in result.stdout


def test_check_dy_dx_of_expression_refused():
    refused("check", "x^2+y^2-25", "dy/dx", "--answer", "-x/y")


# --- 9. log base 2; non-real constants ----------------------------------------------------------------------------

def test_log_2_is_base_two():
    got = one("diff", "log_2 x", "d/dx", "--at", "x=3")
    assert close(got, 1 / (3 * math.log(2)))
    assert close(got, num(sp.diff(sp.log(x, 2), x), {"x": 3}))


@pytest.mark.parametrize("text", ["sqrt(-1) + x", "x + log(-1)", "acosh(0)*x"])
def test_non_real_constant_refused(text):
    refused("diff", text, "d/dx", "--at", "x=1")


# --- 10. an answer naming a variable the function lacks -----------------------------------------------------------

def test_check_answer_with_foreign_variable_names_it():
    result = refused("check", "x^2", "d/dx", "--answer", "2x + y")
    assert re.search(r"\by\b", result.stderr), result.stderr


# --- 11. a malformed --at -----------------------------------------------------------------------------------------

def test_at_with_empty_items_refused():
    refused("diff", "x", "--at", "x=1,,")


# --- 12. Unicode --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, f, point",
    [
        ("π x", sp.pi * x, {"x": 1.3}),
        ("θ x^2", theta * x**2, {"x": 1.5, "theta": 2}),
        ("√x", sp.sqrt(x), {"x": 4}),
        ("√(x+1)", sp.sqrt(x + 1), {"x": 3}),
        ("∛x", sp.cbrt(x), {"x": 8}),
        ("x²", x**2, {"x": -1.5}),
        ("x³", x**3, {"x": 2}),
        ("x² + x³", x**2 + x**3, {"x": 2}),
        ("x·y × x", x * y * x, {"x": 2, "y": 3}),
        ("x − 3 ÷ x", x - 3 / x, {"x": 2}),
        ("e^(−x²)", sp.exp(-x**2), {"x": 1}),
        ("e^(−x²)", sp.exp(-x**2), {"x": 0.3}),
    ],
)
def test_unicode_reading(text, f, point):
    assert_dx(text, f, x, point)


def test_unicode_cube_root_of_negative_is_real():
    # d/dx ∛x = 1/(3 ∛x²) = 1/12 at x = -8 (the real cube root)
    assert close(one("diff", "∛x", "d/dx", "--at", "x=-8"), 1 / 12)


def test_unicode_theta_derivative_wrt_theta():
    assert_dx("θ x^2", theta * x**2, theta, {"x": 1.5, "theta": 2})


def test_unicode_theta_named_in_at_as_typed():
    assert close(one("diff", "θ x", "d/dx", "--at", "x=1,θ=2"), 2.0)


def test_cyrillic_x_refused():
    refused("diff", "х^2", "d/dx", "--at", "x=1")  # U+0445, not Latin x


# --- 13. definitions and equations --------------------------------------------------------------------------------

def test_definition_f_of_x():
    assert_dx("f(x) = x^2 sin x", x**2 * sp.sin(x), x, {"x": 1})


def test_definition_y_equals_with_dy_dx():
    got = one("diff", "y = x^3", "dy/dx", "--at", "x=2")
    assert close(got, num(sp.diff(x**3, x), {"x": 2}))


def test_definition_f_of_x_y_grad_order():
    doc = json_of("grad", "f(x,y) = x^2 y", "--at", "x=1,y=2")
    assert doc["variables"] == ["x", "y"]
    want = [num(sp.diff(x**2 * y, v), {"x": 1, "y": 2}) for v in (x, y)]
    (res,) = doc["results"]
    assert all(close(g, w) for g, w in zip(res["value"], want))


CIRCLE = x**2 + y**2 - 25


def test_implicit_first_derivative_on_circle():
    want = num(sp.idiff(CIRCLE, y, x), {"x": 3, "y": 4})
    assert want == -0.75
    assert close(one("diff", "x^2 + y^2 = 25", "dy/dx", "--at", "x=3,y=4"), want)


def test_implicit_second_derivative_on_circle():
    want = sp.idiff(CIRCLE, y, x, 2).subs({x: 3, y: 4})
    assert sp.simplify(want - sp.Rational(-25, 64)) == 0
    assert close(one("diff", "x^2 + y^2 = 25", "d2y/dx2", "--at", "x=3,y=4"), float(want))


def test_implicit_symbolic_matches_idiff():
    out = ok("diff", "x^2 + y^2 = 25", "dy/dx").stdout.strip()
    assert same_function(out, sp.idiff(CIRCLE, y, x))


def test_check_implicit_first_correct():
    assert sp.simplify(sp.idiff(CIRCLE, y, x) - (-x / y)) == 0
    assert ok("check", "x^2 + y^2 = 25", "dy/dx", "--answer", "-x/y").stdout.startswith("correct")


def test_check_implicit_second_correct():
    # on the curve: -(x² + y²)/y³ = -25/y³
    d2 = sp.idiff(CIRCLE, y, x, 2)
    assert sp.simplify((d2 - (-25 / y**3)).subs(x, sp.sqrt(25 - y**2))) == 0
    assert ok("check", "x^2 + y^2 = 25", "d2y/dx2", "--answer", "-25/y^3").stdout.startswith("correct")


def test_check_implicit_wrong_answer_incorrect():
    result = invoke("check", "x^2 + y^2 = 25", "dy/dx", "--answer", "-y/x")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout.startswith("incorrect")


def test_implicit_point_off_curve_refused():
    refused("diff", "x^2 + y^2 = 25", "dy/dx", "--at", "x=1,y=1")


# --- 14. parameters and absent variables --------------------------------------------------------------------------

def test_grad_with_parameter_in_at():
    assert ok("grad", "a*(x^2 + y^2)", "--wrt", "x,y", "--at", "a=2,x=1,y=1", "--format", "plain").stdout.strip() \
        == "4.0\t4.0"
    want = [num(sp.diff(a * (x**2 + y**2), v), {"a": 2, "x": 1, "y": 1}) for v in (x, y)]
    assert want == [4.0, 4.0]


def test_unset_variable_z_noted():
    result = ok("diff", "2x^2 + 3z", "d/dx", "--at", "x=2", "--format", "plain")
    assert close(float(result.stdout.strip()), num(sp.diff(2 * x**2 + 3 * z, x), {"x": 2}))
    assert re.search(r"\bz\b", result.stderr), result.stderr


# --- 15. primes and directions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("partial, order", [("f'", 1), ("f''", 2)])
def test_prime_notation(partial, order):
    got = one("diff", "x^3", partial, "--at", "x=2")
    assert close(got, num(sp.diff(x**3, x, order), {"x": 2}))  # 12 and 12


@pytest.mark.parametrize("along", ["(3,4)", "<3,4>", "3,4"])
def test_directional_derivative_bracketed_vector(along):
    g = sp.Matrix([sp.diff(x**2 * y, v) for v in (x, y)]).subs({x: 1, y: 2})
    want = (g.T * sp.Matrix([3, 4]) / 5)[0]
    assert want == sp.Rational(16, 5)
    assert close(one("dir", "x^2 y", "--along", along, "--at", "x=1,y=2"), 3.2)


# --- 16. natural order of indexed names ---------------------------------------------------------------------------

def test_natural_order_of_indexed_variables():
    text = "x0 + 2 x1 + 3 x2 + 10 x10 + 11 x11"
    names = ["x0", "x1", "x2", "x10", "x11"]
    doc = json_of("grad", text)
    assert doc["variables"] == names
    syms = [sp.Symbol(n, real=True) for n in names]
    f = syms[0] + 2 * syms[1] + 3 * syms[2] + 10 * syms[3] + 11 * syms[4]
    want = [float(sp.diff(f, s)) for s in syms]
    assert want == [1, 2, 3, 10, 11]
    for point in ({n: 1 for n in names}, {n: -i - 0.5 for i, n in enumerate(names)}):
        (row,) = plain("grad", text, "--at", at(point))
        assert row == want
        (res,) = json_of("grad", text, "--at", at(point))["results"]
        assert res["value"] == want


# --- 17. --var ----------------------------------------------------------------------------------------------------

def test_var_declares_multiletter_name():
    got = one("diff", "rate*t", "d/dt", "--var", "rate", "--at", "rate=2,t=5")
    assert close(got, num(sp.diff(rate * t, t), {"rate": 2, "t": 5}))  # 2


def test_at_naming_rate_reads_it_whole():
    got = one("diff", "rate*t", "d/dt", "--at", "rate=2,t=5")
    assert close(got, num(sp.diff(rate * t, t), {"rate": 2, "t": 5}))


def test_rate_without_var_is_refused_as_a_name():
    # r·a·t·e (with Euler's e) is more likely the name rate: four single letters are refused, with the fix
    result = invoke("diff", "rate*t", "d/dt", "--at", "t=5")
    assert result.exit_code == 2 and "--var rate" in result.stderr


# --- 18. one output contract --------------------------------------------------------------------------------------

def csv_rows(*args: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(ok(*args, "-f", "csv").stdout)))


def csv_header(*args: str) -> list[str]:
    return ok(*args, "-f", "csv").stdout.splitlines()[0].split(",")


def test_grad_csv_header_same_for_at_and_grid():
    text = "x^2 y + z"
    with_at = csv_header("grad", text, "--at", "x=1,y=2,z=0")
    with_grid = csv_header("grad", text, "--grid", "x=0:1:2,y=0:1:2,z=0:1:2")
    assert with_at == with_grid
    assert {"x", "y", "z"} <= set(with_at)


def test_hessian_points_csv_has_eigenvalues_and_classification(tmp_path):
    points = tmp_path / "points.csv"
    points.write_text("x,y\n1,2\n0,0\n")
    text = "x^2 - y^2 + x y"
    f = x**2 - y**2 + x * y
    rows = csv_rows("hessian", text, "--points", str(points))
    assert len(rows) == 2
    header = list(rows[0])
    eig_cols = [c for c in header if c.startswith("eigenvalue")]
    assert len(eig_cols) == 2
    assert "classification" in header
    H = sp.hessian(f, (x, y))
    want = sorted(float(v) for v in H.eigenvals())  # ±√5
    for row in rows:
        assert sorted(float(row[c]) for c in eig_cols) == pytest.approx(want, rel=1e-12)
    # (0, 0) is the only critical point: ∇f = (2x + y, x - 2y); det H = -5 < 0, a saddle
    assert "saddle" in rows[1]["classification"]
    assert "saddle" not in rows[0]["classification"]
    assert header == csv_header("hessian", text, "--at", "x=1,y=2")
