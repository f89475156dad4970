"""Fixture ``minimal_engine``: a minimal overdamped engine written from the Engine protocol, with bug switches.

Used to show that the engine checks of :mod:`tps.testing` pass for a correct engine written from
the protocol's documentation alone and FAIL for the classic mistakes:

- ``restraint_factor=2``: the restraint energy written ``k |x - c|^2`` (the 1/2 forgotten);
- ``report_restraint=True``: reported energies include the restraint (the protocol excludes it);
- ``noise_factor=1/sqrt(2)``: Euler-Maruyama noise ``sqrt(kT dt)`` instead of ``sqrt(2 kT dt)``
  (samples at half the temperature it reports).

Dynamics: ``x <- x + dt (f - k (x - c)) + noise_factor sqrt(2 kT dt) xi`` on the potential ``U``
plus the restraint (``k`` in energy/length^2); stationary variance per coordinate of a
restraint-only system ``kT / k`` up to ``1 / (1 - k dt / 2)``.
"""

from __future__ import annotations

import math

import pytest
import torch


class MinimalEngine:
    energy_unit = ""

    def __init__(self, potential, *, kT, dt, seed=0, restraint_factor=1.0, report_restraint=False, noise_factor=1.0):
        self.potential, self.kT, self.dt = potential, float(kT), float(dt)
        self.event_shape = tuple(potential.event_shape)
        self.restraint_factor, self.report_restraint, self.noise_factor = restraint_factor, report_restraint, noise_factor
        self.generator = torch.Generator().manual_seed(seed)
        self.centre, self.k = None, 0.0
        self.n_energy_evals = self.n_readouts = 0
        self.x = None

    def batches(self, n):
        return [range(0, int(n))]

    def reseed(self, seed):
        self.generator = torch.Generator().manual_seed(int(seed))

    def set_positions(self, x):
        self.x = torch.as_tensor(x, dtype=torch.float64).reshape(-1, *self.event_shape).clone()

    def draw_velocities(self, seeds):
        pass

    def set_restraint(self, centre, stiffness=0.0, *, reduced=False):
        if centre is None:
            self.centre, self.k = None, 0.0
            return
        self.centre = torch.as_tensor(centre, dtype=torch.float64)
        self.k = float(stiffness) * (self.kT if reduced else 1.0)

    def _restraint(self, x):
        if self.centre is None:
            return torch.zeros(x.shape[0], dtype=torch.float64)
        return self.restraint_factor * 0.5 * self.k * (x - self.centre).pow(2).flatten(1).sum(1)

    def _reported(self, x):
        u = self.potential.energy(x)
        return u + self._restraint(x) if self.report_restraint else u

    def step(self, n_steps, n_frames=1, *, rows=None):
        every = int(n_steps) // int(n_frames)
        scale = self.noise_factor * math.sqrt(2 * self.kT * self.dt)
        frames, energies = [], []
        x = self.x
        for j in range(int(n_steps)):
            _, f = self.potential.energy_and_forces(x)
            if self.centre is not None:
                f = f - self.restraint_factor * self.k * (x - self.centre)
            x = x + self.dt * f + scale * torch.randn(x.shape, generator=self.generator, dtype=x.dtype)
            if (j + 1) % every == 0:
                frames.append(x.clone())
                energies.append(self._reported(x))
        self.x = x
        self.n_energy_evals += int(n_steps) * x.shape[0]
        return torch.stack(frames, 1), torch.stack(energies, 1)

    def restraint_energy(self):
        return self._restraint(self.x)

    def energy(self, x):
        return self._reported(torch.as_tensor(x, dtype=torch.float64).reshape(-1, *self.event_shape))


@pytest.fixture
def minimal_engine():
    """The :class:`MinimalEngine` class (construct it with the bug switches a test needs)."""
    return MinimalEngine
