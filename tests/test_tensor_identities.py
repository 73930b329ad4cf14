"""Matrix Cookbook identities graded by `pdiff.tensor.grading.check` (matrix calculus, random sizes and values).

Each identity is the gradient of a scalar function with respect to a vector or a matrix, in the layout pdiff uses
(∂f/∂X has the shape of X, entry [i,j] = ∂f/∂X[i,j]; the Cookbook's "denominator" layout). Sizes are named, so
`check` draws them at random per trial (distinct where it can, so an identity that holds only for square matrices
is caught). Numbers in comments are equations of The Matrix Cookbook (Petersen & Pedersen, 2012).

Wrong variants (transposed, symmetric-only, off by a factor or a sign) must be graded "incorrect", and a few
identities are confirmed independently of pdiff with torch.func.grad on hand-written torch functions (the oracle),
so a `check` that said "correct" to everything would fail here.
"""

from __future__ import annotations

import pytest
import torch

from pdiff.tensor.grading import check

# (id, expression, answer, wrt, declarations)
IDENTITIES = [
    # ---- vectors
    ("a'x (69)", "a.T @ x", "a", "x", ["a:n", "x:n"]),
    ("x'a (69)", "x.T @ a", "a", "x", ["a:n", "x:n"]),
    ("dot(a,x)", "dot(a, x)", "a", "x", ["a:n", "x:n"]),
    ("x'x", "x.T @ x", "2 x", "x", ["x:n"]),
    ("norm(x)^2", "norm(x)^2", "2*x", "x", ["x:n"]),
    ("norm(x)", "norm(x)", "x / norm(x)", "x", ["x:n"]),
    ("x'Ax (81)", "x.T @ A @ x", "(A + A.T) @ x", "x", ["x:n", "A:nxn"]),
    ("b'Ax (70)", "b.T @ A @ x", "A.T @ b", "x", ["b:m", "A:mxn", "x:n"]),
    ("x'A'Ax", "x.T @ A.T @ A @ x", "2 A.T @ A @ x", "x", ["A:mxn", "x:n"]),
    ("least squares (84)", "norm(A @ x - b)^2", "2 A.T @ (A @ x - b)", "x", ["A:mxn", "x:n", "b:m"]),
    ("(Ax+b)'C(Dx+e) (86)", "(A @ x + b).T @ C @ (D @ x + e)", "D.T @ C.T @ (A @ x + b) + A.T @ C @ (D @ x + e)",
     "x", ["A:mxn", "x:n", "b:m", "C:mxp", "D:pxn", "e:p"]),
    ("(a'x)^2", "(a.T @ x)^2", "2 dot(a, x) * a", "x", ["a:n", "x:n"]),
    ("sum(exp(x))", "sum(exp(x))", "exp(x)", "x", ["x:n"]),
    ("logsumexp", "logsumexp(x)", "softmax(x)", "x", ["x:n"]),
    ("sum(softplus)", "sum(softplus(x))", "sigmoid(x)", "x", ["x:n"]),
    ("sum(sigmoid)", "sum(sigmoid(x))", "sigmoid(x) .* (1 - sigmoid(x))", "x", ["x:n"]),
    ("softmax cross-entropy", "-sum(y .* log_softmax(z))", "softmax(z)*sum(y) - y", "z", ["y:n", "z:n"]),
    ("logistic loss", "sum(softplus(-y .* (X @ w)))", "-X.T @ (y .* sigmoid(-y .* (X @ w)))", "w",
     ["X:mxn", "w:n", "y:m"]),
    ("tanh layer, bias", "sum(tanh(W @ x + b))", "1 - tanh(W @ x + b)^2", "b", ["W:mxn", "x:n", "b:m"]),
    ("tanh layer, input", "sum(tanh(W @ x + b))", "W.T @ (1 - tanh(W @ x + b)^2)", "x", ["W:mxn", "x:n", "b:m"]),
    # ---- matrices
    ("a'Xb (70)", "a.T @ X @ b", "a @ b.T", "X", ["a:mx1", "X:mxn", "b:nx1"]),
    ("a'X'b (71)", "a.T @ X.T @ b", "b @ a.T", "X", ["a:nx1", "X:mxn", "b:mx1"]),
    ("sum(A.*X)", "sum(A .* X)", "A", "X", ["A:mxn", "X:mxn"]),
    ("norm(X)^2 (Frobenius)", "norm(X)^2", "2 X", "X", ["X:mxn"]),
    ("tr(AX) (100)", "tr(A @ X)", "A.T", "X", ["A:nxm", "X:mxn"]),
    ("tr(XA) (100)", "tr(X @ A)", "A.T", "X", ["X:mxn", "A:nxm"]),
    ("tr(AXB) (101)", "tr(A @ X @ B)", "A.T @ B.T", "X", ["A:pxm", "X:mxn", "B:nxp"]),
    ("tr(AX'B) (102)", "tr(A @ X.T @ B)", "B @ A", "X", ["A:pxn", "X:mxn", "B:mxp"]),
    ("tr(X'A) (103)", "tr(X.T @ A)", "A", "X", ["X:mxn", "A:mxn"]),
    ("tr(XX) (106)", "tr(X @ X)", "2 X.T", "X", ["X:nxn"]),
    ("tr(X'X) (103)", "tr(X.T @ X)", "2 X", "X", ["X:mxn"]),
    ("tr(XAX') (107)", "tr(X @ A @ X.T)", "X @ (A + A.T)", "X", ["X:mxn", "A:nxn"]),
    ("tr(X'AX) (108)", "tr(X.T @ A @ X)", "(A + A.T) @ X", "X", ["X:mxn", "A:mxm"]),
    ("tr(AXBX) (110)", "tr(A @ X @ B @ X)", "A.T @ X.T @ B.T + B.T @ X.T @ A.T", "X", ["A:nxn", "X:nxn", "B:nxn"]),
    ("tr(X'BXC) (117)", "tr(X.T @ B @ X @ C)", "B @ X @ C + B.T @ X @ C.T", "X", ["X:mxn", "B:mxm", "C:nxn"]),
    ("det(X) (49)", "det(X)", "det(X) * inv(X).T", "X", ["X:nxn"]),
    ("det(AXB) (51)", "det(A @ X @ B)", "det(A @ X @ B) * inv(X).T", "X", ["A:nxn", "X:nxn", "B:nxn"]),
    ("logdet(X) (57)", "logdet(X)", "inv(X).T", "X", ["X:nxn"]),
    ("tr(inv(X)A) (124)", "tr(inv(X) @ A)", "-(inv(X) @ A @ inv(X)).T", "X", ["X:nxn", "A:nxn"]),
    ("sum((Wx).^2)", "sum((W @ x) .^ 2)", "2 (W @ x) @ x.T", "W", ["W:mxn", "x:nx1"]),
    ("MLP first layer", "sum(W2 @ tanh(W1 @ x + b1))", "(W2.T .* (1 - tanh(W1 @ x + b1) .^ 2)) @ x.T", "W1",
     ["W2:1xh", "W1:hxn", "x:nx1", "b1:hx1"]),
]

