"""The traced replay of partials_at (pdiff.autodiff.trace_partials) against SymPy in float64.

The oracle is SymPy's derivative lambdified with NumPy, never pdiff's own eager output.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy as sp
import torch

from pdiff import sources, stream
from pdiff.autodiff import DeadlineExceeded, partials_at, trace_partials
from pdiff.lower import lower
from pdiff.parse import parse

HESSIAN_VARS = [f"x{i}" for i in range(10)]
CASES = {
    "d2f/dxdy": ("x^2 sin(y) + y^3 cos(x)", ["x", "y"], [("y", "x")]),
    "d3f/dx2dy": ("exp(x y) sin(x + y^2)", ["x", "y"], [("y", "x", "x")]),
    "hessian10": (" + ".join(f"x{i}^2 sin(x{(i + 1) % 10})" for i in range(10)) + " + cos(x0 x9)", HESSIAN_VARS,
                  [(f"x{i}", f"x{j}") for i in range(10) for j in range(10)]),
    "mixed orders": ("exp(x y) sin(x + y^2)", ["x", "y"], [("x",), ("y", "x"), ("y", "x", "x"), ("y", "y")]),
}


def _oracle(text: str, names: list[str], wrts, columns: dict[str, np.ndarray]) -> list[np.ndarray]:
    expr = parse(text)
    symbols = {name: sp.Symbol(name, real=True) for name in names}
    n = len(next(iter(columns.values())))
    out = []
    for wrt in wrts:
        derivative = sp.diff(expr, *(symbols[v] for v in wrt))
        function = sp.lambdify([symbols[v] for v in names], derivative, modules="numpy")
        with np.errstate(all="ignore"):
            out.append(np.broadcast_to(np.asarray(function(*(columns[v] for v in names)), dtype=float), (n,)))
    return out


def _points(names, n, seed=0, low=-1.5, high=1.5):
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(low, high, n) for name in names}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("n", [1, 7, 4096, (1 << 15) + 3])
def test_replay_matches_sympy(case, n):
    text, names, wrts = CASES[case]
    traced = trace_partials(lower(parse(text), names), names, wrts)
    assert traced is not None, "the case should be replayed, not left to eager partials_at"
    columns = _points(names, n, seed=n)
    got = traced({name: torch.from_numpy(c) for name, c in columns.items()})
    for wrt, g, want in zip(wrts, got, _oracle(text, names, wrts, columns)):
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-9, atol=1e-12, err_msg=f"{case} {wrt}")


@pytest.mark.parametrize("case", ["d3f/dx2dy", "mixed orders"])
def test_values_replayed_with_the_partials_match_sympy_and_share_their_work(case):
    """Plain values (the exact column's derivative, lowered from SymPy) recorded in the partials' replay."""
    text, names, wrts = CASES[case]
    symbols = [sp.Symbol(name, real=True) for name in names]
    derivatives = [sp.diff(parse(text), *(symbols[names.index(v)] for v in wrt)) for wrt in wrts]
    programs = [lower(d, names) for d in derivatives]
    both = trace_partials(lower(parse(text), names), names, wrts, values=programs)
    assert both is not None
    alone = [trace_partials(lower(parse(text), names), names, wrts)]
    alone += [trace_partials(program, names, [()]) for program in programs]
    assert len(both.ops) < sum(len(traced.ops) for traced in alone)  # sin, cos, exp... once, not once per side
    columns = _points(names, (1 << 15) + 3, seed=11)
    got = both({name: torch.from_numpy(c) for name, c in columns.items()})
    assert len(got) == 2 * len(wrts)
    want = _oracle(text, names, wrts, columns)
    for g, w in zip(got, want + want):  # the partials, then the values of their derivatives
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-12)


def test_replay_is_reusable_across_sizes_and_calls():
    text, names, wrts = CASES["d3f/dx2dy"]
    traced = trace_partials(lower(parse(text), names), names, wrts)
    for n, seed in [(1000, 1), (33, 2), (1000, 3), (33, 4)]:  # plans per size, buffers reused between calls
        columns = _points(names, n, seed)
        (got,) = traced({name: torch.from_numpy(c) for name, c in columns.items()})
        np.testing.assert_allclose(got.numpy(), _oracle(text, names, wrts, columns)[0], rtol=1e-9, atol=1e-12)


def test_float32_replay_is_close_to_sympy():
    text, names, wrts = CASES["d2f/dxdy"]
    traced = trace_partials(lower(parse(text), names), names, wrts, dtype=torch.float32)
    assert traced is not None
    columns = _points(names, 5000)
    (got,) = traced({name: torch.from_numpy(c).float() for name, c in columns.items()})
    np.testing.assert_allclose(got.double().numpy(), _oracle(text, names, wrts, columns)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("text, wrts", [
    ("sqrt(x) y", [("y", "x"), ("x",)]),  # nan for x < 0, inf at 0
    ("log(x) exp(y)", [("x", "x"), ("y", "x")]),  # nan for x < 0, inf at 0
    ("abs(x) y^2", [("y", "x"), ("x",)]),  # a kink at x = 0: sign(0) = 0 on both sides
    ("x^(-1/2) y", [("x", "y")]),
    ("tan(x y) + atanh(x/2)", [("x", "y"), ("x",)]),
])
def test_nan_inf_and_kinks_as_sympy(text, wrts):
    names = ["x", "y"]
    traced = trace_partials(lower(parse(text), names), names, wrts)
    assert traced is not None
    columns = _points(names, 2000, low=-2, high=2)
    columns["x"][:5] = [0.0, -0.0, -1.0, 1.0, -2.0]
    got = traced({name: torch.from_numpy(c) for name, c in columns.items()})
    for wrt, g, want in zip(wrts, got, _oracle(text, names, wrts, columns)):
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=f"{wrt}")
        assert np.array_equal(np.isnan(g.numpy()), np.isnan(want))


def test_a_function_that_reads_its_values_in_python_is_not_traced():
    def branchy(columns):
        x = columns["x"]
        return x * x if float(x[0]) > 0 else -x

    assert trace_partials(branchy, ["x"], [("x",)]) is None


def test_deadline_is_kept_by_partials_at_and_by_the_replay():
    text, names, wrts = CASES["d3f/dx2dy"]
    program = lower(parse(text), names)
    columns = {name: torch.from_numpy(c) for name, c in _points(names, 100).items()}
    with pytest.raises(DeadlineExceeded):
        partials_at(program, columns, wrts, deadline=time.monotonic() - 1)
    traced = trace_partials(program, names, wrts)
    with pytest.raises(DeadlineExceeded):
        traced(columns, deadline=time.monotonic() - 1)
    (value,) = traced(columns, deadline=time.monotonic() + 60)  # a deadline not reached: values as usual
    want = _oracle(text, names, wrts, {k: v.numpy() for k, v in columns.items()})[0]
    np.testing.assert_allclose(value.numpy(), want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", ["d2f/dxdy", "d3f/dx2dy", "hessian10"])
def test_stream_uses_the_replay_and_agrees_with_sympy(case):
    text, names, wrts = CASES[case]
    plan = stream.StreamPlan([parse(text)], [("/".join(w), w) for w in wrts], variables=names, device="cpu")
    assert all(traced is not None for traced in plan.traced)
    # every exact column is replayed together with the partials (their common sin, cos and exp computed once)
    assert plan.shared == [list(range(len(wrts)))]
    n = (1 << 15) * 2 + 5 if case != "hessian10" else 3000
    columns = _points(names, n, seed=7)
    autograd = [[] for _ in wrts]
    exact = [[] for _ in wrts]
    for values in plan.run(sources.array_source(columns, names, name="test")):
        for t in range(len(wrts)):
            autograd[t].append(values.autograd[t])
            exact[t].append(values.exact[t])
    assert plan.summary.finished and plan.summary.points == n
    for t, want in enumerate(_oracle(text, names, wrts, columns)):
        np.testing.assert_allclose(np.concatenate(autograd[t]), want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.concatenate(exact[t]), want, rtol=1e-9, atol=1e-12)


def test_stream_stops_at_its_timeout_with_the_replay():
    text, names, wrts = CASES["d3f/dx2dy"]
    plan = stream.StreamPlan([parse(text)], [("d3f/dx2dy", wrts[0])], variables=names, device="cpu")
    plan.timeout = 1e-9  # every chunk is past its deadline before its first block
    list(plan.run(sources.array_source(_points(names, 1000), names, name="test")))
    assert not plan.summary.finished
    assert "ran past --timeout" in plan.summary.targets[0].note


def test_an_integer_power_equal_to_the_recorded_size_is_a_value_not_the_size():
    """The recording runs on TRACE_ROWS points: x^11 must replay as x^11 at every size, and still be traced."""
    from pdiff.autodiff import TRACE_ROWS

    text = f"x^{TRACE_ROWS} * y"
    program = lower(parse(text), ["x", "y"])
    traced = trace_partials(program, ["x", "y"], [("y",), ("x",)])
    assert traced is not None
    rng = np.random.default_rng(3)
    columns = {"x": rng.uniform(-1.5, 1.5, 1000), "y": rng.uniform(-2, 2, 1000)}
    got = traced({name: torch.from_numpy(values) for name, values in columns.items()})
    for value, want in zip(got, _oracle(text, ["x", "y"], [("y",), ("x",)], columns)):
        np.testing.assert_allclose(value.numpy(), want, rtol=1e-9, atol=1e-12)
