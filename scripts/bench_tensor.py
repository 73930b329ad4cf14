"""Matrix-calculus gradients: pdiff's numeric side against hand-written torch and JAX, in one run.

    python scripts/bench_tensor.py [--sizes 10,100,1000] [--repeat 15] [--threads 1] [--no-cli] [--no-profile]

Cases (A, W1: n×n; float64 everywhere, as pdiff's default):
- lsq: ∂/∂x ‖A x − b‖²                                  (`norm(A @ x - b)^2`)
- mlp: ∂/∂W1 mean((W2 tanh(W1 x + b1) + b2 − y)²)        (W2: 10×n; a 2-layer network's loss, one sample)

Methods, all on the same tensors, checked to give the same gradient (allclose) before timing:
- pdiff: pdiff.tensor.compute.gradient_function(expression, wrt, shapes) (read once; the tree walked per call);
- torch.func: torch.func.grad of the same function written by hand in torch;
- autograd: torch.autograd.grad on the hand-written function (requires_grad + one backward);
- jax: jax.jit(jax.grad(f)) with x64 enabled, when jax is importable;
- prototypes of fixes to pdiff's per-call overhead, built here from pdiff's pieces (pdiff's files untouched):
  pdiff+table: TorchOps.apply served from a dispatch table built once (it rebuilds a dict of ~20 entries per node
  per call); pdiff+closure: the tree compiled once into closures (no tree walk, no id() dict per call);
  pdiff+autograd: torch.autograd.grad instead of torch.func.grad over pdiff's evaluate(); pdiff+clos+ag: both.

Times are this process's CPU time (--clock cpu, the default: on a shared machine, time spent descheduled is
not counted; --clock wall for elapsed time), the median over --repeat rounds; each round runs every method (interleaved, so CPU noise on a shared
machine hits all methods alike) for a batch of calls lasting ≥ --batch-ms, after a warm-up. The ratio is the median's, to the
fastest of pdiff, torch.func, autograd and jax at that size (prototypes, in brackets, are shown against it too; the
min column is the least disturbed round, for a loaded machine). The issue's target: pdiff within 1.5× of the fastest.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import time

TARGET = 1.5
HIDDEN_OUT = 10  # rows of W2

CASES = {
    "lsq": {
        "expression": "norm(A @ x - b)^2",
        "wrt": "x",
        "shapes": lambda n: {"A": (n, n), "x": (n,), "b": (n,)},
    },
    "mlp": {
        "expression": "mean((W2 @ tanh(W1 @ x + b1) + b2 - y)^2)",
        "wrt": "W1",
        "shapes": lambda n: {"W1": (n, n), "x": (n,), "b1": (n,), "W2": (HIDDEN_OUT, n), "b2": (HIDDEN_OUT,),
                             "y": (HIDDEN_OUT,)},
    },
}


def torch_function(case: str):
    """The same function, by hand in torch, with the same operations pdiff's tree applies."""
    import torch

    if case == "lsq":
        return lambda x, A, b: torch.linalg.vector_norm(A @ x - b) ** 2
    return lambda W1, x, b1, W2, b2, y: torch.mean((W2 @ torch.tanh(W1 @ x + b1) + b2 - y) ** 2)


def jax_function(case: str):
    import jax.numpy as jnp

    if case == "lsq":
        return lambda x, A, b: jnp.linalg.norm(A @ x - b) ** 2
    return lambda W1, x, b1, W2, b2, y: jnp.mean((W2 @ jnp.tanh(W1 @ x + b1) + b2 - y) ** 2)


# ---- the prototypes (monkeypatching, for measurement only)

def _table(torch):
    """What TorchOps.apply rebuilds on every call (a dict of ~20 entries, with lambdas), built once."""
    return {
        "add": torch.add, "sub": torch.sub, "mul": torch.mul, "emul": torch.mul, "div": torch.div,
        "ediv": torch.div, "pow": torch.pow, "epow": torch.pow, "matmul": torch.matmul, "dot": torch.dot,
        "neg": torch.neg, "sum": torch.sum, "mean": torch.mean, "prod": torch.prod,
        "norm": torch.linalg.vector_norm, "tr": torch.trace, "trace": torch.trace, "det": torch.linalg.det,
        "logdet": torch.logdet, "inv": torch.linalg.inv, "diag": torch.diag, "sigmoid": torch.sigmoid,
        "relu": torch.relu, "softplus": torch.nn.functional.softplus,
        "softmax": lambda u: torch.softmax(u, -1), "log_softmax": lambda u: torch.log_softmax(u, -1),
        "logsumexp": lambda u: torch.logsumexp(u.reshape(-1), 0),
        "transpose": lambda u: u.mT if u.dim() == 2 else u,
    }


