"""`pdiff grad`, `hessian`, `jacobian`, `laplacian`, `div`, `curl`, `dir`: vector calculus at points."""

from __future__ import annotations

from typing import List, Optional

import typer

from pdiff.cli import app, error_line, reported_errors
from pdiff.commands import options

Expression = typer.Argument(..., help='The function, e.g. "x^2 sin(y)".')
Field = typer.Argument(..., help='A vector of functions, e.g. "[x y, y z, z x]".')
Symbolic = typer.Option(False, "--symbolic", "-s", help="Show the exact symbolic entries in the table too.")
NoSymbolic = typer.Option(False, "--no-symbolic", help="Skip the exact SymPy side.")


def _run(command: str, expression: str, *, wrt, at, fmt, dtype, device, timeout, symbolic, no_symbolic, latex,
         debug, along=None, points=None, grid=None, chunk_size=None, var=(), output=None, dask=None) -> None:
    if points is not None or grid is not None:
        from pdiff import stream

        names = [*options.declared_columns(points, grid), *(n.strip() for v in var for n in v.split(","))]

        def make_plan():
            columns = options.tensor_columns(expression, points, var)
            if columns is not None:  # vectors and matrices: columns x[0], W[0,1] (or .npz arrays of them)
                from pdiff.tensor import stream as tensor_stream

                return tensor_stream.plan(command, expression, wrt=wrt, var=var, columns=columns, dtype=dtype,
                                          device=device, timeout=timeout, symbolic_side=not no_symbolic)
            return stream.plan_matrix(command, expression, wrt=wrt, dtype=dtype, device=device, timeout=timeout,
                                      symbolic_side=not no_symbolic, names=names, latex=latex or None)

        options.stream_points(make_plan, at=at, points=points, grid=grid, chunk_size=chunk_size, fmt=fmt,
                              debug=debug, output=output, dask=dask)
    options.refuse_output(output, dask)
    with reported_errors(debug):
        from pdiff import calculus
        from pdiff.render import latex as render_latex
        from pdiff.render import tensor as render

        report = calculus.compute(command, expression, wrt=wrt, at=at, along=along, dtype=dtype, device=device,
                                  timeout=timeout, symbolic_side=not no_symbolic, latex=latex or None, var=var)
    options.write(options.resolved_format(fmt), table=lambda: render.table(report, symbolic=symbolic),
                  plain=lambda: render.plain(report), json=lambda: render.json_document(report),
                  jsonl=lambda: render.jsonl(report), csv=lambda: render.csv_text(report),
                  latex=lambda: render_latex.tensor_document(report))
    if options.resolved_format(fmt) != "table":  # a table shows them under its first line
        for note in report.notes:
            error_line(note)
    for problem in report.problems:
        error_line(problem)
    raise typer.Exit(report.exit_code)


def _register(name: str, command: str, argument, doc: str) -> None:
    """One Typer command per object; they differ only in name, argument help and docstring."""

    def run(expression: str = argument, at: List[str] = options.At, wrt: Optional[str] = options.Wrt,
            fmt: str = options.Format, dtype: str = options.Dtype, device: str = options.Device,
            timeout: float = options.Timeout, symbolic: bool = Symbolic, no_symbolic: bool = NoSymbolic,
            latex: bool = options.Latex, var: List[str] = options.Var, points: Optional[str] = options.Points,
            grid: Optional[str] = options.Grid, chunk_size: Optional[int] = options.ChunkSize,
            output: Optional[str] = options.Output, dask: Optional[str] = options.Dask,
            debug: bool = options.Debug) -> None:
        _run(command, expression, wrt=wrt, at=at, fmt=fmt, dtype=dtype, device=device, timeout=timeout,
             symbolic=symbolic, no_symbolic=no_symbolic, latex=latex, debug=debug, points=points, grid=grid,
             chunk_size=chunk_size, var=var, output=output, dask=dask)

    run.__doc__ = doc
    app.command(name=name)(run)


_register("grad", "gradient", Expression, "The gradient vector ∇f. Variables in --wrt order, else sorted by name.")
_register("hessian", "hessian", Expression,
          """The Hessian matrix, its eigenvalues and determinant, and the second-derivative test at each point.

    Row x, column y holds d2f/dxdy = ∂/∂x(∂f/∂y); an asymmetry (f_xy ≠ f_yx) is reported, not hidden.
    """)
_register("jacobian", "jacobian", Field,
          "The Jacobian matrix of a vector of functions (row i: ∇f_i), with its determinant when square.")
_register("laplacian", "laplacian", Expression, "The Laplacian ∇²f, the sum of the second partials.")
_register("div", "divergence", Field,
          "The divergence ∇·F of a vector field (component i is differentiated by variable i).")
_register("curl", "curl", Field,
          "The curl ∇×F of a 3-component field in 3 variables (use --wrt x,y,z when one is missing).")


@app.command(name="dir")
def directional(expression: str = Expression,
                along: str = typer.Option(..., "--along", help="The direction, e.g. 1,2 (normalised for you)."),
                at: List[str] = options.At, wrt: Optional[str] = options.Wrt, fmt: str = options.Format,
                dtype: str = options.Dtype, device: str = options.Device, timeout: float = options.Timeout,
                symbolic: bool = Symbolic, no_symbolic: bool = NoSymbolic, latex: bool = options.Latex,
                var: List[str] = options.Var, debug: bool = options.Debug) -> None:
    """The directional derivative ∇f·u along the normalised vector u = v/|v|."""
    _run("directional", expression, wrt=wrt, at=at, fmt=fmt, dtype=dtype, device=device, timeout=timeout,
         symbolic=symbolic, no_symbolic=no_symbolic, latex=latex, debug=debug, along=along, var=var)
