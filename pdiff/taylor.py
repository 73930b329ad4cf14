"""Taylor mode: derivatives of any order by propagating truncated Taylor series through a lowered program.

Nested reverse mode (pdiff.autodiff) builds a graph per order, so its cost grows about 4x per order: d12f/dx12 of
exp(sin x)/(1+x^2) took 27 s. Here each slot of the program holds the normalised coefficients c_k = f⁽ᵏ⁾(a)/k!
of its value along the point's variables, and each operation maps the series of its arguments to the series of
its result by a recurrence (Griewank & Walther, *Evaluating Derivatives*, ch. 13; TaylorSeries.jl; JAX's jet):
O(n²) per operation for order n, exact up to rounding. The factorials are applied, exactly, only at the output.

Several variables are nested (a series in x whose coefficients are series in y, each truncated at its own order,
a "box"): a coefficient array of shape (points, n_x + 1, n_y + 1, ...). A product is a convolution in every
variable; a function of a series recurs in the outer variable with the rest as coefficients (their products
being convolutions again), so d10f/dx5dy5 is exact with 36 coefficients.

The same rules run on two arithmetics: torch tensors in float64 for the numeric side (`partials_at`, the same
inputs and outputs as autodiff.partials_at), and NumPy object arrays of mpmath numbers at 60 digits for the exact
side at high orders (`exact_partial`, walking the SymPy expression; no torch there).

Each variable's series is scaled by a power of two s (the seed is a + s·t): coefficients c_k s^k then stay
within float64's range at orders in the hundreds (1/200! underflows, 200! overflows), and because s is a power of
two the scaled arithmetic is the unscaled one bit for bit. Kinks follow lower.py's torch functions, as autograd
does: |u| is u·sign(u(a)), sign and Heaviside are constants, Min/Max take the argument that is smaller (larger)
at the point and the mean of tied ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from fractions import Fraction

import sympy as sp

CROSSOVER = 4  # auto engine: Taylor mode above this order (measured: scripts/bench_taylor.py, BENCHMARKS.md)
MAX_ORDER = 400  # in one variable (pdiff.notation's limit); time and memory grow as the square of the order
MAX_COEFFICIENTS = 40_000  # of one box, Π (n_i + 1): d200f/dx100dy100 is 10,201; products cost its square / 4
MAX_ELEMENTS = 1 << 22  # a block's largest temporary (points × pairs of coefficients): 32 MiB in float64
ENGINES = ("auto", "reverse", "taylor")


class SeriesError(Exception):
    """The series cannot be propagated (an operation without a rule here)."""


# ------------------------------------------------------------------------------------------- arithmetics


_TORCH_CACHE: dict = {}  # (dtype, device) → index tensors and 0/1 matrices, reused across calls


class _TorchOps:
    """Series arithmetic on torch tensors: batch dimension first, then one dimension per variable."""

    def __init__(self, dtype, device):
        import torch

        self.torch, self.dtype, self.device = torch, dtype, device
        self._index = _TORCH_CACHE.setdefault((dtype, device), {})
        erf = torch.special.erf
        self.fn = {"exp": torch.exp, "log": torch.log, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
                   "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh, "asin": torch.asin,
                   "acos": torch.acos, "atan": torch.atan, "asinh": torch.asinh, "acosh": torch.acosh,
                   "atanh": torch.atanh, "sqrt": torch.sqrt, "sign": torch.sign, "erf": erf}
    def two_over_sqrt_pi(self):
        return 2 / math.sqrt(math.pi)

    def number(self, value):
        return float(value)

    def index(self, values: Sequence[int]):
        key = tuple(values)
        if key not in self._index:
            self._index[key] = self.torch.tensor(key, dtype=self.torch.long, device=self.device)
        return self._index[key]

    def mul(self, inner, a, b, m: int):
        """The truncated product along axis -m as sliding windows (unfold, a view) of b padded with zeros, times
        a reversed: every pair (a_i, b_j) with i + j = k at once, the inner products by `inner` (m - 1 variables)
        on the broadcast windows. Twice the multiplications of the pairs alone (the padding), but no gather:
        index_select along a middle dimension is several times slower on CPU."""
        F = self.torch.nn.functional
        d = a.shape[-m]
        padded = F.pad(b, (0, 0) * (m - 1) + (d - 1, 0))
        windows = padded.unfold(padded.dim() - m, d, 1)  # (..., k, r..., i)
        reversed_a = a.flip(-m)
        if m == 1:
            return (windows @ reversed_a.unsqueeze(-1)).squeeze(-1)
        windows = windows.movedim(-1, -m)  # (..., k, i, r...)
        return inner(reversed_a.unsqueeze(-m - 1), windows, m - 1).sum(-m)

    def _one_hot(self, rows: int, positions, dtype):
        """(rows, len(positions)) with a 1 at (positions[j], j): x @ it takes, it.T sums by group."""
        key = (rows, tuple(positions), dtype)
        if key not in self._index:
            matrix = self.torch.zeros(rows, len(positions), dtype=dtype, device=self.device)
            matrix[self.index(positions), self.torch.arange(len(positions), device=self.device)] = 1
            self._index[key] = matrix
        return self._index[key]

    # gathers and group sums as matrix products: index_select along a middle dimension of many points is ~10x
    # slower on CPU than a BLAS product with a 0/1 matrix
    def take(self, a, positions, axis):
        selection = self._one_hot(a.shape[axis], positions, a.dtype)
        return (a.movedim(axis, -1) @ selection).movedim(-1, axis)

    def segment_sum(self, values, groups, size, axis):
        selection = self._one_hot(size, groups, values.dtype)
        return (values.movedim(axis, -1) @ selection.T).movedim(-1, axis)

    def stack(self, xs, axis):
        return self.torch.stack(xs, dim=axis)

    def cat(self, xs, axis):
        return self.torch.cat(xs, dim=axis)

    def sum(self, a, axis):
        return a.sum(dim=axis)

    def scale(self, a, factors, axis, m):
        f = self.torch.tensor([float(x) for x in factors], dtype=a.dtype, device=a.device)
        return a * f.view((-1,) + (1,) * (m - 1))

    def zeros(self, shape, like):
        return self.torch.zeros(shape, dtype=like.dtype, device=like.device)

    def where(self, condition, a, b):
        return self.torch.where(condition, a, b)

    def atan2(self, y, x):
        return self.torch.atan2(y, x)

    def pow(self, x, r):
        return self.torch.pow(x, r)

    def heaviside(self, x, h):
        one, zero = self.torch.ones_like(x), self.torch.zeros_like(x)
        return self.torch.where(x > 0, one, self.torch.where(x < 0, zero, h + zero))

    def dirac(self, x):
        return self.torch.where(x == 0, self.torch.full_like(x, math.nan), self.torch.zeros_like(x))

    def clone(self, a):
        return a.clone()


class _MpmathOps:
    """The same on NumPy object arrays of mpmath numbers (mpf, or mpc off the real domain)."""

    def __init__(self, digits: int):
        import mpmath
        import numpy as np

        self.mp, self.np, self.digits = mpmath.mp, np, digits
        mp = self.mp
        self.fn = {name: np.frompyfunc(getattr(mp, name), 1, 1) for name in (
            "exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "asinh", "acosh",
            "atanh", "sqrt", "sign", "erf")}
        self._atan2 = np.frompyfunc(mp.atan2, 2, 1)
        self._pow = np.frompyfunc(lambda x, r: mp.power(x, r), 2, 1)
    def two_over_sqrt_pi(self):
        return 2 / self.mp.sqrt(self.mp.pi)

    def number(self, value):
        if isinstance(value, (int, Fraction)):
            return self.mp.mpf(Fraction(value).numerator) / Fraction(value).denominator
        if isinstance(value, sp.Basic):
            if value.is_Rational:
                return self.mp.mpf(int(value.p)) / int(value.q)
            number = sp.N(value, self.digits + 10)
            if number.is_real is False or not number.is_Number:
                return self.mp.nan  # not a real number
            return self.mp.mpf(str(number))
        return self.mp.mpf(value)

    def take(self, a, positions, axis):
        return self.np.take(a, list(positions), axis=axis)

    def segment_sum(self, values, groups, size, axis):
        starts = [0] + [i for i in range(1, len(groups)) if groups[i] != groups[i - 1]]
        return self.np.add.reduceat(values, starts, axis=axis)

    def stack(self, xs, axis):
        return self.np.stack(xs, axis=axis)

    def cat(self, xs, axis):
        return self.np.concatenate(xs, axis=axis)

    def sum(self, a, axis):
        return a.sum(axis=axis)

    def scale(self, a, factors, axis, m):
        f = self.np.array([self.number(x) if isinstance(x, (int, Fraction)) else x for x in factors], dtype=object)
        return a * f.reshape((-1,) + (1,) * (m - 1))

    def zeros(self, shape, like):
        out = self.np.empty(shape, dtype=object)
        out.fill(self.mp.mpf(0))
        return out

    def where(self, condition, a, b):
        return self.np.where(condition, a, b)

    def atan2(self, y, x):
        return self._atan2(y, x)

    def pow(self, x, r):
        return self._pow(x, r)

    def heaviside(self, x, h):
        return self.np.where(x > 0, self.mp.mpf(1), self.np.where(x < 0, self.mp.mpf(0), h))

    def dirac(self, x):
        return self.np.where(x == 0, self.mp.nan, self.mp.mpf(0))

    def clone(self, a):
        return a.copy()


# ---------------------------------------------------------------------------------------- series algebra
#
# A series is an array whose last m dimensions are coefficient indices (one per variable, outermost first);
# the dimensions before them are points. m = 0 is a plain value. Every rule below works for any m by recurring in
# the outer variable (axis -m) with coefficients that are series in the remaining m - 1 variables.


def _at(a, m: int, k):
    """The outer coefficient(s) k (an int or a slice) of a series with m variables."""
    return a[(Ellipsis, k) + (slice(None),) * (m - 1)]


def _origin(a, m: int):
    """The value at the point: the coefficient of index (0, ..., 0)."""
    return a[(Ellipsis,) + (0,) * m] if m else a


_PAIRS: dict[int, tuple[list[int], list[int], list[int]]] = {}


def _pairs(d: int):
    """(i, j, k) for every i + j = k < d, grouped by k: the terms of a truncated convolution."""
    if d not in _PAIRS:
        i_, j_, k_ = [], [], []
        for k in range(d):
            for i in range(k + 1):
                i_.append(i), j_.append(k - i), k_.append(k)
        _PAIRS[d] = (i_, j_, k_)
    return _PAIRS[d]


class Algebra:
    """Truncated Taylor arithmetic over one arithmetic (`ops`): series of m variables."""

    def __init__(self, ops):
        self.o = ops

    # --- products and quotients
    def mul(self, a, b, m: int):
        if m == 0:
            return a * b
        if hasattr(self.o, "mul"):
            return self.o.mul(self.mul, a, b, m)
        d = a.shape[-m]
        i, j, k = _pairs(d)
        products = self.mul(self.o.take(a, i, -m), self.o.take(b, j, -m), m - 1)
        return self.o.segment_sum(products, k, d, -m)

    def _terms(self, xs, ys, m: int):
        """Σ_i mul(xs[i], ys[i]) over the outer axis of two stacks (of equal length) of m - 1 variable series."""
        return self.o.sum(self.mul(xs, ys, m - 1), -m)

    def _reversed(self, values: list, m: int):
        return self.o.stack(values[::-1], -m)

    def recip(self, b, m: int):
        if m == 0:
            return 1 / b
        r0 = self.recip(_at(b, m, 0), m - 1)
        rs = [r0]
        for k in range(1, b.shape[-m]):
            t = self._terms(_at(b, m, slice(1, k + 1)), self._reversed(rs, m), m)
            rs.append(-self.mul(t, r0, m - 1))
        return self.o.stack(rs, -m)

    def div(self, a, b, m: int):
        if m == 0:
            return a / b
        r0 = self.recip(_at(b, m, 0), m - 1)
        cs: list = []
        for k in range(a.shape[-m]):
            t = _at(a, m, k)
            if k:
                t = t - self._terms(_at(b, m, slice(1, k + 1)), self._reversed(cs, m), m)
            cs.append(self.mul(t, r0, m - 1))
        return self.o.stack(cs, -m)

    def powi(self, u, n: int, m: int):
        """u^n for an integer n by repeated squaring (real at negative bases, unlike exp(n log u))."""
        if n < 0:
            return self.recip(self.powi(u, -n, m), m)
        result, base = None, u
        while n:
            if n & 1:
                result = base if result is None else self.mul(result, base, m)
            n >>= 1
            if n:
                base = self.mul(base, base, m)
        return result if result is not None else self.add_const(self.o.zeros(u.shape, u), 1, m)

    def add_const(self, a, c, m: int):
        out = self.o.clone(a)
        index = (Ellipsis,) + (0,) * m
        out[index] = out[index] + c
        return out

    # --- derivative and integral along the outer variable
    def _deriv(self, u, m: int):
        """u' along the outer variable: (k + 1) u_{k+1}, one coefficient fewer."""
        d = u.shape[-m]
        return self.o.scale(_at(u, m, slice(1, d)), list(range(1, d)), -m, m)

    def _trunc(self, u, m: int):
        return _at(u, m, slice(0, u.shape[-m] - 1))

    def _integral(self, v0, p, m: int):
        """v with v(a) = v0 and v' = p (p has one outer coefficient fewer)."""
        d = p.shape[-m] + 1
        scaled = self.o.scale(p, [Fraction(1, k) for k in range(1, d)], -m, m)
        return self.o.cat([self.o.stack([v0], -m), scaled], -m)

    # --- elementary functions
    def exp(self, u, m: int):
        if m == 0:
            return self.o.fn["exp"](u)
        du = self._deriv(u, m)
        vs = [self.exp(_at(u, m, 0), m - 1)]
        for k in range(1, u.shape[-m]):
            vs.append(self._terms(_at(du, m, slice(0, k)), self._reversed(vs, m), m) / k)
        return self.o.stack(vs, -m)

    def _pair(self, u, m: int, first: str, second: str, sign: int):
        """(f(u), g(u)) with f' = g u' and g' = sign · f u' (sin/cos: -1, sinh/cosh: +1)."""
        if m == 0:
            return self.o.fn[first](u), self.o.fn[second](u)
        du = self._deriv(u, m)
        f0, g0 = self._pair(_at(u, m, 0), m - 1, first, second, sign)
        fs, gs = [f0], [g0]
        for k in range(1, u.shape[-m]):
            a = _at(du, m, slice(0, k))
            f = self._terms(a, self._reversed(gs, m), m) / k
            g = self._terms(a, self._reversed(fs, m), m) / k
            fs.append(f), gs.append(g if sign > 0 else -g)
        return self.o.stack(fs, -m), self.o.stack(gs, -m)

    def _squared_plus(self, u, m: int, name: str, sign: int):
        """tan (sign +1) or tanh (-1): v' = (1 + sign · v²) u'."""
        if m == 0:
            return self.o.fn[name](u)
        du = self._deriv(u, m)
        v0 = self._squared_plus(_at(u, m, 0), m - 1, name, sign)
        vs = [v0]
        square = self.mul(v0, v0, m - 1)
        ws = [self.add_const(square if sign > 0 else -square, 1, m - 1) if m > 1 else 1 + sign * square]
        for k in range(1, u.shape[-m]):
            vs.append(self._terms(_at(du, m, slice(0, k)), self._reversed(ws, m), m) / k)
            w = self._terms(self.o.stack(vs, -m), self._reversed(vs, m), m)
            ws.append(w if sign > 0 else -w)
        return self.o.stack(vs, -m)

    def log(self, u, m: int):
        if m == 0:
            return self.o.fn["log"](u)
        v0 = self.log(_at(u, m, 0), m - 1)
        if u.shape[-m] == 1:
            return self.o.stack([v0], -m)
        return self._integral(v0, self.div(self._deriv(u, m), self._trunc(u, m), m), m)

    def sqrt(self, u, m: int):
        if m == 0:
            return self.o.fn["sqrt"](u)
        v0 = self.sqrt(_at(u, m, 0), m - 1)
        r = self.recip(2 * v0, m - 1)
        vs = [v0]
        for k in range(1, u.shape[-m]):
            t = _at(u, m, k)
            if k > 1:
                t = t - self._terms(self.o.stack(vs[1:k], -m), self._reversed(vs[1:k], m), m)
            vs.append(self.mul(t, r, m - 1))
        return self.o.stack(vs, -m)

    def power(self, u, r, m: int):
        """u^r for a constant real r: u v' = r v u', so k u_0 v_k = Σ_j (r j - (k - j)) u_j v_{k-j}."""
        if m == 0:
            return self.o.pow(u, self.o.number(r))
        v0 = self.power(_at(u, m, 0), r, m - 1)
        inverse = self.recip(_at(u, m, 0), m - 1)
        vs = [v0]
        for k in range(1, u.shape[-m]):
            factors = [(r * j - (k - j)) / Fraction(k) for j in range(1, k + 1)]
            a = self.o.scale(_at(u, m, slice(1, k + 1)), factors, -m, m)
            vs.append(self.mul(self._terms(a, self._reversed(vs, m), m), inverse, m - 1))
        return self.o.stack(vs, -m)

    def unary(self, name: str, u, m: int):
        """The functions whose derivative is a series known from u alone, and the recurrent ones."""
        if name == "exp":
            return self.exp(u, m)
        if name == "log":
            return self.log(u, m)
        if name == "sqrt":
            return self.sqrt(u, m)
        if name in ("sin", "cos"):
            s, c = self._pair(u, m, "sin", "cos", -1)
            return s if name == "sin" else c
        if name in ("sinh", "cosh"):
            s, c = self._pair(u, m, "sinh", "cosh", 1)
            return s if name == "sinh" else c
        if name in ("tan", "tanh"):
            return self._squared_plus(u, m, name, 1 if name == "tan" else -1)
        if m == 0:
            return self.o.fn[name](u)
        v0 = self.unary(name, _at(u, m, 0), m - 1)
        t = self._trunc(u, m) if u.shape[-m] > 1 else u
        square = self.mul(t, t, m)
        if name == "atan":  # 1 / (1 + u²)
            weight = self.recip(self.add_const(square, 1, m), m)
        elif name == "atanh":  # 1 / (1 - u²)
            weight = self.recip(self.add_const(-square, 1, m), m)
        elif name in ("asin", "acos"):  # ±1 / sqrt(1 - u²)
            weight = self.recip(self.sqrt(self.add_const(-square, 1, m), m), m)
            weight = -weight if name == "acos" else weight
        elif name == "asinh":  # 1 / sqrt(u² + 1)
            weight = self.recip(self.sqrt(self.add_const(square, 1, m), m), m)
        elif name == "acosh":  # 1 / sqrt(u² - 1)
            weight = self.recip(self.sqrt(self.add_const(square, -1, m), m), m)
        elif name == "erf":  # 2/√π exp(-u²)
            weight = self.exp(-square, m) * self.o.two_over_sqrt_pi()
        else:
            raise SeriesError(f"no series rule for {name}")
        if u.shape[-m] == 1:
            return self.o.stack([v0], -m)
        return self._integral(v0, self.mul(self._deriv(u, m), weight, m), m)

    def atan2(self, y, x, m: int):
        if m == 0:
            return self.o.atan2(y, x)
        v0 = self.atan2(_at(y, m, 0), _at(x, m, 0), m - 1)
        if y.shape[-m] == 1:
            return self.o.stack([v0], -m)
        ty, tx = self._trunc(y, m), self._trunc(x, m)
        numerator = self.mul(tx, self._deriv(y, m), m) - self.mul(ty, self._deriv(x, m), m)
        return self._integral(v0, self.div(numerator, self.mul(tx, tx, m) + self.mul(ty, ty, m), m), m)


