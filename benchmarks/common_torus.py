"""Alanine dipeptide in (phi, psi): curves, MD baselines and the figure on the periodic torus.

The pieces of ``benchmarks/aldp_2d.py`` that are about the torus rather than the run: choosing
the periodic image of the end point (:func:`choose_image`), restraint centres of a curve,
the relative-KL profile of the region-avoiding constraint, periodic distances, the MD baselines'
numbers (:func:`baseline_changes`; the rows are :func:`tps.pipeline.run_method`), the path-density
comparison and the figure.

Examples
--------
>>> image_shifts().shape, image_shifts()[4].tolist()
(torch.Size([9, 2]), [0.0, 0.0])
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import assign_path_density_jsd, save_figure
from benchmarks.common_phipsi import PERIODS, TWO_PI, Setting
from benchmarks.common_protocols import PhiPsiProtocol
from tps.potentials.grid import bilinear
from tps.core import Paths
from tps.diffusion.schedule import restraint_schedule
from tps.spacetime import RegionAvoidance, geodesic
from tps.spacetime.constraints import CurveState
from tps.spacetime.geometry import segment_products
from tps.states import periodic_difference

def image_shifts(dtype=torch.float32) -> torch.Tensor:
    """The nine lattice shifts ``2 pi k``, ``k in {-1, 0, 1}^2``, shape ``(9, 2)``; index 4 is ``k = (0, 0)``."""
    k = torch.tensor([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=dtype)
    return TWO_PI * k


def solver_kwargs(proto: PhiPsiProtocol) -> dict:
    return dict(logsnr=proto.logsnr, clamp=proto.clamp, coarse_points=proto.coarse_points,
                coarse_iter=proto.coarse_iter, max_iter=proto.max_iter)


def choose_image(net, x_a: torch.Tensor, x_b: torch.Tensor, proto: PhiPsiProtocol, force=None, potential=None):
    """Solve the free geodesic to the candidate images of ``x_b`` as one batch and keep the best one.

    Candidates are the images ``x_b + 2 pi k``, ``k in {-1, 0, 1}^2``, whose chord from ``x_a`` is
    at most ``proto.image_chord_ratio`` times the shortest chord (the others cross a period
    more than needed; on both alanine dipeptide surfaces their geodesic energies were over
    2.5 times the best when all nine were solved). The candidates' geodesics (multi-start,
    ``proto.coarse_points`` points) are solved together with ``geodesic(..., batched=True)``.

    Parameters
    ----------
    net : callable
        Denoiser ``(B, 2), (B,) -> (B, 2)`` (angles in rad).
    x_a, x_b : Tensor, shape ``(2,)``
        Start and (wrapped) end point.
    proto : PhiPsiProtocol
    force : pair of int, optional
        Solve and return this image ``k`` (still solved alongside the candidates, for the record).
    potential : Potential, optional
        If given, choose the image whose coarse curve has the lowest highest potential energy
        over its restraint centres ``x / alpha`` (costs ``n_candidates * coarse_points``
        evaluations, counted in ``potential.n_evals``) instead of the lowest curve energy.

    Returns
    -------
    index : int
        Row of :func:`image_shifts` chosen.
    shift : Tensor, shape ``(2,)``
    energies : list of float or None
        Curve energy of every image's geodesic (None for images not solved).
    result : GeodesicResult
        The batched solve over the candidates.
    nodes : Tensor, shape ``(1, n_nodes, 3)``
        Spline nodes of the chosen image's curve (to warm-start the full-resolution solve).
    """
    shifts = image_shifts(x_a.dtype)
    chords = (x_b[None] + shifts - x_a[None]).norm(dim=1)
    keep = chords <= proto.image_chord_ratio * chords.min()
    forced = None
    if force is not None:
        if not all(int(v) in (-1, 0, 1) for v in force) or len(force) != 2:
            raise ValueError(f"image: expected two integers in {{-1, 0, 1}}, got {force!r}")
        forced = (int(force[0]) + 1) * 3 + (int(force[1]) + 1)
        keep[forced] = True
    cand = torch.nonzero(keep).flatten()
    xa = x_a.expand(len(cand), 2).clone()
    xb = x_b[None] + shifts[cand]
    r = geodesic(net, xa, xb, batched=True, n_points=proto.coarse_points, init_dips=proto.init_dips,
                 logsnr=proto.logsnr, clamp=proto.clamp, max_iter=proto.coarse_iter)
    energies = [None] * len(shifts)
    for i, e in zip(cand.tolist(), r.energy.tolist()):
        energies[i] = e
    if forced is not None:
        best = int((cand == forced).nonzero()[0, 0])
    elif potential is not None:
        c = centres(r.x.reshape(-1, 2), r.logsnr.reshape(-1)).reshape(r.x.shape)
        best = int(torch.argmin(potential.energy(c).max(1).values))
    else:
        best = int(torch.argmin(r.energy))
    index = int(cand[best])
    return index, shifts[index], energies, r, r.nodes[best][None]


def centres(cx: torch.Tensor, clam: torch.Tensor) -> torch.Tensor:
    """Restraint centres ``x / alpha`` (physical = model coordinates here), shape ``(N, 2)``, float64
    (:func:`tps.diffusion.schedule.restraint_schedule`)."""
    return restraint_schedule(cx.double(), clam.double()).centres


def relative_kl_profile(net, cx, clam, x_star, logsnr_star, proto: PhiPsiProtocol) -> torch.Tensor:
    """``KL(p(.|z*) || p(.|gamma_k)) - KL(p(.|z*) || p(.|gamma_0))`` along one curve, shape ``(N,)``."""
    probe = RegionAvoidance(x_star, logsnr_star=logsnr_star, threshold=0.0)
    with torch.enable_grad():
        x = cx[None].detach()
        lam = clam[None].detach()
        _, (eta_x, eta_t, mu_x, mu_t) = segment_products(net, x, lam, clamp=proto.clamp, return_parameters=True)
    state = CurveState(x, lam, eta_x, eta_t, mu_x, mu_t, net)
    return probe.relative_kl(state)[0].detach()


def nearest_image(point: torch.Tensor, curve_points: torch.Tensor) -> torch.Tensor:
    """The periodic image ``point + 2 pi k`` (``k in {-2..2}^2``) closest to any of ``curve_points`` ``(M, 2)``, shape ``(2,)``."""
    k = torch.tensor([(i, j) for i in range(-2, 3) for j in range(-2, 3)], dtype=torch.float64)
    cands = point.double()[None] + TWO_PI * k
    d = torch.cdist(cands, curve_points.double()).min(1).values
    return cands[int(d.argmin())]


def crossing_point(paths: Paths) -> torch.Tensor:
    """Median (unwrapped) position of each path's highest-energy frame, shape ``(2,)``: where paths cross."""
    i = paths.energies.argmax(1)
    pts = paths.frames[torch.arange(paths.n_paths), i]
    return pts.median(0).values.double()


