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
    var: List[str] = options.Var,
    points: Optional[str] = options.Points,
    grid: Optional[str] = options.Grid,
    chunk_size: Optional[int] = options.ChunkSize,
    output: Optional[str] = options.Output,
    dask: Optional[str] = options.Dask,
    engine: str = typer.Option("auto", "--engine", help="auto (nested reverse mode at low orders, Taylor mode "
                               "above order 4), reverse or taylor."),
    debug: bool = options.Debug,
) -> None:
    """Partial derivatives of EXPRESSION, at each --at point, beside the exact symbolic answer.

    Leibniz d2f/dxdy means ∂/∂x(∂f/∂y) (y first); subscript f_xy means (f_x)_y (x first).
    Without --at, prints the symbolic derivatives only.
    """
    if points is not None or grid is not None:
        from pdiff import stream

        names = [*options.declared_columns(points, grid), *(n.strip() for v in var for n in v.split(","))]

        def make_plan():
            columns = options.tensor_columns(expression, points, var)
            if columns is not None:  # vectors and matrices: columns x[0], W[0,1] (or .npz arrays of them)
                from pdiff.tensor import stream as tensor_stream

                return tensor_stream.plan("diff", expression, partials or [], wrt=wrt, var=var, columns=columns,
                                          dtype=dtype, device=device, timeout=timeout, symbolic_side=not no_symbolic)
            return stream.plan_diff(expression, partials or [], wrt=wrt, dtype=dtype, device=device, timeout=timeout,
                                    symbolic_side=not no_symbolic, names=names, latex=latex or None,
                                    engine=engine)

        options.stream_points(make_plan, at=at, points=points, grid=grid, chunk_size=chunk_size, fmt=fmt,
                              debug=debug, output=output, dask=dask)
    options.refuse_output(output, dask)
    with reported_errors(debug):
        from pdiff import api
        from pdiff.render import diff as render

        # plain lines at points show values only: the derivatives need no simplifying
        report = api.derivative(expression, partials or [], wrt=wrt, at=at, dtype=dtype, device=device,
                                timeout=timeout, symbolic_side=not no_symbolic, latex=latex or None, var=var,
                                engine=engine, simplify=not (at and options.resolved_format(fmt) == "plain"))
    options.write(options.resolved_format(fmt), table=lambda: render.table(report),
                  plain=lambda: render.plain(report), json=lambda: render.json_document(report),
                  jsonl=lambda: render.jsonl(report), csv=lambda: render.csv_text(report),
                  latex=lambda: _latex_document(report))
    if options.resolved_format(fmt) != "table":  # a table shows them under its first line
        for note in report.notes:
            error_line(note)
    for problem in report.problems:
        error_line(problem)
    raise typer.Exit(report.exit_code)


def _latex_document(report) -> str:
    from pdiff.render import latex

    return latex.diff_document(report)
