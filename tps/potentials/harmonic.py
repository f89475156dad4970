"""Harmonic potential with a known Boltzmann distribution (used to test samplers)."""

from __future__ import annotations

import torch

from tps.potentials.base import Potential


class Harmonic(Potential):
    """``U(x) = k/2 * ||x - center||^2`` on ``event_shape`` coordinates.

    At temperature ``kT`` the Boltzmann distribution is Gaussian with per-coordinate
    variance ``kT / k`` and mean potential energy ``dim * kT / 2``.
    """

    def __init__(self, event_shape=(2,), *, k: float = 1.0, center=None, energy_unit: str = "dimensionless"):
        super().__init__(event_shape, energy_unit=energy_unit)
        if not k > 0:
            raise ValueError(f"k: expected a positive spring constant, got {k!r}")
        self.k = float(k)
        self.center = None if center is None else torch.as_tensor(center, dtype=torch.float64)

    def _delta(self, x):
        return x if self.center is None else x - self.center.to(x)

    def _energy(self, x):
        d = self._delta(x)
        return 0.5 * self.k * d.pow(2).flatten(x.dim() - len(self.event_shape)).sum(-1)

    def _energy_and_forces(self, x):
        d = self._delta(x)
        return self._energy(x), -self.k * d
