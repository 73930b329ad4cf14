"""Reading: what people type → the text pdiff's grammar parses, and how it was read. Owns no math.

This stage runs before the grammar (pdiff.parse). It decides what the user meant where text can mean several
things, and refuses (a ParseError with a hint) where it cannot be sure:
- Unicode as it comes from PDFs and phones: π, θ and other Greek letters, √x, ∛x, x², x⁻¹, ·, ×, −, ÷;
- LaTeX, detected only from what cannot be plain text (a backslash, `^{`, `_{`), is translated by pdiff.latex;
- `f(x, y) = ...` and `y = ...` are definitions (the left side names the function and its variables), any other
  `lhs = rhs` is an equation (for implicit differentiation);
- a derivative operator in front, `d/dx (...)`, `∂²/∂x∂y [...]`, names the partial to compute;
- `|x|` is an absolute value, in plain text too;
- a run of letters that is not a known or declared name is split into function names, constants, Greek letter
  names, declared names and single-letter variables, with the fewest pieces (`xsinx` is x·sin(x), `xy` is x·y);
  a split that could also be read another way (`asinx`: asin(x) or a·sin(x)) is refused with both readings.
The result keeps, for every character of the grammar's text, the column of the user's text it came from, so error
carets point at what the user typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pdiff import latex
from pdiff.errors import LimitError, ParseError
from pdiff.letters import MAX_NAME, is_function, joined, split_run
from pdiff.vocabulary import CONSTANTS, FUNCTION_NAMES, GREEK, GREEK_LETTERS

MAX_LENGTH = 20_000  # characters in one expression
_NUMBER = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Segment:
    """Text for the grammar and, per character, the column of the user's text it came from."""

    text: str
    origin: tuple[int, ...]

    def column(self, position: int | None) -> int | None:
        """The user's column for a position in this text (the end maps past the last character)."""
        if position is None or not self.origin:
            return position
        return self.origin[min(position, len(self.origin) - 1)] + (position >= len(self.origin))


@dataclass(frozen=True)
class Reading:
    """How one input was read: the grammar text of each side and what the reader recognised."""

    source: str  # as typed (after Unicode normalisation: what error carets are shown under)
    body: Segment  # the expression, or the left side of an equation
    rhs: Segment | None = None  # the right side of an equation (then the expression is body − rhs)
    function: str | None = None  # `f` of `f(x) = ...`, `y` of `y = ...`
    arguments: tuple[str, ...] | None = None  # `(x, y)` of `f(x, y) = ...`
    operator: str | None = None  # the partial of a leading derivative operator, e.g. d2f/dxdy
    latex: bool = False  # read as LaTeX
    notes: tuple[str, ...] = field(default=())  # how ambiguous-looking text was read, for the user


class _Text:
    """Characters with their origin columns, built up piece by piece."""

    def __init__(self):
        self.chars: list[str] = []
        self.origin: list[int] = []

    def add(self, text: str, column: int) -> None:
        self.chars.extend(text)
        self.origin.extend([column] * len(text))

    def segment(self) -> Segment:
        return Segment("".join(self.chars), tuple(self.origin))


def _segment(text: str, offset: int = 0) -> Segment:
    return Segment(text, tuple(range(offset, offset + len(text))))


def _slice(segment: Segment, start: int, end: int | None = None) -> Segment:
    end = len(segment.text) if end is None else end
    return Segment(segment.text[start:end], segment.origin[start:end])


def _strip(segment: Segment) -> Segment:
    text = segment.text
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return _slice(segment, start, max(start, end))


def printable(text: str) -> str:
    """The text as echoed above an error caret: one column per character, nothing a terminal would interpret.

    Control characters (ESC sequences, BEL, CR), bidirectional overrides, zero-width and other invisible characters
    and lone surrogates become '?', so an error message cannot restyle or reorder the user's terminal and the caret
    points at something visible; printable look-alikes (Cyrillic х) stay, so the user sees what they typed."""
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else "?" for c in text)


# ---- Unicode

