"""`pdiff plot`: f and its derivatives as a picture (a file with -o, else the terminal)."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from pdiff.cli import app, error_line, reported_errors
from pdiff.commands import options


@app.command()
def plot(
    expression: str = typer.Argument(..., help='The function of one or two variables, e.g. "x^3 - 3x".'),
    partials: Optional[List[str]] = typer.Argument(
        None, help="Partials to draw, e.g. df/dx d2f/dx2 (default: f, df/dx, d2f/dx2; for two variables f)."),
    ranges: List[str] = typer.Option([], "--range", "-r", metavar="x=LOW:HIGH[,y=LOW:HIGH]",
                                     help="The range of each variable (default -3:3), e.g. x=-3:3,y=-pi:pi."),
    output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                         help="Write the picture to FILE: .png, .svg or .pdf."),
    at: Optional[str] = typer.Option(None, "--at", "-a", metavar="x=VALUE",
                                     help="Draw the tangent line at this point (one variable)."),
    surface: bool = typer.Option(False, "--surface", help="Two variables: a 3-D surface instead of a contour."),
    points: Optional[int] = typer.Option(None, "--points", "-n", metavar="N",
                                         help="Samples: along x (default 401), or per axis of a grid (default 81)."),
    device: str = options.Device,
    timeout: float = options.Timeout,
    debug: bool = options.Debug,
) -> None:
    """Draw EXPRESSION and its derivatives, computed by autograd at every sample.

    One variable: f, df/dx and d2f/dx2 on shared axes (or the PARTIALs given), gaps at poles, --at adds a tangent.
    Two variables: a filled contour of f with gradient arrows (and critical points), or --surface.
    Without -o the picture is drawn in the terminal; on a pipe, give -o (exit 2 otherwise).
    """
    with reported_errors(debug):
        from pdiff.errors import InputError

        if output is not None:
            from pdiff.render.plot import file_format

            try:
                file_format(output)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        elif not sys.stdout.isatty():
            raise InputError("stdout is not a terminal: add -o plot.png (or .svg, .pdf) to write the picture")
        from pdiff import plot as library

        data = library.plot(expression, partials or [], ranges=ranges, at=at, points=points, device=device,
                            timeout=timeout)
        if surface and not hasattr(data, "z"):
            raise InputError("--surface draws a function of two variables")
        from pdiff.render import plot as render

        if output is None:
            render.terminal(data)
            error_line("a file: add -o plot.png")
        else:
            render.save(data, output, surface=surface)
