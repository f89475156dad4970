"""Shared pieces of the convergence benchmark (``benchmarks/convergence.py``) and the reference-ensemble runner.

- :func:`make_setup`: one benchmark system as the convergence runs see it (dynamics, states, the
  collective variables and histogram of ``path_density_jsd``, the state description that a
  reference ensemble records);
- :func:`check_reference`: a stored reference ensemble is refused (ValueError naming
  ``--reference``) when it was made for another system, with other states or temperature, or with
  the same seed as the run it judges;
- :func:`noise_floor`, :func:`evals_to_threshold`, :func:`pooled_jsd_curve`: the numbers of a
  convergence curve;
- :class:`TorchChains`, :class:`OpenMMChains`: shooting chains continued block by block, each
  block giving the transition-segment frames of every round (collective variables, float32) and
  the energy evaluations of every round; their ``relax`` runs :func:`tps.baselines.relax_chains`
  on the same dynamics (chain by chain, each stopping once decorrelated from its start).

Examples
--------
>>> evals_to_threshold([[100, 0.5], [200, 0.09], [300, 0.12], [400, 0.05]], 0.1)
200
>>> evals_to_threshold([[100, 0.5]], 0.1) is None
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from benchmarks.common import same_description, transition_frames
from tps.metrics import path_density_jsd

#: The Muller-Brown states as the reference-ensemble runner records them (``meta["states"]``).
MULLER_BROWN_STATES = "disks of radius 0.1 around minima A and B (tps.systems muller-brown)"
#: Histogram bins per axis of the all-atom (phi, psi) JSD (as benchmarks/aldp_cartesian.py).
CARTESIAN_JSD_BINS = 36
SYSTEMS = ("muller-brown", "aldp-2d", "aldp-cartesian")
#: tps.systems names of the runners' short system names.
PIPELINE_NAMES = {"muller-brown": "muller-brown", "aldp-2d": "alanine-dipeptide-phipsi",
                  "aldp-cartesian": "alanine-dipeptide"}


@dataclass
class Setup:
    """One system as the convergence runs use it (built by :func:`make_setup`).

    Attributes
    ----------
    name : str
        Short name (``muller-brown``, ``aldp-2d``, ``aldp-cartesian``), as in reference files.
    pipeline_name : str
        The :func:`tps.systems.load` name whose pretrained model gives the geodesic paths.
    kT : float
    state_a, state_b : Volume
        The states of the reference-ensemble runner (alanine dipeptide: A = C5 | C7eq).
    states : object
        Their description, compared with a reference's ``meta["states"]``.
    cv : callable
        Frames ``(n, *event)`` -> collective variables ``(n, 2)`` of the JSD.
    jsd : dict
        ``bins``, ``ranges`` (and ``periods``) of :func:`tps.metrics.path_density_jsd`.
    max_frames : int
        Longest trial path of shooting (as the reference run).
    high_factor : float
        High-temperature initial paths: unbiased MD at this multiple of the target temperature.
    dynamics : dict
        Time step etc., recorded in results.json.
    extra : dict
        System objects the chains need (engine factory, potential, OpenMM system, start).
    """

    name: str
    pipeline_name: str
    kT: float
    state_a: Callable
    state_b: Callable
    states: object
    cv: Callable
    jsd: dict
    max_frames: int
    high_factor: float
    dynamics: dict
    extra: dict = field(default_factory=dict)

    @property
    def is_openmm(self) -> bool:
        return self.name == "aldp-cartesian"


def make_setup(name: str) -> Setup:
    """The :class:`Setup` of ``name`` (one of :data:`SYSTEMS`); dynamics and states as the reference runner's."""
    from benchmarks.common_protocols import MullerBrownProtocol, PhiPsiProtocol
    from tps.systems import load

    if name not in SYSTEMS:
        raise ValueError(f"system: expected one of {', '.join(SYSTEMS)}, got {name!r}")
    if name == "muller-brown":
        from tps.systems.muller_brown import BOX

        system = load("muller-brown")
        dt = MullerBrownProtocol().md_dt
        return Setup(name, "muller-brown", float(system.kT), system.states["A"], system.states["B"],
                     MULLER_BROWN_STATES, lambda f: f, dict(bins=MullerBrownProtocol().jsd_bins, ranges=BOX),
                     max_frames=1000, high_factor=1.6,
                     dynamics={"dynamics": "overdamped Euler-Maruyama", "dt": dt},
                     extra={"engine": lambda: system.make_engine(dt=dt), "potential": system.potential,
                            "start": system.endpoints["A"], "dt": dt})
    if name == "aldp-2d":
        from benchmarks.common_phipsi import PERIODS, own_setting, state_description

        setting = own_setting()
        if setting is None:
            raise ValueError("system: aldp-2d needs the package's free-energy surface, which is missing")
        system = load("alanine-dipeptide-phipsi")
        dt = PhiPsiProtocol().md_dt / setting.kT
        jsd = dict(bins=PhiPsiProtocol().jsd_bins, ranges=((-math.pi, math.pi), (-math.pi, math.pi)), periods=PERIODS)
        return Setup(name, "alanine-dipeptide-phipsi", float(setting.kT), setting.source, setting.target,
                     state_description(setting), setting.potential.wrap, jsd, max_frames=8000, high_factor=2.5,
                     dynamics={"dynamics": "overdamped Euler-Maruyama on the package's own (phi, psi) surface",
                               "dt": dt},
                     extra={"engine": lambda: system.make_engine(dt=dt), "potential": setting.potential,
                            "start": setting.start, "dt": dt})
    from benchmarks.common_cartesian import state_description, transition_states
    from benchmarks.common_protocols import CartesianProtocol

    proto = CartesianProtocol()
    molecule = load("alanine-dipeptide")
    a, b = transition_states(molecule.states)
    md = dict(timestep=proto.timestep, friction=proto.friction,
              save_every=proto.steps_per_point // proto.frames_per_point)
    jsd = dict(bins=CARTESIAN_JSD_BINS, ranges=((-math.pi, math.pi), (-math.pi, math.pi)),
               periods=(2 * math.pi, 2 * math.pi))
    return Setup(name, "alanine-dipeptide", float(molecule.kT), a, b, state_description(molecule.states), b.cv, jsd,
                 max_frames=800, high_factor=800.0 / 300.0,
                 dynamics={"dynamics": "OpenMM LangevinMiddleIntegrator, amber99sbildn, vacuum",
                           "temperature": molecule.temperature, **md},
                 extra={"system": molecule.openmm_system(), "start": molecule.prepared_endpoints().start,
                        "temperature": molecule.temperature, "md": md,
                        "engine": lambda seed=0: molecule.make_engine(seed=int(seed), timestep=md["timestep"],
                                                                      friction=md["friction"])})



def check_reference(meta: dict, setup: Setup, *, seed: int, path) -> None:
    """Refuse a reference ensemble that cannot judge this run (ValueError naming ``--reference``).

    ``meta``: the reference's metadata (:func:`benchmarks.common.load_reference`, which already
    checked the system). Refused: another system, other state definitions, another temperature,
    or the same seed as the run (its chains would share random streams with the runs it judges).

    Examples
    --------
    >>> s = Setup("toy", "toy", 1.0, None, None, {"A": "ball"}, None, {}, 10, 2.0, {})
    >>> check_reference({"system": "toy", "states": {"A": "ball"}, "kT": 1.0, "seed": 3}, s, seed=0, path="r.npz")
    >>> check_reference({"system": "toy", "states": {"A": "ball"}, "kT": 1.0, "seed": 0}, s, seed=0, path="r.npz")
    Traceback (most recent call last):
    ...
    ValueError: --reference: r.npz was made with seed 0, the seed of this run; make the reference with another --seed (or run with another --seed)
    """
    if meta.get("system") != setup.name:
        raise ValueError(f"--reference: {path} is a reference ensemble of {meta.get('system')!r}, not {setup.name!r}")
    if not same_description(meta.get("states"), setup.states):
        raise ValueError(f"--reference: {path} was made with other state definitions ({meta.get('states')!r}); "
                         f"this run uses {setup.states!r}")
    kT = meta.get("kT")
    if kT is None or not math.isclose(float(kT), setup.kT, rel_tol=1e-9):
        raise ValueError(f"--reference: {path} was made at kT = {kT}, this run uses kT = {setup.kT}")
    if meta.get("seed") is None:
        raise ValueError(f"--reference: {path} does not record its seed; remake it with "
                         "`python -m benchmarks reference-ensemble --seed N`")
    if int(meta["seed"]) == int(seed):
        raise ValueError(f"--reference: {path} was made with seed {seed}, the seed of this run; make the reference "
                         "with another --seed (or run with another --seed)")


def noise_floor(reference: dict, jsd: dict) -> float:
    """Split-half JSD (bits) of a reference ensemble: chains ``< n_chains // 2`` against the rest (NaN below 2 chains)."""
    chain = torch.as_tensor(reference["chain"])
    n = int(chain.max()) + 1 if len(chain) else 0
    if n < 2:
        return float("nan")
    first = chain < n // 2
    frames = reference["frames"]
    if not bool(first.any()) or bool(first.all()):
        return float("nan")
    return float(path_density_jsd(frames[first], frames[~first], **jsd))


def evals_to_threshold(curve, threshold: float) -> Optional[int]:
    """The cumulative evaluations of the first curve point with JSD <= ``threshold``; None if none.

    ``curve``: ``[[cumulative_evaluations, jsd], ...]`` in increasing evaluations (NaN JSD never counts).
    """
    if threshold is None or not math.isfinite(float(threshold)):
        return None
    for evals, value in curve:
        if value is not None and math.isfinite(float(value)) and float(value) <= float(threshold):
            return int(evals)
    return None


def pooled_frames(rounds: list, upto: int) -> Optional[torch.Tensor]:
    """CV frames of the chain states of rounds ``upto // 2 + 1 .. upto`` (the first half is the burn-in);
    ``rounds[r]`` holds round ``r``'s frames (``rounds[0]``: the initial chains, used when ``upto == 0``)."""
    lo = 0 if upto == 0 else upto // 2 + 1
    blocks = [rounds[r] for r in range(lo, upto + 1) if rounds[r] is not None and len(rounds[r])]
    return torch.cat(blocks) if blocks else None


def jsd_to(frames: Optional[torch.Tensor], reference: torch.Tensor, jsd: dict) -> float:
    if frames is None or not len(frames):
        return float("nan")
    try:
        return float(path_density_jsd(frames, reference, **jsd))
    except ValueError:  # no frame inside the grid
        return float("nan")


def segment_cv(paths, setup: Setup, select=None) -> Optional[torch.Tensor]:
    """Transition-segment frames of ``paths`` (:func:`benchmarks.common.transition_frames`) as float32 CVs."""
    seg = transition_frames(paths, setup.state_a, setup.state_b, select=select)
    if seg is None:
        return None
    return setup.cv(seg).float()


# ------------------------------------------------------------------ shooting chains, block by block
class TorchChains:
    """Flexible-length two-way shooting chains on the system's torch engine, continued block by block
    (:func:`tps.baselines.two_way_shooting` from each chain's last path, a fresh seed per block)."""

    def __init__(self, setup: Setup):
        from tps.baselines import FlexibleLengthEnsemble

        self.setup = setup
        self.engine = setup.extra["engine"]()
        self.ensemble = FlexibleLengthEnsemble(setup.state_a, setup.state_b, max_frames=setup.max_frames)

    def block(self, chains: list, n_rounds: int, seed: int):
        """Shoot ``n_rounds`` rounds; returns ``(chains, frames_per_round, round_evals, counts)``.

        ``counts["moved"]``: per chain, whether it decorrelated from its path at the start of the
        block (all its frames new).
        """
        from tps.baselines import two_way_shooting

        res = two_way_shooting(self.engine, self.ensemble, chains, n_chains=len(chains), n_rounds=n_rounds,
                               seed=seed)
        rnd = torch.as_tensor(res.paths.info["round"])
        frames = [segment_cv(res.paths, self.setup, select=rnd == r) for r in range(1, res.info["n_rounds"] + 1)]
        counts = dict(trials=res.n_trials, accepted=res.n_accepted, decorrelated=res.n_decorrelated,
                      moved=[f is not None for f in res.info["first_decorrelated_round"]])
        return res.info["final_chains"], frames, [int(e) for e in res.info["round_evals"]], counts

    def relax(self, chains: list, max_rounds: int, seed: int, *, until: str = "decorrelated"):
        """:func:`tps.baselines.relax_chains` on the chains' engine (module docstring of :mod:`tps.baselines.relax`):
        each chain stops once it shares no frame with its start (or, ``until="accepted"``, at its first
        accepted trial), or after ``max_rounds`` rounds."""
        from tps.baselines import relax_chains

        s = self.setup
        return relax_chains(self.engine, chains, s.state_a, s.state_b, max_rounds=max_rounds,
                            max_frames=s.max_frames, seed=seed, until=until)


class OpenMMChains:
    """OpenMM two-way shooting chains (:func:`tps.baselines.openmm_two_way_shooting`), one after another,
    continued block by block (birth stamps carried, so decorrelation counts against the initial path)."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.birth = None

    def block(self, chains: list, n_rounds: int, seed: int):
        from tps.baselines import openmm_two_way_shooting

        s = self.setup
        if self.birth is None:
            self.birth = [None] * len(chains)
        new, per_round, evals = [], [[] for _ in range(n_rounds)], [0] * n_rounds
        counts = dict(trials=0, accepted=0, decorrelated=0, moved=[])
        for c, path in enumerate(chains):
            res = openmm_two_way_shooting(s.extra["system"], np.asarray(path), state_a=s.state_a, state_b=s.state_b,
                                          temperature=s.extra["temperature"], n_trials=n_rounds,
                                          max_frames=s.max_frames, seed=seed + 1000 * c, birth=self.birth[c],
                                          **s.extra["md"])
            lengths = res.paths.info["lengths"]
            for i in range(res.paths.n_paths):
                cv = segment_cv(res.paths, s, select=torch.arange(res.paths.n_paths) == i)
                if cv is not None:
                    per_round[i].append(cv)
            for i, e in enumerate(res.info["round_evals"]):
                evals[i] += int(e)
            new.append(res.paths.frames[-1, :int(lengths[-1])].clone())
            counts["moved"].append(min(res.info["final_birth"]) > 0)  # no frame of the chain's first path left
            self.birth[c] = res.info["final_birth"]
            counts["trials"] += res.n_trials
            counts["accepted"] += res.n_accepted
            counts["decorrelated"] += res.n_decorrelated
        frames = [torch.cat(f) if f else None for f in per_round]
        return new, frames, evals, counts

    def relax(self, chains: list, max_rounds: int, seed: int, *, until: str = "decorrelated"):
        """:func:`tps.baselines.relax_chains` on the molecule's Langevin engine with the shooting's dynamics
        (as the refine stage of ``tps run``): chain by chain, each stops once it shares no frame with
        its start (``until="accepted"``: at its first accepted trial), or after ``max_rounds`` rounds. The chains then continue from the relaxed paths
        (birth stamps restart there)."""
        from tps.baselines import relax_chains

        s = self.setup
        self.birth = None
        return relax_chains(s.extra["engine"](seed), chains, s.state_a, s.state_b, max_rounds=max_rounds,
                            max_frames=s.max_frames, seed=seed, steps_per_frame=s.extra["md"]["save_every"],
                            until=until)


def make_chains(setup: Setup):
    return OpenMMChains(setup) if setup.is_openmm else TorchChains(setup)


# ------------------------------------------------------------------ initial paths
def high_temperature_paths(setup: Setup, n_paths: int, seed: int, *, shared: bool):
    """High-temperature initial paths: ``(list of n_paths Tensors, energy evaluations)``.

    ``shared``: one path (:func:`tps.baselines.initial_path_high_temperature`, the reference runner's
    search: 64 chains, the lowest-barrier of 4 transitions), given to every chain. Otherwise one
    independent transition per chain: torch systems run ``2 n_paths`` unbiased chains at the high
    temperature until ``n_paths`` have crossed (each a first passage of its own chain, at most
    ``max_frames`` frames; every step of every chain counted); OpenMM runs one 800 K trajectory per chain.
    """
    if setup.is_openmm:
        from tps.baselines import openmm_unbiased_md

        out, evals = [], 0
        for c in range(1 if shared else n_paths):
            r = openmm_unbiased_md(setup.extra["system"], setup.extra["start"], state_a=setup.state_a,
                                   state_b=setup.state_b, temperature=setup.high_factor * setup.extra["temperature"],
                                   n_steps_budget=5_000_000, max_transitions=1, seed=seed + 100 * c,
                                   **setup.extra["md"])
            evals += int(r.n_energy_evals)
            if r.paths is None:
                raise RuntimeError("no high-temperature transition within 5 M steps")
            out.append(r.paths.frames[0, :int(r.paths.info["lengths"][0])].clone())
        return (out * n_paths if shared else out), evals
    from tps.baselines import initial_path_high_temperature, unbiased_md

    pot, dt, kT_high = setup.extra["potential"], setup.extra["dt"], setup.high_factor * setup.kT
    if shared:
        init = initial_path_high_temperature(pot, setup.extra["start"], state_a=setup.state_a, state_b=setup.state_b,
                                             kT_high=kT_high, dt=dt, n_chains=64, max_steps=50_000, n_candidates=4,
                                             seed=seed)
        n = int(init.info["lengths"][0])
        return [init.frames[0, :n].clone() for _ in range(n_paths)], int(init.n_energy_evals)
    out, evals, attempt = [], 0, 0
    while len(out) < n_paths:
        need = n_paths - len(out)
        md = unbiased_md(pot, setup.extra["start"], state_a=setup.state_a, state_b=setup.state_b, kT=kT_high, dt=dt,
                         n_chains=2 * need, max_steps=200_000, seed=seed + 7919 * attempt, max_transitions=need,
                         max_path_frames=setup.max_frames)
        evals += int(md.n_energy_evals)
        if md.paths is not None:
            lengths = md.paths.info["lengths"]
            out += [md.paths.frames[i, :int(lengths[i])].clone() for i in range(min(need, md.paths.n_paths))]
        attempt += 1
        if attempt > 20:
            raise RuntimeError(f"only {len(out)} of {n_paths} high-temperature transitions after 20 attempts")
    return out, evals
