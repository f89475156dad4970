"""Path ensembles to files and back: ``.npz`` for any system, ``.dcd``/``.pdb``/``.h5`` for molecules.

Design
------
One call writes one ensemble; the extension of ``path`` picks the format.

``.npz`` (any ``event`` shape, e.g. Müller-Brown's ``(2,)``)
    One compressed numpy archive holding ``frames`` (dtype kept: exact round trip),
    ``energies``, ``lengths``, ``n_energy_evals``, ``kT`` and ``info`` (JSON text).
``.h5`` (molecules)
    One mdtraj HDF5 file: every path's frames one after another as the trajectory (float32, nm,
    topology embedded; ``mdtraj.load("paths.h5")`` opens it), plus a ``/tps`` group holding
    ``lengths`` and ``energies`` (float64, kJ/mol) and the attributes ``n_energy_evals``, ``kT``
    and ``info`` (JSON).
``.dcd`` and ``.pdb`` (molecules)
    The frames of every path one after another (DCD: float32 Angstrom on disk; PDB: one
    ``MODEL`` per frame, 0.001 Angstrom), plus a JSON sidecar ``<file>.json`` (e.g.
    ``paths.dcd.json``) with the path lengths, energies, evaluation count, ``kT`` and ``info``.
    ``mdtraj.load("paths.dcd", top=topology)`` opens the trajectory. With ``split=True`` a
    DCD ensemble is written one file per path, ``paths_000.dcd``, ``paths_001.dcd``, ...,
    and the sidecar ``paths.dcd.json`` lists them (for viewers that show one path at a time).

Variable-length ensembles follow the package's convention (:func:`tps.baselines.pad_paths`):
frames padded by repeating each path's last frame, true frame counts in ``info["lengths"]``.
Only true frames are written to trajectory files; :func:`load_paths` pads them again.

Positions of molecules are in nm, energies in the potential's unit (kJ/mol for OpenMM).
Every file is written atomically (:func:`tps.io.atomic_path`): all of one call's files are
prepared under temporary names and renamed only when all of them were written, so a failure
leaves existing files untouched.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from tps.io.atomic import atomic_path
from tps.io.results import to_json_compatible

#: File extensions accepted by :func:`save_paths` and :func:`load_paths`.
FORMATS = (".npz", ".dcd", ".pdb", ".h5")
_MOLECULAR = (".dcd", ".pdb", ".h5")
_TAG = "tps-paths"
_VERSION = 1


# ------------------------------------------------------------------------ helpers
def _extension(path, name: str = "path") -> str:
    ext = Path(path).suffix.lower()
    if ext == ".hdf5":
        ext = ".h5"
    if ext not in FORMATS:
        raise ValueError(f"{name}: unknown extension {Path(path).suffix or '(none)'!r} of {str(path)!r}; "
                         f"valid extensions: {', '.join(FORMATS)}")
    return ext


def _encode_info(info: dict) -> str:
    """JSON text of ``info``; tensors and arrays tagged so that they come back as such."""
    import torch

    def tag(obj):
        if isinstance(obj, torch.Tensor):
            arr = obj.detach().cpu().numpy()
            return {"__tensor__": to_json_compatible(arr, name="info"), "dtype": str(arr.dtype),
                    "shape": list(arr.shape)}
        if isinstance(obj, np.ndarray):
            return {"__ndarray__": to_json_compatible(obj, name="info"), "dtype": str(obj.dtype),
                    "shape": list(obj.shape)}
        if isinstance(obj, dict):
            return {k: tag(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [tag(v) for v in obj]
        return obj

    return json.dumps(to_json_compatible(tag(dict(info)), name="paths.info"), allow_nan=False)


def _decode_info(text: str) -> dict:
    import torch

    from tps.io.results import NONFINITE

    def untag(obj):
        if isinstance(obj, dict):
            for key in ("__tensor__", "__ndarray__"):
                if key in obj:
                    arr = np.asarray(_nonfinite(obj[key]), dtype=obj["dtype"]).reshape(obj["shape"])
                    return torch.from_numpy(arr) if key == "__tensor__" else arr
            return {k: untag(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [untag(v) for v in obj]
        return NONFINITE.get(obj, obj) if isinstance(obj, str) else obj

    def _nonfinite(obj):
        if isinstance(obj, list):
            return [_nonfinite(v) for v in obj]
        return NONFINITE.get(obj, obj) if isinstance(obj, str) else obj

    return untag(json.loads(text))


def _as_ensemble(paths, energies, kT):
    """``(frames ndarray (n_paths, n_frames, *event), energies (n_paths, n_frames), lengths,
    n_energy_evals, kT, info)`` from a Paths, an array or a list of per-path arrays."""
    import torch

    def numpy(x, name):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if x.dtype.kind not in "iuf":
            raise ValueError(f"{name}: expected real numbers, got dtype {x.dtype}")
        return x

    if hasattr(paths, "frames") and hasattr(paths, "energies") and hasattr(paths, "n_energy_evals"):
        if energies is not None or kT is not None:
            raise ValueError("energies, kT: give them only with array inputs (a Paths carries its own)")
        frames = numpy(paths.frames, "paths.frames")
        energies = numpy(paths.energies, "paths.energies").astype(np.float64)
        info = dict(getattr(paths, "info", {}) or {})
        lengths = info.get("lengths")
        n_evals, kT = int(paths.n_energy_evals), float(paths.kT)
    else:
        if isinstance(paths, (list, tuple)):
            if not paths:
                raise ValueError("paths: expected at least one path, got an empty list")
            per_path = [numpy(p, f"paths[{i}]") for i, p in enumerate(paths)]
            shapes = {p.shape[1:] for p in per_path}
            if any(p.ndim < 2 or len(p) == 0 for p in per_path) or len(shapes) != 1:
                raise ValueError("paths: expected per-path arrays of shape (n_frames_i, *event) with one event shape, "
                                 f"got shapes {[p.shape for p in per_path]}")
            lengths = np.array([len(p) for p in per_path], dtype=np.int64)
            width = int(lengths.max())
            frames = np.stack([np.concatenate([p, np.repeat(p[-1:], width - len(p), axis=0)]) for p in per_path])
        else:
            frames = numpy(paths, "paths")
            if frames.ndim < 3:
                raise ValueError("paths: expected a Paths, a list of per-path arrays or an array of shape "
                                 f"(n_paths, n_frames, *event), got shape {frames.shape}")
            lengths = None
        if energies is None:
            energies = np.full(frames.shape[:2], np.nan)
        elif isinstance(energies, (list, tuple)) and lengths is not None:
            energies = [numpy(e, f"energies[{i}]").astype(np.float64) for i, e in enumerate(energies)]
            if [len(e) for e in energies] != lengths.tolist():
                raise ValueError(f"energies: expected lengths {lengths.tolist()}, got {[len(e) for e in energies]}")
            energies = np.stack([np.concatenate([e, np.repeat(e[-1:], frames.shape[1] - len(e))]) for e in energies])
        else:
            energies = numpy(energies, "energies").astype(np.float64)
        info = {}
        if lengths is not None and len(set(lengths.tolist())) > 1:
            info["lengths"] = torch.from_numpy(lengths)
        else:
            lengths = None
        n_evals, kT = 0, float("nan") if kT is None else float(kT)
    if energies.shape != frames.shape[:2]:
        raise ValueError(f"energies: expected shape (n_paths, n_frames) = {frames.shape[:2]}, got {energies.shape}")
    if lengths is None:
        lengths = np.full(frames.shape[0], frames.shape[1], dtype=np.int64)
    else:
        lengths = numpy(lengths, "paths.info['lengths']").astype(np.int64).reshape(-1)
        if len(lengths) != frames.shape[0] or (lengths < 1).any() or (lengths > frames.shape[1]).any():
            raise ValueError(f"paths.info['lengths']: expected {frames.shape[0]} counts in [1, {frames.shape[1]}], "
                             f"got {lengths.tolist()}")
    return frames, energies, lengths, n_evals, kT, info


def _mdtraj_topology(topology, n_atoms: int, ext: str):
    import mdtraj

    if topology is None:
        raise ValueError(f"topology: required for {ext} files (an mdtraj.Topology, openmm.app.Topology, "
                         "mdtraj.Trajectory or structure file such as a PDB)")
    if isinstance(topology, mdtraj.Trajectory):
        top = topology.topology
    elif isinstance(topology, mdtraj.Topology):
        top = topology
    elif isinstance(topology, (str, Path)):
        if not Path(topology).is_file():
            raise FileNotFoundError(f"topology: no such file {str(topology)!r}")
        top = mdtraj.load_topology(str(topology))
    else:
        import openmm.app

        if not isinstance(topology, openmm.app.Topology):
            raise TypeError("topology: expected an mdtraj.Topology, openmm.app.Topology, mdtraj.Trajectory or a "
                            f"structure file, got {type(topology).__name__}")
        top = mdtraj.Topology.from_openmm(topology)
    if n_atoms is not None and top.n_atoms != n_atoms:
        raise ValueError(f"topology: has {top.n_atoms} atoms but the frames have {n_atoms} atoms each")
    return top


def _concatenate(frames, lengths):
    return np.concatenate([frames[i, :n] for i, n in enumerate(lengths.tolist())])


def _pad(flat, lengths):
    """Split concatenated frames by ``lengths`` and pad by repeating each path's last frame."""
    width = int(lengths.max())
    out, start = [], 0
    for n in lengths.tolist():
        part = flat[start:start + n]
        out.append(np.concatenate([part, np.repeat(part[-1:], width - n, axis=0)]))
        start += n
    return np.stack(out)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _split_names(path: Path, n_paths: int) -> list:
    return [path.with_name(f"{path.stem}_{i:03d}{path.suffix}") for i in range(n_paths)]


