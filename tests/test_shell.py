"""`pdiff shell` (issue 7): scripted sessions (file and stdin), JSONL line numbers, format defaults, a runaway line,
completion, and the interactive prompt driven through a pseudo-terminal (history across two sessions, quit).

Expected values come from SymPy computed here (the oracle), never from pdiff's own output.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sympy as sp

from pdiff import shell
from pdiff import prompt
from pdiff.prompt import completions
from pdiff.shell import Session, default_map, line_timeout

ROOT = Path(__file__).resolve().parent.parent
x, y, z = sp.symbols("x y z", real=True)


def oracle(expr, *wrt, at):
    """A float of the partial of `expr` (SymPy) by `wrt` in order, at the point `at`."""
    return float(sp.diff(expr, *wrt).subs(at))


def run_pdiff(*args, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pdiff", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "NO_COLOR": "1", **(env or {})}, timeout=240)


# ---------------------------------------------------------------------------------------------------------------
# scripted sessions (one process each)

SCRIPT = """\
# homework, week 3
diff "x^2 y + x y^2" d2f/dxdy --at x=2,y=3

diff "x^2 +" df/dx --at x=1
grad "x^2 sin(y)" --at x=1,y=2
diff "x y" df/dx --at x=1,y=2 --bogus
diff "sin(x) cos(y)" d2f/dxdy --at x=1,y=2 --format json
diff 'x y
diff "exp(x y)" df/dy --at x=2,y=1   # a trailing comment
"""


def test_scripted_file_session_outputs_line_numbers_and_worst_status(tmp_path):
    script = tmp_path / "session.txt"
    script.write_text(SCRIPT)
    done = run_pdiff("shell", "--file", str(script))

    out = done.stdout.splitlines()
    # line 2: plain output, one value
    assert float(out[0]) == oracle(x**2 * y + x * y**2, y, x, at={x: 2, y: 3}) == 10.0
    # line 5: the gradient, one row of two values
    gx, gy = map(float, out[1].split("\t"))
    assert gx == pytest.approx(oracle(x**2 * sp.sin(y), x, at={x: 1, y: 2}), rel=1e-12)
    assert gy == pytest.approx(oracle(x**2 * sp.sin(y), y, at={x: 1, y: 2}), rel=1e-12)
    # line 7: its own --format json wins over the session's (plain)
    start = out.index("{")
    end = out.index("}", start)
    document = json.loads("\n".join(out[start:end + 1]))
    (result,) = document["results"]
    assert result["autograd"] == pytest.approx(oracle(sp.sin(x) * sp.cos(y), y, x, at={x: 1, y: 2}), rel=1e-12)
    # line 9 ran after the bad lines 4, 6 and 8: the session goes on
    assert float(out[end + 1]) == pytest.approx(oracle(sp.exp(x * y), y, at={x: 2, y: 1}), rel=1e-12)
    assert len(out) == end + 2

    errors = done.stderr.splitlines()
    assert errors[0].startswith("pdiff: line 4: error: unexpected end of expression")
    assert errors[1:3] == ["  x^2 +", "       ^"]  # the caret under the position
    assert errors[3] == "pdiff: line 6: error: No such option: --bogus (try 'diff --help')"
    assert errors[4] == "pdiff: line 8: error: No closing quotation (shell quoting)"
    assert len(errors) == 5
    assert done.returncode == 2  # the worst of 0, 2 (bad input) and 1


def test_piped_jsonl_session_gives_one_object_per_line_with_its_number():
    lines = [
        'diff "x^2 y + x y^2" d2f/dxdy --at x=2,y=3',
        "# a comment, skipped",
        'diff "sqrt(x)" df/dx --at x=-1',
        "",
        'hessian "x^2 sin(y) + y^3 cos(x)" --at x=2,y=1',
        'diff "x^3" df/dx --at x=2 --format plain',
        "quit",
        'diff "x" df/dx --at x=1',  # after quit: never run
    ]
    done = run_pdiff("shell", "--format", "jsonl", stdin="\n".join(lines) + "\n")
    records = [json.loads(line) for line in done.stdout.splitlines()]

    assert [r["line"] for r in records] == [1, 3, 5, 6]
    assert [r["status"] for r in records] == [0, 1, 0, 0]
    assert records[0]["command"] == lines[0]
    assert records[0]["output"]["results"][0]["autograd"] == 10.0
    assert records[0]["errors"] == []
    # sqrt at x=-1: outside the real domain, a math status (1), the message in "errors" and on stderr
    assert records[1]["errors"] and "x=-1" in records[1]["errors"][0]
    assert "pdiff: line 3: " in done.stderr
    # the Hessian, against SymPy
    f = x**2 * sp.sin(y) + y**3 * sp.cos(x)
    document = records[2]["output"]
    assert isinstance(document, dict)
    flat = json.dumps(document)
    for wrt in [(x, x), (x, y), (y, y)]:
        expected = oracle(f, *wrt, at={x: 2, y: 1})
        assert any(math.isclose(v, expected, rel_tol=1e-12) for v in _floats(document)), (wrt, flat[:300])
    # a line's own --format wins: its text is the output
    assert records[3]["output"].strip() == "12.0"
    assert done.returncode == 1  # worst of 0, 1, 0, 0


def _floats(document):
    if isinstance(document, float):
        yield document
    elif isinstance(document, dict):
        for value in document.values():
            yield from _floats(value)
    elif isinstance(document, list):
        for value in document:
            yield from _floats(value)


# ---------------------------------------------------------------------------------------------------------------
# the session in this process


@pytest.fixture(scope="module")
def session():
    with Session(fmt="plain") as resident:  # resident SymPy workers, as `pdiff shell` runs them
        yield resident


def test_session_format_is_the_default_and_a_lines_own_format_wins(capsys):
    json_session = Session(fmt="json")
    outcome = json_session.run_line('diff "x^2 y" df/dy --at x=3,y=1', 1)
    assert outcome.status == 0
    document = json.loads(capsys.readouterr().out)
    assert document["results"][0]["autograd"] == oracle(x**2 * y, y, at={x: 3, y: 1}) == 9.0
    json_session.run_line('diff "x^2 y" df/dy --at x=3,y=1 --format csv', 2)
    assert capsys.readouterr().out.startswith("partial,wrt,")


def test_default_map_reaches_every_command_with_the_options(session):
    defaults = default_map(session.group, "json", 5.0)
    for name, command in session.group.commands.items():
        spellings = {opt for param in command.params for opt in getattr(param, "opts", ())}
        if "--format" in spellings:
            assert "json" in defaults[name].values(), name
        if "--timeout" in spellings:
            assert 5.0 in defaults[name].values(), name
    assert {"diff", "grad", "hessian"} <= set(defaults)


def test_line_timeout_reads_the_lines_own_option():
    assert line_timeout(["diff", "x", "--timeout", "3"], 20.0) == 3.0
    assert line_timeout(["diff", "x", "--timeout=0.5"], 20.0) == 0.5
    assert line_timeout(["diff", "x"], 20.0) == 20.0
    assert line_timeout(["diff", "--", "--timeout", "3"], 20.0) == 20.0


def test_blank_comment_help_quit_and_nested_shell(session, capsys):
    assert session.run_line("   ", 1) is None
    assert session.run_line("  # note", 2) is None
    assert session.run_line("help", 3).status == 0
    text = capsys.readouterr().out
    for name in ("diff", "grad", "hessian", "quit"):
        assert name in text
    assert session.run_line("quit", 4).stop
    assert session.run_line("exit", 5).stop
    assert session.run_line("shell", 6).status == 2
    assert "line 6: error: a shell cannot be started inside a shell" in capsys.readouterr().err


def test_a_runaway_line_is_stopped_and_the_session_goes_on(monkeypatch, capsys):
    from pdiff import api

    def runaway(*args, **kwargs):
        while True:  # pure Python that ignores every deadline
            time.sleep(0.01)

    session = Session(fmt="plain", timeout=0.3)
    monkeypatch.setattr(shell, "GRACE_SECONDS", 0.2)
    monkeypatch.setattr(api, "derivative", runaway)
    start = time.monotonic()
    outcome = session.run_line('diff "x^2" df/dx --at x=1', 1)
    assert time.monotonic() - start < 5
    assert outcome.status == 1
    assert "pdiff: line 1: error: stopped" in capsys.readouterr().err

    def crash(*args, **kwargs):
        raise SystemExit(7)

    monkeypatch.setattr(api, "derivative", crash)
    assert session.run_line('diff "x^2" df/dx --at x=1', 2).status == 1

    def bug(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(api, "derivative", bug)
    assert session.run_line('diff "x^2" df/dx --at x=1', 3).status == 1
    capsys.readouterr()

    monkeypatch.undo()
    outcome = session.run_line('diff "x^3" df/dx --at x=2 --timeout 20', 4)
    assert outcome.status == 0
    assert float(capsys.readouterr().out) == oracle(x**3, x, at={x: 2}) == 12.0
    assert session.status == 1  # the worst so far


def test_completion_of_commands_options_functions_and_formats(session):
    def names(text):
        return completions(session, text)[0]

    assert "diff" in names("di") and "dir" in names("di") and "div" in names("di")
    assert names("hes") == ["hessian"]
    assert "quit" in names("q")
    assert "--format" in names("diff x --fo") and "--timeout" in names("grad x --ti")
    assert names('diff "x^2 sq') == ["sqrt"]
    assert set(names('diff "x^2 + arcs')) >= {"arcsin", "arcsinh"}
    assert names("diff x --format js") == ["json", "jsonl"]
    assert names("help hess") == ["hessian"]
    assert completions(session, 'diff "x^2 sq')[1] == 2  # replaces the two typed characters


def test_history_lives_in_the_data_directory(monkeypatch, tmp_path):
    monkeypatch.setenv(prompt.DATA_DIR_ENV, str(tmp_path / "d"))
    assert prompt.history_path() == tmp_path / "d" / "shell_history"
    monkeypatch.delenv(prompt.DATA_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert prompt.history_path() == tmp_path / "xdg" / "pdiff" / "shell_history"


# ---------------------------------------------------------------------------------------------------------------
# the interactive prompt, through a pseudo-terminal

pexpect = pytest.importorskip("pexpect")


def spawn(data_dir: Path):
    env = {**os.environ, prompt.DATA_DIR_ENV: str(data_dir), "NO_COLOR": "1", "TERM": "xterm",
           "PROMPT_TOOLKIT_NO_CPR": "1", "PYTHONPATH": str(ROOT)}
    child = pexpect.spawn(sys.executable, ["-m", "pdiff", "shell", "--format", "plain"], cwd=str(ROOT), env=env,
                          encoding="utf-8", timeout=60, dimensions=(40, 200))
    child.expect_exact("pdiff>")
    return child


def test_interactive_prompt_completes_keeps_history_and_quits(tmp_path):
    # completion runs in the background: wait for each completed word on the screen before typing on; then the
    # line runs as the completed command
    child = spawn(tmp_path)
    child.send("hes\t")
    child.expect_exact("hessian")
    child.send(' "x^2 y" --at x=1,y=2\r')
    child.expect(r"4\.0\s+2\.0\s+2\.0\s+0\.0")  # [[2y, 2x], [2x, 0]] at (1, 2), worked by hand
    child.expect_exact("pdiff>")
    child.send('diff "sq\t')
    child.expect_exact("rt")  # sq → sqrt
    child.send('(x)" df/dx --fo\t')
    child.expect_exact("rmat")  # --fo → --format
    child.send(" plain --at x=4\r")
    child.expect_exact(repr(oracle(sp.sqrt(x), x, at={x: 4})))  # 0.25
    child.expect_exact("pdiff>")
    child.send('diff "x^2 y" df/dx --at x=3,y=2\r')
    child.expect_exact(repr(oracle(x**2 * y, x, at={x: 3, y: 2})))  # 12.0
    child.expect_exact("pdiff>")
    child.send("quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "shell_history").read_text()
    assert '+diff "sqrt(x)" df/dx --format plain --at x=4' in history
    assert '+diff "x^2 y" df/dx --at x=3,y=2' in history

    # a second session finds the line before `quit` with the up arrow and runs it again; Ctrl-D ends it
    child = spawn(tmp_path)
    child.send("\x1b[A")
    child.expect_exact("quit")
    child.send("\x1b[A")
    child.expect_exact("--at x=3,y=2")
    child.send("\r")
    child.expect_exact(repr(oracle(x**2 * y, x, at={x: 3, y: 2})))
    child.expect_exact("pdiff>")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
