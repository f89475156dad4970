"""``tps run``, ``tps geodesic`` and ``tps sample``: parse, load the system, call :mod:`tps.pipeline`, print."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from tps.cli._common import _device, _err, _now, _progress, _say, _threads, _version, _versions
from tps.cli._stages import (
    constraint_and_avoid, legacy_keys, load_curve, load_model, load_system, run_protocols, settings_view,
    with_points,
)


def _check_out_dir(out: Path, option: str = "--out") -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise _err(f"{option} {out}: exists and is not a directory", "pass a directory name")
    return out


def _unit(system) -> str:
    return "" if system.energy_unit == "dimensionless" else f" {system.energy_unit}"


def _summary_line(system, row, timings) -> str:
    return (f"{system.name}: {row['n_paths']} paths, target_hit_fraction {row['target_hit_fraction']:.3f}, "
            f"max_energy {row['max_energy_mean']:.2f} +- {row['max_energy_std']:.2f}{_unit(system)} (minmax "
            f"{row['minmax']:.2f}), max_step {row['max_step']:.4g}; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def _parallel_info(spec, paths) -> dict:
    info = spec.describe()
    for k in ("n_tasks", "task_size"):
        if paths.info.get(k) is not None:
            info[k] = paths.info[k]
    return info


def _files(system, out: Path, **more) -> dict:
    paths_file = system.paths_file(out)
    files = {"paths": str(paths_file.relative_to(out)), "figure": "paths.png", **more}
    topology = paths_file.parent / "topology.pdb"  # molecules: the topology written beside the paths
    if topology.is_file():
        files["topology"] = str(topology.relative_to(out))
    return files


def _refined_line(row) -> str:
    def f(key, fmt="{:.3g}"):
        v = row.get(key)
        return "n/a" if v is None else fmt.format(v)

    return (f"geodesic-seeded-shooting: {row['n_chains']} chains x {row['n_rounds']} rounds, acceptance "
            f"{f('acceptance_rate', '{:.3f}')}, {row['chains_decorrelated_from_seed']}/{row['n_chains']} chains "
            f"decorrelated from their seed, split-chain JSD {f('split_frame_density_chains')} (frames) "
            f"{f('split_path_length_chains')} (lengths) {f('split_crossing_chains')} (crossing), JSD vs geodesic "
            f"{f('path_density_jsd_vs_geodesic')}, {row['n_energy_evals']} energy evaluations")


def refine_protocol(system, protocols, args):
    """The command's :class:`~tps.systems.protocols.RefineProtocol` (None without ``--refine``), checked
    before anything is written: ``--chains`` / ``--refine-steps`` / ``--relax-rounds`` need ``--refine``, and ``--chains``
    may not exceed the geodesic paths that are kept (``--paths``, ``--save-paths``)."""
    refine = getattr(args, "refine", None)
    chains, steps = getattr(args, "chains", None), getattr(args, "refine_steps", None)
    relax = getattr(args, "relax_rounds", None)
    if refine is None:
        for flag, value in (("--chains", chains), ("--refine-steps", steps), ("--relax-rounds", relax)):
            if value is not None:
                raise _err(f"{flag} is only used with --refine", "add --refine shooting")
        return None
    p = system.refine_protocol()
    p = p.replace(**{k: v for k, v in (("n_chains", chains), ("n_rounds", steps), ("relax_rounds", relax))
                     if v is not None})
    s = protocols.sampler
    kept = min(s.n_paths, s.save_paths or s.n_paths)
    if p.n_chains > kept:
        raise _err(f"--chains {p.n_chains}: more chains than the {kept} geodesic paths kept (each chain starts "
                   "from a different path)", f"pass --chains {kept} or fewer, or raise --paths / --save-paths")
    return p


# ============================================================================ run
def cmd_run(args) -> int:
    from tps.cli._parallel import cli_executor

    with cli_executor(args) as (executor, spec):
        return _cmd_run(args, executor, spec)


def _cmd_run(args, executor, spec) -> int:
    from tps.cli._parallel import parallel_key
    from tps.pipeline import RunDirectory

    torch = _threads()
    system = load_system(args.system)
    protocols = run_protocols(system, args)
    constraint, avoid, avoid_record = constraint_and_avoid(system, args)
    refine = refine_protocol(system, protocols, args)
    seed = int(getattr(args, "seed", 0) or 0)
    out = _check_out_dir(args.out or Path("runs") / system.name)
    device = _device(args.device)
    t_start = time.perf_counter()
    model, minfo = load_model(system, args.model, device=device)
    run_dir = RunDirectory(out)
    old = legacy_keys(system, protocols, model_sha256=minfo["sha256"], constraint=constraint,
                      avoid_record=avoid_record, seed=seed, parallel=parallel_key(spec))
    result, resumed = run_dir.run(system, model, protocols, model_sha256=minfo["sha256"], constraint=constraint,
                                  avoid=avoid, seed=seed, executor=executor, parallel=parallel_key(spec),
                                  force=args.force, progress=_progress(args), say=lambda m: _say(args, m),
                                  legacy_keys=old)
    paths, row, curve, timings = result.paths, result.row, result.curve, result.timings
    refined = None
    if refine is not None:
        n_training = int(model.metadata.get("n_training_energy_evals", 0))
        refined, resumed["refine"] = run_dir.refine(system, result, refine, seed=seed, executor=executor,
                                                    parallel=parallel_key(spec), force=args.force,
                                                    n_training_energy_evals=n_training,
                                                    say=lambda m: _say(args, m))
        timings.update(refined.timings)
    _say(args, "[3/3] figure")
    t0 = time.perf_counter()
    system.figure(paths, curve, out / "paths.png", n_total=row["n_paths"])
    if refined is not None:
        from tps.cli._figures import refined_figure

        refined_figure(system, paths, refined.paths, curve, out / "refined.png", n_geodesic=row["n_paths"],
                       refined_row=refined.row)
    timings["figure_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    results = {
        "system": system.name,
        "description": system.description,
        "command": shlex.join(["tps"] + list(args._argv)),
        "package_version": _version(),
        "date": _now(),
        "seed": seed,
        "settings": settings_view(protocols, constraint=constraint, avoid_record=avoid_record, seed=seed),
        "model": minfo | {"metadata": {k: v for k, v in model.metadata.items() if k != "recipe"}},
        "curve": {"curve_energy": curve.energy, "curve_energy_initial": curve.initial_energy,
                  "n_evaluations": int(curve.provenance.get("n_evaluations", 0)),
                  "logsnr_min": float(curve.logsnr.min()), "logsnr_mean": float(curve.logsnr.mean()), **curve.extra},
        "metrics": row,
        "timings": timings,
        "resumed": resumed,
        "parallel": _parallel_info(spec, paths),
        "files": _files(system, out, curve="curve.pt"),
        "energy_unit": system.energy_unit,
        "hardware": {"device": device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
        "versions": _versions(),
    }
    if refined is not None:
        results["rows"] = [row, refined.row]
        results["refined"] = {"metrics": refined.row, "diagnostics": refined.diagnostics,
                              "settings": refine.as_dict() | {"burn_in": refine.burn_in},
                              "files": {"paths": str(system.paths_file(run_dir.refined_dir).relative_to(out)),
                                        "figure": "refined.png"}}
    run_dir.write_results(results)
    if not args.quiet:
        print(_summary_line(system, row, timings))
        if refined is not None:
            print(_refined_line(refined.row))
        print(f"wrote {out / 'results.json'}, {out / 'paths.png'}, {out / results['files']['paths']}, "
              f"{run_dir.curve_path}" + ("" if refined is None else
                                         f", {out / 'refined.png'}, {system.paths_file(run_dir.refined_dir)}"))
    return 0


# ============================================================================ geodesic
def cmd_geodesic(args) -> int:
    from tps.pipeline import geodesic_key, solve_curve

    _threads()
    system = load_system(args.system)
    protocols = run_protocols(system, args)
    constraint, avoid, avoid_record = constraint_and_avoid(system, args)
    seed = int(getattr(args, "seed", 0) or 0)
    out = Path(args.out)
    if out.is_dir():
        raise _err(f"--out {out}: is a directory", "pass a file name such as curve.pt")
    device = _device(args.device)
    model, minfo = load_model(system, args.model, device=device)
    curve = solve_curve(system, model, protocols, constraint=constraint, avoid=avoid, seed=seed,
                        progress=_progress(args))
    key = geodesic_key(system.name, protocols, model_sha256=minfo["sha256"], constraint=constraint, avoid=avoid,
                       seed=seed)
    curve = curve.replace(provenance={"key": key, "model": {k: minfo[k] for k in ("source", "sha256", "network")},
                                      "settings": settings_view(protocols, constraint=constraint,
                                                                avoid_record=avoid_record, seed=seed)})
    curve.save(out)
    if not args.quiet:
        print(f"{system.name}: curve energy {curve.energy:.4g} (straight line {curve.initial_energy:.4g}), "
              f"logSNR min {float(curve.logsnr.min()):.2f}, {curve.wall_s:.1f} s; wrote {out}")
    return 0


# ============================================================================ sample
def cmd_sample(args) -> int:
    from tps.cli._parallel import cli_executor

    with cli_executor(args) as (executor, spec):
        return _cmd_sample(args, executor, spec)


def _cmd_sample(args, executor, spec) -> int:
    from tps.pipeline import run_method
    from tps.pipeline.jsonable import NONFINITE

    torch = _threads()
    system = load_system(args.system)
    curve = load_curve(args.curve, system.name)
    protocols = with_points(run_protocols(system, args), curve)
    seed = int(getattr(args, "seed", 0) or 0)
    out = _check_out_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = run_method(system, curve=curve, protocols=protocols, seed=seed, executor=executor,
                        progress=_progress(args))
    paths, row = result.paths, result.row
    t_sample = result.timings["sampling_s"]
    n_save = protocols.sampler.save_paths
    if n_save and n_save < paths.n_paths:
        paths = paths[:n_save]
    system.save_paths(paths, out)
    system.figure(paths, curve, out / "paths.png", n_total=row["n_paths"])
    results = {"system": system.name, "command": shlex.join(["tps"] + list(args._argv)), "package_version": _version(),
               "date": _now(), "seed": seed, "settings": settings_view(protocols, seed=seed),
               "curve_file": str(args.curve), "metrics": row, "timings": {"sampling_s": t_sample},
               "parallel": _parallel_info(spec, paths), "files": _files(system, out),
               "hardware": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
               "versions": _versions()}
    from tps.io import save_results

    save_results(results, out / "results.json", nonfinite=NONFINITE)
    if not args.quiet:
        print(_summary_line(system, row, {"sampling_s": t_sample}))
        print(f"wrote {out / 'results.json'}, {out / 'paths.png'}, {out / results['files']['paths']}")
    return 0
