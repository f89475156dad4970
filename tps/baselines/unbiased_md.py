"""Unbiased molecular dynamics: the cost of waiting for a transition.

Independent overdamped Langevin chains (Euler-Maruyama, ``dx = -grad U dt + sqrt(2 kT dt) N(0, I)``,
unit mobility, the step of :func:`tps.sampling.overdamped_langevin`) start in state A and run
until each first enters state B or its budget of ``max_steps`` steps ends. Each chain yields at
most one transition; a chain stops being evaluated once it is in B. The loop is written once on
an engine (:func:`run_md`, :class:`~tps.engines.TorchOverdampedEngine` here); OpenMM's
:func:`~tps.baselines.openmm_unbiased_md` runs it with restarts after each transition.

Cost per transition
-------------------
Every step of every chain costs one energy+force evaluation. With first-passage times
exponentially distributed (rare events), the maximum-likelihood rate from censored chains is
``n_transitions / total exposure``, so the evaluations per observed transition,
``n_energy_evals / n_transitions``, is the maximum-likelihood estimate of the mean number of
evaluations unbiased MD spends per transition path.

When no transition is observed the budget itself is reported as a lower bound
(``evals_per_transition_lower_bound = n_energy_evals``; a one-sided 95 % Poisson bound is a third
of it, ``info["lower_bound_95"]``), never as zero cost.

Extrapolation (``barrier_energy`` given)
----------------------------------------
A harmonic transition-state estimate of the rate,
``k = (kappa / (2 pi)) * exp(-(barrier_energy - U_min) / kT)`` per unit time, where ``U_min`` is
the lowest energy the chains visited and ``kappa = kT / var_max`` is the curvature of the softest
mode of the A basin, measured from the largest eigenvalue ``var_max`` of the covariance of the
visited configurations (unit mobility). It is the multidimensional Kramers rate
``(|lambda_saddle| / 2 pi) sqrt(det H_A / |det H_saddle|) exp(-dU / kT)`` with the unknown saddle
curvatures replaced by A's soft-mode one, so it is an order of magnitude: on Muller-Brown
(kT = 12.5; Hessian eigenvalues 410.5, 4068 at A, -750.8, 490.3 at S1) it is about 4x the full
harmonic estimate; in a 1-D quartic double well ``h (x^2 - 1)^2`` it is ``sqrt(2)`` times the Kramers
rate. ``evals_per_transition_extrapolated = 1 / (k dt)``. Meaningful for model potentials whose
coordinates have no free (translational) modes; the configurations must stay mostly in A.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import torch

from tps._validation import as_tensor, check_event_shape, check_finite, check_positive, check_positive_int
from tps.baselines.trials import vectorised
from tps.core import Paths
from tps.engines import Engine, TorchOverdampedEngine

__all__ = ["UnbiasedMDResult", "unbiased_md", "pad_paths", "MDRun", "run_md"]


@dataclass(frozen=True)
class UnbiasedMDResult:
    """Outcome of :func:`unbiased_md`.

    Attributes
    ----------
    n_energy_evals : int
        Energy+force evaluations spent (all chains, including the start configurations).
    n_chains : int
    n_transitions : int
        Chains that entered B within their budget.
    first_passage_steps : Tensor, shape ``(n_chains,)``, int64
        Step at which each chain first entered B, ``-1`` if it did not.
    steps_run : Tensor, shape ``(n_chains,)``, int64
        Steps each chain ran (its first-passage step or ``max_steps``).
    evals_per_transition : float or None
        ``n_energy_evals / n_transitions``; None when no transition was observed.
    evals_per_transition_lower_bound : float or None
        ``n_energy_evals`` when no transition was observed (the budget), else None.
    evals_per_transition_extrapolated : float or None
        Harmonic-rate extrapolation with ``barrier_energy`` (module docstring); None without it.
    paths : Paths or None
        Observed transition paths, from the last frame in A to the first frame in B, padded by
        repeating the last frame; ``info["lengths"]`` holds the true frame counts. None if no
        path was stored.
    kT, dt : float
    info : dict
        Estimator description, soft-mode curvature, 95 % Poisson bound, wall time.
    """

    n_energy_evals: int
    n_chains: int
    n_transitions: int
    first_passage_steps: torch.Tensor
    steps_run: torch.Tensor
    evals_per_transition: Optional[float]
    evals_per_transition_lower_bound: Optional[float]
    evals_per_transition_extrapolated: Optional[float]
    paths: Optional[Paths]
    kT: float
    dt: float
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain numbers for a results table."""
        return {
            "n_energy_evals": self.n_energy_evals,
            "n_chains": self.n_chains,
            "n_transitions": self.n_transitions,
            "evals_per_transition": self.evals_per_transition,
            "evals_per_transition_lower_bound": self.evals_per_transition_lower_bound,
            "evals_per_transition_extrapolated": self.evals_per_transition_extrapolated,
            "mean_transition_path_frames": self.info.get("mean_path_frames"),
            "wall_s": self.info.get("wall_s"),
        }


