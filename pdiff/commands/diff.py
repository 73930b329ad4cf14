"""`pdiff diff`: partial derivatives at points, autograd beside the exact answer."""

from __future__ import annotations

from typing import List, Optional

import typer

from pdiff.cli import app, error_line, reported_errors
from pdiff.commands import options


@app.command()
def diff(
    expression: str = typer.Argument(..., help='The function, e.g. "x^2 sin(y) + y^3 cos(x)" or "[x^2, x y]".'),
    partials: Optional[List[str]] = typer.Argument(
        None, help="Partials such as df/dx, d2f/dxdy, ∂²f/∂x∂y, f_xy (default: every first partial)."),
    at: List[str] = options.At,
    wrt: Optional[str] = options.Wrt,
    fmt: str = options.Format,
    dtype: str = options.Dtype,
    device: str = options.Device,
    timeout: float = options.Timeout,
    no_symbolic: bool = typer.Option(False, "--no-symbolic", help="Skip the exact SymPy side."),
    latex: bool = options.Latex,
    points: Optional[str] = typer.Option(
        None, "--points", help="Many points from a file (CSV with a header, .jsonl, .npy, .npz) or - for stdin.",
        metavar="FILE"),
    grid: Optional[str] = typer.Option(
        None, "--grid", help='A grid of points, start:stop:count per variable, e.g. "x=-1:1:101,y=0:pi:51".'),
    chunk_size: Optional[int] = typer.Option(
        None, "--chunk-size", min=1, help="Rows per chunk with --points/--grid (default: 65536 on CPU)."),
    debug: bool = options.Debug,
) -> None:
    """Partial derivatives of EXPRESSION, at each --at point, beside the exact symbolic answer.

    Leibniz d2f/dxdy means ∂/∂x(∂f/∂y) (y first); subscript f_xy means (f_x)_y (x first).
    Without --at, prints the symbolic derivatives only.
    """
    if latex:  # forced LaTeX reading (it is detected anyway from a backslash, ^{ or |)
        with reported_errors(debug):
            from pdiff.latex import to_plain

            expression = to_plain(expression)
    if points is not None or grid is not None:
        _many_points(expression, partials or [], at, points, grid, chunk_size, wrt=wrt, fmt=fmt, dtype=dtype,
                     device=device, timeout=timeout, no_symbolic=no_symbolic, debug=debug)
    with reported_errors(debug):
        from pdiff import api
        from pdiff.render import diff as render

        report = api.derivative(expression, partials or [], wrt=wrt, at=at, dtype=dtype, device=device,
                                timeout=timeout, symbolic_side=not no_symbolic)
    options.write(options.resolved_format(fmt), table=lambda: render.table(report),
                  plain=lambda: render.plain(report), json=lambda: render.json_document(report),
                  jsonl=lambda: render.jsonl(report), csv=lambda: render.csv_text(report),
                  latex=lambda: _latex_document(report))
    for problem in report.problems:
        error_line(problem)
    raise typer.Exit(report.exit_code)


def _many_points(expression, partials, at, points, grid, chunk_size, *, wrt, fmt, dtype, device, timeout,
                 no_symbolic, debug) -> None:
    """--points/--grid: the chunked engine, output written as chunks finish; summary problems on stderr."""
    import sys

    with reported_errors(debug):
        from pdiff.errors import PointError

        given = [name for name, value in (("--at", at), ("--points", points), ("--grid", grid)) if value]
        if len(given) > 1:
            raise PointError(f"use one of --at, --points, --grid, not {' and '.join(given)}")
        from pdiff import sources, stream
        from pdiff.render import stream as render

        plan = stream.plan_diff(expression, partials, wrt=wrt, dtype=dtype, device=device, timeout=timeout,
                                symbolic_side=not no_symbolic)
        source = (sources.open_points(points, plan.needed) if points is not None
                  else sources.grid_source(grid, plan.needed))
        writer = render.writer(options.resolved_format(fmt), plan, source)
        bar, advance = (render.progress(source.total_rows or source.total_bytes,
                                        "points" if source.total_rows else "bytes")
                        if sys.stderr.isatty() else (None, None))
        out = sys.stdout
        out.write(writer.header())
        try:
            if bar:
                bar.start()
            for values in plan.run(source, chunk_size):
                out.write(writer.chunk(values))
                if advance:
                    advance(len(values.chunk) if source.total_rows else values.chunk.consumed)
        finally:
            if bar:
                bar.stop()
        ending = writer.footer(plan.summary)
        if isinstance(ending, str):
            out.write(ending)
        else:
            from rich.console import Console

            Console(soft_wrap=False).print(ending)
        out.flush()
    for problem in plan.summary.problems:
        error_line(problem)
    if not plan.summary.finished and not plan.summary.problems:
        error_line("the run did not finish")
    raise typer.Exit(plan.summary.exit_code)


def _latex_document(report) -> str:
    from pdiff.render import latex

    return latex.diff_document(report)
