"""Metrics of all-atom path ensembles (benchmarks.md sections 1 and 3).

- :func:`openmm_energies`: force-field energies of any trajectory, recomputed by OpenMM (the
  check users run on frames from any sampler).
- :func:`kabsch_rmsd`: batched, differentiable Kabsch-aligned RMSD (torch), tested against
  ``mdtraj.rmsd``.
- :func:`rmsd_to_target`, :func:`consecutive_frame_rmsd` and :func:`summarize_molecular`: the
  ``results.json`` row of :func:`tps.metrics.summarize` for molecules, with the all-atom Kabsch
  RMSD as ``max_step`` and the heavy-atom ``rmsd_to_target``.

Units: nm, kJ/mol, radians.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import openmm
import openmm.unit as unit
import torch

from tps.metrics.paths import final_frames, summarize
from tps.potentials.openmm import PhiPsi, as_mdtraj_topology
from tps.states import Ball

_KJ = unit.kilojoule_per_mole


def _openmm_system(system):
    """Accept an ``openmm.System`` or anything with ``.potential.system`` (a ``tps`` System)."""
    if isinstance(system, openmm.System):
        return system
    inner = getattr(getattr(system, "potential", None), "system", None)
    if isinstance(inner, openmm.System):
        return inner
    raise TypeError(f"system: expected an openmm.System, got {type(system).__name__}")


def openmm_energies(system, frames, *, platform="auto") -> np.ndarray:
    """Force-field potential energies of trajectory frames, recomputed by OpenMM.

    Parameters
    ----------
    system : openmm.System
        Positions are taken as given (constraints are not applied).
    frames : array or Tensor, shape ``(..., n_atoms, 3)``, nm; or ``mdtraj.Trajectory``
        For a trajectory with unit cells the box vectors are set frame by frame.
    platform : str or sequence of str
        See :func:`tps.potentials.openmm.select_platform`.

    Returns
    -------
    ndarray, float64, shape ``(...)``, kJ/mol
        One energy evaluation per frame on a single reused ``Context``.

    Raises
    ------
    TypeError
        If ``system`` is neither an ``openmm.System`` nor has ``.potential.system``.
    ValueError
        If the frames do not have shape ``(..., n_atoms, 3)``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]                                     # (22, 3) nm
    >>> openmm_energies(alanine_dipeptide.create_openmm_system(top), np.stack([c5, c7ax]), platform="Reference")
    array([-88.45182407, -84.99614063])
    """
    system = _openmm_system(system)
    n_atoms = system.getNumParticles()
    boxes = None
    if hasattr(frames, "xyz") and hasattr(frames, "topology"):
        if frames.unitcell_vectors is not None:
            boxes = np.asarray(frames.unitcell_vectors, dtype=np.float64)
        frames = frames.xyz
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim < 2 or x.shape[-2:] != (n_atoms, 3):
        raise ValueError(f"frames: expected shape (..., {n_atoms}, 3) in nm, got {x.shape}")
    batch = x.shape[:-2]
    flat = x.reshape(-1, n_atoms, 3)
    from tps.engines.openmm import context_for

    context = context_for(system, integrator=("verlet", 0.001), platform=platform).context  # cached, reused
    if boxes is None and system.usesPeriodicBoundaryConditions():
        context.setPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
    energies = np.empty(flat.shape[0])
    for i, pos in enumerate(flat):
        if boxes is not None:
            context.setPeriodicBoxVectors(*boxes[i])
        context.setPositions(pos)
        energies[i] = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(_KJ)
    return energies.reshape(batch)


def kabsch_align(mobile, reference):
    """Rotate centred ``mobile`` onto centred ``reference`` (proper rotation, equal atom weights).

    Parameters
    ----------
    mobile, reference : ndarray, shape ``(n_atoms, 3)``, nm

    Returns
    -------
    ndarray, shape ``(n_atoms, 3)``
        ``mobile`` centred and rotated (det +1) to minimise the RMSD to centred ``reference``.

    Examples
    --------
    A rotated and translated copy of a structure is aligned back onto it exactly:

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> quarter_turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    >>> moved = c5 @ quarter_turn.T + 1.0
    >>> bool(np.allclose(kabsch_align(moved, c5), c5 - c5.mean(0), atol=1e-12))
    True
    """
    a = np.asarray(mobile, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    a = a - a.mean(0)
    b = b - b.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    return a @ rot


def kabsch_rmsd(a, b, *, atom_indices=None) -> torch.Tensor:
    """RMSD after optimal superposition (translation and proper rotation), batched.

    Parameters
    ----------
    a, b : Tensor, shape ``(..., n_atoms, 3)`` (broadcastable), nm
    atom_indices : int array, optional
        Atoms used for both the superposition and the RMSD (as in ``mdtraj.rmsd``).

    Returns
    -------
    Tensor, shape ``(...)``, nm; the same as ``mdtraj.rmsd`` (unweighted, all atoms equal).

    Notes
    -----
    The optimal rotation comes from an SVD of the 3 x 3 covariance, computed without gradient;
    by the envelope theorem the gradient of the RMSD at the optimal rotation is the gradient
    with the rotation held fixed, so the result is exactly differentiable away from RMSD 0
    (where the square root has no derivative) and avoids the unstable SVD backward pass.

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.2, 0.0]], dtype=torch.float64)
    >>> turned = a @ torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64) + 1.0
    >>> float(kabsch_rmsd(a, turned)) < 1e-12
    True
    """
    a = torch.as_tensor(a)
    b = torch.as_tensor(b, dtype=a.dtype if a.is_floating_point() else None)
    if not a.is_floating_point():
        a = a.to(b.dtype if b.is_floating_point() else torch.float64)
        b = b.to(a.dtype)
    if atom_indices is not None:
        idx = torch.as_tensor(np.asarray(atom_indices), dtype=torch.long, device=a.device)
        a, b = a[..., idx, :], b[..., idx, :]
    if a.shape[-1] != 3 or b.shape[-1] != 3 or a.shape[-2] != b.shape[-2]:
        raise ValueError(f"a, b: expected shapes (..., n_atoms, 3) with equal n_atoms, got {tuple(a.shape)}, {tuple(b.shape)}")
    a, b = torch.broadcast_tensors(a, b)
    ac = a - a.mean(-2, keepdim=True)
    bc = b - b.mean(-2, keepdim=True)
    with torch.no_grad():
        h = ac.detach().transpose(-1, -2) @ bc.detach()  # (..., 3, 3)
        u, _, vh = torch.linalg.svd(h)
        d = torch.sign(torch.linalg.det(u @ vh))
        d = torch.where(d == 0, torch.ones_like(d), d)
        diag = torch.ones(h.shape[:-2] + (3,), dtype=h.dtype, device=h.device)
        diag[..., 2] = d
        rot = (u * diag[..., None, :]) @ vh  # rotation applied as ac @ rot
    diff = ac @ rot - bc
    return (diff.square().sum((-1, -2)) / a.shape[-2]).sqrt()


def heavy_atom_indices(topology) -> np.ndarray:
    """Indices of the atoms that are not hydrogen (nor element-less virtual sites), ``(n_heavy,)`` int.

    Examples
    --------
    >>> from tps.systems import alanine_dipeptide
    >>> heavy_atom_indices(alanine_dipeptide.topology()).tolist()
    [0, 4, 5, 6, 8, 10, 14, 15, 16, 18]
    """
    top = as_mdtraj_topology(topology)
    return np.array(
        [a.index for a in top.atoms if a.element is not None and a.element.symbol not in ("H", "D", "VS")],
        dtype=np.int64,
    )


def rmsd_to_target(paths, target_positions, topology) -> torch.Tensor:
    """Heavy-atom Kabsch RMSD of each path's final frame to the target structure.

    Parameters
    ----------
    paths : Paths
        ``frames`` of shape ``(n_paths, n_frames, n_atoms, 3)``, nm.
    target_positions : array, shape ``(n_atoms, 3)``, nm
    topology : mdtraj.Topology or openmm.app.Topology

    Returns
    -------
    Tensor, shape ``(n_paths,)``, nm

    Examples
    --------
    >>> import numpy as np, torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]                                     # (22, 3) nm
    >>> from tps.sampling import Paths
    >>> frames = torch.as_tensor(np.stack([c5, c7ax]))[None]             # (1 path, 2 frames, 22, 3)
    >>> rmsd_to_target(Paths(frames, torch.zeros(1, 2), 0, 2.494), c7ax, top).tolist()   # ends on it
    [0.0]
    """
    last = final_frames(paths)
    target = torch.as_tensor(np.asarray(target_positions), dtype=last.dtype)
    return kabsch_rmsd(last, target, atom_indices=heavy_atom_indices(topology))


def consecutive_frame_rmsd(a, b) -> torch.Tensor:
    """All-atom Kabsch RMSD between frames ``a`` and ``b`` of the same shape ``(..., n_atoms, 3)`` nm.

    The ``distance=`` hook of :func:`tps.metrics.frame_steps` / :func:`tps.metrics.summarize`,
    making ``max_step`` the largest aligned RMSD between consecutive frames, in nm.

    Returns
    -------
    Tensor, shape ``(...)``, nm

    Examples
    --------
    >>> import numpy as np, torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]                                     # (22, 3) nm
    >>> round(float(consecutive_frame_rmsd(torch.as_tensor(c5), torch.as_tensor(c7ax))), 4)
    0.1786
    """
    return kabsch_rmsd(a, b)


def phi_psi_target_state(target_positions, topology, *, radius: float = 0.75, name: str = "target") -> Ball:
    """Ball of ``radius`` rad in periodic (phi, psi) around the target structure's (phi, psi).

    The torsions are found from ``topology`` (:class:`tps.potentials.openmm.PhiPsi`).

    Parameters
    ----------
    target_positions : array, shape ``(n_atoms, 3)``, nm
    topology : mdtraj.Topology or openmm.app.Topology
        Of a dipeptide (one phi and one psi torsion).
    radius : float
        rad.
    name : str
        Label of the state.

    Returns
    -------
    tps.states.Ball
        Acting on positions ``(*batch, n_atoms, 3)`` nm.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]                                     # (22, 3) nm
    >>> state = phi_psi_target_state(c7ax, top)
    >>> state, bool(state(torch.as_tensor(c7ax))), bool(state(torch.as_tensor(c5)))
    (Ball(target, r=0.75), True, False)
    """
    cv = PhiPsi(topology)
    centre = cv(torch.as_tensor(np.asarray(target_positions), dtype=torch.float64))
    return Ball(centre, radius, periods=cv.periods, cv=cv, name=name)


def summarize_molecular(paths, *, method: str, system=None, target_state=None, target_positions, topology,
                        radius: float = 0.75, check_energies: bool = True, n_training_energy_evals: int = 0,
                        wall_s: float = float("nan"), geodesic_wall_s: float = float("nan"), platform="auto",
                        **extra) -> dict:
    """One ``results.json`` row for an all-atom path ensemble.

    The keys of :func:`tps.metrics.summarize` (``max_step`` = all-atom Kabsch RMSD between
    consecutive frames, nm) plus ``rmsd_to_target`` (mean heavy-atom Kabsch RMSD of the final
    frames to ``target_positions``, nm) and ``rmsd_to_target_std``.

    Parameters
    ----------
    paths : Paths
        ``frames`` ``(n_paths, n_frames, n_atoms, 3)`` nm, ``energies`` kJ/mol.
    method : str
    system : openmm.System or tps System, optional
        When given and ``check_energies``, the energy of each path's highest-energy frame is
        recomputed by :func:`openmm_energies` and the largest absolute disagreement (kJ/mol)
        is reported as ``energy_check_max_abs_diff``.
    target_state : Volume, optional
        Default: :func:`phi_psi_target_state` of ``target_positions`` with ``radius`` (0.75 rad).
    target_positions : array, shape ``(n_atoms, 3)``, nm
    topology : mdtraj.Topology or openmm.app.Topology
    radius : float
        Radius of the default target state, rad.
    check_energies : bool
        Recompute the top-frame energies with OpenMM (needs ``system``).
    n_training_energy_evals, wall_s, geodesic_wall_s, **extra
        Passed to :func:`tps.metrics.summarize`.
    platform : str or sequence of str
        OpenMM platform of the energy check.

    Returns
    -------
    dict
        The :func:`tps.metrics.summarize` row plus ``rmsd_to_target``, ``rmsd_to_target_std``
        and (with ``system``) ``energy_check_max_abs_diff``.

    Examples
    --------
    A "path" that jumps from C5 to C7ax: its highest frame is the C7ax minimum, its largest
    step the RMSD between the two minima, and it ends in the target:

    >>> import numpy as np, torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]                                     # (22, 3) nm
    >>> from tps.sampling import Paths
    >>> frames = torch.as_tensor(np.stack([c5, c5, c7ax]))[None]          # one path, 3 frames
    >>> system = alanine_dipeptide.create_openmm_system(top)
    >>> paths = Paths(frames, torch.as_tensor(openmm_energies(system, frames, platform="Reference")), 0, 2.494)
    >>> row = summarize_molecular(paths, method="jump", system=system, target_positions=c7ax, topology=top,
    ...                           platform="Reference")
    >>> {k: round(row[k], 4) for k in ("max_energy_mean", "max_step", "target_hit_fraction", "rmsd_to_target",
    ...                                "energy_check_max_abs_diff")}
    {'max_energy_mean': -84.9961, 'max_step': 0.1786, 'target_hit_fraction': 1.0, 'rmsd_to_target': 0.0, 'energy_check_max_abs_diff': 0.0}
    """
    if target_state is None:
        target_state = phi_psi_target_state(target_positions, topology, radius=radius)
    rmsd = rmsd_to_target(paths, target_positions, topology)
    row = summarize(
        paths, method=method, target=target_state, distance=consecutive_frame_rmsd,
        n_training_energy_evals=n_training_energy_evals, wall_s=wall_s, geodesic_wall_s=geodesic_wall_s,
        rmsd_to_target=float(rmsd.mean()),
        rmsd_to_target_std=float(rmsd.std(unbiased=True)) if rmsd.numel() > 1 else 0.0,
        **extra,
    )
    if system is not None and check_energies:
        e = paths.energies
        lengths = paths.info.get("lengths") if hasattr(paths, "info") else None
        if lengths is not None:
            idx = torch.arange(e.shape[1])[None]
            e = torch.where(idx < torch.as_tensor(lengths)[:, None], e, torch.full_like(e, -math.inf))
        arg = e.argmax(1)
        top = paths.frames[torch.arange(e.shape[0]), arg]
        recomputed = openmm_energies(system, top, platform=platform)
        row["energy_check_max_abs_diff"] = float(np.abs(recomputed - e.max(1).values.double().cpu().numpy()).max())
    return row
