"""Figures of the concept pages, computed by the documentation build from the package itself.

Each ``fig_*`` function draws one figure with the shipped Müller-Brown system and its pretrained
model; the pages call them from ``.. plot::`` directives. The geodesic is solved once per build
(:func:`mb_geodesic` is cached) on quick settings: 64 curve points, two solver starts; about
10-20 s on one CPU core. Müller-Brown is dimensionless (kT = 12.5).
"""

from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import numpy as np
import torch

N_POINTS = 64
LOGSNR = 6.0


@functools.lru_cache(maxsize=None)
def mb_geodesic():
    """System, pretrained model, geodesic and straight line (model coordinates), solved once."""
    from tps import pretrained, systems
    from tps.spacetime import geodesic

    torch.set_num_threads(1)
    system, model = systems.load("muller-brown"), pretrained.load("muller-brown")
    z_a, z_b = (model.to_model(system.endpoints[k]).float() for k in "AB")
    curve = geodesic(model.denoiser, z_a, z_b, logsnr=LOGSNR, n_points=N_POINTS, init_dips=(6.0, 2.0),
                     coarse_points=32)
    s = torch.linspace(0, 1, N_POINTS)[:, None]
    line = ((1 - s) * z_a + s * z_b, torch.full((N_POINTS,), LOGSNR))
    return system, model, curve, line


def _surface(ax, system, *, levels=np.linspace(-150, 60, 22), box=None):
    from tps.systems.muller_brown import BOX

    (x0, x1), (y0, y1) = box or BOX
    gx, gy = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
    grid = torch.tensor(np.stack([gx, gy], -1), dtype=torch.float64)
    u = system.potential.energy(grid, count=False).numpy()
    cs = ax.contourf(gx, gy, np.clip(u, levels[0], levels[-1]), levels=levels, cmap="Greys_r")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    for name, xy in system.endpoints.items():
        ax.annotate(name, xy.tolist(), color="tab:red", fontsize=12, fontweight="bold",
                    xytext=(6, 6), textcoords="offset points")
    return cs, grid, u


def fig_logsnr_profile():
    """logSNR along the geodesic and the straight line, with their Fisher-Rao curve energies."""
    from tps.spacetime import curve_energy

    system, model, curve, (line_x, line_logsnr) = mb_geodesic()
    e_line = float(curve_energy(model.denoiser, line_x, line_logsnr))
    s = np.linspace(0, 1, N_POINTS)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.plot(s, curve.logsnr.numpy(), lw=2, label=f"spacetime geodesic (energy {float(curve.energy):.0f})")
    ax.plot(s, line_logsnr.numpy(), lw=2, ls="--", label=f"straight line at constant logSNR (energy {e_line:.0f})")
    ax.set_xlabel("curve parameter s (A at 0, B at 1)")
    ax.set_ylabel("logSNR  $\\lambda$")
    ax.legend(loc="lower center", fontsize=8)
    ax.set_title("Müller-Brown, pretrained model: the geodesic dips into noise")
    fig.tight_layout()


def fig_restraint_centres():
    """Restraint centres and widths of the geodesic over the Müller-Brown surface."""
    from tps.sampling import restraint_schedule
    from tps.systems.muller_brown import BOX

    system, model, curve, (line_x, line_logsnr) = mb_geodesic()
    centres, stiffness = restraint_schedule(curve.x.double(), curve.logsnr.double(), model.scaling)
    line_c, _ = restraint_schedule(line_x.double(), line_logsnr.double(), model.scaling)
    c = centres.numpy()
    (x0, x1), (y0, y1) = BOX
    box = ((min(x0, c[:, 0].min() - 0.1), max(x1, c[:, 0].max() + 0.1)),
           (min(y0, c[:, 1].min() - 0.1), max(y1, c[:, 1].max() + 0.1)))
    fig, ax = plt.subplots(figsize=(7.5, 6.0))
    cs, _, _ = _surface(ax, system, box=box)
    fig.colorbar(cs, ax=ax, label="U (dimensionless)", shrink=0.8)
    width = 1.0 / np.sqrt(stiffness.numpy())          # restraint standard deviation in units of kT
    for i in range(0, N_POINTS, 4):
        ax.add_patch(plt.Circle(c[i], width[i], fill=False, color="tab:orange", alpha=0.6, lw=0.8))
    sc = ax.scatter(c[:, 0], c[:, 1], c=curve.logsnr.numpy(), cmap="viridis", s=14, zorder=3)
    fig.colorbar(sc, ax=ax, label="logSNR of the curve point", shrink=0.8)
    ax.plot(line_c[:, 0].numpy(), line_c[:, 1].numpy(), "w--", lw=1, label="straight line")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("restraint centres (dots) and widths $1/\\sqrt{k}$ (circles)", fontsize=10)
    fig.tight_layout()


def fig_denoising_distributions():
    """Three denoising distributions along the geodesic: Boltzmann density times a Gaussian restraint."""
    from tps.sampling import restraint_schedule

    system, model, curve, _ = mb_geodesic()
    centres, stiffness = restraint_schedule(curve.x.double(), curve.logsnr.double(), model.scaling)
    picks = [0, int(torch.argmin(curve.logsnr)), N_POINTS - 1]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), sharey=True)
    for ax, i in zip(axes, picks):
        _, grid, u = _surface(ax, system)
        c = centres[i]
        tilted = u / system.kT + 0.5 * float(stiffness[i]) * ((grid - c) ** 2).sum(-1).numpy()
        density = np.exp(-(tilted - tilted.min()))
        ax.contour(grid[..., 0].numpy(), grid[..., 1].numpy(), density, levels=[0.05, 0.3, 0.7],
                   colors=["tab:blue"], linewidths=[0.8, 1.2, 1.8])
        ax.plot(*c.tolist(), "x", color="tab:orange", ms=8, mew=2)
        ax.set_title(f"s = {i / (N_POINTS - 1):.2f}, logSNR = {float(curve.logsnr[i]):.1f}", fontsize=9)
        if ax is not axes[0]:
            ax.set_ylabel("")
    fig.suptitle("denoising distributions $p(x_0 \\mid z_t, \\lambda)$ (blue contours) and restraint "
                 "centres (x)", fontsize=10)
    fig.tight_layout()


def fig_annealed_langevin(n_paths: int = 16, steps_per_point: int = 15):
    """A few annealed-Langevin paths along the geodesic and their energies."""
    from tps.sampling import annealed_langevin

    system, model, curve, _ = mb_geodesic()
    paths = annealed_langevin(system.potential, curve.x.double(), curve.logsnr.double(), kT=system.kT,
                              n_paths=n_paths, steps_per_point=steps_per_point, scaling=model.scaling,
                              x_start=system.endpoints["A"], generator=torch.Generator().manual_seed(0))
    frames = paths.frames.numpy()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.0), gridspec_kw={"width_ratios": [1, 1.2]})
    _surface(ax, system)
    for p in frames:
        ax.plot(p[:, 0], p[:, 1], lw=0.7, alpha=0.8)
    ax.set_title(f"{n_paths} paths, {steps_per_point} Langevin steps per curve point", fontsize=9)
    energies = paths.energies.numpy()
    s = np.linspace(0, 1, energies.shape[1])
    for e in energies:
        ax2.plot(s, e, lw=0.7, alpha=0.7)
    ax2.axhline(system.reference["lower_bound"].value, color="k", ls=":", label="saddle S1 (minimax barrier)")
    ax2.set_xlabel("fraction of the path")
    ax2.set_ylabel("U along the path")
    ax2.legend(fontsize=8)
    fig.tight_layout()
