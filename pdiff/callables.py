"""Derivatives of your own torch functions and modules, by autograd, checked against central differences.

`gradient`, `jacobian` and `hessian` take a torch callable (a function or an nn.Module) and the tensor(s) to
differentiate by. Autograd runs in the input's dtype and device; the check runs fn again on float64 CPU copies
(of x, of a module's parameters and buffers, of the tensors and modules a function refers to directly) at
perturbed inputs, and combines central differences at steps h, h/2, h/4 by Richardson extrapolation (error
O(h^6)). Nothing of the caller's changes: the module's parameters, buffers, dtype, device and training flag stay
as they were, and no .grad is written. This module owns the API, autograd's side and the verdict in words;
pdiff/differences.py the reference, pdiff/copies.py the float64 copies. The CLI never runs user code.

    >>> import torch, pdiff
    >>> x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    >>> g = pdiff.gradient(lambda x: (x ** 3).sum(), x)
    >>> g.value
    tensor([ 3.0000, 12.0000,  0.7500], dtype=torch.float64)
    >>> g.agrees, g.note
    (True, None)
    >>> k = pdiff.gradient(lambda x: torch.relu(x).sum(), torch.tensor([0.0, 2.0]))
    >>> k.agrees, k.kinks, k.reference.tolist()
    (False, ((0,),), [0.5, 1.0])
    >>> print(k.note)
    not differentiable at this input (or within 1.2e-04 of it) at 1 entry (one-sided derivatives differ; first [0]: forward 1, backward 0): autograd's value there (0) is a subgradient choice, central differences give 0.5

Expressions typed as text are checked against the exact SymPy side instead: `pdiff.compute("grad", "x^2 y", ...)`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pdiff.copies import refuse_training
from pdiff.differences import (
    FlatFunction,
    check_first,
    check_second,
    close,
    coarsest,
    spans,
)
from pdiff.errors import InputError

# default relative tolerance by the input's dtype; atol defaults to rtol times the largest |reference| entry
RTOL = {torch.float64: 1e-6, torch.float32: 1e-3, torch.float16: 1e-2, torch.bfloat16: 5e-2}
MAX_EVALUATIONS = 100_000  # a check that needs more evaluations of fn is skipped, with a note
ROWS = 256  # outputs per batched reverse pass of a Jacobian


@dataclass(frozen=True, repr=False, eq=False)
class Verified:
    """An autograd derivative with the independent estimate it was checked against.

    value: autograd's result, in the input's dtype and device (a tuple, or a tuple of tuples for a Hessian,
    when x is a tuple). reference: the estimate by differences, float64 on CPU, laid out like value (None when
    not checked). agrees: every entry within atol + rtol·|reference| of the reference, the reference's own error
    bound added, and that bound within the tolerance (None when not checked). status: "agrees", "disagrees"
    (some entry differs by more than both bounds), "unsure" (none does, but some could not be checked) or
    "not checked". kinks (gradient and jacobian): entries where fn's one-sided derivatives differ, so no derivative
    exists and autograd's value is one choice of subgradient. flagged: entries that disagree or could not be
    checked. Entries are indices into value, led by the input's position ([a] or, for a Hessian, [a][b]) when x is
    a tuple. note: what went wrong, in words, or None. method: how the reference was computed.
    """

    value: Any
    reference: Any = None
    max_abs_error: float | None = None
    agrees: bool | None = None
    note: str | None = None
    method: str = "none"
    status: str = "not checked"
    kinks: tuple = ()
    flagged: tuple = ()
    rtol: float | None = None
    atol: float | None = None
    kind: str = "gradient"

    def __repr__(self) -> str:
        first = self.value
        while isinstance(first, tuple):
            first = first[0]
        shape = f"{len(self.value)} blocks" if isinstance(self.value, tuple) else str(tuple(first.shape))
        dtype = str(first.dtype).replace("torch.", "")
        verdict = {"disagrees": "DISAGREES"}.get(self.status, self.status)
        if self.max_abs_error is not None:
            verdict += f", max |Δ| {self.max_abs_error:.1e}"
        note = ""
        if self.status == "not checked" and self.note:
            verdict = self.note
        elif self.note:
            note = "; " + (self.note if len(self.note) <= 90 else self.note[:89] + "…")
        return f"Verified({self.kind} {shape} {dtype}: {verdict}{note})"


def gradient(fn: Callable, x, *args, check: bool = True, rtol: float | None = None, atol: float | None = None,
             max_evaluations: int = MAX_EVALUATIONS) -> Verified:
    """∇fn at x, by autograd, checked against central differences in float64.

    fn(x, *args) must return a tensor with one element. x is a floating tensor (value has x's shape) or a
    tuple of them (fn(*x, *args); value is a tuple of gradients). args are passed through undifferentiated.

    >>> import torch, pdiff
    >>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    >>> b = torch.tensor([1.0, 1.0], dtype=torch.float64)
    >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> g = pdiff.gradient(lambda x: ((A @ x - b) ** 2).sum(), x)
    >>> g.value, g.agrees
    (tensor([12., 36.], dtype=torch.float64), True)
    """
    return _verified("gradient", fn, x, args, check, rtol, atol, max_evaluations)


grad = gradient


def jacobian(fn: Callable, x, *args, check: bool = True, rtol: float | None = None, atol: float | None = None,
             max_evaluations: int = MAX_EVALUATIONS) -> Verified:
    """The Jacobian of fn at x: value[i..., j...] = ∂fn(x)[i...]/∂x[j...] (torch.func.jacrev's layout).

    fn returns one tensor; value has shape fn(x).shape + x.shape (a tuple of those, one per input, when x is a
    tuple).

    >>> import torch, pdiff
    >>> pdiff.jacobian(lambda x: x ** 2, torch.tensor([1.0, 2.0])).value
    tensor([[2., 0.],
            [0., 4.]])
    """
    return _verified("jacobian", fn, x, args, check, rtol, atol, max_evaluations)


def hessian(fn: Callable, x, *args, check: bool = True, rtol: float | None = None, atol: float | None = None,
            max_evaluations: int = MAX_EVALUATIONS) -> Verified:
    """The Hessian of a scalar fn at x, shape x.shape + x.shape, by torch.func.hessian (jacfwd of jacrev).

    Checked against second central differences of fn's values (never of autograd's gradient), which take about
    6·n² evaluations for n input elements: with the default max_evaluations up to n ≈ 129. When x is a tuple,
    value is a tuple of tuples: block [a][b] has shape x[a].shape + x[b].shape.

    >>> import torch, pdiff
    >>> A = torch.tensor([[1.0, 2.0], [0.0, 3.0]], dtype=torch.float64)
    >>> h = pdiff.hessian(lambda x: x @ A @ x, torch.tensor([0.5, -1.0], dtype=torch.float64))
    >>> h.value, h.agrees
    (tensor([[2., 2.],
            [2., 6.]], dtype=torch.float64), True)
    """
    return _verified("hessian", fn, x, args, check, rtol, atol, max_evaluations)


# ---------------------------------------------------------------------------------------------------- inputs

def _inputs(fn, x) -> tuple[tuple[torch.Tensor, ...], bool]:
    if isinstance(fn, str):
        raise InputError("pdiff.gradient/jacobian/hessian take a torch callable; for an expression use "
                         f"pdiff.compute('grad', {fn!r}, at=[...])")
    if not callable(fn):
        raise InputError(f"fn must be a function or an nn.Module, not {type(fn).__name__}")
    many = isinstance(x, tuple)  # a tuple holds several inputs (torch.func's argnums); a list is one tensor's data
    tensors = tuple(x) if many else (x,)
    if many and not tensors:
        raise InputError("x is an empty tuple: give at least one tensor")
    out = []
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t, dtype=torch.float64)
        if not t.is_floating_point():
            raise InputError(f"x must be a real floating tensor (float64, float32...), not {t.dtype}")
        out.append(t)
    return tuple(out), many


# ---------------------------------------------------------------------------------------------------- autograd

def _call(fn, args):
    def call(*xs):
        y = fn(*xs, *args)
        if not isinstance(y, torch.Tensor):
            raise InputError(f"fn must return a tensor, not {type(y).__name__}")
        return y
    return call


def _scalar(y: torch.Tensor) -> torch.Tensor:
    if y.numel() != 1:
        raise InputError(f"fn returns shape {tuple(y.shape)}, not one number: use pdiff.jacobian for a "
                         "vector-valued fn, or reduce it (.sum(), a loss)")
    return y.reshape(())


def _autograd(kind: str, call, inputs: tuple[torch.Tensor, ...]):
    """(value as torch.func lays it out for a tuple of inputs, fn's value at x)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    with torch.enable_grad():
        y = call(*leaves)
        if not y.is_floating_point():
            raise InputError(f"fn returns a {y.dtype} tensor: it must be real floating")
        if kind != "jacobian":
            y = _scalar(y)
        argnums = tuple(range(len(inputs)))
        if kind == "gradient":
            grads = torch.autograd.grad(y, leaves, allow_unused=True) if y.requires_grad else [None] * len(leaves)
            return tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs)), y.detach()
        if kind == "jacobian":  # reverse passes over the one graph, batched over outputs
            rows = _rows(y.reshape(-1), leaves)
            return tuple(r.reshape(y.shape + t.shape) for r, t in zip(rows, inputs)), y.detach()
        detached = [t.detach() for t in inputs]
        try:
            with warnings.catch_warnings():  # torch's forward mode loads its decompositions through torch.jit.script
                warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
                return torch.func.hessian(lambda *xs: _scalar(call(*xs)), argnums=argnums)(*detached), y.detach()
        except Exception:  # noqa: BLE001  no forward-mode formula, or no batching rule: reverse over reverse, row by row
            grads = torch.autograd.grad(y, leaves, create_graph=True, allow_unused=True) if y.requires_grad \
                else [None] * len(leaves)
            flat = torch.cat([(torch.zeros_like(t) if g is None else g).reshape(-1) for g, t in zip(grads, leaves)])
            rows = _rows(flat, leaves)
            parts = spans(inputs)
            return tuple(tuple(rows[b][slice(*parts[a])].reshape(inputs[a].shape + inputs[b].shape)
                               for b in argnums) for a in argnums), y.detach()


