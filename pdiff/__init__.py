"""pdiff: partial derivatives of typed expressions, by autograd beside the exact symbolic answer.

The Python API (torch and SymPy are imported on first use, so importing pdiff stays cheap):

    >>> import pdiff
    >>> report = pdiff.derivative("x^2*sin(y) + y^3*cos(x)", ["d2f/dxdy"], at=["x=2,y=1"])
    >>> report.results[0].exact
    '-3*sin(2) + 4*cos(1)'
    >>> pdiff.compute("hessian", "x^2 - y^2", at=["x=0,y=0"]).results[0].extra["classification"]
    'saddle point'
    >>> pdiff.check_answer("sin(x)^2", "df/dx", "sin(2x)").verdict.value
    'correct'
"""

__version__ = "0.1.0"

# public name → (the module that defines it, its name there), imported on first use; `check` would be shadowed by the
# submodule pdiff.check once imported, so the grader is exported as check_answer
_EXPORTS = {"derivative": ("pdiff.api", "derivative"), "compute": ("pdiff.calculus", "compute"),
            "check_answer": ("pdiff.check", "check"),
            # your own torch functions and modules, by autograd checked against central differences (grad as the CLI)
            "gradient": ("pdiff.callables", "gradient"), "grad": ("pdiff.callables", "gradient"),
            "jacobian": ("pdiff.callables", "jacobian"), "hessian": ("pdiff.callables", "hessian"),
            "Verified": ("pdiff.callables", "Verified")}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'pdiff' has no attribute {name!r}")