def _start_configurations(potential, x_start, n_chains):
    event = tuple(potential.event_shape)
    x = as_tensor(x_start, "x_start").to(torch.float64)
    check_finite(x, "x_start")
    if tuple(x.shape) == event:
        return x.expand((n_chains,) + event).clone()
    if tuple(x.shape) == (n_chains,) + event:
        return x.clone()
    raise ValueError(f"x_start: expected shape {event} or {(n_chains,) + event}, got {tuple(x.shape)}")


def pad_paths(frames_list, energies_list):
    """Stack variable-length paths, padding each by repeating its last frame.

    Parameters
    ----------
    frames_list : list of Tensor, each of shape ``(n_frames_i, *event)``
    energies_list : list of Tensor, each of shape ``(n_frames_i,)``

    Returns
    -------
    frames : Tensor, shape ``(n_paths, max_i n_frames_i, *event)``
    energies : Tensor, shape ``(n_paths, max_i n_frames_i)``
    lengths : Tensor, shape ``(n_paths,)``, int64
    """
    if not frames_list:
        raise ValueError("frames_list: expected at least one path")
    lengths = torch.tensor([len(f) for f in frames_list], dtype=torch.int64)
    width = int(lengths.max())
    frames, energies = [], []
    for f, e in zip(frames_list, energies_list):
        pad = width - len(f)
        frames.append(torch.cat([f, f[-1:].expand((pad,) + tuple(f.shape[1:]))]) if pad else f)
        energies.append(torch.cat([e, e[-1:].expand(pad)]) if pad else e)
    return torch.stack(frames), torch.stack(energies), lengths


