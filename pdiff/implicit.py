"""Implicit differentiation: dⁿy/dxⁿ of y(x) defined by an equation F(x, y) = 0, e.g. x^2 + y^2 = 25.

The n-th derivative is a rational function of F's partial derivatives (F_x, F_y, F_xx, ...), derived once per order
with SymPy (`formula`). Both of pdiff's sides use it: `exact` puts SymPy's partials of F into it, `numeric` puts
autograd's; so autograd differentiates only F, never the implicit function. `on_curve` tells whether an exact point
lies on the curve, and `sample_on_curve` finds random points on it (Newton's method) for grading answers numerically.

Roles: in partial tuples and placeholder names, 'x' is the independent and 'y' the dependent variable, whatever
the user's variables are called; every other free symbol of F is a parameter, held constant.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping, Sequence

import sympy as sp

from pdiff.errors import InputError, LimitError
from pdiff.symbolic import derivative, exact_value

MAX_ORDER = 6  # the formula grows fast: order 6 has 27 partials and hundreds of terms (see formula's docstring)
ON_CURVE_RTOL = 1e-12  # |F| against the size of its terms, where SymPy cannot decide F = 0 exactly

_X = sp.Symbol("x", real=True)
_Y = sp.Symbol("y", real=True)  # stands for y(x) while differentiating; see _total_derivatives
_F = sp.Function("F")


def _placeholder(partial: tuple[str, ...]) -> sp.Symbol:
    # a real Symbol, so pdiff.lower can compile the formula with the placeholder names as its variables
    return sp.Symbol("F_" + "".join(partial), real=True)


def _canonical(partial: Sequence[str]) -> tuple[str, ...]:
    """x's before y's: F is smooth wherever the formula is used, so its mixed partials commute."""
    return ("x",) * partial.count("x") + ("y",) * partial.count("y")


@functools.lru_cache(maxsize=None)
def _total_derivatives(order: int) -> tuple[sp.Expr, ...]:
    """d^k/dx^k F(x, y(x)) for k = 0..order, in x, Y, the symbols y1..y_order (for y', y'', ...) and partials of F.

    SymPy's own chain rule for F(x, y(x)) writes the partials as Subs(Derivative(F(x, _xi), _xi), _xi, y(x)) with
    dummy variables; differentiating F(x, Y) with Y a plain symbol and adding the chain terms Y' ∂/∂Y by hand keeps
    every partial a plain Derivative(F(x, Y), ...), which maps straight to a placeholder.
    """
    ys = [_Y] + [sp.Symbol(f"y{k}") for k in range(1, order + 1)]
    chain = [_F(_X, _Y)]
    for k in range(1, order + 1):
        previous = chain[-1]
        chain.append(sp.diff(previous, _X) + sum(sp.diff(previous, ys[j]) * ys[j + 1] for j in range(k)))
    return tuple(chain)


@functools.lru_cache(maxsize=None)
def _solved(order: int) -> sp.Expr:
    """y^(order) as a rational function of partials of F (Derivative objects), lower derivatives substituted."""
    total = sp.expand(_total_derivatives(order)[order])
    highest = sp.Symbol(f"y{order}")
    # the n-th total derivative is F_y y^(n) + (terms in lower derivatives of y): linear in the highest one
    coefficient, rest = total.coeff(highest), total.subs(highest, 0)
    lower = {sp.Symbol(f"y{k}"): _solved(k) for k in range(1, order)}
    return sp.cancel(sp.together((-rest / coefficient).xreplace(lower)))


def _check_order(order: int) -> None:
    if not isinstance(order, int) or order < 1:
        raise InputError(f"implicit derivative order must be a positive integer, got {order!r}")
    if order > MAX_ORDER:
        raise LimitError(f"implicit derivatives go up to order {MAX_ORDER} (order {order} asked): "
                         "the formula grows too fast beyond that")


@functools.lru_cache(maxsize=None)
def _formula(order: int) -> tuple[sp.Expr, tuple[tuple[str, ...], ...]]:
    solved = _solved(order)
    partials = {}
    for node in solved.atoms(sp.Derivative):
        names = [v.name for v, count in node.variable_count for _ in range(count)]
        partials[node] = _canonical(names)
    expr = solved.xreplace({node: _placeholder(p) for node, p in partials.items()})
    ordered = sorted(set(partials.values()), key=lambda p: (len(p), p))
    return expr, tuple(ordered)


def formula(order: int) -> tuple[sp.Expr, list[tuple[str, ...]]]:
    """y^(order) for F(x, y) = 0, in placeholder symbols F_x, F_y, F_xx, F_xy, ... (real Symbols named
    "F_" + the partial's letters), and the partials it uses as tuples of 'x'/'y', x's first, by order then name.

    Order 1: -F_x/F_y; order 2: -(F_xx F_y² - 2 F_xy F_x F_y + F_yy F_x²)/F_y³. Order n uses every partial of
    order 1..n ((n+1)(n+2)/2 - 1 of them) and has denominator F_y^(2n-1). Memoised; orders above MAX_ORDER raise
    LimitError. Building order 6 from nothing takes about 1.2 s on this machine (0.5 s up to order 5).
    """
    _check_order(order)
    expr, partials = _formula(order)
    return expr, list(partials)


def equation_expr(equation: sp.Expr) -> sp.Expr:
    """F for an equation: lhs - rhs of an sp.Eq, or the expression itself (meaning expression = 0)."""
    return equation.lhs - equation.rhs if isinstance(equation, sp.Equality) else equation


def exact(equation: sp.Expr, y: str, x: str, order: int) -> sp.Expr:
    """The exact dⁿy/dxⁿ for the equation (sp.Eq or F meaning F = 0), in the variables x, y and any parameters.

    SymPy's partials of F go into the formula, then one together/cancel pass: a rational normal form, not a full
    simplify, so the time stays bounded. The result is not reduced using F = 0 (x^2 + y^2 = 25 gives
    -(x^2 + y^2)/y^3, not -25/y^3); it agrees with sympy's idiff.
    """
    expr, partials = formula(order)
    f = equation_expr(equation)
    roles = {"x": x, "y": y}
    values = {_placeholder(p): derivative(f, [roles[r] for r in p]) for p in partials}
    return sp.cancel(sp.together(expr.xreplace(values)))


def residual(equation: sp.Expr, point: Mapping[str, sp.Expr]) -> sp.Expr:
    """F's exact value at the point (names → exact SymPy numbers); nan where SymPy cannot evaluate it."""
    return exact_value(equation_expr(equation), dict(point))


def on_curve(equation: sp.Expr, point: Mapping[str, sp.Expr], rtol: float = ON_CURVE_RTOL) -> bool:
    """Whether the point satisfies F = 0: exactly where SymPy's assumptions decide it at once (rational points,
    most algebraic ones), else by a 30-digit evaluation with |F| <= rtol times the size of F's terms at the point
    (so x^2 + y^2 = 25 far from the origin is judged relative to x^2, not to 1). A point where F is undefined or
    not real is not on the curve."""
    value = residual(equation, point)
    if value.is_zero is True:
        return True
    if value.is_zero is False and value.is_Rational:
        return False
    f = equation_expr(equation)
    terms = f.args if isinstance(f, sp.Add) else (f,)
    try:
        number = complex(sp.N(value, 30))
        scale = sum(abs(complex(sp.N(exact_value(t, dict(point)), 30))) for t in terms)
    except (TypeError, ValueError, ArithmeticError):
        return False
    if not (math.isfinite(number.real) and math.isfinite(scale)):
        return False
    return abs(number) <= rtol * max(scale, 1.0)


@functools.lru_cache(maxsize=None)
def _program(order: int):
    from pdiff.lower import lower

    expr, partials = _formula(order)
    return lower(expr, [_placeholder(p).name for p in partials])


def numeric(program_partials: Mapping[tuple[str, ...], "torch.Tensor"], order: int) -> "torch.Tensor":
    """y^(order) from F's partials computed numerically (e.g. pdiff.autodiff.partials_at on F's program with the
    user's variables for 'x'/'y'): keys are partial tuples of 'x'/'y' (any order of the letters; those of
    formula(order)[1] are needed), values tensors of one shape, dtype and device; the result has the same.
    Where F_y = 0 the result is inf or nan (no implicit function there)."""
    _check_order(order)
    given = {_canonical(k): v for k, v in program_partials.items()}
    _, partials = _formula(order)
    missing = [p for p in partials if p not in given]
    if missing:
        raise InputError(f"partials of F missing for order {order}: {', '.join('F_' + ''.join(p) for p in missing)}")
    return _program(order)({_placeholder(p).name: given[p] for p in partials})


SAMPLE_SCALES = (1.0, 3.0, 10.0)  # the other variables uniform in [-s, s], rounded to 2 decimals
NEWTON_STEPS = 60
OVERSAMPLE = 8  # candidates per wanted point: many starts miss the curve (x^2 + y^2 = 25 has no y for |x| > 5)


def sample_on_curve(equation: sp.Expr, names: Sequence[str], dependent: str, count: int,
                    seed: int) -> dict[str, "torch.Tensor"]:
    """Up to `count` random points on F = 0 as name → 1-D float64 tensor (every name in `names`), the same for
    a seed. The other variables are drawn like pdiff.check's samples (hundredths, never a multiple of 0.05, over
    SAMPLE_SCALES); the dependent one is found by Newton's method from a random start in the same range. Kept: a
    finite point where the last Newton step is below 1e-12 relative, |F| is tiny against its terms and F_y is not
    ~0 (where the implicit function exists). Fewer than `count` points come back where the curve is hard to hit.
    """
    import torch

    from pdiff.lower import lower
    from pdiff.parse import symbol

    f = equation_expr(equation)
    names = list(names)
    if dependent not in names:
        raise InputError(f"the dependent variable {dependent!r} is not among {names}")
    candidates = max(count, 1) * OVERSAMPLE
    generator = torch.Generator().manual_seed(seed)
    scales = torch.tensor(SAMPLE_SCALES, dtype=torch.float64).repeat(-(-candidates // len(SAMPLE_SCALES)))
    scales = scales[:candidates]

    def draw() -> torch.Tensor:
        k = torch.round((torch.rand(candidates, generator=generator, dtype=torch.float64) * 2 - 1) * scales * 100)
        return (k + (k % 5 == 0).to(k.dtype)) / 100  # round values are where curves and domains have corners

    columns = {name: draw() for name in names}  # the dependent column is its Newton start
    function = lower(f, names)
    slope = lower(sp.diff(f, symbol(dependent)), names)
    terms = f.args if isinstance(f, sp.Add) else (f,)
    size = lower(sum((sp.Abs(t) for t in terms), sp.Integer(0)), names)
    y = columns[dependent]
    with torch.no_grad():
        for _ in range(NEWTON_STEPS):
            columns[dependent] = y
            step = function(columns) / slope(columns)
            # a bad start can jump far or leave the domain; it stays nan and is dropped below
            y = y - step
        columns[dependent] = y
        value, derivative_y, magnitude = function(columns), slope(columns), size(columns)
        step = value / derivative_y
        keep = (torch.isfinite(y) & torch.isfinite(step) & (step.abs() <= 1e-12 * (1 + y.abs()))
                & (value.abs() <= 1e-12 * torch.clamp(magnitude, min=1.0))
                & (derivative_y.abs() * torch.clamp(y.abs(), min=1.0) > 1e-8 * torch.clamp(magnitude, min=1.0)))
    index = torch.nonzero(keep).flatten()[:count]
    return {name: columns[name][index].clone() for name in names}
