"""`pdiff check --work FILE`: a student's derivation, line by line — the first wrong line and the likely mistake.

Each line is an expression claimed equal to the derivative (the first line may give the function, or
`d/dx(...)` of it). A line is correct when it equals the true derivative (at points of the domain, confirmed at 30
digits, and by SymPy where it can tell). The first line that is not is where the error entered; a later wrong
line is a "carried error" when it equals the line before it (the algebra was right, the error came along) and a
"new error" otherwise. Each counterexample is the simplest point found (small integers first). The mistake is
named by re-deriving the function with one known slip at a time (pdiff.steps.derive.SLIPS: a dropped chain-rule
factor, a reversed quotient numerator, ...; or the wrong variable) and finding the slip that gives the line.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence

import sympy as sp

from pdiff import question, reader, symbolic
from pdiff.errors import InputError, PdiffError
from pdiff.latex import partial_to_plain
from pdiff.parse import read_input, symbol
from pdiff.steps import verify
from pdiff.steps.derive import SLIPS, derive, slip_places
from pdiff.steps.results import WorkLine, WorkReport
from pdiff.steps.tree import from_reading

AGREE = 12  # agreeing points for two expressions to count as equal
SIMPLE_VALUES = [sp.Integer(v) for v in (1, 2, -1, 3, -2)] + [sp.Rational(1, 2), sp.Rational(-1, 2), sp.Integer(4),
                                                               sp.Integer(-3), sp.Rational(3, 2), sp.Integer(5)]
MAX_LINES = 500

# what students write in front of a line: "= ...", "f'(x) = ...", "y' = ...", "dy/dx = ..."
_LEFT_SIDE = re.compile(r"^\s*(?:=|[A-Za-z]\w*\s*['′]+\s*(?:\([^()]*\))?\s*=|d\s*\w*\s*/\s*d\s*\w+\s*=)")


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            out.append((number, content))
    if len(out) > MAX_LINES:
        raise InputError(f"a derivation of more than {MAX_LINES} lines")
    return out


def _claim(text: str) -> str:
    match = _LEFT_SIDE.match(text)
    return text[match.end():].strip() if match else text


def _equal(a: sp.Expr, b: sp.Expr, domain: sp.Expr, extra=()) -> verify.Numeric:
    return verify.compare(a, b, domain, wanted=AGREE, extra=extra)


def _simplest_counterexample(line: sp.Expr, truth: sp.Expr, domain: sp.Expr, fallback: str | None) -> str | None:
    """The first point, small integers first, where the derivative is defined and the line differs."""
    symbols = sorted(line.free_symbols | truth.free_symbols | domain.free_symbols, key=lambda s: s.name)
    if not symbols:
        return fallback
    candidates = itertools.product(SIMPLE_VALUES, repeat=len(symbols)) if len(symbols) <= 3 else []
    for values in itertools.islice(candidates, 400):
        point = dict(zip(symbols, values))
        f, t = verify._exact(domain, point), verify._exact(truth, point)
        if math.isnan(f) or math.isnan(t):
            continue
        got = verify._exact(line, point)
        if math.isnan(got) or not verify._close(got, t, verify.EXACT_RTOL, 1e-12):
            where = ", ".join(f"{s.name}={symbolic.to_display(v)}" for s, v in point.items())
            said = "undefined" if math.isnan(got) else f"{got:.6g}"
            return f"at {where} the derivative is {t:.6g} but this line gives {said}"
    return fallback


def _mistake(line: sp.Expr, node, wanted, used, domain, function: sp.Expr) -> str | None:
    """The known slip whose derivation gives the line (tried everywhere, then at each place it occurs)."""
    var = wanted.wrt[-1]
    if len(wanted.wrt) == 1:
        places = slip_places(node, var, used)
        from pdiff.steps.derive import _SLIP_RULES

        for kind, said in SLIPS.items():
            count = places.get(_SLIP_RULES[kind], 0)
            if not count:
                continue
            for index in [None, *range(1, count + 1)] if count > 1 else [None]:
                try:
                    slipped = derive(node, var, used, slip=(kind, index)).output
                except (PdiffError, TypeError, ValueError, ZeroDivisionError):
                    continue
                if slipped == symbolic.derivative(function, [var]):
                    continue  # this slip changes nothing here
                if _matches(line, slipped, domain):
                    return said
    for other in sorted(used - set(wanted.wrt)):
        if symbol(other) in function.free_symbols:
            wrong = symbolic.derivative(function, [*wanted.wrt[:-1], other])
            if _matches(line, wrong, domain):
                return f"differentiated with respect to {other} instead of {var}"
    return None


def _matches(line: sp.Expr, candidate: sp.Expr, domain: sp.Expr) -> bool:
    numeric = verify.compare(line, candidate, domain, wanted=8)
    return numeric.counterexample is None and numeric.agree >= 4


def check_work(text: str, source: str = "<work>", *, expression: str | None = None, partial: str | None = None,
               wrt=None, latex: bool | None = None, var: Sequence[str] | None = None) -> WorkReport:
    """Grade a derivation (see the module)."""
    lines = _lines(text)
    if expression is None:
        if not lines:
            raise InputError(f"{source}: empty: give the function on the first line, then one step per line")
        (_first, expression), lines = lines[0], lines[1:]
    elif lines:
        try:  # a first line `d/dx (...)` restates the function: not a step
            restated = read_input(lines[0][1], names=question.declared(wrt=wrt, var=var), latex=latex)
            if restated.operator is not None:
                partial = partial or restated.operator
                lines = lines[1:]
        except PdiffError:
            pass
    if not lines:
        raise InputError(f"{source}: no steps to check after the function")
    names = question.declared(wrt=wrt, var=var)
    asked = question.read(expression, names=names, latex=latex)
    if asked.is_vector or asked.equation is not None:
        raise InputError(f"{source}: the function must be one expression")
    wanted = question.partials(asked, [partial_to_plain(partial)] if partial else [], wrt)
    if len(wanted) != 1:
        raise InputError(f"name the partial, e.g. {wanted[0].text} (the function has several variables)")
    (wanted,) = wanted
    function = asked.components[0]
    truth = symbolic.derivative(function, list(wanted.wrt))
    domain = function + truth
    reading = reader.read(expression, names=names, latex_mode=latex)
    node = from_reading(reading, expression)
    used = set(symbolic.variables_of([function])) | set(wanted.wrt) | set(asked.variables)

    parsed: list[tuple[int, str, sp.Expr]] = []
    for number, content in lines:
        claim = _claim(content)
        try:
            read = read_input(claim, names=names | used, latex=latex)
        except PdiffError as exc:
            raise InputError(f"{source}:{number}: cannot read {claim!r}: {exc}") from None
        if isinstance(read.expression, list) or read.equation is not None:
            raise InputError(f"{source}:{number}: expected one expression, got {claim!r}")
        parsed.append((number, content, read.expression))

    results: list[WorkLine] = []
    first_wrong = None
    previous = None
    for number, content, expr in parsed:
        numeric = _equal(expr, truth, domain)
        correct = numeric.counterexample is None and numeric.agree > 0
        if correct and numeric.agree < AGREE and verify.is_zero(expr - truth, 1.0) is not True:
            correct = numeric.agree >= 3
        if correct:
            results.append(WorkLine(number, content, "correct"))
        else:
            counter = _simplest_counterexample(expr, truth, domain, numeric.counterexample)
            if first_wrong is None:
                first_wrong = number
                verdict = "error"
            else:
                same = previous is not None and _matches(expr, previous, domain)
                verdict = "carried error" if same else "new error"
            mistake = None if verdict == "carried error" else _mistake(expr, node, wanted, used, domain, function)
            results.append(WorkLine(number, content, verdict, mistake, counter))
        previous = expr
    return WorkReport(source, asked.read_as, wanted.text, symbolic.to_display(truth), first_wrong, tuple(results),
                      tuple(asked.notes))
