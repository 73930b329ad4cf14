"""The tensor tree evaluated two ways, independently: torch on real tensors (autograd's side) and SymPy on element
symbols held in numpy object arrays (the exact side). Shapes were checked by pdiff.tensor.shapes first.

Both walk the same tree with the same operator names; only the leaves' arithmetic differs. Element-wise scalar
functions come from the scalar language's allow-list (pdiff.parse.FUNCTIONS) on the exact side and from its lowering
(pdiff.lower) on the torch side, so `cbrt`, `sec` or `acoth` mean the same thing as in a scalar expression.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache

import numpy as np
import sympy as sp

from pdiff.errors import LimitError
from pdiff.tensor.language import (
    Index,
    Name,
    Number,
    Program,
    children,
    postorder,
)

MAX_SYMBOLIC_SIZE = 6  # det and inv of at most 6×6 element symbols (Berkowitz: polynomial, but it grows fast)


def evaluate(program: Program, env: Mapping[str, object], ops: Ops):
    """The value of the tree, post-order without recursion; `env` maps names to the backend's values."""
    values: dict[int, object] = {}
    for node in postorder(program.root):
        args = [values[id(c)] for c in children(node)]
        if isinstance(node, Number):
            values[id(node)] = ops.number(node.value)
        elif isinstance(node, Name):
            values[id(node)] = env[node.name]
        elif isinstance(node, Index):
            values[id(node)] = args[0][node.indexes]
        elif node.op in ("pow", "epow") and isinstance(node.args[1], Number):
            values[id(node)] = ops.power_by(args[0], node.args[1].value)
        else:
            values[id(node)] = ops.apply(node.op, args)
    return values[id(program.root)]


class Ops:
    number: Callable
    power_by: Callable
    apply: Callable


# ---- the exact side: numpy object arrays of SymPy expressions

def _scalar_function(name: str) -> Callable:
    from pdiff.parse import FUNCTIONS

    return FUNCTIONS[name][0]


def _elementwise(function: Callable, *arrays):
    if not any(isinstance(a, np.ndarray) for a in arrays):
        return function(*arrays)
    return np.frompyfunc(function, len(arrays), 1)(*arrays)


def _flat(value) -> list:
    return list(value.flat) if isinstance(value, np.ndarray) else [value]


def _matrix(value: np.ndarray, name: str) -> sp.Matrix:
    if value.shape[0] > MAX_SYMBOLIC_SIZE:
        raise LimitError(f"{name} of a {value.shape[0]}x{value.shape[0]} matrix is beyond the exact side's "
                         f"{MAX_SYMBOLIC_SIZE}x{MAX_SYMBOLIC_SIZE}")
    return sp.Matrix(value.tolist())


def _softmax_exact(x: np.ndarray) -> np.ndarray:
    exps = _elementwise(sp.exp, x)
    return exps / sp.Add(*exps.flat)


_EXACT: dict[str, Callable] = {
    "add": lambda a, b: _elementwise(sp.Add, a, b), "sub": lambda a, b: _elementwise(lambda u, v: u - v, a, b),
    "mul": lambda a, b: _elementwise(sp.Mul, a, b), "emul": lambda a, b: _elementwise(sp.Mul, a, b),
    "div": lambda a, b: _elementwise(lambda u, v: u / v, a, b), "ediv": lambda a, b: _elementwise(lambda u, v: u / v, a, b),
    "pow": lambda a, b: _elementwise(sp.Pow, a, b), "epow": lambda a, b: _elementwise(sp.Pow, a, b),
    "neg": lambda a: _elementwise(lambda u: -u, a),
    "matmul": lambda a, b: np.matmul(a, b),
    "transpose": lambda a: a.T if isinstance(a, np.ndarray) else a,
    "sum": lambda a: sp.Add(*_flat(a)), "mean": lambda a: sp.Add(*_flat(a)) / len(_flat(a)),
    "outer": lambda a, b: np.multiply.outer(a, b),
    "prod": lambda a: sp.Mul(*_flat(a)), "dot": lambda a, b: sp.Add(*(u * v for u, v in zip(a.flat, b.flat))),
    "norm": lambda a: sp.sqrt(sp.Add(*(u**2 for u in _flat(a)))),
    "tr": lambda a: sp.Add(*np.diagonal(a)), "trace": lambda a: sp.Add(*np.diagonal(a)),
    "det": lambda a: _matrix(a, "det").det(method="berkowitz"),
    "logdet": lambda a: sp.log(_matrix(a, "logdet").det(method="berkowitz")),
    "inv": lambda a: np.array(_matrix(a, "inv").inv(method="LU").tolist(), dtype=object),
    "diag": lambda a: np.diag(a) if a.ndim == 2 else np.array(sp.diag(*a).tolist(), dtype=object),
    "sigmoid": lambda a: _elementwise(lambda u: 1 / (1 + sp.exp(-u)), a),
    "relu": lambda a: _elementwise(lambda u: sp.Max(0, u), a),
    "softplus": lambda a: _elementwise(lambda u: sp.log(1 + sp.exp(u)), a),
    "softmax": _softmax_exact,
    "log_softmax": lambda a: a - sp.log(sp.Add(*_elementwise(sp.exp, a).flat)),
    "logsumexp": lambda a: sp.log(sp.Add(*(sp.exp(u) for u in _flat(a)))),
}


class ExactOps(Ops):
    @staticmethod
    def number(value: sp.Expr) -> sp.Expr:
        return value

    @staticmethod
    def power_by(base, exponent: sp.Expr):
        from pdiff.parse import _safe_pow

        return _elementwise(lambda u: _safe_pow(u, exponent), base)

    @staticmethod
    def apply(op: str, args: list):
        if op in _EXACT:
            return _EXACT[op](*args)
        if op in ("max", "min"):
            function = sp.Max if op == "max" else sp.Min
            if len(args) == 1:
                return function(*_flat(args[0]))
            return _elementwise(function, *args)
        return _elementwise(_scalar_function(op), *args)


