"""Two-way shooting transition path sampling on an engine (overdamped Langevin by default).

The move (Dellago, Bolhuis, Chandler; as in OpenPathSampling's ``TwoWayShootingMover``):

1. pick a shooting frame ``k`` uniformly among the interior frames ``1 .. L-2`` of the current
   path of ``L`` frames (the endpoints are never shot from: in the flexible ensemble they lie in
   A or B, and in the fixed one a shot from an endpoint would only run one way);
2. from frame ``k`` run a forward shot and a backward shot, each with freshly drawn noise
   ("noise re-draw", the overdamped analogue of velocity re-draw). Overdamped Langevin dynamics
   has no momenta to reverse; in equilibrium it is time-reversible (detailed balance with respect
   to the Boltzmann density), so the backward half is generated with the *same* dynamics started
   from frame ``k`` and then reversed in time. This is the standard practice for overdamped and
   Brownian dynamics; it is exact for the continuous dynamics and holds to O(dt) for the
   Euler-Maruyama discretisation;
3. the trial path is ``reversed(backward) + [frame k] + forward``:

   - fixed length: the backward shot runs ``k`` steps and the forward shot ``L-1-k`` steps, so the
     trial again has ``L`` frames; accept if its first frame is in A and its last in B (the
     selection probability is the same both ways, so no other factor enters);
   - flexible length: each shot runs until it enters A or B; accept if the backward shot ended in
     A, the forward one in B, and a Metropolis test with ``min(1, (L_old - 2) / (L_new - 2))``
     passes: the ratio of the numbers of interior frames, i.e. of the uniform selection
     probabilities ``1/(L_new - 2)`` and ``1/(L_old - 2)``. The uniform random number is drawn
     before shooting, which caps the trial length at ``2 + floor((L_old - 2)/u)``; trials are
     abandoned as soon as they exceed the cap, or the backward shot reaches B, or the forward one
     reaches A (each a certain rejection, as in OpenPathSampling).

The move is written once, on an :class:`~tps.engines.base.Engine` (:func:`run_chains`, with the
round mechanics in :mod:`tps.baselines.trials`): :func:`two_way_shooting` runs it on
:class:`~tps.engines.TorchOverdampedEngine` for a potential (or on any engine given), and
:func:`~tps.baselines.openmm_two_way_shooting` on :class:`~tps.engines.openmm.OpenMMLangevinEngine`
(velocity re-draw and reversal instead of noise re-draw). With a vectorised engine ``n_chains``
independent Markov chains run side by side as one batch (every shot of one round is propagated
together; only unfinished rows are evaluated). Every frame costs one energy+force evaluation,
rejected trials included; the shooting frame's force is cached with the path. Frames carry a
birth stamp (the round that generated them; 0 for the initial path) so that decorrelation is
tracked exactly: a path is *decorrelated* when it shares no frame with the previous decorrelated
path of its chain (the first one: with the initial path), the definition of OpenPathSampling's
path-tree analysis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from tps._validation import as_tensor, check_finite, check_positive, check_positive_int
from tps.baselines.ensembles import FixedLengthEnsemble, FlexibleLengthEnsemble
from tps.baselines.trials import draw_trials, run_round, trial_caps, vectorised
from tps.baselines.unbiased_md import pad_paths
from tps.core import Paths
from tps.engines import Engine, TorchOverdampedEngine

__all__ = ["ShootingResult", "two_way_shooting", "ChainRun", "run_chains", "shooting_result"]


@dataclass(frozen=True)
class ShootingResult:
    """Outcome of :func:`two_way_shooting`.

    Attributes
    ----------
    paths : Paths
        The sampled path ensemble (see ``keep``), frames ``(n_paths, max_frames, *event)`` padded
        by repeating each path's last frame (``info["lengths"]`` holds the true lengths,
        ``info["chain"]`` and ``info["round"]`` where each path comes from).
    n_energy_evals : int
        All evaluations: the initial paths' frames once, and every frame of every trial,
        accepted or rejected.
    n_trials, n_accepted, n_decorrelated : int
        Shooting trials, accepted trials, and decorrelated paths summed over chains.
    acceptance_rate : float
    evals_per_accepted_path, evals_per_decorrelated_path : float or None
        ``n_energy_evals`` divided by the counts; None when the count is zero.
    info : dict
        Settings, per-chain counts, trial ``outcomes`` (flexible: accepted, forward shot in A,
        backward shot in B, longer than the cap or ``max_frames``; fixed: accepted, first
        frame not in A, last frame not in B), per round the accepted trials (``accepted_per_round``)
        and the engine energy evaluations (``round_evals``, list of int: every frame of every shot
        of that round; the initial paths' evaluations are in ``n_energy_evals`` only), final
        decorrelation from the initial path, the round of each chain's first decorrelated path
        (``first_decorrelated_round``), wall time, and each chain's last path (``final_chains``, to
        continue the chains in another call).
    """

    paths: Paths
    n_energy_evals: int
    n_trials: int
    n_accepted: int
    n_decorrelated: int
    acceptance_rate: float
    evals_per_accepted_path: Optional[float]
    evals_per_decorrelated_path: Optional[float]
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain numbers for a results table, with the max-energy metric of ``paths``."""
        max_e = self.paths.energies.max(dim=1).values
        return {
            "ensemble": self.info.get("ensemble"),
            "n_energy_evals": self.n_energy_evals,
            "n_trials": self.n_trials,
            "n_accepted": self.n_accepted,
            "acceptance_rate": self.acceptance_rate,
            "n_decorrelated": self.n_decorrelated,
            "evals_per_accepted_path": self.evals_per_accepted_path,
            "evals_per_decorrelated_path": self.evals_per_decorrelated_path,
            "n_paths": self.paths.n_paths,
            "mean_path_frames": float(self.paths.info["lengths"].double().mean()),
            "max_energy_mean": float(max_e.mean()),
            "max_energy_std": float(max_e.std()) if len(max_e) > 1 else 0.0,
            "minmax": float(max_e.min()),
            "wall_s": self.info.get("wall_s"),
        }


