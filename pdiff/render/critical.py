"""Renderers for `pdiff critical`: a Rich table, plain lines, JSON and CSV of a CriticalReport."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from pdiff.render.common import json_number, reading_lines, short
from pdiff.render.tensor import _texts
from pdiff.results import CriticalPoint, CriticalReport

LONGEST_EXACT = 24  # longer exact coordinates are shown in a table as their float (JSON keeps them whole)


def _record(point: CriticalPoint) -> dict:
    return {
        "point": {name: json_number(value) for name, value in point.point.items()},
        "exact": dict(point.exact) if point.exact is not None else None,
        "value": json_number(point.value),
        "classification": point.classification,
        "eigenvalues": [json_number(v) for v in point.eigenvalues],
        "method": point.method,
    }


def json_document(report: CriticalReport) -> str:
    document = {
        "command": "critical",
        "expression": report.expression,
        "variables": list(report.variables),
        "dtype": report.dtype,
        "device": report.device,
        "read_as": report.read_as,
        "reading": list(report.notes),
        "method": report.method,
        "box": None if report.box is None else {n: list(b) for n, b in report.box.items()},
        "complete": report.complete,
        "notes": list(report.messages),
        "problems": list(report.problems),
        "points": [_record(p) for p in report.points],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def jsonl(report: CriticalReport) -> Iterable[str]:
    for point in report.points:
        yield json.dumps({"command": "critical", "expression": report.expression, "read_as": report.read_as,
                          **_record(point)}, ensure_ascii=False)


def plain(report: CriticalReport) -> Iterable[str]:
    """One line per point: the coordinates, f there, the classification (tab-separated, full precision)."""
    for point in report.points:
        yield "\t".join([*(repr(point.point[n]) for n in report.variables), repr(point.value),
                         point.classification])


def csv_columns(report: CriticalReport) -> list[str]:
    return [*report.variables, "f", "classification", "method",
            *(f"eigenvalue_{i + 1}" for i in range(len(report.variables)))]


def csv_text(report: CriticalReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(csv_columns(report))
    for p in report.points:
        writer.writerow([*_texts([p.point[n] for n in report.variables]), *_texts([p.value]), p.classification,
                         p.method, *_texts(list(p.eigenvalues))])
    return buffer.getvalue()


def _shown(exact: str | None, value: float) -> str:
    if exact is not None and len(exact) <= LONGEST_EXACT:
        return exact.replace("**", "^")
    return short(value) if exact is None else f"≈ {short(value)}"


def table(report: CriticalReport):
    """The points as rows: exact coordinates where known, f, the classification, eigenvalues, method."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = [Text.assemble(("f", "bold"), f"({', '.join(report.variables)}) = ", (report.display, "bold cyan")),
             *(Text(line, style="dim") for line in reading_lines(report.read_as, report.notes))]
    count = len(report.points)
    parts.append(Text(f"critical points: {count}" if count else "no critical points", style="bold"))
    if report.points:
        grid = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name in report.variables:
            grid.add_column(name, justify="right", overflow="fold")
        grid.add_column("f", justify="right", overflow="fold")
        grid.add_column("classification")
        grid.add_column("eigenvalues", justify="right")
        grid.add_column("method")
        for p in report.points:
            exact = p.exact or {}
            grid.add_row(*(_shown(exact.get(n), p.point[n]) for n in report.variables),
                         _shown(p.value_exact if p.method == "exact" else None, p.value), p.classification,
                         ", ".join(short(v) for v in p.eigenvalues), p.method)
        parts.append(grid)
    for message in report.messages:
        parts.append(Text(message, style="dim"))
    for problem in report.problems:
        parts.append(Text(problem, style="red"))
    return Group(*parts)