def _rows(flat: torch.Tensor, leaves) -> list[torch.Tensor]:
    """∂flat[i]/∂leaf for each leaf, as (len(flat), leaf.numel()) matrices: reverse passes over flat's graph for
    ROWS outputs at a time (is_grads_batched, a vmap), one output at a time where a backward cannot be batched."""
    m = flat.numel()
    out = [torch.zeros(m, leaf.numel(), dtype=leaf.dtype, device=leaf.device) for leaf in leaves]
    batched = flat.requires_grad
    for start in range(0, m if flat.requires_grad else 0, ROWS):
        index = torch.arange(start, min(m, start + ROWS))
        grads = None
        if batched:
            basis = torch.zeros(len(index), m, dtype=flat.dtype, device=flat.device)
            basis[torch.arange(len(index)), index] = 1
            try:
                with warnings.catch_warnings():  # a backward without a batching rule: vmap loops, and says so
                    warnings.filterwarnings("ignore", "There is a performance drop", UserWarning)
                    grads = torch.autograd.grad(flat, leaves, grad_outputs=basis, retain_graph=True,
                                                allow_unused=True, is_grads_batched=True)
            except Exception:  # noqa: BLE001  .item() or data-dependent code in a backward: one output at a time
                batched = False
        if grads is None:
            grads = [[] for _ in leaves]
            for i in index:
                for column, g, leaf in zip(grads, torch.autograd.grad(flat[i], leaves, retain_graph=True,
                                                                       allow_unused=True), leaves):
                    column.append(torch.zeros_like(leaf) if g is None else g)
            grads = [torch.stack(column) for column in grads]
        for matrix, g in zip(out, grads):
            if g is not None:
                matrix[index] = g.reshape(len(index), -1)
    return out


