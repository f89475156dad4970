"""OpenPathSampling (OPS) interoperability by files: export transition paths and states, read OPS paths back.

OPS 1.7 needs numpy < 2, ``tps`` numpy 2, so the two meet at the file level (both sides already
read these formats); ``docs/howto/openpathsampling.md`` has the commands for both directions.

Export (:func:`export_ops`) writes into one folder:

``transition_000.dcd``, ``transition_001.dcd``, ...
    Each path's proper transition segment (:func:`tps.baselines.trim_to_transition`: from its last
    frame in A before it first enters B, to that frame; so the first frame is in A, the last in B
    and no other frame in A or B), float32 nm (Angstrom on disk, as DCD stores them).
    ``mdtraj.load("transition_000.dcd", top="topology.pdb")`` reads one;
    ``openpathsampling.engines.openmm.tools.trajectory_from_mdtraj`` turns it into an OPS
    trajectory (velocities zero: draw them, e.g. two-way shooting with ``RandomVelocities``).
``topology.pdb``
    The molecule (its first frame), atom order of the frames.
``system.xml``, ``integrator.xml``
    The OpenMM ``System`` of the potential and a ``LangevinMiddleIntegrator`` at the system's
    temperature (``openmm.XmlSerializer``), for OPS's OpenMM engine.
``states.json``
    The state definitions (:func:`state_definitions`): the collective variables (dihedral atom
    indices, as ``mdtraj.compute_dihedrals`` takes them, periods), each state as a union of
    periodic balls (centre, radius, rad) and the list of exported trajectories.
``ops_to_tps.py``
    A copy of the import script (:data:`IMPORT_SCRIPT`), run in the OPS environment.

Import: ``ops_to_tps.py STORAGE.nc OUT.h5`` (no ``tps`` import; needs openpathsampling, mdtraj
and pytables) writes the OPS paths as an mdtraj HDF5 file with the ``/tps`` group of
:func:`tps.io.save_paths`, so :func:`tps.io.load_paths` reads it; :func:`tps.interop.ops_compare.compare_ensembles`
compares it with a ``tps`` ensemble.
"""

from __future__ import annotations

import json
import math
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from tps.core.units import temperature_from_kT
from tps.io.atomic import atomic_path

__all__ = ["OPSExport", "IMPORT_SCRIPT", "STATES_FORMAT", "export_ops", "state_definitions", "read_states",
           "states_from_definitions", "state_balls"]

#: ``format`` tag of ``states.json``.
STATES_FORMAT = "tps-ops-states"
_VERSION = 1
#: The import script shipped with the package (standalone: runs in an OPS environment without tps).
IMPORT_SCRIPT = Path(__file__).with_name("ops_to_tps.py")


@dataclass(frozen=True)
class OPSExport:
    """What :func:`export_ops` wrote.

    Attributes
    ----------
    out_dir : Path
    trajectories : tuple of Path
        ``transition_000.dcd``, ... one per exported path.
    topology : Path
        ``topology.pdb``.
    states : Path
        ``states.json``.
    system, integrator : Path
        ``system.xml``, ``integrator.xml``.
    script : Path
        ``ops_to_tps.py``.
    source_paths : tuple of int
        Index in the input ensemble of each exported path.
    n_frames : tuple of int
        Frames of each exported transition segment.
    skipped : tuple of int
        Indices of input paths without an A -> B transition (not exported).
    """

    out_dir: Path
    trajectories: tuple
    topology: Path
    states: Path
    system: Path
    integrator: Path
    script: Path
    source_paths: tuple
    n_frames: tuple
    skipped: tuple


# ------------------------------------------------------------------------ states
def _balls_of(volume, name: str) -> list:
    """The balls of a ``Ball`` or of a union (``|``) of balls; anything else is refused."""
    from tps.states import Ball, _Combined

    if isinstance(volume, Ball):
        return [volume]
    if isinstance(volume, _Combined) and volume.sym == "|":
        return _balls_of(volume.a, name) + _balls_of(volume.b, name)
    raise ValueError(f"{name}: expected a tps.states.Ball or a union (|) of balls, got {volume!r}")


def state_balls(system, state, name: str) -> list:
    """The balls making up ``state``: a name of ``system.states``, a sequence of names (union) or a Volume.

    Parameters
    ----------
    system : tps.systems.System
    state : str, sequence of str, or Volume
        E.g. ``("C5", "C7eq")`` for ``A = C5 | C7eq``.
    name : str
        Argument name used in error messages.

    Returns
    -------
    list of tps.states.Ball

    Raises
    ------
    ValueError
        Unknown state name, or a volume other than a ball or a union of balls.
    """
    states = getattr(system, "states", None) or {}
    if isinstance(state, str):
        state = (state,)
    if isinstance(state, (list, tuple)):
        if not state:
            raise ValueError(f"{name}: expected at least one state name")
        balls = []
        for s in state:
            if s not in states:
                raise ValueError(f"{name}: unknown state {s!r}; the system's states are {', '.join(states) or 'none'}")
            balls += _balls_of(states[s], f"{name}[{s!r}]")
        return balls
    return _balls_of(state, name)


