"""Values of tensor variables: `--at 'W=[[1,2,3],[4,5,6]],x=[1,0,-1],a=2'` → exact numbers with their shapes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from pdiff.errors import InputError, PointError
from pdiff.parse import split_top_level
from pdiff.tensor.shapes import (
    MAX_ELEMENTS_NUMERIC,
    MAX_RANK,
    Shape,
    described,
    elements,
    parse_declaration,
)

_ASSIGNMENT = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*", re.DOTALL)


@dataclass(frozen=True)
class Value:
    """One variable's value: its shape and its exact elements, row-major."""

    shape: tuple[int, ...]
    flat: tuple[sp.Expr, ...]

    def nested(self, convert=lambda v: v):
        """The value as nested lists (a number for a scalar)."""
        items = [convert(v) for v in self.flat]
        if not self.shape:
            return items[0]
        if len(self.shape) == 1:
            return items
        rows, columns = self.shape
        return [items[r * columns:(r + 1) * columns] for r in range(rows)]


def _shown(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def parse_value(text: str, label: str) -> Value:
    """`[[1,2],[3,4]]`, `[1, 0, -1]` or a number; brackets nest at most twice (vectors and matrices)."""
    from pdiff.parse import parse_number
    from pdiff.points import _finite_real

    text = text.strip()
    if not text.startswith("["):
        try:
            number = parse_number(text)
        except InputError as exc:
            raise PointError(f"{label}: {exc}") from None
        return Value((), (_finite_real(number, label),))
    if text.count("[") > MAX_ELEMENTS_NUMERIC or len(text) > 50 * MAX_ELEMENTS_NUMERIC:
        raise PointError(f"{label}: too many elements")

    def items(inner: str) -> list[str]:
        inner = inner.strip()
        if not (inner.startswith("[") and inner.endswith("]")):
            raise PointError(f"{label}: write a vector as [1, 2, 3] and a matrix as [[1, 2], [3, 4]]")
        parts = split_top_level(inner[1:-1])
        if any(not p.strip() for p in parts):
            raise PointError(f"{label}: an empty element in {_shown(inner)!r}")
        return parts

    rows = items(text)
    if rows[0].strip().startswith("["):
        matrix = [items(row) for row in rows]
        if any(cell.strip().startswith("[") for row in matrix for cell in row):
            raise PointError(f"{label}: only vectors and matrices (at most {MAX_RANK} levels of brackets)")
        widths = {len(row) for row in matrix}
        if len(widths) != 1:
            raise PointError(f"{label}: the rows have different lengths ({', '.join(map(str, sorted(widths)))})")
        shape, cells = (len(matrix), widths.pop()), [cell for row in matrix for cell in row]
    else:
        if any(cell.strip().startswith("[") for cell in rows):
            raise PointError(f"{label}: mixes numbers and brackets")
        shape, cells = (len(rows),), rows
    values = []
    for k, cell in enumerate(cells):
        try:
            values.append(_finite_real(parse_number(cell), label))
        except InputError as exc:
            raise PointError(f"{label}: element {k} ({_shown(cell.strip())!r}): {exc}") from None
    return Value(shape, tuple(values))


def parse_point(text: str) -> dict[str, Value]:
    """One --at: name=value items split on top-level commas only (a bracketed value keeps its commas)."""
    point: dict[str, Value] = {}
    for part in split_top_level(text):
        if not part.strip():
            raise PointError(f"--at {_shown(text)!r} has an empty item")
        match = _ASSIGNMENT.fullmatch(part)
        if not match or not match.group(2):
            raise PointError(f"cannot read {_shown(part.strip())!r} in --at: write it like W=[[1,2],[3,4]],x=[1,0]")
        name, value_text = match.groups()
        if name in point:
            raise PointError(f"variable {name!r} given twice in --at")
        point[name] = parse_value(value_text, f"--at {name}")
    if not point:
        raise PointError(f"--at {_shown(text)!r} names no variable")
    return point


def declarations(var: str | Sequence[str] | None) -> dict[str, Shape | None]:
    """--var W:2x3 --var x:3,A:nxn → {name: shape}; a name without a shape is None."""
    texts = [var] if isinstance(var, str) else list(var or [])
    found: dict[str, Shape | None] = {}
    for text in texts:
        for part in split_top_level(text):
            if part.strip():
                name, shape = parse_declaration(part)
                found[name] = shape
    return found


def shapes_of(points: Sequence[Mapping[str, Value]], declared: Mapping[str, Shape | None]) -> dict[str, Shape]:
    """The shape of every variable given a value or a declared shape; values and declarations must agree, and
    every point gives the same shapes."""
    shapes: dict[str, Shape] = {name: shape for name, shape in declared.items() if shape is not None}
    for k, point in enumerate(points):
        for name, value in point.items():
            want = shapes.get(name)
            if want is None:
                shapes[name] = value.shape
            elif len(want) != len(value.shape) or any(isinstance(w, int) and w != s
                                                      for w, s in zip(want, value.shape)):
                where = f"--at {name} (point {k + 1})" if k else f"--at {name}"
                raise InputError(f"{where} is {described(value.shape)}, but {name} is {described(want)}"
                                 f"{' at the first point' if name not in declared else ' by --var'}")
            elif any(isinstance(w, str) for w in want):
                shapes[name] = value.shape
    return shapes


def flat_point(point: Mapping[str, Value]) -> dict[str, sp.Expr]:
    """Element name → exact value, for the exact side (W[0,1] → 2)."""
    return {element: v for name, value in point.items() for element, v in zip(elements(name, value.shape),
                                                                              value.flat)}


def point_text(point: Mapping[str, Value]) -> str:
    """a=2, x=[1, 0, -1], W=[[1, 2], [3, 4]] (exact, as given)."""
    from pdiff.symbolic import to_display

    def shown(value: Value):
        nested = value.nested(to_display)
        return str(nested).replace("'", "") if isinstance(nested, list) else nested

    return ", ".join(f"{name}={shown(value)}" for name, value in point.items())
