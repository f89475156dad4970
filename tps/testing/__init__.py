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

Helpers: :func:`sample_engine` (run replicas of an engine the way the samplers do),
:func:`random_orthogonal`, :func:`terminal_atom_permutations`, :func:`block_standard_error`, :func:`integrated_autocorrelation_time`.

The engine checks use only the :class:`tps.engines.base.Engine` protocol (plus
``energy(x, restrained=True)`` for the restraint check), so they import no engine themselves.
"""

from tps.testing._result import CheckResult
from tps.testing.boltzmann import assert_boltzmann, check_boltzmann, sample_engine
from tps.testing.equivariance import (
    assert_equivariant,
    check_equivariance,
    random_orthogonal,
    terminal_atom_permutations,
)
from tps.testing.restraint import assert_restraint_energy, check_restraint_energy
from tps.testing.statistics import block_standard_error, integrated_autocorrelation_time

__all__ = [
    "CheckResult",
    "assert_boltzmann",
    "assert_equivariant",
    "assert_restraint_energy",
    "block_standard_error",
    "check_boltzmann",
    "check_equivariance",
    "check_restraint_energy",
    "integrated_autocorrelation_time",
    "random_orthogonal",
    "sample_engine",
    "terminal_atom_permutations",
]
