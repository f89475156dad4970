"""One round of two-way shooting on an :class:`~tps.engines.base.Engine`: the trial move, written once.

A round gives every chain one trial (module docstring of :mod:`tps.baselines.shooting`):

1. :func:`draw_trials`: the shooting frame ``k`` of each chain, the uniform number ``u`` of the
   flexible-length test and (engines with momenta) a velocity seed. Two random sources:
   a ``torch.Generator`` (vectorised chains: all frames, then all uniforms; the noise of the
   dynamics comes from the same generator) or a ``numpy.random.Generator`` (per chain: frame,
   uniform, velocity seed);
2. :func:`run_round`: the shots. A *vectorised* engine (``len(engine.batches(2)) == 1``) runs
   the forward and backward shots of every chain side by side in one batch, only unfinished rows
   advancing. An engine that runs one replica at a time runs the backward shot first (velocities
   drawn at the context's current positions and reversed) and the forward shot only when the
   backward one reached A (fixed length: ended in A), so a certain rejection costs no forward
   shot;
3. acceptance: fixed length, first frame in A and last in B; flexible length, the backward shot
   ended in A, the forward one in B, the trial is not longer than its cap ``2 + floor((L_old - 2)
   / u)`` (``max_frames``), and ``u <= (L_old - 2) / (L_new - 2)``. A flexible trial is abandoned
   as soon as its forward shot enters A, its backward shot enters B, or it reaches the cap with
   frames still to come.

State membership is tested on recorded frames only; every step is counted by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


def vectorised(engine) -> bool:
    """Whether ``engine`` runs a batch of replicas together (torch) rather than one by one (OpenMM)."""
    return len(engine.batches(2)) == 1


def draw_trials(rng, lengths: torch.Tensor, *, fixed: bool):
    """Shooting frames, uniforms and velocity seeds of one round.

    Parameters
    ----------
    rng : torch.Generator, numpy.random.Generator or None
        None: torch's global generator.
    lengths : Tensor, shape ``(n,)``, int64
        Frames of each chain's current path.
    fixed : bool
        Fixed-length ensemble: a torch source draws no uniforms (a numpy source always draws one).

    Returns
    -------
    k : Tensor, shape ``(n,)``, int64, in ``1 .. L-2``
    u : Tensor, shape ``(n,)``, float64 (at least 1e-300), or None
    seeds : list of int, or None (torch source)

    Examples
    --------
    >>> import numpy as np
    >>> k, u, seeds = draw_trials(np.random.default_rng(0), torch.tensor([10]), fixed=False)
    >>> 1 <= int(k[0]) <= 8, 0 < float(u[0]) <= 1, len(seeds)
    (True, True, 1)
    """
    if isinstance(rng, np.random.Generator):
        k, u, seeds = [], [], []
        for n_frames in lengths.tolist():
            k.append(int(rng.integers(1, n_frames - 1)))
            u.append(max(float(rng.random()), 1e-300))
            seeds.append(int(rng.integers(1, 2**31 - 1)))
        return torch.tensor(k, dtype=torch.int64), torch.tensor(u, dtype=torch.float64), seeds
    n = len(lengths)
    k = (torch.rand(n, generator=rng, dtype=torch.float64) * (lengths - 2)).long() + 1
    u = None if fixed else torch.rand(n, generator=rng, dtype=torch.float64).clamp(min=1e-300)
    return k, u, None


def trial_caps(lengths: torch.Tensor, u: torch.Tensor, max_frames: int, length_metropolis: bool) -> torch.Tensor:
    """Longest acceptable trial of each chain: ``min(max_frames, 2 + floor((L - 2) / u))``.

    Examples
    --------
    >>> trial_caps(torch.tensor([10]), torch.tensor([0.5], dtype=torch.float64), 100, True)
    tensor([18])
    """
    if not length_metropolis:
        return torch.full((len(lengths),), int(max_frames), dtype=torch.int64)
    return torch.clamp(2 + torch.floor((lengths - 2).double() / u), max=max_frames).long()


@dataclass
class Round:
    """Outcome of :func:`run_round` for ``n`` chains (shot ``c``: forward, ``n + c``: backward).

    Attributes
    ----------
    segments : list of (frames, energies, forces or None), one per shot, in generation order
    counts : Tensor, shape ``(2n,)``, int64
        Frames of each shot (0: not run).
    accept : Tensor, shape ``(n,)``, bool
    outcomes : dict of str to Tensor ``(n,)`` bool
        Fixed: ``accepted``, ``not_in_A``, ``not_in_B``; flexible: ``accepted``, ``forward_in_A``,
        ``backward_in_B``, ``too_long``, ``metropolis`` (one per chain).
    """

    segments: list
    counts: torch.Tensor
    accept: torch.Tensor
    outcomes: dict

    @property
    def trial_frames(self) -> torch.Tensor:
        """Frames of each chain's trial, ``1 + forward + backward``."""
        n = len(self.accept)
        return 1 + self.counts[:n] + self.counts[n:]


