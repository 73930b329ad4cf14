"""Points: `--at x=2,y=1` → exact values per variable, checked against the variables a call needs."""

from __future__ import annotations

import math

import re
from typing import Mapping, Sequence

import sympy as sp

from pdiff.errors import InputError, PointError
from pdiff.parse import parse_number, split_top_level
from pdiff.vocabulary import GREEK_LETTERS

_ASSIGNMENT = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*|[" + "".join(GREEK_LETTERS) + r"])\s*=\s*(.*?)\s*$")


def _shown(text: str, limit: int = 40, quote: bool = False) -> str:
    """User text for a message: as typed when short printable ASCII (unless `quote`), else quoted by repr (which
    escapes control and bidi characters) and cut."""
    if not quote and len(text) <= limit and text.isascii() and text.isprintable():
        return text
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _finite_real(value: sp.Expr, label: str) -> sp.Expr:
    if value.free_symbols:
        raise PointError(f"{label} is not a number")
    if value.is_real is False or value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise PointError(f"{label} is not a finite real number")
    if not math.isfinite(float(sp.N(value, 17))):  # autograd runs in floats: 1e400 would silently be inf
        raise PointError(f"{label} is beyond the floating-point range (about ±1.8e308)")
    return value


def parse_point(text: str) -> dict[str, sp.Expr]:
    """`x=2,y=pi/4` → {"x": 2, "y": pi/4} as exact real numbers."""
    point: dict[str, sp.Expr] = {}
    for part in split_top_level(text):
        if not part.strip():  # `x=1,,` is a slip, maybe a value lost: say so rather than guess
            raise PointError(f"--at {_shown(text)} has an empty item: write it like x=2,y=pi/4")
        match = _ASSIGNMENT.fullmatch(part)
        if not match or not match.group(2):
            raise PointError(f"cannot read {_shown(part.strip(), quote=True)} in --at: write it like x=2,y=pi/4")
        name, value_text = match.groups()
        name = GREEK_LETTERS.get(name, name)  # θ=2 names theta, as θ in the expression does
        if name in point:
            raise PointError(f"variable {name!r} given twice in --at {_shown(text)}")
        try:
            value = parse_number(value_text)
        except InputError as exc:
            raise PointError(f"--at {name}={_shown(value_text)}: {exc}") from None
        point[name] = _finite_real(value, f"--at {name}={_shown(value_text)}")
    if not point:
        raise PointError(f"--at {_shown(text)} names no variable")
    return point


def coerce_point(point: str | Mapping[str, object]) -> dict[str, sp.Expr]:
    """A point from the API: a string like "x=1,y=2" or a mapping of names to numbers or number strings."""
    if isinstance(point, str):
        return parse_point(point)
    result = {}
    for name, value in point.items():
        if isinstance(value, str):
            # the same checks as --at: {"x": "sqrt(-1)"} used to reach torch and fail converting complex to float
            try:
                number = parse_number(value)
            except InputError as exc:
                raise PointError(f"value of {name!r} ({_shown(value)}): {exc}") from None
            result[name] = _finite_real(number, f"value of {name!r} ({_shown(value)})")
        elif isinstance(value, bool) or not isinstance(value, (int, float, sp.Expr)):
            raise PointError(f"value of {name!r} must be a number, got {type(value).__name__}")
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise PointError(f"value of {name!r} is not finite: {value}")
            result[name] = sp.Rational(repr(value))  # the decimal the user wrote: 0.1 is 1/10
        else:
            result[name] = sp.Integer(value) if isinstance(value, int) else _finite_real(value, f"value of {name!r}")
    return result


def check_points(points: Sequence[dict[str, sp.Expr]], needed: Sequence[str]) -> None:
    """Every point gives exactly the needed variables; otherwise an input error naming the culprit."""
    needed_set = set(needed)
    for point in points:
        missing = [name for name in needed if name not in point]
        if missing:
            # f is evaluated at the whole point even when the answer does not depend on every variable
            raise PointError(f"--at gives no value for {', '.join(missing)} (e.g. {missing[0]}=0)")
        unknown = sorted(set(point) - needed_set)
        if unknown:
            listed = ", ".join(needed) or "none"
            raise PointError(f"--at names {', '.join(unknown)}, which is not a variable here (variables: {listed})")
