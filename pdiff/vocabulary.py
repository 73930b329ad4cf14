"""The names the reader knows, with no SymPy or torch: shared by the plain reader, the LaTeX reader and the prompt.

pdiff.parse maps each function name here to its SymPy constructor (and checks the two lists agree).
"""

from __future__ import annotations

_TRIG = ("sin", "cos", "tan", "cot", "sec", "csc")
_HYPERBOLIC = ("sinh", "cosh", "tanh", "coth", "sech", "csch")

FUNCTION_NAMES: frozenset[str] = frozenset({
    *_TRIG, *_HYPERBOLIC,
    *("a" + name for name in _TRIG + _HYPERBOLIC),
    *("arc" + name for name in _TRIG + _HYPERBOLIC),
    *("ar" + name for name in _HYPERBOLIC),
    "cosec", "atan2", "exp", "ln", "log", "log10", "log2", "sqrt", "cbrt", "abs", "Abs", "sign", "sgn", "erf",
    "min", "max",
})

# constants written as names; `e` and `pi` are also pieces of a run of letters (`2pix` is 2·π·x)
CONSTANTS: frozenset[str] = frozenset({"pi", "e", "E"})

# Greek letter names: one variable each (`theta`), never split into letters
GREEK: frozenset[str] = frozenset({
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota",
    "kappa", "lambda", "mu", "nu", "xi", "omicron", "rho", "varrho", "sigma", "varsigma", "tau", "upsilon", "phi",
    "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
    "Psi", "Omega",
})

# Unicode Greek letters → their names (as they come out of PDFs and phones); π is the constant pi. Omicron and
# the capitals that look like Latin letters (Ο, Υ, Α, Β, ...) are left out: `cοs(x)` with an omicron is a
# look-alike to refuse, not c·ο·s(x)
GREEK_LETTERS: dict[str, str] = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon", "ζ": "zeta",
    "η": "eta", "θ": "theta", "ϑ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu",
    "ξ": "xi", "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau", "υ": "upsilon", "φ": "phi",
    "ϕ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega", "Γ": "Gamma", "Δ": "Delta", "Θ": "Theta", "Λ": "Lambda",
    "Ξ": "Xi", "Π": "Pi", "Σ": "Sigma", "Φ": "Phi", "Ψ": "Psi", "Ω": "Omega",
}
