"""Rule records: one frozen record per rule application, each computing its own output from its substeps.

The shape of SymPy's manualintegrate: a record holds what the rule was applied to (`expr`, differentiated by
`var`), the text the user wrote for it, and its substeps; `output` is the rule's formula applied to the substeps'
outputs, never SymPy's derivative of `expr` (that is the verifier's oracle, pdiff.steps.verify). The elementary
rules keep their textbook forms: d/dx tan x = sec²x, d/dx asec x = 1/(|x|√(x²−1)).

A `slip` on a record makes it compute a known wrong formula (pdiff.steps.work names a student's mistake by
re-deriving with one slip at a time); records built for `pdiff steps` never carry one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import sympy as sp

from pdiff import symbolic

# ---- the elementary rules' textbook forms, as functions of the inner variable u

_E = sp.E


def _textbook() -> dict[type, tuple[str, Callable[[sp.Expr], sp.Expr], str]]:
    sqrt, Abs = sp.sqrt, sp.Abs
    return {
        sp.sin: ("trig", lambda u: sp.cos(u), "d/du sin u = cos u"),
        sp.cos: ("trig", lambda u: -sp.sin(u), "d/du cos u = -sin u"),
        sp.tan: ("trig", lambda u: sp.sec(u) ** 2, "d/du tan u = sec^2 u"),
        sp.cot: ("trig", lambda u: -sp.csc(u) ** 2, "d/du cot u = -csc^2 u"),
        sp.sec: ("trig", lambda u: sp.sec(u) * sp.tan(u), "d/du sec u = sec u tan u"),
        sp.csc: ("trig", lambda u: -sp.csc(u) * sp.cot(u), "d/du csc u = -csc u cot u"),
        sp.asin: ("inverse trig", lambda u: 1 / sqrt(1 - u ** 2), "d/du asin u = 1/sqrt(1 - u^2)"),
        sp.acos: ("inverse trig", lambda u: -1 / sqrt(1 - u ** 2), "d/du acos u = -1/sqrt(1 - u^2)"),
        sp.atan: ("inverse trig", lambda u: 1 / (1 + u ** 2), "d/du atan u = 1/(1 + u^2)"),
        sp.acot: ("inverse trig", lambda u: -1 / (1 + u ** 2), "d/du acot u = -1/(1 + u^2)"),
        sp.asec: ("inverse trig", lambda u: 1 / (Abs(u) * sqrt(u ** 2 - 1)), "d/du asec u = 1/(|u| sqrt(u^2 - 1))"),
        sp.acsc: ("inverse trig", lambda u: -1 / (Abs(u) * sqrt(u ** 2 - 1)),
                  "d/du acsc u = -1/(|u| sqrt(u^2 - 1))"),
        sp.sinh: ("hyperbolic", lambda u: sp.cosh(u), "d/du sinh u = cosh u"),
        sp.cosh: ("hyperbolic", lambda u: sp.sinh(u), "d/du cosh u = sinh u"),
        sp.tanh: ("hyperbolic", lambda u: sp.sech(u) ** 2, "d/du tanh u = sech^2 u"),
        sp.coth: ("hyperbolic", lambda u: -sp.csch(u) ** 2, "d/du coth u = -csch^2 u"),
        sp.sech: ("hyperbolic", lambda u: -sp.sech(u) * sp.tanh(u), "d/du sech u = -sech u tanh u"),
        sp.csch: ("hyperbolic", lambda u: -sp.csch(u) * sp.coth(u), "d/du csch u = -csch u coth u"),
        sp.asinh: ("inverse hyperbolic", lambda u: 1 / sqrt(u ** 2 + 1), "d/du asinh u = 1/sqrt(u^2 + 1)"),
        sp.acosh: ("inverse hyperbolic", lambda u: 1 / (sqrt(u - 1) * sqrt(u + 1)),
                   "d/du acosh u = 1/sqrt(u^2 - 1) (u > 1)"),
        sp.atanh: ("inverse hyperbolic", lambda u: 1 / (1 - u ** 2), "d/du atanh u = 1/(1 - u^2)"),
        sp.acoth: ("inverse hyperbolic", lambda u: 1 / (1 - u ** 2), "d/du acoth u = 1/(1 - u^2)"),
        sp.asech: ("inverse hyperbolic", lambda u: -1 / (u * sqrt(1 - u ** 2)),
                   "d/du asech u = -1/(u sqrt(1 - u^2))"),
        sp.acsch: ("inverse hyperbolic", lambda u: -1 / (Abs(u) * sqrt(1 + u ** 2)),
                   "d/du acsch u = -1/(|u| sqrt(1 + u^2))"),
    }


TEXTBOOK = _textbook()


def shown(expr: sp.Expr) -> str:
    return symbolic.to_display(expr)


@dataclass(frozen=True)
class Step:
    """A rule applied to `expr`, differentiated by `var`; `text` is what the user wrote for `expr`."""

    expr: sp.Expr
    var: sp.Symbol
    text: str

    rule: ClassVar[str] = "?"

    @property
    def substeps(self) -> tuple[Step, ...]:
        return ()

    @property
    def note(self) -> str:
        """What the rule says here, in a line (the formula used, the inner function named, what is held)."""
        return ""

    @cached_property
    def output(self) -> sp.Expr:
        return self.compute()

    def compute(self) -> sp.Expr:  # pragma: no cover - every rule defines it
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Step):
    held: tuple[str, ...] = ()  # the variables in expr, held constant
    why: str = ""
    rule: ClassVar[str] = "constant"

    @property
    def note(self) -> str:
        if self.why:
            return self.why
        if self.held:
            names = ", ".join(self.held)
            return f"{names} {'is' if len(self.held) == 1 else 'are'} held constant"
        return f"d/d{self.var} c = 0"

    def compute(self):
        return sp.S.Zero


@dataclass(frozen=True)
class Sum(Step):
    terms: tuple[Step, ...] = ()
    signs: tuple[int, ...] = ()

    @property
    def rule(self) -> str:  # type: ignore[override]
        return "difference" if -1 in self.signs else "sum"

    @property
    def substeps(self):
        return self.terms

    @property
    def note(self):
        return "(f - g)' = f' - g'" if -1 in self.signs else "(f + g)' = f' + g'"

    def compute(self):
        return sp.Add(*(sign * term.output for sign, term in zip(self.signs, self.terms)))


@dataclass(frozen=True)
class ConstantMultiple(Step):
    constant: sp.Expr = sp.S.One
    inner: Step | None = None
    held: tuple[str, ...] = ()
    rule: ClassVar[str] = "constant multiple"

    @property
    def substeps(self):
        return (self.inner,)

    @property
    def note(self):
        said = f"(c f)' = c f' with c = {shown(self.constant)}"
        if self.held:
            said += f"; {', '.join(self.held)} {'is' if len(self.held) == 1 else 'are'} held constant"
        return said

    def compute(self):
        return self.constant * self.inner.output


@dataclass(frozen=True)
class Product(Step):
    factors: tuple[Step, ...] = ()
    slip: str | None = None
    rule: ClassVar[str] = "product"

    @property
    def substeps(self):
        return self.factors

    @property
    def note(self):
        return "(f g)' = f' g + f g'" if len(self.factors) == 2 else "(f g h)' = f' g h + f g' h + f g h'"

    def compute(self):
        if self.slip == "product":  # (fg)' = f'g'
            return sp.Mul(*(f.output for f in self.factors))
        exprs = [f.expr for f in self.factors]
        return sp.Add(*(f.output * sp.Mul(*(e for j, e in enumerate(exprs) if j != i))
                        for i, f in enumerate(self.factors)))


@dataclass(frozen=True)
class Quotient(Step):
    top: Step | None = None
    bottom: Step | None = None
    slip: str | None = None
    rule: ClassVar[str] = "quotient"

    @property
    def substeps(self):
        return (self.top, self.bottom)

    @property
    def note(self):
        return "(f/g)' = (f' g - f g')/g^2"

    def compute(self):
        f, g = self.top.expr, self.bottom.expr
        df, dg = self.top.output, self.bottom.output
        numerator = f * dg - df * g if self.slip == "quotient-reversed" else df * g - f * dg
        return numerator / (g if self.slip == "quotient-unsquared" else g ** 2)


@dataclass(frozen=True)
class Power(Step):
    """d/dx x^n = n x^(n-1), n constant; √x, 1/x and x itself are powers too."""

    base: sp.Expr = sp.S.One  # the variable
    exponent: sp.Expr = sp.S.One
    written: str = ""  # how the power reads when the user did not write one: "sqrt(x) = x^(1/2)"
    rule: ClassVar[str] = "power"

    @property
    def note(self):
        n = self.exponent
        lead = f"{self.written}; " if self.written else ""
        if n == 1:
            return f"d/d{self.var} {self.var} = 1"
        return f"{lead}d/d{self.var} {self.var}^n = n {self.var}^(n-1) with n = {shown(n)}"

    def compute(self):
        n = self.exponent
        if n == sp.Rational(1, 2):
            return 1 / (2 * sp.sqrt(self.base))
        return n * self.base ** (n - 1)


@dataclass(frozen=True)
class CubeRoot(Step):
    rule: ClassVar[str] = "power"

    @property
    def note(self):
        return f"cbrt({self.var}) = {self.var}^(1/3): d/d{self.var} = 1/(3 cbrt({self.var})^2)"

    def compute(self):
        return 1 / (3 * sp.Abs(self.var) ** sp.Rational(2, 3))


@dataclass(frozen=True)
class Exponential(Step):
    base: sp.Expr = _E
    slip: str | None = None
    rule: ClassVar[str] = "exponential"

    @property
    def note(self):
        v = self.var
        if self.base == _E:
            return f"d/d{v} e^{v} = e^{v}"
        return f"d/d{v} a^{v} = a^{v} ln a with a = {shown(self.base)}"

    def compute(self):
        v, a = self.var, self.base
        if self.slip == "exponential-power":  # the power rule on an exponential: d/dx 2^x = x 2^(x-1)
            return v * a ** (v - 1)
        return a ** v if a == _E else a ** v * sp.log(a)


@dataclass(frozen=True)
class Logarithm(Step):
    base: sp.Expr | None = None  # None: the natural logarithm
    absolute: bool = False  # ln|u|
    rule: ClassVar[str] = "logarithm"

    @property
    def note(self):
        v = self.var
        if self.base is not None:
            return f"d/d{v} log_a {v} = 1/({v} ln a) with a = {shown(self.base)}"
        return f"d/d{v} ln|{v}| = 1/{v}" if self.absolute else f"d/d{v} ln {v} = 1/{v}"

    def compute(self):
        return 1 / self.var if self.base is None else 1 / (self.var * sp.log(self.base))


@dataclass(frozen=True)
class Elementary(Step):
    """A trig, inverse trig, hyperbolic or inverse hyperbolic function of the variable, by its textbook form."""

    function: type = sp.sin
    slip: str | None = None

    @property
    def rule(self) -> str:  # type: ignore[override]
        return TEXTBOOK[self.function][0]

    @property
    def note(self):
        return TEXTBOOK[self.function][2].replace("u", str(self.var)) if str(self.var) != "u" else \
            TEXTBOOK[self.function][2]

    def compute(self):
        if self.slip == "cos-sign" and self.function is sp.cos:  # d/dx cos x = sin x
            return sp.sin(self.var)
        return TEXTBOOK[self.function][1](self.var)


@dataclass(frozen=True)
class AbsoluteValue(Step):
    rule: ClassVar[str] = "absolute value"

    @property
    def note(self):
        v = self.var
        return f"d/d{v} |{v}| = {v}/|{v}| ({v} != 0)"

    def compute(self):
        return self.var / sp.Abs(self.var)


@dataclass(frozen=True)
class TableLookup(Step):
    """A function with no textbook rule here (erf, ...): its derivative from SymPy's table, shown as such."""

    function: str = ""
    rule: ClassVar[str] = "table lookup"

    @property
    def note(self):
        return f"d/d{self.var} {self.function}({self.var}) from SymPy's table of derivatives"

    def compute(self):
        return sp.diff(self.expr, self.var)