# the operators of printed mathematics; look-alikes (∗ U+2217, no-break spaces) stay refused by the grammar
_SYMBOLS = {"·": "*", "×": "*", "⋅": "*", "÷": "/", "−": "-"}
_SUPERSCRIPTS = {**{c: str(i) for i, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")}, "⁻": "-", "⁺": "+", "ⁿ": "n", "ˣ": "x",
                 "ʸ": "y", "ⁱ": "i"}
_ROOTS = {"√": "sqrt", "∛": "cbrt"}


def normalise(text: str) -> Segment:
    """Unicode math → ASCII, keeping each character's column. Look-alikes (Cyrillic х) are left for the grammar
    to refuse."""
    out = _Text()
    i = 0
    while i < len(text):
        char = text[i]
        if char in _SYMBOLS:
            out.add(_SYMBOLS[char], i)
        elif char in _SUPERSCRIPTS:
            start = i
            while i + 1 < len(text) and text[i + 1] in _SUPERSCRIPTS:
                i += 1
            run = "".join(_SUPERSCRIPTS[c] for c in text[start:i + 1])
            run = re.sub(r"([a-z])([0-9]+)", r"\1^\2", run)  # eˣ² is e^(x^2): stacked superscripts
            out.add("^" + (run if run.isdigit() else f"({run})"), start)
        elif char in GREEK_LETTERS:
            name = GREEK_LETTERS[char]
            before = " " if out.chars and (out.chars[-1].isalnum() or out.chars[-1] == "_") else ""
            after = " " if i + 1 < len(text) and text[i + 1].isalpha() else ""
            out.add(before + name + after, i)
        elif char in _ROOTS:
            i = _root(text, i, out)
            continue
        else:
            out.add(char, i)
        i += 1
    return out.segment()


def _root(text: str, i: int, out: _Text) -> int:
    """√ and ∛ take one letter, one number or a bracket: `√x`, `√2`, `√(x+1)`; `√2x` and `√xy` are refused
    (√2·x or √(2x)?). Returns the position after what was read."""
    name = _ROOTS[text[i]]
    j = i + 1
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] in "([":
        out.add(name, i)  # the bracket is the call's
        return j
    match = (re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+").match(text, j)
             or re.compile(r"[A-Za-z]+|[" + "".join(GREEK_LETTERS) + "]").match(text, j))
    if not match:
        raise ParseError(f"{text[i]} needs something to apply to: write {text[i]}x or {text[i]}(x + 1)", text, i)
    atom = match.group()
    if atom.isalpha() and atom.isascii() and len(atom) > 1 and atom not in GREEK and atom != "pi":
        raise ParseError(f"{text[i]}{atom} is ambiguous: write {text[i]}({atom}) or {text[i]}{atom[0]}·{atom[1:]}",
                         text, i)
    end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "(^²³_." or text[end] in _SUPERSCRIPTS):
        raise ParseError(f"{text[i]}{atom}{text[end]} is ambiguous: use brackets, e.g. {text[i]}({atom}{text[end]}…)"
                         f" or ({text[i]}{atom}){text[end]}…", text, i)
    out.add(name + "(", i)
    out.add(GREEK_LETTERS.get(atom, atom), j)
    out.add(")", end - 1)
    return end


# ---- definitions and equations

def top_level(text: str, char: str) -> list[int]:
    """Positions of `char` outside every bracket: the `=` of an equation, the commas between --at items."""
    positions, depth = [], 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == char and depth == 0:
            positions.append(i)
    return positions


_DEFINITION = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*(?:\(\s*([A-Za-z][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z][A-Za-z0-9_]*)*)"
                         r"\s*\))?\s*")


def _definition(lhs: str, rhs: str) -> tuple[str, tuple[str, ...] | None] | None:
    """(function, arguments) when `lhs = rhs` defines a function: `f(x, y) = ...` or `y = ...` (y not on the right)."""
    match = _DEFINITION.fullmatch(lhs)
    if not match:
        return None
    name, arguments = match.group(1), match.group(2)
    if name in FUNCTION_NAMES or name in CONSTANTS:
        return None
    if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", rhs):
        return None  # y = x y + 1 is an equation in y
    names = tuple(a.strip() for a in arguments.split(",")) if arguments else None
    if names is not None and len(set(names)) != len(names):
        raise ParseError(f"{name}({', '.join(names)}) names a variable twice")
    if arguments is None and len(name) > 1 and name not in GREEK:
        return None  # `xy = 1` is an equation in x and y
    return name, names


# ---- a derivative operator in front