def table_gradient_function(expression, wrt, shapes):
    """pdiff's gradient_function with TorchOps.apply served from a table built once (prototype 1)."""
    import torch

    from pdiff.tensor import backends, compute

    table = _table(torch)
    original = backends.TorchOps.apply

    def apply(self, op, args):
        function = table.get(op)
        return function(*args) if function is not None else original(self, op, args)

    g = compute.gradient_function(expression, wrt, shapes)

    def call(env):
        saved, backends.TorchOps.apply = backends.TorchOps.apply, apply
        try:
            return g(env)
        finally:
            backends.TorchOps.apply = saved
    return call


def compile_closures(expression, shapes):
    """The tree compiled once into nested closures over torch functions: per call, no tree walk, no values dict
    keyed by id(), no dispatch; element-wise scalar functions torch has (tanh, exp, ...) called directly rather
    than through the lowered SymPy program. Returns f(env) → the value."""
    import torch

    from pdiff.tensor import language
    from pdiff.tensor.backends import TorchOps, _lowered
    from pdiff.tensor.shapes import infer

    program = language.read(expression, set(shapes))
    infer(program, shapes)
    ops = TorchOps(torch.float64, torch.device("cpu"))
    table = _table(torch)
    direct = {name: getattr(torch, name) for name in ("exp", "log", "tanh", "sin", "cos", "sqrt", "abs", "tan",
                                                      "sinh", "cosh", "atan", "asin", "acos")}

    def build(node):
        if isinstance(node, language.Number):
            constant = ops.number(node.value)
            return lambda env: constant
        if isinstance(node, language.Name):
            name = node.name
            return lambda env: env[name]
        if isinstance(node, language.Index):
            base, index = build(node.base), node.indexes
            return lambda env: base(env)[index]
        if node.op in ("pow", "epow") and isinstance(node.args[1], language.Number):
            base, exponent = build(node.args[0]), node.args[1].value
            if exponent == 2:
                def square(env):
                    value = base(env)
                    return value * value
                return square
            return lambda env: ops.power_by(base(env), exponent)
        args = [build(a) for a in node.args]
        function = table.get(node.op) or direct.get(node.op)
        if function is None:
            lowered = _lowered(node.op)
            function = lambda u: lowered({"t": u})
        if len(args) == 1:
            (a,) = args
            return lambda env: function(a(env))
        if len(args) == 2:
            a, b = args
            return lambda env: function(a(env), b(env))
        return lambda env: function(*(a(env) for a in args))

    return build(program.root)


def closure_gradient_function(expression, wrt, shapes):
    """Prototype 2: the closures, differentiated by torch.func.grad as pdiff does now."""
    from torch.func import grad

    root = compile_closures(expression, shapes)
    derivative = grad(lambda x, env: root({**env, wrt: x}).reshape(()))
    return lambda env: derivative(env[wrt], env)


def autograd_gradient_function(expression, wrt, shapes, closures: bool):
    """Prototype 3: one reverse pass with torch.autograd.grad instead of torch.func.grad (which pays for its
    functional transforms on every call: wrapping, pytrees, a level of dispatch per operation), over pdiff's own
    evaluate() (closures=False) or over the compiled closures (closures=True)."""
    import torch

    from pdiff.tensor import language
    from pdiff.tensor.backends import TorchOps, evaluate

    if closures:
        forward = compile_closures(expression, shapes)
    else:
        program = language.read(expression, set(shapes))
        ops = TorchOps(torch.float64, torch.device("cpu"))
        forward = lambda env: evaluate(program, env, ops)

    def call(env):
        x = env[wrt].detach().requires_grad_(True)
        with torch.enable_grad():
            y = forward({**env, wrt: x}).reshape(())
        (g,) = torch.autograd.grad(y, x, allow_unused=True)
        return torch.zeros_like(x) if g is None else g
    return call


