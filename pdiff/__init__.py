"""pdiff: partial derivatives of typed expressions, by autograd beside the exact symbolic answer.

The Python API (torch and SymPy are imported on first use, so importing pdiff stays cheap):

    >>> import pdiff
    >>> report = pdiff.derivative("x^2*sin(y) + y^3*cos(x)", ["d2f/dxdy"], at=["x=2,y=1"])
    >>> report.results[0].exact
    '-3*sin(2) + 4*cos(1)'
"""

__version__ = "0.1.0"

__all__ = ["derivative", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from pdiff import api

        return getattr(api, name)
    raise AttributeError(f"module 'pdiff' has no attribute {name!r}")
