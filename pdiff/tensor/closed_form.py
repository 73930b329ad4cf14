"""A closed matrix form of a gradient, such as (A.T + A) @ x for x.T @ A @ x, by reverse mode on the tree.

Each rule is the textbook adjoint (the Matrix Cookbook's identities in reverse-mode form: for C = A @ B,
Ā = C̄ @ Bᵀ and B̄ = Aᵀ @ C̄; for log det X, X̄ = s·X⁻ᵀ ...), built as a tensor expression and tidied by a few
rewrites (1·M = M, I @ M = M, M1 @ v + M2 @ v = (M1 + M2) @ v). Where a result would need a tensor the language
cannot write (a matrix of ones, an identity, a one-hot), there is no closed form. The form is only shown after
it agrees with autograd at random values (pdiff.tensor.grading), so a rule slip could hide a form, never show a
wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from pdiff.tensor.language import Apply, Index, Name, Node, Number, Program, postorder
from pdiff.tensor.shapes import Inference

_AT = (0, 0)


class NoClosedForm(Exception):
    """The gradient needs a tensor the language cannot write, or a function without an adjoint rule here."""


@dataclass(frozen=True)
class Fill(Node):
    """A tensor every element of which is the scalar `value` (the adjoint of a sum)."""

    value: Node
    shape: tuple


@dataclass(frozen=True)
class Eye(Node):
    """`value` times the identity (the adjoint of a trace)."""

    value: Node
    size: int


def _is_transpose(node: Node) -> bool:
    return isinstance(node, Apply) and node.op == "transpose"


def _number(value) -> Number:
    return Number(_AT, sp.Integer(value) if isinstance(value, int) else value)  # numbers pdiff made, never text


ZERO, ONE = _number(0), _number(1)


class _Builder:
    """Constructors that keep shapes and tidy as they build."""

    def __init__(self, inference: Inference):
        self.program = inference.program
        self.shapes: dict[Node, tuple] = {}
        self.inference = inference
        self._rebuilt: dict[int, Node] = {}

    def shape(self, node: Node) -> tuple:
        if isinstance(node, Fill):
            return node.shape
        if isinstance(node, Eye):
            return (node.size, node.size)
        if isinstance(node, Number):
            return ()
        if node in self.shapes:
            return self.shapes[node]
        return tuple(int(s) for s in self.inference.shape(node))

    def _new(self, op: str, shape: tuple, *args: Node) -> Node:
        node = Apply(_AT, op, tuple(args))
        self.shapes[node] = shape
        return node

    def rebuild(self, node: Node) -> Node:
        """A node of the user's tree through these constructors (x.T of a vector is x; v @ M is M.T @ v)."""
        if not isinstance(node, Apply) or node in self.shapes:
            return node
        if id(node) in self._rebuilt:
            return self._rebuilt[id(node)]
        args = [self.rebuild(a) for a in node.args]
        shape = tuple(int(s) for s in self.inference.shape(node))
        if node.op == "transpose":
            new = self.transpose(args[0])
        elif node.op == "matmul":
            new = self.matmul(*args)
        else:
            new = self._new(node.op, shape, *args)
        self._rebuilt[id(node)] = new
        return new

    def same(self, a: Node, b: Node) -> bool:
        """The same expression, wherever in the text each came from."""
        from pdiff.tensor.language import to_text

        if isinstance(a, (Fill, Eye)) or isinstance(b, (Fill, Eye)):
            return a == b
        return a == b or to_text(self.program, a) == to_text(self.program, b)

    def scalar(self, node: Node) -> bool:
        return self.shape(node) == ()

    def mul(self, a: Node, b: Node) -> Node:
        """a * b with a scalar on one side."""
        if not self.scalar(a):
            a, b = b, a
        if a == ZERO or b == ZERO:
            return ZERO
        if a == ONE:
            return b
        if b == ONE:
            return a
        if isinstance(b, Fill):
            return Fill(_AT, self.mul(a, b.value), b.shape)
        if isinstance(b, Eye):
            return Eye(_AT, self.mul(a, b.value), b.size)
        if isinstance(a, Number) and isinstance(b, Number):
            return _number(a.value * b.value)
        if isinstance(a, Number) and isinstance(b, Apply) and b.op == "mul" and isinstance(b.args[0], Number):
            return self.mul(_number(a.value * b.args[0].value), b.args[1])
        if isinstance(a, Number) and a.value == -1:
            return self.neg(b)
        if isinstance(b, Apply) and b.op == "div":  # s * (v / s) = v; (k s) * (v / s) = k v
            v, d = b.args
            if self.same(d, a):
                return v
            if isinstance(a, Apply) and a.op == "mul" and isinstance(a.args[0], Number) and self.same(a.args[1], d):
                return self.mul(a.args[0], v)
        return self._new("mul", self.shape(b), a, b)

    def neg(self, a: Node) -> Node:
        if isinstance(a, Number):
            return _number(-a.value)
        if isinstance(a, Apply) and a.op == "neg":
            return a.args[0]
        if isinstance(a, (Fill, Eye)):
            raise NoClosedForm
        return self._new("neg", self.shape(a), a)

    def add(self, a: Node, b: Node) -> Node:
        if a == ZERO:
            return b
        if b == ZERO:
            return a
        if isinstance(a, (Fill, Eye)) or isinstance(b, (Fill, Eye)):
            raise NoClosedForm
        if self.same(a, b):
            return self.mul(_number(2), a)
        if _is_transpose(a) and not _is_transpose(b):  # A + A.T, as people write it
            a, b = b, a
        if isinstance(b, Apply) and b.op == "neg":
            return self._new("sub", self.shape(a), a, b.args[0])
        # M1 @ v + M2 @ v = (M1 + M2) @ v
        if (isinstance(a, Apply) and isinstance(b, Apply) and a.op == b.op == "matmul" and self.same(a.args[1], b.args[1])
                and self.shape(a.args[0]) == self.shape(b.args[0])):
            return self.matmul(self.add(a.args[0], b.args[0]), a.args[1])
        return self._new("add", self.shape(a), a, b)

    def transpose(self, a: Node) -> Node:
        shape = self.shape(a)
        if len(shape) < 2:
            return a  # a vector is its own transpose
        if isinstance(a, Eye):
            return a
        if isinstance(a, Fill):
            return Fill(_AT, a.value, shape[::-1])
        if isinstance(a, Apply) and a.op == "transpose":
            return a.args[0]
        if isinstance(a, Apply) and a.op == "matmul":  # (P @ Q).T = Q.T @ P.T
            return self.matmul(self.transpose(a.args[1]), self.transpose(a.args[0]))
        return self._new("transpose", shape[::-1], a)

    def matmul(self, a: Node, b: Node) -> Node:
        if isinstance(a, Eye):
            return self.mul(a.value, b)
        if isinstance(b, Eye):
            return self.mul(b.value, a)
        if isinstance(a, Fill) or isinstance(b, Fill):
            raise NoClosedForm
        if isinstance(b, Apply) and b.op == "mul" and isinstance(b.args[0], Number):  # M @ (k v) = k (M @ v)
            return self.mul(b.args[0], self.matmul(a, b.args[1]))
        sa, sb = self.shape(a), self.shape(b)
        if len(sa) == 1 and len(sb) == 2:  # v @ M is Mᵀ @ v: matrices first, as people write them
            return self.matmul(self.transpose(b), a)
        return self._new("matmul", sa[:-1] + sb[1:], a, b)

    def outer(self, u: Node, v: Node) -> Node:
        if isinstance(u, Fill) or isinstance(v, Fill):
            raise NoClosedForm
        return self._new("outer", self.shape(u) + self.shape(v), u, v)

    def ewise(self, op: str, a: Node, b: Node) -> Node:
        """a .* b, a ./ b with equal shapes (a scalar on one side becomes * and /)."""
        if isinstance(a, Fill):
            return self.mul(a.value, b) if op == "emul" else self.mul(a.value, self.ewise("ediv", ONE, b))
        if op == "emul":
            if isinstance(b, Fill):
                return self.mul(b.value, a)
            if self.scalar(a) or self.scalar(b):
                return self.mul(a, b)
        if isinstance(b, (Fill, Eye)) or isinstance(a, Eye):
            raise NoClosedForm
        if op == "ediv" and self.scalar(b):
            return self._new("div", self.shape(a), a, b)
        shape = self.shape(a) or self.shape(b)
        return self._new(op, shape, a, b)

    def call(self, name: str, *args: Node) -> Node:
        shape = {"sum": (), "norm": (), "det": (), "dot": (), "softmax": self.shape(args[0]),
                 "inv": self.shape(args[0])}.get(name, self.shape(args[0]))
        if any(isinstance(a, (Fill, Eye)) for a in args):
            raise NoClosedForm
        return self._new(name, shape, *args)


