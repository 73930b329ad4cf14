"""pdiff.gradient / jacobian / hessian on the caller's own torch functions and modules.

Oracles: closed forms worked by hand (2Aᵀ(Ax − b), A + Aᵀ, softmax − onehot, Wᵀ(1 − tanh²), the logistic loss's
−mean(y σ(−y w·x) x)), torch.func on float64 copies for the small CNN, and one-sided derivatives worked by hand at
kinks (ReLU at 0: 1 right, 0 left; a tie of two maxima: 1 and 0).
"""

from __future__ import annotations

import doctest
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pdiff
import pdiff.callables
from pdiff.errors import InputError

f64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cnn(seed: int = 0) -> nn.Module:
    """The PyTorch examples' small CNN, shrunk: Conv2d → ReLU → MaxPool → Linear, on 1×8×8 images."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 10))


# ------------------------------------------------------------------------------------------- closed forms

def test_least_squares_gradient_is_2_At_residual():
    A, b, x = (torch.randn(*shape, generator=_gen(1), dtype=f64) for shape in [(5, 4), (5,), (4,)])
    result = pdiff.gradient(lambda x: ((A @ x - b) ** 2).sum(), x)
    assert result.agrees is True and result.note is None and result.kinks == ()
    torch.testing.assert_close(result.value, 2 * A.T @ (A @ x - b))
    torch.testing.assert_close(result.reference, 2 * A.T @ (A @ x - b), rtol=1e-9, atol=1e-9)
    assert result.max_abs_error < 1e-9 and result.method == "central differences, Richardson, float64"


def test_quadratic_form_hessian_is_A_plus_At():
    A, x = torch.randn(4, 4, generator=_gen(2), dtype=f64), torch.randn(4, generator=_gen(3), dtype=f64)
    result = pdiff.hessian(lambda x: x @ A @ x, x)
    assert result.agrees is True and result.value.shape == (4, 4)
    torch.testing.assert_close(result.value, A + A.T)
    torch.testing.assert_close(result.reference, A + A.T, rtol=1e-8, atol=1e-8)
    assert result.method == "second central differences, Richardson, float64"


def test_hessian_of_a_curved_function_by_hand():
    # f = x0² x1 + exp(x1) sin(x0): f_00 = 2 x1 − e^x1 sin x0, f_01 = 2 x0 + e^x1 cos x0, f_11 = e^x1 sin x0
    x = torch.tensor([0.7, -0.4], dtype=f64)
    result = pdiff.hessian(lambda v: v[0] ** 2 * v[1] + torch.exp(v[1]) * torch.sin(v[0]), x)
    a, b = 0.7, -0.4
    exact = torch.tensor([[2 * b - math.exp(b) * math.sin(a), 2 * a + math.exp(b) * math.cos(a)],
                          [2 * a + math.exp(b) * math.cos(a), math.exp(b) * math.sin(a)]], dtype=f64)
    assert result.agrees is True
    torch.testing.assert_close(result.value, exact)
    torch.testing.assert_close(result.reference, exact, rtol=1e-7, atol=1e-7)


def test_softmax_cross_entropy_gradient_is_softmax_minus_onehot():
    logits = torch.randn(6, generator=_gen(4), dtype=f64)
    target = torch.tensor([2])
    result = pdiff.gradient(lambda z, t: F.cross_entropy(z[None], t), logits, target)  # target passed through
    expected = torch.softmax(logits, 0) - F.one_hot(target[0], 6).to(f64)
    assert result.agrees is True
    torch.testing.assert_close(result.value, expected)
    torch.testing.assert_close(result.reference, expected, rtol=1e-8, atol=1e-10)


def test_logistic_loss_gradient():
    X = torch.randn(20, 3, generator=_gen(5), dtype=f64)
    y = torch.where(torch.randn(20, generator=_gen(6)) > 0, 1.0, -1.0).to(f64)
    w = torch.randn(3, generator=_gen(7), dtype=f64)
    result = pdiff.gradient(lambda w, X, y: F.softplus(-y * (X @ w)).mean(), w, X, y)
    expected = -(y * torch.sigmoid(-y * (X @ w)))[:, None].mul(X).mean(0)
    assert result.agrees is True
    torch.testing.assert_close(result.value, expected)
    torch.testing.assert_close(result.reference, expected, rtol=1e-8, atol=1e-10)


def test_linear_tanh_input_gradient_and_jacobian():
    torch.manual_seed(8)
    layer = nn.Linear(4, 3).double()
    x = torch.randn(4, generator=_gen(9), dtype=f64)
    W, b = layer.weight.detach(), layer.bias.detach()
    t = torch.tanh(W @ x + b)
    g = pdiff.gradient(lambda x: torch.tanh(layer(x)).sum(), x)
    assert g.agrees is True
    torch.testing.assert_close(g.value, W.T @ (1 - t ** 2))
    J = pdiff.jacobian(lambda x: torch.tanh(layer(x)), x)
    assert J.agrees is True and J.value.shape == (3, 4)
    torch.testing.assert_close(J.value, (1 - t ** 2)[:, None] * W)
    torch.testing.assert_close(J.reference, (1 - t ** 2)[:, None] * W, rtol=1e-8, atol=1e-10)


def test_jacobian_layout_is_output_shape_then_input_shape():
    A = torch.randn(3, 2, 2, 3, generator=_gen(10), dtype=f64)  # y[i, j] = Σ A[i, j, k, l] x[k, l]
    x = torch.randn(2, 3, generator=_gen(11), dtype=f64)
    result = pdiff.jacobian(lambda x: torch.einsum("ijkl,kl->ij", A, x), x)
    assert result.value.shape == (3, 2, 2, 3) and result.agrees is True
    torch.testing.assert_close(result.value, A)
    torch.testing.assert_close(result.reference, A, rtol=1e-9, atol=1e-9)


def test_tuple_inputs_give_tuples():
    a, b = torch.tensor([1.0, 2.0], dtype=f64), torch.tensor([[3.0], [-1.0]], dtype=f64)
    fn = lambda a, b: (a * b[:, 0]).sum() + (a ** 2).sum() + b.pow(3).sum()
    g = pdiff.gradient(fn, (a, b))
    assert isinstance(g.value, tuple) and g.agrees is True
    torch.testing.assert_close(g.value[0], b[:, 0] + 2 * a)
    torch.testing.assert_close(g.value[1], a[:, None] + 3 * b ** 2)
    torch.testing.assert_close(g.reference[1], a[:, None] + 3 * b ** 2, rtol=1e-9, atol=1e-9)
    h = pdiff.hessian(fn, (a, b))
    assert h.agrees is True and h.value[0][1].shape == (2, 2, 1) and h.reference[1][1].shape == (2, 1, 2, 1)
    torch.testing.assert_close(h.value[0][0], 2 * torch.eye(2, dtype=f64))
    torch.testing.assert_close(h.value[0][1], torch.eye(2, dtype=f64)[:, :, None])  # ∂²f/∂a_i∂b_j0 = δ_ij
    torch.testing.assert_close(h.reference[1][1].reshape(2, 2), torch.diag(6 * b[:, 0]), rtol=1e-7, atol=1e-7)
    J = pdiff.jacobian(lambda a, b: a * b[:, 0], (a, b))
    assert J.agrees is True and J.value[1].shape == (2, 2, 1)
    torch.testing.assert_close(J.value[0], torch.diag(b[:, 0]))


def test_float32_inputs_use_float32_tolerances():
    x = torch.linspace(-2, 2, 7)
    result = pdiff.gradient(lambda x: (torch.sin(x) * x).sum(), x)
    assert result.value.dtype == torch.float32 and result.reference.dtype == f64
    assert result.agrees is True and result.rtol == 1e-3
    torch.testing.assert_close(result.value, torch.sin(x) + x * torch.cos(x))


# ------------------------------------------------------------------------------------------- the small CNN

def test_cnn_input_gradient_agrees_and_leaves_the_module_alone():
    model = _cnn()
    model.train()  # no dropout or batch norm: training mode changes nothing, and must stay as it is
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, target = torch.randn(1, 1, 8, 8, generator=_gen(12)), torch.tensor([3])
    result = pdiff.gradient(lambda x, t: F.cross_entropy(model(x), t), x, target)
    assert result.agrees is True and result.value.shape == (1, 1, 8, 8) and result.value.dtype == torch.float32
    assert result.method == "central differences, Richardson, float64"  # the closure's module was copied
    # oracle: torch.func on a float64 copy
    model64 = _cnn().double()
    expected = torch.func.grad(lambda x: F.cross_entropy(model64(x), target))(x.double())
    torch.testing.assert_close(result.reference, expected, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(result.value.double(), expected, rtol=1e-4, atol=1e-6)
    assert model.training and all(m.training for m in model.modules())
    assert all(p.dtype == torch.float32 and p.grad is None and p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert x.grad is None and x.dtype == torch.float32


def test_module_as_fn_in_eval_mode_and_float64():
    model = _cnn().double().eval()
    x = torch.randn(1, 1, 8, 8, generator=_gen(13), dtype=f64)
    J = pdiff.jacobian(model, x)
    assert J.agrees is True and J.value.shape == (1, 10, 1, 1, 8, 8)
    torch.testing.assert_close(J.value, torch.func.jacrev(model)(x))
    assert not model.training and next(model.parameters()).dtype == f64


def test_cnn_forced_kink_is_flagged():
    model = _cnn(1)
    with torch.no_grad():
        model[0].bias.zero_()
    x = torch.randn(1, 1, 8, 8, generator=_gen(14))
    x[..., :4, :4] = 0  # conv outputs (0..1, 0..1) see only zeros: ReLU inputs exactly 0, a pool window of tied 0s
    result = pdiff.gradient(lambda x: model(x).sum(), x)
    assert result.agrees is False and result.kinks
    assert all(index[2] < 4 and index[3] < 4 for index in result.kinks)  # only in the zero corner
    assert "not differentiable at this input" in result.note and "subgradient" in result.note
    assert set(result.flagged) <= set(result.kinks)  # every disagreement is explained by a kink


def test_max_pool_tie_is_flagged():
    x = torch.tensor([[[[1.0, 3.0], [3.0, 0.0]]]], dtype=f64)  # one window, two maxima
    result = pdiff.gradient(lambda x: F.max_pool2d(x, 2).sum(), x)
    assert result.agrees is False and set(result.kinks) == {(0, 0, 0, 1), (0, 0, 1, 0)}
    torch.testing.assert_close(result.reference, torch.tensor([[[[0.0, 0.5], [0.5, 0.0]]]], dtype=f64))
    assert "forward 1, backward 0" in result.note


# ------------------------------------------------------------------------------------------- kinks

def test_relu_at_zero():
    result = pdiff.gradient(lambda x: torch.relu(x).sum(), torch.tensor([0.0, 1.5, -2.0], dtype=f64))
    assert result.agrees is False and result.kinks == ((0,),) and result.flagged == ((0,),)
    torch.testing.assert_close(result.reference, torch.tensor([0.5, 1.0, 0.0], dtype=f64))
    assert result.note.startswith("not differentiable at this input (or within 1.2e-04 of it) at 1 entry "
                                  "(one-sided derivatives differ; first [0]: forward 1, backward 0)")


def test_relu_near_zero_is_not_a_kink():
    # 1e-4 lies inside the first step (2^-7): the finer step resolves it
    result = pdiff.gradient(lambda x: torch.relu(x).sum(), torch.tensor([1e-4, 1.0], dtype=f64))
    assert result.agrees is True and result.kinks == () and result.note is None


def test_max_tie_agrees_but_is_a_kink():
    x = torch.tensor([1.0, 3.0, 3.0], dtype=f64)
    even = pdiff.gradient(torch.max, x)  # the full reduction shares the gradient between ties: 0.5 each
    assert even.agrees is True and even.kinks == ((1,), (2,)) and "matching central differences" in even.note
    picked = pdiff.gradient(lambda x: x.max(dim=0).values, x)  # along a dim, one of them takes all
    assert picked.agrees is False and picked.kinks == ((1,), (2,))


def test_hessian_at_a_relu_kink_disagrees():
    result = pdiff.hessian(lambda x: torch.relu(x).pow(2).sum(), torch.tensor([0.0, 1.0], dtype=f64))
    # relu(x)² has second derivative 0 left of 0 and 2 right: differences give the average, autograd 0
    assert result.agrees is False and result.flagged == ((0, 0),)
    assert "not be twice differentiable" in result.note


def test_wrong_backward_is_caught():
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x  # should be 2x

    result = pdiff.gradient(lambda x: Square.apply(x).sum(), torch.tensor([1.0, 2.0], dtype=f64))
    assert result.agrees is False and result.status == "disagrees" and result.kinks == ()
    assert result.flagged == ((0,), (1,))
    assert "autograd disagrees with central differences at 2 entries (first [0]: autograd 3, differences 2)" \
        in result.note
    torch.testing.assert_close(result.reference, torch.tensor([2.0, 4.0], dtype=f64))


def test_near_the_edge_of_the_domain_the_steps_shrink():
    # the first step (2^-7 of the tensor's scale) leaves log's domain at x = 1e-3; finer rounds do not
    x = torch.tensor([1e-3, 100.0], dtype=f64)
    result = pdiff.gradient(lambda x: torch.log(x).sum(), x)
    assert result.agrees is True
    torch.testing.assert_close(result.reference, 1 / x, rtol=1e-8, atol=0)


def test_not_finite_and_too_much_rounding_are_said():
    at_zero = pdiff.gradient(lambda x: torch.sqrt(x).sum(), torch.tensor([0.0, 1.0], dtype=f64))
    assert at_zero.agrees is False and at_zero.flagged == ((0,),) and "not finite near x" in at_zero.note
    big = pdiff.gradient(lambda x: 1e8 + (x ** 2).sum(), torch.tensor([1.0, 2.0], dtype=f64))
    assert big.agrees is False and big.status == "unsure" and "rounding in fn's values" in big.note
    torch.testing.assert_close(big.value, torch.tensor([2.0, 4.0], dtype=f64))


def test_fn_that_vmap_cannot_batch_is_evaluated_one_call_at_a_time():
    x = torch.tensor([1.0, 2.0], dtype=f64)
    gate = lambda x: float(x[0].item() > -10)
    assert pdiff.gradient(lambda x: x.pow(3).sum() * gate(x), x).agrees is True
    J = pdiff.jacobian(lambda x: x.pow(3) * gate(x), x)  # jacrev fails too: one reverse pass per output
    assert J.agrees is True
    torch.testing.assert_close(J.value, torch.diag(3 * x ** 2))
    H = pdiff.hessian(lambda x: x.pow(3).sum() * gate(x), x)
    assert H.agrees is True
    torch.testing.assert_close(H.value, torch.diag(6 * x))


def test_autograd_fallbacks_keep_the_layout(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("no torch.func here")

    monkeypatch.setattr(torch.func, "hessian", refuse)  # reverse over reverse instead of jacfwd(jacrev)
    a, b = torch.tensor([1.0, 2.0], dtype=f64), torch.tensor([[3.0, -1.0, 0.5]], dtype=f64)
    fn = lambda a, b: (a[:, None] * b).sum() ** 2
    H = pdiff.hessian(fn, (a, b))
    s = float((a[:, None] * b).sum())
    assert H.agrees is True and H.value[0][1].shape == (2, 1, 3)
    # s = Σ a_i b_0k: ∂²(s²)/∂a_i∂b_0k = 2 (∂s/∂a_i)(∂s/∂b_0k) + 2 s, with ∂s/∂a_i = Σ b, ∂s/∂b_0k = Σ a
    ds_da, ds_db = b.sum(1).expand(2), a.sum().expand(1, 3)
    cross = 2 * ds_da[:, None, None] * ds_db[None] + 2 * s
    torch.testing.assert_close(H.value[0][1], cross)
    torch.testing.assert_close(H.value[1][0], cross.permute(1, 2, 0))
    J = pdiff.jacobian(lambda a, b: a[:, None] * b, (a, b))
    assert J.agrees is True and J.value[0].shape == (2, 3, 2) and J.value[1].shape == (2, 3, 1, 3)
    torch.testing.assert_close(J.value[0], b[0][None, :, None].expand(2, 3, 2) * torch.eye(2, dtype=f64)[:, None, :])


def test_a_backward_that_cannot_be_batched_runs_one_output_at_a_time():
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            if grad.sum().item() == float("inf"):  # .item() of a batched tensor: is_grads_batched fails
                raise AssertionError
            return grad * 2 * x

    x = torch.tensor([1.0, -2.0, 3.0], dtype=f64)
    J = pdiff.jacobian(Square.apply, x)
    assert J.agrees is True
    torch.testing.assert_close(J.value, torch.diag(2 * x))


def test_what_fn_refers_to_is_copied_not_touched():
    model = _cnn(2)
    x = torch.randn(1, 1, 8, 8, generator=_gen(16)).requires_grad_()
    loss = functools.partial(lambda m, x: torch.tanh(m(x)).sum(), model)  # through a partial
    result = pdiff.gradient(loss, x)
    assert result.agrees is True and result.method.endswith("float64")
    assert x.grad is None and all(p.grad is None and p.dtype == torch.float32 for p in model.parameters())
    method = pdiff.gradient(lambda x: model.forward(x).sum(), x.detach())  # a bound method in a closure
    assert method.agrees is True and method.method.endswith("float64")


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2 ** 16))
def test_quadratics_agree(n, seed):
    g = _gen(seed)
    A, b, x = torch.randn(n, n, generator=g, dtype=f64), torch.randn(n, generator=g, dtype=f64), \
        torch.randn(n, generator=g, dtype=f64)
    result = pdiff.gradient(lambda x: 0.5 * x @ A @ x + b @ x, x)
    assert result.agrees is True
    torch.testing.assert_close(result.reference, 0.5 * (A + A.T) @ x + b, rtol=1e-8, atol=1e-8)


# ------------------------------------------------------------------------------------------- limits, refusals

def test_check_false_and_the_evaluation_cap():
    x = torch.randn(50, generator=_gen(15), dtype=f64)
    off = pdiff.gradient(lambda x: (x ** 2).sum(), x, check=False)
    assert off.agrees is None and off.reference is None and off.note == "not checked (check=False)"
    assert off.status == "not checked" and repr(off) == "Verified(gradient (50,) float64: not checked (check=False))"
    torch.testing.assert_close(off.value, 2 * x)
    capped = pdiff.hessian(lambda x: (x ** 2).sum(), x, max_evaluations=1000)
    assert capped.agrees is None and "15,004 evaluations" in capped.note
    torch.testing.assert_close(capped.value, 2 * torch.eye(50, dtype=f64))


def test_training_mode_dropout_and_batch_norm_are_refused():
    with pytest.raises(InputError, match="Dropout .* training mode"):
        pdiff.gradient(nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.5)), torch.ones(3))
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))
    with pytest.raises(InputError, match="running statistics"):
        pdiff.gradient(lambda x: model(x).sum(), torch.ones(4, 3))
    assert model.training  # never switched
    model.eval()
    assert pdiff.gradient(lambda x: model(x).sum(), torch.ones(4, 3)).agrees is True


def test_random_fn_is_refused():
    with pytest.raises(InputError, match="not deterministic"):
        pdiff.gradient(lambda x: (x * torch.rand(3)).sum(), torch.ones(3))


def test_misuse_is_an_input_error():
    with pytest.raises(InputError, match="pdiff.jacobian"):
        pdiff.gradient(lambda x: x * 2, torch.ones(3))
    with pytest.raises(InputError, match=r"pdiff.compute\('grad'"):
        pdiff.gradient("x^2", torch.ones(1))
    with pytest.raises(InputError, match="floating"):
        pdiff.gradient(lambda x: x.sum(), torch.ones(3, dtype=torch.int64))


def test_reference_falls_back_to_the_input_dtype_when_fn_refuses_float64():
    def fn(x):
        assert x.dtype == torch.float32, "float32 only"
        return (x ** 2).sum()

    result = pdiff.gradient(fn, torch.tensor([0.5, -1.0]))
    assert result.method == "central differences, Richardson, float32"
    assert result.note.startswith("the reference ran in float32 on cpu: on float64 CPU copies fn failed (AssertionError: float32 only)")
    torch.testing.assert_close(result.reference, torch.tensor([1.0, -2.0], dtype=f64), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------------------- the API

def test_names_match_the_cli_and_the_repr_is_short():
    assert pdiff.grad is pdiff.gradient and {"gradient", "grad", "jacobian", "hessian"} <= set(pdiff.__all__)
    result = pdiff.gradient(lambda x: (x ** 2).sum(), torch.tensor([1.0, 2.0], dtype=f64))
    assert repr(result).startswith("Verified(gradient (2,) float64: agrees, max |Δ| ")
    kinked = repr(pdiff.gradient(lambda x: torch.relu(x).sum(), torch.zeros(3)))
    assert kinked.startswith("Verified(gradient (3,) float32: DISAGREES") and len(kinked) < 200
    with pytest.raises(AttributeError):
        result.value = None  # frozen


def test_docstring_examples_run():
    failed, attempted = doctest.testmod(pdiff.callables)
    assert attempted > 0 and failed == 0