# ---------------------------------------------------------------------------------------------------- verdict

def _flat(kind: str, value, inputs, m: int) -> torch.Tensor:
    """value (torch.func's layout for a tuple of inputs) → (m, n) for gradient and jacobian, (n, n) for hessian."""
    if kind == "hessian":
        flat = torch.cat([torch.cat([value[a][b].reshape(ta.numel(), tb.numel()) for b, tb in enumerate(inputs)], 1)
                          for a, ta in enumerate(inputs)], 0)
    else:
        flat = torch.cat([part.reshape(m, t.numel()) for part, t in zip(value, inputs)], 1)
    return flat.detach().to("cpu", torch.float64)


def _layout(kind: str, flat: torch.Tensor, inputs, out_shape, many: bool):
    parts = spans(inputs)
    if kind == "hessian":
        blocks = tuple(tuple(flat[slice(*parts[a]), slice(*parts[b])].reshape(ta.shape + tb.shape)
                             for b, tb in enumerate(inputs)) for a, ta in enumerate(inputs))
        return blocks if many else blocks[0][0]
    blocks = tuple(flat[:, slice(*span)].reshape(tuple(out_shape) + t.shape) for span, t in zip(parts, inputs))
    return blocks if many else blocks[0]


def _unravel(i: int, shape) -> tuple[int, ...]:
    out = []
    for size in reversed(tuple(shape)):
        i, rest = divmod(i, size)
        out.append(rest)
    return tuple(reversed(out))


