"""Two-way shooting and unbiased MD driven by OpenMM's own dynamics (all-atom baselines).

:func:`tps.baselines.two_way_shooting` and :func:`tps.baselines.unbiased_md` are written for a
:class:`~tps.potentials.Potential` with an overdamped Langevin engine in torch (batched chains,
noise re-draw); they have no engine hook. For molecules the physical dynamics is OpenMM's
``LangevinMiddleIntegrator`` (momenta, constraints), so this module runs the same two baselines
on an :class:`openmm.System` with ONE reused :class:`openmm.Context` (created once, seeded once;
later trials continue its random stream, as in :mod:`tps.sampling.openmm_annealed`).

Frames are recorded every ``save_every`` MD steps; state membership is tested on recorded frames
only. Evaluations are MD steps (one force evaluation each), rejected and abandoned trials
included; the energy read-outs of recorded frames are reported separately
(``info["n_energy_readouts"]``).

Two-way shooting, flexible length (Bolhuis, Dellago, Chandler; OpenPathSampling's
``TwoWayShootingMover`` with velocity randomisation):

1. pick a shooting frame ``k`` uniformly among the interior frames ``1 .. L-2``;
2. draw velocities from Maxwell-Boltzmann at ``temperature`` (constraints applied) at frame ``k``;
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
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import openmm
import openmm.unit as unit
import torch

from tps.baselines.shooting import ShootingResult
from tps.baselines.unbiased_md import pad_paths
from tps.potentials.openmm import select_platform
from tps.sampling.paths import Paths

_KJ = unit.kilojoule_per_mole


def _kT(temperature: float) -> float:
    return (unit.MOLAR_GAS_CONSTANT_R * float(temperature) * unit.kelvin).value_in_unit(_KJ)


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


class _Engine:
    """One OpenMM context with a LangevinMiddleIntegrator; counts MD steps."""

    def __init__(self, system, *, temperature, timestep, friction, platform, seed):
        if not isinstance(system, openmm.System):
            inner = getattr(getattr(system, "potential", None), "system", None)
            if not isinstance(inner, openmm.System):
                raise TypeError(f"system: expected an openmm.System, got {type(system).__name__}")
            system = inner
        self.system = system
        self.n_atoms = system.getNumParticles()
        self.temperature = temperature
        self.integrator = openmm.LangevinMiddleIntegrator(temperature, friction, timestep)
        self.integrator.setRandomNumberSeed(int(seed))
        self.platform = select_platform(self.n_atoms, platform)
        self.context = openmm.Context(system, self.integrator, self.platform)
        self.constrained = system.getNumConstraints() > 0
        self.n_steps = 0
        self.n_readouts = 0

    def reseed(self, seed) -> None:
        """Restart the integrator's random stream at ``seed`` (as a new context would) and zero the counters."""
        self.integrator.setRandomNumberSeed(int(seed))
        self.context.reinitialize()  # OpenMM reads the seed only when the context is (re)initialised
        self.n_steps = 0
        self.n_readouts = 0

    def set_positions(self, x):
        self.context.setPositions(np.asarray(x, dtype=np.float64))
        if self.constrained:
            self.context.applyConstraints(1e-8)

    def draw_velocities(self, seed) -> np.ndarray:
        self.context.setVelocitiesToTemperature(self.temperature, int(seed))
        return self.context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(
            unit.nanometer / unit.picosecond)

    def step(self, n) -> tuple:
        self.integrator.step(int(n))
        self.n_steps += int(n)
        self.n_readouts += 1
        s = self.context.getState(getPositions=True, getEnergy=True)
        return s.getPositions(asNumpy=True).value_in_unit(unit.nanometer), s.getPotentialEnergy().value_in_unit(_KJ)

    def energy(self, x) -> float:
        self.set_positions(x)
        self.n_readouts += 1
        return self.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(_KJ)


