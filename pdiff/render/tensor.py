"""Renderers for gradients, Hessians, Jacobians, Laplacians, div, curl and directional derivatives."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable

from pdiff.render.common import json_number, number_text, short
from pdiff.results import Status, TensorReport, TensorResult

TITLES = {"gradient": "gradient ∇f", "hessian": "Hessian", "jacobian": "Jacobian", "laplacian": "Laplacian ∇²f",
          "divergence": "divergence ∇·F", "curl": "curl ∇×F", "directional": "directional derivative D_u f"}


def _map(value, function):
    """Apply `function` to every entry of a scalar, vector or matrix."""
    if isinstance(value, list):
        return [_map(v, function) for v in value]
    return function(value)


def _flat(value) -> list:
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [value]


def _extras_json(result: TensorResult) -> dict:
    extra = dict(result.extra)
    for key in ("eigenvalues", "gradient"):
        if key in extra:
            extra[key] = [json_number(v) for v in extra[key]]
    for key in ("determinant", "asymmetry"):
        if key in extra:
            extra[key] = json_number(extra[key])
    return extra


def _record(report: TensorReport, result: TensorResult) -> dict:
    return {
        "point": result.point,
        "autograd": _map(result.autograd, json_number),
        "value": None if result.value is None else _map(result.value, json_number),
        "exact": result.exact,
        "derivative": report.derivative,
        "max_abs_error": json_number(result.max_abs_error),
        "status": result.status.value,
        "note": result.note,
        **_extras_json(result),
    }


def json_document(report: TensorReport) -> str:
    document = {
        "command": report.command,
        "expression": report.expression,
        "variables": list(report.variables),
        "dtype": report.dtype,
        "device": report.device,
        "derivative": report.derivative,
        "results": [_record(report, r) for r in report.results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def jsonl(report: TensorReport) -> Iterable[str]:
    for result in report.results:
        yield json.dumps({"command": report.command, "expression": report.expression, **_record(report, result)},
                         ensure_ascii=False)


def _rows(value) -> list[list]:
    if not isinstance(value, list):
        return [[value]]
    if value and isinstance(value[0], list):
        return value
    return [value]


def plain(report: TensorReport) -> Iterable[str]:
    """One row per line, values tab-separated (full precision); symbolic entries when no point was given."""
    if not report.results:
        for row in _rows(report.derivative):
            yield "\t".join("timeout" if d is None else d for d in row)
    for result in report.results:
        for row in _rows(result.autograd):
            yield "\t".join("timeout" if v is None else repr(v) for v in row)


def csv_text(report: TensorReport) -> str:
    """One row per point: the variables, one column per entry (named like d2f/dxdy), then the extras."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extras = []
    if report.command == "hessian":
        extras = [f"eigenvalue_{i + 1}" for i in range(report.shape[0])] + ["determinant", "critical",
                                                                             "classification"]
    elif report.command == "jacobian" and report.shape[0] == report.shape[1]:
        extras = ["determinant"]
    writer.writerow(list(report.variables) + list(report.names) + extras + ["max_abs_error", "status"])
    if not report.results:
        writer.writerow([""] * len(report.variables) + [d or "" for d in _flat(report.derivative)]
                        + [""] * len(extras) + ["", "symbolic"])
    for r in report.results:
        row = [repr(r.point[v]) for v in report.variables] + [number_text(v) for v in _flat(r.autograd)]
        if report.command == "hessian":
            row += ([number_text(v) for v in r.extra.get("eigenvalues", [None] * report.shape[0])]
                    + [number_text(r.extra.get("determinant")), r.extra.get("critical", ""),
                       r.extra.get("classification", "")])
        elif extras:
            row.append(number_text(r.extra.get("determinant")))
        writer.writerow(row + [number_text(r.max_abs_error), r.status.value])
    return buffer.getvalue()


def _matrix_table(report: TensorReport, value, cell):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    has_rows = bool(report.row_labels)
    if has_rows:
        table.add_column("")
    for label in report.column_labels:
        table.add_column(label, justify="right", overflow="fold")
    for i, row in enumerate(_rows(value)):
        table.add_row(*([report.row_labels[i]] if has_rows else []), *(cell(v) for v in row))
    return table


def _classification(result: TensorResult) -> str:
    extra = result.extra
    if "classification" not in extra:
        return ""
    if extra["critical"]:
        return f"critical point: {extra['classification']}"
    return (f"not a critical point (the gradient is not zero); the Hessian there is "
            f"{_definiteness(extra['second_derivative_test'])}")


def _definiteness(test: str) -> str:
    return {"local minimum": "positive definite", "local maximum": "negative definite",
            "saddle point": "indefinite", "inconclusive": "singular"}[test]


def table(report: TensorReport, symbolic: bool = False):
    """The object laid out as a matrix, labelled by variable, one block per point."""
    from rich.console import Group
    from rich.text import Text

    parts = [Text.assemble(("f", "bold"), f"({', '.join(report.variables)}) = ", (report.display, "bold cyan")),
             Text(TITLES[report.command], style="bold")]
    if symbolic or not report.results:
        parts += [Text("symbolic:", style="dim"),
                  _matrix_table(report, report.derivative,
                                lambda d: "(did not finish)" if d is None else d.replace("**", "^"))]
    for r in report.results:
        style = "" if r.status is Status.OK else "red"
        parts += ["", Text(f"at {r.point_text}", style="bold"),
                  _matrix_table(report, r.autograd, lambda v: Text(short(v), style=style))]
        facts = []
        if "eigenvalues" in r.extra:
            facts.append("eigenvalues: " + ", ".join(short(v) for v in r.extra["eigenvalues"]))
        if "determinant" in r.extra:
            facts.append(f"determinant: {short(r.extra['determinant'])}")
        if facts:
            parts.append(Text("   ".join(facts)))
        if _classification(r):
            parts.append(Text(_classification(r), style="bold"))
        if r.max_abs_error is not None:
            parts.append(Text(f"largest |autograd − exact|: {r.max_abs_error:.1e}", style="dim"))
        if r.note:
            parts.append(Text(r.note, style="red"))
    if report.results:
        rtol, atol = report.tolerance
        parts.append(Text(f"\n{report.dtype} on {report.device}; agreement when |Δ| ≤ {atol:g} + {rtol:g}·|exact|.",
                          style="dim"))
    if report.command == "hessian":
        parts.append(Text("Row x, column y holds d2f/dxdy = ∂/∂x(∂f/∂y).", style="dim"))
    return Group(*parts)
