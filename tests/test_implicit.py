"""pdiff.implicit against independent oracles: sympy's idiff, hand values, and 30-digit SymPy evaluation."""

import pytest
import sympy as sp
import torch
from sympy.geometry.util import idiff

from pdiff import implicit
from pdiff.autodiff import partials_at
from pdiff.errors import InputError, LimitError
from pdiff.lower import lower
from pdiff.parse import symbol

x, y, a = symbol("x"), symbol("y"), symbol("a")
Fx, Fy, Fxx, Fxy, Fyy = (sp.Symbol(n, real=True) for n in ("F_x", "F_y", "F_xx", "F_xy", "F_yy"))

EQUATIONS = {  # F, meaning F = 0, and its variables
    "circle": (x**2 + y**2 - 25, ["x", "y"]),
    "ellipse": (x**2 / 4 + y**2 / 9 - 1, ["x", "y"]),
    "folium": (x**3 + y**3 - 6 * x * y, ["x", "y"]),
    "hyperbola": (x * y - 1, ["x", "y"]),
    "sin": (sp.sin(x * y) - x, ["x", "y"]),
    "exp": (sp.exp(y) - x - y, ["x", "y"]),
    "parameter": (x**2 * y + y**3 - a, ["a", "x", "y"]),
}


def test_formula_first_two_orders_by_hand():
    first, partials = implicit.formula(1)
    assert sp.cancel(first - (-Fx / Fy)) == 0 and partials == [("x",), ("y",)]
    second, partials = implicit.formula(2)
    assert sp.cancel(second + (Fxx * Fy**2 - 2 * Fxy * Fx * Fy + Fyy * Fx**2) / Fy**3) == 0
    assert sorted(partials) == [("x",), ("x", "x"), ("x", "y"), ("y",), ("y", "y")]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_formula_uses_every_partial_up_to_its_order(order):
    expr, partials = implicit.formula(order)
    assert len(partials) == (order + 1) * (order + 2) // 2 - 1
    assert {s.name for s in expr.free_symbols} == {"F_" + "".join(p) for p in partials}


def test_order_bound():
    with pytest.raises(LimitError):
        implicit.formula(implicit.MAX_ORDER + 1)
    with pytest.raises(LimitError):
        implicit.exact(x**2 + y**2 - 25, "y", "x", 7)
    with pytest.raises(InputError):
        implicit.formula(0)


@pytest.mark.parametrize("name", sorted(EQUATIONS))
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_exact_matches_sympy_idiff(name, order):
    f, _ = EQUATIONS[name]
    assert sp.cancel(implicit.exact(f, "y", "x", order) - idiff(f, y, x, order)) == 0


def test_circle_by_hand():
    circle = sp.Eq(x**2 + y**2, 25)
    first, second = (implicit.exact(circle, "y", "x", n) for n in (1, 2))
    assert sp.cancel(first + x / y) == 0
    assert sp.cancel(second + (x**2 + y**2) / y**3) == 0
    assert first.xreplace({x: 3, y: 4}) == sp.Rational(-3, 4)
    assert second.xreplace({x: 3, y: 4}) == sp.Rational(-25, 64)


def test_other_variable_names():
    # roles, not names: u is independent, v dependent, and dv/du of v^2 = u is 1/(2v)
    u, v = symbol("u"), symbol("v")
    assert sp.cancel(implicit.exact(v**2 - u, "v", "u", 1) - 1 / (2 * v)) == 0


def test_on_curve():
    circle = sp.Eq(x**2 + y**2, 25)
    assert implicit.on_curve(circle, {"x": sp.Integer(3), "y": sp.Integer(4)})
    assert implicit.on_curve(circle, {"x": sp.Integer(2), "y": -sp.sqrt(21)})
    assert not implicit.on_curve(circle, {"x": sp.Integer(3), "y": sp.Rational(41, 10)})
    assert not implicit.on_curve(circle, {"x": sp.Integer(3), "y": 4 + sp.Rational(1, 10**20)})  # exact, no tolerance
    assert implicit.residual(circle, {"x": sp.Integer(1), "y": sp.Integer(1)}) == -23
    assert not implicit.on_curve(sp.log(x) - y, {"x": sp.Integer(-1), "y": sp.Integer(0)})  # not real there
    # SymPy cannot decide a 30-digit Float point exactly: the relative tolerance does
    near = {"x": sp.Rational(1, 2), "y": sp.N(sp.pi / 3, 30)}
    assert implicit.on_curve(sp.sin(x * y) - x, near)
    assert not implicit.on_curve(sp.sin(x * y) - x, {"x": sp.Rational(1, 2), "y": sp.N(sp.pi / 3 + 1e-9, 30)})


