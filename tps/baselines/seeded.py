"""Geodesic-seeded two-way shooting: independent shooting chains started from different paths.

Two-way shooting (:func:`tps.baselines.two_way_shooting`) samples the transition path ensemble
exactly but needs an initial reactive path and a serial burn-in per chain; geodesic paths
(:mod:`tps.sampling`) are many independent reactive paths at a fixed cost but biased. Seeding
puts the two together:

1. every given path is cut to its A -> B *transition segment* (:func:`transition_segments`):
   from its last frame in A before its first entry into B, through that entry. The segment's
   first frame lies in A, its last in B and no other frame in A or B, so it is a member of the
   flexible-length ensemble (:class:`~tps.baselines.FlexibleLengthEnsemble`). The cut is the one
   of :func:`tps.baselines.trim_to_transition` (both use :func:`transition_bounds`);
2. chain ``c`` starts from the segment of the ``c``-th path that has one (:func:`seed_paths`):
   ``n_chains`` chains from ``n_chains`` *different* paths;
3. the chains run flexible-length two-way shooting on any engine (torch overdamped for a
   potential, OpenMM Langevin for a molecule; with an executor as tasks of :mod:`tps.parallel`).

Seeds from a geodesic (or a high-temperature run) are usually much shorter than dynamical
transition paths at the shooting time step, and the flexible-length acceptance test caps a
trial at ``2 + (L_old - 2) / u`` frames, so nearly every realistic trial from a short seed is
rejected. :func:`~tps.baselines.relax.relax_chains` therefore first runs each chain WITHOUT the length factor
(every A -> B trial of at most ``max_frames`` frames is accepted) until it shares no frame with
its seed, or for at most ``max_rounds`` rounds; those paths are discarded (their evaluations
counted), and proper TPS starts from the relaxed paths (:func:`seeded_shooting` with
``relax_rounds``). Decorrelation is tracked per chain by the frames' birth stamps (the seed's
frames are born in round 0), as in :func:`~tps.baselines.two_way_shooting`. Convergence diagnostics
between chains live in :mod:`tps.metrics.convergence` (``tps.metrics`` is a sibling layer, so
the pipeline, :func:`tps.pipeline.refine.refine_by_shooting`, adds them to ``info``).
"""

from __future__ import annotations

from typing import Optional

import torch

from tps._validation import check_positive_int
from tps.baselines.ensembles import FlexibleLengthEnsemble
from tps.baselines.relax import relax_chains
from tps.baselines.shooting import ShootingResult, two_way_shooting
from tps.core import Paths

__all__ = ["transition_bounds", "transition_segments", "seed_paths", "seeded_shooting", "frames_and_lengths"]


def transition_bounds(in_a, in_b, lengths=None) -> tuple:
    """First and last frame of each path's A -> B transition segment, from state membership.

    The segment ends at the first frame in B (and not in A) that comes after some frame in A, and
    starts at the last frame in A before it (the definition of :func:`~tps.baselines.trim_to_transition`).

    Parameters
    ----------
    in_a, in_b : bool Tensor, shape ``(n_paths, n_frames)``
        Membership of every frame in A and in B.
    lengths : int Tensor, shape ``(n_paths,)``, optional
        Valid frames per path (the rest is padding and ignored); all ``n_frames`` if None.

    Returns
    -------
    start, stop : int64 Tensor, shape ``(n_paths,)``
        Segment frames ``start .. stop`` (inclusive); -1 where ``ok`` is False.
    ok : bool Tensor, shape ``(n_paths,)``
        Whether the path goes from A to B at all.

    Examples
    --------
    >>> import torch
    >>> in_a = torch.tensor([[1, 1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    >>> in_b = torch.tensor([[0, 0, 0, 0, 0, 1, 1], [0, 1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    >>> start, stop, ok = transition_bounds(in_a, in_b)
    >>> start.tolist(), stop.tolist(), ok.tolist()   # path 0: frames 3..5; path 1 never leaves A for B
    ([3, -1], [5, -1], [True, False])
    """
    in_a = torch.as_tensor(in_a, dtype=torch.bool)
    in_b = torch.as_tensor(in_b, dtype=torch.bool)
    n_paths, n_frames = in_a.shape
    t = torch.arange(n_frames)[None]
    valid = torch.ones_like(in_a) if lengths is None else t < torch.as_tensor(lengths).to(torch.int64)[:, None]
    a = in_a & valid
    b = in_b & ~in_a & valid
    a_before = (torch.cumsum(a.to(torch.int64), 1) - a.to(torch.int64)) > 0  # some frame in A strictly before
    end = b & a_before
    ok = end.any(1)
    stop = torch.where(end, t, n_frames).min(1).values
    start = torch.where(a & (t < stop[:, None]), t, -1).max(1).values
    return start.masked_fill(~ok, -1), stop.masked_fill(~ok, -1), ok


