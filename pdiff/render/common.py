"""Small pieces shared by the renderers."""

from __future__ import annotations

import math

# SymPy's spellings of non-finite exact values, as users read them (zoo is complex infinity: no sign, so undefined)
_NON_FINITE = {"zoo": "undefined", "oo": "inf", "-oo": "-inf", "nan": "undefined"}


def display_value(text: str | None) -> str | None:
    """An exact value (a SymPy string) for any format: `inf`, `-inf` or `undefined` for SymPy's oo, -oo, zoo
    and nan; everything else as it is."""
    return _NON_FINITE.get(text, text) if isinstance(text, str) else text


def json_number(value: float | None) -> float | None:
    """JSON has no inf or nan: those become null (the result's status says why)."""
    return value if value is not None and math.isfinite(value) else None


def number_text(value: float | None) -> str:
    """Full precision (repr) for machines; empty when missing."""
    return "" if value is None else repr(value)


def short(value: float | None) -> str:
    """15 significant digits for people; a dash when missing, `undefined` for nan."""
    if value is None:
        return "—"
    return "undefined" if math.isnan(value) else f"{value:.15g}"


def reading_lines(read_as: str, notes) -> list[str]:
    """The lines a table shows under its first line: how the input was read, only when the reader had to
    resolve something (so ordinary tables do not change)."""
    if not notes:
        return []
    return [f"read as: {read_as}"] + [f"  {note}" for note in notes]
