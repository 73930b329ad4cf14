"""Many points for vectors and matrices: `--points` columns x[0], x[1], ... or W[0,0], ... (or .npz arrays of
points × a vector or matrix), streamed by the scalar many-point engine (pdiff.stream) over the element
symbols. The expression is expanded element by element once (within the exact side's bound of elements), so both
autograd and the exact derivative run on every row as for scalar variables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from pdiff import bounds
from pdiff.errors import InputError
from pdiff.tensor import compute, language, values
from pdiff.tensor.backends import exact_components
from pdiff.tensor.shapes import elements, infer

_ELEMENT_COLUMN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[([0-9]+)(?:,([0-9]+))?\]")


def shapes_from_columns(columns: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """x[0], x[1] → x: (2,); W[0,0] ... W[1,2] → W: (2, 3); a plain name is a scalar."""
    largest: dict[str, list[int]] = {}
    for column in columns:
        match = _ELEMENT_COLUMN.fullmatch(column.strip())
        if match:
            name, *indexes = match.groups()
            index = [int(i) for i in indexes if i is not None]
            previous = largest.setdefault(name, [-1] * len(index))
            if len(previous) != len(index):
                raise InputError(f"--points: column {column!r} has {len(index)} indexes, other {name} columns "
                                 f"{len(previous)}")
            largest[name] = [max(a, b) for a, b in zip(previous, index)]
        elif column.strip().isidentifier():
            largest.setdefault(column.strip(), [])
    return {name: tuple(i + 1 for i in index) for name, index in largest.items()}


def column_names(points: str | None) -> list[str]:
    from pdiff import sources

    if points is None:
        return []
    if points.lower().endswith(".npz"):
        return sources.npz_column_names(points)
    return sources.column_names(points)


def plan(command: str, expression: str, partials: Sequence[str] = (), *, wrt=None, var=None,
         columns: Sequence[str] = (), dtype: str = "float64", device: str = "auto",
         timeout: float = bounds.DEFAULT_TIMEOUT, symbolic_side: bool = True):
    """A StreamPlan for diff (partials by elements) or grad/hessian/jacobian (by one variable's elements)."""
    from pdiff import stream
    from pdiff.calculus import plan as calculus_plan

    found = shapes_from_columns(columns)
    declared = {n: s for n, s in values.declarations(var).items() if s is not None}
    shapes = {**found, **declared}
    program = language.read(expression, set(shapes) | {re.sub(r"\[.*", "", n) for n in compute.split_wrt(wrt or "")})
    for name in program.names:
        shapes.setdefault(name, ())
    inference = infer(program, shapes)
    concrete = {name: tuple(int(s) for s in inference.sizes.resolve(shapes[name])) for name in program.names}
    setup = compute.Setup(program, [], concrete, inference, None)
    limit = compute.exact_limit(program, concrete, inference)
    if limit:
        raise InputError(f"--points with vectors and matrices expands them element by element: {limit}")
    flat = exact_components(program, concrete)
    variables = [e for name in program.names for e in elements(name, concrete[name])]
    shown = language.to_text(program)
    if command == "diff":
        if len(flat) != 1:
            raise InputError(f"diff needs a scalar function; {shown!r} has {len(flat)} elements")
        wanted = compute.parse_partials(partials, wrt, setup)
        result = stream.StreamPlan(flat, wanted, variables=variables, expression=shown, dtype=dtype,
                                   device=device, timeout=timeout, symbolic_side=symbolic_side)
    else:
        name = compute._variable(setup, command, wrt)
        inputs = elements(name, concrete[name])
        if command != "jacobian" and len(flat) != 1:
            raise InputError(f"{command} needs a scalar function; {shown!r} has {len(flat)} elements: use jacobian")
        the_plan = calculus_plan(command, flat, command == "jacobian", inputs)
        if command == "jacobian":
            wanted = [(f"d/d{e}", p) for e, p in zip(inputs, the_plan.partials)]
        else:
            wanted = [(n, the_plan.partials[entry[0][2]]) for n, entry in zip(the_plan.names, the_plan.entries)]
            wanted += [(f"df/d{e}", the_plan.partials[entry[0][2]])
                       for e, entry in zip(inputs, the_plan.auxiliary or [])]
        result = stream.StreamPlan(flat, wanted, variables=variables, is_vector=command == "jacobian",
                                   expression=shown, dtype=dtype, device=device, timeout=timeout,
                                   symbolic_side=symbolic_side)
        output_rank = len(inference.output)
        for i, label in enumerate(compute.entry_names(the_plan, len(flat), output_rank)):
            target = replace(result.targets[i], label=label)
            result.targets[i] = result.summary.targets[i].target = target
        result.layout = stream.MatrixLayout(command, tuple(the_plan.shape), len(the_plan.entries))
    result.read_as, result.notes = shown, program.notes
    return result
