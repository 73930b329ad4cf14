"""Gradients, Hessians, Jacobians, Laplacians, divergence, curl and directional derivatives.

Each object is a vector or matrix whose entries are linear combinations of partials of the expression's
components, so every command is a plan (components, partials, entries) handed to `api.evaluate`: one batch over all
points, the partials sharing reverse passes (a Hessian of n variables costs n + 1), the exact side in the worker.

Variable order: as written in --wrt, else sorted by name.
"""

from __future__ import annotations

import math
import time
from typing import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from pdiff import bounds, question, symbolic
from pdiff.api import TOLERANCES, evaluate, outside_domain
from pdiff.errors import InputError
from pdiff.notation import Partial
from pdiff.parse import parse_number
from pdiff.points import check_points, coerce_point
from pdiff.results import Status, TensorReport, TensorResult
from pdiff.tensor.language import is_tensor_question

COMMAND_NAMES = {"grad": "gradient", "div": "divergence", "dir": "directional"}  # the CLI's names


@dataclass
class Plan:
    """What to compute: partials of components, and the entries (row-major) of the result built from them."""

    command: str
    components: list[sp.Expr]
    variables: list[str]
    partials: list[tuple[str, ...]]
    entries: list[list[tuple[sp.Expr, int, int]]]  # Σ coefficient · ∂(partial p) of component c
    shape: tuple[int, ...]  # () scalar, (n,) vector, (m, n) matrix
    row_labels: list[str]
    column_labels: list[str]
    names: list[str]  # one name per entry, used as csv columns (df/dx, d2f/dxdy, ...)
    auxiliary: list[list[tuple[sp.Expr, int, int]]] | None = None  # entries needed beside the result (a gradient)


def variables_for(components: list[sp.Expr], wrt: str | Sequence[str] | None,
                  parameters: Sequence[str] = ()) -> list[str]:
    """The variables in order: as written in --wrt, else sorted naturally. Every other name of the expression must
    be a parameter (given a value in --at, or of `f(x) = a x^2`): held constant."""
    variables = _variables(components, wrt)
    missing = [n for n in symbolic.variables_of(components) if n not in variables and n not in parameters]
    if missing:
        raise InputError(f"--wrt leaves out {', '.join(missing)}, which the expression uses (give "
                         f"{'it' if len(missing) == 1 else 'them'} a value with --at to hold {'it' if len(missing) == 1 else 'them'} constant)")
    return variables


def _variables(components: list[sp.Expr], wrt: str | Sequence[str] | None) -> list[str]:
    if wrt:
        names = [n.strip() for n in (wrt.split(",") if isinstance(wrt, str) else wrt) if n.strip()]
        if len(set(names)) != len(names):
            raise InputError(f"--wrt names a variable twice: {', '.join(names)}")
        for name in names:
            if not name.isidentifier():
                raise InputError(f"--wrt: {name!r} is not a variable name")
        return names
    return symbolic.variables_of(components)


def read_function(command: str, expression: str, *, names=(), latex: bool | None = None) -> question.Question:
    """The expression of a vector-calculus command: a function or a definition, not an equation or d/dx (...)."""
    asked = question.read(expression, names=names, latex=latex)
    if asked.equation is not None:
        raise InputError(f"{command} takes a function, not an equation (for implicit derivatives use pdiff diff "
                         "EQUATION dy/dx)")
    if asked.parsed.operator is not None:
        raise InputError(f"a derivative operator in front is for pdiff diff; {command} takes the function alone")
    return asked


def _scalar(command: str, components: list[sp.Expr], is_vector: bool) -> None:
    if is_vector:
        raise InputError(f"{command} takes one expression; for a vector of functions use jacobian")


