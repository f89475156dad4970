"""Convergence diagnostics of shooting chains: split-chain Jensen-Shannon divergences.

Independent Markov chains that sample the same ensemble give statistically indistinguishable
halves. :func:`split_chain_jsd` compares, by the Jensen-Shannon divergence in bits
(:func:`~tps.metrics.jensen_shannon`):

- the chains with even index against those with odd index (*between chains*: did the chains
  forget their different starting paths?), and
- the first half of the kept rounds against the second half (*stationarity*: is the pooled
  ensemble still drifting?),

for three observables: the frame density on a fixed 2-D grid (as :func:`~tps.metrics.path_density_jsd`),
the path-length distribution (frames per path), and a per-path crossing coordinate (e.g. psi
where the path crosses phi = 0, :meth:`tps.systems.base.System.crossing_coordinate`).

Finite samples make the JSD of two halves of one distribution positive: with ``k`` occupied bins
and ``n`` independent samples per half, ``4 n ln(2) JSD`` is asymptotically chi-squared with
``k - 1`` degrees of freedom (the G-test of homogeneity), so the expected value is about
``(k - 1) / (4 n ln 2)`` bits (:func:`jsd_noise_level`). Frames of one path are correlated, so
the frame-density noise of ``n`` paths is larger than that of ``n`` frames.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from tps.metrics.distribution import jensen_shannon, path_density_jsd

__all__ = ["split_chain_jsd", "jsd_noise_level", "histogram_jsd"]


def jsd_noise_level(n_bins: int, n_a: int, n_b: Optional[int] = None) -> float:
    """Expected JSD (bits) between histograms of two independent samples of ONE distribution.

    ``(k - 1) / (4 n ln 2)`` with the harmonic-mean sample size ``n = 2 n_a n_b / (n_a + n_b)``
    (the G-test of homogeneity: ``4 n ln(2) JSD`` is asymptotically chi-squared with ``k - 1``
    degrees of freedom).

    Parameters
    ----------
    n_bins : int
        Occupied bins ``k``.
    n_a, n_b : int
        Independent samples in each histogram (``n_b = n_a`` if None).

    Examples
    --------
    >>> round(jsd_noise_level(11, 1000), 5)    # 10 / (4000 ln 2)
    0.00361
    """
    n_b = n_a if n_b is None else n_b
    n = 2.0 * n_a * n_b / (n_a + n_b)
    return (int(n_bins) - 1) / (4.0 * n * math.log(2.0))


def histogram_jsd(a, b, *, bins: int = 20, range: Optional[Sequence[float]] = None,
                  period: Optional[float] = None) -> float:
    """JSD (bits) between the 1-D histograms of samples ``a`` and ``b`` on shared bins.

    Parameters
    ----------
    a, b : array-like, shape ``(n,)``
        Samples; NaN entries are dropped.
    bins : int
        Number of equal bins.
    range : (float, float), optional
        Bin range (default: min and max of both samples pooled). Values outside are dropped.
    period : float, optional
        Period of a periodic coordinate; values are wrapped into ``range``, which must then be given.

    Returns
    -------
    float
        NaN when either sample is empty (after dropping NaN and out-of-range values).

    Examples
    --------
    >>> histogram_jsd([1, 2, 3], [1, 2, 3], bins=3), histogram_jsd([0, 0], [5, 5], bins=2)
    (0.0, 1.0)
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    if period is not None:
        if range is None:
            raise ValueError("range: needed with period (the interval values are wrapped into)")
        a = np.mod(a - range[0], period) + range[0]
        b = np.mod(b - range[0], period) + range[0]
    if range is None:
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        range = (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)
    ha, _ = np.histogram(a, bins=int(bins), range=tuple(range))
    hb, _ = np.histogram(b, bins=int(bins), range=tuple(range))
    if ha.sum() == 0 or hb.sum() == 0:
        return float("nan")
    return jensen_shannon(ha, hb)


def _per_path(paths, name: str):
    frames = torch.as_tensor(paths.frames).detach().cpu()
    lengths = paths.info.get("lengths")
    lengths = (torch.full((frames.shape[0],), frames.shape[1]) if lengths is None
               else torch.as_tensor(lengths).to(torch.int64))
    for key in ("chain", "round"):
        if key not in paths.info:
            raise ValueError(f"{name}: expected info[{key!r}] (a shooting ensemble, e.g. from seeded_shooting)")
    chain = torch.as_tensor(paths.info["chain"]).to(torch.int64)
    rnd = torch.as_tensor(paths.info["round"]).to(torch.int64)
    if not (lengths.shape == chain.shape == rnd.shape == frames.shape[:1]):
        raise ValueError(f"{name}: info['lengths'], info['chain'] and info['round'] need one entry per path")
    return frames, lengths, chain, rnd


