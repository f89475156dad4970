"""A long two-way-shooting run as a reusable reference transition-path ensemble.

``python -m benchmarks reference-ensemble --system muller-brown|aldp-2d|aldp-cartesian --out DIR
[--time-s S] [--segment-s S] [--seed N] [--chains M]`` writes ``DIR/reference_<system>.npz``: the collective
variables of the transition-path frames of the ensemble (``frames``, float32 ``(n, 2)``: (x, y) for
Muller-Brown, (phi, psi) in rad for alanine dipeptide), the chain of each frame (``chain``), the
kept path of each frame (``path``, 0, 1, ...; files written before it was added lack it, their
checkpoint's ``frames`` list has one block per kept path) and a JSON description (``meta``: system, kT, states, dynamics, counts, evaluations, wall and CPU time).
The system runners take it with ``--reference DIR/reference_<system>.npz`` (and ``benchmarks all``
with ``--reference DIR``) and then measure ``path_density_jsd`` against it instead of against
their own short in-run shooting ensemble.

The dynamics, temperature and state definitions are exactly those of the system's benchmark
runner (overdamped Euler-Maruyama on the potential for ``muller-brown`` and on the spline of the
package's own free-energy surface for ``aldp-2d``; OpenMM Langevin at 300 K, 2 fs, a frame every
25 steps for ``aldp-cartesian``), so the reference is the transition-path ensemble of that
benchmark. ``aldp-2d`` uses the package's own surface only (the reference surface of Holdijk et
al. is never used here).

Protocol (why the short in-run shooting runs accepted (almost) nothing):

1. **Initial path from a high-temperature run**: unbiased MD at an elevated temperature until it
   crosses, trimmed to the transition (last frame in A to first frame in B). It is a dynamical
   trajectory, unlike an annealed-Langevin path, but at the target temperature it is atypically
   short: with the flexible-length acceptance ``u <= (L_old - 2) / (L_new - 2)`` almost every trial
   is longer than the cap ``2 + (L_old - 2) / u`` and is rejected (measured on aldp-cartesian from a
   22-frame 800 K path: 1 of 185 trials accepted, 113 stopped by the cap).
2. **Relaxation at the target temperature**: shooting without the length factor (every A -> B
   trial up to ``max_frames`` accepted) until every chain has a path sharing no frame with its
   initial path (or ``relax_segments`` segments are spent). These paths are discarded.
3. **Sampling**: proper two-way shooting (uniform shooting point, velocity / noise re-draw,
   flexible length with the Metropolis length factor). A chain's paths are kept only after its
   first decorrelated path of this phase (the first decorrelation period is discarded).
   Chain states are kept every ``round_thin`` rounds (every accepted or rejected trial counts,
   as in the path ensemble), and every ``frame_stride``-th frame of each kept path (uniform
   thinning keeps the frame weighting of the density).

Checkpoints: after every segment (``--segment-s`` seconds) the chains, counters and kept frames
go atomically to ``DIR/reference_<system>.ckpt.pt`` and the npz is rewritten; a rerun with the
same ``--out`` resumes from the checkpoint and runs until ``--time-s`` of total shooting wall time
is spent (``--force`` starts over). Evaluations count every trial, rejected ones included, and the
initial-path search.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import hardware, load_reference, transition_frames, write_reference  # noqa: F401 (re-exported)
from benchmarks.common_cartesian import state_description as cartesian_states
from benchmarks.common_convergence import MULLER_BROWN_STATES
from benchmarks.common_cartesian import transition_states
from benchmarks.common_phipsi import own_setting
from benchmarks.common_phipsi import state_description as phipsi_states
from benchmarks.common_protocols import CartesianProtocol, MullerBrownProtocol, PhiPsiProtocol
from tps.io import atomic_path, save_results
from tps.core import Paths
from tps.systems import load

SYSTEMS = ("muller-brown", "aldp-2d", "aldp-cartesian")
#: tps.systems names accepted by ``--system`` for the runners' short names (files and meta keep the short names).
SYSTEM_ALIASES = {"alanine-dipeptide-phipsi": "aldp-2d", "alanine-dipeptide": "aldp-cartesian"}


@dataclass(frozen=True)
class Config:
    """Settings of one system's reference run (written into the npz ``meta``)."""

    n_chains: int
    max_frames: int           # longest trial path (frames); longer trials are rejected
    round_thin: int           # keep the chain states of every round_thin-th round (trial for OpenMM)
    frame_stride: int         # keep every frame_stride-th frame of a kept path
    relax_segments: int       # at most this many relaxation segments (no length factor)
    high_factor: float        # initial path: unbiased MD at high_factor x the target temperature


