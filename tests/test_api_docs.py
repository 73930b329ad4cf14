"""The examples in the Python API's docstrings run and print what they show."""

import doctest

import pdiff
import pdiff.api
import pdiff.callables


def test_docstring_examples():
    for module in (pdiff, pdiff.api, pdiff.callables):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0, module.__name__
