"""Compare an OpenPathSampling path ensemble (read back by ``ops_to_tps.py``) with a ``tps`` ensemble.

Both ensembles are cut to their A -> B transition segments (from the last frame in A before the
first entry into B, to that entry; :func:`tps.baselines.trim_to_transition`) under the same states
(``states.json`` of :func:`tps.interop.ops.export_ops`, or the system's default states), then
compared by:

- ``path_density_jsd``: Jensen-Shannon divergence (bits) of the frame densities in the CV plane
  (:func:`tps.metrics.path_density_jsd`, 36 x 36 periodic bins over ``[-pi, pi)^2`` by default);
- ``max_energy``: each path's highest force-field energy, recomputed with OpenMM
  (:func:`tps.metrics.molecular.openmm_energies`; OPS snapshots carry no energies), kJ/mol;
- ``crossing``: the CV values (phi, psi) of each path's highest-energy frame, their circular
  mean and circular standard deviation (rad): where the paths cross the barrier.

An OPS file written with ``--mode accepted`` carries ``info["multiplicity"]`` (steps each path
stayed active); with ``weighted=True`` every path counts that many times, the Markov-chain
average.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

__all__ = ["transition_segments", "ensemble_summary", "compare_ensembles", "noise_floor"]


def transition_segments(paths, state_a, state_b, *, name: str = "paths") -> tuple:
    """``(segments, kept)``: each path's A -> B transition segment, float64 ``(n_i, n_atoms, 3)``.

    Paths without a transition are dropped; ``kept`` lists the indices of the others.

    Raises
    ------
    ValueError
        If no path goes from A to B.
    """
    from tps.baselines.openmm_engine import trim_to_transition
    from tps.interop.ops import _per_path

    segments, kept = [], []
    per_path = _per_path(paths)
    for i, p in enumerate(per_path):
        try:
            segments.append(trim_to_transition(p, state_a, state_b))
        except ValueError:
            continue
        kept.append(i)
    if not segments:
        raise ValueError(f"{name}: none of its {len(per_path)} paths goes from state A to state B")
    return segments, kept


def _definitions(system, states) -> dict:
    """``states.json`` content: ``states`` itself (dict), read from a file, or the system's defaults (None)."""
    from tps.interop.ops import read_states, state_definitions

    if states is None:
        return state_definitions(system)
    return states if isinstance(states, dict) else read_states(states)


def _circular(angles: np.ndarray) -> tuple:
    """Circular mean and circular standard deviation ``sqrt(-2 ln R)`` along axis 0, rad."""
    z = np.exp(1j * angles).mean(0)
    r = np.clip(np.abs(z), 1e-12, 1.0)
    return np.angle(z), np.sqrt(-2.0 * np.log(r))


