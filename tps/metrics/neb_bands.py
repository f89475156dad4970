"""Initial bands for :func:`tps.metrics.neb.climbing_image_neb`: Cartesian and torsion interpolation.

:func:`linear_band` interpolates Cartesian positions after Kabsch alignment; :func:`torsion_band`
turns chosen torsions (with a chosen sense of rotation) about the bonds of :func:`bond_graph`;
:func:`align_band` aligns each image onto the previous one. Positions in nm, angles in rad.
Re-exported by :mod:`tps.metrics.neb`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import openmm

from tps.metrics.molecular import kabsch_align

__all__ = ["align_band", "linear_band", "bond_graph", "torsion_band"]


# ----------------------------------------------------------------- geometry helpers
def _kabsch_align(mobile: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``mobile`` (n, 3) rotated and translated onto ``reference`` (n, 3) (least squares)."""
    return kabsch_align(mobile, reference) + np.asarray(reference, dtype=np.float64).mean(0)


def align_band(band: np.ndarray) -> np.ndarray:
    """Each image Kabsch-aligned onto the previous one (the first image is kept), ``(M, n, 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.2, 0.0]])
    >>> turned = x @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]) + 1.0
    >>> bool(np.allclose(align_band(np.stack([x, turned]))[1], x))
    True
    """
    out = np.array(band, dtype=np.float64, copy=True)
    for m in range(1, len(out)):
        out[m] = _kabsch_align(out[m], out[m - 1])
    return out


def linear_band(start, end, n_images: int, *, align: bool = True) -> np.ndarray:
    """Linear interpolation in Cartesian space after aligning ``end`` onto ``start``.

    Parameters
    ----------
    start, end : array, shape ``(n_atoms, 3)``, nm
    n_images : int
        Including both endpoints.
    align : bool
        Kabsch-align ``end`` onto ``start`` first (default True; False for particles in an
        external field, where position matters).

    Returns
    -------
    ndarray, shape ``(n_images, n_atoms, 3)``, nm

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]                                     # (22, 3) nm
    >>> band = linear_band(c5, c7ax, 5)
    >>> band.shape, bool((band[0] == c5).all())
    ((5, 22, 3), True)
    """
    a = np.asarray(start, dtype=np.float64)
    b = np.asarray(end, dtype=np.float64)
    if align:
        b = _kabsch_align(b, a)
    t = np.linspace(0.0, 1.0, int(n_images))[:, None, None]
    return (1 - t) * a + t * b


def bond_graph(system: openmm.System) -> list:
    """Bonded pairs ``(i, j)`` of ``system``: ``HarmonicBondForce`` bonds and constraints.

    Returns
    -------
    list of (int, int)
        Sorted, ``i < j``.

    Examples
    --------
    >>> from tps.systems import alanine_dipeptide
    >>> bonds = bond_graph(alanine_dipeptide.create_openmm_system(alanine_dipeptide.topology()))
    >>> len(bonds), bonds[:2]
    (21, [(0, 1), (0, 2)])
    """
    pairs = set()
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for b in range(force.getNumBonds()):
                i, j = force.getBondParameters(b)[:2]
                pairs.add((min(i, j), max(i, j)))
    for c in range(system.getNumConstraints()):
        i, j = system.getConstraintParameters(c)[:2]
        pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def _dihedral(x: np.ndarray, idx) -> float:
    p0, p1, p2, p3 = (x[i] for i in idx)
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    m1 = np.cross(b1 / np.linalg.norm(b1), n1)
    return float(np.arctan2(m1 @ n2, n1 @ n2))


def _moving_side(n_atoms: int, bonds, j: int, k: int) -> np.ndarray:
    """Atoms reachable from ``k`` without crossing the bond ``j-k``."""
    neighbours = [[] for _ in range(n_atoms)]
    for a, b in bonds:
        neighbours[a].append(b)
        neighbours[b].append(a)
    seen, stack = {k}, [k]
    while stack:
        a = stack.pop()
        for b in neighbours[a]:
            if a == k and b == j:
                continue
            if b not in seen:
                seen.add(b)
                stack.append(b)
    if j in seen:
        raise ValueError(f"torsions: the bond {j}-{k} lies in a ring; it cannot be rotated rigidly")
    return np.array(sorted(seen))


