"""`pdiff steps`: the derivative of an expression as a tree of rule applications, every step verified.

read (pdiff.question) → the user's tree (tree) → rule records (derive, rules) → a simplify step → the next order
from the printed result → each step checked (verify) → the root against autograd → StepsReport (results).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import sympy as sp

from pdiff import bounds, question, reader, symbolic
from pdiff.errors import InputError
from pdiff.latex import partial_to_plain
from pdiff.parse import symbol
from pdiff.points import check_points, coerce_point
from pdiff.steps import rules, verify
from pdiff.steps.derive import derive
from pdiff.steps.results import AtPoint, StepsReport, StepView, Verification
from pdiff.steps.tree import Node, from_reading, from_sympy

STEP_SECONDS = 1.0  # symbolic check of one step, at most
ROOT_SECONDS = 4.0  # of the root of each order and of a simplify step
SIMPLIFY_SECONDS = 2.0


def operator(var: str, partial: bool) -> str:
    return f"∂/∂{var}" if partial else f"d/d{var}"


def read_question(expression: str, partial: str | None, *, wrt=None, at=(), latex: bool | None = None, var=None):
    """(Question, Partial, the user's tree, at points) for one scalar expression."""
    at_points = [coerce_point(p) for p in at]
    names = question.declared(at_points, wrt=wrt, var=var)
    asked = question.read(expression, names=names, latex=latex)
    if asked.is_vector:
        raise InputError("pdiff steps explains one expression, not a vector: give one component")
    if asked.equation is not None:
        raise InputError("pdiff steps explains the derivative of an expression, not an equation")
    wanted = question.partials(asked, [partial_to_plain(partial)] if partial else [], wrt)
    if not wanted:  # a constant: d/dx of it
        wanted = question.partials(asked, ["d/dx"], None)
    if len(wanted) != 1:
        raise InputError(f"name the partial to explain, e.g. {wanted[0].text} (the function has "
                         f"{len(asked.variables)} variables: {', '.join(asked.variables)})")
    (wanted,) = wanted
    reading = reader.read(expression, names=names, latex_mode=latex)
    node = from_reading(reading, expression)
    names_all = sorted({*asked.variables, *wanted.wrt, *symbolic.variables_of(asked.components)},
                       key=symbolic.natural_key)
    check_points(at_points, names_all)
    return asked, wanted, node, at_points


class _Viewer:
    """Rule records → StepViews with Dewey numbers, each verified."""

    def __init__(self, budget: verify.Budget, symbolic_steps: str, partial: bool, extra_points, names=(),
                 latex: bool = True):
        self.budget = budget
        self.latex = latex
        self.names = set(names)  # the function's variables (∂ for them in a partial; d/du for an inner letter)
        self.mode = symbolic_steps  # all, root or none
        self.partial = partial
        self.extra = extra_points
        self.root_points = 0

    def _check(self, claim: sp.Expr, truth: sp.Expr | None, domain: sp.Expr, root: bool,
               extra=()) -> Verification:
        if truth is None:
            return Verification(None, 0)
        numeric = verify.compare(claim, truth, domain, extra=extra)
        if numeric.counterexample:
            return Verification(False, numeric.agree, numeric.counterexample)
        symbolic_ok = None
        if self.mode == "all" or (self.mode == "root" and root) or not numeric.evaluable:
            symbolic_ok = verify.is_zero(claim - truth, self.budget.slice(root))
        if symbolic_ok is False:
            return Verification(False, numeric.agree, "SymPy shows it differs from the derivative")
        return Verification(symbolic_ok, numeric.agree)

    def step(self, record: rules.Step, number: str, root: bool = False, held=()) -> StepView:
        truth = verify.truth_of(record.expr, record.var, max(self.budget.left(), 0.0))
        extra = self.extra if root else ()
        verified = self._check(record.output, truth, record.expr, root, extra)
        substeps = tuple(self.step(s, f"{number}.{i}") for i, s in enumerate(record.substeps, start=1))
        var = str(record.var)
        return StepView(number, record.rule, var, operator(var, self.partial and var in self.names), record.text,
                        symbolic.to_display(record.output), record.note, verified, substeps, tuple(held),
                        *self._latex(record.expr, record.output))

    def _latex(self, *exprs) -> tuple[str, ...]:
        return tuple(sp.latex(e) if self.latex else "" for e in exprs)

    def simplify(self, step: rules.Simplify, number: str) -> StepView:
        numeric = verify.compare(step.after, step.before, step.before, extra=self.extra)
        if numeric.counterexample:
            verified = Verification(False, numeric.agree, numeric.counterexample)
        else:
            proven = None if self.mode == "none" else verify.is_zero(step.after - step.before, self.budget.slice(True))
            verified = Verification(proven, numeric.agree,
                                    None if proven is not False else "SymPy shows the two differ")
        text = symbolic.to_display(step.before)
        return StepView(number, "simplify", "", "", text, symbolic.to_display(step.after), step.note, verified, (),
                        (), *self._latex(step.before, step.after))


def explain(expression: str, partial: str | None = None, *, wrt=None, at: Sequence = (), latex: bool | None = None,
            var=None, timeout: float = bounds.DEFAULT_TIMEOUT, symbolic_steps: str = "all",
            step_seconds: float = STEP_SECONDS, root_seconds: float = ROOT_SECONDS, autograd: bool = True, simplify_seconds: float = SIMPLIFY_SECONDS,
            latex_output: bool = True) -> StepsReport:
    """The steps of PARTIAL of EXPRESSION, each verified (see the module). `symbolic_steps`: which steps SymPy
    checks symbolically besides the points (all, root: each order's root and simplify steps, none);
    `simplify_seconds` 0 leaves out the simplify step; `latex_output` False leaves the LaTeX strings empty."""
    if not timeout > 0:
        raise InputError("--timeout must be positive")
    asked, wanted, node, at_points = read_question(expression, partial, wrt=wrt, at=at, latex=latex, var=var)
    budget = verify.Budget(timeout * 0.9, step_seconds, root_seconds)
    used = set(symbolic.variables_of(asked.components)) | set(wanted.wrt) | set(asked.variables)
    is_partial = len(set(asked.variables) | set(wanted.wrt)) > 1
    extra = [{symbol(n): v for n, v in p.items()} for p in at_points]
    viewer = _Viewer(budget, symbolic_steps, is_partial, extra, used, latex_output)
    views: list[StepView] = []
    current_node: Node = node
    current = node.expr
    notes: list[str] = []
    for var_name in wanted.wrt:
        record = derive(current_node, var_name, used)
        held = tuple(n for n in symbolic.variables_of([current]) if n != var_name)
        views.append(viewer.step(record, str(len(views) + 1), root=True, held=held))
        result = record.output
        simpler = _simplified(result, budget, simplify_seconds)
        if simpler is not None:
            views.append(viewer.simplify(rules.Simplify(result, simpler), str(len(views) + 1)))
            result = simpler
        current = result
        current_node = from_sympy(current)
    held_constant = tuple(n for n in symbolic.variables_of([node.expr]) if n not in wanted.wrt)
    agree, disagree = (_autograd(node.expr, current, wanted.wrt, extra) if autograd else (0, None))
    values = tuple(_at_point(node.expr, current, wanted.wrt, p, autograd) for p in at_points)
    if budget.left() <= 0:
        notes.append(f"time ran out ({timeout:g} s): later steps were checked at points only")
    return StepsReport(expression, asked.read_as, wanted.text, wanted.leibniz, tuple(wanted.wrt),
                       tuple(asked.variables), held_constant, tuple(views), symbolic.to_display(current),
                       sp.latex(current) if latex_output else "", agree, disagree, values, (*asked.notes, *notes))


def _simplified(expr: sp.Expr, budget: verify.Budget, seconds: float) -> sp.Expr | None:
    seconds = min(seconds, budget.left())
    if seconds <= 0:
        return None
    try:
        simpler = symbolic.simplified(expr, time.monotonic() + seconds, bounds.alarm)
    except TimeoutError:
        return None
    return simpler if simpler != expr else None


def _autograd(expr: sp.Expr, result: sp.Expr, wrt: Sequence[str], extra) -> tuple[int, str | None]:
    """Points where torch autograd of the expression as typed agrees with the result, and a confirmed
    disagreement if one is found."""
    import torch

    from pdiff.autodiff import partials_at
    from pdiff.lower import UnsupportedError, lower

    symbols = sorted(expr.free_symbols | result.free_symbols | {symbol(n) for n in wrt}, key=lambda s: s.name)
    drawn = [*extra, *verify.points(symbols, seed=1)]
    names = [s.name for s in symbols]
    columns = {s.name: torch.tensor([float(p[s]) for p in drawn], dtype=torch.float64) for s in symbols}
    try:
        (values,) = partials_at(lower(expr, names), columns, [tuple(wrt)])
    except UnsupportedError:
        return 0, None
    agree = 0
    for j, point in enumerate(drawn):
        got = values[j].item()
        floats = {s: float(v) for s, v in point.items()}
        f, claim = verify.evaluate(expr, floats), verify.evaluate(result, floats)
        if not (math.isfinite(got) and math.isfinite(f)):
            continue
        if math.isfinite(claim) and verify._close(got, claim, 1e-6, 1e-8):
            agree += 1
            continue
        exact = verify._exact(result, point)
        if math.isfinite(exact) and verify._close(got, exact, 1e-6, 1e-8):
            agree += 1
        elif math.isfinite(verify._exact(expr, point)):
            return agree, f"at {verify._point_text(point)}: autograd {got:.10g}, result {exact:.10g}"
    return agree, None


def _at_point(expr: sp.Expr, result: sp.Expr, wrt, point: dict, autograd: bool) -> AtPoint:
    mapping = {symbol(n): v for n, v in point.items()}
    exact = result.xreplace(mapping)
    if math.isnan(verify._exact(expr, mapping)):
        value = math.nan
    else:
        value = symbolic.to_float(exact)
    got = None
    if autograd:
        import torch

        from pdiff.autodiff import partials_at
        from pdiff.lower import lower

        names = sorted({*point, *wrt, *(s.name for s in expr.free_symbols)})
        columns = {n: torch.tensor([float(point.get(n, 0))], dtype=torch.float64) for n in names}
        (values,) = partials_at(lower(expr, names), columns, [tuple(wrt)])
        got = values[0].item()
    text = ", ".join(f"{n}={symbolic.to_display(v)}" for n, v in point.items())
    shown = symbolic.to_display_value(exact) if math.isfinite(value) else "undefined"
    return AtPoint(text, shown, value if math.isfinite(value) else None,
                   got if got is not None and math.isfinite(got) else None)
