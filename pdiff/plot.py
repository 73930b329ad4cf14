"""`pdiff plot`: the data of a picture (curves, grids, a tangent line), computed by the many-point engine.

Values come from pdiff.stream (autograd partials at every sample, kinks and domain as there) and f itself from
the same lowered program; nothing here draws (pdiff.render.plot does, with matplotlib, imported only there).
Samples where a value is not finite, lies on a kink or jumps across the view between neighbours (a pole) are
NaN, so a renderer draws a gap there instead of a vertical spike; `ylim` is a robust window, so a pole does not
flatten the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pdiff.errors import InputError

DEFAULT_RANGE = (-3.0, 3.0)
LINE_POINTS = 401  # odd: a symmetric range samples its middle (x = 0 for 1/x is a gap, not a guess)
GRID_POINTS = 81  # per axis
MAX_POINTS = 1_000_000  # per axis on a line, in all on a grid
CRITICAL_SECONDS = 10.0


@dataclass(frozen=True)
class Curve:
    label: str  # `f`, `df/dx`, `d2f/dx2`, `tangent at x = 1`
    y: np.ndarray  # one value per x, NaN where nothing is drawn


@dataclass(frozen=True)
class Tangent:
    at: float
    value: float  # f(at)
    slope: float  # df/dx(at)


@dataclass(frozen=True)
class LinePlot:
    """One variable: f and its derivatives over x, sharing axes."""

    read_as: str  # the expression as read
    latex: str  # sympy.latex of it (for a mathtext title)
    variable: str
    x: np.ndarray
    curves: tuple[Curve, ...]
    ylim: tuple[float, float]
    tangent: Tangent | None
    note: str  # `float64 on cpu`


@dataclass(frozen=True)
class CriticalMark:
    point: dict  # name → float
    classification: str


@dataclass(frozen=True)
class SurfacePlot:
    """Two variables: a meshgrid of f (or the named partial), rows along y, and ∇f for arrows."""

    read_as: str
    latex: str
    variables: tuple[str, str]
    x: np.ndarray  # 1-D, the first variable
    y: np.ndarray  # 1-D, the second
    label: str  # `f` or the partial as typed
    z: np.ndarray  # (len(y), len(x)), NaN where nothing is drawn
    gradient: tuple[np.ndarray, np.ndarray]  # ∂f/∂x, ∂f/∂y on the same grid
    zlim: tuple[float, float]
    critical: tuple[CriticalMark, ...]
    note: str


# ------------------------------------------------------------------------------------------------ input


def parse_ranges(spec: str | Sequence[str] | None) -> dict[str, tuple[float, float]]:
    """`x=-3:3,y=-2:2` (or several such) → {name: (low, high)}; ends may be exact (`-pi:pi`)."""
    from pdiff.parse import parse_number, split_top_level

    parts = [spec] if isinstance(spec, str) else list(spec or [])
    found: dict[str, tuple[float, float]] = {}
    for part in (p for text in parts for p in split_top_level(text)):
        if not part.strip():
            continue
        name, eq, rest = part.partition("=")
        name = name.strip()
        pieces = rest.split(":")
        if not eq or not name.isidentifier() or len(pieces) != 2:
            raise InputError(f"cannot read {part.strip()!r} in --range: write it like x=-3:3 or x=-3:3,y=-2:2")
        if name in found:
            raise InputError(f"variable {name!r} given twice in --range")
        ends = []
        for text in pieces:
            try:
                number = float(parse_number(text).evalf(17))
            except (InputError, TypeError, ValueError) as exc:
                raise InputError(f"--range {name}={rest.strip()}: {exc}") from None
            if not math.isfinite(number):
                raise InputError(f"--range {name}: {text.strip()} is not a finite real number")
            ends.append(number)
        if not ends[0] < ends[1]:
            raise InputError(f"--range {name}={rest.strip()}: the start must be below the end")
        found[name] = (ends[0], ends[1])
    return found


def _parse_at(text: str, variable: str) -> float:
    """The tangent line's point, read as --at reads points elsewhere (pdiff.points)."""
    from pdiff.points import parse_point

    point = parse_point(text)
    if set(point) != {variable}:
        raise InputError(f"--at {text!r}: write {variable}=VALUE (the tangent line's point)")
    return float(point[variable].evalf(17))


# ------------------------------------------------------------------------------------------------ gaps