def _derivative(b: _Builder, name: str, a: Node) -> Node:
    """f'(a) element-wise, for the scalar functions with a textbook derivative."""
    one = ONE
    if name == "exp":
        return b.call("exp", a)
    if name in ("log", "ln"):
        return b.ewise("ediv", one, a)
    if name == "sin":
        return b.call("cos", a)
    if name == "cos":
        return b.neg(b.call("sin", a))
    if name == "tanh":
        return b._new("sub", b.shape(a), one, b._new("epow", b.shape(a), b.call("tanh", a), _number(2)))
    if name == "sigmoid":
        s = b.call("sigmoid", a)
        return b.ewise("emul", s, b._new("sub", b.shape(a), one, s))
    if name == "softplus":
        return b.call("sigmoid", a)
    if name == "sqrt":
        return b.ewise("ediv", _number(sp.Rational(1, 2)), b.call("sqrt", a))
    raise NoClosedForm


def gradient(program: Program, inference: Inference, wrt: str) -> Node:
    """∂f/∂wrt as a tensor expression; raises NoClosedForm."""
    b = _Builder(inference)
    order = postorder(program.root)
    adjoint: dict[int, Node] = {id(program.root): ONE}
    result: Node = ZERO

    def give(node: Node, value: Node) -> None:
        adjoint[id(node)] = b.add(adjoint[id(node)], value) if id(node) in adjoint else value

    for node in reversed(order):
        g = adjoint.get(id(node))
        if g is None or isinstance(node, Number):
            continue
        if isinstance(node, Name):
            if node.name == wrt:
                result = b.add(result, g)
            continue
        if isinstance(node, Index):
            raise NoClosedForm  # the adjoint of an element is a one-hot tensor
        _rule(b, node, g, give)
    if isinstance(result, (Fill, Eye)) or result == ZERO:
        raise NoClosedForm
    return result


