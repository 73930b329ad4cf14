"""`pdiff critical`: the points where ∇f = 0, exact where SymPy can, numeric otherwise, each classified."""

from __future__ import annotations

import typer

from pdiff.cli import app, error_line, reported_errors
from pdiff.commands import options

Expression = typer.Argument(..., help='The function, e.g. "x^3 - 3x + y^2".')
Range = typer.Option([], "--range", "-r", metavar="x=LOW:HIGH[,y=LOW:HIGH]",
                     help="The box to search and show, e.g. x=-3:3,y=-3:3 (default: every exact point, and -5:5 per "
                          "variable for a numeric search).")


@app.command()
def critical(
    expression: str = Expression, ranges: list[str] = Range, wrt: str | None = options.Wrt, fmt: str = options.Format, dtype: str = options.Dtype,
    device: str = options.Device, timeout: float = options.Timeout, latex: bool = options.Latex,
    var: list[str] = options.Var, debug: bool = options.Debug,
) -> None:
    """The critical points of EXPRESSION (where ∇f = 0), each with f there and the second-derivative test.

    Solved exactly by SymPy where it can (polynomials: all of them; else what sympy.solve finds), otherwise by
    damped Newton steps with the autograd Hessian from a grid of starts in the box; `method` says which.
    Exit status: 0 points found (or none, soundly); 1 no clean answer (nothing found in time); 2 bad input.
    """
    if fmt == "latex":
        raise typer.BadParameter("latex is not available for this command", param_hint="'--format'")
    with reported_errors(debug):
        from pdiff import critical as library
        from pdiff.render import critical as render

        report = library.critical_points(expression, wrt=wrt, ranges=ranges or None, timeout=timeout, dtype=dtype,
                                         device=device, var=var, latex=latex or None)
    chosen = options.resolved_format(fmt)
    options.write(chosen, table=lambda: render.table(report), plain=lambda: render.plain(report),
                  json=lambda: render.json_document(report), jsonl=lambda: render.jsonl(report),
                  csv=lambda: render.csv_text(report))
    if chosen != "table":  # a table shows them itself
        for note in (*report.notes, *report.messages):
            error_line(note)
        for problem in report.problems:
            error_line(problem)
    raise typer.Exit(report.exit_code)
