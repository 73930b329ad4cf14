"""grad, hessian, jacobian and diff when variables are vectors or matrices.

Autograd runs torch.func on the real tensors (grad, hessian = forward-over-reverse, jacrev); the exact side
builds the expression from element symbols in a bounded worker and reuses the scalar machinery
(symbolic.entry_jobs, calculus.plan and calculus.results_of), so entries, kinks and statuses mean what they mean
for scalar variables. A gradient is shaped like its variable; a Hessian or Jacobian is laid out as torch.func and
JAX do, flattened row-major when a side is a matrix: [i, j] = ∂y[i]/∂x[j].
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from pdiff import bounds, symbolic
from pdiff.errors import InputError
from pdiff.results import DiffReport, DiffResult, Status, TensorReport
from pdiff.tensor import language, values
from pdiff.tensor.backends import (
    MAX_SYMBOLIC_SIZE,
    TorchOps,
    evaluate,
    exact_components,
)
from pdiff.tensor.shapes import (
    MAX_ELEMENTS_NUMERIC,
    Inference,
    described,
    elements,
    infer,
)

MAX_ELEMENTS_EXACT = 10_000  # element symbols on the exact side, all variables together
INDEX_NOTE = "indexes count from 0, as in PyTorch"


@dataclass
class Setup:
    """A tensor question read: the program, the points, every variable's concrete shape."""

    program: language.Program
    points: list[dict[str, values.Value]]
    shapes: dict[str, tuple[int, ...]]
    inference: Inference
    exact_refused: str | None  # why the exact side is skipped (too many elements, det of 8×8), or None

    @property
    def output(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.inference.output)


def _point(point) -> dict[str, values.Value]:
    if isinstance(point, str):
        return values.parse_point(point)
    return {name: values.parse_value(v if isinstance(v, str) else _text(v), f"value of {name!r}")
            for name, v in point.items()}


def _text(value) -> str:
    if hasattr(value, "tolist"):
        value = value.tolist()
    return repr(value) if not isinstance(value, (list, tuple)) else "[" + ", ".join(_text(v) for v in value) + "]"


def setup(expression: str, at: Sequence = (), var=None, wrt_names: Sequence[str] = ()) -> Setup:
    """Read the expression and the values; infer and check shapes. Every variable needs a concrete shape."""
    points = [_point(p) for p in at]
    declared = values.declarations(var)
    names = set(declared) | {n for p in points for n in p} | set(wrt_names)
    program = language.read(expression, names)
    shapes = values.shapes_of(points, declared)
    for point in points:
        extra = sorted(set(point) - set(program.names))
        if extra:
            raise InputError(f"--at names {', '.join(extra)}, which is not a variable here (variables: "
                             f"{', '.join(program.names) or 'none'})")
        missing = [n for n in program.names if n not in point]
        if missing:
            raise InputError(f"--at gives no value for {', '.join(missing)}")
    for name in program.names:
        shapes.setdefault(name, ())
    inference = infer(program, shapes)
    concrete = {}
    for name in program.names:
        shape = inference.sizes.resolve(shapes[name])
        open_sizes = [s for s in shape if isinstance(s, str)]
        if open_sizes:
            raise InputError(f"the size {open_sizes[0]} of {name} is not known: give a value (--at {name}=[...]) or "
                             f"a size (--var {name}:3)")
        if math.prod(shape) > MAX_ELEMENTS_NUMERIC:
            raise InputError(f"{name} has {math.prod(shape)} elements, more than {MAX_ELEMENTS_NUMERIC}")
        concrete[name] = tuple(int(s) for s in shape)
    limit = exact_limit(program, concrete, inference)
    return Setup(program, points, concrete, inference, f"the exact side is skipped: {limit}" if limit else None)


