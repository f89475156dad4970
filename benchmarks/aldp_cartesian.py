"""All-atom alanine dipeptide TPS benchmark (C5 -> C7ax, 300 K, vacuum, amber99sbildn).

Protocol (issue 4; benchmarks.md sections 1 and 3): the generic pipeline of
``tps.workflows.cartesian`` with nothing alanine-specific in it: OpenMM Langevin MD from the
C5 and C7ax minima -> E(3)-equivariant EGNN denoiser on centred, scaled frames -> spacetime
geodesic (Hutchinson divergence, L-BFGS) between the minimised, Kabsch-aligned endpoints ->
annealed Langevin inside OpenMM along the restraint centres -> metrics on the force field.
Rows: ``spacetime-geodesic``, ``spacetime-geodesic-low-variance`` (both from
:func:`tps.pipeline.run_method` on the registered ``alanine-dipeptide`` system with its protocols:
the curve, paths and metrics row of ``tps run alanine-dipeptide``), ``linear-interpolation``
(straight line between the aligned endpoints at the anchor logSNR), ``density-geodesic`` and
``density-geodesic-exact-score`` (below), and the baselines ``two-way-shooting-variable``,
``two-way-shooting-fixed`` and ``unbiased-md`` (below). The 0 K reference is the
climbing-image NEB saddle energy (``lower_bound``, both senses of the phi rotation).

Files in ``--out``: ``results.json``, ``table.md``, ``model.pt`` (reusable with ``--model``),
``md/training.dcd`` (+ ``.pdb``), ``paths/topology.pdb`` and ``paths/<method>/path_000.dcd``...,
``ramachandran.png`` (paths over the package's (phi, psi) free-energy surface) and
``energies.png`` (OpenMM energy along a few paths).

Measured 2026-11-21 on the shared 2-core CPU machine (1 torch thread, OpenMM Reference), default
protocol, 100 paths, seed 0, with the model of this protocol (500 k MD steps in 21 s; EGNN 32x3,
2400 steps at batch 64 in 1327 s of training loop under load average ~7, plus the held-out
evaluation; held-out loss [-2, 2): 0.488 -> 0.174, [2, 6): 0.0295 -> 0.0088):

================================  ==========  ============  ========  ========  =====================
method                            max energy  minmax        max_step  THP       geodesic + sampling
================================  ==========  ============  ========  ========  =====================
spacetime-geodesic                18.2 +- 8.2   3.9         0.067 nm  1.00      28 s + 56 s
spacetime-geodesic-low-variance   20.8 +- 9.4   3.5         0.068 nm  1.00      16 s + 55 s
linear-interpolation              35.7 +- 11.5  12.6        0.067 nm  1.00      0 s + 47 s
================================  ==========  ============  ========  ========  =====================

(kJ/mol; 16 000 MD steps per path.) References from the same run: NEB saddle -54.6 kJ/mol
(C5 minimum -88.4); unbiased 300 K MD in C5 has mean energy -30.3 kJ/mol, max 24.5 kJ/mol
over 800 frames and max consecutive-frame RMSD 0.057 nm at the same 25-step frame spacing, so
max energies and max_step are dominated by thermal fluctuation, not by the crossing.

Density-geodesic rows (issue 5; method.md section 6, Yu et al.): :func:`tps.spacetime.density_geodesic`
at constant logSNR = the anchor (``density_beta``, ``density_iter`` iterations per knot level,
``n_points`` knots) with

- ``density-geodesic``: the learned score of this run's EGNN model at the anchor logSNR
  (``learned_score``, 66-D model coordinates, between ``alpha z_C5`` and ``alpha z_C7ax``);
- ``density-geodesic-exact-score``: the exact Boltzmann score ``F / kT`` of the force field
  (:class:`~tps.potentials.openmm.OpenMMPotential`) between the prepared endpoints in nm, then
  mapped to model coordinates; its solver's force evaluations count in ``n_energy_evals``;

and then the SAME sampler as the spacetime geodesic (``curve_restraints`` at constant logSNR +
``sample_paths``: same N, K, seed), so the rows differ only in the curve.

Baseline rows (issue 5; :func:`tps.pipeline.run_method` -> ``MoleculeSystem.run_baseline``
(:mod:`tps.systems.molecule_baselines`) -> :mod:`tps.baselines.openmm_engine`, OpenMM LangevinMiddleIntegrator
300 K, 2 fs, 1/ps, one reused context, a frame every ``steps_per_point // frames_per_point`` = 25
steps, states A = C5 | C7eq and B = C7ax (:func:`benchmarks.common_cartesian.transition_states`);
evaluations = MD steps,
rejected trials included):

- ``two-way-shooting-variable``: flexible-length two-way shooting (Maxwell-Boltzmann velocity
  re-draw, backward shot with reversed velocities), one chain. Initial path: one unbiased-MD
  transition at ``initial_temperature`` (800 K; a dynamical path), relaxed at 300 K by
  ``relax_trials`` flexible trials without the length factor (discarded; their MD steps count in
  ``initial_path_energy_evals``). Started from a geodesic (annealed, non-dynamical) path instead,
  2.2 % of trials were accepted; the relaxation matters because the 800 K path is atypically short
  and with the length factor nearly all 300 K trials exceed the cap ``2 + (L_old - 2) / u``.
  Chain states are kept from the first decorrelated path on (``burn_in_trials``). Reports
  acceptance, evaluations per accepted / decorrelated path and the trial outcomes.
- ``two-way-shooting-fixed``: fixed-length two-way shooting from the same relaxed path, padded to
  ``fixed_frames`` frames (first frame in A, last in B, others free).
- ``unbiased-md``: plain MD from the C5 minimum, restarted after each transition; evaluations
  per transition, or (as expected at 300 K in vacuum) the steps run as a lower bound.
- ``path_density_jsd`` of every row's transition-segment frames against the shooting ensemble
  ((phi, psi) frame density, 36 x 36 periodic bins), or, with ``--reference``, against a stored
  long shooting run (``python -m benchmarks reference-ensemble --system aldp-cartesian``);
  ``path_density_jsd_whole_path`` for the annealed rows' whole paths.

States (every row, issue 5): A = the union of the periodic (phi, psi) balls of radius 0.75 rad around
the C5 and the C7eq minimum, B = the ball around C7ax
(:func:`benchmarks.common_cartesian.transition_states`, recorded in
``results.json`` under ``states``). The geodesics and annealed paths still start at the minimised C5
structure and end at C7ax; target_hit, the transition segments of ``path_density_jsd``, both
shooting rows, their initial path and unbiased MD all use this A and B. Until 2026-11-21 A was the
C5 ball only: C7eq (the global minimum, one beta/PII super-basin with C5) then lay in neither state,
trials dwelt there and shooting accepted 3.0 % (variable) / 0.5 % (fixed) of trials, the reference
run 2 of 393. The standard TPS definition (Bolhuis, Dellago and Chandler 2000) puts C7eq with C5 in
A, as ``benchmarks/aldp_2d.py`` now does.
With A = C5 | C7eq (2026-11-21, full protocol, seed 0): variable-length shooting accepted 61 of 1000
trials (6.1 %, 17 decorrelated; 3 041 MD steps per accepted path), fixed length (20 frames) 13 of
1000 (1.3 %); the reference run (4 chains, 1451 s) 7.3 % of 61 632 trials, 642 k frames, split-half
JSD 0.066 (benchmarks/RESULTS.md).

Quick run measured 2026-11-21 with A = C5 only (2 cores, no other load, reused full-protocol model): shooting
12 of 300 trials accepted (4 decorrelated), 307 k MD steps, 25.6 k steps per accepted path, 15 s;
unbiased MD 300 k steps, no transition (lower bound 300 k steps), 13 s; JSD against shooting
(whole / transition part): geodesic 0.82 / 0.59, low-variance 0.83 / 0.62, linear 0.88 / 0.75.
Both rows stop at a wall-time cap (``shooting_time_s``, ``md_time_s``) and report what they ran.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from benchmarks.common import (hardware, markdown_table, timer, transition_frames, use_reference_ensemble,
                               write_results)
from benchmarks.common_cartesian import (STATE_A_BASINS, STATE_B_BASIN, STATE_DEFINITION, density_curve, figures,
                                         neb_reference, plain_md, state_description, transition_states)
from benchmarks.common_protocols import CARTESIAN_QUICK as QUICK
from benchmarks.common_protocols import CartesianProtocol as Protocol
from tps.diffusion import DiffusionModel, TrainingConfig
from tps.metrics import path_density_jsd
from tps.pipeline import run_method
from tps.sampling.md import md_samples
from tps.spacetime.curve import Curve
from tps.systems import alanine_dipeptide as aldp
from tps.systems import load, protocols_of
from tps.workflows.cartesian import (check_model_matches, prepare_endpoints, save_paths_dcd, train_model,
                                    write_topology_pdb)

#: Quick-mode wall time (s) on the project's shared 2-core CPU machine. Measured 2026-11-21 with
#: all eight rows (density geodesics, shooting from an 800 K transition, fixed-length shooting):
#: 75 s of CPU time (612 s wall at load average 9); the wall-capped rows (shooting 20 s, fixed
#: 10 s, unbiased MD 15 s) take their caps, so about 120-200 s wall on an unloaded machine.
QUICK_WALL_S = 240.0


BASELINE_ROWS = ("two-way-shooting-variable", "two-way-shooting-fixed", "unbiased-md")
#: Density-geodesic rows (learned score of the EGNN model; exact Boltzmann score of the force field).
DENSITY_ROWS = ("density-geodesic", "density-geodesic-exact-score")
JSD_BINS = 36
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--quick", action="store_true", help="tiny model and short paths (a few minutes)")
    p.add_argument("--paths", type=int, default=None, help="paths per method (default 100; 10 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", type=Path, default=None, help="reuse a checkpoint (skips MD data and training)")
    p.add_argument("--methods", default="spacetime-geodesic,spacetime-geodesic-low-variance,linear-interpolation,"
                   "density-geodesic,density-geodesic-exact-score,two-way-shooting-variable,two-way-shooting-fixed,"
                   "unbiased-md",
                   help="comma-separated rows to run")
    p.add_argument("--reference", type=Path, default=None,
                   help="reference ensemble npz (python -m benchmarks reference-ensemble --system aldp-cartesian): "
                        "path_density_jsd against it instead of against this run's shooting ensemble")
    p.add_argument("--no-neb", action="store_true", help="skip the NEB reference")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (training and geodesic)")


#: CartesianProtocol fields that are numbers of the molecule's run_baseline (tps.systems.molecule_baselines).
BASELINE_FIELDS = ("initial_temperature", "relax_trials", "shooting_trials", "shooting_max_frames", "shooting_time_s",
                   "fixed_frames", "fixed_trials", "fixed_time_s", "md_budget", "md_time_s")


def baseline_protocols(protocols, proto: Protocol, *, fixed: bool = False):
    """``protocols`` with ``extras["baselines"]``: the :data:`BASELINE_FIELDS` of ``proto``, the states
    A = C5 | C7eq and B = C7ax, ``fixed`` (fixed-length shooting)."""
    params = {k: getattr(proto, k) for k in BASELINE_FIELDS}
    params.update(state_a=STATE_A_BASINS, state_b=STATE_B_BASIN, fixed=bool(fixed))
    return protocols.replace(extras={**protocols.extras, "baselines": params})


def baseline_rows(wanted, tps_system, protocols, states, proto: Protocol, args, results, paths_by_method,
                  md_rate) -> None:
    """Rows ``two-way-shooting-variable``, ``two-way-shooting-fixed`` and ``unbiased-md`` (OpenMM engine,
    :func:`tps.pipeline.run_method`, the system's ``run_baseline``) and ``path_density_jsd`` of every row
    (in place on ``results`` and ``paths_by_method``).

    These rows run in this process even with ``--workers`` / ``--scheduler``: each is one OpenMM
    chain limited by wall time, so there is nothing to cut into tasks
    (:func:`tps.baselines.chains.openmm_shooting_chains` would run it as one task with another seed).

    Shooting starts from one unbiased-MD transition at ``proto.initial_temperature`` (a dynamical
    path, unlike an annealed one), relaxed at 300 K by ``proto.relax_trials`` flexible trials
    without the length factor (discarded; their MD steps count in ``initial_path_energy_evals``),
    shared by both shooting rows. Each row keeps its chain states from its first decorrelated path on.
    """
    state_a, state_b = transition_states(states)
    initial = None
    for method in [m for m in BASELINE_ROWS if m in wanted]:
        fixed = method == "two-way-shooting-fixed"
        kind = "unbiased-md" if method == "unbiased-md" else "two-way-shooting"
        res = run_method(tps_system, kind, protocols=baseline_protocols(protocols, proto, fixed=fixed),
                         seed=args.seed, initial_path=initial)
        initial = res.extra.get("initial_path", initial)
        row = res.row
        if res.paths is None and kind == "two-way-shooting":  # no initial transition: noted, no row
            results["notes"][method] = row["note"]
            continue
        if kind == "two-way-shooting":
            row["throughput_vs_plain_md"] = row["sampler_steps_per_s"] / md_rate
        results["methods"].append(row)
        if res.paths is not None:
            paths_by_method[method] = res.paths
        write_results(args.out, results)
        if kind == "two-way-shooting":
            print(f"{method}: {row['n_accepted']}/{row['n_trials']} accepted ({row['n_decorrelated']} decorrelated), "
                  f"{row['shooting_md_steps']} MD steps (+{row['initial_path_energy_evals']} initial path), "
                  f"{row['wall_s']:.0f} s", flush=True)
        else:
            cost = (f"{row['evals_per_transition']:.0f} steps per transition" if row["n_transitions"] else
                    f"no transition: >= {row['evals_per_transition_lower_bound']:.0f} steps per transition "
                    "(lower bound)")
            print(f"unbiased-md: {row['md_steps']} MD steps, {row['n_transitions']} transitions, {cost}, "
                  f"{row['wall_s']:.0f} s", flush=True)

    # path_density_jsd: transition-segment frames in (phi, psi) against the reference ensemble
    cv = state_b.cv
    jsd = dict(bins=JSD_BINS, ranges=((-math.pi, math.pi), (-math.pi, math.pi)), periods=(2 * math.pi, 2 * math.pi))
    shoot = paths_by_method.get("two-way-shooting-variable")
    ref = transition_frames(shoot, state_a, state_b) if shoot is not None else None
    for row in results["methods"]:
        p = paths_by_method.get(row["method"])
        if p is None:
            continue
        if row["method"] not in BASELINE_ROWS:  # whole annealed paths (C5 basin to C7ax), for the record
            row["path_density_jsd_whole_path"] = (path_density_jsd(p, shoot, cv=cv, **jsd)
                                                  if shoot is not None else float("nan"))
        value = float("nan")
        if row["method"] == "two-way-shooting-variable":  # split-half noise floor: first vs second half of trials
            rounds = torch.as_tensor(p.info["round"])
            half = rounds <= rounds.median()
            a, b = (transition_frames(p, state_a, state_b, select=m) for m in (half, ~half))
            if a is not None and b is not None:
                value = path_density_jsd(cv(a), cv(b), **jsd)
        elif ref is not None:
            frames = transition_frames(p, state_a, state_b)
            if frames is not None:
                value = path_density_jsd(cv(frames), cv(ref), **jsd)
        row["path_density_jsd"] = value
    results["notes"]["path_density_jsd"] = (
        f"Jensen-Shannon divergence (bits) of the (phi, psi) density of each row's transition-segment frames (last "
        f"frame in A = C5 | C7eq before first entering B = C7ax, to that entry) against the "
        f"two-way-shooting-variable ensemble of this run (chain states after its first decorrelated path), "
        f"{JSD_BINS}x{JSD_BINS} periodic bins; the "
        "shooting row reports the JSD between its first and second half of trials (noise floor, correlated: one "
        "chain); path_density_jsd_whole_path: whole annealed paths against the same ensemble")
    if getattr(args, "reference", None) is not None:
        def same_states(meta):
            if meta.get("states") != results["states"]:
                raise ValueError(f"--reference: {args.reference} was made with other states ({meta.get('states')}); "
                                 f"this run uses {results['states']}")

        use_reference_ensemble(results, paths_by_method, state_a, state_b, args.reference, "aldp-cartesian", cv=cv,
                               check=same_states, **jsd)
    write_results(args.out, results)


def run(args) -> dict:
    torch.set_num_threads(1)  # small graphs: extra threads only add contention on shared cores
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    proto = QUICK if args.quick else Protocol()
    n_paths = args.paths or (10 if args.quick else 100)
    top = aldp.topology()
    system = aldp.create_openmm_system(top)
    minima = aldp.minimized_structures()
    states = aldp.load().states
    results = {"suite": "aldp-cartesian", "system": "alanine-dipeptide (all-atom, vacuum, amber99sbildn)",
               "kT": aldp.KT, "energy_unit": "kJ/mol", "lower_bound": float("nan"), "hardware": hardware(), "seed": args.seed,
               "protocol": proto.__dict__ | {"quick": bool(args.quick), "n_paths": n_paths}, "methods": [],
               "notes": {}}
    results["states"] = state_description(states)
    if getattr(args, "executor", None) is not None:  # --workers / --scheduler
        results["parallel"] = {
            "executor": type(args.executor).__name__, "workers": getattr(args, "workers", None),
            "scheduler": getattr(args, "scheduler", None),
            "as_tasks": ["OpenMM annealed Langevin of every geodesic, linear and density row (tasks of "
                         "tps.sampling.openmm_annealed.DEFAULT_TASK_SIZE paths, streams from (seed, task index))"],
            "in_process": ["MD training data and training", "geodesics", "NEB", "plain-MD throughput",
                           "two-way-shooting-variable, two-way-shooting-fixed and their initial path, unbiased-md: "
                           "each is ONE wall-time-limited OpenMM chain (nothing to cut into tasks; as a one-chain "
                           "task it would only change its seed)"],
            "note": "the task streams give the same paths for every worker count, but not those of the in-process "
                    "run (the published figures); sampler_steps_per_s is then the aggregate over the workers"}
    results["notes"]["states"] = (f"{STATE_DEFINITION}; the same A and B for every row (target_hit, transition "
                                  "segments of path_density_jsd, both shooting rows and their initial path, unbiased "
                                  "MD); the geodesics start at the C5 minimum. Until 2026-11-21 A was the C5 ball "
                                  "only, and shooting accepted 3.0 % / 0.5 % of trials (C7eq, in neither state, made "
                                  "trials dwell outside A and B)")
    endpoints = prepare_endpoints(system, minima["C5"], minima["C7ax"])

    # ---------------------------------------------------------------- model
    if args.model is not None:
        model = DiffusionModel.load(args.model, device=args.device).freeze()
        check_model_matches(model, top)
        results["notes"]["training"] = f"reused checkpoint {args.model}: {model.metadata}"
    else:
        with timer() as t_md:
            data = md_samples(system, top, {"C5": minima["C5"], "C7ax": minima["C7ax"]}, n_steps=proto.md_steps,
                              report_interval=proto.md_report_interval, timestep=proto.timestep,
                              friction=proto.friction, seed=args.seed)
        data.save(out / "md" / "training.dcd")
        cfg = TrainingConfig(n_steps=proto.train_steps, batch_size=proto.batch_size, seed=args.seed,
                             warmup_steps=min(100, proto.train_steps // 10), eval_every=200)
        model, training = train_model(data, top, system=system, hidden=proto.hidden, n_layers=proto.n_layers,
                                      training=cfg, device=args.device, checkpoint=out / "model.pt", progress=True,
                                      metadata={"system": "alanine-dipeptide", "md_wall_s": t_md()})
        results["notes"]["training"] = (
            f"{data.n_energy_evals} MD steps ({t_md():.1f} s, {data.n_frames} frames from C5 and C7ax), "
            f"EGNN {proto.hidden}x{proto.n_layers}, {training.n_steps_done} steps at batch {proto.batch_size} "
            f"({training.wall_s:.0f} s loop + {model.metadata['holdout_wall_s']:.0f} s held-out evaluation); "
            f"held-out loss per logSNR band {training.holdout_final}")
    n_train_evals = int(model.metadata.get("n_training_energy_evals", 0))
    results["notes"]["model"] = {k: model.metadata.get(k) for k in
                                 ("n_training_energy_evals", "training_steps", "training_wall_s", "holdout_wall_s",
                                  "holdout_final", "md_wall_s")}

    # ---------------------------------------------------------------- reference and throughput
    if not args.no_neb:
        with timer() as t_neb:
            saddle, note = neb_reference(system, endpoints, top, proto)
        if saddle is not None:
            results["lower_bound"] = float(saddle)
        results["notes"]["neb"] = f"{note}; {t_neb():.0f} s"
    md_rate, md_step, md_energy, md_max, md_frames = plain_md(system, top, endpoints.start, proto)
    every = proto.steps_per_point // proto.frames_per_point
    results["notes"]["plain_md"] = (
        f"{proto.throughput_steps} steps of unbiased 300 K MD from C5 with a frame every {every} steps: "
        f"{md_rate:.0f} steps/s; max consecutive-frame RMSD {md_step:.4f} nm (thermal baseline of max_step); "
        f"mean potential energy {md_energy:.1f} kJ/mol vs {endpoints.energies['start'][1]:.1f} kJ/mol at the C5 "
        "minimum, the first frame of every path (so barrier_mean includes the thermal rise); max potential energy "
        f"over its {md_frames} frames {md_max:.1f} kJ/mol (max_energy of a path that never leaves C5)")
    results["notes"]["plain_md_steps_per_s"] = md_rate
    results["notes"]["plain_md_max_step"] = md_step

    # ---------------------------------------------------------------- methods
    # every row is tps.pipeline.run_method on the registered system with its (quick) protocols (the row of
    # 'tps run alanine-dipeptide': summarize_molecular against C7ax and the aligned target); the density rows
    # sample along the density curves solved here (learned or exact score), the baselines are the system's
    # run_baseline
    specs = {
        "spacetime-geodesic": ("spacetime-geodesic", "none"),
        "spacetime-geodesic-low-variance": ("spacetime-geodesic", "low-variance"),
        "linear-interpolation": ("linear", "none"),
    }
    tps_system = load("alanine-dipeptide")
    run_protocols = protocols_of("alanine-dipeptide", quick=bool(args.quick))
    run_protocols = run_protocols.replace(sampler=run_protocols.sampler.replace(n_paths=n_paths))
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    valid = list(specs) + list(DENSITY_ROWS) + list(BASELINE_ROWS)
    unknown = [m for m in wanted if m not in valid]
    if unknown or not wanted:
        raise ValueError(f"--methods: unknown {unknown or args.methods!r}; valid: {', '.join(valid)}")
    cv = states["C7ax"].cv
    paths_by_method = {}
    common = dict(model=model, protocols=run_protocols, seed=args.seed, executor=getattr(args, "executor", None),
                  progress=True)
    for method in [m for m in wanted if m in specs]:
        kind, constraint = specs[method]
        geodesic = kind == "spacetime-geodesic"
        res = run_method(tps_system, kind, constraint=constraint, label=method,
                         n_training_energy_evals=n_train_evals if geodesic else 0, **common)
        row, paths, logsnr = res.row, res.paths, res.curve.logsnr
        row["n_energy_evals_per_path"] = paths.n_energy_evals // paths.n_paths
        row["sampling_wall_s"] = res.timings["sampling_s"]
        row["sampler_steps_per_s"] = paths.info.get("steps_per_s", float("nan"))
        row["throughput_vs_plain_md"] = row["sampler_steps_per_s"] / md_rate
        row["curve_logsnr_min"] = float(logsnr.min())
        row["curve_logsnr_mean"] = float(logsnr.mean())
        if geodesic:
            provenance = res.curve.provenance
            row["curve_energy"] = float(provenance["energy"])
            row["curve_energy_initial"] = float(provenance["initial_energy"])
            row["geodesic_evaluations"] = int(provenance["n_evaluations"])
        results["methods"].append(row)
        paths_by_method[method] = paths
        save_paths_dcd(paths, top, out / "paths" / method)
        write_results(out, results)
        print(f"{method}: THP {row['target_hit_fraction']:.2f}, max energy {row['max_energy_mean']:.1f} +- "
              f"{row['max_energy_std']:.1f}, max step {row['max_step']:.4f} nm, {row['wall_s']:.0f} s", flush=True)
    for method in [m for m in DENSITY_ROWS if m in wanted]:
        exact = method.endswith("exact-score")
        with timer() as t_geo:
            cx, clam, dens = density_curve(model, system, endpoints, proto, exact=exact)
        extra = {"density_beta": dens.beta, "n_score_evals": dens.n_score_evals, "density_exact_score": exact}
        curve = Curve(cx, clam, model.scaling, {"system": tps_system.name, "method": "density-geodesic",
                                                 "n_evaluations": dens.n_score_evals, "wall_s": t_geo(),
                                                 "extra": extra})
        # run_method counts the exact score's force evaluations in n_energy_evals (energy evaluations)
        res = run_method(tps_system, "density-geodesic", curve=curve, label=method, geodesic_wall_s=t_geo(),
                         n_training_energy_evals=0 if exact else n_train_evals, **common)
        row, paths = res.row, res.paths
        row["n_energy_evals_per_path"] = row["n_energy_evals"] // paths.n_paths
        row.update(sampling_wall_s=res.timings["sampling_s"],
                   density_score="exact Boltzmann score F/kT of the force field (nm)" if exact else
                   f"learned score of the EGNN model at logSNR {proto.logsnr} (model coordinates)",
                   density_residual_final=dens.history[-1] if dens.history else float("nan"))
        results["methods"].append(row)
        paths_by_method[method] = paths
        save_paths_dcd(paths, top, out / "paths" / method)
        write_results(out, results)
        print(f"{method}: THP {row['target_hit_fraction']:.2f}, max energy {row['max_energy_mean']:.1f} +- "
              f"{row['max_energy_std']:.1f}, max step {row['max_step']:.4f} nm, solver {t_geo():.0f} s, "
              f"{row['wall_s']:.0f} s", flush=True)
    baseline_rows(wanted, tps_system, run_protocols, states, proto, args, results, paths_by_method, md_rate)
    write_topology_pdb(out / "paths" / "topology.pdb", top, next(iter(paths_by_method.values())).frames[0, 0])
    figures(paths_by_method, cv, endpoints, out)
    print(markdown_table(results["methods"]))
    print(f"NEB saddle (0 K reference) = {results['lower_bound']}; hardware: {results['hardware']}")
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'ramachandran.png'}, {out / 'energies.png'}, "
          f"{out / 'paths'}")
    return results
