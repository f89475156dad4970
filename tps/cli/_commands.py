"""``tps run``, ``tps geodesic`` and ``tps sample``: stages, resumption state and ``results.json``."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import time
from pathlib import Path

from tps.cli._common import (
    DESCRIPTIONS, UserError, _device, _err, _jsonable, _now, _progress, _say, _stage_key, _threads, _version,
    _versions,
)
from tps.cli._stages import (
    RunSettings, _load_curve, _paths_file, _settings, load_model, load_run_paths, metrics, sample_curve,
    save_run_paths, solve_curve,
)
from tps.cli._figures import figure


# ============================================================================ run / geodesic / sample
_SAMPLING_ONLY = ("paths", "steps_per_point", "step_size", "frames_per_point", "timestep", "friction", "save_paths")


def _geodesic_key(system: str, s: RunSettings, model_info: dict) -> str:
    return _stage_key(system=system, model_sha256=model_info["sha256"],
                      settings={k: v for k, v in s.as_dict().items() if k not in _SAMPLING_ONLY}, version=_version())


def _sampling_key(gkey: str, s: RunSettings, parallel=None) -> str:
    d = s.as_dict()
    extra = {} if parallel is None else {"parallel": parallel}  # in-process: the key of earlier versions
    return _stage_key(geodesic=gkey, settings={k: d[k] for k in _SAMPLING_ONLY if k in d}, seed=s.seed, **extra)


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_results(path: Path, results: dict) -> None:
    try:
        from tps.io import save_results
    except ImportError:  # pragma: no cover - older tps.io
        save_results = None
    if save_results is not None:
        save_results(_jsonable(results), path)
    else:  # pragma: no cover
        from tps.io import write_json

        write_json(path, _jsonable(results))


def _check_out_dir(out: Path, option: str = "--out") -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise _err(f"{option} {out}: exists and is not a directory", "pass a directory name")
    return out


def _save_curve(path: Path, curve: dict) -> None:
    from tps.io import save_torch

    save_torch(path, curve)


def _summary_line(system, row, timings) -> str:
    unit = "" if system == "muller-brown" else " kJ/mol"
    return (f"{system}: {row['n_paths']} paths, target_hit_fraction {row['target_hit_fraction']:.3f}, "
            f"max_energy {row['max_energy_mean']:.2f} +- {row['max_energy_std']:.2f}{unit} (minmax "
            f"{row['minmax']:.2f}), max_step {row['max_step']:.4g}; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def cmd_run(args) -> int:
    from tps.cli._parallel import cli_executor

    with cli_executor(args) as (executor, spec):
        return _cmd_run(args, executor, spec)


def _cmd_run(args, executor, spec) -> int:
    from tps.cli._parallel import parallel_key

    torch = _threads()
    system = args.system
    s = _settings(system, args)
    out = _check_out_dir(args.out or Path("runs") / system)
    device = _device(args.device)
    t_start = time.perf_counter()
    model, minfo = load_model(system, args.model, device=device)
    state_path = out / "state.json"
    state = {} if args.force else _read_state(state_path)
    gkey = _geodesic_key(system, s, minfo)
    curve_path = out / "curve.pt"
    timings, resumed = {}, {"geodesic": False, "sampling": False}
    curve = None
    if state.get("geodesic", {}).get("key") == gkey and curve_path.is_file():
        try:
            curve = _load_curve(curve_path, system)
            resumed["geodesic"] = curve.get("key") == gkey
            if not resumed["geodesic"]:
                curve = None
        except UserError:
            curve = None
    from tps.io import write_json

    if curve is None:
        _say(args, f"[1/3] geodesic ({system}, {s.points} points, constraint {s.constraint})")
        curve = solve_curve(system, model, s, progress=_progress(args))
        curve["key"] = gkey
        out.mkdir(parents=True, exist_ok=True)  # only now: a refused input (e.g. what to avoid) writes nothing
        _save_curve(curve_path, curve)
        state = {"geodesic": {"key": gkey, "file": curve_path.name, "wall_s": curve["wall_s"], "date": _now()}}
        write_json(state_path, state)
    else:
        _say(args, f"[1/3] geodesic: reusing {curve_path} (same settings and model)")
    timings["geodesic_s"] = curve["wall_s"]
    skey = _sampling_key(gkey, s, parallel_key(spec))
    paths, row = None, None
    method = "spacetime-geodesic" + ("" if s.constraint == "none" else f"-{s.constraint}")
    saved = state.get("sampling", {})
    if saved.get("key") == skey and isinstance(saved.get("metrics"), dict) and _paths_file(system, out).exists():
        try:
            paths = load_run_paths(system, out)
            row = saved["metrics"]
            resumed["sampling"] = True
            timings["sampling_s"] = float(saved.get("wall_s", float("nan")))
            timings["metrics_s"] = float(saved.get("metrics_s", float("nan")))
            _say(args, f"[2/3] paths: reusing {_paths_file(system, out)} and their metrics (same settings)")
        except Exception:
            paths, row = None, None
    if paths is None:
        _say(args, f"[2/3] annealed Langevin: {s.paths} paths x {s.points} points x "
                   f"{s.steps_per_point} steps")
        tasks_dir = None if executor is None else out / "tasks" / "sampling"
        paths, t_sample = sample_curve(system, curve, s, progress=_progress(args), executor=executor,
                                       checkpoint=tasks_dir)
        timings["sampling_s"] = t_sample
        t0 = time.perf_counter()
        row = metrics(system, paths, n_training_energy_evals=int(model.metadata.get("n_training_energy_evals", 0)),
                      wall_s=timings["geodesic_s"] + t_sample, geodesic_wall_s=timings["geodesic_s"], method=method,
                      curve=curve)
        timings["metrics_s"] = time.perf_counter() - t0
        n_save = s.save_paths or paths.n_paths
        if n_save < paths.n_paths:
            paths = paths[:n_save]
        files = save_run_paths(system, paths, out)
        state["sampling"] = {"key": skey, "files": [str(Path(f).relative_to(out)) for f in files],
                             "wall_s": t_sample, "metrics_s": timings["metrics_s"], "metrics": row, "date": _now()}
        write_json(state_path, _jsonable(state))
        if tasks_dir is not None:  # the paths are saved: the per-task results are no longer needed
            import shutil

            shutil.rmtree(tasks_dir, ignore_errors=True)
            if not any(tasks_dir.parent.iterdir()):
                tasks_dir.parent.rmdir()
    _say(args, "[3/3] figure")
    t0 = time.perf_counter()
    figure(system, paths, curve, out / "paths.png", n_total=row["n_paths"])
    timings["figure_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    results = {
        "system": system,
        "description": DESCRIPTIONS[system],
        "command": shlex.join(["tps"] + list(args._argv)),
        "package_version": _version(),
        "date": _now(),
        "seed": s.seed,
        "settings": s.as_dict(),
        "model": minfo | {"metadata": {k: v for k, v in model.metadata.items() if k != "recipe"}},
        "curve": {"curve_energy": curve["curve_energy"], "curve_energy_initial": curve["curve_energy_initial"],
                  "n_evaluations": curve["n_evaluations"], "logsnr_min": float(curve["logsnr"].min()),
                  "logsnr_mean": float(curve["logsnr"].mean()), **curve.get("extra", {})},
        "metrics": row,
        "timings": timings,
        "resumed": resumed,
        "parallel": _parallel_info(spec, paths),
        "files": {"paths": str(_paths_file(system, out).relative_to(out)), "figure": "paths.png",
                  "curve": "curve.pt"},
        "energy_unit": "dimensionless" if system == "muller-brown" else "kJ/mol",
        "hardware": {"device": device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
        "versions": _versions(),
    }
    if system == "alanine-dipeptide":
        results["files"]["topology"] = "paths/topology.pdb"
    _write_results(out / "results.json", results)
    if not args.quiet:
        print(_summary_line(system, row, timings))
        print(f"wrote {out / 'results.json'}, {out / 'paths.png'}, {out / results['files']['paths']}, {curve_path}")
    return 0


def cmd_geodesic(args) -> int:
    _threads()
    system = args.system
    s = _settings(system, args)
    out = Path(args.out)
    if out.is_dir():
        raise _err(f"--out {out}: is a directory", "pass a file name such as curve.pt")
    device = _device(args.device)
    model, minfo = load_model(system, args.model, device=device)
    curve = solve_curve(system, model, s, progress=_progress(args))
    curve["key"] = _geodesic_key(system, s, minfo)
    curve["model"] = {k: minfo[k] for k in ("source", "sha256", "network")}
    curve["settings"] = s.as_dict()
    _save_curve(out, curve)
    if not args.quiet:
        print(f"{system}: curve energy {curve['curve_energy']:.4g} (straight line "
              f"{curve['curve_energy_initial']:.4g}), logSNR min {float(curve['logsnr'].min()):.2f}, "
              f"{curve['wall_s']:.1f} s; wrote {out}")
    return 0


def _parallel_info(spec, paths) -> dict:
    info = spec.describe()
    for k in ("n_tasks", "task_size"):
        if paths.info.get(k) is not None:
            info[k] = paths.info[k]
    return info


def cmd_sample(args) -> int:
    from tps.cli._parallel import cli_executor

    with cli_executor(args) as (executor, spec):
        return _cmd_sample(args, executor, spec)


def _cmd_sample(args, executor, spec) -> int:
    torch = _threads()
    system = args.system
    curve = _load_curve(args.curve, system)
    s = _settings(system, args)
    s = dataclasses.replace(s, points=int(curve["x"].shape[0]))
    out = _check_out_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths, t_sample = sample_curve(system, curve, s, progress=_progress(args), executor=executor)
    row = metrics(system, paths, wall_s=t_sample, geodesic_wall_s=float(curve.get("wall_s", float("nan"))),
                  curve=curve)
    if s.save_paths and s.save_paths < paths.n_paths:
        paths = paths[:s.save_paths]
    save_run_paths(system, paths, out)
    figure(system, paths, curve, out / "paths.png", n_total=row["n_paths"])
    results = {"system": system, "command": shlex.join(["tps"] + list(args._argv)), "package_version": _version(),
               "date": _now(), "seed": s.seed, "settings": s.as_dict(), "curve_file": str(args.curve),
               "metrics": row, "timings": {"sampling_s": t_sample}, "parallel": _parallel_info(spec, paths),
               "files": {"paths": str(_paths_file(system, out).relative_to(out)), "figure": "paths.png"},
               "hardware": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
               "versions": _versions()}
    _write_results(out / "results.json", results)
    if not args.quiet:
        print(_summary_line(system, row, {"sampling_s": t_sample}))
        print(f"wrote {out / 'results.json'}, {out / 'paths.png'}, {out / results['files']['paths']}")
    return 0
