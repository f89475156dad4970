"""Potential energy surfaces: analytic (Muller-Brown, harmonic) and, in later modules,
grid-based periodic surfaces and OpenMM force fields."""

from tps.potentials.base import Potential
from tps.potentials.harmonic import Harmonic
from tps.potentials.muller_brown import MullerBrown, StationaryPoint

__all__ = [
    "Potential", "Harmonic", "MullerBrown", "StationaryPoint",
    "Grid2D", "PeriodicGridPotential", "bilinear", "read_grid", "write_grid",
]
from tps.potentials.grid import Grid2D, PeriodicGridPotential, bilinear, read_grid, write_grid  # noqa: E402
