"""The reader's later rules, found by trying pdiff as new users do: each input is read as meant (checked against a
SymPy expression built here) or refused with exit 2, never read as something else."""

from __future__ import annotations

import pytest
import sympy as sp
from typer.testing import CliRunner

from pdiff.cli import app
from pdiff.errors import InputError
from pdiff.parse import parse_number, read_input

x, y, z, t, k, r, P, A = (sp.Symbol(n, real=True) for n in "xyztkrPA")
theta = sp.Symbol("theta", real=True)

READ_AS_MEANT = [
    # LaTeX and plain runs of letters read alike
    (r"\frac{d}{dx}(xsinx)", x * sp.sin(x)),
    (r"\frac{d}{dx}[lnx]", sp.log(x)),
    (r"e^{2x}cosx", sp.exp(2 * x) * sp.cos(x)),
    (r"x^{2}theta", x**2 * theta),
    # functions with a number after them, and around e
    ("sin2xcos3x", sp.sin(2 * x) * sp.cos(3 * x)),
    ("xsin2x", x * sp.sin(2 * x)),
    ("e^xsinx", sp.exp(x) * sp.sin(x)),
    ("e^sinx", sp.exp(sp.sin(x))),
    ("2xe^(x^2)", 2 * x * sp.exp(x**2)),
    ("e^x y", sp.exp(x) * y),
    ("x^2e^x", x**2 * sp.exp(x)),
    ("eˣ²", sp.exp(x**2)),  # stacked superscripts
    ("ln|x|", sp.log(sp.Abs(x))),
    ("|x - |y||", sp.Abs(x - sp.Abs(y))),
    ("d/dx -x^2", -x**2),
]


@pytest.mark.parametrize("text, meant", READ_AS_MEANT, ids=[c[0] for c in READ_AS_MEANT])
def test_read_as_meant(text, meant):
    assert sp.simplify(read_input(text).expression - meant) == 0


REFUSED = [
    "2e^2x", "xe^2x", "Pe^rt", "Ae^-kt", "3e^-2x", "5e^0.5t", "2e^xy", "ye^2x", "e^2x",  # e^(2x) or e^2·x?
    "sqrt2x",  # sqrt(2x) or sqrt(2)·x?
    "d/dx x^2 + x",  # d/dx (x^2 + x) or d/dx (x^2) + x?
    "rate t^2", "mass",  # four single letters: a name to declare
    "x2y", "x1y",  # x2·y or x²·y?
    r"\sqrt{x} + foo(x)", r"\sqrt{x} + asinx",  # refused in LaTeX as in plain text
    "x + eval(x)",
]


@pytest.mark.parametrize("text", REFUSED)
def test_refused(text):
    with pytest.raises(InputError):
        read_input(text)


@pytest.mark.parametrize("text", ["0x10", "0b101", "1x", "2y"])
def test_a_point_value_with_a_name_is_not_a_number(text):
    with pytest.raises(InputError):
        parse_number(text)  # 0x10 is 0·x10, which SymPy folds to 0: the name is what is wrong


def test_a_declared_name_beside_its_letters_is_refused_also_from_stdin_columns():
    runner = CliRunner()
    result = runner.invoke(app, ["diff", "xy", "--points", "-", "-f", "csv"], input="x,xy,y\n1,2,3\n")
    assert result.exit_code == 2 and "ambiguous" in result.stderr
    result = runner.invoke(app, ["diff", "rate x", "d/dx", "--points", "-", "-f", "csv"], input='{"x": 1, "rate": 2}\n')
    assert result.exit_code == 0 and result.stdout.splitlines()[1].split(",")[2] == "2.0"  # d/dx rate·x = rate


def test_division_before_an_implicit_product_is_noted():
    notes = read_input("1/2x^(-1/2)").notes
    assert any("1/(2x^(-1/2))" in note for note in notes)


def test_an_answer_off_by_a_constant_is_incorrect():
    result = CliRunner().invoke(app, ["check", "x^3", "d/dx", "--answer", "3x^2 + 1e-12", "-f", "plain"])
    assert result.exit_code == 1 and result.stdout.startswith("incorrect")


def test_points_outside_the_domain_are_flagged_with_many_points_as_with_at():
    runner = CliRunner()
    at = runner.invoke(app, ["diff", "ln(x)", "--at", "x=-1", "-f", "plain"])
    grid = runner.invoke(app, ["diff", "ln(x)", "--grid", "x=-2:-1:2", "-f", "plain"])
    assert at.exit_code == grid.exit_code == 1
    assert at.stdout.split() == ["nan"] and grid.stdout.split() == ["nan", "nan"]


def test_a_latex_partial_works_in_diff_as_in_check():
    result = CliRunner().invoke(app, ["diff", "x^2 y", r"\frac{\partial f}{\partial x}", "--at", "x=3,y=2",
                                      "-f", "plain"])
    assert result.exit_code == 0 and float(result.stdout) == 12.0  # 2xy
