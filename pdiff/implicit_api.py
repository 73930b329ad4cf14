"""`pdiff diff` of an equation: dⁿy/dxⁿ by implicit differentiation, autograd beside the exact answer.

The exact side is pdiff.implicit's formula with SymPy's partials of F = lhs − rhs; the autograd side is the same
formula fed with autograd's partials of F (never the exact expression lowered), so the two stay independent.
Points must lie on the curve: elsewhere dy/dx of the equation means nothing.
"""

from __future__ import annotations

from typing import Sequence

from pdiff import bounds, implicit, question, symbolic
from pdiff.api import TOLERANCES, diff_results, evaluate
from pdiff.errors import PointError
from pdiff.notation import Partial
from pdiff.points import check_points
from pdiff.results import DiffReport

EXACT_SECONDS = 10.0  # building the exact implicit derivative (order 6 of a transcendental curve takes ~2 s)


def derivative(asked: question.Question, wanted: Sequence[Partial], points: list[dict], *, dtype: str, device: str,
               timeout: float, deadline: float, symbolic_side: bool, memory_mb: int, source: str) -> DiffReport:
    equation = asked.equation
    variables = symbolic.variables_of([equation])
    roles = [question.implicit_roles(asked, partial) for partial in wanted]
    check_points(points, variables)
    for point in points:
        if not implicit.on_curve(equation, point):
            label = ", ".join(f"{n}={symbolic.to_display(v)}" for n, v in point.items())
            residual = symbolic.to_display(implicit.residual(equation, point))
            raise PointError(f"--at {label} is not on the curve {asked.read_as} (lhs − rhs = {residual} there): "
                             "the implicit derivative is defined on the curve only")
    try:
        with bounds.alarm(min(EXACT_SECONDS, timeout)):
            exact = [implicit.exact(equation, y, x, partial.order) for (y, x), partial in zip(roles, wanted)]
    except TimeoutError:
        raise bounds.ResourceError("the implicit derivative's formula took too long to build: lower the order") \
            from None
    entries = [[(1, k, 0)] for k in range(len(exact))]
    ev = evaluate(exact, [()], points, variables, entries=entries, dtype=dtype, device=device, timeout=timeout,
                  deadline=deadline, symbolic_side=symbolic_side, memory_mb=memory_mb)
    if points:
        ev.autograd = [_autograd(equation, y, x, partial.order, points, variables, dtype, device, deadline)
                       for (y, x), partial in zip(roles, wanted)]
    ev.function = None  # F is 0 on the curve: no domain note to take from it
    results, problems = diff_results(ev, 1, wanted, points, False, symbolic_side, dtype)
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])
    return DiffReport(source, symbolic.to_text(equation), symbolic.to_display(equation), tuple(variables), False,
                      dtype, ev.device, (rtol, atol), tuple(results), tuple(dict.fromkeys(problems)),
                      read_as=asked.read_as,
                      notes=(*asked.notes, "implicit differentiation: " + ", ".join(
                          f"{p.text} with {y} a function of {x}" for (y, x), p in zip(roles, wanted))))


def _autograd(equation, y: str, x: str, order: int, points, variables, dtype, device, deadline) -> list[float]:
    """dⁿy/dxⁿ at the points from autograd's partials of F."""
    import sympy as sp
    import torch

    from pdiff.autodiff import partials_at, resolve_device, resolve_dtype
    from pdiff.lower import lower

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    columns = {name: torch.tensor([float(sp.N(point[name], 17)) for point in points], dtype=torch_dtype,
                                  device=torch_device) for name in variables}
    _, needed = implicit.formula(order)
    names = {"x": x, "y": y}
    tensors = partials_at(lower(implicit.equation_expr(equation), variables), columns,
                          [tuple(names[r] for r in p) for p in needed], deadline)
    values = implicit.numeric(dict(zip(needed, tensors)), order)
    return torch.broadcast_to(values, (len(points),)).cpu().tolist()
