"""Checks that any new denoiser or engine can run (shipped in the library, as e3nn ships its tests).

Each ``check_*`` returns a :class:`CheckResult` (the measured statistic, its tolerance, a pass
flag and a readable message); each ``assert_*`` runs the same check and raises
``AssertionError`` with that message when it fails, for use in a test suite:

- :func:`check_equivariance` / :func:`assert_equivariant`: ``D(g x) == g D(x)`` for rotations,
  reflections, translations and permutations of identical atoms.
- :func:`check_restraint_energy` / :func:`assert_restraint_energy`: an engine's energy with a
  harmonic restraint minus its energy without equals ``0.5 k |x - c|^2``.
- :func:`check_boltzmann` / :func:`assert_boltzmann`: an engine held by a harmonic restraint
  samples the Gaussian Boltzmann distribution (mean and variance within a few standard errors,
  the standard errors from block averages).

Statistics helpers: :func:`block_standard_error`, :func:`integrated_autocorrelation_time`.
"""

from tps.testing._result import CheckResult
from tps.testing.equivariance import assert_equivariant, check_equivariance, random_orthogonal

__all__ = [
    "CheckResult",
    "assert_equivariant",
    "check_equivariance",
    "random_orthogonal",
]