def exact_limit(program: language.Program, shapes, inference: Inference) -> str | None:
    """Why the exact side would be too big (element count, det/inv beyond its size), or None."""
    count = sum(math.prod(s) for s in shapes.values())
    if count > MAX_ELEMENTS_EXACT:
        return f"{count} elements, more than {MAX_ELEMENTS_EXACT}"
    stack = [program.root]
    while stack:
        node = stack.pop()
        if isinstance(node, language.Apply):
            if node.op in ("det", "logdet", "inv") and inference.shape(node.args[0])[0] > MAX_SYMBOLIC_SIZE:
                size = inference.shape(node.args[0])[0]
                return (f"{node.op} of a {size}x{size} matrix (at most {MAX_SYMBOLIC_SIZE}x{MAX_SYMBOLIC_SIZE} "
                        "symbolically)")
            stack.extend(node.args)
        elif isinstance(node, language.Index):
            stack.append(node.base)
    return None


# ---- the two sides

def _torch_values(s: Setup, point: Mapping[str, values.Value], dtype, device) -> dict:
    import torch

    return {name: torch.tensor(value.nested(lambda v: float(sp.N(v, 17))), dtype=dtype, device=device)
            for name, value in point.items()}


def scalar_function(s: Setup, env: dict, wrt: str, ops: TorchOps):
    """f as a function of one variable's tensor, the others held at their values; a 1×1 result is a scalar."""
    def f(x):
        return evaluate(s.program, {**env, wrt: x}, ops).reshape(())
    return f


def exact_jobs(program, shapes, partials, entries, points, simplify_seconds, alarm):
    """In the bounded worker: the expression in element symbols, then the scalar exact side on its elements."""
    yield from symbolic.entry_jobs(exact_components(program, shapes), partials, entries, points, simplify_seconds,
                                   alarm)


def _collect(worker, deadline: float, timeout: float) -> tuple[dict, dict, dict, str]:
    from pdiff.api import messages_of

    outcome = worker.collect(deadline) if worker else None
    derivatives, exact, kinks = messages_of(outcome)
    missing = (f"the symbolic side failed: {outcome.error}" if outcome and outcome.error
               else f"the symbolic side did not finish within {timeout:g} s")
    return derivatives, exact, kinks, missing


def _start_exact(s: Setup, partials, entries, symbolic_side: bool, memory_mb: int):
    if not symbolic_side or s.exact_refused:
        return None
    from pdiff.api import SIMPLIFY_SECONDS

    points = [values.flat_point(p) for p in s.points]
    return bounds.start(exact_jobs, s.program, s.shapes, tuple(map(tuple, partials)), entries, points,
                        SIMPLIFY_SECONDS, bounds.alarm, memory_mb=memory_mb)


def _devices(dtype: str, device: str):
    from pdiff.autodiff import resolve_device, resolve_dtype

    torch_device = resolve_device(device)
    return resolve_dtype(dtype, torch_device), torch_device


def _variable(s: Setup, command: str, wrt) -> str:
    names = [n.strip() for n in (wrt.split(",") if isinstance(wrt, str) else wrt or []) if n.strip()]
    if not names:
        if len(s.program.names) == 1:
            return s.program.names[0]
        raise InputError(f"{command}: name the variable to differentiate by with --wrt (one of "
                         f"{', '.join(s.program.names)})")
    if len(names) > 1:
        raise InputError(f"{command} of a tensor expression takes one variable in --wrt, got {', '.join(names)}")
    if names[0] not in s.program.names:
        raise InputError(f"--wrt {names[0]}: not a variable of the expression ({', '.join(s.program.names)})")
    return names[0]


# ---- grad, hessian, jacobian