# ---- timing

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def measure(methods: dict, repeat: int, batch_seconds: float) -> dict[str, tuple[float, float]]:
    """(median, min) seconds per call of each method; rounds interleave the methods, in a new order each round."""
    numbers = {}
    for name, call in methods.items():
        for _ in range(3):  # warm-up (jit compiles here)
            call()
        start, count = clock(), 0
        while clock() - start < batch_seconds / 4 or count < 1:
            call()
            count += 1
        per_call = (clock() - start) / count
        numbers[name] = max(1, int(batch_seconds / per_call))
    samples: dict[str, list[float]] = {name: [] for name in methods}
    order, shuffle = list(methods), random.Random(0).shuffle
    for _ in range(repeat):
        shuffle(order)  # no method always runs first (after another's memory traffic) or last
        for name in order:
            call, number = methods[name], numbers[name]
            start = clock()
            for _ in range(number):
                call()
            samples[name].append((clock() - start) / number)
    return {name: (statistics.median(values), min(values)) for name, values in samples.items()}


def shown_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def try_jax(threads: int):
    if threads:
        os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                                           f"intra_op_parallelism_threads={threads}")
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return jax


def methods_for(case: str, n: int, env: dict, jax, prototypes: bool) -> tuple[dict, dict]:
    """name → zero-argument call returning the gradient (as torch or jax array), and the gradients once."""
    import torch

    from pdiff.tensor.compute import gradient_function

    spec = CASES[case]
    expression, wrt, shapes = spec["expression"], spec["wrt"], spec["shapes"](n)
    others = {k: v for k, v in env.items() if k != wrt}
    f = torch_function(case)

    def f_wrt(v, **rest):
        return f(**{wrt: v}, **rest)

    pdiff_gradient = gradient_function(expression, wrt, shapes)
    func_gradient = torch.func.grad(f_wrt)

    def autograd_call():
        x = env[wrt].detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f_wrt(x, **others), x)
        return g

    methods = {
        "pdiff": lambda: pdiff_gradient(env),
        "torch.func": lambda: func_gradient(env[wrt], **others),
        "autograd": autograd_call,
    }
    if prototypes:
        table = table_gradient_function(expression, wrt, shapes)
        closure = closure_gradient_function(expression, wrt, shapes)
        methods["pdiff+table"] = lambda: table(env)
        methods["pdiff+closure"] = lambda: closure(env)
        on_autograd = autograd_gradient_function(expression, wrt, shapes, closures=False)
        both = autograd_gradient_function(expression, wrt, shapes, closures=True)
        methods["pdiff+autograd"] = lambda: on_autograd(env)
        methods["pdiff+clos+ag"] = lambda: both(env)
    if jax is not None:
        import jax.numpy as jnp

        jf = jax_function(case)
        jenv = {k: jnp.asarray(v.numpy()) for k, v in env.items()}
        jothers = {k: v for k, v in jenv.items() if k != wrt}
        jgrad = jax.jit(jax.grad(lambda v, rest: jf(**{wrt: v}, **rest)))
        methods["jax.jit(grad)"] = lambda: jgrad(jenv[wrt], jothers).block_until_ready()
    return methods


def verify(methods: dict) -> str:
    import numpy as np

    results = {name: np.asarray(call()) for name, call in methods.items()}
    reference = results["pdiff"]
    bad = [name for name, value in results.items()
           if value.shape != reference.shape or not np.allclose(value, reference, rtol=1e-9, atol=1e-12)]
    if bad:
        raise SystemExit(f"the methods disagree with pdiff: {', '.join(bad)}")
    return f"all {len(results)} agree (allclose rtol=1e-9)"


def values_for(case: str, n: int):
    import torch

    generator = torch.Generator().manual_seed(n)
    return {name: torch.randn(shape, generator=generator, dtype=torch.float64) / (shape[-1] ** 0.5 if
                                                                                  len(shape) == 2 else 1)
            for name, shape in CASES[case]["shapes"](n).items()}


def profile_pdiff(n: int, calls: int) -> str:
    """Where pdiff's per-call time goes at a small size (cProfile, own time, the top lines)."""
    from pdiff.tensor.compute import gradient_function

    spec = CASES["lsq"]
    shapes = spec["shapes"](n)
    env = values_for("lsq", n)
    g = gradient_function(spec["expression"], spec["wrt"], shapes)
    for _ in range(20):
        g(env)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        g(env)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(12)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    return "\n".join(lines[start:start + 13])


def forward_overhead(n: int, repeat: int, batch_seconds: float) -> dict[str, float]:
    """The forward pass alone (no gradient): pdiff's tree walk against the same expression by hand."""
    import torch

    from pdiff.tensor import language
    from pdiff.tensor.backends import TorchOps, evaluate

    spec = CASES["mlp"]
    env = values_for("mlp", n)
    program = language.read(spec["expression"], set(env))
    ops = TorchOps(torch.float64, torch.device("cpu"))
    f = torch_function("mlp")
    with torch.no_grad():
        times = measure({"pdiff evaluate()": lambda: evaluate(program, env, ops), "by hand": lambda: f(**env)},
                        repeat, batch_seconds)
    return {name: median for name, (median, _) in times.items()}


