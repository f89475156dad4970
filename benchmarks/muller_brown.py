"""Muller-Brown TPS benchmark: spacetime geodesics versus density geodesics, linear interpolation and MD baselines.

Protocol (issue 2; benchmarks.md section 4): kT = 12.5, endpoints at minima A and B, states are
disks of radius 0.1, 1000 paths. Pipeline: Boltzmann training data by overdamped Langevin ->
MLP denoiser -> spacetime geodesics (L-BFGS) -> annealed Langevin -> metrics. Every row is
:func:`tps.pipeline.run_method` on the registered ``muller-brown`` system (the row of ``tps run``)
with this protocol as a :class:`~tps.systems.protocols.Protocols` override
(``benchmarks/common_overdamped.py``); the annealed rows share one noise generator (seed + 1),
in table order, and both shooting rows one initial path.

Issue 5 rows (method.md section 6; benchmarks.md section 5):

- ``density-geodesic``: the density geodesic of Yu et al. with the LEARNED score at the anchor
  logSNR (``proto.logsnr``), in noisy model coordinates; ``density-geodesic-exact-score``: the
  same with the exact Boltzmann score ``-grad U / kT`` in physical coordinates (its solver's
  force evaluations count in ``n_energy_evals``). Both feed the same annealed Langevin sampler
  (same N, K, step size) at constant logSNR ``proto.logsnr``, so only the curve differs.
- ``two-way-shooting-variable`` / ``two-way-shooting-fixed``: two-way shooting TPS (overdamped
  Euler-Maruyama, dt = 1e-4) from one initial path found by unbiased MD at ``kT_high``;
  ``n_energy_evals`` includes the initial path and every rejected trial.
- ``unbiased-md``: independent chains from A (dt = 1e-4) for a fixed budget; the cost per
  observed transition (or the budget as a lower bound).
- ``path_density_jsd`` of every row: Jensen-Shannon divergence (bits) between the (x, y)
  histogram (``jsd_bins`` bins per axis over ``BOX``) of its transition-path frames (each path
  from its last frame in A before first entering B to that entry; paths that never reach B are
  left out) and that of the reference ensemble, the variable-length shooting ensemble of this
  run; the shooting row itself reports the JSD between its two halves of chains (noise floor).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks.common import (assign_path_density_jsd, hardware, markdown_table, save_figure, save_paths_npz, timer,
                               use_reference_ensemble, write_results)
from benchmarks.common_overdamped import (EXTRA_KEYS, evaluation_ratio_note, run_protocols, with_baselines,
                                         with_density, write_tables)
from benchmarks.common_protocols import MULLER_BROWN_QUICK as QUICK
from benchmarks.common_protocols import MullerBrownProtocol as Protocol
from tps.diffusion import AffineScaling, DiffusionModel, MLPConfig, MLPDenoiser, TrainingConfig, train_denoiser
from tps.diffusion.schedule import restraint_schedule
from tps.metrics.lower_bound import grid_lower_bound
from tps.pipeline import run_method
from tps.spacetime.curve import Curve
from tps.systems import load, protocols_of
from tps.systems.muller_brown import BOX


#: Rows of the table, in run order (``--methods`` selects among them).
METHODS = ("spacetime-geodesic", "spacetime-geodesic-low-variance", "linear-interpolation", "mep-calibration",
           "density-geodesic", "density-geodesic-exact-score", "two-way-shooting-variable",
           "two-way-shooting-fixed", "unbiased-md")
REFERENCE_METHOD = "two-way-shooting-variable"   # reference ensemble of path_density_jsd


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--quick", action="store_true", help="smaller training budget (README main job)")
    n_paths = protocols_of("muller-brown").sampler.n_paths
    p.add_argument("--paths", type=int, default=n_paths, help=f"paths per method (default {n_paths})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kT", type=float, default=12.5, help="temperature (Muller-Brown energy units; default 12.5)")
    p.add_argument("--reference", type=Path, default=None,
                   help="reference ensemble npz (python -m benchmarks reference-ensemble --system muller-brown): "
                        "path_density_jsd against it instead of this run's shooting ensemble")
    p.add_argument("--methods", type=_methods_argument, default=None,
                   help=f"comma-separated subset of the rows (default all): {', '.join(METHODS)}")


def _methods_argument(text: str) -> tuple:
    try:
        return selected_methods(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def selected_methods(spec) -> tuple:
    """The rows to run, in table order; unknown names raise a ValueError listing the valid ones."""
    if spec is None:
        return METHODS
    names = list(spec) if isinstance(spec, (tuple, list)) else [m.strip() for m in str(spec).split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise ValueError(f"methods: unknown method(s) {unknown or spec!r}; valid methods: {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in names)


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


def add_path_density_jsd(results, paths_by_method, system, proto: Protocol) -> None:
    """``path_density_jsd`` for every row against the variable-length shooting ensemble (in place)."""
    a, b = system.states["A"], system.states["B"]
    kw = dict(bins=proto.jsd_bins, ranges=BOX)
    assign_path_density_jsd(results["methods"], paths_by_method, a, b, reference_method=REFERENCE_METHOD, **kw)
    results["notes"]["path_density_jsd"] = (
        f"Jensen-Shannon divergence in bits (0: same density, 1: disjoint) between the {proto.jsd_bins} x "
        f"{proto.jsd_bins} (x, y) histograms over BOX = {BOX} of all transition-segment frames (last frame in A "
        f"before first entering B, to that entry) of a row and of the reference ensemble = the "
        f"{REFERENCE_METHOD} ensemble of this run (its saved chain states after burn-in); the "
        f"{REFERENCE_METHOD} row itself reports the JSD between its chains' two halves (noise floor of the "
        f"reference). The reference is only as converged as the shooting budget allows "
        f"(see chains_decorrelated_from_initial)")


def figure(system, curves, paths_by_method, out: Path, n_show: int = 30):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = torch.linspace(BOX[0][0], BOX[0][1], 300, dtype=torch.float64)
    ys = torch.linspace(BOX[1][0], BOX[1][1], 300, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    U = system.potential.energy(torch.stack([X, Y], -1), count=False)
    methods = list(paths_by_method)
    ncols = min(4, len(methods))
    nrows = -(-len(methods) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4.6 * nrows), squeeze=False)
    for ax in axes.flat[len(methods):]:
        ax.set_axis_off()
    for ax, m in zip(axes.flat, methods):
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
    methods = selected_methods(getattr(args, "methods", None))
    system = load("muller-brown", kT=args.kT)
    results = {"suite": "muller-brown", "system": "muller-brown", "kT": system.kT,
               "lower_bound": system.reference["lower_bound"].value, "hardware": hardware(),
               "seed": args.seed, "protocol": proto.__dict__ | {"quick": bool(args.quick)}, "methods": [], "notes": {},
               "seeds": {"training data": args.seed, "training": args.seed, "annealed Langevin": args.seed + 1,
                         "initial path": args.seed + 2, "shooting": args.seed + 3, "unbiased MD": args.seed + 4}}
    if getattr(args, "executor", None) is not None:  # annealed paths and shooting chains as tps.parallel tasks
        results["parallel"] = {"executor": type(args.executor).__name__, "workers": getattr(args, "workers", None),
                               "scheduler": getattr(args, "scheduler", None)}
    training_protocol = protocols_of("muller-brown", quick=bool(args.quick)).training.replace(
        chains=proto.n_chains, data_steps=proto.data_steps, data_dt=proto.data_dt, burn_in=proto.burn_in,
        thin=proto.thin)
    with timer() as t_data:  # overdamped Langevin from uniform starts in BOX (the system's recipe)
        data = system.training_data(training_protocol, seed=args.seed)
    with timer() as t_train:
        model, training = train_model(data, proto, args.seed, out)
    results["notes"]["training"] = (f"{data.n_energy_evals} Langevin evaluations ({t_data():.1f} s), "
                                    f"{training.n_steps_done} training steps ({t_train():.1f} s); held-out loss per "
                                    f"logSNR band {training.holdout_final}")
    model.network.float()
    protocols = run_protocols(protocols_of("muller-brown", quick=bool(args.quick)), proto, args.paths, clamp=False)
    executor = getattr(args, "executor", None)
    # every row is tps.pipeline.run_method; the annealed rows continue one noise stream (seed + 1)
    common = dict(model=model, seed=args.seed, executor=executor, progress=True,
                  n_training_energy_evals=data.n_energy_evals, generator=torch.Generator().manual_seed(args.seed + 1))
    specs = {
        # clamp=False (run_protocols): the plain-sum objective that produced the published Muller-Brown tables
        # (RESULTS.md, issue 5); the solver's newer default (sum of |segment products|) moves them.
        "spacetime-geodesic": dict(method="spacetime-geodesic"),
        "spacetime-geodesic-low-variance": dict(method="spacetime-geodesic", constraint="low-variance"),
        "linear-interpolation": dict(method="linear"),
        "mep-calibration": "mep",
        "density-geodesic": dict(method="density-geodesic", exact=False),
        "density-geodesic-exact-score": dict(method="density-geodesic", exact=True),
    }
    curves, paths_by_method = {}, {}
    for method, spec in specs.items():
        if method not in methods:
            continue
        if spec == "mep":
            with timer() as t_mep:
                cx, clam = minimum_energy_curve(system, model, proto)
            res = run_method(system, "linear", curve=Curve(cx, clam, model.scaling, {"system": system.name}),
                             protocols=protocols, label=method, geodesic_wall_s=t_mep(), **common)
        else:
            spec = dict(spec)
            p = protocols
            if "exact" in spec:
                p = with_density(protocols, proto, exact=spec.pop("exact"))
            res = run_method(system, spec.pop("method"), protocols=p, label=method, **spec, **common)
        row, paths = res.row, res.paths
        row["sampling_wall_s"] = res.timings["sampling_s"]
        row["max_energy_all_steps_mean"] = float(paths.info["max_energy_all_steps"].mean())
        clam = res.curve.logsnr
        # a solved geodesic's logSNR in the solver's (the network's) dtype, where its mean was always taken
        solved = clam.to(next(model.network.parameters()).dtype) if method.startswith("spacetime") else clam
        row["curve_logsnr_min"] = float(clam.min())
        row["curve_logsnr_mean"] = float(solved.mean())
        results["methods"].append(row)
        paths_by_method[method] = paths
        with torch.no_grad():
            centres = restraint_schedule(res.curve.x.double(), clam.double(), model.scaling).centres
        curves[method] = torch.cat([centres, clam.double()[:, None]], 1)
        write_results(out, results)
        save_paths_npz(out, paths_by_method)
    baselines = {"two-way-shooting-variable": False, "two-way-shooting-fixed": True, "unbiased-md": None}
    baselines = {m: fixed for m, fixed in baselines.items() if m in methods}
    if baselines:
        initial = None  # the high-temperature initial path, shared by both shooting rows
        for method, fixed in baselines.items():
            p = with_baselines(protocols, proto, fixed=bool(fixed))
            kind = "unbiased-md" if fixed is None else "two-way-shooting"
            res = run_method(system, kind, protocols=p, seed=args.seed, executor=executor, initial_path=initial)
            initial = res.extra.get("initial_path", initial)
            results["methods"].append(res.row)
            if res.paths is not None:
                paths_by_method[method] = res.paths
            write_tables(out, results)
        results["notes"]["baselines"] = (
            f"overdamped Euler-Maruyama, dt = {proto.md_dt}, kT = {system.kT}, states = disks of radius 0.1; "
            f"shooting from one initial path (unbiased MD at kT_high = {proto.kT_high}; its evaluations are in "
            f"n_energy_evals together with every rejected trial), burn-in = a quarter of the rounds; "
            f"variable length: {proto.shooting_chains} chains x {proto.shooting_rounds} rounds, trials longer "
            f"than {proto.shooting_max_frames} frames rejected; fixed length: {proto.fixed_chains} chains x "
            f"{proto.fixed_rounds} rounds at {proto.fixed_frames} frames (initial path padded with its end "
            f"frames); unbiased MD: {proto.md_chains} chains x "
            f"{proto.md_steps} steps from A (evals_per_transition = budget / transitions; the budget is a lower "
            f"bound when none is seen). n_paths of the shooting rows counts saved (correlated) chain states")
    add_path_density_jsd(results, paths_by_method, system, proto)
    if getattr(args, "reference", None) is not None:
        def same_kT(meta):
            if abs(float(meta.get("kT", float("nan"))) - system.kT) > 1e-9:
                raise ValueError(f"--reference: {args.reference} was made at kT = {meta.get('kT')}, this run uses "
                                 f"kT = {system.kT}")

        use_reference_ensemble(results, paths_by_method, system.states["A"], system.states["B"], args.reference,
                               "muller-brown", check=same_kT, bins=proto.jsd_bins, ranges=BOX)
    results["notes"]["evaluations per transition path"] = evaluation_ratio_note(results)
    write_tables(out, results)
    save_paths_npz(out, paths_by_method)
    figure(system, curves, paths_by_method, out)
    print(markdown_table(results["methods"]))
    print(markdown_table(results["methods"], keys=EXTRA_KEYS))
    print(f"evaluations per transition path: {results['notes']['evaluations per transition path']}")
    print(f"lower bound U(S1) = {results['lower_bound']}; hardware: {results['hardware']}")
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'paths.png'}, {out / 'paths.npz'}")
    return results