def _set_torsions(x: np.ndarray, torsions, sides, targets) -> np.ndarray:
    x = x.copy()
    for idx, side, target in zip(torsions, sides, targets):
        delta = target - _dihedral(x, idx)
        axis = x[idx[2]] - x[idx[1]]
        axis /= np.linalg.norm(axis)
        v = x[side] - x[idx[2]]
        c, s = np.cos(delta), np.sin(delta)
        # Rodrigues: a right-handed rotation of the far side about j -> k raises the torsion by delta
        x[side] = x[idx[2]] + v * c + np.cross(axis, v) * s + np.outer(v @ axis, axis) * (1 - c)
    return x


def torsion_band(start, end, torsions, bonds, n_images: int, *, turns: Optional[Sequence[int]] = None) -> np.ndarray:
    """Initial band that turns the given torsions from their start to their end values.

    Image ``m`` (``t = m / (n_images - 1)``) blends two structures that both carry the
    interpolated torsions ``tau(t) = tau_start + t * delta``: the start structure with its
    torsions set to ``tau(t)`` (weight ``1 - t``) and the end structure set to ``tau(t)`` and
    aligned onto it (weight ``t``). Bond lengths and angles thus pass smoothly from start to
    end while the torsions rotate rigidly. Images are aligned onto their predecessors.

    Parameters
    ----------
    start, end : array, shape ``(n_atoms, 3)``, nm
    torsions : int array, shape ``(n_torsions, 4)``
        Atom quadruples ``(i, j, k, l)``; atoms on the ``k`` side of bond ``j-k`` move.
    bonds : sequence of (int, int)
        Bonded pairs, e.g. :func:`bond_graph`.
    n_images : int
    turns : sequence of int, optional
        Sense of rotation per torsion: ``+1`` increasing, ``-1`` decreasing, ``0`` the shorter
        way (default all 0).

    Returns
    -------
    ndarray, shape ``(n_images, n_atoms, 3)``, nm

    Raises
    ------
    ValueError
        If ``turns`` has the wrong length or a torsion's central bond lies in a ring.

    Examples
    --------
    Turning alanine dipeptide's (phi, psi) from C5 to C7ax: the band's first and last images
    carry the torsions of the two minima.

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]                                     # (22, 3) nm
    >>> import torch
    >>> from tps.potentials.openmm import dihedrals, phi_psi_indices
    >>> top = alanine_dipeptide.topology()
    >>> bonds = bond_graph(alanine_dipeptide.create_openmm_system(top))
    >>> band = torsion_band(c5, c7ax, phi_psi_indices(top), bonds, 7)
    >>> band.shape
    (7, 22, 3)
    >>> dihedrals(torch.as_tensor(band[[0, -1]]), phi_psi_indices(top))     # rad
    tensor([[-2.5660,  2.7766],
            [ 1.0506, -0.7132]], dtype=torch.float64)
    """
    a = np.asarray(start, dtype=np.float64)
    b = np.asarray(end, dtype=np.float64)
    torsions = np.asarray(torsions, dtype=np.int64).reshape(-1, 4)
    turns = [0] * len(torsions) if turns is None else list(turns)
    if len(turns) != len(torsions):
        raise ValueError(f"turns: expected {len(torsions)} entries, got {len(turns)}")
    sides = [_moving_side(a.shape[0], bonds, int(t[1]), int(t[2])) for t in torsions]
    tau_a = np.array([_dihedral(a, t) for t in torsions])
    tau_b = np.array([_dihedral(b, t) for t in torsions])
    delta = np.remainder(tau_b - tau_a + np.pi, 2 * np.pi) - np.pi
    for n, turn in enumerate(turns):
        if turn > 0 and delta[n] < 0:
            delta[n] += 2 * np.pi
        elif turn < 0 and delta[n] > 0:
            delta[n] -= 2 * np.pi
    images = []
    for t in np.linspace(0.0, 1.0, int(n_images)):
        tau = tau_a + t * delta
        from_a = _set_torsions(a, torsions, sides, tau)
        from_b = _kabsch_align(_set_torsions(b, torsions, sides, tau), from_a)
        images.append((1 - t) * from_a + t * from_b)
    return align_band(np.stack(images))
