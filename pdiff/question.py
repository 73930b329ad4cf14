"""What a call asks, once its text is read: the expression, the partials, the variables and the parameters.

Every command goes through here, so the rules are the same everywhere:
- names the user declared (`--at rate=1`, `--wrt rate`, `--var rate`, a point column) are read whole;
- a derivative operator in front of the expression (`d/dx (x^3)`) is the partial, and must agree with a PARTIAL
  given as well;
- `dy/dx` where y is a variable of the expression is implicit differentiation when the input is an equation
  (`x^2 + y^2 = 25`) and is refused otherwise: it must never silently mean ∂f/∂x;
- `f(x, y) = ...` orders the variables as written; other names are parameters, held constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import sympy as sp

from pdiff import symbolic
from pdiff.errors import InputError, NotationError
from pdiff.latex import partial_to_plain
from pdiff.notation import Partial, first_partials, parse_partial, parse_wrt
from pdiff.parse import ParsedInput, read_input


@dataclass(frozen=True)
class Question:
    """The expression as read and what it names."""

    parsed: ParsedInput
    components: list[sp.Expr]
    is_vector: bool
    variables: list[str]  # the function's variables, in order (f(x, y) = ... as written, else sorted naturally)

    @property
    def equation(self) -> sp.Expr | None:
        return self.parsed.equation

    @property
    def read_as(self) -> str:
        return self.parsed.read_as

    @property
    def notes(self) -> tuple[str, ...]:
        return self.parsed.notes


def split_names(values: Sequence[str] | str | None) -> list[str]:
    """`--var a,b --var c` or `--wrt x,y` → ["a", "b", "c"]."""
    if not values:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


def declared(points: Sequence[dict] = (), wrt=None, var=None, columns: Sequence[str] = ()) -> set[str]:
    """The names the user declared: point coordinates, --wrt, --var, point-file or grid columns."""
    names = {name for point in points for name in point}
    names.update(split_names(wrt))
    names.update(split_names(var))
    names.update(columns)
    for name in split_names(var):
        if not name.isidentifier() or not name[0].isalpha():
            raise InputError(f"--var: {name!r} is not a variable name (letters, digits and _, starting with a letter)")
    return names


def read(expression: str, *, names=(), latex: bool | None = None) -> Question:
    """Read the expression with the declared names kept whole."""
    parsed = read_input(expression, names=names, latex=latex)
    components = parsed.expression if isinstance(parsed.expression, list) else [parsed.expression]
    found = symbolic.variables_of(components)
    if parsed.arguments is not None:
        variables = list(parsed.arguments)
    else:
        variables = found
    return Question(parsed, components, isinstance(parsed.expression, list), variables)


def parameters(question: Question) -> list[str]:
    """Names in the expression that are not the function's variables (a of `f(x) = a x^2`)."""
    return [name for name in symbolic.variables_of(question.components) if name not in question.variables]


def partials(question: Question, texts: Sequence[str], wrt: str | Sequence[str] | None) -> list[Partial]:
    """PARTIAL arguments, --wrt and a leading operator → Partials (default: every first partial of the variables).

    A partial naming a variable as its function (dy/dx with y a variable) is kept for implicit differentiation
    only when the input is an equation."""
    names = sorted({*question.variables, *symbolic.variables_of(question.components)})
    texts = [partial_to_plain(text) for text in texts]  # \frac{\partial f}{\partial x}, as check takes it
    wanted = [parse_partial(text, _prime_variables(question, text) if _is_prime(text) else names) for text in texts]
    if wrt:
        wanted.append(parse_wrt(wrt if isinstance(wrt, str) else ",".join(wrt)))
    operator = question.parsed.operator
    if operator is not None:
        written = parse_partial(operator, names)
        if wanted and any(p.wrt != written.wrt for p in wanted):
            raise NotationError(f"the expression asks for {written.leibniz} ({operator.replace('f/', '/')} in front) "
                                f"but the command asks for {', '.join(p.text for p in wanted)}: give one of them")
        wanted = wanted or [written]
    for partial in wanted:
        if partial.function is not None and partial.function in names and question.equation is None:
            raise NotationError(
                f"{partial.text}: {partial.function} is a variable of the expression, so {partial.text} is not ∂f/∂"
                f"{partial.wrt[0]}; for implicit differentiation give an equation (e.g. "
                f"'{question.read_as} = 0'), or ask for {Partial('', partial.wrt).leibniz}")
    if question.equation is not None:
        if not wanted:
            raise NotationError("an equation needs the derivative to find, e.g. dy/dx (implicit differentiation)")
        for partial in wanted:
            if partial.function not in names:
                raise NotationError(f"an equation is differentiated implicitly: name the dependent variable in the "
                                    f"partial, e.g. dy/dx for y as a function of x (not {partial.text})")
    return wanted or first_partials(question.variables)


def _is_prime(text: str) -> bool:
    return any(mark in text for mark in "'′″")


def _prime_variables(question: Question, text: str) -> list[str]:
    """The one variable a prime differentiates by: x of `f(x) = a x^2` (not the parameter a); of an equation in x
    and y, y' is dy/dx."""
    if question.equation is not None:
        function = text.strip()[:1]
        return [n for n in symbolic.variables_of([question.equation]) if n != function]
    return question.variables


def implicit_roles(question: Question, partial: Partial) -> tuple[str, str] | None:
    """(dependent, independent) when `partial` is dⁿy/dxⁿ of an equation; None for an ordinary partial."""
    if question.equation is None:
        return None
    dependent = partial.function
    if len(set(partial.wrt)) != 1:
        raise NotationError(f"{partial.text}: implicit differentiation takes one independent variable (d2y/dx2)")
    (independent,) = set(partial.wrt)
    if independent == dependent:
        raise NotationError(f"{partial.text}: the variable differentiated by must differ from {dependent}")
    if dependent not in {s.name for s in question.equation.free_symbols}:
        raise NotationError(f"{partial.text}: {dependent} does not appear in the equation")
    return dependent, independent
