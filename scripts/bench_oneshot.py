"""Benchmark one-shot `pdiff` calls through the resident server (issue 18): a bash loop of separate calls.

    python scripts/bench_oneshot.py                # 50 calls through the server, in-process calls, --help, Tab, qalc
    python scripts/bench_oneshot.py --calls 100 --in-process 3

Each call is a real process started by bash (`for i in ...; do pdiff diff ...; done`), as a user's script runs
it. The server runs in a temporary runtime directory of its own and is stopped at the end. Every output through the
server is compared with the same call run in-process (PDIFF_SERVER=0): the benchmark fails if one differs.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPRESSIONS = ["x^2 sin(y) + y^3 cos(x)", "exp(x y) sin(x + y^2)", "x^3 - 3x + y^2", "atan(y/x) + sqrt(x^2 + y^2)",
               "ln(1 + x^2 y^2)"]


def calls(count: int) -> list[list[str]]:
    return [["diff", EXPRESSIONS[i % len(EXPRESSIONS)], "d2f/dxdy", "--at", f"x={1 + i / 10},y={2 - i / 20}",
             "--format", "plain"] for i in range(count)]


def bash_loop(pdiff: str, argvs: list[list[str]], env: dict, out: Path) -> float:
    """Seconds for bash to run the calls one after another, each writing to its own file."""
    script = "\n".join(f"{pdiff} {shlex.join(argv)} > {out}/{i}.out 2> {out}/{i}.err; echo $? > {out}/{i}.rc"
                       for i, argv in enumerate(argvs))
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script], env=env, check=True)
    return time.perf_counter() - started


def results(out: Path, count: int) -> list[tuple[bytes, bytes, bytes]]:
    return [((out / f"{i}.out").read_bytes(), (out / f"{i}.err").read_bytes(), (out / f"{i}.rc").read_bytes())
            for i in range(count)]


def timed(command: list[str], env: dict, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - started)
    return best


def status(pdiff: str, env: dict) -> str:
    done = subprocess.run(shlex.split(pdiff) + ["server", "status"], env=env, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip()


def qalc_loop(count: int) -> float | None:
    qalc = shutil.which("qalc")
    if not qalc:
        return None
    started = time.perf_counter()
    for i in range(count):
        subprocess.run([qalc, "-t", "diff(x^2*sin(2), x)"], stdout=subprocess.DEVNULL, check=False)
    return (time.perf_counter() - started) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--in-process", type=int, default=3, help="in-process calls timed (each ~2-5 s)")
    parser.add_argument("--pdiff", default=shutil.which("pdiff") or f"{sys.executable} -m pdiff")
    options = parser.parse_args()

    runtime = tempfile.mkdtemp(prefix="pdb", dir="/tmp")
    os.chmod(runtime, 0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime, "PDIFF_SERVER": "1", "NO_COLOR": "1"}
    off = {**env, "PDIFF_SERVER": "0"}
    argvs = calls(options.calls)
    try:
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            (work / "first").mkdir()
            first = bash_loop(options.pdiff, argvs[:1], env, work / "first")  # starts the server
            (work / "server").mkdir()
            before = status(options.pdiff, env)
            loop = bash_loop(options.pdiff, argvs, env, work / "server")
            after = status(options.pdiff, env)
            (work / "inproc").mkdir()
            sample = argvs[:options.in_process]
            inproc = bash_loop(options.pdiff, sample, off, work / "inproc") / max(1, len(sample))
            (work / "reference").mkdir()
            # the reference for every output: in-process, through one warm launcher would differ in nothing the
            # CLI prints; here, plainly, each call in-process (slow but exact)
            reference = [subprocess.run(shlex.split(options.pdiff) + argv, env=off, capture_output=True,
                                        check=False) for argv in argvs]
            got = results(work / "server", len(argvs))
            mismatches = [i for i, (done, (out, err, rc)) in enumerate(zip(reference, got))
                          if (done.stdout, done.stderr, str(done.returncode).encode() + b"\n") != (out, err, rc)]
        tab = {"_PDIFF_COMPLETE": "bash", "_PDIFF_COMPLETE_LINE": "pdiff diff 'x^2 sin(y) + y^3' --at x=1,"}
        tab_server = timed(shlex.split(options.pdiff), {**env, **tab}, 10)
        tab_off = timed(shlex.split(options.pdiff), {**off, **tab}, 3)
        help_server = timed(shlex.split(options.pdiff) + ["--help"], env, 5)
        help_off = timed(shlex.split(options.pdiff) + ["--help"], off, 5)
        qalc = qalc_loop(10)
    finally:
        subprocess.run(shlex.split(options.pdiff) + ["server", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(runtime, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.2f}")
    print(f"first call (starts the server): {first:.2f} s")
    print(f"{options.calls} calls through the server in a bash loop: {loop:.2f} s ({loop / options.calls * 1e3:.0f} "
          f"ms each); target <= 5 s: {'met' if loop <= 5 else 'NOT met'}")
    print(f"server before the loop: {before}\nserver after the loop:  {after}\n(a new pid: pdiff's files changed "
          "during the loop and the server restarted, a few seconds each time)")
    print(f"one call in-process (PDIFF_SERVER=0), mean of {len(sample)}: {inproc:.2f} s")
    print(f"pdiff --help, best of 5: {help_server * 1e3:.0f} ms with the server running, {help_off * 1e3:.0f} ms "
          f"in-process; target < 300 ms")
    print(f"a Tab press (--at's next variable, read from the expression), best of 10: {tab_server * 1e3:.0f} ms "
          f"through the server, {tab_off * 1e3:.0f} ms in-process (best of 3)")
    print(f"qalc, mean of 10: {qalc * 1e3:.0f} ms" if qalc else "qalc: not installed")
    print(f"outputs identical to in-process: {options.calls - len(mismatches)}/{options.calls}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
