"""Renderers for `pdiff check`: one answer (CheckReport) or a problem file (ProblemSetReport).

JSON fields (a public contract, see README): verdict, derivative, answer, counterexample {point, expected, got}
or null, checked_points; and also expression, partial, wrt, symbolic, reason, notes, read_as, answer_read_as.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable

from pdiff.check_results import CheckReport, ProblemResult, ProblemSetReport, Verdict
from pdiff.render.common import json_number, number_text, short
from pdiff.results import CONVENTION

_STYLE = {Verdict.CORRECT: "bold green", Verdict.INCORRECT: "bold red", Verdict.UNDECIDED: "bold yellow"}


def record(report: CheckReport) -> dict:
    c = report.counterexample
    return {
        "verdict": report.verdict.value,
        "derivative": report.derivative.text if report.derivative else None,
        "answer": report.answer.text,
        "counterexample": None if c is None else {
            "point": c.point, "expected": json_number(c.expected), "got": json_number(c.got),
            "confirmed": c.confirmed},
        "checked_points": report.checked_points,
        "expression": report.expression.text,
        "partial": report.partial,
        "wrt": list(report.wrt),
        "symbolic": report.symbolic,
        "reason": report.reason,
        "notes": list(report.notes),
        "read_as": report.read_as,
        "answer_read_as": report.answer_read_as,
    }


def json_document(report: CheckReport) -> str:
    return json.dumps(record(report), indent=2, ensure_ascii=False)


def jsonl(report: CheckReport) -> Iterable[str]:
    yield json.dumps(record(report), ensure_ascii=False)


def _counterexample_words(report: CheckReport, digits: int | None = None) -> str:
    """`x=-0.03: expected -1.0, got 1.0`: full precision (repr) for machines, `digits` significant for people."""
    c = report.counterexample
    if c is None:
        return ""

    def number(value: float | None) -> str:
        return "undefined" if value is None else repr(value) if digits is None else f"{value:.{digits}g}"

    return f"{c.point_text}: expected {number(c.expected)}, got {number(c.got)}"


def plain(report: CheckReport) -> Iterable[str]:
    """One line: the verdict first (for `v=$(pdiff check ...)`), then the counterexample when incorrect."""
    words = _counterexample_words(report)
    yield report.verdict.value + (f"\t{words}" if words else "")


_CSV_HEAD = ["line", "expression", "partial", "answer", "verdict", "derivative", "point", "expected", "got",
             "checked_points", "error"]


def _csv_row(line, report: CheckReport | None, error: str | None = None, text: str = "") -> list:
    if report is None:
        return [line, text, "", "", "error", "", "", "", "", "", error]
    c = report.counterexample
    return [line, report.expression.text, report.partial, report.answer.text, report.verdict.value,
            report.derivative.text if report.derivative else "", c.point_text if c else "",
            number_text(c.expected) if c else "", number_text(c.got) if c else "", report.checked_points, ""]


def csv_text(report: CheckReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_HEAD)
    writer.writerow(_csv_row("", report))
    return buffer.getvalue()


def _shown_cell(shown):
    from rich.text import Text

    return Text(shown.pretty if shown.pretty else shown.display)


def table(report: CheckReport):
    """How the input was understood (pretty-printed), the true derivative, the verdict and why."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, show_header=False, pad_edge=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    f = f"f({', '.join(report.variables)})" if report.variables else "f"
    grid.add_row(f"{f} =", _shown_cell(report.expression))
    grid.add_row("", Text(f"(read as: {report.read_as or report.expression.display})", style="dim"))
    same = report.partial.replace(" ", "") in (report.leibniz, report.leibniz.replace("f/", "/", 1))
    partial = report.partial if same else f"{report.partial} ({report.leibniz})"
    grid.add_row(f"{partial} =", _shown_cell(report.derivative) if report.derivative else
                 Text("(autograd's gradient, at random sizes and values)", style="dim")
                 if report.symbolic.startswith("not tried") else Text("(SymPy did not finish)", style="yellow"))
    grid.add_row("answer =", _shown_cell(report.answer))
    grid.add_row("", Text(f"(read as: {report.answer_read_as or report.answer.display})", style="dim"))
    parts = [grid, ""]
    verdict = Text.assemble(("verdict: ", "bold"), (report.verdict.value.upper(), _STYLE[report.verdict]))
    parts.append(verdict)
    parts.append(Text(report.reason))
    c = report.counterexample
    if c is not None:
        values = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for name in ("counterexample", "derivative", "answer"):
            values.add_column(name, justify="left" if name == "counterexample" else "right")
        values.add_row(c.point_text, short(c.expected), "undefined" if c.got is None else short(c.got))
        parts.append(values)
    parts.append(Text(f"checked at {report.checked_points} points (float64, random and --at); "
                      f"symbolic: {report.symbolic}.", style="dim"))
    for note in report.notes:
        parts.append(Text(note, style="yellow"))
    parts.append(Text(f"{CONVENTION}.", style="dim"))
    return Group(*parts)


# ---- problem files

def _problem_record(problem: ProblemResult) -> dict:
    base = {"line": problem.line, "text": problem.text}
    if problem.report is None:
        return {**base, "verdict": "error", "error": problem.error}
    return {**base, **record(problem.report), "error": None}


def set_json_document(report: ProblemSetReport) -> str:
    document = {"source": report.source, "score": {"correct": report.correct, "total": report.total},
                "problems": [_problem_record(p) for p in report.problems]}
    return json.dumps(document, indent=2, ensure_ascii=False)


def set_jsonl(report: ProblemSetReport) -> Iterable[str]:
    for problem in report.problems:
        yield json.dumps(_problem_record(problem), ensure_ascii=False)


def set_plain(report: ProblemSetReport) -> Iterable[str]:
    """`LINE<TAB>VERDICT[<TAB>detail]` per problem, then `score<TAB>CORRECT/TOTAL`."""
    for problem in report.problems:
        if problem.report is None:
            yield f"{problem.line}\terror\t{problem.error}"
        else:
            words = _counterexample_words(problem.report)
            yield f"{problem.line}\t{problem.verdict}" + (f"\t{words}" if words else "")
    yield f"score\t{report.correct}/{report.total}"


def set_csv_text(report: ProblemSetReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_HEAD)
    for problem in report.problems:
        writer.writerow(_csv_row(problem.line, problem.report, problem.error, problem.text))
    return buffer.getvalue()


def set_table(report: ProblemSetReport):
    """A summary row per line (expression and answer as understood), then the score."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    summary = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"pdiff check --file {report.source}")
    for name in ("line", "f (read as)", "partial", "answer (read as)", "verdict", "detail"):
        summary.add_column(name, justify="right" if name == "line" else "left", overflow="fold",
                           no_wrap=name in ("line", "verdict"))
    for problem in report.problems:
        r = problem.report
        if r is None:
            summary.add_row(str(problem.line), Text(problem.text, style="dim"), "", "", Text("error", style="bold red"),
                            problem.error or "")
            continue
        detail = _counterexample_words(r, 6) or ("" if r.verdict is Verdict.CORRECT else r.reason)
        summary.add_row(str(problem.line), r.expression.display, r.partial, r.answer.display,
                        Text(r.verdict.value, style=_STYLE[r.verdict]), detail)
    score = Text.assemble(("score: ", "bold"), f"{report.correct}/{report.total} correct")
    return Group(summary, score, Text(f"{CONVENTION}.", style="dim"))
