"""Options shared by the commands, and writing a rendered report to stdout."""

from __future__ import annotations

import sys
from typing import Callable, Iterable

import typer

from pdiff.bounds import DEFAULT_TIMEOUT

FORMAT_HELP = "auto (a table on a terminal, plain otherwise), table, plain, json, jsonl, csv or latex."


def _check_format(value: str) -> str:
    from pdiff.render import FORMATS

    if value not in (*FORMATS, "latex"):  # latex: the symbolic answers, for commands that render it
        raise typer.BadParameter(f"use one of {', '.join((*FORMATS, 'latex'))}")
    return value


MAX_TIMEOUT = 86_400.0  # a day: every call stays bounded, even when asked for "inf"


def _check_timeout(value: float) -> float:
    if not 0 < value <= MAX_TIMEOUT:
        raise typer.BadParameter(f"must be a positive number of seconds, at most {MAX_TIMEOUT:g}")
    return value


At = typer.Option([], "--at", "-a", help="A point, e.g. x=2,y=pi/4 (repeat for several points).",
                  metavar="x=VALUE,...")
Wrt = typer.Option(None, "--wrt", help="Variables in application order, e.g. x,y for ∂/∂y(∂f/∂x).")
Format = typer.Option("auto", "--format", "-f", help=FORMAT_HELP, callback=_check_format)
Dtype = typer.Option("float64", "--dtype", help="float64 or float32.")
Device = typer.Option("auto", "--device", help="auto (cuda when available), cpu, cuda or mps.")
Timeout = typer.Option(DEFAULT_TIMEOUT, "--timeout", help="Seconds for the whole computation.",
                       callback=_check_timeout)
Debug = typer.Option(False, "--debug", help="Show a traceback on errors.")
Latex = typer.Option(False, "--latex", help="Read expressions as LaTeX (detected anyway from a backslash, ^{ or _{).")
CheckWrt = typer.Option(None, "--wrt", help="The variable of a gradient answer (x for ∂f/∂x) in place of PARTIAL, "
                        "e.g. --wrt X for a matrix-calculus answer.")
Var = typer.Option([], "--var", metavar="NAME[,NAME...]",
                   help="Declare multi-letter variable names, read whole: --var rate,mass (else xy is x*y).")


def declared_columns(points: str | None, grid: str | None) -> list[str]:
    """The names a --grid or a --points file or stdin declares (a CSV header, JSONL keys), read whole."""
    from pdiff.parse import split_top_level

    if grid:
        return [part.split("=", 1)[0].strip() for part in split_top_level(grid) if "=" in part]
    if points:
        from pdiff.sources import column_names

        return [name for name in column_names(points) if name.isidentifier()]
    return []


def tensor_columns(expression: str, points: str | None, var) -> list[str] | None:
    """The --points columns when the question has vectors or matrices as variables (element columns like x[0],
    .npz arrays of points × a vector, a shaped --var or tensor syntax); None for a scalar question."""
    from pdiff.tensor import stream as tensor_stream
    from pdiff.tensor.language import is_tensor_question

    columns = tensor_stream.column_names(points)
    if any("[" in c for c in columns) or is_tensor_question(expression, (), var):
        return columns
    return None


def resolved_format(name: str) -> str:
    """auto → table on a terminal, plain on a pipe."""
    if name != "auto":
        return name
    return "table" if sys.stdout.isatty() else "plain"


def write(fmt: str, *, table: Callable, plain: Callable[[], Iterable[str]], json: Callable[[], str],
          jsonl: Callable[[], Iterable[str]], csv: Callable[[], str],
          latex: Callable[[], str] | None = None) -> None:
    """Write one report to stdout in the chosen format (each renderer is called only when chosen)."""
    if fmt == "latex" and latex is None:
        raise typer.BadParameter("latex is not available for this command", param_hint="'--format'")
    if fmt == "table":
        from rich.console import Console

        Console(soft_wrap=False).print(table())
    elif fmt in ("plain", "jsonl"):
        for line in (plain if fmt == "plain" else jsonl)():
            sys.stdout.write(line + "\n")
    else:
        text = json() if fmt == "json" else latex() if fmt == "latex" else csv()
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


Points = typer.Option(None, "--points", metavar="FILE",
                      help="Many points from a file (CSV with a header, .jsonl, .npy, .npz) or - for stdin.")
Grid = typer.Option(None, "--grid", help='A grid of points, start:stop:count per variable, e.g. "x=-1:1:101,y=0:pi:51".')
ChunkSize = typer.Option(None, "--chunk-size", min=1,
                         help="Rows per chunk with --points/--grid (default: 65536 on CPU).")


def stream_points(make_plan: Callable, *, at, points, grid, chunk_size, fmt: str, debug: bool) -> None:
    """--points/--grid: the chunked engine, output written as chunks finish; summary problems on stderr."""
    from pdiff.cli import error_line, reported_errors

    with reported_errors(debug):
        from pdiff.errors import PointError

        given = [name for name, value in (("--at", at), ("--points", points), ("--grid", grid)) if value]
        if len(given) > 1:
            raise PointError(f"use one of --at, --points, --grid, not {' and '.join(given)}")
        from pdiff import sources
        from pdiff.render import stream as render

        plan = make_plan()
        source = (sources.open_points(points, plan.needed) if points is not None
                  else sources.grid_source(grid, plan.needed))
        writer = render.writer(resolved_format(fmt), plan, source)
        bar, advance = (render.progress(source.total_rows or source.total_bytes,
                                        "points" if source.total_rows else "bytes")
                        if sys.stderr.isatty() else (None, None))
        out = sys.stdout
        out.write(writer.header())
        try:
            if bar:
                bar.start()
            for values in plan.run(source, chunk_size, reuse_outputs=True):  # each chunk is written before the next
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