@dataclass(frozen=True)
class Chain(Step):
    """f(g(x))' = f'(g(x)) g'(x): the outer rule on u, then u = g(x) put back, times the inner derivative."""

    u: sp.Symbol | None = None
    inner_text: str = ""
    outer: Step | None = None
    inner: Step | None = None
    slip: str | None = None
    rule: ClassVar[str] = "chain"

    @property
    def substeps(self):
        return (self.outer, self.inner)

    @property
    def note(self):
        return f"let {self.u} = {self.inner_text}: d/d{self.var} f({self.u}) = f'({self.u}) d{self.u}/d{self.var}"

    def compute(self):
        outer = self.outer.output.xreplace({self.u: self.inner.expr})
        return outer if self.slip == "chain" else outer * self.inner.output


@dataclass(frozen=True)
class MultiChain(Step):
    """f(a, b, ...)' = ∂f/∂a a' + ∂f/∂b b' + ... for atan2, min and max (their partials from SymPy's table)."""

    function: str = ""
    partials: tuple[sp.Expr, ...] = ()  # ∂f/∂(argument i) at the arguments
    arguments: tuple[Step, ...] = ()

    @property
    def rule(self) -> str:  # type: ignore[override]
        return "inverse trig" if self.function == "atan2" else "table lookup"

    @property
    def substeps(self):
        return self.arguments

    @property
    def note(self):
        if self.function == "atan2":
            return "d atan2(a, b) = (b da - a db)/(a^2 + b^2)"
        return f"d {self.function}(a, b, ...) = sum of its partials (SymPy's table) times da, db, ..."

    def compute(self):
        return sp.Add(*(p * a.output for p, a in zip(self.partials, self.arguments)))