# ------------------------------------------------------------------------- public
def save_paths(paths, path, *, topology=None, energies=None, kT=None, split: bool = False,
               max_paths: int | None = None) -> list:
    """Write a path ensemble; the extension of ``path`` picks the format (module docstring).

    Parameters
    ----------
    paths : Paths, array or list of arrays
        A :class:`tps.core.Paths` (frames ``(n_paths, n_frames, *event)``; molecules
        ``(n_paths, n_frames, n_atoms, 3)`` in nm; variable lengths in ``info["lengths"]``), an
        array of that shape, or a list of per-path arrays ``(n_frames_i, *event)``.
    path : str or Path
        ``*.npz``, ``*.dcd``, ``*.pdb`` or ``*.h5`` (:data:`FORMATS`); parent folders are created.
    topology : mdtraj.Topology, openmm.app.Topology, mdtraj.Trajectory or structure file, optional
        Required for ``.dcd``, ``.pdb`` and ``.h5``; its atom count must match the frames.
    energies : array ``(n_paths, n_frames)`` or list of ``(n_frames_i,)``, optional
        Energies of array inputs (default NaN); a Paths carries its own.
    kT : float, optional
        Thermal energy of array inputs (default NaN).
    split : bool
        ``.dcd`` only: one file per path, ``<stem>_000.dcd``, ... (the sidecar lists them).
    max_paths : int, optional
        Write only the first ``max_paths`` paths.

    Returns
    -------
    list of Path
        Files written, the trajectory file(s) first, then the sidecar (if any).

    Raises
    ------
    ValueError
        Unknown extension (valid ones listed), missing topology for a molecular format, atom
        count mismatch, inconsistent shapes.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from tps.core import Paths
    >>> ens = Paths(torch.zeros(3, 5, 2), torch.ones(3, 5, dtype=torch.float64), n_energy_evals=15, kT=12.5)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     files = save_paths(ens, os.path.join(d, "paths.npz"))
    ...     back = load_paths(files[0])
    >>> back.frames.shape, back.n_energy_evals, back.kT
    (torch.Size([3, 5, 2]), 15, 12.5)
    """
    path = Path(path)
    ext = _extension(path)
    frames, energies, lengths, n_evals, kT, info = _as_ensemble(paths, energies, kT)
    n_total = frames.shape[0]
    if max_paths is not None:
        if isinstance(max_paths, bool) or int(max_paths) != max_paths or max_paths < 1:
            raise ValueError(f"max_paths: expected a positive integer, got {max_paths!r}")
        n = min(int(max_paths), frames.shape[0])
        frames, energies, lengths = frames[:n], energies[:n], lengths[:n]
        for key in list(info):  # per-path tensors in info follow the selection
            value = info[key]
            if hasattr(value, "shape") and len(getattr(value, "shape", ())) >= 1 and value.shape[0] == n_total:
                info[key] = value[:n]
    if split and ext != ".dcd":
        raise ValueError(f"split: only for .dcd files, got {ext}")
    meta = {"format": _TAG, "version": _VERSION, "n_paths": int(frames.shape[0]), "lengths": lengths.tolist(),
            "n_energy_evals": int(n_evals), "kT": kT}
    if ext == ".npz":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, frames=frames, energies=energies, lengths=lengths,
                                    n_energy_evals=np.int64(n_evals), kT=np.float64(kT),
                                    format=np.str_(_TAG), version=np.int64(_VERSION), info=np.str_(_encode_info(info)))
        return [path]

    import mdtraj

    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"paths: {ext} files need frames of shape (n_paths, n_frames, n_atoms, 3) in nm, "
                         f"got {frames.shape}")
    top = _mdtraj_topology(topology, frames.shape[2], ext)
    flat = _concatenate(frames, lengths).astype(np.float32)
    written = []
    with ExitStack() as stack:
        def target(p):
            written.append(p)
            return stack.enter_context(atomic_path(p))

        if ext == ".h5":
            tmp = target(path)
            mdtraj.Trajectory(flat, top, time=np.arange(len(flat), dtype=np.float32)).save_hdf5(str(tmp))
            import tables

            with tables.open_file(str(tmp), mode="a") as h5:
                group = h5.create_group("/", "tps", "tps path ensemble: lengths, energies, metadata")
                h5.create_array(group, "lengths", lengths)
                h5.create_array(group, "energies", np.concatenate([energies[i, :n] for i, n in enumerate(lengths)]))
                for key in ("format", "version", "n_energy_evals", "kT"):
                    group._v_attrs[key] = meta[key]
                group._v_attrs["info"] = _encode_info(info)
            return written
        if split:
            start = 0
            for name, n in zip(_split_names(path, len(lengths)), lengths.tolist()):
                mdtraj.Trajectory(flat[start:start + n], top).save_dcd(str(target(name)))
                start += n
            meta["files"] = [p.name for p in written]
        else:
            traj = mdtraj.Trajectory(flat, top)
            tmp = target(path)
            traj.save_dcd(str(tmp)) if ext == ".dcd" else traj.save_pdb(str(tmp))
        meta["energies"] = [energies[i, :n].tolist() for i, n in enumerate(lengths.tolist())]
        meta["info"] = json.loads(_encode_info(info))
        tmp = target(_sidecar(path))
        Path(tmp).write_text(json.dumps(to_json_compatible(meta, name="paths"), allow_nan=False) + "\n")
    return written