# ------------------------------------------------------------------------------------- the rules by kind
#
# An argument is a series (an array with m coefficient dimensions) or a Const (a value at each point, whose
# higher coefficients are zero): constants and variables outside the box stay plain values, computed by the
# program's own functions, so domains and values at the point are those of the lowered program.


class Const:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


_UNARY = {sp.exp: "exp", sp.log: "log", sp.sin: "sin", sp.cos: "cos", sp.tan: "tan", sp.asin: "asin",
          sp.acos: "acos", sp.atan: "atan", sp.sinh: "sinh", sp.cosh: "cosh", sp.tanh: "tanh", sp.asinh: "asinh",
          sp.acosh: "acosh", sp.atanh: "atanh", sp.erf: "erf"}
_RECIPROCAL_OF = {sp.cot: "tan", sp.sec: "cos", sp.csc: "sin", sp.coth: "tanh", sp.sech: "cosh", sp.csch: "sinh"}
_OF_RECIPROCAL = {sp.acot: "atan", sp.asec: "acos", sp.acsc: "asin", sp.acoth: "atanh", sp.asech: "acosh",
                  sp.acsch: "asinh"}


class _Rules:
    """One step of a program on series: kind (SymPy class, constant exponent) → the series of its result."""

    def __init__(self, algebra: Algebra, m: int, shape: tuple):
        self.a, self.m, self.shape = algebra, m, shape  # shape: of every series (points, d_1, ..., d_m)

    def lift(self, value, like):
        """A Const as a series: its value at the origin, zeros elsewhere."""
        if not isinstance(value, Const):
            return value
        out = self.a.o.zeros(self.shape, like)
        out[(Ellipsis,) + (0,) * self.m] = value.value
        return out

    def _expand(self, value):
        """A value at each point, broadcastable against series."""
        v = value
        if hasattr(v, "dim") and v.dim() == 0 or getattr(v, "ndim", 1) == 0:
            return v
        return v.reshape(tuple(v.shape) + (1,) * self.m)

    def apply(self, kind, args: list):
        cls, exponent = kind
        a, m = self.a, self.m
        like = next(x for x in args if not isinstance(x, Const))
        if cls is sp.Add:
            total, constant = None, None
            for x in args:
                if isinstance(x, Const):
                    constant = x.value if constant is None else constant + x.value
                else:
                    total = x if total is None else total + x
            return total if constant is None else a.add_const(total, constant, m)
        if cls is sp.Mul:
            total, factor = None, None
            for x in args:
                if isinstance(x, Const):
                    factor = x.value if factor is None else factor * x.value
                else:
                    total = x if total is None else a.mul(total, x, m)
            return total if factor is None else total * self._expand(factor)
        if cls is sp.Pow:
            if exponent is not None:
                return self._power(args[0], exponent)
            base, power = args
            if isinstance(power, Const) and not isinstance(base, Const):
                return a.exp(a.log(base, m) * self._expand(power.value), m)
            return a.exp(a.mul(a.log(self.lift(base, like), m), self.lift(power, like), m), m)
        args = [self.lift(x, like) for x in args]
        u = args[0]
        if cls in _UNARY:
            return a.unary(_UNARY[cls], u, m)
        if cls in _RECIPROCAL_OF:
            return a.recip(a.unary(_RECIPROCAL_OF[cls], u, m), m)
        if cls in _OF_RECIPROCAL:
            return a.unary(_OF_RECIPROCAL[cls], a.recip(u, m), m)
        if cls is sp.atan2:
            return a.atan2(args[0], args[1], m)
        if cls is sp.Abs:  # u · sign(u(a)), as lower's x * sign(x)
            return u * self._expand(a.o.fn["sign"](_origin(u, m)))
        if cls in (sp.sign, sp.Heaviside, sp.DiracDelta):
            at = _origin(u, m)
            if cls is sp.sign:
                value = a.o.fn["sign"](at)
            elif cls is sp.Heaviside:
                value = a.o.heaviside(at, _origin(args[1], m) if len(args) > 1 else a.o.number(Fraction(1, 2)))
            else:
                value = a.o.dirac(at)
            return self.lift(Const(value), u)
        if cls in (sp.Min, sp.Max):
            result = args[0]
            for other in args[1:]:
                x, y = _origin(result, m), _origin(other, m)
                pick = (x < y) if cls is sp.Min else (x > y)
                tie = self._expand(x == y)
                chosen = a.o.where(self._expand(pick), result, other)
                result = a.o.where(tie, (result + other) / 2, chosen)
            return result
        raise SeriesError(f"no series rule for {cls.__name__}")

    def _power(self, base, exponent):
        a, m = self.a, self.m
        if exponent.is_Integer:
            return a.powi(base, int(exponent), m)
        if exponent == sp.Rational(1, 2):
            return a.sqrt(base, m)
        if exponent == sp.Rational(-1, 2):
            return a.recip(a.sqrt(base, m), m)
        r = Fraction(int(exponent.p), int(exponent.q)) if exponent.is_Rational else a.o.number(exponent)
        return a.power(base, r, m)


