"""Shell completion: the candidates for each kind of word, the entry point as each shell's script calls it, the
scripts in real bash (and zsh and fish where installed), installing them, and through the resident server.

Oracles: worked candidate lists for small expressions, and pdiff itself accepting every candidate it offers (a
completed function name parses, a completed partial and --at point compute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from pdiff import completion
from pdiff.cli import app

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PDIFF_SERVER": "0", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
runner = CliRunner()


def offered(line: str) -> list[str]:
    return completion.candidates(typer.main.get_command(app), *completion.split_line(line))


def entry_point(shell: str, line: str, **env: str) -> list[str]:
    """`pdiff` called as the installed script calls it: the answer's lines."""
    done = subprocess.run([sys.executable, "-m", "pdiff"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**ENV, "_PDIFF_COMPLETE": shell, "_PDIFF_COMPLETE_LINE": line, **env})
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout.splitlines()


# ---------------------------------------------------------------------------------------------------------------
# what is offered


def test_commands_and_their_options():
    assert offered("pdiff di") == ["diff", "div", "dir"]
    assert offered("pdiff server st") == ["start", "status", "stop"]
    assert offered("pdiff --ins") == ["--install-completion"]
    options = offered("pdiff diff x^2 --")
    assert {"--at", "--wrt", "--format", "--points", "--var", "--help"} <= set(options)
    assert all(o.startswith("--") for o in options)


def test_formats_and_fixed_values():
    assert offered("pdiff diff x --format j") == ["json", "jsonl"]
    assert offered("pdiff diff x --format=c") == ["--format=csv"]
    assert offered("pdiff grad 'x y' --dtype ") == ["float64", "float32"]
    assert offered("pdiff diff x --engine t") == ["taylor"]
    for fmt in offered("pdiff diff x --format "):  # each offered format is one pdiff accepts
        assert runner.invoke(app, ["diff", "x^2", "--at", "x=1", "--format", fmt]).exit_code == 0, fmt


def test_function_names_inside_an_expression():
    assert offered("pdiff diff 'x^2 + si") == ["x^2 + sigmoid(", "x^2 + sign(", "x^2 + sin(", "x^2 + sinh("]
    assert offered("pdiff diff 'p") == ["pi", "prod("]
    assert offered("pdiff diff 'W.T") == []  # an attribute, not a function
    assert offered("pdiff diff '-x^2+co")[0] == "-x^2+cos("  # an expression, though it starts with '-'
    assert offered("pdiff diff 'x*") == []  # after an operator: anything may come
    assert offered("pdiff diff 'x*E") == ["x*E"] and offered("pdiff diff '2pi") == ["2pi"]  # constants: no bracket
    for candidate in offered("pdiff diff 'x*a"):  # each completed function reads: applied to x, it computes
        call = f"{candidate}x)" if candidate.endswith("(") else candidate
        result = runner.invoke(app, ["diff", call.replace("atan2(x)", "atan2(x, 1)"), "--at", "x=0.5"])
        assert result.exit_code in (0, 1), (call, result.output)


def test_partials_are_those_of_the_expression_typed():
    assert offered("pdiff diff 'x^2 sin(y)' ") == ["df/dx", "df/dy"]
    assert offered("pdiff diff 'x^2 sin(y)' d2") == ["d2f/dx2", "d2f/dxdy", "d2f/dydx", "d2f/dy2"]
    assert offered("pdiff diff 'x^2 sin(y)' f_") == ["f_x", "f_y", "f_xx", "f_xy", "f_yx", "f_yy"]
    assert offered("pdiff diff 'r theta' --var theta f_") == [
        "f_r", "f_theta", "f_{r,r}", "f_{r,theta}", "f_{theta,r}", "f_{theta,theta}"]
    assert offered("pdiff diff 'W @ x' ") == ["df/dW", "df/dx"]  # a tensor expression's variables
    assert offered("pdiff diff 'sin(x' ") == []  # half typed: nothing to offer, and no error
    for partial in offered("pdiff diff 'x^3 y^2 + ln(x)' d"):  # every one computes: x=2, y=3 by hand
        result = runner.invoke(app, ["diff", "x^3 y^2 + ln(x)", partial, "--at", "x=2,y=3"])
        assert result.exit_code == 0, (partial, result.output)
    result = runner.invoke(app, ["diff", "x^3 y^2 + ln(x)", "d2f/dxdy", "--at", "x=2,y=3"])
    assert float(result.stdout) == pytest.approx(6 * 2**2 * 3)