def _one_path(potential, ensemble, path, name):
    event = tuple(potential.event_shape)
    path = as_tensor(path, name).to(torch.float64)
    check_finite(path, name)
    if path.dim() != 1 + len(event) or tuple(path.shape[1:]) != event:
        raise ValueError(f"{name}: expected shape (n_frames, {', '.join(map(str, event))}), got {tuple(path.shape)}")
    if isinstance(ensemble, FixedLengthEnsemble) and path.shape[0] != ensemble.n_frames:
        raise ValueError(f"{name}: expected {ensemble.n_frames} frames for the fixed-length ensemble, got "
                         f"{path.shape[0]} (use tps.baselines.resample_path)")
    if not ensemble(path):
        raise ValueError(f"{name}: not in the ensemble (first frame must be in A, last in B"
                         + ("" if isinstance(ensemble, FixedLengthEnsemble) else ", no other frame in A or B") + ")")
    return path


def _initial_paths(potential, ensemble, initial_path, n_chains):
    """One path shared by every chain, or one per chain; returns a list of distinct paths and,
    per chain, the index of its path."""
    event = tuple(potential.event_shape)
    if isinstance(initial_path, Paths):
        lengths = initial_path.info.get("lengths")
        n = [int(lengths[i]) if lengths is not None else initial_path.n_frames for i in range(initial_path.n_paths)]
        initial_path = [initial_path.frames[i, :n[i]] for i in range(initial_path.n_paths)]
        if len(initial_path) == 1:
            initial_path = initial_path[0]
    elif isinstance(initial_path, torch.Tensor) and initial_path.dim() == 2 + len(event):
        initial_path = list(initial_path)
    if isinstance(initial_path, (list, tuple)):
        if len(initial_path) != n_chains:
            raise ValueError(f"initial_path: expected one path or n_chains={n_chains} paths, got {len(initial_path)}")
        paths = [_one_path(potential, ensemble, p, f"initial_path[{i}]") for i, p in enumerate(initial_path)]
        return paths, list(range(n_chains))
    return [_one_path(potential, ensemble, initial_path, "initial_path")], [0] * n_chains


