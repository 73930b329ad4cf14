"""Benchmark the symbolic side's simplification (issue 18): the staged strategy of pdiff/simplify.py against the
old path (sympy.simplify capped at 2 s, kept callable here as `old_simplified`).

    python scripts/bench_simplify.py                # everything: per answer, count_ops, 100 questions through the shell
    python scripts/bench_simplify.py --no-shell     # per-answer figures only
    python scripts/bench_simplify.py --list         # print the corpus and stop

The corpus: random nested expressions of x and y (sometimes z) built from sin, cos, exp, ln(1 + u²), sqrt(1 + u²),
atan, tanh, products, sums, quotients and powers, each asked for a random mixed partial of order 2 or 3 (the kind a
Maxima cross-check produces), generated deterministically from --seed; derivatives that are 0 or a bare term are
dropped; then textbook exercises (TEXTBOOK). Each figure is measured in this one run, old and new side by side.

Per answer: the time to simplify one derivative (caches of pdiff.simplify emptied before each, so no answer borrows
another's work) and the whole symbolic job as the worker runs it (derivative, exact value at the point, then
simplification within pdiff.api.SIMPLIFY_SECONDS). The shell: the corpus's first 100 questions as `diff` lines
through one `python -m pdiff shell` process (PDIFF_SERVER=0), with the new strategy, with the old one patched in
(both --format json, which shows the simplified derivative), as plain lines (values only: nothing is simplified)
and with --no-symbolic.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD_SECONDS = 2.0  # the old cap on simplify per call
POINT = {"x": "7/10", "y": "13/10", "z": "2/5"}

# (expression, partial) as people type them
TEXTBOOK = [
    ("x^2 sin(x)", "d2f/dx2"), ("exp(x) cos(x)", "d2f/dx2"), ("ln(x^2 + 1)", "d2f/dx2"), ("x/(x^2 + 1)", "d2f/dx2"),
    ("sqrt(1 - x^2)", "d2f/dx2"), ("tan(x)", "d2f/dx2"), ("sec(x)", "d2f/dx2"), ("x^x", "d2f/dx2"),
    ("asin(x)", "d2f/dx2"), ("sin(x)^2 cos(x)", "d2f/dx2"), ("x ln(x) - x", "d2f/dx2"), ("tanh(x)", "d3f/dx3"),
    ("exp(x)/(1 + exp(x))", "d2f/dx2"), ("ln(sin(x))", "d2f/dx2"), ("x^3 exp(-x)", "d3f/dx3"),
    ("atan(y/x)", "d2f/dxdy"), ("ln(x^2 + y^2)", "d2f/dx2"), ("1/sqrt(x^2 + y^2 + z^2)", "d2f/dx2"),
    ("exp(-x^2 - y^2)", "d2f/dxdy"), ("sin(x y)", "d2f/dxdy"), ("x^3 y^2 - 2 x y + y^3", "d2f/dxdy"),
    ("x exp(x y)", "d2f/dxdy"), ("cos(x) cosh(y)", "d2f/dy2"), ("x sin(y) + y cos(x)", "d2f/dxdy"),
    ("sqrt(x^2 + y^2)", "d2f/dxdy"), ("x y/(x^2 + y^2)", "d2f/dxdy"), ("exp(x^2) sin(y)", "d2f/dxdy"),
    ("(x + y)/(x - y)", "d2f/dxdy"), ("x^2 y^3 z", "d3f/dxdydz"), ("sin(x + y + z)", "d3f/dxdydz"),
    ("atan(x y)", "d2f/dxdy"), ("cos(x^2 y)", "d2f/dxdy"), ("exp(x) sin(y) + exp(y) sin(x)", "d2f/dxdy"),
    ("x^2 y/(x + y)", "d2f/dxdy"), ("ln(x + sqrt(x^2 + y^2))", "d2f/dxdy"),
]


def _random_expression(rng: random.Random, depth: int, names: list[str]):
    import sympy as sp

    from pdiff.parse import symbol

    variables = [symbol(name) for name in names]
    functions = [sp.sin, sp.cos, sp.exp, sp.log, sp.sqrt, sp.atan, sp.tanh, sp.sin, sp.exp]

    def leaf():
        r = rng.random()
        if r < 0.75:
            return rng.choice(variables)
        if r < 0.9:
            return rng.randint(2, 4) * rng.choice(variables)
        return sp.Integer(rng.randint(1, 3))

    def node(d):
        if d == 0 or rng.random() < 0.15:
            return leaf()
        r, a = rng.random(), node(d - 1)
        if r < 0.40:
            function = rng.choice(functions)
            return function(1 + a ** 2 if function in (sp.log, sp.sqrt) else a)  # defined everywhere
        b = node(d - 1)
        if r < 0.62:
            return a * b
        if r < 0.80:
            return a + b
        if r < 0.90:
            return a / (1 + b ** 2)
        return a ** rng.randint(2, 3)

    return node(depth)


def partial_text(wrt) -> str:
    """The Leibniz text of a partial in application order: ("x", "y") → d2f/dydx."""
    return f"d{len(wrt)}f/" + "".join(f"d{name}" for name in reversed(wrt))


def corpus(count: int, seed: int) -> list[tuple[str, tuple[str, ...], str]]:
    """(expression text, wrt in application order, where it came from): `count` random ones, then TEXTBOOK."""
    from pdiff import symbolic
    from pdiff.notation import parse_partial
    from pdiff.parse import parse, symbol

    rng = random.Random(seed)
    found = []
    while len(found) < count:
        names = ["x", "y"] if rng.random() < 0.8 else ["x", "y", "z"]
        expr = _random_expression(rng, rng.choice([3, 3, 4]), names)
        if not {symbol("x"), symbol("y")} <= expr.free_symbols:
            continue
        wrt = [rng.choice("xy") for _ in range(rng.choice([2, 2, 3]))]
        if len(set(wrt)) < 2:
            wrt[-1] = "y" if wrt[0] == "x" else "x"
        text = symbolic.to_display(expr).replace("log(", "ln(")
        raw = symbolic.derivative(parse(text), wrt)
        if _ops(raw) < 2:  # 0 or a bare term: nothing to simplify, it would only flatter the figures
            continue
        found.append((text, tuple(wrt), "random"))
    for text, partial in TEXTBOOK:
        expr = parse(text)
        found.append((text, parse_partial(partial, symbolic.variables_of([expr])).wrt, "textbook"))
    return found


def _ops(expr) -> int:
    import sympy as sp

    return sp.count_ops(expr)


def old_simplified(expr):
    """The old path, as pdiff.symbolic.simplified was before issue 18: sympy.simplify (the caller caps it at 2 s)."""
    import sympy as sp

    from pdiff.symbolic import _cancel_sign_abs

    cancelled = _cancel_sign_abs(expr)
    candidate = sp.simplify(cancelled)
    if candidate.has(sp.Piecewise) and not cancelled.has(sp.Piecewise):
        candidate = cancelled
    best = min((candidate, cancelled), key=sp.count_ops)
    return best if sp.count_ops(best) < sp.count_ops(expr) else expr


def _clear_caches() -> None:
    from pdiff import simplify

    for cache in (simplify._OPS, simplify._NODE, simplify._EXPANDED, simplify._RESULT):
        cache.clear()


def per_answer(items) -> list[dict]:
    """For each item: old and new simplification time and count_ops, and the new whole job's time."""
    from pdiff import api, bounds, symbolic
    from pdiff.parse import parse

    rows = []
    for text, wrt, origin in items:
        expr = parse(text)
        raw = symbolic.derivative(expr, wrt)
        start = time.perf_counter()
        try:
            with bounds.alarm(OLD_SECONDS):
                old = old_simplified(raw)
        except TimeoutError:
            old = raw
        old_seconds = time.perf_counter() - start
        _clear_caches()
        start = time.perf_counter()
        new = symbolic.simplified(raw, time.monotonic() + api.SIMPLIFY_SECONDS, bounds.alarm)
        new_seconds = time.perf_counter() - start
        _clear_caches()
        point = {name: parse(POINT[name]) for name in sorted({s.name for s in expr.free_symbols} | set(wrt))}
        start = time.perf_counter()
        list(symbolic.entry_jobs([expr], [wrt], symbolic.identity_entries(1, 1), [point], api.SIMPLIFY_SECONDS,
                                 bounds.alarm))
        job_seconds = time.perf_counter() - start
        rows.append(dict(text=text, wrt=wrt, origin=origin, raw=_ops(raw), old=_ops(old), new=_ops(new),
                         old_s=old_seconds, new_s=new_seconds, job_s=job_seconds))
    return rows


