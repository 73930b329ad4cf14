"""SymPy expression → torch function, through a dispatch table keyed on SymPy classes.

The expression is compiled once into a flat program (one step per distinct subexpression, so shared
subexpressions are computed once), which is then run on tensors of any shape. No code is generated from strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
from typing import Callable

import sympy as sp
import torch

from pdiff.errors import PdiffError


class UnsupportedError(PdiffError):
    """The expression uses something pdiff cannot evaluate numerically."""


def _reciprocal_of(fn):
    return lambda x: torch.reciprocal(fn(x))


def _of_reciprocal(fn):
    return lambda x: fn(torch.reciprocal(x))


def _dirac_delta(x, *_order):
    # zero away from the origin; at the origin there is no finite value
    return torch.where(x == 0, torch.full_like(x, math.nan), torch.zeros_like(x))


def _heaviside(x, h=None):
    # torch.heaviside has no derivative at all ("not implemented"); where() has the right one: zero off the origin
    half = torch.full_like(x, 0.5) if h is None else torch.broadcast_to(h, x.shape).to(x)
    return torch.where(x > 0, torch.ones_like(x), torch.where(x < 0, torch.zeros_like(x), half))


def _abs(x):
    # not torch.abs: its second derivative is an "efficient zero" tensor without storage, which .tolist() rejects
    return x * torch.sign(x)


def _power(base, exponent):
    return torch.pow(base, exponent)


def _power_by(exponent: sp.Expr) -> Callable:
    if exponent == 2:
        return torch.square
    if exponent == -1:
        return torch.reciprocal
    if exponent == sp.Rational(1, 2):
        return torch.sqrt
    value = _constant(exponent)
    if float(value).is_integer() and abs(value) < 2**53:
        value = int(value)  # integer powers of negative numbers are real
    return lambda base: torch.pow(base, value)


# SymPy class → torch function of the lowered arguments
DISPATCH: dict[type, Callable] = {
    sp.Add: lambda *args: reduce(torch.add, args),
    sp.Mul: lambda *args: reduce(torch.mul, args),
    sp.Pow: _power,
    sp.exp: torch.exp, sp.log: torch.log,
    sp.sin: torch.sin, sp.cos: torch.cos, sp.tan: torch.tan,
    sp.cot: _reciprocal_of(torch.tan), sp.sec: _reciprocal_of(torch.cos), sp.csc: _reciprocal_of(torch.sin),
    sp.asin: torch.asin, sp.acos: torch.acos, sp.atan: torch.atan,
    sp.acot: _of_reciprocal(torch.atan), sp.asec: _of_reciprocal(torch.acos), sp.acsc: _of_reciprocal(torch.asin),
    sp.atan2: torch.atan2,
    sp.sinh: torch.sinh, sp.cosh: torch.cosh, sp.tanh: torch.tanh,
    sp.coth: _reciprocal_of(torch.tanh), sp.sech: _reciprocal_of(torch.cosh), sp.csch: _reciprocal_of(torch.sinh),
    sp.asinh: torch.asinh, sp.acosh: torch.acosh, sp.atanh: torch.atanh,
    sp.acoth: _of_reciprocal(torch.atanh), sp.asech: _of_reciprocal(torch.acosh),
    sp.acsch: _of_reciprocal(torch.asinh),
    sp.Abs: _abs, sp.sign: torch.sign, sp.erf: torch.special.erf,
    sp.Min: lambda *args: reduce(torch.minimum, args), sp.Max: lambda *args: reduce(torch.maximum, args),
    sp.Heaviside: _heaviside, sp.DiracDelta: _dirac_delta,
}


@dataclass
class Program:
    """A lowered expression: steps in dependency order, each (function, argument slots)."""

    inputs: tuple[str, ...]  # variable names, in the order of the first slots
    constants: list[float]  # constant values, in the slots after the inputs
    steps: list[tuple[Callable, tuple[int, ...]]]
    output: int  # slot holding the result
    # per step, what it computes: (the SymPy class in DISPATCH, the constant exponent of a Pow lowered with
    # _power_by, else None), for engines that need the operation rather than its torch function (pdiff.taylor)
    kinds: list[tuple[type, object]] = field(default_factory=list)
    _constant_cache: dict = field(default_factory=dict, repr=False)

    def __call__(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        first = next(iter(values.values()))
        key = (first.dtype, first.device)
        if key not in self._constant_cache:
            self._constant_cache[key] = [torch.tensor(c, dtype=first.dtype, device=first.device)
                                         for c in self.constants]
        slots = [values[name] for name in self.inputs] + list(self._constant_cache[key])
        for function, args in self.steps:
            slots.append(function(*(slots[i] for i in args)))
        return slots[self.output]


def _constant(expr: sp.Expr) -> float:
    if expr in (sp.zoo, sp.oo, -sp.oo, sp.nan):
        return {sp.oo: math.inf, -sp.oo: -math.inf}.get(expr, math.nan)
    value = complex(sp.N(expr, 17))
    if value.imag != 0:
        return math.nan  # not a real number
    return value.real


def lower(expr: sp.Expr, variables: list[str] | tuple[str, ...]) -> Program:
    """Compile `expr` into a Program taking tensors for `variables` (all must be given, used or not)."""
    inputs = tuple(variables)
    known = {sp.Symbol(name, real=True): i for i, name in enumerate(inputs)}
    constants: list[float] = []
    constant_slots: dict[sp.Expr, int] = {}
    steps: list[tuple[Callable, tuple[int, ...]]] = []
    kinds: list[tuple[type, object]] = []
    slot_of: dict[sp.Expr, int] = {}
    step_base = len(inputs)

    # constants are placed after the inputs, steps after the constants: give slots in two passes
    def visit(node: sp.Expr) -> tuple[str, int]:
        if node in slot_of:
            return slot_of[node]
        if node.is_Symbol:
            if node not in known:
                raise UnsupportedError(f"variable {node.name!r} has no value")
            ref = ("input", known[node])
        elif node.is_number and not node.free_symbols:
            if node not in constant_slots:
                constant_slots[node] = len(constants)
                constants.append(_constant(node))
            ref = ("constant", constant_slots[node])
        else:
            kind = type(node) if type(node) in DISPATCH else next(
                (cls for cls in DISPATCH if isinstance(node, cls)), None)
            if kind is None:
                raise UnsupportedError(f"cannot evaluate {type(node).__name__} numerically")
            function, operands, exponent = DISPATCH[kind], node.args, None
            if isinstance(node, sp.Pow) and node.exp.is_number and node.exp.is_real:
                # a constant exponent as a Python number: faster kernels, no gradient for the exponent
                function, operands, exponent = _power_by(node.exp), (node.base,), node.exp
            args = tuple(visit(arg) for arg in operands)
            steps.append((function, args))
            kinds.append((kind, exponent))
            ref = ("step", len(steps) - 1)
        slot_of[node] = ref
        return ref

    root = visit(expr)

    def slot(ref: tuple[str, int]) -> int:
        kind, index = ref
        if kind == "input":
            return index
        if kind == "constant":
            return step_base + index
        return step_base + len(constants) + index

    resolved = [(function, tuple(slot(a) for a in args)) for function, args in steps]
    return Program(inputs, constants, resolved, slot(root), kinds)
