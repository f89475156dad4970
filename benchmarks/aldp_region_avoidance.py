"""All-atom alanine dipeptide: a region-avoiding geodesic beside the unconstrained one, and the Hutchinson probe study.

``python -m benchmarks aldp-avoid --out DIR [--avoid-phipsi PHI PSI] [--paths N] [--quick]``

Protocol (issue 11, items 4 and 5), pretrained all-atom EGNN (``tps/pretrained``) unless ``--model``:

1. Endpoints C5 -> C7ax minimised and aligned (:func:`tps.workflows.cartesian.prepare_endpoints`).
2. The model's training frames are regenerated from the recipe it carries (same MD, same seed;
   checked against the scale fitted at training time), and the ``k = 8`` frames nearest the avoided
   (phi, psi) point (default alpha-R, (-1.05, -0.70) rad = (-60, -40) degrees) are the structures to
   avoid (:func:`tps.workflows.avoidance.frames_near_phipsi`).
3. Unconstrained geodesic with the ``tps run alanine-dipeptide`` settings (read from
   ``tps.systems.protocols_of("alanine-dipeptide")``), then the region-avoiding
   geodesic (:func:`tps.workflows.avoidance.solve_avoiding`): thresholds ``rho2_j`` halfway up the
   unconstrained curve's KL dip towards each structure, weight = 10x its curve energy, LowVariance
   at its lowest logSNR (``AvoidanceRule`` defaults; nothing tuned per run).
4. The same OpenMM annealed-Langevin sampler along both curves (same seed, N, K), then per row:
   OpenMM max energies, target hit fraction, closest approach to the avoided structures
   (heavy-atom RMSD) and point (periodic (phi, psi) distance), and the channel in which each path
   crosses into the target's phi half (:func:`tps.workflows.avoidance.crossing_channels`).
5. Probe study (item 4): honest curve energy of the fixed unconstrained curve with 1, 2, 4, 8, 16
   fixed Rademacher probes per point over ``--probe-seeds`` seeds against the exact divergence
   (66 backward passes per point), also with the per-coordinate clamp the all-atom solver uses.

Files in ``--out``: ``results.json``, ``table.md``, ``ramachandran.png``.
"""

from __future__ import annotations

import argparse
import collections
import math
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import hardware, save_figure
from tps.io import save_results, write_text

