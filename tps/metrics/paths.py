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
    """Largest potential energy over each path's frames.

    Parameters
    ----------
    paths : Paths or Tensor
        A :class:`~tps.sampling.Paths`, or its energies as a Tensor ``(n_paths, n_frames)``.
        Padded frames of variable-length paths (``paths.info["lengths"]``) are ignored.

    Returns
    -------
    Tensor, shape ``(n_paths,)``
        In the potential's energy unit (kJ/mol for molecules, dimensionless for Muller-Brown).

    Raises
    ------
    ValueError
        If the energies are not two-dimensional.

    Examples
    --------
    The straight line from A to B crosses the ridge between them:

    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)
    >>> line = A + torch.linspace(0, 1, 11, dtype=torch.float64)[:, None] * (B - A)  # (11, 2)
    >>> paths = Paths(line[None], MullerBrown().energy(line[None]), n_energy_evals=11, kT=12.5)
    >>> max_energy(paths)
    tensor([12.6045], dtype=torch.float64)
    """
    return _energies(paths).max(1).values


def minmax(paths) -> float:
    """Best path: min over paths of the max energy along the path.

    Parameters
    ----------
    paths : Paths or Tensor
        A :class:`~tps.sampling.Paths`, or its energies as a Tensor ``(n_paths, n_frames)``.
        Padded frames of variable-length paths (``paths.info["lengths"]``) are ignored.

    Returns
    -------
    float
        In the potential's energy unit; never below the minimax barrier (``U(S1) = -40.66`` for
        Muller-Brown A -> B).

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, I, B = torch.tensor([[-0.5582, 1.4417], [-0.05, 0.4667], [0.6235, 0.028]], dtype=torch.float64)
    >>> s = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    >>> straight = A + s * (B - A)                                  # over the high ridge
    >>> bent = torch.cat([A + 2 * s[:6] * (I - A), I + (2 * s[6:] - 1) * (B - I)])  # via I
    >>> frames = torch.stack([straight, bent])                      # (2 paths, 11 frames, 2)
    >>> paths = Paths(frames, MullerBrown().energy(frames), n_energy_evals=22, kT=12.5)
    >>> round(minmax(paths), 2)          # the bent path is the better one
    -3.32
    """
    return float(max_energy(paths).min())


def barrier(paths) -> torch.Tensor:
    """Max energy minus the energy of the path's first frame.

    Parameters
    ----------
    paths : Paths or Tensor
        A :class:`~tps.sampling.Paths`, or its energies as a Tensor ``(n_paths, n_frames)``.
        Padded frames of variable-length paths (``paths.info["lengths"]``) are ignored.

    Returns
    -------
    Tensor, shape ``(n_paths,)``, in the potential's energy unit.

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)
    >>> line = A + torch.linspace(0, 1, 11, dtype=torch.float64)[:, None] * (B - A)  # (11, 2)
    >>> paths = Paths(line[None], MullerBrown().energy(line[None]), n_energy_evals=11, kT=12.5)
    >>> barrier(paths)                    # 12.60 - U(A) = 12.60 + 146.70
    tensor([159.3041], dtype=torch.float64)
    """
    e = _energies(paths)
    return e.max(1).values - e[:, 0]


def frame_steps(paths, *, periods: Optional[Sequence] = None, distance: Optional[Callable] = None) -> torch.Tensor:
    """Distance between consecutive frames, shape ``(n_paths, n_frames - 1)``.

    Default: Euclidean norm of the (periodic, if ``periods``) difference over the event
    coordinates. ``distance(a, b) -> (..,)`` overrides it (e.g. Kabsch RMSD for molecules).
    Padded frames of variable-length paths repeat the last frame and so add zero steps.

    Parameters
    ----------
    paths : Paths or Tensor
        A :class:`~tps.sampling.Paths`, or frames ``(n_paths, n_frames, *event)``.
    periods : sequence of (float or None), optional
        Period of each coordinate (``2*pi`` radians for dihedrals) for a one-dimensional event.
    distance : callable, optional
        ``distance(a, b)`` with ``a``, ``b`` of shape ``(n_paths, n_frames - 1, *event)``,
        returning ``(n_paths, n_frames - 1)``.

    Returns
    -------
    Tensor, shape ``(n_paths, n_frames - 1)``, in the unit of the coordinates (nm, radians,
    or dimensionless).

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)
    >>> line = A + torch.linspace(0, 1, 11, dtype=torch.float64)[:, None] * (B - A)  # (11, 2)
    >>> paths = Paths(line[None], MullerBrown().energy(line[None]), n_energy_evals=11, kT=12.5)
    >>> steps = frame_steps(paths)        # ten equal steps of |B - A| / 10
    >>> steps.shape, round(float(steps[0, 0]), 4)
    (torch.Size([1, 10]), 0.1843)
    """
    f = paths.frames if hasattr(paths, "frames") else torch.as_tensor(paths)
    a, b = f[:, :-1], f[:, 1:]
    if distance is not None:
        return distance(a, b)
    d = periodic_difference(a, b, periods) if periods is not None else b - a
    return d.flatten(2).norm(dim=-1)


