"""`pdiff diff` through the CLI (typer's CliRunner): every format, every exit status, the issue's seed examples.

Expected numbers are worked by hand or computed here with `math`/SymPy from an expression written in this file;
JSON's `derivative` is parsed back with sympy.sympify (in this test only) and compared with sp.diff.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import time

import pytest
import sympy as sp
import torch
from typer.testing import CliRunner

from pdiff.cli import app

x, y, z = sp.symbols("x y z")  # plain symbols, as sympify builds them
RESULT_FIELDS = {"partial", "wrt", "point", "derivative", "exact", "value", "autograd", "abs_error"}
DOCUMENT_FIELDS = {"expression", "variables", "dtype", "device", "results"}


def run(*args: str):
    return CliRunner().invoke(app, ["diff", *args])


def ok(*args: str):
    result = run(*args)
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def json_of(*args: str) -> dict:
    return json.loads(ok(*args, "--format", "json").stdout)


def close(a: float, b: float, rel: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def same_function(text: str, want: sp.Expr) -> bool:
    got = sp.sympify(text)  # only here, on pdiff's output, never on user input
    return sp.simplify(got - want) == 0


# --- the seed examples of issue 2, worked by hand ------------------------------------------------------------------

def test_seed_mixed_partial_of_x2y_plus_xy2():
    # ∂²/∂x∂y (x²y + xy²) = 2x + 2y = 10 at (2, 3)
    (r,) = json_of("x^2 y + x y^2", "d2f/dxdy", "--at", "x=2,y=3")["results"]
    assert r["autograd"] == pytest.approx(10, rel=1e-14) and r["value"] == 10
    assert r["exact"] == "10"
    assert same_function(r["derivative"], 2 * x + 2 * y)


def test_seed_mixed_partial_of_x2_plus_xy2():
    # ∂²/∂x∂y (x² + xy²) = 2y = 6 at (2, 3)
    (r,) = json_of("x^2 + x y^2", "d2f/dxdy", "--at", "x=2,y=3")["results"]
    assert r["autograd"] == pytest.approx(6, rel=1e-14) and r["value"] == 6
    assert same_function(r["derivative"], 2 * y)


def test_seed_first_partial_with_a_variable_not_differentiated():
    # d/dx (2x² + 3z) = 4x = 8 at x = 2 (z needs a value: it is a variable of f)
    (r,) = json_of("2x^2 + 3z", "df/dx", "--at", "x=2,z=5")["results"]
    assert r["autograd"] == pytest.approx(8, rel=1e-14) and r["value"] == 8
    assert same_function(r["derivative"], 4 * x)


def test_seed_hessian_entries():
    # f = x² sin y + y³ cos x at (2, 1)
    doc = json_of("x^2 sin(y) + y^3 cos(x)", "f_xx", "d2f/dxdy", "f_yx", "d2f/dy2", "--at", "x=2,y=1")
    want = {
        "f_xx": (2 * math.sin(1) - math.cos(2), 2 * sp.sin(y) - y**3 * sp.cos(x)),
        "d2f/dxdy": (4 * math.cos(1) - 3 * math.sin(2), 2 * x * sp.cos(y) - 3 * y**2 * sp.sin(x)),
        "f_yx": (4 * math.cos(1) - 3 * math.sin(2), 2 * x * sp.cos(y) - 3 * y**2 * sp.sin(x)),
        "d2f/dy2": (-4 * math.sin(1) + 6 * math.cos(2), -(x**2) * sp.sin(y) + 6 * y * sp.cos(x)),
    }
    assert [r["partial"] for r in doc["results"]] == list(want)
    for r in doc["results"]:
        value, derivative = want[r["partial"]]
        assert close(r["autograd"], value), r
        assert close(r["value"], value), r
        assert r["abs_error"] <= 1e-12
        assert same_function(r["derivative"], derivative)
        assert same_function(r["exact"], sp.sympify(str(derivative)).subs({x: 2, y: 1}))


# --- formats ---------------------------------------------------------------------------------------------------------

F = x**2 * sp.sin(y) + y**3 * sp.cos(x)
F_TEXT = "x^2 sin(y) + y^3 cos(x)"
POINTS = [("x=2,y=1", {x: 2, y: 1}), ("x=pi/4,y=-1/3", {x: sp.pi / 4, y: sp.Rational(-1, 3)}),
          ("x=1e-3,y=sqrt(2)", {x: sp.Rational(1, 1000), y: sp.sqrt(2)})]
PARTIALS = [("df/dx", ("x",)), ("d2f/dxdy", ("y", "x")), ("f_yy", ("y", "y"))]
AT = [arg for text, _ in POINTS for arg in ("--at", text)]


def oracle(wrt, subs) -> float:
    return float(sp.diff(F, *(sp.Symbol(n) for n in wrt)).subs(subs))


def test_json_document():
    doc = json_of(F_TEXT, *(p for p, _ in PARTIALS), *AT)
    assert DOCUMENT_FIELDS <= set(doc)
    assert same_function(doc["expression"], F)
    assert doc["variables"] == ["x", "y"]
    assert doc["dtype"] == "float64"
    assert doc["device"] == "cpu" or doc["device"].startswith(("cuda", "mps"))  # auto picks a real device
    # one result per (partial, point); check each against the oracle whatever the order
    assert len(doc["results"]) == len(PARTIALS) * len(POINTS)
    seen = set()
    for r in doc["results"]:
        assert RESULT_FIELDS <= set(r)
        wrt = dict(PARTIALS)[r["partial"]]
        assert tuple(r["wrt"]) == wrt
        (text, subs), = [(t, s) for t, s in POINTS
                         if all(close(r["point"][str(k)], float(v), 1e-15) for k, v in s.items())]
        seen.add((r["partial"], text))
        want = oracle(wrt, subs)
        assert close(r["autograd"], want, 1e-12) and close(r["value"], want, 1e-14)
        assert r["abs_error"] == pytest.approx(abs(r["autograd"] - r["value"]), abs=1e-300)
        assert same_function(r["derivative"], sp.diff(F, *(sp.Symbol(n) for n in wrt)))
        assert close(float(sp.sympify(r["exact"])), want, 1e-14)
    assert len(seen) == len(PARTIALS) * len(POINTS)


def test_jsonl_one_object_per_result():
    lines = ok(F_TEXT, "d2f/dxdy", *AT, "--format", "jsonl").stdout.splitlines()
    assert len(lines) == len(POINTS)
    for line, (_text, subs) in zip(lines, POINTS):
        record = json.loads(line)
        assert RESULT_FIELDS <= set(record)
        assert same_function(record["expression"], F)
        assert record["wrt"] == ["y", "x"]
        assert close(record["autograd"], oracle(("y", "x"), subs))


def test_csv_columns_and_rows():
    text = ok(F_TEXT, "df/dx", "f_yy", *AT, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2 * len(POINTS)
    for column in ("partial", "wrt", "x", "y", "derivative", "exact", "value", "autograd", "abs_error"):
        assert column in rows[0], column
    for row in rows:
        wrt = tuple(row["wrt"].split())
        subs = {x: float(row["x"]), y: float(row["y"])}
        assert close(float(row["autograd"]), oracle(wrt, subs), 1e-12)
        assert close(float(row["value"]), float(row["autograd"]), 1e-12)
        assert same_function(row["derivative"], sp.diff(F, *(sp.Symbol(n) for n in wrt)))


def test_plain_one_full_precision_value_per_line():
    lines = ok(F_TEXT, "df/dx", "d2f/dxdy", *AT, "--format", "plain").stdout.splitlines()
    assert len(lines) == 2 * len(POINTS)
    values = sorted(float(line) for line in lines)
    want = sorted(oracle(wrt, subs) for _p, wrt in PARTIALS[:2] for _t, subs in POINTS)
    for got, expected in zip(values, want):
        assert close(got, expected, 1e-13)
    # full precision: repr round-trips, so the plain text carries all 17 significant digits
    (line,) = ok(F_TEXT, "d2f/dxdy", "--at", "x=2,y=1", "--format", "plain").stdout.splitlines()
    assert abs(float(line) - (4 * math.cos(1) - 3 * math.sin(2))) < 1e-15
    assert line == repr(float(line))


def test_auto_is_plain_when_not_a_terminal():
    auto = ok(F_TEXT, "d2f/dxdy", "--at", "x=2,y=1").stdout
    plain = ok(F_TEXT, "d2f/dxdy", "--at", "x=2,y=1", "--format", "plain").stdout
    assert auto == plain
    assert close(float(auto), 4 * math.cos(1) - 3 * math.sin(2))


def test_table_shows_expression_as_understood_and_values():
    out = ok("x^2 sin y + y^3 cos x", "d2f/dxdy", "--at", "x=2,y=1", "--format", "table").stdout
    assert "\x1b[" not in out, "no ANSI codes when stdout is not a terminal"
    assert "x^2*sin(y) + y^3*cos(x)" in out  # `sin y` was understood as sin(y)
    assert "d2f/dxdy" in out
    assert f"{4 * math.cos(1) - 3 * math.sin(2):.15g}" in out  # autograd to 15 significant digits
    assert "4*cos(1)" in out and "3*sin(2)" in out  # the exact form
    assert "y is applied first" in out  # the convention is stated


def test_table_without_points_shows_the_derivative():
    out = ok("x^2 y^3", "d2f/dxdy", "--format", "table").stdout
    assert "6*x*y^2" in out


def test_no_point_prints_the_symbolic_derivative():
    doc = json_of("x^3 y + sin(x y)", "d2f/dxdy")
    (r,) = doc["results"]
    assert r["point"] is None and r["autograd"] is None and r["value"] is None
    assert same_function(r["derivative"], sp.diff(x**3 * y + sp.sin(x * y), y, x))


def test_every_first_partial_by_default():
    doc = json_of("x^2 y + z", "--at", "x=1,y=2,z=3")
    assert [tuple(r["wrt"]) for r in doc["results"]] == [("x",), ("y",), ("z",)]
    assert [r["autograd"] for r in doc["results"]] == [4.0, 1.0, 1.0]


def test_wrt_option():
    (r,) = json_of("x^2 y^3", "--wrt", "y,x", "--at", "x=2,y=3")["results"]
    assert r["wrt"] == ["y", "x"]
    assert r["autograd"] == pytest.approx(6 * 2 * 9)


@pytest.mark.parametrize("partial, wrt", [("d2f/dthetadr", ["r", "theta"]), ("∂²f/∂r∂theta", ["theta", "r"]),
                                           ("f_rtheta", ["r", "theta"]), ("f_thetar", ["theta", "r"])])
def test_multi_letter_variables_and_unicode_notation(partial, wrt):
    # ∂²/∂θ∂r (r² sin θ) = 2r cos θ = 2√3 at (2, π/6), whichever order
    (r,) = json_of("r^2 sin(theta)", partial, "--at", "r=2,theta=pi/6")["results"]
    assert r["partial"] == partial and r["wrt"] == wrt
    assert r["autograd"] == pytest.approx(2 * math.sqrt(3), rel=1e-14)
    assert sp.sympify(r["exact"]).equals(2 * sp.sqrt(3))


def test_no_symbolic_skips_the_exact_side():
    (r,) = json_of("x^2 y^3 + 7", "d2f/dxdy", "--at", "x=2,y=3", "--no-symbolic")["results"]
    assert r["derivative"] is None and r["exact"] is None and r["value"] is None and r["abs_error"] is None
    assert r["autograd"] == pytest.approx(108)


def test_no_symbolic_does_not_depend_on_earlier_calls():
    # the in-process derivative cache (for pdiff shell) once filled 'derivative' under --no-symbolic
    ok("x^2 y^3 + 8", "d2f/dxdy", "--at", "x=2,y=3", "--format", "json")
    (r,) = json_of("x^2 y^3 + 8", "d2f/dxdy", "--at", "x=2,y=3", "--no-symbolic")["results"]
    assert r["derivative"] is None


def test_float32():
    doc = json_of("x^2 sin(y) + y^3 cos(x)", "d2f/dxdy", "--at", "x=2,y=1", "--dtype", "float32")
    (r,) = doc["results"]
    assert doc["dtype"] == "float32"
    assert r["autograd"] == pytest.approx(4 * math.cos(1) - 3 * math.sin(2), rel=1e-5)
    assert r["autograd"] != 4 * math.cos(1) - 3 * math.sin(2)  # really computed in single precision


def test_vector_expression():
    doc = json_of("[x^2 y, sin(x) y]", "df/dx", "--at", "x=1,y=2")
    assert [r["autograd"] for r in doc["results"]] == pytest.approx([4.0, 2 * math.cos(1)])


def test_exact_values_of_exact_points():
    (r,) = json_of("sin(x)", "df/dx", "--at", "x=pi/3")["results"]
    assert sp.sympify(r["exact"]) == sp.Rational(1, 2)
    assert r["autograd"] == pytest.approx(0.5, rel=1e-15)


def test_at_values_with_commas_and_spaces():
    # atan2's comma stays inside its brackets; spaces around names and values are fine
    (r,) = json_of("x y", "d2f/dxdy", "--at", " x = atan2(1, 2) , y = pi/4 ")["results"]
    assert r["point"] == {"x": pytest.approx(math.atan2(1, 2), rel=1e-15), "y": pytest.approx(math.pi / 4)}
    assert r["autograd"] == 1.0


@pytest.mark.parametrize("value", ["sqrt(-1)", "1/0", sp.I, sp.zoo, sp.Symbol("y")])
def test_api_point_values_are_checked_like_at(value):
    from pdiff.api import derivative
    from pdiff.errors import PointError

    with pytest.raises(PointError, match="'x'"):
        derivative("sin(x)", ["df/dx"], at=[{"x": value}], symbolic_side=False)


def test_api_point_values_exact_strings_and_numbers():
    from pdiff.api import derivative

    report = derivative("sin(x)", ["df/dx"], at=[{"x": "pi/3"}, {"x": sp.pi}, {"x": 0.5}, {"x": 2}])
    want = [0.5, -1.0, math.cos(0.5), math.cos(2)]
    assert [r.value for r in report.results] == pytest.approx(want, rel=1e-15)
    assert [r.autograd for r in report.results] == pytest.approx(want, rel=1e-15)
    assert report.results[0].exact == "1/2"


# --- exit statuses ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, at", [
    ("1/x", "x=0"),  # a pole: autograd gives -inf
    ("sqrt(x)", "x=-1"),  # outside the domain: nan
    ("log(x)", "x=0"),
    ("exp(x)", "x=1000"),  # overflow
])
def test_exit_1_when_an_answer_is_not_finite(expression, at):
    result = run(expression, "--at", at, "--format", "json")
    assert result.exit_code == 1
    (r,) = json.loads(result.stdout)["results"]
    assert r["status"] != "ok"
    assert "df/dx" in result.stderr and "Traceback" not in result.output


def test_exit_1_and_prompt_end_on_timeout():
    started = time.monotonic()
    result = run("x^(10^10)", "--at", "x=2", "--timeout", "1", "--format", "json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert elapsed < 8, f"took {elapsed:.1f} s with --timeout 1"
    (r,) = json.loads(result.stdout)["results"]  # what finished is still printed
    assert r["status"] in ("timeout", "non-finite")
    assert r["value"] is None  # 2^(10^10) is not computed exactly
    assert result.stderr.strip() and "Traceback" not in result.output


def test_one_point_bad_others_still_printed():
    result = run("1/x", "--at", "x=0", "--at", "x=2", "--format", "plain")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1] == repr(-1 / 4)


BAD = [
    (["x^2", "--at", "x=1", "--dtype", "float16"], "float16"),
    (["x^2 y", "--at", "x=1"], "no value for y"),
    (["x^2", "--at", "x=1,y=2"], "y"),
    (["x^2", "--at", "x=foo"], "foo"),
    (["x^2", "--at", "x"], "x=2"),
    (["x^2", "--at", "x=1/0"], "x=1/0"),
    (["x^2", "--at", "x=1,x=2"], "twice"),
    (["x^2", "d2f/dx", "--at", "x=1"], "order mismatch"),
    (["x^2", "gradient", "--at", "x=1"], "cannot read 'gradient'"),
    (["x.real", "--at", "x=1"], "attribute access"),
    (["foo(x)", "--at", "x=1"], "unknown function 'foo'"),
    (["", "--at", "x=1"], "empty expression"),
    (["x^2", "--no-symbolic"], "nothing to compute"),
    (["x^2", "--at", "x=1", "--device", "tpu"], "tpu"),
]


@pytest.mark.parametrize("args, fragment", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_exit_2_on_bad_input(args, fragment):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("pdiff: error:") and fragment in first, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_exit_2_for_cuda_without_cuda():
    result = run("x^2", "--at", "x=1", "--device", "cuda")
    assert result.exit_code == 2
    assert result.stderr.startswith("pdiff: error:") and "cuda" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--format", "xml"], ["--timeout", "0"], ["--timeout", "-1"]])
def test_exit_2_on_bad_option(args):
    result = run("x^2", "--at", "x=1", *args)
    assert result.exit_code == 2
    assert result.stdout == "" and "Traceback" not in result.output


@pytest.mark.parametrize("args, fragment", [(["--format", "xml"], "--format"), (["--timeout", "0"], "--timeout"),
                                            (["--bogus"], "--bogus")])
def test_bad_option_is_one_error_line(args, fragment):
    # through the real entry point (`python -m pdiff`): usage errors were a multi-line boxed panel
    proc = subprocess.run([sys.executable, "-m", "pdiff", "diff", "x^2", "--at", "x=1", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pdiff: error:") and fragment in lines[0], proc.stderr


def test_debug_shows_a_traceback():
    result = run("x^2", "--at", "x=1,y=2", "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "pdiff: error:" in result.stderr


# --- laziness of --help and --version ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_do_not_import_torch_or_sympy(args):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pdiff", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "pdiff" in imported or "pdiff.cli" in imported  # the measurement really saw pdiff's imports
    heavy = {name for name in imported if name.split(".")[0] in ("torch", "sympy")}
    assert not heavy, f"{args} imported {sorted(heavy)[:5]}"
    if args == ["--version"]:
        assert proc.stdout.startswith("pdiff ")
    else:
        assert "diff" in proc.stdout


def test_an_expression_starting_with_minus_is_not_an_option():
    import subprocess
    import sys

    # d/dx(-x^2) at 3 = -6; d/dx(-(2x)) = -2
    done = subprocess.run([sys.executable, "-m", "pdiff", "diff", "-x^2", "--at", "x=3", "--format", "plain"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "-6.0"), done.stderr
    done = subprocess.run([sys.executable, "-m", "pdiff", "diff", "-2x", "--at", "x=3", "--format", "plain"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "-2.0", done.stderr


def test_constant_expression_and_unbounded_timeout_are_input_errors():
    constant = run("1.5 3", "--at", "x=1")
    assert constant.exit_code == 2 and "no variables" in constant.stderr
    # a named partial of a constant is fine: it is 0
    assert run("1.5 3", "df/dx", "--at", "x=1", "--format", "plain").stdout.strip() == "0.0"
    endless = run("x", "--at", "x=1", "--timeout", "inf")
    assert endless.exit_code == 2 and "at most" in endless.stderr
