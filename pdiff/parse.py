"""Text → SymPy expression, by a real grammar (lark, LALR) and an allow-list of functions.

No user text ever reaches eval/exec/sympify: the grammar accepts only numbers, names, operators, brackets and calls,
and the transformer builds SymPy objects directly from an allow-list. Variables are real SymPy symbols.

How ambiguous text is read (documented in the README):
- a multi-letter name is one variable (`xy` is the variable xy, not x*y; write `x y` or `x*y` for the product);
- implicit multiplication binds tighter than `*` and `/`: `1/2x` is 1/(2x), and `x^2 y` is (x^2)*y;
- a function without parentheses takes the implicit product that follows it, up to the next operator or function:
  `sin x^2` is sin(x^2), `sin 2x` is sin(2x), `sin x cos x` is sin(x)*cos(x), `sin x + 1` is sin(x)+1;
- `sin^2 x` and `sin^2(x)` are (sin x)^2; `^` and `**` are right-associative: `2^3^2` is 2^9; `-x^2` is -(x^2);
- `e` is Euler's number and `pi` is π; `e^x` is exp(x); `log` and `ln` are natural logarithms.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from pdiff import letters, reader
from pdiff.errors import LimitError, ParseError
from pdiff.vocabulary import FUNCTION_NAMES, GREEK

MAX_LENGTH = reader.MAX_LENGTH  # characters in one expression
# an exact number may need at most this many bits (about 4,200 digits): under Python's default limit of 4,300
# digits for int -> str (sys.get_int_max_str_digits), past which SymPy's printer raised ValueError in the parent
MAX_NUMBER_BITS = 14_000
MAX_DEPTH = 400  # nesting depth of brackets and calls in the text
# depth of the SymPy expression tree: SymPy's printer and diff recurse about five Python frames per level, so deeper
# trees overflowed the stack after parsing (an "internal error" at `exp(-exp(-...))` 150 deep)
MAX_EXPR_DEPTH = 100
RESERVED = letters.RESERVED
# Python keywords are not variables: `[x for x in y]` or `x if x else y` is Python code pasted by mistake (or an
# attempt), not a product of variables named for/in/if. `lambda` stays usable (λ), since `lambda x: x` fails at ':'.
PYTHON_KEYWORDS = letters.PYTHON_KEYWORDS


def _cbrt(x):
    # the real cube root, so cbrt(-8) = -2 (SymPy's cbrt is the principal complex root)
    return sp.sign(x) * sp.Abs(x) ** sp.Rational(1, 3)


def _log(x, base=None):
    return sp.log(x) if base is None else sp.log(x, base)


# name → (SymPy constructor, allowed argument counts); the only callables user text can reach
FUNCTIONS: dict[str, tuple[object, tuple[int, ...]]] = {
    "sin": (sp.sin, (1,)), "cos": (sp.cos, (1,)), "tan": (sp.tan, (1,)),
    "cot": (sp.cot, (1,)), "sec": (sp.sec, (1,)), "csc": (sp.csc, (1,)),
    "asin": (sp.asin, (1,)), "acos": (sp.acos, (1,)), "atan": (sp.atan, (1,)),
    "acot": (sp.acot, (1,)), "asec": (sp.asec, (1,)), "acsc": (sp.acsc, (1,)),
    "atan2": (sp.atan2, (2,)),
    "sinh": (sp.sinh, (1,)), "cosh": (sp.cosh, (1,)), "tanh": (sp.tanh, (1,)),
    "coth": (sp.coth, (1,)), "sech": (sp.sech, (1,)), "csch": (sp.csch, (1,)),
    "asinh": (sp.asinh, (1,)), "acosh": (sp.acosh, (1,)), "atanh": (sp.atanh, (1,)),
    "acoth": (sp.acoth, (1,)), "asech": (sp.asech, (1,)), "acsch": (sp.acsch, (1,)),
    "exp": (sp.exp, (1,)), "ln": (sp.log, (1,)), "log": (_log, (1, 2)),
    "log10": (lambda x: sp.log(x, 10), (1,)), "log2": (lambda x: sp.log(x, 2), (1,)),
    "sqrt": (sp.sqrt, (1,)), "cbrt": (_cbrt, (1,)),
    "abs": (sp.Abs, (1,)), "Abs": (sp.Abs, (1,)), "sign": (sp.sign, (1,)), "sgn": (sp.sign, (1,)),
    "erf": (sp.erf, (1,)), "min": (sp.Min, (2, None)), "max": (sp.Max, (2, None)),
}
# the names students and other tools use for the same functions
for _short in ("sin", "cos", "tan", "cot", "sec", "csc", "sinh", "cosh", "tanh", "coth", "sech", "csch"):
    FUNCTIONS["arc" + _short] = FUNCTIONS["a" + _short]
for _short in ("sinh", "cosh", "tanh", "coth", "sech", "csch"):
    FUNCTIONS["ar" + _short] = FUNCTIONS["a" + _short]
FUNCTIONS["cosec"] = FUNCTIONS["csc"]
assert set(FUNCTIONS) == FUNCTION_NAMES, set(FUNCTIONS) ^ FUNCTION_NAMES  # one vocabulary for every reader

_FUNC_PATTERN = "|".join(sorted(FUNCTIONS, key=len, reverse=True))

GRAMMAR = r"""
?start: expr
      | "[" expr ("," expr)* ","? "]"     -> vector

