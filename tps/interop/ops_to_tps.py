"""OpenPathSampling storage -> mdtraj HDF5 path ensemble that ``tps.io.load_paths`` reads.

A standalone script for the OpenPathSampling (OPS) environment: it does not import ``tps``
(OPS 1.7 needs numpy < 2, ``tps`` numpy 2). It needs ``openpathsampling``, ``mdtraj`` and
``tables`` (pytables). ``tps export-ops`` copies it into its output folder as ``ops_to_tps.py``;
it is also ``tps/interop/ops_to_tps.py`` in the package.

Usage::

    python ops_to_tps.py STORAGE.nc OUT.h5 [--mode accepted|active] [--kT KT]

Which paths
-----------
Every Monte Carlo step of the storage (``storage.steps``) has an active sample set; the path of
the (single) TPS ensemble after step ``n`` is the chain's state ``n``.

``--mode accepted`` (default)
    Each distinct path of the chain once, in order: the initial path, then the new path of every
    accepted move. ``info["multiplicity"]`` holds how many steps each stayed active (repeat path
    ``i`` that many times for the Markov-chain average).
``--mode active``
    The active path after every step, repeats included (the chain itself: its frame density is
    the path-ensemble average).

Output
------
One mdtraj HDF5 file: the frames of all paths one after another (nm, topology embedded), plus
the ``/tps`` group of ``tps.io.save_paths``: ``lengths`` (frames per path), ``energies`` (NaN:
OPS snapshots carry none; ``tps compare-ops`` recomputes them with OpenMM) and the attributes
``format`` = ``"tps-paths"``, ``version``, ``n_energy_evals`` (0), ``kT`` and ``info`` (JSON:
``lengths``, ``source``, ``storage``, ``mode``, ``n_steps``, ``n_accepted``, ``acceptance``,
``multiplicity``, ``ops_version``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

FORMAT = "tps-paths"
VERSION = 1
MODES = ("accepted", "active")


def _tensor(values, dtype="int64"):
    """The tagged form in which tps.io stores an integer tensor in ``info`` (comes back as a torch tensor)."""
    values = [int(v) for v in values]
    return {"__tensor__": values, "dtype": dtype, "shape": [len(values)]}


def write_tps_h5(out_path, trajectories, *, kT=float("nan"), info=None):
    """Write mdtraj trajectories as one tps path-ensemble HDF5 file (atomically).

    Parameters
    ----------
    out_path : str
        ``*.h5``.
    trajectories : list of mdtraj.Trajectory
        One per path, same topology; positions nm.
    kT : float
        Thermal energy (kJ/mol) recorded in the file.
    info : dict, optional
        Extra JSON-serialisable metadata (stored in ``/tps`` attribute ``info``).

    Returns
    -------
    str
        ``out_path``.
    """
    import mdtraj
    import tables

    if not trajectories:
        raise ValueError("trajectories: expected at least one path, got none")
    n_atoms = {t.n_atoms for t in trajectories}
    if len(n_atoms) != 1:
        raise ValueError(f"trajectories: expected one atom count, got {sorted(n_atoms)}")
    lengths = np.array([t.n_frames for t in trajectories], dtype=np.int64)
    xyz = np.concatenate([t.xyz for t in trajectories]).astype(np.float32)
    info = dict(info or {})
    info["lengths"] = _tensor(lengths)
    out_path = str(out_path)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(out_path) + ".", suffix=".tmp.h5", dir=folder)
    os.close(fd)
    try:
        traj = mdtraj.Trajectory(xyz, trajectories[0].topology, time=np.arange(len(xyz), dtype=np.float32))
        traj.save_hdf5(tmp, force_overwrite=True)
        with tables.open_file(tmp, mode="a") as h5:
            group = h5.create_group("/", "tps", "tps path ensemble: lengths, energies, metadata")
            h5.create_array(group, "lengths", lengths)
            h5.create_array(group, "energies", np.full(len(xyz), np.nan, dtype=np.float64))
            group._v_attrs["format"] = FORMAT
            group._v_attrs["version"] = VERSION
            group._v_attrs["n_energy_evals"] = 0
            group._v_attrs["kT"] = float(kT)
            group._v_attrs["info"] = json.dumps(info)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out_path


def _single(sample_set, k):
    samples = list(sample_set)
    if len(samples) != 1:
        raise ValueError(f"storage: step {k} has {len(samples)} active samples; this script handles a TPS "
                         "storage with one ensemble (one replica)")
    return samples[0].trajectory


def _same(a, b):
    ua = getattr(a, "__uuid__", None)
    return a is b or (ua is not None and ua == getattr(b, "__uuid__", None))


def chain_from_storage(storage):
    """Active TPS trajectory after every MC step, and whether each step was accepted.

    Fast path: the storage's sample sets, one per step in step order (checked against the last
    step), with a step accepted when the active path changed (a shooting move that is accepted
    always brings a new path). Otherwise every step is loaded (slow: its whole move tree) and
    ``step.change.accepted`` read.

    Returns
    -------
    trajectories : list of openpathsampling.Trajectory
        ``len(storage.steps)`` entries (step 0: the initial conditions).
    accepted : list of bool
        One per step after the first.
    """
    n = len(storage.steps)
    if n == 0:
        raise ValueError("storage: it holds no Monte Carlo steps")
    if len(storage.samplesets) == n:
        trajs = [_single(s, k) for k, s in enumerate(storage.samplesets)]
        if _same(trajs[-1], _single(storage.steps[n - 1].active, n - 1)):
            return trajs, [not _same(a, b) for a, b in zip(trajs[:-1], trajs[1:])]
    trajs, accepted = [], []
    for k, step in enumerate(storage.steps):
        trajs.append(_single(step.active, k))
        if k > 0:
            accepted.append(bool(step.change.accepted))
    return trajs, accepted


def select(trajectories, mode):
    """``(paths, multiplicity)`` for ``mode`` (module docstring)."""
    if mode == "active":
        return list(trajectories), [1] * len(trajectories)
    if mode != "accepted":
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    out, mult = [], []
    for t in trajectories:
        if out and _same(t, out[-1]):
            mult[-1] += 1
        else:
            out.append(t)
            mult.append(1)
    return out, mult


def to_mdtraj(chain, mode):
    """mdtraj trajectories of the paths ``select(chain, mode)`` picks; each distinct path converted once."""
    import mdtraj

    distinct, mult = select(chain, "accepted")
    topology = distinct[0].to_mdtraj().topology  # OPS rebuilds the topology on every to_mdtraj(): once is enough
    xyz = [np.asarray(t.xyz, dtype=np.float32) for t in distinct]
    if mode == "accepted":
        return [mdtraj.Trajectory(x, topology) for x in xyz]
    select(chain, mode)  # checks mode
    return [mdtraj.Trajectory(x, topology) for x, m in zip(xyz, mult) for _ in range(m)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="ops_to_tps.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("storage", help="OPS storage file (.nc) of a TPS run")
    parser.add_argument("out", help="output HDF5 file (.h5) for tps.io.load_paths")
    parser.add_argument("--mode", choices=MODES, default="accepted",
                        help="accepted: each distinct path of the chain once (default); active: the path after "
                             "every MC step, repeats included")
    parser.add_argument("--kT", type=float, default=float("nan"), help="thermal energy in kJ/mol to record")
    args = parser.parse_args(argv)
    if not args.out.lower().endswith((".h5", ".hdf5")):
        parser.error(f"out: expected a .h5 file name, got {args.out!r}")
    if not os.path.isfile(args.storage):
        parser.error(f"storage: no such file {args.storage!r}")
    import openpathsampling as paths

    storage = paths.Storage(args.storage, mode="r")
    try:
        chain, accepted = chain_from_storage(storage)
        trajs = to_mdtraj(chain, args.mode)
        mult = select(chain, args.mode)[1]
        n_acc = int(sum(accepted))
        info = {"source": "openpathsampling", "ops_version": getattr(paths, "version", None) and paths.version.version,
                "storage": os.path.abspath(args.storage), "mode": args.mode, "n_steps": len(accepted),
                "n_accepted": n_acc, "acceptance": (n_acc / len(accepted)) if accepted else None,
                "multiplicity": mult}
        write_tps_h5(args.out, trajs, kT=args.kT, info=info)
    except ValueError as exc:  # a storage this script cannot read: one line, exit status 2
        parser.error(str(exc))
    finally:
        storage.close()
    print(f"{args.out}: {len(trajs)} paths ({args.mode}), {sum(t.n_frames for t in trajs)} frames; "
          f"{n_acc} of {len(accepted)} moves accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
