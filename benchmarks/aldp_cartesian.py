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

Baseline rows (issue 5; :mod:`tps.baselines.openmm_engine`, OpenMM LangevinMiddleIntegrator
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

from benchmarks.common import (hardware, markdown_table, subset_paths, timer, transition_frames, use_reference_ensemble,
                               write_results)
from benchmarks.common_cartesian import (STATE_DEFINITION, density_curve, figures, neb_reference, plain_md,
                                         state_description, transition_states)
from benchmarks.common_protocols import CARTESIAN_QUICK as QUICK
from benchmarks.common_protocols import CartesianProtocol as Protocol
from tps.baselines import openmm_two_way_shooting, openmm_unbiased_md, resample_path
from tps.diffusion import DiffusionModel, TrainingConfig
from tps.metrics import path_density_jsd
from tps.metrics.molecular import summarize_molecular
from tps.pipeline import run_method
from tps.sampling.md import md_samples
from tps.systems import alanine_dipeptide as aldp
from tps.systems import load, protocols_of
from tps.workflows.cartesian import (
    check_model_matches, curve_restraints, prepare_endpoints, sample_paths, save_paths_dcd, train_model,
    transition_paths, write_topology_pdb,
)

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


def _burned_in(res):
    """The chain states of an OpenMM shooting run from its first decorrelated path on (the first
    decorrelation period discarded); all of them, flagged, when the chain never decorrelated."""
    dec = res.info["decorrelation_trials"]
    if not dec:
        return res.paths, 0, False
    keep = torch.as_tensor(res.paths.info["round"]) >= dec[0]
    return subset_paths(res.paths, keep), int(dec[0]), True


def baseline_rows(wanted, system, top, endpoints, states, proto: Protocol, args, results, paths_by_method,
                  md_rate) -> None:
    """Rows ``two-way-shooting-variable``, ``two-way-shooting-fixed`` and ``unbiased-md`` (OpenMM engine)
    and ``path_density_jsd`` of every row (in place on ``results`` and ``paths_by_method``).

    These rows run in this process even with ``--workers`` / ``--scheduler``: each is one OpenMM
    chain limited by wall time, so there is nothing to cut into tasks
    (:func:`tps.baselines.chains.openmm_shooting_chains` would run it as one task with another seed).

    Shooting starts from one unbiased-MD transition at ``proto.initial_temperature`` (a dynamical
    path, unlike an annealed one), relaxed at 300 K by ``proto.relax_trials`` flexible trials
    without the length factor (discarded; their MD steps count in ``initial_path_energy_evals``).
    Each row keeps its chain states from its first decorrelated path on.
    """
    state_a, state_b = transition_states(states)
    every = proto.steps_per_point // proto.frames_per_point
    md = dict(temperature=aldp.TEMPERATURE, timestep=proto.timestep, friction=proto.friction, save_every=every)
    shooting = [m for m in ("two-way-shooting-variable", "two-way-shooting-fixed") if m in wanted]
    if shooting:
        with timer() as t_init:
            hot = openmm_unbiased_md(system, endpoints.start, state_a=state_a, state_b=state_b,
                                     n_steps_budget=5_000_000, max_transitions=1, seed=args.seed + 5,
                                     time_limit_s=120.0, **(md | {"temperature": proto.initial_temperature}))
        if hot.paths is None:
            for m in shooting:
                results["notes"][m] = (f"skipped: no A -> B (C5 | C7eq -> C7ax) transition in "
                                       f"{hot.n_energy_evals} MD steps at {proto.initial_temperature} K")
            shooting = []
        else:
            initial = hot.paths.frames[0, :int(hot.paths.info["lengths"][0])]
            relax = openmm_two_way_shooting(system, initial, state_a=state_a, state_b=state_b,
                                            n_trials=proto.relax_trials, max_frames=proto.shooting_max_frames,
                                            length_metropolis=False, seed=args.seed + 6, **md)
            relaxed = relax.paths.frames[-1, :int(relax.paths.info["lengths"][-1])]
            init_evals = hot.n_energy_evals + relax.n_energy_evals
            init_s = t_init()
            init_note = (f"{proto.initial_temperature:g} K unbiased-MD transition ({initial.shape[0]} frames, "
                         f"{hot.n_energy_evals} MD steps) relaxed by {relax.n_trials} flexible trials at "
                         f"{aldp.TEMPERATURE:g} K without the length factor ({relax.n_accepted} accepted, "
                         f"{relax.n_energy_evals} MD steps; discarded) -> {relaxed.shape[0]} frames")
    for method in shooting:
        fixed = method == "two-way-shooting-fixed"
        if fixed:
            n_frames = max(proto.fixed_frames, relaxed.shape[0])
            start = resample_path(relaxed, n_frames, mode="pad")
            kw = dict(ensemble="fixed", n_trials=proto.fixed_trials, time_limit_s=proto.fixed_time_s)
        else:
            start = relaxed
            kw = dict(n_trials=proto.shooting_trials, time_limit_s=proto.shooting_time_s)
        with timer() as t_s:
            res = openmm_two_way_shooting(system, start, state_a=state_a, state_b=state_b,
                                          max_frames=proto.shooting_max_frames, seed=args.seed + (8 if fixed else 7),
                                          **md, **kw)
        kept, burn, decorrelated = _burned_in(res)
        row = summarize_molecular(kept, method=method, system=system, target_state=state_b,
                                  target_positions=endpoints.target, topology=top, wall_s=init_s + t_s())
        row.update(n_energy_evals=int(init_evals + res.n_energy_evals), initial_path_energy_evals=int(init_evals),
                   n_trials=res.n_trials, n_accepted=res.n_accepted, acceptance_rate=res.acceptance_rate,
                   n_decorrelated=res.n_decorrelated, shooting_md_steps=res.n_energy_evals,
                   evals_per_accepted_path=res.evals_per_accepted_path,
                   evals_per_decorrelated_path=res.evals_per_decorrelated_path,
                   mean_trial_frames=res.info["mean_trial_frames"], trial_outcomes=res.info["outcomes"],
                   sampler_steps_per_s=res.info["steps_per_s"],
                   throughput_vs_plain_md=res.info["steps_per_s"] / md_rate, initial_path=init_note,
                   burn_in_trials=burn, chain_decorrelated_from_initial=decorrelated,
                   n_frames=int(start.shape[0]) if fixed else None)
        results["methods"].append(row)
        paths_by_method[method] = kept
        write_results(args.out, results)
        print(f"{method}: {res.n_accepted}/{res.n_trials} accepted ({res.n_decorrelated} decorrelated), "
              f"{res.n_energy_evals} MD steps (+{init_evals} initial path), {t_s():.0f} s", flush=True)
    if "unbiased-md" in wanted:
        with timer() as t_md:
            res = openmm_unbiased_md(system, endpoints.start, state_a=state_a, state_b=state_b,
                                     n_steps_budget=proto.md_budget, time_limit_s=proto.md_time_s,
                                     seed=args.seed, **md)
        if res.paths is not None:
            row = summarize_molecular(res.paths, method="unbiased-md", system=system, target_state=state_b,
                                      target_positions=endpoints.target, topology=top, wall_s=t_md())
            paths_by_method["unbiased-md"] = res.paths
        else:
            row = {"method": "unbiased-md", "n_paths": 0, "n_energy_evals": res.n_energy_evals, "wall_s": t_md()}
        row.update(n_transitions=res.n_transitions, md_steps=res.n_energy_evals,
                   evals_per_transition=res.evals_per_transition,
                   evals_per_transition_lower_bound=res.evals_per_transition_lower_bound,
                   evals_per_transition_lower_bound_95=res.info["lower_bound_95"],
                   md_stopped_by_time_limit=res.info["stopped_by_time_limit"],
                   sampler_steps_per_s=res.info["steps_per_s"])
        results["methods"].append(row)
        write_results(args.out, results)
        cost = (f"{res.evals_per_transition:.0f} steps per transition" if res.n_transitions else
                f"no transition: >= {res.evals_per_transition_lower_bound:.0f} steps per transition (lower bound)")
        print(f"unbiased-md: {res.n_energy_evals} MD steps, {res.n_transitions} transitions, {cost}, "
              f"{t_md():.0f} s", flush=True)

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
    # geodesic rows: tps.pipeline.run_method on the registered system with its (quick) protocols, the path of
    # 'tps run alanine-dipeptide'; the linear row: the float64 straight line of tps.workflows (the pipeline's
    # linear curve starts from float32 endpoints and moves the frames by ~4e-7 nm)
    specs = {
        "spacetime-geodesic": ("geodesic", "none"),
        "spacetime-geodesic-low-variance": ("geodesic", "low-variance"),
        "linear-interpolation": ("linear", None),
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
    for method in [m for m in wanted if m in specs]:
        curve, constraint = specs[method]
        with timer() as t_all:
            if curve == "geodesic":
                res = run_method(tps_system, "spacetime-geodesic", model=model, protocols=run_protocols,
                                 constraint=constraint, seed=args.seed, executor=getattr(args, "executor", None),
                                 progress=True)
                paths, logsnr, wall = res.paths, res.curve.logsnr, res.timings
                geo_wall, sampling_wall = wall["geodesic_s"], wall["sampling_s"]
            else:
                res = transition_paths(system, top, model, None, None, endpoints=endpoints, curve=curve,
                                       n_paths=n_paths, steps_per_point=proto.steps_per_point, logsnr=proto.logsnr,
                                       n_points=proto.n_points, timestep=proto.timestep, friction=proto.friction,
                                       frames_per_point=proto.frames_per_point, seed=args.seed, progress=True,
                                       executor=getattr(args, "executor", None))
                paths, logsnr = res.paths, res.restraints.logsnr
                geo_wall, sampling_wall = res.wall_s["geodesic"], res.wall_s["sampling"]
        # the system's metrics row (that of 'tps run'): summarize_molecular against C7ax and the aligned target
        row = tps_system.summarize(paths, method=method, n_training_energy_evals=n_train_evals if curve == "geodesic"
                                   else 0, wall_s=t_all(), geodesic_wall_s=geo_wall)
        row["n_energy_evals_per_path"] = paths.n_energy_evals // paths.n_paths
        row["sampling_wall_s"] = sampling_wall
        row["sampler_steps_per_s"] = paths.info.get("steps_per_s", float("nan"))
        row["throughput_vs_plain_md"] = row["sampler_steps_per_s"] / md_rate
        row["curve_logsnr_min"] = float(logsnr.min())
        row["curve_logsnr_mean"] = float(logsnr.mean())
        if curve == "geodesic":
            provenance = res.curve.provenance
            row["curve_energy"] = float(provenance["energy"])
            row["curve_energy_initial"] = float(provenance["initial_energy"])
            row["geodesic_evaluations"] = int(provenance["n_evaluations"])
        results["methods"].append(row)
        paths_by_method[method] = paths
        save_paths_dcd(paths, top, out / "paths" / method)
        write_results(out, results)
        print(f"{method}: THP {row['target_hit_fraction']:.2f}, max energy {row['max_energy_mean']:.1f} +- "
              f"{row['max_energy_std']:.1f}, max step {row['max_step']:.4f} nm, {t_all():.0f} s", flush=True)
    for method in [m for m in DENSITY_ROWS if m in wanted]:
        exact = method.endswith("exact-score")
        with timer() as t_all:
            cx, clam, dens = density_curve(model, system, endpoints, proto, exact=exact)
            t_geo = t_all()
            restraints = curve_restraints(cx, clam, model.scaling, temperature=aldp.TEMPERATURE,
                                          origin=endpoints.origin)
            paths = sample_paths(system, restraints, endpoints, n_paths=n_paths, steps_per_point=proto.steps_per_point,
                                 temperature=aldp.TEMPERATURE, timestep=proto.timestep, friction=proto.friction,
                                 frames_per_point=proto.frames_per_point, seed=args.seed, progress=True,
                                 executor=getattr(args, "executor", None))
        row = summarize_molecular(paths, method=method, system=system, target_state=states["C7ax"],
                                  target_positions=endpoints.target, topology=top,
                                  n_training_energy_evals=0 if exact else n_train_evals, wall_s=t_all(),
                                  geodesic_wall_s=t_geo)
        if exact:  # the solver's force evaluations are energy evaluations
            row["n_energy_evals"] += dens.n_score_evals
        row["n_energy_evals_per_path"] = row["n_energy_evals"] // paths.n_paths
        row.update(density_beta=dens.beta, n_score_evals=dens.n_score_evals, sampling_wall_s=t_all() - t_geo,
                   density_score="exact Boltzmann score F/kT of the force field (nm)" if exact else
                   f"learned score of the EGNN model at logSNR {proto.logsnr} (model coordinates)",
                   density_residual_final=dens.history[-1] if dens.history else float("nan"))
        results["methods"].append(row)
        paths_by_method[method] = paths
        save_paths_dcd(paths, top, out / "paths" / method)
        write_results(out, results)
        print(f"{method}: THP {row['target_hit_fraction']:.2f}, max energy {row['max_energy_mean']:.1f} +- "
              f"{row['max_energy_std']:.1f}, max step {row['max_step']:.4f} nm, solver {t_geo:.0f} s, "
              f"{t_all():.0f} s", flush=True)
    baseline_rows(wanted, system, top, endpoints, states, proto, args, results, paths_by_method, md_rate)
    write_topology_pdb(out / "paths" / "topology.pdb", top, next(iter(paths_by_method.values())).frames[0, 0])
    figures(paths_by_method, cv, endpoints, out)
    print(markdown_table(results["methods"]))
    print(f"NEB saddle (0 K reference) = {results['lower_bound']}; hardware: {results['hardware']}")
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'ramachandran.png'}, {out / 'energies.png'}, "
          f"{out / 'paths'}")
    return results