@dataclass
class ChainRun:
    """Raw outcome of :func:`run_chains` (the wrappers turn it into a :class:`ShootingResult`).

    Attributes
    ----------
    chains : list of (frames, energies, forces or None, birth)
        Each chain's last path; ``birth`` (int64) is the round that generated each frame.
    saved : list of (frames, energies, chain, round)
        Kept chain states (``keep``, ``burn_in``, ``save_every``).
    n_accepted, n_decorrelated : list of int, per chain
    decorrelation_rounds : list of list of int, per chain
        Rounds whose accepted path shared no frame with the chain's previous decorrelated path.
    outcomes : dict of str to int
        Fixed: accepted, not_in_A, not_in_B; flexible: accepted, forward_in_A, backward_in_B,
        too_long, metropolis.
    trial_frames : list of Tensor ``(n_chains,)``, per round
    accepted_per_round, round_evals : list of int, per round
        Accepted trials and engine evaluations of each round.
    n_rounds, n_energy_evals, n_readouts : int
        Rounds run; evaluations and read-outs since the start (the initial paths included).
    wall_s : float
    """

    chains: list
    saved: list
    n_accepted: list
    n_decorrelated: list
    decorrelation_rounds: list
    outcomes: dict
    trial_frames: list
    accepted_per_round: list
    round_evals: list
    n_rounds: int
    n_energy_evals: int
    n_readouts: int
    wall_s: float


def run_chains(engine, ensemble, initial: list, which: list, *, rng, n_rounds: int, burn_in: int = 0,
               save_every: int = 1, keep: str = "chain", time_limit_s: Optional[float] = None,
               length_metropolis: bool = True, steps_per_frame: int = 1, birth=None) -> ChainRun:
    """Two-way shooting chains on ``engine``: THE shooting loop of the package (module docstring).

    Parameters
    ----------
    engine : Engine
        Vectorised engines run every chain's shots side by side; one-replica engines run the
        chains' shots one after another, backward first (:mod:`tps.baselines.trials`).
    ensemble : FixedLengthEnsemble or FlexibleLengthEnsemble
    initial : list of Tensor ``(L_i, *event)``
        Distinct initial paths (validated), each evaluated once.
    which : list of int
        Per chain, the index of its initial path.
    rng : torch.Generator, numpy.random.Generator or None
        Source of the trial random numbers (:func:`tps.baselines.trials.draw_trials`).
    n_rounds, burn_in, save_every, keep, time_limit_s, length_metropolis
        As :func:`two_way_shooting`.
    steps_per_frame : int
        Engine steps between recorded frames.
    birth : sequence of int, optional
        Birth stamps of the (single) initial path's frames, to continue a chain.

    Returns
    -------
    ChainRun
    """
    fixed = isinstance(ensemble, FixedLengthEnsemble)
    n_chains = len(which)
    t0 = time.perf_counter()
    evals0, readouts0 = engine.n_energy_evals, engine.n_readouts
    evaluated = []
    for p in initial:
        if vectorised(engine):  # energies and forces of all frames at once, cached with the path
            engine.set_positions(p)
            evaluated.append((p, engine.observe()[1], engine.forces.clone()))
        else:
            evaluated.append((p, torch.cat([engine.energy(x) for x in p]), None))
    stamps = [torch.zeros(p.shape[0], dtype=torch.int64) if birth is None else
              torch.as_tensor(list(birth), dtype=torch.int64) for p in initial]
    chains = [(*evaluated[i], stamps[i]) for i in which]
    reference = [0] * n_chains  # birth round of the last decorrelated path (0: the initial one)
    n_acc, n_dec, dec_rounds = [0] * n_chains, [0] * n_chains, [[] for _ in range(n_chains)]
    outcomes = ({"accepted": 0, "not_in_A": 0, "not_in_B": 0} if fixed else
                {"accepted": 0, "forward_in_A": 0, "backward_in_B": 0, "too_long": 0, "metropolis": 0})
    saved, trial_frames, accepted_per_round, round_evals = [], [], [], []
    n_run = 0
    for rnd in range(1, n_rounds + 1):
        evals = engine.n_energy_evals
        lengths = torch.tensor([c[0].shape[0] for c in chains])
        k, u, seeds = draw_trials(rng, lengths, fixed=fixed)
        caps = None if fixed else trial_caps(lengths, u, ensemble.max_frames, length_metropolis)
        r = run_round(engine, ensemble, [c[:3] for c in chains], k, u=u, caps=caps, seeds=seeds, fixed=fixed,
                      length_metropolis=length_metropolis, steps_per_frame=steps_per_frame)
        for key, hit in r.outcomes.items():
            outcomes[key] += int(hit.sum())
        for c in r.accept.nonzero().flatten().tolist():
            fw, bw = r.segments[c], r.segments[n_chains + c]
            kc, old = int(k[c]), chains[c]
            new = [torch.cat([b.flip(0), o[kc:kc + 1], f]) if o is not None else None
                   for b, o, f in zip(bw, old[:3], fw)]
            stamp = torch.cat([torch.full((len(bw[0]),), rnd), old[3][kc:kc + 1], torch.full((len(fw[0]),), rnd)])
            chains[c] = (*new, stamp)
            n_acc[c] += 1
            if int(stamp.min()) > reference[c]:
                n_dec[c] += 1
                reference[c] = rnd
                dec_rounds[c].append(rnd)
        trial_frames.append(r.trial_frames)
        accepted_per_round.append(int(r.accept.sum()))
        round_evals.append(engine.n_energy_evals - evals)
        n_run = rnd
        if rnd > burn_in:
            if keep == "chain" and (rnd - burn_in - 1) % save_every == 0:
                saved.extend((chains[c][0], chains[c][1], c, rnd) for c in range(n_chains))
            elif keep == "accepted":
                saved.extend((chains[c][0], chains[c][1], c, rnd) for c in r.accept.nonzero().flatten().tolist())
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            break
    return ChainRun(chains=chains, saved=saved, n_accepted=n_acc, n_decorrelated=n_dec, decorrelation_rounds=dec_rounds,
                    outcomes=outcomes, trial_frames=trial_frames, accepted_per_round=accepted_per_round,
                    round_evals=round_evals, n_rounds=n_run, n_energy_evals=engine.n_energy_evals - evals0,
                    n_readouts=engine.n_readouts - readouts0, wall_s=time.perf_counter() - t0)


