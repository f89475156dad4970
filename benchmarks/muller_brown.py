"""Muller-Brown TPS benchmark: spacetime geodesics versus linear interpolation (and later the MD baselines).

Protocol (issue 2; benchmarks.md section 4): kT = 12.5, endpoints at minima A and B, states are
disks of radius 0.1, 1000 paths. Pipeline: Boltzmann training data by overdamped Langevin ->
MLP denoiser -> spacetime geodesics (L-BFGS) -> annealed Langevin -> metrics.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.common import hardware, markdown_table, save_figure, save_paths_npz, timer, write_results
from tps.diffusion import AffineScaling, DiffusionModel, MLPConfig, MLPDenoiser, TrainingConfig, train_denoiser
from tps.metrics import summarize
from tps.metrics.lower_bound import grid_lower_bound
from tps.sampling import annealed_langevin, langevin_samples
from tps.spacetime import LowVariance, geodesic
from tps.systems import load
from tps.systems.muller_brown import BOX


@dataclass(frozen=True)
class Protocol:
    n_chains: int = 1000
    data_steps: int = 10_000
    data_dt: float = 2e-4
    burn_in: int = 2000
    thin: int = 20
    hidden: int = 128
    n_blocks: int = 3
    train_steps: int = 4000
    batch_size: int = 512
    logsnr: float = 6.0            # endpoint anchor, model coordinates
    low_variance_threshold: float = 5.0
    low_variance_weight: float = 1e5   # must dominate curve energies of ~1e3 at logSNR 5-6
    calibration_logsnr: float = 8.0    # restraints on the exact minimum-energy path (sampler check)
    n_points: int = 128
    steps_per_point: int = 15      # 128 * 15 + 1 = 1921 evaluations per path
    step_size: float = 4e-4
    init_dips: tuple = (6.0, 2.0, -2.0)   # multi-start logSNR dips of the geodesic solver
    coarse_points: int = 32


QUICK = Protocol(n_chains=500, data_steps=6000, burn_in=1000, hidden=96, train_steps=1500)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--quick", action="store_true", help="smaller training budget (README main job)")
    p.add_argument("--paths", type=int, default=1000, help="paths per method (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kT", type=float, default=12.5, help="temperature (Muller-Brown energy units; default 12.5)")


def training_data(system, proto: Protocol, seed: int):
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([BOX[0][0], BOX[1][0]], dtype=torch.float64)
    hi = torch.tensor([BOX[0][1], BOX[1][1]], dtype=torch.float64)
    starts = lo + (hi - lo) * torch.rand(proto.n_chains, 2, generator=g, dtype=torch.float64)
    return langevin_samples(system.potential, starts, kT=system.kT, dt=proto.data_dt, n_steps=proto.data_steps,
                            burn_in=proto.burn_in, thin=proto.thin, seed=seed)


def train_model(data, proto: Protocol, seed: int, out: Path) -> tuple:
    scaling = AffineScaling.fit(data.samples)
    torch.manual_seed(seed)
    net = MLPDenoiser(MLPConfig(dim=2, hidden=proto.hidden, n_blocks=proto.n_blocks))
    model = DiffusionModel(net, scaling, metadata={"system": "muller-brown", "kT": data.kT,
                                                   "n_training_energy_evals": data.n_energy_evals})
    cfg = TrainingConfig(n_steps=proto.train_steps, batch_size=proto.batch_size, seed=seed)
    result = train_denoiser(net, scaling.to_model(data.samples).float(), config=cfg, progress=True,
                            checkpoint_fn=lambda step: model.save(out / "model.pt"))
    return model.freeze(), result


def minimum_energy_curve(system, model, proto: Protocol):
    """Restraint curve on the grid minimax path (the exact minimum-energy route), at constant logSNR.

    Not a method: a calibration of the annealed Langevin sampler (benchmarks.md section 4 measured
    -39.6 +- 0.3 for centres on the exact MEP at logSNR 8 with K = 128).
    """
    import numpy as np

    lb = grid_lower_bound(system.potential, system.endpoints["A"], system.endpoints["B"], box=BOX, spacing=0.01)
    path = torch.as_tensor(lb.path, dtype=torch.float64)
    seg = (path[1:] - path[:-1]).norm(dim=1)
    s = torch.cat([torch.zeros(1, dtype=torch.float64), seg.cumsum(0)])
    s = (s / s[-1]).numpy()
    t = np.linspace(0, 1, proto.n_points)
    centres = torch.stack([torch.from_numpy(np.interp(t, s, path[:, i].numpy())) for i in range(2)], 1)
    lam = torch.full((proto.n_points,), proto.calibration_logsnr, dtype=torch.float64)
    alpha = torch.sigmoid(lam).sqrt()
    return model.to_model(centres) * alpha[:, None], lam


def figure(system, curves, paths_by_method, out: Path, n_show: int = 30):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = torch.linspace(BOX[0][0], BOX[0][1], 300, dtype=torch.float64)
    ys = torch.linspace(BOX[1][0], BOX[1][1], 300, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    U = system.potential.energy(torch.stack([X, Y], -1), count=False)
    methods = list(paths_by_method)
    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4.6), squeeze=False)
    for ax, m in zip(axes[0], methods):
        ax.contourf(X, Y, U.clamp(max=50), levels=30, cmap="viridis")
        ax.contour(X, Y, U.clamp(max=50), levels=15, colors="k", linewidths=0.3)
        frames = paths_by_method[m].frames[:n_show]
        for f in frames:
            ax.plot(f[:, 0], f[:, 1], color="white", lw=0.5, alpha=0.6)
        if m in curves:
            c = curves[m]
            sc = ax.scatter(c[:, 0], c[:, 1], c=c[:, 2], cmap="magma", s=8, zorder=3)
            fig.colorbar(sc, ax=ax, label="logSNR of curve point")
        for name in ("S1", "S2"):
            s = system.potential.saddle(name)
            ax.plot(s.x, s.y, "r*", ms=10)
        ax.set_title(m)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.suptitle(f"Muller-Brown, kT = {system.kT}: {n_show} paths per method; dots: restraint centres x/alpha")
    save_figure(fig, out / "paths.png")
    plt.close(fig)


def run(args) -> dict:
    torch.set_num_threads(1)  # small tensors: extra threads only add contention
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    proto = QUICK if args.quick else Protocol()
    system = load("muller-brown", kT=args.kT)
    results = {"suite": "muller-brown", "system": "muller-brown", "kT": system.kT,
               "lower_bound": system.reference["lower_bound"].value, "hardware": hardware(),
               "seed": args.seed, "protocol": proto.__dict__ | {"quick": bool(args.quick)}, "methods": [], "notes": {}}
    with timer() as t_data:
        data = training_data(system, proto, args.seed)
    with timer() as t_train:
        model, training = train_model(data, proto, args.seed, out)
    results["notes"]["training"] = (f"{data.n_energy_evals} Langevin evaluations ({t_data():.1f} s), "
                                    f"{training.n_steps_done} training steps ({t_train():.1f} s); held-out loss per "
                                    f"logSNR band {training.holdout_final}")
    net = model.network.float()
    z_a = model.to_model(system.endpoints["A"]).float()
    z_b = model.to_model(system.endpoints["B"]).float()
    specs = {
        "spacetime-geodesic": dict(constraints=()),
        "spacetime-geodesic-low-variance": dict(constraints=(LowVariance(proto.low_variance_threshold,
                                                                         weight=proto.low_variance_weight),)),
        "linear-interpolation": None,
        "mep-calibration": "mep",
    }
    curves, paths_by_method = {}, {}
    gen = torch.Generator().manual_seed(args.seed + 1)
    for method, spec in specs.items():
        with timer() as t_geo:
            if spec is None:
                s = torch.linspace(0, 1, proto.n_points)[:, None]
                cx = (1 - s) * z_a + s * z_b
                clam = torch.full((proto.n_points,), proto.logsnr)
            elif spec == "mep":
                cx, clam = minimum_energy_curve(system, model, proto)
            else:
                r = geodesic(net, z_a, z_b, logsnr=proto.logsnr, n_points=proto.n_points, init_dips=proto.init_dips,
                             coarse_points=proto.coarse_points, coarse_iter=150, max_iter=150, **spec)
                cx, clam = r.x, r.logsnr
        with timer() as t_sample:
            paths = annealed_langevin(system.potential, cx.double(), clam.double(), kT=system.kT, n_paths=args.paths,
                                      steps_per_point=proto.steps_per_point, step_size=proto.step_size,
                                      scaling=model.scaling, x_start=system.endpoints["A"], generator=gen,
                                      progress=True)
        row = summarize(paths, method=method, target=system.states["B"],
                        n_training_energy_evals=data.n_energy_evals,
                        wall_s=t_geo() + t_sample(), geodesic_wall_s=t_geo() if isinstance(spec, dict) else 0.0)
        row["sampling_wall_s"] = t_sample()
        row["max_energy_all_steps_mean"] = float(paths.info["max_energy_all_steps"].mean())
        row["curve_logsnr_min"] = float(clam.min())
        row["curve_logsnr_mean"] = float(clam.mean())
        results["methods"].append(row)
        paths_by_method[method] = paths
        with torch.no_grad():
            alpha = torch.sigmoid(clam.double()).sqrt()
            centres = model.to_physical(cx.double() / alpha[:, None])
        curves[method] = torch.cat([centres, clam.double()[:, None]], 1)
        write_results(out, results)
        save_paths_npz(out, paths_by_method)
    figure(system, curves, paths_by_method, out)
    print(markdown_table(results["methods"]))
    print(f"lower bound U(S1) = {results['lower_bound']}; hardware: {results['hardware']}")
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'paths.png'}, {out / 'paths.npz'}")
    return results