def _default_states(system):
    from tps.systems import alanine_dipeptide as aldp

    if getattr(system, "name", None) == aldp.NAME:
        return ("C5", "C7eq"), ("C7ax",)
    raise ValueError("state_a, state_b: required for systems other than alanine-dipeptide "
                     "(names of system.states, or unions of tps.states.Ball)")


def state_definitions(system, *, state_a=None, state_b=None) -> dict:
    """The ``states.json`` content: collective variables and the balls of states A and B.

    Parameters
    ----------
    system : tps.systems.System
        A molecule whose states are :class:`tps.states.Ball` s on a dihedral CV with atom
        ``indices`` ``(d, 4)`` (e.g. :class:`tps.potentials.openmm.PhiPsi`).
    state_a, state_b : str, sequence of str or Volume, optional
        Default for alanine dipeptide: ``A = C5 | C7eq``, ``B = C7ax`` (the states of the
        benchmarks and of the shooting baselines).

    Returns
    -------
    dict
        ``{"format", "version", "system", "kT", "temperature_K", "cv": {"names", "kind",
        "atom_indices", "periods", "unit"}, "states": {"A": {"balls": [{"name", "center",
        "radius"}]}, "B": ...}, "membership"}``.

    Raises
    ------
    ValueError
        A state that is not a (union of) ball(s), balls on different CVs, or a CV without
        dihedral atom indices.

    Examples
    --------
    >>> from tps.systems import alanine_dipeptide
    >>> d = state_definitions(alanine_dipeptide.load(platform="Reference"))
    >>> d["cv"]["atom_indices"], [b["name"] for b in d["states"]["A"]["balls"]], d["states"]["B"]["balls"][0]["radius"]
    ([[4, 6, 8, 14], [6, 8, 14, 16]], ['C5', 'C7eq'], 0.75)
    """
    if state_a is None and state_b is None:
        state_a, state_b = _default_states(system)
    elif state_a is None or state_b is None:
        raise ValueError("state_a, state_b: give both or neither")
    balls = {"A": state_balls(system, state_a, "state_a"), "B": state_balls(system, state_b, "state_b")}
    cvs = [b.cv for bs in balls.values() for b in bs]
    indices = getattr(cvs[0], "indices", None)
    if indices is None:
        raise ValueError(f"system: the states' CV {cvs[0]!r} has no dihedral atom indices (expected e.g. "
                         "tps.potentials.openmm.PhiPsi)")
    indices = np.asarray(indices, dtype=np.int64)
    if indices.ndim != 2 or indices.shape[1] != 4:
        raise ValueError(f"system: expected dihedral atom indices of shape (d, 4), got {indices.shape}")
    for cv in cvs[1:]:
        if not np.array_equal(np.asarray(getattr(cv, "indices", None)), indices):
            raise ValueError(f"state_a, state_b: all balls must use the same CV, got {cvs[0]!r} and {cv!r}")
    periods = [b.periods for bs in balls.values() for b in bs]
    if any(p != periods[0] for p in periods):
        raise ValueError(f"state_a, state_b: all balls must have the same periods, got {periods}")
    names = ["phi", "psi"] if len(indices) == 2 else [f"cv{i}" for i in range(len(indices))]
    return {
        "format": STATES_FORMAT, "version": _VERSION, "system": getattr(system, "name", ""),
        "kT": float(system.kT), "temperature_K": temperature_from_kT(system.kT),
        "cv": {"names": names, "kind": "dihedral", "function": "mdtraj.compute_dihedrals",
               "atom_indices": indices.tolist(), "unit": "rad",
               "periods": None if periods[0] is None else list(periods[0])},
        "states": {k: {"balls": [{"name": b.name, "center": b.center.tolist(), "radius": b.radius} for b in bs]}
                   for k, bs in balls.items()},
        "membership": "a frame is in a state when it is in one of its balls: the Euclidean norm of the "
                      "difference of its CV values to the centre, each periodic coordinate wrapped into "
                      "[-period/2, period/2), is <= radius",
    }


