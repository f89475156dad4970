"""Two-way shooting and unbiased MD driven by OpenMM's own dynamics (all-atom baselines).

The shooting move and the unbiased-MD loop are the package's one implementation
(:func:`tps.baselines.shooting.run_chains`, :func:`tps.baselines.unbiased_md.run_md`); this module
runs them on :class:`~tps.engines.openmm.OpenMMLangevinEngine` (OpenMM's
``LangevinMiddleIntegrator``: momenta, constraints) for an :class:`openmm.System`, one chain per
call, in ONE context (from :func:`tps.engines.openmm.context_for`, seeded once; later trials
continue its random stream), and reports in OpenMM's units.

Frames are recorded every ``save_every`` MD steps; state membership is tested on recorded frames
only. Evaluations are MD steps (one force evaluation each), rejected and abandoned trials
included; the energy read-outs of recorded frames are reported separately
(``info["n_energy_readouts"]``).

Two-way shooting, flexible length (Bolhuis, Dellago, Chandler; OpenPathSampling's
``TwoWayShootingMover`` with velocity randomisation):

1. pick a shooting frame ``k`` uniformly among the interior frames ``1 .. L-2``;
2. draw velocities from Maxwell-Boltzmann at ``temperature`` (OpenMM's ``setVelocitiesToTemperature``;
   as before the redesign, the draw happens before the context moves to frame ``k``, so its
   velocity constraints are those of the context's previous positions; the integrator's
   constraint step projects them at the first step);
3. backward shot: from frame ``k`` with the *reversed* velocities until the shot enters A or B;
   forward shot: from frame ``k`` with the drawn velocities until it enters A or B;
4. trial = ``reversed(backward) + [frame k] + forward``; accept if it starts in A, ends in B
   (no interior frame can be in A or B: shots stop at the first entry) and a uniform number
   ``u`` drawn before shooting satisfies ``u <= (L_old - 2) / (L_new - 2)``, the ratio of the
   uniform selection probabilities of the shooting frame. ``u`` caps the trial length at
   ``2 + floor((L_old - 2) / u)`` (and ``max_frames``); a trial is abandoned as soon as it
   exceeds the cap, the backward shot reaches B, or the forward shot reaches A.

Two-way shooting, fixed length (``ensemble="fixed"``): paths of exactly ``L`` frames (the
initial path's length). From frame ``k`` the backward shot runs ``k`` frames and the forward
shot ``L - 1 - k`` frames (no early stop); the trial is accepted if its first frame is in A and
its last frame in B (intermediate frames are free). The selection probability of the shooting
frame is ``1 / (L - 2)`` both ways, so no Metropolis factor enters. The backward shot runs
first; when it does not end in A the trial is rejected without running the forward shot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from tps.baselines.ensembles import FixedLengthEnsemble, FlexibleLengthEnsemble
from tps.baselines.shooting import ShootingResult, run_chains, shooting_result
from tps.baselines.unbiased_md import pad_paths, run_md
from tps.core import Paths
from tps.core.units import boltzmann_kT
from tps.engines.openmm import OpenMMLangevinEngine


def _positive(value, name):
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return v


def _positive_int(value, name):
    if isinstance(value, bool) or int(value) != value or int(value) <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _in(state: Callable, x: np.ndarray) -> bool:
    return bool(state(torch.from_numpy(x)))


def trim_to_transition(frames, state_a: Callable, state_b: Callable):
    """The part of a trajectory from its last frame in A before the first frame in B to that frame.

    The first frame in B (and not in A) that follows a frame in A ends the segment
    (:func:`tps.baselines.seeded.transition_bounds`; :func:`tps.baselines.seeded.transition_segments`
    cuts many paths at once).

    Parameters
    ----------
    frames : array or Tensor, shape ``(n_frames, n_atoms, 3)``, nm
    state_a, state_b : Volume
        Boolean masks ``(*batch, n_atoms, 3) -> (*batch,)``.

    Returns
    -------
    Tensor, shape ``(n, n_atoms, 3)``, float64: first frame in A, last in B, none in between in A
    or B (a member of the flexible-length ensemble).

    Raises
    ------
    ValueError
        If the trajectory never goes from A to B.
    """
    x = torch.as_tensor(np.asarray(frames.detach().cpu() if isinstance(frames, torch.Tensor) else frames),
                        dtype=torch.float64)
    from tps.baselines.seeded import transition_bounds  # the one definition of the cut

    start, stop, ok = transition_bounds(state_a(x)[None], state_b(x)[None])
    if not bool(ok[0]):
        raise ValueError("frames: the trajectory never goes from state_a to state_b")
    return x[int(start[0]):int(stop[0]) + 1].clone()


def _check_path(path, n_atoms, state_a, state_b, fixed=False):
    p = np.asarray(path.detach().cpu() if isinstance(path, torch.Tensor) else path, dtype=np.float64)
    if p.ndim != 3 or p.shape[1:] != (n_atoms, 3) or p.shape[0] < 3:
        raise ValueError(f"initial_path: expected shape (n_frames >= 3, {n_atoms}, 3) in nm, got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("initial_path: expected finite positions")
    x = torch.from_numpy(p)
    a, b = state_a(x), state_b(x)
    if fixed:
        if not (bool(a[0]) and bool(b[-1])):
            raise ValueError("initial_path: not in the fixed-length ensemble (first frame must be in A, last in B)")
        return p
    if not (bool(a[0]) and bool(b[-1]) and not bool((a[1:-1] | b[1:-1]).any())):
        raise ValueError("initial_path: not in the flexible-length ensemble (first frame must be in A, last in B, "
                         "no other frame in A or B; use tps.baselines.openmm_engine.trim_to_transition)")
    return p


def openmm_two_way_shooting(system, initial_path, *, state_a: Callable, state_b: Callable, temperature: float = 300.0,
                            timestep: float = 0.002, friction: float = 1.0, n_trials: int = 100,
                            max_frames: int = 2000, save_every: int = 25, platform="auto", seed: int = 0,
                            time_limit_s: Optional[float] = None, ensemble: str = "flexible",
                            birth: Optional[list] = None, length_metropolis: bool = True) -> ShootingResult:
    """Two-way shooting TPS with OpenMM dynamics (module docstring), one chain.

    Parameters
    ----------
    system : openmm.System (or a tps System with ``.potential.system``)
        Copied into one Context; its constraints are used.
    initial_path : array or Tensor, shape ``(F, n_atoms, 3)``, nm
        First frame in A, last in B, no other frame in A or B (see :func:`trim_to_transition`).
    state_a, state_b : Volume
        Boolean masks on positions ``(*batch, n_atoms, 3) -> (*batch,)``, e.g. (phi, psi) Balls.
    temperature : float
        K; Maxwell-Boltzmann velocity re-draw and the thermostat.
    timestep, friction : float
        ps and 1/ps of the ``LangevinMiddleIntegrator``.
    n_trials : int
        Shooting trials.
    max_frames : int
        Longest trial path (frames); longer trials are abandoned (rejected).
    save_every : int
        MD steps between recorded frames.
    platform : str or sequence of str
        See :func:`tps.potentials.openmm.select_platform`.
    seed : int
        Seeds the integrator and the trial random numbers (frame choice, acceptance, velocities).
    time_limit_s : float, optional
        Stop after the trial during which this wall time is exceeded.
    ensemble : {"flexible", "fixed"}
        Flexible-length (default) or fixed-length paths (the initial path's length; its first
        frame in A and last in B, other frames free; ``max_frames`` is then unused).
    length_metropolis : bool
        Flexible length only. True (default): the acceptance test ``u <= (L_old - 2) / (L_new - 2)``
        of the TPS path measure. False: accept every A -> B trial of at most ``max_frames`` frames.
        That is NOT the transition path ensemble; it is for relaxing a non-typical initial path
        (e.g. a short high-temperature transition, from which trials at the target temperature
        are almost all longer than the cap ``2 + (L_old - 2) / u``) during a burn-in whose paths
        are discarded.
    birth : list of int, optional
        Birth stamps of the initial path's frames (trial that generated them; default all 0), to
        continue a chain across calls: decorrelation is counted against stamp 0 frames.

    Returns
    -------
    ShootingResult
        ``paths``: the chain state after every trial (rejections repeat the old path), padded
        with ``info["lengths"]``; ``n_energy_evals``: MD steps of all trials (the initial path is
        given, not generated, and costs nothing); energies in kJ/mol.
    """
    temperature = _positive(temperature, "temperature")
    timestep = _positive(timestep, "timestep")
    friction = _positive(friction, "friction")
    n_trials = _positive_int(n_trials, "n_trials")
    max_frames = _positive_int(max_frames, "max_frames")
    save_every = _positive_int(save_every, "save_every")
    if time_limit_s is not None:
        time_limit_s = _positive(time_limit_s, "time_limit_s")
    if ensemble not in ("flexible", "fixed"):
        raise ValueError(f"ensemble: expected 'flexible' or 'fixed', got {ensemble!r}")
    fixed = ensemble == "fixed"
    rng = np.random.default_rng(seed)
    engine = OpenMMLangevinEngine(system, temperature=temperature, timestep=timestep, friction=friction,
                                  platform=platform, seed=int(rng.integers(1, 2**31 - 1)))
    path = _check_path(initial_path, engine.n_atoms, state_a, state_b, fixed=fixed)
    if not fixed and path.shape[0] > max_frames:
        raise ValueError(f"max_frames: the initial path has {path.shape[0]} frames, more than max_frames={max_frames}")
    if birth is not None and len(birth) != path.shape[0]:
        raise ValueError(f"birth: expected {path.shape[0]} stamps (one per initial frame), got {len(birth)}")
    ens = (FixedLengthEnsemble(state_a, state_b, n_frames=path.shape[0]) if fixed else
           FlexibleLengthEnsemble(state_a, state_b, max_frames=max_frames))
    run = run_chains(engine, ens, [torch.from_numpy(path)], [0], rng=rng, n_rounds=n_trials, time_limit_s=time_limit_s,
                     length_metropolis=length_metropolis, steps_per_frame=save_every, birth=birth)
    wall, n_evals = run.wall_s, run.n_energy_evals
    o = run.outcomes
    outcomes = o if fixed else {k: o[k] for k in ("accepted", "backward_in_B", "forward_in_A", "too_long", "metropolis")}
    final_birth = run.chains[0][3].tolist()
    info = {
        "sampler": "openmm-two-way-shooting", "ensemble": ensemble, "final_birth": final_birth,
        "length_metropolis": bool(length_metropolis), "decorrelation_trials": run.decorrelation_rounds[0],
        "engine": "LangevinMiddleIntegrator", "platform": engine.platform.getName(), "temperature": temperature,
        "timestep": timestep, "friction": friction, "save_every": save_every, "max_frames": max_frames, "seed": seed,
        "n_trials": run.n_rounds, "outcomes": outcomes, "trial_md_steps": run.round_evals,
        "round_evals": run.round_evals, "accepted_per_round": run.accepted_per_round,
        "mean_trial_frames": float(np.mean(torch.cat(run.trial_frames).numpy())),
        "n_initial_frames": int(path.shape[0]), "final_decorrelated_from_initial": min(final_birth) > 0,
        "n_energy_readouts": run.n_readouts,
        "evaluation_convention": "n_energy_evals counts MD steps of all trials (one force evaluation each), "
                                 "rejected and abandoned ones included; frame energy read-outs in n_energy_readouts",
        "wall_s": wall, "steps_per_s": n_evals / wall if wall > 0 else float("nan"),
    }
    return shooting_result(run, boltzmann_kT(temperature), info, chain_key=False,
                           note="chain state after every trial, padded by repeating each path's last frame")


@dataclass(frozen=True)
class OpenMMUnbiasedMDResult:
    """Outcome of :func:`openmm_unbiased_md`.

    Attributes
    ----------
    n_energy_evals : int
        MD steps run (the budget actually spent).
    n_transitions : int
        A -> B transitions observed (each restarts the trajectory from ``x_start``).
    evals_per_transition : float or None
        ``n_energy_evals / n_transitions`` (censored exponential MLE); None without transitions.
    evals_per_transition_lower_bound : float or None
        ``n_energy_evals`` when no transition was seen (``info["lower_bound_95"]``: a third of it).
    paths : Paths or None
        Observed transition paths (last frame in A to first frame in B), padded; None if none.
    info : dict
    """

    n_energy_evals: int
    n_transitions: int
    evals_per_transition: Optional[float]
    evals_per_transition_lower_bound: Optional[float]
    paths: Optional[Paths]
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "n_energy_evals": self.n_energy_evals, "n_transitions": self.n_transitions,
            "evals_per_transition": self.evals_per_transition,
            "evals_per_transition_lower_bound": self.evals_per_transition_lower_bound,
            "wall_s": self.info.get("wall_s"),
        }


def openmm_unbiased_md(system, x_start, *, state_a: Callable, state_b: Callable, temperature: float = 300.0,
                       n_steps_budget: int, timestep: float = 0.002, friction: float = 1.0, save_every: int = 25,
                       platform="auto", seed: int = 0, max_transitions: Optional[int] = None,
                       max_path_frames: int = 4000, time_limit_s: Optional[float] = None) -> OpenMMUnbiasedMDResult:
    """Unbiased OpenMM Langevin MD from ``x_start`` (in A): cost per A -> B transition, or a bound.

    One context runs ``n_steps_budget`` MD steps in chunks of ``save_every``; states are tested on
    every recorded frame. On entering B the transition is counted, its path (last frame in A to
    first frame in B) stored, and the trajectory restarts at ``x_start`` with fresh
    Maxwell-Boltzmann velocities, so every transition is a first passage from A.

    Parameters
    ----------
    system : openmm.System (or a tps System)
    x_start : array or Tensor, shape ``(n_atoms, 3)``, nm; must lie in ``state_a``
    state_a, state_b : Volume
    temperature, timestep, friction : float
        K, ps, 1/ps.
    n_steps_budget : int
        MD steps to spend (rounded up to a multiple of ``save_every``).
    save_every : int
    platform, seed
    max_transitions : int, optional
        Stop once this many transitions have been seen.
    max_path_frames : int
        Longest stored transition path (frames since the last frame in A); longer ones are counted only.
    time_limit_s : float, optional
        Stop after this wall time; the steps actually run are reported.

    Returns
    -------
    OpenMMUnbiasedMDResult
    """
    temperature = _positive(temperature, "temperature")
    timestep = _positive(timestep, "timestep")
    friction = _positive(friction, "friction")
    n_steps_budget = _positive_int(n_steps_budget, "n_steps_budget")
    save_every = _positive_int(save_every, "save_every")
    max_path_frames = _positive_int(max_path_frames, "max_path_frames")
    if max_transitions is not None:
        max_transitions = _positive_int(max_transitions, "max_transitions")
    if time_limit_s is not None:
        time_limit_s = _positive(time_limit_s, "time_limit_s")
    rng = np.random.default_rng(seed)
    engine = OpenMMLangevinEngine(system, temperature=temperature, timestep=timestep, friction=friction,
                                  platform=platform, seed=int(rng.integers(1, 2**31 - 1)))
    x0 = np.asarray(x_start.detach().cpu() if isinstance(x_start, torch.Tensor) else x_start, dtype=np.float64)
    if x0.shape != (engine.n_atoms, 3) or not np.isfinite(x0).all():
        raise ValueError(f"x_start: expected finite positions of shape ({engine.n_atoms}, 3) in nm, got {x0.shape}")
    if not _in(state_a, x0) or _in(state_b, x0):
        raise ValueError("x_start: must lie in state_a and not in state_b")
    run = run_md(engine, torch.from_numpy(x0)[None], state_a=state_a, state_b=state_b, budget=n_steps_budget,
                 steps_per_frame=save_every, restart_rng=rng, max_path_frames=max_path_frames,
                 max_transitions=max_transitions, time_limit_s=time_limit_s)
    wall, n_evals, n_tr = run.wall_s, run.n_energy_evals, len(run.transitions)
    paths = None
    if run.stored:
        fr, en, lens = pad_paths([s[1] for s in run.stored], [s[2] for s in run.stored])
        paths = Paths(fr, en, n_evals, boltzmann_kT(temperature), {
            "sampler": "openmm-unbiased-md", "lengths": lens,
            "note": "last frame in A to first frame in B; padded by repeating the last frame"})
    info = {
        "sampler": "openmm-unbiased-md", "platform": engine.platform.getName(), "temperature": temperature,
        "timestep": timestep, "friction": friction, "save_every": save_every, "n_steps_budget": n_steps_budget,
        "seed": seed, "first_passage_steps": [t[1] for t in run.transitions], "n_paths_too_long": n_tr - len(run.stored),
        "lower_bound_95": n_evals / 3.0 if n_tr == 0 else None, "stopped_by_time_limit": run.stopped_by_time,
        "estimator": "evals_per_transition = MD steps / transitions (censored exponential MLE); "
                     "without transitions the steps run are a lower bound",
        "n_energy_readouts": run.n_readouts, "wall_s": wall,
        "steps_per_s": n_evals / wall if wall > 0 else float("nan"),
    }
    return OpenMMUnbiasedMDResult(
        n_energy_evals=n_evals, n_transitions=n_tr, evals_per_transition=n_evals / n_tr if n_tr else None,
        evals_per_transition_lower_bound=None if n_tr else float(n_evals), paths=paths, info=info,
    )
