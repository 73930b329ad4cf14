"""Hessian and Jacobian cost: pdiff's engine against the alternatives, in one run on the same points.

    python scripts/bench_matrix.py [--points 10000] [--variables 10] [--repeat 3]

Methods, for the Hessian of f(x1..xn) = Σ sin(x_i) x_{i+1}^2 + exp(x_1 x_n / n) at N points:
- pdiff: the prefix tree over one batched graph (n + 1 reverse passes), numeric side only;
- torch.func: vmap(hessian(f)) (forward-over-reverse);
- n² graphs: one fresh graph per entry (what the seed documents do, batched over points);
- per-point loop: torch.autograd.functional.hessian one point at a time (timed on a sample, extrapolated).
"""

from __future__ import annotations

import argparse
import time

import sympy as sp
import torch

from pdiff.autodiff import partials_at
from pdiff.lower import lower


def build(n: int):
    xs = sp.symbols(f"x1:{n + 1}", real=True)
    expr = sum(sp.sin(xs[i]) * xs[(i + 1) % n] ** 2 for i in range(n)) + sp.exp(xs[0] * xs[-1] / n)
    names = [s.name for s in xs]

    def f_torch(v):  # the same function written by hand for torch.func (v: 1-D tensor of n)
        total = sum(torch.sin(v[i]) * v[(i + 1) % n] ** 2 for i in range(n))
        return total + torch.exp(v[0] * v[-1] / n)

    return expr, names, f_torch


def timed(function, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--variables", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, size = args.variables, args.points
    torch.manual_seed(0)
    expr, names, f_torch = build(n)
    data = torch.rand(size, n, dtype=torch.float64)
    columns = {name: data[:, i].contiguous() for i, name in enumerate(names)}
    program = lower(expr, names)
    partials = [(b, a) for a in names for b in names]

    def pdiff_engine():
        return torch.stack(partials_at(program, columns, partials), dim=1).reshape(size, n, n)

    def func_vmap():
        return torch.func.vmap(torch.func.hessian(f_torch))(data)

    def separate_graphs():
        entries = []
        for a in names:
            for b in names:
                leaves = {k: v.clone().requires_grad_(True) for k, v in columns.items()}
                (first,) = torch.autograd.grad(program(leaves).sum(), leaves[b], create_graph=True)
                second = None
                if first.requires_grad:
                    (second,) = torch.autograd.grad(first.sum(), leaves[a], allow_unused=True)
                entries.append(torch.zeros(size, dtype=data.dtype) if second is None else second)
        return torch.stack(entries, dim=1).reshape(size, n, n)

    sample = min(size, 200)

    def per_point():
        return torch.stack([torch.autograd.functional.hessian(f_torch, data[i]) for i in range(sample)])

    t_pdiff, h_pdiff = timed(pdiff_engine, args.repeat)
    t_vmap, h_vmap = timed(func_vmap, args.repeat)
    t_graphs, h_graphs = timed(separate_graphs, 1)
    t_loop, h_loop = timed(per_point, 1)
    t_loop_all = t_loop * size / sample
    assert torch.allclose(h_pdiff, h_vmap, rtol=1e-10, atol=1e-10)
    assert torch.allclose(h_pdiff, h_graphs, rtol=1e-10, atol=1e-10)
    assert torch.allclose(h_pdiff[:sample], h_loop, rtol=1e-10, atol=1e-10)

    print(f"Hessian of {n} variables at {size} points, float64, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'method':<34}{'seconds':>10}{'ratio to pdiff':>16}")
    rows = [("pdiff (n+1 passes, one batch)", t_pdiff), ("torch.func vmap(hessian)", t_vmap),
            (f"n² = {n * n} separate graphs", t_graphs),
            (f"per-point loop (extrapolated from {sample})", t_loop_all)]
    for name, seconds in rows:
        print(f"{name:<34}{seconds:>10.4f}{seconds / t_pdiff:>16.1f}")


if __name__ == "__main__":
    main()