def plan(command: str, components: list[sp.Expr], is_vector: bool, variables: list[str],
         along: Sequence[sp.Expr] | None = None) -> Plan:
    """The partials and entries for `command` over `variables`."""
    n = len(variables)
    if n == 0:
        raise InputError(f"{command} needs at least one variable (the expression has none; name them with --wrt)")
    if command == "gradient":
        _scalar("grad", components, is_vector)
        partials = [(v,) for v in variables]
        entries = [[(sp.Integer(1), 0, i)] for i in range(n)]
        return Plan(command, components, variables, partials, entries, (n,), [], variables,
                    [f"df/d{v}" for v in variables])
    if command == "hessian":
        _scalar("hessian", components, is_vector)
        # the first partials too: they decide whether the point is critical, and share the same passes
        partials = [(v,) for v in variables] + [(b, a) for a in variables for b in variables]
        entries = [[(sp.Integer(1), 0, n + i * n + j)] for i in range(n) for j in range(n)]
        names = [Partial("", (b, a)).leibniz for a in variables for b in variables]  # row a, column b: ∂/∂a(∂f/∂b)
        gradient = [[(sp.Integer(1), 0, i)] for i in range(n)]
        return Plan(command, components, variables, partials, entries, (n, n), variables, variables, names,
                    gradient)
    if command == "jacobian":
        m = len(components)
        partials = [(v,) for v in variables]
        entries = [[(sp.Integer(1), i, j)] for i in range(m) for j in range(n)]
        functions = [f"f{i + 1}" for i in range(m)]
        names = [f"d{f}/d{v}" for f in functions for v in variables]
        return Plan(command, components, variables, partials, entries, (m, n), functions, variables, names)
    if command == "laplacian":
        _scalar("laplacian", components, is_vector)
        partials = [(v, v) for v in variables]
        entries = [[(sp.Integer(1), 0, i) for i in range(n)]]
        return Plan(command, components, variables, partials, entries, (), [], ["laplacian"], ["laplacian"])
    if command == "divergence":
        if len(components) != n:
            raise InputError(f"div needs as many components as variables: {len(components)} components, "
                             f"variables {', '.join(variables)} (name them in order with --wrt)")
        partials = [(v,) for v in variables]
        entries = [[(sp.Integer(1), i, i) for i in range(n)]]
        return Plan(command, components, variables, partials, entries, (), [], ["div"], ["div"])
    if command == "curl":
        if len(components) != 3 or n != 3:
            raise InputError(f"curl needs 3 components and 3 variables: got {len(components)} components, "
                             f"variables {', '.join(variables) or 'none'} (name them in order with --wrt x,y,z)")
        partials = [(v,) for v in variables]
        one = sp.Integer(1)
        # (∂F3/∂y − ∂F2/∂z, ∂F1/∂z − ∂F3/∂x, ∂F2/∂x − ∂F1/∂y) with variables (x, y, z)
        entries = [[(one, 2, 1), (-one, 1, 2)], [(one, 0, 2), (-one, 2, 0)], [(one, 1, 0), (-one, 0, 1)]]
        labels = [f"curl_{v}" for v in variables]
        return Plan(command, components, variables, partials, entries, (3,), [], labels, labels)
    if command == "directional":
        _scalar("dir", components, is_vector)
        if along is None or len(along) != n:
            raise InputError(f"--along needs {n} numbers, one per variable ({', '.join(variables)})")
        norm = sp.sqrt(sum(a**2 for a in along))
        if norm == 0:
            raise InputError("--along must not be the zero vector")
        partials = [(v,) for v in variables]
        entries = [[(a / norm, 0, i) for i, a in enumerate(along)]]
        return Plan(command, components, variables, partials, entries, (), [], ["D_u f"], ["D_u f"])
    raise InputError(f"unknown command {command!r}")


def _shape(flat: list, shape: tuple[int, ...]):
    if shape == ():
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    rows, columns = shape
    return [list(flat[r * columns:(r + 1) * columns]) for r in range(rows)]


def determinant(matrix: np.ndarray) -> float:
    """Closed forms up to 3×3 (exact for small integers, unlike LU: det [[2,0],[0,4]] is 8, not 7.999...)."""
    n = matrix.shape[0]
    if n == 1:
        return float(matrix[0, 0])
    if n == 2:
        return float(matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0])
    if n == 3:
        a = matrix
        return float(a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
                     - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
                     + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]))
    return float(np.linalg.det(matrix))


