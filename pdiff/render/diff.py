"""Renderers for `pdiff diff` reports."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Iterable

from pdiff.render.common import display_value, json_number, number_text, reading_lines, short
from pdiff.results import CONVENTION, DiffReport, DiffResult, Status


def _result_record(report: DiffReport, result: DiffResult) -> dict:
    record = {
        "partial": result.partial,
        "wrt": list(result.wrt),
        "point": result.point,
        "derivative": display_value(result.derivative),
        "exact": display_value(result.exact),
        "value": json_number(result.value),
        "autograd": json_number(result.autograd),
        "abs_error": json_number(result.abs_error),
        "status": result.status.value,
        "note": result.note,
    }
    if report.is_vector:
        record["component"] = result.component
    return record


def json_document(report: DiffReport) -> str:
    document = {
        "expression": report.expression,
        "variables": list(report.variables),
        "dtype": report.dtype,
        "device": report.device,
        "read_as": report.read_as,
        "reading": list(report.notes),
        "results": [_result_record(report, r) for r in report.results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def jsonl(report: DiffReport) -> Iterable[str]:
    for result in report.results:
        yield json.dumps({"expression": report.expression, "read_as": report.read_as,
                          **_result_record(report, result)}, ensure_ascii=False)


def plain(report: DiffReport) -> Iterable[str]:
    """One line per answer: the autograd value in full precision, or the derivative when no point was given.

    An answer at a point outside the function's domain, or on a kink where no derivative exists, is `nan` even
    where autograd's formula gives a finite number.
    """
    for result in report.results:
        if result.point is None:
            yield display_value(result.derivative) if result.derivative is not None else "timeout"
        elif result.autograd is None:
            yield "timeout"
        elif result.status in (Status.NON_FINITE, Status.NON_DIFFERENTIABLE) and math.isfinite(result.autograd):
            yield "nan"  # autograd's number is not an answer: no derivative exists there
        else:
            yield repr(result.autograd)


def csv_text(report: DiffReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    head = ["partial", "wrt"] + (["component"] if report.is_vector else [])
    names = sorted({name for r in report.results for name in (r.point or {})}, key=lambda n: (
        n not in report.variables, n))
    writer.writerow(head + names + ["derivative", "exact", "value", "autograd", "abs_error", "status"])
    for r in report.results:
        row = [r.partial, " ".join(r.wrt)] + ([r.component] if report.is_vector else [])
        row += [repr(r.point[name]) if r.point else "" for name in names]
        row += [display_value(r.derivative) or "", display_value(r.exact) or "", number_text(r.value),
                number_text(r.autograd), number_text(r.abs_error), r.status.value]
        writer.writerow(row)
    return buffer.getvalue()


_STATUS_STYLE = {Status.OK: "", Status.SYMBOLIC: "", Status.NON_FINITE: "red", Status.NON_DIFFERENTIABLE: "red",
                 Status.DISAGREE: "red", Status.TIMEOUT: "yellow"}


def _component_label(report: DiffReport, result: DiffResult) -> str:
    return f"[{result.component + 1}] " if report.is_vector else ""


def _exact_cell(result: DiffResult):
    """The exact form, and its float below it when the form is not already a plain number."""
    from rich.text import Text

    if result.exact is None:
        return Text("—")
    exact = display_value(result.exact)
    cell = Text(exact.replace("**", "^"))
    if result.value is not None and exact != short(result.value):
        cell.append(f"\n≈ {short(result.value)}", style="dim")
    return cell


def table(report: DiffReport):
    """The expression as understood, each derivative once, then a table of values (15 significant digits)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = [Text.assemble(("f", "bold"), f"({', '.join(report.variables)}) = ", (report.display, "bold cyan")),
             *(Text(line, style="dim") for line in reading_lines(report.read_as, report.notes)), ""]
    derivatives = Table(box=None, show_header=False, pad_edge=False)
    derivatives.add_column(style="bold")
    derivatives.add_column(overflow="fold")
    seen = set()
    for r in report.results:
        if (r.component, r.partial) not in seen:
            seen.add((r.component, r.partial))
            text = (display_value(r.derivative) or "(did not finish)").replace("**", "^")
            derivatives.add_row(f"{_component_label(report, r)}{r.partial} =", text)
    parts.append(derivatives)

    with_points = [r for r in report.results if r.point is not None]
    if with_points:
        troubled = any(r.status is not Status.OK for r in with_points)
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name, justify in (("partial", "left"), ("point", "left"), ("autograd", "right"),
                              ("exact", "left"), ("|Δ|", "right")):
            table.add_column(name, justify=justify, overflow="fold", min_width=16 if name == "exact" else None,
                             no_wrap=name in ("partial", "point", "autograd"))
        if troubled:
            table.add_column("status")
        for r in with_points:
            style = _STATUS_STYLE[r.status]
            row = [f"{_component_label(report, r)}{r.partial}", r.point_text or "",
                   Text(short(r.autograd), style=style), _exact_cell(r),
                   "" if r.abs_error is None else f"{r.abs_error:.1e}"]
            if troubled:
                row.append(Text(r.status.value, style=style))
            table.add_row(*row)
        parts += ["", table]
        rtol, atol = report.tolerance
        parts.append(Text(f"{report.dtype} on {report.device}; agreement when |Δ| ≤ {atol:g} + {rtol:g}·|exact|.",
                          style="dim"))
    parts.append(Text(f"{CONVENTION}.", style="dim"))
    return Group(*parts)
