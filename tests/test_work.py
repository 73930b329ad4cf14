"""`pdiff check --work`: the first wrong line of a derivation, carried and new errors, and the mistake named.

Each known slip is injected into 20 derivations. The wrong lines are written here from SymPy with the slip's
formula (not by pdiff's own slipped rules), and a correct line comes first in half of them, so the wrong line
is line 2 or line 3.
"""

from __future__ import annotations

import json

import pytest
import sympy as sp
from typer.testing import CliRunner

from pdiff.cli import app
from pdiff.steps.work import check_work

x, y, u = sp.symbols("x y u", real=True)


def _text(expr: sp.Expr) -> str:
    return sp.sstr(expr).replace("**", "^")


def _chain(outer, inner):
    f = outer(inner)
    wrong = sp.diff(outer(u), u).subs(u, inner)  # f'(g(x)) without g'(x)
    return f, wrong


def _quotient_reversed(p, q):
    return p / q, (p * sp.diff(q, x) - sp.diff(p, x) * q) / q**2


def _quotient_unsquared(p, q):
    return p / q, (sp.diff(p, x) * q - p * sp.diff(q, x)) / q


def _product(p, q):
    return p * q, sp.diff(p, x) * sp.diff(q, x)


INNERS = [3 * x, x**2 + 1, 2 * x - 5, x**3, 5 * x**2]
OUTERS = [sp.sin, sp.exp, sp.sinh, sp.atan]
TOPS = [x**2, sp.sin(x), x + 1, sp.exp(x), x**3 - 1]
BOTTOMS = [x**2 + 1, sp.cos(x) + 2, 2 * x + 3, x**4 + 3]
PAIRS = [(x**2, sp.sin(x)), (x**3, sp.exp(x)), (sp.sin(x), sp.cos(x)), (x**2 + 1, sp.log(x)), (sp.exp(x), sp.atan(x))]

CASES: dict[str, list[tuple[str, str, str]]] = {}  # slip → [(function, partial, wrong line)]


def _add(slip, f, wrong, partial="d/dx"):
    CASES.setdefault(slip, []).append((_text(f), partial, _text(wrong)))


for outer in OUTERS:
    for inner in INNERS:
        _add("chain-rule factor dropped", *_chain(outer, inner))
for p in TOPS:
    for q in BOTTOMS:
        _add("numerator reversed", *_quotient_reversed(p, q))
        _add("not squared", *_quotient_unsquared(p, q))
for (p, q) in PAIRS:
    for k in (1, 2, 3, 4):
        _add("f' g'", *_product(k * p + 1 if k > 1 else p, q))
for a in (2, 3, 5, 7, 10):
    for rest in (0, x**2, sp.sin(x), 3 * x):
        _add("power rule used on an exponential", a**x + rest, x * a**(x - 1) + sp.diff(rest, x))
for inner in (x, 2 * x, x**2, 3 * x + 1, x**3):
    for rest in (0, x**2, sp.exp(x), 1):
        f = sp.cos(inner) + rest
        _add("sign of d/dx cos", f, sp.sin(inner) * sp.diff(inner, x) + sp.diff(rest, x))
for g in (x**2 * y, x * sp.sin(y), sp.exp(x * y), x**3 + y**2, x / (y + 2)):
    for k in (1, 2, 3, 5):
        f = k * g + x
        _add("with respect to y instead of x", f, sp.diff(f, y))


def test_each_slip_has_twenty_derivations():
    assert len(CASES) == 7
    assert all(len(cases) >= 20 for cases in CASES.values()), {k: len(v) for k, v in CASES.items()}


@pytest.mark.parametrize("slip", sorted(CASES))
def test_the_slip_is_found_at_the_right_line_and_named(slip):
    for i, (function, partial, wrong) in enumerate(CASES[slip]):
        right = _text(sp.diff(read(function), x))
        steps = [right, wrong] if i % 2 else [wrong]
        text = "\n".join([f"{partial} [{function}]", *steps, f"= {wrong}"]) + "\n"
        report = check_work(text, "<test>")
        wrong_line = 2 + len(steps) - 1
        assert report.first_wrong_line == wrong_line, (function, wrong, report)
        line = next(w for w in report.lines if w.line == wrong_line)
        assert line.verdict == "error"
        assert line.mistake and slip in line.mistake, (function, wrong, line.mistake)
        assert line.counterexample and line.counterexample.startswith("at ")
        assert report.lines[-1].verdict == "carried error"
        if i % 2:
            assert report.lines[0].verdict == "correct"


def read(text: str) -> sp.Expr:
    from pdiff.parse import parse

    return parse(text)


def test_a_new_error_after_an_error():
    text = "x^2 sin(3x)\n2x sin(3x) + x^2 cos(3x)\n2x sin(3x) + 2x cos(3x)\n"
    report = check_work(text, "<test>")
    assert [w.verdict for w in report.lines] == ["error", "new error"]
    assert report.lines[0].mistake == "chain-rule factor dropped"


def test_every_line_right():
    report = check_work("d/dx (x^2 sin x)\n2x sin x + x^2 cos x\nx (2 sin x + x cos x)\n")
    assert report.first_wrong_line is None
    assert [w.verdict for w in report.lines] == ["correct", "correct"]
    assert report.exit_code == 0


def test_the_simplest_counterexample_comes_first():
    report = check_work("x^3\n3x\n")  # at x=1 both are 3: the next simplest point
    assert report.lines[0].counterexample == "at x=2 the derivative is 12 but this line gives 6"


def _cli(args, stdin=None):
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(app, ["check", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_the_command_reads_stdin_and_writes_json(tmp_path):
    code, out, err = _cli(["--work", "-", "--format", "json"], "sin(x)/x\n(sin(x) - x cos(x))/x^2\n")
    document = json.loads(out)
    assert code == 1
    assert document["first_wrong_line"] == 2
    (line,) = document["lines"]
    assert set(line) == {"line", "text", "verdict", "mistake", "counterexample"}
    assert line["verdict"] == "error" and "numerator reversed" in line["mistake"]
    assert "<stdin>:2: the first wrong line" in err


def test_the_command_with_a_file_and_line_numbers_as_in_the_file(tmp_path):
    work = tmp_path / "work.txt"
    work.write_text("# homework 3\nx^2 y\n\n= 2 x y\n= x^2   # oops\n")
    code, out, _ = _cli(["--work", str(work), "--wrt", "x", "--format", "json"])
    document = json.loads(out)
    assert code == 1
    assert [w["line"] for w in document["lines"]] == [4, 5]
    assert document["first_wrong_line"] == 5
    assert "with respect to y" in document["lines"][1]["mistake"]


def test_the_command_exits_0_when_every_line_holds_and_2_for_unreadable_input(tmp_path):
    assert _cli(["x^2", "d/dx", "--work", "-"], "2x\n")[0] == 0
    assert _cli(["--work", "-"], "x^2\n2x +\n")[0] == 2
    assert _cli(["--work", str(tmp_path / "missing.txt")])[0] == 2
    assert _cli(["--work", "-", "--answer", "2x"], "x^2\n2x\n")[0] == 2


def test_the_existing_check_paths_are_unchanged():
    assert _cli(["x^2", "d/dx", "--answer", "2x"])[0] == 0
