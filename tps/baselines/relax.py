"""Relaxation of per-chain initial paths before two-way shooting: :func:`relax_chains`.

Initial paths that are not typical of the dynamics (geodesic paths, high-temperature
transitions) are much shorter in frames than transition paths at the shooting time step; from
them the flexible-length acceptance test (trial cap ``2 + (L_old - 2) / u``) rejects nearly every
realistic trial. The relaxation runs flexible-length two-way shooting WITHOUT the length factor
(every A -> B trial of at most ``max_frames`` frames is accepted) chain by chain until the chain
shares no frame with its initial path (birth stamps, as :func:`tps.baselines.two_way_shooting`),
or for at most ``max_rounds`` rounds. Its paths are not the transition path ensemble and are
meant to be discarded (their evaluations counted); proper TPS continues from the relaxed paths
(:func:`tps.baselines.seeded_shooting` with ``relax_rounds``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from tps._validation import check_positive, check_positive_int
from tps.baselines.ensembles import FlexibleLengthEnsemble
from tps.baselines.trials import draw_trials, run_round, trial_caps, vectorised
from tps.engines import Engine, TorchOverdampedEngine

__all__ = ["RelaxResult", "relax_chains"]


@dataclass
class RelaxResult:
    """Outcome of :func:`relax_chains`.

    Attributes
    ----------
    paths : list of Tensor ``(L_c, *event)``
        Each chain's path after the relaxation (float64).
    rounds : list of int
        Relaxation rounds each chain ran (it stops once decorrelated).
    decorrelated : list of bool
        Whether the chain's path shares no frame with its seed.
    accepted : list of int
        Accepted relaxation trials per chain.
    round_evals : list of int
        Engine evaluations of each round (all chains; the seeds' evaluation not included).
    n_energy_evals : int
        Every evaluation: the seeds' frames once and every relaxation trial frame.
    wall_s : float
    """

    paths: list
    rounds: list
    decorrelated: list
    accepted: list
    round_evals: list
    n_energy_evals: int
    wall_s: float


def _relax_engine(engine_or_potential, kT, dt, seed):
    """``(engine, rng)`` as :func:`~tps.baselines.two_way_shooting` sets them up."""
    if not isinstance(engine_or_potential, Engine):
        generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        engine = TorchOverdampedEngine(engine_or_potential, kT=check_positive(kT, "kT"), dt=check_positive(dt, "dt"),
                                       generator=generator)
        return engine, generator
    if kT is not None or dt is not None:
        raise ValueError("kT, dt: given by the engine; pass them only with a potential")
    engine = engine_or_potential
    if vectorised(engine):
        if seed is not None:
            engine.reseed(int(seed))
        return engine, getattr(engine, "generator", None)
    rng = np.random.default_rng(seed)
    engine.reseed(int(rng.integers(1, 2**31 - 1)))
    return engine, rng


def _relax_loop(engine, rng, ensemble, initial, max_rounds, steps_per_frame, until="decorrelated"):
    """The relaxation rounds on one engine: flexible shooting without the length factor; a chain stops
    once it has decorrelated from its seed (``until="decorrelated"``) or at its first accepted trial
    (``until="accepted"``)."""
    chains = []
    for p in initial:
        if vectorised(engine):
            engine.set_positions(p)
            chains.append((p, engine.observe()[1], engine.forces.clone(), torch.zeros(p.shape[0], dtype=torch.int64)))
        else:
            chains.append((p, torch.cat([engine.energy(x) for x in p]), None, torch.zeros(p.shape[0], dtype=torch.int64)))
    n = len(chains)
    rounds, accepted, done, round_evals = [0] * n, [0] * n, [False] * n, []
    for rnd in range(1, int(max_rounds) + 1):
        idx = [c for c in range(n) if not done[c]]
        if not idx:
            break
        evals = engine.n_energy_evals
        lengths = torch.tensor([chains[c][0].shape[0] for c in idx])
        k, u, seeds = draw_trials(rng, lengths, fixed=False)
        caps = trial_caps(lengths, u, ensemble.max_frames, False)
        r = run_round(engine, ensemble, [chains[c][:3] for c in idx], k, u=u, caps=caps, seeds=seeds, fixed=False,
                      length_metropolis=False, steps_per_frame=steps_per_frame)
        for j in r.accept.nonzero().flatten().tolist():
            c, kc, old = idx[j], int(k[j]), chains[idx[j]]
            fw, bw = r.segments[j], r.segments[len(idx) + j]
            new = [torch.cat([b.flip(0), o[kc:kc + 1], f]) if o is not None else None
                   for b, o, f in zip(bw, old[:3], fw)]
            stamp = torch.cat([torch.full((len(bw[0]),), rnd), old[3][kc:kc + 1], torch.full((len(fw[0]),), rnd)])
            chains[c] = (*new, stamp)
            accepted[c] += 1
            done[c] = until == "accepted" or bool(stamp.min() > 0)
        for c in idx:
            rounds[c] = rnd
        round_evals.append(engine.n_energy_evals - evals)
    decorrelated = [bool(c[3].min() > 0) for c in chains]
    # the seeds' frames once (a torch engine counts its own observe(); OpenMM's energy() is not counted)
    return ([c[0] for c in chains], rounds, decorrelated, accepted, round_evals,
            sum(int(p.shape[0]) for p in initial) + sum(round_evals))


def _relax_task(shared, task):
    engine = shared["engine"].spawn(int(task.seed))
    rng = getattr(engine, "generator", None) if vectorised(engine) else np.random.default_rng(int(task.seed))
    return _relax_loop(engine, rng, shared["ensemble"], shared["initial"][task.start:task.stop], shared["max_rounds"],
                       shared["steps_per_frame"], shared["until"])


def relax_chains(engine_or_potential, initial, state_a, state_b, *, max_rounds: int, max_frames: int,
                 kT: Optional[float] = None, dt: Optional[float] = None, seed: Optional[int] = None,
                 steps_per_frame: int = 1, executor=None, task_size: Optional[int] = None,
                 until: str = "decorrelated") -> RelaxResult:
    """Relax per-chain initial paths until each shares no frame with its start (module docstring).

    Flexible-length two-way shooting WITHOUT the length factor: a trial is accepted when it goes
    from A to B within ``max_frames`` frames. This is not the transition path ensemble; it
    replaces atypical initial paths (short geodesic or high-temperature transitions) by dynamical
    ones, and its paths are meant to be discarded. A chain stops as soon as it has decorrelated
    from its initial path, or after ``max_rounds`` rounds.

    Parameters
    ----------
    engine_or_potential : Potential or Engine
        As :func:`~tps.baselines.two_way_shooting` (a potential needs ``kT`` and ``dt``).
    initial : list of Tensor ``(L_c, *event)``
        One flexible-length path per chain (first frame in A, last in B, none in between).
    state_a, state_b : Volume
    max_rounds : int
        Most relaxation rounds per chain.
    max_frames : int
        Longest trial (frames).
    kT, dt : float, optional
    seed : int, optional
    steps_per_frame : int
    until : {"decorrelated", "accepted"}
        When a chain stops: once it shares no frame with its initial path (default), or at its
        first accepted trial. After one accepted trial the path is a trajectory of the dynamics
        except its shooting frame (taken from the initial path), so its length is typical and
        proper shooting can take over; the remaining memory of the initial path is then part of
        that shooting's burn-in.
    executor, task_size
        With an executor (:mod:`tps.parallel`) the chains relax as tasks of ``task_size`` chains
        (default 4), each on ``engine.spawn(task seed)``: results depend on ``(seed, task_size)``
        only.

    Returns
    -------
    RelaxResult

    Examples
    --------
    >>> import torch
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> line = torch.stack([torch.lerp(mb.endpoints["A"], mb.endpoints["B"], float(s))
    ...                     for s in torch.linspace(0, 1, 30)])
    >>> from tps.baselines import transition_segments
    >>> seed = transition_segments(line[None], mb.states["A"], mb.states["B"])[0]   # 28 frames
    >>> r = relax_chains(mb.potential, [seed, seed], mb.states["A"], mb.states["B"], max_rounds=3,
    ...                  max_frames=2000, kT=mb.kT, dt=1e-4, seed=0)
    >>> len(r.paths), max(r.rounds) <= 3, r.n_energy_evals == 2 * 28 + sum(r.round_evals)
    (2, True, True)
    """
    max_rounds = check_positive_int(max_rounds, "max_rounds")
    max_frames = check_positive_int(max_frames, "max_frames")
    steps_per_frame = check_positive_int(steps_per_frame, "steps_per_frame")
    if until not in ("decorrelated", "accepted"):
        raise ValueError(f"until: expected 'decorrelated' or 'accepted', got {until!r}")
    ensemble = FlexibleLengthEnsemble(state_a, state_b, max_frames=max_frames)
    initial = [torch.as_tensor(p).detach().cpu().to(torch.float64) for p in initial]
    for c, p in enumerate(initial):
        if p.shape[0] < 3 or not ensemble(p):
            raise ValueError(f"initial[{c}]: not in the flexible-length ensemble (at least 3 frames, first in A, last "
                             f"in B, none in between, at most max_frames={max_frames})")
    t0 = time.perf_counter()
    if executor is None:
        engine, rng = _relax_engine(engine_or_potential, kT, dt, seed)
        out = _relax_loop(engine, rng, ensemble, initial, max_rounds, steps_per_frame, until)
    else:
        from tps.parallel import make_tasks, run_tasks

        engine, _ = _relax_engine(engine_or_potential, kT, dt, None)
        size = 4 if task_size is None else check_positive_int(task_size, "task_size")
        tasks = make_tasks(len(initial), task_size=size, seed=int(torch.randint(0, 2**62, (1,))) if seed is None
                           else int(seed))
        shared = {"engine": engine, "ensemble": ensemble, "initial": initial, "max_rounds": max_rounds,
                  "steps_per_frame": steps_per_frame, "until": until}
        parts = run_tasks(_relax_task, tasks, shared=shared, executor=executor, desc="relaxation")
        n_r = max(len(p[4]) for p in parts)
        out = ([x for p in parts for x in p[0]], [x for p in parts for x in p[1]], [x for p in parts for x in p[2]],
               [x for p in parts for x in p[3]],
               [sum(p[4][i] for p in parts if i < len(p[4])) for i in range(n_r)], sum(p[5] for p in parts))
    paths, rounds, done, accepted, round_evals, n_evals = out
    return RelaxResult(paths=paths, rounds=list(rounds), decorrelated=list(done), accepted=list(accepted),
                       round_evals=list(round_evals), n_energy_evals=int(n_evals), wall_s=time.perf_counter() - t0)
