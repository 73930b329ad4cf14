"""Frozen results of `pdiff steps` and `pdiff check --work`, handed to pdiff.render.steps (strings and numbers only)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verification:
    """symbolic: True when SymPy showed the step's output equals its derivative, False when it showed they differ,
    None when it could not tell in time (or was not asked); points: points of the domain where they agree."""

    symbolic: bool | None
    points: int
    counterexample: str | None = None

    @property
    def status(self) -> str:
        """proven (symbolically, and at points where there are any), checked (at points only), unverified, wrong."""
        if self.counterexample is not None or self.symbolic is False:
            return "wrong"
        if self.symbolic:
            return "proven"
        return "checked" if self.points else "unverified"


@dataclass(frozen=True)
class StepView:
    id: str  # Dewey number: 1, 1.2, 1.2.1
    rule: str
    wrt: str  # the variable differentiated by (the inner letter u for an outer step of the chain rule)
    operator: str  # d/dx or ∂/∂x
    input: str  # the function, as the user wrote it where they did
    output: str
    note: str
    verified: Verification
    substeps: tuple[StepView, ...] = ()
    held_constant: tuple[str, ...] = ()  # top-level steps: the variables held constant in this differentiation
    input_latex: str = ""
    output_latex: str = ""


@dataclass(frozen=True)
class AtPoint:
    point: str
    exact: str
    value: float | None  # the result, exactly evaluated
    autograd: float | None


@dataclass(frozen=True)
class StepsReport:
    expression: str
    read_as: str
    partial: str  # as asked, e.g. d2f/dxdy
    leibniz: str
    wrt: tuple[str, ...]  # application order
    variables: tuple[str, ...]
    held_constant: tuple[str, ...]
    steps: tuple[StepView, ...]
    result: str
    result_latex: str
    autograd_points: int  # points where autograd of the expression as typed agrees with the result
    autograd_counterexample: str | None = None
    at: tuple[AtPoint, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def all_steps(self):
        pending = list(reversed(self.steps))
        while pending:
            step = pending.pop()
            yield step
            pending.extend(reversed(step.substeps))

    @property
    def problems(self) -> list[str]:
        """Why the answer is not clean: steps not verified or wrong, autograd disagreeing."""
        out = []
        for step in self.all_steps():
            status = step.verified.status
            if status == "wrong":
                out.append(f"step {step.id} ({step.rule}) is wrong: {step.verified.counterexample or 'SymPy'}")
            elif status == "unverified":
                out.append(f"step {step.id} ({step.rule}) could not be verified")
        if self.autograd_counterexample:
            out.append(f"autograd disagrees with the result {self.autograd_counterexample}")
        return out

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0


@dataclass(frozen=True)
class WorkLine:
    line: int  # as numbered in the file
    text: str
    verdict: str  # correct, error, carried error, new error
    mistake: str | None = None
    counterexample: str | None = None


@dataclass(frozen=True)
class WorkReport:
    source: str
    function: str
    partial: str
    derivative: str
    first_wrong_line: int | None
    lines: tuple[WorkLine, ...]
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return 0 if self.first_wrong_line is None else 1
