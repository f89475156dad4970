"""Samplers: Langevin dynamics for training data and annealed Langevin along spacetime curves.

The OpenMM counterparts, imported on demand because they load OpenMM, are
:mod:`tps.sampling.md` (MD training data, :class:`~tps.sampling.md.MDData`) and
:mod:`tps.sampling.openmm_annealed` (annealed Langevin inside OpenMM).
"""

from tps.sampling.data import BoltzmannSamples, langevin_samples
from tps.sampling.langevin import annealed_langevin, overdamped_langevin, restraint_schedule
from tps.sampling.paths import Paths

__all__ = ["BoltzmannSamples", "langevin_samples", "annealed_langevin", "overdamped_langevin", "restraint_schedule", "Paths"]