CONFIGS = {
    "muller-brown": Config(n_chains=256, max_frames=1000, round_thin=2, frame_stride=1, relax_segments=2,
                           high_factor=1.6),
    "aldp-2d": Config(n_chains=128, max_frames=8000, round_thin=1, frame_stride=10, relax_segments=1,
                      high_factor=2.5),
    "aldp-cartesian": Config(n_chains=4, max_frames=800, round_thin=1, frame_stride=1, relax_segments=4,
                             high_factor=800.0 / 300.0),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--system", required=True, choices=SYSTEMS + tuple(SYSTEM_ALIASES),
                   help="which benchmark system (alanine-dipeptide-phipsi = aldp-2d, "
                        "alanine-dipeptide = aldp-cartesian)")
    p.add_argument("--out", required=True, type=Path, help="output directory (npz, checkpoint, json)")
    p.add_argument("--time-s", type=float, default=1800.0,
                   help="total shooting wall time over all resumed runs (default 1800 s)")
    p.add_argument("--segment-s", type=float, default=120.0, help="wall time between checkpoints (default 120 s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chains", type=int, default=None,
                   help="number of chains (default: the system's, see CONFIGS); e.g. a small quick reference for CI")
    p.add_argument("--force", action="store_true", help="ignore an existing checkpoint and start over")


