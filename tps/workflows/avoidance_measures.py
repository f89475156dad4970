"""How near paths come to avoided structures and where they cross (step 4 of :mod:`tps.workflows.avoidance`).

Units: nm, rad.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tps.workflows.avoidance_targets import STATE_RADIUS, _phipsi, _wrap

__all__ = ["closest_approach", "crossing_channels"]


# ----------------------------------------------------------------------------- measures on paths
def closest_approach(frames, structures, topology, *, phipsi=None) -> dict:
    """How near the paths come to the avoided structures (heavy-atom RMSD) and (phi, psi) point.

    Parameters
    ----------
    frames : array, shape ``(n_paths, n_frames, n_atoms, 3)``, nm
    structures : array, shape ``(k, n_atoms, 3)`` or ``(n_atoms, 3)``, nm
    topology : mdtraj.Topology or openmm.app.Topology
    phipsi : (float, float), optional
        rad; default: the (phi, psi) of each structure (nearest counts), when the molecule has them.

    Returns
    -------
    dict
        ``rmsd_nm``: per-path smallest heavy-atom Kabsch RMSD to any structure, ``(n_paths,)``;
        ``rmsd_min_nm`` / ``rmsd_mean_nm``: its minimum and mean over paths; likewise
        ``phipsi_rad``, ``phipsi_min_rad``, ``phipsi_mean_rad`` (periodic Euclidean distance in
        (phi, psi)), absent for molecules without (phi, psi).

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> s = alanine_dipeptide.minimized_structures()
    >>> frames = np.stack([s["C5"], s["C7eq"]])[None]                   # one path of two frames
    >>> r = closest_approach(frames, s["C7eq"], alanine_dipeptide.topology())
    >>> round(r["rmsd_min_nm"], 6), round(r["phipsi_min_rad"], 6)
    (0.0, 0.0)
    """
    from tps.metrics.molecular import heavy_atom_indices, kabsch_rmsd

    f = torch.as_tensor(np.asarray(frames, dtype=np.float64))
    s = torch.as_tensor(np.asarray(structures, dtype=np.float64))
    if s.dim() == 2:
        s = s[None]
    heavy = heavy_atom_indices(topology)
    rmsd = torch.stack([kabsch_rmsd(f, sj, atom_indices=heavy) for sj in s]).amin(0).amin(-1).numpy()
    out = {"rmsd_nm": rmsd, "rmsd_min_nm": float(rmsd.min()), "rmsd_mean_nm": float(rmsd.mean())}
    try:
        pp = _phipsi(f, topology)
        points = np.atleast_2d(np.asarray(phipsi, dtype=np.float64)) if phipsi is not None else _phipsi(s, topology)
    except ValueError:
        return out
    d = np.stack([np.hypot(*np.moveaxis(_wrap(pp - p), -1, 0)) for p in points]).min(0).min(-1)
    out.update(phipsi_rad=d, phipsi_min_rad=float(d.min()), phipsi_mean_rad=float(d.mean()))
    return out


def crossing_channels(phipsi, target_center, *, radius: float = STATE_RADIUS) -> list:
    """Where each path crosses into the target's phi half: the last phi sign change before entering the target.

    Parameters
    ----------
    phipsi : array, shape ``(n_paths, n_frames, 2)``, rad
    target_center : (float, float)
        rad; the target ball's centre (entered when within ``radius``).
    radius : float
        rad.

    Returns
    -------
    list of dict, one per path
        ``{"channel": ..., "psi_deg": psi at the crossing, "frame": index}``; ``channel`` is
        ``"phi=0, alpha-R side"`` (phi crosses 0 with psi in (-120, 60] degrees),
        ``"phi=0, psi~pi side"`` (phi crosses 0 with psi elsewhere), ``"phi=pi"`` (phi crosses
        +-180 degrees) or ``"none"`` (no crossing before the target, or the target never reached).

    Examples
    --------
    >>> import numpy as np
    >>> path = np.radians([[-150, 160], [-70, -30], [10, -20], [60, -40]])[None]
    >>> crossing_channels(path, np.radians([60.0, -41.0]))
    [{'channel': 'phi=0, alpha-R side', 'psi_deg': -25.0, 'frame': 1}]
    """
    pp = np.asarray(phipsi, dtype=np.float64)
    center = np.asarray(target_center, dtype=np.float64)
    out = []
    for path in pp:
        inside = np.nonzero(np.hypot(*_wrap(path - center).T) <= radius)[0]
        end = int(inside[0]) if inside.size else 0
        phi = path[: end + 1, 0]
        flips = np.nonzero(np.sign(phi[:-1]) != np.sign(phi[1:]))[0]
        if flips.size == 0:
            out.append({"channel": "none", "psi_deg": float("nan"), "frame": -1})
            continue
        j = int(flips[-1])
        psi = math.degrees(math.atan2(np.sin(path[j:j + 2, 1]).sum(), np.cos(path[j:j + 2, 1]).sum()))
        if abs(phi[j + 1] - phi[j]) > math.pi:
            channel = "phi=pi"
        else:
            channel = "phi=0, alpha-R side" if -120.0 < psi <= 60.0 else "phi=0, psi~pi side"
        out.append({"channel": channel, "psi_deg": round(psi, 1), "frame": j})
    return out
