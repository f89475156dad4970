"""What the 2-D systems (Muller-Brown, alanine dipeptide in (phi, psi)) share: model checks,
constraints of the geodesic, the curve payload, the metrics row and the figure."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

import torch

from tps.systems.base import ModelMismatch, curve_centres, curve_parts

TWO_PI = 2.0 * math.pi


def check_2d_model(system, model, expected: str, source: str) -> None:
    """Raise :class:`ModelMismatch` unless ``model`` is an ``expected`` network on 2 coordinates
    trained for ``system.name`` (or not tagged)."""
    net = type(model.network).__name__
    trained_for = model.metadata.get("system")
    what = f"{source}: a {net} model" + (f" trained for {trained_for!r}" if trained_for else "")
    dim = getattr(model.network.config, "dim", None)
    if net != expected or dim != 2 or (trained_for is not None and trained_for != system.name):
        raise ModelMismatch(f"{what} cannot be used for {system.name} (expected a {expected} on 2 coordinates"
                            + (f" trained for {system.name!r}" if trained_for else "") + ")")


def low_variance(constraint: str, cp) -> tuple:
    """``(LowVariance,)`` for ``constraint == "low-variance"``, else ``()``."""
    from tps.spacetime import LowVariance

    if constraint == "low-variance":
        return (LowVariance(cp.low_variance_threshold, weight=cp.low_variance_weight),)
    return ()


def region_avoidance(net, cx, clam, x_star, cp, *, clamp=None):
    """RegionAvoidance around ``x_star`` (model coordinates) with threshold = smallest relative KL
    on the free curve ``(cx, clam)`` plus ``cp.avoid_kl_margin``; returns ``(constraint, threshold)``."""
    from tps.spacetime import RegionAvoidance
    from tps.spacetime.constraints import CurveState
    from tps.spacetime.geometry import segment_products

    probe = RegionAvoidance(x_star, logsnr_star=cp.avoid_logsnr, threshold=0.0)
    with torch.enable_grad():
        x, lam = cx[None].detach(), clam[None].detach()
        _, (eta_x, eta_t, mu_x, mu_t) = segment_products(net, x, lam, clamp=bool(clamp), return_parameters=True)
    kl = probe.relative_kl(CurveState(x, lam, eta_x, eta_t, mu_x, mu_t, net))[0].detach()
    threshold = float(kl.min()) + cp.avoid_kl_margin
    return RegionAvoidance(x_star, logsnr_star=cp.avoid_logsnr, threshold=threshold, weight=cp.avoid_weight), \
        threshold


def payload(name: str, model, result, t0: float, extra: dict) -> dict:
    """The ``tps-curve/1`` dict of a solved geodesic (``x``, ``logsnr`` model coordinates; ``centres``
    physical; ``wall_s`` since ``t0``)."""
    from tps.diffusion.schedule import restraint_schedule

    x = result.x.detach().double().cpu()
    lam = result.logsnr.detach().double().cpu()
    with torch.no_grad():
        centres = restraint_schedule(x, lam, model.scaling).centres
    return {"format": "tps-curve/1", "system": name, "x": x, "logsnr": lam, "centres": centres,
            "scaling": model.scaling.as_dict(), "curve_energy": float(result.energy),
            "curve_energy_initial": float(result.initial_energy), "n_evaluations": int(result.n_evaluations),
            "wall_s": time.perf_counter() - t0, "extra": extra}


def sample_surface(system, curve, protocol, *, seed: int, executor=None, checkpoint=None, progress: bool = False,
                   generator=None):
    """Annealed-Langevin paths of a 2-D system along ``curve`` (:func:`tps.sampling.annealed_langevin`
    on ``system.potential`` from the start endpoint, numbers from the sampler ``protocol``).

    Noise: ``generator``, or one seeded with ``seed + 1``. With an executor the task streams come
    from ``seed + 1``, or from one integer drawn from ``generator`` when that is given. The
    protocol's ``annealing_options()`` (re-noised centres, logSNR shift) go to the sampler; none
    are set by default, which keeps the historical stream.
    """
    from tps.sampling import annealed_langevin

    cx, clam, scaling, _ = curve_parts(curve)
    par = {}
    if executor is not None:
        par = {"executor": executor, **({} if generator is not None else {"seed": seed + 1}),
               **({} if checkpoint is None else {"checkpoint": checkpoint})}
    gen = torch.Generator().manual_seed(seed + 1) if generator is None else generator
    s = protocol
    return annealed_langevin(system.potential, cx, clam, kT=system.kT, n_paths=s.n_paths,
                             steps_per_point=s.steps_per_point, step_size=s.step_size, scaling=scaling,
                             frames_per_point=s.frames_per_point, x_start=system.endpoints[system.start],
                             generator=gen, progress=progress, **s.annealing_options(), **par)


def add_selection_evals(row: dict, curve) -> dict:
    """Count the potential evaluations spent choosing a periodic image (curve extra) in the row."""
    extra = {} if curve is None else (curve.get("extra") or {})  # a tps-curve/1 dict or a Curve
    n_sel = int(extra.get("n_selection_energy_evals", 0))
    if n_sel:
        row["n_selection_energy_evals"] = n_sel
        row["n_energy_evals"] = int(row["n_energy_evals"]) + n_sel
    return row


def wrapped_lines(xy):
    """``(n, 2)`` angles with NaN rows inserted where consecutive points jump by more than pi."""
    import numpy as np

    out = []
    for i in range(len(xy)):
        if i and np.abs(xy[i] - xy[i - 1]).max() > math.pi:
            out.append([np.nan, np.nan])
        out.append(xy[i])
    return np.asarray(out)


def paths_figure(system, paths, curve, path, *, draw, n_show: int = 30, title: str = "",
                 n_total: Optional[int] = None, energies_panel: bool = False) -> Path:
    """``paths.png``: ``draw(fig, ax, frames, centres, logsnr) -> ends (2, 2)`` draws the background,
    the paths and the curve; ``energies_panel`` adds the energies along the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from tps.io import atomic_path

    if energies_panel:
        fig, (ax, ax_e) = plt.subplots(1, 2, figsize=(11.6, 5.2), gridspec_kw={"width_ratios": [1.25, 1.0]})
    else:
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        ax_e = None
    frames = paths.frames[:n_show].detach().cpu().double()
    centres = logsnr = None
    if curve is not None:
        centres = curve_centres(curve)
        logsnr = curve["logsnr"] if isinstance(curve, dict) else curve.logsnr
    ends = draw(fig, ax, frames, centres, logsnr)
    if ax_e is not None:
        energies = paths.energies[:n_show].detach().cpu().double().numpy()
        progress = np.linspace(0.0, 1.0, energies.shape[1])
        for e in energies:
            ax_e.plot(progress, e, color="tab:blue", lw=0.5, alpha=0.5)
        ax_e.plot(progress, np.median(energies, 0), color="black", lw=1.5, label="median over paths")
        ax_e.set_xlabel(f"fraction of the path ({system.start} -> {system.target})")
        ax_e.set_ylabel("OpenMM potential energy (kJ/mol)")
        ax_e.set_title(f"energies along the paths ({system.force_field_label}, vacuum)", fontsize=9)
        ax_e.legend(loc="upper right", fontsize=7)
    ax.plot(ends[:, 0], ends[:, 1], "r*", ms=12, label="endpoints")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title or f"{system.name}: {min(n_show, paths.n_paths)} of {n_total or paths.n_paths} transition "
                          "paths", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


