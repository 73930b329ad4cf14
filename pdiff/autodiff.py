"""Partial derivatives of lowered functions on batches of points, by torch autograd.

Every point of a batch is evaluated at once: the function is elementwise over points, so the gradient of the sum
over points is the per-point derivative. Requested partials form a prefix tree over their application order;
each node of the tree costs one reverse pass (for all its children at once), so d2f/dxdy and d2f/dx2 share df/dx
and a Hessian of n variables costs n + 1 passes. Graphs are created only where a higher order still needs them.

For many blocks of points (the stream engine), trace_partials records those passes once as the flat list of aten
ops that autograd's own derivative formulas dispatch, drops what does not change the values, and replays it per
block without autograd into reused buffers (d3f/dx2dy of exp(x y) sin(x + y^2): 90 ops with 4 sin and 4 cos per
block become 38 with one of each; 4-5x faster on CPU).
"""

from __future__ import annotations

import functools
import math
import threading
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


# ------------------------------------------------------------------------------------------- traced replay
#
# partials_at on a block of 2^15 points spends most of its time on work that does not depend on the points:
# autograd bookkeeping, multiplications by the all-ones gradient of the sum, and the same sin/cos recomputed by
# every backward formula that saved its input (d3f/dx2dy of exp(x y) sin(x + y^2): 90 aten ops, 4 sin and 4 cos,
# of which 45 ops and 1 sin/cos are needed). TracedPartials runs partials_at once on a few points under a
# recording dispatch mode, so the graph holds exactly the aten ops autograd's own derivative formulas dispatch,
# drops what the values do not need (detach, x*1, repeated subexpressions, dead code) and replays the rest per
# block without autograd, into buffers allocated once and reused as soon as a value is dead.

TRACE_ROWS = 11  # points in the recorded run: few (cheap), and a size no real constant is likely to equal
CHECK_ROWS = 23  # points in the check against eager partials_at at another size


class _Untraceable(Exception):
    """The computation does something the recorder does not replay faithfully (the caller stays eager)."""


class _Ref:
    """An operand of a recorded op: an input column ('in'), a constant tensor ('const') or an op's result."""

    __slots__ = ("kind", "index")

    def __init__(self, kind: str, index: int):
        self.kind, self.index = kind, index

    def __repr__(self) -> str:
        return f"{self.kind}{self.index}"


class _Size:
    """The number of points, inside a size list of a recorded op (expand(t, [N]))."""

    def __repr__(self) -> str:
        return "N"


_SIZE = _Size()
_IDENTITIES = {"detach", "alias", "lift_fresh"}  # ops whose result has the values of their argument
_SHAPE_ONLY = {"ones_like", "zeros_like", "full_like", "new_ones", "new_zeros", "new_full"}  # values ignore args


def _storage_key(t: torch.Tensor) -> tuple:
    if t.numel() == 0 or t.layout != torch.strided or t._is_zerotensor():
        raise _Untraceable("an empty, sparse or zero tensor")
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype, t.device)