_D = r"[d∂]"
_ORDER = r"(?:\s*\^?\s*\(?\s*(\d+)\s*\)?)?"
# a variable's order comes after ^ (dx^2; dx2 is read as the name x2 and resolved later): `d/dx (2x)` and
# `d/dx 2x` are not dx to the order 2
_OPERATOR = re.compile(rf"\s*({_D}){_ORDER}\s*/\s*((?:\s*{_D}\s*[A-Za-z][A-Za-z0-9_]*"
                       rf"(?:\s*\^\s*(?:\(\s*\d+\s*\)|\d+))?)+)")
_INNER_OPERATOR = re.compile(rf"(?<![A-Za-z0-9_]){_D}\s*(?:\^?\s*\d+)?\s*/\s*{_D}\s*[A-Za-z]|∂")
_LEIBNIZ_FRACTION = re.compile(rf"(?<![A-Za-z0-9_]){_D}\s*(?:\^?\s*\d+)?\s*[A-Za-z][A-Za-z0-9_]*\s*/\s*{_D}\s*[A-Za-z]")
_CLOSING = {"(": ")", "[": "]", "{": "}"}


def _leading_operator(segment: Segment) -> tuple[str | None, Segment]:
    """`d/dx (x^3)` → ("df/dx", "x^3"); the brackets around what it applies to are dropped (`[...]` would
    otherwise be a vector). Without an operator in front: (None, segment)."""
    text = segment.text
    match = _OPERATOR.match(text)
    if not match:
        return None, segment
    symbol, order, denominator = match.groups()
    rest = _strip(_slice(segment, match.end()))
    if not rest.text:
        raise ParseError("the derivative operator applies to nothing: write d/dx (x^2 + 1)", None,
                         segment.column(len(text)))
    if rest.text[0] in _CLOSING:
        close = _matching(rest.text, 0)
        if close is None:
            raise ParseError(f"'{rest.text[0]}' is not closed", None, rest.column(0))
        if rest.text[close + 1:].strip():
            raise ParseError("put the whole expression in brackets after the derivative operator: "
                             "d/dx (x^2 + 1), not d/dx (x^2) + 1", None, rest.column(close + 1))
        rest = _strip(_slice(rest, 1, close))
    elif top_level(rest.text, "+")[1:] or top_level(rest.text, "-")[1:] or any(
            p > 0 for p in top_level(rest.text, "+") + top_level(rest.text, "-")):
        raise ParseError("put the expression in brackets after the derivative operator: d/dx (x^2 + x) or "
                         "d/dx (x^2) + x?", None, rest.column(0))
    elif text[match.end() - 1:match.end()].isalnum() and not text[match.end():match.end() + 1].isspace():
        raise ParseError("leave a space or a bracket after the derivative operator: d/dx (x^2)", None,
                         segment.column(match.end()))
    denominator = re.sub(r"\s+", "", denominator)
    partial = f"{symbol}{order or ''}f/{denominator}"
    return partial, rest


def _matching(text: str, start: int) -> int | None:
    depth = 0
    for i in range(start, len(text)):
        if text[i] in "([{":
            depth += 1
        elif text[i] in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _refuse_inner_operators(segment: Segment) -> None:
    for pattern, message in ((_LEIBNIZ_FRACTION, "looks like a derivative (dy/dx): give it as the PARTIAL "
                                                 "argument, or write the operator in front: d/dx (...)"),
                             (_INNER_OPERATOR, "a derivative operator must come first and apply to the whole "
                                               "expression: d/dx (...)")):
        match = pattern.search(segment.text)
        if match:
            raise ParseError(message, None, segment.column(match.start()))


# ---- absolute value bars

def _bars(segment: Segment) -> Segment:
    """`|x|` → `abs(x)`. A bar after an operand closes the innermost open bar, any other bar opens one;
    `|x|y|z|` (|x|·y·|z| or |x·|y|·z|?) is refused. Linear in the length: 10,000 bars cost nothing."""
    text = segment.text
    if "|" not in text:
        return segment
    out = _Text()
    opened: list[int] = []
    bars_left = text.count("|")
    last = ""  # the last non-space character read so far ('(' for a bar that opened, ')' for one that closed)
    for i, char in enumerate(text):
        if char != "|":
            out.add(char, segment.origin[i])
            last = char if not char.isspace() else last
            continue
        bars_left -= 1
        after = text[i + 1:i + 1 + 64].lstrip()[:1]
        if opened and (last.isalnum() or last in ")]._"):
            if (after.isalnum() or after == "(") and bars_left:
                raise ParseError("ambiguous absolute value bars: write abs(...) for each one", None,
                                 segment.column(i))
            opened.pop()
            out.add(")", segment.origin[i])
            last = ")"
        else:
            opened.append(i)
            out.add(" abs(" if last.isalnum() or last == "_" else "abs(", segment.origin[i])
            last = "("
    if opened:
        raise ParseError("'|' is not closed", None, segment.column(opened[-1]))
    return out.segment()


