"""Renderers for gradients, Hessians, Jacobians, Laplacians, div, curl and directional derivatives."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable

import numpy as np

from pdiff.render.common import display_value, json_number, reading_lines, short
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
        "exact": _map(result.exact, display_value),
        "derivative": _map(report.derivative, display_value),
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
        "read_as": report.read_as,
        "reading": list(report.notes),
        **({"index_rule": report.index_rule} if report.index_rule else {}),
        **({"closed_form": report.closed_form} if report.closed_form else {}),
        "derivative": _map(report.derivative, display_value),
        "results": [_record(report, r) for r in report.results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def jsonl(report: TensorReport) -> Iterable[str]:
    for result in report.results:
        yield json.dumps({"command": report.command, "expression": report.expression, "read_as": report.read_as,
                          **_record(report, result)}, ensure_ascii=False)


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
            yield "\t".join("timeout" if d is None else display_value(d) for d in row)
    for result in report.results:
        for row in _rows(result.autograd):
            yield "\t".join("timeout" if v is None else repr(v) for v in row)


def extra_columns(command: str, shape: tuple[int, ...]) -> list[str]:
    """The facts a row carries beside the entries: the Hessian's, or a square Jacobian's determinant."""
    if command == "hessian":
        return [f"eigenvalue_{i + 1}" for i in range(shape[0])] + ["determinant", "critical", "classification"]
    if command == "jacobian" and shape[0] == shape[1]:
        return ["determinant"]
    return []


def csv_columns(command: str, shape: tuple[int, ...], names, symbolic_side: bool) -> list[str]:
    """The computed columns of grad, hessian and jacobian, the same with --at as with --points/--grid (after the
    input's columns): the entries (row-major), the extras, max_abs_error and status, then with the symbolic side
    every entry's `:exact`, then every `:abs_diff`, then every `:rel_diff` (as for diff --points)."""
    columns = list(names) + extra_columns(command, shape) + ["max_abs_error", "status"]
    if symbolic_side:
        columns += [f"{name}:{kind}" for kind in ("exact", "abs_diff", "rel_diff") for name in names]
    return columns


def _texts(values: list) -> list[str]:
    """Full precision, spelt as the --points columns are (shortest round-trip text); empty where missing."""
    from pdiff.render.stream import _full

    texts = _full(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    return ["" if v is None else t for v, t in zip(values, texts)]


def _differences(autograd: list, exact: list) -> tuple[list[str], list[str]]:
    """|autograd − exact| and that over |exact|, per entry: the --points diagnostics, in their 3 digits."""
    from pdiff.render.stream import _short

    missing = [a is None or e is None for a, e in zip(autograd, exact)]
    a = np.array([np.nan if m else v for m, v in zip(missing, autograd)], dtype=np.float64)
    e = np.array([np.nan if m else v for m, v in zip(missing, exact)], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - e)
        rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    return ([("" if m else t) for m, t in zip(missing, _short(diff))],
            [("" if m else t) for m, t in zip(missing, _short(rel))])


def csv_text(report: TensorReport) -> str:
    """One row per point: the variables, then csv_columns (entries named like d2f/dxdy or df1/dx)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    symbolic_side = not report.results or any(r.value is not None for r in report.results)
    names = list(report.names)
    extras = extra_columns(report.command, report.shape)
    writer.writerow(list(report.variables) + csv_columns(report.command, report.shape, names, symbolic_side))
    if not report.results:
        writer.writerow([""] * len(report.variables) + [display_value(d) or "" for d in _flat(report.derivative)]
                        + [""] * (len(extras) + 1) + ["symbolic"] + [""] * (3 * len(names)))
    for r in report.results:
        autograd = _flat(r.autograd)
        row = _texts([r.point[v] for v in report.variables]) + _texts(autograd)
        if report.command == "hessian":
            row += _texts(r.extra.get("eigenvalues", [None] * report.shape[0])) + _texts([r.extra.get("determinant")])
            row += [r.extra.get("critical", ""), r.extra.get("classification", "")]
        elif extras:
            row += _texts([r.extra.get("determinant")])
        row += _texts([r.max_abs_error]) + [r.status.value]
        if symbolic_side:
            value = _flat(r.value) if r.value is not None else [None] * len(names)
            row += _texts(value) + [cell for part in _differences(autograd, value) for cell in part]
        writer.writerow(row)
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

    # vector and matrix variables: `f = x.T @ A @ x` (its elements are the rows and columns below)
    arguments = "" if report.index_rule else f"({', '.join(report.variables)})"
    parts = [Text.assemble(("f", "bold"), f"{arguments} = ", (report.display, "bold cyan")),
             *(Text(line, style="dim") for line in reading_lines(report.read_as, report.notes)),
             Text(TITLES[report.command], style="bold")]
    if report.index_rule:
        parts.append(Text(report.index_rule, style="dim"))
    if report.closed_form:
        parts.append(Text.assemble(("closed form: ", "bold"), (report.closed_form, "bold cyan"),
                                   (" (agrees with autograd at random values)", "dim")))
    if symbolic or not report.results:
        parts += [Text("symbolic:", style="dim"),
                  _matrix_table(report, report.derivative,
                                lambda d: "(did not finish)" if d is None else display_value(d).replace("**", "^"))]
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
    if report.command == "hessian" and not report.index_rule:
        parts.append(Text("Row x, column y holds d2f/dxdy = ∂/∂x(∂f/∂y).", style="dim"))
    return Group(*parts)
