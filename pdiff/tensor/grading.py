"""`pdiff check` for matrix calculus: is `(A + A.T) @ x` the gradient of `x.T @ A @ x` with respect to x?

The answer is compared with autograd's gradient at random sizes (each open size drawn anew per trial, distinct
where possible, so an identity that holds only for square matrices is caught) and random values (small integers,
then Gaussian floats). A wrong answer gets a counterexample, and a hint where the mistake has a known shape: the
gradient transposed (a layout mistake), or right only for symmetric matrices.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from pdiff import bounds
from pdiff.check_results import CheckReport, Counterexample, Shown, Verdict
from pdiff.errors import InputError
from pdiff.tensor import language, values
from pdiff.tensor.backends import TorchOps, evaluate
from pdiff.tensor.shapes import (
    Sizes,
    assumed_ranks,
    described,
    draw_sizes,
    infer,
    shape_text,
)

TRIALS = 8  # random sizes and values per answer
RTOL, ATOL = 1e-7, 1e-9


@dataclass
class _Trial:
    shapes: dict[str, tuple[int, ...]]
    values: dict  # name → float64 tensor
    expected: object  # autograd's gradient
    got: object  # the answer


def _shown(program: language.Program) -> Shown:
    text = language.to_text(program)
    return Shown(text, text)


def check(expression: str, answer: str, *, wrt=None, partial: str | None = None, var=None, seed: int = 0,
          timeout: float = bounds.DEFAULT_TIMEOUT, explain: bool = True) -> CheckReport:
    """Grade `answer` as the gradient of the scalar `expression` with respect to one vector or matrix variable.

    `explain`: name the right gradient in the reason of an incorrect answer, when a closed form is found."""
    import torch

    declared = values.declarations(var)
    wrt_name = _wrt(wrt, partial)
    names = set(declared) | ({wrt_name} if wrt_name else set())
    f = language.read(expression, names)
    g = language.read(answer, names | set(f.names))
    if wrt_name is None:
        if len(f.names) != 1:
            raise InputError(f"name the variable with --wrt (one of {', '.join(f.names)})")
        wrt_name = f.names[0]
    if wrt_name not in f.names:
        raise InputError(f"--wrt {wrt_name}: not a variable of the expression ({', '.join(f.names)})")
    unknown = sorted(set(g.names) - set(f.names))
    if unknown:
        raise InputError(f"the answer uses {', '.join(unknown)}, which the expression does not")
    shapes = {n: s for n, s in declared.items() if s is not None}
    assumed = assumed_ranks(f, shapes)
    notes = []
    for rank, kind in ((2, "matrix"), (1, "vector")):
        taken = [name for name, shape in assumed.items() if len(shape) == rank]
        if taken:
            notes.append(f"{', '.join(taken)} taken as {'a ' + kind if len(taken) == 1 else kind.replace('x', 'ce') + 's'}"
                         f" of random sizes (declare shapes with --var, e.g. --var {taken[0]}:{'mxn' if rank == 2 else 'n'})")
    shapes.update(assumed)
    for name in f.names:
        shapes.setdefault(name, ())
    rng = random.Random(seed)
    deadline = time.monotonic() + timeout
    torch_ops = TorchOps(torch.float64, torch.device("cpu"))
    trials, sizes_seen = [], []
    for trial in range(TRIALS):
        if trials and time.monotonic() > deadline:
            notes.append(f"only {len(trials)} random points fitted in --timeout {timeout:g}")
            break
        sizes = Sizes()
        inference = infer(f, shapes, sizes)
        for size in inference.output:
            if not sizes.unify(size, 1):
                raise InputError(f"the expression is {described(inference.output)}, not a scalar: grad and check "
                                 "take a scalar function")
        answer_inference = infer(g, shapes, sizes)
        concrete = draw_sizes(inference, shapes, rng)
        got_shape = tuple(int(s) for s in sizes.resolve(answer_inference.output))
        sizes_seen.append(concrete)
        sample = _sample(f, g, wrt_name, concrete, rng, torch_ops, integers=trial < TRIALS // 2)
        if sample is None:
            continue  # no well-conditioned point in the domain at these sizes: try other sizes
        env, expected, got = sample
        if got_shape != tuple(expected.shape) and math.prod(got_shape) != 1:
            report = _layout_report(expression, answer, f, g, wrt_name, concrete, expected, got, got_shape,
                                    notes, partial)
            return _explained(report, expression, f, wrt_name, concrete, seed) if explain else report
        got = got.expand_as(expected) if got.dim() == 0 else got.reshape(expected.shape)
        trials.append(_Trial(concrete, env, expected, got))
    if not trials:
        return _report(expression, answer, f, g, wrt_name, Verdict.UNDECIDED, None,
                       "no random point was inside the domain of both the expression and the answer", 0, notes,
                       partial)
    disagree = [t for t in trials if not torch.allclose(t.got, t.expected, rtol=RTOL * 10, atol=ATOL * 10)
                and all(math.isfinite(v) for v in t.expected.reshape(-1).tolist())]
    sizes_text = _sizes_text(sizes_seen)
    if not disagree:
        return _report(expression, answer, f, g, wrt_name, Verdict.CORRECT, None,
                       f"the answer agrees with autograd's gradient at {len(trials)} random points, at sizes "
                       f"{sizes_text}", len(trials), notes, partial)
    bad = disagree[0]
    hint = _hint(f, g, wrt_name, bad, torch_ops)
    counterexample = _counterexample(bad, wrt_name)
    reason = (f"the answer differs from autograd's gradient at {len(disagree)} of {len(trials)} random points"
              + (f"; {hint}" if hint else ""))
    report = _report(expression, answer, f, g, wrt_name, Verdict.INCORRECT, counterexample, reason, len(trials),
                     notes, partial)
    return _explained(report, expression, f, wrt_name, bad.shapes, seed) if explain else report


def _explained(report: CheckReport, expression: str, f, wrt_name: str, shapes, seed: int) -> CheckReport:
    """An incorrect report with the right gradient named, when a closed form is found and checked."""
    from dataclasses import replace

    from pdiff.tensor.closed_form import verified_form

    right = verified_form(expression, f, infer(f, shapes), wrt_name, shapes, seed=seed)
    return replace(report, reason=f"{report.reason} (the gradient is {right})") if right else report


MAX_CONDITION = 1e6  # square matrices closer to singular are redrawn: det, inv and logdet are unstable there
ATTEMPTS = 30


def _sample(f, g, wrt_name, concrete, rng, ops, integers: bool):
    """Values where f, its gradient and the answer are all finite and every square matrix is well conditioned
    (small integers make singular matrices often); None when none was found."""
    import torch

    for _attempt in range(ATTEMPTS):
        env = _values(concrete, rng, integers=integers)
        square = [v for v in env.values() if v.dim() == 2 and v.shape[0] == v.shape[1]]
        if any(not float(torch.linalg.cond(v)) < MAX_CONDITION for v in square):
            continue
        try:
            if not math.isfinite(float(evaluate(f, env, ops).reshape(()))):
                continue
            x = env[wrt_name].clone()
            expected = torch.func.grad(lambda v, env=env: evaluate(f, {**env, wrt_name: v}, ops).reshape(()))(x)
            got = evaluate(g, env, ops)
        except RuntimeError:  # torch.linalg errors (a singular matrix) are RuntimeErrors
            continue
        if torch.isfinite(expected).all() and torch.isfinite(got).all():
            return env, expected, got
    return None


def _wrt(wrt, partial: str | None) -> str | None:
    if wrt:
        names = [n.strip() for n in (wrt.split(",") if isinstance(wrt, str) else wrt) if n.strip()]
        if len(names) != 1:
            raise InputError("check of a matrix-calculus answer takes one variable in --wrt")
        return names[0]
    if partial:
        text = partial.strip().replace("∂", "d")
        for prefix in ("df/d", "d/d", "∇_", "grad_"):
            if text.startswith(prefix) and text[len(prefix):].isidentifier():
                return text[len(prefix):]
        raise InputError(f"cannot read the partial {partial!r} for a tensor expression: give the variable, e.g. "
                         "df/dx or --wrt x")
    return None


def _values(shapes, rng: random.Random, integers: bool) -> dict:
    import torch

    generator = torch.Generator().manual_seed(rng.randrange(2**31))
    env = {}
    for name, shape in shapes.items():
        if integers:
            env[name] = torch.randint(-3, 4, shape, generator=generator).to(torch.float64)
        else:
            env[name] = torch.randn(shape, generator=generator, dtype=torch.float64)
    return env


def _sizes_text(sizes_seen) -> str:
    shown = []
    for concrete in sizes_seen:
        text = ", ".join(f"{n}: {shape_text(s)}" for n, s in concrete.items() if s)
        if text and text not in shown:
            shown.append(text)
    return "; ".join(shown[:3]) + (" ..." if len(shown) > 3 else "") if shown else "scalar"


def _hint(f, g, wrt_name: str, trial: _Trial, ops) -> str | None:
    import torch

    expected, got = trial.expected, trial.got
    if expected.dim() == 2 and expected.shape[0] == expected.shape[1] and torch.allclose(got, expected.mT,
                                                                                           rtol=1e-6, atol=1e-8):
        return ("the answer is the gradient transposed (a layout mistake: ∂f/∂X has the shape of X, "
                "entry [i,j] = ∂f/∂X[i,j])")
    square = [n for n, v in trial.values.items() if v.dim() == 2 and v.shape[0] == v.shape[1]]
    if square:
        symmetric = {**trial.values, **{n: (trial.values[n] + trial.values[n].mT) / 2 for n in square}}
        x = symmetric[wrt_name].clone()
        right = torch.func.grad(lambda v: evaluate(f, {**symmetric, wrt_name: v}, ops).reshape(()))(x)
        answer = evaluate(g, symmetric, ops)
        answer = answer.expand_as(right) if answer.dim() == 0 else answer.reshape(right.shape)
        if torch.allclose(answer, right, rtol=1e-6, atol=1e-8):
            return f"it holds only for symmetric {', '.join(square)}"
    return None


def _counterexample(trial: _Trial, wrt_name: str) -> Counterexample:
    from pdiff.tensor.shapes import elements

    difference = (trial.got - trial.expected).abs().reshape(-1)
    k = int(difference.argmax())
    element = elements(wrt_name, tuple(trial.expected.shape))[k]
    point = {e: v for name, t in trial.values.items() for e, v in zip(elements(name, tuple(t.shape)),
                                                                       t.reshape(-1).tolist())}
    text = ", ".join(f"{name}={_nested(t)}" for name, t in trial.values.items())
    return Counterexample(point, f"{text} (∂f/∂{element})", float(trial.expected.reshape(-1)[k]),
                          float(trial.got.reshape(-1)[k]), confirmed=False)


def _nested(t) -> str:
    def short(v: float) -> str:
        return repr(int(v)) if float(v).is_integer() else f"{v:.4g}"

    if t.dim() == 0:
        return short(float(t))
    if t.dim() == 1:
        return "[" + ", ".join(short(v) for v in t.tolist()) + "]"
    return "[" + ", ".join("[" + ", ".join(short(v) for v in row) + "]" for row in t.tolist()) + "]"


def _layout_report(expression, answer, f, g, wrt_name, concrete, expected, got, got_shape, notes, partial):
    want = tuple(expected.shape)
    if got_shape == want[::-1]:
        reason = (f"the answer is {described(got_shape)} but ∂f/∂{wrt_name} has the shape of {wrt_name} "
                  f"({shape_text(want)}): the gradient transposed? (a layout mistake: entry [i,j] = "
                  f"∂f/∂{wrt_name}[i,j])")
    else:
        reason = (f"the answer is {described(got_shape)} but ∂f/∂{wrt_name} has the shape of {wrt_name} "
                  f"({shape_text(want)})")
    sizes = ", ".join(f"{n}: {shape_text(s)}" for n, s in concrete.items() if s)
    return _report(expression, answer, f, g, wrt_name, Verdict.INCORRECT, None, f"{reason}, at sizes {sizes}", 0,
                   notes, partial)


def _report(expression, answer, f, g, wrt_name, verdict, counterexample, reason, checked, notes, partial):
    return CheckReport(expression, _shown(f), tuple(f.names), partial or f"df/d{wrt_name}", (wrt_name,),
                       f"df/d{wrt_name}", answer, _shown(g), None, verdict, "not tried (matrix calculus is checked "
                       "numerically)", counterexample, checked, reason, (*f.notes, *g.notes, *notes),
                       language.to_text(f), language.to_text(g))
