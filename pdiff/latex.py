"""LaTeX → pdiff's own expression text, which pdiff.parse then reads as usual.

Why a translation and not SymPy's LaTeX parser: `sympy.parsing.latex.parse_latex(..., backend="lark")` does not
eval strings (its transformer builds Symbol/Integer/Float objects directly; read in SymPy 1.14), but it builds
complex (not real) symbols, inexact Floats, and reaches far beyond pdiff's allow-list (integrals, limits,
matrices, quantum brackets), and its Earley parser with explicit ambiguity can take seconds on short inputs.
Translating tokens into pdiff's plain grammar keeps one allow-list, real symbols, exact numbers and the LALR
parser's limits for both spellings, and never evaluates anything.

How LaTeX is read (math-mode conventions, documented in the README):
- letters written together are separate variables multiplied (`xy` is x·y); a multi-letter name is written
  `\\mathrm{rate}`, `\\operatorname{rate}` or as a Greek command (`\\theta`); a run of letters that is exactly a
  function name (`sin x`) is that function; `x_1`, `x_{12}` are the variables x_1, x_12; a name directly before
  a bracket is a product too (`\\theta(x+y)`, `x_1(x+1)`), never a call;
- `2.5E2`, `1e-3` are numbers (exact: 250, 1/1000), `3e5x` is 300000·x, but `2e^{x}` and `2e` are 2·e^x, 2·e;
  a number right after a number (`1.1.1`, `1..2`) is a malformed number, not a product;
- `\\frac{a}{b}`, `\\dfrac`, `\\tfrac`, `\\frac12`; `\\sqrt{x}`, `\\sqrt[3]{x}` (the real cube root), `\\sqrt[n]{x}`;
- `^{...}` and `^2` (one character: `x^23` is x²·3); `e^{3x}` is exp(3x); `\\pi`; `\\cdot`, `\\times`, `\\div`;
- `\\sin^2 x` is (sin x)², `\\sin^{-1} x` is arcsin x (likewise for every trig and hyperbolic function);
  `\\log_{b} x` is the base-b logarithm; `\\ln`, `\\log`, `\\exp` and every function pdiff knows
  (`\\operatorname{erf}`);
- `\\left( \\right)`, `\\big(`, `[ ]` and `{ }` group; `|x|`, `\\left| x \\right|`, `\\lvert x \\rvert` are |x|;
  spacing (`\\,`, `\\;`, `\\quad`) is ignored; anything else (`\\int`, `\\infty`, `=`) is an input error.
- a partial written `\\frac{\\partial^2 f}{\\partial x \\partial y}` or `\\frac{d}{dx}` becomes `d^2f/dxdy`
  (partial_to_plain, used by `pdiff check`);
- a derivative operator in front (`\\frac{d}{dx} \\left[ ... \\right]`, `\\frac{\\partial}{\\partial x} x^2 y`) is split
  off by split_operator (it applies to a bracket spanning the whole rest, or to the whole rest);
  anywhere else, and `\\frac{dy}{dx}` or `\\partial` in an expression, is an input error, not the algebra d/(d·x).

Text is LaTeX (is_latex) only when plain input could not hold it: a backslash or `^{`/`_{`; `|x|` is plain too.
"""

from __future__ import annotations

import re

from pdiff import letters
from pdiff.errors import LimitError, ParseError
from pdiff.vocabulary import FUNCTION_NAMES, GREEK

MAX_LENGTH = 20_000  # characters, as pdiff.parse (not imported from there: pdiff.parse imports this module)
MAX_DEPTH = 100  # nesting of groups (each costs several Python frames); pdiff.parse bounds the result again

# math-mode commands that stand for a function pdiff knows (its own name unless mapped)
_FUNCTION_COMMANDS = {
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "coth",
    "exp", "ln", "log", "max", "min", "sgn", "arsinh", "arcosh", "artanh", "arcsinh", "arccosh", "arctanh",
    "arccot", "arcsec", "arccsc", "sech", "csch", "erf", "lg",
}
_RENAMED = {"lg": "log10", "arccot": "acot", "arcsec": "asec", "arccsc": "acsc"}
_INVERTIBLE = {"sin", "cos", "tan", "cot", "sec", "csc", "sinh", "cosh", "tanh", "coth", "sech", "csch"}
_SPACES = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "limits", "nolimits"}
_TIMES = {"cdot", "times", "ast"}
_SIZES = {"big", "Big", "bigg", "Bigg", "bigl", "Bigl", "biggl", "Biggl", "bigr", "Bigr", "biggr", "Biggr",
          "bigm", "Bigm"}
