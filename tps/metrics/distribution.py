"""Distribution metrics of path ensembles: how much space a method's paths cover, and where.

:func:`path_density_jsd` compares the density of all transition-path frames of a method with
that of a reference ensemble (e.g. long two-way shooting) by the Jensen-Shannon divergence of
their histograms on a fixed 2-D grid: over (x, y) for Muller-Brown, over (phi, psi) for alanine
dipeptide (``cv`` maps frames to the two coordinates; periodic coordinates wrap).
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import torch


def _frames(paths, name: str) -> torch.Tensor:
    """All frames of an ensemble, padding dropped, shape ``(n_frames_total, *event)``."""
    if hasattr(paths, "frames"):
        f = torch.as_tensor(paths.frames)
        lengths = getattr(paths, "info", {}).get("lengths")
    else:
        f = torch.as_tensor(paths)
        lengths = None
    if f.dim() < 2:
        raise ValueError(f"{name}: expected frames of shape (n_paths, n_frames, *event), got {tuple(f.shape)}")
    if f.dim() == 2:  # (n_paths, n_frames) of scalars is ambiguous; treat a 2-D array as frames (n, d)
        return f.detach()
    if lengths is None:
        return f.reshape((-1,) + tuple(f.shape[2:])).detach()
    lengths = torch.as_tensor(lengths).to(torch.int64)
    if lengths.shape != f.shape[:1] or bool((lengths < 1).any()) or bool((lengths > f.shape[1]).any()):
        raise ValueError(f"{name}: info['lengths'] must hold one length in [1, {f.shape[1]}] per path, "
                         f"got shape {tuple(lengths.shape)}")
    mask = torch.arange(f.shape[1])[None] < lengths[:, None]
    return f[mask].detach()


def _histogram(points: np.ndarray, bins, ranges, periods, name: str) -> np.ndarray:
    pts = points.copy()
    for i, p in enumerate(periods):
        if p is not None:
            lo = ranges[i][0]
            pts[:, i] = np.mod(pts[:, i] - lo, p) + lo
    h, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=bins, range=ranges)
    if h.sum() == 0:
        raise ValueError(f"{name}: no frame lies inside ranges={ranges}")
    return h / h.sum()


def jensen_shannon(p, q, *, base: float = 2.0) -> float:
    """Jensen-Shannon divergence of two histograms (normalised here), in log ``base`` (2: in [0, 1]).

    Parameters
    ----------
    p, q : array-like, same shape
        Non-negative histogram counts or probabilities (any shape; flattened).
    base : float, optional
        Base of the logarithm: 2 (default) gives bits, bounded by 1; ``e`` gives nats.

    Returns
    -------
    float
        ``(KL(p || m) + KL(q || m)) / 2`` with ``m = (p + q) / 2``, clipped to
        ``[0, log(2) / log(base)]``.

    Raises
    ------
    ValueError
        If the shapes differ, an entry is negative, or a histogram has no mass.

    Examples
    --------
    >>> jensen_shannon([1, 1, 0, 0], [2, 2, 0, 0]), jensen_shannon([1, 0], [0, 3])
    (0.0, 1.0)
    >>> round(jensen_shannon([1, 1], [1, 0]), 4)   # (1/2 log2(2/3) + 1/2 log2(2) + log2(4/3)) / 2
    0.3113
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    if p.shape != q.shape:
        raise ValueError(f"q: expected the shape of p {p.shape}, got {q.shape}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("p, q: expected non-negative histograms with positive mass")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return min(max(0.0, 0.5 * (kl(p) + kl(q)) / math.log(base)), math.log(2) / math.log(base))


def path_density_jsd(paths, reference_paths, *, bins, ranges: Sequence, periods: Optional[Sequence] = None,
                     cv: Optional[Callable] = None) -> float:
    """Jensen-Shannon divergence (base 2, in ``[0, 1]``) between the frame densities of two path ensembles.

    Every frame of every path counts once (paths of different lengths weigh by their length);
    padded frames of variable-length ensembles (``paths.info["lengths"]``) are dropped. Frames
    are mapped to two coordinates by ``cv`` and histogrammed on the same fixed grid; frames
    outside a non-periodic range are ignored, periodic coordinates are wrapped into their range.

    Parameters
    ----------
    paths, reference_paths : Paths or Tensor
        Ensembles with frames of shape ``(n_paths, n_frames, *event)`` (a :class:`~tps.sampling.Paths`
        or a plain tensor; a 2-D tensor is read as frames ``(n, *event)`` already pooled).
    bins : int or (int, int)
        Histogram bins per coordinate.
    ranges : ((lo0, hi0), (lo1, hi1))
        Grid extent per coordinate (e.g. ``tps.systems.muller_brown.BOX``; ``(-pi, pi)`` for
        dihedrals).
    periods : (float or None, float or None), optional
        Period of each coordinate (``2 pi`` for dihedrals); the range of a periodic coordinate
        must span exactly one period.
    cv : callable, optional
        ``(n, *event) -> (n, 2)`` collective variables (e.g. ``phi_psi``); identity if None
        (then the event shape must be ``(2,)``).

    Returns
    -------
    float
        ``JSD = (KL(P || M) + KL(Q || M)) / 2`` with ``M = (P + Q) / 2``, in bits: 0 for identical
        histograms, 1 for histograms with disjoint support.

    Raises
    ------
    ValueError
        If ``bins``, ``ranges`` or ``periods`` are malformed (a periodic range must span one
        period), ``cv`` does not give two coordinates, or no frame of an ensemble lies inside
        ``ranges``.

    Examples
    --------
    >>> import torch
    >>> from tps.systems.muller_brown import BOX
    >>> a = torch.rand(10, 50, 2) * 0.5 - 0.4     # frames in [-0.4, 0.1)^2
    >>> path_density_jsd(a, a, bins=20, ranges=BOX)
    0.0
    >>> round(path_density_jsd(a, a + 1.0, bins=20, ranges=BOX), 12)   # no common bin
    1.0
    """
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        bins = (int(bins), int(bins))
    try:
        bins = tuple(int(b) for b in bins)
    except Exception as exc:
        raise ValueError(f"bins: expected an integer or a pair of integers, got {bins!r}") from exc
    if len(bins) != 2 or min(bins) < 1:
        raise ValueError(f"bins: expected positive bin counts for two coordinates, got {bins!r}")
    try:
        ranges = tuple((float(lo), float(hi)) for lo, hi in ranges)
    except Exception as exc:
        raise ValueError(f"ranges: expected ((lo0, hi0), (lo1, hi1)), got {ranges!r}") from exc
    if len(ranges) != 2 or not all(math.isfinite(lo) and math.isfinite(hi) and hi > lo for lo, hi in ranges):
        raise ValueError(f"ranges: expected two finite intervals with hi > lo, got {ranges!r}")
    periods = (None, None) if periods is None else tuple(None if p is None else float(p) for p in periods)
    if len(periods) != 2:
        raise ValueError(f"periods: expected two entries (float or None), got {periods!r}")
    for (lo, hi), p in zip(ranges, periods):
        if p is not None and (not p > 0 or abs((hi - lo) - p) > 1e-9 * p):
            raise ValueError(f"periods: a periodic range must span exactly one period, got range ({lo}, {hi}) "
                             f"and period {p}")
    hists = []
    for obj, name in ((paths, "paths"), (reference_paths, "reference_paths")):
        frames = _frames(obj, name)
        xy = cv(frames) if cv is not None else frames
        xy = torch.as_tensor(xy).detach().to(torch.float64).cpu()
        if xy.dim() != 2 or xy.shape[1] != 2:
            raise ValueError(f"cv: expected the frames of {name} to map to shape (n, 2), got {tuple(xy.shape)}")
        hists.append(_histogram(xy.numpy(), bins, ranges, periods, name))
    return jensen_shannon(hists[0], hists[1], base=2.0)
