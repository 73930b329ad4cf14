"""`pdiff steps` and `pdiff check --work`: a Rich tree, plain text, JSON, JSONL, CSV and LaTeX. No math here.

Every label is a rich Text, never markup: `d/dx[x]` keeps its brackets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from pdiff.render.common import json_number
from pdiff.steps.results import StepsReport, StepView, WorkReport

_STATUS = {"proven": "proven", "checked": "checked at points only", "unverified": "NOT VERIFIED",
           "wrong": "WRONG"}
_STYLE = {"proven": "green", "checked": "yellow", "unverified": "bold red", "wrong": "bold red"}


def _rule_name(step: StepView) -> str:
    if step.rule in ("constant", "table lookup", "rewrite", "simplify", "logarithmic differentiation"):
        return step.rule
    return f"{step.rule} rule"


def _status(step: StepView) -> str:
    v = step.verified
    said = _STATUS[v.status]
    if v.status == "proven":
        said += f" (SymPy; {v.points} point{'s' if v.points != 1 else ''})" if v.points else " (SymPy)"
    elif v.status == "checked":
        said = f"checked at {v.points} point{'s' if v.points != 1 else ''} (not proven symbolically)"
    elif v.status == "wrong" and v.counterexample:
        said += f": {v.counterexample}"
    return said


def _equation(step: StepView) -> str:
    if step.rule == "simplify":
        return f"{step.input} = {step.output}"
    return f"{step.operator}[{step.input}] = {step.output}"


def _header(step: StepView) -> str:
    parts = [f"{step.id} {_rule_name(step)}"]
    if step.note:
        parts.append(step.note)
    if step.held_constant and "held constant" not in step.note:
        held = ", ".join(step.held_constant)
        parts.append(f"{held} held constant")
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else "")


def _title(report: StepsReport) -> str:
    """The whole question: ∂/∂x ∂/∂y[x^2 y^3], with what is held constant."""
    first = next((s for s in report.steps if s.rule != "simplify"), None)
    if first is None:
        return report.read_as
    partial = first.operator.startswith("∂")
    ops = " ".join(f"∂/∂{v}" if partial else f"d/d{v}" for v in reversed(report.wrt))
    held = f"   ({', '.join(report.held_constant)} held constant)" if report.held_constant else ""
    return f"{ops}[{first.input}]{held}"


def _summary(report: StepsReport) -> list[str]:
    counts: dict[str, int] = {}
    for step in report.all_steps():
        counts[step.verified.status] = counts.get(step.verified.status, 0) + 1
    total = sum(counts.values())
    said = [f"{counts[s]} {_STATUS[s] if s != 'checked' else 'checked at points only'}"
            for s in ("proven", "checked", "unverified", "wrong") if counts.get(s)]
    lines = [f"{total} step{'s' if total != 1 else ''}: {', '.join(said)}"]
    if report.autograd_counterexample:
        lines.append(f"autograd DISAGREES with the result {report.autograd_counterexample}")
    elif report.autograd_points:
        lines.append(f"the result agrees with torch autograd at {report.autograd_points} points")
    for point in report.at:
        value = "undefined" if point.value is None else f"{point.value:.15g}"
        autograd = "" if point.autograd is None else f" (autograd {point.autograd:.15g})"
        lines.append(f"at {point.point}: {point.exact} ≈ {value}{autograd}" if point.exact != value else
                     f"at {point.point}: {value}{autograd}")
    return lines


# ---- plain text

def plain(report: StepsReport) -> Iterator[str]:
    yield _title(report)
    for note in report.notes:
        yield f"note: {note}"

    def walk(step: StepView, depth: int) -> Iterator[str]:
        pad = "  " * depth
        yield f"{pad}{_header(step)}"
        yield f"{pad}  {_equation(step)}   [{_status(step)}]"
        for sub in step.substeps:
            yield from walk(sub, depth + 1)

    for step in report.steps:
        yield from walk(step, 0)
    yield f"result: {report.result}"
    yield from _summary(report)


# ---- a Rich tree (terminal)

def table(report: StepsReport):
    from rich.console import Group
    from rich.text import Text
    from rich.tree import Tree

    root = Tree(Text(_title(report), style="bold"))

    def label(step: StepView) -> Text:
        text = Text(_header(step), style="bold" if "." not in step.id else "")
        text.append("\n")
        text.append(_equation(step))
        text.append("  ")
        text.append(_status(step), style=_STYLE[step.verified.status])
        return text

    def walk(step: StepView, parent) -> None:
        branch = parent.add(label(step))
        for sub in step.substeps:
            walk(sub, branch)

    for step in report.steps:
        walk(step, root)
    lines = [Text(f"result: {report.result}", style="bold")] + [Text(line) for line in _summary(report)]
    notes = [Text(f"note: {note}", style="dim") for note in report.notes]
    return Group(*notes, root, *lines)


# ---- JSON, JSONL, CSV

def _step_json(step: StepView) -> dict:
    return {"id": step.id, "rule": step.rule, "wrt": step.wrt, "input": step.input, "output": step.output,
            "note": step.note,
            "verified": {"symbolic": step.verified.symbolic, "points": step.verified.points},
            "status": step.verified.status, "counterexample": step.verified.counterexample,
            **({"held_constant": list(step.held_constant)} if "." not in step.id and step.rule != "simplify"
               else {}),
            "substeps": [_step_json(s) for s in step.substeps]}


def json_object(report: StepsReport) -> dict:
    return {"expression": report.expression, "read_as": report.read_as, "partial": report.partial,
            "wrt": list(report.wrt), "variables": list(report.variables),
            "held_constant": list(report.held_constant),
            "steps": [_step_json(s) for s in report.steps], "result": report.result,
            "autograd": {"points": report.autograd_points, "counterexample": report.autograd_counterexample},
            "at": [{"point": p.point, "exact": p.exact, "value": json_number(p.value),
                    "autograd": json_number(p.autograd)} for p in report.at],
            "notes": list(report.notes), "problems": report.problems}


def json_document(report: StepsReport) -> str:
    return json.dumps(json_object(report), indent=2, ensure_ascii=False) + "\n"


_FLAT = ("id", "rule", "wrt", "input", "output", "status", "symbolic", "points", "note")


def _flat(report: StepsReport) -> Iterator[dict]:
    for step in report.all_steps():
        yield {"id": step.id, "rule": step.rule, "wrt": step.wrt, "input": step.input, "output": step.output,
               "status": step.verified.status, "symbolic": step.verified.symbolic, "points": step.verified.points,
               "note": step.note}


def jsonl(report: StepsReport) -> Iterator[str]:
    for row in _flat(report):
        yield json.dumps(row, ensure_ascii=False)


def csv_text(report: StepsReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_FLAT, lineterminator="\n")
    writer.writeheader()
    for row in _flat(report):
        writer.writerow({**row, "symbolic": "" if row["symbolic"] is None else str(row["symbolic"]).lower()})
    return out.getvalue()


# ---- LaTeX

def _latex_text(text: str) -> str:
    escaped = "".join("\\" + c if c in "#$%&_{}" else "\\textasciicircum{}" if c == "^" else c for c in text)
    return f"\\text{{{escaped}}}"


def _latex_operator(step: StepView) -> str:
    var = step.wrt if len(step.wrt) == 1 else f"\\mathrm{{{step.wrt}}}"
    if step.operator.startswith("∂"):
        return f"\\frac{{\\partial}}{{\\partial {var}}}"
    return f"\\frac{{d}}{{d{var}}}"


def latex(report: StepsReport) -> str:
    rows = []

    def walk(step: StepView) -> None:
        said = f"{step.id} {_rule_name(step)} ({_STATUS[step.verified.status]})"
        if step.rule == "simplify":
            rows.append(f"&= {step.output_latex} && {_latex_text(said)}")
        else:
            rows.append(f"{_latex_operator(step)}\\left[{step.input_latex}\\right] &= {step.output_latex} && "
                        f"{_latex_text(said)}")
        for sub in step.substeps:
            walk(sub)

    for step in report.steps:
        walk(step)
    head = f"% pdiff steps: {report.leibniz} of {report.read_as}\n"
    return head + "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"


# ---- check --work

def work_plain(report: WorkReport) -> Iterator[str]:
    yield f"{report.partial}: {report.function}"
    yield f"derivative: {report.derivative}"
    for line in report.lines:
        said = f"line {line.line}: {line.verdict}: {line.text}"
        if line.mistake:
            said += f"   (likely: {line.mistake})"
        yield said
        if line.counterexample:
            yield f"  {line.counterexample}"
    if report.first_wrong_line is None:
        yield "every line holds"
    else:
        yield f"first wrong line: {report.first_wrong_line}"


def work_table(report: WorkReport):
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=Text(f"{report.partial}: {report.function}  =  {report.derivative}"), box=None,
                 show_edge=False)
    for name in ("line", "verdict", "work", "likely mistake / counterexample"):
        grid.add_column(name)
    styles = {"correct": "green", "error": "bold red", "new error": "bold red", "carried error": "yellow"}
    for line in report.lines:
        why = "; ".join(x for x in (line.mistake, line.counterexample) if x)
        grid.add_row(str(line.line), Text(line.verdict, style=styles.get(line.verdict, "")), Text(line.text),
                     Text(why))
    return grid


def work_json_object(report: WorkReport) -> dict:
    return {"source": report.source, "function": report.function, "partial": report.partial,
            "derivative": report.derivative, "first_wrong_line": report.first_wrong_line,
            "lines": [{"line": x.line, "text": x.text, "verdict": x.verdict, "mistake": x.mistake,
                       "counterexample": x.counterexample} for x in report.lines],
            "notes": list(report.notes)}


def work_json(report: WorkReport) -> str:
    return json.dumps(work_json_object(report), indent=2, ensure_ascii=False) + "\n"


def work_jsonl(report: WorkReport) -> Iterator[str]:
    for line in work_json_object(report)["lines"]:
        yield json.dumps(line, ensure_ascii=False)


def work_csv(report: WorkReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["line", "text", "verdict", "mistake", "counterexample"])
    for x in report.lines:
        writer.writerow([x.line, x.text, x.verdict, x.mistake or "", x.counterexample or ""])
    return out.getvalue()


def work_latex(report: WorkReport) -> str:
    rows = []
    for x in report.lines:
        said = x.verdict + (f": {x.mistake}" if x.mistake else "")
        rows.append(f"{_latex_text(f'line {x.line}')} && {_latex_text(x.text)} && {_latex_text(said)}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"
