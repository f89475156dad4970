"""Spacetime geodesics of a molecule in model coordinates (Hutchinson divergence, probe-checked
diagnostics) and the straight-line baseline curve."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Optional, Sequence

import torch

from tps.diffusion.checkpoint import DiffusionModel
from tps.diffusion.scaling import AffineScaling
from tps.spacetime.domain import GeodesicWarning, curve_flags, report
from tps.spacetime.geometry import rademacher, segment_terms
from tps.spacetime.solver import GeodesicResult, geodesic
from tps.workflows.coordinates import fit_scaling
from tps.workflows.endpoints import Endpoints, kabsch_align
from tps.workflows.models import train_model

__all__ = ["solve_geodesic", "probe_checked_diagnostics", "linear_curve", "GeodesicResult", "Endpoints",
           "kabsch_align", "fit_scaling", "train_model"]


def solve_geodesic(model: DiffusionModel, endpoints: Endpoints, *, logsnr: float = 4.0, n_points: int = 48,
                   n_nodes: int = 8, max_iter: int = 30, init_dips: Sequence[float] = (),
                   coarse_points: Optional[int] = None, coarse_iter: Optional[int] = None, n_probes: int = 1,
                   clamp=True, constraints: Sequence = (), seed: int = 0, check_probes: int = 16,
                   strict: bool = False, progress: bool = False) -> GeodesicResult:
    """Spacetime geodesic between the endpoints in model coordinates (Hutchinson divergence).

    The same safety as :func:`tps.spacetime.geodesic` on any denoiser: every curve point stays in
    the model's logSNR domain (recorded in its checkpoint, ``model.logsnr_range``), the result
    carries ``diagnostics``, and a degenerate result raises a
    :class:`~tps.spacetime.GeodesicWarning` (``strict=True``: an error). One difference: the
    negative-segment check cannot use the solver's own single fixed probe, whose noise alone
    makes ~14-21 % of the segment mass negative on alanine dipeptide (the exact divergence: 2.5 %).
    The returned curve is re-evaluated with ``check_probes`` fresh probes per point (independent
    of the ones the optimiser saw, so that probe exploitation cannot hide); a segment counts as
    negative only when its probe average is below zero by more than 3 standard errors (with 63
    segments about 0.1 noise-only segments are expected), and ``diagnostics.negative_fraction``
    is that significant negative mass over the total.

    Hutchinson probes: bias and variance (measured, ``python -m benchmarks aldp-avoid``, pretrained
    model, the fixed unconstrained C5 -> C7ax curve of ``tps run alanine-dipeptide``, N = 64, 16
    probe sets per count, 2026-12-02). The honest energy with ``n`` probes per point is unbiased
    (exact divergence: 231.1; mean - exact within one standard error for every ``n``) and its
    standard deviation falls as ``1 / sqrt(n)``: 16.3 / 9.4 / 5.9 / 3.8 / 2.7 at n = 1 / 2 / 4 / 8
    / 16 (7 % of the energy at one probe). The per-coordinate clamped objective (``clamp=True``,
    the default here) is not an estimate of the energy: its mean is 642 at one probe and 592 at
    16, and 586 with the exact divergence, because single coordinates' terms are negative even
    when the segment's sum is not; it is a surrogate that is bounded below and keeps the
    optimiser from exploiting the fixed probes. Each extra probe costs one more Jacobian-vector
    product per point (16 probes: 5-10x the time of one; the exact divergence, 66 backward
    passes per point: 50-66x; two runs on a loaded machine).

    Parameters
    ----------
    model : DiffusionModel
        EGNN model of this molecule (see :func:`check_model_matches`).
    endpoints : Endpoints
    logsnr : float
        Anchor logSNR of both endpoints (model units).
    n_points, n_nodes, max_iter, init_dips, coarse_points, coarse_iter, n_probes, constraints, seed
        Passed to :func:`tps.spacetime.geodesic` (L-BFGS, ``divergence="hutchinson"``).
    clamp : bool or str
        Objective of :func:`tps.spacetime.geodesic`: True / ``"coordinate"`` (default) is the
        per-coordinate ReLU of the segment products; ``"segment"`` clamps whole segments;
        False / ``"none"`` is the plain sum. With one fixed probe the Hutchinson term of a
        segment can be negative, and unclamped L-BFGS learns to exploit the probes: on alanine
        dipeptide (EGNN 32x3, N = 32) it drove the estimated curve energy from +683 to -2749
        while curves with fresh probes got no better. Clamped, the objective is bounded below by
        0. The reported ``energy`` is the honest (unclamped) estimate.
    check_probes : int
        Fresh probes per point for the negative-segment check of the returned curve (0: keep
        the solver's own single-probe diagnostics, which flag probe noise).
    strict : bool
        Raise :class:`~tps.spacetime.DegenerateGeodesicError` instead of warning.

    Returns
    -------
    GeodesicResult
        ``x`` of shape ``(n_points, n_atoms, 3)`` in model units, ``logsnr`` ``(n_points,)``;
        ``diagnostics`` with the probe-checked ``negative_fraction``.

    Warns
    -----
    GeodesicWarning
        When the checked curve's significant negative segment mass exceeds
        ``tps.spacetime.domain.NEGATIVE_FRACTION_TOL`` of its total, or
        sits at a bound of the model's logSNR domain.

    Examples
    --------
    With the shipped all-atom model of alanine dipeptide (a model of :func:`train_model` works
    the same way):

    >>> import torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps import pretrained
    >>> from tps.systems import alanine_dipeptide
    >>> model = pretrained.load("alanine-dipeptide")
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))    # already minimised
    >>> curve = solve_geodesic(model, ends, n_points=8, n_nodes=3, max_iter=3)
    >>> curve.x.shape, bool(curve.energy <= curve.initial_energy)
    (torch.Size([8, 22, 3]), True)
    >>> z_start, _ = ends.model_coordinates(model.scaling)
    >>> torch.equal(curve.x[0], z_start.float())                           # endpoints kept exactly
    True
    >>> curve.diagnostics.range_source, curve.diagnostics.logsnr_range     # the model's trained domain
    ('model', (-12.0, 12.0))
    """
    net = model.network
    param = next(net.parameters())
    za, zb = endpoints.model_coordinates(model.scaling)
    za, zb = za.to(dtype=param.dtype, device=param.device), zb.to(dtype=param.dtype, device=param.device)
    with warnings.catch_warnings():
        if check_probes:  # the solver's flags come from its single fixed probe: re-checked below
            warnings.simplefilter("ignore", GeodesicWarning)
        result = geodesic(net, za, zb, logsnr=logsnr, n_points=n_points, n_nodes=n_nodes, max_iter=max_iter,
                          divergence="hutchinson", n_probes=n_probes, clamp=clamp, init_dips=tuple(init_dips),
                          coarse_points=coarse_points, coarse_iter=coarse_iter, constraints=constraints, seed=seed,
                          strict=strict and not check_probes, progress=progress)
    if check_probes:
        result.diagnostics = probe_checked_diagnostics(net, result.x, result.logsnr, result.diagnostics,
                                                       n_probes=check_probes, seed=seed + 1)
        report(result.diagnostics, strict=strict, stacklevel=3)
    return result


def probe_checked_diagnostics(net, x, logsnr, diagnostics, *, n_probes: int = 16, seed: int = 1,
                              n_sigma: float = 3.0):
    """Diagnostics whose negative-segment mass counts only segments negative beyond probe noise.

    Each of ``n_probes`` fresh Rademacher probes gives one estimate of every segment product;
    a segment is negative when the average is below zero by more than ``n_sigma`` standard
    errors, and only that excess counts (``negative_fraction`` = significant negative mass
    over the total absolute mass). With the exact divergence this is the plain fraction.

    Parameters
    ----------
    net : callable
        The denoiser.
    x : Tensor, shape ``(N, *event)``; logsnr : Tensor, shape ``(N,)``
        The curve.
    diagnostics : GeodesicDiagnostics
        The solver's (its domain and bound fraction are kept).
    n_probes : int
        At least 2.
    seed : int
    n_sigma : float

    Returns
    -------
    GeodesicDiagnostics
        With ``negative_fraction`` and ``problems`` recomputed.

    Examples
    --------
    See :func:`solve_geodesic` (its diagnostics come from here).
    """
    if int(n_probes) < 2:
        raise ValueError(f"n_probes: expected at least 2 (a standard error needs two), got {n_probes!r}")
    x, lam = x.detach()[None], logsnr.detach()[None]
    gen = torch.Generator().manual_seed(int(seed))
    prods = []
    for _ in range(int(n_probes)):
        probe = rademacher((1,) + tuple(x.shape), dtype=x.dtype, generator=gen).to(x.device)
        with torch.enable_grad():
            terms, _ = segment_terms(net, x, lam, divergence="hutchinson", probes=probe)
        prods.append(terms.detach().double().sum(-1))
    prods = torch.stack(prods)  # (n_probes, 1, N - 1)
    mean, se = prods.mean(0), prods.std(0) / math.sqrt(prods.shape[0])
    significant = torch.where(mean + n_sigma * se < 0, mean + n_sigma * se, mean.abs())
    lo, hi = diagnostics.logsnr_range
    neg, at_bound, problems = curve_flags(significant, lam, lo, hi)
    return dataclasses.replace(diagnostics, negative_fraction=neg, bound_fraction=at_bound, problems=problems)


def linear_curve(endpoints: Endpoints, scaling: AffineScaling, *, n_points: int = 48, logsnr: float = 4.0) -> tuple:
    """Straight line between the aligned endpoints at constant logSNR (the baseline curve).

    The same spacetime points as the geodesic solver's initial curve: ``x_n = (1 - s_n) z_a + s_n z_b``
    at ``logsnr``, with the endpoints anchored as ``(z, logsnr)`` exactly as the geodesic's.

    Parameters
    ----------
    endpoints : Endpoints
    scaling : AffineScaling
        From :func:`fit_scaling` (the model's).
    n_points : int
    logsnr : float

    Returns
    -------
    x : Tensor, shape ``(n_points, n_atoms, 3)``, model units
    logsnr : Tensor, shape ``(n_points,)``

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))
    >>> scaling = fit_scaling(np.stack([c5, c7ax]))
    >>> x, lam = linear_curve(ends, scaling, n_points=5)
    >>> x.shape, lam.tolist()
    (torch.Size([5, 22, 3]), [4.0, 4.0, 4.0, 4.0, 4.0])
    >>> bool((x[0] == ends.model_coordinates(scaling)[0]).all())
    True
    """
    za, zb = endpoints.model_coordinates(scaling)
    s = torch.linspace(0.0, 1.0, int(n_points), dtype=torch.float64)[:, None, None]
    lam = torch.full((int(n_points),), float(logsnr), dtype=torch.float64)
    return (1 - s) * za + s * zb, lam