def test_points_and_variables():
    assert offered("pdiff diff 'x^2 y' --at ") == ["x=", "y="]
    assert offered("pdiff diff 'x^2 y' --at x=1,") == ["x=1,y="]
    assert offered("pdiff diff 'x^2 y' --at=x=1,") == ["--at=x=1,y="]
    assert offered("pdiff diff 'x^2 y' --at x=") == []  # a value: the user's to type
    assert offered("pdiff diff 'atan2(x, y) z' --at x=atan2(1,2),") == ["x=atan2(1,2),y=", "x=atan2(1,2),z="]
    assert offered("pdiff grad 'x y z' --wrt x,") == ["x,x", "x,y", "x,z"]
    assert offered("pdiff critical 'x^3 - 3x + y^2' --range ") == ["x=", "y="]
    assert offered("pdiff diff 'rate*mass' --var rate,mass --at ") == ["mass=", "rate="]


def test_file_names_are_left_to_the_shell():
    assert offered("pdiff diff x --points da") == [completion.FILES]
    assert offered("pdiff check --file ") == [completion.FILES]
    assert offered("pdiff plot x --points ") == []  # plot's --points is a count


def test_odd_lines_offer_nothing_quietly():
    assert offered("pdiff nosuchcommand ") == []
    assert offered("pdiff steps x df/dx ") == []  # steps takes two words: a third has nothing to offer
    assert offered("pdiff diff 'x y' df/dx d")[:2] == ["df/dx", "df/dy"]  # diff takes any number of partials
    assert completion.split_line("pdiff diff 'x y") == (["pdiff", "diff"], "x y")
    assert completion.split_line('pdiff diff "x y" ') == (["pdiff", "diff", "x y"], "")
    assert entry_point("bash", "pdiff diff '" + "x+" * 30_000) == ["word:"]  # longer than MAX_LINE
    assert entry_point("tcsh", "pdiff di") == ["word:di"]  # not a shell we write scripts for


# ---------------------------------------------------------------------------------------------------------------
# the entry point and the scripts


@pytest.mark.parametrize("shell", completion.SHELLS)
def test_the_entry_point_answers_each_shell(shell):
    assert entry_point(shell, "pdiff diff 'x^2 y' --at x=1,") == ["word:x=1,", "x=1,y="]
    assert entry_point(shell, "pdiff diff x --points ") == ["word:", ":files"]


