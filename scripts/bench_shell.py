"""Benchmark `pdiff shell` (issue 7): 100 typical questions through one shell process, against separate
`pdiff diff` processes and against qalc when it is installed.

    python scripts/bench_shell.py                 # everything (separate processes: --separate N of them)
    python scripts/bench_shell.py --only shell    # just the shell
    python scripts/bench_shell.py --profile       # where one warm question spends its time (cProfile, in-process)

The questions mix diff / grad / hessian (and check, when the app has that command) on one to three variables, with
the symbolic side on (the default). Wall times are measured around whole processes; per-question times come from
the shell itself run in-process (same code path as `pdiff shell`, timing each line).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (expression, partial, point); point variables match the expression
_BASES = [
    ("x^2 sin(y) + y^3 cos(x)", "d2f/dxdy", "x=2,y=1"),
    ("x^2 y + x y^2", "d2f/dxdy", "x=2,y=3"),
    ("exp(x y) + ln(x)", "df/dx", "x=1,y=2"),
    ("sin(x) cos(y) z", "d2f/dxdz", "x=1,y=2,z=3"),
    ("sqrt(x^2 + y^2)", "df/dy", "x=3,y=4"),
    ("x^3 - 3 x y^2", "d2f/dx2", "x=1,y=2"),
    ("atan(y/x)", "df/dx", "x=1,y=1"),
    ("x e^(-x^2)", "d2f/dx2", "x=0.5"),
    ("tanh(x) + x^4", "df/dx", "x=0.3"),
    ("x y z + x^2 z", "d3f/dxdydz", "x=1,y=2,z=3"),
    ("ln(x^2 + y^2 + 1)", "d2f/dy2", "x=1,y=1"),
    ("cos(x)^2 + sin(y)^2", "d2f/dxdy", "x=pi/4,y=pi/3"),
    ("x^5 - 2 x^3 + x", "d3f/dx3", "x=2"),
    ("exp(x) sin(y) + z^2", "df/dz", "x=0,y=1,z=2"),
    ("x / (1 + y^2)", "d2f/dxdy", "x=2,y=1"),
    ("asin(x) + acos(y)", "df/dx", "x=0.5,y=0.2"),
    ("x^y", "df/dy", "x=2,y=3"),
    ("sinh(x y) - cosh(z)", "d2f/dxdy", "x=0.5,y=1,z=2"),
    ("(x + y)^3 / z", "df/dz", "x=1,y=1,z=2"),
    ("erf(x) + x^2", "d2f/dx2", "x=0.7"),
]


def _answer(expression: str, partial: str) -> str:
    """A right answer for `check`, worked by SymPy and expanded, so it is not written as pdiff's own derivative."""
    import sympy as sp

    from pdiff import symbolic
    from pdiff.notation import parse_partial
    from pdiff.parse import parse

    expr = parse(expression)
    wrt = parse_partial(partial, symbolic.variables_of([expr])).wrt
    return sp.sstr(sp.expand(symbolic.derivative(expr, wrt)))


def questions(count: int = 100, commands: set[str] | None = None) -> list[str]:
    """`count` typical shell lines, cycling through diff, grad, hessian (and check when available)."""
    kinds = ["diff", "grad", "hessian"] + (["check"] if commands and "check" in commands else [])
    lines = []
    for i in range(count):
        expression, partial, point = _BASES[i % len(_BASES)]
        # shift the point a little on each pass, so repeated expressions are not identical questions
        shift = i // len(_BASES)
        point = ",".join(f"{part}+{shift}/10" if shift else part for part in point.split(","))
        kind = kinds[i % len(kinds)]
        if kind == "diff":
            lines.append(f'diff "{expression}" {partial} --at {point}')
        elif kind == "check":
            lines.append(f'check "{expression}" {partial} --answer "{_answer(expression, partial)}" --at {point}')
        else:
            lines.append(f'{kind} "{expression}" --at {point}')
    return lines


def app_commands() -> set[str]:
    from pdiff.shell import _app_command

    return set(_app_command().commands)


