"""Shapes of a tensor expression: inferred over the tree, checked with one-line errors naming both shapes.

A shape is a tuple of sizes; a size is a number or a name (`n` of `--var x:n`), and names are unified as the
tree is walked (`A @ x` with A: n×n and x: m makes m = n). Sizes left open are drawn at random by `pdiff check`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pdiff.errors import InputError
from pdiff.tensor.language import (
    ELEMENTWISE,
    Apply,
    Index,
    Name,
    Node,
    Number,
    Program,
    children,
    postorder,
)

Size = int | str
Shape = tuple[Size, ...]

MAX_ELEMENTS_NUMERIC = 10**7  # one variable's elements on the numeric side
MAX_RANK = 2


class ShapeError(InputError):
    """The shapes of an expression do not fit together."""


def shape_text(shape: Shape) -> str:
    """2x3 for a matrix, 3 for a vector, scalar for ()."""
    return "scalar" if not shape else "x".join(str(s) for s in shape)


def described(shape: Shape) -> str:
    """For sentences: `a 2x3 matrix`, `a vector of 3`, `a scalar`."""
    if not shape:
        return "a scalar"
    if len(shape) == 1:
        return f"a vector of {shape[0]}"
    return f"a {shape_text(shape)} matrix"


def parse_declaration(text: str) -> tuple[str, Shape | None]:
    """`W:2x3` → ("W", (2, 3)); `x:n` → ("x", ("n",)); `a` → ("a", None) (a name declared, no shape)."""
    name, colon, spec = text.strip().partition(":")
    name = name.strip()
    if not name.isidentifier():
        raise InputError(f"--var {text.strip()!r}: {name!r} is not a variable name")
    if not colon:
        return name, None
    spec = spec.strip().replace("×", "x")
    if spec in ("", "1x1", "scalar"):
        return name, () if spec else None
    parts = [p.strip() for p in re.split(r"\s*[x,*]\s*", spec)] if re.search(r"[0-9]", spec) or "," in spec \
        else _letters(spec)
    if not parts or len(parts) > MAX_RANK or not all(re.fullmatch(r"[0-9]+|[A-Za-z][A-Za-z0-9_]*", p) for p in parts):
        raise InputError(f"--var {text.strip()!r}: give a shape like W:2x3, x:3, A:nxn or x:n (vectors and matrices)")
    shape = tuple(int(p) if p.isdigit() else p for p in parts)
    if any(s == 0 for s in shape):
        raise InputError(f"--var {text.strip()!r}: a size must be at least 1")
    return name, shape


def _letters(spec: str) -> list[str]:
    # nxn, mxn, n: sizes named by single letters joined by x
    if "x" in spec and re.fullmatch(r"[A-Za-z](x[A-Za-z])?", spec):
        return spec.split("x")
    return [spec]


class Sizes:
    """Union-find over size names, each class bound to at most one number."""

    def __init__(self):
        self.parent: dict[str, str] = {}
        self.value: dict[str, int] = {}

    def find(self, size: Size) -> Size:
        if isinstance(size, int):
            return size
        self.parent.setdefault(size, size)
        while self.parent[size] != size:
            self.parent[size] = self.parent[self.parent[size]]
            size = self.parent[size]
        return self.value.get(size, size)

    def unify(self, a: Size, b: Size) -> bool:
        a, b = self.find(a), self.find(b)
        if a == b:
            return True
        if isinstance(a, int) and isinstance(b, int):
            return False
        if isinstance(a, int):
            a, b = b, a
        if isinstance(b, int):
            self.value[a] = b
        else:
            self.parent[a] = b
        return True

    def resolve(self, shape: Shape) -> Shape:
        return tuple(self.find(s) for s in shape)


@dataclass
class Inference:
    """The shape of every node (by id), with the size classes."""

    program: Program
    sizes: Sizes
    shapes: dict[int, Shape]

    def shape(self, node: Node) -> Shape:
        return self.sizes.resolve(self.shapes[id(node)])

    @property
    def output(self) -> Shape:
        return self.shape(self.program.root)


def infer(program: Program, variables: Mapping[str, Shape], sizes: Sizes | None = None) -> Inference:
    """Shapes of every node; a variable without a shape is a scalar. Raises ShapeError with both shapes."""
    result = Inference(program, sizes or Sizes(), {})
    for node in postorder(program.root):
        result.shapes[id(node)] = _shape_of(node, [result.shape(c) for c in children(node)], variables, result)
    return result


def _error(inference: Inference, node: Node, message: str) -> ShapeError:
    return ShapeError(f"shape error in {inference.program.shown(node)!r}: {message}")


def _same(inference: Inference, node: Node, a: Shape, b: Shape, verb: str) -> Shape:
    if not a:
        return b
    if not b:
        return a
    if len(a) != len(b) or not all(inference.sizes.unify(x, y) for x, y in zip(a, b)):
        raise _error(inference, node, f"{verb} {shape_text(a)} and {shape_text(b)} (shapes must be equal, or one "
                                      "side a scalar)")
    return inference.sizes.resolve(a)


def _square(inference: Inference, node: Node, shape: Shape) -> int | str:
    if len(shape) != 2 or not inference.sizes.unify(shape[0], shape[1]):
        raise _error(inference, node, f"{node.op} needs a square matrix, got {shape_text(shape)}")
    return inference.sizes.find(shape[0])


def _shape_of(node: Node, args: list[Shape], variables: Mapping[str, Shape], inference: Inference) -> Shape:
    if isinstance(node, Number):
        return ()
    if isinstance(node, Name):
        return tuple(variables.get(node.name, ()))
    if isinstance(node, Index):
        (base,) = args
        if len(node.indexes) > len(base):
            raise _error(inference, node, f"{len(node.indexes)} indexes into a {shape_text(base)} "
                                          f"{'scalar' if not base else 'tensor'}")
        for position, (index, size) in enumerate(zip(node.indexes, base)):
            if isinstance(size, int) and index >= size:
                raise _error(inference, node, f"index {index} is out of range for size {size} (axis {position}; "
                                              "indexes count from 0, as in PyTorch)")
        return base[len(node.indexes):]
    op = node.op
    if op in ("add", "sub"):
        return _same(inference, node, *args, "adds" if op == "add" else "subtracts")
    if op in ("emul", "ediv"):
        return _same(inference, node, *args, "combines element-wise")
    if op in ("mul", "div"):
        a, b = args
        if op == "div" and b:
            raise _error(inference, node, f"divides by a {shape_text(b)} tensor: write ./ for element-wise division")
        if a and b:
            raise _error(inference, node, f"multiplies {shape_text(a)} by {shape_text(b)} with '*': write @ for the "
                                          "matrix product, .* element-wise, or dot(x, y)")
        return a or b
    if op == "matmul":
        return _matmul(inference, node, *args)
    if op in ("pow", "epow"):
        base, exponent = args
        if op == "pow" and exponent:
            raise _error(inference, node, "the exponent is a tensor: write .^ for an element-wise power")
        if op == "pow" and len(base) == 2:
            raise _error(inference, node, f"'^' of a {shape_text(base)} matrix reads two ways: write A .^ 2 "
                                          "element-wise, or A @ A for the matrix product")
        return _same(inference, node, base, exponent, "combines element-wise") if op == "epow" else base
    if op == "neg":
        return args[0]
    if op == "transpose":
        (a,) = args
        return (a[1], a[0]) if len(a) == 2 else a
    return _function(inference, node, args)


def _matmul(inference: Inference, node: Node, a: Shape, b: Shape) -> Shape:
    if not a or not b:
        raise _error(inference, node, "@ multiplies two tensors; for a scalar factor write *")
    inner_a, inner_b = a[-1], b[0]
    if not inference.sizes.unify(inner_a, inner_b):
        raise _error(inference, node, f"@ of {shape_text(a)} and {shape_text(b)}: inner sizes {inner_a} and "
                                      f"{inner_b} differ")
    return inference.sizes.resolve(a[:-1] + b[1:])


def _function(inference: Inference, node: Apply, args: list[Shape]) -> Shape:
    name = node.op
    from pdiff.tensor.language import TENSOR_FUNCTIONS

    counts = TENSOR_FUNCTIONS.get(name)
    if counts is not None and len(args) not in counts:
        raise InputError(f"{name}() takes {counts[0]} argument{'s' if counts[0] != 1 else ''}, got {len(args)}")
    if name in ("max", "min"):
        if len(args) == 1:
            return ()  # over the elements of a vector or matrix
        shape: Shape = ()
        for a in args:
            shape = _same(inference, node, shape, a, "combines")
        return shape
    if name == "atan2":
        if len(args) != 2:
            raise InputError(f"atan2() takes 2 arguments, got {len(args)}")
        return _same(inference, node, *args, "combines")
    if name in ELEMENTWISE or name in ("sigmoid", "relu", "softplus"):
        if len(args) != 1:
            raise InputError(f"{name}() takes 1 argument, got {len(args)}")
        return args[0]
    (a, *rest) = args
    if name in ("sum", "mean", "prod", "norm", "logsumexp"):
        return ()
    if name == "outer":
        b = rest[0]
        if len(a) != 1 or len(b) != 1:
            raise _error(inference, node, f"outer needs two vectors, got {shape_text(a)} and {shape_text(b)}")
        return (a[0], b[0])
    if name == "dot":
        b = rest[0]
        if len(a) != 1 or len(b) != 1 or not inference.sizes.unify(a[0], b[0]):
            raise _error(inference, node, f"dot needs two vectors of one length, got {shape_text(a)} and "
                                          f"{shape_text(b)}")
        return ()
    if name in ("tr", "trace", "det", "logdet"):
        _square(inference, node, a)
        return ()
    if name == "inv":
        size = _square(inference, node, a)
        return (size, size)
    if name == "diag":
        if len(a) == 1:
            return (a[0], a[0])
        return (_square(inference, node, a),)
    if name == "transpose":
        return (a[1], a[0]) if len(a) == 2 else a
    if name in ("softmax", "log_softmax"):
        if len(a) != 1:
            raise _error(inference, node, f"{name} takes a vector, got {shape_text(a)}")
        return a
    raise InputError(f"unknown function {name!r}")  # pragma: no cover - the grammar knows only these


def assumed_ranks(program: Program, known: Mapping[str, Shape]) -> dict[str, Shape]:
    """Shapes with named sizes for variables no value or --var gave (`pdiff check` draws the sizes): an operand of
    @ (or its transpose) or of tr/det/logdet/inv is a matrix, of dot/softmax a vector; any other is a scalar."""
    ranks: dict[str, int] = {}
    stack: list[tuple[Node, str | None]] = [(program.root, None)]
    while stack:
        node, role = stack.pop()
        if isinstance(node, Name) and node.name not in known:
            rank = {"matrix": 2, "vector": 1}.get(role or "", 0)
            ranks[node.name] = max(ranks.get(node.name, 0), rank)
        elif isinstance(node, Index):
            stack.append((node.base, "vector" if len(node.indexes) == 1 else "matrix"))
        elif isinstance(node, Apply):
            child_role = ("matrix" if node.op in ("matmul", "tr", "trace", "det", "logdet", "inv") else
                          "vector" if node.op in ("dot", "softmax", "log_softmax") else
                          role if node.op == "transpose" else None)
            stack.extend((arg, child_role) for arg in node.args)
    return {name: tuple(f"{name}.{axis}" for axis in range(rank)) for name, rank in ranks.items()}


def draw_sizes(inference: Inference, shapes: Mapping[str, Shape], rng: random.Random,
               choices: Sequence[int] = (2, 3, 4)) -> dict[str, tuple[int, ...]]:
    """Concrete shapes: every open size class gets its own random size (distinct where the choices allow, so a
    product that holds only for square matrices is caught)."""
    open_classes = sorted({s for shape in shapes.values() for s in inference.sizes.resolve(shape)
                           if isinstance(s, str)})
    pool = list(choices)
    rng.shuffle(pool)
    for k, name in enumerate(open_classes):
        inference.sizes.unify(name, pool[k % len(pool)] if k < len(pool) else rng.choice(choices))
    return {name: tuple(int(s) for s in inference.sizes.resolve(shape)) for name, shape in shapes.items()}


def elements(name: str, shape: tuple[int, ...]) -> list[str]:
    """The element names of a variable, row-major: W[0,0], W[0,1], ...; x[0], x[1], ...; a for a scalar."""
    if not shape:
        return [name]
    if len(shape) == 1:
        return [f"{name}[{i}]" for i in range(shape[0])]
    return [f"{name}[{i},{j}]" for i in range(shape[0]) for j in range(shape[1])]