def _engine(system, *, temperature, timestep, friction, platform, seed, key=None) -> _Engine:
    """A new engine, or (``key`` given: a task of :mod:`tps.baselines.chains`) this worker's cached
    engine for ``key`` reseeded with ``seed``: the same random stream as a new one."""
    if key is None:
        return _Engine(system, temperature=temperature, timestep=timestep, friction=friction, platform=platform,
                       seed=seed)
    from tps.parallel import worker_cache

    engine = worker_cache(("openmm-engine", key, temperature, timestep, friction, str(platform)),
                          lambda: _Engine(system, temperature=temperature, timestep=timestep, friction=friction,
                                          platform=platform, seed=seed))
    engine.reseed(seed)
    return engine


def trim_to_transition(frames, state_a: Callable, state_b: Callable):
    """The part of a trajectory from its last frame in A before the first frame in B to that frame.

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
    in_a, in_b = state_a(x), state_b(x)
    seen_a = -1
    for i in range(x.shape[0]):
        if bool(in_a[i]):
            seen_a = i
        elif bool(in_b[i]):
            if seen_a >= 0:
                return x[seen_a:i + 1].clone()
    raise ValueError("frames: the trajectory never goes from state_a to state_b")


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


def _shoot(engine, x0, v0, *, save_every, stop_bad, stop_good, max_new):
    """Run one shot from ``x0`` with velocities ``v0`` until it enters A or B or makes ``max_new`` frames.

    Returns frames, energies, and the end: 'good' (entered the wanted state), 'bad' (the other one)
    or 'cap' (``max_new`` frames without entering either).
    """
    engine.set_positions(x0)
    engine.context.setVelocities(v0)
    frames, energies = [], []
    while len(frames) < max_new:
        x, e = engine.step(save_every)
        frames.append(x)
        energies.append(e)
        if _in(stop_good, x):
            return frames, energies, "good"
        if _in(stop_bad, x):
            return frames, energies, "bad"
    return frames, energies, "cap"


def _shoot_fixed(engine, x0, v0, *, save_every, n_new):
    """Run one shot of exactly ``n_new`` recorded frames (fixed-length ensemble)."""
    engine.set_positions(x0)
    engine.context.setVelocities(v0)
    frames, energies = [], []
    for _ in range(int(n_new)):
        x, e = engine.step(save_every)
        frames.append(x)
        energies.append(e)
    return frames, energies


def openmm_two_way_shooting(system, initial_path, *, state_a: Callable, state_b: Callable, temperature: float = 300.0,
                            timestep: float = 0.002, friction: float = 1.0, n_trials: int = 100,
                            max_frames: int = 2000, save_every: int = 25, platform="auto", seed: int = 0,
                            time_limit_s: Optional[float] = None, ensemble: str = "flexible",
                            birth: Optional[list] = None, length_metropolis: bool = True,
                            _engine_key=None) -> ShootingResult:
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
    engine = _engine(system, temperature=temperature, timestep=timestep, friction=friction, platform=platform,
                     seed=int(rng.integers(1, 2**31 - 1)), key=_engine_key)
    path = _check_path(initial_path, engine.n_atoms, state_a, state_b, fixed=fixed)
    if not fixed and path.shape[0] > max_frames:
        raise ValueError(f"max_frames: the initial path has {path.shape[0]} frames, more than max_frames={max_frames}")
    t0 = time.perf_counter()
    frames = list(path)
    energies = [engine.energy(x) for x in frames]
    birth = [0] * len(frames) if birth is None else [int(b) for b in birth]
    if len(birth) != len(frames):
        raise ValueError(f"birth: expected {len(frames)} stamps (one per initial frame), got {len(birth)}")
    saved, lengths_tried = [], []
    outcomes = ({"accepted": 0, "not_in_A": 0, "not_in_B": 0} if fixed else
                {"accepted": 0, "backward_in_B": 0, "forward_in_A": 0, "too_long": 0, "metropolis": 0})
    n_acc = n_dec = 0
    reference = 0
    trial_steps = []
    decorrelation_trials = []  # trials whose accepted path shared no frame with the previous decorrelated one
    n_run = 0
    for trial in range(1, n_trials + 1):
        before = engine.n_steps
        L = len(frames)
        k = int(rng.integers(1, L - 1))
        u = max(float(rng.random()), 1e-300)
        cap = int(min(max_frames, 2 + math.floor((L - 2) / u))) if length_metropolis else max_frames
        v = engine.draw_velocities(int(rng.integers(1, 2**31 - 1)))
        xk = frames[k]
        accept = False
        if fixed:  # exactly k backward and L-1-k forward frames; accept on first in A, last in B
            bw, bwe = _shoot_fixed(engine, xk, -v, save_every=save_every, n_new=k)
            n_new = 1 + len(bw)
            if not _in(state_a, bw[-1]):  # certain rejection: the forward shot is not run
                outcomes["not_in_A"] += 1
            else:
                fw, fwe = _shoot_fixed(engine, xk, v, save_every=save_every, n_new=L - 1 - k)
                n_new = L
                accept = _in(state_b, fw[-1])
                outcomes["accepted" if accept else "not_in_B"] += 1
        else:
            # backward: reversed velocities, wanted end A; abandoned in B or past the cap
            bw, bwe, bend = _shoot(engine, xk, -v, save_every=save_every, stop_bad=state_b, stop_good=state_a,
                                   max_new=cap - 1)
            if bend == "good":
                fw, fwe, fend = _shoot(engine, xk, v, save_every=save_every, stop_bad=state_a, stop_good=state_b,
                                       max_new=cap - 1 - len(bw))
                n_new = 1 + len(bw) + len(fw)
                if fend == "good":
                    accept = u <= (L - 2) / (n_new - 2) or not length_metropolis  # implied by n_new <= cap
                    outcomes["accepted" if accept else "metropolis"] += 1
                else:
                    outcomes["forward_in_A" if fend == "bad" else "too_long"] += 1
            else:
                n_new = 1 + len(bw)
                outcomes["backward_in_B" if bend == "bad" else "too_long"] += 1
        lengths_tried.append(n_new)
        trial_steps.append(engine.n_steps - before)
        if accept:
            frames = bw[::-1] + [xk] + fw
            energies = bwe[::-1] + [energies[k]] + fwe
            birth = [trial] * len(bw) + [birth[k]] + [trial] * len(fw)
            n_acc += 1
            if min(birth) > reference:
                n_dec += 1
                reference = trial
                decorrelation_trials.append(trial)
        saved.append((torch.from_numpy(np.stack(frames)), torch.tensor(energies, dtype=torch.float64), trial))
        n_run = trial
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            break
    wall = time.perf_counter() - t0
    n_evals = engine.n_steps
    fr, en, lens = pad_paths([s[0] for s in saved], [s[1] for s in saved])
    info = {
        "sampler": "openmm-two-way-shooting", "ensemble": ensemble, "final_birth": list(birth),
        "length_metropolis": bool(length_metropolis), "decorrelation_trials": decorrelation_trials, "engine": "LangevinMiddleIntegrator",
        "platform": engine.platform.getName(), "temperature": temperature, "timestep": timestep,
        "friction": friction, "save_every": save_every, "max_frames": max_frames, "seed": seed,
        "n_trials": n_run, "outcomes": outcomes, "trial_md_steps": trial_steps,
        "mean_trial_frames": float(np.mean(lengths_tried)) if lengths_tried else None,
        "n_initial_frames": int(path.shape[0]), "final_decorrelated_from_initial": min(birth) > 0,
        "n_energy_readouts": engine.n_readouts,
        "evaluation_convention": "n_energy_evals counts MD steps of all trials (one force evaluation each), "
                                 "rejected and abandoned ones included; frame energy read-outs in n_energy_readouts",
        "wall_s": wall, "steps_per_s": n_evals / wall if wall > 0 else float("nan"),
    }
    paths = Paths(fr, en, n_evals, _kT(temperature), {
        **info, "lengths": lens, "round": torch.tensor([s[2] for s in saved]),
        "note": "chain state after every trial, padded by repeating each path's last frame",
    })
    return ShootingResult(
        paths=paths, n_energy_evals=n_evals, n_trials=n_run, n_accepted=n_acc, n_decorrelated=n_dec,
        acceptance_rate=n_acc / n_run, evals_per_accepted_path=n_evals / n_acc if n_acc else None,
        evals_per_decorrelated_path=n_evals / n_dec if n_dec else None, info=info,
    )


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
                       max_path_frames: int = 4000, time_limit_s: Optional[float] = None,
                       _engine_key=None) -> OpenMMUnbiasedMDResult:
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
    engine = _engine(system, temperature=temperature, timestep=timestep, friction=friction, platform=platform,
                     seed=int(rng.integers(1, 2**31 - 1)), key=_engine_key)
    x0 = np.asarray(x_start.detach().cpu() if isinstance(x_start, torch.Tensor) else x_start, dtype=np.float64)
    if x0.shape != (engine.n_atoms, 3) or not np.isfinite(x0).all():
        raise ValueError(f"x_start: expected finite positions of shape ({engine.n_atoms}, 3) in nm, got {x0.shape}")
    if not _in(state_a, x0) or _in(state_b, x0):
        raise ValueError("x_start: must lie in state_a and not in state_b")
    t0 = time.perf_counter()
    e0 = engine.energy(x0)

    def restart():
        engine.set_positions(x0)
        engine.draw_velocities(int(rng.integers(1, 2**31 - 1)))
        return [x0], [e0]

    buf_x, buf_e = restart()
    stored, passage_steps, n_tr, n_long = [], [], 0, 0
    since = 0  # steps since the last (re)start
    stopped_by_time = False
    while engine.n_steps < n_steps_budget:
        x, e = engine.step(save_every)
        since += save_every
        if _in(state_a, x):
            buf_x, buf_e = [x], [e]
            continue
        buf_x.append(x)
        buf_e.append(e)
        if _in(state_b, x):
            n_tr += 1
            passage_steps.append(since)
            if len(buf_x) <= max_path_frames:
                stored.append((torch.from_numpy(np.stack(buf_x)), torch.tensor(buf_e, dtype=torch.float64)))
            else:
                n_long += 1
            if max_transitions is not None and n_tr >= max_transitions:
                break
            buf_x, buf_e = restart()
            since = 0
        elif len(buf_x) > max_path_frames:
            buf_x, buf_e = buf_x[-max_path_frames - 1:], buf_e[-max_path_frames - 1:]
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            stopped_by_time = True
            break
    wall = time.perf_counter() - t0
    n_evals = engine.n_steps
    paths = None
    if stored:
        fr, en, lens = pad_paths([s[0] for s in stored], [s[1] for s in stored])
        paths = Paths(fr, en, n_evals, _kT(temperature), {
            "sampler": "openmm-unbiased-md", "lengths": lens,
            "note": "last frame in A to first frame in B; padded by repeating the last frame"})
    info = {
        "sampler": "openmm-unbiased-md", "platform": engine.platform.getName(), "temperature": temperature,
        "timestep": timestep, "friction": friction, "save_every": save_every, "n_steps_budget": n_steps_budget,
        "seed": seed, "first_passage_steps": passage_steps, "n_paths_too_long": n_long,
        "lower_bound_95": n_evals / 3.0 if n_tr == 0 else None, "stopped_by_time_limit": stopped_by_time,
        "estimator": "evals_per_transition = MD steps / transitions (censored exponential MLE); "
                     "without transitions the steps run are a lower bound",
        "n_energy_readouts": engine.n_readouts, "wall_s": wall,
        "steps_per_s": n_evals / wall if wall > 0 else float("nan"),
    }
    return OpenMMUnbiasedMDResult(
        n_energy_evals=n_evals, n_transitions=n_tr, evals_per_transition=n_evals / n_tr if n_tr else None,
        evals_per_transition_lower_bound=None if n_tr else float(n_evals), paths=paths, info=info,
    )