def two_way_shooting(potential, ensemble, initial_path, *, kT: Optional[float] = None, dt: Optional[float] = None,
                     n_chains: int = 16, n_rounds: int = 100, burn_in: int = 0, save_every: int = 1,
                     keep: str = "chain", seed: Optional[int] = None, time_limit_s: Optional[float] = None,
                     length_metropolis: bool = True, executor=None, task_size: Optional[int] = None,
                     checkpoint=None, progress: bool = False, steps_per_frame: int = 1) -> ShootingResult:
    """Two-way shooting TPS with ``n_chains`` independent chains (module docstring).

    Parameters
    ----------
    potential : Potential or Engine
        A potential: the chains run :class:`~tps.engines.TorchOverdampedEngine` with ``kT`` and
        ``dt`` (every evaluation goes through ``potential.energy_and_forces`` and is counted).
        An engine (:class:`~tps.engines.base.Engine`): its own dynamics; ``kT`` and ``dt`` are
        not given. ``seed`` reseeds a torch engine's generator (which also draws the trial
        numbers); a one-replica engine (OpenMM) draws them from ``numpy.random.default_rng(seed)``,
        whose first integer reseeds the engine (as :func:`~tps.baselines.openmm_two_way_shooting`).
    ensemble : FixedLengthEnsemble or FlexibleLengthEnsemble
    initial_path : Tensor, shape ``(n_frames, *event)`` or ``(n_chains, n_frames, *event)``, list of
        ``n_chains`` Tensors, or Paths (one path, or ``n_chains`` with ``info["lengths"]``)
        Paths in ``ensemble``: one shared by every chain, or one per chain.
    kT : float
        Thermal energy in the potential's unit (potential only).
    dt : float
        Time step of the overdamped Langevin engine (unit mobility; potential only).
    n_chains : int
    n_rounds : int
        Shooting trials per chain.
    burn_in : int
        Rounds whose paths are not kept in ``paths``.
    save_every : int
        Keep the chain states of every ``save_every``-th round after the burn-in (``keep="chain"``).
    keep : {"chain", "accepted"}
        ``"chain"``: the chain states (rejections repeat the old path, the correct ensemble
        weights); ``"accepted"``: only newly accepted paths.
    seed : int, optional
    time_limit_s : float, optional
        Stop after the round during which this wall time is exceeded.
    length_metropolis : bool
        Flexible length only. True (default): the Metropolis factor ``min(1, (L_old - 2) / (L_new - 2))``
        of the TPS path measure. False: accept every A -> B trial of at most ``ensemble.max_frames``
        frames. Not the transition path ensemble: for relaxing a non-typical initial path (e.g. a
        short high-temperature transition) during a burn-in whose paths are discarded.
    executor, task_size, checkpoint, progress
        With an executor (:mod:`tps.parallel`) the chains run as tasks of ``task_size`` chains
        (:mod:`tps.baselines.chains`; potentials and torch engines only).
    steps_per_frame : int
        Engine steps between recorded frames (1 for overdamped shooting).

    Returns
    -------
    ShootingResult

    Examples
    --------
    >>> import torch
    >>> from tps.systems import load
    >>> from tps.baselines import FixedLengthEnsemble, two_way_shooting, resample_path
    >>> mb = load("muller-brown")
    >>> ens = FixedLengthEnsemble(mb.states["A"], mb.states["B"], n_frames=5)
    >>> path = resample_path(torch.stack([mb.endpoints["A"], mb.endpoints["B"]]), 5)
    >>> res = two_way_shooting(mb.potential, ens, path, kT=mb.kT, dt=1e-4, n_chains=2, n_rounds=3, seed=0)
    >>> res.n_trials, res.n_energy_evals  # 5 initial frames + 6 trials * 4 new frames
    (6, 29)
    >>> res.info["round_evals"]  # per round: 2 chains * 4 new frames
    [8, 8, 8]
    """
    if not isinstance(ensemble, (FixedLengthEnsemble, FlexibleLengthEnsemble)):
        raise ValueError(f"ensemble: expected a FixedLengthEnsemble or FlexibleLengthEnsemble, got {type(ensemble).__name__}")
    engine = potential if isinstance(potential, Engine) else None
    if engine is not None:
        if kT is not None or dt is not None:
            raise ValueError("kT, dt: given by the engine; pass them only with a potential")
        kT = engine.kT
        dt = getattr(engine, "dt", None)
    else:
        kT = check_positive(kT, "kT")
        dt = check_positive(dt, "dt")
    n_chains = check_positive_int(n_chains, "n_chains")
    n_rounds = check_positive_int(n_rounds, "n_rounds")
    save_every = check_positive_int(save_every, "save_every")
    steps_per_frame = check_positive_int(steps_per_frame, "steps_per_frame")
    if isinstance(burn_in, bool) or int(burn_in) != burn_in or not 0 <= burn_in < n_rounds:
        raise ValueError(f"burn_in: expected an integer in [0, n_rounds={n_rounds}), got {burn_in!r}")
    if keep not in ("chain", "accepted"):
        raise ValueError(f"keep: expected 'chain' or 'accepted', got {keep!r}")
    if time_limit_s is not None:
        time_limit_s = check_positive(time_limit_s, "time_limit_s")
    fixed = isinstance(ensemble, FixedLengthEnsemble)
    initial, which = _initial_paths(engine or potential, ensemble, initial_path, n_chains)
    if executor is not None:
        from tps.baselines.chains import shooting_tasks

        if engine is not None and not hasattr(engine, "potential"):
            raise ValueError("executor: supported for potentials and torch engines; use "
                             "tps.baselines.chains.openmm_shooting_chains for OpenMM")
        kw = dict(kT=kT, dt=dt, n_rounds=n_rounds, burn_in=burn_in, save_every=save_every, keep=keep,
                  time_limit_s=time_limit_s, length_metropolis=length_metropolis)
        return shooting_tasks(potential if engine is None else engine.potential, ensemble,
                              [initial[i] for i in which], executor=executor, seed=seed, task_size=task_size,
                              checkpoint=checkpoint, progress=progress, kw=kw)
    if engine is None:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        engine = TorchOverdampedEngine(potential, kT=kT, dt=dt, generator=generator)
        rng = generator
    elif vectorised(engine):
        if seed is not None:
            engine.reseed(seed)
        rng = getattr(engine, "generator", None)
    else:
        rng = np.random.default_rng(seed)
        engine.reseed(int(rng.integers(1, 2**31 - 1)))
    run = run_chains(engine, ensemble, initial, which, rng=rng, n_rounds=n_rounds, burn_in=burn_in,
                     save_every=save_every, keep=keep, time_limit_s=time_limit_s,
                     length_metropolis=length_metropolis, steps_per_frame=steps_per_frame)
    if not run.saved:  # nothing accepted after the burn-in (keep="accepted") or stopped early: keep chain states
        run.saved = [(c[0], c[1], i, run.n_rounds) for i, c in enumerate(run.chains)]
    outcomes = dict(run.outcomes)
    if not fixed:  # within its cap a trial passes u <= (L_old-2)/(L_new-2) (up to rounding): "too_long" here
        outcomes["too_long"] += outcomes.pop("metropolis")
    first = [r[0] if r else None for r in run.decorrelation_rounds]
    info = {
        "sampler": "two-way-shooting", "ensemble": "fixed" if fixed else "flexible", "dt": dt,
        "n_chains": n_chains, "n_rounds": run.n_rounds, "burn_in": burn_in, "keep": keep,
        "accepted_per_chain": run.n_accepted, "accepted_per_round": run.accepted_per_round,
        "round_evals": run.round_evals, "decorrelated_per_chain": run.n_decorrelated,
        "final_decorrelated_from_initial": sum(int(c[3].min()) > 0 for c in run.chains),
        "first_decorrelated_round": first, "length_metropolis": bool(length_metropolis),
        "outcomes": outcomes,
        "mean_trial_frames": float(torch.cat(run.trial_frames).double().mean()),
        "n_initial_frames": sum(p.shape[0] for p in initial), "wall_s": run.wall_s,
    }
    return shooting_result(run, kT, info, chain_key=True)


