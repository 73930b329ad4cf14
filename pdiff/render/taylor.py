"""Renderers for `pdiff taylor` and `pdiff tangent` reports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from pdiff.render.common import (
    display_value,
    json_number,
    number_text,
    reading_lines,
    short,
)
from pdiff.results import Status


def _powers(report, index) -> dict:
    return dict(zip(report.variables, index))


def shown_polynomial(report) -> str:
    """The exact polynomial for people (^ for powers), else the float64 one."""
    return (report.polynomial or report.numeric_polynomial).replace("**", "^")


def _records(report) -> list[dict]:
    from pdiff.taylor_api import monomial

    return [{"index": list(c.index), "powers": _powers(report, c.index),
             "term": monomial(c.index, report.variables, _point(report)),
             "exact": display_value(c.exact), "value": json_number(c.value), "taylor": json_number(c.numeric),
             "abs_error": json_number(c.abs_error), "status": c.status.value, "note": c.note}
            for c in report.coefficients]


def _point(report) -> dict:
    import sympy as sp

    from pdiff.points import coerce_point

    exact = coerce_point(report.point_text)
    return {name: exact.get(name, sp.Float(report.point[name])) for name in report.variables}


def json_document(report) -> str:
    document = {
        "command": "taylor", "expression": report.expression, "variables": list(report.variables),
        "point": report.point, "order": report.order, "dtype": report.dtype, "device": report.device,
        "read_as": report.read_as, "reading": list(report.notes),
        "polynomial": report.polynomial, "numeric_polynomial": report.numeric_polynomial,
        "remainder_order": report.remainder_order, "tangent": report.tangent,
        "coefficients": _records(report),
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def jsonl(report) -> Iterable[str]:
    for record in _records(report):
        yield json.dumps({"expression": report.expression, "read_as": report.read_as, **record},
                         ensure_ascii=False)


def plain(report, tangent: bool = False) -> Iterable[str]:
    """One line: the polynomial (or, for `pdiff tangent`, `tangent plane z = ...`)."""
    yield report.tangent if tangent and report.tangent else shown_polynomial(report)


def csv_text(report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*report.variables, "term", "exact", "value", "taylor", "abs_error", "status"])
    for record, c in zip(_records(report), report.coefficients):
        writer.writerow([*c.index, record["term"], display_value(c.exact) or "", number_text(c.value),
                         number_text(c.numeric), number_text(c.abs_error), c.status.value])
    return out.getvalue()


def table(report, tangent: bool = False):
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from pdiff.taylor_api import monomial

    parts = [Text.assemble(("f", "bold"), f"({', '.join(report.variables)}) = ", (report.display, "bold cyan")),
             *(Text(line, style="dim") for line in reading_lines(report.read_as, report.notes)), ""]
    if tangent and report.tangent:
        parts.append(Text(report.tangent, style="bold"))
    else:
        parts.append(Text.assemble(f"Taylor polynomial of order {report.order} at {report.point_text}:\n",
                                   (shown_polynomial(report), "bold"), f" + O(|Δ|^{report.remainder_order})"))
    rows = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("term", "left"), ("exact", "left"), ("Taylor mode", "right"), ("|Δ|", "right")):
        rows.add_column(name, justify=justify, overflow="fold")
    troubled = any(c.status is not Status.OK for c in report.coefficients)
    if troubled:
        rows.add_column("status")
    point = _point(report)
    for c in report.coefficients:
        exact = display_value(c.exact) or "—"
        cell = Text(exact.replace("**", "^"))
        if c.value is not None and exact != short(c.value):
            cell.append(f"\n≈ {short(c.value)}", style="dim")
        row = [monomial(c.index, report.variables, point), cell, short(c.numeric),
               "" if c.abs_error is None else f"{c.abs_error:.1e}"]
        if troubled:
            row.append(c.status.value)
        rows.add_row(*row)
    parts += ["", rows]
    rtol, atol = report.tolerance
    parts.append(Text(f"coefficients c = ∂ⁿf/n! (exact: SymPy series; Taylor mode: {report.dtype} on "
                      f"{report.device}); agreement when |Δ| ≤ {atol:g} + {rtol:g}·|exact|.", style="dim"))
    return Group(*parts)