# ---- runs of letters (pdiff.letters decides how each is read)

# the exponent of Euler's e: `e^2x`, `2e^2x`, `Pe^rt` read two ways (e^(2x) or e^2·x?) and are refused
_E_POWER = re.compile(r"\^(-?)")


def _split_identifiers(segment: Segment, names, notes: list[str]) -> Segment:
    """Split every run of letters (not inside a number such as 1e-3) into the pieces it stands for."""
    text = segment.text
    out = _Text()
    i = 0
    exponent_of_e, minus = -1, ""  # where the exponent of an `e^` starts (right after `e^` or `e^-`)
    while i < len(text):
        number = _NUMBER.match(text, i) if (text[i].isdigit() or text[i] == ".") and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) else None
        if number:
            follows = text[number.end():number.end() + 1]
            if i == exponent_of_e and (follows.isalpha() or follows == "("):
                shown = number.group() + (_IDENTIFIER.match(text, number.end()) or re.match("", "")).group()
                raise ParseError(f"e^{minus}{shown} is ambiguous: write e^({minus}{shown}) or e^{minus}"
                                 f"{number.group()} {shown[len(number.group()):] or '(...)'}", None, segment.column(i))
            out.add(number.group(), segment.origin[i])
            for k in range(i + 1, number.end()):
                out.origin[-(number.end() - k)] = segment.origin[k]
            i = number.end()
            continue
        identifier = _IDENTIFIER.match(text, i)
        if not identifier:
            out.add(text[i], segment.origin[i])
            i += 1
            continue
        word = identifier.group()
        after = text[identifier.end():].lstrip()[:1]
        if text[:i].rstrip().endswith("."):  # x.real: attribute access, for the grammar to refuse as such
            out.add(word, segment.origin[i])
            i = identifier.end()
            continue
        if after == "(" and len(word) > MAX_NAME:
            raise ParseError(f"unknown function {word[:40]!r}...", None, segment.origin[i])
        try:
            pieces = split_run(word, names)
        except ParseError as exc:
            if after == "(":  # eval(x), integrate(x, x): about the call, not how its letters might split
                raise ParseError(f"unknown function {word!r}", None, segment.origin[i]) from None
            raise ParseError(str(exc), None, segment.origin[i]) from None
        if len(pieces) > 1 and after == "(" and not is_function(pieces[-1]):
            hint = f" (to multiply, write {'*'.join(pieces)}*(...))" if len(pieces) == 2 else ""
            raise ParseError(f"unknown function {word!r}{hint}", None, segment.origin[i])
        if len(pieces) > 1 and not is_function(pieces[0]) and not is_function(pieces[1]) and i == exponent_of_e:
            raise ParseError(f"e^{minus}{word} is ambiguous: write e^({minus}{word}) or e^{minus}{pieces[0]} "
                             f"{' '.join(pieces[1:])}", None, segment.origin[i])
        power = _E_POWER.match(text, identifier.end()) if pieces[-1] == "e" else None
        if power:
            exponent_of_e, minus = power.end(), power.group(1)
        if len(pieces) > 1:
            notes.append(f"read {word!r} as {joined(pieces)}")
        position = i
        for k, piece in enumerate(pieces):
            if k:
                out.add(" ", segment.origin[position])
            for offset, char in enumerate(piece):
                out.add(char, segment.origin[min(position + offset, identifier.end() - 1)])
            position += len(piece)
        i = identifier.end()
    return out.segment()


# ---- the whole reading

# what plain text may hold after normalise(); ∂ only in a derivative operator (refused elsewhere, with a reason)
_PLAIN_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ \t+-*/^()[],.|=∂")


