"""Harmonic potential with a known Boltzmann distribution (used to test samplers)."""

from __future__ import annotations

import torch

from tps.potentials.base import Potential


class Harmonic(Potential):
    """``U(x) = k/2 * ||x - center||^2`` on ``event_shape`` coordinates.

    At temperature ``kT`` the Boltzmann distribution is Gaussian with per-coordinate
    variance ``kT / k`` and mean potential energy ``dim * kT / 2``. Forces are analytic.

    Parameters
    ----------
    event_shape : tuple of int, optional
        Shape of one configuration (default ``(2,)``; ``(n_atoms, 3)`` for particles).
    k : float, optional
        Spring constant, in ``energy_unit`` per squared length unit; must be positive.
    center : array-like, shape ``event_shape``, optional
        Position of the minimum (the origin when None).
    energy_unit : str, optional
        Unit of the energies (default ``"dimensionless"``).

    Raises
    ------
    ValueError
        If ``k`` is not positive.

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import Harmonic
    >>> U = Harmonic((2,), k=4.0, center=[1.0, 0.0])
    >>> x = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    >>> U.energy(x)                      # 4/2 * (1 + 1) = 4
    tensor([0., 4.], dtype=torch.float64)
    >>> U.forces(x)[1]                   # -k (x - center)
    tensor([-4., -4.], dtype=torch.float64)
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