def exact_components(program: Program, shapes: Mapping[str, tuple[int, ...]]) -> list[sp.Expr]:
    """The expression in element symbols, its elements row-major (one for a scalar expression)."""
    env = {name: element_symbols(name, shape) for name, shape in shapes.items()}
    value = evaluate(program, env, ExactOps)
    flat = list(value.flat) if isinstance(value, np.ndarray) else [value]
    # numpy fills some entries with Python ints (the zeros of diag); everything else is already SymPy
    return [sp.Integer(v) if isinstance(v, int) else v for v in flat]


def element_symbols(name: str, shape: tuple[int, ...]):
    """The exact side's value of a variable: a real symbol per element, named W[0,1] (0-based)."""
    from pdiff.parse import symbol
    from pdiff.tensor.shapes import elements

    names = elements(name, shape)
    if not shape:
        return symbol(name)
    return np.array([symbol(n) for n in names], dtype=object).reshape(shape)


# ---- the numeric side: torch

@lru_cache(maxsize=256)
def _lowered(name: str, exponent: sp.Expr | None = None):
    """A scalar function (or a constant power) of one variable, lowered once; it runs on tensors of any shape."""
    from pdiff.lower import lower
    from pdiff.parse import symbol

    t = symbol("t")
    expr = t**exponent if exponent is not None else _scalar_function(name)(t)
    return lower(expr, ["t"])


def _torch_table(torch) -> dict[str, Callable]:
    """Operator and function names → torch functions of the evaluated arguments, built once."""
    def extremum(reduce, combine):
        def apply(a, *rest):
            if not rest:
                return reduce(a)
            for b in rest:
                a = combine(*torch.broadcast_tensors(a, b))
            return a
        return apply

    return {
        "add": torch.add, "sub": torch.sub, "mul": torch.mul, "emul": torch.mul, "div": torch.div,
        "ediv": torch.div, "pow": torch.pow, "epow": torch.pow, "neg": torch.neg, "matmul": torch.matmul,
        "dot": torch.dot, "outer": torch.outer, "atan2": torch.atan2,
        "sum": torch.sum, "mean": torch.mean, "prod": torch.prod, "norm": torch.linalg.vector_norm,
        "tr": torch.trace, "trace": torch.trace, "det": torch.linalg.det, "logdet": torch.logdet,
        "inv": torch.linalg.inv, "diag": torch.diag, "sigmoid": torch.sigmoid, "relu": torch.relu,
        "softplus": torch.nn.functional.softplus, "softmax": lambda u: torch.softmax(u, -1),
        "log_softmax": lambda u: torch.log_softmax(u, -1), "logsumexp": lambda u: torch.logsumexp(u.reshape(-1), 0),
        "transpose": lambda u: u.mT if u.dim() == 2 else u,
        "max": extremum(torch.amax, torch.maximum), "min": extremum(torch.amin, torch.minimum),
    }


class TorchOps(Ops):
    def __init__(self, dtype, device):
        import torch

        self.torch, self.dtype, self.device = torch, dtype, device
        self._numbers: dict = {}  # constants made once per backend, not on every call
        self.table = _torch_table(torch)

    def number(self, value: sp.Expr):
        if value not in self._numbers:
            self._numbers[value] = self.torch.tensor(float(sp.N(value, 17)), dtype=self.dtype, device=self.device)
        return self._numbers[value]

    def function(self, op: str) -> Callable:
        """The torch function of an operator or function name (a scalar function through pdiff.lower)."""
        if op in self.table:
            return self.table[op]
        program = _lowered(op)
        return lambda a: program({"t": a})

    def power(self, exponent: sp.Expr) -> Callable:
        if exponent == 2:
            return lambda base: base * base
        program = _lowered("pow", exponent)
        return lambda base: program({"t": base})

    def power_by(self, base, exponent: sp.Expr):
        return self.power(exponent)(base)

    def apply(self, op: str, args: list):
        return self.function(op)(*args)


def compile_torch(program: Program, ops: TorchOps) -> Callable[[Mapping[str, object]], object]:
    """The tree as a flat list of torch calls, resolved once (no walk, no dispatch per call): for benchmarks and
    many calls of one expression."""
    slots: dict[int, int] = {}
    steps: list[tuple[Callable, tuple[int, ...]]] = []
    inputs: list[str] = []
    constants: list = []
    order = postorder(program.root)
    leaves = [n for n in order if isinstance(n, (Name, Number))]
    for node in leaves:
        if isinstance(node, Name):
            slots[id(node)] = len(inputs)
            inputs.append(node.name)
    for node in leaves:
        if isinstance(node, Number):
            slots[id(node)] = len(inputs) + len(constants)
            constants.append(ops.number(node.value))
    base = len(inputs) + len(constants)
    for node in order:
        if isinstance(node, (Name, Number)):
            continue
        if isinstance(node, Index):
            index = node.indexes
            function, args = (lambda a, index=index: a[index]), (slots[id(node.base)],)
        elif node.op in ("pow", "epow") and isinstance(node.args[1], Number):
            function, args = ops.power(node.args[1].value), (slots[id(node.args[0])],)
        else:
            function, args = ops.function(node.op), tuple(slots[id(a)] for a in node.args)
        slots[id(node)] = base + len(steps)
        steps.append((function, args))
    output = slots[id(program.root)]

    def run(env: Mapping[str, object]):
        values = [env[name] for name in inputs] + constants
        for function, args in steps:
            values.append(function(*[values[i] for i in args]))
        return values[output]

    return run
