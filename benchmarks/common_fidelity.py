"""Pieces of ``python -m benchmarks fidelity`` (:mod:`benchmarks.fidelity`): the crossing band, the
transition segments with their path index, and the all-atom (``aldp-cartesian``) arm.

The 2-D systems' arm lives in :mod:`benchmarks.fidelity`; the all-atom one here
(:func:`cartesian_arm`): the geodesic of the pretrained model and its paths come from
:func:`tps.pipeline.run_method` (the row of ``tps run alanine-dipeptide``), the frames are compared
in (phi, psi) with states A = C5 | C7eq, B = C7ax (:func:`benchmarks.common_cartesian.transition_states`)
on 36 x 36 periodic bins, and continuity is the all-atom Kabsch RMSD between consecutive frames
against plain OpenMM MD at the same frame spacing.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import torch

from benchmarks.common import same_description, transition_frames
from tps.metrics import path_density_jsd

#: Half-width of the crossing slab: |phi| < 0.3 rad (aldp), distance 0.05 from the dividing line (Muller-Brown).
SLAB = {"muller-brown": 0.05, "aldp-2d": 0.3, "aldp-cartesian": 0.3}
#: Histogram bins per axis of the all-atom (phi, psi) JSD (as benchmarks/aldp_cartesian.py).
CARTESIAN_JSD_BINS = 36
#: Bins per axis of ``jsd_coarse`` (less dominated by the sampling noise of short ensembles).
COARSE_BINS = {"muller-brown": 20, "aldp-2d": 20, "aldp-cartesian": 18}


def _mb_saddle_frame():
    from tps.potentials import MullerBrown

    pot = MullerBrown()
    s1 = pot.saddle("S1")
    s = torch.tensor([s1.x, s1.y], dtype=torch.float64)
    h = torch.autograd.functional.hessian(lambda z: pot.energy(z[None])[0], s)
    w, v = torch.linalg.eigh(h)           # ascending: the unstable (negative) direction first
    stable = v[:, 1] if float(v[1, 1]) >= 0 else -v[:, 1]
    return s, v[:, 0], stable


def crossing_values(short: str, frames: torch.Tensor) -> tuple:
    """(values, mask) of the crossing coordinate for frames ``(n, 2)`` (:mod:`benchmarks.fidelity`).

    aldp (``aldp-2d``, ``aldp-cartesian``; frames in (phi, psi), rad): psi of the frames with
    ``|phi| < 0.3``. Muller-Brown: the signed distance from the saddle S1 along its stable
    eigenvector, for the frames within 0.05 of the dividing line.

    Examples
    --------
    >>> f = torch.tensor([[0.1, -0.5 + 2 * math.pi], [1.0, 0.0]], dtype=torch.float64)
    >>> crossing_values("aldp-2d", f)                # psi (wrapped) of the frames with |phi| < 0.3
    (tensor([-0.5000], dtype=torch.float64), tensor([ True, False]))
    >>> s, _, stable = _mb_saddle_frame()
    >>> v, m = crossing_values("muller-brown", torch.stack([s, s + 0.2 * stable, s + torch.tensor([0.5, 0.0])]))
    >>> [round(x, 6) for x in v.tolist()], m.tolist()    # along the stable eigenvector, in the slab only
    ([0.0, 0.2], [True, True, False])
    """
    f = torch.as_tensor(frames).double()
    if short == "muller-brown":
        s, unstable, stable = _mb_saddle_frame()
        d = f - s
        mask = (d @ unstable).abs() < SLAB[short]
        return (d @ stable)[mask], mask
    phi = torch.remainder(f[:, 0] + math.pi, 2 * math.pi) - math.pi
    psi = torch.remainder(f[:, 1] + math.pi, 2 * math.pi) - math.pi
    mask = phi.abs() < SLAB[short]
    return psi[mask], mask


def band(values: np.ndarray, groups: np.ndarray, n_boot: int, seed: int = 0) -> dict:
    """Median and 5-95 % range of ``values`` with bootstrap standard errors over whole ``groups`` (paths or chains).

    Examples
    --------
    >>> v = np.linspace(0.0, 1.0, 101)
    >>> b = band(v, np.arange(101) // 10, n_boot=20)
    >>> round(b["median"], 2), round(b["width"], 2), b["n_groups"], b["width_se"] > 0
    (0.5, 0.9, 11, True)
    >>> band(v[:5], np.zeros(5), n_boot=20)          # too few frames for quantiles
    {'n_frames': 5}
    """
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    if len(values) < 10:
        return {"n_frames": int(len(values))}

    def stats(v):
        q = np.quantile(v, [0.05, 0.5, 0.95])
        return np.array([q[1], q[0], q[2], q[2] - q[0]])

    est = stats(values)
    ids, inv = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inv == i) for i in range(len(ids))]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(ids), len(ids))
        boots.append(stats(values[np.concatenate([members[i] for i in pick])]))
    se = np.std(boots, axis=0, ddof=1) if n_boot > 1 else np.full(4, float("nan"))
    keys = ("median", "q05", "q95", "width")
    return {"n_frames": int(len(values)), "n_groups": int(len(ids)), **{k: float(v) for k, v in zip(keys, est)},
            **{f"{k}_se": float(v) for k, v in zip(keys, se)}}


def segment_groups(paths, state_a, state_b) -> torch.Tensor:
    """Path index of each frame :func:`benchmarks.common.transition_frames` returns (same order)."""
    n_paths, n_frames = paths.frames.shape[:2]
    ids = torch.arange(n_paths)[:, None].expand(n_paths, n_frames).double()[..., None]
    tagged = type(paths)(torch.cat([paths.frames, ids], -1), paths.energies, paths.n_energy_evals, paths.kT, {})

    def strip(v):
        return lambda f: v(f[..., :-1])

    out = transition_frames(tagged, strip(state_a), strip(state_b))
    return None if out is None else out[:, -1].long()


def transition_cv(paths, state_a, state_b, cv) -> tuple:
    """``(cv frames (n, d), path index (n,))`` of the transition-segment frames of paths of any
    frame shape (e.g. positions ``(n_paths, n_frames, n_atoms, 3)``); ``(None, None)`` if no path
    reaches B. The states act on the paths' own frames.

    Examples
    --------
    >>> from tps.sampling import Paths
    >>> from tps.states import Ball
    >>> x = torch.tensor([[[0.0], [0.5], [0.4], [1.0]], [[0.0], [0.2], [0.2], [0.2]]], dtype=torch.float64)
    >>> p = Paths(x, torch.zeros(2, 4), 0, 1.0)
    >>> a, b = Ball(torch.zeros(1), 0.1), Ball(torch.ones(1), 0.1)
    >>> f, g = transition_cv(p, a, b, lambda f: 10 * f)
    >>> f[:, 0].tolist(), g.tolist()                  # path 0 only (path 1 never reaches B)
    ([0.0, 5.0, 4.0, 10.0], [0, 0, 0, 0])
    """
    in_a, in_b = state_a(paths.frames), state_b(paths.frames)
    x = torch.as_tensor(cv(paths.frames)).double()
    n_paths, n_frames = in_a.shape
    ids = torch.arange(n_paths, dtype=torch.float64)[:, None, None].expand(n_paths, n_frames, 1)
    tagged = SimpleNamespace(frames=torch.cat([x.reshape(n_paths, n_frames, -1), ids], -1), info=paths.info)
    out = transition_frames(tagged, lambda f: in_a, lambda f: in_b)  # the masks of the paths' own frames
    return (None, None) if out is None else (out[:, :-1], out[:, -1].long())


# ------------------------------------------------------------------ all-atom alanine dipeptide
def cartesian_states(sy) -> tuple:
    """(A, B, jsd keyword arguments) of aldp-cartesian: A = C5 | C7eq, B = C7ax (acting on positions, nm)."""
    from benchmarks.common_cartesian import transition_states

    a, b = transition_states(sy.states)
    return a, b, {"bins": CARTESIAN_JSD_BINS, "ranges": ((-math.pi, math.pi),) * 2,
                  "periods": (2 * math.pi, 2 * math.pi)}



def check_cartesian_reference(meta: dict, sy) -> None:
    """ValueError (naming ``--reference``) when an aldp-cartesian reference was made with other states
    (:func:`benchmarks.common_cartesian.state_description`) or at another temperature.

    Examples
    --------
    >>> from tps.systems import load
    >>> from benchmarks.common_cartesian import state_description
    >>> sy = load("alanine-dipeptide", platform="Reference")
    >>> check_cartesian_reference({"kT": sy.kT, "states": state_description(sy.states)}, sy)
    >>> check_cartesian_reference({"kT": sy.kT, "states": {"A": "C5 only"}}, sy)
    Traceback (most recent call last):
    ...
    ValueError: --reference: made with other states ('C5 only', B at None) than this benchmark's (A = C5 | C7eq, B = C7ax, radius 0.75 rad)
    """
    from benchmarks.common_cartesian import state_description

    kT = meta.get("kT")
    if kT is not None and not math.isclose(float(kT), float(sy.kT), rel_tol=1e-9):
        raise ValueError(f"--reference: made at kT = {kT}, not this system's {sy.kT}")
    st = meta.get("states") or {}
    if not same_description(st, state_description(sy.states)):
        raise ValueError(f"--reference: made with other states ({st.get('A')!r}, B at {st.get('B_centre_rad')}) "
                         f"than this benchmark's (A = C5 | C7eq, B = C7ax, radius 0.75 rad)")


def frame_steps(frames: torch.Tensor) -> torch.Tensor:
    """All-atom Kabsch RMSD between consecutive frames, ``(n_chains, n_frames - 1)`` nm, of frames
    ``(n_chains, n_frames, n_atoms, 3)``."""
    from tps.metrics.molecular import consecutive_frame_rmsd

    return consecutive_frame_rmsd(frames[:, :-1], frames[:, 1:])


def md_frame_steps(sy, starts, *, n_steps: int, every: int, timestep: float, friction: float, seed: int) -> dict:
    """Plain OpenMM MD (no restraint): one chain of ``n_steps`` steps from each of ``starts``
    ``(n, n_atoms, 3)`` nm, a frame every ``every`` steps.

    Returns
    -------
    dict
        ``md_max_step`` (largest consecutive-frame RMSD over all chains, nm), ``md_max_step_path_median``
        (median over chains of each chain's largest) and ``md_max_energy_mean`` (mean over chains of each
        chain's largest force-field energy, kJ/mol; the thermal level of ``max_energy_mean``).

    Examples
    --------
    Frames 5 steps apart move less than frames 25 steps apart (two chains from the C5 minimum):

    >>> from tps.systems import load
    >>> sy = load("alanine-dipeptide", platform="Reference")
    >>> x = np.stack([sy.prepared_endpoints().start] * 2)
    >>> near, far = (md_frame_steps(sy, x, n_steps=100, every=e, timestep=0.002, friction=1.0, seed=0) for e in (5, 25))
    >>> near["md_max_step"] < far["md_max_step"] < 0.1
    True
    """
    from tps.metrics.molecular import openmm_energies
    from tps.sampling.md import md_samples

    system = sy.openmm_system()
    data = md_samples(system, sy.omm_topology, np.asarray(starts), n_steps=n_steps, report_interval=every,
                      temperature=sy.temperature, timestep=timestep, friction=friction, seed=seed)
    x = torch.as_tensor(data.positions).double().reshape(len(starts), n_steps // every, *np.shape(starts)[1:])
    per_chain = frame_steps(x).max(1).values
    energy = torch.as_tensor(openmm_energies(system, x)).reshape(x.shape[:2]).max(1).values
    return {"md_max_step": float(per_chain.max()), "md_max_step_path_median": float(per_chain.median()),
            "md_max_energy_mean": float(energy.mean())}


def matched_floor(reference: torch.Tensor, n_frames: int, block: int, jsd_kw: dict, *, n_draws: int = 5,
                  seed: int = 0) -> float:
    """JSD (bits) of ``n_frames`` reference frames, drawn as random runs of ``block`` consecutive frames
    (about one path's transition segment each), against the rest, averaged over ``n_draws`` draws: the
    JSD an arm of that many frames would show if it were the reference ensemble (its sampling floor).

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> ref = torch.rand(20000, 2, generator=g, dtype=torch.float64)
    >>> kw = {"bins": 10, "ranges": ((0.0, 1.0), (0.0, 1.0))}
    >>> small, large = (matched_floor(ref, n, 10, kw) for n in (200, 5000))
    >>> small > large                                  # fewer frames, larger floor
    True
    """
    rng = np.random.default_rng(seed)
    n_frames, block = max(int(n_frames), 1), max(int(block), 1)
    values = []
    for _ in range(n_draws):
        starts = rng.choice(max(len(reference) - block, 1), max(n_frames // block, 1), replace=False)
        mask = np.zeros(len(reference), dtype=bool)
        mask[np.minimum(starts[:, None] + np.arange(block), len(reference) - 1).ravel()] = True
        values.append(path_density_jsd(reference[torch.as_tensor(mask)], reference[torch.as_tensor(~mask)], **jsd_kw))
    return float(np.mean(values))


def cartesian_arm(sy, model, protocols, *, curve, seed, refs, states, n_boot, label) -> tuple:
    """One all-atom arm: :func:`tps.pipeline.run_method` ``"spacetime-geodesic"`` (solving the geodesic when
    ``curve`` is None, else sampling along it), then the fidelity figures. Returns ``(row, curve)``."""
    from tps.pipeline import run_method

    A, B, jsd_kw = states
    s = protocols.sampler
    t0 = time.perf_counter()
    res = run_method(sy, "spacetime-geodesic", model=model, protocols=protocols, curve=curve, seed=seed, label=label)
    paths, summary = res.paths, res.row
    steps = frame_steps(paths.frames).max(1).values
    row = {"sampler": {k: v for k, v in s.as_dict().items() if k != "save_paths"}, "n_paths": s.n_paths,
           "n_energy_evals": int(paths.n_energy_evals), "wall_s": res.timings["sampling_s"],
           "geodesic_s": res.timings["geodesic_s"], "target_hit_fraction": float(summary["target_hit_fraction"]),
           "max_step": float(steps.max()), "max_step_path_median": float(steps.median()),
           "max_energy_mean": float(summary["max_energy_mean"])}
    frames, groups = transition_cv(paths, A, B, B.cv)
    if frames is None:
        row["note"] = "no path reached B"
        return row, res.curve
    for k, ref in refs.items():
        row[f"path_density_jsd_{k}"] = path_density_jsd(frames, ref["frames"], **jsd_kw)
        coarse = dict(jsd_kw, bins=COARSE_BINS["aldp-cartesian"])
        row[f"jsd_coarse_{k}"] = path_density_jsd(frames, ref["frames"], **coarse)
    block = int(np.median(np.bincount(groups.numpy())[np.bincount(groups.numpy()) > 0]))
    for k, ref in refs.items():  # the same number of frames and segment length drawn from the reference
        row[f"floor_matched_{k}"] = matched_floor(ref["frames"].double(), len(frames), block, jsd_kw)
    half = groups < s.n_paths // 2
    if bool(half.any()) and not bool(half.all()):  # the arm's own sampling noise at half its paths
        row["split_half_jsd"] = path_density_jsd(frames[half], frames[~half], **jsd_kw)
    vals, mask = crossing_values("aldp-cartesian", frames)
    row["crossing"] = band(vals.numpy(), groups[mask].numpy(), n_boot)
    row["segments"] = {"frames": frames.float().numpy(), "path": groups.numpy()}  # written by the runner
    # plain MD from the arm's transition-segment structures: the same number of chains, steps per path and frame
    # spacing as the arm
    pos, _ = transition_cv(paths, A, B, lambda f: f.reshape(*f.shape[:2], -1))
    pick = torch.linspace(0, len(pos) - 1, s.n_paths).round().long()
    n_steps = (paths.frames.shape[1] - 1) // s.frames_per_point * s.steps_per_point
    row.update(md_frame_steps(sy, pos[pick].reshape(s.n_paths, -1, 3).numpy(), n_steps=n_steps,
                              every=s.steps_per_point // s.frames_per_point, timestep=s.timestep, friction=s.friction,
                              seed=seed + 7))
    row["continuous"] = bool(row["max_step"] <= row["md_max_step"])
    row["continuous_path_median"] = bool(row["max_step_path_median"] <= row["md_max_step_path_median"])
    row["arm_wall_s"] = time.perf_counter() - t0
    return row, res.curve