def split_chain_jsd(paths, *, bins, ranges: Sequence, periods: Optional[Sequence] = None,
                    cv: Optional[Callable] = None, crossing=None, crossing_range: Optional[Sequence[float]] = None,
                    crossing_period: Optional[float] = None, crossing_bins: int = 20, length_bins: int = 20) -> dict:
    """Split-chain and split-round JSDs (bits) of a shooting ensemble (module docstring).

    Parameters
    ----------
    paths : Paths
        Kept chain states with ``info["chain"]``, ``info["round"]`` and, for variable lengths,
        ``info["lengths"]`` (e.g. :func:`tps.baselines.seeded_shooting`). Every valid frame counts.
    bins, ranges, periods, cv
        The frame-density grid, as :func:`~tps.metrics.path_density_jsd` (``cv`` maps frames
        ``(n, *event)`` to ``(n, 2)``).
    crossing : Tensor, shape ``(n_paths,)``, optional
        A crossing coordinate per path (NaN where undefined), e.g. ``system.crossing_coordinate(paths)``.
    crossing_range, crossing_period, crossing_bins
        Its histogram (range default: pooled min and max; a periodic coordinate needs the range).
    length_bins : int
        Bins of the path-length histogram (shared range: pooled min and max).

    Returns
    -------
    dict of str to float
        ``frame_density_chains``, ``frame_density_rounds``, ``path_length_chains``,
        ``path_length_rounds`` and, with ``crossing``, ``crossing_chains``, ``crossing_rounds``
        (``*_chains``: even vs odd chain index; ``*_rounds``: first vs second half of the kept
        rounds); NaN where a split is empty (one chain, one round, no crossing). Also
        ``n_chains`` and ``n_rounds`` (as floats).

    Raises
    ------
    ValueError
        If ``paths`` lacks ``info["chain"]`` / ``info["round"]``, or ``crossing`` has the wrong length.

    Examples
    --------
    >>> import torch
    >>> from tps.core import Paths
    >>> g = torch.Generator().manual_seed(0)
    >>> frames = torch.randn(400, 5, 2, generator=g, dtype=torch.float64) * 0.3
    >>> info = {"chain": torch.arange(400) % 8, "round": torch.arange(400) // 8}
    >>> d = split_chain_jsd(Paths(frames, frames[..., 0], 0, 1.0, info), bins=10, ranges=((-1, 1), (-1, 1)))
    >>> noise = jsd_noise_level(100, 1000)        # 10 x 10 bins, 1000 independent frames per half
    >>> bool(d["frame_density_chains"] < 2 * noise), d["n_chains"], d["n_rounds"]
    (True, 8.0, 50.0)
    """
    frames, lengths, chain, rnd = _per_path(paths, "paths")
    n_paths, n_frames = frames.shape[:2]
    valid = torch.arange(n_frames)[None] < lengths[:, None]
    if crossing is not None:
        crossing = torch.as_tensor(crossing, dtype=torch.float64).detach().cpu().flatten()
        if crossing.shape[0] != n_paths:
            raise ValueError(f"crossing: expected one value per path ({n_paths}), got {crossing.shape[0]}")
    rounds = torch.unique(rnd)
    splits = {"chains": chain % 2 == 0,
              "rounds": rnd <= rounds[(len(rounds) - 1) // 2] if len(rounds) > 1 else torch.ones_like(rnd, dtype=bool)}
    out = {}
    for label, first in splits.items():
        second = ~first
        if not bool(first.any()) or not bool(second.any()):
            out[f"frame_density_{label}"] = out[f"path_length_{label}"] = float("nan")
            if crossing is not None:
                out[f"crossing_{label}"] = float("nan")
            continue
        halves = []
        for m in (first, second):
            pts = frames[m][valid[m]]
            halves.append(cv(pts) if cv is not None else pts)
        out[f"frame_density_{label}"] = path_density_jsd(halves[0], halves[1], bins=bins, ranges=ranges,
                                                         periods=periods)
        out[f"path_length_{label}"] = histogram_jsd(lengths[first].numpy(), lengths[second].numpy(),
                                                    bins=length_bins)
        if crossing is not None:
            out[f"crossing_{label}"] = histogram_jsd(crossing[first].numpy(), crossing[second].numpy(),
                                                     bins=crossing_bins, range=crossing_range,
                                                     period=crossing_period)
    out["n_chains"] = float(len(torch.unique(chain)))
    out["n_rounds"] = float(len(rounds))
    return out
