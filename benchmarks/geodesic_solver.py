"""Geodesic solver benchmark: L-BFGS (this package's default) versus the reference protocol
(cubic-spline correction with 10 nodes, Adam lr 0.1, 10 000 steps), same denoiser, same curve
discretisation (N = 128), same machine, same run.

The denoiser is the Muller-Brown MLP trained as in ``python -m benchmarks muller-brown`` (or a
checkpoint given with ``--model``). The reference figure of the authors' public code on a 2-core
CPU is 92.8 s (benchmarks.md section 2); the target is <= 1/10 of it at equal or lower energy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.common import hardware, timer
from tps.diffusion import DiffusionModel
from tps.io import write_json, write_text
from tps.spacetime import curve_energy, geodesic
from tps.systems import load

REFERENCE_WALL_S = 92.8


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", type=Path, help="denoiser checkpoint (default: train one as in muller-brown --quick)")
    p.add_argument("--adam-steps", type=int, default=10_000)
    p.add_argument("--logsnr", type=float, default=4.0, help="endpoint anchor (the paper's 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--single-start", action="store_true", help="also time plain L-BFGS from the straight line")


def run(args):
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    system = load("muller-brown")
    if args.model is None:
        from benchmarks.muller_brown import QUICK, train_model, training_data

        model, _ = train_model(training_data(system, QUICK, args.seed), QUICK, args.seed, out)
    else:
        model = DiffusionModel.load(args.model).freeze()
    net = model.network.float()
    z_a = model.to_model(system.endpoints["A"]).float()
    z_b = model.to_model(system.endpoints["B"]).float()
    rows = []
    dips = (args.logsnr, args.logsnr - 4, args.logsnr - 8)
    for name, kw in [("lbfgs-multistart", dict(method="lbfgs", init_dips=dips, coarse_points=48, coarse_iter=100,
                                               max_iter=100)),
                     *([("lbfgs-straight-start", dict(method="lbfgs", max_iter=300))] if args.single_start else []),
                     (f"adam-{args.adam_steps}", dict(method="adam", n_steps=args.adam_steps, lr=0.1))]:
        cpu0 = time.process_time()
        with timer() as t:
            r = geodesic(net, z_a, z_b, logsnr=args.logsnr, n_points=128, n_nodes=10, progress=True, **kw)
        e64 = float(curve_energy(net.double(), r.x.double(), r.logsnr.double()))
        net.float()
        cpu = time.process_time() - cpu0
        rows.append({"solver": name, "wall_s": t(), "cpu_s": cpu, "n_evaluations": r.n_evaluations,
                     "energy": float(r.energy), "energy_float64": e64, "initial_energy": float(r.initial_energy),
                     "logsnr_min": float(r.logsnr.min())})
        print(rows[-1])
    ratio = rows[-1]["wall_s"] / rows[0]["wall_s"]
    cpu_ratio = rows[-1]["cpu_s"] / rows[0]["cpu_s"]
    result = {"suite": "geodesic-solver", "system": "muller-brown", "hardware": hardware(), "n_points": 128,
              "logsnr": args.logsnr, "solvers": rows, "speedup_vs_adam_same_run": ratio,
              "speedup_vs_adam_same_run_cpu": cpu_ratio,
              "fraction_of_reference_92.8s": rows[0]["wall_s"] / REFERENCE_WALL_S,
              "cpu_fraction_of_reference_92.8s": rows[0]["cpu_s"] / REFERENCE_WALL_S,
              "energy_lbfgs_minus_adam": rows[0]["energy_float64"] - rows[-1]["energy_float64"]}
    write_json(out / "results.json", result)
    table = ["| solver | wall_s | cpu_s | evaluations | energy (float64) | min logSNR |", "|---|---|---|---|---|---|"]
    table += [f"| {r['solver']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['n_evaluations']} | {r['energy_float64']:.3f} | "
              f"{r['logsnr_min']:.2f} |" for r in rows]
    table += ["", f"L-BFGS is {ratio:.1f}x faster than Adam in the same run (CPU time: {cpu_ratio:.1f}x); "
              f"{rows[0]['wall_s']:.2f} s wall / {rows[0]['cpu_s']:.2f} s CPU = {result['fraction_of_reference_92.8s']:.3f} / "
              f"{result['cpu_fraction_of_reference_92.8s']:.3f} of the reference 92.8 s; "
              f"energy difference (L-BFGS - Adam) = {result['energy_lbfgs_minus_adam']:.3f}. {hardware()}"]
    write_text(out / "table.md", "\n".join(table) + "\n")
    print("\n".join(table))
    return result