class _Shots:
    """Running state of the ``2n`` shots of one round (flexible: ends and abandoned chains).

    Which shots still run changes only when a shot enters A or B or a chain reaches its cap
    (flexible), or a shot completes its steps (fixed); :meth:`run` re-evaluates :meth:`active`
    only then (``t`` at or past the next such step) and, on an engine with ``select``, drops the
    finished rows from the batch, so that the running ones step as a whole batch (the noise
    stream of ``step(rows=...)``, without gathering and scattering rows at every step). Fixed
    length on a torch engine (cached forces), the steps up to the next completed shot are one
    ``step`` call.
    """

    def __init__(self, n, *, ensemble, fixed, n_steps, caps, steps_per_frame):
        self.n, self.ensemble, self.fixed, self.n_steps, self.caps = n, ensemble, fixed, n_steps, caps
        self.steps_per_frame = steps_per_frame
        self.count = torch.zeros(2 * n, dtype=torch.int64)
        self.end = torch.zeros(2 * n, dtype=torch.int64)  # 0: neither, 1: A, 2: B (flexible)
        self.aborted = torch.zeros(n, dtype=torch.bool)
        self.records = []  # (shot indices, frames, energies, forces) per step, time-major

    def active(self, shots: torch.Tensor) -> torch.Tensor:
        """Which of ``shots`` still run (``count`` up to date)."""
        if self.fixed:
            return self.count[shots] < self.n_steps[shots]
        n, end = self.n, self.end
        done = (end != 0).view(2, n)
        total = 1 + self.count.view(2, n).sum(0)
        self.aborted |= (end[:n] == 1) | (end[n:] == 2) | ((total >= self.caps) & ~(done[0] & done[1]))
        return ~(done | self.aborted).flatten()[shots]

    def next_change(self, shots: torch.Tensor, t: int) -> int:
        """The step count at which the running ``shots`` (all at ``t`` steps) next change without
        entering a state: the first completed shot (fixed), the first chain at its cap (flexible)."""
        if self.fixed:
            return int(self.n_steps[shots].min())
        n = self.n
        running = torch.zeros(2 * n, dtype=torch.bool)
        running[shots] = True
        per_chain = running.view(2, n).sum(0)
        stopped = 1 + torch.where(running, 0, self.count).view(2, n).sum(0)  # frames of the chain's stopped shots
        # total = stopped + per_chain * t reaches the cap at t = ceil((cap - stopped) / per_chain)
        at = -torch.div(stopped - self.caps, per_chain.clamp(min=1), rounding_mode="floor")
        return int(at[per_chain > 0].min())

    def run(self, engine, shots, x0, e0, f0, v0):
        """Set the batch to ``x0`` (rows: ``shots``) and advance its unfinished rows frame by frame."""
        if f0 is not None:
            engine.set_positions(x0, energies=e0, forces=f0)
        else:
            engine.set_positions(x0)
        if v0 is not None:
            engine.set_velocities(v0)
        select = getattr(engine, "select", None)
        state_a, state_b = self.ensemble.state_a, self.ensemble.state_b
        local = None  # rows of the batch still running (engines without select)
        t, change = 0, 0  # steps of the running shots; step count of the next re-evaluation
        while True:
            if t >= change:
                self.count[shots] = t
                keep = self.active(shots)
                if not bool(keep.all()):
                    keep = keep.nonzero().flatten()
                    if len(keep) == 0:
                        return
                    shots = shots[keep]
                    if select is not None:
                        select(keep)
                    else:
                        local = keep if local is None else local[keep]
                change = self.next_change(shots, t)
            if self.fixed and f0 is not None:  # torch engine: every frame up to the next completed shot at once
                k = change - t
                frames, energies, forces = engine.step(self.steps_per_frame * k, k, rows=local, with_forces=True)
                # time-major, as k one-frame records would be
                self.records.append((shots.repeat(k), frames.transpose(0, 1).flatten(0, 1), energies.t().flatten(),
                                     forces.transpose(0, 1).flatten(0, 1)))
                t = change
                continue
            frames, energies = engine.step(self.steps_per_frame, 1, rows=local)
            x, e = frames.squeeze(1), energies.squeeze(1)
            f = None
            if f0 is not None:  # a copy: the engine updates its forces in place
                f = engine.forces.clone() if local is None else engine.forces[local]
            self.records.append((shots, x, e, f))
            t += 1
            if not self.fixed:
                in_a, in_b = state_a(x), state_b(x)
                if bool((in_a | in_b).any()):
                    self.end[shots] = torch.where(in_a, 1, 2 * in_b)
                    change = t

    def segments(self):
        rows = torch.cat([r[0] for r in self.records])
        order = torch.argsort(rows, stable=True)
        sizes = torch.bincount(rows, minlength=2 * self.n).tolist()
        parts = [torch.cat([r[i] for r in self.records])[order].split(sizes) for i in (1, 2)]
        if self.records[0][3] is not None:
            parts.append(torch.cat([r[3] for r in self.records])[order].split(sizes))
        else:
            parts.append([None] * (2 * self.n))
        return list(zip(*parts))