class _Places:
    """Flat (row, column) positions → the indices of value, and their text."""

    def __init__(self, kind: str, inputs, out_shape, many: bool):
        self.kind, self.inputs, self.out_shape, self.many = kind, inputs, tuple(out_shape), many
        self.spans = spans(inputs)

    def _input(self, j: int) -> tuple[int, tuple[int, ...]]:
        a = next(a for a, (start, stop) in enumerate(self.spans) if start <= j < stop)
        return a, _unravel(j - self.spans[a][0], self.inputs[a].shape)

    def index(self, i: int, j: int) -> tuple[int, ...]:
        if self.kind == "hessian":
            (a, row), (b, col) = self._input(i), self._input(j)
            return ((a, b) if self.many else ()) + row + col
        a, col = self._input(j)
        row = _unravel(i, self.out_shape) if self.kind == "jacobian" else ()
        return ((a,) if self.many else ()) + row + col

    def text(self, index: tuple[int, ...]) -> str:
        blocks = (2 if self.kind == "hessian" else 1) if self.many else 0
        head = "".join(f"[{a}]" for a in index[:blocks])
        return head + "[" + ", ".join(map(str, index[blocks:])) + "]"


def _num(v: float) -> str:
    return f"{v + 0.0:.6g}"


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _notes(kind, places: _Places, v, ref, disagree, unsettled, noisy, kink=None, sides=None):
    def first(mask):
        i, j = (int(t) for t in mask.nonzero()[0])
        return i, j, places.text(places.index(i, j))

    notes = []
    finite = torch.isfinite(ref)
    kink = torch.zeros_like(disagree) if kink is None else kink
    blind = ~finite
    if blind.any():
        _, _, where = first(blind)
        notes.append(f"fn is not finite near x at {_entries(int(blind.sum()))} (first {where}): x at the edge of "
                     "fn's domain?")
    for agreeing in (False, True):
        mask = kink & (disagree != agreeing)
        if mask.any():
            i, j, where = first(mask)
            forward, backward, steps = sides
            slopes = f"forward {_num(forward[i, j])}, backward {_num(backward[i, j])}"
            tail = (f"autograd's value there ({_num(v[i, j])}) is a subgradient choice, "
                    + ("matching central differences" if agreeing else f"central differences give {_num(ref[i, j])}"))
            notes.append(f"not differentiable at this input (or within {float(steps[j]):.1e} of it) at "
                         f"{_entries(int(mask.sum()))} (one-sided derivatives differ; first {where}: {slopes}): {tail}")
    wrong = disagree & ~unsettled & ~kink & finite
    if wrong.any():
        i, j, where = first(wrong)
        if kind == "hessian":
            notes.append(f"autograd's Hessian disagrees with second differences at {_entries(int(wrong.sum()))} "
                         f"(first {where}: autograd {_num(v[i, j])}, differences {_num(ref[i, j])}): fn may not be "
                         "twice differentiable here (ReLU, max, abs at x), or a backward formula is wrong")
        else:
            notes.append(f"autograd disagrees with central differences at {_entries(int(wrong.sum()))} (first "
                         f"{where}: autograd {_num(v[i, j])}, differences {_num(ref[i, j])}): a wrong backward formula "
                         "(a custom autograd.Function?)")
    vague = unsettled & ~kink & finite & ~noisy
    if vague.any():
        _, _, where = first(vague)
        notes.append(f"could not be checked at {_entries(int(vague.sum()))} (first {where}): the differences do not "
                     "settle as the step shrinks (a kink within the step, or fn very steep there)")
    noisy = noisy & ~kink & finite
    if noisy.any():
        _, _, where = first(noisy)
        notes.append(f"could not be checked at {_entries(int(noisy.sum()))} (first {where}): rounding in fn's values "
                     "hides differences this small (fn's value is large beside its change); give an atol to accept")
    return notes