def read_states(path) -> dict:
    """Read and check a ``states.json`` written by :func:`export_ops`.

    Raises
    ------
    ValueError
        Not a ``tps-ops-states`` file, or a field missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"states: no such file {str(path)!r}")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"states: {str(path)!r} is not JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("format") != STATES_FORMAT:
        raise ValueError(f"states: {str(path)!r} is not a {STATES_FORMAT} file written by tps.interop.export_ops")
    for key in ("cv", "states"):
        if key not in d:
            raise ValueError(f"states: {str(path)!r} has no {key!r} entry")
    for s in ("A", "B"):
        if s not in d["states"] or not d["states"][s].get("balls"):
            raise ValueError(f"states: {str(path)!r} defines no balls for state {s}")
    return d


def states_from_definitions(definitions):
    """``(A, B)`` as ``tps`` volumes (unions of :class:`tps.states.Ball`) from ``states.json`` content.

    Parameters
    ----------
    definitions : dict or str or Path
        Output of :func:`state_definitions` or the path of a ``states.json`` (the dihedral atom
        indices come from it).

    Returns
    -------
    (Volume, Volume)
        Positions ``(*batch, n_atoms, 3)`` nm -> bool ``(*batch,)``.
    """
    from tps.potentials.openmm import dihedrals
    from tps.states import Ball

    d = read_states(definitions) if isinstance(definitions, (str, Path)) else definitions
    indices = np.asarray(d["cv"]["atom_indices"], dtype=np.int64)
    periods = d["cv"]["periods"]

    def cv(x):
        return dihedrals(x, indices)

    out = []
    for s in ("A", "B"):
        vol = None
        for b in d["states"][s]["balls"]:
            ball = Ball(b["center"], b["radius"], periods=periods, cv=cv, name=b.get("name", ""))
            vol = ball if vol is None else vol | ball
        out.append(vol)
    return tuple(out)


# ------------------------------------------------------------------------ export
def _per_path(paths):
    """List of per-path float64 arrays ``(n_frames_i, n_atoms, 3)`` (padding dropped)."""
    import torch

    if hasattr(paths, "frames"):
        frames = paths.frames
        lengths = (getattr(paths, "info", None) or {}).get("lengths")
        n = frames.shape[1]
        lengths = [n] * frames.shape[0] if lengths is None else [int(v) for v in torch.as_tensor(lengths).tolist()]
        frames = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        return [np.asarray(frames[i, :m], dtype=np.float64) for i, m in enumerate(lengths)]
    if isinstance(paths, (list, tuple)):
        return [np.asarray(p.detach().cpu() if isinstance(p, torch.Tensor) else p, dtype=np.float64) for p in paths]
    arr = np.asarray(paths.detach().cpu() if isinstance(paths, torch.Tensor) else paths, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[None]
    return list(arr)


def export_ops(paths, system, out_dir, *, state_a=None, state_b=None, max_paths: Optional[int] = None,
               timestep: float = 0.002, friction: float = 1.0, topology=None) -> OPSExport:
    """Write each path's A -> B transition segment, the topology, OpenMM system and states for OPS.

    Parameters
    ----------
    paths : Paths, array ``(n_paths, n_frames, n_atoms, 3)`` or list of ``(n_frames_i, n_atoms, 3)``
        Positions in nm (padding of a variable-length :class:`~tps.sampling.Paths` is dropped).
    system : tps.systems.System
        The molecule (``topology``, ``potential.system``, ``states``, ``kT``), e.g.
        ``tps.systems.alanine_dipeptide.load()``.
    out_dir : str or Path
        Folder to write (created); files listed in the module docstring. Existing files of the
        same names are replaced, atomically and only when every file was written.
    state_a, state_b : str, sequence of str or Volume, optional
        States (see :func:`state_definitions`); default for alanine dipeptide ``C5 | C7eq`` and
        ``C7ax``.
    max_paths : int, optional
        Export at most this many transition segments (the first ones).
    timestep, friction : float
        ps and 1/ps of the ``LangevinMiddleIntegrator`` written to ``integrator.xml``
        (temperature from ``system.kT``).
    topology : mdtraj.Topology or openmm.app.Topology, optional
        Topology of the frames when it is not ``system.topology``; it must have the system's
        atoms in the system's order.

    Returns
    -------
    OPSExport

    Raises
    ------
    ValueError
        No path goes from A to B (the message says where the paths start and end), frames of the
        wrong shape, a topology that does not match the system, bad states or ``max_paths``.

    Examples
    --------
    A three-frame "path" C5 -> C7eq -> C7ax leaves A at its second frame:

    >>> import tempfile, numpy as np, mdtraj
    >>> from tps.systems import alanine_dipeptide
    >>> system = alanine_dipeptide.load(platform="Reference")
    >>> s = alanine_dipeptide.minimized_structures()
    >>> path = np.stack([s["C5"], s["C7eq"], s["C7ax"]])             # (3, 22, 3) nm
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = export_ops([path], system, d)
    ...     traj = mdtraj.load(str(out.trajectories[0]), top=str(out.topology))
    >>> out.n_frames, traj.n_frames, traj.n_atoms
    ((2,), 2, 22)
    """
    import mdtraj
    import openmm

    from tps.baselines.openmm_engine import trim_to_transition
    from tps.potentials.openmm import as_mdtraj_topology
    from tps.sampling.md import check_topology_match

    if max_paths is not None and (isinstance(max_paths, bool) or int(max_paths) != max_paths or max_paths < 1):
        raise ValueError(f"max_paths: expected a positive integer, got {max_paths!r}")
    for value, label in ((timestep, "timestep"), (friction, "friction")):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{label}: expected a positive number, got {value!r}")
    sys_top = getattr(system, "topology", None)
    omm = getattr(getattr(system, "potential", None), "system", None)
    if sys_top is None or not isinstance(omm, openmm.System):
        raise ValueError("system: expected a molecular tps System with a topology and an OpenMM potential "
                         "(e.g. tps.systems.alanine_dipeptide.load())")
    top = as_mdtraj_topology(sys_top)
    if topology is not None:
        check_topology_match(top, topology, system=omm, what="topology")
    definitions = state_definitions(system, state_a=state_a, state_b=state_b)
    a, b = states_from_definitions(definitions)
    per_path = _per_path(paths)
    if not per_path:
        raise ValueError("paths: expected at least one path, got none")
    for i, p in enumerate(per_path):
        if p.ndim != 3 or p.shape[1:] != (top.n_atoms, 3) or len(p) == 0:
            raise ValueError(f"paths[{i}]: expected frames of shape (n_frames, {top.n_atoms}, 3) in nm (the "
                             f"system's {top.n_atoms} atoms), got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError(f"paths[{i}]: expected finite positions")
    segments, sources, skipped = [], [], []
    for i, p in enumerate(per_path):
        try:
            seg = trim_to_transition(p, a, b).numpy()
        except ValueError:
            skipped.append(i)
            continue
        if max_paths is None or len(segments) < int(max_paths):
            segments.append(seg)
            sources.append(i)
    if not segments:
        import torch

        ends = [(bool(a(torch.from_numpy(p[0]))), bool(b(torch.from_numpy(p[-1])))) for p in per_path]
        raise ValueError(f"paths: none of the {len(per_path)} paths goes from state A to state B "
                         f"({sum(s for s, _ in ends)} start in A, {sum(e for _, e in ends)} end in B; "
                         f"A = {' | '.join(x['name'] for x in definitions['states']['A']['balls'])}, "
                         f"B = {' | '.join(x['name'] for x in definitions['states']['B']['balls'])})")
    out_dir = Path(out_dir)
    names = [f"transition_{k:03d}.dcd" for k in range(len(segments))]
    definitions["trajectories"] = [{"file": n, "n_frames": len(s), "source_path": i}
                                   for n, s, i in zip(names, segments, sources)]
    definitions["topology"] = "topology.pdb"
    settings = {"type": "LangevinMiddleIntegrator", "temperature_K": definitions["temperature_K"],
                "friction_per_ps": float(friction), "timestep_ps": float(timestep)}
    definitions["openmm"] = {"system": "system.xml", "integrator": "integrator.xml", "integrator_settings": settings}
    integ = openmm.LangevinMiddleIntegrator(definitions["temperature_K"], float(friction), float(timestep))
    with ExitStack() as stack:
        def target(name):
            return stack.enter_context(atomic_path(out_dir / name))

        for name, seg in zip(names, segments):
            mdtraj.Trajectory(seg.astype(np.float32), top).save_dcd(str(target(name)))
        mdtraj.Trajectory(segments[0][:1].astype(np.float32), top).save_pdb(str(target("topology.pdb")))
        target("system.xml").write_text(openmm.XmlSerializer.serialize(omm))
        target("integrator.xml").write_text(openmm.XmlSerializer.serialize(integ))
        target("states.json").write_text(json.dumps(definitions, indent=2) + "\n")
        shutil.copyfile(IMPORT_SCRIPT, target("ops_to_tps.py"))
    return OPSExport(out_dir=out_dir, trajectories=tuple(out_dir / n for n in names),
                     topology=out_dir / "topology.pdb", states=out_dir / "states.json",
                     system=out_dir / "system.xml", integrator=out_dir / "integrator.xml",
                     script=out_dir / "ops_to_tps.py", source_paths=tuple(sources),
                     n_frames=tuple(len(s) for s in segments), skipped=tuple(skipped))
