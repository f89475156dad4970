"""Every system benchmark in one run: ``python -m benchmarks all [--quick] [--surface PATH] [--reference DIR] --out DIR``.

Runs each registered system suite that exists into ``DIR/<system>/`` and writes ``DIR/summary.md``
(rows: system x method; columns: the metrics of benchmarks.md section 1, ``path_density_jsd``,
wall time and evaluations) and ``DIR/summary.json`` from each ``results.json``.

Systems, in run order:

- ``muller-brown`` (:mod:`benchmarks.muller_brown`);
- ``aldp-2d``: alanine dipeptide in (phi, psi) on the package's own free-energy surface
  (:mod:`benchmarks.aldp_2d`; skipped with a line when the surface has not been built);
- ``aldp-2d-reference``: the same on the reference grid of Holdijk et al., only with ``--surface``;
- ``aldp-cartesian``: all-atom alanine dipeptide (:mod:`benchmarks.aldp_cartesian`).

A system module that does not exist (yet) is skipped with a clear line. Modules are imported
lazily, one at a time.

Resumption: after a system finishes, the suite adds ``"complete": true`` to its ``results.json``
and the suite options that shape results (``"suite_settings"``: quick, seed, paths, surface), and
writes the marker ``DIR/<system>/.done`` (both atomic writes). A rerun with the same ``--out`` and
options skips every system whose marker exists and whose ``results.json`` says complete, so an
interrupted suite resumes with the first unfinished system; a system finished with other options
is rerun. ``--force`` reruns everything.

Quick mode (``--quick``) must fit in 10 minutes on 2 CPU cores. ``aldp-cartesian`` runs in quick
mode only if its module declares ``QUICK_WALL_S`` (its quick-mode wall time on such a machine)
and that fits in what is left of the 10 minutes; otherwise it is skipped with a line in
``summary.md`` saying so.

Reference ensembles: with ``--reference DIR`` every system whose ``DIR/reference_<system>.npz``
exists (``python -m benchmarks reference-ensemble --system <system> --out DIR``) measures
``path_density_jsd`` against that long shooting run; otherwise against its own in-run shooting
ensemble. ``summary.md`` says which, per system. CI smoke check of the output:
``python -m benchmarks check DIR`` (:mod:`benchmarks.check_summary`).

Parallel cells: with ``--workers N`` (a local Dask cluster) or ``--scheduler tcp://HOST:PORT``
the systems run as :mod:`tps.parallel` tasks, one per system, each in one worker process (the
output folders must be on a file system the workers share); each system's numbers are those of a
sequential run (its own seeds; wall times measured on its worker).

Convergence (:mod:`benchmarks.convergence`): after the systems, ``DIR/convergence/<system>/``. In
quick mode for ``muller-brown`` only (when selected), with ``--quick`` and no reference file (the
runner builds an in-process stand-in, labelled as not converged; about a minute of CPU on 2
cores); without ``--quick`` for every selected system among muller-brown, aldp-2d, aldp-cartesian
whose ``--reference DIR/reference_<system>.npz`` exists (made with a seed other than ``--seed``;
otherwise the step fails with the runner's error). ``--no-convergence`` skips the step;
``summary.json["convergence"]`` and ``summary.md`` give each system's status.

Seeds: every system gets ``--seed`` (default 0); each system's ``results.json`` records the seeds
it derived from it, and ``summary.md`` records the suite seed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from benchmarks.common import fmt, hardware
from tps.io import save_results, write_text

#: Wall-clock budget of the whole quick suite on 2 CPU cores (issue 5).
QUICK_BUDGET_S = 600.0

#: Columns of summary.md: benchmarks.md section 1 plus path_density_jsd, wall time and evaluations.
SUMMARY_KEYS = ("system", "method", "n_paths", "max_energy_mean", "max_energy_std", "minmax", "lower_bound",
                "barrier_mean", "max_step", "target_hit_fraction", "rmsd_to_target", "path_density_jsd",
                "n_energy_evals", "n_training_energy_evals", "wall_s")


@dataclass(frozen=True)
class SystemSuite:
    """One system of the suite.

    Attributes
    ----------
    name : str
        Output folder ``DIR/<name>/`` and the ``system`` column of the summary.
    module : str
        Benchmark module with ``add_arguments(parser)`` and ``run(args)``.
    needs_surface : bool
        Pass ``--surface`` (run only when the suite got one).
    quick_needs_estimate : bool
        In quick mode, run only if the module's ``QUICK_WALL_S`` fits in the remaining budget.
    """

    name: str
    module: str
    needs_surface: bool = False
    quick_needs_estimate: bool = False


SYSTEMS = (
    SystemSuite("muller-brown", "benchmarks.muller_brown"),
    SystemSuite("aldp-2d", "benchmarks.aldp_2d"),
    SystemSuite("aldp-2d-reference", "benchmarks.aldp_2d", needs_surface=True),
    SystemSuite("aldp-cartesian", "benchmarks.aldp_cartesian", quick_needs_estimate=True),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory (one folder per system)")
    p.add_argument("--quick", action="store_true", help="each system's quick mode; the whole suite < 10 min")
    p.add_argument("--surface", type=Path, default=None,
                   help="reference (phi, psi) grid of Holdijk et al. for aldp-2d-reference (not shipped)")
    p.add_argument("--seed", type=int, default=0, help="seed given to every system (default 0)")
    p.add_argument("--paths", type=int, default=None, help="paths per method (default: each system's own)")
    p.add_argument("--systems", type=_systems_argument, default=None,
                   help=f"comma-separated subset (default all): {', '.join(s.name for s in SYSTEMS)}")
    p.add_argument("--force", action="store_true", help="rerun systems already marked finished")
    p.add_argument("--no-convergence", action="store_true",
                   help="skip the convergence benchmark step (benchmarks/convergence.py) after the systems")
    p.add_argument("--reference", type=Path, default=None,
                   help="folder of reference ensembles (python -m benchmarks reference-ensemble --out DIR): each "
                        "system whose DIR/reference_<system>.npz exists measures path_density_jsd against it")


def _systems_argument(text: str) -> tuple:
    try:
        return tuple(s.name for s in selected_systems(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def selected_systems(spec) -> tuple:
    """The systems to run, in suite order; unknown names raise a ValueError listing the valid ones."""
    if spec is None:
        return SYSTEMS
    names = list(spec) if isinstance(spec, (tuple, list)) else [n.strip() for n in str(spec).split(",") if n.strip()]
    valid = [s.name for s in SYSTEMS]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise ValueError(f"systems: unknown system(s) {unknown or spec!r}; valid systems: {', '.join(valid)}")
    return tuple(s for s in SYSTEMS if s.name in names)


def suite_settings(args) -> dict:
    """The suite options that change a system's results (a finished run with others is rerun)."""
    reference = getattr(args, "reference", None)
    return {"quick": bool(args.quick), "seed": int(args.seed), "paths": args.paths,
            "surface": None if args.surface is None else str(args.surface),
            "reference": None if reference is None else str(reference)}


