"""Samplers: Langevin dynamics for training data and annealed Langevin along spacetime curves."""

from tps.sampling.data import BoltzmannSamples, langevin_samples
from tps.sampling.langevin import annealed_langevin, overdamped_langevin, restraint_schedule
from tps.sampling.paths import Paths

__all__ = ["BoltzmannSamples", "langevin_samples", "annealed_langevin", "overdamped_langevin", "restraint_schedule", "Paths"]
