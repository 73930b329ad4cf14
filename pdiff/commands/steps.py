"""`pdiff steps`: the derivative as a tree of textbook rules, every step verified."""

from __future__ import annotations

from typing import List, Optional

import typer

from pdiff.cli import app, error_line, reported_errors
from pdiff.commands import options


@app.command()
def steps(
    expression: str = typer.Argument(..., help='The function, e.g. "x^2 sin(3x)/(1+x)" or "d/dx (x^x)".'),
    partial: Optional[str] = typer.Argument(None, help="The partial to explain: d/dx, df/dy, d2f/dxdy, f_xy "
                                                       "(default: d/dx for a function of one variable)."),
    at: List[str] = options.At,
    wrt: Optional[str] = options.Wrt,
    fmt: str = options.Format,
    timeout: float = options.Timeout,
    latex: bool = options.Latex,
    var: List[str] = options.Var,
    debug: bool = options.Debug,
) -> None:
    """Explain PARTIAL of EXPRESSION step by step: sum, product, quotient, chain rule and the rest, following
    the expression as written (a quotient rule only where you wrote '/').

    Every step is checked against SymPy's derivative, at points of its domain and symbolically, and the result
    against torch autograd; a step SymPy could not prove says so. Partials say what is held constant. With
    --at, the result's value there. Exit status: 0 every step verified; 1 a step could not be verified (or
    is wrong); 2 bad input.
    """
    with reported_errors(debug):
        from pdiff.render import steps as render
        from pdiff.steps.explain import explain

        report = explain(expression, partial, wrt=wrt, at=at, latex=True if latex else None, var=var,
                         timeout=timeout)
    options.write(options.resolved_format(fmt), table=lambda: render.table(report),
                  plain=lambda: render.plain(report), json=lambda: render.json_document(report),
                  jsonl=lambda: render.jsonl(report), csv=lambda: render.csv_text(report),
                  latex=lambda: render.latex(report))
    for problem in report.problems:
        error_line(problem)
    raise typer.Exit(report.exit_code)