def cli_once() -> str:
    executable = shutil.which("pdiff")
    command = ([executable] if executable else [sys.executable, "-m", "pdiff"]) + [
        "grad", "norm(A @ x - b)^2", "--wrt", "x", "--at", "A=[[1,2],[3,4]],x=[1,0],b=[0,1]", "--format", "json"]
    lines = []
    for extra in ([], ["--no-symbolic"]):
        start = time.perf_counter()
        done = subprocess.run(command + extra, check=False, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PDIFF_SERVER": "0"})  # in process: no server started or used
        seconds = time.perf_counter() - start
        try:
            gradient = json.loads(done.stdout)["results"][0]["autograd"]
        except (ValueError, KeyError, IndexError):
            gradient = f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[:200]}"
        lines.append(f"  pdiff grad 'norm(A @ x - b)^2' --wrt x --at 'A=[[1,2],[3,4]],x=[1,0],b=[0,1]' --format json"
                     f"{' ' + ' '.join(extra) if extra else ''}: {seconds:.2f} s (gradient {gradient})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--cases", default="lsq,mlp")
    parser.add_argument("--repeat", type=int, default=21, help="rounds; the median is reported")
    parser.add_argument("--batch-ms", type=float, default=20.0, help="calls per round last at least this long")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (all its threads; steadier on a shared machine), "
                             "wall: elapsed time")
    parser.add_argument("--threads", type=int, default=1, help="torch and XLA threads (0: their defaults)")
    parser.add_argument("--no-prototypes", action="store_true", help="skip the monkeypatched pdiff prototypes")
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    jax = try_jax(args.threads)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          + (f"jax {jax.__version__} (x64, cpu)" if jax is not None else "jax: not installed")
          + f"; float64; {args.clock} time, median of {args.repeat} rounds, batches ≥ {args.batch_ms:g} ms; {os.cpu_count()} CPUs")
    verdicts = []
    for case in args.cases.split(","):
        spec = CASES[case]
        print(f"\n{case}: gradient of {spec['expression']} w.r.t. {spec['wrt']}")
        print(f"  {'n':>5}  {'method':<15} {'median':>11} {'min':>11}  {'ratio':>6}")
        for n in sizes:
            env = values_for(case, n)
            methods = methods_for(case, n, env, jax, not args.no_prototypes)
            agreement = verify(methods)
            times = measure(methods, args.repeat, args.batch_ms / 1e3)
            fastest_name = min((k for k in times if not k.startswith("pdiff+")), key=lambda k: times[k][0])
            fastest = times[fastest_name][0]
            for name, (median, least) in sorted(times.items(), key=lambda item: item[1][0]):
                shown = f"({name})" if name.startswith("pdiff+") else name
                print(f"  {n:>5}  {shown:<15} {shown_time(median)} {shown_time(least)}  {median / fastest:5.2f}×")
            ratio = times["pdiff"][0] / fastest
            verdicts.append((case, n, ratio))
            print(f"  {'':>5}  {agreement}; pdiff at {ratio:.2f}× {fastest_name}, the fastest: "
                  f"{'meets' if ratio <= TARGET else 'misses'} the {TARGET}× target")
    met = [v for v in verdicts if v[2] <= TARGET]
    print(f"\ntarget (pdiff within {TARGET}× of the fastest): met in {len(met)} of {len(verdicts)} cases"
          + ("" if len(met) == len(verdicts) else ": missed at " + ", ".join(
              f"{c} n={n} ({r:.2f}×)" for c, n, r in verdicts if r > TARGET)))
    if not args.no_profile:
        small = sizes[0]
        forward = forward_overhead(small, args.repeat, args.batch_ms / 1e3)
        print(f"\nforward pass alone (mlp, n={small}): " + ", ".join(
            f"{k} {shown_time(v).strip()}" for k, v in forward.items())
              + f" → the tree walk costs {forward['pdiff evaluate()'] / forward['by hand']:.2f}× the hand-written "
                "forward")
        print(f"\nwhere pdiff's time goes (cProfile, lsq n={small}, 2000 calls, own time):")
        print(profile_pdiff(small, 2000))
    if not args.no_cli:
        print("\nthe whole CLI, once (PDIFF_SERVER=0: a cold process; start-up, parsing, both sides):")
        print(cli_once())


if __name__ == "__main__":
    main()
