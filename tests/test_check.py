"""`pdiff check`: textbook problems with worked verdicts, counterexamples against SymPy, exit statuses, formats.

Oracles: the expected verdict of each problem is worked by hand (the `# expect:` comment in tests/data/problems*.txt);
counterexample values are compared with SymPy evaluating expressions written in this file; JSON's `derivative` is
parsed back with sympy.parse_expr (in this test only, on pdiff's output) and compared with sp.diff.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr
from typer.testing import CliRunner

from pdiff.check import check
from pdiff.check_results import Verdict
from pdiff.errors import InputError, ParseError

DATA = Path(__file__).resolve().parent / "data"
x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
JSON_FIELDS = {"verdict", "derivative", "answer", "counterexample", "checked_points"}


def run(*args: str):
    from pdiff.cli import app

    return CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"}).invoke(app, ["check", *args])


def expected_verdicts(path: Path) -> dict[int, str]:
    """line number → the verdict written after `# expect:` on that line."""
    found = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = re.search(r"#\s*expect:\s*(\w+)", line)
        if match and not line.lstrip().startswith("#"):
            found[number] = match.group(1)
    return found


def as_sympy(text: str) -> sp.Expr:
    return parse_expr(text, local_dict={"x": x, "y": y})


# --- problem files through the CLI, one process each --------------------------------------------------------------

@pytest.mark.parametrize("name", ["problems.txt", "problems_latex.txt"])
def test_problem_file_gives_each_worked_verdict(name):
    path = DATA / name
    want = expected_verdicts(path)
    assert len(want) >= 14 and {"correct", "incorrect"} <= set(want.values())
    result = run("--file", str(path), "--format", "json")
    document = json.loads(result.stdout)
    got = {p["line"]: p["verdict"] for p in document["problems"]}
    assert got == want
    correct = sum(1 for v in want.values() if v == "correct")
    assert document["score"] == {"correct": correct, "total": len(want)}
    assert result.exit_code == 1  # some answers are wrong
    assert f"score: {correct}/{len(want)} correct" in result.stderr
    for problem in document["problems"]:
        assert JSON_FIELDS <= set(problem)
        if problem["verdict"] == "incorrect":
            assert problem["counterexample"]["point"] and problem["derivative"]


def test_problem_file_errors_name_their_lines_and_the_rest_is_graded():
    result = run("--file", str(DATA / "problems_errors.txt"), "--format", "plain")
    lines = result.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["2", "correct"], ["3", "error"], ["4", "error"], ["6", "error"], ["7", "incorrect"], ["8", "error"],
        ["9", "correct"], ["score", "2/7"]]
    assert result.exit_code == 2  # a line could not be read
    for number in (3, 4, 6, 8):
        assert f"problems_errors.txt:{number}: error:" in result.stderr


def test_problem_file_table_shows_the_reading_and_the_score():
    path = DATA / "problems_errors.txt"
    out = run("--file", str(path), "--format", "table").stdout
    assert "score: 2/7 correct" in out and "x^2" in out and "error" in out


def test_problem_file_all_correct_exits_0(tmp_path):
    path = tmp_path / "homework.txt"
    path.write_text("# week 1\nx^2 ; d/dx ; 2x   # trailing comment\n\nx y ; d2f/dxdy ; 1\n")
    result = run("--file", str(path), "--format", "plain")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["2\tcorrect", "4\tcorrect", "score\t2/2"]


@pytest.mark.parametrize("args, message", [
    (["--file", "/nonexistent/problems.txt"], "cannot read"),
    (["--file", str(DATA / "problems_errors.txt"), "x^2"], "give no EXPRESSION"),
])
def test_problem_file_usage_errors(args, message):
    result = run(*args)
    assert result.exit_code == 2 and message in result.stderr


def test_empty_problem_file_is_an_input_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("# nothing yet\n\n")
    result = run("--file", str(path))
    assert result.exit_code == 2 and "no problems" in result.stderr


# --- one answer through the CLI: verdicts and exit statuses ---------------------------------------------------------

@pytest.mark.parametrize("args, status, verdict", [
    (["sin(x)^2", "d/dx", "--answer", "sin(2x)"], 0, "correct"),
    (["sin(x)^2", "d/dx", "--answer", "2 sin x cos x"], 0, "correct"),
    (["x^2 y + x y^2", "d2f/dxdy", "--answer", "2x + y"], 1, "incorrect"),
    (["sqrt(x^2)", "d/dx", "--answer", "1"], 1, "incorrect"),
    (["ln(x)", "d/dx", "--answer", "1/abs(x)"], 1, "undecided"),
    (["\\frac{x^2}{\\sin y}", "d/dx", "--answer", "\\frac{2x}{\\sin y}"], 0, "correct"),
])
def test_verdict_and_exit_status(args, status, verdict):
    result = run(*args, "--format", "plain")
    assert result.exit_code == status, result.output
    assert result.stdout.split("\t")[0].strip() == verdict
    if verdict != "correct":
        assert f"pdiff: {verdict}: " in result.stderr


@pytest.mark.parametrize("args, message", [
    (["sin(x", "d/dx", "--answer", "cos(x)"], "unexpected end of expression"),
    (["x^2", "d/dx"], "missing --answer"),
    (["x^2"], "missing PARTIAL (or --wrt), --answer"),
    (["[x, y]", "d/dx", "--answer", "1"], "not a vector"),
    (["x^2", "d2f/dx", "--answer", "2"], "order mismatch"),
    (["x^2", "d/dx", "--answer", "2x", "--at", "y=1"], "no value for x"),
    (["x^2", "d/dx", "--answer", "2x", "--timeout", "0"], "positive"),
    (["x^2", "d/dx", "--answer", "\\frac{2x}{", "--latex"], "not closed"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr or message in result.output


def test_json_contract_when_incorrect():
    # d/dx x^3 = 3x^2; the answer 3x is wrong; at x=2 (given) the truth is 12 and the answer gives 6
    result = run("x^3", "d/dx", "--answer", "3x", "--at", "x=2", "--format", "json")
    document = json.loads(result.stdout)
    assert JSON_FIELDS <= set(document) and result.exit_code == 1
    assert document["verdict"] == "incorrect"
    assert document["counterexample"]["point"] == {"x": 2.0}
    assert document["counterexample"]["expected"] == 12.0 and document["counterexample"]["got"] == 6.0
    assert sp.simplify(as_sympy(document["derivative"]) - sp.diff(x**3, x)) == 0
    assert as_sympy(document["answer"]) == 3 * x
    assert document["checked_points"] > 100


def test_json_contract_when_correct():
    document = json.loads(run("x^2 y + x y^2", "f_xy", "--answer", "2(x+y)", "--format", "json").stdout)
    assert document["verdict"] == "correct" and document["counterexample"] is None
    assert sp.simplify(as_sympy(document["derivative"]) - sp.diff(x**2 * y + x * y**2, x, y)) == 0
    assert document["symbolic"] == "zero" and document["wrt"] == ["x", "y"]


def test_table_shows_how_the_input_was_read():
    # `xy` is x·y, as student calculators read it, and the table says so; declared, it is one variable whose
    # ∂/∂x is 0, so the answer 1 is wrong
    out = run("xy", "d/dx", "--answer", "y", "--format", "table").stdout
    assert "(read as: x*y)" in out and "read 'xy' as x*y" in out and "CORRECT" in out
    out = run("xy", "d/dx", "--answer", "1", "--var", "xy", "--format", "table").stdout
    assert "f(xy) =" in out and "INCORRECT" in out
    out = run("sin x^2", "d/dx", "--answer", "2x cos(x^2)", "--format", "table").stdout
    assert "(read as: sin(x^2))" in out and "CORRECT" in out
    # forced LaTeX reading: letters side by side are a product
    result = run("xy", "d/dx", "--answer", "y", "--latex", "--format", "table")
    assert result.exit_code == 0 and "(read as: x*y)" in result.stdout


def test_latex_format_for_check():
    out = run("x^3", "d/dx", "--answer", "3x^2", "--format", "latex").stdout
    assert out.startswith("\\begin{align*}") and out.rstrip().endswith("\\end{align*}")
    assert f"&= {sp.latex(3 * x**2)}" in out and "\\text{correct}" in out
    assert "\\frac{d f}{d x}" in out


def test_at_point_outside_the_domain_is_noted_not_compared():
    result = run("ln(x)", "d/dx", "--answer", "1/x", "--at", "x=-1", "--format", "plain")
    assert result.exit_code == 0
    assert "outside the domain" in result.stderr


# --- the library: counterexamples against SymPy ---------------------------------------------------------------------

def test_counterexample_values_match_sympy():
    expr, answer = sp.exp(x) * sp.sin(y), sp.exp(x) * sp.cos(y) + 1  # ∂²/∂x∂y is e^x cos y: the +1 is wrong
    report = check("e^x sin(y)", "d2f/dxdy", "e^x cos(y) + 1")
    assert report.verdict is Verdict.INCORRECT and report.counterexample.confirmed
    point = {x: sp.Rational(report.counterexample.point["x"]).limit_denominator(100),
             y: sp.Rational(report.counterexample.point["y"]).limit_denominator(100)}
    assert report.counterexample.expected == pytest.approx(float(sp.diff(expr, y, x).subs(point)), rel=1e-12)
    assert report.counterexample.got == pytest.approx(float(answer.subs(point)), rel=1e-12)


def test_domain_trap_sqrt_x_squared():
    # d/dx sqrt(x^2) = x/|x|: the answer 1 is right for x > 0 only
    report = check("sqrt(x^2)", "d/dx", "1")
    c = report.counterexample
    assert report.verdict is Verdict.INCORRECT and c.point["x"] < 0
    assert (c.expected, c.got) == (-1.0, 1.0)
    assert report.derivative.text in ("sign(x)", "x/Abs(x)")


def test_answer_undefined_on_part_of_the_domain_is_incorrect():
    # d/dx ln(x^2) = 2/x for every x != 0; this answer is 2/x for x > 0 and undefined (complex) for x < 0
    report = check("ln(x^2)", "d/dx", "2 sqrt(x)/(x sqrt(abs(x)))")
    c = report.counterexample
    assert report.verdict is Verdict.INCORRECT and c.got is None and c.point["x"] < 0
    assert c.expected == pytest.approx(2 / c.point["x"], rel=1e-12)


def test_equivalent_forms_are_correct():
    for answer in ("2 sin(x) cos(x)", "sin(2x)", "sin(2x) + sin(x)^2 + cos(x)^2 - 1", "2 tan(x) cos(x)^2",
                   "4 sin(x/2) cos(x/2) cos(x)"):
        report = check("sin(x)^2", "d/dx", answer)
        assert report.verdict is Verdict.CORRECT, (answer, report.reason)
        assert report.checked_points > 100


def test_right_only_where_cos_is_positive_is_incorrect():
    # 2 sin x sqrt(1 - sin^2 x) = 2 sin x |cos x|: wrong wherever cos x < 0
    report = check("sin(x)^2", "d/dx", "2 sin(x) sqrt(1 - sin(x)^2)")
    c = report.counterexample
    assert report.verdict is Verdict.INCORRECT and sp.cos(c.point["x"]) < 0
    assert c.expected == pytest.approx(float(sp.sin(2 * c.point["x"])), rel=1e-12)


def test_undecided_when_the_symbolic_side_runs_out_of_time(monkeypatch):
    import time

    def stuck(*_args, **_kwargs):  # the forked worker inherits this: every simplification hangs
        time.sleep(60)

    monkeypatch.setattr(sp, "simplify", stuck)
    report = check("sin(x)^2", "d/dx", "sin(2x)", timeout=1.5)
    assert report.verdict is Verdict.UNDECIDED and report.symbolic == "timeout"
    assert "did not finish within 1.5 s" in report.reason and "agree at all" in report.reason
    assert report.exit_code == 1
    # a wrong answer is still caught: the numeric judge and the exact check of its point need no simplify
    report = check("sin(x)^2", "d/dx", "2 cos(x)", timeout=3)
    assert report.verdict is Verdict.INCORRECT


def test_a_hole_at_an_at_point_is_noted_not_a_counterexample():
    # x/|x| is undefined at 0 only (where |x| has no derivative): still correct, with a note about x=0
    report = check("abs(x)", "d/dx", "x/abs(x)", at=["x=0"])
    assert report.verdict is Verdict.CORRECT
    assert any("undefined at --at x=0" in note for note in report.notes)


def test_numeric_side_out_of_time_is_never_correct(monkeypatch):
    from pdiff import autodiff

    def late(*_args, **_kwargs):
        raise autodiff.DeadlineExceeded()

    monkeypatch.setattr(autodiff, "partials_at", late)
    report = check("sin(x)^2", "d/dx", "sin(2x)")
    assert report.verdict is Verdict.UNDECIDED and report.checked_points == 0
    assert "numeric check did not finish" in report.reason


def test_latex_partial_through_the_library():
    # ∂²/∂x∂y of x²y³ = 6xy²
    report = check("x^2 y^3", r"\frac{\partial^2 f}{\partial x \partial y}", "6 x y^2")
    assert report.verdict is Verdict.CORRECT and report.wrt == ("y", "x")


def test_library_input_errors():
    with pytest.raises(ParseError):
        check("x^2", "d/dx", "2x +")
    with pytest.raises(InputError):
        check("[x, y]", "d/dx", "1")


def test_latex_problem_through_the_library():
    report = check(r"\frac{x^2}{\sin y}", "d/dy", r"-\frac{x^2 \cos y}{\sin^2 y}")
    assert report.verdict is Verdict.CORRECT
    assert report.expression.text == "x**2/sin(y)"