def run_shell_process(lines: list[str]) -> tuple[float, int, str]:
    """Wall time of one `python -m pdiff shell` process answering all lines (stdin piped, plain output)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pdiff", "shell"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - start, done.returncode, done.stderr


def per_question_in_process(lines: list[str], rounds: int = 2) -> list[list[float]]:
    """Seconds per line, run in this process through the shell's own line runner, `rounds` times over the same
    lines in one session (the first line of the first round is cold; later rounds repeat earlier questions)."""
    from pdiff.shell import Session

    sink = io.StringIO()
    real = sys.stdout
    result = []
    with Session(stdout=io.StringIO(), stderr=io.StringIO()) as session:  # as `pdiff shell` runs one
        for _ in range(rounds):
            times = []
            for number, line in enumerate(lines, start=1):
                sys.stdout = sink
                try:
                    start = time.perf_counter()
                    session.run_line(line, number)
                    times.append(time.perf_counter() - start)
                finally:
                    sys.stdout = real
            result.append(times)
    return result


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.1f} ms, mean {statistics.mean(values) * 1000:.1f} ms"


def run_separate(lines: list[str], count: int) -> list[float]:
    """Wall time of `count` separate `python -m pdiff ...` processes (the first `count` diff lines)."""
    import shlex

    diffs = [line for line in lines if line.startswith("diff ")][:count]
    times = []
    for line in diffs:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pdiff", *shlex.split(line)], capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


# qalc: the same derivatives, evaluated at the point (qalc has no gradients or Hessians: one partial per call).
# One qalc process per question reading two lines: the derivative, then `ans` with the point substituted
# (`where` and replace() inside diff() substitute before differentiating).
_QALC = [
    ("diff(diff(x^2*sin(y) + y^3*cos(x), y), x)", {"x": "2", "y": "1"}),  # -0.5666830570
    ("diff(exp(x*y) + ln(x), x)", {"x": "1", "y": "2"}),
    ("diff(sqrt(x^2 + y^2), y)", {"x": "3", "y": "4"}),
    ("diff(x*e^(-x^2), x, 2)", {"x": "0.5"}),
    ("diff(x^5 - 2*x^3 + x, x, 3)", {"x": "2"}),  # 228
]


def run_qalc(count: int) -> list[float] | None:
    qalc = shutil.which("qalc")
    if qalc is None:
        return None
    times = []
    for i in range(count):
        formula, point = _QALC[i % len(_QALC)]
        value = "ans"
        for name, number in point.items():
            value = f"replace({value}, {name}, {number})"
        start = time.perf_counter()
        subprocess.run([qalc, "-t"], input=f"{formula}\n{value}\n", capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    return times


def profile_warm(lines: list[str], repeat: int = 20) -> None:
    """cProfile of warm questions (after a first, cold one), sorted by cumulative time."""
    import cProfile
    import pstats

    from pdiff.shell import Session

    real = sys.stdout
    sys.stdout = io.StringIO()
    try:
        with Session(stdout=io.StringIO(), stderr=io.StringIO()) as session:  # resident workers, as the shell
            session.run_line(lines[0], 1)
            profiler = cProfile.Profile()
            profiler.enable()
            for number, line in enumerate(lines[1:repeat + 1], start=2):
                session.run_line(line, number)
            profiler.disable()
    finally:
        sys.stdout = real
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100, help="questions through the shell (default 100)")
    parser.add_argument("--separate", type=int, default=5,
                        help="separate `pdiff diff` processes to time; the figure for --count is extrapolated")
    parser.add_argument("--qalc", type=int, default=20, help="qalc calls to time (extrapolated to --count)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="shell processes to time (this machine is shared: the best and the median are printed)")
    parser.add_argument("--only", choices=["shell", "separate", "qalc"], help="run one part only")
    parser.add_argument("--no-cache", action="store_true",
                        help="in-process figures without pdiff.api's question caches (an A/B of the caches)")
    parser.add_argument("--profile", action="store_true", help="profile warm questions in-process and stop")
    parser.add_argument("--write-questions", metavar="PATH", help="write the question lines to PATH and stop")
    args = parser.parse_args()

    lines = questions(args.count, app_commands())
    if args.no_cache:
        from pdiff import api

        class Forgetful(dict):
            def __setitem__(self, key, value):
                pass

        api._OUTCOMES, api._DERIVATIVES = Forgetful(), Forgetful()
        print("pdiff.api's caches off (in-process figures only; the shell process keeps them)")
    if args.write_questions:
        Path(args.write_questions).write_text("\n".join(lines) + "\n")
        return
    if args.profile:
        profile_warm(lines)
        return
    kinds = sorted({line.split()[0] for line in lines})
    print(f"{len(lines)} questions ({', '.join(kinds)}), machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f} at the start")

    shell_total = None
    if args.only in (None, "shell"):
        runs = [run_shell_process(lines) for _ in range(max(1, args.repeat))]
        totals = [total for total, _, _ in runs]
        shell_total, code, errors = min(runs)
        print(f"one `pdiff shell` process, {len(lines)} questions: best {shell_total:.2f} s wall, median "
              f"{statistics.median(totals):.2f} s of {len(runs)} runs (exit status {code})")
        if errors.strip():
            print("  its stderr:", *errors.strip().splitlines()[:5], sep="\n    ")
        first, again = per_question_in_process(lines)
        warm = first[1:]
        print(f"  per question, in-process: first (cold) {first[0] * 1000:.0f} ms; warm {_ms(warm)}, "
              f"p90 {sorted(warm)[int(0.9 * len(warm))] * 1000:.1f} ms, max {max(warm) * 1000:.1f} ms")
        seen = len(_BASES)
        print(f"    expression and command new to the session (lines 2-{seen}): {_ms(first[1:seen])}")
        print(f"    known expression and command at a new point (lines {seen + 1}-{len(lines)}): {_ms(first[seen:])}")
        print(f"    the same {len(lines)} questions asked again in the session: {_ms(again)}")
        for kind in kinds:
            picked = [t for line, t in zip(lines[1:], warm) if line.startswith(kind + " ")]
            if picked:
                print(f"    {kind:<8} warm {_ms(picked)} ({len(picked)} lines)")

    separate_total = None
    if args.only in (None, "separate") and args.separate:
        times = run_separate(lines, args.separate)
        each = statistics.mean(times)
        separate_total = each * len(lines)
        print(f"separate `python -m pdiff diff` processes: {len(times)} timed, mean {each:.2f} s each "
              f"→ {separate_total:.0f} s extrapolated for {len(lines)}")

    qalc_total = None
    if args.only in (None, "qalc"):
        times = run_qalc(args.qalc)
        if times is None:
            print("qalc: not installed (apt-get install qalc), not compared")
        else:
            each = statistics.mean(times)
            qalc_total = each * len(lines)
            print(f"qalc: {len(times)} calls timed, mean {each * 1000:.0f} ms each → {qalc_total:.1f} s "
                  f"extrapolated for {len(lines)}")

    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if shell_total:
        if separate_total:
            print(f"ratio: separate processes / shell = {separate_total / shell_total:.0f}x")
        if qalc_total:
            print(f"ratio: qalc calls / shell = {qalc_total / shell_total:.1f}x")


if __name__ == "__main__":
    main()
