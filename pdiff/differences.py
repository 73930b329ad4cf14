"""The independent route: derivatives of fn's values by central differences, in float64 on CPU copies.

Each element x_j is stepped by h, h/2 and h/4 (h relative to the element's magnitude, or to the tensor's
root-mean-square where the element is small), and the central differences are combined by Richardson
extrapolation (Romberg: error O(h^6)); the spread of the two last levels, plus a bound on rounding in fn's values,
is the reference's own error bound. The same evaluations give the one-sided derivatives (forward, backward), whose
disagreement marks a kink. Entries that disagree, show a kink or do not settle are done again at finer steps.
Second derivatives come from second differences of fn's values (4 evaluations per pair and level), never from
autograd. Perturbed inputs are evaluated in batches through torch.func.vmap where fn allows it.
"""

from __future__ import annotations

import itertools
import math
import warnings

import torch

from pdiff.copies import float64_copy
from pdiff.errors import InputError

# first step, relative to each element's scale: (first derivatives, second derivatives), by the reference dtype
STEPS = {torch.float64: (2.0 ** -7, 2.0 ** -5), torch.float32: (2.0 ** -4, 2.0 ** -2)}
REFINE = (2.0 ** -6, 2.0 ** -3)  # entries that do not settle are done again with steps this much smaller,
ROUNDS = 3  # up to this many times
NOISE = (32.0, 256.0)  # rounding in fn's values, as a multiple of eps·|f|/h (first) or eps·|f|/h² (second)
CHUNK = 2 ** 20  # input elements per batch of perturbed inputs
LEVELS = (1.0, 0.5, 0.25)


def spans(inputs) -> list[tuple[int, int]]:
    ends = list(itertools.accumulate(t.numel() for t in inputs))
    return [(end - t.numel(), end) for end, t in zip(ends, inputs)]


def coarsest(dtypes) -> torch.dtype:
    return max(dtypes, key=lambda d: torch.finfo(d).eps)


def close(a: torch.Tensor, b: torch.Tensor, eps: float) -> bool:
    a, b = a.detach().to("cpu", torch.float64).reshape(-1), b.detach().to("cpu", torch.float64).reshape(-1)
    if a.shape != b.shape or not a.numel():
        return a.shape == b.shape
    difference = (a - b).abs()
    same = (a == b) | (difference <= math.sqrt(eps) * (a.abs().max() + 1))  # equal infinities count as close
    return bool(same.all())