def max_step(paths, **kw) -> float:
    """Largest distance between consecutive frames over all paths (the continuity check).

    Parameters
    ----------
    paths : Paths or Tensor
        As for :func:`frame_steps`.
    **kw
        ``periods`` and ``distance``, passed to :func:`frame_steps`.

    Returns
    -------
    float
        In the unit of the coordinates.

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, I, B = torch.tensor([[-0.5582, 1.4417], [-0.05, 0.4667], [0.6235, 0.028]], dtype=torch.float64)
    >>> s = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    >>> straight = A + s * (B - A)                                  # over the high ridge
    >>> bent = torch.cat([A + 2 * s[:6] * (I - A), I + (2 * s[6:] - 1) * (B - I)])  # via I
    >>> frames = torch.stack([straight, bent])                      # (2 paths, 11 frames, 2)
    >>> paths = Paths(frames, MullerBrown().energy(frames), n_energy_evals=22, kT=12.5)
    >>> round(max_step(paths), 4)        # the bent path's steps from I to B
    0.2199
    """
    return float(frame_steps(paths, **kw).max())


def final_frames(paths) -> torch.Tensor:
    """The last frame of each path (the last unpadded one for variable-length paths).

    Parameters
    ----------
    paths : Paths
        Frames ``(n_paths, n_frames, *event)``; ``paths.info["lengths"]``, when present, gives
        the number of valid frames of each path.

    Returns
    -------
    Tensor, shape ``(n_paths, *event)``

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)
    >>> line = A + torch.linspace(0, 1, 11, dtype=torch.float64)[:, None] * (B - A)  # (11, 2)
    >>> paths = Paths(line[None], MullerBrown().energy(line[None]), n_energy_evals=11, kT=12.5)
    >>> final_frames(paths)
    tensor([[0.6235, 0.0280]], dtype=torch.float64)
    """
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

    Parameters
    ----------
    paths : Paths
    target : tps.states.Volume
        Maps frames ``(n_paths, *event)`` to a boolean mask ``(n_paths,)``.

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)
    >>> line = A + torch.linspace(0, 1, 11, dtype=torch.float64)[:, None] * (B - A)  # (11, 2)
    >>> paths = Paths(line[None], MullerBrown().energy(line[None]), n_energy_evals=11, kT=12.5)
    >>> from tps.states import Ball
    >>> target_hit_fraction(paths, Ball(B, 0.1)), target_hit_fraction(paths, Ball(A, 0.1))
    (1.0, 0.0)
    """
    return float(target(final_frames(paths)).double().mean())


def summarize(paths, *, method: str, target, periods=None, distance=None, n_training_energy_evals: int = 0,
              wall_s: float = float("nan"), geodesic_wall_s: float = float("nan"), **extra) -> dict:
    """One row of ``results.json`` (keys of benchmarks.md section 1).

    Parameters
    ----------
    paths : Paths
        The ensemble; ``paths.n_energy_evals`` is reported as the sampling cost.
    method : str
        Name of the method (the row's label).
    target : tps.states.Volume
        Product state, for :func:`target_hit_fraction`.
    periods, distance : optional
        Passed to :func:`max_step`.
    n_training_energy_evals : int, optional
        Energy evaluations spent on training data, reported separately.
    wall_s, geodesic_wall_s : float, optional
        Wall-clock seconds of the whole method and of its geodesic solve (NaN if unknown).
    **extra
        Further keys, copied into the row.

    Returns
    -------
    dict
        ``method``, ``n_paths``, ``max_energy_mean``, ``max_energy_std`` (unbiased; 0 for one
        path), ``minmax``, ``barrier_mean``, ``max_step``, ``target_hit_fraction``,
        ``n_energy_evals``, ``n_training_energy_evals``, ``wall_s``, ``geodesic_wall_s`` and the
        ``extra`` keys. Energies are in the potential's unit.

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.sampling import Paths
    >>> A, I, B = torch.tensor([[-0.5582, 1.4417], [-0.05, 0.4667], [0.6235, 0.028]], dtype=torch.float64)
    >>> s = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    >>> straight = A + s * (B - A)                                  # over the high ridge
    >>> bent = torch.cat([A + 2 * s[:6] * (I - A), I + (2 * s[6:] - 1) * (B - I)])  # via I
    >>> frames = torch.stack([straight, bent])                      # (2 paths, 11 frames, 2)
    >>> paths = Paths(frames, MullerBrown().energy(frames), n_energy_evals=22, kT=12.5)
    >>> from tps.states import Ball
    >>> row = summarize(paths, method="two lines", target=Ball(B, 0.1), wall_s=0.0)
    >>> {k: round(row[k], 2) for k in ("max_energy_mean", "minmax", "target_hit_fraction")}
    {'max_energy_mean': 4.64, 'minmax': -3.32, 'target_hit_fraction': 1.0}
    >>> row["n_energy_evals"], row["n_paths"]
    (22, 2)
    """
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