def unbiased_md(potential, x_start, *, state_a, state_b, kT: Optional[float] = None, dt: Optional[float] = None,
                n_chains: int, max_steps: int,
                seed: Optional[int] = None, barrier_energy: Optional[float] = None, store_paths: bool = True,
                max_path_frames: int = 4000, max_transitions: Optional[int] = None,
                time_limit_s: Optional[float] = None) -> UnbiasedMDResult:
    """Run unbiased overdamped Langevin chains from A until they reach B.

    Parameters
    ----------
    potential : Potential or Engine
        Any potential (run by :class:`~tps.engines.TorchOverdampedEngine` with ``kT`` and ``dt``;
        every evaluation goes through ``potential.energy_and_forces`` and is counted), or a
        vectorised engine (``kT`` from the engine; ``dt``, default the engine's, converts steps
        to time; ``seed`` reseeds it).
    x_start : Tensor, shape ``(*event)`` or ``(n_chains, *event)``
        Start configurations; each must lie in ``state_a``.
    state_a, state_b : Volume
        Boolean masks ``(*batch, *event) -> (*batch,)``.
    kT : float
        Thermal energy in the potential's unit (potential only).
    dt : float
        Time step (unit mobility; Muller-Brown protocol: 1e-4).
    n_chains : int
    max_steps : int
        Budget of steps per chain.
    seed : int, optional
        Seed of the chains' own random generator.
    barrier_energy : float, optional
        Minimax barrier energy (e.g. ``system.reference["lower_bound"].value``) for the
        harmonic-rate extrapolation.
    store_paths : bool
        Keep the observed transition paths (a buffer of ``n_chains * max_path_frames`` frames).
    max_path_frames : int
        Longest transition path stored; longer ones are counted but not stored.
    max_transitions : int, optional
        Stop all chains once this many transitions have been observed (e.g. 1 to find an
        initial path); the others count as censored.
    time_limit_s : float, optional
        Stop all chains after this wall time; unfinished chains count as censored at the step
        they reached (the budget actually spent is what is reported).

    Returns
    -------
    UnbiasedMDResult

    Examples
    --------
    >>> import torch
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> res = unbiased_md(mb.potential, mb.endpoints["A"], state_a=mb.states["A"], state_b=mb.states["B"],
    ...                   kT=mb.kT, dt=1e-4, n_chains=4, max_steps=10, seed=0)
    >>> res.n_transitions, res.evals_per_transition_lower_bound
    (0, 44.0)
    """
    engine = potential if isinstance(potential, Engine) else None
    if engine is not None:
        if kT is not None:
            raise ValueError("kT: given by the engine; pass it only with a potential")
        kT = engine.kT
        dt = check_positive(dt if dt is not None else getattr(engine, "dt", None), "dt")
        if not vectorised(engine):
            raise ValueError("potential: unbiased_md runs vectorised engines; use "
                             "tps.baselines.openmm_unbiased_md for OpenMM")
    else:
        kT = check_positive(kT, "kT")
        dt = check_positive(dt, "dt")
    n_chains = check_positive_int(n_chains, "n_chains")
    max_steps = check_positive_int(max_steps, "max_steps")
    max_path_frames = check_positive_int(max_path_frames, "max_path_frames")
    if barrier_energy is not None and not math.isfinite(float(barrier_energy)):
        raise ValueError(f"barrier_energy: expected a finite energy, got {barrier_energy!r}")
    if time_limit_s is not None:
        time_limit_s = check_positive(time_limit_s, "time_limit_s")
    if max_transitions is not None:
        max_transitions = check_positive_int(max_transitions, "max_transitions")
    x = _start_configurations(engine or potential, x_start, n_chains)
    check_event_shape(x, (engine or potential).event_shape, "x_start")
    if not bool(state_a(x).all()):
        raise ValueError("x_start: every start configuration must lie in state_a")
    if bool(state_b(x).any()):
        raise ValueError("x_start: start configurations must not lie in state_b")
    if engine is None:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        engine = TorchOverdampedEngine(potential, kT=kT, dt=dt, generator=generator)
    elif seed is not None:
        engine.reseed(seed)
    run = run_md(engine, x, state_a=state_a, state_b=state_b, budget=max_steps, store_paths=store_paths,
                 max_path_frames=max_path_frames, max_transitions=max_transitions, time_limit_s=time_limit_s,
                 track_moments=True)
    n_evals = run.n_energy_evals
    n_tr = len(run.transitions)
    first_passage = torch.full((n_chains,), -1, dtype=torch.int64)
    for c, since in run.transitions:
        first_passage[c] = since

    # Harmonic rate with the soft-mode curvature of the visited configurations (module docstring).
    mean = run.sum_x / run.n_frames_seen
    cov = run.sum_xx / run.n_frames_seen - torch.outer(mean, mean)
    var_max = float(torch.linalg.eigvalsh(cov)[-1])
    kappa = kT / var_max if var_max > 0 else None
    extrapolated = None
    if barrier_energy is not None and kappa is not None:
        rate = kappa / (2.0 * math.pi) * math.exp(-(float(barrier_energy) - run.e_min) / kT)
        extrapolated = 1.0 / (rate * dt)

    paths = None
    if run.stored:
        frames, energies, lengths = pad_paths([s[1] for s in run.stored], [s[2] for s in run.stored])
        paths = Paths(frames, energies, n_evals, kT, {
            "sampler": "unbiased-md", "dt": dt, "lengths": lengths, "chains": torch.tensor([s[0] for s in run.stored]),
            "note": "last frame in A to first frame in B; padded by repeating the last frame",
        })
    steps_run = run.steps_run
    info = {
        "estimator": "evals_per_transition = n_energy_evals / n_transitions (censored exponential MLE); "
                     "extrapolated = 1 / (k dt), k = kappa/(2 pi) exp(-(barrier_energy - U_min)/kT), "
                     "kappa = kT / largest variance of the visited configurations",
        "lower_bound_95": n_evals / 3.0 if n_tr == 0 else None,
        "soft_mode_curvature": kappa, "min_energy": run.e_min, "barrier_energy": barrier_energy,
        "max_steps": max_steps, "stopped_by_time_limit": run.stopped_by_time, "n_paths_stored": len(run.stored),
        "n_paths_too_long": n_tr - len(run.stored) if store_paths else None,
        "mean_path_frames": float(paths.info["lengths"].double().mean()) if paths is not None else None,
        "mean_first_passage_time": float(steps_run.sum()) * dt / n_tr if n_tr else None,
        "wall_s": run.wall_s,
    }
    return UnbiasedMDResult(
        n_energy_evals=n_evals, n_chains=n_chains, n_transitions=n_tr, first_passage_steps=first_passage,
        steps_run=steps_run, evals_per_transition=n_evals / n_tr if n_tr else None,
        evals_per_transition_lower_bound=None if n_tr else float(n_evals),
        evals_per_transition_extrapolated=extrapolated, paths=paths, kT=kT, dt=dt, info=info,
    )