@dataclass(frozen=True)
class LogDifferentiation(Step):
    """y = f^g with both depending on x: ln y = g ln f, so y' = f^g (g ln f)'; where f > 0."""

    base_text: str = ""
    inner: Step | None = None  # d/dx [g ln f]
    rule: ClassVar[str] = "logarithmic differentiation"

    @property
    def substeps(self):
        return (self.inner,)

    @property
    def note(self):
        return f"ln y = {self.inner.text}, so y' = y ({self.inner.text})'; valid where {self.base_text} > 0"

    def compute(self):
        return self.expr * self.inner.output


@dataclass(frozen=True)
class Rewrite(Step):
    """expr rewritten by an identity (checked on its own), then differentiated."""

    identity: str = ""
    inner: Step | None = None
    rule: ClassVar[str] = "rewrite"

    @property
    def substeps(self):
        return (self.inner,)

    @property
    def note(self):
        return self.identity

    def compute(self):
        return self.inner.output


@dataclass(frozen=True)
class Simplify:
    """`before` written in a shorter equal form: verified like a step (equal, not a derivative)."""

    before: sp.Expr
    after: sp.Expr
    rule: ClassVar[str] = "simplify"
    substeps: tuple = field(default=())

    @property
    def output(self):
        return self.after

    @property
    def note(self):
        return "an equal, shorter form"