def _reduce(b: _Builder, g: Node, to: Node) -> Node:
    """The adjoint of a scalar broadcast against a tensor: the sum of the tensor's adjoint."""
    if b.scalar(to) and not b.scalar(g):
        if isinstance(g, Fill):
            raise NoClosedForm
        return b.call("sum", g)
    return g


def _rule(b: _Builder, node: Apply, g: Node, give) -> None:
    targets = node.args  # adjoints go to the user's nodes; formulas use their tidied copies
    op, args = node.op, tuple(b.rebuild(a) for a in node.args)
    node = b.rebuild(node)

    def give_to(i: int, value: Node) -> None:
        give(targets[i], value)

    if op in ("add", "sub"):
        left, right = args
        give_to(0, _reduce(b, g, left))
        give_to(1, _reduce(b, g if op == "add" else b.neg(g), right))
    elif op == "neg":
        give_to(0, b.neg(g))
    elif op in ("mul", "emul"):
        left, right = args
        give_to(0, _reduce(b, b.ewise("emul", g, right), left))
        give_to(1, _reduce(b, b.ewise("emul", g, left), right))
    elif op in ("div", "ediv"):
        left, right = args
        give_to(0, _reduce(b, b.ewise("ediv", g, right), left))
        square = b._new("epow" if not b.scalar(right) else "pow", b.shape(right), right, _number(2))
        give_to(1, _reduce(b, b.neg(b.ewise("ediv", b.ewise("emul", g, left), square)), right))
    elif op == "matmul":
        left, right = args
        rank = (len(b.shape(left)), len(b.shape(right)))
        if rank == (2, 2):
            give_to(0, b.matmul(g, b.transpose(right)))
            give_to(1, b.matmul(b.transpose(left), g))
        elif rank == (2, 1):
            give_to(0, b.outer(g, right))
            give_to(1, b.matmul(b.transpose(left), g))
        elif rank == (1, 2):
            give_to(0, b.matmul(right, g))
            give_to(1, b.outer(left, g))
        else:
            give_to(0, b.mul(g, right))
            give_to(1, b.mul(g, left))
    elif op == "transpose":
        give_to(0, b.transpose(g))
    elif op in ("pow", "epow") and isinstance(args[1], Number):
        base, exponent = args[0], args[1].value
        if exponent == 2:
            factor = b.mul(_number(2), base)
        else:
            factor = b.mul(_number(exponent), b._new(op, b.shape(base), base, _number(exponent - 1)))
        give_to(0, b.ewise("emul", g, factor))
    elif op == "sum":
        give_to(0, Fill(_AT, g, b.shape(args[0])) if not b.scalar(args[0]) else g)
    elif op == "mean":
        count = 1
        for size in b.shape(args[0]):
            count *= size
        give_to(0, Fill(_AT, b.mul(_number(sp.Rational(1, count)), g), b.shape(args[0])))
    elif op == "dot":
        give_to(0, b.mul(g, args[1]))
        give_to(1, b.mul(g, args[0]))
    elif op == "norm":
        give_to(0, b.mul(g, b.ewise("ediv", args[0], node)))
    elif op in ("tr", "trace"):
        give_to(0, Eye(_AT, g, b.shape(args[0])[0]))
    elif op == "logdet":
        give_to(0, b.mul(g, b.transpose(b.call("inv", args[0]))))
    elif op == "det":
        give_to(0, b.mul(b.mul(g, node), b.transpose(b.call("inv", args[0]))))
    elif op == "inv":
        inverse_t = b.transpose(node)
        give_to(0, b.neg(b.matmul(b.matmul(inverse_t, g), inverse_t)))
    elif op == "logsumexp" and len(b.shape(args[0])) == 1:
        give_to(0, b.mul(g, b.call("softmax", args[0])))
    elif len(args) == 1 and op not in ("prod", "max", "min", "diag", "softmax", "log_softmax", "relu"):
        give_to(0, b.ewise("emul", g, _derivative(b, op, args[0])))
    else:
        raise NoClosedForm


def verified_form(expression: str, program: Program, inference: Inference, wrt: str,
                  shapes: dict[str, tuple[int, ...]], seed: int = 0) -> str | None:
    """The closed form as text, when there is one and it agrees with autograd at random values (at the shapes of
    the question); None otherwise."""
    from pdiff.tensor import grading
    from pdiff.tensor.language import to_text

    try:
        text = to_text(program, gradient(program, inference, wrt))
    except NoClosedForm:
        return None
    declared = [f"{name}:{'x'.join(map(str, shape))}" for name, shape in shapes.items() if shape]
    try:
        report = grading.check(expression, text, wrt=wrt, var=declared, seed=seed, explain=False)
    except Exception:  # noqa: BLE001  a form the checker cannot read is not shown; the answer stands without it
        return None
    return text if report.verdict.value == "correct" else None
