"""What a region-avoiding geodesic avoids, in model coordinates (step 1-2 of :mod:`tps.workflows.avoidance`).

A structure to avoid comes from a PDB file (:func:`read_structure_to_avoid`) or from the training
frames nearest a (phi, psi) point (:func:`frames_near_phipsi`; a system regenerates a model's
training frames from its recipe, e.g. :func:`tps.systems.alanine_dipeptide.recipe_training_frames`);
:func:`avoided_model_coordinates` brings it into model
coordinates exactly like the target endpoint, and :func:`check_endpoints_outside` refuses an
avoided (phi, psi) region that contains an endpoint.

Units: nm, rad; model coordinates are dimensionless.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from tps.core.units import check_radians
from tps.metrics.molecular import kabsch_align
from tps.sampling.md import check_topology_match

__all__ = ["STATE_RADIUS", "read_structure_to_avoid", "frames_near_phipsi", "avoided_model_coordinates",
           "check_endpoints_outside"]

#: Default radius (rad) of an avoided (phi, psi) region: that of the dipeptides' states
#: (``tps.systems.alanine_dipeptide.STATE_RADIUS``, one layer up; tests/test_core.py checks they agree).
STATE_RADIUS = 0.75


def _wrap(a):
    return (np.asarray(a, dtype=np.float64) + math.pi) % (2 * math.pi) - math.pi


def _phipsi(positions, topology) -> np.ndarray:
    from tps.potentials.openmm import phi_psi

    return phi_psi(torch.as_tensor(np.asarray(positions), dtype=torch.float64), topology).numpy()


# ----------------------------------------------------------------------------- what to avoid
def read_structure_to_avoid(path, topology) -> np.ndarray:
    """A structure to avoid from a PDB file, checked atom by atom against ``topology``.

    Parameters
    ----------
    path : str or Path
        PDB file with exactly the system's atoms in the system's order (first model used).
    topology : mdtraj.Topology or openmm.app.Topology

    Returns
    -------
    ndarray, shape ``(n_atoms, 3)``, nm

    Raises
    ------
    ValueError
        If the file is missing or unreadable, or its atoms differ from the system's (message
        starts with ``avoid_structure``).

    Examples
    --------
    >>> import tempfile, os
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> path = os.path.join(alanine_dipeptide.data_dir(), "C7eq.pdb")
    >>> read_structure_to_avoid(path, top).shape
    (22, 3)
    """
    import mdtraj

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"avoid_structure: {path}: no such file; pass a PDB file of the structure to avoid")
    try:
        traj = mdtraj.load_pdb(str(path))
    except Exception as exc:
        raise ValueError(f"avoid_structure: {path} cannot be read as a PDB file ({type(exc).__name__}); "
                         "pass a PDB file with the system's atoms") from None
    check_topology_match(topology, traj.topology, what=f"avoid_structure {path.name}")
    return traj.xyz[0].astype(np.float64)


def frames_near_phipsi(frames, topology, phipsi, *, k: int = 8, radius: float = STATE_RADIUS) -> np.ndarray:
    """Indices of the ``k`` frames nearest ``phipsi`` in periodic (phi, psi) distance, within ``radius``.

    Parameters
    ----------
    frames : array, shape ``(n_frames, n_atoms, 3)``, nm
        Typically the model's training frames.
    topology : mdtraj.Topology or openmm.app.Topology
        A dipeptide (one phi and one psi torsion).
    phipsi : (float, float)
        rad.
    k : int
        At most this many frames (default 8).
    radius : float
        rad; frames farther away are not representative (default 0.75, the package's state radius).

    Returns
    -------
    ndarray of int, shape ``(k',)``, ``1 <= k' <= k``, nearest first.

    Raises
    ------
    ValueError
        If the molecule has no (phi, psi), the angles are not radians, or no frame lies within
        ``radius`` (the data do not cover the point).

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> s = alanine_dipeptide.minimized_structures()
    >>> frames = np.stack([s["C5"], s["C7ax"], s["C7eq"]])
    >>> frames_near_phipsi(frames, alanine_dipeptide.topology(), (-1.3, 1.0), k=2).tolist()     # C7eq only
    [2]
    """
    point = check_radians(phipsi, "avoid_phipsi").numpy()
    if point.shape != (2,):
        raise ValueError(f"avoid_phipsi: expected two angles (phi, psi) in rad, got {phipsi!r}")
    try:
        pp = _phipsi(frames, topology)
    except ValueError as exc:
        raise ValueError(f"avoid_phipsi: this molecule has no (phi, psi) ({exc}); pass a structure to avoid "
                         "instead") from None
    dist = np.hypot(*_wrap(pp - point).T)
    order = np.argsort(dist, kind="stable")[: int(k)]
    order = order[dist[order] <= radius]
    if order.size == 0:
        raise ValueError(f"avoid_phipsi: no training frame within {radius:g} rad of ({point[0]:.2f}, {point[1]:.2f}) "
                         f"(nearest {dist.min():.2f} rad); choose a point the training data cover or pass a "
                         "structure to avoid")
    return order


def avoided_model_coordinates(structures, endpoints, scaling) -> torch.Tensor:
    """Structures to avoid in model coordinates, brought there exactly like the target endpoint.

    Each structure is centred, Kabsch-rotated onto the (centred) start structure and divided by
    the model's scale, as :func:`tps.workflows.cartesian.prepare_endpoints` and
    :meth:`~tps.workflows.cartesian.Endpoints.model_coordinates` do with the target.

    Parameters
    ----------
    structures : array, shape ``(k, n_atoms, 3)`` or ``(n_atoms, 3)``, nm
    endpoints : tps.workflows.cartesian.Endpoints
    scaling : AffineScaling
        The model's scalar scaling.

    Returns
    -------
    Tensor, shape ``(k, n_atoms, 3)``, float64, model units.

    Examples
    --------
    The target itself lands exactly on the geodesic's end point:

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> from tps.workflows.cartesian import Endpoints, fit_scaling, kabsch_align
    >>> s = alanine_dipeptide.minimized_structures()
    >>> ends = Endpoints(s["C5"], kabsch_align(s["C7ax"], s["C5"]) + s["C5"].mean(0), s["C5"].mean(0))
    >>> scaling = fit_scaling(np.stack([s["C5"], s["C7ax"]]))
    >>> z = avoided_model_coordinates(s["C7ax"] + 1.0, ends, scaling)          # shifted copy
    >>> z.shape, bool(np.allclose(z[0], ends.model_coordinates(scaling)[1]))
    (torch.Size([1, 22, 3]), True)
    """
    x = np.asarray(structures, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    n_atoms = endpoints.start.shape[0]
    if x.ndim != 3 or x.shape[1:] != (n_atoms, 3):
        raise ValueError(f"avoid_structure: expected shape (k, {n_atoms}, 3) or ({n_atoms}, 3) in nm, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("avoid_structure: positions contain NaN or infinity")
    aligned = np.stack([kabsch_align(xi, endpoints.start) for xi in x])
    return scaling.to_model(torch.as_tensor(aligned, dtype=torch.float64))


def check_endpoints_outside(points_phipsi, endpoints, topology, *, radius: float = STATE_RADIUS,
                            what: str = "avoid_phipsi") -> None:
    """Refuse an avoided (phi, psi) region that contains an endpoint.

    Parameters
    ----------
    points_phipsi : array, shape ``(2,)`` or ``(k, 2)``, rad
        Avoided point(s).
    endpoints : tps.workflows.cartesian.Endpoints
    topology : mdtraj.Topology or openmm.app.Topology
    radius : float
        rad; the avoided region is the periodic ball of this radius (default 0.75, the states').
    what : str
        Argument named in the message.

    Raises
    ------
    ValueError
        If an endpoint's (phi, psi) lies within ``radius`` of an avoided point.

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> from tps.workflows.cartesian import Endpoints, kabsch_align
    >>> s = alanine_dipeptide.minimized_structures()
    >>> ends = Endpoints(s["C5"], kabsch_align(s["C7ax"], s["C5"]) + s["C5"].mean(0), s["C5"].mean(0))
    >>> check_endpoints_outside((-1.1, -0.7), ends, alanine_dipeptide.topology())        # alpha-R: fine
    >>> check_endpoints_outside((-2.6, 2.8), ends, alanine_dipeptide.topology())
    Traceback (most recent call last):
        ...
    ValueError: avoid_phipsi: the avoided region (radius 0.75 rad around (-2.60, 2.80)) contains the start (phi, psi) = (-2.57, 2.78); choose a point at least 0.75 rad from both endpoints
    """
    pts = np.atleast_2d(np.asarray(points_phipsi, dtype=np.float64))
    ends = _phipsi(np.stack([endpoints.start, endpoints.target]), topology)
    for p in pts:
        for name, e in zip(("start", "target"), ends):
            if float(np.hypot(*_wrap(e - p))) < radius:
                raise ValueError(f"{what}: the avoided region (radius {radius:g} rad around ({p[0]:.2f}, {p[1]:.2f})) "
                                 f"contains the {name} (phi, psi) = ({e[0]:.2f}, {e[1]:.2f}); choose a point at "
                                 f"least {radius:g} rad from both endpoints")
