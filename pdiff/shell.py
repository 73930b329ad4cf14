"""`pdiff shell`: one start-up, many questions.

A line is written exactly as the arguments after `pdiff` on a command line (`diff "x^2 y" df/dx --at x=1,y=2`).
It is split with shell quoting (`shlex`, `#` starts a comment) and run in this process through the Click command
that Typer builds from `pdiff.cli.app`, with `standalone_mode=False` so that a command's exit status comes back as
a value instead of ending the process. Every command registered on the app works here; none is listed by hand.

- Defaults: the session's `--format` and `--timeout` reach every command that has those options as Click defaults
  (`default_map`), so a line's own `--format`/`--timeout` wins.
- Status of a line: the command's exit status (0 ok, 1 the math did not give a clean answer, 2 bad input or usage);
  a line stopped by the watchdog, or failing with an unexpected exception, counts as 1. The session ends with the
  worst status of its lines.
- Messages: in piped and --file mode each line's stderr is held and written after its output, every `pdiff: ...`
  line prefixed with its line number (`pdiff: line 3: error: ...`). Line numbers count every physical line of the
  input, blank lines and comments included, so they match the file.
- JSONL (`--format jsonl`): each command runs with `--format json` (unless the line names its own format) and every
  line that runs gives exactly one JSON object on stdout:
  `{"line": N, "command": "<the line>", "status": 0|1|2, "output": <the command's JSON document, or its text
  when the line chose another format, or null>, "errors": ["<stderr lines, as the command wrote them>", ...]}`.
- A runaway line cannot take the session down: each line runs under a watchdog thread that, past the line's
  `--timeout` plus a grace period, sends SIGUSR1 to the main thread, whose handler raises `LineTimeout` (a
  BaseException no command catches; the symbolic worker is killed by its own `finally`). Work stuck inside one long
  C call is interrupted when that call returns. SystemExit, Click's exceptions and any other exception end only
  their line.

Nothing heavy is imported here: prompt_toolkit only for the interactive prompt, torch and SymPy by the commands.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import IO, Iterable, Iterator

from pdiff import bounds  # light: the standard library only

GRACE_SECONDS = 2.0  # beyond a line's --timeout, for the command's own deadline handling and rendering
# a line is refused before it is split: shlex builds each word by string concatenation on an attribute, which copies
# the word so far for every character (quadratic: a 1 MB line took 17-53 s). An expression may hold 20,000
# characters; the rest of a line is options. A split line may hold at most MAX_LINE_WORDS words.
MAX_LINE_LENGTH = 40_000
MAX_LINE_WORDS = 4_096
_READ_CHUNK = 1 << 16  # characters read at a time from the rest of an oversized line, which is skipped
SESSION_WORDS = ("help", "quit", "exit")
_STATUS_INTERRUPTED = 130


class LineTimeout(BaseException):
    """A line ran past its time limit (raised in the main thread by the watchdog)."""


class SessionInterrupted(Exception):
    """Ctrl-C while a piped session was running a line: the whole session stops."""


@dataclass
class LineOutcome:
    """What one line did."""

    number: int
    command: str
    status: int  # 0, 1 or 2
    output: str | None = None  # the line's stdout, when it was captured (jsonl)
    errors: list[str] = field(default_factory=list)  # the line's stderr lines, when captured
    stop: bool = False  # `quit`/`exit`


# ---------------------------------------------------------------------------------------------------------------
# the watchdog


class _Watchdog:
    """One daemon thread that interrupts the main thread when the current line runs past its limit."""

    def __init__(self) -> None:
        self._main = threading.main_thread().ident
        self._condition = threading.Condition()
        self._deadline: float | None = None
        self._armed = False
        self._thread = threading.Thread(target=self._loop, name="pdiff-shell-watchdog", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with self._condition:
            while True:
                if self._deadline is None:
                    self._condition.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                self._deadline = None
                if self._armed:
                    signal.pthread_kill(self._main, signal.SIGUSR1)

    def _ring(self, _signum, _frame) -> None:
        if self._armed:  # a signal arriving after the line ended is ignored
            self._armed = False
            raise LineTimeout()

    @contextlib.contextmanager
    def guard(self, seconds: float) -> Iterator[None]:
        """Run the body with a limit of `seconds`; past it, LineTimeout is raised in the body."""
        previous = signal.signal(signal.SIGUSR1, self._ring)
        with self._condition:
            self._armed = True
            self._deadline = time.monotonic() + seconds
            self._condition.notify()
        try:
            yield
        finally:
            self._armed = False
            with self._condition:
                self._deadline = None
                self._condition.notify()
            signal.signal(signal.SIGUSR1, previous)


# ---------------------------------------------------------------------------------------------------------------
# one session


def _app_command():
    """The Click group Typer builds from pdiff's app, with every registered command."""
    import typer.main

    from pdiff.cli import app

    return typer.main.get_command(app)


