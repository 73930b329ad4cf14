"""`pdiff taylor` (Taylor polynomials) and `pdiff tangent` (its order-1 case, said in words)."""

from __future__ import annotations

import typer

from pdiff.cli import app, error_line, reported_errors
from pdiff.commands import options

Expression = typer.Argument(..., help='The function, e.g. "exp(sin x)" or "x^2 y".')
Order = typer.Option(2, "--order", "-n", help="The polynomial's total degree (0 to 60).")


def _run(expression, at, order, wrt, fmt, dtype, device, timeout, no_symbolic, latex, var, debug, tangent: bool):
    if fmt == "latex":
        raise typer.BadParameter("latex is not available for this command", param_hint="'--format'")
    with reported_errors(debug):
        from pdiff import taylor_api
        from pdiff.render import taylor as render

        report = taylor_api.taylor_polynomial(expression, at=at, order=order, wrt=wrt, dtype=dtype, device=device,
                                              timeout=timeout, symbolic_side=not no_symbolic, latex=latex or None,
                                              var=var)
        if tangent and report.tangent is None:
            from pdiff.errors import InputError

            raise InputError("a tangent line or plane is of a function of one or two variables")
    chosen = options.resolved_format(fmt)
    options.write(chosen, table=lambda: render.table(report, tangent), plain=lambda: render.plain(report, tangent),
                  json=lambda: render.json_document(report), jsonl=lambda: render.jsonl(report),
                  csv=lambda: render.csv_text(report))
    if chosen != "table":
        for note in report.notes:
            error_line(note)
        if report.tangent and not tangent and chosen == "plain":
            error_line(f"order 1: the {report.tangent}")
    for problem in report.problems:
        error_line(problem)
    raise typer.Exit(report.exit_code)


@app.command()
def taylor(
    expression: str = Expression,
    at: list[str] = options.At,
    order: int = Order,
    wrt: str | None = typer.Option(None, "--wrt", help="The polynomial's variables, e.g. x,y (default: all)."),
    fmt: str = options.Format, dtype: str = options.Dtype, device: str = options.Device,
    timeout: float = options.Timeout,
    no_symbolic: bool = typer.Option(False, "--no-symbolic", help="Skip the exact SymPy coefficients."),
    latex: bool = options.Latex, var: list[str] = options.Var, debug: bool = options.Debug,
) -> None:
    """The Taylor polynomial of EXPRESSION at the --at point up to --order: exact coefficients (SymPy series)
    beside Taylor mode's float64 ones. Order 1 in one or two variables is the tangent line or plane.

    Exit status: 0 every coefficient is finite and agrees; 1 some coefficient is not finite (a pole, a kink),
    disagrees or timed out; 2 bad input.
    """
    _run(expression, at, order, wrt, fmt, dtype, device, timeout, no_symbolic, latex, var, debug, tangent=False)


@app.command(name="tangent")
def tangent(
    expression: str = Expression,
    at: list[str] = options.At,
    wrt: str | None = typer.Option(None, "--wrt", help="The variables, e.g. x,y (default: all)."),
    fmt: str = options.Format, dtype: str = options.Dtype, device: str = options.Device,
    timeout: float = options.Timeout,
    no_symbolic: bool = typer.Option(False, "--no-symbolic", help="Skip the exact SymPy coefficients."),
    latex: bool = options.Latex, var: list[str] = options.Var, debug: bool = options.Debug,
) -> None:
    """The tangent line (one variable) or plane (two) of EXPRESSION at the --at point: `pdiff taylor --order 1`,
    said in words (tangent plane z = ...). Alias: linearize."""
    _run(expression, at, 1, wrt, fmt, dtype, device, timeout, no_symbolic, latex, var, debug, tangent=True)


app.command(name="linearize", help="The same as `pdiff tangent`: the tangent line or plane at a point.")(tangent)
