"""The user's tree (pdiff.steps.tree) → a tree of rule records (pdiff.steps.rules), following the tree as written.

Which rule applies is decided by the node's shape and by what depends on the variable: a part free of it is a
constant ("y is held constant" in a partial), a product with constant factors is a constant multiple, a quotient
rule only for a '/' with the variable on both sides (`1/x` and `c/g` are powers, `f/c` a constant multiple), a
function of anything but the variable itself is the chain rule with the inner function named (u, then v, w for
chains inside chains), f^g with the variable in both is logarithmic differentiation.

`Deriver(var, slip=(kind, index))` builds the same tree with one known slip at the index-th place that rule is
used (index None: everywhere), for naming a student's mistake.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import sympy as sp

from pdiff import symbolic
from pdiff.parse import FUNCTIONS, symbol
from pdiff.steps import rules
from pdiff.steps.tree import Node

SLIPS = {  # kind → what the student did
    "chain": "chain-rule factor dropped",
    "quotient-reversed": "quotient rule numerator reversed (f g' - f' g)",
    "quotient-unsquared": "quotient rule denominator not squared",
    "product": "(f g)' taken as f' g'",
    "exponential-power": "power rule used on an exponential (d/dx a^x = x a^(x-1))",
    "cos-sign": "sign of d/dx cos x (it is -sin x)",
}
_SLIP_RULES = {"chain": "chain", "quotient-reversed": "quotient", "quotient-unsquared": "quotient",
               "product": "product", "exponential-power": "exponential", "cos-sign": "cos"}

_LETTERS = ("u", "v", "w", "t", "s", "r", "q", "p")

# names as written → the function they call (arcsin, arsinh, cosec, sgn, Abs: the same functions)
_CANONICAL = {}
for _name, (_constructor, _counts) in FUNCTIONS.items():
    _CANONICAL[_name] = _constructor
_CANONICAL["log"] = sp.log  # one argument; log(x, b) and log_b x are handled apart
_LOG_BASES = {"log10": sp.Integer(10), "log2": sp.Integer(2)}


class Deriver:
    """Builds the rule tree of d/d(var) for a Node. `used`: names the letters for inner functions must avoid."""

    def __init__(self, var: str, used=(), slip: tuple[str, int | None] | None = None):
        self.var = symbol(var)
        self.used = {*used, var}
        self.slip = slip
        self.count: Counter = Counter()  # places each slip-able rule was used, in build order

    # ---- slips

    def _slipped(self, place: str) -> str | None:
        """The slip for this use of a rule (and count the use)."""
        self.count[place] += 1
        if self.slip is None or _SLIP_RULES[self.slip[0]] != place:
            return None
        kind, index = self.slip
        return kind if index is None or index == self.count[place] else None

    # ---- helpers

    def _letter(self, depth: int) -> sp.Symbol:
        names = [n for n in _LETTERS if n not in self.used]
        name = names[depth % len(names)] if names else f"u{depth + 1}"
        while name in self.used:
            name += "_"
        return symbol(name)

    def _held(self, expr: sp.Expr, var: sp.Symbol) -> tuple[str, ...]:
        return tuple(symbolic.variables_of([expr]))

    def _depends(self, node_or_expr, var: sp.Symbol) -> bool:
        expr = node_or_expr.expr if isinstance(node_or_expr, Node) else node_or_expr
        return var in expr.free_symbols

    def _constant(self, node: Node, var: sp.Symbol, why: str = "") -> rules.Step:
        return rules.Constant(node.expr, var, node.text, held=self._held(node.expr, var), why=why)

    # ---- the dispatch

    def step(self, node: Node, var: sp.Symbol | None = None, depth: int = 0) -> rules.Step:
        var = self.var if var is None else var
        if not self._depends(node, var):
            return self._constant(node, var)
        kind = node.kind
        if kind == "variable":
            return rules.Power(node.expr, var, node.text, base=var, exponent=sp.S.One)
        if kind == "sum":
            terms = tuple(self.step(c, var, depth) for c in node.children)
            return rules.Sum(node.expr, var, node.text, terms=terms, signs=node.signs)
        if kind == "neg":
            inner = self.step(node.children[0], var, depth)
            return rules.ConstantMultiple(node.expr, var, node.text, constant=sp.S.NegativeOne, inner=inner)
        if kind == "product":
            return self._product(node, var, depth)
        if kind == "quotient":
            return self._quotient(node, var, depth)
        if kind == "power":
            return self._power(node, var, depth)
        if kind == "call":
            return self._call(node, var, depth)
        return rules.TableLookup(node.expr, var, node.text, function=kind)  # pragma: no cover

    def _product(self, node: Node, var, depth) -> rules.Step:
        constants = [c for c in node.children if not self._depends(c, var)]
        varying = [c for c in node.children if self._depends(c, var)]
        if len(varying) == 1:
            (only,) = varying
            inner = self.step(only, var, depth)
        else:
            expr = sp.Mul(*(c.expr for c in varying))
            text = node.text if not constants else "·".join(c.shown() for c in varying)
            factors = tuple(self.step(c, var, depth) for c in varying)
            inner = rules.Product(expr, var, text, factors=factors, slip=self._slipped("product"))
        if not constants:
            return inner
        c = sp.Mul(*(k.expr for k in constants))
        return rules.ConstantMultiple(node.expr, var, node.text, constant=c, inner=inner, held=self._held(c, var))

    def _reciprocal(self, bottom: Node, var, depth) -> rules.Step:
        """d/dx 1/g: the power rule on g^(-1) (by the chain rule when g is not the variable)."""
        expr = 1 / bottom.expr
        text = f"1/{bottom.shown()}"
        if bottom.expr == var:
            return rules.Power(expr, var, text, base=var, exponent=sp.S.NegativeOne,
                               written=f"1/{var} = {var}^(-1)")
        return self._chain(expr, text, bottom, var, depth,
                           lambda u: rules.Power(1 / u, u, f"1/{u}", base=u, exponent=sp.S.NegativeOne,
                                                 written=f"1/{u} = {u}^(-1)"))

    def _quotient(self, node: Node, var, depth) -> rules.Step:
        top, bottom = node.children
        if not self._depends(bottom, var):  # f/c = (1/c) f
            inner = self.step(top, var, depth)
            c = 1 / bottom.expr
            return rules.ConstantMultiple(node.expr, var, node.text, constant=c, inner=inner, held=self._held(c, var))
        if not self._depends(top, var):  # c/g = c · g^(-1)
            inner = self._reciprocal(bottom, var, depth)
            if top.expr == 1:
                return inner if inner.text == node.text else rules.Rewrite(
                    node.expr, var, node.text, identity=f"{node.text} = {inner.text}", inner=inner)
            return rules.ConstantMultiple(node.expr, var, node.text, constant=top.expr, inner=inner,
                                          held=self._held(top.expr, var))
        return rules.Quotient(node.expr, var, node.text, top=self.step(top, var, depth),
                              bottom=self.step(bottom, var, depth), slip=self._slipped("quotient"))

    def _chain(self, expr: sp.Expr, text: str, inner_node: Node, var, depth, outer_rule) -> rules.Step:
        """f(g(x)) by the chain rule: outer_rule(u) differentiates f(u) by u."""
        u = self._letter(depth)
        outer = outer_rule(u)
        inner = self.step(inner_node, var, depth + 1)
        return rules.Chain(expr, var, text, u=u, inner_text=inner_node.text, outer=outer, inner=inner,
                           slip=self._slipped("chain"))

    def _apply(self, node: Node, var, depth, make) -> rules.Step:
        """make(u) is the rule for f(u) with u a plain variable; the chain rule around it unless the argument is
        the variable itself."""
        (argument,) = node.children[:1]
        if argument.expr == var:
            return replace(make(var), text=node.text)
        return self._chain(node.expr, node.text, argument, var, depth, make)

    def _power(self, node: Node, var, depth) -> rules.Step:
        base, exponent = node.children
        in_base, in_exponent = self._depends(base, var), self._depends(exponent, var)
        if in_base and not in_exponent:
            n = exponent.expr
            if base.expr == var:
                return rules.Power(node.expr, var, node.text, base=var, exponent=n)
            return self._chain(node.expr, node.text, base, var, depth,
                               lambda u: rules.Power(u ** n, u, shown_power(u, n), base=u, exponent=n))
        if in_exponent and not in_base:
            a = base.expr
            place = self._slipped("exponential")

            def make(u, a=a, place=place):
                return rules.Exponential(a ** u, u, f"{'e' if a == sp.E else base.shown()}^{u}", base=a, slip=place)

            if exponent.expr == var:
                return replace(make(var), text=node.text)
            return self._chain(node.expr, node.text, exponent, var, depth, make)
        # f^g: logarithmic differentiation, ln y = g ln f
        log_base = Node("call", sp.log(base.expr), f"ln({base.text})", (base,), name="ln")
        text = f"{exponent.shown()}·{log_base.text}"
        product = Node("product", exponent.expr * log_base.expr, text, (exponent, log_base))
        inner = self.step(product, var, depth)
        return rules.LogDifferentiation(node.expr, var, node.text, base_text=base.text, inner=inner)

    def _call(self, node: Node, var, depth) -> rules.Step:
        name = node.name
        args = node.children
        if name.startswith("log_") or name in ("log10", "log2") or (name == "log" and len(args) == 2):
            if name == "log" and self._depends(args[1], var):
                return self._log_variable_base(node, var, depth)
            base = args[1].expr if name == "log" else _LOG_BASES.get(name) or _log_base(node)
            return self._apply(node, var, depth, lambda u: rules.Logarithm(
                sp.log(u) / sp.log(base), u, f"log_{shown_base(base)}({u})", base=base))
        if len(args) > 1:
            return self._multi(node, var, depth)
        function = _CANONICAL.get(name)
        argument = args[0]
        if function in (sp.log,):
            if argument.kind == "call" and _CANONICAL.get(argument.name) is sp.Abs:  # ln|u|
                inner_node = argument.children[0]
                make = lambda u: rules.Logarithm(sp.log(sp.Abs(u)), u, f"ln|{u}|", absolute=True)
                if inner_node.expr == var:
                    return rules.Logarithm(node.expr, var, node.text, absolute=True)
                return self._chain(node.expr, node.text, inner_node, var, depth, make)
            return self._apply(node, var, depth, lambda u: rules.Logarithm(sp.log(u), u, f"ln({u})"))
        if function is sp.exp:
            place = self._slipped("exponential")
            return self._apply(node, var, depth, lambda u: rules.Exponential(sp.exp(u), u, f"e^{u}", slip=place))
        if function is sp.sqrt:
            return self._apply(node, var, depth, lambda u: rules.Power(
                sp.sqrt(u), u, f"sqrt({u})", base=u, exponent=sp.Rational(1, 2), written=f"sqrt({u}) = {u}^(1/2)"))
        if name == "cbrt":
            return self._apply(node, var, depth, lambda u: rules.CubeRoot(FUNCTIONS["cbrt"][0](u), u, f"cbrt({u})"))
        if function is sp.Abs:
            return self._apply(node, var, depth, lambda u: rules.AbsoluteValue(sp.Abs(u), u, f"|{u}|"))
        if function is sp.sign:
            return self._apply(node, var, depth, lambda u: rules.Constant(
                sp.sign(u), u, f"sign({u})", why=f"sign({u}) is constant where {u} != 0"))
        if function in rules.TEXTBOOK:
            place = self._slipped("cos") if function is sp.cos else None
            return self._apply(node, var, depth, lambda u: rules.Elementary(
                function(u), u, f"{name}({u})", function=function, slip=place))
        constructor = function if function is not None else type(node.expr)
        return self._apply(node, var, depth, lambda u: rules.TableLookup(
            constructor(u), u, f"{name}({u})", function=name))

    def _log_variable_base(self, node: Node, var, depth) -> rules.Step:
        argument, base = node.children
        top = Node("call", sp.log(argument.expr), f"ln({argument.text})", (argument,), name="ln")
        bottom = Node("call", sp.log(base.expr), f"ln({base.text})", (base,), name="ln")
        text = f"{top.text}/{bottom.text}"
        quotient = Node("quotient", top.expr / bottom.expr, text, (top, bottom))
        return rules.Rewrite(node.expr, var, node.text, identity=f"{node.text} = {text}",
                             inner=self.step(quotient, var, depth))

    def _multi(self, node: Node, var, depth) -> rules.Step:
        dummies = [symbol(f"_a{i}") for i in range(len(node.children))]
        constructor = _CANONICAL.get(node.name, type(node.expr))
        general = constructor(*dummies)
        values = {d: c.expr for d, c in zip(dummies, node.children)}
        partials = tuple(sp.diff(general, d).xreplace(values) for d in dummies)
        arguments = tuple(self.step(c, var, depth) for c in node.children)
        return rules.MultiChain(node.expr, var, node.text, function=node.name, partials=partials,
                                arguments=arguments)


def _log_base(node: Node) -> sp.Expr:
    base_text = node.name[4:]
    return sp.Integer(base_text) if base_text.isdigit() else symbol(base_text)


def shown_base(base: sp.Expr) -> str:
    text = symbolic.to_display(base)
    return text if base.is_Atom else f"({text})"


def shown_power(u: sp.Symbol, n: sp.Expr) -> str:
    text = symbolic.to_display(n)
    return f"{u}^{text}" if n.is_Integer and n >= 0 else f"{u}^({text})"


def derive(node: Node, var: str, used=(), slip=None) -> rules.Step:
    """The rule tree of d/d(var) of the node."""
    return Deriver(var, used, slip).step(node)


def slip_places(node: Node, var: str, used=()) -> Counter:
    """How many times each slip-able rule is used in the derivation (for trying each place in turn)."""
    deriver = Deriver(var, used)
    deriver.step(node)
    return deriver.count
