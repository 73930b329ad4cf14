"""Small pieces shared by the renderers."""

from __future__ import annotations

import math


def json_number(value: float | None) -> float | None:
    """JSON has no inf or nan: those become null (the result's status says why)."""
    return value if value is not None and math.isfinite(value) else None


def number_text(value: float | None) -> str:
    """Full precision (repr) for machines; empty when missing."""
    return "" if value is None else repr(value)


def short(value: float | None) -> str:
    """15 significant digits for people; a dash when missing."""
    return "—" if value is None else f"{value:.15g}"
