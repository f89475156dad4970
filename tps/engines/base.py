"""The :class:`Engine` protocol: dynamics that samplers are written against once.

An engine propagates a *batch* of ``b`` replicas of one system. A sampler loops

.. code-block:: python

    for rows in engine.batches(n):            # torch: [range(n)]; OpenMM: [range(0, 1), range(1, 2), ...]
        engine.set_restraint(centres[0], stiffness[0])
        engine.set_positions(x[rows.start:rows.stop])
        engine.draw_velocities(seeds[rows.start:rows.stop])
        x0, e0 = engine.observe()
        for n in range(N):
            engine.set_restraint(centres[n], stiffness[n])
            frames, energies = engine.step(K, n_frames)

and reproduces both historical random streams: the vectorised torch stream (all replicas in one
batch, one ``randn`` per step for the batch) and the OpenMM stream (replicas one after another in
one context, whose integrator stream continues from replica to replica).

Conventions
-----------
- Positions, frames and velocities are ``torch.float64`` tensors of shape ``(b, *event_shape)``
  (``(b, n_frames, *event_shape)`` for frames) in the engine's length unit (OpenMM: nm; model
  potentials: their own unit). Inputs may be tensors or arrays; an unbatched ``(*event_shape)``
  input counts as ``b = 1``.
- Energies are ``(b,)`` or ``(b, n_frames)`` float64 tensors of the *unrestrained* potential in
  :attr:`Engine.energy_unit`; the restraint never enters reported energies.
- The restraint is ``0.5 * k * |x - c|^2`` summed over all coordinates, ``k`` in energy/length^2
  (``reduced=True``: in 1/length^2, i.e. units of 1/kT; the engine multiplies by ``kT``).
- ``n_energy_evals`` counts force evaluations: torch: ``energy_and_forces`` calls times rows;
  OpenMM: MD steps (one force evaluation each). ``n_readouts`` counts extra energy read-outs
  (OpenMM: one per recorded frame or :meth:`Engine.energy` call; torch: 0).
- ``max_energy`` (``(b,)``) is the largest unrestrained energy seen since :meth:`set_positions`
  over every evaluation (torch: every step; OpenMM: every read-out), so a barrier crossed between
  recorded frames is not hidden where the engine can see it.

:func:`run_until` is the shared "shoot until a state is entered" loop of one replica.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol, runtime_checkable

import torch


@runtime_checkable
class Engine(Protocol):
    """Dynamics of a batch of replicas with an optional harmonic restraint (module docstring).

    Attributes
    ----------
    kT : float
        Thermal energy in :attr:`energy_unit`.
    event_shape : tuple of int
        Shape of one configuration, e.g. ``(2,)`` or ``(n_atoms, 3)``.
    energy_unit : str
        E.g. ``"kJ/mol"`` (OpenMM) or ``""`` (dimensionless model potentials).
    n_energy_evals : int
        Running count of force evaluations (see the module docstring).
    n_readouts : int
        Running count of extra energy read-outs.
    max_energy : Tensor, shape ``(b,)``
        Largest energy seen by the current batch since :meth:`set_positions`.
    """

    kT: float
    event_shape: tuple
    energy_unit: str
    n_energy_evals: int
    n_readouts: int

    def batches(self, n: int) -> list:
        """How ``n`` replicas are grouped for in-order execution: a list of ``range`` objects
        covering ``0 .. n-1`` in order (torch: ``[range(0, n)]``; OpenMM: ``n`` ranges of one)."""

    def reseed(self, seed: int) -> None:
        """Restart the engine's random stream at ``seed`` (as a freshly built engine with that seed)."""

    def spawn(self, seed: int) -> "Engine":
        """A new engine with the same settings whose stream starts at ``seed`` (executor tasks: the
        engine is pickled as a recipe and each task runs on ``engine.spawn(task.seed)``)."""

    def set_positions(self, x) -> None:
        """Make ``x`` (shape ``(b, *event)``) the current batch (OpenMM: constraints applied;
        torch: energies and forces evaluated, one evaluation per row) and reset ``max_energy``."""

    def observe(self):
        """Current ``(positions (b, *event), energies (b,))`` of the batch (no dynamics)."""

    def draw_velocities(self, seeds) -> None:
        """Maxwell-Boltzmann velocities at ``kT``, one integer seed per row (OpenMM); a no-op
        for overdamped engines (they have no velocities; their noise is drawn at every step)."""

    def velocities(self) -> Optional[torch.Tensor]:
        """Current velocities ``(b, *event)`` (length/time), or None for overdamped engines."""

    def set_velocities(self, v) -> None:
        """Set the velocities of the batch (no-op for overdamped engines)."""

    def reverse_velocities(self) -> None:
        """Negate the velocities (backward shots); overdamped engines do nothing: their backward
        shot is a forward run with fresh noise, reversed in time by the caller."""

    def set_restraint(self, centre, stiffness, *, reduced: bool = False) -> None:
        """Restrain every coordinate harmonically to ``centre`` (``(*event)``) with ``stiffness``
        (energy/length^2; ``reduced=True``: 1/length^2, multiplied by ``kT``). ``centre=None`` clears it."""

    def step(self, n_steps: int, n_frames: int = 1, *, rows=None):
        """Advance the batch by ``n_steps`` steps, recording ``n_frames`` evenly spaced frames
        (``n_frames`` must divide ``n_steps``; the last frame is the final state).

        ``rows`` (torch engine): indices of the rows to advance (the others stay, and draw no
        noise); default all. Returns ``frames (len(rows), n_frames, *event)`` and
        ``energies (len(rows), n_frames)``."""

    def restraint_energy(self) -> torch.Tensor:
        """Restraint energy ``0.5 k |x - c|^2`` ``(b,)`` of the current batch, in :attr:`energy_unit`."""

    def energy(self, x) -> torch.Tensor:
        """Unrestrained energies ``(b,)`` of configurations ``x`` ``(b, *event)`` (OpenMM: moves the
        single replica there, constraints applied, and counts a read-out)."""


