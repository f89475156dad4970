"""CI smoke check of a suite run: ``python -m benchmarks check DIR`` (or ``python benchmarks/check_summary.py DIR``).

Verifies that ``python -m benchmarks all [--quick] --out DIR`` produced ``DIR/summary.md``,
``DIR/summary.json`` and, for every system the summary lists as finished, ``DIR/<system>/results.json``
with ``"complete": true``, and that every result row has finite numbers: ``n_energy_evals`` (> 0),
``wall_s``, and, unless the row is an explicit "no transition within budget" bound (``n_paths == 0``
together with a finite ``evals_per_transition_lower_bound`` or ``evals_per_accepted_path_lower_bound``,
or a ``note`` saying why it has no paths), ``max_energy_mean``, ``target_hit_fraction`` and
``path_density_jsd``. Values are not judged, only their presence and finiteness.

The convergence step (``summary.json["convergence"]``, :mod:`benchmarks.convergence`): for every
system it lists as finished, ``DIR/convergence/<system>/results.json`` is complete, has rows, and
every row has a ``method``, finite ``noise_floor`` and ``final_jsd``, ``evals_to_2x_floor`` null
or a positive number, and a non-empty ``curve`` of ``[evaluations, jsd]`` pairs with finite,
non-decreasing evaluations (``jsd`` finite at the last point); ``paths.npz``, ``table.md`` and
``convergence.png`` exist.

Exit status 0 when everything checks, 1 with one line per problem otherwise, 2 on usage errors.
``--require SYSTEM[,SYSTEM]`` also fails when a named system did not finish (default: none
required, since ``all --quick`` skips systems whose data or time budget is missing and says so).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

#: Finite in every row that is not an explicit bound.
ROW_KEYS = ("max_energy_mean", "target_hit_fraction", "path_density_jsd")
BOUND_KEYS = ("evals_per_transition_lower_bound", "evals_per_accepted_path_lower_bound")
FINISHED = ("finished", "already finished")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="the --out folder of `python -m benchmarks all`")
    p.add_argument("--require", default="", help="comma-separated systems that must have finished")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_bound(row: dict) -> bool:
    if row.get("n_paths", 1):
        return False
    return any(_finite(row.get(k)) for k in BOUND_KEYS) or bool(row.get("note"))


def check(folder: Path, require=()) -> list:
    """Problems found in a suite output folder (empty when it passes)."""
    problems = []
    folder = Path(folder)
    for name in ("summary.md", "summary.json"):
        if not (folder / name).is_file():
            problems.append(f"{folder / name}: missing")
    if problems:
        return problems
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except ValueError as exc:
        return [f"{folder / 'summary.json'}: not valid JSON ({exc})"]
    systems = summary.get("systems", {})
    finished = [n for n, s in systems.items() if s.get("status") in FINISHED]
    for name in require:
        if name not in finished:
            problems.append(f"{name}: required but not finished (status: {systems.get(name, {}).get('status')})")
    if not finished:
        statuses = {n: s.get("status") for n, s in systems.items()}
        problems.append(f"{folder}: no system finished (statuses: {statuses})")
    for name, s in systems.items():
        if str(s.get("status", "")).startswith("failed"):
            problems.append(f"{name}: {s['status']}")
    for name in finished:
        path = folder / name / "results.json"
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{path}: unreadable ({exc})")
            continue
        if results.get("complete") is not True:
            problems.append(f"{path}: not marked complete")
        rows = results.get("methods", [])
        if not rows:
            problems.append(f"{path}: no result rows")
        for row in rows:
            method = row.get("method", "?")
            evals = row.get("n_energy_evals")
            if not (_finite(evals) and evals > 0):
                problems.append(f"{name}/{method}: n_energy_evals = {evals!r} (expected a finite number > 0)")
            if not _finite(row.get("wall_s")) and "note" not in row:
                problems.append(f"{name}/{method}: wall_s = {row.get('wall_s')!r} (expected finite)")
            if _is_bound(row):
                continue
            for key in ROW_KEYS:
                if not _finite(row.get(key)):
                    problems.append(f"{name}/{method}: {key} = {row.get(key)!r} (expected finite; a row without "
                                    f"transitions must be an explicit bound: n_paths 0 and one of {BOUND_KEYS})")
        summary_rows = [r for r in summary.get("rows", []) if r.get("system") == name]
        if len(summary_rows) != len(rows):
            problems.append(f"{name}: summary.json has {len(summary_rows)} rows, results.json {len(rows)}")
    return problems


def check_convergence(folder: Path, summary: dict) -> list:
    """Problems of the convergence step's folders (empty when it passes or did not run)."""
    problems = []
    for name, entry in (summary.get("convergence") or {}).items():
        status = str(entry.get("status", ""))
        if status.startswith("failed"):
            problems.append(f"convergence {name}: {status}")
        if status not in FINISHED:
            continue
        sub = Path(folder) / "convergence" / name
        for f in ("paths.npz", "table.md", "convergence.png"):
            if not (sub / f).is_file():
                problems.append(f"{sub / f}: missing")
        try:
            results = json.loads((sub / "results.json").read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{sub / 'results.json'}: unreadable ({exc})")
            continue
        if results.get("complete") is not True:
            problems.append(f"{sub / 'results.json'}: not marked complete")
        rows = results.get("rows", [])
        if not rows:
            problems.append(f"{sub / 'results.json'}: no rows")
        for row in rows:
            label = f"convergence {name}/{row.get('method', '?')} M={row.get('n_chains')}"
            if not isinstance(row.get("method"), str):
                problems.append(f"{label}: no method")
            for key in ("noise_floor", "final_jsd"):
                if not _finite(row.get(key)):
                    problems.append(f"{label}: {key} = {row.get(key)!r} (expected finite)")
            e = row.get("evals_to_2x_floor")
            if e is not None and not (_finite(e) and e > 0):
                problems.append(f"{label}: evals_to_2x_floor = {e!r} (expected null or a positive number)")
            curve = row.get("curve")
            ok = isinstance(curve, list) and curve and all(isinstance(p, list) and len(p) == 2 and _finite(p[0])
                                                           for p in curve)
            if not ok:
                problems.append(f"{label}: curve = {str(curve)[:60]!r} (expected [[evaluations, jsd], ...])")
            elif any(b[0] < a[0] for a, b in zip(curve, curve[1:])) or not _finite(curve[-1][1]):
                problems.append(f"{label}: curve evaluations decrease or its last JSD is not finite")
    return problems


def run(args) -> None:
    require = [n.strip() for n in args.require.split(",") if n.strip()]
    problems = check(args.dir, require)
    if not problems:
        problems = check_convergence(args.dir, json.loads((Path(args.dir) / "summary.json").read_text()))
    if problems:
        print(f"benchmarks check: {len(problems)} problem(s) in {args.dir}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        raise SystemExit(1)
    summary = json.loads((Path(args.dir) / "summary.json").read_text())
    statuses = ", ".join("%s (%s)" % (n, s.get("status")) for n, s in summary.get("systems", {}).items())
    conv = ", ".join("%s (%s)" % (n, s.get("status")) for n, s in (summary.get("convergence") or {}).items())
    print(f"benchmarks check: OK ({len(summary.get('rows', []))} rows; systems: {statuses}"
          + (f"; convergence: {conv})" if conv else ")"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks check", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
