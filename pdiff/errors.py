"""One exception hierarchy and the exit codes it maps to.

Each class's docstring is a one-line description users may see; the CLI is the only place that turns
these into exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit statuses; a public contract for shell scripts."""

    OK = 0  # every answer finite and autograd agrees with the exact value
    MATH = 1  # computed, but some answer is non-finite, disagrees, timed out, or a homework answer is wrong
    USAGE = 2  # bad input or usage


class PdiffError(Exception):
    """Something went wrong in pdiff."""

    exit_code = ExitCode.USAGE


class InputError(PdiffError):
    """The input could not be understood."""


class ParseError(InputError):
    """The expression could not be parsed."""

    def __init__(self, message: str, text: str | None = None, column: int | None = None):
        super().__init__(message)
        self.text = text
        self.column = column  # 0-based position of the offending character, when known

    def caret(self) -> str | None:
        """The offending text with a caret under the error position, or None without a position."""
        if self.text is None or self.column is None or "\n" in self.text or len(self.text) > 200:
            return None
        return f"  {self.text}\n  {' ' * self.column}^"


class NotationError(InputError):
    """The requested partial derivative could not be understood."""


class PointError(InputError):
    """A point given with --at could not be used."""


class DeviceError(InputError):
    """The requested device or dtype is not available."""


class LimitError(InputError):
    """The input goes beyond a safety limit (size, order, magnitude)."""