def reference_file(suite: SystemSuite, args) -> Optional[Path]:
    """``DIR/reference_<system>.npz`` of ``--reference DIR`` for this system, if it exists (the
    reference-surface setting has none: reference ensembles are made on the package's own systems)."""
    folder = getattr(args, "reference", None)
    if folder is None or suite.needs_surface:
        return None
    path = Path(folder) / f"reference_{suite.name}.npz"
    return path if path.exists() else None


def is_finished(folder: Path, settings: Optional[dict] = None) -> bool:
    """Whether a system folder holds a finished run: the ``.done`` marker and ``"complete": true``
    in ``results.json`` (made with the same ``settings``, when given)."""
    try:
        results = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return False
    if not ((folder / ".done").exists() and results.get("complete") is True):
        return False
    return settings is None or results.get("suite_settings", settings) == settings


def mark_finished(folder: Path, wall_s: float, results: Optional[dict] = None, settings: Optional[dict] = None) -> dict:
    """Add ``"complete": true`` to ``results.json`` and write the ``.done`` marker (both atomic)."""
    path = folder / "results.json"
    if path.exists():
        results = json.loads(path.read_text())
    if results is None:
        raise ValueError(f"folder: {folder} has no results.json to mark complete")
    results["complete"] = True
    results["suite_wall_s"] = float(wall_s)
    if settings is not None:
        results["suite_settings"] = settings
    save_results(results, path, nonfinite="tokens")
    write_text(folder / ".done", f"complete {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                                 f"wall_s {wall_s:.1f}\n")
    return results


def system_argv(suite: SystemSuite, parser: argparse.ArgumentParser, args, folder: Path) -> list:
    """Command-line arguments of one system, using only the options its parser has."""
    known = set(parser._option_string_actions)
    argv = ["--out", str(folder)]
    if args.quick and "--quick" in known:
        argv.append("--quick")
    if "--seed" in known:
        argv += ["--seed", str(args.seed)]
    if args.paths is not None and "--paths" in known:
        argv += ["--paths", str(args.paths)]
    if suite.needs_surface:
        argv += ["--surface", str(args.surface)]
    ref = reference_file(suite, args)
    if ref is not None and "--reference" in known:
        argv += ["--reference", str(ref)]
    return argv


def _summary_rows(name: str, results: dict) -> list:
    rows = []
    for r in results.get("methods", []):
        row = {k: r.get(k, float("nan")) for k in SUMMARY_KEYS}
        row["system"] = name
        row["lower_bound"] = results.get("lower_bound", float("nan"))
        rows.append({k: (float("nan") if v is None else v) for k, v in row.items()})
    return rows


#: Systems of the convergence step (benchmarks/convergence.py); quick mode runs only the first.
CONVERGENCE_SYSTEMS = ("muller-brown", "aldp-2d", "aldp-cartesian")


def convergence_argv(name: str, args, folder: Path) -> Optional[list]:
    """Arguments of the convergence run of ``name``, or None when it has nothing to run against."""
    argv = ["--system", name, "--out", str(folder), "--seed", str(args.seed)]
    if args.quick:
        return argv + ["--quick"] if name == CONVERGENCE_SYSTEMS[0] else None
    folder_ref = getattr(args, "reference", None)
    ref = None if folder_ref is None else Path(folder_ref) / f"reference_{name}.npz"
    return argv + ["--reference", str(ref)] if ref is not None and ref.exists() else None


def run_convergence(out: Path, args, suites) -> dict:
    """The convergence step: ``{system: status}`` (finished, already finished, skipped: why, failed: why)."""
    statuses = {}
    if getattr(args, "no_convergence", False):
        return statuses
    names = [s.name for s in suites if s.name in CONVERGENCE_SYSTEMS]
    module = importlib.import_module("benchmarks.convergence")
    for name in names:
        folder = out / "convergence" / name
        argv = convergence_argv(name, args, folder)
        if argv is None:
            statuses[name] = ("skipped: quick mode runs muller-brown only" if args.quick else
                              f"skipped: no --reference DIR/reference_{name}.npz")
            continue
        if is_finished(folder, suite_settings(args)) and not args.force:
            statuses[name] = "already finished"
            continue
        parser = argparse.ArgumentParser(prog="python -m benchmarks convergence", description=module.__doc__)
        module.add_arguments(parser)
        print(f"[all] convergence {name}: running into {folder}")
        t0 = time.perf_counter()
        try:
            module.run(parser.parse_args(argv))
            mark_finished(folder, time.perf_counter() - t0, None, suite_settings(args))
            statuses[name] = "finished"
        except (Exception, SystemExit) as exc:  # the systems' results stay; the step reports its failure
            statuses[name] = f"failed: {type(exc).__name__}: {exc}"
            print(f"[all] convergence {name}: {statuses[name]}", file=sys.stderr)
    return statuses


def write_summary(out: Path, args, statuses: dict, wall_s: float, convergence: Optional[dict] = None) -> dict:
    """``summary.md`` and ``summary.json`` from each finished system's ``results.json``."""
    lines = ["# Benchmark suite summary", "",
             f"`python -m benchmarks all{' --quick' if args.quick else ''}`; seed {args.seed}; "
             f"suite wall time {wall_s:.1f} s (this invocation); hardware: {hardware()}", "",
             "Metrics as in benchmarks.md section 1; `path_density_jsd`: Jensen-Shannon divergence (bits) of "
             "the transition-path frame density against each system's reference ensemble (see its results.json "
             "notes); `wall_s` per method, `n_energy_evals` including every rejected trial and initial path.", ""]
    rows, systems = [], {}
    for name, status in statuses.items():
        folder = out / name
        entry = {"status": status}
        if status in ("finished", "already finished"):
            results = json.loads((folder / "results.json").read_text())
            rows += _summary_rows(name, results)
            entry.update({"system": results.get("system"), "kT": results.get("kT"),
                          "energy_unit": results.get("energy_unit", "dimensionless"),
                          "lower_bound": results.get("lower_bound"), "seed": results.get("seed"),
                          "wall_s": results.get("suite_wall_s"), "hardware": results.get("hardware")})
            ref = results.get("reference_ensemble")
            jsd_ref = (f"stored reference ensemble {ref['path']} ({ref['n_frames']} frames, noise floor "
                       f"{fmt(float(ref['noise_floor_jsd']))})" if ref else
                       "this run's own two-way-shooting-variable ensemble (its row: split-half noise floor)")
            entry["jsd_reference"] = jsd_ref
            lines.append(f"- **{name}** ({status}, {fmt(float(results.get('suite_wall_s', float('nan'))), 1)} s): "
                         f"{results.get('system')}, kT = {results.get('kT')}, energy unit "
                         f"{results.get('energy_unit', 'dimensionless')}, seed {results.get('seed')}; "
                         f"path_density_jsd against {jsd_ref}")
        else:
            lines.append(f"- **{name}**: {status}")
        systems[name] = entry
    lines.append("")
    if rows:
        lines.append("| " + " | ".join(SUMMARY_KEYS) + " |")
        lines.append("|" + "---|" * len(SUMMARY_KEYS))
        for r in rows:
            lines.append("| " + " | ".join(fmt(r[k]) for k in SUMMARY_KEYS) + " |")
        lines.append("")
    if convergence:
        lines.append("Convergence benchmark (`python -m benchmarks convergence`, DIR/convergence/<system>/table.md):")
        for name, status in convergence.items():
            lines.append(f"- **convergence {name}**: {status}")
            table = out / "convergence" / name / "table.md"
            if status in ("finished", "already finished") and table.exists():
                lines += ["", table.read_text()]
        lines.append("")
    write_text(out / "summary.md", "\n".join(lines))
    summary = {"seed": args.seed, "quick": bool(args.quick), "wall_s": wall_s, "systems": systems, "rows": rows,
               "convergence": {k: {"status": v} for k, v in (convergence or {}).items()}}
    save_results(summary, out / "summary.json", nonfinite="tokens")
    return summary


def run_system(suite: SystemSuite, module, args, folder: Path) -> Optional[str]:
    """Run one system; returns None when it finished, else the reason it did nothing."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks {suite.name}", description=module.__doc__)
    module.add_arguments(parser)
    sys_args = parser.parse_args(system_argv(suite, parser, args, folder))
    t0 = time.perf_counter()
    results = module.run(sys_args)
    if results is None or not (folder / "results.json").exists():
        return "skipped: the system had nothing to run (see the line above)"
    mark_finished(folder, time.perf_counter() - t0, results, suite_settings(args))
    return None


def _cell_task(shared, task):
    """One system of the suite on a worker (tps.parallel task); returns its status line, never raises."""
    import torch

    torch.set_num_threads(1)
    name, folder = shared["cells"][task.index]
    suite = next(s for s in SYSTEMS if s.name == name)
    try:
        reason = run_system(suite, importlib.import_module(suite.module), shared["args"], Path(folder))
    except Exception as exc:  # one broken system must not lose the others
        return f"failed: {type(exc).__name__}: {exc}"
    return "finished" if reason is None else reason


def run_cells(pending, args, executor) -> dict:
    """Run the systems of ``pending`` ``[(suite, folder)]`` as tasks on ``executor``; ``{name: status}``."""
    from tps.parallel import Task, run_tasks

    plain = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "executor"})
    shared = {"cells": [(suite.name, str(folder)) for suite, folder in pending], "args": plain}
    tasks = [Task(i, i, i + 1, int(args.seed), int(args.seed)) for i in range(len(pending))]
    print(f"[all] running {', '.join(s.name for s, _ in pending)} as {len(tasks)} tasks on "
          f"{type(executor).__name__}")
    return dict(zip((s.name for s, _ in pending), run_tasks(_cell_task, tasks, shared=shared, executor=executor,
                                                             progress=True, desc="benchmark systems")))


def run(args) -> dict:
    import torch

    torch.set_num_threads(1)  # every system runs small tensors; 2 threads are far slower on 2 shared cores
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suites = selected_systems(getattr(args, "systems", None))
    t0 = time.perf_counter()
    statuses, failed = {}, []
    executor = getattr(args, "executor", None)  # --workers / --scheduler: systems run as parallel tasks
    pending = []
    for suite in suites:
        folder = out / suite.name
        if is_finished(folder, suite_settings(args)) and not args.force:
            print(f"[all] {suite.name}: already finished ({folder / '.done'}); skipping (use --force to rerun)")
            statuses[suite.name] = "already finished"
            continue
        if is_finished(folder):
            print(f"[all] {suite.name}: finished earlier with other options "
                  f"({json.loads((folder / 'results.json').read_text()).get('suite_settings')}); rerunning")
        if suite.needs_surface and args.surface is None:
            statuses[suite.name] = "skipped: no --surface given (the reference grid is not shipped)"
            print(f"[all] {suite.name}: {statuses[suite.name]}")
            continue
        try:
            module = importlib.import_module(suite.module)
        except ModuleNotFoundError as exc:
            if exc.name != suite.module:
                statuses[suite.name] = f"failed: {type(exc).__name__}: {exc}"
                failed.append(suite.name)
                print(f"[all] {suite.name}: {statuses[suite.name]}", file=sys.stderr)
                continue
            statuses[suite.name] = f"skipped: module {suite.module} does not exist yet"
            print(f"[all] {suite.name}: {statuses[suite.name]}")
            continue
        except Exception as exc:  # a system that cannot even be imported must not lose the others
            statuses[suite.name] = f"failed: {type(exc).__name__}: {exc}"
            failed.append(suite.name)
            print(f"[all] {suite.name}: {statuses[suite.name]}", file=sys.stderr)
            continue
        if args.quick and suite.quick_needs_estimate:
            estimate = getattr(module, "QUICK_WALL_S", None)
            left = QUICK_BUDGET_S - (time.perf_counter() - t0)
            if estimate is None or float(estimate) > left:
                why = ("declares no quick-mode wall time (QUICK_WALL_S)" if estimate is None
                       else f"needs about {float(estimate):.0f} s in quick mode, {left:.0f} s of the "
                            f"{QUICK_BUDGET_S:.0f} s budget left")
                statuses[suite.name] = f"skipped in quick mode: {suite.module} {why}; run it without --quick"
                print(f"[all] {suite.name}: {statuses[suite.name]}")
                continue
        if executor is not None:
            pending.append((suite, folder))
            continue
        print(f"[all] {suite.name}: running into {folder}")
        try:
            reason = run_system(suite, module, args, folder)
        except KeyboardInterrupt:
            write_summary(out, args, statuses | {suite.name: "interrupted"}, time.perf_counter() - t0)
            raise
        except Exception as exc:  # one broken system must not lose the others
            statuses[suite.name] = f"failed: {type(exc).__name__}: {exc}"
            failed.append(suite.name)
            print(f"[all] {suite.name}: {statuses[suite.name]}", file=sys.stderr)
            continue
        statuses[suite.name] = "finished" if reason is None else reason
        write_summary(out, args, statuses, time.perf_counter() - t0)
    if pending:
        for name, status in run_cells(pending, args, executor).items():
            statuses[name] = status
            if status.startswith("failed"):
                failed.append(name)
                print(f"[all] {name}: {status}", file=sys.stderr)
        statuses = {s.name: statuses[s.name] for s in suites if s.name in statuses}  # suite order
    convergence = run_convergence(out, args, suites)
    failed += [f"convergence {n}" for n, st in convergence.items() if st.startswith("failed")]
    summary = write_summary(out, args, statuses, time.perf_counter() - t0, convergence)
    print((out / "summary.md").read_text())
    print(f"wrote {out / 'summary.md'}, {out / 'summary.json'}")
    if failed:
        raise SystemExit(f"[all] failed: {', '.join(failed)} (the others are complete; rerun to resume)")
    return summary