def ensemble_summary(segments, cv, openmm_system, *, weights=None, platform="auto") -> dict:
    """Per-ensemble figures of transition segments.

    Parameters
    ----------
    segments : list of Tensor ``(n_i, n_atoms, 3)``, nm
    cv : callable
        Positions ``(n, n_atoms, 3)`` -> ``(n, 2)`` rad.
    openmm_system : openmm.System
    weights : sequence of int, optional
        Repeat count of each segment (default 1).
    platform : str
        OpenMM platform of the energy evaluation.

    Returns
    -------
    dict
        ``n_paths`` (distinct), ``n_weighted``, ``n_frames`` (weighted), ``length_mean`` (frames),
        ``max_energy_mean``/``_std``/``_median`` (kJ/mol), ``crossing_phi_psi`` (circular mean,
        rad), ``crossing_spread`` (circular std, rad), plus ``frames`` (weighted, for the JSD)
        and ``max_energies``.
    """
    import torch

    from tps.metrics.molecular import openmm_energies

    w = np.ones(len(segments), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    if len(w) != len(segments) or (w < 1).any():
        raise ValueError(f"weights: expected {len(segments)} positive counts, got {list(w)}")
    maxima, tops = [], []
    # one OpenMM Context for all frames, not one per segment
    energies = np.split(openmm_energies(openmm_system, torch.cat(list(segments)), platform=platform),
                        np.cumsum([len(seg) for seg in segments])[:-1])
    for seg, e in zip(segments, energies):
        k = int(np.argmax(e))
        maxima.append(float(e[k]))
        tops.append(seg[k])
    maxima = np.repeat(np.asarray(maxima), w)
    cross = cv(torch.stack(tops)).detach().cpu().double().numpy()
    mean, spread = _circular(np.repeat(cross, w, axis=0))
    frames = torch.cat([seg for seg, k in zip(segments, w) for _ in range(int(k))])
    return {"n_paths": len(segments), "n_weighted": int(w.sum()), "n_frames": int(frames.shape[0]),
            "length_mean": float(np.repeat([len(s) for s in segments], w).mean()),
            "max_energy_mean": float(maxima.mean()), "max_energy_std": float(maxima.std(ddof=1)) if len(maxima) > 1
            else 0.0, "max_energy_median": float(np.median(maxima)),
            "crossing_phi_psi": mean.tolist(), "crossing_spread": spread.tolist(),
            "frames": frames, "max_energies": maxima}


def compare_ensembles(ops_paths, tps_paths, system, *, states=None, bins: int = 36, weighted: bool = True,
                      platform="auto") -> dict:
    """Compare an OPS ensemble with a ``tps`` ensemble on their transition segments.

    Parameters
    ----------
    ops_paths, tps_paths : Paths
        E.g. ``tps.io.load_paths("ops_paths.h5")`` and the paths of a ``tps run`` directory;
        frames ``(n_paths, n_frames, n_atoms, 3)`` nm.
    system : tps.systems.System
        The molecule (its OpenMM system gives the energies).
    states : dict or str or Path, optional
        ``states.json`` (content or file) of the export; default: the system's default
        states (:func:`tps.interop.ops.state_definitions`).
    bins : int
        JSD histogram bins per CV.
    weighted : bool
        Weight OPS paths by ``info["multiplicity"]`` when present.
    platform : str
        OpenMM platform.

    Returns
    -------
    dict
        ``{"ops": summary, "tps": summary, "path_density_jsd": float, "max_energy_difference":
        float (ops - tps mean, kJ/mol), "crossing_distance": float (periodic distance of the
        crossing means, rad), "states": definitions}``; summaries as :func:`ensemble_summary`
        without ``frames``/``max_energies``.

    Raises
    ------
    ValueError
        Frames with the wrong atom count, or an ensemble without an A -> B path.
    """
    import torch

    from tps.interop.ops import states_from_definitions
    from tps.metrics import path_density_jsd
    from tps.potentials.openmm import dihedrals
    from tps.states import periodic_difference

    definitions = _definitions(system, states)
    a, b = states_from_definitions(definitions)
    indices = np.asarray(definitions["cv"]["atom_indices"])
    periods = definitions["cv"]["periods"] or [None, None]

    def cv(x):
        return dihedrals(x, indices)

    n_atoms = system.potential.system.getNumParticles()
    out = {}
    for name, ens in (("ops", ops_paths), ("tps", tps_paths)):
        shape = tuple(ens.frames.shape)
        if len(shape) != 4 or shape[2:] != (n_atoms, 3):
            raise ValueError(f"{name}_paths: expected frames (n_paths, n_frames, {n_atoms}, 3) in nm, got {shape}")
        segments, kept = transition_segments(ens, a, b, name=f"{name}_paths")
        weights = None
        mult = (getattr(ens, "info", None) or {}).get("multiplicity")
        if name == "ops" and weighted and mult is not None:
            weights = [int(mult[i]) for i in kept]
        out[name] = ensemble_summary(segments, cv, system.potential.system, weights=weights, platform=platform)
        out[name]["n_without_transition"] = int(ens.frames.shape[0]) - len(kept)
    ranges = [(-math.pi, math.pi)] * 2  # dihedrals, rad
    jsd = path_density_jsd(cv(out["ops"]["frames"]), cv(out["tps"]["frames"]), bins=bins, ranges=ranges,
                           periods=periods)  # 2-D input: pooled (n_frames, 2) CV values
    diff = periodic_difference(torch.tensor(out["tps"]["crossing_phi_psi"]),
                               torch.tensor(out["ops"]["crossing_phi_psi"]), periods)
    result = {"path_density_jsd": float(jsd),
              "max_energy_difference": out["ops"]["max_energy_mean"] - out["tps"]["max_energy_mean"],
              "crossing_distance": float(diff.norm()), "bins": int(bins), "weighted": bool(weighted),
              "states": definitions}
    for name in ("ops", "tps"):
        result[name] = {k: v for k, v in out[name].items() if k not in ("frames", "max_energies")}
    return result


def noise_floor(paths, system, *, states=None, bins: int = 36, weighted: bool = True,
                seed: Optional[int] = 0) -> float:
    """JSD between two random halves of one ensemble's transition segments (the sampling-noise level).

    Parameters
    ----------
    paths : Paths
    system : tps.systems.System
    states : dict or str or Path, optional
        As in :func:`compare_ensembles`.
    bins : int
    weighted : bool
        Repeat each path ``info["multiplicity"]`` times (when present) within its half, as
        :func:`compare_ensembles` does.
    seed : int, optional
        Seed of the random split of the distinct paths.

    Returns
    -------
    float
        bits, in ``[0, 1]``.

    Raises
    ------
    ValueError
        Fewer than two paths go from A to B.
    """
    import torch

    from tps.interop.ops import states_from_definitions
    from tps.metrics import path_density_jsd
    from tps.potentials.openmm import dihedrals

    definitions = _definitions(system, states)
    a, b = states_from_definitions(definitions)
    segments, kept = transition_segments(paths, a, b)
    if len(segments) < 2:
        raise ValueError("paths: need at least two transition paths for a noise floor")
    mult = (getattr(paths, "info", None) or {}).get("multiplicity")
    weights = [int(mult[i]) for i in kept] if weighted and mult is not None else [1] * len(kept)
    order = np.random.default_rng(seed).permutation(len(segments))
    half = len(order) // 2
    indices = np.asarray(definitions["cv"]["atom_indices"])
    first, second = (torch.cat([segments[i] for i in part for _ in range(weights[i])])
                     for part in (order[:half], order[half:]))
    return float(path_density_jsd(dihedrals(first, indices), dihedrals(second, indices), bins=bins,
                                  ranges=[(-math.pi, math.pi)] * 2, periods=definitions["cv"]["periods"]))
