"""Errors of the pipeline that are the caller's to fix (the CLI prints them as one line, exit 2)."""

from __future__ import annotations

__all__ = ["InputError", "input_error"]


class InputError(ValueError):
    """A request the pipeline refuses: the message is ``<problem>; <fix>``.

    Examples
    --------
    >>> str(input_error("--points 2: a curve needs at least 4 points", "pass --points 4 or more"))
    '--points 2: a curve needs at least 4 points; pass --points 4 or more'
    """


def input_error(problem: str, fix: str) -> InputError:
    """An :class:`InputError` with the message ``problem; fix``."""
    return InputError(f"{problem}; {fix}")