_NAME_WRAPPERS = {"mathrm", "operatorname", "text", "mathit", "textrm", "mathsf", "textit"}
_OPENERS = {"(", "[", "\\{", "\\lbrace", "."}
_CLOSERS = {")", "]", "\\}", "\\rbrace", "."}
_BARS = ("|", "\\vert", "\\mid", "\\rvert", "\\rVert")
_SIZES_TEXT = {"\\" + size for size in _SIZES}
# where the argument of a function written without brackets ends (`\sin x + 1` is sin(x) + 1)
_BARE_STOP = {"+", "-", "*", "/", ",", "=", ")", "]", "}"}
_BARE_STOP_COMMANDS = {"cdot", "times", "ast", "div", "right", "rvert", "rVert", "}", "rbrace"}

_TOKEN = re.compile(r"""
    (?P<command>\\(?:[A-Za-z]+|.))
  | (?P<number>(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<letter>[A-Za-z])
  | (?P<space>\s+)
  | (?P<symbol>[{}^_+\-*/(),\[\]|=!'<>&~.])
""", re.VERBOSE | re.DOTALL)
# only what plain input cannot hold: `|x|` is plain notation too, so bars alone do not make text LaTeX
_DETECT = re.compile(r"\\|[\^_]\s*\{")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# `\frac{d}{dx}`, `\frac{dy}{dx}` as translated fragments (joined by spaces): a derivative, not d/(d·x)
_POWER = r"(?: \^ \( [0-9]+ \))?"
_DERIVATIVE_TOP = re.compile(rf"d{_POWER}(?: [A-Za-z][A-Za-z0-9_]*)?")
_DERIVATIVE_BOTTOM = re.compile(rf"d [A-Za-z][A-Za-z0-9_]*{_POWER}(?: d [A-Za-z][A-Za-z0-9_]*{_POWER})*")
DERIVATIVE_HERE = ("a derivative goes first, in front of the whole expression in brackets "
                   "(\\frac{d}{dx}\\left[ ... \\right]), or as the PARTIAL argument; "
                   "it cannot be part of an expression")


def is_latex(text: str) -> bool:
    """True when text is evidently LaTeX: a backslash or `^{`/`_{` braces (neither is valid plain input)."""
    return bool(_DETECT.search(text))


