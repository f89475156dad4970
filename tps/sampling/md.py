"""Training data for all-atom models: plain OpenMM Langevin MD, or trajectories users bring.

:func:`md_samples` runs ``openmm.LangevinMiddleIntegrator`` from each starting structure and
returns an :class:`MDData`: an ``mdtraj.Trajectory`` of the reported frames plus the cost in
MD steps (one force evaluation per step, reported as ``n_training_energy_evals``).
:meth:`MDData.from_trajectory` wraps a trajectory made elsewhere; :func:`check_topology_match`
refuses frames whose atoms do not match the system (count, then element and name in order)
before any model is trained on them.

Units: OpenMM's MD units (nm, ps, kJ/mol, K).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import openmm
import openmm.unit as unit

from tps._validation import check_positive, check_positive_int
from tps.potentials.openmm import as_mdtraj_topology, positions_nm
from tps.io import atomic_path

__all__ = ["MDData", "md_samples", "check_topology_match", "as_mdtraj_topology"]


def _atom_label(atom) -> str:
    element = atom.element.symbol if atom.element is not None else "?"
    return f"{atom.residue.name}{atom.residue.resSeq}:{atom.name} ({element})"


def check_topology_match(reference, other, *, system: Optional[openmm.System] = None, what: str = "trajectory") -> None:
    """Raise ``ValueError`` unless ``other`` has the atoms of ``reference`` in the same order.

    Compared: number of atoms (and of the system's particles when ``system`` is given), then
    element and atom name of every atom in order. Residue names and numbering may differ
    (e.g. a trajectory written by another program).

    Parameters
    ----------
    reference, other : mdtraj.Topology or openmm.app.Topology
    system : openmm.System, optional
        Checked for its particle count.
    what : str
        Name of ``other`` in the error message.

    Raises
    ------
    ValueError
        Naming the first mismatch (atom count, or the atom's residue, name and element).

    Examples
    --------
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> check_topology_match(top, top)                               # passes silently
    >>> check_topology_match(top, as_mdtraj_topology(top).subset(range(21)))
    Traceback (most recent call last):
        ...
    ValueError: trajectory: has 21 atoms but the system has 22; frames must contain exactly the system's atoms in the system's order
    """
    ref, oth = as_mdtraj_topology(reference), as_mdtraj_topology(other)
    if system is not None and system.getNumParticles() != ref.n_atoms:
        raise ValueError(f"topology: has {ref.n_atoms} atoms but the OpenMM system has "
                         f"{system.getNumParticles()} particles")
    if oth.n_atoms != ref.n_atoms:
        raise ValueError(f"{what}: has {oth.n_atoms} atoms but the system has {ref.n_atoms}; "
                         "frames must contain exactly the system's atoms in the system's order")
    for a, b in zip(ref.atoms, oth.atoms):
        ea = a.element.symbol if a.element is not None else None
        eb = b.element.symbol if b.element is not None else None
        if ea != eb or a.name != b.name:
            raise ValueError(f"{what}: atom {a.index} is {_atom_label(b)} but the system expects {_atom_label(a)}; "
                             "the atom order must match the system's topology")


@dataclass
class MDData:
    """Molecular configurations for training, with their cost.

    Attributes
    ----------
    trajectory : mdtraj.Trajectory
        Frames, positions ``trajectory.xyz`` of shape ``(n_frames, n_atoms, 3)`` in nm.
    n_energy_evals : int
        MD steps (force evaluations) spent making the frames; 0 if unknown.
    info : dict
        Provenance: integrator settings, seed, index of the start of every frame.

    Examples
    --------
    Frames survive a save/load round trip (DCD stores float32 positions):

    >>> import os, tempfile
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> c5 = alanine_dipeptide.minimized_structures()["C5"]
    >>> data = md_samples(alanine_dipeptide.create_openmm_system(top), top, c5, n_steps=40, report_interval=20,
    ...                   platform="Reference")
    >>> dcd, pdb = data.save(os.path.join(tempfile.mkdtemp(), "md.dcd"))
    >>> again = MDData.load(dcd, n_energy_evals=data.n_energy_evals)
    >>> again.n_frames, again.n_energy_evals, bool(np.allclose(again.positions, data.positions, atol=1e-6))
    (2, 40, True)
    """

    trajectory: object
    n_energy_evals: int = 0
    info: dict = field(default_factory=dict)

    @property
    def positions(self) -> np.ndarray:
        """Positions, float64 ndarray of shape ``(n_frames, n_atoms, 3)``, nm."""
        return np.asarray(self.trajectory.xyz, dtype=np.float64)

    @property
    def topology(self):
        """The ``mdtraj.Topology`` of the frames."""
        return self.trajectory.topology

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.trajectory.n_frames)

    @classmethod
    def from_trajectory(cls, trajectory, *, n_energy_evals: int = 0, topology=None,
                        system: Optional[openmm.System] = None, info: Optional[dict] = None) -> "MDData":
        """Wrap frames made elsewhere.

        Parameters
        ----------
        trajectory : mdtraj.Trajectory
        n_energy_evals : int
            What the frames cost (MD steps), reported as ``n_training_energy_evals``.
        topology : mdtraj.Topology or openmm.app.Topology, optional
            The system's topology: checked with :func:`check_topology_match` (``ValueError``
            on a different molecule or atom order).
        system : openmm.System, optional
            Checked for its particle count.
        info : dict, optional
            Provenance to keep.

        Returns
        -------
        MDData

        Raises
        ------
        TypeError
            If ``trajectory`` is not an ``mdtraj.Trajectory``.
        ValueError
            If it has no frames or non-finite positions, does not match ``topology`` or
            ``system``, or ``n_energy_evals`` is negative.

        Examples
        --------
        >>> import mdtraj
        >>> from tps.systems import alanine_dipeptide
        >>> top = alanine_dipeptide.topology()
        >>> xyz = alanine_dipeptide.minimized_structures()["C7eq"][None]     # (1, 22, 3) nm
        >>> data = MDData.from_trajectory(mdtraj.Trajectory(xyz, as_mdtraj_topology(top)), topology=top)
        >>> data.n_frames, data.positions.shape, data.n_energy_evals
        (1, (1, 22, 3), 0)
        """
        import mdtraj

        if not isinstance(trajectory, mdtraj.Trajectory):
            raise TypeError(f"trajectory: expected an mdtraj.Trajectory, got {type(trajectory).__name__}")
        if trajectory.n_frames < 1:
            raise ValueError("trajectory: has no frames")
        if not np.isfinite(trajectory.xyz).all():
            raise ValueError("trajectory: positions contain NaN or infinity")
        if topology is not None:
            check_topology_match(topology, trajectory.topology, system=system)
        elif system is not None and system.getNumParticles() != trajectory.n_atoms:
            raise ValueError(f"trajectory: has {trajectory.n_atoms} atoms but the OpenMM system has "
                             f"{system.getNumParticles()} particles")
        if int(n_energy_evals) < 0:
            raise ValueError(f"n_energy_evals: expected >= 0, got {n_energy_evals!r}")
        return cls(trajectory, int(n_energy_evals), dict(info or {}))

    def save(self, path) -> tuple:
        """Write ``path`` (``.dcd``) and its topology ``path.with_suffix('.pdb')`` (first frame).

        Returns
        -------
        (Path, Path)
            The trajectory and the topology file.
        """
        path = Path(path).with_suffix(".dcd")
        with atomic_path(path) as tmp:
            self.trajectory.save_dcd(str(tmp))
        pdb = path.with_suffix(".pdb")
        with atomic_path(pdb) as tmp:
            self.trajectory[0].save_pdb(str(tmp))
        return path, pdb

    @classmethod
    def load(cls, path, *, topology=None, n_energy_evals: int = 0, system=None) -> "MDData":
        """Read a trajectory file (``.dcd`` next to its ``.pdb`` unless ``topology`` is given).

        Parameters
        ----------
        path : str or Path
            Trajectory file in any format mdtraj reads.
        topology : str, Path, mdtraj.Topology or openmm.app.Topology, optional
            Topology file or object (default: ``path`` with suffix ``.pdb``).
        n_energy_evals : int, optional
            What the frames cost, if known.
        system : openmm.System, optional
            Checked for its particle count.

        Returns
        -------
        MDData
            (round trip in the class example).
        """
        import mdtraj

        path = Path(path)
        top = str(path.with_suffix(".pdb")) if topology is None else topology
        if not isinstance(top, str) and not isinstance(top, Path):
            traj = mdtraj.load(str(path), top=as_mdtraj_topology(top))
        else:
            traj = mdtraj.load(str(path), top=str(top))
        return cls.from_trajectory(traj, n_energy_evals=n_energy_evals, system=system)


def _starts_array(starts, n_atoms):
    names = None
    if isinstance(starts, Mapping):
        names = [str(k) for k in starts]
        starts = [positions_nm(v) for v in starts.values()]
    if isinstance(starts, (list, tuple)) and not unit.is_quantity(starts):
        starts = [positions_nm(v) for v in starts]
    elif unit.is_quantity(starts):
        starts = positions_nm(starts)
    arr = np.asarray(starts, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (n_atoms, 3):
        raise ValueError(f"starts: expected shape (n_starts, {n_atoms}, 3) in nm, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("starts: positions contain NaN or infinity")
    if names is None:
        names = [str(i) for i in range(arr.shape[0])]
    return arr, names


def md_samples(system: openmm.System, topology, starts, *, n_steps: int, report_interval: int,
               temperature: float = 300.0, timestep: float = 0.002, friction: float = 1.0, platform="auto",
               seed: int = 0, progress: bool = False, executor=None, checkpoint=None) -> MDData:
    """Langevin MD from each starting structure; the reported frames are training data.

    Parameters
    ----------
    system : openmm.System
        Force field (and constraints) to simulate, e.g. with ``HBonds`` constraints for 2 fs.
    topology : openmm.app.Topology or mdtraj.Topology
        Atoms of ``system`` in order.
    starts : array, shape ``(n_starts, n_atoms, 3)`` or ``(n_atoms, 3)``, nm, or dict name -> array
        Starting structures (e.g. minimised basins); one independent run per start.
    n_steps : int
        MD steps per start.
    report_interval : int
        Steps between saved frames (``n_steps // report_interval`` frames per start).
    temperature : float
        K (default 300).
    timestep : float
        ps (default 0.002).
    friction : float
        1/ps (default 1).
    platform : str or sequence of str
        See :func:`tps.potentials.openmm.select_platform`.
    seed : int
        Velocities and integrator noise of start ``i`` use seed ``1 + 1000 seed + i``
        (OpenMM treats seed 0 as "pick one at random"), whatever the executor.
    progress : bool
        Progress bar of frames (no executor) or of completed starts.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        Where the runs go (:mod:`tps.parallel`): one task per start, each worker reusing one
        context (reseeded per start). Every executor gives the frames of ``executor=None``.
    checkpoint : path or TaskCheckpoint, optional
        Executor only: completed starts are stored there and reused by a rerun.

    Returns
    -------
    MDData
        ``n_energy_evals = n_starts * n_steps``; ``info["start"]`` gives the start index of
        every frame and ``info["start_names"]`` the names.

    Raises
    ------
    ValueError
        If a count, temperature, timestep or friction is not positive, ``report_interval``
        exceeds ``n_steps``, the topology does not match the system, or the starts have the
        wrong shape or non-finite positions.
    RuntimeError
        If the simulation produced NaN positions.

    Examples
    --------
    Two 100-step runs (0.2 ps) from the C5 and C7eq minima, a frame every 20 steps:

    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> data = md_samples(alanine_dipeptide.create_openmm_system(top), top, {"C5": s["C5"], "C7eq": s["C7eq"]},
    ...                   n_steps=100, report_interval=20, platform="Reference")
    >>> data.positions.shape, data.n_energy_evals, data.info["start"].tolist(), data.info["start_names"]
    ((10, 22, 3), 200, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1], ['C5', 'C7eq'])
    """
    import mdtraj

    from tps.potentials.openmm import select_platform

    n_steps = check_positive_int(n_steps, "n_steps")
    report_interval = check_positive_int(report_interval, "report_interval")
    if report_interval > n_steps:
        raise ValueError(f"report_interval: {report_interval} exceeds n_steps={n_steps}; no frame would be saved")
    temperature = check_positive(temperature, "temperature")
    timestep = check_positive(timestep, "timestep")
    friction = check_positive(friction, "friction")
    md_top = as_mdtraj_topology(topology)
    n_atoms = system.getNumParticles()
    if md_top.n_atoms != n_atoms:
        raise ValueError(f"topology: has {md_top.n_atoms} atoms but the OpenMM system has {n_atoms} particles")
    starts, names = _starts_array(starts, n_atoms)
    chosen = select_platform(n_atoms, platform)
    n_reports = n_steps // report_interval
    runs = []  # frames (nm) of each start, in start order
    bar = None
    if progress and executor is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(starts) * n_reports, desc="MD", leave=False, disable=None)
    if executor is None:
        from tps.engines.openmm import context_for

        xml = openmm.XmlSerializer.serialize(system)
        for i, x0 in enumerate(starts):
            run_seed = 1 + 1000 * int(seed) + i
            # the cached context, reseeded: the stream of a new context with run_seed
            c = context_for(system, integrator=("langevin-middle", temperature, friction, timestep),
                            platform=chosen.getName(), seed=run_seed, xml=xml)
            runs.append(_md_run(c.context, c.integrator, x0, run_seed, temperature, report_interval, n_reports, bar))
    else:
        from tps.parallel import Task, as_checkpoint, fingerprint, run_tasks

        xml = openmm.XmlSerializer.serialize(system)
        common = (temperature, friction, timestep, chosen.getName(), report_interval, n_reports)
        tasks = [Task(i, i, i + 1, 1 + 1000 * int(seed) + i, int(seed)) for i in range(len(starts))]
        checkpoint = as_checkpoint(checkpoint, (xml, common, starts, int(seed)))
        shared = {"xml": xml, "key": fingerprint((xml, common)), "common": common, "starts": starts}
        runs = run_tasks(_md_task, tasks, shared=shared, executor=executor, checkpoint=checkpoint,
                         progress=progress, desc="MD")
    if bar is not None:
        bar.close()
    frames = [f for run in runs for f in run]
    start_of_frame = [i for i in range(len(starts)) for _ in range(n_reports)]
    times = [(k + 1) * report_interval * timestep for _ in range(len(starts)) for k in range(n_reports)]
    xyz = np.asarray(frames, dtype=np.float32)
    if not np.isfinite(xyz).all():
        raise RuntimeError("md_samples: the simulation produced NaN positions; reduce the timestep or minimise "
                           "the starting structures")
    traj = mdtraj.Trajectory(xyz, md_top, time=np.asarray(times))
    info = {"temperature_K": temperature, "timestep_ps": timestep, "friction_per_ps": friction,
            "n_steps_per_start": n_steps, "report_interval": report_interval, "seed": int(seed),
            "platform": chosen.getName(), "integrator": "LangevinMiddleIntegrator",
            "start": np.asarray(start_of_frame), "start_names": names}
    return MDData(traj, len(starts) * n_steps, info)


def _md_run(context, integrator, x0, run_seed, temperature, report_interval, n_reports, bar=None) -> list:
    """One run of :func:`md_samples` on ``context``: ``n_reports`` frames (nm)."""
    context.setPositions(x0)
    context.applyConstraints(1e-6)
    context.setVelocitiesToTemperature(temperature, run_seed)
    frames = []
    for _ in range(n_reports):
        integrator.step(report_interval)
        frames.append(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer))
        if bar is not None:
            bar.update(1)
    return frames


def _md_task(shared, task):
    """One start of :func:`md_samples` on this worker's context, reseeded with the start's seed."""
    from tps.engines.openmm import context_for
    from tps.parallel.tasks import OPENMM_LOCK

    temperature, friction, timestep, platform, report_interval, n_reports = shared["common"]
    with OPENMM_LOCK:
        # this worker thread's cached context, reseeded with the start's seed (OpenMM reads it on (re)initialisation)
        c = context_for(None, integrator=("langevin-middle", temperature, friction, timestep), platform=platform,
                        seed=int(task.seed), xml=shared["xml"])
        return _md_run(c.context, c.integrator, shared["starts"][task.start], int(task.seed), temperature,
                       report_interval, n_reports)
