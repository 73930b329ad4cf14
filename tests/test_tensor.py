"""Vectors and matrices as variables: the issue's commands, and both sides against independent oracles
(torch.func on hand-written torch functions, SymPy matrices built element by element, closed forms by numpy)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import sympy as sp
import torch
from typer.testing import CliRunner

import pdiff
from pdiff.cli import app
from pdiff.errors import InputError, ParseError
from pdiff.tensor import compute, language

runner = CliRunner()
W = "W=[[1,2,3],[4,5,6]]"
X3 = "x=[1,0,-1]"


def run(*args):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def as_json(*args):
    code, out, err = run(*args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


# ---- the commands, with worked values


def test_grad_of_a_sum_of_a_product_is_shaped_like_x():
    doc = as_json("grad", "a*sum(x @ W)", "--wrt", "x", "--at", "a=2,x=[[1,2]],W=[[3,4],[5,6]]")
    result = doc["results"][0]
    # a * Σ_j W[i,j]: 2*(3+4), 2*(5+6)
    assert result["autograd"] == [[14.0, 22.0]]
    assert result["exact"] == [["14", "22"]]
    assert result["status"] == "ok"


def test_mixed_partial_by_elements_in_both_notations():
    for partial in (["--wrt", "W[0,0],x[1]"], ["d2f/dW[0,0]dx[1]"]):
        code, out, _ = run("diff", "sum((W @ x)^2)", *partial, "--at", f"{W},{X3}", "--format", "plain")
        # f = Σ_i (Σ_j W[i,j] x[j])²: ∂²f/∂W00∂x1 = 2 x0 W01 + 2 (Wx)_0·0 = 2·1·2 = 4
        assert (code, out.strip()) == (0, "4.0")


def test_gradient_by_a_matrix_is_two_wx_xt():
    doc = as_json("grad", "sum((W @ x)^2)", "--wrt", "W", "--at", f"{W},{X3}")
    w, x = np.array([[1, 2, 3], [4, 5, 6]], float), np.array([1, 0, -1], float)
    expected = 2 * np.outer(w @ x, x)
    assert np.array_equal(np.array(doc["results"][0]["autograd"]), expected)
    assert expected.tolist() == [[-4, 0, 4], [-4, 0, 4]]


def test_mean_of_sigmoid():
    doc = as_json("grad", "mean(sigmoid(x))", "--wrt", "x", "--at", "x=[0,1,-2]")
    s = 1 / (1 + np.exp(-np.array([0.0, 1.0, -2.0])))
    np.testing.assert_allclose(doc["results"][0]["autograd"], s * (1 - s) / 3, rtol=1e-14)
    assert doc["results"][0]["exact"][0] == "1/12"


def test_jacobian_is_out_by_in_with_its_index_rule():
    at = "W=[[1,2],[3,4],[0,1]],x=[0.5,-0.25],b=[0,1,2]"
    doc = as_json("jacobian", "tanh(W @ x + b)", "--wrt", "x", "--at", at)
    w, x, b = np.array([[1, 2], [3, 4], [0, 1]], float), np.array([0.5, -0.25]), np.array([0.0, 1, 2])
    expected = (1 - np.tanh(w @ x + b) ** 2)[:, None] * w
    np.testing.assert_allclose(doc["results"][0]["autograd"], expected, rtol=1e-13)
    oracle = torch.func.jacrev(lambda v: torch.tanh(torch.tensor(w) @ v + torch.tensor(b)))(torch.tensor(x))
    np.testing.assert_allclose(doc["results"][0]["autograd"], oracle.numpy(), rtol=1e-13)
    assert "[i,j] = ∂y[i]/∂x[j]" in doc["index_rule"] and "from 0" in doc["index_rule"]


def test_hessian_of_a_quadratic_form_is_a_plus_at():
    doc = as_json("hessian", "x.T @ A @ x", "--wrt", "x", "--at", "A=[[1,2],[3,4]],x=[1,-1]")
    assert doc["results"][0]["autograd"] == [[2.0, 5.0], [5.0, 8.0]]
    assert doc["results"][0]["exact"] == [["2", "5"], ["5", "8"]]


def test_gradient_of_logdet_is_the_inverse_transposed():
    doc = as_json("grad", "logdet(X)", "--wrt", "X", "--at", "X=[[2,1],[1,3]]")
    assert doc["results"][0]["exact"] == [["3/5", "-1/5"], ["-1/5", "2/5"]]
    np.testing.assert_allclose(doc["results"][0]["autograd"], np.linalg.inv([[2, 1], [1, 3]]).T, rtol=1e-14)
    # non-symmetric, where SymPy's matrix-symbol derivative is known to go wrong: X^-T, not X^-1
    doc = as_json("grad", "logdet(X)", "--wrt", "X", "--at", "X=[[2,1],[0,3]]")
    assert doc["results"][0]["exact"] == [["1/2", "0"], ["-1/6", "1/3"]]


def test_check_quadratic_form_at_random_sizes():
    code, out, err = run("check", "x.T @ A @ x", "--wrt", "x", "--answer", "(A + A.T) @ x", "--var", "x:n",
                         "--var", "A:nxn")
    assert (code, out.split()[0]) == (0, "correct")
    code, out, err = run("check", "x.T @ A @ x", "--wrt", "x", "--answer", "2 A @ x", "--var", "x:n",
                         "--var", "A:nxn")
    assert (code, out.split()[0]) == (1, "incorrect")
    assert "only for symmetric A" in err


def test_check_names_a_layout_mistake():
    code, out, err = run("check", "tr(A @ X @ B)", "--wrt", "X", "--answer", "B @ A")
    assert (code, out.split()[0]) == (1, "incorrect")
    assert "layout mistake" in err and "transposed" in err
    code, out, _ = run("check", "tr(A @ X @ B)", "--wrt", "X", "--answer", "A.T @ B.T")
    assert (code, out.split()[0]) == (0, "correct")


# ---- both sides against oracles on random values

CASES = [  # expression, wrt, shapes, the same function by hand in torch
    ("norm(A @ x - b)^2", "x", {"A": (3, 2), "x": (2,), "b": (3,)},
     lambda v, A, b: torch.sum((A @ v - b) ** 2)),
    ("sum(exp(W @ x) .* c)", "W", {"W": (2, 3), "x": (3,), "c": (2,)},
     lambda v, x, c: torch.sum(torch.exp(v @ x) * c)),
    ("logsumexp(x) - x[1]", "x", {"x": (4,)}, lambda v: torch.logsumexp(v, 0) - v[1]),
    ("-sum(y .* log_softmax(z))", "z", {"y": (3,), "z": (3,)},
     lambda v, y: -torch.sum(y * torch.log_softmax(v, -1))),
    ("sum(softplus(-y .* (X @ w)))", "w", {"y": (4,), "X": (4, 2), "w": (2,)},
     lambda v, y, X: torch.sum(torch.nn.functional.softplus(-y * (X @ v)))),
    ("tr(A @ X @ B) + det(X)", "X", {"A": (2, 3), "X": (3, 3), "B": (3, 2)},
     lambda v, A, B: torch.trace(A @ v @ B) + torch.linalg.det(v)),
    ("sum(inv(X) ./ 2) + mean(X .^ 3)", "X", {"X": (2, 2)},
     lambda v: torch.sum(torch.linalg.inv(v) / 2) + torch.mean(v**3)),
    ("x.T @ A @ x / (1 + dot(x, x))", "x", {"A": (3, 3), "x": (3,)},
     lambda v, A: v @ A @ v / (1 + torch.dot(v, v))),
    ("sum(tanh(W2 @ sigmoid(W1 @ x + b1)))", "W1", {"W1": (3, 2), "W2": (2, 3), "x": (2,), "b1": (3,)},
     lambda v, W2, x, b1: torch.sum(torch.tanh(W2 @ torch.sigmoid(v @ x + b1)))),
    ("prod(cos(x)) + norm(x)", "x", {"x": (3,)}, lambda v: torch.prod(torch.cos(v)) + torch.linalg.norm(v)),
    ("sum(diag(A) .* x) + tr(diag(x))", "x", {"A": (3, 3), "x": (3,)},
     lambda v, A: torch.sum(torch.diag(A) * v) + torch.trace(torch.diag(v))),
]


def _matrix_text(values: np.ndarray) -> str:
    return json.dumps(values.tolist())


@pytest.mark.parametrize("expression, wrt, shapes, by_hand", CASES, ids=[c[0] for c in CASES])
def test_gradient_against_torch_func_and_sympy(expression, wrt, shapes, by_hand):
    rng = np.random.default_rng(7)
    values = {name: np.round(rng.uniform(0.2, 1.5, shape), 2) for name, shape in shapes.items()}
    if "X" in values and values["X"].ndim == 2 and values["X"].shape[0] == values["X"].shape[1]:
        values["X"] = values["X"] + 2 * np.eye(values["X"].shape[0])  # well away from singular
    point = ",".join(f"{n}={_matrix_text(v)}" for n, v in values.items())
    report = pdiff.compute("grad", expression, wrt=wrt, at=[point], timeout=60)
    (result,) = report.results
    assert result.status.value == "ok", result.note
    tensors = {n: torch.tensor(v) for n, v in values.items()}
    others = [tensors[n] for n in shapes if n != wrt]
    oracle = torch.func.grad(lambda v: by_hand(v, *others))(tensors[wrt]).numpy()
    np.testing.assert_allclose(np.array(result.autograd, dtype=float), oracle, rtol=1e-11, atol=1e-12)
    # the exact side, against SymPy matrices of symbols differentiated element by element
    np.testing.assert_allclose(np.array(result.value, dtype=float), oracle, rtol=1e-11, atol=1e-12)


def test_exact_side_is_sympy_element_by_element():
    report = pdiff.compute("grad", "x.T @ A @ x + logdet(A)", wrt="A", var=["A:2x2", "x:2"])
    a = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"A_{i}_{j}", real=True))
    x = sp.Matrix(2, 1, lambda i, _: sp.Symbol(f"x_{i}", real=True))
    f = (x.T * a * x)[0] + sp.log(a.det())
    names = {str(s): s for s in (*a, *x)}
    for i in range(2):
        for j in range(2):
            # A[0,1] → A_0_1 for SymPy's parser (pdiff's own output, not user input)
            text = re.sub(r"([A-Za-z]\w*)\[(\d+)(?:,(\d+))?\]",
                          lambda m: "_".join(g for g in m.groups() if g is not None), report.derivative[i][j])
            assert sp.simplify(sp.sympify(text, locals=names) - sp.diff(f, a[i, j])) == 0


def test_python_api_accepts_arrays_and_the_cli_names():
    report = pdiff.compute("grad", "sum(x .^ 2)", at=[{"x": [1, 2, 3]}])
    assert report.results[0].autograd == [2.0, 4.0, 6.0]
    report = pdiff.compute("gradient", "sum(x .^ 2)", at=[{"x": np.array([1.5, -2.0])}])
    assert report.results[0].autograd == [3.0, -4.0]


# ---- reading and refusing

@pytest.mark.parametrize("text, shapes, message", [
    ("sum(W @ x)", {"W": (2, 3), "x": (2,)}, "@ of 2x3 and 2: inner sizes 3 and 2 differ"),
    ("sum(x * y)", {"x": (2,), "y": (2,)}, "multiplies 2 by 2 with '*'"),
    ("sum(A^2)", {"A": (2, 2)}, "'^' of a 2x2 matrix reads two ways"),
    ("sum(x + A)", {"x": (2,), "A": (2, 2)}, "adds 2 and 2x2"),
    ("det(W)", {"W": (2, 3)}, "det needs a square matrix, got 2x3"),
    ("x[2]", {"x": (2,)}, "index 2 is out of range for size 2"),
    ("sum(x / y)", {"x": (2,), "y": (2,)}, "write ./ for element-wise division"),
])
def test_shape_errors_name_both_shapes(text, shapes, message):
    from pdiff.tensor.shapes import ShapeError, infer

    with pytest.raises(ShapeError, match=None) as caught:
        infer(language.read(text, set(shapes)), shapes)
    assert message in str(caught.value)


@pytest.mark.parametrize("text", ["x.T @ A @ x", "2 A @ x", "(A + A.T) @ x", "a*sum(x @ W)", "sum((W @ x)^2)",
                                  "-x[1]^2", "2^-x[0]", "x ./ (1 + x)", "sum(x .^ 2)", "W[0,1]*x[1]",
                                  "tr(inv(X) @ A)", "max(x) - min(x)", "softmax(x)[0] * 3"])
def test_reading_round_trips(text):
    program = language.read(text, {"W", "x", "A", "X"})
    again = language.read(language.to_text(program), {"W", "x", "A", "X"})
    assert language.to_text(again) == language.to_text(program)
    assert again.root == language.read(language.to_text(program), {"W", "x", "A", "X"}).root


def test_precedence_matches_numpy():
    # @ binds like * (left to right); .T before everything; `2 A @ x` is (2A) @ x
    a = np.array([[1.0, 2], [3, 4]])
    report = pdiff.compute("jacobian", "2 A @ x - A.T @ x", wrt="x", at=[f"A={_matrix_text(a)},x=[1,-1]"])
    np.testing.assert_allclose(report.results[0].autograd, 2 * a - a.T)


def test_bad_values_are_one_line_errors():
    for at, message in [("x=[[1,2],[3]]", "rows have different lengths"), ("x=[1,,2]", "empty element"),
                        ("x=[[[1]]]", "only vectors and matrices"), ("x=[1,y]", "expected a number")]:
        code, _, err = run("grad", "sum(x)", "--at", at)
        assert code == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1


def test_unknown_sizes_and_refusals():
    with pytest.raises(InputError, match="size n of x is not known"):
        compute.compute("gradient", "sum(x)", var=["x:n"])
    with pytest.raises(InputError, match="needs a scalar function"):
        compute.compute("gradient", "W @ x", wrt="x", at=["W=[[1,2],[3,4]],x=[1,2]"])
    with pytest.raises(ParseError):
        language.read("__import__('os')")
    assert language.is_tensor_question("x.T @ A @ x")
    assert not language.is_tensor_question("x^2 y + [x]")
    assert not language.is_tensor_question("d/dx [x^2 + 1]")


def test_kink_of_relu_is_flagged():
    code, out, err = run("grad", "sum(relu(x))", "--at", "x=[0,2]", "--format", "plain")
    assert code == 1 and "not differentiable" in err
    assert out.split() == ["nan", "1.0"]


def test_exact_side_refused_beyond_its_bound_while_autograd_answers():
    big = np.eye(8) * 2
    report = pdiff.compute("grad", "logdet(X)", wrt="X", at=[f"X={_matrix_text(big)}"])
    np.testing.assert_allclose(report.results[0].autograd, np.linalg.inv(big).T)
    assert report.results[0].value is None and any("exact side is skipped" in n for n in report.notes)
    assert report.exit_code == 0


# ---- many points: element columns and .npz arrays of points × a vector or matrix

def _points_csv(tmp_path, xs, As):
    path = tmp_path / "points.csv"
    header = "x[0],x[1]," + ",".join(f'"A[{i},{j}]"' for i in range(2) for j in range(2))
    rows = [",".join(repr(float(v)) for v in [*x, *a.reshape(-1)]) for x, a in zip(xs, As)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_points_columns_and_npz_arrays_give_a_plus_at_x(tmp_path):
    rng = np.random.default_rng(3)
    xs, As = np.round(rng.normal(size=(5, 2)), 3), np.round(rng.normal(size=(5, 2, 2)), 3)
    expected = np.einsum("nij,nj->ni", As + As.transpose(0, 2, 1), xs)
    np.savez(tmp_path / "points.npz", x=xs, A=As)
    for path in (_points_csv(tmp_path, xs, As), tmp_path / "points.npz"):
        code, out, err = run("grad", "x.T @ A @ x", "--wrt", "x", "--points", str(path), "--format", "csv")
        assert code == 0, err
        rows = list(__import__("csv").DictReader(out.splitlines()))
        got = np.array([[float(r["df/dx[0]"]), float(r["df/dx[1]"])] for r in rows])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        assert all(r["status"] == "ok" for r in rows)


def test_points_diff_by_elements(tmp_path):
    xs, As = np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]])
    code, out, _ = run("diff", "x.T @ A @ x", "d2f/dA[0,1]dx[1]", "--points", str(_points_csv(tmp_path, xs, As)))
    # ∂/∂A[0,1] (∂f/∂x[1]) = ∂/∂A[0,1] ((A + Aᵀ) x)[1] = x[0]
    assert (code, out.split()) == (0, ["1.0", "0.5"])


# ---- closed forms: shown only when they agree with autograd; checked here against torch.func

CLOSED = [  # expression, wrt, shapes, the form expected
    ("x.T @ A @ x", "x", {"x": (3,), "A": (3, 3)}, "(A + A.T) @ x"),
    ("sum((W @ x)^2)", "W", {"W": (2, 3), "x": (3,)}, "outer(2*(W @ x), x)"),
    ("norm(A @ x - b)^2", "x", {"A": (3, 2), "x": (2,), "b": (3,)}, "2*(A.T @ (A @ x - b))"),
    ("logdet(X)", "X", {"X": (2, 2)}, "inv(X).T"),
    ("tr(A @ X @ B)", "X", {"A": (2, 3), "X": (3, 4), "B": (4, 2)}, "A.T @ B.T"),
    ("tr(X.T @ A @ X)", "X", {"X": (3, 2), "A": (3, 3)}, "(A + A.T) @ X"),
    ("det(X)", "X", {"X": (3, 3)}, "det(X)*inv(X).T"),
    ("logsumexp(x)", "x", {"x": (4,)}, "softmax(x)"),
    ("tr(inv(X) @ A)", "X", {"X": (2, 2), "A": (2, 2)}, None),
    ("sum(tanh(W @ x + b))", "b", {"W": (2, 3), "x": (3,), "b": (2,)}, "1 - tanh(W @ x + b).^2"),
]


@pytest.mark.parametrize("expression, wrt, shapes, form", CLOSED, ids=[c[0] for c in CLOSED])
def test_closed_forms_agree_with_torch_func(expression, wrt, shapes, form):
    from pdiff.tensor import closed_form
    from pdiff.tensor.backends import TorchOps, evaluate
    from pdiff.tensor.shapes import infer

    program = language.read(expression, set(shapes))
    text = closed_form.verified_form(expression, program, infer(program, shapes), wrt, shapes)
    assert text is not None
    if form is not None:
        assert text == form
    rng = torch.Generator().manual_seed(5)
    values = {n: torch.randn(s, generator=rng, dtype=torch.float64)
              + (3 * torch.eye(s[0]) if len(s) == 2 and s[0] == s[1] else 0) for n, s in shapes.items()}
    ops = TorchOps(torch.float64, torch.device("cpu"))
    oracle = torch.func.grad(lambda v: evaluate(program, {**values, wrt: v}, ops))(values[wrt])
    got = evaluate(language.read(text, set(shapes)), values, ops)
    torch.testing.assert_close(got, oracle, rtol=1e-10, atol=1e-12)


def test_no_closed_form_is_shown_where_it_needs_ones():
    report = pdiff.compute("grad", "sum(x)", at=["x=[1,2]"])
    assert report.closed_form == "" and report.results[0].autograd == [1.0, 1.0]