def _recorder_class():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        """Records every aten op with its operands as _Refs. A tensor is known by its storage address and
        layout (autograd re-wraps saved tensors in new objects); every tensor stays alive until the recording
        ends, so no address is reused. A tensor no op produced is a constant; in-place ops become their
        out-of-place form, whose result replaces the mutated tensor's."""

        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            # the default wraps __torch_dispatch__ in torch._dynamo.disable, whose import costs ~0.9 s;
            # nothing is compiled here
            return False

        def __init__(self, columns: list[torch.Tensor]):
            super().__init__()
            self.ops: list[tuple] = []  # (func, args, kwargs) with tensors as _Refs
            self.values: list[torch.Tensor] = []  # each op's result in the recording
            self.constants: list[torch.Tensor] = []
            self.scalars: dict[tuple, _Ref] = {}
            self.known: dict[tuple, _Ref] = {}
            self.keep: list[torch.Tensor] = list(columns)
            for i, column in enumerate(columns):
                self.known[_storage_key(column)] = _Ref("in", i)

        def ref(self, t: torch.Tensor) -> _Ref:
            key = _storage_key(t)
            if key not in self.known:
                self.keep.append(t)
                # equal scalar constants are one constant (each lowered program has its own tensor(2.)), so
                # the ops that use them are repeated subexpressions
                if t.dim() == 0:
                    by_value = (t.dtype, t.device, t.detach().cpu().numpy().tobytes())
                    if by_value not in self.scalars:
                        self.scalars[by_value] = self.constant(t)
                    self.known[key] = self.scalars[by_value]
                else:
                    self.known[key] = self.constant(t)
            return self.known[key]

        def constant(self, t: torch.Tensor) -> _Ref:
            self.constants.append(t.detach().clone())
            return _Ref("const", len(self.constants) - 1)

        def template(self, value):
            if isinstance(value, torch.Tensor):
                return self.ref(value)
            if isinstance(value, (list, tuple)):
                return type(value)(_SIZE if type(v) is int and v == TRACE_ROWS else self.template(v)
                                   for v in value)
            if isinstance(value, (torch.SymInt, torch.SymFloat)):
                raise _Untraceable("a symbolic size")
            return value

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            schema = func._schema
            if torch.Tag.nondeterministic_seeded in func.tags or func.__name__.startswith("_local_scalar"):
                raise _Untraceable(f"{func} depends on more than the operands' values")
            mutated = None
            if schema.is_mutable:
                name = schema.name.split("::")[-1]
                first = schema.arguments[0] if schema.arguments else None
                functional = getattr(getattr(torch.ops.aten, name[:-1], None), func._overloadname, None)
                if not (name.endswith("_") and first is not None and first.alias_info is not None
                        and first.alias_info.is_write and functional is not None and not kwargs.get("out")):
                    raise _Untraceable(f"{func} writes to an operand")
                mutated = _storage_key(args[0])
                if any(k[0] == mutated[0] and k != mutated for k in self.known):
                    raise _Untraceable(f"{func} writes to a tensor with views")
            # top-level ints are values (pow(x, 11)); only ints inside size lists ([11]) stand for N
            recorded = (functional if mutated else func, tuple(self.template(a) for a in args),
                        self.template(kwargs))
            out = func(*args, **kwargs)
            if not isinstance(out, torch.Tensor):
                raise _Untraceable(f"{func} does not return one tensor")
            self.keep.append(out)
            self.ops.append(recorded)
            self.values.append(out.detach().clone())
            self.known[_storage_key(out)] = _Ref("op", len(self.ops) - 1)
            return out

    return Recorder


def _refs_in(value) -> list[_Ref]:
    if isinstance(value, _Ref):
        return [value]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _refs_in(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs_in(v)]
    return []


def _substitute(value, fn):
    if isinstance(value, _Ref):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _substitute(v, fn) for k, v in value.items()}
    return value


def _hashable(value):
    if isinstance(value, _Ref):
        return ("ref", value.kind, value.index)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple((k, _hashable(v)) for k, v in sorted(value.items()))
    if isinstance(value, float) and value != value:
        return ("nan",)
    return (type(value).__name__, value)


_OUT_VARIANTS: dict = {}


def _out_variant(func):
    """The out= overload of a pointwise op with the same operands (mul.Tensor → mul.out), or None."""
    if func not in _OUT_VARIANTS:
        found = None
        if torch.Tag.pointwise in func.tags:
            operands = [(a.name, str(a.type)) for a in func._schema.arguments]
            packet = func.overloadpacket
            for name in packet.overloads():
                candidate = getattr(packet, name)
                arguments = candidate._schema.arguments
                if ([(a.name, str(a.type)) for a in arguments if a.name != "out"] == operands
                        and any(a.name == "out" and a.kwarg_only for a in arguments)):
                    found = candidate
                    break
        _OUT_VARIANTS[func] = found
    return _OUT_VARIANTS[func]


