"""Path-ensemble metrics, exactly as defined in benchmarks.md section 1.

All functions take a :class:`~tps.sampling.Paths` (or plain tensors) and return plain numbers
or tensors; names match the keys written to ``results.json``.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

from tps.states import periodic_difference


def _energies(paths):
    e = paths.energies if hasattr(paths, "energies") else torch.as_tensor(paths)
    if e.dim() != 2:
        raise ValueError(f"paths: expected energies of shape (n_paths, n_frames), got {tuple(e.shape)}")
    lengths = getattr(paths, "info", {}).get("lengths") if hasattr(paths, "info") else None
    if lengths is not None:
        idx = torch.arange(e.shape[1])[None]
        e = torch.where(idx < torch.as_tensor(lengths)[:, None], e, torch.full_like(e, -math.inf))
    return e


def max_energy(paths) -> torch.Tensor:
    """Largest potential energy over each path's frames, shape ``(n_paths,)``."""
    return _energies(paths).max(1).values


def minmax(paths) -> float:
    """Best path: min over paths of the max energy along the path."""
    return float(max_energy(paths).min())


def barrier(paths) -> torch.Tensor:
    """Max energy minus the energy of the path's first frame, shape ``(n_paths,)``."""
    e = _energies(paths)
    return e.max(1).values - e[:, 0]


def frame_steps(paths, *, periods: Optional[Sequence] = None, distance: Optional[Callable] = None) -> torch.Tensor:
    """Distance between consecutive frames, shape ``(n_paths, n_frames - 1)``.

    Default: Euclidean norm of the (periodic, if ``periods``) difference over the event
    coordinates. ``distance(a, b) -> (..,)`` overrides it (e.g. Kabsch RMSD for molecules).
    Padded frames of variable-length paths repeat the last frame and so add zero steps.
    """
    f = paths.frames if hasattr(paths, "frames") else torch.as_tensor(paths)
    a, b = f[:, :-1], f[:, 1:]
    if distance is not None:
        return distance(a, b)
    d = periodic_difference(a, b, periods) if periods is not None else b - a
    return d.flatten(2).norm(dim=-1)


def max_step(paths, **kw) -> float:
    """Largest distance between consecutive frames over all paths (the continuity check)."""
    return float(frame_steps(paths, **kw).max())


def final_frames(paths) -> torch.Tensor:
    f = paths.frames
    lengths = paths.info.get("lengths") if hasattr(paths, "info") else None
    if lengths is None:
        return f[:, -1]
    idx = torch.as_tensor(lengths) - 1
    return f[torch.arange(f.shape[0]), idx]


def target_hit_fraction(paths, target) -> float:
    """Fraction of paths whose last frame lies in the ``target`` volume.

    For alanine dipeptide the target is a :class:`~tps.states.Ball` of radius 0.75 rad in
    (phi, psi) with periodic differences; for Muller-Brown a disk of radius 0.1.
    """
    return float(target(final_frames(paths)).double().mean())


def summarize(paths, *, method: str, target, periods=None, distance=None, n_training_energy_evals: int = 0,
              wall_s: float = float("nan"), geodesic_wall_s: float = float("nan"), **extra) -> dict:
    """One row of ``results.json`` (keys of benchmarks.md section 1)."""
    me = max_energy(paths)
    row = {
        "method": method,
        "n_paths": int(paths.n_paths),
        "max_energy_mean": float(me.mean()),
        "max_energy_std": float(me.std(unbiased=True)) if me.numel() > 1 else 0.0,
        "minmax": float(me.min()),
        "barrier_mean": float(barrier(paths).mean()),
        "max_step": max_step(paths, periods=periods, distance=distance),
        "target_hit_fraction": target_hit_fraction(paths, target),
        "n_energy_evals": int(paths.n_energy_evals),
        "n_training_energy_evals": int(n_training_energy_evals),
        "wall_s": float(wall_s),
        "geodesic_wall_s": float(geodesic_wall_s),
    }
    row.update(extra)
    return row
