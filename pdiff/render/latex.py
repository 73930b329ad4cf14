"""`--format latex`: symbolic answers as an `align*` block, ready to paste into a write-up.

No math here. Check reports carry their own LaTeX (made by the engine); diff reports carry SymPy strings, which are
read back through pdiff's own safe parser (never sympify) and fall back to \\texttt when that is not possible.
"""

from __future__ import annotations

from itertools import groupby
from typing import Sequence

from pdiff.check_results import CheckReport, ProblemSetReport, Verdict
from pdiff.parse import split_top_level


def partial_latex(wrt: Sequence[str], single_variable: bool = False) -> str:
    """Leibniz form of a partial given in application order: ("y", "x") → \\frac{\\partial^{2} f}{\\partial x
    \\partial y}; `d` instead of ∂ for a function of one variable."""
    if not wrt:
        return "f"
    d = "d" if single_variable else "\\partial"
    order = len(wrt)
    top = f"{d}^{{{order}}} f" if order > 1 else f"{d} f"
    bottom = []
    for name, run in groupby(reversed(wrt)):
        count = len(list(run))
        bottom.append(f"{d} {_name(name)}" + (f"^{{{count}}}" if count > 1 else ""))
    return f"\\frac{{{top}}}{{{' '.join(bottom)}}}"


def _name(name: str) -> str:
    base, _, sub = name.partition("_")
    greek = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
             "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"}
    head = f"\\{base}" if base in greek else base if len(base) == 1 else f"\\mathrm{{{base}}}"
    return f"{head}_{{{sub}}}" if sub else head


def _text(text: str) -> str:
    escaped = "".join("\\" + c if c in "#$%&_{}" else c for c in text)
    return f"\\text{{{escaped}}}"


def _from_sympy_string(text: str | None) -> str:
    """LaTeX of a SymPy string written by pdiff, read back through pdiff's parser."""
    if text is None:
        return _text("(did not finish)")
    import sympy as sp

    from pdiff.errors import PdiffError
    from pdiff.parse import parse

    try:
        return sp.latex(parse(text, latex=False))
    except PdiffError:
        return f"\\texttt{{{text}}}".replace("_", "\\_").replace("**", "^")


def _align(lines: list[str]) -> str:
    return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}\n"


def check_lines(report: CheckReport) -> list[str]:
    single = len(report.variables) <= 1 and len(set(report.wrt)) <= 1
    f = f"f({', '.join(_name(v) for v in report.variables)})" if report.variables else "f"
    lines = [f"{f} &= {report.expression.latex or _text(report.expression.display)}"]
    lead = partial_latex(report.wrt, single)
    derivative = report.derivative
    shown = derivative.latex if derivative and derivative.latex else _from_sympy_string(
        derivative.text if derivative else None)
    lines.append(f"{lead} &= {shown}")
    answer = report.answer.latex or _text(report.answer.display)
    lines.append(f"{_text('answer')} &= {answer} && {_text(report.verdict.value)}")
    if report.verdict is Verdict.INCORRECT and report.counterexample:
        c = report.counterexample
        got = "undefined" if c.got is None else repr(c.got)
        lines.append(f"&{_text(f'at {c.point_text}: expected {c.expected!r}, got {got}')}")
    return lines


def check_document(report: CheckReport) -> str:
    return _align(check_lines(report))


def problems_document(report: ProblemSetReport) -> str:
    parts = [f"% pdiff check --file {report.source}: {report.correct}/{report.total} correct\n"]
    for problem in report.problems:
        parts.append(f"% line {problem.line}: {problem.verdict}\n")
        if problem.report:
            parts.append(check_document(problem.report))
        else:
            parts.append(f"% error: {problem.error}\n")
    return "".join(parts)


def diff_document(report) -> str:
    """A DiffReport (pdiff.results) as LaTeX: each derivative once, then each exact value at its point."""
    single = len(report.variables) <= 1
    f = f"f({', '.join(_name(v) for v in report.variables)})" if report.variables else "f"
    lines = [f"{f} &= {_from_sympy_string(report.expression)}"]
    seen = set()
    for r in report.results:
        key = (r.component, r.wrt)
        if key in seen:
            continue
        seen.add(key)
        label = partial_latex(r.wrt, single and len(set(r.wrt)) <= 1)
        if r.component is not None:
            label = label.replace(" f", f" f_{{{r.component + 1}}}", 1)
        lines.append(f"{label} &= {_from_sympy_string(r.derivative)}")
    for r in report.results:
        if r.point is None or r.exact is None:
            continue
        label = partial_latex(r.wrt, single and len(set(r.wrt)) <= 1)
        where = ", ".join(f"{_name(n)}={_from_sympy_string(v)}" for n, v in _point_parts(r.point_text))
        value = "" if r.value is None or r.exact == f"{r.value:.15g}" else f" \\approx {r.value:.15g}"
        lines.append(f"\\left.{label}\\right|_{{{where}}} &= {_from_sympy_string(r.exact)}{value}")
    return _align(lines)


def _point_parts(text: str | None) -> list[tuple[str, str]]:
    import re

    parts = []
    for item in re.split(r", (?=[A-Za-z_][A-Za-z0-9_]*=)", text or ""):
        name, _, value = item.partition("=")
        if name:
            parts.append((name, value.replace("^", "**")))
    return parts


_TENSOR_LABELS = {"gradient": "\\nabla f", "hessian": "H_f", "jacobian": "J", "laplacian": "\\nabla^{2} f",
                  "divergence": "\\nabla \\cdot \\mathbf{F}", "curl": "\\nabla \\times \\mathbf{F}",
                  "directional": "D_{\\mathbf{u}} f"}


def _matrix(value) -> str:
    """A scalar, vector (a column) or matrix of SymPy strings as LaTeX."""
    if not isinstance(value, list):
        return _from_sympy_string(value)
    rows = value if value and isinstance(value[0], list) else [[v] for v in value]
    body = " \\\\ ".join(" & ".join(_from_sympy_string(v) for v in row) for row in rows)
    return f"\\begin{{pmatrix}} {body} \\end{{pmatrix}}"


def tensor_document(report) -> str:
    """A TensorReport (gradient, Hessian, Jacobian, ...) as LaTeX: the symbolic object, then its exact values."""
    variables = ", ".join(_name(v) for v in report.variables)
    label = _TENSOR_LABELS[report.command]
    is_field = report.expression.startswith("[")
    name = "\\mathbf{F}" if is_field else "f"
    shown = (_matrix([part.strip() for part in split_top_level(report.expression[1:-1])]) if is_field
             else _from_sympy_string(report.expression))
    lines = [f"{name}({variables}) &= {shown}", f"{label} &= {_matrix(report.derivative)}"]
    for r in report.results:
        if r.exact is None:
            continue
        where = ", ".join(f"{_name(n)}={_from_sympy_string(v)}" for n, v in _point_parts(r.point_text))
        lines.append(f"\\left.{label}\\right|_{{{where}}} &= {_matrix(r.exact)}")
    return _align(lines)
