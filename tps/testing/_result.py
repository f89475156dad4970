"""The small result object every check of :mod:`tps.testing` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: what was measured, against what tolerance, and whether it passed.

    Parameters
    ----------
    name : str
        Which check produced it (``"equivariance"``, ``"restraint_energy"``, ``"boltzmann"``).
    statistic : float
        The measured number the verdict rests on (a relative error, a largest z-score, ...).
    tolerance : float
        The largest ``statistic`` that passes.
    passed : bool
        ``statistic <= tolerance`` (and nothing else went wrong, e.g. too few samples).
    message : str
        One readable sentence or two: what was compared, the numbers, and the verdict.
    details : dict
        Check-specific numbers (per-transformation errors, per-coordinate z-scores, ...).

    Examples
    --------
    >>> r = CheckResult("demo", statistic=0.5, tolerance=1.0, passed=True, message="demo: 0.5 <= 1")
    >>> bool(r), r.statistic
    (True, 0.5)
    >>> r.raise_if_failed() is r
    True
    """

    name: str
    statistic: float
    tolerance: float
    passed: bool
    message: str
    details: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.passed)

    def raise_if_failed(self) -> "CheckResult":
        """Return ``self`` if the check passed, else raise ``AssertionError(self.message)``.

        Raises
        ------
        AssertionError
            With :attr:`message` when :attr:`passed` is false.
        """
        if not self.passed:
            raise AssertionError(self.message)
        return self


def verdict(statistic: float, tolerance: float) -> bool:
    """``statistic <= tolerance`` with NaN (a failed measurement) counting as a failure."""
    return bool(math.isfinite(statistic) and statistic <= tolerance)
