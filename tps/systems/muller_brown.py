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
    """Muller-Brown with endpoints at minima A and B and disk states of radius ``state_radius``.

    Parameters
    ----------
    kT : float, optional
        Thermal energy (dimensionless; 12.5 in Doob's Lagrangian protocol).
    state_radius : float, optional
        Radius of the disks around A and B (dimensionless).

    Returns
    -------
    System
        ``endpoints`` ``{"A", "B"}`` as float64 tensors ``(2,)``; ``reference`` holds the energy
        of every stationary point and the minimax ``lower_bound`` ``U(S1)``.

    Raises
    ------
    ValueError
        If ``kT`` is not positive.

    Examples
    --------
    >>> system = load(kT=5.0, state_radius=0.2)
    >>> system.kT, system.states["B"].radius, system.endpoints["B"].tolist()
    (5.0, 0.2, [0.6235, 0.028])
    """
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
