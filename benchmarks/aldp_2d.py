"""Alanine dipeptide in (phi, psi): spacetime geodesics on a periodic 2-D energy surface.

Two settings (issue 3):

- ``--surface PATH`` (the seed paper's Table 1 protocol, benchmarks.md section 2): the 89 x 89
  reference grid of Holdijk et al., energies as in the file, kT = 1, endpoints
  (-2.55, 2.70) -> (0.95, -0.40) anchored at logSNR 4, target state a ball of radius 0.75 rad
  (periodic), 1000 paths. The reference file is read by path and never copied.
- no ``--surface``: the package's own OpenMM free-energy surface
  ``tps/systems/data/alanine_dipeptide/fes_phipsi.dat`` (kJ/mol, kT = k_B * 300 K), endpoints
  the minimised C5 and C7ax structures' (phi, psi).

Pipeline: training data by overdamped Langevin on the periodic spline of the grid
(:class:`~tps.potentials.grid.PeriodicGridPotential`, uniform starts on the torus) ->
:class:`~tps.diffusion.periodic.PeriodicMLPDenoiser` (identity scaling, samples wrapped into
[-pi, pi)) -> spacetime geodesics (L-BFGS; the periodic image of the end point is chosen by
solving the endpoint pairs ``x_a -> x_b + 2 pi k``, ``k in {-1, 0, 1}^2`` with a chord at most
1.5 times the shortest, as one batch)
-> annealed Langevin on the spline potential in unwrapped coordinates -> metrics.

Choice of the periodic image: the geodesics to all candidate images are solved as one batch;
by default the image whose coarse curve has the lowest highest potential energy over its
restraint centres is kept (``--image-criterion max-energy``, 32 evaluations per candidate).
The lowest curve energy (``--image-criterion curve-energy``) is the model-only alternative, but
measured here it is not reliable: on the reference surface the direct image and the one across
phi = +-pi had curve energies 69.4 and 69.7 (highest centre energies 42 and 83); on the
package's own surface it picks an image across phi = +-pi whose paths reach 68 kJ/mol instead
of 37.4.

``--workers N`` / ``--scheduler tcp://HOST:PORT`` (:mod:`tps.parallel`): the annealed-Langevin
sampling of every row and the two shooting rows run as tasks (``results.json`` ``parallel`` says
which stages and how); without them every stage runs in this process exactly as before.

Other options: ``--avoid PHI PSI`` (the point the region-avoiding geodesic keeps away from),
``--image K_PHI K_PSI`` (force the end point's image), ``--quick`` (smaller training budget,
about a minute of CPU).

Every reported energy (``max_energy_*``, ``minmax``, ``barrier_mean``) is the periodic bilinear
interpolation of the RAW grid (:func:`~tps.potentials.grid.bilinear`), never the spline or a
model. ``max_step`` uses periodic differences, so it measures continuity on the torus.

Every row is :func:`tps.pipeline.run_method` on this surface's (phi, psi) system
(:meth:`benchmarks.common_phipsi.Setting.as_system`: the states below, end point = the chosen
image): the annealed rows sample along the curves solved here (image choice, avoided point) with
one shared noise generator (seed + 1); the MD baselines take this runner's numbers from
:func:`benchmarks.common_torus.baseline_changes` (wall-time caps, burn-in by rounds run, fixed
seed + 5; see :mod:`tps.pipeline.baselines`).

Issue-5 rows (as in ``benchmarks/muller_brown.py``; the protocol overrides are in
``benchmarks/common_overdamped.py``):

- ``density-geodesic``: density geodesic (Yu et al.) with the learned score of the run's
  PeriodicMLPDenoiser at the anchor logSNR; ``density-geodesic-exact-score``: the score
  ``-grad U / kT`` of the spline potential, in unwrapped coordinates to the same chosen image of
  the end point (its solver's force evaluations count in ``n_energy_evals``). Both feed the same
  annealed Langevin sampler (same N, K, step size) at constant logSNR = the anchor.
- ``two-way-shooting-variable`` / ``two-way-shooting-fixed``: overdamped Langevin on the spline
  potential (``md_dt / kT``), states A = C5 | C7eq
  (:data:`benchmarks.common_phipsi.STATE_A_CENTRES`) and B = the ball
  around the end point, initial path = one unbiased transition at a higher temperature (a dynamical path:
  an annealed-Langevin path as initial path was accepted 0 of 192 times); the fixed-length row
  pads it to ``fixed_frames`` frames; limited to ``shooting_time_s`` / ``fixed_time_s`` of wall
  time. A long, checkpointed reference run: ``python -m benchmarks reference-ensemble --system
  aldp-2d`` (then ``--reference``). At kT = 1 trials from near the barrier need thousands of
  steps to return to state A, so few (or no) trials are accepted in that budget: the
  shooting ensemble, and every ``path_density_jsd`` measured against it, is only as converged as
  ``n_accepted`` and ``chains_decorrelated_from_initial`` say.
- ``unbiased-md``: ``md_chains x md_steps`` evaluations from the start; with no transition (expected
  at a 36 kT barrier) the budget is reported as a lower bound together with the harmonic-rate
  extrapolation.
- ``path_density_jsd`` for every row against the shooting ensemble on a periodic (phi, psi) grid.

States (every row, both surfaces): A = the union of the balls of radius ``STATE_RADIUS`` around
the C5 and C7eq minima, B = the ball around the end point (see
:data:`benchmarks.common_phipsi.STATE_A_CENTRES` for why);
recorded in ``results.json`` under ``states``.

Note on the training data: at kT = 1 the 36 kT barriers are not crossed by the data chains,
so basin weights follow the basins of attraction of the uniform starts rather than the
Boltzmann weights; within each basin the samples are Boltzmann.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Optional

import torch

from benchmarks.common import (hardware, markdown_table, save_paths_npz, timer, use_reference_ensemble,
                               write_results)
from benchmarks.common_overdamped import (EXTRA_KEYS, evaluation_ratio_note, run_protocols, with_baselines,
                                         with_density, write_tables)
from benchmarks.common_phipsi import (PERIODS, STATE_A_DEFINITION, TWO_PI, Setting, own_setting, reference_setting,
                                     state_description)
from benchmarks.common_protocols import PHIPSI_QUICK as QUICK
from benchmarks.common_protocols import PhiPsiProtocol as Protocol
from benchmarks.common_torus import (INITIAL_CHAINS, INITIAL_MAX_STEPS, add_path_density_jsd, baseline_changes,
                                     centres, choose_image, crossing_point, figure, image_shifts,
                                     min_periodic_distance, nearest_image, relative_kl_profile, solver_kwargs)
from tps.diffusion import (AffineScaling, DiffusionModel, PeriodicMLPConfig, PeriodicMLPDenoiser, TrainingConfig,
                           train_denoiser)
from tps.pipeline import run_method
from tps.pipeline.run import density_curve, linear_curve
from tps.potentials.grid import bilinear, check_radians
from tps.sampling import langevin_samples
from tps.spacetime import LowVariance, RegionAvoidance, geodesic
from tps.spacetime.curve import Curve
from tps.systems import protocols_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--surface", type=Path, default=None,
                   help="reference 'phi psi z' grid (e.g. shared/reference/aldp_phipsi_surface_holdijk.dat): the "
                        "seed paper's protocol with kT = 1; default: the package's own OpenMM free-energy surface")
    p.add_argument("--quick", action="store_true", help="smaller training budget (about a minute of CPU time)")
    n_paths = protocols_of("alanine-dipeptide-phipsi").sampler.n_paths
    p.add_argument("--paths", type=int, default=n_paths, help=f"paths per method (default {n_paths})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--avoid", type=float, nargs=2, metavar=("PHI", "PSI"), default=None,
                   help="(phi, psi) in rad to avoid for spacetime-geodesic-region-avoiding (default: where the "
                        "unconstrained geodesic's paths cross: median position of their highest-energy frames)")
    p.add_argument("--image-criterion", choices=("max-energy", "curve-energy"), default="max-energy",
                   help="how the end point's periodic image is chosen among the batch of geodesics: lowest "
                        "highest potential energy over each coarse curve's restraint centres (default; costs "
                        "n_candidates * coarse_points evaluations, reported as n_selection_energy_evals) or lowest "
                        "geodesic (curve) energy (model only; on both alanine dipeptide surfaces it ties or picks "
                        "an image whose route crosses a ridge 30 energy units higher)")
    p.add_argument("--reference", type=Path, default=None,
                   help="reference ensemble npz of the package's own surface (python -m benchmarks reference-ensemble "
                        "--system aldp-2d): path_density_jsd against it instead of this run's shooting ensemble")
    p.add_argument("--image", type=int, nargs=2, metavar=("K_PHI", "K_PSI"), default=None,
                   help="use the end point's periodic image x_b + 2 pi (K_PHI, K_PSI) instead of choosing one "
                        "(K in -1, 0, 1)")


# ------------------------------------------------------------------ model
def training_data(setting: Setting, proto: Protocol, seed: int):
    """Overdamped Langevin samples of the spline potential from uniform starts on the torus."""
    g = torch.Generator().manual_seed(seed)
    starts = (torch.rand(proto.n_chains, 2, generator=g, dtype=torch.float64) - 0.5) * TWO_PI
    return langevin_samples(setting.potential, starts, kT=setting.kT, dt=proto.data_dt / setting.kT,
                            n_steps=proto.data_steps, burn_in=proto.burn_in, thin=proto.thin, seed=seed)


def train_model(setting: Setting, data, proto: Protocol, seed: int, out: Optional[Path] = None):
    """Train a :class:`PeriodicMLPDenoiser` (identity scaling) on the wrapped samples."""
    scaling = AffineScaling.identity((2,))
    torch.manual_seed(seed)
    net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, period=TWO_PI, hidden=proto.hidden, n_blocks=proto.n_blocks,
                                                n_harmonics=proto.n_harmonics))
    model = DiffusionModel(net, scaling, metadata={"system": "alanine-dipeptide-phipsi", "kT": setting.kT,
                                                   "n_training_energy_evals": data.n_energy_evals})
    cfg = TrainingConfig(n_steps=proto.train_steps, batch_size=proto.batch_size, seed=seed)
    samples = setting.potential.wrap(data.samples).float()
    ckpt = None if out is None else (lambda step: model.save(out / "model.pt"))
    result = train_denoiser(net, samples, config=cfg, progress=True, checkpoint_fn=ckpt)
    return model.freeze(), result


def _curve(result, model) -> Curve:
    """The solved geodesic ``result`` as a :class:`~tps.spacetime.curve.Curve` (in the solver's dtype)."""
    return Curve(result.x.detach(), result.logsnr.detach(), model.scaling,
                 {"system": "alanine-dipeptide-phipsi", "energy": float(result.energy),
                  "n_evaluations": int(result.n_evaluations)})


# ------------------------------------------------------------------ run
def run(args) -> Optional[dict]:
    torch.set_num_threads(1)  # small tensors: extra threads only add contention
    out = Path(args.out)
    proto = QUICK if args.quick else Protocol()
    setting = reference_setting(args.surface) if args.surface is not None else own_setting()
    if setting is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    kT = setting.kT
    results = {"suite": "aldp-2d", "system": setting.name, "kT": kT, "energy_unit": setting.unit,
               "lower_bound": setting.lower_bound, "hardware": hardware(), "seed": args.seed,
               "protocol": proto.__dict__ | {"quick": bool(args.quick)}, "methods": [],
               "notes": dict(setting.notes)}
    results["states"] = state_description(setting)
    executor = getattr(args, "executor", None)  # --workers / --scheduler (None: everything in this process)
    if executor is not None:
        results["parallel"] = {
            "executor": type(executor).__name__, "workers": getattr(args, "workers", None),
            "scheduler": getattr(args, "scheduler", None),
            "as_tasks": ["annealed Langevin of every row (seed of each row: one integer drawn from the run's "
                         "generator, seeded with seed + 1)",
                         "two-way shooting rows (one task of ceil(n_chains / workers) chains per worker, each with "
                         "the whole shooting_time_s / fixed_time_s wall budget; burn-in per task)"],
            "in_process": ["training data and training", "geodesics and periodic-image choice",
                           "high-temperature initial path of shooting", "unbiased-md (tps.baselines.unbiased_md "
                           "has no executor path)"],
            "note": "annealed Langevin: the task streams give the same frames for every worker count, but not "
                    "those of the in-process run (the published figures); shooting: wall-time limited, so its "
                    "rounds depend on the load in either mode"}
    results["notes"]["states"] = (f"{STATE_A_DEFINITION}; the same A and B for every row (target_hit, transition "
                                  "segments of path_density_jsd, shooting, its initial path, unbiased MD); until "
                                  "2026-11-21 A was the C5 ball only, and shooting accepted nothing (C7eq, outside "
                                  "both states, made trials long and frames committed to C5)")
    results["notes"]["energies"] = ("every frame's energy is the periodic bilinear interpolation of the raw grid; "
                                    "lower_bound is the bottleneck value on the raw grid (8-neighbour, periodic)")
    with timer() as t_data:
        data = training_data(setting, proto, args.seed)
    with timer() as t_train:
        model, training = train_model(setting, data, proto, args.seed, out)
    results["notes"]["training"] = (
        f"{data.n_energy_evals} Langevin evaluations ({t_data():.1f} s) from {proto.n_chains} uniform starts on the "
        f"torus (barriers are not crossed: basin weights follow the starts' basins of attraction), "
        f"{training.n_steps_done} training steps ({t_train():.1f} s); held-out loss per logSNR band "
        f"{training.holdout_final}")
    net = model.network.float()
    x_a = setting.start.float()
    x_b0 = setting.end.float()

    # periodic image of the end point: batched solve over the candidate images
    cpu0 = time.process_time()
    with timer() as t_img:
        n_before = setting.potential.n_evals
        index, shift, image_energies, image_result, image_nodes = choose_image(
            net, x_a, x_b0, proto, args.image,
            potential=setting.potential if args.image_criterion == "max-energy" else None)
        n_selection = setting.potential.n_evals - n_before
    cpu_img = time.process_time() - cpu0
    x_b = x_b0 + shift
    k = (shift / TWO_PI).round().int().tolist()
    results["periodic_image"] = {"k": k, "end_unwrapped": x_b.tolist(), "curve_energies_by_k": {
        str((int(round(s[0] / TWO_PI)), int(round(s[1] / TWO_PI)))): e
        for s, e in zip(image_shifts(torch.float64).tolist(), image_energies)}, "wall_s": t_img(), "cpu_s": cpu_img}
    with torch.no_grad():
        img_cmax = bilinear(setting.grid, centres(image_result.x.reshape(-1, 2),
                                                  image_result.logsnr.reshape(-1)).reshape(image_result.x.shape))
    solved = [i for i, e in enumerate(image_energies) if e is not None]
    results["periodic_image"]["curve_max_energy_by_k"] = {
        str(tuple(int(v) for v in (image_shifts(torch.float64)[i] / TWO_PI).round().tolist())): float(m)
        for i, m in zip(solved, img_cmax.max(1).values)}
    results["periodic_image"]["forced"] = args.image is not None
    results["periodic_image"]["criterion"] = "--image" if args.image is not None else args.image_criterion
    results["periodic_image"]["n_selection_energy_evals"] = n_selection
    how = {"curve-energy": "lowest coarse geodesic (curve) energy",
           "max-energy": "lowest highest potential energy over the coarse curve's restraint centres"}
    chosen_by = "forced by --image" if args.image is not None else how[args.image_criterion]
    results["notes"]["periodic image"] = (
        f"end point image x_b + 2 pi k with k = {tuple(k)} ({chosen_by}); candidates: the images k in "
        f"{{-1, 0, 1}}^2 whose chord is <= {proto.image_chord_ratio} x the shortest, solved as one batch in "
        f"{t_img():.1f} s (CPU {cpu_img:.1f} s); energies by k in results.json periodic_image")
    print(f"periodic image k = {tuple(k)}; coarse curve energies "
          f"{['-' if e is None else '%.1f' % e for e in image_energies]}")

    skw = solver_kwargs(proto)
    curves, paths_by_method = {}, {}
    avoid_point = None
    # every row is tps.pipeline.run_method on the (phi, psi) system of this surface (states A = C5 | C7eq and
    # B = the ball around the chosen image x_b); the annealed rows sample along the curves solved here
    # (periodic image, avoided point) and continue one noise stream (seed + 1)
    system = setting.as_system(x_b)
    protocols = run_protocols(protocols_of("alanine-dipeptide-phipsi", quick=bool(args.quick)), proto, args.paths,
                              clamp=proto.clamp)
    gen = torch.Generator().manual_seed(args.seed + 1)

    def record(method, curve, geo_wall, extra, geo_cpu=0.0, kind="spacetime-geodesic"):
        # the chosen image serves every row: its selection cost is part of every row's sampling cost
        curve = Curve(curve.x, curve.logsnr, model.scaling,
                      {**curve.provenance, "extra": {**curve.extra, "n_selection_energy_evals": n_selection}})
        cpu = time.process_time()
        res = run_method(system, kind, model=model, protocols=protocols, curve=curve, label=method, seed=args.seed,
                         executor=executor, progress=True, n_training_energy_evals=data.n_energy_evals,
                         geodesic_wall_s=geo_wall, generator=gen)
        cpu = time.process_time() - cpu
        row, paths, cx, clam = res.row, res.paths, curve.x, curve.logsnr
        row["sampling_wall_s"] = res.timings["sampling_s"]
        row["geodesic_cpu_s"] = geo_cpu
        row.setdefault("n_selection_energy_evals", n_selection)  # (counted in n_energy_evals by the system)
        row["sampling_cpu_s"] = cpu
        row["excess_over_lower_bound_kT"] = (row["max_energy_mean"] - setting.lower_bound) / kT
        row["curve_logsnr_min"] = float(clam.min())
        row["curve_logsnr_mean"] = float(clam.mean())
        c = centres(cx, clam)
        row["curve_max_energy"] = float(bilinear(setting.grid, c).max())
        row["periodic_image_k"] = k
        row.update(extra)
        results["methods"].append(row)
        paths_by_method[method] = paths
        curves[method] = torch.cat([c, clam.double()[:, None]], 1)
        write_results(out, results)
        save_paths_npz(out, paths_by_method)
        print(f"{method}: max energy {row['max_energy_mean']:.2f} +- {row['max_energy_std']:.2f}, "
              f"hit {row['target_hit_fraction']:.3f}, max_step {row['max_step']:.3f}, "
              f"geodesic {geo_wall:.1f} s, sampling {row['sampling_wall_s']:.1f} s")
        return row

    # 1. free geodesic
    cpu0 = time.process_time()
    with timer() as t_geo:  # refine the chosen image's coarse multi-start solution at full resolution
        r = geodesic(net, x_a, x_b, n_points=proto.n_points, init_nodes=image_nodes,
                     logsnr=proto.logsnr, clamp=proto.clamp, max_iter=proto.max_iter)
    cpu_geo = cpu_img + time.process_time() - cpu0
    free_curve = (r.x, r.logsnr)
    record("spacetime-geodesic", _curve(r, model), t_img() + t_geo(),
                      {"curve_energy": float(r.energy), "solver_evaluations": r.n_evaluations}, cpu_geo)

    # 2. low variance
    lv = LowVariance(proto.low_variance_threshold, weight=proto.low_variance_weight)
    cpu0 = time.process_time()
    with timer() as t_geo:
        r = geodesic(net, x_a, x_b, n_points=proto.n_points, init_dips=(proto.logsnr,), constraints=(lv,), **skw)
    cpu_geo = cpu_img + time.process_time() - cpu0
    record("spacetime-geodesic-low-variance", _curve(r, model), t_img() + t_geo(),
           {"curve_energy": float(r.energy), "solver_evaluations": r.n_evaluations,
            "low_variance_threshold": proto.low_variance_threshold, "low_variance_weight": proto.low_variance_weight},
           cpu_geo)

    # 3. region avoiding
    if args.avoid is not None:
        requested = torch.as_tensor(check_radians(args.avoid, "--avoid"), dtype=torch.float64)
        route = paths_by_method["spacetime-geodesic"].frames[:50].reshape(-1, 2)
        avoid_point = nearest_image(requested, route)
        avoid_note = f"--avoid {tuple(args.avoid)} (image nearest the free geodesic's paths: {avoid_point.tolist()})"
    else:
        avoid_point = crossing_point(paths_by_method["spacetime-geodesic"])
        avoid_note = (f"default: the free geodesic paths' typical crossing point {avoid_point.tolist()} (median "
                      f"position of each path's highest-energy frame; grid energy "
                      f"{float(bilinear(setting.grid, avoid_point)):.2f})")
    cpu0 = time.process_time()
    with timer() as t_geo:
        x_star = avoid_point.float()
        kl = relative_kl_profile(net, free_curve[0], free_curve[1], x_star, proto.avoid_logsnr, proto)
        threshold = float(kl.min()) + proto.avoid_kl_margin
        ra = RegionAvoidance(x_star, logsnr_star=proto.avoid_logsnr, threshold=threshold, weight=proto.avoid_weight)
        lv2 = LowVariance(proto.avoid_low_variance_threshold, weight=proto.low_variance_weight)
        r = geodesic(net, x_a, x_b, n_points=proto.n_points, init_dips=(proto.logsnr,), constraints=(lv2, ra), **skw)
    cpu_geo = cpu_img + time.process_time() - cpu0
    results["notes"]["region avoidance"] = (
        f"avoided point {avoid_note}; z* at logSNR {proto.avoid_logsnr}; relative-KL threshold {threshold:.1f} "
        f"(= minimum on the free geodesic + {proto.avoid_kl_margin}); plus LowVariance("
        f"{proto.avoid_low_variance_threshold})")
    record("spacetime-geodesic-region-avoiding", _curve(r, model), t_img() + t_geo(),
           {"curve_energy": float(r.energy), "solver_evaluations": r.n_evaluations,
            "avoided_point": avoid_point.tolist(), "avoid_kl_threshold": threshold}, cpu_geo)

    # 4. straight line to the chosen image at constant logSNR (the system's linear curve: its target is x_b)
    record("linear-interpolation", linear_curve(system, model, protocols), 0.0, {}, kind="linear")

    # 5, 6. density geodesics at the anchor logSNR (learned score; exact score -grad U / kT of the spline
    # potential in unwrapped coordinates, to the same chosen image x_b), same sampler at constant logSNR
    for method, exact in (("density-geodesic", False), ("density-geodesic-exact-score", True)):
        cpu0 = time.process_time()
        with timer() as t_geo:
            dens = density_curve(system, model, with_density(protocols, proto, exact=exact))
        record(method, dens, t_geo(), {}, time.process_time() - cpu0, kind="density-geodesic")
    for row in results["methods"]:  # distances of all frames and of the restraint centres to the avoided point
        m = row["method"]
        row["min_distance_to_avoided_point"] = min_periodic_distance(paths_by_method[m].frames, avoid_point)
        row["curve_min_distance_to_avoided_point"] = min_periodic_distance(curves[m][None, :, :2], avoid_point)
    write_results(out, results)

    # 7, 8, 9. MD baselines on the spline potential (overdamped Langevin, dt = md_dt / kT): run_method with this
    # runner's numbers (benchmarks.common_torus.baseline_changes: wall-time caps, burn-in by rounds run, ...);
    # the system reports raw-grid energies (PhiPsiSystem.row_energies)
    changes = baseline_changes(setting, proto)
    with timer() as t_base:
        initial = None  # the high-temperature initial path, shared by both shooting rows
        for fixed in (False, True):
            p = with_baselines(protocols, proto, fixed=fixed, **changes)
            try:
                res = run_method(system, "two-way-shooting", protocols=p, seed=args.seed, executor=executor,
                                 initial_path=initial)
            except ValueError as exc:  # no high-temperature transition in the budget: say so in the table
                if "no A -> B transition" not in str(exc):
                    raise
                for m in ("two-way-shooting-variable", "two-way-shooting-fixed"):
                    results["methods"].append({"method": m, "n_paths": 0,
                                               "n_energy_evals": INITIAL_CHAINS * INITIAL_MAX_STEPS,
                                               "n_accepted": 0, "n_trials": 0, "wall_s": t_base(),
                                               "note": f"no initial path (budget of the search spent): {exc}"})
                break
            initial = res.extra["initial_path"]
            results["methods"].append(res.row)
            paths_by_method[res.row["method"]] = res.paths
            write_tables(out, results)
        md = run_method(system, "unbiased-md", protocols=with_baselines(protocols, proto, **changes),
                        seed=args.seed)
        results["methods"].append(md.row)
        if md.paths is not None:  # a transition was seen
            paths_by_method["unbiased-md"] = md.paths
    results["notes"]["baselines"] = (
        f"overdamped Langevin on the spline potential, dt = {proto.md_dt} / kT, states: {STATE_A_DEFINITION}; "
        f"variable-length two-way shooting: "
        f"{proto.shooting_chains} chains from one dynamical transition of unbiased MD at the larger of "
        f"{proto.kT_high_factor} kT and a sixth of the grid barrier (its cost is initial_path_energy_evals); "
        f"fixed length: {proto.fixed_frames} frames (initial path padded with its end frames); "
        f"at most {proto.shooting_time_s} s, burn-in a quarter of the rounds run, trials longer than "
        f"{proto.shooting_max_frames} frames rejected; unbiased MD: {proto.md_chains} chains x {proto.md_steps} steps "
        f"from the start (with no transition the budget is a lower bound on evaluations per transition; "
        f"evals_per_transition_extrapolated: harmonic-rate estimate over the grid lower bound); baselines "
        f"{t_base():.1f} s wall")
    add_path_density_jsd(results, paths_by_method, setting, proto)
    if getattr(args, "reference", None) is not None:
        def same_surface(meta):
            if meta.get("surface") != setting.notes.get("surface"):
                raise ValueError(f"--reference: {args.reference} was made on {meta.get('surface')}, this run uses "
                                 f"{setting.notes.get('surface')}")
            if meta.get("states") != results["states"]:
                raise ValueError(f"--reference: {args.reference} was made with other states ({meta.get('states')}); "
                                 f"this run uses {results['states']}")

        use_reference_ensemble(results, paths_by_method, setting.source, setting.target, args.reference, "aldp-2d",
                               check=same_surface, bins=proto.jsd_bins,
                               ranges=((-math.pi, math.pi), (-math.pi, math.pi)), periods=PERIODS)
    note = evaluation_ratio_note(results)
    shoot = next(r for r in results["methods"] if r["method"] == "two-way-shooting-variable")
    if not shoot["n_accepted"] and shoot.get("n_trials"):  # no accepted trial: its evaluations bound the cost per accepted path from below
        shoot["evals_per_accepted_path_lower_bound"] = shoot["n_energy_evals"]
        note += (f"; variable-length shooting: no trial accepted in {shoot['n_trials']} trials, so more than "
                 f"{shoot['n_energy_evals']} evaluations per accepted path (its ensemble is the initial path only, "
                 f"and path_density_jsd compares with that one path)")
    results["notes"]["evaluations per transition path"] = note
    write_tables(out, results)
    save_paths_npz(out, paths_by_method)
    figure(setting, curves, paths_by_method, out, avoid_point=avoid_point)
    print(markdown_table(results["methods"]))
    print(markdown_table(results["methods"], keys=EXTRA_KEYS + ("evals_per_transition_lower_bound",
                                                               "evals_per_transition_extrapolated")))
    print(f"evaluations per transition path: {results['notes']['evaluations per transition path']}")
    print(f"lower bound {setting.lower_bound:.3f} ({setting.unit}); hardware: {results['hardware']}")
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'paths.png'}, {out / 'paths.npz'}")
    return results