def _verified(kind: str, fn, x, args, check: bool, rtol, atol, cap: int) -> Verified:
    inputs, many = _inputs(fn, x)
    refuse_training((fn, args))
    call = _call(fn, args)
    value, y = _autograd(kind, call, inputs)
    shown = value if many else (value[0][0] if kind == "hessian" else value[0])
    dtype = coarsest([t.dtype for t in inputs])
    rtol = RTOL.get(dtype, 1e-2) if rtol is None else float(rtol)
    n = sum(t.numel() for t in inputs)
    cost = 6 * n * n + 4 if kind == "hessian" else 6 * n + 4
    common = {"rtol": rtol, "kind": kind}
    if not check:
        return Verified(shown, note="not checked (check=False)", atol=atol, **common)
    if cost > cap:
        return Verified(shown, note=f"not checked: the differences would take {cost:,} evaluations of fn, more than "
                        f"max_evaluations={cap:,}", atol=atol, **common)
    with torch.no_grad():
        again = call(*(t.detach().clone() for t in inputs))
    if not close(again, y, max(torch.finfo(t.dtype).eps for t in inputs)):
        raise InputError("fn is not deterministic: two calls at the same x gave different values (dropout or "
                         "random sampling?); make it deterministic (module.eval()) to check it, or pass check=False")
    method = ("second central differences" if kind == "hessian" else "central differences") + ", Richardson, "
    m = y.numel() if kind == "jacobian" else 1
    v = _flat(kind, value, inputs, m)
    places = _Places(kind, inputs, y.shape, many)
    if n == 0 or m == 0:
        return Verified(shown, _layout(kind, v, inputs, y.shape, many), 0.0, True, method=method + "float64",
                        status="agrees", atol=atol, **common)
    f = FlatFunction(fn, args, inputs, y)
    method += str(f.precision).replace("torch.", "") + ("" if f.places[0][0].type == "cpu" else
                                                        f" on {f.places[0][0]}")
    if kind == "hessian":
        ref, atol, disagree, unsettled, noisy = check_second(f, v, rtol, atol, cap - cost)
        notes, kinks = _notes(kind, places, v, ref, disagree, unsettled, noisy), ()
    else:
        ref, atol, disagree, unsettled, noisy, kink, sides = check_first(f, v, rtol, atol, cap - cost)
        notes = _notes(kind, places, v, ref, disagree, unsettled, noisy, kink, sides)
        kinks = tuple(places.index(int(i), int(j)) for i, j in kink.nonzero())
    if f.note:
        notes.insert(0, f.note)
    flagged = tuple(places.index(int(i), int(j)) for i, j in (disagree | unsettled).nonzero())
    status = "agrees" if not flagged else "disagrees" if (disagree & ~unsettled).any() else "unsure"
    return Verified(shown, _layout(kind, ref, inputs, y.shape, many), float((v - ref).abs().max()),
                    status == "agrees", "; ".join(notes) or None, method, status, kinks, flagged, atol=atol, **common)
