"""Restraints of a molecular curve and the OpenMM paths along them; the end-to-end
:func:`transition_paths` (endpoints -> curve -> paths) and the DCD writer of path files.

Restraints: curve point ``(z_n, lam_n)`` is the Boltzmann distribution of the force field plus a
harmonic restraint with centre ``origin + scale * z_n / alpha_n`` (nm, the curve re-centred on
the start structure's centroid ``origin``) and stiffness ``kT exp(lam_n) / scale^2``
(kJ/mol/nm^2) on every coordinate (method.md section 5; derived by
:func:`tps.diffusion.schedule.restraint_schedule`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import openmm
import torch

from tps.diffusion.checkpoint import DiffusionModel
from tps.diffusion.scaling import AffineScaling
from tps.diffusion.schedule import restraint_schedule
from tps.potentials.openmm import boltzmann_kT
from tps.sampling.md import as_mdtraj_topology
from tps.spacetime.solver import GeodesicResult
from tps.workflows.coordinates import center_positions, fit_scaling
from tps.workflows.endpoints import Endpoints, kabsch_align, prepare_endpoints
from tps.workflows.geodesics import linear_curve, solve_geodesic
from tps.workflows.models import check_model_matches, train_model

__all__ = ["CurveRestraints", "curve_restraints", "sample_paths", "CartesianResult", "transition_paths",
           "save_paths_dcd", "write_topology_pdb", "fit_scaling", "kabsch_align", "train_model", "linear_curve"]


@dataclass
class CurveRestraints:
    """Physical restraints of a spacetime curve, ready for OpenMM.

    Attributes
    ----------
    centres : ndarray, shape ``(N, n_atoms, 3)``, nm
    stiffness : ndarray, shape ``(N,)``, kJ/mol/nm^2
    logsnr : ndarray, shape ``(N,)``

    Examples
    --------
    Made by :func:`curve_restraints` (example there).
    """

    centres: np.ndarray
    stiffness: np.ndarray
    logsnr: np.ndarray


def curve_restraints(curve_x, curve_logsnr, scaling: AffineScaling, *, temperature: float = 300.0,
                     origin=None) -> CurveRestraints:
    """Restraint centres ``origin + scale * z_n / alpha_n`` and stiffness ``kT exp(lam_n) / scale^2``.

    Parameters
    ----------
    curve_x : Tensor, shape ``(N, n_atoms, 3)``, model units
    curve_logsnr : Tensor, shape ``(N,)``
    scaling : AffineScaling
        Scalar scaling without shift (:func:`fit_scaling`).
    temperature : float
        K.
    origin : array, shape ``(3,)``, nm, optional
        Where the centred curve is placed (the start structure's centroid).

    Returns
    -------
    CurveRestraints

    Raises
    ------
    ValueError
        If the shapes are not ``(N, n_atoms, 3)`` and ``(N,)`` or ``scaling`` has a shift.

    Examples
    --------
    Along the straight line at logSNR 4 the first centre is the start structure scaled by
    ``1 / alpha(4) = 1.009`` about its centroid, and the stiffness is ``kT e^4 / scale^2``:

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))
    >>> scaling = fit_scaling(np.stack([c5, c7ax]))
    >>> r = curve_restraints(*linear_curve(ends, scaling, n_points=5), scaling, origin=ends.origin)
    >>> r.centres.shape, round(float(r.stiffness[0]), 1)          # kJ/mol/nm^2
    ((5, 22, 3), 5018.9)
    >>> alpha = np.sqrt(1 / (1 + np.exp(-4.0)))
    >>> bool(np.allclose(r.centres[0] - ends.origin, (c5 - ends.origin) / alpha))
    True
    """
    x = torch.as_tensor(curve_x).detach().double().cpu()
    lam = torch.as_tensor(curve_logsnr).detach().double().cpu()
    if x.dim() != 3 or x.shape[-1] != 3 or lam.shape != (x.shape[0],):
        raise ValueError(f"curve_x, curve_logsnr: expected shapes (N, n_atoms, 3) and (N,), got "
                         f"{tuple(x.shape)} and {tuple(lam.shape)}")
    if any(v != 0.0 for v in scaling.shift):
        raise ValueError("scaling: expected a scalar scaling without shift (fit_scaling)")
    # THE derivation (centre z / alpha, stiffness kT e^lam) in model units; the molecule adds its rule:
    # centroid-free centres times the scalar scale, placed at ``origin`` (same rounding as before)
    schedule = restraint_schedule(x, lam, kT=boltzmann_kT(temperature))
    centres = center_positions(schedule.centres) * scaling.scale
    if origin is not None:
        centres = centres + torch.as_tensor(np.asarray(origin), dtype=torch.float64)
    stiffness = schedule.stiffness / scaling.scale**2
    return CurveRestraints(centres.numpy(), stiffness.numpy(), lam.numpy())


def sample_paths(system: openmm.System, restraints: CurveRestraints, endpoints: Endpoints, *, n_paths: int,
                 steps_per_point: int, temperature: float = 300.0, timestep: float = 0.002, friction: float = 1.0,
                 platform="auto", frames_per_point: int = 1, seed: int = 0, n_workers: int = 1,
                 progress: bool = False, executor=None, checkpoint=None):
    """Annealed Langevin in OpenMM along ``restraints``, every path starting at ``endpoints.start``.

    Parameters
    ----------
    system : openmm.System
        The force field (the restraint is added inside the sampler).
    restraints : CurveRestraints
        From :func:`curve_restraints`.
    endpoints : Endpoints
    n_paths, steps_per_point : int
        Paths, and MD steps per curve point.
    temperature : float
        K.
    timestep : float
        ps (default 0.002).
    friction : float
        1/ps.
    platform, frames_per_point, seed, n_workers, progress, executor, checkpoint
        Passed to :func:`tps.sampling.openmm_annealed.openmm_annealed_langevin` (``executor``:
        None, a ``concurrent.futures.Executor`` or a ``dask.distributed.Client``, see
        :mod:`tps.parallel`).

    Returns
    -------
    tps.sampling.Paths
        Frames ``(n_paths, 1 + N * frames_per_point, n_atoms, 3)`` nm; energies of the force
        field (restraint excluded), kJ/mol; ``n_energy_evals = n_paths * N * steps_per_point``.

    Examples
    --------
    Twenty MD steps per path along the straight line from C5 to C7ax (far too few to cross;
    the numbers only show the bookkeeping):

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))
    >>> scaling = fit_scaling(np.stack([c5, c7ax]))
    >>> restraints = curve_restraints(*linear_curve(ends, scaling, n_points=5), scaling, origin=ends.origin)
    >>> paths = sample_paths(alanine_dipeptide.create_openmm_system(top), restraints, ends, n_paths=2,
    ...                      steps_per_point=4, platform="Reference")
    >>> tuple(paths.frames.shape), paths.n_energy_evals                   # 2 paths * 5 points * 4 steps
    ((2, 6, 22, 3), 40)
    >>> bool(np.abs(paths.frames[:, 0].numpy() - c5).max() < 1e-3)       # starts at C5 (X-H constrained)
    True
    """
    from tps.sampling.openmm_annealed import openmm_annealed_langevin

    t0 = time.perf_counter()
    paths = openmm_annealed_langevin(system, restraints.centres, restraints.stiffness, temperature=temperature,
                                     n_paths=n_paths, steps_per_point=steps_per_point, x_start=endpoints.start,
                                     timestep=timestep, friction=friction, platform=platform,
                                     frames_per_point=frames_per_point, seed=seed, n_workers=n_workers,
                                     progress=progress, executor=executor, checkpoint=checkpoint)
    paths.info.setdefault("wall_s", time.perf_counter() - t0)
    return paths


# ----------------------------------------------------------------------------- end to end
@dataclass
class CartesianResult:
    """Everything one pipeline run made.

    Attributes
    ----------
    paths : tps.sampling.Paths
        Frames in nm, force-field energies in kJ/mol.
    endpoints : Endpoints
    restraints : CurveRestraints
        The restraint schedule the paths were sampled along.
    geodesic : GeodesicResult or None
        None for the straight-line baseline.
    wall_s : dict
        ``{"geodesic": s, "sampling": s}``.

    Examples
    --------
    Returned by :func:`transition_paths` (a toy run is shown there).
    """

    paths: object
    endpoints: Endpoints
    restraints: CurveRestraints
    geodesic: Optional[GeodesicResult] = None
    wall_s: dict = field(default_factory=dict)


def transition_paths(system: openmm.System, topology, model: DiffusionModel, start, target, *, n_paths: int,
                     steps_per_point: int, curve: str = "geodesic", temperature: float = 300.0,
                     logsnr: float = 4.0, n_points: int = 48, geodesic_options: Optional[dict] = None,
                     endpoints: Optional[Endpoints] = None, timestep: float = 0.002, friction: float = 1.0,
                     platform="auto", frames_per_point: int = 1, seed: int = 0, n_workers: int = 1,
                     progress: bool = False, executor=None) -> CartesianResult:
    """Transition paths from ``start`` to ``target`` for any molecule: endpoints -> curve -> OpenMM paths.

    Parameters
    ----------
    system : openmm.System
    topology : mdtraj.Topology or openmm.app.Topology
    model : DiffusionModel
        EGNN model trained on this molecule (refused otherwise, :func:`check_model_matches`).
    start, target : array, shape ``(n_atoms, 3)``, nm
        Raw structures (minimised and aligned here) unless ``endpoints`` is given.
    n_paths, steps_per_point : int
        Paths and MD steps per curve point: ``n_points * steps_per_point`` MD steps per path.
    curve : {"geodesic", "linear"}
        Spacetime geodesic, or the straight line at constant ``logsnr`` (baseline).
    temperature : float
        K.
    logsnr : float
        Anchor logSNR of the endpoints (and of the whole straight line).
    n_points : int
    geodesic_options : dict, optional
        Extra keyword arguments of :func:`solve_geodesic` (``max_iter``, ``init_dips``,
        ``coarse_points``, ``constraints``, ...).
    endpoints : Endpoints, optional
        Reuse prepared endpoints (skips minimisation).
    timestep, friction, platform, frames_per_point, seed, n_workers, progress, executor
        Passed to :func:`sample_paths`.

    Returns
    -------
    CartesianResult

    Raises
    ------
    ValueError
        If ``curve`` is unknown, the topology and system differ in atom count, or the model
        was trained on another molecule (:func:`check_model_matches`).

    Examples
    --------
    The whole pipeline at toy size, with the shipped model (or one of :func:`train_model`);
    endpoints given, so no minimisation:

    >>> import torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps import pretrained
    >>> from tps.systems import alanine_dipeptide
    >>> model = pretrained.load("alanine-dipeptide")
    >>> top = alanine_dipeptide.topology()
    >>> system = alanine_dipeptide.create_openmm_system(top)
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))    # already minimised
    >>> run = transition_paths(system, top, model, c5, c7ax, n_paths=2, steps_per_point=2, n_points=8,
    ...                        endpoints=ends, platform="Reference", geodesic_options=dict(n_nodes=3, max_iter=3))
    >>> tuple(run.paths.frames.shape), run.paths.n_energy_evals, run.restraints.centres.shape, sorted(run.wall_s)
    ((2, 9, 22, 3), 32, (8, 22, 3), ['geodesic', 'sampling'])
    >>> transition_paths(system, top, model, c5, c7ax, n_paths=1, steps_per_point=1, curve="spline")
    Traceback (most recent call last):
        ...
    ValueError: curve: expected 'geodesic' or 'linear', got 'spline'
    """
    if curve not in ("geodesic", "linear"):
        raise ValueError(f"curve: expected 'geodesic' or 'linear', got {curve!r}")
    if system.getNumParticles() != as_mdtraj_topology(topology).n_atoms:
        raise ValueError(f"topology: has {as_mdtraj_topology(topology).n_atoms} atoms but the OpenMM system has "
                         f"{system.getNumParticles()} particles")
    check_model_matches(model, topology)
    if endpoints is None:
        endpoints = prepare_endpoints(system, start, target, temperature=temperature, platform=platform)
    t0 = time.perf_counter()
    result = None
    if curve == "geodesic":
        result = solve_geodesic(model, endpoints, logsnr=logsnr, n_points=n_points, seed=seed, progress=progress,
                                **(geodesic_options or {}))
        cx, clam = result.x, result.logsnr
    else:
        cx, clam = linear_curve(endpoints, model.scaling, n_points=n_points, logsnr=logsnr)
    t_curve = time.perf_counter() - t0
    restraints = curve_restraints(cx, clam, model.scaling, temperature=temperature, origin=endpoints.origin)
    t0 = time.perf_counter()
    paths = sample_paths(system, restraints, endpoints, n_paths=n_paths, steps_per_point=steps_per_point,
                         temperature=temperature, timestep=timestep, friction=friction, platform=platform,
                         frames_per_point=frames_per_point, seed=seed, n_workers=n_workers, progress=progress,
                         executor=executor)
    return CartesianResult(paths, endpoints, restraints, result,
                           {"geodesic": t_curve, "sampling": time.perf_counter() - t0})


def write_topology_pdb(path, topology, positions):
    """One-frame PDB of ``topology`` at ``positions`` (``(n_atoms, 3)`` nm), written atomically.

    Examples
    --------
    >>> import tempfile, os
    >>> from tps.systems import alanine_dipeptide
    >>> p = write_topology_pdb(os.path.join(tempfile.mkdtemp(), "top.pdb"), alanine_dipeptide.topology(),
    ...                        alanine_dipeptide.minimized_structures()["C5"])
    >>> p.name
    'top.pdb'
    """
    import mdtraj
    from pathlib import Path

    from tps.io import atomic_path

    xyz = np.asarray(positions.detach().cpu() if hasattr(positions, "detach") else positions, dtype=np.float32)
    with atomic_path(path) as tmp:
        mdtraj.Trajectory(xyz.reshape(1, -1, 3), as_mdtraj_topology(topology)).save_pdb(str(tmp))
    return Path(path)


def save_paths_dcd(paths, topology, directory, *, max_paths: Optional[int] = None) -> list:
    """One DCD file per path (``path_000.dcd``, ...) plus ``topology.pdb`` in ``directory``.

    VMD and mdtraj open them: ``mdtraj.load("path_000.dcd", top="topology.pdb")``. The files are
    written by :func:`tps.io.save_paths` (``split=True``), which adds the sidecar
    ``path.dcd.json`` (energies, lengths, cost) that :func:`tps.io.load_paths` reads.

    Parameters
    ----------
    paths : tps.sampling.Paths
        Frames ``(n_paths, n_frames, n_atoms, 3)``, nm.
    topology : mdtraj.Topology or openmm.app.Topology
    directory : path
    max_paths : int, optional

    Returns
    -------
    list of Path
        The DCD files written.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> import mdtraj
    >>> from tps.sampling import Paths
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()
    >>> frames = torch.as_tensor(np.stack([structures["C5"], structures["C7ax"]]))[None]   # (1, 2, 22, 3)
    >>> paths = Paths(frames, torch.zeros(1, 2), n_energy_evals=0, kT=2.494)
    >>> directory = tempfile.mkdtemp()
    >>> files = save_paths_dcd(paths, alanine_dipeptide.topology(), directory)
    >>> [f.name for f in files], mdtraj.load(str(files[0]), top=os.path.join(directory, "topology.pdb")).n_frames
    (['path_000.dcd'], 2)
    """
    from pathlib import Path

    from tps.io import save_paths

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_topology_pdb(directory / "topology.pdb", topology, paths.frames[0, 0].detach().cpu().numpy())
    if max_paths is not None and int(max_paths) == 0:  # as before: only the topology
        return []
    written = save_paths(paths, directory / "path.dcd", topology=topology, split=True, max_paths=max_paths)
    return [Path(f) for f in written if Path(f).suffix == ".dcd"]
