"""How a run of letters (and digits) is read: `xsinx` is x·sin(x), `xy` is x·y, `asinx` is refused.

One rule for the plain reader (pdiff.reader) and the LaTeX reader (pdiff.latex), so `e^{2x}cosx` and `e^(2x)cosx`
read alike. Owns no math and imports no SymPy.

- Whole: a declared name, a function name, `pi`, `e`, a Greek letter name, a Python keyword or reserved name (for
  the grammar to refuse), and `letters + digits` or a name with an underscore (`x1`, `xy1`, `v_0`, `x_max`).
- Otherwise the letters are split into function names, `pi`, Greek letter names, declared names and single
  letters, with the fewest pieces; digits after a single letter index it (`v0t` is v0·t) and after a function they
  are its argument's number (`sin2x` is sin(2x)).
- Refused, with the readings to choose from: two splits with as few pieces (`xy` when x, y and xy are all
  declared), a function that is also a letter and a function (`asinx`: asin(x) or a·sin(x); `sinhx`), a function
  that ends in a digit before more (`log2x`: log2(x) or log(2x)), a function before an indexed name not declared
  (`sinx2`: sin(x2), sin(x)·2 or sin(x²)?), letters after an indexed name (`x2y`: x2·y or x²·y?), and four or
  more single letters (`rate`, `mass`: a name to declare).
"""

from __future__ import annotations

import keyword
import re

from pdiff.errors import LimitError, ParseError
from pdiff.vocabulary import CONSTANTS, FUNCTION_NAMES, GREEK

MAX_NAME = 64  # letters in one run: a longer one is refused, not split into dozens of variables
MAX_SINGLE_LETTERS = 3  # `xyz` is x·y·z; `rate` (r·a·t·e, with Euler's e) is more likely a name
PYTHON_KEYWORDS = frozenset(keyword.kwlist) - {"lambda"}  # `lambda` is the Greek letter λ
RESERVED = frozenset({"e", "E", "pi", "I", "oo", "nan", "zoo"})  # SymPy's names: refused whole by the grammar
LOG_BASE = re.compile(r"log_(?:[0-9]+|[A-Za-z][A-Za-z0-9]*)")

# function names that are also a letter and another function: `asinx` is asin(x) or a·sin(x), `sinhx` is
# sinh(x) or sin(h·x); inside a run of letters these are refused rather than guessed
_TWO_READINGS = frozenset(name for name in FUNCTION_NAMES
                          if name[1:] in FUNCTION_NAMES or name[:-1] in FUNCTION_NAMES)


def is_function(piece: str) -> bool:
    return piece in FUNCTION_NAMES or bool(LOG_BASE.fullmatch(piece))


def split_run(word: str, names=frozenset()) -> list[str]:
    """The pieces of one identifier as the user meant it; raises ParseError (without a position) when unsure."""
    if (word in FUNCTION_NAMES or word in CONSTANTS or word in GREEK or word in PYTHON_KEYWORDS
            or word in RESERVED or word.startswith("_") or LOG_BASE.fullmatch(word)):
        return [word]
    if word in names:
        _refuse_if_also_a_product(word, names)
        return [word]
    if len(word) > MAX_NAME:
        raise LimitError(f"variable name longer than {MAX_NAME} characters")
    if "_" in word or re.fullmatch(r"[A-Za-z]+[0-9]+", word) and not _starts_with_function(word):
        return [word]  # x1, xy1, theta2, v_0, x_max
    pieces: list[str] = []
    for match in re.finditer(r"([A-Za-z]+)([0-9]*)", word):
        letters, digits = match.groups()
        if pieces and pieces[-1][-1].isdigit() and not pieces[-1].isdigit():
            # x1y, x2y: x1·y, or x²·y typed without ^? refused unless declared
            raise ParseError(f"{word!r} is ambiguous: write {pieces[-1]}*{word[match.start():]} or use ^ for a power"
                             f", or declare the name with --var {word}")
        part = _split_letters(letters, names, word)
        if digits and part[-1] in ("sqrt", "cbrt") and match.end() < len(word):
            raise ParseError(f"{word!r} is ambiguous: write {part[-1]}({digits}{word[match.end():]}) or "
                             f"{part[-1]}({digits})*{word[match.end():]}")
        if digits and is_function(part[-1]):
            if part[-1] == "log":  # log2x: log2(x) or log(2x)?
                rest = word[match.end():] or "x"
                raise ParseError(f"{word!r} is ambiguous: write log{digits}({rest}) or log({digits}{rest}) with "
                                 "brackets")
            part.append(digits)  # sin2x: the function's argument starts with the number
        elif digits:
            indexed = part[-1] + digits  # x1, theta2: an indexed name
            if len(part) > 1 and is_function(part[-2]) and indexed not in names:
                raise ParseError(f"{word!r} is ambiguous: write {part[-2]}({indexed}), {part[-2]}({part[-1]})*"
                                 f"{digits} or {part[-2]}({part[-1]}^{digits}), or declare {indexed} with --var")
            part[-1] = indexed
        pieces.extend(part)
    return pieces


