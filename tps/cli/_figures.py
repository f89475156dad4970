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