@dataclass
class MDRun:
    """Raw outcome of :func:`run_md`.

    Attributes
    ----------
    transitions : list of (replica, steps)
        Every A -> B transition in order: the replica and its steps since its (re)start.
    stored : list of (replica, frames, energies)
        Transition paths (last frame in A to first frame in B) of at most ``max_path_frames``
        frames, ordered by replica, then time.
    steps_run : Tensor, shape ``(n,)``, int64
        Steps each replica ran.
    n_energy_evals, n_readouts : int
        Engine evaluations and read-outs, the start configurations included.
    e_min : float
        Lowest energy seen (start configurations and recorded frames).
    sum_x, sum_xx : Tensor or None
        First and second moments of the recorded frames (``track_moments``).
    n_frames_seen : int
    stopped_by_time : bool
    wall_s : float
    """

    transitions: list
    stored: list
    steps_run: torch.Tensor
    n_energy_evals: int
    n_readouts: int
    e_min: float
    sum_x: Optional[torch.Tensor]
    sum_xx: Optional[torch.Tensor]
    n_frames_seen: int
    stopped_by_time: bool
    wall_s: float


def run_md(engine, x0, *, state_a, state_b, budget: int, steps_per_frame: int = 1, restart_rng=None,
           store_paths: bool = True, max_path_frames: int = 4000, max_transitions: Optional[int] = None,
           time_limit_s: Optional[float] = None, track_moments: bool = False) -> MDRun:
    """Unbiased dynamics of the replicas ``x0`` on ``engine`` until they reach B: THE loop of the package.

    Every ``steps_per_frame`` steps a frame is recorded and tested: in A it restarts the replica's
    transition-path buffer, in B it ends a transition (recorded; its path stored when it has at
    most ``max_path_frames`` frames). Without ``restart_rng`` a replica stops at its first
    transition (vectorised chains of :func:`unbiased_md`); with it the replica restarts at its
    start configuration with Maxwell-Boltzmann velocities seeded from ``restart_rng`` (one
    replica, :func:`~tps.baselines.openmm_unbiased_md`), so every transition is a first passage.

    Parameters
    ----------
    engine : Engine
        Vectorised, or holding one replica.
    x0 : Tensor, shape ``(n, *event)``
        Start configurations (in A).
    state_a, state_b : Volume
    budget : int
        Steps per replica (a replica stops at the first frame at or past it).
    steps_per_frame : int
    restart_rng : numpy.random.Generator, optional
        Velocity seeds of the (re)starts.
    store_paths, max_path_frames, max_transitions, time_limit_s
        As :func:`unbiased_md`.
    track_moments : bool
        Accumulate the moments of the recorded frames.

    Returns
    -------
    MDRun
    """
    n = x0.shape[0]
    if len(engine.batches(n)) != 1:
        raise ValueError(f"x0: this engine runs one replica at a time; got {n} start configurations")
    event = tuple(engine.event_shape)
    t0 = time.perf_counter()
    evals0, readouts0 = engine.n_energy_evals, engine.n_readouts
    if vectorised(engine):
        engine.set_positions(x0)
        e0 = engine.observe()[1]
    else:
        e0 = torch.cat([engine.energy(x) for x in x0])

    def restart(rows):
        engine.set_positions(x0[rows])
        engine.draw_velocities([int(restart_rng.integers(1, 2**31 - 1)) for _ in rows])

    if restart_rng is not None:
        restart(torch.arange(n))
    e_min = float(e0.min())
    dim = x0[0].numel()
    sum_x = torch.zeros(dim, dtype=torch.float64) if track_moments else None  # moments of the visited frames
    sum_xx = torch.zeros(dim, dim, dtype=torch.float64) if track_moments else None
    n_seen = 0
    ids = torch.arange(n)  # the replica of each running row
    steps = torch.zeros(n, dtype=torch.int64)  # filled in when a replica stops, and at the end
    started = [0] * n  # step of each replica's last (re)start
    select = getattr(engine, "select", None)  # drops stopped replicas from the batch (vectorised engines)
    local = None  # rows of the batch still running (engines without select)
    if store_paths:
        buf_x = torch.empty((n, max_path_frames) + event, dtype=torch.float64)
        buf_e = torch.empty((n, max_path_frames), dtype=torch.float64)
        buf_x[:, 0], buf_e[:, 0] = x0, e0
        ptr = torch.zeros(n, dtype=torch.int64)  # per running row: frames since the last frame in A
    transitions, stored = [], []
    stopped_by_time = False
    n_steps = 0  # steps of the running replicas (they all started together)
    while len(ids) and n_steps < budget:
        frames, energies = engine.step(steps_per_frame, 1, rows=local)
        x, e = frames.squeeze(1), energies.squeeze(1)
        n_steps += steps_per_frame
        e_min = min(e_min, float(e.min()))
        if track_moments:
            flat = x.reshape(len(x), dim)
            sum_x += flat.sum(0)
            sum_xx += flat.T @ flat
        n_seen += len(x)
        in_b = state_b(x)
        if store_paths:
            ptr = torch.where(state_a(x), 0, ptr + 1)
            slot = ptr.clamp(max=max_path_frames - 1)
            buf_x[ids, slot] = x
            buf_e[ids, slot] = e
        if bool(in_b.any()):
            hit = in_b.nonzero().flatten()
            done = ids[hit]
            for r, c in zip(hit.tolist(), done.tolist()):
                transitions.append((c, n_steps - started[c]))
                if store_paths and int(ptr[r]) < max_path_frames:
                    m = int(ptr[r]) + 1
                    stored.append((c, buf_x[c, :m].clone(), buf_e[c, :m].clone()))
            if max_transitions is not None and len(transitions) >= max_transitions:
                break
            if restart_rng is None:
                steps[done] = n_steps
                keep = (~in_b).nonzero().flatten()
                if len(keep) == 0:
                    ids = keep
                    break
                ids = ids[keep]
                if store_paths:
                    ptr = ptr[keep]
                if select is not None:
                    select(keep)
                else:
                    local = keep if local is None else local[keep]
            else:
                restart(done)
                for c in done.tolist():
                    started[c] = n_steps
                if store_paths:
                    ptr[hit] = 0
                    buf_x[done, 0], buf_e[done, 0] = x0[done], e0[done]
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            stopped_by_time = True
            break
    steps[ids] = n_steps
    stored.sort(key=lambda s: s[0])  # stable: by replica, then time
    return MDRun(transitions=transitions, stored=stored, steps_run=steps, n_energy_evals=engine.n_energy_evals - evals0,
                 n_readouts=engine.n_readouts - readouts0, e_min=e_min, sum_x=sum_x, sum_xx=sum_xx, n_frames_seen=n_seen,
                 stopped_by_time=stopped_by_time, wall_s=time.perf_counter() - t0)