def robust_window(values: np.ndarray) -> tuple[float, float] | None:
    """The y-range to show: all of it unless the tails run far past the 5-95 % band (a pole); None if empty."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    low, high = np.percentile(finite, [5, 95])
    span = max(high - low, 1e-12 * max(1.0, abs(low), abs(high)))
    lo, hi = float(finite.min()), float(finite.max())
    lo = lo if lo >= low - span else float(low - 0.25 * span)
    hi = hi if hi <= high + span else float(high + 0.25 * span)
    if lo == hi:
        lo, hi = lo - 1.0, hi + 1.0
    return lo, hi


def break_poles(values: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """A copy with NaN where a line must not be drawn: non-finite samples, and both ends of a segment that leaps
    from beyond one edge of the window to beyond the other (1/x across 0), or jumps by far more than the window."""
    y = np.array(values, dtype=float)
    y[~np.isfinite(y)] = np.nan
    window = window or robust_window(y)
    if window is None or y.size < 2:
        return y
    lo, hi = window
    a, b = y[:-1], y[1:]
    with np.errstate(invalid="ignore"):
        across = ((a < lo) & (b > hi)) | ((a > hi) & (b < lo))
        huge = np.abs(b - a) > 100 * (hi - lo)
    cut = np.flatnonzero(across | huge)
    y[cut] = np.nan
    y[cut + 1] = np.nan
    return y


# ------------------------------------------------------------------------------------------------ compute


def _read(expression: str, names: Sequence[str]):
    from pdiff import question, symbolic

    asked = question.read(expression, names=set(names))
    if asked.equation is not None:
        raise InputError("plot draws a function, not an equation: give one side, e.g. 'x^2 + y^2 - 1'")
    if asked.is_vector:
        raise InputError("plot draws one scalar function; plot each component on its own")
    variables = symbolic.variables_of(asked.components)
    if not variables:
        raise InputError("the expression has no variables: there is nothing to plot")
    if len(variables) > 2:
        raise InputError(f"plot draws functions of one or two variables; this one has {len(variables)} "
                         f"({', '.join(variables)})")
    return asked, list(variables)


def _ranges_for(variables: list[str], ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    extra = [name for name in ranges if name not in variables]
    if extra:
        raise InputError(f"--range names {', '.join(extra)}, which is not a variable here "
                         f"(variables: {', '.join(variables)})")
    return {name: ranges.get(name, DEFAULT_RANGE) for name in variables}


def _values(plan, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """f and every target of `plan` at the points `columns` (float64 NumPy arrays)."""
    import torch

    from pdiff.sources import array_source

    n = len(next(iter(columns.values())))
    parts: list[list[np.ndarray]] = [[] for _ in plan.targets]
    for values in plan.run(array_source(columns, plan.needed, name="--range")):
        for t, array in enumerate(values.autograd):
            parts[t].append(np.array(array, dtype=float))
    if not plan.summary.finished:
        raise InputError(f"the plot's values did not finish within --timeout {plan.timeout:g} s")
    with torch.no_grad():
        tensors = {name: torch.from_numpy(np.ascontiguousarray(columns[name], dtype=np.float64))
                   .to(plan.device, torch.float64) for name in plan.needed}
        f = torch.broadcast_to(plan.programs[0](tensors), (n,)).cpu().numpy().astype(float)
    return f, [np.concatenate(p) if p else np.empty(0) for p in parts]


def _plan(asked, variables, partials: Sequence[tuple[str, tuple[str, ...]]], device: str, timeout: float):
    from pdiff import symbolic
    from pdiff.stream import StreamPlan

    return StreamPlan(asked.components, list(partials), variables=variables,
                      expression=symbolic.to_text(asked.components[0]), device=device, timeout=timeout)


def _latex(asked) -> str:
    import sympy as sp

    try:
        return sp.latex(asked.components[0])
    except Exception:  # noqa: BLE001  a title is not worth failing for
        return ""


def plot(expression: str, partials: Sequence[str] = (), *, ranges: str | Sequence[str] | None = None,
         at: str | None = None, points: int | None = None, device: str = "auto", timeout: float = 30.0,
         critical: bool = True) -> LinePlot | SurfacePlot:
    """The data for `pdiff plot`: a LinePlot for a function of one variable, a SurfacePlot for two."""
    from pdiff import question

    wanted_ranges = parse_ranges(ranges)
    asked, variables = _read(expression, wanted_ranges)
    bounds = _ranges_for(variables, wanted_ranges)
    if points is not None and not 2 <= points <= (MAX_POINTS if len(variables) == 1 else 2000):
        raise InputError(f"--points must be between 2 and {MAX_POINTS if len(variables) == 1 else 2000}")
    wanted = [(p.text, tuple(p.wrt)) for p in question.partials(asked, partials, None)] if partials else []
    if len(variables) == 1:
        return _line(asked, variables[0], bounds[variables[0]], wanted, at, points or LINE_POINTS, device, timeout)
    if at is not None:
        raise InputError("--at draws a tangent line, for a function of one variable")
    if len(wanted) > 1:
        raise InputError("a contour shows one function: give at most one partial")
    return _surface(asked, variables, bounds, wanted[0] if wanted else None, points or GRID_POINTS, device,
                    timeout, critical)


def _line(asked, x_name, bounds, wanted, at, n, device, timeout) -> LinePlot:
    if not wanted:
        wanted = [(f"df/d{x_name}", (x_name,)), (f"d2f/d{x_name}2", (x_name, x_name))]
    slope_index = next((i for i, (_, wrt) in enumerate(wanted) if wrt == (x_name,)), None)
    targets = list(wanted)
    if at is not None and slope_index is None:  # the slope, computed but not drawn
        targets.append((f"df/d{x_name}", (x_name,)))
        slope_index = len(targets) - 1
    plan = _plan(asked, [x_name], targets, device, timeout)
    x = np.linspace(bounds[0], bounds[1], n)
    f, derivatives = _values(plan, {x_name: x})
    raw = [("f", f), *((label, values) for (label, _), values in zip(wanted, derivatives))]
    curves = []
    window = None
    for label, values in raw:
        own = robust_window(np.where(np.isfinite(values), values, np.nan))
        y = break_poles(values, own)
        curves.append(Curve(label, y))
        if own is not None:
            window = own if window is None else (min(window[0], own[0]), max(window[1], own[1]))
    tangent = None
    if at is not None:
        a = _parse_at(at, x_name)
        f_at, d_at = _values(plan, {x_name: np.array([a])})
        value, slope = float(f_at[0]), float(d_at[slope_index][0])
        if not (math.isfinite(value) and math.isfinite(slope)):
            raise InputError(f"no tangent line at {x_name} = {a:g}: f or df/d{x_name} is not finite there")
        tangent = Tangent(a, value, slope)
        line = value + slope * (x - a)
        curves.append(Curve(f"tangent at {x_name} = {a:g}", np.where(
            (line >= (window or (-np.inf, np.inf))[0]) & (line <= (window or (-np.inf, np.inf))[1]), line, np.nan)))
    pad = 0.05 * ((window[1] - window[0]) if window else 1.0)
    ylim = (window[0] - pad, window[1] + pad) if window else (-1.0, 1.0)
    return LinePlot(asked.read_as, _latex(asked), x_name, x, tuple(curves), ylim, tangent,
                    f"{plan.summary.dtype} on {plan.device.type}")


def _surface(asked, variables, bounds, partial, n, device, timeout, critical) -> SurfacePlot:
    xs, ys = variables
    targets = [(f"df/d{xs}", (xs,)), (f"df/d{ys}", (ys,))]
    if partial is not None:
        targets.append(partial)
    plan = _plan(asked, variables, targets, device, timeout)
    x = np.linspace(*bounds[xs], n)
    y = np.linspace(*bounds[ys], n)
    gx, gy = np.meshgrid(x, y)  # rows along y
    f, values = _values(plan, {xs: gx.ravel(), ys: gy.ravel()})
    shown = values[2] if partial is not None else f
    z = np.where(np.isfinite(shown), shown, np.nan).reshape(gx.shape)
    window = robust_window(z.ravel()) or (-1.0, 1.0)
    z = np.where((z < window[0] - (window[1] - window[0])) | (z > window[1] + (window[1] - window[0])), np.nan, z)
    grads = tuple(np.where(np.isfinite(v), v, np.nan).reshape(gx.shape) for v in values[:2])
    marks = _critical_points(asked.read_as, variables, bounds) if critical and partial is None else ()
    return SurfacePlot(asked.read_as, _latex(asked), (xs, ys), x, y, partial[0] if partial else "f", z, grads,
                       window, marks, f"{plan.summary.dtype} on {plan.device.type}")


def _critical_points(expression: str, variables, bounds) -> tuple[CriticalMark, ...]:
    """Critical points from pdiff.critical where it exists; none (and no failure) where it does not."""
    try:
        from pdiff import critical
    except ImportError:
        return ()
    finder = getattr(critical, "critical_points", None)
    if finder is None:
        return ()
    try:
        found = finder(expression, ranges={name: bounds[name] for name in variables}, timeout=CRITICAL_SECONDS)
        found = getattr(found, "points", found)
        marks = []
        for item in found:
            point = {str(k): float(v) for k, v in dict(item.point).items()}
            if all(bounds[v][0] <= point.get(v, math.nan) <= bounds[v][1] for v in variables):
                marks.append(CriticalMark(point, str(item.classification)))
        return tuple(marks)
    except Exception:  # noqa: BLE001  an InputError, a timeout, an API in flux: the plot is drawn without them
        return ()