def _hessian_facts(matrix: np.ndarray, gradient: list[float], exact_gradient: list[str | None],
                   rtol: float, atol: float) -> dict:
    """Eigenvalues, determinant, criticality, the second-derivative test and Clairaut asymmetry."""
    asymmetry = float(np.max(np.abs(matrix - matrix.T))) if matrix.size else 0.0
    symmetric = (matrix + matrix.T) / 2
    eigenvalues = np.linalg.eigvalsh(symmetric)
    scale = max(1.0, float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 1.0)
    zero = atol + rtol * scale
    if all(text is not None for text in exact_gradient):
        critical = all(text == "0" for text in exact_gradient)  # exact zeros decide
    else:
        critical = all(abs(g) <= atol * 10 for g in gradient)
    if np.any(np.abs(eigenvalues) <= zero):
        test = "inconclusive"
    elif np.all(eigenvalues > 0):
        test = "local minimum"
    elif np.all(eigenvalues < 0):
        test = "local maximum"
    else:
        test = "saddle point"
    classification = test if critical else "not a critical point"
    return {
        "eigenvalues": [float(v) for v in eigenvalues],
        "determinant": determinant(matrix),
        "critical": critical,
        "classification": classification,
        "second_derivative_test": test,
        "asymmetry": asymmetry,
    }


def results_of(ev, the_plan: Plan, points: Sequence[dict], labels: Sequence[str], n_components: int, dtype: str,
               symbolic_side: bool) -> tuple[object, list[TensorResult], list[str]]:
    """The plan's entries at each point, judged: autograd beside the exact values, kinks, non-finite values and
    the Hessian's facts. `points` (floats) and `labels` (as given) are one per point."""
    command = the_plan.command
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])
    count = len(the_plan.entries)
    auxiliary = the_plan.auxiliary or []
    derivative = [ev.derivatives.get(k) for k in range(count)]
    problems = []
    if any(d is None for d in derivative) and symbolic_side:
        problems.append(f"some symbolic entries did not finish ({ev.missing})")
    results = []
    for j, (point, label) in enumerate(zip(points, labels)):
        autograd = [ev.autograd[k][j] for k in range(count)]
        exact = [ev.exact.get((k, j), (None, None)) for k in range(count)]
        values = [e[1] for e in exact]
        status, note = Status.OK, None
        if any(a is None for a in autograd):
            status, note = Status.TIMEOUT, "autograd did not finish in time"
        elif domain := outside_domain(ev, range(n_components), j):
            status, note = Status.NON_FINITE, domain
        elif kinked := [k for k in range(count) if (k, j) in ev.kinks]:
            status, note = Status.NON_DIFFERENTIABLE, f"{the_plan.names[kinked[0]]}: {ev.kinks[kinked[0], j]}"
            # no derivative exists there: autograd's number for those entries is not an answer
            autograd = [math.nan if (k, j) in ev.kinks else a for k, a in enumerate(autograd)]
        elif not all(math.isfinite(a) for a in autograd):
            status, note = Status.NON_FINITE, "some autograd entries are not finite numbers"
        errors = [abs(a - v) for a, v in zip(autograd, values)
                  if a is not None and v is not None and math.isfinite(a) and math.isfinite(v)]
        if status is Status.OK and symbolic_side:
            if any(v is None for v in values):
                status, note = Status.TIMEOUT, f"some exact values are missing ({ev.missing})"
            elif any(not math.isfinite(v) for v in values):
                status, note = Status.DISAGREE, "some exact values are not finite real numbers"
            elif any(abs(a - v) > atol + rtol * abs(v) for a, v in zip(autograd, values)):
                status, note = Status.DISAGREE, f"autograd and exact values differ by up to {max(errors):.3g}"
        extra = {}
        if status is not Status.TIMEOUT and all(a is not None and math.isfinite(a) for a in autograd):
            if command == "hessian":
                gradient = [ev.autograd[count + i][j] for i in range(len(auxiliary))]
                exact_gradient = [ev.exact.get((count + i, j), (None,))[0] for i in range(len(auxiliary))]
                extra = _hessian_facts(np.array(_shape(autograd, the_plan.shape), dtype=float), gradient,
                                       exact_gradient, rtol, atol)
                extra["gradient"] = gradient
            elif command == "jacobian" and the_plan.shape[0] == the_plan.shape[1]:
                extra = {"determinant": determinant(np.array(_shape(autograd, the_plan.shape), dtype=float))}
        if extra.get("asymmetry", 0.0) > atol + rtol * max(1.0, max(abs(a) for a in autograd)):
            problems.append(f"at {label}: the Hessian is not symmetric (f_xy ≠ f_yx by {extra['asymmetry']:.3g})")
        if note:
            problems.append(f"{command} at {label}: {note}")
        results.append(TensorResult(
            point=dict(point), point_text=label,
            autograd=_shape(autograd, the_plan.shape),
            value=_shape(values, the_plan.shape) if symbolic_side else None,
            exact=_shape([e[0] for e in exact], the_plan.shape) if symbolic_side else None,
            max_abs_error=max(errors) if errors and symbolic_side else None, status=status, note=note,
            extra=extra))
    return _shape(derivative, the_plan.shape), results, problems