def min_periodic_distance(frames: torch.Tensor, point) -> float:
    """Smallest periodic distance of any frame (``(n, T, 2)``) to ``point`` (rad)."""
    p = torch.as_tensor(point, dtype=frames.dtype)
    return float(periodic_difference(p, frames, PERIODS).norm(dim=-1).min())


# ------------------------------------------------------------------ MD baselines, path density
#: Budget of the high-temperature initial-path search of the shooting rows (chains x steps).
INITIAL_CHAINS, INITIAL_MAX_STEPS = 64, 50_000


def baseline_changes(setting: Setting, proto: PhiPsiProtocol) -> dict:
    """The ``extras["baselines"]`` numbers (:mod:`tps.pipeline.baselines`) of this runner beyond the
    protocol fields of the same names: ``md_dt = proto.md_dt / kT``; initial path of shooting = one
    start -> target transition of unbiased overdamped Langevin at ``kT_high`` = the larger of
    ``proto.kT_high_factor * kT`` and a sixth of the grid barrier (at most a 6 kT_high barrier),
    searched with :data:`INITIAL_CHAINS` x :data:`INITIAL_MAX_STEPS`; both shooting ensembles run
    ``proto.shooting_rounds`` rounds at most, capped by ``shooting_time_s`` / ``fixed_time_s`` of
    wall time, burn-in a quarter of the rounds run; the fixed ensemble's seed is ``seed + 5``;
    with an executor one task of chains per worker (each with the whole wall-time cap).

    Examples
    --------
    >>> from benchmarks.common_phipsi import own_setting
    >>> from benchmarks.common_protocols import PHIPSI_QUICK
    >>> c = baseline_changes(own_setting(), PHIPSI_QUICK)
    >>> round(c["kT_high"], 2), c["fixed_seed_offset"], c["burn_in_of_rounds_run"]
    (6.24, 5, True)
    """
    barrier = setting.lower_bound - float(bilinear(setting.grid, setting.start))
    return {"md_dt": proto.md_dt / setting.kT, "kT_high": max(proto.kT_high_factor * setting.kT, barrier / 6.0),
            "initial_chains": INITIAL_CHAINS, "initial_max_steps": INITIAL_MAX_STEPS,
            "fixed_rounds": proto.shooting_rounds, "burn_in_of_rounds_run": True, "fixed_seed_offset": 5,
            "task_size": "per-worker"}


