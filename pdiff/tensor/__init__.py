"""Vectors and matrices as variables: `sum((W @ x)^2)`, `x.T @ A @ x`, `logdet(X)`.

One small language (pdiff.tensor.language) read into a tree; shapes inferred and checked on it
(pdiff.tensor.shapes); the tree evaluated twice, independently (pdiff.tensor.backends): by torch on real tensors
(autograd's side) and by SymPy on element symbols W[0,0], W[0,1], ... (the exact side, never SymPy's matrix-symbol
derivatives, which are wrong for log det X and sums of traces). Indexes are 0-based, as in PyTorch.
"""