def shooting_result(run: ChainRun, kT: float, info: dict, *, chain_key: bool = True,
                    note: str = "padded by repeating each path's last frame; lengths holds the true frame counts"):
    """The :class:`ShootingResult` of a :class:`ChainRun` with ``info`` (``info["final_chains"]`` added).

    ``paths.info`` is ``info`` plus ``lengths``, ``chain`` (if ``chain_key``), ``round`` and ``note``.
    """
    frames, energies, lens = pad_paths([s[0] for s in run.saved], [s[1] for s in run.saved])
    n_evals, n_trials = run.n_energy_evals, len(run.chains) * run.n_rounds
    n_accepted, n_decorrelated = sum(run.n_accepted), sum(run.n_decorrelated)
    extra = {"lengths": lens}
    if chain_key:
        extra["chain"] = torch.tensor([s[2] for s in run.saved])
    extra.update({"round": torch.tensor([s[3] for s in run.saved]), "note": note})
    paths = Paths(frames, energies, n_evals, kT, {**info, **extra})
    if chain_key:
        info["final_chains"] = [c[0] for c in run.chains]  # each chain's last path (to continue it), not in paths.info
    return ShootingResult(
        paths=paths, n_energy_evals=n_evals, n_trials=n_trials, n_accepted=n_accepted,
        n_decorrelated=n_decorrelated, acceptance_rate=n_accepted / n_trials,
        evals_per_accepted_path=n_evals / n_accepted if n_accepted else None,
        evals_per_decorrelated_path=n_evals / n_decorrelated if n_decorrelated else None, info=info,
    )