# ----------------------------------------------------------------------------------------- the box


def scale_exponent(order: int) -> int:
    """p with s = 2^p ≈ order / e: then n!/s^n ≈ √(2πn) and the scaled coefficient at the order is about the
    derivative itself, so the arithmetic overflows only where the derivative does."""
    return max(0, round(math.log2(order / math.e))) if order > 2 else 0


def factor(orders: Sequence[int], boxes: Sequence[int] | None = None) -> Fraction:
    """Π n_i! / s_i^{n_i}: scaled coefficient → derivative, exactly (s_i chosen by the box's order in v_i)."""
    value = Fraction(1)
    for n, box in zip(orders, boxes or orders):
        value *= Fraction(math.factorial(n), 2 ** (scale_exponent(box) * n))
    return value


def box_of(wrt: Sequence[str]) -> dict[str, int]:
    """Variable → order of a partial (d10f/dx5dy5: {y: 5, x: 5}); smooth partials commute, and at kinks the
    rules above follow autograd's one-sided choices whatever the order of application."""
    orders: dict[str, int] = {}
    for name in wrt:
        orders[name] = orders.get(name, 0) + 1
    return orders


def check_size(wrt: Sequence[str]) -> None:
    from pdiff.errors import LimitError

    orders = box_of(wrt)
    coefficients = math.prod(n + 1 for n in orders.values())
    if coefficients > MAX_COEFFICIENTS:
        raise LimitError(f"the partial needs {coefficients} Taylor coefficients (Π (order + 1) over its variables)"
                         f", above the limit of {MAX_COEFFICIENTS}")