def compute(command: str, expression: str, *, wrt=None, at: Sequence = (), var=None, dtype: str = "float64",
            device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT, symbolic_side: bool = True,
            memory_mb: int = bounds.DEFAULT_MEMORY_MB) -> TensorReport:
    """The gradient (shaped like the variable), Hessian or Jacobian of a tensor expression."""
    from pdiff import calculus

    if command not in ("gradient", "hessian", "jacobian"):
        raise InputError(f"{command} is for scalar variables; vectors and matrices work with grad, hessian, "
                         "jacobian, diff and check")
    if not timeout > 0:
        raise InputError("--timeout must be positive")
    deadline = time.monotonic() + timeout
    s = setup(expression, at, var, [n.strip() for n in (wrt.split(",") if isinstance(wrt, str) else wrt or [])])
    name = _variable(s, command, wrt)
    shape, output = s.shapes[name], s.output
    inputs = elements(name, shape)
    scalar_output = math.prod(output) == 1
    if command in ("gradient", "hessian") and not scalar_output:
        raise InputError(f"{'grad' if command == 'gradient' else command} needs a scalar function; "
                         f"{s.program.shown(s.program.root)!r} is {described(output)}: use jacobian")
    if command == "jacobian" and len(output) > 1 and not scalar_output:
        raise InputError(f"jacobian takes a scalar or vector function; {s.program.shown(s.program.root)!r} is "
                         f"{described(output)} (sum it, or index a row)")
    outputs = 1 if scalar_output else output[0]
    the_plan = calculus.plan(command, [sp.Integer(0)] * outputs, command == "jacobian", inputs)
    if not s.points and not symbolic_side:
        raise InputError("nothing to compute: give a point with --at, or drop --no-symbolic")
    if not s.points and s.exact_refused:
        raise InputError(f"nothing to compute: {s.exact_refused}, and no point was given (--at)")
    entries = the_plan.entries + (the_plan.auxiliary or [])
    worker = _start_exact(s, the_plan.partials, entries, symbolic_side, memory_mb)
    try:
        autograd, function, device_name = _numeric(s, command, name, dtype, device)
    except BaseException:
        if worker:
            worker.close()
        raise
    derivatives, exact, kinks, missing = _collect(worker, deadline, timeout)
    if s.exact_refused:
        missing = s.exact_refused
    from pdiff.api import Evaluation

    ev = Evaluation(derivatives, exact, autograd, function, kinks, device_name, missing)
    labels = [values.point_text(p) for p in s.points]
    floats = [{k: float(sp.N(v, 17)) for k, v in values.flat_point(p).items()} for p in s.points]
    derivative, results, problems = calculus.results_of(ev, the_plan, floats, labels, outputs, dtype,
                                                        symbolic_side and not s.exact_refused)
    notes = list(s.program.notes) + ([s.exact_refused] if s.exact_refused and symbolic_side else [])
    if s.exact_refused:
        problems = [p for p in problems if not p.startswith("some symbolic entries")]
    rows, columns, layout = _layout(command, name, shape, output, inputs, the_plan)
    if command == "gradient" and len(shape) == 2:  # shaped like W: the plan's flat vector as rows
        derivative = _rows(derivative, shape)
        results = [_reshaped(r, shape) for r in results]
    rtol, atol = calculus.TOLERANCES.get(dtype, calculus.TOLERANCES["float64"])
    closed = ""
    if command == "gradient" and symbolic_side and time.monotonic() < deadline:
        from pdiff.tensor.closed_form import verified_form

        closed = verified_form(expression, s.program, s.inference, name, s.shapes) or ""
    return TensorReport(command, expression, language.to_text(s.program), language.to_text(s.program),
                        tuple(e for n in s.program.names for e in elements(n, s.shapes[n])),
                        shape if command == "gradient" else the_plan.shape, tuple(rows),
                        tuple(columns), tuple(entry_names(the_plan, outputs, len(output))), derivative, dtype,
                        device_name, (rtol, atol),
                        tuple(results), tuple(dict.fromkeys(problems)), read_as=language.to_text(s.program),
                        notes=tuple(notes), index_rule=layout, closed_form=closed)


def entry_names(the_plan, outputs: int, output_rank: int) -> list[str]:
    """CSV column names of the entries: df/dx[0], d2f/dx[0]dx[1]; a Jacobian's dy[0]/dx[1] (0-based, like y)."""
    if the_plan.command != "jacobian":
        return list(the_plan.names)
    rows = ["y"] if outputs == 1 and not output_rank else [f"y[{i}]" for i in range(outputs)]
    return [f"d{row}/d{name}" for row in rows for name in the_plan.variables]