# Seeds whose random draws avoid (near-)singular integer matrices: see test_singular_draw_is_not_a_wrong_answer.
SEEDS = {"det(X) (49)": 2, "det(AXB) (51)": 2, "logdet(X) (57)": 3, "tr(inv(X)A) (124)": 2}


@pytest.mark.parametrize("expression, answer, wrt, var, seed",
                         [pytest.param(f, g, w, v, SEEDS.get(name, k), id=name)
                          for k, (name, f, g, w, v) in enumerate(IDENTITIES)])
def test_identity_is_correct(expression, answer, wrt, var, seed):
    report = check(expression, answer, wrt=wrt, var=var, seed=seed)
    assert report.verdict.value == "correct", report.reason
    assert report.checked_points >= 1


# (id, expression, wrong answer, wrt, declarations, words the reason must contain (any of them))
WRONG = [
    ("x'Ax: symmetric only", "x.T @ A @ x", "2 A @ x", "x", ["x:n", "A:nxn"], ["symmetric"]),
    ("x'A'Ax: symmetric only", "x.T @ A.T @ A @ x", "2 A @ A @ x", "x", ["A:nxn", "x:n"], ["differs"]),
    ("tr(AXB): layout", "tr(A @ X @ B)", "B @ A", "X", ["A:pxm", "X:mxn", "B:nxp"], ["layout", "transposed"]),
    ("tr(XA) square: transposed", "tr(X @ A)", "A", "X", ["X:nxn", "A:nxn"], ["layout", "transposed"]),
    ("tr(AX) square: transposed", "tr(A @ X)", "A", "X", ["A:nxn", "X:nxn"], ["layout", "transposed"]),
    ("logdet(X): transposed", "logdet(X)", "inv(X)", "X", ["X:nxn"], ["layout", "transposed"]),
    ("tr(XX): transposed", "tr(X @ X)", "2 X", "X", ["X:nxn"], ["layout", "transposed"]),
    ("a'Xb: layout", "a.T @ X @ b", "b @ a.T", "X", ["a:mx1", "X:mxn", "b:nx1"], ["layout", "transposed"]),
    ("x'x: factor", "x.T @ x", "x", "x", ["x:n"], ["differs"]),
    ("tr(X'X): factor", "tr(X.T @ X)", "X", "X", ["X:mxn"], ["differs"]),
    ("least squares: sign", "norm(A @ x - b)^2", "2 A.T @ (b - A @ x)", "x", ["A:mxn", "x:n", "b:m"], ["differs"]),
    ("tr(inv(X)A): sign", "tr(inv(X) @ A)", "(inv(X) @ A @ inv(X)).T", "X", ["X:nxn", "A:nxn"], ["differs"]),
    ("det(X): missing det", "det(X)", "inv(X).T", "X", ["X:nxn"], ["differs"]),
    ("logsumexp: exp", "logsumexp(x)", "exp(x)", "x", ["x:n"], ["differs"]),
    ("sum(sigmoid): sigmoid", "sum(sigmoid(x))", "sigmoid(x)", "x", ["x:n"], ["differs"]),
    ("cross-entropy: sum(y)=1 assumed", "-sum(y .* log_softmax(z))", "softmax(z) - y", "z", ["y:n", "z:n"],
     ["differs"]),
    ("sum((Wx).^2): factor", "sum((W @ x) .^ 2)", "(W @ x) @ x.T", "W", ["W:mxn", "x:nx1"], ["differs"]),
    ("norm(x): not squared", "norm(x)", "2 x", "x", ["x:n"], ["differs"]),
]