def frames_and_lengths(paths, name: str = "paths") -> tuple:
    """``(frames, lengths)`` of paths given as a Paths, a padded tensor or a list of tensors.

    Returns
    -------
    frames : Tensor, shape ``(n_paths, n_frames, *event)``, float64, CPU
        Shorter paths padded by repeating their last frame.
    lengths : int64 Tensor, shape ``(n_paths,)``
        Valid frames per path (``info["lengths"]`` of a Paths; all frames otherwise).
    """
    if isinstance(paths, Paths):
        frames = paths.frames
        lengths = paths.info.get("lengths")
        lengths = (torch.full((frames.shape[0],), frames.shape[1]) if lengths is None
                   else torch.as_tensor(lengths).to(torch.int64))
        return frames.detach().cpu().to(torch.float64), lengths
    if isinstance(paths, (list, tuple)):
        if not paths:
            raise ValueError(f"{name}: expected at least one path, got an empty list")
        items = [torch.as_tensor(p).detach().cpu().to(torch.float64) for p in paths]
        event = items[0].shape[1:]
        if any(p.dim() < 2 or p.shape[1:] != event for p in items):
            raise ValueError(f"{name}: expected paths of shape (n_frames, *event) with one event shape")
        lengths = torch.tensor([p.shape[0] for p in items])
        n = int(lengths.max())
        frames = torch.stack([torch.cat([p, p[-1:].expand(n - p.shape[0], *event)]) for p in items])
        return frames, lengths
    frames = torch.as_tensor(paths).detach().cpu().to(torch.float64)
    if frames.dim() < 3:
        raise ValueError(f"{name}: expected frames of shape (n_paths, n_frames, *event), got {tuple(frames.shape)}")
    return frames, torch.full((frames.shape[0],), frames.shape[1])


def _segments(paths, state_a, state_b, name: str = "paths") -> tuple:
    """``(segments, path indices, n_paths)`` of the paths that go from A to B."""
    frames, lengths = frames_and_lengths(paths, name)
    start, stop, ok = transition_bounds(state_a(frames), state_b(frames), lengths)
    index = ok.nonzero().flatten().tolist()
    return [frames[i, int(start[i]):int(stop[i]) + 1].clone() for i in index], index, frames.shape[0]


def transition_segments(paths, state_a, state_b) -> list:
    """Each path cut to its A -> B transition (first frame in A, last in B, none in between in A or B).

    Parameters
    ----------
    paths : Paths, Tensor ``(n_paths, n_frames, *event)`` or list of Tensor ``(n_i, *event)``
        A :class:`~tps.core.Paths` with ``info["lengths"]`` has its padding dropped.
    state_a, state_b : Volume
        Boolean masks ``(*batch, *event) -> (*batch,)``.

    Returns
    -------
    list of Tensor, each ``(n_i, *event)`` float64
        One segment per path that goes from A to B, in path order (the others give none).

    Examples
    --------
    >>> import torch
    >>> from tps.states import Ball
    >>> a, b = Ball(torch.tensor([0.0]), 0.5), Ball(torch.tensor([3.0]), 0.5)
    >>> x = torch.tensor([0.0, 0.2, 1.0, 0.3, 1.5, 2.0, 2.9, 3.0]).reshape(1, 8, 1)
    >>> [s.flatten().tolist() for s in transition_segments(x, a, b)]
    [[0.3, 1.5, 2.0, 2.9]]
    """
    return _segments(paths, state_a, state_b)[0]


def seed_paths(paths, state_a, state_b, n_chains: int) -> tuple:
    """The first ``n_chains`` transition segments of distinct paths, and the indices of those paths.

    Segments of fewer than 3 frames (no interior frame to shoot from) are skipped.

    Parameters
    ----------
    paths : Paths, Tensor ``(n_paths, n_frames, *event)`` or list of Tensor
    state_a, state_b : Volume
    n_chains : int

    Returns
    -------
    segments : list of Tensor ``(n_i, *event)``, ``n_chains`` of them
    index : list of int
        The path each segment was cut from.

    Raises
    ------
    ValueError
        ``n_chains``: more chains than paths; ``paths``: fewer than ``n_chains`` paths contain an
        A -> B transition of at least 3 frames (the message says how many do).

    Examples
    --------
    >>> import torch
    >>> from tps.states import Ball
    >>> a, b = Ball(torch.tensor([0.0]), 0.5), Ball(torch.tensor([3.0]), 0.5)
    >>> up = torch.linspace(0.0, 3.0, 7).reshape(7, 1)
    >>> segs, index = seed_paths([up.flip(0), up, up], a, b, 2)
    >>> index, segs[0].shape
    ([1, 2], torch.Size([5, 1]))
    """
    n_chains = check_positive_int(n_chains, "n_chains")
    segments, index, n_paths = _segments(paths, state_a, state_b)
    if n_paths < n_chains:
        raise ValueError(f"n_chains: {n_chains} chains need {n_chains} different paths, but paths holds only "
                         f"{n_paths}; pass more paths or fewer chains")
    usable = [(s, i) for s, i in zip(segments, index) if s.shape[0] >= 3]
    if len(usable) < n_chains:
        raise ValueError(f"paths: only {len(usable)} of its {n_paths} paths contain an A -> B transition of at least "
                         f"3 frames under the given states ({len(segments)} reach B from A at all), fewer than "
                         f"n_chains={n_chains}")
    usable = usable[:n_chains]
    return [s for s, _ in usable], [i for _, i in usable]