def _walk(group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    for name, command in getattr(group, "commands", {}).items():
        yield (*prefix, name), command
        yield from _walk(command, (*prefix, name))


def _option(command, name: str):
    """The parameter of `command` spelled `name` on the command line, or None."""
    for param in getattr(command, "params", ()):
        if name in getattr(param, "opts", ()):
            return param
    return None


def default_map(group, fmt: str | None, timeout: float | None) -> dict:
    """Click defaults for every command with --format / --timeout options (nested as Click expects)."""
    defaults: dict = {}
    for path, command in _walk(group):
        entry = defaults
        for name in path:
            entry = entry.setdefault(name, {})
        for spelling, value in (("--format", fmt), ("--timeout", timeout)):
            param = _option(command, spelling)
            if param is not None and value is not None:
                entry[param.name] = value
    return defaults


def line_timeout(args: list[str], default: float) -> float:
    """The line's own --timeout when it gives one, else the session's."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        value = None
        if arg == "--timeout" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--timeout="):
            value = arg.partition("=")[2]
        if value is not None:
            try:
                return float(value)
            except ValueError:
                pass
    return default


def worst(statuses: Iterable[int]) -> int:
    """The worst of some line statuses: 2 (bad input) over 1 (math) over 0."""
    return max(statuses, default=0)


class Session:
    """Runs lines against the app; holds the session's defaults, the watchdog and the worst status so far."""

    def __init__(self, *, fmt: str = "auto", timeout: float = 20.0, debug: bool = False,
                 capture_errors: bool = True, stdout: IO[str] | None = None, stderr: IO[str] | None = None):
        self.group = _app_command()
        self.fmt = fmt
        self.jsonl = fmt == "jsonl"
        inner = "json" if self.jsonl else (None if fmt == "auto" else fmt)
        self.defaults = default_map(self.group, inner, timeout)
        self.timeout = timeout
        self.debug = debug
        self.capture_errors = capture_errors  # hold stderr to prefix line numbers (off on the interactive prompt)
        self._stdout = stdout
        self._stderr = stderr
        self.statuses: list[int] = []
        self._watchdog = _Watchdog()
        self._residents = contextlib.ExitStack()

    def __enter__(self) -> Session:
        """Within `with Session(...)`, SymPy work goes to resident workers forked once for the session instead of
        a fresh fork per question (bounds.resident_workers); they are stopped on exit."""
        self._residents.enter_context(bounds.resident_workers())
        return self

    def __exit__(self, *exc_info) -> None:
        self._residents.close()

    @property
    def stdout(self) -> IO[str]:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> IO[str]:
        return self._stderr or sys.stderr

    @property
    def status(self) -> int:
        return worst(self.statuses)

    def command_names(self) -> list[str]:
        return sorted(name for name in self.group.commands if name != "shell")

    def help_text(self) -> str:
        rows = [f"  {name:<10} {self.group.commands[name].get_short_help_str(60)}" for name in self.command_names()]
        return "\n".join([
            "Type a command as you would after `pdiff` on a command line, e.g.",
            '  diff "x^2 sin(y)" d2f/dxdy --at x=1,y=2',
            "Commands:", *rows,
            "  help CMD   the options of a command (same as CMD --help)",
            "  quit       end the session (also exit, Ctrl-D)",
        ])

    # -- running one line ---------------------------------------------------------------------------------------

    def run_line(self, text: str, number: int) -> LineOutcome | None:
        """Run one line; None for blank lines and comments. Its output is written as it should appear."""
        if len(text) > MAX_LINE_LENGTH:  # before anything that walks the line (strip included)
            return self._finish(LineOutcome(number, _clipped(text), 2, errors=[
                f"pdiff: error: the line is longer than {MAX_LINE_LENGTH:,} characters"]))
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            return None
        try:
            from pdiff.cli import expressions_not_options

            args = expressions_not_options(shlex.split(stripped, comments=True))
        except ValueError as exc:
            return self._finish(LineOutcome(number, stripped, 2, errors=[f"pdiff: error: {exc} (shell quoting)"]))
        if not args:
            return None
        if len(args) > MAX_LINE_WORDS:
            return self._finish(LineOutcome(number, _clipped(stripped), 2, errors=[
                f"pdiff: error: the line has more than {MAX_LINE_WORDS:,} words"]))
        word = args[0]
        if word in ("quit", "exit") and len(args) == 1:
            return LineOutcome(number, stripped, 0, stop=True)
        if word == "help" and len(args) == 1:
            return self._finish(LineOutcome(number, stripped, 0, output=self.help_text() + "\n"), echo_output=True)
        if word == "help":
            args = [*args[1:], "--help"]
        if args[0] == "shell":
            return self._finish(LineOutcome(number, stripped, 2,
                                            errors=["pdiff: error: a shell cannot be started inside a shell"]))
        status, output, errors, interrupted = self._invoke(args)
        outcome = self._finish(LineOutcome(number, stripped, status, output, errors))
        if interrupted:
            raise SessionInterrupted()
        return outcome

    def _invoke(self, args: list[str]) -> tuple[int, str | None, list[str], bool]:
        """Run the app on `args`: (status, captured stdout, captured stderr lines, interrupted by Ctrl-C)."""
        from typer import Abort, TyperException  # Click's exceptions, bundled with Typer, derive from these

        out = io.StringIO() if self.jsonl else None
        err = io.StringIO() if self.capture_errors else None
        limit = line_timeout(args, self.timeout) + GRACE_SECONDS
        notes: list[str] = []
        with contextlib.ExitStack() as stack:
            if out is not None:
                stack.enter_context(contextlib.redirect_stdout(out))
            if err is not None:
                stack.enter_context(contextlib.redirect_stderr(err))
            try:
                with self._watchdog.guard(limit):
                    result = self.group.main(args, prog_name="pdiff", standalone_mode=False,
                                             default_map=self.defaults)
                status = result if isinstance(result, int) and not isinstance(result, bool) else 0
            except LineTimeout:
                status = 1
                notes.append(f"error: stopped: the line was still running {limit:g} s after it started")
            except TyperException as exc:  # Click's usage errors: bad option, missing argument, bad value
                from pdiff.cli import usage_error

                status = getattr(exc, "exit_code", 2)
                notes.append(usage_error(exc, in_shell=True))
            except Abort:
                status = 1
                notes.append("error: aborted")
            except SystemExit as exc:
                code = exc.code
                status = code if isinstance(code, int) else (0 if code is None else 1)
                if isinstance(code, str):
                    notes.append(f"error: {code}")
            except Exception as exc:  # noqa: BLE001 - a bug in one line must not end the session
                status = 1
                if self.debug:
                    traceback.print_exc()
                notes.append(f"internal error: {type(exc).__name__}: {exc}"[:300])
            for note in notes:
                sys.stderr.write(f"pdiff: {note}\n")
        bounds.stop_unfinished()  # a line stopped midway may have left a resident worker on a job nobody collects
        interrupted = status == _STATUS_INTERRUPTED  # typer turns Ctrl-C inside a command into exit status 130
        if status not in (0, 1, 2):
            status = 1
        errors = err.getvalue().splitlines() if err is not None else []
        return status, (out.getvalue() if out is not None else None), errors, interrupted

    def _finish(self, outcome: LineOutcome, echo_output: bool = False) -> LineOutcome:
        """Record the status and write what the line produced."""
        self.statuses.append(outcome.status)
        if self.jsonl:
            record = {"line": outcome.number, "command": outcome.command, "status": outcome.status,
                      "output": _json_or_text(outcome.output), "errors": outcome.errors}
            self.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif echo_output and outcome.output:
            self.stdout.write(outcome.output)
        for line in outcome.errors:
            self.stderr.write(self._numbered(line, outcome.number) + "\n")
        self.stdout.flush()
        self.stderr.flush()
        return outcome

    def _numbered(self, line: str, number: int) -> str:
        if self.capture_errors and line.startswith("pdiff: "):
            return f"pdiff: line {number}: {line[len('pdiff: '):]}"
        return line

    def run_lines(self, lines: Iterable[str]) -> int:
        """Run lines in order (numbered from 1) until the end or `quit`; the worst status."""
        for number, text in enumerate(lines, start=1):
            outcome = self.run_line(text.rstrip("\n"), number)
            if outcome is not None and outcome.stop:
                break
        return self.status


def _clipped(text: str, keep: int = 200) -> str:
    """The start of an oversized line, for the `command` field of its JSONL record."""
    return text if len(text) <= keep else text[:keep] + "..."


def bounded_lines(stream: IO[str]) -> Iterator[str]:
    """The lines of `stream`, each read with a bound: a line longer than MAX_LINE_LENGTH comes back cut to
    MAX_LINE_LENGTH + 1 characters (so run_line refuses it) and the rest of it is read and dropped in chunks, so
    a megabyte (or gigabyte) line costs neither quadratic work nor its size in memory."""
    while True:
        line = stream.readline(MAX_LINE_LENGTH + 2)  # the line, its newline, and one more to know it is too long
        if not line:
            return
        if len(line) > MAX_LINE_LENGTH + 1 or (len(line) == MAX_LINE_LENGTH + 1 and not line.endswith("\n")):
            rest = line
            while rest and not rest.endswith("\n"):
                rest = stream.readline(_READ_CHUNK)
            line = line[:MAX_LINE_LENGTH + 1]
        yield line


def _json_or_text(text: str | None):
    """A JSON document (pdiff's are objects) decoded; other output (a line's own --format plain) as text."""
    if text is None or not text.strip():
        return None
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            return json.loads(text)
    return text


def main(*, file: str | None = None, fmt: str = "auto", timeout: float = 20.0, debug: bool = False) -> int:
    """Run a session: the prompt on a terminal, else the lines of --file or stdin. Returns the exit status."""
    if file is None and sys.stdin.isatty() and sys.stdout.isatty():
        from pdiff.prompt import interactive

        with Session(fmt=fmt, timeout=timeout, debug=debug, capture_errors=False) as session:
            return interactive(session)
    with Session(fmt=fmt, timeout=timeout, debug=debug) as session:
        try:
            if file is None or file == "-":
                return session.run_lines(bounded_lines(sys.stdin))
            with open(file, encoding="utf-8") as lines:
                return session.run_lines(bounded_lines(lines))
        except SessionInterrupted:
            return _STATUS_INTERRUPTED