def run_round(engine, ensemble, paths: list, k: torch.Tensor, *, u: Optional[torch.Tensor], caps, seeds,
              fixed: bool, length_metropolis: bool, steps_per_frame: int = 1) -> Round:
    """Run the shots of one round and decide acceptance (module docstring).

    Parameters
    ----------
    engine : Engine
    ensemble : FixedLengthEnsemble or FlexibleLengthEnsemble
        Its ``state_a``/``state_b`` stop and judge the shots.
    paths : list of (frames, energies, forces or None)
        Each chain's current path: ``(L, *event)``, ``(L,)``, ``(L, *event)`` (cached forces of a
        vectorised engine, so that a shot starts without an evaluation).
    k : Tensor, shape ``(n,)``, int64
        Shooting frames.
    u, caps : Tensor, shape ``(n,)`` (flexible length; ``caps`` from :func:`trial_caps`)
    seeds : list of int or None
        Velocity seeds (engines with momenta).
    fixed, length_metropolis : bool
    steps_per_frame : int
        Engine steps between recorded frames.

    Returns
    -------
    Round
    """
    n = len(paths)
    lengths = torch.tensor([p[0].shape[0] for p in paths])
    kl = k.tolist()
    xk = torch.stack([p[0][kc] for p, kc in zip(paths, kl)])
    ek = torch.stack([p[1][kc] for p, kc in zip(paths, kl)])
    fk = torch.stack([p[2][kc] for p, kc in zip(paths, kl)]) if paths[0][2] is not None else None
    st = _Shots(n, ensemble=ensemble, fixed=fixed, n_steps=torch.cat([lengths - 1 - k, k]) if fixed else None,
                caps=caps, steps_per_frame=steps_per_frame)
    state_a, state_b = ensemble.state_a, ensemble.state_b
    if vectorised(engine):  # rows 0..n-1 forward, n..2n-1 backward, side by side
        engine.draw_velocities(seeds)
        v = engine.velocities()
        st.run(engine, torch.arange(2 * n), torch.cat([xk, xk]), torch.cat([ek, ek]),
               None if fk is None else torch.cat([fk, fk]), None if v is None else torch.cat([v, -v]))
    else:
        for c in range(n):  # velocities drawn at the current positions, backward shot first
            engine.draw_velocities([seeds[c]] if seeds is not None else None)
            v = engine.velocities()
            f0 = None if fk is None else fk[c:c + 1]
            st.run(engine, torch.tensor([n + c]), xk[c:c + 1], ek[c:c + 1], f0, None if v is None else -v)
            reached_a = (bool(state_a(st.records[-1][1][-1])) if fixed else int(st.end[n + c]) == 1)
            if reached_a:
                st.run(engine, torch.tensor([c]), xk[c:c + 1], ek[c:c + 1], f0, v)
    segs = st.segments()
    outcomes = {}
    if fixed:
        not_a = ~state_a(torch.stack([s[0][-1] for s in segs[n:]]))
        ran = st.count[:n] > 0
        fw_b = torch.zeros(n, dtype=torch.bool)
        if bool(ran.any()):
            fw_b[ran] = state_b(torch.stack([segs[c][0][-1] for c in ran.nonzero().flatten().tolist()]))
        accept = fw_b & ~not_a
        outcomes.update(accepted=accept, not_in_A=not_a, not_in_B=~accept & ~not_a)
    else:
        end = st.end
        n_new = 1 + st.count[:n] + st.count[n:]
        reached = ~st.aborted & (end[:n] == 2) & (end[n:] == 1) & (n_new <= caps)
        passes = (u <= (lengths - 2).double() / (n_new - 2).double()) if length_metropolis else reached
        accept = reached & passes
        fw_a, bw_b = end[:n] == 1, end[n:] == 2
        metropolis = reached & ~passes
        outcomes.update(accepted=accept, forward_in_A=fw_a, backward_in_B=bw_b & ~fw_a,
                        too_long=~accept & ~fw_a & ~bw_b & ~metropolis, metropolis=metropolis)
    return Round(segments=segs, counts=st.count, accept=accept, outcomes=outcomes)
