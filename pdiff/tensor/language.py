"""Tensor expressions → a small tree (no SymPy, no torch): what `a*sum(x @ W)` or `x.T @ A @ x` says.

The rules, documented in the README ("Vectors and matrices"):
- `@` is the matrix product (vector @ vector is the dot product); `*` and `/` need a scalar on one side (`2 A`,
  `x / n`); `.*` `./` `.^` are element-wise; `^` on a vector is element-wise, on a matrix it is refused (A^2 reads
  as A @ A to some and element-wise to others);
- `x.T` or `transpose(x)` transposes (a vector is its own transpose, as in PyTorch);
- `x[1]`, `W[0,1]` index from 0, as in PyTorch; `W[0]` is row 0;
- a scalar function of a tensor applies element by element (`exp(A)` is not the matrix exponential);
- `+` `-` need equal shapes, or a scalar on one side;
- `outer(u, v)` is the outer product of two vectors (u @ v is their dot product).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from lark import Lark, Token
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.visitors import Transformer_NonRecursive

from pdiff import letters, reader
from pdiff.errors import LimitError, ParseError
from pdiff.vocabulary import FUNCTION_NAMES

# functions of whole tensors: name → (allowed argument counts)
TENSOR_FUNCTIONS: dict[str, tuple[int, ...]] = {
    "sum": (1,), "mean": (1,), "prod": (1,), "dot": (2,), "norm": (1,), "tr": (1,), "trace": (1,), "det": (1,),
    "logdet": (1,), "inv": (1,), "diag": (1,), "transpose": (1,), "sigmoid": (1,), "relu": (1,), "softplus": (1,),
    "softmax": (1,), "log_softmax": (1,), "logsumexp": (1,), "outer": (2,),
}
ELEMENTWISE = FUNCTION_NAMES - {"min", "max"}  # max(x) over a tensor reduces; max(a, b) is element-wise
ALL_FUNCTIONS = frozenset(TENSOR_FUNCTIONS) | FUNCTION_NAMES
MAX_LENGTH = reader.MAX_LENGTH
MAX_DEPTH = 200

# what says "this is a tensor expression" before any shape is known
_TENSOR_SYNTAX = re.compile(r"@|\.T\b|\.\*|\./|\.\^|ᵀ|⊙|[A-Za-z0-9_)\]]\[\s*[0-9]+\s*(,\s*[0-9]+\s*)?\]|\b(" + "|".join(
    sorted((n for n in TENSOR_FUNCTIONS if n not in ("transpose",)), key=len, reverse=True)) + r")\s*\(")


def looks_like_tensor(text: str) -> bool:
    """`@`, `.T`, element-wise operators, indexing or a tensor function: only the tensor language reads it."""
    return bool(_TENSOR_SYNTAX.search(text))


def is_tensor_question(expression: str, at=(), var=None) -> bool:
    """Vectors or matrices as variables: a bracketed --at value, a shaped --var, or tensor syntax (`@`, `.T`,
    indexing, `sum(...)`)."""
    values = [v for p in at if isinstance(p, str) for v in p.split("=")[1:]] + [
        v for p in at if not isinstance(p, str) for v in p.values()]
    shaped = any(isinstance(v, (list, tuple)) or (isinstance(v, str) and v.lstrip().startswith("[")) or
                 hasattr(v, "shape") and getattr(v, "ndim", 0) > 0 for v in values)
    declared = [var] if isinstance(var, str) else list(var or [])
    return shaped or any(":" in d for d in declared) or looks_like_tensor(expression)


# ---- the tree

@dataclass(frozen=True)
class Node:
    """Base of the tree; `span` is where the node is in the text read (for messages)."""

    span: tuple[int, int]


@dataclass(frozen=True)
class Number(Node):
    value: sp.Expr  # exact


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Apply(Node):
    """An operator or a function: `op` is add, sub, mul, div, matmul, emul, ediv, pow, epow, neg, transpose, or
    a function name."""

    op: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index(Node):
    base: Node
    indexes: tuple[int, ...]


@dataclass(frozen=True)
class Program:
    """One tensor expression as read."""

    text: str  # the text the spans refer to (after Unicode normalisation)
    root: Node
    names: tuple[str, ...]  # variables in order of first appearance
    notes: tuple[str, ...] = ()

    def shown(self, node: Node) -> str:
        start, end = node.span
        return self.text[start:end].strip()


GRAMMAR = r"""
?start: expr
?expr: term
     | expr "+" term                -> add
     | expr "-" term                -> sub
?term: unary
     | term "*" unary               -> mul
     | term "/" unary               -> div
     | term "@" unary               -> matmul
     | term EMUL unary              -> emul
     | term EDIV unary              -> ediv
