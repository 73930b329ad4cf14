"""The hostile-input corpus (tests/hostile/*.jsonl) run through the real CLI, one subprocess per row.

Each row: {"id", "args": [...], "exit": 0|1|2|"any", "stderr": regex (searched in stderr), "stdout": regex,
"caret": column, "caret_text": regex for the echoed text, "stdin": text, "files": {name: text}, "xfail": reason,
"session": true for shell and check --file, where each bad line gets its own numbered error and the rest goes on}.
An argument may be {"join": [[piece, times], ...]} for inputs too long to write out (megabyte lines, deep nesting).
A lone surrogate such as "\\udcff" in an argument becomes the raw byte 0xff on the command line (invalid UTF-8).

For every row, whatever its expectations, the run must:
- end within its --timeout (20 s by default) plus START_UP seconds, killed otherwise;
- exit with the expected status, and never show a traceback;
- write only `pdiff: ...` lines on stderr (plus, for a parse error, the echoed text and a caret under it), exactly
  one of them for an input error (exit 2), with no control or bidi character that a terminal would interpret;
- leave its working directory (a fresh temporary one) empty: nothing ran (payloads try to `touch pwned`).
"""

from __future__ import annotations

import json
import os
import tempfile
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "hostile"
# a session's error names its line: `pdiff: line 3: error: ...` (shell), `pdiff: probs.txt:3: error: ...` (check)
SESSION_ERROR = re.compile(r"^pdiff: (line \d+|\S+:\d+): error: ")
ROOT = Path(__file__).resolve().parents[1]
START_UP = 12.0  # seconds beyond --timeout: interpreter, torch and SymPy imports on a busy 2-core CI machine
DEFAULT_TIMEOUT = 20.0
# characters a terminal interprets: C0/C1 controls (ESC, BEL, CR...) and bidirectional controls
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
CARET = re.compile(r"^  ( *)\^$")


def _argument(value) -> str:
    if isinstance(value, str):
        return value
    return "".join(piece * times for piece, times in value["join"])


def load_rows() -> list[dict]:
    rows = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("//"):
                row = json.loads(line)
                row["where"] = f"{path.name}:{number}"
                row["category"] = path.stem
                rows.append(row)
    return rows


ROWS = load_rows()


def _timeout_of(args: list[str]) -> float:
    for i, arg in enumerate(args):
        if arg == "--timeout" and i + 1 < len(args):
            try:
                value = float(args[i + 1])
            except ValueError:
                return DEFAULT_TIMEOUT
            return value if 0 < value < DEFAULT_TIMEOUT else DEFAULT_TIMEOUT
        if arg.startswith("--timeout="):
            return DEFAULT_TIMEOUT
    return DEFAULT_TIMEOUT


ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "100",
       "PDIFF_DATA_DIR": os.path.join(tempfile.gettempdir(), "pdiff-hostile-data")}
REAL = os.environ.get("PDIFF_HOSTILE_REAL") == "1"  # every row through `python -m pdiff` (slow: ~2 s a row)


def _prepare(row: dict, workdir: Path) -> tuple[list[str], float, Path]:
    args = [_argument(a) for a in row["args"]]
    for name, text in row.get("files", {}).items():
        data = bytes.fromhex(text[4:]) if text.startswith("hex:") else text.encode("utf-8", "surrogateescape")
        (workdir / name).write_bytes(data)
    stdin = workdir.parent / f"{workdir.name}.stdin"
    stdin.write_bytes(row.get("stdin", "").encode("utf-8", "surrogateescape"))
    return args, _timeout_of(args) + START_UP, stdin


def _result(row, workdir, status, stdout: bytes, stderr: bytes, seconds, limit) -> dict:
    return {"status": status, "stdout": stdout.decode("utf-8", "replace"),
            "stderr": stderr.decode("utf-8", "replace"), "seconds": seconds, "limit": limit,
            "left": sorted(p.name for p in workdir.iterdir() if p.name not in row.get("files", {}))}


def run_real(row: dict, workdir: Path) -> dict:
    """Run one row as `python -m pdiff ARGS` in `workdir` (argv passes through the OS: bytes, limits and all)."""
    args, limit, stdin = _prepare(row, workdir)
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pdiff", *args], cwd=workdir, env=ENV,
                              stdin=stdin.open("rb"), capture_output=True, timeout=limit)
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        status, stdout, stderr = None, exc.stdout or b"", exc.stderr or b""
    return _result(row, workdir, status, stdout, stderr, time.monotonic() - start, limit)