def _starts_with_function(word: str) -> bool:
    letters = re.match(r"[A-Za-z]+", word).group()
    return any(letters.startswith(f) for f in FUNCTION_NAMES if not f[-1].isdigit())


def _refuse_if_also_a_product(word: str, names) -> None:
    """A declared `xy` beside declared x and y reads two ways."""
    others = names - {word}
    if len(word) > 1 and word.isalpha() and others:
        try:
            split = _split_letters(word, others, word, strict=False)
        except ParseError:
            return
        if all(piece in others for piece in split):
            raise ParseError(f"{word!r} is ambiguous: the name {word} or {'*'.join(split)}? all are declared; "
                             "write the product with spaces or '*', or rename the column")


def _pieces_at(word: str, position: int, names) -> list[str]:
    found = [word[position]]
    for length in range(2, min(len(word) - position, MAX_NAME) + 1):
        piece = word[position:position + length]
        if piece in FUNCTION_NAMES or piece in GREEK or piece == "pi" or piece in names:
            found.append(piece)
    return found


def _near_readings(piece: str) -> str:
    if piece[1:] in FUNCTION_NAMES:
        return f"{piece[0]}*{piece[1:]}(…)"
    return f"{piece[:-1]}({piece[-1]}…)"


def _split_letters(letters: str, names, word: str, strict: bool = True) -> list[str]:
    """The fewest pieces; every split with that many is found (up to a few) to tell whether it is ambiguous."""
    n = len(letters)
    best = [0] * (n + 1)  # best[i]: fewest pieces for letters[i:]
    for i in range(n - 1, -1, -1):
        best[i] = 1 + min(best[i + len(piece)] for piece in _pieces_at(letters, i, names))
    splits: list[list[str]] = []

    def walk(i: int, acc: list[str]) -> None:
        if len(splits) >= 3:
            return
        if i == n:
            splits.append(acc)
            return
        for piece in sorted(_pieces_at(letters, i, names), key=len, reverse=True):
            if best[i + len(piece)] == best[i] - 1:
                walk(i + len(piece), acc + [piece])

    walk(0, [])
    if len(splits) > 1:
        shown = " or ".join("*".join(s) for s in splits[:2])
        raise ParseError(f"{word!r} is ambiguous: {shown}? write it with spaces or '*'")
    (pieces,) = splits
    if not strict:
        return pieces
    for piece in pieces:
        if piece in _TWO_READINGS:
            raise ParseError(f"{word!r} is ambiguous: {piece}(…) or {_near_readings(piece)}? write it with spaces "
                             f"or brackets, e.g. {piece}(x)")
    run = 0
    for piece in pieces:
        run = run + 1 if len(piece) == 1 else 0
        if run > MAX_SINGLE_LETTERS:
            raise ParseError(f"{word!r} looks like a name: declare it with --var {word} (or give it a value in --at),"
                             f" or write the product with spaces or '*' ({'*'.join(pieces)})")
    return pieces


def joined(pieces: list[str]) -> str:
    """`x sin x` → "x*sin x": products with '*', a function with a space before what it applies to."""
    out = pieces[0]
    for before, piece in zip(pieces, pieces[1:]):
        out += " " if is_function(before) or piece.isdigit() else "" if before.isdigit() else "*"
        out += piece
    return out
