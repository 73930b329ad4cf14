"""The user's own parse tree as a small typed structure: what `pdiff steps` follows.

Built from the lark tree of pdiff.parse (never from SymPy's canonical form), so a quotient rule appears only where
the user wrote '/', and `x e^(-x)` stays a product. Each node keeps the text the user wrote for it (the grammar's
text after reading) and its SymPy value, built exactly as pdiff.parse builds it. `from_sympy` makes the same
structure from an expression pdiff wrote itself (a first derivative, for the next order), following its printed
form.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from lark import Token, Tree

from pdiff import symbolic
from pdiff.errors import InputError, LimitError
from pdiff.parse import FUNCTIONS, _parse_tree, _safe_pow, _ToSympy

MAX_NODES = 3000  # nodes in one explained expression: a step tree past this is not something to read
MAX_DEPTH = 80  # nesting of the tree (the builders recurse)

KINDS = ("number", "constant", "variable", "sum", "neg", "product", "quotient", "power", "call")
ATOMIC = ("number", "constant", "variable", "call", "power")


@dataclass(frozen=True)
class Node:
    """One node of the expression as written.

    kind: number, constant (pi, e), variable, sum (terms with signs), neg, product (factors), quotient,
    power (base, exponent) or call (a function name and its arguments)."""

    kind: str
    expr: sp.Expr
    text: str
    children: tuple[Node, ...] = ()
    signs: tuple[int, ...] = ()  # a sum's sign per term (+1 or -1)
    name: str = ""  # a call's function as written (sin, arcsin, log_2, ln)

    def shown(self) -> str:
        """The text, bracketed where it would not read as one factor beside another."""
        return self.text if self.kind in ATOMIC and not self.text.startswith("-") else f"({self.text})"


_TRANSFORMER = _ToSympy()


class _Builder:
    def __init__(self, text: str, source: str | None = None, origin: tuple[int, ...] | None = None):
        self.text = text
        self.source, self.origin = source, origin
        self.count = 0

    def slice(self, tree) -> str:
        meta = tree.meta if isinstance(tree, Tree) else None
        if meta is not None and not meta.empty:
            start, end = meta.start_pos, meta.end_pos
            if self.origin is not None and 0 <= start < end <= len(self.origin):
                # the user's own characters: |x|, √x, x², xy as typed (the grammar reads abs(x), sqrt(x), x^2, x y)
                first, last = self.origin[start], self.origin[end - 1]
                if first <= last:
                    typed = self.source[first:last + 1].strip()
                    if typed:
                        return typed
            return self.text[start:end].strip()
        if isinstance(tree, Token):
            return self.text[tree.start_pos:tree.end_pos]
        return ""

    def node(self, tree, depth: int = 0) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise LimitError(f"expression too large to explain step by step (more than {MAX_NODES} parts)")
        if depth > MAX_DEPTH:
            raise LimitError(f"expression nested too deeply to explain step by step (more than {MAX_DEPTH} levels)")
        if isinstance(tree, Token):  # pragma: no cover - the grammar wraps every token in a rule
            raise InputError(f"unexpected token {tree!s}")
        kind = tree.data
        text = self.slice(tree)
        items = tree.children
        if kind == "number":
            value = _TRANSFORMER.number(items)
            return Node("number", value, text)
        if kind == "name":
            value = _TRANSFORMER.name(items)
            return Node("variable" if value.is_Symbol else "constant", value, text)
        if kind in ("add", "sub"):
            terms, signs = [], []
            current = tree
            while isinstance(current, Tree) and current.data in ("add", "sub"):  # a left-deep chain, flattened
                terms.append(current.children[1])
                signs.append(1 if current.data == "add" else -1)
                current = current.children[0]
            terms.append(current)
            signs.append(1)
            children = tuple(self.node(t, depth + 1) for t in reversed(terms))
            signs = tuple(reversed(signs))
            return Node("sum", sp.Add(*(s * c.expr for s, c in zip(signs, children))), text, children, signs)
        if kind == "neg":
            child = self.node(items[0], depth + 1)
            return Node("neg", -child.expr, text, (child,))
        if kind in ("mul", "imul"):
            factors, pending = [], [(tree, True)]
            while pending:  # `a b c`, `a * b c`: one product of the factors as written, left to right
                current, open_ = pending.pop()
                if open_ and isinstance(current, Tree) and current.data in ("mul", "imul"):
                    left, right = current.children  # a bracketed product on the right of '*' stays one factor
                    pending.extend([(right, getattr(right, "data", "") == "imul"), (left, True)])
                else:
                    factors.append(current)
            children = tuple(self.node(f, depth + 1) for f in factors)
            return Node("product", sp.Mul(*(c.expr for c in children)), text, children)
        if kind == "div":
            top, bottom = (self.node(c, depth + 1) for c in items)
            return Node("quotient", top.expr / bottom.expr, text, (top, bottom))
        if kind == "pow":
            base, exponent = self.node(items[0], depth + 1), self.node(items[2], depth + 1)
            return Node("power", _safe_pow(base.expr, exponent.expr), text, (base, exponent))
        if kind in ("call", "call_bare"):
            token = items[0]
            args = items[1].children if kind == "call" else [items[1]]
            children = tuple(self.node(a, depth + 1) for a in args)
            return Node("call", _TRANSFORMER._apply(token, [c.expr for c in children]), text, children,
                        name=str(token))
        if kind in ("call_power", "call_power_bare"):  # sin^2 x: the square of sin x
            token, _pow, exponent_tree, arg = items
            args = arg.children if kind == "call_power" else [arg]
            children = tuple(self.node(a, depth + 1) for a in args)
            call_text = f"{token}({', '.join(c.text for c in children)})"
            call = Node("call", _TRANSFORMER._apply(token, [c.expr for c in children]), call_text, children,
                        name=str(token))
            exponent = _TRANSFORMER.exponent_number(exponent_tree.children) if exponent_tree.data == \
                "exponent_number" else _TRANSFORMER.neg_number(exponent_tree.children)
            power = Node("number", exponent, symbolic.to_display(exponent))
            return Node("power", _safe_pow(call.expr, exponent), text, (call, power))
        if kind == "vector":
            raise InputError("pdiff steps explains one expression, not a vector")
        raise InputError(f"cannot explain {kind!r} yet")  # pragma: no cover - every grammar rule is handled


def from_text(text: str, source: str | None = None, origin: tuple[int, ...] | None = None) -> Node:
    """The tree of pdiff's grammar text (a reader's body), as the user wrote it; with the reader's `source` and
    `origin` (each grammar character's column in it), each node's text is what the user typed."""
    return _Builder(text, source, origin if source is not None else None).node(_parse_tree(text))


def from_reading(reading, typed: str) -> Node:
    """The tree of a pdiff.reader Reading's body, each node's text as `typed` (the reader's input) has it; as
    read for LaTeX."""
    body = reading.body
    if reading.latex:
        return from_text(body.text)
    return from_text(body.text, typed, body.origin)


# ---- from an expression pdiff wrote (the next order differentiates the printed first derivative)

_NAMES = {}
for _name, (_constructor, _counts) in FUNCTIONS.items():
    if isinstance(_constructor, type) and _name not in _NAMES.values():
        _NAMES.setdefault(_constructor, _name)
_NAMES.update({sp.log: "ln", sp.Abs: "abs", sp.sign: "sign", sp.Min: "min", sp.Max: "max"})


def _shown(expr: sp.Expr) -> str:
    return symbolic.to_display(expr)


def from_sympy(expr: sp.Expr, depth: int = 0) -> Node:
    """A Node for an expression pdiff wrote, shaped as it prints: a sum of terms with signs, a quotient where a
    factor has a negative power, sqrt for a power 1/2."""
    if depth > MAX_DEPTH:
        raise LimitError("the derivative is nested too deeply to explain step by step")
    text = _shown(expr)
    if expr.is_Symbol:
        return Node("variable", expr, text)
    if expr.is_number and not expr.free_symbols and (expr.is_Rational or expr in (sp.pi, sp.E)):
        return Node("number" if expr.is_Rational else "constant", expr, text)
    if expr.is_Add:
        terms = expr.as_ordered_terms()
        signs, children = [], []
        for term in terms:
            negative = term.could_extract_minus_sign() and bool(children)
            signs.append(-1 if negative else 1)
            children.append(from_sympy(-term if negative else term, depth + 1))
        return Node("sum", expr, text, tuple(children), tuple(signs))
    if expr.is_Mul:
        coefficient, _rest = expr.as_coeff_Mul()
        if coefficient.is_negative:
            child = from_sympy(-expr, depth + 1)
            return Node("neg", expr, text, (child,))
        top, bottom = [], []
        for factor in sp.Mul.make_args(expr):
            if factor.is_Rational and factor.q != 1:
                if factor.p != 1:
                    top.append(sp.Integer(factor.p))
                bottom.append(sp.Integer(factor.q))
            elif factor.is_Pow and factor.exp.is_Rational and factor.exp.is_negative:
                bottom.append(factor.base ** -factor.exp)
            else:
                top.append(factor)
        if bottom:
            numerator = sp.Mul(*top) if top else sp.S.One
            denominator = sp.Mul(*bottom)
            return Node("quotient", expr, text, (from_sympy(numerator, depth + 1), from_sympy(denominator, depth + 1)))
        children = tuple(from_sympy(f, depth + 1) for f in sp.Mul.make_args(expr))
        return Node("product", expr, text, children)
    if expr.is_Pow:
        base, exponent = expr.args
        if exponent == sp.Rational(1, 2):
            return Node("call", expr, text, (from_sympy(base, depth + 1),), name="sqrt")
        if exponent.is_Rational and exponent.is_negative:
            return Node("quotient", expr, text, (Node("number", sp.S.One, "1"), from_sympy(base ** -exponent,
                                                                                             depth + 1)))
        return Node("power", expr, text, (from_sympy(base, depth + 1), from_sympy(exponent, depth + 1)))
    if isinstance(expr, sp.exp):
        return Node("call", expr, text, (from_sympy(expr.args[0], depth + 1),), name="exp")
    if isinstance(expr, sp.Function):
        name = _NAMES.get(type(expr), type(expr).__name__)
        return Node("call", expr, text, tuple(from_sympy(a, depth + 1) for a in expr.args), name=name)
    if expr.is_number:  # sqrt(2), log(3): a constant however it is shaped
        return Node("number", expr, text)
    raise LimitError(f"cannot explain {type(expr).__name__} step by step")
