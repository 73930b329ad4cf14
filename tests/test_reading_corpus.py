"""The reading corpus: how a person means what they type, write in a PDF or set in LaTeX, as the oracle for the reader.

tests/data/reading_corpus.tsv holds one case a line, `input<TAB>declared<TAB>expected`, written from the reading
rules (README / the reader's contract) and from what the text means to a reader, never copied from pdiff's output.
`expected` is a SymPy expression in Python syntax, parsed HERE with sympy.parse_expr (every identifier a real
symbol, plus an allow-list of SymPy functions), or one of:

- `!refuse`                       pdiff must refuse the input (an InputError: exit 2);
- `eq: <lhs> ; <rhs>`             an equation, result.equation == lhs - rhs;
- `op: <partial> ; <expr>`        a derivative operator in front (`d/dx (x^3)`): result.operator and the expression;
- `def: <name> ; <args> ; <expr>` a definition (`f(x,y) = ...`, `y = ...` with no arguments).

In expected expressions `cbrt` is the REAL cube root (sign(x)*|x|**(1/3)), `lambda` is the variable λ, `E` is e.
Each case is one test named `line<N>` after its line in the file, so a failure names the line to read.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

import pytest
import sympy
from sympy.parsing.sympy_parser import parse_expr, rationalize, standard_transformations

import pdiff.errors
import pdiff.notation
import pdiff.parse

CORPUS = Path(__file__).parent / "data" / "reading_corpus.tsv"


def _real_cbrt(x):
    return sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3)


# the only names an expected expression may call; every other identifier is a real symbol
_FUNCTIONS = {
    name: getattr(sympy, name)
    for name in (
        "sin", "cos", "tan", "cot", "sec", "csc", "asin", "acos", "atan", "acot", "asec", "acsc", "atan2",
        "sinh", "cosh", "tanh", "coth", "sech", "csch", "asinh", "acosh", "atanh", "acoth", "asech", "acsch",
        "exp", "log", "sqrt", "Abs", "sign", "erf", "Min", "Max", "Rational", "Integer", "root", "real_root",
    )
}
_FUNCTIONS["cbrt"] = _real_cbrt
_CONSTANTS = {"E": sympy.E, "pi": sympy.pi}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORD_STAND_IN = "KW_{}_"  # `lambda` (λ) cannot be a Python identifier in the expected text


# SymPy's own names for the Integer/Rational/Symbol calls parse_expr writes; identifiers come from `local`
_GLOBALS = {name: value for name, value in vars(sympy).items() if not name.startswith("_")}


def expected_expr(text: str):
    """Parse one expected expression (a SymPy expression, or a list of them for a vector)."""
    local: dict[str, object] = {}

    def rename(match: re.Match) -> str:
        name = match.group()
        if keyword.iskeyword(name):
            stand_in = _KEYWORD_STAND_IN.format(name)
            local[stand_in] = sympy.Symbol(name, real=True)
            return stand_in
        if name in _FUNCTIONS:
            local[name] = _FUNCTIONS[name]
        elif name in _CONSTANTS:
            local[name] = _CONSTANTS[name]
        else:
            local[name] = sympy.Symbol(name, real=True)
        return name

    source = _IDENTIFIER.sub(rename, text.strip())
    value = parse_expr(source, local_dict=local, global_dict=_GLOBALS,
                       transformations=standard_transformations + (rationalize,))
    if isinstance(value, tuple):
        value = list(value)
    return value


class Case:
    def __init__(self, line: int, text: str, declared: tuple[str, ...], expected: str):
        self.line, self.text, self.declared, self.expected = line, text, declared, expected.strip()
        self.kind = "expr"
        if self.expected == "!refuse":
            self.kind = "refuse"
        else:
            for prefix in ("eq", "op", "def"):
                if self.expected.startswith(prefix + ":"):
                    self.kind = prefix
                    self.body = [part.strip() for part in self.expected[len(prefix) + 1:].split(";")]

    def __repr__(self) -> str:
        return f"line {self.line}: {self.text!r} -> {self.expected!r}"


def load_corpus() -> list[Case]:
    cases = []
    for number, raw in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = raw.split("\t")
        assert len(fields) == 3, f"line {number}: expected 3 tab-separated fields, got {len(fields)}: {raw!r}"
        text, declared, expected = fields
        names = tuple(n.strip() for n in declared.split(",") if n.strip())
        cases.append(Case(number, text, names, expected))
    return cases


CASES = load_corpus()
READABLE = [case for case in CASES if case.kind != "refuse"]


def _read(text: str, names: tuple[str, ...]):
    read_input = getattr(pdiff.parse, "read_input", None)
    if read_input is None:
        pytest.fail("pdiff.parse.read_input is not there yet")
    return read_input(text, names=names)


_POINTS = (0.7, -1.3, 2.1, -0.4, 1.9, 3.3, -2.6, 0.35, 1.15, -0.85)


def _numeric(expr, values):
    value = sympy.N(expr.subs(values), 30)
    if value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo) or not value.is_number:
        return None
    return complex(value)


def same(got, want) -> bool:
    """Equal as expressions: the difference simplifies to 0, or they agree at many real points."""
    got, want = sympy.sympify(got), sympy.sympify(want)
    if got == want:
        return True
    try:
        if sympy.simplify(got - want) == 0:
            return True
    except Exception:  # noqa: BLE001 - fall back to the numbers
        pass
    names = sorted({s.name for s in got.free_symbols | want.free_symbols})
    agreeing = 0
    for shift in range(len(_POINTS)):
        by_name = {name: sympy.Rational(_POINTS[(i + shift) % len(_POINTS)]).limit_denominator(100)
                   for i, name in enumerate(names)}
        a = _numeric(got, {s: by_name[s.name] for s in got.free_symbols})
        b = _numeric(want, {s: by_name[s.name] for s in want.free_symbols})
        if a is None and b is None:
            continue
        if a is None or b is None or abs(a - b) > 1e-9 * (1 + abs(b)):
            return False
        agreeing += 1
    return agreeing >= 3


def assert_same(got, want, case: Case) -> None:
    if isinstance(want, list):
        got_list = list(got) if isinstance(got, (list, tuple, sympy.MatrixBase)) else None
        assert got_list is not None, f"{case}: expected a vector, got {got!r}"
        assert len(got_list) == len(want), f"{case}: got {got!r}"
        for g, w in zip(got_list, want):
            assert_same(g, w, case)
        return
    assert not isinstance(got, (list, tuple)), f"{case}: expected a scalar, got the vector {got!r}"
    assert same(got, want), f"{case}: got {got}"
    for symbol in sympy.sympify(got).free_symbols:
        assert symbol.is_real, f"{case}: variable {symbol} is not real"


def _names(expr) -> list[str]:
    items = expr if isinstance(expr, list) else [expr]
    return sorted({s.name for item in items for s in sympy.sympify(item).free_symbols})


def test_corpus_is_well_formed():
    assert len(CASES) >= 400
    for case in CASES:
        if case.kind == "expr":
            expected_expr(case.expected)
        elif case.kind == "eq":
            assert len(case.body) == 2, case
            for side in case.body:
                expected_expr(side)
        elif case.kind == "op":
            assert len(case.body) == 2, case
            expr = expected_expr(case.body[1])
            pdiff.notation.parse_partial(case.body[0], _names(expr) + list(case.declared))
        elif case.kind == "def":
            assert len(case.body) == 3, case
            expected_expr(case.body[2])
    inputs = [(case.text, case.declared) for case in CASES]
    repeated = {item for item in inputs if inputs.count(item) > 1}
    assert not repeated, f"inputs listed twice: {sorted(repeated)}"


@pytest.mark.parametrize("case", CASES, ids=[f"line{case.line}" for case in CASES])
def test_reading(case: Case):
    if case.kind == "refuse":
        read_input = getattr(pdiff.parse, "read_input", None)
        if read_input is None:
            pytest.fail("pdiff.parse.read_input is not there yet")
        try:
            result = read_input(case.text, names=case.declared)
        except pdiff.errors.InputError:
            return
        pytest.fail(f"{case}: not refused, read as {getattr(result, 'read_as', result)!r}")

    result = _read(case.text, case.declared)
    if case.kind == "expr":
        assert result.equation is None, f"{case}: read as an equation {result.equation}"
        assert result.operator is None, f"{case}: read with the operator {result.operator}"
        assert result.function is None, f"{case}: read as a definition of {result.function}"
        assert_same(result.expression, expected_expr(case.expected), case)
    elif case.kind == "eq":
        lhs, rhs = (expected_expr(side) for side in case.body)
        assert result.equation is not None, f"{case}: not read as an equation (expression {result.expression})"
        assert result.operator is None, case
        assert_same(result.equation, lhs - rhs, case)
    elif case.kind == "op":
        partial, body = case.body
        want = expected_expr(body)
        assert result.operator is not None, f"{case}: no operator read (expression {result.expression})"
        assert result.equation is None, case
        variables = sorted(set(_names(want)) | set(case.declared))
        got_wrt = pdiff.notation.parse_partial(result.operator, variables).wrt
        want_wrt = pdiff.notation.parse_partial(partial, variables).wrt
        assert got_wrt == want_wrt, f"{case}: operator {result.operator!r} (wrt {got_wrt}), wanted {want_wrt}"
        assert_same(result.expression, want, case)
    elif case.kind == "def":
        function, arguments, body = case.body
        want_args = tuple(a.strip() for a in arguments.split(",") if a.strip())
        assert result.function == function, f"{case}: function {result.function!r}"
        if want_args:
            assert tuple(result.arguments or ()) == want_args, f"{case}: arguments {result.arguments!r}"
        else:
            assert not result.arguments, f"{case}: arguments {result.arguments!r}"
        assert result.operator is None, case
        assert_same(result.expression, expected_expr(body), case)


@pytest.mark.parametrize("case", READABLE, ids=[f"line{case.line}" for case in READABLE])
def test_reading_shown_reads_back(case: Case):
    """The reading pdiff displays (read_as, in pdiff's plain notation) reads back to the same expression."""
    try:
        result = _read(case.text, case.declared)
    except pdiff.errors.InputError as error:
        pytest.skip(f"not read at all ({error}); test_reading reports it")
    # a multi-letter variable of the reading (declared, or \mathrm{rate} in LaTeX) is declared when read back
    expressions = result.expression if isinstance(result.expression, (list, tuple)) else [result.expression]
    whole = {s.name for e in expressions for s in e.free_symbols if len(s.name) > 1}
    again = _read(result.read_as, set(case.declared) | whole)
    assert isinstance(result.read_as, str) and result.read_as
    if isinstance(result.expression, (list, tuple)):
        assert len(again.expression) == len(result.expression), f"{case}: read_as {result.read_as!r}"
        for g, w in zip(again.expression, result.expression):
            assert same(g, w), f"{case}: read_as {result.read_as!r} reads back as {again.expression}"
    else:
        assert same(again.expression, result.expression), (
            f"{case}: read_as {result.read_as!r} reads back as {again.expression}, not {result.expression}")