def load_paths(path, *, top=None):
    """Read an ensemble written by :func:`save_paths`.

    Parameters
    ----------
    path : str or Path
        The file given to :func:`save_paths` (for ``split=True`` DCDs, that same name: its
        sidecar lists the per-path files). A ``.dcd``/``.pdb`` without sidecar is read as one
        path with NaN energies.
    top : mdtraj.Topology, openmm.app.Topology, mdtraj.Trajectory or structure file, optional
        Checked against the atom count of the file when given; never needed to read the
        coordinates.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Starting ``path:`` if the file is not a readable ensemble (wrong format, truncated or
        damaged, non-finite coordinates, metadata that does not match the frames); starting
        ``topology:`` if ``top`` has another number of atoms (another molecule).

    Returns
    -------
    Paths
        ``frames`` ``(n_paths, max n_frames, *event)`` (float32 nm from trajectory files,
        the saved dtype from ``.npz``), ``energies`` float64, ``n_energy_evals``, ``kT`` and
        ``info`` as saved (tensors in ``info`` come back as tensors).

    Examples
    --------
    Two alanine dipeptide paths of three frames each, to DCD and back; mdtraj reads the file:

    >>> import os, tempfile, mdtraj, torch
    >>> from tps.systems.alanine_dipeptide import data_dir
    >>> c5 = mdtraj.load_pdb(str(data_dir() / "C5.pdb"))
    >>> frames = torch.as_tensor(c5.xyz).expand(2, 3, 22, 3)          # (n_paths, n_frames, n_atoms, 3), nm
    >>> with tempfile.TemporaryDirectory() as d:
    ...     files = save_paths(frames, os.path.join(d, "paths.dcd"), topology=c5.topology)
    ...     back = load_paths(files[0], top=c5.topology)
    ...     n_frames = mdtraj.load(str(files[0]), top=c5.topology).n_frames
    >>> [f.name for f in files], tuple(back.frames.shape), n_frames
    (['paths.dcd', 'paths.dcd.json'], (2, 3, 22, 3), 6)
    """
    path = Path(path)
    ext = _extension(path)
    sidecar = _sidecar(path)
    if not path.is_file() and not (ext == ".dcd" and sidecar.is_file()):
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    try:
        paths = _read_paths(path, ext, sidecar, top)
    except Exception as exc:
        if isinstance(exc, (ValueError, TypeError, FileNotFoundError)) and str(exc).startswith(_OWN_ERRORS):
            raise
        # A truncated or damaged file fails deep inside numpy/mdtraj/PyTables with errors that
        # name neither the file nor the argument.
        raise ValueError(f"path: cannot read {str(path)!r} as a {ext} path ensemble written by tps.io.save_paths "
                         f"(truncated or damaged? {type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from exc
    if not bool(paths.frames.isfinite().all()):
        raise ValueError(f"path: {str(path)!r} holds NaN or infinite coordinates (a damaged file?)")
    return paths


_OWN_ERRORS = ("path: ", "top: ", "topology: ", "paths.info")


def _read_paths(path: Path, ext: str, sidecar: Path, top):
    import torch

    from tps.core.paths import Paths

    if ext == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data.files or str(data["format"]) != _TAG:
                raise ValueError(f"path: {str(path)!r} is not a path ensemble written by tps.io.save_paths")
            frames = data["frames"]
            if top is not None:  # the atom count must match, as for the trajectory formats
                if frames.ndim != 4 or frames.shape[-1] != 3:
                    raise ValueError(f"top: given, but {str(path)!r} holds frames of shape {frames.shape[2:]}, "
                                     "not (n_atoms, 3)")
                _mdtraj_topology(top, frames.shape[2], ext)
            return Paths(torch.from_numpy(frames), torch.from_numpy(data["energies"]),
                         int(data["n_energy_evals"]), float(data["kT"]), _decode_info(str(data["info"])))
    import mdtraj

    if ext == ".h5":
        traj = mdtraj.load_hdf5(str(path))
        import tables

        with tables.open_file(str(path), mode="r") as h5:
            if "/tps" in h5:
                group = h5.get_node("/tps")
                lengths = np.asarray(group.lengths.read(), dtype=np.int64)
                flat_e = np.asarray(group.energies.read(), dtype=np.float64)
                attrs = group._v_attrs
                n_evals, kT, info = int(attrs["n_energy_evals"]), float(attrs["kT"]), _decode_info(str(attrs["info"]))
            else:
                lengths, flat_e, n_evals, kT, info = np.array([traj.n_frames]), np.full(traj.n_frames, np.nan), 0, \
                    float("nan"), {}
        xyz = traj.xyz
        n_atoms = traj.n_atoms
    else:
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else None
        if ext == ".pdb":
            traj = mdtraj.load_pdb(str(path), standard_names=False)
            xyz, n_atoms = traj.xyz, traj.n_atoms
        else:
            files = [path.with_name(f) for f in meta["files"]] if meta and "files" in meta else [path]
            parts = []
            for f in files:
                with mdtraj.formats.DCDTrajectoryFile(str(f), mode="r") as fh:
                    parts.append(fh.read()[0] / 10.0)  # Angstrom -> nm
            xyz = np.concatenate(parts).astype(np.float32)
            n_atoms = xyz.shape[1]
        if meta is None:
            lengths, flat_e, n_evals, kT, info = np.array([len(xyz)]), np.full(len(xyz), np.nan), 0, float("nan"), {}
        else:
            lengths = np.asarray(meta["lengths"], dtype=np.int64)
            flat_e = np.concatenate([np.asarray(_decode_info(json.dumps(e)), dtype=np.float64)
                                     for e in meta["energies"]])
            n_evals, kT = int(meta["n_energy_evals"]), float(_decode_info(json.dumps(meta["kT"])))
            info = _decode_info(json.dumps(meta["info"]))
    if top is not None:
        _mdtraj_topology(top, n_atoms, ext)
    if int(lengths.sum()) != len(xyz):
        raise ValueError(f"path: {str(path)!r} holds {len(xyz)} frames but its metadata lists "
                         f"{int(lengths.sum())} (lengths {lengths.tolist()})")
    frames = _pad(xyz, lengths)
    energies = _pad(flat_e, lengths)
    return Paths(torch.from_numpy(frames), torch.from_numpy(energies), n_evals, kT, info)
