"""Grading an answer for a partial derivative: `check(expression, partial, answer)` → CheckReport.

Two independent judges, and the verdict needs both:
- symbolic: SymPy differentiates and tries to simplify (derivative - answer) to 0, in a forked bounded worker
  (bounds.start) so it can be killed at the deadline;
- numeric: torch autograd differentiates the expression at a few hundred random points (and the --at points), the
  answer is lowered to torch too, and the two are compared where the expression, its derivative and the answer are
  all finite real numbers; the real domain is where these are defined, the same for both sides (real symbols in
  SymPy, nan outside the domain in torch). A float disagreement is only a suspect: a second bounded worker
  re-evaluates suspects exactly (30 digits) before one is called a counterexample.

correct: the difference simplifies to 0 and no point disagrees. incorrect: a confirmed counterexample, including an
answer that is undefined on a sizeable part of the domain (isolated holes such as x/|x| at 0 do not count).
undecided: the points agree but SymPy did not show the difference is 0 (timed out, or could not) — said so.
"""

from __future__ import annotations

import math
import time
from typing import Iterator, Mapping, Sequence

import sympy as sp

from pdiff import bounds, implicit, question, symbolic
from pdiff.check_results import (CheckReport, Counterexample, ProblemResult, ProblemSetReport, Shown,
                                 Verdict)
from pdiff.errors import InputError, PdiffError
from pdiff.latex import partial_to_plain
from pdiff.parse import read_input
from pdiff.points import check_points, coerce_point

SAMPLES = 256  # random points per check, spread over four scales
SCALES = (1.0, 3.0, 10.0, 100.0)  # each variable uniform in [-s, s], rounded to 2 decimals (nice counterexamples)
# float64 screening: a point is a suspect when |derivative - answer| > ATOL + RTOL * max(|derivative|, |answer|)
RTOL, ATOL = 1e-7, 1e-9
EXACT_RTOL = 1e-10  # the exact re-evaluation (30 digits) confirms a suspect when it differs by more than this
UNDEFINED_SHARE = 0.05  # the answer undefined at more than this share of the domain's points is incorrect
MAX_SUSPECTS = 6  # suspects re-evaluated exactly, most telling first
SIMPLIFY_SECONDS = 2.0  # polishing the shown derivative; the zero test gets the rest of the time
PRETTY_OPS = 400  # larger expressions are shown on one line only


def _shown(expr: sp.Expr) -> Shown:
    small = sp.count_ops(expr) <= PRETTY_OPS
    return Shown(symbolic.to_text(expr), symbolic.to_display(expr),
                 sp.pretty(expr, use_unicode=True) if small else None, sp.latex(expr) if small else None)


def _number_text(value: sp.Expr) -> str:
    if isinstance(value, sp.Rational) and 100 % value.q == 0:
        return f"{float(value):g}"  # a sampled point k/100 reads as the decimal it is
    return symbolic.to_display(value)


def _point_text(point: Mapping[str, sp.Expr]) -> str:
    return ", ".join(f"{name}={_number_text(value)}" for name, value in point.items())


# ---- the symbolic side (runs in forked workers)

def _zero_test(difference: sp.Expr, seconds: float, alarm) -> str:
    """"zero" when some simplification reaches 0; "timeout" when one ran out of time; else "not shown zero"."""
    if difference == 0:
        return "zero"
    start = time.monotonic()
    strategies = [sp.simplify]
    if difference.has(sp.sign):
        # sign(u) = u/|u| wherever sign is not 0; autograd's d|u| is sign(u), students write u/|u|
        strategies.append(lambda e: sp.simplify(e.replace(sp.sign, lambda u: u / sp.Abs(u))))
    strategies += [lambda e: sp.simplify(sp.expand_trig(sp.expand_log(e))),
                   lambda e: sp.simplify(e.rewrite(sp.exp))]
    outcome = "not shown zero"
    for i, strategy in enumerate(strategies):
        left = seconds - (time.monotonic() - start)
        share = left * (0.6 if i == 0 else 1.0 if i == len(strategies) - 1 else 0.5)
        try:
            with alarm(share):
                simplest = strategy(difference)
                if simplest == 0:
                    return "zero"
                if simplest.is_number and simplest.is_zero is False:
                    return "nonzero"  # 3x^2 + 1e-12 for x^3: off by a constant too small for float64 to see
        except TimeoutError:
            outcome = "timeout"
    return outcome