@pytest.mark.parametrize("expression, answer, wrt, var, words",
                         [pytest.param(f, g, w, v, words, id=name) for name, f, g, w, v, words in WRONG])
def test_wrong_variant_is_incorrect(expression, answer, wrt, var, words):
    report = check(expression, answer, wrt=wrt, var=var, seed=1)
    assert report.verdict.value == "incorrect", report.reason
    assert any(word in report.reason for word in words), report.reason


# ---- the oracle: torch.func.grad on hand-written torch functions, no pdiff involved

def _randn(*shape, generator):
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


def _oracle_values(generator):
    n, m = 4, 3
    A = _randn(m, n, generator=generator)
    S = _randn(n, n, generator=generator)
    X = _randn(n, n, generator=generator) + 3 * torch.eye(n, dtype=torch.float64)  # well conditioned, det > 0
    return {"A": A, "S": S, "X": X, "x": _randn(n, generator=generator), "b": _randn(m, generator=generator),
            "y": _randn(n, generator=generator).abs() + 0.1, "z": _randn(n, generator=generator)}


# (id, pdiff expression, pdiff answer, wrt, pdiff declarations, torch f(v, values), torch answer(values), correct?)
ORACLE = [
    ("least squares", "norm(A @ x - b)^2", "2 A.T @ (A @ x - b)", "x", ["A:mxn", "x:n", "b:m"],
     lambda v, e: ((e["A"] @ v - e["b"]) ** 2).sum(), lambda e: 2 * e["A"].T @ (e["A"] @ e["x"] - e["b"]), True),
    ("least squares, factor 1", "norm(A @ x - b)^2", "A.T @ (A @ x - b)", "x", ["A:mxn", "x:n", "b:m"],
     lambda v, e: ((e["A"] @ v - e["b"]) ** 2).sum(), lambda e: e["A"].T @ (e["A"] @ e["x"] - e["b"]), False),
    ("least squares, sign", "norm(A @ x - b)^2", "2 A.T @ (b - A @ x)", "x", ["A:mxn", "x:n", "b:m"],
     lambda v, e: ((e["A"] @ v - e["b"]) ** 2).sum(), lambda e: 2 * e["A"].T @ (e["b"] - e["A"] @ e["x"]), False),
    ("x'Sx", "x.T @ S @ x", "(S + S.T) @ x", "x", ["x:n", "S:nxn"],
     lambda v, e: v @ e["S"] @ v, lambda e: (e["S"] + e["S"].T) @ e["x"], True),
    ("x'Sx, factor 1/2", "x.T @ S @ x", "(S + S.T) @ x / 2", "x", ["x:n", "S:nxn"],
     lambda v, e: v @ e["S"] @ v, lambda e: (e["S"] + e["S"].T) @ e["x"] / 2, False),
    ("logdet", "logdet(X)", "inv(X).T", "X", ["X:nxn"],
     lambda v, e: torch.logdet(v), lambda e: torch.linalg.inv(e["X"]).T, True),
    ("logdet, sign", "logdet(X)", "-inv(X).T", "X", ["X:nxn"],
     lambda v, e: torch.logdet(v), lambda e: -torch.linalg.inv(e["X"]).T, False),
    ("tr(inv(X)S)", "tr(inv(X) @ S)", "-(inv(X) @ S @ inv(X)).T", "X", ["X:nxn", "S:nxn"],
     lambda v, e: torch.trace(torch.linalg.inv(v) @ e["S"]),
     lambda e: -(torch.linalg.inv(e["X"]) @ e["S"] @ torch.linalg.inv(e["X"])).T, True),
    ("cross-entropy", "-sum(y .* log_softmax(z))", "softmax(z)*sum(y) - y", "z", ["y:n", "z:n"],
     lambda v, e: -(e["y"] * torch.log_softmax(v, -1)).sum(), lambda e: torch.softmax(e["z"], -1) * e["y"].sum() - e["y"],
     True),
    ("cross-entropy, factor", "-sum(y .* log_softmax(z))", "2 (softmax(z)*sum(y) - y)", "z", ["y:n", "z:n"],
     lambda v, e: -(e["y"] * torch.log_softmax(v, -1)).sum(),
     lambda e: 2 * (torch.softmax(e["z"], -1) * e["y"].sum() - e["y"]), False),
    ("norm(x)", "norm(x)", "x / norm(x)", "x", ["x:n"],
     lambda v, e: torch.linalg.vector_norm(v), lambda e: e["x"] / torch.linalg.vector_norm(e["x"]), True),
    ("norm(x), factor 2", "norm(x)", "2 x / norm(x)", "x", ["x:n"],
     lambda v, e: torch.linalg.vector_norm(v), lambda e: 2 * e["x"] / torch.linalg.vector_norm(e["x"]), False),
]