def _show(shell: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pdiff", "--show-completion"], capture_output=True, text=True,
                          timeout=60, env={**ENV, "SHELL": f"/bin/{shell}"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_show_completion_prints_the_script_of_the_shell():
    assert "complete -o default -F _pdiff_completion pdiff" in _show("bash")
    assert _show("zsh").startswith("#compdef pdiff")
    assert "complete -c pdiff" in _show("fish")
    done = subprocess.run([sys.executable, "-m", "pdiff", "--show-completion"], capture_output=True, text=True,
                          timeout=60, env={**ENV, "SHELL": "/bin/tcsh"})
    assert done.returncode == 2 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "bash, zsh, fish" in done.stderr


def test_install_completion_writes_the_script_and_loads_it_once(tmp_path):
    env = {**ENV, "HOME": str(tmp_path), "SHELL": "/bin/bash"}
    for _ in range(2):  # installing again changes nothing
        done = subprocess.run([sys.executable, "-m", "pdiff", "--install-completion"], capture_output=True,
                              text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
    script = tmp_path / ".bash_completions" / "pdiff.sh"
    assert script.read_text() == completion.SCRIPTS["bash"]
    assert (tmp_path / ".bashrc").read_text().splitlines().count(f"source '{script}'") == 1
    for shell, path in (("zsh", ".zfunc/_pdiff"), ("fish", ".config/fish/completions/pdiff.fish")):
        completion.install(shell, tmp_path)
        assert (tmp_path / path).read_text() == completion.SCRIPTS[shell]
    assert "fpath+=~/.zfunc" in (tmp_path / ".zshrc").read_text()


def test_install_completion_where_it_cannot_write_is_one_line():
    done = subprocess.run([sys.executable, "-m", "pdiff", "--install-completion"], capture_output=True, text=True,
                          timeout=60, env={**ENV, "HOME": "/proc", "SHELL": "/bin/bash"})
    assert done.returncode == 1 and done.stderr.startswith("pdiff: error: cannot install") and (
        done.stderr.count("\n") == 1)


def _interactive(shell: str, args: list[str], home: Path, prompt: str):
    pexpect = pytest.importorskip("pexpect")
    env = {**ENV, "HOME": str(home), "TERM": "dumb", "PS1": prompt, "INPUTRC": "/dev/null"}
    child = pexpect.spawn(shell, args, env=env, encoding="utf-8", timeout=60, dimensions=(24, 200), cwd=str(home))
    child.expect_exact(prompt)
    return child


def _tab(child, text: str, expected: str) -> None:
    """Type `text` and Tab: the line becomes `expected` (then it is cleared with Ctrl-U)."""
    import pexpect

    child.send(text + "\t")
    try:
        child.expect_exact(expected, timeout=60)
    finally:
        child.send("\x15")
        time.sleep(0.2)
        try:
            child.read_nonblocking(100_000, timeout=0.5)
        except pexpect.TIMEOUT:
            pass


LINES = [  # typed, then the line after one Tab
    ("pdiff hess", "pdiff hessian "),
    ("pdiff diff 'x^2 y' --at x=1,", "pdiff diff 'x^2 y' --at x=1,y="),
    ("pdiff diff 'x^2 y' --format=jsonl", "pdiff diff 'x^2 y' --format=jsonl "),
    ("pdiff diff 'x y' d2f/dxd", "pdiff diff 'x y' d2f/dxdy "),
    ("pdiff grad 'x y z' --wrt x,z,", "pdiff grad 'x y z' --wrt x,z,"),  # three: nothing inserted yet
]


@pytest.mark.skipif(not shutil.which("bash"), reason="bash is not installed")
def test_in_bash(tmp_path):
    assert subprocess.run([sys.executable, "-m", "pdiff", "--install-completion"], capture_output=True,
                          env={**ENV, "HOME": str(tmp_path), "SHELL": "/bin/bash"}, timeout=60).returncode == 0
    with open(tmp_path / ".bashrc", "a") as rc:
        rc.write("PS1='$ '\nbind 'set bell-style none'\n")
    child = _interactive("bash", ["--rcfile", str(tmp_path / ".bashrc"), "-i"], tmp_path, "$ ")  # as installed
    try:
        for typed, expected in LINES:
            _tab(child, typed, expected)
        _tab(child, 'pdiff diff "x^2+sinh', 'pdiff diff "x^2+sinh(')  # the quote stays open
    finally:
        child.close(force=True)


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_in_zsh(tmp_path):
    completion.install("zsh", tmp_path)
    with open(tmp_path / ".zshrc", "a") as rc:
        rc.write("PS1='%% '\nunsetopt beep\n")
    child = _interactive("zsh", ["-i"], tmp_path, "% ")
    try:
        for typed, expected in LINES:
            _tab(child, typed, expected)
    finally:
        child.close(force=True)


@pytest.mark.skipif(not shutil.which("fish"), reason="fish is not installed")
def test_in_fish(tmp_path):
    script = tmp_path / "pdiff.fish"
    script.write_text(completion.SCRIPTS["fish"])

    def fish(line: str) -> list[str]:
        quoted = line.replace("\\", "\\\\").replace("'", "\\'")
        done = subprocess.run(["fish", "--no-config", "-c", f"source {script}; complete -C '{quoted}'"],
                              capture_output=True, text=True, timeout=60, env=ENV)
        return done.stdout.splitlines()

    assert fish("pdiff di") == ["diff", "dir", "div"]
    assert fish("pdiff diff 'x^2 y' --at x=1,") == ["x=1,y="]
    assert fish("pdiff diff 'x y' --dtype ") == ["float32", "float64"]
