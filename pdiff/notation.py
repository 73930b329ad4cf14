"""Partial-derivative notation → a `Partial` holding the variables in application order.

Conventions (also in the README and the output):
- Leibniz `d2f/dxdy` (and `∂²f/∂x∂y`) means ∂/∂x(∂f/∂y): the rightmost variable is applied first, so wrt = (y, x).
- Subscript `f_xy` means (f_x)_y: left to right, so wrt = (x, y).
- `--wrt x,y` lists the application order directly.
- Primes `f'`, `f''` are derivatives by the expression's only variable.
Multi-letter names (`d2f/dthetadr`) are resolved against the expression's variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import groupby

from pdiff.errors import LimitError, NotationError

MAX_ORDER = 400  # Taylor mode (pdiff.taylor) takes orders into the hundreds; its box size is bounded there too

# a run of superscript digits becomes ^N (∂¹⁰ is ^10, not ^1^0), so that ∂x1² stays readable as x1 squared
_SUPERSCRIPT_DIGITS = str.maketrans({c: str(i) for i, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")})
_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹]+")


def _plain_superscripts(text: str) -> str:
    return _SUPERSCRIPT_RUN.sub(lambda m: "^" + m.group().translate(_SUPERSCRIPT_DIGITS), text)


def _preference(reading: list[str], variables: list[str]) -> tuple[int, int]:
    """Rank readings: fewest names that are not variables, then most that are.

    Counting only known names would let `f_ttheta` (variables t, theta) read as t,t,h,e,t,a: three t's beat one
    theta. Unknown single letters must cost more than repeated known ones gain.
    """
    known = sum(name in variables for name in reading)
    return (known - len(reading), known)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_LEIBNIZ = re.compile(r"^(?:d|∂)\s*(?:\^?\s*(\d+))?\s*([A-Za-z][A-Za-z0-9_]*)?\s*/\s*(.+)$")
_SUBSCRIPT = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_\{?([A-Za-z0-9_,]+)\}?$")
_PRIME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*('+)$")  # f', y'': derivatives by the one variable
_PRIMES = str.maketrans({"′": "'", "″": "''", "‴": "'''", "’": "'"})


@dataclass(frozen=True)
class Partial:
    """A requested partial derivative: the text as typed, the variables in application order, and the name of the
    function as written (`y` of dy/dx, `f` of f_xy or f''; None for d/dx and --wrt)."""

    text: str
    wrt: tuple[str, ...]
    function: str | None = None

    @property
    def order(self) -> int:
        return len(self.wrt)

    @property
    def leibniz(self) -> str:
        """The canonical Leibniz spelling, e.g. d2f/dxdy for wrt = (y, x)."""
        if not self.wrt:
            return "f"
        groups = [(name, len(list(run))) for name, run in groupby(reversed(self.wrt))]
        denominator = "".join(f"d{name}" + (str(count) if count > 1 else "") for name, count in groups)
        return f"d{self.order if self.order > 1 else ''}f/{denominator}"


def _check_order(partial: Partial) -> Partial:
    if partial.order > MAX_ORDER:
        raise LimitError(f"order {partial.order} is above the limit of {MAX_ORDER}")
    return partial


def _split_names(text: str, variables: list[str]) -> list[list[str]]:
    """Every way to write `text` as a concatenation of names; known variables first, then single letters."""
    known = sorted(variables, key=len, reverse=True)
    results: list[list[str]] = []

    def walk(pos: int, acc: list[str]) -> None:
        if len(results) > 64:
            return
        if pos == len(text):
            results.append(acc)
            return
        candidates = [v for v in known if text.startswith(v, pos)]
        if text[pos].isalpha() and text[pos] not in candidates:
            candidates.append(text[pos])
        for name in candidates:
            walk(pos + len(name), acc + [name])

    walk(0, [])
    return results


def _leibniz_terms(denominator: str, variables: list[str]) -> list[list[str]]:
    """Candidate readings of `dx2dy` as lists of variables (with repeats for powers), in written order."""
    text = denominator.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    text = re.sub(r"[\s*·]", "", text)
    if "∂" in text:
        pieces = [p for p in text.split("∂")]
        if pieces[0] != "":
            return []
        readings = [[]]
        for piece in pieces[1:]:
            name, _, power = piece.partition("^")
            match = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*?)(\d*)", name)
            if not match or not re.fullmatch(r"\d*", power):
                return []
            if not power and name not in variables and match.group(2) and match.group(1) in variables:
                name, power = match.group(1), match.group(2)  # ∂x2 with a variable x (and no x2) is x squared
            readings = [r + [name] * int(power or 1) for r in readings]
        return readings
    readings: list[list[str]] = []

    def walk(pos: int, acc: list[str]) -> None:
        if len(readings) > 64:
            return
        if pos == len(text):
            readings.append(acc)
            return
        if text[pos] != "d":
            return
        pos += 1
        known = sorted((v for v in variables if text.startswith(v, pos)), key=len, reverse=True)
        names = known + ([text[pos]] if pos < len(text) and text[pos].isalpha() and text[pos] not in known else [])
        for name in names:
            after = pos + len(name)
            match = re.match(r"\^?(\d+)", text[after:])
            if match:
                walk(after + match.end(), acc + [name] * int(match.group(1)))
            walk(after, acc + [name])

    walk(0, [])
    return readings


def parse_partial(text: str, variables: list[str]) -> Partial:
    """Read one PARTIAL argument (`df/dx`, `d2f/dxdy`, `∂²f/∂x∂y`, `f_xy`, ...) against the expression's variables.

    Prime notation (`f'`, `y''`) differentiates by the expression's one variable; with none or several it is an
    error asking for the variable to be named."""
    spec = re.sub(r"\^\^", "^", _plain_superscripts(text.strip().translate(_PRIMES)))
    if not spec:
        raise NotationError("empty partial derivative")
    if len(spec) > 400:
        raise LimitError("partial derivative notation longer than 400 characters")
    for char in spec:
        if not char.isascii() and char != "∂":  # a Cyrillic х would otherwise be an absent variable (answer 0)
            raise NotationError(f"unsupported character {char!r} (U+{ord(char):04X}) in {text[:40]!r}; use ASCII"
                                " names")

    if "/" in spec:
        match = _LEIBNIZ.match(spec)
        if not match:
            raise NotationError(f"cannot read {text!r}: write it like df/dx, d2f/dxdy or f_xy")
        order_text, function, denominator = match.groups()
        if order_text is not None and int(order_text) > MAX_ORDER:
            raise LimitError(f"order {int(order_text)} is above the limit of {MAX_ORDER}")
        order = int(order_text) if order_text else 1
        readings = _leibniz_terms(denominator, variables)
        if not readings:
            raise NotationError(f"cannot read the variables in {denominator.strip()!r} of {text!r}"
                                f" (variables: {', '.join(variables) or 'none'})")
        matching = [r for r in readings if len(r) == order]
        if not matching:
            orders = sorted({len(r) for r in readings})
            raise NotationError(f"order mismatch in {text!r}: numerator says {order}, "
                                f"denominator has {' or '.join(map(str, orders))}")
        # prefer readings built from the expression's own variables
        best = max(matching, key=lambda r: _preference(r, variables))
        return _check_order(Partial(text, tuple(reversed(best)), function))

    match = _SUBSCRIPT.match(spec)
    if match:
        subscript = match.group(2)
        if subscript.startswith("_") or "__" in subscript:
            raise NotationError(f"cannot read {text[:40]!r}: variable names may not start with '_'")
        if "," in subscript or "_" in subscript:
            names = [n for n in re.split(r"[,_]", subscript) if n]
        else:
            readings = _split_names(subscript, variables)
            if not readings:
                raise NotationError(f"cannot read the variables in {text!r}")
            names = max(readings, key=lambda r: (*_preference(r, variables), -len(r)))
        for name in names:
            if not _NAME.fullmatch(name):
                raise NotationError(f"{name!r} in {text!r} is not a variable name")
        return _check_order(Partial(text, tuple(names), match.group(1)))

    match = _PRIME.match(spec)
    if match:
        function, order = match.group(1), len(match.group(2))
        if order > MAX_ORDER:
            raise LimitError(f"order {order} is above the limit of {MAX_ORDER}")
        if len(variables) != 1:
            name = variables[0] if variables else "x"
            power = str(order) if order > 1 else ""
            example = f"d{power}{function}/d{name}{power} or {function}_{name * order}"
            having = (f"the expression has variables {', '.join(variables)}" if variables
                      else "the expression has no variables")
            raise NotationError(f"{text!r} needs exactly one variable to differentiate by, but {having}:"
                                f" name the variable, e.g. use {example}")
        return _check_order(Partial(text, (variables[0],) * order, function))

    raise NotationError(f"cannot read {text!r}: write it like df/dx, d2f/dxdy, f_xy or use --wrt x,y")


def parse_wrt(text: str) -> Partial:
    """`--wrt x,y`: the variables in application order."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise NotationError("--wrt needs at least one variable, e.g. --wrt x,y")
    for name in names:
        if not _NAME.fullmatch(name):
            raise NotationError(f"--wrt: {name!r} is not a variable name")
    return _check_order(Partial(text, names))


def first_partials(variables: list[str]) -> list[Partial]:
    """Every first partial, the default when none is requested."""
    return [Partial(f"df/d{name}", (name,)) for name in variables]
