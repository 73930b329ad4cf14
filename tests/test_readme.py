"""Every `$ pdiff ...` example in the README runs and prints what the README shows (the README is the oracle)."""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdiff.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[tuple[str, list[str], int | None]]:
    """(command line, expected output lines, expected exit status or None) for each `$ pdiff` line."""
    examples = []
    for block in re.findall(r"```console\n(.*?)```", README.read_text(), flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ pdiff "):
                i += 1
                continue
            command, expected, i = lines[i][2:], [], i + 1
            while i < len(lines) and not lines[i].startswith("$ "):
                expected.append(lines[i])
                i += 1
            status = None
            if i < len(lines) and lines[i] == "$ echo $?":
                status, i = int(lines[i + 1]), i + 2
            examples.append((command, expected, status))
    return examples


def _normalise(lines: list[str]) -> list[str]:
    return [line.rstrip() for line in lines if line.strip()]


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _agree(actual: str, expected: str) -> bool:
    """The same text between numbers, and the same numbers; except that a float printed in full precision (15 or
    more significant digits) may differ in its last digits from one CPU to another (torch's vectorised exp and
    sin), so two such floats agree to 1e-13 relative."""
    if _NUMBER.split(actual) != _NUMBER.split(expected):
        return False
    for got, want in zip(_NUMBER.findall(actual), _NUMBER.findall(expected)):
        digits = len(re.sub(r"[eE].*|[^0-9]", "", want).lstrip("0"))
        if got != want and not (digits >= 15 and math.isclose(float(got), float(want), rel_tol=1e-13)):
            return False
    return True


EXAMPLES = _examples()


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("command, expected, status", EXAMPLES, ids=[e[0][:60] for e in EXAMPLES])
def test_readme_example(command, expected, status):
    args = shlex.split(command, comments=True)[1:]
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(app, args)
    if status is not None:
        assert result.exit_code == status
    elif not any(line.startswith("pdiff: ") for line in expected):
        assert result.exit_code == 0, result.output
    lines, wanted = _normalise(result.output.splitlines()), _normalise(expected)
    assert len(lines) == len(wanted) and all(map(_agree, lines, wanted)), result.output


PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[f"python-{i}" for i in range(len(PYTHON_BLOCKS))])
def test_readme_python_block_runs(code):
    if code.startswith("# not run"):
        pytest.skip("the block says it needs what a test machine lacks (a cluster, a dataset)")
    exec(compile(code, "README.md", "exec"), {})  # the README's own examples, not user input