def compute(command: str, expression: str, *, wrt: str | Sequence[str] | None = None,
            at: Sequence[str | Mapping[str, object]] = (), along: str | Sequence | None = None,
            dtype: str = "float64", device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT,
            symbolic_side: bool = True, memory_mb: int = bounds.DEFAULT_MEMORY_MB,
            latex: bool | None = None, var: str | Sequence[str] | None = None) -> TensorReport:
    """Compute `command` (gradient, hessian, jacobian, laplacian, divergence, curl, directional) of `expression`.

    Names of the expression outside `wrt` that every point gives a value (`--at a=2`) are parameters. The CLI's
    names work too: grad, div, dir. Vectors and matrices as variables (`--at x=[1,2]`, `x @ A`) go to pdiff.tensor."""
    command = COMMAND_NAMES.get(command, command)
    if is_tensor_question(expression, at, var):
        from pdiff.tensor import compute as tensor_compute

        return tensor_compute.compute(command, expression, wrt=wrt, at=at, var=var, dtype=dtype, device=device,
                                      timeout=timeout, symbolic_side=symbolic_side, memory_mb=memory_mb)
    if not timeout > 0:
        raise InputError("--timeout must be positive")
    deadline = time.monotonic() + timeout
    points = [coerce_point(p) for p in at]
    asked = read_function(command, expression, names=question.declared(points, wrt, var), latex=latex)
    components, is_vector = asked.components, asked.is_vector
    given = [n for n in symbolic.variables_of(components) if points and all(n in p for p in points)]
    if wrt:
        parameters = [n for n in given if n not in question.split_names(wrt)]
    else:
        parameters = question.parameters(asked)
        wrt = asked.variables if asked.parsed.arguments is not None else None
    variables = variables_for(components, wrt, parameters)
    direction = None
    if along is not None:
        text = along.strip() if isinstance(along, str) else None
        if text and (text[0], text[-1]) in (("(", ")"), ("<", ">"), ("[", "]")):  # (1,1), <1,1>, [1,1]
            text = text[1:-1]
        parts = text.split(",") if text is not None else along
        if text is not None and any(not p.strip() for p in parts):
            raise InputError(f"--along {along.strip()!r} has an empty component: write numbers like 1,2 or (1,2)")
        direction = [parse_number(p) if isinstance(p, str) else sp.nsimplify(p) for p in parts]
        if direction and all(a == 0 for a in direction):
            raise InputError("--along must not be the zero vector")
    the_plan = plan(command, components, is_vector, variables, direction)
    needed = [*variables, *(p for p in parameters if p not in variables)]
    check_points(points, needed)
    if not points and not symbolic_side:
        raise InputError("nothing to compute: give a point with --at, or drop --no-symbolic")
    auxiliary = the_plan.auxiliary or []
    ev = evaluate(components, the_plan.partials, points, needed, entries=the_plan.entries + auxiliary, dtype=dtype,
                  device=device, timeout=timeout, deadline=deadline, symbolic_side=symbolic_side,
                  memory_mb=memory_mb)
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])
    labels = [", ".join(f"{n}={symbolic.to_display(v)}" for n, v in point.items()) for point in points]
    floats = [{n: float(sp.N(v, 17)) for n, v in point.items()} for point in points]
    derivative, results, problems = results_of(ev, the_plan, floats, labels, len(components), dtype, symbolic_side)
    shown = components if is_vector else components[0]
    return TensorReport(command, expression, symbolic.to_text(shown), symbolic.to_display(shown), tuple(variables),
                        the_plan.shape, tuple(the_plan.row_labels), tuple(the_plan.column_labels),
                        tuple(the_plan.names), derivative, dtype, ev.device, (rtol, atol),
                        tuple(results), tuple(dict.fromkeys(problems)), read_as=asked.read_as,
                        notes=asked.notes)