N_PROBES = (1, 2, 4, 8, 16)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--model", type=Path, help="all-atom checkpoint (default: the pretrained one)")
    p.add_argument("--avoid-phipsi", type=float, nargs=2, default=(-1.05, -0.70), metavar=("PHI", "PSI"),
                   help="avoided (phi, psi), rad (default alpha-R: -1.05 -0.70)")
    p.add_argument("--paths", type=int, default=20, help="paths per row (default 20)")
    p.add_argument("--probe-seeds", type=int, default=16, help="probe seeds per probe count (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="4 paths of 64 x 60 MD steps, 4 probe seeds (smoke test)")


def probe_study(model, x, lam, *, seeds: int) -> dict:
    """Curve energy of the fixed curve ``(x, lam)`` with Hutchinson probes vs the exact divergence."""
    from tps.spacetime.geometry import rademacher, segment_terms

    net = model.network
    param = next(net.parameters())
    x, lam = x.to(param)[None], lam.to(param)[None]
    scale = 0.5 * (x.shape[1] - 1)

    def energies(divergence, probes=None):
        with torch.enable_grad():
            terms, _ = segment_terms(net, x, lam, divergence=divergence, probes=probes)
        terms = terms.detach().double()
        return scale * float(terms.sum()), scale * float(terms.clamp_min(0).sum())

    t0 = time.perf_counter()
    exact, exact_clamped = energies("exact")
    t_exact = time.perf_counter() - t0
    rows = []
    for n in N_PROBES:
        honest, clamped = [], []
        t0 = time.perf_counter()
        for seed in range(seeds):
            gen = torch.Generator().manual_seed(1000 * n + seed)
            probes = rademacher((n,) + tuple(x.shape), dtype=torch.float64, generator=gen).to(param)
            h, c = energies("hutchinson", probes)
            honest.append(h)
            clamped.append(c)
        honest, clamped = np.array(honest), np.array(clamped)
        rows.append({"n_probes": n, "honest_mean": float(honest.mean()), "honest_std": float(honest.std(ddof=1)),
                     "honest_bias": float(honest.mean() - exact),
                     "honest_bias_se": float(honest.std(ddof=1) / math.sqrt(seeds)),
                     "clamped_mean": float(clamped.mean()), "clamped_std": float(clamped.std(ddof=1)),
                     "clamped_bias": float(clamped.mean() - exact),
                     "wall_s_per_evaluation": (time.perf_counter() - t0) / seeds})
    return {"exact": exact, "exact_clamped": exact_clamped, "exact_wall_s": t_exact, "seeds": seeds, "rows": rows}


def _row(name, paths, curve, wall, structures, point, system, top, endpoints, target_pp):
    from tps.metrics.molecular import summarize_molecular
    from tps.potentials.openmm import phi_psi
    from tps.workflows.avoidance import closest_approach, crossing_channels

    row = summarize_molecular(paths, method=name, system=system, target_positions=endpoints.target, topology=top,
                              wall_s=wall["geodesic"] + wall["sampling"], geodesic_wall_s=wall["geodesic"])
    ca = closest_approach(paths.frames.double().numpy(), structures, top, phipsi=point)
    pp = phi_psi(paths.frames.double(), top).numpy()
    ch = crossing_channels(pp, target_pp)
    row.update(curve_energy=float(curve.energy), logsnr_min=float(curve.logsnr.min()),
               avoid_rmsd_min_nm=ca["rmsd_min_nm"], avoid_rmsd_mean_nm=ca["rmsd_mean_nm"],
               avoid_phipsi_min_rad=ca["phipsi_min_rad"], avoid_phipsi_mean_rad=ca["phipsi_mean_rad"],
               crossing_channels=dict(sorted(collections.Counter(c["channel"] for c in ch).items())),
               crossing_psi_deg=[c["psi_deg"] for c in ch])
    return row, pp


def figure(pp_by_row, point, structures_pp, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tps.systems import alanine_dipeptide as aldp

    phi, psi, fes = aldp.load_free_energy_surface()
    fig, axes = plt.subplots(1, len(pp_by_row), figsize=(5.2 * len(pp_by_row), 4.6), sharey=True)
    for ax, (name, pp) in zip(np.atleast_1d(axes), pp_by_row.items()):
        ax.contourf(np.degrees(phi), np.degrees(psi), fes, levels=20, cmap="Greys_r", alpha=0.6)
        for path in pp[:20]:
            ax.plot(np.degrees(path[:, 0]), np.degrees(path[:, 1]), ".", ms=1.0, alpha=0.5)
        ax.plot(*np.degrees(structures_pp).T, "x", color="red", ms=6, label="avoided structures")
        ax.add_patch(plt.Circle(np.degrees(point), np.degrees(0.75), fill=False, color="red", ls="--"))
        ax.set_title(name)
        ax.set_xlabel("phi (deg)")
        ax.set_xlim(-180, 180)
        ax.set_ylim(-180, 180)
    np.atleast_1d(axes)[0].set_ylabel("psi (deg)")
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=7)
    save_figure(fig, out / "ramachandran.png")
    plt.close(fig)


def run(args) -> dict:
    from tps import pretrained
    from tps.diffusion import DiffusionModel
    from tps.potentials.openmm import phi_psi
    from tps.systems import alanine_dipeptide as aldp
    from tps.systems import protocols_of
    from tps.workflows.avoidance import (
        AvoidanceRule, check_endpoints_outside, frames_near_phipsi, relative_kl_profiles,
        solve_avoiding,
    )
    from tps.workflows.cartesian import (
        check_model_matches, curve_restraints, prepare_endpoints, sample_paths, solve_geodesic,
    )

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    model = (pretrained.load("alanine-dipeptide") if args.model is None
             else DiffusionModel.load(args.model).freeze())
    top = aldp.topology()
    omm = aldp.create_openmm_system(top)
    check_model_matches(model, top)
    minima = aldp.minimized_structures()
    endpoints = prepare_endpoints(omm, minima["C5"], minima["C7ax"], temperature=aldp.TEMPERATURE)
    point = tuple(float(v) for v in args.avoid_phipsi)
    check_endpoints_outside(point, endpoints, top)
    t0 = time.perf_counter()
    frames = aldp.recipe_training_frames(model)
    t_frames = time.perf_counter() - t0
    protocols = protocols_of("alanine-dipeptide")  # the 'tps run alanine-dipeptide' settings
    cp, geo, sampler = protocols.constraints, protocols.geodesic, protocols.sampler
    idx = frames_near_phipsi(frames, top, point, k=cp.avoid_frames)
    structures = frames[idx]
    structures_pp = phi_psi(torch.as_tensor(structures), top).numpy()
    opts = dict(n_points=geo.n_points, n_nodes=geo.n_nodes, max_iter=geo.max_iter, init_dips=tuple(geo.init_dips),
                coarse_points=geo.coarse_points, coarse_iter=geo.coarse_iter, seed=args.seed)
    n_paths, spp, fpp = (4, 60, 4) if args.quick else (args.paths, sampler.steps_per_point, sampler.frames_per_point)
    rule = AvoidanceRule(depth_fraction=cp.avoid_depth_fraction, penalty_ratio=cp.avoid_penalty_ratio)
    t0 = time.perf_counter()
    free = solve_geodesic(model, endpoints, **opts)
    t_free = time.perf_counter() - t0
    t0 = time.perf_counter()
    avoiding, _, info = solve_avoiding(model, endpoints, structures, free=free, rule=rule, **opts)
    t_avoid = time.perf_counter() - t0
    kl_free = relative_kl_profiles(model, info.x_star, free.x, free.logsnr)[0].min(1)
    kl_avoid = relative_kl_profiles(model, info.x_star, avoiding.x, avoiding.logsnr)[0].min(1)
    target_pp = phi_psi(torch.as_tensor(endpoints.target), top).numpy()
    rows, pp_by_row = [], {}
    for name, curve, t_curve in (("spacetime-geodesic", free, t_free),
                                 ("spacetime-geodesic-region-avoiding", avoiding, t_avoid)):
        restraints = curve_restraints(curve.x, curve.logsnr, model.scaling, temperature=aldp.TEMPERATURE,
                                      origin=endpoints.origin)
        t0 = time.perf_counter()
        paths = sample_paths(omm, restraints, endpoints, n_paths=n_paths, steps_per_point=spp,
                             temperature=aldp.TEMPERATURE, frames_per_point=fpp, seed=args.seed)
        wall = {"geodesic": t_curve, "sampling": time.perf_counter() - t0}
        row, pp = _row(name, paths, curve, wall, structures, point, omm, top, endpoints, target_pp)
        rows.append(row)
        pp_by_row[name] = pp
        print(f"{name}: max energy {row['max_energy_mean']:.1f} +- {row['max_energy_std']:.1f} kJ/mol, target hit "
              f"{row['target_hit_fraction']:.2f}, closest RMSD {row['avoid_rmsd_min_nm']:.3f} nm, closest (phi, psi) "
              f"{row['avoid_phipsi_min_rad']:.2f} rad, channels {row['crossing_channels']}", flush=True)
    rows[0]["kl_min_per_structure"] = kl_free.tolist()
    rows[1]["kl_min_per_structure"] = kl_avoid.tolist()
    figure(pp_by_row, point, structures_pp, out)
    t0 = time.perf_counter()
    probes = probe_study(model, free.x, free.logsnr, seeds=4 if args.quick else args.probe_seeds)
    t_probes = time.perf_counter() - t0
    results = {
        "suite": "aldp-avoid", "system": "alanine-dipeptide (all-atom, C5 -> C7ax, 300 K, amber99sbildn vacuum)",
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "hardware": hardware(), "quick": bool(args.quick),
        "model": "pretrained:alanine-dipeptide" if args.model is None else str(args.model),
        "avoid_phipsi_rad": list(point), "avoided_training_frames": [int(i) for i in idx],
        "avoided_structures_phipsi_deg": np.degrees(structures_pp).round(1).tolist(),
        "avoidance": info.as_dict(), "geodesic_options": dict(opts),
        "sampler": {"n_paths": n_paths, "steps_per_point": spp, "frames_per_point": fpp},
        "methods": rows, "probe_study": probes,
        "wall_s": {"training_frames": t_frames, "probe_study": t_probes, "total": time.perf_counter() - t_start},
    }
    save_results(results, out / "results.json", nonfinite="tokens")
    write_text(out / "table.md", table(results))
    print(table(results))
    return results


def table(results: dict) -> str:
    lines = ["| method | max energy (kJ/mol) | target hit | closest RMSD min / mean (nm) | closest (phi, psi) min / "
             "mean (rad) | channels | min KL_rel over the 8 structures | curve energy | logSNR min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["methods"]:
        lines.append(f"| {r['method']} | {r['max_energy_mean']:.1f} ± {r['max_energy_std']:.1f} | "
                     f"{r['target_hit_fraction']:.2f} | {r['avoid_rmsd_min_nm']:.3f} / {r['avoid_rmsd_mean_nm']:.3f} | "
                     f"{r['avoid_phipsi_min_rad']:.2f} / {r['avoid_phipsi_mean_rad']:.2f} | "
                     f"{', '.join(f'{k}: {v}' for k, v in r['crossing_channels'].items())} | "
                     f"{min(r['kl_min_per_structure']):.0f} | {r['curve_energy']:.0f} | {r['logsnr_min']:.2f} |")
    p = results["probe_study"]
    lines += ["", f"Probe study (fixed unconstrained curve, exact-divergence energy {p['exact']:.1f}, "
              f"{p['seeds']} probe seeds per row):", "",
              "| probes | honest energy mean ± std | bias ± s.e. | per-coordinate clamped mean ± std | clamped bias |",
              "|---|---|---|---|---|"]
    for r in p["rows"]:
        lines.append(f"| {r['n_probes']} | {r['honest_mean']:.1f} ± {r['honest_std']:.1f} | {r['honest_bias']:+.1f} ± "
                     f"{r['honest_bias_se']:.1f} | {r['clamped_mean']:.1f} ± {r['clamped_std']:.1f} | "
                     f"{r['clamped_bias']:+.1f} |")
    return "\n".join(lines) + "\n"
