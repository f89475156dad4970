"""``paths.png``: transition paths over the potential or the (phi, psi) free-energy surface
(all-atom: plus the OpenMM energies along the paths), drawn by the system (``system.figure``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


# ============================================================================ figures
def figure(system: str, paths, curve: Optional[dict], path, *, n_show: int = 30, title: str = "",
           n_total: Optional[int] = None) -> Path:
    """``paths.png``: paths over the potential (Muller-Brown) or the (phi, psi) free-energy surface."""
    from tps.cli._stages import load_system

    return load_system(system).figure(paths, curve, path, n_total=n_total, n_show=n_show, title=title)


def refined_figure(system, geodesic, refined, curve, path, *, n_geodesic=None, refined_row=None,
                   n_show: int = 30) -> Path:
    """``refined.png``: the geodesic ensemble (left) and the refined ensemble (right), each drawn
    over the system's surface by ``system.figure`` (the paths' transition segments)."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    from tps.io import atomic_path

    import torch

    row = refined_row or {}
    acc = row.get("acceptance_rate")
    right = (f"seeded shooting: {min(n_show, refined.n_paths)} of {refined.n_paths} chain states "
             f"({row.get('n_chains', '?')} chains" + ("" if acc is None else f", acceptance {acc:.2f}") + ")")
    left = f"geodesic ensemble: {min(n_show, geodesic.n_paths)} of {n_geodesic or geodesic.n_paths} paths"
    if refined.n_paths > n_show:  # chain states spread over the chains and the kept rounds
        refined = refined[torch.linspace(0, refined.n_paths - 1, n_show).round().long()]
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, paths, title in (("geodesic.png", geodesic, left), ("refined.png", refined, right)):
            files.append(system.figure(paths, curve, Path(tmp) / name, n_total=paths.n_paths, n_show=n_show,
                                       title=title))
        images = [mpimg.imread(str(f)) for f in files]
    height = max(im.shape[0] for im in images)
    width = sum(im.shape[1] for im in images)
    fig, axes = plt.subplots(1, 2, figsize=(width / 120, height / 120),
                             gridspec_kw={"width_ratios": [im.shape[1] for im in images]})
    for ax, im in zip(axes, images):
        ax.imshow(im)
        ax.axis("off")
    fig.subplots_adjust(left=0, right=1, top=1, bottom=0, wspace=0.01)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)