def _layout(command, name, shape, output, inputs, the_plan) -> tuple[list[str], list[str], str]:
    """Row and column labels, and the rule that says which entry is which."""
    if command == "gradient":
        if len(shape) == 2:
            return ([f"{name}[{i},·]" for i in range(shape[0])], [f"[·,{j}]" for j in range(shape[1])],
                    f"entry [i,j] = ∂f/∂{name}[i,j]; {INDEX_NOTE}")
        return [], list(inputs), f"shaped like {name}; {INDEX_NOTE}"
    if command == "hessian":
        return list(inputs), list(inputs), f"[i,j] = ∂²f/∂{name}_i∂{name}_j, {name}'s elements row-major; {INDEX_NOTE}"
    outputs = the_plan.shape[0]
    rows = ["y"] if outputs == 1 and not output else [f"y[{i}]" for i in range(outputs)]
    return rows, list(inputs), f"[i,j] = ∂y[i]/∂{name}[j] (rows: outputs, columns: inputs); {INDEX_NOTE}"


def _rows(flat, shape):
    if flat is None or not isinstance(flat, list):
        return flat
    return [flat[r * shape[1]:(r + 1) * shape[1]] for r in range(shape[0])]


def _reshaped(result, shape):
    from dataclasses import replace

    return replace(result, autograd=_rows(result.autograd, shape), value=_rows(result.value, shape),
                   exact=_rows(result.exact, shape))


def _numeric(s: Setup, command: str, name: str, dtype: str, device: str):
    """autograd[k][j] for every plan entry k (and the auxiliary gradient of a Hessian) at every point j."""
    import torch
    from torch.func import grad, hessian, jacrev

    torch_dtype, torch_device = _devices(dtype, device)
    ops = TorchOps(torch_dtype, torch_device)
    per_point, function = [], []
    for point in s.points:
        env = _torch_values(s, point, torch_dtype, torch_device)
        x = env[name]
        with torch.no_grad():
            value = evaluate(s.program, env, ops)
        function.append(value.reshape(-1).tolist())
        if command == "jacobian":
            entries = jacrev(lambda v, env=env: evaluate(s.program, {**env, name: v}, ops))(x).reshape(-1)
        else:
            f = scalar_function(s, env, name, ops)
            g = grad(f)(x).reshape(-1)
            entries = g if command == "gradient" else torch.cat([hessian(f)(x).reshape(-1), g])
        per_point.append([v + 0.0 for v in entries.detach().cpu().tolist()])  # -0.0 is 0
    count = len(per_point[0]) if per_point else 0
    autograd = [[per_point[j][k] for j in range(len(per_point))] for k in range(count)]
    components = len(function[0]) if function else 0
    by_component = [[function[j][c] for j in range(len(function))] for c in range(components)]
    return autograd, by_component or None, str(torch_device)


# ---- diff: partials by elements

_ELEMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*([0-9]+)\s*(?:,\s*([0-9]+)\s*)?\])?")


def element_name(text: str, s: Setup) -> tuple[str, str, tuple[int, ...]]:
    """`W[0, 1]` → ("W[0,1]", "W", (0, 1)), checked against W's shape."""
    match = _ELEMENT.fullmatch(text.strip())
    if not match:
        raise InputError(f"cannot read {text.strip()!r} as a variable or an element like W[0,1]")
    name, *indexes = match.groups()
    index = tuple(int(i) for i in indexes if i is not None)
    if name not in s.shapes:
        raise InputError(f"{name!r} is not a variable of the expression ({', '.join(s.program.names)})")
    shape = s.shapes[name]
    if len(index) != len(shape):
        want = "no index (a scalar)" if not shape else f"{len(shape)} index{'es' if len(shape) > 1 else ''}"
        raise InputError(f"{text.strip()}: {name} is {described(shape)}, so an element takes {want}, e.g. "
                         f"{elements(name, shape)[0]} (for the whole gradient use pdiff grad)")
    for axis, (i, size) in enumerate(zip(index, shape)):
        if i >= size:
            raise InputError(f"{text.strip()}: index {i} is out of range for size {size} (axis {axis}; "
                             f"{INDEX_NOTE})")
    return (name if not shape else f"{name}[{','.join(map(str, index))}]"), name, index