?expr: term
     | expr "+" term                       -> add
     | expr "-" term                       -> sub

?term: unary
     | term "*" unary                      -> mul
     | term "/" unary                      -> div

?unary: implicit
      | "-" unary                          -> neg
      | "+" unary

// implicit multiplication: `2x`, `3 sin(x)`, `x y`, `(x+1)(x-1)`
?implicit: power
         | implicit power                  -> imul

?power: atom
      | atom POW exponent                  -> pow

?exponent: power
         | "-" exponent                    -> neg
         | "+" exponent

?atom: NUMBER                              -> number
     | NAME                                -> name
     | "(" expr ")"
     | FUNC "(" args ")"                   -> call
     | FUNC POW exponent_number "(" args ")"   -> call_power
     | FUNC bare_arg                       -> call_bare
     | FUNC POW exponent_number bare_arg   -> call_power_bare
     | FUNC applied                        -> call_bare
     | FUNC POW exponent_number applied    -> call_power_bare

// `sin cos x` is sin(cos x), `ln sin x` is ln(sin x), `sin cos(x)` is sin(cos x)
?applied: FUNC "(" args ")"                -> call
        | FUNC POW exponent_number "(" args ")"   -> call_power
        | FUNC bare_arg                    -> call_bare
        | FUNC POW exponent_number bare_arg   -> call_power_bare
        | FUNC applied                     -> call_bare
        | FUNC POW exponent_number applied    -> call_power_bare

exponent_number: NUMBER | "(" NUMBER ")" | "-" NUMBER -> neg_number | "(" "-" NUMBER ")" -> neg_number

// the argument of a function written without parentheses: an implicit product without functions;
// it cannot start with "(" (that is a call: `sin(x)^2` is (sin x)^2)
?bare_arg: bare_first
         | bare_arg bare_power             -> mul
?bare_first: bare_leaf
           | bare_leaf POW exponent        -> pow
?bare_leaf: NUMBER                         -> number
          | NAME                           -> name
?bare_power: bare_atom
           | bare_atom POW exponent        -> pow
?bare_atom: NUMBER                         -> number
          | NAME                           -> name
          | "(" expr ")"

args: expr ("," expr)*

