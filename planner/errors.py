"""Errors the command line turns into one clear line and an exit code.

``InputError`` (exit 2) is bad input: a file, a field path inside it and the problem.
``InfeasibleError`` (exit 1) is a well-formed request that cannot be met (does not fit, misses a constraint).
"""

from __future__ import annotations

from typing import Any


class RecplanError(Exception):
    """Base class for errors recplan reports to the user without a traceback."""

    exit_code = 2


class InputError(RecplanError):
    """Bad input: names the file (or argument), the field path inside it and the problem."""

    exit_code = 2

    def __init__(self, problem: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as one line: ``file: field: problem`` with absent parts left out."""
        parts = [p for p in (self.file, self.field) if p]
        text = " ".join(str(self.problem).split())
        return ": ".join([*parts, text])

    def within(self, file: str | None = None, prefix: str | None = None) -> InputError:
        """Return a copy located in ``file`` with ``prefix`` prepended to the field path."""
        field = self.field
        if prefix:
            field = f"{prefix}.{field}" if field else prefix
        return InputError(self.problem, file=file or self.file, field=field)


class InfeasibleError(RecplanError):
    """The plan cannot be met: it does not fit in memory or misses a constraint (exit 1)."""

    exit_code = 1


def kind_of(value: Any) -> str:
    """What a YAML value is, in words: ``a number``, ``text``, ``a list``, ``true/false``, ... ."""
    names = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
             dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__} value")