class _Tokens:
    def __init__(self, text: str):
        self.text = text
        self.items: list[tuple[str, str, int]] = []  # (kind, text, column)
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match:
                char = text[pos]
                what = f"unsupported character {char!r}" + (f" (U+{ord(char):04X})" if not char.isascii() else "")
                raise ParseError(f"{what} in LaTeX", text, pos)
            kind = match.lastgroup
            previous = self.items[-1] if self.items else None
            if (previous and previous[0] == "number" and previous[2] + len(previous[1]) == pos
                    and (kind == "number" or match.group() == ".")):
                raise ParseError("malformed number", text, pos)  # 1.1.1 and 1..2 are typos, not products
            if kind != "space" and not (kind == "symbol" and match.group() == "~"):
                self.items.append((kind, match.group(), pos))
            pos = match.end()
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int] | None:
        index = self.pos + offset
        return self.items[index] if index < len(self.items) else None

    def next(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ParseError("unexpected end of LaTeX (missing an argument or a closing brace?)",
                             self.text, len(self.text))
        self.pos += 1
        return token

    def first_character(self, token: tuple[str, str, int]) -> str:
        """TeX takes one character as an argument (`x^23` is x²·3): the rest of the number token goes back."""
        if len(token[1]) > 1:
            rest = _Tokens(token[1][1:]).items  # `2e5` leaves the letter e and the number 5
            self.items[self.pos:self.pos] = [(kind, text, column + token[2] + 1) for kind, text, column in rest]
        return token[1][0]

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token[1] == text

    def error(self, message: str, token: tuple[str, str, int] | None = None) -> ParseError:
        column = token[2] if token else (self.peek() or ("", "", len(self.text)))[2]
        return ParseError(message, self.text, column)


class _Translator:
    """Recursive descent over LaTeX tokens, writing pdiff text fragments (joined with spaces).

    Every function application is written with explicit parentheses (`sin(x y)`), so the translated text never
    depends on pdiff's rules for functions written without them.
    """

    def __init__(self, text: str):
        self.tokens = _Tokens(text)
        self.functions = FUNCTION_NAMES
        self.depth = 0

    # ---- sequences and groups

    def sequence(self, closers: tuple[str, ...] = (), bar: bool = False) -> list[str]:
        """Items up to a closing token (not consumed) or the end; with `bar`, a `|` after an operand closes too."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LimitError(f"LaTeX nested deeper than {MAX_DEPTH} levels")
        out: list[str] = []
        while not self._closes(out, closers, bar):
            out.extend(self.item())
        self.depth -= 1
        return out

    def _closes(self, out: list[str], closers: tuple[str, ...], bar: bool) -> bool:
        token = self.tokens.peek()
        return (token is None or token[1] in closers
                or (bar and token[1] in _BARS and bool(out) and _ends_operand(out[-1])))

    def closed(self, opener, closers: tuple[str, ...], what: str, bar: bool = False) -> list[str]:
        """The items up to one of `closers`, which is consumed."""
        inner = self.sequence(closers, bar)
        end = self.tokens.peek()
        if end is None or not (end[1] in closers or (bar and end[1] in _BARS)):
            raise self.tokens.error(f"{what} is not closed", opener)
        self.tokens.next()
        if not inner:
            raise self.tokens.error(f"nothing inside {what}", opener)
        return inner

    def group(self) -> list[str]:
        """`{...}` → `(...)`; the opening brace is the current token."""
        opener = self.tokens.next()
        return ["(", *self.closed(opener, ("}",), "'{'"), ")"]

    def argument(self) -> list[str]:
        """A macro argument, parenthesised: a braced group or one token (`\\frac12`, `x^2`, `\\sqrt x`)."""
        token = self.tokens.peek()
        if token is None:
            raise self.tokens.error("missing an argument at the end of the LaTeX")
        if token[1] == "{":
            return self.group()
        if token[0] == "number":
            self.tokens.next()
            return ["(", self.tokens.first_character(token), ")"]
        if token[0] == "letter":
            self.tokens.next()
            return ["(", self.letter_name(token[1]), ")"]
        if token[0] == "command":
            return ["(", *self.item(), ")"]
        if token[1] == "-" and self.tokens.peek(1) and self.tokens.peek(1)[0] in ("number", "letter"):
            self.tokens.next()  # x^-1, a common shorthand for x^{-1}
            return ["(", "-", *self.argument()[1:-1], ")"]
        raise self.tokens.error(f"unexpected {token[1]!r} as an argument", token)

    # ---- names

    def plain_name(self) -> str:
        """The letters and digits of `\\mathrm{...}`-like groups and of subscripts."""
        token = self.tokens.next()
        if token[1] != "{":
            if token[0] == "letter":
                return token[1]
            if token[0] == "number":
                return self.tokens.first_character(token)
            if token[0] == "command" and token[1][1:] in GREEK:
                return token[1][1:]
            raise self.tokens.error(f"expected a letter or digit, got {token[1]!r}", token)
        parts = []
        while not self.tokens.at("}"):
            part = self.tokens.next()
            if part[0] == "letter" or (part[0] == "number" and part[1].isalnum()):
                parts.append(part[1])
            elif part[0] == "command" and part[1][1:] in GREEK:
                parts.append(part[1][1:])
            elif not (part[0] == "command" and part[1][1:] in _SPACES):
                raise self.tokens.error(f"a name may hold only letters and digits, not {part[1]!r}", part)
        self.tokens.next()
        if not parts:
            raise self.tokens.error("empty name", token)
        return "".join(parts)

    def letter_name(self, name: str) -> str:
        """A variable, with its subscript when one follows (`x_1` → x_1, `\\theta_{0}` → theta_0)."""
        if self.tokens.at("_"):
            self.tokens.next()
            name = f"{name}_{self.plain_name()}"
        return name

    # ---- functions

    def _starts_function(self) -> bool:
        token = self.tokens.peek()
        if token is None:
            return False
        if token[0] == "command":
            return token[1][1:] in _FUNCTION_COMMANDS or token[1][1:] in ("sqrt", "operatorname")
        if token[0] == "letter":
            try:
                return letters.is_function(letters.split_run(self._letter_run_text())[0])
            except ParseError:
                return False  # refused when item() reads it, with its position
        return False

    def _letter_run_text(self) -> str:
        run, offset = "", 0
        first = self.tokens.peek()
        while (token := self.tokens.peek(offset)) and token[0] == "letter" and token[2] == first[2] + len(run):
            run += token[1]
            offset += 1
        return run

    def function_argument(self, token) -> list[str]:
        """What a function applies to, parenthesised: a bracketed group, or (without brackets) another
        function's application, or the implicit product that follows, up to the next operator or function."""
        while self.tokens.peek() is not None and self.tokens.peek()[1] in _SIZES_TEXT:
            self.tokens.next()  # \sin\big( x \big)
        nxt = self.tokens.peek()
        if nxt is not None and nxt[1] in ("(", "[", "{", "\\left", "\\lbrace", "\\{"):
            return self.item()  # already bracketed: (x, y) stays two arguments
        if self._starts_function():
            return ["(", *self.item(), ")"]
        out: list[str] = []
        if nxt is not None and nxt[1] in ("-", "+"):
            out.append(self.tokens.next()[1])
        while True:
            nxt = self.tokens.peek()
            if nxt is None or nxt[1] in _BARE_STOP or (nxt[0] == "command" and nxt[1][1:] in _BARE_STOP_COMMANDS):
                break
            if nxt[1] in _BARS and out and _ends_operand(out[-1]):
                break  # closes an enclosing |...|
            if self._starts_function():
                break  # sin x cos x is sin(x)·cos(x)
            out.extend(self.item())
        if not out or out[-1] in ("-", "+"):
            raise self.tokens.error(f"missing the argument of {token[1]}", token)
        return ["(", *out, ")"]

    def function(self, name: str, token) -> list[str]:
        """A function with its optional `^{n}` power or `_{b}` base, applied to its argument."""
        name = _RENAMED.get(name, name)
        base: list[str] | None = None
        power: str | None = None
        for _ in range(2):
            if self.tokens.at("_") and name == "log" and base is None:
                self.tokens.next()
                base = self.argument()
            elif self.tokens.at("^") and power is None:
                self.tokens.next()
                text = "".join(self.argument()[1:-1]).replace(" ", "")
                if not re.fullmatch(r"-?\d+", text):
                    raise self.tokens.error(f"write the power of {token[1]} as a whole number, or use "
                                            f"(\\{name} x)^{{...}}", token)
                power = text
        if power == "-1" and name in _INVERTIBLE:
            name, power = "a" + name, None  # \sin^{-1} x is arcsin x
        if name not in self.functions:
            raise self.tokens.error(f"unknown function {name!r}", token)
        argument = self.function_argument(token)
        if base is not None:
            digits = "".join(base[1:-1]).replace(" ", "")
            if digits in ("2", "10"):
                applied = [f"log{digits}", *argument]
            else:  # log_b x = log(x, b)
                applied = ["log", "(", *argument, ",", *base, ")"]
            return applied if power is None else ["(", *applied, ")", "^", "(", power, ")"]
        return [f"{name}^({power})" if power else name, *argument]

    # ---- items

    def item(self) -> list[str]:
        token = self.tokens.next()
        kind, text, column = token
        if kind == "number":
            return [text]
        if kind == "letter":
            # a run of letters reads as in plain text (pdiff.letters): `xsinx` is x·sin(x), `lnx` is ln(x)
            self.tokens.pos -= 1
            run = self._letter_run_text()
            try:
                pieces = letters.split_run(run)
            except ParseError as exc:
                raise self.tokens.error(str(exc), token) from None
            after = self.tokens.peek(len(run))
            if (len(pieces) > 1 and not letters.is_function(pieces[-1]) and after is not None and after[1] == "("
                    and after[2] == token[2] + len(run)):
                raise self.tokens.error(f"unknown function {run!r} (to multiply, write {' '.join(pieces)} (...))",
                                        token)
            first = pieces[0]
            self.tokens.pos += len(first)
            if letters.is_function(first):
                return self.function(first, token)
            if len(pieces) == 1:
                return [self.letter_name(first)]  # x_1, theta_0: a subscript belongs to the run's last name
            return [first]
        if kind == "symbol":
            return self.symbol(token)
        return self.command(token)

    def symbol(self, token) -> list[str]:
        text = token[1]
        if text == "{":
            self.tokens.pos -= 1
            return self.group()
        if text == "^":
            return ["^", *self.argument()]
        if text in "+-*/,":
            return [text]
        if text in "([":
            return ["(", *self.closed(token, (")", "]"), f"'{text}'"), ")"]
        if text == "|":
            return ["(abs(", *self.closed(token, (), "'|'", bar=True), "))"]
        if text == "_":
            raise self.tokens.error("a subscript must follow a variable (x_1) or \\log (\\log_2 x)", token)
        if text in ")]}":
            raise self.tokens.error(f"unmatched {text!r}", token)
        if text == "=":
            raise self.tokens.error("'=' is not allowed: give one expression, not an equation", token)
        if text == "!":
            raise self.tokens.error("factorials are not supported", token)
        raise self.tokens.error(f"unexpected {text!r} in LaTeX", token)

    def command(self, token) -> list[str]:
        name = token[1][1:]
        if name in _SPACES or name in _SIZES:
            return []
        if name in _TIMES:
            return ["*"]
        if name == "div":
            return ["/"]
        if name in ("frac", "dfrac", "tfrac"):
            numerator = self.argument()
            denominator = self.argument()
            if (_DERIVATIVE_TOP.fullmatch(" ".join(numerator[1:-1]))
                    and _DERIVATIVE_BOTTOM.fullmatch(" ".join(denominator[1:-1]))):
                raise self.tokens.error(DERIVATIVE_HERE, token)
            return ["(", *numerator, "/", *denominator, ")"]
        if name == "sqrt":
            index = None
            if self.tokens.at("["):
                index = self.closed(self.tokens.next(), ("]",), "\\sqrt[")
            radicand = self.argument()
            degree = "".join(index or ["2"]).replace(" ", "")
            if degree == "2":
                return ["sqrt", *radicand]
            if degree == "3":
                return ["cbrt", *radicand]
            return ["(", *radicand, "^", "(", "1", "/", "(", *index, ")", ")", ")"]
        if name == "pi":
            return ["pi"]
        if name in GREEK:
            return [self.letter_name(name)]
        if name in _FUNCTION_COMMANDS:
            return self.function(name, token)
        if name in _NAME_WRAPPERS:
            word = self.plain_name()
            if len(word) > 1 and word in self.functions:
                return self.function(word, token)
            if name == "operatorname" and self.tokens.peek() and self.tokens.peek()[1] in ("(", "\\left"):
                raise self.tokens.error(f"unknown function {word!r}", token)  # an operator applied, not a name
            return [self.letter_name(word)]
        if name == "left":
            return self.delimited(token)
        if name == "right":
            raise self.tokens.error("\\right without a matching \\left", token)
        if name in ("lvert", "vert", "mid", "lVert"):
            return ["(abs(", *self.closed(token, ("\\rvert", "\\rVert"), token[1], bar=True), "))"]
        if name in ("{", "lbrace"):
            return ["(", *self.closed(token, ("\\}", "\\rbrace"), token[1]), ")"]
        if name == "partial":
            raise self.tokens.error(DERIVATIVE_HERE, token)
        if name in ("infty", "int", "sum", "prod", "lim", "nabla"):
            raise self.tokens.error(f"\\{name} is not supported in an expression", token)
        raise self.tokens.error(f"unsupported LaTeX command \\{name}", token)

    def delimited(self, token) -> list[str]:
        """`\\left( ... \\right)`, `\\left| ... \\right|`, `\\left[ ... \\right]`, `\\left. ... \\right|`."""
        opener = self.tokens.next()
        if opener[1] in _BARS or opener[1] == "\\lvert":
            inner = self.closed(token, ("\\right",), "\\left|")
            closer = self.tokens.next()
            if closer[1] not in _BARS and closer[1] != "\\rvert":
                raise self.tokens.error("\\left| must close with \\right|", closer)
            return ["(abs(", *inner, "))"]
        if opener[1] not in _OPENERS:
            raise self.tokens.error(f"unsupported delimiter \\left{opener[1]}", opener)
        inner = self.closed(token, ("\\right",), "\\left" + opener[1])
        closer = self.tokens.next()
        if closer[1] not in _CLOSERS:
            raise self.tokens.error(f"unsupported delimiter \\right{closer[1]}", closer)
        return ["(", *inner, ")"]

    def translate(self) -> str:
        out = self.sequence()
        if self.tokens.peek() is not None:
            raise self.tokens.error(f"unmatched {self.tokens.peek()[1]!r}")
        if not out:
            raise ParseError("empty expression")
        out = [f for f in out if f]
        # a variable right before a bracket is a product (`\theta(x+y)`), but plain text reads `theta (` as a call:
        # bracketing the name keeps it a product, with the precedence of `x (x+y)`
        out = [f"({f})" if _NAME.fullmatch(f) and f not in self.functions and following.startswith("(") else f
               for f, following in zip(out, [*out[1:], ""])]
        return re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", " ".join(out)))


def _ends_operand(fragment: str) -> bool:
    return fragment[-1:].isalnum() or fragment.endswith(")")


def to_plain(text: str) -> str:
    """Translate LaTeX into pdiff's plain expression text (raises ParseError with the LaTeX position)."""
    if len(text) > MAX_LENGTH:
        raise LimitError(f"expression longer than {MAX_LENGTH} characters")
    text = text.strip()
    if text.startswith("$") and text.endswith("$"):
        text = text.strip("$")
    try:
        return _Translator(text).translate()
    except RecursionError:
        raise LimitError(f"LaTeX nested deeper than {MAX_DEPTH} levels") from None


def _braced(text: str, pos: int) -> tuple[str, int]:
    """The content of the `{...}` group opening at text[pos] (after spaces), and the position after it."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text) or text[pos] != "{":
        raise ParseError("expected '{' in a LaTeX partial derivative", text, pos)
    depth = 0
    for end in range(pos, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[pos + 1:end], end + 1
    raise ParseError("'{' is not closed", text, pos)


def partial_to_plain(text: str) -> str:
    """A LaTeX partial such as `\\frac{\\partial^2 f}{\\partial x \\partial y}` or `\\frac{d}{dx}` → `d^2f/dxdy`,
    for pdiff.notation; other text is returned unchanged."""
    spec = text.strip().strip("$").strip()
    match = re.match(r"\\[dt]?frac\s*", spec)
    if not match:
        return text
    numerator, pos = _braced(spec, match.end())
    denominator, pos = _braced(spec, pos)
    if spec[pos:].strip():
        raise ParseError("unexpected text after a LaTeX partial derivative", spec, pos)
    return f"{_partial_part(numerator, text)}/{_partial_part(denominator, text)}"


_GREEK_COMMAND = re.compile(r"\\(" + "|".join(sorted(GREEK, key=len, reverse=True)) + r")(?![A-Za-z])")


def _partial_part(part: str, text: str) -> str:
    """One side of a LaTeX partial in plain letters: `\\partial^{2}` → `d^2`, `\\mathrm{d}\\theta` → `dtheta`."""
    part = re.sub(r"\\partial|\\mathrm\s*\{\s*d\s*\}|\\mathrm\s+d|\\operatorname\s*\{\s*d\s*\}", " d ", part)
    part = re.sub(r"\\([,;:! ]|quad)", " ", part)
    part = _GREEK_COMMAND.sub(r" \1 ", part)
    if "\\" in part:
        raise ParseError(f"unsupported LaTeX in the partial derivative {text!r}", text, text.find("\\"))
    return re.sub(r"[\s{}]", "", part)


# a derivative operator's two sides once plain: `d`, `d^2` over `dx`, `dx^2dy`, `dtheta`, `dx_1`
_OPERATOR_TOP = re.compile(r"d(?:\^?([0-9]+))?")
_OPERATOR_BOTTOM = re.compile(r"(?:d[A-Za-z][A-Za-z0-9_]*?(?:\^[0-9]+)?)+")
_PAIRS = {"(": ")", "[": "]", "\\{": "\\}", "\\lbrace": "\\rbrace"}
_CLOSING = {")", "]", "\\}", "\\rbrace"}
_SKIPPED = {"\\" + name for name in _SPACES}


def split_operator(text: str) -> tuple[str | None, str]:
    """A leading derivative operator: `\\frac{d}{dx} \\left[ x^2 \\right]` → ("df/dx", " x^2 ").

    Returns the partial in pdiff's Leibniz spelling (the denominator as written: `d2f/dxdy`, applied rightmost first
    by pdiff.notation) and the LaTeX it applies to: the inside of a bracket spanning the whole rest (outer brackets
    dropped, since plain `[x^2]` would be a vector), or the whole rest. (None, text) when no operator leads."""
    if len(text) > MAX_LENGTH:
        raise LimitError(f"expression longer than {MAX_LENGTH} characters")
    spec = text.strip()
    if spec.startswith("$") and spec.endswith("$"):
        spec = spec.strip("$").strip()
    match = re.match(r"\\[dt]?frac(?![A-Za-z])\s*\{", spec)
    if not match:
        return None, text
    numerator, pos = _braced(spec, match.end() - 1)
    if not spec[pos:].lstrip().startswith("{"):
        return None, text  # \frac{d}2 is not an operator (to_plain says what it is)
    denominator, pos = _braced(spec, pos)
    try:
        top, bottom = _partial_part(numerator, spec), _partial_part(denominator, spec)
    except ParseError:
        return None, text  # other LaTeX in a fraction: not an operator
    order = _OPERATOR_TOP.fullmatch(top)
    if not order or not _OPERATOR_BOTTOM.fullmatch(bottom):
        return None, text
    partial = f"d{order.group(1) or ''}f/{bottom}"

    tokens = _Tokens(spec).items
    rest = [token for token in tokens if token[2] >= pos and token[1] not in _SKIPPED]
    if not rest:
        raise ParseError("nothing follows the derivative operator", spec, len(spec))
    prefix = 1 if rest[0][1] == "\\left" or rest[0][1] in _SIZES_TEXT else 0
    opener = rest[prefix] if len(rest) > prefix else None
    if opener is None or opener[1] not in _PAIRS:
        return partial, spec[rest[0][2]:]  # no bracket: the operator applies to the whole rest
    depth = 0
    for index in range(prefix, len(rest)):
        depth += 1 if rest[index][1] in _PAIRS else -1 if rest[index][1] in _CLOSING else 0
        if depth == 0:
            break
    else:
        raise ParseError("the bracket after the derivative operator is not closed", spec, opener[2])
    closer = rest[index]
    sized = rest[index - 1][1] in ("\\right", *_SIZES_TEXT) and index - 1 > prefix  # \right] or \big]
    if closer[1] != _PAIRS[opener[1]] or (rest[0][1] == "\\left" and rest[index - 1][1] != "\\right"):
        raise ParseError(f"the bracket {closer[1]!r} does not match {''.join(t[1] for t in rest[:prefix + 1])!r}",
                         spec, closer[2])
    if index + 1 < len(rest):
        raise ParseError("the derivative operator's bracket closes before the end: put the whole expression in "
                         "brackets after the derivative operator", spec, rest[index + 1][2])
    inner = spec[opener[2] + len(opener[1]):rest[index - 1][2] if sized else closer[2]]
    if not inner.strip():
        raise ParseError("nothing inside the brackets after the derivative operator", spec, opener[2])
    return partial, inner
