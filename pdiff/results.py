"""Plain, frozen results passed from the engine to the renderers (no tensors, no SymPy objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pdiff.errors import ExitCode

CONVENTION = "d2f/dxdy = ∂/∂x(∂f/∂y): y is applied first; f_xy = (f_x)_y: x first"


class Status(str, Enum):
    """How one answer came out; anything but OK and SYMBOLIC makes the exit status 1."""

    OK = "ok"  # autograd is finite and agrees with the exact value (or the exact side was skipped)
    SYMBOLIC = "symbolic"  # no point was given: the symbolic derivative only
    NON_FINITE = "non-finite"  # inf or nan: outside the domain, a singularity, or overflow
    NON_DIFFERENTIABLE = "non-differentiable"  # on a kink (|x| at 0, max(x, y) at x = y): no derivative exists
    DISAGREE = "disagree"  # autograd and the exact value differ beyond the tolerance
    TIMEOUT = "timeout"  # part of the answer did not finish within --timeout


@dataclass(frozen=True)
class DiffResult:
    """One (component, partial, point) answer. None marks a part that was skipped or did not finish."""

    partial: str  # as typed
    wrt: tuple[str, ...]  # application order
    component: int | None  # index into a vector expression, None for a scalar one
    point: dict[str, float] | None
    point_text: str | None  # the point as given, exact (x=pi/4)
    derivative: str | None  # SymPy string, parseable by sympy
    exact: str | None  # the exact value at the point
    value: float | None  # float of the exact value (nan where not real)
    autograd: float | None
    abs_error: float | None
    status: Status
    note: str | None = None


@dataclass(frozen=True)
class DiffReport:
    """Everything `pdiff diff` computed, ready to render."""

    input: str  # the expression as typed
    expression: str  # as understood, SymPy string
    display: str  # as understood, for people
    variables: tuple[str, ...]
    is_vector: bool
    dtype: str
    device: str
    tolerance: tuple[float, float]  # (rtol, atol) used for agreement
    results: tuple[DiffResult, ...]
    problems: tuple[str, ...] = field(default=())  # one line each: what went wrong and where
    read_as: str = ""  # how the input was read, in pdiff's own notation (parses back to the same expression)
    notes: tuple[str, ...] = ()  # how the reader resolved the input (`xy` read as x*y), shown to the user

    @property
    def exit_code(self) -> ExitCode:
        bad = self.problems or any(r.status not in (Status.OK, Status.SYMBOLIC) for r in self.results)
        return ExitCode.MATH if bad else ExitCode.OK


@dataclass(frozen=True)
class TensorResult:
    """A vector or matrix answer at one point; nested lists shaped like the object (a float for a scalar)."""

    point: dict[str, float]
    point_text: str  # the point as given, exact (x=pi/4)
    autograd: object  # float | list[float] | list[list[float]]
    value: object | None  # exact values as floats, same shape; None when the symbolic side was skipped
    exact: object | None  # exact values as SymPy strings, same shape
    max_abs_error: float | None
    status: Status
    note: str | None = None
    extra: dict = field(default_factory=dict)  # eigenvalues, determinant, classification, critical, ...


@dataclass(frozen=True)
class TensorReport:
    """Everything a gradient, Hessian, Jacobian, Laplacian, div, curl or directional derivative computed."""

    command: str  # gradient, hessian, jacobian, laplacian, divergence, curl, directional
    input: str
    expression: str
    display: str
    variables: tuple[str, ...]  # in the order used for rows and columns
    shape: tuple[int, ...]  # () scalar, (n,) vector, (m, n) matrix
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    names: tuple[str, ...]  # a name per entry, row-major (csv columns)
    derivative: object  # SymPy strings, shaped like the answer (None where they did not finish)
    dtype: str
    device: str
    tolerance: tuple[float, float]
    results: tuple[TensorResult, ...]
    problems: tuple[str, ...] = ()
    read_as: str = ""  # how the input was read, in pdiff's own notation (parses back to the same expression)
    notes: tuple[str, ...] = ()  # how the reader resolved the input (`xy` read as x*y), shown to the user
    index_rule: str = ""  # which entry is which, for vector and matrix variables ([i,j] = ∂y[i]/∂x[j])
    closed_form: str = ""  # a gradient as a matrix expression ((A + A.T) @ x), shown only once checked

    @property
    def exit_code(self) -> ExitCode:
        bad = self.problems or any(r.status is not Status.OK for r in self.results)
        return ExitCode.MATH if bad else ExitCode.OK


@dataclass(frozen=True)
class CriticalPoint:
    """One point where ∇f = 0, classified by the Hessian test."""

    point: dict[str, float]
    exact: dict[str, str] | None  # SymPy strings per variable; None for a numeric root
    value: float  # f there
    value_exact: str | None  # f there exactly (None for a numeric root, or when too long to show)
    classification: str  # local minimum, local maximum, saddle point, inconclusive
    eigenvalues: tuple[float, ...]  # of the Hessian there (autograd)
    method: str  # exact (SymPy) or numeric (Newton by autograd)
    gradient_norm: float  # |∇f| there by autograd


@dataclass(frozen=True)
class CriticalReport:
    """Everything `pdiff critical` found."""

    input: str
    expression: str  # SymPy string
    display: str
    variables: tuple[str, ...]
    points: tuple[CriticalPoint, ...]
    method: str  # exact, numeric, exact+numeric, or none
    box: dict | None  # name → (low, high) searched and shown; None when every exact point is shown
    complete: bool  # the exact route showed these are all of them (in the box)
    messages: tuple[str, ...]  # how the list was made (default box, infinitely many, numeric limits)
    problems: tuple[str, ...]  # why the answer is not clean (exit status 1)
    dtype: str
    device: str
    tolerance: tuple[float, float]
    read_as: str = ""
    notes: tuple[str, ...] = ()  # how the reader resolved the input

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.MATH if self.problems else ExitCode.OK