@pytest.mark.parametrize("expression, answer, wrt, var, f, gradient, correct",
                         [pytest.param(*row[1:], id=row[0]) for row in ORACLE])
def test_oracle_agrees_with_check(expression, answer, wrt, var, f, gradient, correct):
    generator = torch.Generator().manual_seed(1234)
    for _ in range(3):  # three independent draws, fixed sizes (m=3, n=4)
        e = _oracle_values(generator)
        expected = torch.func.grad(lambda v, e=e: f(v, e))(e[wrt])
        agrees = torch.allclose(gradient(e), expected, rtol=1e-9, atol=1e-12)
        assert agrees == correct, f"the oracle says {agrees} for {answer!r}: the test's own premise is wrong"
    report = check(expression, answer, wrt=wrt, var=var, seed=7)
    assert report.verdict.value == ("correct" if correct else "incorrect"), report.reason


def test_check_is_not_a_constant():
    """The same expression, a right and a wrong answer: both verdicts occur (a check that always said "correct" or
    always "incorrect" fails here)."""
    verdicts = {check("tr(A @ X @ B)", answer, wrt="X", var=["A:pxm", "X:mxn", "B:nxp"], seed=5).verdict.value
                for answer in ("A.T @ B.T", "A.T @ B.T * 1.001", "-A.T @ B.T")}
    assert verdicts == {"correct", "incorrect"}
    assert check("tr(A @ X @ B)", "A.T @ B.T * 1.001", wrt="X", var=["A:pxm", "X:mxn", "B:nxp"],
                 seed=5).verdict.value == "incorrect"


# seeds that drew singular matrices before grading redrew ill-conditioned ones (a correct answer was graded
# incorrect, or inv(X) raised)
@pytest.mark.parametrize("expression, answer, seed", [
    pytest.param("det(X)", "det(X) * inv(X).T", 0, id="det-seed0-LinAlgError"),
    pytest.param("det(X)", "det(X) * inv(X).T", 5, id="det-seed5-incorrect"),
    pytest.param("logdet(X)", "inv(X).T", 0, id="logdet-seed0-LinAlgError"),
    pytest.param("logdet(X)", "inv(X).T", 1, id="logdet-seed1-incorrect"),
    pytest.param("tr(inv(X) @ A)", "-(inv(X) @ A @ inv(X)).T", 0, id="tr-inv-seed0-LinAlgError"),
])
def test_singular_draw_is_not_a_wrong_answer(expression, answer, seed):
    report = check(expression, answer, wrt="X", var=["X:nxn", "A:nxn"][:1 + ("A" in expression)], seed=seed)
    assert report.verdict.value == "correct", report.reason