def is_latex(text: str) -> bool:
    """LaTeX only from what cannot be plain text: a backslash, or braces after ^ or _."""
    return bool(re.search(r"\\|[\^_]\s*\{", text))


def read(text: str, *, names=(), latex_mode: bool | None = None) -> Reading:
    """Read one input. `names`: multi-letter names the user declared (kept whole). `latex_mode`: True reads
    LaTeX, False plain text, None detects it."""
    if len(text) > MAX_LENGTH:
        raise LimitError(f"expression longer than {MAX_LENGTH} characters")
    names = frozenset(names)
    source = normalise(text)
    shown = source.text
    try:
        return _read(source, names, latex_mode)
    except ParseError as exc:
        # raised about one piece of the text: show the whole input under the caret, safe for a terminal
        exc.text = printable(shown if exc.text is None else exc.text)
        raise


def _read(source: Segment, names: frozenset[str], latex_mode: bool | None) -> Reading:
    shown = source.text
    quote = re.search(r"['\"]", shown)
    if quote:  # before anything reads names: `__import__('os')` is about its strings
        if re.fullmatch(r"[^'\"]*[A-Za-z]'+[^'\"]*", shown):  # one run of ' right after a letter: f'(x)
            raise ParseError("a prime (f') names a derivative: give it as the PARTIAL argument, and the expression "
                             "alone", shown, quote.start())
        raise ParseError("strings are not allowed", shown, quote.start())
    if latex_mode or (latex_mode is None and is_latex(shown)):
        return _read_latex(shown)
    foreign = next((i for i, c in enumerate(shown) if c not in _PLAIN_CHARACTERS), None)
    if foreign is not None:  # before any run of letters is read: `$(touch pwned)` is about its '$'
        char = shown[foreign]
        raise ParseError(f"unsupported character {char!r} (U+{ord(char):04X}); use plain ASCII" if not char.isascii()
                         else f"unexpected character {char!r}", shown, foreign)
    equals = top_level(shown, "=")
    notes: list[str] = []
    function = arguments = rhs = None
    body = source
    comparison = re.search(r"==|<=|>=|!=|<|>", shown)
    if comparison:
        raise ParseError(f"{comparison.group()!r} compares: give one expression, definition or equation",
                         shown, comparison.start())
    if len(equals) > 1:
        raise ParseError("more than one '=': give one expression, definition or equation", shown, equals[1])
    if equals:
        (at,) = equals
        left, right = _slice(source, 0, at), _slice(source, at + 1)
        if not left.text.strip() or not right.text.strip():
            raise ParseError("one side of '=' is empty", shown, at)
        definition = _definition(left.text, right.text)
        if definition:
            function, arguments = definition
            body = right
        else:
            body, rhs = left, right
    operator, body = _leading_operator(_strip(body))
    if operator and rhs is not None:
        raise ParseError("a derivative operator does not apply to an equation: give the equation and the partial "
                         "(dy/dx) separately", shown, 0)
    sides = [body] + ([rhs] if rhs is not None else [])
    read_sides = []
    for side in sides:
        _refuse_inner_operators(side)
        read_sides.append(_split_identifiers(_bars(side), names | set(arguments or ()), notes))
    return Reading(shown, read_sides[0], read_sides[1] if rhs is not None else None, function, arguments, operator,
                   False, tuple(dict.fromkeys(notes)))


def _read_latex(text: str) -> Reading:
    """LaTeX: definitions and equations split at a top-level '=', an operator in front (\\frac{d}{dx}[...]),
    then pdiff.latex translates each side (its positions are those of the translated text)."""
    equals = top_level(text, "=")
    function = arguments = None
    sides = [text]
    if len(equals) > 1:
        raise ParseError("more than one '=': give one expression, definition or equation", text, equals[1])
    if equals:
        left, right = text[:equals[0]], text[equals[0] + 1:]
        definition = _definition(left, right)
        if definition:
            function, arguments = definition
            sides = [right]
        else:
            sides = [left, right]
    operator, first = latex.split_operator(sides[0])
    if operator and len(sides) > 1:
        raise ParseError("a derivative operator does not apply to an equation", text, 0)
    sides[0] = first
    plain = [_segment(latex.to_plain(side)) for side in sides]
    return Reading(text, plain[0], plain[1] if len(plain) > 1 else None, function, arguments, operator, True, ())
