"""``paths.png``: transition paths over the potential or the (phi, psi) free-energy surface
(all-atom: plus the OpenMM energies along the paths)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from tps.cli._common import TWO_PI, _aldp_endpoints, _phipsi_surface


# ============================================================================ figures
def _wrapped_lines(xy):
    import numpy as np

    out = []
    for i in range(len(xy)):
        if i and np.abs(xy[i] - xy[i - 1]).max() > math.pi:
            out.append([np.nan, np.nan])
        out.append(xy[i])
    return np.asarray(out)


def figure(system: str, paths, curve: Optional[dict], path, *, n_show: int = 30, title: str = "",
           n_total: Optional[int] = None) -> Path:
    """``paths.png``: paths over the potential (Muller-Brown) or the (phi, psi) free-energy surface."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from tps.io import atomic_path

    if system == "alanine-dipeptide":  # second panel: OpenMM energies along the paths
        fig, (ax, ax_e) = plt.subplots(1, 2, figsize=(11.6, 5.2), gridspec_kw={"width_ratios": [1.25, 1.0]})
    else:
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        ax_e = None
    frames = paths.frames[:n_show].detach().cpu().double()
    if system == "muller-brown":
        from tps.systems import load
        from tps.systems.muller_brown import BOX

        sysm = load("muller-brown")
        gx, gy = np.meshgrid(np.linspace(*BOX[0], 200), np.linspace(*BOX[1], 200))
        grid = torch.as_tensor(np.stack([gx, gy], -1).reshape(-1, 2))
        with torch.no_grad():
            u = sysm.potential.energy(grid).reshape(gx.shape).numpy()
        cs = ax.contourf(gx, gy, np.clip(u, None, 100), levels=30, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="potential energy U (dimensionless, clipped at 100)")
        for p in frames.numpy():
            ax.plot(p[:, 0], p[:, 1], color="white", lw=0.4, alpha=0.5)
        if curve is not None:  # centres of weak restraints (logSNR < 0) wander off: not drawn
            c = curve["centres"].numpy().copy()
            c[curve["logsnr"].numpy() < 0] = np.nan
            ax.plot(c[:, 0], c[:, 1], color="red", lw=1.5, label="geodesic restraint centres (logSNR >= 0)")
        ends = torch.stack([sysm.endpoints["A"], sysm.endpoints["B"]]).numpy()
        ax.set_xlim(*BOX[0])
        ax.set_ylim(*BOX[1])
        ax.set_xlabel("x (dimensionless)")
        ax.set_ylabel("y (dimensionless)")
    else:
        from tps.systems import alanine_dipeptide as aldp

        phi, psi, fes = aldp.load_free_energy_surface()
        cs = ax.contourf(phi, psi, np.clip(fes, None, 60), levels=24, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="free energy (kJ/mol), package (phi, psi) surface")
        if system == "alanine-dipeptide":
            cv = aldp.load().states["C7ax"].cv
            pp = cv(frames).numpy()
            ends = cv(torch.as_tensor(np.stack([_aldp_endpoints().start, _aldp_endpoints().target]))).numpy()
        else:
            pp = (frames.numpy() + math.pi) % TWO_PI - math.pi
            _, _, _, start, end = _phipsi_surface()
            ends = torch.stack([start, end]).numpy()
        for p in pp:
            line = _wrapped_lines(p)
            ax.plot(line[:, 0], line[:, 1], color="white", lw=0.4, alpha=0.6)
        if curve is not None:  # (phi, psi) of the restraint centres; weak restraints (logSNR < 0) not drawn
            if system == "alanine-dipeptide":
                c = cv(curve["centres"].double()).numpy().copy()
            else:
                c = (curve["centres"].numpy() + math.pi) % TWO_PI - math.pi
            c[curve["logsnr"].numpy() < 0] = np.nan
            line = _wrapped_lines(c)
            ax.plot(line[:, 0], line[:, 1], color="red", lw=1.5, label="geodesic restraint centres (logSNR >= 0)")
        ax.set_xlim(-math.pi, math.pi)
        ax.set_ylim(-math.pi, math.pi)
        ax.set_xlabel(r"$\phi$ (rad)")
        ax.set_ylabel(r"$\psi$ (rad)")
    if ax_e is not None:
        energies = paths.energies[:n_show].detach().cpu().double().numpy()
        progress = np.linspace(0.0, 1.0, energies.shape[1])
        for e in energies:
            ax_e.plot(progress, e, color="tab:blue", lw=0.5, alpha=0.5)
        ax_e.plot(progress, np.median(energies, 0), color="black", lw=1.5, label="median over paths")
        ax_e.set_xlabel("fraction of the path (C5 -> C7ax)")
        ax_e.set_ylabel("OpenMM potential energy (kJ/mol)")
        ax_e.set_title("energies along the paths (amber99sbildn, vacuum)", fontsize=9)
        ax_e.legend(loc="upper right", fontsize=7)
    ax.plot(ends[:, 0], ends[:, 1], "r*", ms=12, label="endpoints")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title or f"{system}: {min(n_show, paths.n_paths)} of {n_total or paths.n_paths} transition paths",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)