def run_until(engine, stop: Callable, *, save_every: int, max_frames: int):
    """Step the engine's single replica in chunks of ``save_every`` until ``stop`` fires or the cap.

    Parameters
    ----------
    engine : Engine
        With a batch of one replica, positions and velocities already set.
    stop : callable
        ``stop(frame) -> int`` on one frame ``(*event)``: 0 to continue, any other value ends the
        run and is returned as ``end`` (e.g. 1 for "entered the wanted state", 2 for "the other one").
    save_every : int
        Steps per recorded frame.
    max_frames : int
        Most frames to record; reaching it without a stop returns ``end = 0``.

    Returns
    -------
    frames : list of Tensor, each ``(*event)``
    energies : list of float
    end : int
        The value of ``stop`` that ended the run, 0 if the cap did.

    Examples
    --------
    >>> import torch
    >>> from tps.engines import TorchOverdampedEngine
    >>> from tps.potentials import Harmonic
    >>> engine = TorchOverdampedEngine(Harmonic((1,), k=1.0), kT=1.0, dt=0.01,
    ...                                generator=torch.Generator().manual_seed(0))
    >>> engine.set_positions(torch.zeros(1, 1, dtype=torch.float64))
    >>> frames, energies, end = run_until(engine, lambda x: int(abs(float(x[0])) > 0.3), save_every=1,
    ...                                   max_frames=1000)
    >>> end, len(frames) == len(energies) <= 1000
    (1, True)
    """
    frames, energies = [], []
    while len(frames) < max_frames:
        fr, en = engine.step(save_every, 1)
        x, e = fr[0, 0], float(en[0, 0])
        frames.append(x)
        energies.append(e)
        end = int(stop(x))
        if end:
            return frames, energies, end
    return frames, energies, 0