# torch functions that take an aten pointwise op's operands as they are, plus out=: ~2 µs less per call than the
# aten out= overload through torch.ops (the check against eager partials_at still compares every result bitwise)
_FAST = {name: getattr(torch, name) for name in (
    "add", "sub", "mul", "div", "neg", "pow", "where", "sin", "cos", "tan", "exp", "log", "sqrt", "rsqrt",
    "reciprocal", "sinh", "cosh", "tanh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "atan2", "sign", "sgn",
    "abs", "erf", "expm1", "log1p", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge")}


_WORKSPACES: dict[tuple, list[torch.Tensor]] = {}


def _workspace(n: int, device: torch.device, dtype: torch.dtype, index: int) -> torch.Tensor:
    """The index-th scratch buffer of n values for this thread. Every plan on a thread shares them (one replay
    runs at a time and its results are copied out before it returns), so the buffers a replay writes are the
    ones the last replay left in cache, however many programs a stream has (a Hessian's 100 exact columns)."""
    key = (n, device, dtype, threading.get_ident())
    buffers = _WORKSPACES.get(key)
    if buffers is None:
        if len(_WORKSPACES) >= 16:  # plans keep their own references: dropping a workspace only unshares it
            _WORKSPACES.pop(next(iter(_WORKSPACES)))
        buffers = _WORKSPACES[key] = []
    while len(buffers) <= index:
        buffers.append(torch.empty(n, dtype=dtype, device=device))
    return buffers[index]


class _Plan:
    """The replay at one number of points: buffers allocated once, and steps, most of them calls with every
    operand bound (buffers and constants do not move between calls; only the input columns do)."""

    def __init__(self, traced: "TracedPartials", n: int):
        ops, inputs, constants = traced.ops, len(traced.names), traced.constants
        base = inputs + len(constants)
        slot = lambda ref: ref.index if ref.kind == "in" else (  # noqa: E731
            inputs + ref.index if ref.kind == "const" else base + ref.index)
        sized = lambda value: _substitute_size(value, n)  # noqa: E731
        self.slots: list = [None] * (base + len(ops))
        for i, c in enumerate(constants):
            self.slots[inputs + i] = c.to(traced.device)
        # which ops write into a planned buffer: pointwise, out= variant, one value per point
        planned = [traced.depends[i] and _out_variant(func) is not None and traced.shapes[i] == (TRACE_ROWS,)
                   and all(traced.shape_of(r) in ((TRACE_ROWS,), ()) for r in _refs_in(args))
                   for i, (func, args, kwargs) in enumerate(ops)]
        # which planned buffers a value may alias (a view of a buffer keeps it in use)
        roots: dict[int, frozenset] = {}
        last: dict[int, float] = {}
        for i, (func, args, kwargs) in enumerate(ops):
            refs = [r for r in _refs_in((args, kwargs)) if r.kind == "op"]
            for r in refs:
                for b in roots[r.index]:
                    last[b] = i
            roots[i] = (frozenset([i]) if planned[i] else
                        frozenset().union(*(roots[r.index] for r in refs)) if traced.depends[i] else frozenset())
        for r in traced.outputs:
            if r.kind == "op":
                for b in roots[r.index]:
                    last[b] = math.inf
        fixed = lambda ref: ref.kind == "const" or (  # noqa: E731  the same object at every call
            ref.kind == "op" and (planned[ref.index] or not traced.depends[ref.index]))
        pool: dict[torch.dtype, list[torch.Tensor]] = {}
        buffer_of: dict[int, torch.Tensor] = {}
        taken: dict[torch.dtype, int] = {}  # buffers of the thread's shared workspace in use by this plan
        workspace = functools.partial(_workspace, n, traced.device)
        self.steps: list = []  # (bound call, None, ...) or (function, args, slots to fill, kwargs, target)
        for i, (func, args, kwargs) in enumerate(ops):
            args, kwargs = sized(args), sized(kwargs)
            if not traced.depends[i]:  # the same at every call: computed now
                # operands that vary only give their shape here (ones_like(x)): an empty stand-in
                resolve = lambda ref: self.slots[slot(ref)] if fixed(ref) else torch.empty(  # noqa: E731
                    _substitute_size(tuple(_SIZE if d == TRACE_ROWS else d for d in traced.shape_of(ref)), n),
                    dtype=traced.dtype_of(ref), device=traced.device)
                self.slots[base + i] = func(*_substitute(args, resolve), **_substitute(kwargs, resolve))
                continue
            if planned[i]:
                dtype = traced.dtypes[i]
                direct = [r.index for r in args if isinstance(r, _Ref) and r.kind == "op"]
                reuse = next((d for d in direct if last.get(d) == i and d in buffer_of
                              and buffer_of[d].dtype == dtype
                              and all(r.index == d or d not in roots[r.index]
                                      for r in _refs_in(args) if r.kind == "op")), None)
                if reuse is not None:
                    buffer = buffer_of.pop(reuse)
                    last.pop(reuse)
                elif pool.get(dtype):
                    buffer = pool[dtype].pop()
                else:
                    buffer = workspace(dtype, taken.setdefault(dtype, 0))
                    taken[dtype] += 1
                buffer_of[i] = buffer
                self.slots[base + i] = buffer
                name = func._schema.name.split("::")[-1]
                func = _FAST.get(name, _out_variant(func))
                kwargs = {**kwargs, "out": buffer}
            refs = _refs_in((args, kwargs))
            if planned[i] and all(fixed(r) for r in refs):
                resolve = lambda ref: self.slots[slot(ref)]  # noqa: E731
                self.steps.append((functools.partial(func, *_substitute(args, resolve),
                                                     **_substitute(kwargs, resolve)), None, None, None, None))
            elif not _refs_in(kwargs) and all(isinstance(a, _Ref) or not _refs_in(a) for a in args):
                fill = tuple((k, slot(a)) for k, a in enumerate(args) if isinstance(a, _Ref))
                self.steps.append((func, list(args), fill, kwargs, base + i))
            else:
                raise _Untraceable(f"{func} takes tensors inside lists")
            for d in [d for d, at in last.items() if at == i and d in buffer_of]:
                pool.setdefault(buffer_of[d].dtype, []).append(buffer_of.pop(d))
        self.outputs = [slot(r) for r in traced.outputs]

    def run(self, columns: list[torch.Tensor], out: Sequence[torch.Tensor] | None) -> list[torch.Tensor]:
        slots = self.slots
        slots[:len(columns)] = columns
        for func, args, fill, kwargs, target in self.steps:
            if fill is None:
                func()
                continue
            for k, s in fill:
                args[k] = slots[s]
            slots[target] = func(*args, **kwargs)
        n = columns[0].shape[0]
        if out is None:
            values = [torch.broadcast_to(slots[s], (n,)).clone() for s in self.outputs]
        else:
            values = [o.copy_(torch.broadcast_to(slots[s], o.shape)) for o, s in zip(out, self.outputs)]
        slots[:len(columns)] = [None] * len(columns)
        return values


def _substitute_size(value, n: int):
    if value is _SIZE:
        return n
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute_size(v, n) for v in value)
    if isinstance(value, dict):
        return {k: _substitute_size(v, n) for k, v in value.items()}
    return value


class TracedPartials:
    """partials_at(function, columns, partials) as a flat list of aten ops, replayed without autograd.

    Built by trace_partials (which checks it against eager partials_at). Calling it with columns of N points
    returns the partials like partials_at, or writes them into `out` (one tensor of N values per partial).
    """

    def __init__(self, names, partials, dtype, device, constants, ops, depends, values, outputs):
        self.names, self.partials = tuple(names), [tuple(p) for p in partials]
        self.dtype, self.device = dtype, device
        self.constants, self.ops, self.depends, self.outputs = constants, ops, depends, outputs
        self.shapes = [tuple(v.shape) for v in values]
        self.dtypes = [v.dtype for v in values]
        self._plans: dict[tuple[int, int], _Plan] = {}
        self._last = 0.0

    def dtype_of(self, ref: _Ref) -> torch.dtype:
        if ref.kind == "in":
            return self.dtype
        return self.constants[ref.index].dtype if ref.kind == "const" else self.dtypes[ref.index]

    def shape_of(self, ref: _Ref) -> tuple:
        if ref.kind == "in":
            return (TRACE_ROWS,)
        return tuple(self.constants[ref.index].shape) if ref.kind == "const" else self.shapes[ref.index]

    def __call__(self, columns: dict[str, torch.Tensor], deadline: float | None = None,
                 out: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        started = time.monotonic()
        if deadline is not None and started + self._last > deadline:
            raise DeadlineExceeded()
        ordered = [columns[name] for name in self.names]
        if ordered[0].dtype != self.dtype or ordered[0].device.type != self.device.type:
            raise ValueError(f"traced for {self.dtype} on {self.device}, given {ordered[0].dtype} on "
                             f"{ordered[0].device}")
        key = (ordered[0].shape[0], threading.get_ident())  # a plan's workspace belongs to one thread
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= 8:
                self._plans.pop(next(iter(self._plans)))
            plan = self._plans[key] = _Plan(self, key[0])
        with torch.no_grad():
            values = plan.run(ordered, out)
        self._last = time.monotonic() - started
        return values


def _is_one(value: torch.Tensor) -> bool:
    return value.dtype != torch.bool and bool((value == 1).all())


def trace_partials(function: Callable[[dict[str, torch.Tensor]], torch.Tensor], names: Sequence[str],
                   partials: Sequence[tuple[str, ...]], dtype: torch.dtype = torch.float64,
                   device: torch.device | str = "cpu",
                   values: Sequence[Callable[[dict[str, torch.Tensor]], torch.Tensor]] = ()) -> TracedPartials | None:
    """partials_at(function, ·, partials) recorded once and simplified; None when the recording cannot be
    replayed faithfully (the caller then stays with partials_at). Costs a few ms per hundred aten ops.

    `values`: more functions whose plain values are recorded in the same replay, as outputs after the partials.
    An op they share with the partials (the same aten op on the same operands: cos(y) in autograd's formula for
    sin(y) and in the symbolic derivative) is computed once; every value is still checked bitwise against eager."""
    device = torch.device(device)
    try:
        traced = _trace(function, list(names), partials, dtype, device, values)
        generator = torch.Generator().manual_seed(0)
        columns = {name: (torch.rand(CHECK_ROWS, generator=generator, dtype=torch.float64) * 4 - 2).to(device, dtype)
                   for name in names}
        expected = partials_at(function, columns, partials)
        with torch.no_grad():
            expected += [value(columns) for value in values]
        got = traced(columns)
    except Exception:  # noqa: BLE001  whatever the recording or the replay cannot do, eager partials_at still can
        return None
    for e, g in zip(expected, got):
        e, g = torch.broadcast_to(e, (CHECK_ROWS,)), torch.broadcast_to(g, (CHECK_ROWS,))
        if not bool(((e == g) | (e.isnan() & g.isnan())).all()):
            return None
    return traced


def _trace(function, names, partials, dtype, device, values=()) -> TracedPartials:
    generator = torch.Generator().manual_seed(1)
    columns = [(torch.rand(TRACE_ROWS, generator=generator, dtype=torch.float64) + 0.5).to(device, dtype)
               for _ in names]
    recorder = _recorder_class()(columns)
    with recorder:
        results = partials_at(function, dict(zip(names, columns)), partials)
        with torch.no_grad():
            results += [torch.broadcast_to(value(dict(zip(names, columns))), (TRACE_ROWS,)) for value in values]
    try:
        outputs = [recorder.known[_storage_key(r)] for r in results]
    except KeyError:
        raise _Untraceable("a result no recorded op produced") from None
    constants = recorder.constants
    values = recorder.values
    depends: list[bool] = []
    replace: dict[int, _Ref] = {}
    seen: dict[tuple, _Ref] = {}
    ops: list[tuple] = []

    def resolved(ref: _Ref) -> _Ref:
        return replace.get(ref.index, ref) if ref.kind == "op" else ref

    def dep(ref: _Ref) -> bool:
        return ref.kind == "in" or (ref.kind == "op" and depends[ref.index])

    def shape(ref: _Ref) -> tuple:
        return ((TRACE_ROWS,) if ref.kind == "in" else tuple(constants[ref.index].shape) if ref.kind == "const"
                else tuple(values[ref.index].shape))

    def value(ref: _Ref) -> torch.Tensor | None:
        if ref.kind == "in" or dep(ref):
            return None
        return constants[ref.index] if ref.kind == "const" else values[ref.index]

    def same(ref: _Ref, i: int) -> bool:  # ref can stand for op i's result
        v = value(ref) if ref.kind != "in" else None
        dtype_ = columns[0].dtype if ref.kind == "in" else (v.dtype if v is not None else values[ref.index].dtype)
        return shape(ref) == tuple(values[i].shape) and dtype_ == values[i].dtype

    for i, (func, args, kwargs) in enumerate(recorder.ops):
        args, kwargs = _substitute(args, resolved), _substitute(kwargs, resolved)
        name = func._schema.name.split("::")[-1]
        refs = _refs_in((args, kwargs))
        depends.append(name not in _SHAPE_ONLY and any(dep(r) for r in refs))
        ops.append((func, args, kwargs))
        first = args[0] if args and isinstance(args[0], _Ref) else None
        if name in _IDENTITIES and first is not None and len(refs) == 1 and same(first, i):
            replace[i] = first
            continue
        if func is torch.ops.aten.mul.Tensor:
            a, b = args
            for x, one in ((a, b), (b, a)):
                v = value(one) if isinstance(one, _Ref) else None
                if isinstance(x, _Ref) and v is not None and _is_one(v) and same(x, i):
                    replace[i] = x
                    break
            if i in replace:
                continue
        if (func is torch.ops.aten.pow.Tensor_Scalar and isinstance(first, _Ref) and args[1] == 1
                and same(first, i)):
            replace[i] = first
            continue
        key = (func, _hashable(args), _hashable(kwargs))
        if key in seen and same(seen[key], i):
            replace[i] = seen[key]
            continue
        seen[key] = _Ref("op", i)
    outputs = [resolved(r) for r in outputs]
    # dead code: keep only what the outputs need
    live = set()
    stack = [r.index for r in outputs if r.kind == "op"]
    while stack:
        i = stack.pop()
        if i in live:
            continue
        live.add(i)
        stack.extend(r.index for r in _refs_in(ops[i][1:]) if r.kind == "op")
    order = sorted(live)
    renumber = {old: new for new, old in enumerate(order)}
    rename = lambda ref: _Ref("op", renumber[ref.index]) if ref.kind == "op" else ref  # noqa: E731
    kept = [(ops[i][0], _substitute(ops[i][1], rename), _substitute(ops[i][2], rename)) for i in order]
    return TracedPartials(names, partials, dtype, device, constants, kept, [depends[i] for i in order],
                          [values[i] for i in order], [rename(r) for r in outputs])
