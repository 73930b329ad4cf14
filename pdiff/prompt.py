"""The interactive side of `pdiff shell`: prompt_toolkit's line editor, history across sessions, tab completion.

Running a line is pdiff.shell's job; this module only reads lines from a person and hands them to a Session.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import threading
from pathlib import Path

from pdiff.shell import SESSION_WORDS, Session, SessionInterrupted

DATA_DIR_ENV = "PDIFF_DATA_DIR"  # overrides the directory of the history file (tests point it at a temp dir)
HISTORY_NAME = "shell_history"
PROMPT = "pdiff> "


def data_dir() -> Path:
    """Where pdiff keeps its data: $PDIFF_DATA_DIR, else the platform's user data directory
    (platformdirs when installed; otherwise $XDG_DATA_HOME/pdiff or ~/.local/share/pdiff)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    try:
        import platformdirs
    except ImportError:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        return Path(base) / "pdiff"
    return Path(platformdirs.user_data_dir("pdiff", appauthor=False))


def history_path() -> Path:
    return data_dir() / HISTORY_NAME


_IDENTIFIER_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def completions(session: Session, text: str) -> tuple[list[str], int]:
    """Candidates for the text before the cursor, and how many characters before the cursor they replace.

    The first word: command names and session words; a word starting with `-`: the command's options; after
    --format: the formats; elsewhere (inside an expression): function names.
    """
    try:
        words = shlex.split(text)
    except ValueError:  # an open quote: the cursor is inside an expression
        return _functions(text)
    current = "" if not words or text[-1:].isspace() else words[-1]
    before = words[:-1] if current else words
    if not before or before == ["help"]:
        names = session.command_names() + ([] if before else list(SESSION_WORDS))
        return [n for n in names if n.startswith(current)], len(current)
    if before[-1] in ("--format", "-f"):
        from pdiff.render import FORMATS

        return [n for n in FORMATS if n.startswith(current)], len(current)
    if current.startswith("-"):
        command = session.group.commands.get(before[0])
        if command is None:
            return [], 0
        names = sorted({opt for param in command.params for opt in getattr(param, "opts", ())
                        if opt.startswith("--")} | {"--help"})
        return [n for n in names if n.startswith(current)], len(current)
    return _functions(current)


def _functions(text: str) -> tuple[list[str], int]:
    """Function names completing the name being typed at the end of `text`."""
    match = _IDENTIFIER_TAIL.search(text)
    if not match:
        return [], 0
    from pdiff.parse import FUNCTIONS

    return sorted(n for n in FUNCTIONS if n.startswith(match.group())), len(match.group())


def _completer(session: Session):
    from prompt_toolkit.completion import Completer, Completion

    class ShellCompleter(Completer):
        def get_completions(self, document, complete_event):
            candidates, length = completions(session, document.text_before_cursor)
            for candidate in candidates:
                yield Completion(candidate, start_position=-length)

    return ShellCompleter()


def warm_up() -> None:
    """Import the engine and run one small question's numeric side (parser tables, torch's first call), so the
    first question typed at the prompt does not wait for them. Run in a thread while the user types.

    Symbolic warm-up (running simplify here so that forked workers inherit SymPy's lazily built state) was
    measured and gave no gain on the benchmark's questions, so there is none. Failures only cost speed.
    """
    with contextlib.suppress(Exception):
        from pdiff import api

        api.derivative("x^2 sin(y) + y^3 cos(x)", ["d2f/dxdy"], at=["x=1/2,y=1"], symbolic_side=False)


def interactive(session: Session) -> int:
    """The prompt on a terminal: history across sessions, line editing, tab completion, help, quit/Ctrl-D."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    warm = threading.Thread(target=warm_up, name="pdiff-warm-up", daemon=True)
    warm.start()
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        history = FileHistory(str(path))
    except OSError as exc:
        sys.stderr.write(f"pdiff: history is not kept ({exc})\n")
        history = InMemoryHistory()
    prompt = PromptSession(history=history, completer=_completer(session), complete_while_typing=False,
                           auto_suggest=AutoSuggestFromHistory())
    sys.stdout.write("pdiff shell: type a command as after `pdiff` (e.g. diff \"x^2 y\" df/dx --at x=1,y=2), "
                     "`help`, or `quit`.\n")
    sys.stdout.flush()
    number = 0
    while True:
        try:
            text = prompt.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        number += 1
        warm.join()  # never fork the symbolic worker while another thread is importing
        try:
            outcome = session.run_line(text, number)
        except (KeyboardInterrupt, SessionInterrupted):
            sys.stderr.write("pdiff: interrupted\n")
            continue
        if outcome is not None and outcome.stop:
            break
    return 0
