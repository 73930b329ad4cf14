"""`pdiff check`: is a typed answer the right partial derivative? One answer, or a whole problem file."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pdiff.cli import app, error_line, reported_errors
from pdiff.commands import options


@app.command()
def check(
    expression: Optional[str] = typer.Argument(None, help='The function, e.g. "sin(x)^2" or "\\frac{x^2}{\\sin y}".'),
    partial: Optional[str] = typer.Argument(None, help="The partial the answer is for: d/dx, d2f/dxdy, f_xy, ..."),
    answer: Optional[str] = typer.Option(None, "--answer", help='The answer to grade, e.g. "sin(2x)".'),
    wrt: Optional[str] = options.CheckWrt,
    at: List[str] = options.At,
    file: Optional[Path] = typer.Option(
        None, "--file", help="Grade a problem file: one `EXPR ; PARTIAL ; ANSWER` per line, # comments.",
        metavar="FILE"),
    work: Optional[str] = typer.Option(
        None, "--work", metavar="FILE",
        help="Check a derivation, one expression per line (the first may be the function or d/dx(...) of it), "
             "or - for stdin: the first wrong line and the likely mistake."),
    latex: bool = options.Latex,
    var: List[str] = options.Var,
    fmt: str = options.Format,
    timeout: float = typer.Option(20.0, "--timeout", help="Seconds per answer (symbolic and numeric work).",
                                  callback=options.Timeout.callback),
    seed: int = typer.Option(0, "--seed", help="Seed of the random points (the same seed, the same points)."),
    debug: bool = options.Debug,
) -> None:
    """Grade ANSWER as the PARTIAL derivative of EXPRESSION: correct, incorrect (with a counterexample) or
    undecided.

    Two judges: SymPy simplifies (derivative - answer) to 0 within the time budget, and torch autograd compares
    the two at a few hundred random points of the real domain (and each --at point). An answer right on only
    part of the domain (d/dx sqrt(x^2) = 1) is incorrect. Exit status: 0 correct; 1 incorrect or undecided
    (for --file: any answer not correct); 2 bad input (for --file: any line that could not be read).
    """
    if work is not None:
        _work(work, expression, partial, answer, wrt, at, file, latex=latex, var=var, fmt=fmt, debug=debug)
    if file is not None:
        _problem_file(file, expression, partial, answer, at, latex=latex, fmt=fmt, timeout=timeout, seed=seed,
                      debug=debug)
    with reported_errors(debug):
        from pdiff.errors import InputError

        if wrt is not None and partial is None:
            partial = f"df/d{wrt.strip()}" if wrt.strip().isidentifier() else None
        if expression is None or partial is None or answer is None:
            missing = [name for name, value in (("EXPRESSION", expression), ("PARTIAL (or --wrt)", partial),
                                                ("--answer", answer)) if value is None]
            raise InputError(f"missing {', '.join(missing)} (or give --file with a problem set)")
        from pdiff import check as engine
        from pdiff.render import check as render
        from pdiff.render import latex as render_latex
        from pdiff.tensor.language import is_tensor_question

        if is_tensor_question(expression, at, var) or is_tensor_question(answer):
            from pdiff.tensor import grading

            if at:
                raise InputError("--at is not used when checking a matrix-calculus answer (it is tried at random "
                                 "sizes and values): give shapes with --var")
            report = grading.check(expression, answer, wrt=wrt, partial=partial, var=var, seed=seed,
                                   timeout=timeout)
        else:
            report = engine.check(expression, partial, answer, at=at, timeout=timeout, seed=seed,
                                  latex=True if latex else None, var=var)
    options.write(options.resolved_format(fmt), table=lambda: render.table(report),
                  plain=lambda: render.plain(report), json=lambda: render.json_document(report),
                  jsonl=lambda: render.jsonl(report), csv=lambda: render.csv_text(report),
                  latex=lambda: render_latex.check_document(report))
    if report.verdict.value != "correct":
        error_line(f"{report.verdict.value}: {report.reason}")
    for note in report.notes:
        error_line(note)
    raise typer.Exit(report.exit_code)


def _problem_file(path: Path, expression, partial, answer, at, *, latex, fmt, timeout, seed, debug) -> None:
    with reported_errors(debug):
        from pdiff.errors import InputError

        if expression is not None or partial is not None or answer is not None or at:
            raise InputError("--file takes its problems from the file: give no EXPRESSION, PARTIAL, --answer "
                             "or --at with it")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
        from pdiff import check as engine
        from pdiff.render import check as render
        from pdiff.render import latex as render_latex

        report = engine.check_problems(text, str(path), timeout=timeout, latex=True if latex else None, seed=seed,
                                       debug=debug)
    options.write(options.resolved_format(fmt), table=lambda: render.set_table(report),
                  plain=lambda: render.set_plain(report), json=lambda: render.set_json_document(report),
                  jsonl=lambda: render.set_jsonl(report), csv=lambda: render.set_csv_text(report),
                  latex=lambda: render_latex.problems_document(report))
    for problem in report.problems:
        if problem.error:
            error_line(f"{path}:{problem.line}: error: {problem.error}")
    error_line(f"score: {report.correct}/{report.total} correct")
    raise typer.Exit(report.exit_code)


def _work(work: str, expression, partial, answer, wrt, at, file, *, latex, var, fmt, debug) -> None:
    with reported_errors(debug):
        import sys

        from pdiff.errors import InputError

        if answer is not None or at or file is not None:
            raise InputError("--work takes the steps from the derivation: give no --answer, --at or --file with it")
        if work == "-":
            text, source = sys.stdin.read(), "<stdin>"
        else:
            try:
                text, source = Path(work).read_text(encoding="utf-8"), work
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"cannot read {work}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
        from pdiff.render import steps as render
        from pdiff.steps.work import check_work

        if wrt is not None and partial is None and wrt.strip().isidentifier():
            partial = f"df/d{wrt.strip()}"
        report = check_work(text, source, expression=expression, partial=partial, latex=True if latex else None,
                            var=var)
    options.write(options.resolved_format(fmt), table=lambda: render.work_table(report),
                  plain=lambda: render.work_plain(report), json=lambda: render.work_json(report),
                  jsonl=lambda: render.work_jsonl(report), csv=lambda: render.work_csv(report),
                  latex=lambda: render.work_latex(report))
    if report.first_wrong_line is not None:
        wrong = next(line for line in report.lines if line.line == report.first_wrong_line)
        error_line(f"{source}:{wrong.line}: the first wrong line" + (f" (likely: {wrong.mistake})"
                                                                     if wrong.mistake else ""))
    raise typer.Exit(report.exit_code)