def _pct(values, q) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(values) -> str:
    return (f"median {statistics.median(values) * 1000:.1f} ms, p95 {_pct(values, 0.95) * 1000:.1f} ms, "
            f"mean {statistics.mean(values) * 1000:.1f} ms, max {max(values) * 1000:.0f} ms")


_OLD_CHILD = """
import runpy, sys
from pdiff import api, bounds, symbolic
sys.path.insert(0, {scripts!r})
from bench_simplify import old_simplified
def simplified(expr, deadline=None, alarm=None):  # the old path: one 2 s cap per call
    try:
        with bounds.alarm({seconds!r}):
            return old_simplified(expr)
    except TimeoutError:
        return expr
symbolic.simplified = simplified
api.SIMPLIFY_SECONDS = {seconds!r}
sys.argv = ["pdiff", "shell"]
runpy.run_module("pdiff", run_name="__main__")
"""


def shell_run(lines: list[str], strategy: str) -> tuple[float, int]:
    """Wall time and exit status of one `pdiff shell` process answering all lines."""
    env = {**os.environ, "PDIFF_SERVER": "0"}
    if strategy == "old":
        command = [sys.executable, "-c", _OLD_CHILD.format(scripts=str(ROOT / "scripts"), seconds=OLD_SECONDS)]
    else:
        command = [sys.executable, "-m", "pdiff", "shell"]
    if strategy == "no-symbolic":
        lines = [line + " --no-symbolic" for line in lines]
    # JSON shows the derivative, so it is simplified; plain lines at points show values only, and skip it
    lines = [line + (" --format plain" if strategy in ("plain", "no-symbolic") else " --format json") for line in lines]
    start = time.perf_counter()
    done = subprocess.run(command, input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ROOT, env=env)
    return time.perf_counter() - start, done.returncode


