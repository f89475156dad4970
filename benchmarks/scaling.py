"""Scaling of the parallel seam (tps.parallel): ``python -m benchmarks scaling [--quick] --out DIR``.

Workloads (all-atom alanine dipeptide, OpenMM Reference platform, LangevinMiddle 2 fs):

- ``aldp-paths``: OpenMM annealed Langevin along the straight C5 -> C7ax line
  (:func:`tps.sampling.openmm_annealed.openmm_annealed_langevin`, ``task_size`` paths per task);
- ``aldp-shooting``: independent fixed-length two-way shooting chains
  (:func:`tps.baselines.chains.openmm_shooting_chains`, one chain per task).

Each runs on four executors: ``in-process`` (:class:`tps.parallel.InProcessExecutor`, the task
split without workers), ``local-cluster`` with 1 and 2 worker processes, and ``tcp`` (a
``dask scheduler`` plus 2 ``dask worker`` processes started here on 127.0.0.1). Workers are
warmed up (imports) before timing. Every row checks that its frames are bit-identical to the
in-process ones.

Per row (``DIR/results.json``, list ``methods``): ``throughput`` (MD steps/s), ``paths_per_s``,
``parallel_efficiency`` = throughput / (n_workers x throughput of local-cluster with 1 worker)
(in-process and local-cluster 1: against in-process), ``overhead_fraction`` = (n_workers x wall -
summed task compute time) / (n_workers x wall) (scheduling, transfer, idle tail), per-task
overhead in seconds, mean task time, data per task (bytes sent + received).

Cost model (``DIR/results.json["cost_model"]``): the scheduler's per-task cost ``o_s`` (round
trip of no-op tasks through the 2-worker TCP cluster), the worker-side per-task overhead ``o_w``
(from the 2-worker rows), the client's serialisation cost per task ``o_c`` and the mean task time
``t``; predicted task rate at W workers ``min(W / (t + o_w), 1 / o_s, 1 / o_c)`` and efficiency
``rate * t / W`` (fraction of worker time spent computing), the worker count
at which the scheduler or the client saturates (``t / max(o_s, o_c)``), and the task time needed
for 95 % efficiency at 10 / 100 / 1000 workers.

Timings on a shared machine swing; compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import fmt, hardware
from tps.io import save_results, write_text


@dataclass(frozen=True)
class Protocol:
    n_paths: int = 64
    n_points: int = 64
    steps_per_point: int = 250
    path_task_size: int = 4
    n_chains: int = 16
    n_trials: int = 60
    shooting_frames: int = 20
    save_every: int = 25
    n_noop: int = 400


QUICK = Protocol(n_paths=8, n_points=16, steps_per_point=40, path_task_size=2, n_chains=4, n_trials=6, n_noop=100)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory (results.json, summary.md)")
    p.add_argument("--quick", action="store_true", help="small workloads (checks that everything runs; ~2 min)")
    p.add_argument("--seed", type=int, default=0)


# ----------------------------------------------------------------------------- workloads
def _aldp():
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.cartesian import kabsch_align

    top = aldp.topology()
    system = aldp.create_openmm_system(top)
    s = aldp.minimized_structures()
    c5 = s["C5"]
    c7ax = kabsch_align(s["C7ax"], c5) + c5.mean(0)
    states = aldp.load().states
    return system, c5, c7ax, states["C5"] | states["C7eq"], states["C7ax"]


def _path_inputs(proto: Protocol):
    system, c5, c7ax, _, _ = _aldp()
    t = np.linspace(0.0, 1.0, proto.n_points)[:, None, None]
    centres = (1 - t) * c5[None] + t * c7ax[None]
    return system, centres, np.full(proto.n_points, 5000.0), c5


def run_paths(executor, proto: Protocol, seed: int):
    from tps.sampling.openmm_annealed import openmm_annealed_langevin

    system, centres, k, c5 = _path_inputs(proto)
    t0 = time.perf_counter()
    p = openmm_annealed_langevin(system, centres, k, n_paths=proto.n_paths, steps_per_point=proto.steps_per_point,
                                 x_start=c5, platform="Reference", seed=seed, executor=executor,
                                 task_size=proto.path_task_size)
    wall = time.perf_counter() - t0
    n_tasks = p.info["n_tasks"]
    return {"wall_s": wall, "work": p.n_energy_evals, "items": proto.n_paths, "n_tasks": n_tasks,
            "task_compute_s": float(p.info["task_wall_s"]), "frames": p.frames.numpy()}


def shooting_start(proto: Protocol, seed: int):
    """A fixed-length initial path (first frame in A = C5 | C7eq, last in B = C7ax) from a dragged path."""
    from tps.sampling.openmm_annealed import openmm_annealed_langevin

    system, centres, k, c5 = _path_inputs(proto)
    _, _, _, a, b = _aldp()

    p = openmm_annealed_langevin(system, centres, k, n_paths=4, steps_per_point=max(proto.steps_per_point, 40),
                                 x_start=c5, platform="Reference", seed=seed)
    for f in p.frames:
        ina, inb = a(f).numpy(), b(f).numpy()
        if ina[0] and inb[-1]:
            idx = np.round(np.linspace(0, len(f) - 1, proto.shooting_frames)).astype(int)
            return f[idx].numpy(), a, b
    raise RuntimeError("scaling: no dragged path from A to B to start shooting from")  # pragma: no cover


def run_shooting(executor, proto: Protocol, seed: int, start):
    from tps.baselines.chains import openmm_shooting_chains

    system, _, _, _, _ = _aldp()
    path, a, b = start
    t0 = time.perf_counter()
    res = openmm_shooting_chains(system, path, n_chains=proto.n_chains, seed=seed, executor=executor, task_size=1,
                                 state_a=a, state_b=b, n_trials=proto.n_trials, ensemble="fixed",
                                 save_every=proto.save_every, platform="Reference")
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "work": sum(r.n_energy_evals for r in res), "items": proto.n_chains,
            "n_tasks": proto.n_chains, "task_compute_s": float(sum(r.info["wall_s"] for r in res)),
            "frames": np.concatenate([r.paths.frames.numpy().reshape(-1) for r in res]),
            "accepted": sum(r.n_accepted for r in res)}


# ----------------------------------------------------------------------------- clusters
def _warm():
    """Run on every worker before timing: imports, OpenMM plugin loading and a first context."""
    import openmm

    import tps.baselines.chains  # noqa: F401
    from tps.sampling.openmm_annealed import openmm_annealed_langevin

    system = openmm.System()
    system.addParticle(12.0)
    openmm_annealed_langevin(system, np.zeros((2, 1, 3)), np.full(2, 100.0), n_paths=1, steps_per_point=2,
                             x_start=np.zeros((1, 3)), platform="Reference")
    _aldp()
    return os.getpid()


def _noop(shared, task):
    return task.index


def warm_up(client) -> None:
    """Imports and a first context on every worker, and a first task graph through the scheduler."""
    from tps.parallel import make_tasks, run_tasks

    client.run(_warm)
    run_tasks(_noop, make_tasks(4, task_size=1, seed=0), executor=client)


def noop_overhead(client, n: int) -> float:
    """Seconds per task of ``n`` no-op tasks through ``client`` (scheduler + transfer round trip)."""
    from tps.parallel import make_tasks, run_tasks

    tasks = make_tasks(n, task_size=1, seed=0)
    run_tasks(_noop, tasks[:10], executor=client)
    t0 = time.perf_counter()
    run_tasks(_noop, tasks, executor=client)
    return (time.perf_counter() - t0) / n


def _client_cost(proto: Protocol) -> tuple:
    """Bytes and client-side (de)serialisation seconds per task of each workload."""
    system, centres, k, c5 = _path_inputs(proto)
    import openmm

    xml = openmm.XmlSerializer.serialize(system)
    shared = {"xml": xml, "centres": centres, "stiffness": k, "starts": np.broadcast_to(c5, (proto.n_paths,) + c5.shape).copy()}
    result = np.zeros((proto.path_task_size, 1 + proto.n_points, 22, 3))
    t0 = time.perf_counter()
    for _ in range(20):
        b1 = pickle.dumps(shared)
        b2 = pickle.dumps(result)
        pickle.loads(b2)
    return len(b1) + len(b2), (time.perf_counter() - t0) / 20


# ----------------------------------------------------------------------------- run
def _row(method, executor, n_workers, r, base_tp, reference_frames):
    tp = r["work"] / r["wall_s"]
    busy = r["task_compute_s"]
    overhead = max(0.0, n_workers * r["wall_s"] - busy)
    return {
        "method": method, "executor": executor, "n_workers": n_workers, "throughput": tp,
        "throughput_unit": "MD steps/s", "paths_per_s" if method == "aldp-paths" else "chains_per_s":
        r["items"] / r["wall_s"], "wall_s": r["wall_s"], "md_steps": int(r["work"]), "n_tasks": r["n_tasks"],
        "mean_task_s": busy / r["n_tasks"], "parallel_efficiency": tp / (n_workers * base_tp),
        "overhead_fraction": overhead / (n_workers * r["wall_s"]), "overhead_per_task_s": overhead / r["n_tasks"],
        "identical_to_in_process": bool(np.array_equal(r["frames"], reference_frames)),
        **({"accepted": r["accepted"]} if "accepted" in r else {}),
    }


def run(args) -> dict:
    from distributed import Client

    from tps.parallel import InProcessExecutor, local_client
    from tps.parallel.cluster import tcp_cluster

    proto = QUICK if args.quick else Protocol()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    start = shooting_start(proto, args.seed + 1)
    workloads = {"aldp-paths": lambda ex: run_paths(ex, proto, args.seed),
                 "aldp-shooting": lambda ex: run_shooting(ex, proto, args.seed, start)}
    raw = {m: {} for m in workloads}
    for m, fn in workloads.items():
        print(f"[scaling] {m}: in-process", flush=True)
        raw[m][("in-process", 1)] = fn(InProcessExecutor())
    print("[scaling] aldp-paths: executor=None (one context, the historical stream)", flush=True)
    raw["aldp-paths"][("none", 1)] = run_paths(None, proto, args.seed)
    for n in (1, 2):
        with local_client(n) as client:
            warm_up(client)
            for m, fn in workloads.items():
                print(f"[scaling] {m}: local-cluster {n}", flush=True)
                raw[m][("local-cluster", n)] = fn(client)
            if n == 2:
                o_local = noop_overhead(client, proto.n_noop)
    with tcp_cluster(2, log_dir=out / "logs") as (address, _), Client(address) as client:
        warm_up(client)
        for m, fn in workloads.items():
            print(f"[scaling] {m}: tcp 2", flush=True)
            raw[m][("tcp", 2)] = fn(client)
        o_s = noop_overhead(client, proto.n_noop)
    rows = []
    for m, by in raw.items():
        ref = by[("in-process", 1)]
        base_in = ref["work"] / ref["wall_s"]
        lc1 = by[("local-cluster", 1)]
        base_lc1 = lc1["work"] / lc1["wall_s"]
        for (ex, n), r in by.items():
            row = _row(m, ex, n, r, base_in if n == 1 else base_lc1, ref["frames"])
            if ex == "none":  # another random stream by design: not comparable frame by frame
                row["identical_to_in_process"] = None
            # > 1 when workers compete for cores (another load on the machine): lost efficiency that no
            # scheduler causes; overhead_fraction is what the seam and Dask cost
            row["task_time_vs_1_worker"] = (None if ex == "none"  # one task of all paths
                                            else row["mean_task_s"] / (lc1["task_compute_s"] / lc1["n_tasks"]))
            rows.append(row)
    bytes_per_task, o_c = _client_cost(proto)
    cost = {}
    for m in raw:
        two = [r for r in rows if r["method"] == m and r["n_workers"] == 2]
        t = float(np.mean([r["mean_task_s"] for r in two]))
        o_w = float(np.mean([r["overhead_per_task_s"] for r in two]))
        per_item = t / (proto.path_task_size if m == "aldp-paths" else 1)
        limit = max(o_s, o_c)
        pred = {}
        for w in (10, 100, 1000):
            rate = min(w / (t + o_w), 1 / o_s, 1 / o_c)
            pred[str(w)] = {"tasks_per_s": rate, "items_per_s": rate * (t / per_item),
                            "efficiency": rate * t / w,  # fraction of worker time spent computing
                            "bound": "workers" if rate == w / (t + o_w) else ("scheduler" if o_s >= o_c else "client"),
                            "min_task_s_for_95pct": max(o_w / 0.05, w * limit / 0.95)}
        cost[m] = {"task_s": t, "worker_overhead_per_task_s": o_w, "scheduler_s_per_task": o_s,
                   "local_cluster_scheduler_s_per_task": o_local,
                   "client_s_per_task": o_c, "bytes_per_task": bytes_per_task,
                   "saturation_workers": t / limit, "predicted": pred}
    results = {"benchmark": "scaling", "quick": bool(args.quick), "protocol": proto.__dict__, "seed": args.seed,
               "hardware": hardware(), "cpu_count": os.cpu_count(), "methods": rows, "cost_model": cost,
               "wall_s": time.perf_counter() - t_all,
               "notes": "parallel_efficiency: throughput / (n_workers x throughput of local-cluster 1) for "
                        "2-worker rows, against in-process for 1-worker rows; bit-identity checked on frames; executor 'none' is "
                        "executor=None (one context, the historical stream: other frames by design)"}
    save_results(results, out / "results.json", nonfinite="tokens")
    lines = [f"scaling benchmark ({'quick' if args.quick else 'full'}), {hardware()}", "",
             "| method | executor | n_workers | throughput (steps/s) | parallel_efficiency | overhead_fraction | "
             "task s | task time / 1 worker | identical |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['executor']} | {r['n_workers']} | {r['throughput']:.0f} | "
                     f"{r['parallel_efficiency']:.3f} | {r['overhead_fraction']:.3f} | {r['mean_task_s']:.3f} | "
                     f"{fmt(r['task_time_vs_1_worker'], 2)} | {r['identical_to_in_process']} |")
    for m, c in cost.items():
        lines.append(f"\n{m}: task {c['task_s']:.3f} s, scheduler {1e3 * c['scheduler_s_per_task']:.2f} ms/task, "
                     f"client {1e3 * c['client_s_per_task']:.2f} ms/task, {c['bytes_per_task'] / 1e3:.0f} kB/task; "
                     f"saturates at ~{c['saturation_workers']:.0f} workers; " + "; ".join(
                         f"{w} workers: efficiency {p['efficiency']:.2f} ({p['bound']}-bound), task >= "
                         f"{p['min_task_s_for_95pct']:.2f} s for 95 %" for w, p in c["predicted"].items()))
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return results
