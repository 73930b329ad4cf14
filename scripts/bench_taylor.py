"""Taylor mode against nested reverse mode (torch autograd), JAX jet and SymPy diff + lambdify.

    python scripts/bench_taylor.py                 # the table for BENCHMARKS.md
    python scripts/bench_taylor.py --crossover     # orders 1..8 at 1, 10^4, 10^6 points: where Taylor mode wins

Cases: d^n/dx^n of exp(sin x)/(1+x^2) at x in [-2, 2], and the mixed (n/2, n/2) partial of exp(x y) sin(x + y),
n = 4, 10, 20, 40, at 1, 10^4 and 10^6 points. Each figure is the best of a few runs of the numeric work alone
(lowering and imports excluded; SymPy's column includes its diff, which is what a call would pay). A method that
would take longer than --budget seconds (predicted from the previous order: nested reverse mode grows ~4x per
order) is reported as "> budget" and not run. JAX is used only when it is installed (`pip install jax`); pdiff
does not depend on it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import sympy as sp
import torch

from pdiff import taylor
from pdiff.autodiff import partials_at
from pdiff.lower import lower
from pdiff.parse import parse

CASES = {"univariate": ("exp(sin(x))/(1+x^2)", ["x"]), "mixed": ("exp(x y) sin(x + y)", ["x", "y"])}


def wrt_of(case: str, n: int) -> tuple[str, ...]:
    return ("x",) * n if case == "univariate" else ("y",) * (n // 2) + ("x",) * (n - n // 2)


def columns_for(names, size: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {name: torch.rand(size, generator=generator, dtype=torch.float64) * 4 - 2 for name in names}


def best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if times[-1] > 2:
            break
    return min(times)


def run_blocks(fn, columns, block: int):
    size = next(iter(columns.values())).shape[0]
    for start in range(0, size, block):
        fn({k: v[start:start + block] for k, v in columns.items()})


def jax_jet():
    try:
        import jax  # noqa: F401
        from jax.experimental import jet  # noqa: F401
    except ImportError:
        return None
    return True


def jet_time(case: str, n: int, size: int) -> float | None:
    import jax
    import jax.numpy as jnp
    from jax.experimental import jet

    jax.config.update("jax_enable_x64", True)
    xs = np.random.default_rng(0).uniform(-2, 2, size)
    if case == "univariate":
        def f(x):
            return jnp.exp(jnp.sin(x)) / (1 + x ** 2)

        def derivative(x):
            terms = [jnp.ones_like(x)] + [jnp.zeros_like(x)] * (n - 1)
            _, series = jet.jet(f, (x,), ((terms),))
            return series[-1]
        fn = jax.jit(derivative)
        x = jnp.asarray(xs)
        fn(x).block_until_ready()
        return best(lambda: fn(x).block_until_ready())
    return None  # jet propagates one direction: a mixed partial needs polarization over many directions


def sympy_time(case: str, n: int, size: int, budget: float) -> float | None:
    text, names = CASES[case]
    expr = parse(text)
    symbols = [sp.Symbol(name, real=True) for name in names]
    start = time.perf_counter()
    derivative = expr
    for name in wrt_of(case, n):
        derivative = sp.diff(derivative, sp.Symbol(name, real=True))
        if time.perf_counter() - start > budget:
            return None
    fn = sp.lambdify(symbols, derivative, "numpy")
    points = [np.random.default_rng(0).uniform(-2, 2, size) for _ in names]
    fn(*points)
    return time.perf_counter() - start


def measure(case: str, n: int, size: int, budget: float, previous: dict) -> dict:
    text, names = CASES[case]
    program = lower(parse(text), names)
    columns = columns_for(names, size)
    wrt = [wrt_of(case, n)]
    out = {}
    smaller = previous.get((case, n, "taylor"))
    if smaller and smaller[0] * size / smaller[1] > budget:
        out["taylor"] = None  # predicted from the last size: linear in the points
    else:
        out["taylor"] = best(lambda: taylor.partials_at(program, columns, wrt), 1 if size > 10**5 else 3)
        previous[(case, n, "taylor")] = (out["taylor"], size)
    key = (case, size)
    predicted = previous.get(key, 0.0) * 4 ** (n - previous.get((case, size, "n"), n))
    if predicted > budget or previous.get((case, size, "over")):
        out["reverse"] = None
        previous[(case, size, "over")] = True
    else:
        block = min(size, 1 << 15)
        out["reverse"] = best(lambda: run_blocks(lambda c: partials_at(program, c, wrt), columns, block), 1)
        previous[key], previous[(case, size, "n")] = out["reverse"], n
        if out["reverse"] > budget:
            previous[(case, size, "over")] = True
    # jet at n = 40 and 10^4 points was killed for memory (24 GB): run it where it fits
    out["jet"] = (jet_time(case, n, size) if jax_jet() and case == "univariate" and (n <= 20 or size == 1)
                  else None)
    out["sympy"] = sympy_time(case, n, size, budget) if n <= 20 else None
    return out


def fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--orders", default="4,10,20,40")
    parser.add_argument("--sizes", default="1,10000,1000000")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.crossover:
        for case, (text, names) in CASES.items():
            for size in sizes:
                row = []
                for n in range(1, 9):
                    program = lower(parse(text), names)
                    columns = columns_for(names, size)
                    wrt = [wrt_of(case, n)] if case == "univariate" or n > 1 else [("x",)]
                    t = best(lambda p=program, c=columns, w=wrt: taylor.partials_at(p, c, w))
                    r = best(lambda p=program, c=columns, w=wrt: run_blocks(
                        lambda block: partials_at(p, block, w), c, 1 << 15))
                    row.append(f"n={n}: taylor {fmt(t)} reverse {fmt(r)}")
                print(case, size, *row, sep="\n  ", flush=True)
        return
    print(f"JAX jet: {'installed' if jax_jet() else 'not installed (pip install jax failed or was not tried)'}")
    print("| case | n | points | Taylor mode | nested reverse | JAX jet | SymPy diff+lambdify |")
    print("|---|---|---|---|---|---|---|")
    previous: dict = {}
    for case in CASES:
        for size in sizes:
            for n in [int(o) for o in args.orders.split(",")]:
                out = measure(case, n, size, args.budget, previous)
                reverse = fmt(out["reverse"]) if out["reverse"] is not None else f"> {args.budget:g} s"
                sympy_cell = fmt(out["sympy"]) if out["sympy"] is not None else (
                    "not run (n > 20)" if n > 20 else f"> {args.budget:g} s")
                jet_cell = fmt(out["jet"]) if out["jet"] is not None else (
                    "n/a (one direction)" if case == "mixed" else "not installed" if not jax_jet()
                    else "out of memory (24 GB)" if n > 20 else "—")
                taylor_cell = fmt(out["taylor"]) if out["taylor"] is not None else f"> {args.budget:g} s"
                print(f"| {case} | {n} | {size:,} | {taylor_cell} | {reverse} | {jet_cell} | {sympy_cell} |",
                      flush=True)


if __name__ == "__main__":
    main()