def shell_lines(items, count: int = 100) -> list[str]:
    lines = []
    for text, wrt, _origin in items[:count]:
        names = sorted({*wrt, *(n for n in POINT if n in text)})
        at = ",".join(f"{name}={POINT[name]}" for name in names)
        lines.append(f'diff "{text}" {partial_text(wrt)} --at {at}')
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100, help="random nested derivatives (default 100)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--no-shell", action="store_true", help="skip the 100 questions through `pdiff shell`")
    parser.add_argument("--no-old-shell", action="store_true", help="skip the shell run with the old strategy")
    parser.add_argument("--list", action="store_true", help="print the corpus and stop")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per derivative")
    args = parser.parse_args()

    from pdiff import api

    items = corpus(args.count, args.seed)
    if args.list:
        for text, wrt, origin in items:
            print(f"{origin:8s} {partial_text(wrt):12s} {text}")
        return
    print(f"corpus: {sum(o == 'random' for *_, o in items)} random nested mixed partials (seed {args.seed}) + "
          f"{sum(o == 'textbook' for *_, o in items)} textbook exercises; {os.cpu_count()} CPUs, python "
          f"{sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f} at the start; new budget "
          f"{api.SIMPLIFY_SECONDS:g} s per job, old cap {OLD_SECONDS:g} s")
    rows = per_answer(items)
    if args.verbose:
        for r in rows:
            print(f"  {r['old_s']:6.3f} s {r['new_s']:6.3f} s  ops raw {r['raw']:4d} old {r['old']:4d} "
                  f"new {r['new']:4d}  {partial_text(r['wrt'])} {r['text']}")
    for label, subset in (("all", rows), ("random", [r for r in rows if r["origin"] == "random"]),
                          ("textbook", [r for r in rows if r["origin"] == "textbook"])):
        no_longer = sum(r["new"] <= r["old"] for r in subset)
        shorter = sum(r["new"] < r["old"] for r in subset)
        print(f"\n{label} ({len(subset)} derivatives)")
        print(f"  simplify, old (sympy.simplify, {OLD_SECONDS:g} s cap): {_ms([r['old_s'] for r in subset])}; "
              f"total {sum(r['old_s'] for r in subset):.1f} s")
        print(f"  simplify, new (staged):                 {_ms([r['new_s'] for r in subset])}; "
              f"total {sum(r['new_s'] for r in subset):.1f} s")
        print(f"  whole symbolic job, new (derivative, exact value, simplification): {_ms([r['job_s'] for r in subset])}")
        print(f"  ratio old/new: median {statistics.median(r['old_s'] for r in subset) / statistics.median(r['new_s'] for r in subset):.1f}x, "
              f"total {sum(r['old_s'] for r in subset) / sum(r['new_s'] for r in subset):.1f}x")
        print(f"  count_ops new <= old: {no_longer}/{len(subset)} ({100 * no_longer / len(subset):.0f} %), "
              f"strictly shorter {shorter}, longer {len(subset) - no_longer}; total ops raw "
              f"{sum(r['raw'] for r in subset)}, old {sum(r['old'] for r in subset)}, new {sum(r['new'] for r in subset)}")
    worse = [r for r in rows if r["new"] > r["old"]]
    if worse:
        print("\nlonger than the old path:")
        for r in worse:
            print(f"  ops old {r['old']} new {r['new']} (raw {r['raw']}): {partial_text(r['wrt'])} {r['text']}")
    if args.no_shell:
        return
    lines = shell_lines(items)
    print(f"\n{len(lines)} questions through one `pdiff shell` process (diff with --at; new and old: --format json, "
          "which shows the simplified derivative; plain: values only, no simplification):")
    figures = {}
    for strategy in ("new", "plain", "no-symbolic") + (() if args.no_old_shell else ("old",)):
        seconds, code = shell_run(lines, strategy)
        figures[strategy] = seconds
        print(f"  {strategy:12s} {seconds:6.2f} s wall (exit status {code})")
    if "old" in figures:
        print(f"  old/new: {figures['old'] / figures['new']:.1f}x")
    print(f"  load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
