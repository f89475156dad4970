"""Overdamped Langevin (Euler-Maruyama) engine on any :class:`~tps.potentials.Potential`, vectorised in torch.

Two updates, each exactly the historical one (same arithmetic, same ``torch.randn`` calls in the
same order, so the random streams and frames are bit-identical):

- no restraint: ``x <- x + dt f + sqrt(2 kT dt) xi`` (unit mobility; the step of
  :func:`tps.sampling.overdamped_langevin`, unbiased MD and two-way shooting);
- with a restraint ``k/2 |x - c|^2`` (``k`` reduced, 1/length^2): ``x <- x - (h/2) g + sqrt(h) xi``
  with ``g = -f/kT + k (x - c)``, the reduced step ``h = step_size`` (default ``2 kT dt``) capped at
  ``max_restraint_step / k`` (the step of :func:`tps.sampling.annealed_langevin`).

All replicas form one batch (:meth:`TorchOverdampedEngine.batches` is ``[range(n)]``); every step
of every row costs one ``energy_and_forces`` evaluation, counted by the potential's ``n_evals``.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Optional

import torch

from tps._validation import as_tensor, check_finite, check_positive

__all__ = ["TorchOverdampedEngine", "energy_and_forces_or_blow_up", "blow_up_error"]


def energy_and_forces_or_blow_up(potential, x, step_name: str, where: str):
    """``potential.energy_and_forces(x)``; a chain that left the finite range (too large a step)
    raises ``ValueError`` naming the step argument, not the potential's internal ``x``."""
    try:
        return potential.energy_and_forces(x)
    except ValueError:
        if bool(torch.isfinite(x).all()):
            raise
    raise blow_up_error(step_name, where)


def blow_up_error(step_name: str, where: str) -> ValueError:
    """The ``ValueError`` of chains that blew up, naming the step argument to reduce."""
    return ValueError(f"{step_name}: the chains blew up (non-finite positions or energies at {where}); "
                      f"reduce {step_name}")


