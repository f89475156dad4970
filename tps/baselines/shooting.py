"""Two-way shooting transition path sampling with overdamped Langevin dynamics.

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

``n_chains`` independent Markov chains run side by side as one batch (every shot of one round
is propagated together; only unfinished rows are evaluated). Every frame costs one
energy+force evaluation, rejected trials included; the shooting frame's force is cached with the
path. Frames carry a birth stamp (the round that generated them; 0 for the initial path) so that
decorrelation is tracked exactly: a path is *decorrelated* when it shares no frame with the
previous decorrelated path of its chain (the first one: with the initial path), the definition
of OpenPathSampling's path-tree analysis.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import torch

from tps._validation import as_tensor, check_finite, check_positive, check_positive_int
from tps.baselines.ensembles import FixedLengthEnsemble, FlexibleLengthEnsemble
from tps.baselines.unbiased_md import pad_paths
from tps.sampling.paths import Paths


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
        frame not in A, last frame not in B), final decorrelation from the initial path, the round of each
        chain's first decorrelated path (``first_decorrelated_round``), wall time, and each chain's
        last path (``final_chains``, to continue the chains in another call).
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


def _propagate(potential, x0, f0, *, kT, dt, generator, n_steps=None, ensemble=None, caps=None):
    """Run the ``2n`` shots of one round (rows ``0..n-1`` forward, ``n..2n-1`` backward).

    Fixed length: row ``r`` runs ``n_steps[r]`` steps. Flexible: rows run until they enter A or B;
    chain ``c`` is abandoned when its forward shot enters A, its backward shot enters B, or its
    frame count ``1 + n_forward + n_backward`` reaches ``caps[c]`` with frames still to come.

    Returns
    -------
    segments : list of (frames, energies, forces) per row, in generation order
    end : Tensor, shape ``(2n,)``, int64 (0: neither, 1: A, 2: B; flexible only)
    aborted : Tensor, shape ``(n,)``, bool
    """
    n2 = x0.shape[0]
    n = n2 // 2
    x, f = x0.clone(), f0.clone()
    count = torch.zeros(n2, dtype=torch.int64)
    end = torch.zeros(n2, dtype=torch.int64)
    aborted = torch.zeros(n, dtype=torch.bool)
    active = torch.ones(n2, dtype=torch.bool) if n_steps is None else n_steps > 0
    noise_scale = math.sqrt(2.0 * kT * dt)
    rec_rows, rec_x, rec_e, rec_f = [], [], [], []
    while bool(active.any()):
        idx = active.nonzero().flatten()
        xi = x[idx]
        xa = xi + dt * f[idx] + noise_scale * torch.randn(xi.shape, dtype=x.dtype, generator=generator)
        ea, fa = potential.energy_and_forces(xa)
        x[idx], f[idx] = xa, fa
        count[idx] += 1
        rec_rows.append(idx), rec_x.append(xa), rec_e.append(ea), rec_f.append(fa)
        if n_steps is not None:
            active = count < n_steps
            continue
        in_a = ensemble.state_a(xa)
        end[idx] = torch.where(in_a, 1, 2 * ensemble.state_b(xa))
        done = (end != 0).view(2, n)
        total = 1 + count.view(2, n).sum(0)
        aborted |= (end[:n] == 1) | (end[n:] == 2) | ((total >= caps) & ~(done[0] & done[1]))
        active = ~(done | aborted).flatten()
    rows = torch.cat(rec_rows)
    order = torch.argsort(rows, stable=True)
    sizes = torch.bincount(rows, minlength=n2).tolist()
    parts = [torch.cat(r)[order].split(sizes) for r in (rec_x, rec_e, rec_f)]
    return list(zip(*parts)), end, aborted


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


def two_way_shooting(potential, ensemble, initial_path, *, kT: float, dt: float, n_chains: int = 16,
                     n_rounds: int = 100, burn_in: int = 0, save_every: int = 1, keep: str = "chain",
                     seed: Optional[int] = None, time_limit_s: Optional[float] = None,
                     length_metropolis: bool = True, executor=None, task_size: Optional[int] = None,
                     checkpoint=None, progress: bool = False) -> ShootingResult:
    """Two-way shooting TPS with ``n_chains`` independent chains (module docstring).

    Parameters
    ----------
    potential : Potential
        Every evaluation goes through ``potential.energy_and_forces`` and is counted.
    ensemble : FixedLengthEnsemble or FlexibleLengthEnsemble
    initial_path : Tensor, shape ``(n_frames, *event)`` or ``(n_chains, n_frames, *event)``, list of
        ``n_chains`` Tensors, or Paths (one path, or ``n_chains`` with ``info["lengths"]``)
        Paths in ``ensemble``: one shared by every chain, or one per chain.
    kT : float
        Thermal energy in the potential's unit.
    dt : float
        Time step of the overdamped Langevin engine (unit mobility).
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
    """
    if not isinstance(ensemble, (FixedLengthEnsemble, FlexibleLengthEnsemble)):
        raise ValueError(f"ensemble: expected a FixedLengthEnsemble or FlexibleLengthEnsemble, got {type(ensemble).__name__}")
    kT = check_positive(kT, "kT")
    dt = check_positive(dt, "dt")
    n_chains = check_positive_int(n_chains, "n_chains")
    n_rounds = check_positive_int(n_rounds, "n_rounds")
    save_every = check_positive_int(save_every, "save_every")
    if isinstance(burn_in, bool) or int(burn_in) != burn_in or not 0 <= burn_in < n_rounds:
        raise ValueError(f"burn_in: expected an integer in [0, n_rounds={n_rounds}), got {burn_in!r}")
    if keep not in ("chain", "accepted"):
        raise ValueError(f"keep: expected 'chain' or 'accepted', got {keep!r}")
    if time_limit_s is not None:
        time_limit_s = check_positive(time_limit_s, "time_limit_s")
    fixed = isinstance(ensemble, FixedLengthEnsemble)
    initial, which = _initial_paths(potential, ensemble, initial_path, n_chains)
    if executor is not None:
        from tps.baselines.chains import shooting_tasks

        kw = dict(kT=kT, dt=dt, n_rounds=n_rounds, burn_in=burn_in, save_every=save_every, keep=keep,
                  time_limit_s=time_limit_s, length_metropolis=length_metropolis)
        return shooting_tasks(potential, ensemble, [initial[i] for i in which], executor=executor, seed=seed,
                              task_size=task_size, checkpoint=checkpoint, progress=progress, kw=kw)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None

    t0 = time.perf_counter()
    before = potential.n_evals
    evaluated = [(p, *potential.energy_and_forces(p), torch.zeros(p.shape[0], dtype=torch.int64)) for p in initial]
    # Chain states: frames, energies, forces, birth stamps (round that generated each frame).
    chains = [evaluated[i] for i in which]
    reference = [0] * n_chains  # birth round of the last decorrelated path (0: the initial one)
    n_acc = [0] * n_chains
    n_dec = [0] * n_chains
    first_decorrelated = [None] * n_chains  # round of each chain's first path sharing no frame with its initial one
    outcomes = ({"accepted": 0, "not_in_A": 0, "not_in_B": 0} if fixed else
                {"accepted": 0, "forward_in_A": 0, "backward_in_B": 0, "too_long": 0})
    saved = []  # (frames, energies, chain, round)
    trial_lengths = []
    accepted_per_round = []
    n_rounds_run = 0
    for rnd in range(1, n_rounds + 1):
        lengths = torch.tensor([c[0].shape[0] for c in chains])
        k = (torch.rand(n_chains, generator=generator, dtype=torch.float64) * (lengths - 2)).long() + 1
        xk = torch.stack([c[0][kc] for c, kc in zip(chains, k.tolist())])
        fk = torch.stack([c[2][kc] for c, kc in zip(chains, k.tolist())])
        x0, ff0 = torch.cat([xk, xk]), torch.cat([fk, fk])
        if fixed:
            segs, _, _ = _propagate(potential, x0, ff0, kT=kT, dt=dt, generator=generator,
                                    n_steps=torch.cat([lengths - 1 - k, k]))
            last = torch.stack([s[0][-1] for s in segs])
            accept = ensemble.state_b(last[:n_chains]) & ensemble.state_a(last[n_chains:])
            not_a = ~ensemble.state_a(last[n_chains:])
            outcomes["accepted"] += int(accept.sum())
            outcomes["not_in_A"] += int(not_a.sum())
            outcomes["not_in_B"] += int((~accept & ~not_a).sum())
        else:
            u = torch.rand(n_chains, generator=generator, dtype=torch.float64).clamp(min=1e-300)
            caps = torch.clamp(2 + torch.floor((lengths - 2).double() / u), max=ensemble.max_frames).long()
            if not length_metropolis:
                caps = torch.full_like(caps, ensemble.max_frames)
            segs, end, aborted = _propagate(potential, x0, ff0, kT=kT, dt=dt, generator=generator,
                                            ensemble=ensemble, caps=caps)
            n_new = 1 + torch.tensor([len(s[0]) for s in segs[:n_chains]]) + torch.tensor(
                [len(s[0]) for s in segs[n_chains:]])
            accept = ~aborted & (end[:n_chains] == 2) & (end[n_chains:] == 1) & (n_new <= caps)
            fw_a, bw_b = end[:n_chains] == 1, end[n_chains:] == 2
            outcomes["accepted"] += int(accept.sum())
            outcomes["forward_in_A"] += int(fw_a.sum())
            outcomes["backward_in_B"] += int((bw_b & ~fw_a).sum())
            outcomes["too_long"] += int((~accept & ~fw_a & ~bw_b).sum())
        for c in accept.nonzero().flatten().tolist():
            fw, bw = segs[c], segs[n_chains + c]
            kc = int(k[c])
            old = chains[c]
            frames = torch.cat([bw[0].flip(0), old[0][kc:kc + 1], fw[0]])
            energies = torch.cat([bw[1].flip(0), old[1][kc:kc + 1], fw[1]])
            forces = torch.cat([bw[2].flip(0), old[2][kc:kc + 1], fw[2]])
            birth = torch.cat([torch.full((len(bw[0]),), rnd), old[3][kc:kc + 1], torch.full((len(fw[0]),), rnd)])
            chains[c] = (frames, energies, forces, birth)
            n_acc[c] += 1
            if int(birth.min()) > reference[c]:
                n_dec[c] += 1
                reference[c] = rnd
                first_decorrelated[c] = rnd if first_decorrelated[c] is None else first_decorrelated[c]
        trial_lengths.append(1 + torch.tensor([len(s[0]) for s in segs[:n_chains]])
                             + torch.tensor([len(s[0]) for s in segs[n_chains:]]))
        accepted_per_round.append(int(accept.sum()))
        n_rounds_run = rnd
        if rnd > burn_in:
            if keep == "chain" and (rnd - burn_in - 1) % save_every == 0:
                saved.extend((chains[c][0], chains[c][1], c, rnd) for c in range(n_chains))
            elif keep == "accepted":
                saved.extend((chains[c][0], chains[c][1], c, rnd) for c in accept.nonzero().flatten().tolist())
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            break
    n_evals = potential.n_evals - before
    if not saved:  # nothing accepted after the burn-in (keep="accepted") or stopped early: keep chain states
        saved = [(chains[c][0], chains[c][1], c, n_rounds_run) for c in range(n_chains)]
    frames, energies, lens = pad_paths([s[0] for s in saved], [s[1] for s in saved])
    n_trials = n_chains * n_rounds_run
    n_accepted, n_decorrelated = sum(n_acc), sum(n_dec)
    info = {
        "sampler": "two-way-shooting", "ensemble": "fixed" if fixed else "flexible", "dt": dt,
        "n_chains": n_chains, "n_rounds": n_rounds_run, "burn_in": burn_in, "keep": keep,
        "accepted_per_chain": n_acc, "accepted_per_round": accepted_per_round, "decorrelated_per_chain": n_dec,
        "final_decorrelated_from_initial": sum(int(c[3].min()) > 0 for c in chains),
        "first_decorrelated_round": first_decorrelated, "length_metropolis": bool(length_metropolis),
        "outcomes": outcomes,
        "mean_trial_frames": float(torch.cat(trial_lengths).double().mean()),
        "n_initial_frames": sum(p.shape[0] for p in initial), "wall_s": time.perf_counter() - t0,
    }
    paths = Paths(frames, energies, n_evals, kT, {
        **info, "lengths": lens, "chain": torch.tensor([s[2] for s in saved]),
        "round": torch.tensor([s[3] for s in saved]),
        "note": "padded by repeating each path's last frame; lengths holds the true frame counts",
    })
    info["final_chains"] = [c[0] for c in chains]  # each chain's last path (to continue it), not in paths.info
    return ShootingResult(
        paths=paths, n_energy_evals=n_evals, n_trials=n_trials, n_accepted=n_accepted,
        n_decorrelated=n_decorrelated, acceptance_rate=n_accepted / n_trials,
        evals_per_accepted_path=n_evals / n_accepted if n_accepted else None,
        evals_per_decorrelated_path=n_evals / n_decorrelated if n_decorrelated else None, info=info,
    )
