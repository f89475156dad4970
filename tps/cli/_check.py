"""``tps check-energies``: OpenMM energies of every frame against the stored ones."""

from __future__ import annotations

import json
from pathlib import Path

from tps.cli._common import _err, _jsonable, _oneline, _silence_c_output, _threads


# ============================================================================ check-energies
def cmd_check_energies(args) -> int:
    _threads()
    import numpy as np

    traj = Path(args.traj)
    if not traj.is_file() and not Path(str(traj) + ".json").is_file():
        raise _err(f"{traj}: no such file", "pass a trajectory written by 'tps run' (.dcd, .pdb, .h5 or .npz)")
    ext = traj.suffix.lower()
    if ext not in (".dcd", ".pdb", ".h5", ".hdf5", ".npz"):
        raise _err(f"{traj}: unknown trajectory format {traj.suffix or '(none)'!r}",
                   "pass a .dcd, .pdb, .h5 or .npz file")
    from openmm import app

    from tps.io import load_paths
    from tps.metrics.molecular import openmm_energies
    from tps.systems import alanine_dipeptide as aldp

    try:
        with _silence_c_output():
            paths = load_paths(traj)
    except ValueError as exc:
        raise _err(f"{traj}: cannot be read ({_oneline(exc)[:200]})",
                   "pass a trajectory written by 'tps run' or tps.io.save_paths") from None
    frames = paths.frames.detach().cpu().double().numpy()
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise _err(f"{traj}: frames of shape {frames.shape[1:]} per path are not all-atom positions",
                   "check-energies needs a molecular trajectory (n_atoms x 3 per frame), e.g. the paths of "
                   "'tps run alanine-dipeptide'")
    top_path = Path(args.top) if args.top else None
    if top_path is None:
        if ext == ".pdb":
            top_path = traj
        elif ext in (".h5", ".hdf5"):
            top_path = None
        else:
            guess = traj.parent / "topology.pdb"
            if not guess.is_file():
                raise _err(f"{traj}: a {ext} file has no topology", "pass --top TOPOLOGY.pdb")
            top_path = guess
    if top_path is not None and not top_path.is_file():
        raise _err(f"--top {top_path}: no such file", "pass the topology PDB written beside the trajectory")
    if top_path is not None:
        topology = app.PDBFile(str(top_path)).topology
    else:
        import mdtraj

        topology = mdtraj.load_hdf5(str(traj), frame=0).topology.to_openmm()
    if frames.shape[2] != topology.getNumAtoms():
        raise _err(f"{traj}: {frames.shape[2]} atoms per frame but the topology has {topology.getNumAtoms()}",
                   "pass the topology this trajectory was written with (--top)")
    force_field = " ".join(args.forcefield) if args.forcefield else aldp.FORCE_FIELD
    try:
        if args.forcefield:
            system = app.ForceField(*args.forcefield).createSystem(topology, nonbondedMethod=app.NoCutoff,
                                                                   constraints=app.HBonds)
        else:
            system = aldp.create_openmm_system(topology)
    except (ValueError, OSError, Exception) as exc:  # OpenMM raises ValueError/OSError/its own types
        raise _err(f"the force field ({force_field}) cannot build this topology ({_oneline(exc)[:160]})",
                   "pass --forcefield with the OpenMM force-field files your trajectory was made with") from None
    lengths = paths.info.get("lengths")
    lengths = [frames.shape[1]] * frames.shape[0] if lengths is None else [int(v) for v in np.asarray(lengths)]
    flat = np.concatenate([frames[i, :n] for i, n in enumerate(lengths)])
    stored = paths.energies.detach().cpu().double().numpy()
    stored = np.concatenate([stored[i, :n] for i, n in enumerate(lengths)])
    recomputed = openmm_energies(system, flat)
    report = {"file": str(traj), "n_paths": len(lengths), "n_frames": int(len(flat)),
              "force_field": force_field, "energy_unit": "kJ/mol",
              "recomputed_min": float(recomputed.min()), "recomputed_max": float(recomputed.max()),
              "tolerance": args.tolerance}
    status = 0
    if np.isfinite(stored).any():
        mask = np.isfinite(stored)
        dev = np.abs(stored[mask] - recomputed[mask])
        worst = int(np.flatnonzero(mask)[int(dev.argmax())])
        report.update(n_compared=int(mask.sum()), max_abs_deviation=float(dev.max()),
                      worst_frame=worst, stored_at_worst=float(stored[worst]),
                      recomputed_at_worst=float(recomputed[worst]))
        ok = bool(dev.max() <= args.tolerance)
        report["agree"] = ok
        status = 0 if ok else 1
        line = (f"{traj}: {len(flat)} frames, stored and OpenMM energies {'agree' if ok else 'DISAGREE'}: "
                f"max |deviation| {dev.max():.3g} kJ/mol (tolerance {args.tolerance:g}) at frame {worst} "
                f"(stored {stored[worst]:.4f}, OpenMM {recomputed[worst]:.4f})")
    else:
        report["agree"] = None
        line = (f"{traj}: {len(flat)} frames, no stored energies to compare; OpenMM energies "
                f"{recomputed.min():.2f} .. {recomputed.max():.2f} kJ/mol")
    if args.json:
        print(json.dumps(_jsonable(report)))
    else:
        print(line)
    return status
