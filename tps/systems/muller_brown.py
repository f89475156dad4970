"""The Muller-Brown system with Doob's Lagrangian protocol (kT = 12.5, disks of radius 0.1)."""

from __future__ import annotations

import torch

from tps.potentials.muller_brown import MullerBrown
from tps.states import Ball
from tps.systems.base import ReferenceValue, System

SOURCE = "benchmarks.md section 4 (Muller & Brown 1979; Doob's Lagrangian protocol, Du et al. 2024)"

#: Box covering the three basins and both saddles, used for training-data starts and figures.
BOX = ((-1.5, 1.2), (-0.5, 2.0))


def load(*, kT: float = 12.5, state_radius: float = 0.1) -> System:
    """Muller-Brown with endpoints at minima A and B and disk states of radius ``state_radius``."""
    if not kT > 0:
        raise ValueError(f"kT: expected a positive temperature (dimensionless), got {kT!r}")
    pot = MullerBrown()
    a, b = pot.minimum("A"), pot.minimum("B")
    endpoints = {
        "A": torch.tensor([a.x, a.y], dtype=torch.float64),
        "B": torch.tensor([b.x, b.y], dtype=torch.float64),
    }
    states = {name: Ball(xy, state_radius, name=name) for name, xy in endpoints.items()}
    reference = {f"U({p.name})": ReferenceValue(p.energy, "dimensionless", SOURCE) for p in pot.stationary_points}
    s1 = pot.saddle("S1")
    reference["lower_bound"] = ReferenceValue(s1.energy, "dimensionless",
                                              "minimax barrier A->B = U(S1); " + SOURCE)
    return System("muller-brown", pot, float(kT), endpoints, states, None, None, reference)
