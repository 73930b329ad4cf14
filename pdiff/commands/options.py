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
                      help="Many points from a file (CSV with a header, .jsonl, .npy, .npz, .parquet, .feather, "
                      ".arrow, a directory of .parquet files) or - for stdin.")
Grid = typer.Option(None, "--grid", help='A grid of points, start:stop:count per variable, e.g. "x=-1:1:101,y=0:pi:51".')
ChunkSize = typer.Option(None, "--chunk-size", min=1,
                         help="Rows per chunk with --points/--grid (default: 65536 on CPU).")
Output = typer.Option(None, "--output", "-o", metavar="FILE",
                      help="With --points/--grid: write the rows to FILE, the format from its extension (.csv, "
                      ".jsonl, .json, .parquet, .feather, .arrow) instead of stdout.")
Dask = typer.Option(None, "--dask", metavar="SCHEDULER",
                    help="With --points on Parquet (a file or a directory of files) and --output DIR: run on the "
                    "Dask cluster at this scheduler address (pip install 'pdiff-calc[scale]').")


def refuse_output(output: str | None, dask: str | None = None) -> None:
    """--output and --dask are for many points; with --at the answer goes to stdout."""
    for name, value in (("--output", output), ("--dask", dask)):
        if value is not None:
            raise typer.BadParameter("works with --points and --grid only", param_hint=f"'{name}'")


def stream_points(make_plan: Callable, *, at, points, grid, chunk_size, fmt: str, debug: bool,
                  output: str | None = None, dask: str | None = None) -> None:
    """--points/--grid: the chunked engine, output written as chunks finish (to stdout, or to --output FILE in
    the format its extension names; with --dask on a cluster); summary problems on stderr."""
    from pdiff.cli import error_line, reported_errors

    with reported_errors(debug):
        from pdiff.errors import PointError

        given = [name for name, value in (("--at", at), ("--points", points), ("--grid", grid)) if value]
        if len(given) > 1:
            raise PointError(f"use one of --at, --points, --grid, not {' and '.join(given)}")
        from pdiff import sources
        from pdiff.render import stream as render

        if output is not None and dask is None:
            render.output_format(output, fmt)  # a wrong extension is refused before any work
        if dask is not None:
            from pdiff.errors import InputError

            if points is None or output is None:
                raise InputError("--dask runs over --points Parquet files and writes --output DIR")
            try:
                from pdiff import dask as on_dask
            except ImportError:
                raise InputError("--dask needs dask and distributed: pip install 'pdiff-calc[scale]'") from None
            plan = make_plan()
            plan.summary = on_dask.run_cli(plan, points, output, dask, chunk_size)
        else:
            plan = make_plan()
            source = (sources.open_points(points, plan.needed) if points is not None
                      else sources.grid_source(grid, plan.needed))
            if output is not None:
                _stream_to_file(plan, source, output, fmt, chunk_size)
            else:
                _stream_to_stdout(plan, source, fmt, chunk_size)
    for problem in plan.summary.problems:
        error_line(problem)
    if not plan.summary.finished and not plan.summary.problems:
        error_line("the run did not finish")
    raise typer.Exit(plan.summary.exit_code)


def _bar(source):
    from pdiff.render import stream as render

    return (render.progress(source.total_rows or source.total_bytes, "points" if source.total_rows else "bytes")
            if sys.stderr.isatty() else (None, None))


def _stream_to_file(plan, source, output: str, fmt: str, chunk_size) -> None:
    """--output FILE: a writer chosen by the extension; FILE appears when the run ends (see FileOutput)."""
    from pdiff.render import stream as render

    sink = render.FileOutput(output, render.output_format(output, fmt), plan, source)
    bar, advance = _bar(source)
    try:
        if bar:
            bar.start()
        for values in plan.run(source, chunk_size, reuse_outputs=True):  # each chunk is written before the next
            sink.write(values)
            if advance:
                advance(len(values.chunk) if source.total_rows else values.chunk.consumed)
        sink.close(plan.summary)
    except BaseException:
        sink.abort()
        raise
    finally:
        if bar:
            bar.stop()


def _stream_to_stdout(plan, source, fmt: str, chunk_size) -> None:
    from pdiff.render import stream as render

    writer = render.writer(resolved_format(fmt), plan, source)
    bar, advance = _bar(source)
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