def draw_phipsi(fig, ax, pp, centres_pp, logsnr, ends_pp, *, background: bool = True):
    """Paths ``pp (n, T, 2)`` and curve centres in (phi, psi) (rad), over the package's alanine dipeptide
    free-energy surface (white paths) or, with ``background=False``, on a blank plot (blue paths)."""
    import numpy as np

    from tps.systems import alanine_dipeptide as aldp

    if background:
        phi, psi, fes = aldp.load_free_energy_surface()
        cs = ax.contourf(phi, psi, np.clip(fes, None, 60), levels=24, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="free energy (kJ/mol), package (phi, psi) surface")
    for p in pp:
        line = wrapped_lines(p)
        ax.plot(line[:, 0], line[:, 1], color="white" if background else "tab:blue", lw=0.4, alpha=0.6)
    if centres_pp is not None:  # weak restraints (logSNR < 0) not drawn
        c = centres_pp.copy()
        c[logsnr.numpy() < 0] = np.nan
        line = wrapped_lines(c)
        ax.plot(line[:, 0], line[:, 1], color="red", lw=1.5, label="geodesic restraint centres (logSNR >= 0)")
    ax.set_xlim(-math.pi, math.pi)
    ax.set_ylim(-math.pi, math.pi)
    ax.set_xlabel(r"$\phi$ (rad)")
    ax.set_ylabel(r"$\psi$ (rad)")
    return ends_pp