def zero_jobs(expr: sp.Expr, wrt: Sequence[str], answer: sp.Expr, seconds: float, alarm,
              curve: sp.Expr | None = None) -> Iterator[tuple]:
    """The symbolic judge: ("derivative", Shown) unsimplified, then ("zero", outcome of the zero test). With a
    `curve` F (implicit differentiation) the difference need only vanish where F = 0."""
    start = time.monotonic()
    derivative = symbolic.derivative(expr, wrt)
    yield ("derivative", Shown(symbolic.to_text(derivative), symbolic.to_display(derivative)))
    outcome = _zero_test(derivative - answer, seconds - (time.monotonic() - start), alarm)
    if outcome != "zero" and curve is not None:
        try:
            with alarm(max(seconds - (time.monotonic() - start), 0.05)):
                outcome = "zero" if _zero_on_curve(derivative - answer, curve) else outcome
        except TimeoutError:
            outcome = "timeout"
    yield ("zero", outcome)


def _zero_on_curve(difference: sp.Expr, curve: sp.Expr) -> bool:
    """Whether the difference's numerator is a multiple of the polynomial F (so it is 0 wherever F = 0):
    -25/y^3 and -(x^2 + y^2)/y^3 agree on x^2 + y^2 = 25. Only for polynomial curves; False otherwise."""
    numerator = sp.numer(sp.together(difference))
    symbols = sorted(curve.free_symbols | numerator.free_symbols, key=lambda s: s.name)
    if not (curve.is_polynomial(*symbols) and numerator.is_polynomial(*symbols)):
        return False
    _, remainder = sp.reduced(sp.expand(numerator), [sp.expand(curve)], *symbols)
    return remainder == 0


def exact_jobs(expr: sp.Expr, wrt: Sequence[str], answer: sp.Expr, points: Sequence[Mapping[str, sp.Expr]],
               alarm) -> Iterator[tuple]:
    """Suspect points re-evaluated exactly: ("point", j, f, derivative, answer) as floats (nan where not a finite
    real number); then the derivative to show: ("derivative", Shown), simplified when that finishes in time."""
    derivative = symbolic.derivative(expr, wrt)
    for j, point in enumerate(points):
        values = [symbolic.to_float(symbolic.exact_value(e, dict(point))) for e in (expr, derivative, answer)]
        yield ("point", j, *values)
    yield ("derivative", Shown(symbolic.to_text(derivative), symbolic.to_display(derivative)))
    shown = derivative
    try:
        with alarm(SIMPLIFY_SECONDS):
            shown = symbolic.simplified(derivative)
    except TimeoutError:
        pass
    try:
        with alarm(SIMPLIFY_SECONDS):
            yield ("derivative", _shown(shown))
    except TimeoutError:
        pass


# ---- the numeric side (this process)

