"""Frozen results of `pdiff check`, handed to the renderers (no tensors, no SymPy objects).

JSON field names built from these are a public contract (README, "pdiff check"): add fields, never rename them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pdiff.errors import ExitCode


class Verdict(str, Enum):
    """The grade of one answer."""

    CORRECT = "correct"  # the difference simplifies to zero and no checked point disagrees
    INCORRECT = "incorrect"  # a point where the answer and the true derivative differ (or the answer is undefined)
    UNDECIDED = "undecided"  # the points agree, but SymPy did not show the difference is zero (in time)


@dataclass(frozen=True)
class Shown:
    """One expression as pdiff understood it, in each form a renderer may want."""

    text: str  # SymPy string, parseable by sympy
    display: str  # one line for people (^ for powers)
    pretty: str | None = None  # SymPy's 2-D unicode form (None when too large to be worth drawing)
    latex: str | None = None


@dataclass(frozen=True)
class Counterexample:
    """A point where the answer is wrong."""

    point: dict[str, float]
    point_text: str  # exact, as used (x=-1.28)
    expected: float | None  # the true derivative there
    got: float | None  # the answer there; None where the answer is undefined (not a finite real number)
    confirmed: bool = True  # re-evaluated exactly by SymPy (30 digits), not only in float64


@dataclass(frozen=True)
class CheckReport:
    """Everything `pdiff check` found about one answer."""

    input: str  # the expression as typed
    expression: Shown
    variables: tuple[str, ...]  # of the expression (the answer may name others: they are compared too)
    partial: str  # as typed
    wrt: tuple[str, ...]  # application order
    leibniz: str  # canonical spelling of the partial, e.g. d2f/dxdy
    answer_input: str
    answer: Shown
    derivative: Shown | None  # the correct derivative (None when SymPy did not finish)
    verdict: Verdict
    symbolic: str  # "zero", "not shown zero", "timeout" or "failed: ..."
    counterexample: Counterexample | None
    checked_points: int  # points where both sides were defined and compared
    reason: str  # one line: why this verdict
    notes: tuple[str, ...] = field(default=())
    read_as: str = ""  # the expression as read, in pdiff's own notation (parses back to the same expression)
    answer_read_as: str = ""  # the answer as read, likewise

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.verdict is Verdict.CORRECT else ExitCode.MATH


@dataclass(frozen=True)
class ProblemResult:
    """One line of a problem file: its report, or the error that stopped it."""

    line: int  # 1-based line number in the file
    text: str  # the line as written
    report: CheckReport | None
    error: str | None = None

    @property
    def verdict(self) -> str:
        return self.report.verdict.value if self.report else "error"


@dataclass(frozen=True)
class ProblemSetReport:
    """A whole problem file, graded in one process."""

    source: str  # file name as given
    problems: tuple[ProblemResult, ...]

    @property
    def correct(self) -> int:
        return sum(1 for p in self.problems if p.report and p.report.verdict is Verdict.CORRECT)

    @property
    def total(self) -> int:
        return len(self.problems)

    @property
    def exit_code(self) -> ExitCode:
        """2 when a line could not be read, else 1 when an answer is not correct, else 0."""
        if any(p.error for p in self.problems):
            return ExitCode.USAGE
        return ExitCode.OK if self.correct == self.total else ExitCode.MATH