def add_path_density_jsd(results, paths_by_method, setting: Setting, proto: PhiPsiProtocol) -> None:
    """``path_density_jsd`` of every row against the variable-length shooting ensemble on the periodic
    ``jsd_bins x jsd_bins`` (phi, psi) grid over [-pi, pi)^2 (in place); the shooting row reports its
    two chain halves' JSD (noise floor)."""
    a, b = setting.source, setting.target
    kw = dict(bins=proto.jsd_bins, ranges=((-math.pi, math.pi), (-math.pi, math.pi)), periods=PERIODS)
    ref_name = "two-way-shooting-variable"
    assign_path_density_jsd(results["methods"], paths_by_method, a, b, reference_method=ref_name, **kw)
    results["notes"]["path_density_jsd"] = (
        f"Jensen-Shannon divergence in bits between the periodic {proto.jsd_bins} x {proto.jsd_bins} (phi, psi) "
        f"histograms over [-pi, pi)^2 of all transition-segment frames (last frame in state A before first "
        f"entering the target ball, to that entry) of a row and of the {ref_name} ensemble of this run (after "
        f"burn-in); the {ref_name} row reports the JSD between its chains' two halves (noise floor). The "
        f"reference is only as converged as the shooting budget allows (chains_decorrelated_from_initial)")


# ------------------------------------------------------------------ figure
def _wrapped_segments(xy: np.ndarray) -> np.ndarray:
    """Wrap an unwrapped (T, 2) polyline into [-pi, pi)^2, with NaN breaks where it crosses the boundary."""
    w = (xy + math.pi) % TWO_PI - math.pi
    jump = np.abs(np.diff(w, axis=0)).max(1) > math.pi
    out = []
    for i in range(len(w)):
        out.append(w[i])
        if i < len(jump) and jump[i]:
            out.append([np.nan, np.nan])
    return np.asarray(out)


def figure(setting: Setting, curves: dict, paths_by_method: dict, out: Path, avoid_point=None, n_show: int = 30):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = setting.grid
    P, Q = np.meshgrid(g.phi, g.psi, indexing="ij")
    z = g.z
    vmax = float(np.quantile(z, 0.95))
    methods = list(paths_by_method)
    fig, axes = plt.subplots(1, len(methods), figsize=(5.4 * len(methods), 4.8), squeeze=False,
                             constrained_layout=True)
    lbp = _wrapped_segments(setting.lower_bound_path)
    for ax, m in zip(axes[0], methods):
        ax.contourf(P, Q, np.minimum(z, vmax), levels=30, cmap="viridis")
        ax.contour(P, Q, np.minimum(z, vmax), levels=12, colors="k", linewidths=0.3)
        for f in paths_by_method[m].frames[:n_show].numpy():
            seg = _wrapped_segments(f)
            ax.plot(seg[:, 0], seg[:, 1], color="white", lw=0.5, alpha=0.6)
        ax.plot(lbp[:, 0], lbp[:, 1], "r--", lw=1, label="minimax grid path")
        if m in curves:
            c = curves[m].numpy()
            w = (c[:, :2] + math.pi) % TWO_PI - math.pi
            sc = ax.scatter(w[:, 0], w[:, 1], c=c[:, 2], cmap="magma", s=6, zorder=3)
            fig.colorbar(sc, ax=ax, label="logSNR of curve point")
        if avoid_point is not None and "region" in m:
            a = (np.asarray(avoid_point) + math.pi) % TWO_PI - math.pi
            ax.plot(a[0], a[1], "rx", ms=10, mew=2)
        for p, mk in ((setting.start, "o"), (setting.end, "s")):
            ax.plot(float(p[0]), float(p[1]), "w" + mk, ms=7, mec="k")
        if ax is axes[0][0]:
            ax.legend(loc="lower left", fontsize=7)
        ax.set_xlim(-math.pi, math.pi)
        ax.set_ylim(-math.pi, math.pi)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("phi (rad)")
        ax.set_ylabel("psi (rad)")
    fig.suptitle(f"{setting.name}\n{n_show} paths per method (wrapped onto the torus); dots: restraint centres",
                 fontsize=9)
    save_figure(fig, out / "paths.png")
    plt.close(fig)