POW: "^" | "**"
FUNC.2: /(log_(?:[0-9]+|[A-Za-z][A-Za-z0-9]*)|FUNCS)(?![A-Za-z0-9_])/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
// [0-9], not \d: Python's \d also matches fullwidth and other scripts' digits (look-alikes)
// a number cannot start right after a digit or '.', so `1.2.3` and `1..2` are errors, not the product 1.2*.3
NUMBER: /(?<![0-9.])([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?/

%ignore /[ \t]+/
""".replace("FUNCS", _FUNC_PATTERN)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@lru_cache(maxsize=4096)
def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol pdiff uses for a variable name (real-valued)."""
    return sp.Symbol(name, real=True)


def _check_number(value: sp.Expr) -> sp.Expr:
    # the value itself, or the numbers SymPy folds into the top of a sum, product or power (x*3^4000*3^4000*...
    # grows the coefficient of one Mul); only the top level, so a long expression is not re-walked at every step
    numbers = [value] if value.is_Rational else [a for a in value.args if a.is_Rational] if (
        value.is_Add or value.is_Mul or value.is_Pow) else []
    for number in numbers:
        if max(abs(number.p).bit_length(), abs(number.q).bit_length()) > MAX_NUMBER_BITS:
            raise LimitError(f"number too large: more than {MAX_NUMBER_BITS} bits")
    return value


def _safe_pow(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    # SymPy evaluates rational powers of rationals eagerly: bound the size before it does (10^10^10 would hang)
    # including the numeric factors of a product, which an integer power distributes over: (q/3)^(10^9) computed
    # 3^(10^9) (found by scripts/fuzz_parse.py), as (sqrt(2) x)^(10^9) computes 2^(5*10^8)
    if isinstance(exponent, sp.Rational) and (base.is_number or base.is_Mul):
        magnitude = abs(float(exponent)) if abs(exponent) < 10**15 else math.inf
        bits = 0.0
        for factor in (base.args if base.is_Mul else (base,)):
            if isinstance(factor, sp.Rational):
                bits += math.log2(max(abs(factor.p), abs(factor.q), 1))  # 0 for 0, 1 and -1: their powers stay small
            elif factor.is_number:
                bits += 64  # symbolic numbers (pi, sqrt(2)) stay symbolic unless the exponent expands them
        if bits > 0 and magnitude * bits > MAX_NUMBER_BITS:
            raise LimitError(f"power too large: the exact value would need more than {MAX_NUMBER_BITS} bits")
    return _check_number(sp.Pow(base, exponent))


class _ToSympy(Transformer_NonRecursive):
    """Builds SymPy objects from the parse tree; only allow-listed constructors are reachable.

    Non-recursive: `x+x+...+x` is a left-deep tree as deep as it is long, which overflowed Python's stack."""

    def number(self, items):
        (token,) = items
        text = str(token)
        mantissa, _, exp = text.lower().partition("e")
        if exp and abs(int(exp)) > 400:
            raise LimitError(f"number out of range: {text}")
        if len(mantissa) > 1000:
            raise LimitError("number has too many digits")
        if "." in mantissa or exp:
            # decimals are exact: 0.1 is 1/10, so exact values stay exact
            return _check_number(sp.Rational(mantissa) * sp.Integer(10) ** int(exp or 0))
        return sp.Integer(mantissa)

    def neg_number(self, items):
        return -self.number(items)

    def exponent_number(self, items):
        return items[0] if isinstance(items[0], sp.Basic) else self.number(items)

    def name(self, items):
        (token,) = items
        text = str(token)
        if text == "pi":
            return sp.pi
        if text in ("e", "E"):
            return sp.E
        if text.startswith("_"):
            raise ParseError(f"names may not start with '_': {_quote(text)}", column=token.start_pos)
        if text in RESERVED:
            raise ParseError(f"{_quote(text)} is reserved and cannot be a variable", column=token.start_pos)
        if text in FUNCTION_NAMES:
            raise ParseError(f"{text} needs an argument, e.g. {text}(x)", column=token.start_pos)
        if text in PYTHON_KEYWORDS:
            raise ParseError(f"{text!r} is a Python keyword, not a variable: pdiff reads mathematics, not Python code",
                             column=token.start_pos)
        if len(text) > 64:
            raise LimitError("variable name longer than 64 characters")
        return symbol(text)

    def args(self, items):
        return list(items)

    def _apply(self, token: Token, args: list) -> sp.Expr:
        name = str(token)
        if name.startswith("log_"):  # log_2 x, log_b x: the base is part of the name
            if len(args) != 1:
                raise ParseError(f"{name}() takes 1 argument, got {len(args)}", column=token.start_pos)
            base_text = name[4:]
            base = sp.Integer(base_text) if base_text.isdigit() else self.name([Token("NAME", base_text)])
            if base.is_number and (base <= 0 or base == 1):
                raise ParseError(f"{name}: a logarithm's base must be positive and not 1", column=token.start_pos)
            return sp.log(args[0], base)
        constructor, counts = FUNCTIONS[name]
        if counts[-1] is None:
            if len(args) < counts[0]:
                raise ParseError(f"{name}() takes at least {counts[0]} arguments", column=token.start_pos)
        elif len(args) not in counts:
            want = " or ".join(str(c) for c in counts)
            raise ParseError(f"{name}() takes {want} argument{'s' if counts != (1,) else ''}, got {len(args)}",
                             column=token.start_pos)
        return constructor(*args)

    def call(self, items):
        token, args = items
        return self._apply(token, args)

    def call_bare(self, items):
        token, arg = items
        return self._apply(token, [arg])

    @staticmethod
    def _function_power(token: Token, exponent: sp.Expr) -> sp.Expr:
        if exponent < 0:  # sin^-1 x means arcsin to some readers and 1/sin x to others
            raise ParseError(f"{token}^{exponent} is ambiguous: write a{token}(x) for the inverse function or "
                             f"{token}(x)^{exponent} for the power", column=token.start_pos)
        return exponent

    def call_power(self, items):
        token, _pow, exponent, args = items
        return _safe_pow(self._apply(token, args), self._function_power(token, exponent))

    def call_power_bare(self, items):
        token, _pow, exponent, arg = items
        return _safe_pow(self._apply(token, [arg]), self._function_power(token, exponent))

    @v_args(inline=True)
    def add(self, a, b):
        return a + b

    @v_args(inline=True)
    def sub(self, a, b):
        return a - b

    @v_args(inline=True)
    def mul(self, a, b):
        return _check_number(a * b)

    @v_args(inline=True)
    def imul(self, a, b):  # implicit multiplication: the same product, named apart so 1/2x can be noted
        return _check_number(a * b)

    @v_args(inline=True)
    def div(self, a, b):
        if b == 0:
            raise ParseError("division by zero")
        return _check_number(a / b)

    @v_args(inline=True)
    def neg(self, a):
        return -a

    @v_args(inline=True)
    def pow(self, base, _op, exponent):
        return _safe_pow(base, exponent)

    def vector(self, items):
        return list(items)


def _quote(text: str) -> str:
    """repr of user text for a message, cut short: a 20,000-letter name must not become a 20,000-letter error."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def _describe(token: Token | None) -> str:
    if token is None or token.type == "$END":
        return "end of input"
    return _quote(str(token))


_shown = reader.printable


def _parse_tree(text: str):
    try:
        return _parser().parse(text)
    except UnexpectedCharacters as exc:
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        if not char.isascii():
            msg = f"unsupported character {char!r} (U+{ord(char):04X}); use plain ASCII"
        elif char in "'\"":
            msg = "strings are not allowed"
        elif char == "." and exc.pos_in_stream > 0 and text[exc.pos_in_stream - 1] in "0123456789.":
            msg = "malformed number: unexpected '.' after a number"
        elif char in "0123456789" and exc.pos_in_stream > 0 and text[exc.pos_in_stream - 1] == ".":
            msg = "malformed number"
        elif char in ".":
            msg = "unexpected '.': attribute access is not allowed"
        else:
            msg = f"unexpected character {char!r}"
        raise ParseError(msg, _shown(text), exc.pos_in_stream) from None
    except UnexpectedEOF:
        raise ParseError("unexpected end of expression (missing an operand or a closing bracket?)",
                         _shown(text), len(text)) from None
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise ParseError("unexpected end of expression (missing an operand or a closing bracket?)",
                             _shown(text), len(text)) from None
        raise ParseError(f"unexpected {_describe(exc.token)}", _shown(text), exc.token.start_pos) from None
    except UnexpectedInput as exc:  # pragma: no cover - lark's remaining cases
        raise ParseError("could not parse the expression", _shown(text), getattr(exc, "pos_in_stream", None)) from None


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


@dataclass(frozen=True)
class ParsedInput:
    """One input as read: the expression, what kind of input it was, and how it was read."""

    expression: sp.Expr | list[sp.Expr]  # a vector `[f1, f2]` is a list; an equation gives lhs - rhs
    equation: sp.Expr | None = None  # lhs - rhs of `lhs = rhs`
    function: str | None = None  # `f` of `f(x) = ...`, `y` of `y = ...`
    arguments: tuple[str, ...] | None = None  # the variables `f(x, y) = ...` names, in order
    operator: str | None = None  # the partial of a leading derivative operator (`d/dx (...)`)
    read_as: str = ""  # the reading in pdiff's notation: parses back to the same expression
    notes: tuple[str, ...] = ()  # how ambiguous-looking text was read


def read_input(text: str, *, names=(), latex: bool | None = None) -> ParsedInput:
    """Read one input (expression, vector, definition `f(x) = ...`, equation, or `d/dx (...)`) into SymPy.

    `names`: multi-letter names the user declared (from --at, --wrt, --var, point columns), kept whole.
    `latex`: True reads LaTeX, False plain text, None detects it (a backslash, `^{` or `_{`)."""
    reading = reader.read(text, names=names, latex_mode=latex)
    grammar_notes: list[str] = []
    body = _build(reading.body, reading, names, grammar_notes)
    equation = sides = None
    if reading.rhs is not None:
        rhs = _build(reading.rhs, reading, names, grammar_notes)
        sides = (body, rhs)
        if isinstance(body, list) or isinstance(rhs, list):
            raise ParseError("an equation takes one expression on each side, not a vector", reading.source, 0)
        equation = body - rhs
        if equation == 0:
            raise ParseError("both sides of the equation are the same: it says nothing", reading.source)
        body = equation
    if reading.arguments is not None:
        extra = sorted({s.name for c in (body if isinstance(body, list) else [body]) for s in c.free_symbols}
                       - set(reading.arguments))
        # f(x) = a x^2: a is a parameter (given a value with --at); said so, since it is easy to miss
        notes = [f"{', '.join(extra)} {'is a parameter' if len(extra) == 1 else 'are parameters'} of "
                 f"{reading.function}({', '.join(reading.arguments)})"] if extra else []
    else:
        notes = []
    return ParsedInput(body, equation, reading.function, reading.arguments, reading.operator,
                       _read_as(reading, body, sides), tuple(dict.fromkeys((*reading.notes, *grammar_notes, *notes))))


def _read_as(reading: reader.Reading, body, sides) -> str:
    def shown(expr) -> str:
        if isinstance(expr, list):
            return "[" + ", ".join(shown(e) for e in expr) + "]"
        # SymPy's Max/Min are pdiff's max/min: the reading must parse back
        return re.sub(r"\b(Max|Min)\(", lambda m: m.group(1).lower() + "(", sp.sstr(expr)).replace(
            "**", "^")

    if sides is not None:
        return f"{shown(sides[0])} = {shown(sides[1])}"
    text = shown(body)
    if reading.function and reading.arguments:
        return f"{reading.function}({', '.join(reading.arguments)}) = {text}"
    if reading.function:
        return f"{reading.function} = {text}"
    return text


def _build(segment: reader.Segment, reading: reader.Reading, names,
           notes: list[str] | None = None) -> sp.Expr | list[sp.Expr]:
    """The grammar and the transformer over one side; errors carry the user's column."""
    try:
        return _parse_plain(segment.text, names, notes)
    except ParseError as exc:
        if reading.latex:
            raise
        if exc.text is None or exc.column is not None:
            exc.column = segment.column(exc.column)
        exc.text = _shown(reading.source)
        raise


def parse(text: str, latex: bool | None = None, names=()) -> sp.Expr | list[sp.Expr]:
    """Parse an expression (or a bracketed vector `[f1, f2]`, returned as a list) into SymPy.

    Definitions give their right side; equations are refused here (read_input reads them)."""
    parsed = read_input(text, names=names, latex=latex)
    if parsed.equation is not None:
        raise ParseError("'=' is not allowed here: give one expression, not an equation", _shown(text))
    if parsed.operator is not None:
        raise ParseError("a derivative operator is not allowed here: give the expression alone", _shown(text))
    return parsed.expression


def _parse_plain(text: str, names=(), notes: list[str] | None = None) -> sp.Expr | list[sp.Expr]:
    """pdiff's own grammar text (after reading) → SymPy."""
    if not text.strip():
        raise ParseError("empty expression")
    if _nesting_depth(text) > MAX_DEPTH:
        raise LimitError(f"expression nested deeper than {MAX_DEPTH} levels")
    try:
        tree = _parse_tree(text)
    except ParseError as exc:
        # `integrate(x, x)` is about `integrate`, not about its comma; but a character outside the language
        # (a quote, a look-alike) is the better message: `__import__('os')` is about strings
        if exc.column is not None and exc.column < len(text) and text[exc.column] in _LANGUAGE_CHARACTERS:
            _check_calls(text, names, end=exc.column)
        raise
    _check_calls(text, names)
    if notes is not None:
        for node in tree.iter_subtrees_topdown():
            right = node.children[1] if node.data == "div" else None
            if getattr(right, "data", None) == "imul" and not right.meta.empty:
                shown = text[node.meta.start_pos:node.meta.end_pos]
                notes.append(f"read {shown!r} as {text[node.meta.start_pos:right.meta.start_pos].strip()}"
                             f"({text[right.meta.start_pos:right.meta.end_pos]}): implicit multiplication binds "
                             "tighter than '/'")
                break
    try:
        result = _ToSympy().transform(tree)
    except ParseError as exc:
        exc.text = _shown(text)
        raise
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, ParseError) and inner.text is None:
            inner.text = _shown(text)
        if isinstance(inner, (ParseError, LimitError)):
            raise inner from None
        if isinstance(inner, RecursionError):
            raise LimitError("expression nested too deeply") from None
        raise ParseError(f"could not build the expression: {inner}"[:200], _shown(text)) from None
    except RecursionError:
        raise LimitError("expression nested too deeply") from None
    for component in result if isinstance(result, list) else [result]:
        if expression_depth(component) > MAX_EXPR_DEPTH:
            raise LimitError(f"expression nested deeper than {MAX_EXPR_DEPTH} levels")
        if component.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise ParseError("the expression is undefined everywhere (it contains log(0), 0^-1 or the like)",
                             _shown(text))
        _check_real(component, text)
    return result


def _check_real(expr: sp.Expr, text: str) -> None:
    """sqrt(-1), log(-1), acosh(0): constants that are not real numbers are refused (pdiff's variables are real)."""
    for node in sp.preorder_traversal(expr):
        if node.is_number and not node.is_Rational and node.is_real is False:
            shown = sp.sstr(node).replace("**", "^")
            if len(shown) > 60:  # atanh(7^339) prints 330 digits: the message stays one short line
                shown = f"{shown[:40]}...{shown[-15:]}"
            raise ParseError(f"a constant here is not a finite real number (its value is {shown}, with I = sqrt(-1)):"
                             " pdiff works over the reals", _shown(text))


_LANGUAGE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ +-*/^()[],.\t")

# a name directly before a bracket: a call, unless it is a one-letter variable or a constant (x(x+1), pi(x+1))
_CALL = re.compile(r"(?<![A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_]*)[ \t]*\(")


def _check_calls(text: str, names=(), end: int | None = None) -> None:
    """Unknown functions (starting before `end`) are errors, reported leftmost first (`sum(x for x in y)` is
    about `sum`)."""
    for match in _CALL.finditer(text, 0, len(text) if end is None else end):
        name = match.group(1)
        if name in FUNCTIONS or len(name) == 1 or name == "pi" or name in GREEK or name in names or (
                name.startswith("log_")):
            continue  # a letter, a Greek letter or a declared name before a bracket multiplies: theta(x+1)
        shown = _quote(name) if len(name) > 40 else repr(name)
        hint = "" if len(name) > 40 else f" (to multiply, write {name}*(...))"
        raise ParseError(f"unknown function {shown}{hint}", _shown(text), match.start(1))


def expression_depth(expr: sp.Basic) -> int:
    """Height of a SymPy expression tree (a symbol or number is 1), without recursion; shared subtrees count once."""
    height: dict = {}
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in height:
            continue
        if ready or not node.args:
            height[node] = 1 + max((height[arg] for arg in node.args), default=0)
        else:
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args if arg not in height)
    return height[expr]


def parse_scalar(text: str) -> sp.Expr:
    """Parse one scalar expression; a vector is an input error."""
    result = parse(text)
    if isinstance(result, list):
        raise ParseError("expected one expression, got a vector", _shown(text), 0)
    return result


def parse_number(text: str) -> sp.Expr:
    """Parse an exact real number such as `pi/4`, `sqrt(2)`, `-1/3` or `1e-3` (no variables)."""
    reading = reader.read(text)
    # names in the text, not only in the value: 0x10 is 0·x10, which SymPy folds to 0
    numbers_out = re.sub(r"(?<![A-Za-z0-9_.])([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", " ", reading.body.text)
    names = sorted({word for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", numbers_out)
                    if word not in FUNCTION_NAMES and word not in ("pi", "e", "E") and not word.startswith("log_")})
    if names or reading.rhs is not None or reading.operator is not None:
        raise ParseError(f"expected a number, found {'variable ' + ', '.join(names) if names else 'more'}",
                         _shown(text))
    value = parse_scalar(text)
    if value.free_symbols:
        names = ", ".join(sorted(s.name for s in value.free_symbols))
        raise ParseError(f"expected a number, found variable {names}", _shown(text))
    return value


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets: `x=atan2(1,2),y=1` keeps atan2's comma."""
    bounds = [-1, *reader.top_level(text, ","), len(text)]
    return [text[start + 1:end] for start, end in zip(bounds, bounds[1:])]