?unary: implicit
      | "-" unary                   -> neg
      | "+" unary
?implicit: power
         | implicit power           -> imul
?power: postfix
      | postfix POW exponent        -> pow
      | postfix EPOW exponent       -> epow
?exponent: power
         | "-" exponent             -> neg
         | "+" exponent
?postfix: atom
        | postfix TRANSPOSE         -> transpose
        | postfix "[" INT ("," INT)* "]"   -> index
?atom: NUMBER                       -> number
     | NAME                         -> name
     | "(" expr ")"
     | FUNC "(" expr ("," expr)* ")"   -> call
POW: "^" | "**"
EPOW: ".^"
EMUL: ".*"
EDIV: "./"
TRANSPOSE: /\.T(?![A-Za-z0-9_])/
FUNC.2: /(FUNCS)(?![A-Za-z0-9_])/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
INT: /[0-9]+/
// digits after a '.' are required: `2.*x` is 2 .* x and `1./x` is 1 ./ x
NUMBER.1: /([0-9]+(\.[0-9]+)?|\.[0-9]+)([eE][+-]?[0-9]+)?/
%ignore /[ \t]+/
""".replace("FUNCS", "|".join(sorted(ALL_FUNCTIONS, key=len, reverse=True)))


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _span(meta) -> tuple[int, int]:
    return (meta.start_pos, meta.end_pos) if not meta.empty else (0, 0)


class _Build(Transformer_NonRecursive):
    def __init__(self, names: frozenset[str]):
        super().__init__()
        self.names = names
        self.notes: list[str] = []

    def __default__(self, data, children, meta):  # every operator: one Apply node
        op = {"imul": "mul"}.get(str(data), str(data))
        args = tuple(c for c in children if not isinstance(c, Token))
        return Apply(_span(meta), op, args)

    def number(self, items):
        (token,) = items
        mantissa, _, exp = str(token).lower().partition("e")
        if exp and abs(int(exp)) > 400 or len(mantissa) > 1000:
            raise LimitError(f"number out of range: {str(token)[:40]}")
        value = sp.Rational(mantissa) * sp.Integer(10) ** int(exp or 0)
        return Number((token.start_pos, token.end_pos), value)

    def name(self, items):
        (token,) = items
        word = str(token)
        span = (token.start_pos, token.end_pos)
        if word == "pi":
            return Number(span, sp.pi)
        if word in ("e", "E"):
            return Number(span, sp.E)
        pieces = letters.split_run(word, self.names)  # raises ParseError on a run that reads two ways
        for piece in pieces:
            if piece in ALL_FUNCTIONS:
                raise ParseError(f"{piece} needs its argument in brackets here, e.g. {piece}(x)", column=span[0])
            if piece in letters.PYTHON_KEYWORDS:
                raise ParseError(f"{piece!r} is a Python keyword, not a variable: pdiff reads mathematics, not "
                                 "Python code", column=span[0])
            if piece in letters.RESERVED or piece.startswith("_"):
                raise ParseError(f"{piece!r} cannot be a variable", column=span[0])
        if len(pieces) == 1:
            return Name(span, word)
        self.notes.append(f"read {word!r} as {letters.joined(pieces)}")
        node: Node = Name(span, pieces[0])
        for piece in pieces[1:]:
            node = Apply(span, "mul", (node, Name(span, piece) if piece not in ("pi", "e") else
                                       Number(span, sp.pi if piece == "pi" else sp.E)))
        return node

    def call(self, items):
        token, *args = items
        return Apply((token.start_pos, token.end_pos), str(token), tuple(args))

    def index(self, items):
        base, *numbers = items
        return Index((base.span[0], numbers[-1].end_pos + 1), base, tuple(int(str(n)) for n in numbers))

    def transpose(self, items):
        base, token = items
        return Apply((base.span[0], token.end_pos), "transpose", (base,))


def _prepare(text: str) -> str:
    text = reader.normalise(text).text
    # the two Unicode operators of matrix calculus that normalise() leaves alone
    return text.replace("ᵀ", ".T").replace("⊙", ".*")


def read(text: str, names=()) -> Program:
    """Read one tensor expression; `names` are the declared variables (kept whole: `Wx` is W·x when both are)."""
    if len(text) > MAX_LENGTH:
        raise LimitError(f"expression longer than {MAX_LENGTH} characters")
    prepared = _prepare(text)
    if not prepared.strip():
        raise ParseError("empty expression")
    if "=" in prepared:
        raise ParseError("'=' is not allowed in a tensor expression: give the expression alone", prepared,
                         prepared.index("="))
    depth = deepest = 0
    for char in prepared:
        depth += char in "(["
        depth -= char in ")]"
        deepest = max(depth, deepest)
    if deepest > MAX_DEPTH:
        raise LimitError(f"expression nested deeper than {MAX_DEPTH} levels")
    tree = _tree(prepared)
    builder = _Build(frozenset(names))
    try:
        root = builder.transform(tree)
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, ParseError):
            inner.text = inner.text or reader.printable(prepared)
            raise inner from None
        if isinstance(inner, LimitError):
            raise inner from None
        raise ParseError(f"could not read the expression: {inner}"[:200], reader.printable(prepared)) from None
    except RecursionError:
        raise LimitError("expression nested too deeply") from None
    return Program(prepared, root, tuple(dict.fromkeys(_names(root))), tuple(dict.fromkeys(builder.notes)))


def children(node: Node) -> tuple[Node, ...]:
    return node.args if isinstance(node, Apply) else (node.base,) if isinstance(node, Index) else ()


def postorder(root: Node) -> list[Node]:
    """Every node after its children, without recursion (a long sum is as deep as it is long)."""
    order: list[Node] = []
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        below = children(node)
        if not ready and below:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(below))
            continue
        order.append(node)
    return order


def _names(root: Node) -> list[str]:
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            found.append(node.name)
        elif isinstance(node, Apply):
            stack.extend(reversed(node.args))
        elif isinstance(node, Index):
            stack.append(node.base)
    return found


def _tree(text: str):
    shown = reader.printable(text)
    try:
        return _parser().parse(text)
    except UnexpectedCharacters as exc:
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        message = (f"unsupported character {char!r} (U+{ord(char):04X})" if char and not char.isascii()
                   else "strings are not allowed" if char in "'\"" else f"unexpected character {char!r}")
        raise ParseError(message, shown, exc.pos_in_stream) from None
    except (UnexpectedEOF, UnexpectedToken) as exc:
        token = getattr(exc, "token", None)
        if token is None or token.type == "$END":
            raise ParseError("unexpected end of expression (missing an operand or a closing bracket?)", shown,
                             len(text)) from None
        hint = " (an index is a whole number from 0, as in PyTorch)" if token.type in ("NUMBER", "NAME", "MINUS") \
            and "[" in text[:token.start_pos] and "]" not in text[text.rindex("[", 0, token.start_pos):token.start_pos] \
            else ""
        raise ParseError(f"unexpected {str(token)[:40]!r}{hint}", shown, token.start_pos) from None
    except UnexpectedInput as exc:  # pragma: no cover - lark's remaining cases
        raise ParseError("could not parse the expression", shown, getattr(exc, "pos_in_stream", None)) from None


def to_text(program: Program, node: Node | None = None) -> str:
    """The tree in pdiff's tensor notation, fully bracketed where precedence could be misread; reads back to the
    same tree."""
    node = program.root if node is None else node
    infix = {"add": " + ", "sub": " - ", "mul": "*", "div": "/", "matmul": " @ ", "emul": " .* ", "ediv": " ./ ",
             "pow": "^", "epow": ".^"}
    if isinstance(node, Number):
        bare = node.value.is_Integer or node.value in (sp.pi, sp.E)  # 1/3 is bracketed: (1/3)*x
        return sp.sstr(node.value).replace("**", "^") if bare else f"({sp.sstr(node.value).replace('**', '^')})"
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Index):
        return f"{_operand(program, node.base)}[{','.join(map(str, node.indexes))}]"
    if node.op in infix:
        left, right = node.args
        return f"{_operand(program, left, node.op)}{infix[node.op]}{_operand(program, right, node.op, True)}"
    if node.op == "neg":
        return f"-{_operand(program, node.args[0], 'neg')}"
    if node.op == "transpose":
        return f"{_operand(program, node.args[0], 'transpose')}.T"
    return f"{node.op}({', '.join(to_text(program, a) for a in node.args)})"


_LEVEL = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "emul": 2, "ediv": 2, "neg": 3, "pow": 4,
          "epow": 4, "transpose": 5}


def _operand(program: Program, node: Node, parent: str = "transpose", right: bool = False) -> str:
    text = to_text(program, node)
    if isinstance(node, Apply) and node.op in _LEVEL:
        mine, theirs = _LEVEL[node.op], _LEVEL[parent]
        if mine < theirs or (mine == theirs and (right or parent in ("pow", "epow"))):
            return f"({text})"
    if isinstance(node, Number) and text.startswith("("):
        return text
    if isinstance(node, Number) and node.value.is_negative:
        return f"({text})"
    return text