_LEIBNIZ = re.compile(r"d([0-9]*)f\s*/\s*(.+)")
_FACTOR = re.compile(r"d([A-Za-z_][A-Za-z0-9_]*\s*(?:\[[0-9 ,]+\])?)(?:\^([0-9]+))?\s*")


def parse_partials(texts: Sequence[str], wrt, s: Setup) -> list[tuple[str, tuple[str, ...]]]:
    """Partials as typed → (text, elements in application order). Leibniz d2f/dW[0,0]dx[1] is ∂/∂W[0,0](∂f/∂x[1])
    (x[1] first); --wrt 'W[0,0],x[1]' lists them in application order."""
    wanted = []
    for text in texts:
        plain = text.strip().replace("∂", "d").replace("²", "2").replace("³", "3")
        match = _LEIBNIZ.fullmatch(plain)
        if not match:
            raise InputError(f"cannot read the partial {text!r}: with vectors and matrices write it like "
                             "df/dx[1] or d2f/dW[0,0]dx[1], or use --wrt 'W[0,0],x[1]'")
        order, denominator = match.groups()
        factors, position = [], 0
        while position < len(denominator):
            factor = _FACTOR.match(denominator, position)
            if not factor:
                raise InputError(f"cannot read {denominator[position:]!r} in the partial {text!r}")
            factors += [element_name(factor.group(1), s)[0]] * int(factor.group(2) or 1)
            position = factor.end()
        if order and int(order) != len(factors):
            raise InputError(f"the partial {text!r} says order {order} but names {len(factors)} variables")
        wanted.append((text.strip(), tuple(reversed(factors))))
    if wrt:
        names = split_wrt(wrt)
        wanted.append((",".join(names), tuple(element_name(n, s)[0] for n in names)))
    return wanted


def split_wrt(wrt) -> list[str]:
    from pdiff.parse import split_top_level

    parts = split_top_level(wrt) if isinstance(wrt, str) else list(wrt)
    return [p.strip() for p in parts if p.strip()]