# ------------------------------------------------------------------ shooting setups
class TorchShooting:
    """Muller-Brown or aldp-2d: batched overdamped two-way shooting (:func:`tps.baselines.two_way_shooting`)
    on the registered system's engine (``system.make_engine(dt=...)``, a
    :class:`~tps.engines.TorchOverdampedEngine`), with the runner's states and time step."""

    def __init__(self, name: str, cfg: Config):
        from tps.baselines import FlexibleLengthEnsemble

        self.name, self.cfg = name, cfg
        if name == "muller-brown":
            system = load("muller-brown")
            self.potential, self.kT, self.dt = system.potential, system.kT, MullerBrownProtocol().md_dt
            self.a, self.b, self.start = system.states["A"], system.states["B"], system.endpoints["A"]
            self.describe = {"system": "muller-brown", "kT": self.kT, "dt": self.dt,
                             "states": MULLER_BROWN_STATES,
                             "dynamics": "overdamped Euler-Maruyama"}
            self.wrap = None
        else:
            setting = own_setting()  # the alanine-dipeptide-phipsi system with the runner's A = C5 | C7eq
            if setting is None:
                raise SystemExit("aldp-2d: the package's free-energy surface is missing")
            system = load("alanine-dipeptide-phipsi")
            self.potential, self.kT = setting.potential, setting.kT
            self.dt = PhiPsiProtocol().md_dt / setting.kT
            self.a, self.b, self.start = setting.source, setting.target, setting.start
            self.describe = {"system": "aldp-2d", "surface": setting.notes.get("surface"), "kT": self.kT,
                             "dt": self.dt, "states": phipsi_states(setting),
                             "dynamics": "overdamped Euler-Maruyama on the periodic spline of the package's own "
                                         "free-energy surface (kJ/mol)"}
            self.wrap = setting.potential.wrap
        self.engine = system.make_engine(dt=self.dt)  # two_way_shooting reseeds it for every segment
        self.ensemble = FlexibleLengthEnsemble(self.a, self.b, max_frames=cfg.max_frames)

    def initial(self, seed: int):
        from tps.baselines import initial_path_high_temperature

        init = initial_path_high_temperature(self.potential, self.start, state_a=self.a, state_b=self.b,
                                             kT_high=self.cfg.high_factor * self.kT, dt=self.dt, n_chains=64,
                                             max_steps=50_000, n_candidates=4, seed=seed)
        n = int(init.info["lengths"][0])
        return [init.frames[0, :n].clone() for _ in range(self.cfg.n_chains)], int(init.n_energy_evals)

    def segment(self, chains, *, seed, time_s, relax, executor=None):
        """Shoot every chain for about ``time_s``; returns new chains, kept (chain, round, frames) triples, counts.

        With an executor the chains run as tasks of ``tps.baselines.chains.DEFAULT_TASK_SIZE`` chains,
        each with a time limit such that the tasks fill about ``time_s`` on the cluster's workers.
        """
        from tps.baselines import two_way_shooting
        from tps.baselines.chains import DEFAULT_TASK_SIZE
        from tps.parallel import n_workers

        n_tasks = -(-len(chains) // DEFAULT_TASK_SIZE)
        limit = time_s if executor is None else time_s * min(n_workers(executor), n_tasks) / n_tasks
        res = two_way_shooting(self.engine, self.ensemble, chains, n_chains=len(chains), n_rounds=100_000, save_every=self.cfg.round_thin, seed=seed,
                               time_limit_s=limit, length_metropolis=not relax, executor=executor)
        lengths = res.paths.info["lengths"]
        states = [(int(c), int(r), res.paths.frames[i, :int(lengths[i])])
                  for i, (c, r) in enumerate(zip(res.paths.info["chain"], res.paths.info["round"]))]
        first = [None if f is None else int(f) for f in res.info["first_decorrelated_round"]]
        return (res.info["final_chains"], states, first,
                dict(evals=res.n_energy_evals, trials=res.n_trials, accepted=res.n_accepted,
                     decorrelated=res.n_decorrelated, rounds=res.info["n_rounds"]))

    def cv(self, frames: torch.Tensor) -> torch.Tensor:
        return frames if self.wrap is None else self.wrap(frames)


class OpenMMShooting:
    """aldp-cartesian: OpenMM two-way shooting (:func:`tps.baselines.openmm_two_way_shooting`, on
    :class:`~tps.engines.openmm.OpenMMLangevinEngine`), chains one after another; the OpenMM system,
    prepared endpoints and states of the registered ``alanine-dipeptide`` system."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        proto = CartesianProtocol()
        molecule = load("alanine-dipeptide")
        self.system = molecule.openmm_system()
        self.a, self.b = transition_states(molecule.states)  # A = C5 | C7eq, B = C7ax: those of the benchmark runner
        self.endpoints = molecule.prepared_endpoints()
        self.temperature = molecule.temperature
        self.md = dict(timestep=proto.timestep, friction=proto.friction,
                       save_every=proto.steps_per_point // proto.frames_per_point)
        self.kT = molecule.kT
        self.describe = {"system": "aldp-cartesian", "kT": self.kT, "temperature": self.temperature, **self.md,
                         "states": cartesian_states(molecule.states),
                         "dynamics": "OpenMM LangevinMiddleIntegrator, amber99sbildn, vacuum"}

    def initial(self, seed: int):
        from tps.baselines import openmm_unbiased_md

        chains, evals = [], 0
        for c in range(self.cfg.n_chains):  # one high-temperature transition per chain
            r = openmm_unbiased_md(self.system, self.endpoints.start, state_a=self.a, state_b=self.b,
                                   temperature=self.cfg.high_factor * self.temperature, n_steps_budget=5_000_000,
                                   max_transitions=1, seed=seed + 100 * c, **self.md)
            evals += r.n_energy_evals
            if r.paths is None:
                raise SystemExit("aldp-cartesian: no high-temperature transition within 5 M steps")
            chains.append(r.paths.frames[0, :int(r.paths.info["lengths"][0])].clone())
        return chains, evals

    def segment(self, chains, *, seed, time_s, relax, executor=None):
        """Shoot the chains one after another (``executor=None``) or as one task each on ``executor``
        (:func:`tps.baselines.chains.openmm_shooting_chains`, chain seeds from ``(seed, chain)``)."""
        from tps.baselines import openmm_two_way_shooting

        new, states, first = [], [], []
        tot = dict(evals=0, trials=0, accepted=0, decorrelated=0, rounds=0)
        kw = dict(state_a=self.a, state_b=self.b, temperature=self.temperature, n_trials=100_000,
                  max_frames=self.cfg.max_frames, length_metropolis=not relax, **self.md)
        if executor is None:
            results = (openmm_two_way_shooting(self.system, path, seed=seed + 1000 * c,
                                               time_limit_s=time_s / len(chains), **kw)
                       for c, path in enumerate(chains))
        else:
            from tps.baselines.chains import openmm_shooting_chains
            from tps.parallel import n_workers

            per_chain = time_s * min(n_workers(executor), len(chains)) / len(chains)
            results = openmm_shooting_chains(self.system, [np.asarray(p) for p in chains], n_chains=len(chains),
                                             seed=seed, executor=executor, time_limit_s=per_chain, **kw)
        for c, res in enumerate(results):
            lengths = res.paths.info["lengths"]
            new.append(res.paths.frames[-1, :int(lengths[-1])].clone())
            for i in range(0, res.paths.n_paths, self.cfg.round_thin):
                states.append((c, int(res.paths.info["round"][i]), res.paths.frames[i, :int(lengths[i])]))
            dec = res.info["decorrelation_trials"]
            first.append(dec[0] if dec else None)
            for k, v in (("evals", res.n_energy_evals), ("trials", res.n_trials), ("accepted", res.n_accepted),
                         ("decorrelated", res.n_decorrelated), ("rounds", res.n_trials)):
                tot[k] += int(v)
        return new, states, first, tot

    def cv(self, frames: torch.Tensor) -> torch.Tensor:
        return self.b.cv(frames)


def make_shooting(name: str, cfg: Config = None):
    """The shooting setup of ``name`` (:data:`SYSTEMS`), with ``cfg`` (default ``CONFIGS[name]``)."""
    cfg = CONFIGS[name] if cfg is None else cfg
    return OpenMMShooting(cfg) if name == "aldp-cartesian" else TorchShooting(name, cfg)


# ------------------------------------------------------------------ run
def run(args) -> dict:
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = SYSTEM_ALIASES.get(args.system, args.system)
    cfg = CONFIGS[name]
    if getattr(args, "chains", None) is not None:
        if args.chains < 2:
            raise SystemExit(f"--chains: expected at least 2 chains (the noise floor splits them in halves), got "
                             f"{args.chains}")
        cfg = replace(cfg, n_chains=int(args.chains))
    ckpt_path = out / f"reference_{name}.ckpt.pt"
    npz_path = out / f"reference_{name}.npz"
    engine = make_shooting(name, cfg)
    cpu0 = time.process_time()
    if ckpt_path.exists() and not args.force:
        state = torch.load(ckpt_path, weights_only=False)
        if state["config"] != asdict(cfg) or state["seed"] != args.seed:
            raise SystemExit(f"{ckpt_path}: made with other settings ({state['config']}, seed {state['seed']}); "
                             "use --force to start over")
        # checkpoints written before the states were recorded: valid for Muller-Brown only; on both alanine
        # dipeptide systems state A became C5 | C7eq (benchmarks.common_phipsi.STATE_A_CENTRES)
        legacy = engine.describe["states"] if name == "muller-brown" else None
        if state.get("states", legacy) != engine.describe["states"]:
            raise SystemExit(f"{ckpt_path}: made with other state definitions ({state.get('states')}); use --force "
                             "to start over")
        print(f"[reference] resuming {name}: {state['counts']}, {state['wall_s']:.0f} s spent")
    else:
        t0 = time.perf_counter()
        chains, evals = engine.initial(args.seed)
        state = {"config": asdict(cfg), "seed": args.seed, "states": engine.describe["states"], "chains": chains,
                 "phase": "relax", "segment": 0,
                 "relaxed": [False] * len(chains), "burned": [False] * len(chains), "frames": [], "frame_chain": [],
                 "counts": {"initial_path_evals": evals, "evals": evals, "trials": 0, "accepted": 0,
                            "decorrelated": 0, "relax_trials": 0, "relax_accepted": 0, "kept_paths": 0},
                 "wall_s": time.perf_counter() - t0, "cpu_s": 0.0,
                 "initial_path_frames": [int(c.shape[0]) for c in chains]}
        print(f"[reference] {name}: initial path(s) of {sorted(set(state['initial_path_frames']))} frames from unbiased MD at "
              f"{cfg.high_factor:g} x the target temperature, {evals} evaluations")
    meta = None
    while state["wall_s"] < args.time_s:
        seg_s = min(args.segment_s, args.time_s - state["wall_s"])
        relax = state["phase"] == "relax"
        t0 = time.perf_counter()
        chains, states, first, cnt = engine.segment(state["chains"], seed=args.seed + 7919 * (state["segment"] + 1),
                                                    time_s=seg_s, relax=relax,
                                                    executor=getattr(args, "executor", None))
        state["chains"] = chains
        c = state["counts"]
        c["evals"] += cnt["evals"]
        if relax:
            c["relax_trials"] += cnt["trials"]
            c["relax_accepted"] += cnt["accepted"]
            state["relaxed"] = [r or f is not None for r, f in zip(state["relaxed"], first)]
            state["segment"] += 1
            if all(state["relaxed"]) or state["segment"] >= cfg.relax_segments:
                state["phase"] = "sample"
        else:
            c["trials"] += cnt["trials"]
            c["accepted"] += cnt["accepted"]
            c["decorrelated"] += cnt["decorrelated"]
            for ch, rnd, frames in states:
                if not (state["burned"][ch] or (first[ch] is not None and rnd >= first[ch])):
                    continue  # first decorrelation period of this chain: discarded
                seg = transition_frames(Paths(frames[None], torch.zeros(1, frames.shape[0]), 0, engine.kT, {}),
                                        engine.a, engine.b)
                if seg is None:
                    continue
                state["frames"].append(engine.cv(seg[::cfg.frame_stride]).float())
                state["frame_chain"].append(ch)
                c["kept_paths"] += 1
            state["burned"] = [bn or f is not None for bn, f in zip(state["burned"], first)]
            state["segment"] += 1
        state["wall_s"] += time.perf_counter() - t0
        state["cpu_s"] += time.process_time() - cpu0
        cpu0 = time.process_time()
        meta = {**engine.describe, "config": asdict(cfg), "seed": args.seed, "phase": state["phase"],
                "segments": state["segment"], "counts": dict(c), "chains_relaxed": sum(state["relaxed"]),
                "chains_burned_in": sum(state["burned"]), "wall_s": state["wall_s"], "cpu_s": state["cpu_s"],
                "acceptance_rate": c["accepted"] / c["trials"] if c["trials"] else None,
                "relax_acceptance_rate": c["relax_accepted"] / c["relax_trials"] if c["relax_trials"] else None,
                "n_frames": int(sum(len(f) for f in state["frames"])), "hardware": hardware(),
                "initial_path_frames": state["initial_path_frames"],
                "note": "frames: collective variables of the transition-path frames of the kept chain states "
                        "(after each chain's first decorrelated path of the sampling phase)"}
        with atomic_path(ckpt_path) as tmp:
            torch.save(state, tmp)
        write_reference(npz_path, state["frames"], state["frame_chain"], meta, block_index=True)
        save_results(meta, out / f"reference_{name}.json", nonfinite="tokens")
        print(f"[reference] {name} segment {state['segment']} ({'relax' if relax else 'sample'}): "
              f"{cnt['accepted']}/{cnt['trials']} accepted, {cnt['decorrelated']} decorrelated; kept paths "
              f"{c['kept_paths']}, frames {meta['n_frames']}, chains relaxed {sum(state['relaxed'])}/"
              f"{len(chains)}, burned in {sum(state['burned'])}/{len(chains)}; {state['wall_s']:.0f} s", flush=True)
    if meta is None:
        meta = json.loads((out / f"reference_{name}.json").read_text())
        print(f"[reference] {name}: --time-s {args.time_s} already spent ({state['wall_s']:.0f} s); nothing to do")
    print(f"wrote {npz_path} ({json.dumps(meta['counts'])})")
    return meta