class FlatFunction:
    """fn as a function of one float64 vector holding every input's elements, evaluated on batches of such
    vectors (torch.func.vmap when fn allows it, else one call per vector). Runs on float64 CPU copies; where fn
    cannot (a closure over a float32 module it cannot see, a device it insists on), on fn itself in the inputs'
    own dtype and device, with a note."""

    def __init__(self, fn, args, inputs: tuple[torch.Tensor, ...], y: torch.Tensor):
        self.spans, self.shapes = spans(inputs), [t.shape for t in inputs]
        self.base = torch.cat([t.detach().reshape(-1).to("cpu", torch.float64) for t in inputs])
        self.n, self.note = self.base.numel(), None
        eps = max(torch.finfo(t.dtype).eps for t in inputs)
        try:
            memo: dict = {}
            self._start(float64_copy(fn, memo), float64_copy(args, memo),
                        [(torch.device("cpu"), torch.float64)] * len(inputs))
            if not close(self.f0, y, eps):
                raise ValueError(f"its value there is {self.f0.tolist()[:3]}, not fn's {y.reshape(-1).tolist()[:3]}")
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001  whatever the copy cannot do, fn itself may
            self._start(fn, args, [(t.device, t.dtype) for t in inputs])
            why = (str(exc).splitlines() or [""])[0][:120]
            where = {str(t.device) for t in inputs}
            self.note = (f"the reference ran in {str(self.dtype).replace('torch.', '')} on {', '.join(sorted(where))}: on float64 CPU copies "
                         f"fn failed ({type(exc).__name__}: {why}); pass the nn.Module itself as fn "
                         "(other inputs after x) for a float64 check")
        scale = []
        for start, stop in self.spans:
            part = self.base[start:stop].abs()
            rms = float(part.square().mean().sqrt()) if stop > start else 0.0
            part = part.clamp_min(min(rms, 1.0))
            scale.append(torch.where(part > 0, part, torch.ones_like(part)))
        self.scale = torch.cat(scale) if scale else self.base
        self.m = self.f0.numel()

    def _start(self, fn, args, places) -> None:
        self.fn, self.args, self.places, self.vmap = fn, args, places, True
        self.dtype = coarsest([dtype for _, dtype in places])
        xs = self._split(self.base[None])
        with torch.no_grad():
            once = self._one(*(x[0] for x in xs))
        if not isinstance(once, torch.Tensor) or not once.is_floating_point():
            raise ValueError("fn does not return a floating tensor")
        self.precision = coarsest([self.dtype, once.dtype])
        self.eps = torch.finfo(self.precision).eps
        try:
            batched = self._batch(xs)
        except Exception:  # noqa: BLE001  no batching rule, .item(), data-dependent control flow
            self.vmap = False
        else:
            self.vmap = close(batched[0], once, self.eps)
        self.f0 = once.reshape(-1).to("cpu", torch.float64)

    def _one(self, *xs):
        return self.fn(*xs, *self.args)

    def _split(self, rows: torch.Tensor) -> list[torch.Tensor]:
        return [rows[:, a:b].reshape((len(rows),) + shape).to(device, dtype)
                for (a, b), shape, (device, dtype) in zip(self.spans, self.shapes, self.places)]

    def _batch(self, xs: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            if self.vmap:
                try:
                    with warnings.catch_warnings():  # an op without a batching rule: vmap loops, and says so
                        warnings.filterwarnings("ignore", "There is a performance drop", UserWarning)
                        return torch.func.vmap(self._one)(*xs)
                except Exception:  # noqa: BLE001  as above: one call per vector
                    self.vmap = False
            return torch.stack([self._one(*(x[r] for x in xs)) for r in range(len(xs[0]))])

    def round(self, values: torch.Tensor) -> torch.Tensor:
        """Perturbed coordinates as the evaluation dtype holds them, so that steps are exact differences."""
        return values.to(self.dtype).to(torch.float64)

    def at(self, col1, val1, col2=None, val2=None) -> torch.Tensor:
        """fn at the base vector with element col1[r] set to val1[r] (and col2[r] to val2[r]): (rows, m)."""
        step = max(1, min(4096, CHUNK // max(self.n, self.m)))
        out = []
        for start in range(0, len(col1), step):
            part = slice(start, start + step)
            rows = self.base.expand(len(col1[part]), self.n).clone()
            index = torch.arange(len(rows))
            rows[index, col1[part]] = val1[part]
            if col2 is not None:
                rows[index, col2[part]] = val2[part]
            out.append(self._batch(self._split(rows)).reshape(len(rows), -1).to("cpu", torch.float64))
        return torch.cat(out) if out else torch.empty(0, self.m, dtype=torch.float64)


def _romberg(c: torch.Tensor):
    """Differences with error series in h², at steps h, h/2, h/4 along dim 1 → (estimate, error bound)."""
    once = (4 * c[:, 1:] - c[:, :-1]) / 3
    return (16 * once[:, 1] - once[:, 0]) / 15, (once[:, 1] - once[:, 0]).abs()


def _richardson(c: torch.Tensor):
    """One-sided differences (error series in h) at steps h, h/2, h/4 along dim 1 → (estimate, error bound)."""
    once = 2 * c[:, 1:] - c[:, :-1]
    return (4 * once[:, 1] - once[:, 0]) / 3, (once[:, 1] - once[:, 0]).abs()


def _first(f: FlatFunction, cols: torch.Tensor, h: torch.Tensor):
    """Per column j and output i (each (J, m)): the central estimate of ∂f_i/∂x_j, its error bound, the
    rounding part of that bound, the forward and backward one-sided estimates and their joint error bound.
    6 evaluations per column."""
    x, steps = f.base[cols][:, None], h[:, None] * torch.tensor(LEVELS, dtype=torch.float64)
    xp, xm = f.round(x + steps), f.round(x - steps)
    y = f.at(cols.repeat_interleave(6), torch.stack([xp, xm], -1).reshape(-1)).reshape(len(cols), 3, 2, f.m)
    a, b, yp, ym, f0 = (xp - x)[..., None], (x - xm)[..., None], y[:, :, 0], y[:, :, 1], f.f0
    ref, err = _romberg((yp - ym) / (a + b))
    forward, e_forward = _richardson((yp - f0) / a)
    backward, e_backward = _richardson((f0 - ym) / b)
    noise = NOISE[0] * f.eps * torch.maximum(y.abs().amax(dim=(1, 2)), f0.abs()) / h[:, None]
    return ref, err + noise, noise, forward, backward, e_forward + e_backward + 8 * noise


def _second(f: FlatFunction, pj: torch.Tensor, pk: torch.Tensor, h: torch.Tensor, factor: torch.Tensor):
    """Second central differences of f's values for pairs (j, k), j ≤ k, at steps factor·h: (estimate, error
    bound, its rounding part), each (P,)."""
    ref, err, noise = (torch.empty(len(pj), dtype=torch.float64) for _ in range(3))
    levels, f0 = torch.tensor(LEVELS, dtype=torch.float64), f.f0[0]
    off = pj != pk
    if off.any():  # [f(++) - f(+-) - f(-+) + f(--)] / ((2 h_j)(2 h_k)): 4 evaluations per level
        j, k, c = pj[off], pk[off], factor[off]
        xj, xk = f.base[j][:, None], f.base[k][:, None]
        hj, hk = (c * h[j])[:, None] * levels, (c * h[k])[:, None] * levels
        jp, jm, kp, km = f.round(xj + hj), f.round(xj - hj), f.round(xk + hk), f.round(xk - hk)
        y = f.at(j.repeat_interleave(12), torch.stack([jp, jp, jm, jm], -1).reshape(-1),
                 k.repeat_interleave(12), torch.stack([kp, km, kp, km], -1).reshape(-1)).reshape(len(j), 3, 4)
        ref[off], err[off] = _romberg((y[..., 0] - y[..., 1] - y[..., 2] + y[..., 3]) / ((jp - jm) * (kp - km)))
        noise[off] = NOISE[1] * f.eps * torch.maximum(y.abs().amax(dim=(1, 2)), f0.abs()) / (hj[:, 0] * hk[:, 0])
    if (~off).any():  # f(x + a) and f(x - b) around f(x), a ≈ b ≈ 2h: 2 evaluations per level
        j = pj[~off]
        x, steps = f.base[j][:, None], 2 * (factor[~off] * h[j])[:, None] * levels
        xp, xm = f.round(x + steps), f.round(x - steps)
        y = f.at(j.repeat_interleave(6), torch.stack([xp, xm], -1).reshape(-1)).reshape(len(j), 3, 2)
        a, b = xp - x, x - xm
        ref[~off], err[~off] = _romberg(2 * ((y[..., 0] - f0) / a - (f0 - y[..., 1]) / b) / (a + b))
        noise[~off] = NOISE[1] * f.eps * torch.maximum(y.abs().amax(dim=(1, 2)), f0.abs()) / (steps[:, 0] / 2) ** 2
    return ref, err + noise, noise


def _goal(f: FlatFunction) -> float:
    """An error bound the reference should meet where fn is smooth: entries above it are done again."""
    return 10 * math.sqrt(f.eps)


def _judge(v, ref, err, rtol: float, atol: float):
    tol = atol + rtol * ref.abs()
    disagree = ~((v - ref).abs() <= tol + err)  # nan counts as disagreeing
    unsettled = ~(err <= tol)
    return tol, disagree, unsettled


def _scale(ref: torch.Tensor, v: torch.Tensor) -> float:
    """The size of the derivative's entries, for the default atol: the largest finite |reference| (else |value|,
    else 1 where every entry is 0)."""
    for t in (ref, v):
        finite = t[torch.isfinite(t)].abs()
        if finite.numel() and float(finite.max()) > 0:
            return float(finite.max())
    return 1.0


def _better(again, old, columns) -> None:
    """Take the finer step's (estimate, error, noise) where its error bound is not larger."""
    better = ~(again[1] >= old[1][columns])
    for new, mine in zip(again[:3], old):
        mine[columns] = torch.where(better, new, mine[columns])


def check_first(f: FlatFunction, v: torch.Tensor, rtol: float, atol: float | None, budget: int):
    """v: (m, n) → (reference, atol, disagree, unsettled, noisy, kink, (forward, backward, steps)): (m, n) each,
    but atol (the one used) and steps (n,), the steps whose one-sided differences decided kinks.

    Columns that disagree, show a kink or do not settle are done again at steps 64 times smaller, up to
    ROUNDS times; the first finer round decides kinks (a kink inside the first step but not at x is not one)."""
    h = STEPS.get(f.precision, STEPS[torch.float32])[0] * f.scale
    cols, sided = torch.arange(f.n), h
    ref, err, noise, forward, backward, e_sides = (t.T.clone() for t in _first(f, cols, h))
    scale = _scale(ref, v)
    atol = rtol * scale if atol is None else float(atol)
    tol, disagree, unsettled = _judge(v, ref, err, rtol, atol)
    kink = (forward - backward).abs() > tol + 8 * e_sides
    todo = disagree | unsettled | kink | (err > _goal(f) * (ref.abs() + scale))
    for round_ in range(ROUNDS):
        redo = cols[todo.any(dim=0)][:max(0, budget // 6)]
        if not len(redo):
            break
        budget -= 6 * len(redo)
        h[redo] *= REFINE[0]
        again = _first(f, redo, h[redo])  # (J, m) each: ref.T, err.T, noise.T are views of the columns
        _better(again, (ref.T, err.T, noise.T), redo)
        again = [t.T for t in again]
        tol, disagree, unsettled = _judge(v, ref, err, rtol, atol)
        if round_ == 0:
            forward[:, redo], backward[:, redo], e_sides[:, redo] = again[3], again[4], again[5]
            sided = h.clone()
            kink = (forward - backward).abs() > tol + 8 * e_sides
        todo = (disagree | unsettled | (err > _goal(f) * (ref.abs() + scale))) & ~kink
    kink &= torch.isfinite(forward - backward)
    return ref, atol, disagree, unsettled, unsettled & (noise > tol / 2), kink, (forward, backward, sided)


def check_second(f: FlatFunction, v: torch.Tensor, rtol: float, atol: float | None, budget: int):
    """v: (n, n) → (reference, atol, disagree, unsettled, noisy), each (n, n); entries redone as in
    check_first, at steps 8 times smaller (second differences lose twice the digits to rounding)."""
    h = STEPS.get(f.precision, STEPS[torch.float32])[1] * f.scale
    pj, pk = torch.triu_indices(f.n, f.n)
    factor = torch.ones(len(pj), dtype=torch.float64)
    upper = list(_second(f, pj, pk, h, factor))  # estimate, error, noise over the pairs j ≤ k

    def full(part):
        out = torch.empty(f.n, f.n, dtype=part.dtype)
        out[pj, pk], out[pk, pj] = part, part
        return out

    scale = _scale(full(upper[0]), v)
    atol = rtol * scale if atol is None else float(atol)
    for _ in range(ROUNDS):
        ref, err = full(upper[0]), full(upper[1])
        tol, disagree, unsettled = _judge(v, ref, err, rtol, atol)
        todo = disagree | unsettled | (err > _goal(f) * (ref.abs() + scale))
        redo = (todo | todo.T)[pj, pk].nonzero().reshape(-1)[:max(0, budget // 12)]
        if not len(redo):
            break
        budget -= 12 * len(redo)
        factor[redo] *= REFINE[1]
        _better(_second(f, pj[redo], pk[redo], h, factor[redo]), upper, redo)
    ref, err, noise = (full(part) for part in upper)
    tol, disagree, unsettled = _judge(v, ref, err, rtol, atol)
    return ref, atol, disagree, unsettled, unsettled & (noise > tol / 2)