class Launcher:
    """tests/hostile/zygote.py: forks a fresh process per row from warm imports (see its docstring)."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(CORPUS / "zygote.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=ENV, text=True, cwd=ROOT)

    def run(self, row: dict, workdir: Path) -> dict:
        args, limit, stdin = _prepare(row, workdir)
        out, err = workdir.parent / f"{workdir.name}.out", workdir.parent / f"{workdir.name}.err"
        job = {"args": args, "cwd": str(workdir), "stdin": str(stdin), "out": str(out), "err": str(err),
               "limit": limit}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        return _result(row, workdir, reply["status"], out.read_bytes(), err.read_bytes(), reply["seconds"], limit)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    """Every row, two at a time (CI has two cores): through two warm launchers, or `python -m pdiff` with REAL."""
    launchers = [] if REAL else [Launcher(), Launcher()]
    shares = [ROWS[i::2] for i in range(2)]

    def share(index):
        run = run_real if REAL else launchers[index].run
        return [(row["id"], run(row, tmp_path_factory.mktemp(row["id"]))) for row in shares[index]]

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(pair for part in pool.map(share, range(2)) for pair in part)
    finally:
        for launcher in launchers:
            launcher.close()


def check(row: dict, got: dict) -> None:
    where = f"{row['where']} ({row['id']})"
    assert got["status"] is not None, f"{where}: still running after {got['limit']:.0f} s (killed)"
    assert got["seconds"] <= got["limit"], f"{where}: took {got['seconds']:.1f} s"
    assert "Traceback" not in got["stderr"] + got["stdout"], f"{where}: traceback\n{got['stderr'][-2000:]}"
    assert not got["left"], f"{where}: files appeared in the working directory: {got['left']}"
    if row["exit"] != "any":
        assert got["status"] == row["exit"], f"{where}: exit {got['status']}, stderr: {got['stderr'][:500]!r}"
    lines = got["stderr"].splitlines()
    messages = [line for line in lines if line.startswith("pdiff: ")]
    others = [line for line in lines if not line.startswith("pdiff: ")]
    assert not UNSAFE.search(got["stderr"]), f"{where}: a terminal control character on stderr: {got['stderr']!r}"
    if row.get("session"):  # shell and check --file: each bad line has its own numbered error, the rest goes on
        assert any(SESSION_ERROR.match(line) for line in messages), f"{where}: no numbered error line in {lines!r}"
        assert all(len(line) < 400 for line in lines), f"{where}: an overlong stderr line"
    elif others:  # only a parse error's caret pair: the echoed text, then a caret under it
        assert len(others) == 2 and others[0].startswith("  ") and CARET.match(others[1]), \
            f"{where}: unexpected stderr lines {others!r}"
        assert lines[-2:] == others, f"{where}: the caret pair must follow the error line"
    if got["status"] == 2 and not row.get("session"):
        assert len(messages) == 1 and messages[0].startswith("pdiff: error: "), \
            f"{where}: an input error must be one 'pdiff: error:' line, got {lines!r}"
        assert got["stdout"] == "", f"{where}: output on stdout for an input error"
        assert len(messages[0]) < 400, f"{where}: an error line of {len(messages[0])} characters"
    if got["status"] in (0, 1) and row["exit"] != "any":
        assert all(not line.startswith("pdiff: error") for line in messages), f"{where}: {messages!r}"
    if got["status"] == 1:
        assert messages, f"{where}: exit 1 must say on stderr what went wrong"
    if "stderr" in row:
        assert re.search(row["stderr"], got["stderr"]), f"{where}: stderr {got['stderr'][:500]!r} !~ {row['stderr']!r}"
    if "stdout" in row:
        assert re.search(row["stdout"], got["stdout"]), f"{where}: stdout {got['stdout'][:500]!r} !~ {row['stdout']!r}"
    if "caret" in row:
        assert others, f"{where}: no caret line"
        assert CARET.match(others[1]).group(1) == " " * row["caret"], f"{where}: caret at the wrong column"
    if "caret_text" in row:
        assert others and re.fullmatch(row["caret_text"], others[0][2:]), f"{where}: echoed text {others[:1]!r}"


def _params():
    for row in ROWS:
        marks = [pytest.mark.xfail(strict=True, reason=row["xfail"])] if "xfail" in row else []
        yield pytest.param(row, id=f"{row['category']}/{row['id']}", marks=marks)


@pytest.mark.parametrize("row", _params())
def test_hostile_input(row, outcomes):
    check(row, outcomes[row["id"]])


def test_corpus_is_well_formed():
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    categories = {row["category"] for row in ROWS}
    assert {"code_execution", "resource_exhaustion", "malformed_syntax", "encodings", "numeric_edges"} <= categories
    for row in ROWS:
        assert row["exit"] in (0, 1, 2, "any"), row["id"]
        assert set(row) <= {"id", "args", "exit", "stderr", "stdout", "caret", "caret_text", "stdin", "files",
                            "xfail", "real", "where", "category", "session"}, row["id"]
        for pattern in (row.get("stderr"), row.get("stdout"), row.get("caret_text")):
            if pattern is not None:
                re.compile(pattern)


@pytest.mark.parametrize("row", [pytest.param(row, id=f"{row['category']}/{row['id']}") for row in ROWS
                                 if row.get("real") and "xfail" not in row])
def test_real_process(row, tmp_path):
    """A sample of rows through `python -m pdiff` itself, argv bytes and interpreter start-up included."""
    check(row, run_real(row, tmp_path))


def test_worker_dies_with_a_killed_parent(tmp_path):
    """`timeout -s KILL pdiff ...` must not leave the forked SymPy worker running without a deadline."""
    script = (
        "import itertools, os, sys, time\n"
        "from pdiff.bounds import BoundedWorker\n"
        "def work():\n"
        "    for i in itertools.count():\n"
        "        yield i\n"
        "        time.sleep(0.01)\n"
        "w = BoundedWorker(work)\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=ENV)
    worker = int(parent.stdout.readline())
    os.kill(worker, 0)  # running
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        if _is_zombie(worker):
            return
        time.sleep(0.05)
    os.kill(worker, 9)
    pytest.fail("the worker outlived its killed parent")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


def test_payloads_would_have_left_a_marker():
    """The marker check is real: the same payload run by Python does create the file."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", "__import__('os').system('touch pwned')"], cwd=tmp, check=True)
        assert (Path(tmp) / "pwned").exists()
