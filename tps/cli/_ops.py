"""``tps export-ops`` and ``tps compare-ops``: OpenPathSampling interoperability by files (tps.interop)."""

from __future__ import annotations

import json
from pathlib import Path

from tps.cli._common import _err, _oneline, _say, _silence_c_output, _threads

_RUN_HINT = "pass the output directory of 'tps run alanine-dipeptide' (it holds paths/paths.dcd and paths/topology.pdb)"


def _run_paths(run_dir: Path):
    from tps.io import load_paths

    if not run_dir.is_dir():
        raise _err(f"RUN_DIR {run_dir}: no such directory", _RUN_HINT)
    traj = run_dir / "paths" / "paths.dcd"
    if not (traj.is_file() or Path(str(traj) + ".json").is_file()):
        raise _err(f"RUN_DIR {run_dir}: no paths/paths.dcd (not an all-atom alanine-dipeptide run)", _RUN_HINT)
    try:
        with _silence_c_output():
            return load_paths(traj)
    except ValueError as exc:
        raise _err(f"RUN_DIR {run_dir}: paths/paths.dcd cannot be read ({_oneline(exc)[:200]})", _RUN_HINT) from None


def _system():
    from tps.systems import alanine_dipeptide as aldp

    return aldp.load(platform="Reference")


def cmd_export_ops(args) -> int:
    _threads()
    from tps.interop.ops import export_ops

    paths = _run_paths(Path(args.run_dir))
    try:
        out = export_ops(paths, _system(), args.out, max_paths=args.max_paths)
    except ValueError as exc:
        raise _err(f"RUN_DIR {args.run_dir}: {_oneline(exc)}", "export a run whose paths reach C7ax") from None
    _say(args, f"wrote {len(out.trajectories)} transition paths (frames {min(out.n_frames)}-{max(out.n_frames)}), "
               f"topology.pdb, system.xml, integrator.xml, states.json and ops_to_tps.py to {out.out_dir}"
               + (f"; skipped {len(out.skipped)} paths without an A -> B transition" if out.skipped else ""))
    print(out.states)
    return 0


def cmd_compare_ops(args) -> int:
    _threads()
    from tps.io import load_paths, to_json_compatible, write_json
    from tps.interop.ops_compare import compare_ensembles, noise_floor

    ops_file = Path(args.ops_paths)
    if not ops_file.is_file():
        raise _err(f"OPS_H5 {ops_file}: no such file", "pass the .h5 file written by ops_to_tps.py")
    try:
        ops = load_paths(ops_file)
    except ValueError as exc:
        raise _err(f"OPS_H5 {ops_file}: cannot be read ({_oneline(exc)[:200]})",
                   "pass the .h5 file written by ops_to_tps.py") from None
    ours = _run_paths(Path(args.run_dir))
    system = _system()
    states = None
    if args.states is not None:
        if not Path(args.states).is_file():
            raise _err(f"--states {args.states}: no such file", "pass the states.json written by 'tps export-ops'")
        states = args.states
    try:
        result = compare_ensembles(ops, ours, system, states=states, bins=args.bins, platform="Reference")
        for name, ens in (("ops", ops), ("tps", ours)):
            try:
                result[f"{name}_noise_floor"] = noise_floor(ens, system, states=result["states"], bins=args.bins)
            except ValueError:
                result[f"{name}_noise_floor"] = float("nan")
    except ValueError as exc:
        raise _err(_oneline(exc), "check that both ensembles are alanine dipeptide paths from A to B") from None
    result = to_json_compatible(result, name="result", nonfinite="null")  # the CLI records' convention
    if args.out is not None:
        write_json(args.out, result)
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [("paths (distinct / weighted)", lambda r: f"{r['n_paths']} / {r['n_weighted']}"),
            ("frames", lambda r: f"{r['n_frames']}"),
            ("mean length (frames)", lambda r: f"{r['length_mean']:.1f}"),
            ("max energy mean +- std (kJ/mol)", lambda r: f"{r['max_energy_mean']:.2f} +- {r['max_energy_std']:.2f}"),
            ("crossing (phi, psi) (rad)", lambda r: "({:.2f}, {:.2f})".format(*r["crossing_phi_psi"]))]
    print(f"{'':34s}{'OPS':>22s}{'tps':>22s}")
    for label, fmt in rows:
        print(f"{label:34s}{fmt(result['ops']):>22s}{fmt(result['tps']):>22s}")
    floors = [result[f"{k}_noise_floor"] for k in ("ops", "tps")]
    floors = ["n/a" if v is None else f"{v:.4f}" for v in floors]
    print(f"path-density JSD (bits, {args.bins}x{args.bins} bins): {result['path_density_jsd']:.4f} "
          f"(noise floors, random halves: OPS {floors[0]}, tps {floors[1]})")
    return 0