def _sample_points(names: Sequence[str], count: int, seed: int):
    """count points per name as integers k (the value is k/100), spread over SCALES.

    k is never a multiple of 5: round values (0, 1, 1/2, 1/4) are where kinks and removable holes sit (|x| at 0,
    where the derivative does not exist and SymPy's sign(0) = 0 would make a misleading counterexample)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    scales = torch.tensor(SCALES, dtype=torch.float64).repeat_interleave(-(-count // len(SCALES)))[:count]
    points = {}
    for name in names:
        k = torch.round((torch.rand(count, generator=generator, dtype=torch.float64) * 2 - 1) * scales * 100)
        k = k.to(torch.int64)
        points[name] = k + (k % 5 == 0).to(torch.int64)
    return points


def _numeric(expr, answer, wrt, names, at_points, samples, seed, deadline):
    """float64 values of f, the autograd derivative and the answer at the --at points then the random points."""
    import torch

    from pdiff.autodiff import DeadlineExceeded, partials_at
    from pdiff.lower import lower

    hundredths = _sample_points(names, samples, seed)
    columns = {name: torch.cat([torch.tensor([float(sp.N(p[name], 17)) for p in at_points], dtype=torch.float64),
                                hundredths[name].to(torch.float64) / 100]) for name in names}
    size = len(at_points) + samples
    with torch.no_grad():
        a = torch.broadcast_to(lower(answer, names)(columns), (size,))
    try:  # f itself is the root of the same autograd pass: one forward evaluation
        d, f = partials_at(lower(expr, names), columns, [tuple(wrt), ()], deadline)
    except DeadlineExceeded:
        return None

    def exact_point(j: int) -> dict[str, sp.Expr]:
        if j < len(at_points):
            return dict(at_points[j])
        return {name: sp.Rational(int(hundredths[name][j - len(at_points)]), 100) for name in names}

    return f, d, a, columns, exact_point


def _numeric_on_curve(curve, roles, order, answer, names, at_points, samples, seed, deadline):
    """Like _numeric for dⁿy/dxⁿ of F = 0: random points on the curve (Newton's method), the derivative from
    autograd's partials of F (pdiff.implicit.numeric), the answer lowered. "f" is the derivative itself: the
    domain is where the implicit function exists."""
    import torch

    from pdiff.autodiff import DeadlineExceeded, partials_at
    from pdiff.lower import lower

    sampled = implicit.sample_on_curve(curve, names, roles[0], samples, seed)
    columns = {name: torch.cat([torch.tensor([float(sp.N(p[name], 17)) for p in at_points], dtype=torch.float64),
                                sampled[name].to(torch.float64)]) for name in names}
    size = len(at_points) + len(sampled[names[0]])
    _, needed = implicit.formula(order)
    role_names = {"x": roles[1], "y": roles[0]}
    try:
        partials = partials_at(lower(implicit.equation_expr(curve), names), columns,
                               [tuple(role_names[r] for r in p) for p in needed], deadline)
    except DeadlineExceeded:
        return None
    d = torch.broadcast_to(implicit.numeric(dict(zip(needed, partials)), order), (size,))
    with torch.no_grad():
        a = torch.broadcast_to(lower(answer, names)(columns), (size,))

    def exact_point(j: int) -> dict[str, sp.Expr]:
        if j < len(at_points):
            return dict(at_points[j])
        # 15 digits: within float noise of the curve, and a point a person can read
        return {name: sp.Rational(f"{columns[name][j].item():.15g}") for name in names}

    return d, d, a, columns, exact_point


def _suspects(f, d, a, n_at: int, size):
    """Indices to re-evaluate exactly, most telling first, and the number of points compared.

    Order: --at points, then clear gaps before ones near the float64 noise, then points nearest the origin (the
    counterexample shown is the simplest one that holds)."""
    import torch

    domain = torch.isfinite(f) & torch.isfinite(d)
    both = domain & torch.isfinite(a)
    gap = (d - a).abs()
    scale = torch.maximum(d.abs(), a.abs())
    differ = both & (gap > ATOL + RTOL * scale)
    undefined = domain & ~torch.isfinite(a)
    relative = torch.where(differ, gap / (1 + scale), torch.zeros_like(gap))
    order = sorted(torch.nonzero(differ).flatten().tolist(),
                   key=lambda j: (j >= n_at, relative[j].item() < 1e-4, size[j].item(), j))
    holes = sorted(torch.nonzero(undefined).flatten().tolist(), key=lambda j: (j >= n_at, size[j].item(), j))
    random_holes = [j for j in holes if j >= n_at]  # a hole at an --at point alone may be a removable one: noted
    sizeable = len(random_holes) >= 3 and len(random_holes) > UNDEFINED_SHARE * max(int(domain[n_at:].sum()), 1)
    chosen = order[:MAX_SUSPECTS] + (random_holes[:2] if sizeable else [])
    return list(dict.fromkeys(chosen)), int(both.sum()), relative


def _confirms(values: tuple[float, float, float]) -> bool:
    f, d, a = values
    if not (math.isfinite(f) and math.isfinite(d)):
        return False  # outside the domain after all (float64 saw a number where there is none)
    if not math.isfinite(a):
        return True
    return abs(d - a) > EXACT_RTOL * max(1.0, abs(d), abs(a))


def check(expression: str, partial: str, answer: str, *, at: Sequence[str | Mapping[str, object]] = (),
          timeout: float = bounds.DEFAULT_TIMEOUT, samples: int = SAMPLES, seed: int = 0,
          latex: bool | None = None, memory_mb: int = bounds.DEFAULT_MEMORY_MB,
          var: str | Sequence[str] | None = None) -> CheckReport:
    """Is `answer` the partial derivative `partial` of `expression`? Symbolic and numeric judges, see the module.

    >>> check("sin(x)^2", "d/dx", "sin(2x)").verdict.value
    'correct'
    >>> check("sqrt(x^2)", "d/dx", "1").counterexample.got
    1.0
    """
    if not timeout > 0:
        raise InputError("--timeout must be positive")
    start = time.monotonic()
    deadline = start + timeout
    at_points = [coerce_point(p) for p in at]
    names = question.declared(at_points, var=var)
    asked = question.read(expression, names=names, latex=latex)
    read_answer = read_input(answer, names=names, latex=latex)
    if asked.is_vector or isinstance(read_answer.expression, list):
        raise InputError("pdiff check takes one expression and one answer, not a vector")
    if read_answer.equation is not None or read_answer.operator is not None or read_answer.function is not None:
        raise InputError("the answer must be an expression (for f'(x) = 2x write just 2x)")
    expr, ans = asked.components[0], read_answer.expression
    own = set(symbolic.variables_of([expr]))
    extra = sorted(set(symbolic.variables_of([ans])) - own, key=symbolic.natural_key)
    if extra:
        raise InputError(f"the answer uses {', '.join(extra)}, which the function does not have "
                         f"(its variables: {', '.join(symbolic.variables_of([expr])) or 'none'})")
    (wanted,) = question.partials(asked, [partial_to_plain(partial)], None)
    variables = symbolic.variables_of([expr, ans])
    names = sorted({*variables, *wanted.wrt}, key=symbolic.natural_key)
    check_points(at_points, names)
    if not names:
        names = ["x"]  # constants: still compare at points (autograd needs an input)
    curve = roles = None
    if asked.equation is not None:  # implicit: grade dⁿy/dxⁿ on the curve F = 0
        roles = question.implicit_roles(asked, wanted)
        for point in at_points:
            if not implicit.on_curve(asked.equation, point):
                raise InputError(f"--at {_point_text(point)} is not on the curve {asked.read_as}")
        curve = asked.equation
        with bounds.alarm(min(timeout, 10.0)):
            expr = implicit.exact(curve, *roles, wanted.order)
    jobs_wrt = () if curve is not None else wanted.wrt

    work_seconds = max(timeout - 0.25, 0.05)  # leave the worker a moment to report before the deadline
    judge = bounds.start(zero_jobs, expr, jobs_wrt, ans, work_seconds, bounds.alarm, curve, memory_mb=memory_mb)
    derivative = counterexample = None
    notes: list[str] = []
    try:
        numeric = (_numeric(expr, ans, wanted.wrt, names, at_points, samples, seed, deadline) if curve is None
                   else _numeric_on_curve(curve, roles, wanted.order, ans, names, at_points, samples, seed, deadline))
        if numeric is None:  # autograd ran out of time: the symbolic judge alone cannot make it "correct"
            suspects, checked, points = [], 0, []
            notes.append(f"the numeric check did not finish within {timeout:g} s")
        else:
            f, d, a, columns, exact_point = numeric
            size = sum(columns[name].abs() for name in names)
            suspects, checked, relative = _suspects(f, d, a, len(at_points), size)
            points = [exact_point(j) for j in suspects]
        exact_worker = bounds.start(exact_jobs, expr, jobs_wrt, ans, points, bounds.alarm, memory_mb=memory_mb)
        exact_messages = exact_worker.collect(deadline).messages
    except BaseException:
        # an input error, ^C or the shell's line watchdog ends the call now, not at the deadline; a resident
        # judge left running would stay busy for the rest of the session
        judge.close()
        raise
    exact = {}
    for kind, *payload in exact_messages:
        if kind == "point":
            exact[payload[0]] = tuple(payload[1:])
        else:
            derivative = payload[0]
    for i, j in enumerate(suspects):
        got = a[j].item()
        where = {n: columns[n][j].item() for n in names}
        if i in exact and _confirms(exact[i]):
            got = exact[i][2]
            counterexample = Counterexample(where, _point_text(points[i]), exact[i][1],
                                            got if math.isfinite(got) else None)
            break
        if i not in exact and relative[j].item() > 1e-3:  # the exact side ran out of time: a clear float gap
            counterexample = Counterexample(where, _point_text(points[i]), d[j].item(),
                                            got if math.isfinite(got) else None, confirmed=False)
            notes.append("the counterexample was found in float64 and not confirmed exactly (time ran out)")
            break
    for j in range(len(at_points) if numeric is not None else 0):
        if not (math.isfinite(f[j].item()) and math.isfinite(d[j].item())):
            notes.append(f"--at {_point_text(at_points[j])} is outside the domain of the derivative: not compared")
        elif not math.isfinite(a[j].item()):
            notes.append(f"the answer is undefined at --at {_point_text(at_points[j])}: not compared there")

    if counterexample is not None:
        judge.close()  # the symbolic judge cannot overturn a counterexample checked exactly
        zero = "not needed"
    else:
        outcome = judge.collect(deadline)
        zero = "timeout"
        for kind, payload in outcome.messages:
            if kind == "zero":
                zero = payload
            elif derivative is None:
                derivative = payload
        if outcome.error:
            zero = f"failed: {outcome.error}"

    if counterexample is not None:
        verdict = Verdict.INCORRECT
        if counterexample.got is None:
            reason = f"the answer is undefined at {counterexample.point_text}, where the derivative is defined"
        else:
            reason = (f"at {counterexample.point_text} the derivative is {counterexample.expected:.10g} "
                      f"but the answer gives {counterexample.got:.10g}")
    elif zero == "nonzero":
        verdict = Verdict.INCORRECT
        reason = "the difference between the derivative and the answer simplifies to a nonzero constant"
    elif zero == "zero" and numeric is not None:
        verdict = Verdict.CORRECT
        reason = (f"the difference simplifies to 0, and the two agree at {checked} points" if checked else
                  "the difference simplifies to 0 (no point where both are defined was found to compare)")
    else:
        verdict = Verdict.UNDECIDED
        why = {"timeout": f"SymPy did not finish within {timeout:g} s",
               "not shown zero": "SymPy could not simplify the difference to 0",
               "zero": "the difference simplifies to 0"}.get(zero, f"SymPy {zero}")
        reason = (f"{why}; numerically the two agree at all {checked} points checked" if checked else
                  f"{why}, but the numeric check did not finish" if numeric is None else
                  f"{why}, and no point where both are defined was found to compare")
    if curve is not None:
        notes.append(f"implicit differentiation: {wanted.text} with {roles[0]} a function of {roles[1]}, checked at "
                     f"points on the curve {asked.read_as}")
    function = curve if curve is not None else expr
    return CheckReport(expression, _shown(function), tuple(symbolic.variables_of([function])), wanted.text,
                       wanted.wrt, wanted.leibniz, answer, _shown(ans), derivative, verdict, zero, counterexample,
                       checked, reason, (*asked.notes, *read_answer.notes, *notes), read_as=asked.read_as,
                       answer_read_as=read_answer.read_as)


# ---- problem files

def read_problems(text: str) -> Iterator[tuple[int, str, list[str] | None]]:
    """(line number, line, [expression, partial, answer] or None when malformed) for each problem line."""
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not content:
            continue
        parts = [part.strip() for part in content.split(";")]
        yield number, line.strip(), parts if len(parts) == 3 and all(parts) else None


def check_problems(text: str, source: str = "<problems>", *, timeout: float = bounds.DEFAULT_TIMEOUT,
                   latex: bool | None = None, seed: int = 0, debug: bool = False,
                   on_result=None) -> ProblemSetReport:
    """Grade every `EXPR ; PARTIAL ; ANSWER` line; an error in one line is recorded with its number, and the
    others go on. `on_result(ProblemResult)` is called as each line finishes (for progress)."""
    results: list[ProblemResult] = []
    with bounds.resident_workers():  # the judges' workers are forked once for the set, not per problem
        for number, line, parts in read_problems(text):
            try:
                if parts is None:
                    raise InputError("expected EXPR ; PARTIAL ; ANSWER")
                result = ProblemResult(number, line, check(*parts, timeout=timeout, latex=latex, seed=seed))
            except PdiffError as exc:
                result = ProblemResult(number, line, None, str(exc))
            except Exception as exc:  # noqa: BLE001 - one line's failure must not stop the set
                if debug:
                    raise
                result = ProblemResult(number, line, None, f"internal error: {type(exc).__name__}: {exc}")
            results.append(result)
            if on_result:
                on_result(result)
    if not results:
        raise InputError(f"{source}: no problems found (one per line: EXPR ; PARTIAL ; ANSWER)")
    return ProblemSetReport(source, tuple(results))
