"""`pdiff shell`: many questions through one process (the start-up is paid once)."""

from __future__ import annotations

from typing import Optional

import typer

from pdiff.cli import app, error_line
from pdiff.commands import options


@app.command()
def shell(
    file: Optional[str] = typer.Option(None, "--file", help="Read the lines from this file ('-' for stdin).",
                                       metavar="PATH"),
    fmt: str = options.Format,
    timeout: float = options.Timeout,
    debug: bool = options.Debug,
) -> None:
    """Run pdiff commands line by line in one process: a prompt on a terminal, else the lines of stdin or --file.

    Each line is written as the arguments after `pdiff` (diff "x^2 y" df/dx --at x=1,y=2); `help` lists the
    commands and `quit`, `exit` or Ctrl-D ends. --format and --timeout are the defaults for every line (a line's
    own options win). With --format jsonl each line gives one JSON object {"line", "command", "status", "output",
    "errors"}. Exit status: the worst of the lines (0, 1 or 2).
    """
    from pdiff import shell as session

    if file not in (None, "-"):
        try:
            open(file, encoding="utf-8").close()
        except OSError as exc:
            error_line(f"error: cannot read --file {file!r}: {exc.strerror or exc}")
            raise typer.Exit(2) from None
    raise typer.Exit(session.main(file=file, fmt=fmt, timeout=timeout, debug=debug))