class TorchOverdampedEngine:
    """Vectorised overdamped Langevin dynamics of a batch of replicas (module docstring).

    Parameters
    ----------
    potential : Potential
        Evaluated through ``energy_and_forces`` (counted in ``potential.n_evals``).
    kT : float
        Thermal energy in the potential's unit.
    dt : float, optional
        Time step of the unrestrained update (unit mobility: length^2/energy). Default
        ``step_size / (2 kT)``.
    generator : torch.Generator, optional
        Noise source (the global generator if None).
    step_size : float, optional
        Reduced step ``h`` (length^2) of the restrained update; default ``2 kT dt``.
    max_restraint_step : float, optional
        Cap on ``h k``: with a stiff restraint the step shrinks to ``max_restraint_step / k``.
    step_name : str
        Argument named in blow-up errors (``"dt"`` or ``"step_size"``).

    Attributes
    ----------
    where : str
        Location prefix of blow-up errors (a sampler may set it, e.g. ``"curve point 3"``).

    Examples
    --------
    Boltzmann variance ``kT / k = 0.5`` per coordinate in a harmonic well (Euler-Maruyama adds
    ``1 / (1 - dt k / 2)``):

    >>> import torch
    >>> from tps.potentials import Harmonic
    >>> engine = TorchOverdampedEngine(Harmonic((1,), k=2.0), kT=1.0, dt=0.01,
    ...                                generator=torch.Generator().manual_seed(0))
    >>> engine.batches(500)
    [range(0, 500)]
    >>> engine.set_positions(torch.zeros(500, 1, dtype=torch.float64))
    >>> frames, energies = engine.step(400, 4)
    >>> frames.shape, energies.shape
    (torch.Size([500, 4, 1]), torch.Size([500, 4]))
    >>> round(float(frames[:, -1].var()), 1)
    0.5
    """

    energy_unit = ""
    #: Paths per executor task of samplers on this engine (a vectorised batch per task).
    default_task_size = 128

    def __init__(self, potential, *, kT: float, dt: Optional[float] = None, generator: Optional[torch.Generator] = None,
                 step_size: Optional[float] = None, max_restraint_step: Optional[float] = None, step_name: str = "dt"):
        self.potential = potential
        self.kT = check_positive(kT, "kT")
        if dt is None and step_size is None:
            raise ValueError("dt, step_size: expected at least one of them")
        self.step_size = check_positive(step_size, "step_size") if step_size is not None else 2 * self.kT * dt
        self.dt = check_positive(dt, "dt") if dt is not None else self.step_size / (2 * self.kT)
        self.max_restraint_step = None if max_restraint_step is None else check_positive(max_restraint_step,
                                                                                         "max_restraint_step")
        self.generator = generator
        self.step_name = step_name
        self.event_shape = tuple(potential.event_shape)
        self.energy_unit = getattr(potential, "energy_unit", "")
        self.where = ""
        self.n_energy_evals = 0
        self.n_readouts = 0
        self.lock = nullcontext()
        self._noise_scale = math.sqrt(2 * self.kT * self.dt)
        self._centre = None
        self._k = 0.0
        self._h = self.step_size
        self.x = self.e = self.forces = self.max_energy = None

    # -- protocol ---------------------------------------------------------------------------------
    def batches(self, n: int) -> list:
        """``[range(0, n)]``: all replicas in one vectorised batch."""
        return [range(0, int(n))]

    def reseed(self, seed: int) -> None:
        """Use a new ``torch.Generator`` seeded with ``seed``."""
        self.generator = torch.Generator().manual_seed(int(seed))

    def spawn(self, seed: int) -> "TorchOverdampedEngine":
        """A new engine with the same settings and a generator seeded with ``seed`` (executor tasks)."""
        return TorchOverdampedEngine(self.potential, kT=self.kT, dt=self.dt, step_size=self.step_size,
                                     max_restraint_step=self.max_restraint_step, step_name=self.step_name,
                                     generator=torch.Generator().manual_seed(int(seed)))

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(generator=None, lock=None, x=None, e=None, forces=None, max_energy=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = nullcontext()

    def set_positions(self, x, energies=None, forces=None) -> None:
        """Make ``x`` ``(b, *event)`` the batch; evaluates energies and forces unless ``forces`` is given.

        ``energies`` ``(b,)`` and ``forces`` ``(b, *event)`` (e.g. cached with a path) skip the evaluation;
        unknown energies (None) are NaN until the next step.
        """
        x = as_tensor(x, "x")
        if tuple(x.shape) == self.event_shape:
            x = x.unsqueeze(0)
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x: expected shape (b, {', '.join(map(str, self.event_shape))}), got {tuple(x.shape)}")
        x = x.clone()
        if forces is None:
            check_finite(x, "x")
            energies, forces = self.potential.energy_and_forces(x)
            self.n_energy_evals += x.shape[0]
            self.x, self.e, self.forces, self.max_energy = x, energies, forces, energies.clone()
            return
        else:  # given (cached with a path): copies, since step(rows=...) writes into them
            forces = as_tensor(forces, "forces").clone()
            energies = (torch.full(x.shape[:1], float("nan"), dtype=x.dtype) if energies is None
                        else as_tensor(energies, "energies").clone())
        self.x, self.e, self.forces = x, energies, forces
        self.max_energy = torch.where(torch.isnan(energies), -float("inf"), energies)

    def observe(self):
        """Current ``(positions, energies)`` (copies; no evaluation)."""
        return self.x.clone(), self.e.clone()

    def draw_velocities(self, seeds) -> None:
        """No-op: overdamped dynamics has no velocities (noise is drawn at every step)."""

    def velocities(self):
        """None (overdamped)."""
        return None

    def set_velocities(self, v) -> None:
        """No-op (overdamped)."""

    def reverse_velocities(self) -> None:
        """No-op: a backward shot is a forward run with fresh noise, reversed by the caller."""

    def set_restraint(self, centre, stiffness=0.0, *, reduced: bool = False) -> None:
        """Restrain to ``centre`` ``(*event)`` with ``stiffness`` (energy/length^2, or 1/length^2 if
        ``reduced``); None clears it. Sets the reduced step ``min(step_size, max_restraint_step / k)``."""
        if centre is None:
            self._centre, self._k, self._h = None, 0.0, self.step_size
            return
        k = float(stiffness) if reduced else float(stiffness) / self.kT
        if not (math.isfinite(k) and k >= 0):
            raise ValueError(f"stiffness: expected a non-negative finite number, got {stiffness!r}")
        self._centre = torch.as_tensor(centre)
        self._k = k
        h = self.step_size
        if self.max_restraint_step is not None:
            # torch's scalar / tensor (a reciprocal, then a product): the historical rounding
            cap = self.max_restraint_step / torch.tensor(k, dtype=torch.float64)
            h = float(torch.minimum(torch.tensor(h, dtype=torch.float64), cap))
        self._h = h

    @property
    def current_step_size(self) -> float:
        """The reduced step ``h`` of the current restraint (length^2)."""
        return self._h

    def step(self, n_steps: int, n_frames: int = 1, *, rows=None, with_forces: bool = False):
        """Advance by ``n_steps`` steps, recording ``n_frames`` evenly spaced frames (module docstring).

        The returned frames and energies are new tensors (never the engine's state, which later
        steps may update in place). ``with_forces``: also return the forces at the recorded
        frames, ``(len(rows), n_frames, *event)`` (shooting caches them with its paths)."""
        n_steps, n_frames = int(n_steps), int(n_frames)
        if n_frames <= 0 or n_steps % n_frames:
            raise ValueError(f"n_frames: expected a positive divisor of n_steps={n_steps}, got {n_frames}")
        save_at = n_steps // n_frames
        if rows is None:
            x, f, mx = self.x, self.forces, self.max_energy
        else:
            rows = torch.as_tensor(rows)
            x, f, mx = self.x[rows], self.forces[rows], self.max_energy[rows]
        frames, energies, frame_forces = [], [], []  # each step makes new x, e, f: stacked (copied) at the end
        e = None
        potential, generator = self.potential, self.generator
        restrained = self._centre is not None
        if restrained:
            c, k, h, kT = self._centre, self._k, self._h, self.kT
            sq = math.sqrt(h)
        else:
            dt, scale = self.dt, self._noise_scale
        for j in range(n_steps):
            if restrained:
                grad = -f / kT + k * (x - c)
                x = x - 0.5 * h * grad + sq * torch.randn(x.shape, dtype=x.dtype, generator=generator)
            else:
                x = x + dt * f + scale * torch.randn(x.shape, dtype=x.dtype, generator=generator)
            try:
                e, f = potential.energy_and_forces(x)
            except ValueError:  # the location is formatted only here, not at every step
                if bool(torch.isfinite(x).all()):
                    raise
                raise blow_up_error(self.step_name, f"{self.where}, step {j + 1}" if self.where
                                    else f"step {j + 1}") from None
            mx = torch.maximum(mx, e)
            if (j + 1) % save_at == 0:
                frames.append(x)
                energies.append(e)
                if with_forces:
                    frame_forces.append(f)
        self.n_energy_evals += n_steps * x.shape[0]
        if rows is None:
            self.x, self.forces, self.max_energy = x, f, mx
            if e is not None:
                self.e = e
        else:
            self.x[rows], self.forces[rows], self.max_energy[rows] = x, f, mx
            if e is not None:
                self.e[rows] = e
        if not math.isfinite(float(mx.sum())):  # a NaN or infinite energy (one reduction: per-step cost)
            raise blow_up_error(self.step_name, self.where or f"step {n_steps}")
        if with_forces:
            return torch.stack(frames, 1), torch.stack(energies, 1), torch.stack(frame_forces, 1)
        return torch.stack(frames, 1), torch.stack(energies, 1)

    def select(self, rows) -> None:
        """Keep only ``rows`` of the batch, in that order: positions, energies, forces and
        ``max_energy`` (copies; no evaluation). The samplers drop finished replicas with it, so
        that the running ones step as a whole batch (same noise stream as ``step(rows=...)``).

        Examples
        --------
        >>> import torch
        >>> from tps.potentials import Harmonic
        >>> engine = TorchOverdampedEngine(Harmonic((1,), k=1.0), kT=1.0, dt=0.01)
        >>> engine.set_positions(torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64))
        >>> engine.select(torch.tensor([2, 0]))
        >>> engine.observe()[0].flatten().tolist(), engine.forces.flatten().tolist()
        ([2.0, 0.0], [-2.0, -0.0])
        """
        rows = torch.as_tensor(rows)
        self.x, self.e, self.forces, self.max_energy = (self.x[rows], self.e[rows], self.forces[rows],
                                                        self.max_energy[rows])

    def restraint_energy(self) -> torch.Tensor:
        """Restraint energy ``0.5 k |x - c|^2`` ``(b,)`` of the current batch in energy units (0 without one)."""
        if self._centre is None:
            return torch.zeros(self.x.shape[0], dtype=self.x.dtype)
        return 0.5 * self._k * self.kT * ((self.x - self._centre) ** 2).flatten(1).sum(1)

    def energy(self, x) -> torch.Tensor:
        """``potential.energy(x)`` of ``x`` ``(b, *event)`` (counted; the batch is unchanged)."""
        x = as_tensor(x, "x")
        self.n_energy_evals += x.shape[0] if x.dim() > len(self.event_shape) else 1
        return self.potential.energy(x)
