"""Renderers for many points (`pdiff diff --points/--grid`): text written chunk by chunk as results finish.

Columns, the same names in csv and jsonl: the input's own columns first (a CSV input's rows are copied as they
were read, extra columns included), then for each partial LABEL: `LABEL` (autograd), `LABEL:exact` (the
symbolic derivative evaluated in float64), `LABEL:abs_diff` = |autograd − exact| and `LABEL:rel_diff` =
abs_diff / |exact| (3 significant digits: they are diagnostics). Without the symbolic side only `LABEL`.
plain: one line per point, the autograd values tab-separated in full precision.
json: one document {"expression", "variables", "dtype", "device", "partials", "columns", "points": [records
as in jsonl], "summary"}; inf and nan are null in JSON.
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np
import orjson

from pdiff.render.common import json_number, reading_lines, short
from pdiff.results import CONVENTION

PREVIEW_ROWS = 20  # rows shown by the table format


def _entries(plan) -> list:
    """The targets that are shown: a matrix plan's entries (a Hessian's gradient is computed, not shown)."""
    return plan.targets[:plan.layout.entries] if plan.layout else plan.targets


def column_names(plan) -> list[str]:
    """The computed columns, in order; for grad, hessian and jacobian those of --at (render.tensor.csv_columns)."""
    if plan.layout:
        from pdiff.render.tensor import csv_columns

        return csv_columns(plan.layout.command, plan.layout.shape, [t.label for t in _entries(plan)],
                           plan.symbolic_side)
    names = []
    for target in plan.targets:
        names.append(target.label)
        if plan.symbolic_side:
            names += [f"{target.label}:exact", f"{target.label}:abs_diff", f"{target.label}:rel_diff"]
    return names


def _shortest(array: np.ndarray) -> list[str]:
    """The shortest text that reads back as the same float64, for every value. orjson (ryu) writes it ~6x faster
    than `repr` (~70 ns a value against ~400 ns: the costly part of writing a million rows); its spelling differs
    only in exponents (`1e-7` for repr's `1e-07`). JSON has no inf/nan (orjson writes null): those are spelt by repr."""
    if not array.size:
        return []
    texts = orjson.dumps(np.ascontiguousarray(array, dtype=np.float64),
                         option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode().split(",")
    for i in np.flatnonzero(~np.isfinite(array)).tolist():
        texts[i] = repr(float(array[i]))
    return texts


def _full(array: np.ndarray, like: tuple[np.ndarray, list[str]] | None = None) -> list[str]:
    """Full-precision text of every value; where `like` holds the same value (exact == autograd, the usual case)
    its text is reused."""
    if like is None:
        return _shortest(array)
    other, texts = like
    same = array == other
    if same.all():
        return texts
    result = list(texts)
    changed = np.flatnonzero(~same)
    for i, text in zip(changed.tolist(), _shortest(array[changed])):
        result[i] = text
    return result


def _short(array: np.ndarray) -> list[str]:
    """3 significant digits. Differences are usually exactly 0: only the others are formatted."""
    texts = ["0"] * len(array)
    nonzero = np.flatnonzero(array != 0)  # nan included
    for i, value in zip(nonzero.tolist(), array[nonzero].tolist()):
        texts[i] = "%.3g" % value
    return texts


def _nulled(array: np.ndarray, texts: list[str], null: str | None) -> list[str]:
    if null is not None:
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            texts = list(texts)
            for i in bad.tolist():
                texts[i] = null
    return texts


def _matrix_text_columns(plan, values, missing: str, null: str | None) -> list[list[str]]:
    """A grad, hessian or jacobian chunk as text, in column_names order; `null` set means JSON."""
    from pdiff.stream import ROW_STATUS

    entries = plan.layout.entries
    quote = (lambda texts: [json.dumps(t) for t in texts]) if null is not None else (lambda texts: texts)
    autos = [_full(values.autograd[t]) for t in range(entries)]
    columns = [_nulled(values.autograd[t], autos[t], null) for t in range(entries)]
    facts = values.facts
    if facts is not None:
        good = facts["good"]

        def only_good(texts: list[str]) -> list[str]:  # rows with a non-finite entry have no facts, as with --at
            return texts if good.all() else [t if g else missing for t, g in zip(texts, good.tolist())]

        numbers = ([facts["eigenvalues"][:, i] for i in range(facts["eigenvalues"].shape[1])]
                   if "eigenvalues" in facts else []) + [facts["determinant"]]
        columns += [only_good(_nulled(a, _full(a), null)) for a in numbers]
        if "critical" in facts:
            spelling = ("true", "false") if null is not None else ("True", "False")
            columns.append(only_good(np.where(facts["critical"], *spelling).tolist()))
            columns.append(only_good(quote(facts["classification"].tolist())))
    largest = values.max_abs
    columns.append(_nulled(largest, _full(largest), missing))  # nan: nothing comparable, as --at's empty cell
    columns.append(quote(np.array(ROW_STATUS)[values.status].tolist()))
    if plan.symbolic_side:
        n = len(values.chunk)
        exact = [values.exact[t] for t in range(entries)]
        parts = [[None if e is None else (e, _full(e, (values.autograd[t], autos[t]))) for t, e in enumerate(exact)]]
        parts += [[None if e is None else (a[t], _short(a[t])) for t, e in enumerate(exact)]
                  for a in (values.abs_diff, values.rel_diff)]
        for part in parts:
            columns += [[missing] * n if cell is None else _nulled(cell[0], cell[1], null) for cell in part]
    return columns


def _text_columns(plan, values, missing: str, null: str | None = None) -> list[list[str]]:
    """The computed columns as text, in column_names order; `null` replaces non-finite values (JSON)."""
    if plan.layout:
        return _matrix_text_columns(plan, values, missing, null)
    n = len(values.chunk)
    columns = []
    for t in range(len(plan.targets)):
        autograd = values.autograd[t]
        auto_text = _full(autograd)
        parts = [(autograd, auto_text)]
        if plan.symbolic_side:
            exact = values.exact[t]
            if exact is None:
                parts += [(None, [missing] * n)] * 3
            else:
                parts += [(exact, _full(exact, (autograd, auto_text))), (values.abs_diff[t], _short(values.abs_diff[t])),
                          (values.rel_diff[t], _short(values.rel_diff[t]))]
        for array, texts in parts:
            if null is not None and array is not None:
                bad = np.flatnonzero(~np.isfinite(array))
                if bad.size:
                    texts = list(texts)
                    for i in bad.tolist():
                        texts[i] = null
            columns.append(texts)
    return columns


def _csv_cell(text: str) -> str:
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


class StreamWriter:
    """Turns a run into text: header() once, chunk(values) per chunk, footer(summary) once."""

    def __init__(self, plan, source):
        self.plan, self.source = plan, source
        self.names = column_names(plan)

    def header(self) -> str:
        return ""

    def chunk(self, values) -> str:
        raise NotImplementedError

    def footer(self, summary):
        return ""


class CsvWriter(StreamWriter):
    def header(self) -> str:
        head = self.source.csv_header
        if head is None:
            head = ",".join(_csv_cell(name) for name in self.source.fields)
        return head + "," + ",".join(_csv_cell(name) for name in self.names) + "\n"

    def chunk(self, values) -> str:
        chunk = values.chunk
        if chunk.raw_rows is not None and self.source.csv_header is not None:
            columns = [chunk.raw_rows]
        else:
            extras = chunk.extras()
            typed = self.source.kind in ("parquet", "ipc", "arrow")  # an Arrow null is an empty cell
            columns = [_full(chunk.columns[name]) if name in chunk.columns
                       else [_csv_cell("" if v is None and typed else str(v)) for v in extras[name]]
                       for name in self.source.fields]
        columns += _text_columns(self.plan, values, "")
        if not len(chunk):
            return ""
        return "\n".join(map(",".join, zip(*columns))) + "\n"


class JsonlWriter(StreamWriter):
    """One JSON object per point: the input fields, then the computed columns."""

    def _records(self, values) -> list[str]:
        chunk = values.chunk
        extras = chunk.extras()
        columns = [_full(chunk.columns[name]) if name in chunk.columns
                   else [json.dumps(v, ensure_ascii=False) for v in extras[name]] for name in self.source.fields]
        columns += _text_columns(self.plan, values, "null", null="null")
        names = list(self.source.fields) + self.names
        line = "{" + ", ".join(json.dumps(name, ensure_ascii=False).replace("%", "%%") + ": %s" for name in names) + "}"
        return [line % row for row in zip(*columns)] if columns else ["{}"] * len(chunk)

    def chunk(self, values) -> str:
        return "".join(record + "\n" for record in self._records(values))


class JsonWriter(JsonlWriter):
    """One document, written as it goes: the points array is streamed, the summary comes last."""

    def header(self) -> str:
        self.first = True
        head = {
            "expression": self.plan.summary.expression,
            "variables": list(self.plan.summary.variables),
            "dtype": self.plan.summary.dtype,
            "device": self.plan.summary.device,
            **({"command": self.plan.layout.command} if self.plan.layout else {}),
            "read_as": self.plan.read_as,
            "reading": list(self.plan.notes),
            "partials": [_partial_record(s) for s in _shown(self.plan)],
            "columns": list(self.source.fields) + self.names,
        }
        text = json.dumps(head, indent=2, ensure_ascii=False)
        return text[:-2] + ',\n  "points": ['

    def chunk(self, values) -> str:
        records = self._records(values)
        if not records:
            return ""
        text = ("\n    " if self.first else ",\n    ") + ",\n    ".join(records)
        self.first = False
        return text

    def footer(self, summary) -> str:
        record = summary_record(summary, len(_shown(self.plan)))
        body = json.dumps(record, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        return ("\n  " if not self.first else "") + f'],\n  "summary": {body}\n}}\n'


class PlainWriter(StreamWriter):
    def chunk(self, values) -> str:
        if not len(values.chunk):
            return ""
        shown = values.autograd[:len(_entries(self.plan))]
        return "\n".join(map("\t".join, zip(*(_full(a) for a in shown)))) + "\n"


class TableWriter(StreamWriter):
    """For people at a terminal: the first rows, then the summary per partial (a Rich renderable)."""

    def __init__(self, plan, source):
        super().__init__(plan, source)
        self.preview: list[list[str]] = []

    def chunk(self, values) -> str:
        take = min(PREVIEW_ROWS - len(self.preview), len(values.chunk))
        for i in range(max(take, 0)):
            row = [short(float(values.chunk.columns[v][i])) for v in self.source.variables]
            for t in range(len(_entries(self.plan))):
                row.append(short(float(values.autograd[t][i])))
                if self.plan.symbolic_side:
                    exact = values.exact[t]
                    row.append("—" if exact is None else short(float(exact[i])))
            self.preview.append(row)
        return ""

    def footer(self, summary):
        from rich import box
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        preview = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                        title=f"first {len(self.preview)} of {summary.points} points", title_justify="left")
        for name in self.source.variables:
            preview.add_column(name, justify="right")
        for target in _entries(self.plan):
            preview.add_column(target.label, justify="right")
            if self.plan.symbolic_side:
                preview.add_column(f"{target.label} exact", justify="right")
        for row in self.preview:
            preview.add_row(*row)
        totals = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name in ("partial", "derivative", "points", "max |Δ|", "max rel", "non-finite", "disagree",
                     "no derivative"):
            totals.add_column(name, justify="left" if name in ("partial", "derivative") else "right",
                              overflow="fold")
        for t in summary.targets[:len(_entries(self.plan))]:
            style = "red" if t.non_finite or t.disagree or t.not_differentiable else ""
            totals.add_row(t.target.label, (t.derivative or "—").replace("**", "^"), str(t.points),
                           f"{t.max_abs_diff:.1e}" if t.exact else "—", f"{t.max_rel_diff:.1e}" if t.exact else "—",
                           Text(str(t.non_finite), style=style), Text(str(t.disagree), style=style),
                           Text(str(t.not_differentiable), style=style))
        rtol, atol = summary.tolerance
        note = (f"{summary.dtype} on {summary.device}; exact = the symbolic derivative in float64; "
                f"agreement when |Δ| ≤ {atol:g} + {rtol:g}·|exact|. {CONVENTION}.")
        reading = [Text(line, style="dim") for line in reading_lines(self.plan.read_as, self.plan.notes)]
        return Group(*reading, preview, totals, Text(note, style="dim"))


def _partial_record(t) -> dict:
    record = {"partial": t.target.partial, "label": t.target.label, "wrt": list(t.target.wrt),
              "derivative": t.derivative}
    if t.target.component is not None:
        record["component"] = t.target.component
    return record


def _shown(plan) -> list:
    return plan.summary.targets[:len(_entries(plan))]


def summary_record(summary, shown: int | None = None) -> dict:
    """The summary as JSON-ready data (field names are a public contract); the first `shown` partials."""
    rtol, atol = summary.tolerance
    return {
        "points": summary.points,
        "finished": summary.finished,
        "tolerance": {"rtol": rtol, "atol": atol},
        "partials": [{**_partial_record(t), "points": t.points, "non_finite": t.non_finite,
                      "disagree": t.disagree,
                      "max_abs_diff": json_number(t.max_abs_diff) if t.exact else None,
                      "max_abs_at": t.max_abs_at,
                      "max_rel_diff": json_number(t.max_rel_diff) if t.exact else None,
                      "max_rel_at": t.max_rel_at,
                      "first_non_finite": t.first_non_finite, "first_disagree": t.first_disagree,
                      "not_differentiable": t.not_differentiable,
                      "first_not_differentiable": t.first_not_differentiable,
                      "kink_unexamined": t.kink_unexamined, "first_kink_unexamined": t.first_kink_unexamined,
                      "note": t.note} for t in summary.targets[:shown]],
        "problems": summary.problems,
    }


WRITERS: dict[str, Callable] = {"csv": CsvWriter, "jsonl": JsonlWriter, "json": JsonWriter, "plain": PlainWriter,
                                "table": TableWriter}


def writer(fmt: str, plan, source) -> StreamWriter:
    return WRITERS[fmt](plan, source)


def progress(total: int | None, unit: str):
    """A Rich progress bar on stderr (the caller shows it only when stderr is a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                   TextColumn("{task.completed:,} " + unit), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("points", total=total)
    return bar, lambda amount: bar.advance(task, amount)


# ---------------------------------------------------------------------------------------------------- --output FILE

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
                  ".feather": "feather", ".arrow": "arrow"}


def output_format(path: str, fmt: str = "auto") -> str:
    """The format of `--output FILE`, from its extension; --format may repeat it but not contradict it."""
    import os

    from pdiff.errors import InputError

    found = OUTPUT_FORMATS.get(os.path.splitext(path)[1].lower())
    if found is None:
        raise InputError(f"--output {path}: the extension names the format: "
                         f"{', '.join(OUTPUT_FORMATS)}")
    if fmt not in ("auto", found):
        raise InputError(f"--format {fmt} does not match --output {path} (its extension gives {found})")
    return found


class FileOutput:
    """`--output FILE`: the run written into FILE as chunks finish, by a text writer (csv, jsonl, json) or
    pdiff.arrow's (parquet, feather, arrow). It is written beside FILE under a temporary name and renamed when the
    run ends, so FILE is never a half-written file; an input error mid-run leaves no file."""

    def __init__(self, path: str, fmt: str, plan, source):
        import os
        import tempfile

        self.path, self.fmt = path, fmt
        directory = os.path.dirname(os.path.abspath(path))
        handle, self.temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
        os.close(handle)
        if fmt in ("parquet", "feather", "arrow"):
            from pdiff import sources

            arrow = sources._arrow()
            self.text = None
            self.sink = arrow.ArrowFileWriter(self.temporary, "parquet" if fmt == "parquet" else "ipc", plan, source)
        else:
            self.text = writer(fmt, plan, source)
            self.sink = open(self.temporary, "w", encoding="utf-8", newline="")  # noqa: SIM115  closed by close()
            self.sink.write(self.text.header())

    def write(self, values) -> None:
        if self.text is None:
            self.sink.write(values)
        else:
            self.sink.write(self.text.chunk(values))

    def close(self, summary) -> None:
        import os

        if self.text is not None:
            self.sink.write(self.text.footer(summary))
        self.sink.close()
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.temporary, 0o666 & ~mask)  # as open() would have made it, not mkstemp's 0600
        os.replace(self.temporary, self.path)

    def abort(self) -> None:
        import contextlib
        import os

        with contextlib.suppress(Exception):
            self.sink.close()
        with contextlib.suppress(OSError):
            os.unlink(self.temporary)