def _groups(partials: Sequence[tuple[str, ...]]) -> dict[tuple[str, ...], dict[str, int]]:
    """Partials by their variables (in first-seen order), each group's box the largest order per variable."""
    groups: dict[tuple[str, ...], dict[str, int]] = {}
    for wrt in partials:
        orders = box_of(wrt)
        key = tuple(sorted(orders))
        box = groups.setdefault(key, {})
        for name, n in orders.items():
            box[name] = max(box.get(name, 0), n)
    return groups


def _run(steps, kinds, first_slots: list, algebra: Algebra, m: int, shape: tuple, deadline: float | None,
         const_function: Callable | None):
    rules = _Rules(algebra, m, shape)
    slots = list(first_slots)
    for (function, args), kind in zip(steps, kinds):
        if deadline is not None and time.monotonic() > deadline:
            from pdiff.autodiff import DeadlineExceeded

            raise DeadlineExceeded()
        values = [slots[i] for i in args]
        if all(isinstance(v, Const) for v in values):
            inputs = [v.value for v in values]
            slots.append(Const(function(*inputs) if const_function is None else const_function(kind, inputs)))
        else:
            slots.append(rules.apply(kind, values))
    return slots


def partials_at(program, columns: dict, partials: Sequence[tuple[str, ...]], deadline: float | None = None) -> list:
    """The requested partials (tuples of variables) at every point, by Taylor mode: like autodiff.partials_at,
    one detached 1-D tensor of N values per partial (the function itself for ()). One series per distinct set of
    variables; points in blocks so no temporary passes MAX_ELEMENTS."""
    import torch

    size = next(iter(columns.values())).shape[0]
    first = next(iter(columns.values()))
    results: dict[tuple[str, ...], torch.Tensor] = {}
    with torch.no_grad():
        for names, box in _groups([p for p in partials if p]).items():
            dims = [box[n] + 1 for n in names]
            pairs = 1
            for d in dims:
                pairs *= d * (d + 1) // 2
            step = max(1, min(size, MAX_ELEMENTS // max(1, pairs)))
            blocks = [_box_values(program, {k: v[s:s + step] for k, v in columns.items()}, names, box, deadline)
                      for s in range(0, size, step)]
            coefficients = torch.cat(blocks) if len(blocks) > 1 else blocks[0]
            for wrt in partials:
                orders = box_of(wrt)
                if wrt and tuple(sorted(orders)) == names:
                    index = tuple(orders[n] for n in names)
                    results[tuple(wrt)] = coefficients[(slice(None),) + index] * float(
                        factor([orders[n] for n in names], [box[n] for n in names]))
            results[()] = coefficients[(slice(None),) + (0,) * len(names)]
        if () not in results:
            results[()] = torch.broadcast_to(program(columns), (size,)).to(first)
    return [torch.broadcast_to(results[tuple(p)], (size,)).clone() for p in partials]


def box_coefficients(program, columns: dict, names: Sequence[str], orders: Sequence[int], deadline=None):
    """The scaled coefficients (points, n_1 + 1, ...) of the program's output in `names` up to `orders`
    (coefficient (k_1, ...) times Π s_i^{k_i}, s_i = 2 ** scale_exponent(n_i)). Order 0 in every variable: the
    value, shape (points, 1)."""
    import torch

    if all(n == 0 for n in orders):
        with torch.no_grad():
            return torch.broadcast_to(program(columns), (next(iter(columns.values())).shape[0],)).reshape(-1, 1)
    with torch.no_grad():
        return _box_values(program, columns, list(names), dict(zip(names, orders)), deadline)


def _box_values(program, columns: dict, names: Sequence[str], box: dict[str, int], deadline):
    """The scaled coefficient array (points, d_1, ..., d_m) of the program's output at the points."""
    import torch

    first = next(iter(columns.values()))
    n = first.shape[0]
    m = len(names)
    dims = tuple(box[name] + 1 for name in names)
    shape = (n, *dims)
    ops = _TorchOps(first.dtype, first.device)
    key = (first.dtype, first.device)
    if key not in program._constant_cache:
        program._constant_cache[key] = [torch.tensor(c, dtype=first.dtype, device=first.device)
                                        for c in program.constants]
    slots: list = []
    for name in program.inputs:
        if name in names:
            i = names.index(name)
            series = torch.zeros(shape, dtype=first.dtype, device=first.device)
            series[(slice(None),) + (0,) * m] = columns[name]
            if dims[i] > 1:
                seed = [0] * m
                seed[i] = 1
                series[(slice(None),) + tuple(seed)] = 2.0 ** scale_exponent(box[name])
            slots.append(series)
        else:
            slots.append(Const(columns[name]))
    slots += [Const(c) for c in program._constant_cache[key]]
    kinds = program.kinds or [None] * len(program.steps)
    if None in kinds:
        raise SeriesError("the program was lowered without the kinds of its steps")
    slots = _run(program.steps, kinds, slots, Algebra(ops), m, shape, deadline, None)
    out = slots[program.output]
    if isinstance(out, Const):
        result = torch.zeros(shape, dtype=first.dtype, device=first.device)
        result[(slice(None),) + (0,) * m] = torch.broadcast_to(out.value, (n,))
        return result
    return torch.broadcast_to(out, shape)


# ------------------------------------------------------------------------------------ the exact side


EXACT_DIGITS = 60  # working precision of the exact side; 50 digits are reported


def _flatten(expr: sp.Expr, variables: Sequence[str]):
    """The SymPy expression as steps with kinds (lower.py's walk, without torch): inputs, SymPy constants,
    [(None, argument slots)], kinds, output slot."""
    from pdiff.parse import symbol

    inputs = list(variables)
    known = {symbol(name): i for i, name in enumerate(inputs)}
    constants: list[sp.Expr] = []
    steps: list = []
    kinds: list = []
    refs: dict = {}

    def visit(node):
        if node in refs:
            return refs[node]
        if node.is_Symbol:
            ref = ("in", known[node])
        elif node.is_number and not node.free_symbols:
            constants.append(node)
            ref = ("const", len(constants) - 1)
        else:
            kind = next((cls for cls in _KNOWN if isinstance(node, cls)), None)
            if kind is None:
                raise SeriesError(f"no series rule for {type(node).__name__}")
            operands, exponent = node.args, None
            if isinstance(node, sp.Pow) and node.exp.is_number and node.exp.is_real:
                operands, exponent = (node.base,), node.exp
            args = tuple(visit(arg) for arg in operands)
            steps.append(args)
            kinds.append((kind, exponent))
            ref = ("step", len(steps) - 1)
        refs[node] = ref
        return ref

    root = visit(expr)
    base = len(inputs)

    def slot(ref):
        kind, i = ref
        return i if kind == "in" else base + i if kind == "const" else base + len(constants) + i

    return inputs, constants, [(None, tuple(slot(a) for a in args)) for args in steps], kinds, slot(root)


_KNOWN = (sp.Add, sp.Mul, sp.Pow, *_UNARY, *_RECIPROCAL_OF, *_OF_RECIPROCAL, sp.atan2, sp.Abs, sp.sign,
          sp.Heaviside, sp.DiracDelta, sp.Min, sp.Max)


def exact_partial(expr: sp.Expr, wrt: Sequence[str], point: dict[str, sp.Expr], digits: int = EXACT_DIGITS):
    """∂ⁿexpr at an exact point by the same series rules in mpmath at `digits` significant digits, for orders
    where SymPy's derivative is too large to build. Returns an mpmath number (mpc off the real domain)."""
    import mpmath

    with mpmath.mp.workdps(digits):
        return _exact_partial(expr, wrt, point, _MpmathOps(digits))


def _exact_partial(expr, wrt, point, ops):
    np = ops.np
    variables = sorted({s.name for s in expr.free_symbols} | set(wrt))
    inputs, constants, steps, kinds, output = _flatten(expr, variables)
    orders = box_of(wrt)
    names = tuple(sorted(orders))
    m = len(names)
    dims = tuple(orders[n] + 1 for n in names)
    shape = (1, *dims)

    def constant(value):
        return np.array([ops.number(value)], dtype=object)

    slots: list = []
    for name in inputs:
        if name in names:
            i = names.index(name)
            series = ops.zeros(shape, None)
            series[(0,) + (0,) * m] = ops.number(point[name])
            if dims[i] > 1:
                seed = [0] * m
                seed[i] = 1
                series[(0,) + tuple(seed)] = ops.number(2 ** scale_exponent(orders[name]))
            slots.append(series)
        else:
            slots.append(Const(constant(point[name])))
    slots += [Const(constant(c)) for c in constants]
    algebra = Algebra(ops)

    def const_function(kind, values):  # a step on values only: the rule with no variables
        return _Rules(algebra, 0, (1,)).apply(kind, list(values))

    slots = _run(steps, kinds, slots, algebra, m, shape, None, const_function)
    out = slots[output]
    if isinstance(out, Const):
        return out.value[0] if not m else ops.mp.mpf(0)
    f = factor([orders[n] for n in names])
    return out[(0,) + tuple(orders[n] for n in names)] * f.numerator / f.denominator


def engine_for(wrt: Sequence[str], engine: str) -> str:
    """Which engine computes a partial: `reverse` (nested autograd) or `taylor`; auto: Taylor above CROSSOVER."""
    if engine not in ENGINES:
        from pdiff.errors import InputError

        raise InputError(f"unknown engine {engine!r}: use auto, reverse or taylor")
    if engine == "auto":
        return "taylor" if len(wrt) > CROSSOVER else "reverse"
    return engine


def partials_by_engine(program, columns: dict, partials: Sequence[tuple[str, ...]], deadline: float | None,
                       engine: str = "auto") -> list:
    """autodiff.partials_at for the partials the engine choice gives to reverse mode, Taylor mode for the rest
    (the function itself, (), goes with reverse mode when it has any partials)."""
    from pdiff.autodiff import partials_at as reverse

    chosen = [engine_for(p, engine) if p else None for p in partials]
    if "taylor" not in chosen:
        return reverse(program, columns, partials, deadline)
    if "reverse" not in chosen:
        return partials_at(program, columns, partials, deadline)
    low = [i for i, c in enumerate(chosen) if c != "taylor"]
    high = [i for i, c in enumerate(chosen) if c == "taylor"]
    values: list = [None] * len(partials)
    for i, v in zip(low, reverse(program, columns, [partials[i] for i in low], deadline)):
        values[i] = v
    for i, v in zip(high, partials_at(program, columns, [partials[i] for i in high], deadline)):
        values[i] = v
    return values