def _is_openmm(engine) -> bool:
    return type(engine).__name__ == "OpenMMLangevinEngine"


def seeded_shooting(engine_or_potential, paths, state_a, state_b, *, n_chains: int, n_rounds: int, burn_in: int,
                    max_frames: int, kT: Optional[float] = None, dt: Optional[float] = None,
                    seed: Optional[int] = None, executor=None, save_every: int = 1, steps_per_frame: int = 1,
                    task_size: Optional[int] = None, checkpoint=None, progress: bool = False,
                    time_limit_s: Optional[float] = None, relax_rounds: int = 0) -> ShootingResult:
    """Flexible-length two-way shooting, one chain per seed path (module docstring).

    Parameters
    ----------
    engine_or_potential : Potential or Engine
        A potential (with ``kT`` and ``dt``: :class:`~tps.engines.TorchOverdampedEngine`, all chains
        side by side), a torch engine, or an :class:`~tps.engines.openmm.OpenMMLangevinEngine`
        (chains one after another in its context; with an executor, as tasks of
        :func:`tps.baselines.chains.openmm_shooting_chains`).
    paths : Paths, Tensor ``(n_paths, n_frames, *event)`` or list of Tensor
        The paths to seed from (e.g. geodesic paths); cut with :func:`seed_paths`.
    state_a, state_b : Volume
    n_chains : int
        Chains, each from a different path.
    n_rounds : int
        Shooting trials per chain.
    burn_in : int
        Rounds whose chain states are not kept, in ``[0, n_rounds)``.
    max_frames : int
        Longest trial path (frames); longer trials are rejected (their cost counted). Every seed
        segment must fit.
    kT, dt : float, optional
        Potential only (see :func:`~tps.baselines.two_way_shooting`).
    seed : int, optional
        Random seed of the trials (and the engine).
    executor, task_size, checkpoint, progress
        :mod:`tps.parallel` tasks (see :func:`~tps.baselines.two_way_shooting`; OpenMM: one chain
        per task unless ``task_size``).
    save_every : int
        Keep the chain states of every ``save_every``-th round after the burn-in.
    steps_per_frame : int
        Engine steps between recorded frames (OpenMM: MD steps per frame, e.g. the geodesic
        sampler's frame spacing; 1 for overdamped shooting).
    time_limit_s : float, optional
        Stop after the round during which this wall time is exceeded (in-process runs).
    relax_rounds : int
        At most this many rounds of :func:`relax_chains` per chain before the ``n_rounds`` of TPS
        (0: none). Their paths are discarded, their evaluations counted.

    Returns
    -------
    ShootingResult
        As :func:`~tps.baselines.two_way_shooting`: ``paths`` the pooled chain states after the
        burn-in (``info["chain"]``, ``info["round"]``, ``info["lengths"]``); ``info`` adds
        ``"seed_path_index"`` (per chain, the path its seed was cut from), ``"seed_frames"``
        (frames of each seed) and keeps ``"accepted_per_chain"``, ``"decorrelated_per_chain"``,
        ``"first_decorrelated_round"`` (None: still shares a frame with its seed) and
        ``"round_evals"`` (of the TPS rounds; decorrelation there is counted from the relaxed path).
        With ``relax_rounds``: ``"relax_rounds_per_chain"``, ``"relax_accepted_per_chain"``,
        ``"relaxed_from_seed"`` (chain decorrelated from its seed during the relaxation),
        ``"relax_energy_evals"``, ``"relax_round_evals"``. ``n_energy_evals`` counts the seeds'
        frames, every relaxation and every trial frame (the relaxed paths' frames once more);
        the cost of making the seed paths is not included.

    Raises
    ------
    ValueError
        For fewer paths than chains, too few transitions (:func:`seed_paths`), a seed longer than
        ``max_frames``, or bad settings (named).

    Examples
    --------
    >>> import torch
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> line = torch.stack([torch.lerp(mb.endpoints["A"], mb.endpoints["B"], float(s))
    ...                     for s in torch.linspace(0, 1, 30)])
    >>> res = seeded_shooting(mb.potential, [line, line.flip(0), line], mb.states["A"], mb.states["B"],
    ...                       n_chains=2, n_rounds=2, burn_in=1, max_frames=60, kT=mb.kT, dt=1e-4, seed=0)
    >>> res.info["seed_path_index"], res.info["n_chains"], len(res.info["accepted_per_chain"])
    ([0, 2], 2, 2)
    """
    n_chains = check_positive_int(n_chains, "n_chains")
    max_frames = check_positive_int(max_frames, "max_frames")
    steps_per_frame = check_positive_int(steps_per_frame, "steps_per_frame")
    n_rounds = check_positive_int(n_rounds, "n_rounds")
    save_every = check_positive_int(save_every, "save_every")
    if isinstance(burn_in, bool) or int(burn_in) != burn_in or not 0 <= burn_in < n_rounds:
        raise ValueError(f"burn_in: expected an integer in [0, n_rounds={n_rounds}), got {burn_in!r}")
    seeds, index = seed_paths(paths, state_a, state_b, n_chains)
    for c, s in enumerate(seeds):
        if s.shape[0] > max_frames:
            raise ValueError(f"max_frames: the transition of path {index[c]} (seed of chain {c}) has {s.shape[0]} "
                             f"frames, more than max_frames={max_frames}; raise max_frames")
    ensemble = FlexibleLengthEnsemble(state_a, state_b, max_frames=max_frames)
    seed_frames = [int(s.shape[0]) for s in seeds]
    relax = None
    if relax_rounds:
        relax = relax_chains(engine_or_potential, seeds, state_a, state_b, max_rounds=relax_rounds,
                             max_frames=max_frames, kT=kT, dt=dt, seed=seed, steps_per_frame=steps_per_frame,
                             executor=executor, task_size=task_size)
        seeds = relax.paths
        seed = None if seed is None else int(seed) + 7919  # TPS continues on another stream
    if executor is not None and _is_openmm(engine_or_potential):
        from tps.baselines.chains import openmm_seeded_chains

        result = openmm_seeded_chains(engine_or_potential, seeds, state_a=state_a, state_b=state_b,
                                      n_rounds=n_rounds, burn_in=burn_in, save_every=save_every,
                                      max_frames=max_frames, steps_per_frame=steps_per_frame,
                                      seed=0 if seed is None else int(seed), executor=executor,
                                      task_size=1 if task_size is None else task_size, checkpoint=checkpoint,
                                      progress=progress, time_limit_s=time_limit_s)
    else:
        result = two_way_shooting(engine_or_potential, ensemble, seeds, kT=kT, dt=dt, n_chains=n_chains,
                                  n_rounds=n_rounds, burn_in=burn_in, save_every=save_every, seed=seed,
                                  executor=executor, task_size=task_size, checkpoint=checkpoint, progress=progress,
                                  steps_per_frame=steps_per_frame, time_limit_s=time_limit_s)
    extra = {"sampler": "geodesic-seeded-shooting", "seed_path_index": list(index),
             "seed_frames": seed_frames, "max_frames": max_frames,
             "steps_per_frame": steps_per_frame, "save_every": int(save_every)}
    if relax is not None:
        extra.update({"relax_rounds": int(relax_rounds), "relax_rounds_per_chain": relax.rounds,
                      "relax_accepted_per_chain": relax.accepted, "relaxed_from_seed": relax.decorrelated,
                      "relax_energy_evals": relax.n_energy_evals, "relax_round_evals": relax.round_evals,
                      "relax_wall_s": relax.wall_s})
        result = ShootingResult(
            paths=result.paths, n_energy_evals=result.n_energy_evals + relax.n_energy_evals,
            n_trials=result.n_trials, n_accepted=result.n_accepted, n_decorrelated=result.n_decorrelated,
            acceptance_rate=result.acceptance_rate,
            evals_per_accepted_path=None if not result.n_accepted else
            (result.n_energy_evals + relax.n_energy_evals) / result.n_accepted,
            evals_per_decorrelated_path=None if not result.n_decorrelated else
            (result.n_energy_evals + relax.n_energy_evals) / result.n_decorrelated, info=result.info)
        result.paths.n_energy_evals = result.n_energy_evals
    result.info.update(extra)
    result.paths.info.update(extra)
    return result