def _exact_at(expr, names, columns, i):
    point = {symbol(n): sp.Float(columns[n][i].item(), 30) for n in names}
    return float(sp.N(expr.xreplace(point), 30))


@pytest.mark.parametrize("name", ["circle", "folium", "sin", "exp", "parameter"])
def test_numeric_matches_exact_on_the_curve(name):
    f, names = EQUATIONS[name]
    columns = implicit.sample_on_curve(f, names, "y", 12, seed=1)
    assert len(columns["y"]) >= 6
    program = lower(f, names)
    for order in (1, 2, 3, 4):
        partials = implicit.formula(order)[1]
        values = partials_at(program, columns, partials)
        numeric = implicit.numeric(dict(zip(partials, values)), order)
        expected = implicit.exact(f, "y", "x", order)
        for i in range(len(numeric)):
            want = _exact_at(expected, names, columns, i)
            assert numeric[i].item() == pytest.approx(want, rel=1e-6, abs=1e-9), (order, i)


def test_numeric_from_plain_autograd_keeps_dtype_and_shape():
    # the circle at (3, 4) and (-4, 3), partials by torch.autograd directly, in float32
    px = torch.tensor([3.0, -4.0], dtype=torch.float32, requires_grad=True)
    py = torch.tensor([4.0, 3.0], dtype=torch.float32, requires_grad=True)
    f = px**2 + py**2 - 25
    gx, gy = torch.autograd.grad(f.sum(), [px, py], create_graph=True)
    gxx, gxy = torch.autograd.grad(gx.sum(), [px, py], allow_unused=True, materialize_grads=True)
    gyy, = torch.autograd.grad(gy.sum(), [py])
    given = {("x",): gx, ("y",): gy, ("x", "x"): gxx, ("y", "x"): gxy, ("y", "y"): gyy}  # either order of x, y
    first = implicit.numeric(given, 1)
    second = implicit.numeric(given, 2)
    assert first.dtype == torch.float32 and first.shape == (2,)
    assert first.tolist() == pytest.approx([-3 / 4, 4 / 3])
    assert second.tolist() == pytest.approx([-25 / 64, -25 / 27])


def test_numeric_needs_its_partials():
    with pytest.raises(InputError, match="F_yy"):
        implicit.numeric({("x",): torch.ones(1), ("y",): torch.ones(1), ("x", "x"): torch.ones(1),
                          ("x", "y"): torch.ones(1)}, 2)


@pytest.mark.parametrize("name", sorted(EQUATIONS))
def test_sample_on_curve(name):
    f, names = EQUATIONS[name]
    columns = implicit.sample_on_curve(f, names, "y", 40, seed=3)
    n = len(columns["y"])
    assert 20 <= n <= 40 and set(columns) == set(names)
    assert all(c.dtype == torch.float64 and c.shape == (n,) for c in columns.values())
    f_y = sp.diff(f, y)
    for i in range(n):
        point = {symbol(k): sp.Float(columns[k][i].item(), 30) for k in names}
        terms = sum(abs(sp.N(t.xreplace(point), 30)) for t in sp.Add.make_args(f))
        assert abs(sp.N(f.xreplace(point), 30)) <= 1e-12 * max(terms, 1)
        assert sp.N(f_y.xreplace(point), 30) != 0
    again = implicit.sample_on_curve(f, names, "y", 40, seed=3)
    assert all(torch.equal(columns[k], again[k]) for k in names)


def test_sample_on_circle_stays_on_it():
    columns = implicit.sample_on_curve(sp.Eq(x**2 + y**2, 25), ["x", "y"], "y", 50, seed=0)
    assert len(columns["x"]) == 50
    assert bool((columns["x"].abs() < 5).all())
    assert torch.allclose(columns["x"] ** 2 + columns["y"] ** 2, torch.full((50,), 25.0, dtype=torch.float64))
