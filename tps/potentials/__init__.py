"""Potential energy surfaces: analytic (Muller-Brown, dimensionless; harmonic), periodic
surfaces on a grid of two angles (radians), and OpenMM force fields (nm, kJ/mol) in
:mod:`tps.potentials.openmm`, which is imported on demand so that model potentials never load
OpenMM."""

from tps.potentials.base import Potential
from tps.potentials.harmonic import Harmonic
from tps.potentials.muller_brown import MullerBrown, StationaryPoint

__all__ = [
    "Potential", "Harmonic", "MullerBrown", "StationaryPoint",
    "Grid2D", "PeriodicGridPotential", "bilinear", "read_grid", "write_grid",
]
from tps.potentials.grid import Grid2D, PeriodicGridPotential, bilinear, read_grid, write_grid  # noqa: E402