def derivative(expression: str, partials: Sequence[str] = (), *, wrt=None, at: Sequence = (), var=None,
               dtype: str = "float64", device: str = "auto", timeout: float = bounds.DEFAULT_TIMEOUT,
               symbolic_side: bool = True, memory_mb: int = bounds.DEFAULT_MEMORY_MB) -> DiffReport:
    """Partials of a tensor expression by elements (df/dx[1], d2f/dW[0,0]dx[1]) at the points."""
    from pdiff.api import TOLERANCES, judge

    if not timeout > 0:
        raise InputError("--timeout must be positive")
    deadline = time.monotonic() + timeout
    bases = [re.sub(r"\[.*", "", n) for n in (split_wrt(wrt) if wrt else [])]
    s = setup(expression, at, var, bases)
    if math.prod(s.output) != 1:
        raise InputError(f"diff needs a scalar function; {s.program.shown(s.program.root)!r} is "
                         f"{described(s.output)}: index it (y[0]) or use jacobian")
    wanted = parse_partials(partials, wrt, s)
    if not wanted:
        raise InputError("name the partial: e.g. df/dx[0], or --wrt 'W[0,0],x[1]'")
    if not s.points and not symbolic_side:
        raise InputError("nothing to compute: give a point with --at, or drop --no-symbolic")
    orders = [order for _, order in wanted]
    entries = symbolic.identity_entries(1, len(orders))
    worker = _start_exact(s, orders, entries, symbolic_side, memory_mb)
    try:
        autograd, device_name = _partials_numeric(s, orders, dtype, device)
    except BaseException:
        if worker:
            worker.close()
        raise
    derivatives, exact, kinks, missing = _collect(worker, deadline, timeout)
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES["float64"])
    results, problems = [], []
    for k, (text, order) in enumerate(wanted):
        for j, point in enumerate(s.points):
            exact_text, value = exact.get((k, j), (None, None))
            status, note = judge(autograd[k][j], value, exact_text, rtol, atol)
            if (k, j) in kinks:
                status, note = Status.NON_DIFFERENTIABLE, kinks[k, j]
            if status is Status.OK and symbolic_side and not s.exact_refused and value is None:
                status, note = Status.TIMEOUT, missing
            error = (abs(autograd[k][j] - value) if value is not None and autograd[k][j] is not None
                     and math.isfinite(value) and math.isfinite(autograd[k][j]) else None)
            label = values.point_text(point)
            if note:
                problems.append(f"{text} at {label}: {note}")
            results.append(DiffResult(text, order, None, {e: float(sp.N(v, 17)) for e, v in
                                                          values.flat_point(point).items()}, label,
                                      derivatives.get(k), exact_text, value, autograd[k][j], error, status, note))
        if not s.points:
            results.append(DiffResult(text, order, None, None, None, derivatives.get(k), None, None, None, None,
                                      Status.SYMBOLIC if derivatives.get(k) is not None else Status.TIMEOUT,
                                      None if derivatives.get(k) is not None else missing))
    notes = list(s.program.notes) + ([s.exact_refused] if s.exact_refused and symbolic_side else [])
    variables = tuple(e for n in s.program.names for e in elements(n, s.shapes[n]))
    shown = language.to_text(s.program)
    return DiffReport(expression, shown, shown, variables, False, dtype, device_name, (rtol, atol), tuple(results),
                      tuple(dict.fromkeys(problems)), read_as=shown, notes=tuple(notes))


def _partials_numeric(s: Setup, orders, dtype: str, device: str):
    """Nested reverse passes: each partial's previous derivative, indexed at the element, differentiated again."""
    import torch

    if not s.points:
        return [[] for _ in orders], "cpu"
    torch_dtype, torch_device = _devices(dtype, device)
    ops = TorchOps(torch_dtype, torch_device)
    autograd = [[] for _ in orders]
    for point in s.points:
        env = {n: t.requires_grad_(True) for n, t in _torch_values(s, point, torch_dtype, torch_device).items()}
        top = evaluate(s.program, env, ops).reshape(())
        for k, order in enumerate(orders):
            value = top
            for element in order:
                _, name, index = element_name(element, s)
                (g,) = torch.autograd.grad(value, env[name], create_graph=True, allow_unused=True)
                value = torch.zeros((), dtype=torch_dtype, device=torch_device) if g is None else g[index]
            autograd[k].append(float(value.detach()))
    return autograd, str(torch_device)


def gradient_function(expression: str, wrt: str, shapes: Mapping[str, tuple[int, ...]], *, device: str = "cpu",
                      dtype: str = "float64"):
    """autograd's side alone, compiled once: a function of {name: tensor} returning ∂f/∂wrt (shaped like wrt).

    For benchmarks and notebooks: no exact side, no parsing or tree walk per call (backends.compile_torch), and a
    plain reverse pass (torch.autograd.grad: torch.func's wrapping costs more than the pass at small sizes)."""
    import torch

    from pdiff.tensor.backends import compile_torch

    program = language.read(expression, set(shapes))
    inference = infer(program, {n: tuple(s) for n, s in shapes.items()})
    if math.prod(int(s) for s in inference.output) != 1:
        raise InputError(f"the gradient needs a scalar function; {expression!r} is {described(inference.output)}")
    torch_dtype, torch_device = _devices(dtype, device)
    run = compile_torch(program, TorchOps(torch_dtype, torch_device))

    def derivative(env):
        x = env[wrt].detach().requires_grad_(True)
        value = run({**env, wrt: x})
        (g,) = torch.autograd.grad(value.reshape(()), x, allow_unused=True)
        return torch.zeros_like(x) if g is None else g

    return derivative
