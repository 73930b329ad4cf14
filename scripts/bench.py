#!/usr/bin/env python
"""Benchmark pdiff's many-points engine against the usual alternatives, on the same points (not a test).

    python scripts/bench.py                          # N = 1e4, 1e6, 1e7; all cases; the CLI on a 1e6-row CSV
    python scripts/bench.py --sizes 1e4,1e5 --cli-rows 1e5   # a quick run
    python scripts/bench.py --device cuda --sizes 1e6,1e8 --methods pdiff,pdiff-ad,torch-vmap --cli-rows ''
                                                     # GPU throughput (points stream from host memory)

Each (case, method, N) runs in a fresh subprocess, so "peak" is that process's peak RSS (imports included)
and "Δpeak" the growth over its RSS after imports and set-up. Every method sees the same points: one block of
min(N, 2^20) seeded random points, evaluated N / block times; results are reduced to a checksum that must agree
with SymPy's. Set-up (symbolic differentiation, lowering, lambdify, JIT compilation) is timed apart: "eval" is
the evaluation alone, after one warm-up call on a small batch.

Methods:
  pdiff        StreamPlan.run: autograd partials AND the lowered symbolic derivative AND their comparison
  pdiff-ad     the same with --no-symbolic: autograd partials only
  sympy-numpy  sympy.diff + lambdify(modules="numpy") on the whole block
  torch-vmap   torch.func: vmap(grad(grad(f))) / vmap(hessian(f)) of lambdify(modules="torch")
  jax          jax.jit(jax.vmap(grad(grad(f)))) in float64, when JAX is installed
  loop         a per-point torch autograd loop as the seed documents write it: timed on a few hundred points
               and extrapolated to N (marked ~)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = 1 << 20
LOOP_POINTS = 300

HESSIAN_VARS = [f"x{i}" for i in range(10)]
CASES = {
    "d2f/dxdy": dict(expr="x^2 sin(y) + y^3 cos(x)", vars=["x", "y"], partials=[("d2f/dxdy", ("y", "x"))]),
    "hessian10": dict(
        expr=" + ".join(f"x{i}^2 sin(x{(i + 1) % 10})" for i in range(10)) + " + cos(x0 x9)",
        vars=HESSIAN_VARS,
        partials=[(f"f_x{i}x{j}", (f"x{i}", f"x{j}")) for i in range(10) for j in range(10)]),
    "d3f/dx2dy": dict(expr="exp(x y) sin(x + y^2)", vars=["x", "y"], partials=[("d3f/dx2dy", ("y", "x", "x"))]),
}


# ------------------------------------------------------------------------------------------- one measurement


def _points(case, n):
    import numpy as np

    rng = np.random.default_rng(0)
    return {v: rng.uniform(-1.5, 1.5, n) for v in case["vars"]}


def _sympy(case):
    import sympy as sp

    sys.path.insert(0, ROOT)
    from pdiff.parse import parse

    expr = parse(case["expr"])
    symbols = [sp.Symbol(v, real=True) for v in case["vars"]]
    return expr, symbols


def _make_pdiff(case, symbolic_side, device):
    import numpy as np

    from pdiff import sources, stream

    expr, _ = _sympy(case)
    plan = stream.StreamPlan([expr], case["partials"], variables=case["vars"], device=device, timeout=600,
                             symbolic_side=symbolic_side)

    def evaluate(columns, reps):
        n = len(next(iter(columns.values())))

        def read(size):  # the same block `reps` times, in pdiff's own chunk size
            for r in range(reps):
                for start in range(0, n, size):
                    stop = min(n, start + size)
                    yield sources.Chunk(r * n + start, stop - start,
                                        {v: c[start:stop] for v, c in columns.items()})

        source = sources.PointSource("bench", "bench", case["vars"], case["vars"], read)
        total = 0.0
        for values in plan.run(source, reuse_outputs=True):  # as the CLI runs it
            total += sum(float(np.sum(a)) for a in values.autograd)
        assert plan.summary.exit_code == 0 or not symbolic_side, plan.summary.problems
        return total

    return evaluate


def _make_sympy_numpy(case):
    import numpy as np
    import sympy as sp

    expr, symbols = _sympy(case)
    index = {v: s for v, s in zip(case["vars"], symbols)}
    derivatives = [sp.diff(expr, *(index[v] for v in wrt)) for _, wrt in case["partials"]]
    function = sp.lambdify(symbols, derivatives, modules="numpy")

    def evaluate(columns, reps):
        n = len(next(iter(columns.values())))
        args = [columns[v] for v in case["vars"]]
        total = 0.0
        for _ in range(reps):
            total += sum(float(np.sum(np.broadcast_to(value, (n,)))) for value in function(*args))
        return total

    return evaluate


def _nested(grad, function, wrt, names):
    for name in wrt:  # application order: innermost derivative first
        function = grad(function, argnums=names.index(name))
    return function


def _make_torch_vmap(case, device):
    import sympy as sp
    import torch
    from torch.func import grad, hessian, vmap

    expr, symbols = _sympy(case)
    scalar = sp.lambdify(symbols, expr, modules="torch")
    if case is CASES["hessian10"]:
        hess = vmap(hessian(lambda v: scalar(*v)))

        def batch(args):
            return [hess(torch.stack(args, dim=1))]
    else:
        functions = [vmap(_nested(grad, scalar, wrt, case["vars"])) for _, wrt in case["partials"]]

        def batch(args):
            return [f(*args) for f in functions]

    def evaluate(columns, reps):
        args = [torch.from_numpy(columns[v]).to(device) for v in case["vars"]]  # once: the points stay there
        total = 0.0
        for _ in range(reps):
            total += sum(float(t.sum()) for t in batch(args))
        return total

    return evaluate


def _make_jax(case):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import sympy as sp

    expr, symbols = _sympy(case)
    scalar = sp.lambdify(symbols, expr, modules="jax")
    if case is CASES["hessian10"]:
        hess = jax.jit(jax.vmap(jax.hessian(lambda v: scalar(*v))))

        def batch(args):
            return [hess(jnp.stack(args, axis=1))]
    else:
        functions = [jax.jit(jax.vmap(_nested(jax.grad, scalar, wrt, case["vars"])))
                     for _, wrt in case["partials"]]

        def batch(args):
            return [f(*args) for f in functions]

    def evaluate(columns, reps):
        args = [jnp.asarray(columns[v]) for v in case["vars"]]
        total = 0.0
        for _ in range(reps):
            total += sum(float(jnp.sum(t)) for t in batch(args))
        return total

    return evaluate


def _make_loop(case):
    import sympy as sp
    import torch

    expr, symbols = _sympy(case)
    scalar = sp.lambdify(symbols, expr, modules="torch")

    def evaluate(columns, reps):
        n = len(next(iter(columns.values())))
        total = 0.0
        for i in range(n):
            point = [torch.tensor(float(columns[v][i]), dtype=torch.float64, requires_grad=True)
                     for v in case["vars"]]
            f = scalar(*point)
            if case is CASES["hessian10"]:
                first = torch.autograd.grad(f, point, create_graph=True)
                for g in first:
                    total += sum(float(h) for h in torch.autograd.grad(g, point, retain_graph=True,
                                                                        allow_unused=True) if h is not None)
                continue
            for _, wrt in case["partials"]:
                value = f
                for k, name in enumerate(wrt):
                    (value,) = torch.autograd.grad(value, point[case["vars"].index(name)],
                                                   create_graph=k < len(wrt) - 1)
                total += float(value)
        return total * reps

    return evaluate


# (case, device) → evaluate(columns, reps); sympy-numpy, jax (a CPU build here) and loop run on the CPU whatever --device
MAKERS = {"pdiff": lambda c, d: _make_pdiff(c, True, d), "pdiff-ad": lambda c, d: _make_pdiff(c, False, d),
          "sympy-numpy": lambda c, d: _make_sympy_numpy(c), "torch-vmap": _make_torch_vmap,
          "jax": lambda c, d: _make_jax(c), "loop": lambda c, d: _make_loop(c)}


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc: unlike ru_maxrss, not inherited across exec
    from the (larger) parent."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def measure(case_name: str, method: str, n: int, repeat: int, device: str = "cpu") -> dict:
    """Runs inside the child process: set-up, warm-up, then the timed evaluation of N points."""
    sys.path.insert(0, ROOT)
    import numpy as np  # noqa: F401
    import torch  # noqa: F401  (every method pays the same imports before the baseline)

    case = CASES[case_name]
    started = time.perf_counter()
    evaluate = MAKERS[method](case, device)
    block = min(n, BLOCK) if method != "loop" else min(n, LOOP_POINTS)
    columns = _points(case, block)
    evaluate(_points(case, min(block, 1024)), 1)  # warm-up: JIT compilation, caches
    setup = time.perf_counter() - started
    base = _status_mb("VmRSS")
    best = float("inf")
    for _ in range(repeat if method != "loop" else 1):
        tick = time.perf_counter()
        checksum = evaluate(columns, 1 if method == "loop" else n // block)
        best = min(best, time.perf_counter() - tick)
    scale = n / block if method == "loop" else 1.0
    peak = _status_mb("VmHWM")
    return {"case": case_name, "method": method, "n": n, "seconds": best * scale, "extrapolated": scale != 1.0,
            "setup": setup, "peak_mb": peak, "delta_mb": max(0.0, peak - base), "checksum": checksum * scale}


# ------------------------------------------------------------------------------------------- the CLI runs


SCRIPT = '''
import sys, numpy as np, sympy as sp
x, y = sp.symbols("x y", real=True)
f = x**2*sp.sin(y) + y**3*sp.cos(x)
d = sp.lambdify((x, y), sp.diff(f, y, x), "numpy")
data = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
out = np.column_stack([data, d(data[:, 0], data[:, 1])])
np.savetxt(sys.stdout.buffer, out, delimiter=",", header="x,y,d2f/dxdy", comments="")
'''


_LAUNCHER = """
import os, sys, time
tick = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - tick, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def _timed(command: list[str], env=None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one whole process, its stdout thrown away.

    Linux keeps a process's peak RSS across exec, so the command is started from a small launcher process,
    not from this (large) one.
    """
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *command], env=env, capture_output=True, text=True)
    seconds, peak_kb, code = done.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"{command[:4]} failed with {code}: {done.stderr[-300:]}")
    return float(seconds), int(peak_kb) / 1024


def cli_rows(rows: int, directory: str) -> list[dict]:
    import numpy as np

    path = os.path.join(directory, f"points-{rows}.csv")
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write("x,y\n")
        for start in range(0, rows, 1_000_000):
            block = rng.uniform(-1.5, 1.5, (min(1_000_000, rows - start), 2))
            f.write("".join("%r,%r\n" % tuple(pair) for pair in block.tolist()))
    env = {**os.environ, "PYTHONPATH": ROOT}
    script = os.path.join(directory, "sympy_numpy.py")
    with open(script, "w") as f:
        f.write(SCRIPT)
    runs = []
    for label, command in [
        ("pdiff diff --points (csv out: x,y + 4 columns)",
         [sys.executable, "-m", "pdiff", "diff", CASES["d2f/dxdy"]["expr"], "d2f/dxdy", "--points", path,
          "-f", "csv"]),
        ("pdiff diff --points --no-symbolic (x,y + 1 column)",
         [sys.executable, "-m", "pdiff", "diff", CASES["d2f/dxdy"]["expr"], "d2f/dxdy", "--points", path,
          "-f", "csv", "--no-symbolic"]),
        ("sympy+numpy script (loadtxt/savetxt: x,y + 1 column)", [sys.executable, script, path]),
    ]:
        seconds, peak = _timed(command, env)
        runs.append({"what": label, "rows": rows, "seconds": seconds, "peak_mb": peak})
    os.remove(path)
    return runs


# ------------------------------------------------------------------------------------------- the driver


def _machine() -> str:
    import numpy
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    try:
        import jax

        jax_version = jax.__version__
    except ImportError:
        jax_version = "not installed"
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"numpy {numpy.__version__}, jax {jax_version}, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.2f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e4,1e6,1e7", help="point counts, comma-separated")
    parser.add_argument("--max-n", type=float, default=None, help="skip sizes above this")
    parser.add_argument("--hessian-max-n", type=float, default=1e6,
                        help="largest N for the 10-variable Hessian (100 outputs per point)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--methods", default=",".join(MAKERS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli-rows", default="1e6", help="CSV sizes for the whole-process runs ('' for none)")
    parser.add_argument("--device", default="cpu", help="where pdiff and torch-vmap run (cpu, cuda)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, method, n, repeat, device = args.child
        print(json.dumps(measure(case, method, int(n), int(repeat), device)))
        return

    try:
        import jax  # noqa: F401
        methods = args.methods.split(",")
    except ImportError:
        methods = [m for m in args.methods.split(",") if m != "jax"]
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    if args.max_n:
        sizes = [n for n in sizes if n <= args.max_n]
    print(f"machine: {_machine()}")
    print(f"command: {' '.join(sys.argv)}\n")
    results = []
    for case in args.cases.split(","):
        print(f"## {case}: {CASES[case]['expr']} ({len(CASES[case]['partials'])} partials per point)")
        print(f"{'N':>10} {'method':<12} {'eval s':>10} {'x pdiff':>8} {'Mpts/s':>8} {'peak MB':>8} "
              f"{'Δpeak MB':>9} {'setup s':>8}  checksum")
        for n in sizes:
            if case == "hessian10" and n > args.hessian_max_n:
                continue
            rows = []
            for method in methods:
                done = subprocess.run([sys.executable, __file__, "--child", case, method, str(n), str(args.repeat),
                                       args.device], capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{n:>10} {method:<12} failed: {done.stderr.strip().splitlines()[-1:]}")
                    continue
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            reference = next((r for r in rows if r["method"] == "pdiff"), None)
            oracle = next((r for r in rows if r["method"] == "sympy-numpy"), None)
            for r in rows:
                ratio = r["seconds"] / reference["seconds"] if reference else float("nan")
                agree = ("" if not oracle or r["method"] == "loop" else
                         " ok" if abs(r["checksum"] - oracle["checksum"]) <= 1e-9 * max(1.0, abs(oracle["checksum"]))
                         else " MISMATCH")
                mark = "~" if r["extrapolated"] else " "
                print(f"{n:>10} {r['method']:<12} {mark}{r['seconds']:>9.4f} {ratio:>8.2f} "
                      f"{n / r['seconds'] / 1e6:>8.1f} {r['peak_mb']:>8.0f} {r['delta_mb']:>9.0f} {r['setup']:>8.2f}  "
                      f"{r['checksum']:.10g}{agree}")
                results.append(r)
        print()
    cli = []
    if args.cli_rows:
        print("## whole process on a CSV file (d2f/dxdy of x^2 sin(y) + y^3 cos(x)), output to /dev/null")
        with tempfile.TemporaryDirectory() as directory:
            for rows in (int(float(s)) for s in args.cli_rows.split(",")):
                for run in cli_rows(rows, directory):
                    print(f"{run['rows']:>10} {run['what']:<55} {run['seconds']:>8.2f} s {run['peak_mb']:>8.0f} MB")
                    cli.append(run)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": _machine(), "results": results, "cli": cli}, f, indent=1)


if __name__ == "__main__":
    main()
