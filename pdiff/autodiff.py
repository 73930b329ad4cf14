"""Partial derivatives of lowered functions on batches of points, by torch autograd.

Every point of a batch is evaluated at once: the function is elementwise over points, so the gradient of the sum
over points is the per-point derivative. Requested partials form a prefix tree over their application order;
each node of the tree costs one reverse pass (for all its children at once), so d2f/dxdy and d2f/dx2 share df/dx
and a Hessian of n variables costs n + 1 passes. Graphs are created only where a higher order still needs them.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from pdiff.errors import DeviceError

DTYPES = {"float64": torch.float64, "float32": torch.float32}


GROWTH = 5.0  # a reverse pass at the next order costs up to this many times the last one (measured 3-5x)


class DeadlineExceeded(Exception):
    """The numeric work ran past its time budget."""


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; naming an unavailable device is an input error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("device 'cuda' is not available here (no CUDA GPU or a CPU-only torch build)")
        return torch.device(name)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("device 'mps' is not available here")
        return torch.device("mps")
    raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or mps")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise DeviceError(f"unknown dtype {name!r}: use float64 or float32")
    if device.type == "mps" and name == "float64":
        raise DeviceError("mps does not support float64: use --dtype float32")
    return DTYPES[name]


def _prefix_tree(partials: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], set[str]]:
    """prefix → the variables its children differentiate by."""
    children: dict[tuple[str, ...], set[str]] = {}
    for wrt in partials:
        for depth in range(len(wrt)):
            children.setdefault(wrt[:depth], set()).add(wrt[depth])
    return children


def partials_at(function: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                columns: dict[str, torch.Tensor],
                partials: Sequence[tuple[str, ...]],
                deadline: float | None = None) -> list[torch.Tensor]:
    """The requested partials (each a tuple of variables in application order) at every point of `columns`.

    `columns` maps every variable the function takes to a 1-D tensor of N values (same dtype and device).
    Returns one detached 1-D tensor of N values per requested partial, in request order.
    Raises DeadlineExceeded between reverse passes once `deadline` (a time.monotonic() value) has passed.
    """
    size = next(iter(columns.values())).shape[0]
    tree = _prefix_tree(partials)
    differentiated = {name for wrt in partials for name in wrt}
    with torch.enable_grad():
        leaves = {name: column.detach().requires_grad_(name in differentiated) for name, column in columns.items()}
        values: dict[tuple[str, ...], torch.Tensor] = {(): torch.broadcast_to(function(leaves), (size,))}
        last_pass = 0.0
        for prefix in sorted(tree, key=len):  # parents before children
            # each order's graph is larger than the last: a pass that cannot finish in time is not started
            started = time.monotonic()
            if deadline is not None and started + GROWTH * last_pass > deadline:
                raise DeadlineExceeded()
            parent = values[prefix]
            names = sorted(tree[prefix])
            more = any(prefix + (name,) in tree for name in names)  # a child needs a graph of its own
            if parent.requires_grad:
                grads = torch.autograd.grad(parent.sum(), [leaves[n] for n in names], create_graph=more,
                                            retain_graph=True, allow_unused=True)
            else:
                grads = [None] * len(names)  # a constant: every derivative is zero
            last_pass = time.monotonic() - started
            for name, grad in zip(names, grads):
                values[prefix + (name,)] = torch.zeros_like(parent) if grad is None else grad
    return [values[tuple(wrt)].detach() for wrt in partials]


def first_partials_forward(functions: Sequence[Callable[[dict[str, torch.Tensor]], torch.Tensor]],
                           columns: dict[str, torch.Tensor], variables: Sequence[str],
                           deadline: float | None = None) -> list[list[torch.Tensor]]:
    """∂f_i/∂v for every function and variable, by forward mode: one pass per variable for all functions.

    Cheaper than reverse mode (one pass per function) when there are more functions than variables.
    Returns [function][variable] detached 1-D tensors of N values.
    """
    import torch.autograd.forward_ad as fwAD

    size = next(iter(columns.values())).shape[0]
    result = [[None] * len(variables) for _ in functions]
    with torch.no_grad(), fwAD.dual_level():
        for j, name in enumerate(variables):
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded()
            duals = {key: fwAD.make_dual(column, torch.ones_like(column) if key == name
                                         else torch.zeros_like(column))
                     for key, column in columns.items()}
            for i, function in enumerate(functions):
                tangent = fwAD.unpack_dual(torch.broadcast_to(function(duals), (size,))).tangent
                result[i][j] = (torch.zeros(size, dtype=columns[name].dtype, device=columns[name].device)
                                if tangent is None else tangent.clone())
    return result
