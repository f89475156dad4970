"""Convergence to the transition-path ensemble: shooting from high-temperature paths, geodesic-seeded shooting, geodesics.

``python -m benchmarks convergence --system muller-brown|aldp-2d|aldp-cartesian --reference REF --out DIR
[--chains 16,64,256] [--rounds N] [--relax-rounds N] [--arm-time-s S] [--arms a1,a2,b,c] [--model PATH]
[--centre-noise A] [--seed N] [--quick]``

For each number of chains M (``--chains``) the same run measures ``path_density_jsd`` to a long
reference ensemble (``python -m benchmarks reference-ensemble``, made with ANOTHER seed) against
the cumulative energy evaluations of:

- ``shooting-shared-initial`` (a1): M flexible-length two-way-shooting chains, all started from one
  high-temperature initial path (unbiased MD at ``high_factor`` x the temperature, the reference
  runner's search); its MD is counted once;
- ``shooting-independent-initial`` (a2): M chains from M independent high-temperature transitions
  (what a practitioner does to get independent chains; all of that MD is counted);
- ``geodesic-seeded-shooting`` (b): M chains from M different spacetime-geodesic paths of the
  system's pretrained model or of ``--model PATH`` (a ``tps train SYSTEM`` checkpoint, checked for
  the system as ``tps run --model``), sampled with the sampler's ``centre_noise`` = ``--centre-noise``
  if given (:func:`tps.pipeline.run_method`), each cut to its A -> B transition
  (:func:`tps.baselines.seeded.seed_paths`); the geodesic sampling of the paths consumed is counted;
- ``geodesic`` (c, one row): the geodesic ensemble alone, JSD against the number of paths.

Rules and conventions:

- Every shooting arm uses the same flexible-length two-way shooting (the reference runner's
  dynamics, states and ``max_frames``), chains continued block by block with fresh seeds. Arm (b)
  is :func:`tps.baselines.seeded.seeded_shooting` (= ``seed_paths`` + ``two_way_shooting``) run
  the same way.
- **Relaxation** (every shooting arm): :func:`tps.baselines.relax_chains` on the same dynamics,
  as the refine stage of ``tps run``: rounds WITHOUT the length factor, chain by chain, each chain
  stopping as soon as it has left its initial path (shares no frame with it; with
  ``--relax-until accepted``: at its first accepted relaxation trial), or after ``--relax-rounds``
  rounds. Needed because both kinds of initial path are atypically short (Muller-Brown:
  geodesic transition segments 11-56 frames, high-temperature ones 130-600, MD transitions at the
  target temperature about 300): from a short path the cap ``2 + (L_old - 2) / u`` rejects almost
  every realistic trial (measured: 0 of 240 trials accepted from 8 geodesic seeds). Relaxation
  trial evaluations are counted (``relax_evals``; the initial paths' frames are in the initial
  evaluations already); its states are never pooled. The rows give ``relax_rounds`` (most rounds
  any chain ran), ``relax_rounds_per_chain``, ``relax_rounds_median``, ``chains_relaxed``
  (chains that left their initial path) and ``chains_relax_accepted`` (chains with an accepted
  relaxation trial). The relaxation is bounded by ``--relax-rounds``, not
  interrupted by ``--arm-time-s`` (its CPU time counts towards the arm's budget).
- **Burn-in rule**: the point of the curve at sampling round R pools the chain states (every
  round's state of every chain, rejections repeating the old path) of rounds ``R // 2 + 1 .. R``:
  the first half of each chain's sampling rounds is discarded, the same rule for every arm.
  Round 0 is the initial chains (before relaxation).
- **Evaluations** (x of the curves): every frame of every trial, rejected ones included, plus the
  initial paths (a1: the search once, a2: all searches, b: the geodesic sampling of the paths the
  seeds came from, ``(last seed index + 1) x`` evaluations per geodesic path, plus the energy
  evaluations of the curve solve, if any). The model's training evaluations
  (``model.metadata["n_training_energy_evals"]``, of ``--model`` too; results.json records the
  model's source, ``pretrained:NAME`` or the path and its sha256, in ``settings.model`` and
  ``geodesic``, and the b/c rows give ``model`` and ``n_training_energy_evals``) are NOT on the curves; the rows give
  ``evals_to_2x_floor_with_training`` (training counted once in full) and
  ``evals_to_2x_floor_amortised`` (training x geodesic paths used / :data:`AMORTISE_PATHS`: its
  share when the model serves a standard run of that many paths). The solve's wall time and
  network evaluations are reported separately (``geodesic_solve``).
- ``noise_floor``: the reference's split-half JSD (chains ``< n/2`` against the rest);
  ``evals_to_2x_floor``: the evaluations of the first curve point with JSD <= 2 x floor (null if none).
- ``--quick`` (CI): tiny M, rounds and geodesic; without ``--reference`` it builds an in-process
  stand-in (:func:`quick_reference`, labelled as such: NOT converged), so its numbers only show
  that the machinery runs.

Outputs (atomic, rewritten after every arm): ``DIR/results.json`` (rows: method, arm, n_chains,
noise_floor, final_jsd, evals_to_2x_floor, curve ``[[cumulative_evals, jsd], ...]``, ...),
``DIR/table.md``, ``DIR/convergence.png`` and ``DIR/paths.npz`` (per arm ``<method>_M<M>`` the
collective variables ``(n, 2)`` of its final pooled frames; the JSD can be recomputed from them).

Bad input (one line on stderr, exit status 2, nothing written): a reference of another system,
with other states or temperature, or made with the same seed as the run; ``--chains`` not
positive integers; more chains than geodesic paths; geodesic paths without enough A -> B
transitions; a ``--model`` that is missing, unreadable or made for another system;
``--centre-noise`` negative.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import fmt, hardware, load_reference, save_figure
from benchmarks.common_convergence import (SYSTEMS, check_reference, evals_to_threshold, high_temperature_paths,
                                           jsd_to, make_chains, make_setup, noise_floor, pooled_frames, segment_cv)
from benchmarks.common_geodesic_arm import check_centre_noise, geodesic_ensemble, load_geodesic_model, seeded_chains
from tps.io import atomic_path, save_results, write_text

#: Geodesic training evaluations are amortised over this many geodesic paths (one standard run).
AMORTISE_PATHS = 1000
ARMS = {"a1": "shooting-shared-initial", "a2": "shooting-independent-initial", "b": "geodesic-seeded-shooting",
        "c": "geodesic"}
#: Per-system defaults (full, quick): chains, rounds per chain, wall seconds per arm, geodesic paths.
DEFAULTS = {False: dict(chains="16,64,256", rounds=400, relax_rounds=100, arm_time_s=300.0, geodesic_paths=None),
            True: dict(chains="4", rounds=12, relax_rounds=6, arm_time_s=10.0, geodesic_paths=8)}
#: ``--relax-until`` values (:func:`tps.baselines.relax_chains` ``until``).
RELAX_UNTIL = ("decorrelated", "accepted")
#: Frames held by one shooting block (chains x rounds x max_frames); bounds memory.
BLOCK_FRAMES = 2_000_000
#: Rounds of one shooting block at most (the CPU budget is checked between blocks).
BLOCK_ROUNDS = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--system", required=True, choices=SYSTEMS)
    p.add_argument("--reference", type=Path, default=None,
                   help="reference ensemble npz (python -m benchmarks reference-ensemble --system S --seed N), made "
                        "with a seed other than --seed; required unless --quick (which then builds a stand-in)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--chains", default=None, help="comma-separated numbers of chains M (default 16,64,256; quick 4)")
    p.add_argument("--rounds", type=int, default=None, help="shooting rounds per chain, at most (default 400; quick 12)")
    p.add_argument("--relax-rounds", type=int, default=None,
                   help="relaxation rounds per chain, at most (no length factor, each chain until it left its "
                        "initial path; default 100; quick 6; 0: none)")
    p.add_argument("--relax-until", default="decorrelated", choices=RELAX_UNTIL,
                   help="a chain's relaxation stops once it shares no frame with its initial path (decorrelated, "
                        "default) or at its first accepted relaxation trial (accepted)")
    p.add_argument("--arm-time-s", type=float, default=None,
                   help="CPU seconds of this process per shooting arm, at most (default 300; quick 10)")
    p.add_argument("--geodesic-paths", type=int, default=None,
                   help="geodesic paths sampled (default max(256, 1.25 max M); quick 8)")
    p.add_argument("--arms", default="a1,a2,b,c", help="comma-separated subset of a1,a2,b,c (default all)")
    p.add_argument("--model", type=Path, default=None,
                   help="checkpoint written by 'tps train SYSTEM' for arms b and c (default: the system's pretrained "
                        "model); its training evaluations come from its metadata")
    p.add_argument("--centre-noise", type=float, default=None,
                   help="the geodesic sampler's centre_noise (restraint widths; default: the system's, none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="CI smoke run: tiny M, rounds and geodesic")


def parse_chains(text: str) -> list:
    """``"16,64"`` -> ``[16, 64]``; ValueError naming ``--chains`` otherwise.

    Examples
    --------
    >>> parse_chains("16, 64")
    [16, 64]
    """
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise ValueError(f"--chains: expected comma-separated positive integers, got {text!r}")
    return sorted(set(values))


def settings(args) -> dict:
    """The run's settings with the defaults filled in; ValueError naming the bad argument."""
    d = DEFAULTS[bool(args.quick)]
    chains = parse_chains(args.chains if args.chains is not None else d["chains"])
    rounds = args.rounds if args.rounds is not None else d["rounds"]
    relax_rounds = getattr(args, "relax_rounds", None)
    relax_rounds = d["relax_rounds"] if relax_rounds is None else relax_rounds
    if int(relax_rounds) < 0:
        raise ValueError(f"--relax-rounds: expected an integer >= 0, got {relax_rounds!r}")
    arm_time = args.arm_time_s if args.arm_time_s is not None else d["arm_time_s"]
    n_geo = args.geodesic_paths if args.geodesic_paths is not None else (
        d["geodesic_paths"] or max(256, math.ceil(1.25 * max(chains))))
    arms = [a.strip() for a in str(args.arms).split(",") if a.strip()]
    if not arms or any(a not in ARMS for a in arms):
        raise ValueError(f"--arms: expected a comma-separated subset of {','.join(ARMS)}, got {args.arms!r}")
    if int(rounds) < 1:
        raise ValueError(f"--rounds: expected a positive integer, got {rounds!r}")
    if not arm_time > 0:
        raise ValueError(f"--arm-time-s: expected a positive number of seconds, got {arm_time!r}")
    if "b" in arms and n_geo < max(chains):
        raise ValueError(f"--geodesic-paths: {n_geo} geodesic paths cannot seed {max(chains)} chains (--chains); "
                         "give at least as many paths as chains")
    if n_geo < 1:
        raise ValueError(f"--geodesic-paths: expected a positive integer, got {n_geo!r}")
    centre_noise = check_centre_noise(getattr(args, "centre_noise", None))
    until = getattr(args, "relax_until", None) or RELAX_UNTIL[0]
    if until not in RELAX_UNTIL:
        raise ValueError(f"--relax-until: expected one of {', '.join(RELAX_UNTIL)}, got {until!r}")
    return {"chains": chains, "rounds": int(rounds), "relax_rounds": int(relax_rounds), "relax_until": until,
            "arm_time_s": float(arm_time),
            "geodesic_paths": int(n_geo), "arms": arms, "centre_noise": centre_noise}


def prepare(args):
    """Validate everything before anything is written: ``(setup, reference, settings)``; ValueError otherwise.

    The geodesic model (``--model`` or the pretrained one) is loaded here, into
    ``setup.extra["model"]``, and described in ``settings["model"]``.
    """
    s = settings(args)
    if args.reference is None and not args.quick:
        raise ValueError("--reference: required (python -m benchmarks reference-ensemble --system "
                         f"{args.system} --seed N --out REF; a seed other than this run's {args.seed})")
    setup = make_setup(args.system)
    model_path = getattr(args, "model", None)
    if model_path is not None or "b" in s["arms"] or "c" in s["arms"]:
        setup.extra["model"], s["model"] = load_geodesic_model(setup.pipeline_name, model_path)
    if args.reference is None:
        return setup, None, s
    reference = load_reference(args.reference, args.system)
    check_reference(reference["meta"], setup, seed=args.seed, path=args.reference)
    return setup, reference, s


def quick_reference(setup, seed: int, *, n_chains: int = 8, n_rounds: int = 24) -> dict:
    """``--quick`` without ``--reference``: an in-process stand-in, NOT a converged reference.

    Two groups of ``n_chains // 2`` shooting chains, each from its own high-temperature transition
    (seed ``seed``), ``n_rounds`` rounds; the second half of the rounds is kept (group = "chain" of
    the split-half floor). Only for the CI smoke run: it shows that the machinery runs.
    """
    frames, chain = [], []
    for g in range(2):
        chains, _ = high_temperature_paths(setup, n_chains // 2, seed + 31 * g, shared=False)
        driver = make_chains(setup)
        _, per_round, _, _ = driver.block(chains, n_rounds, seed + 97 * (g + 1))
        kept = [f for f in per_round[n_rounds // 2:] if f is not None]
        frames.append(torch.cat(kept))
        chain.append(torch.full((len(frames[-1]),), g))
    meta = {"system": setup.name, "states": setup.states, "kT": setup.kT, "seed": seed,
            "note": f"quick stand-in built in-process ({n_chains} chains x {n_rounds} rounds, second half kept): "
                    "NOT a converged reference ensemble"}
    return {"frames": torch.cat(frames), "chain": torch.cat(chain), "meta": meta,
            "path": "in-process quick stand-in (not converged)"}


# ------------------------------------------------------------------ geodesic
def geodesic_row(setup, geo, reference, floor) -> tuple:
    """Arm (c): JSD of the first n geodesic paths (n = 8, 16, 32, ..., all) against the reference."""
    paths = geo["paths"]
    n_all = paths.n_paths
    ns = sorted({n for n in (2 ** k for k in range(3, 30)) if n < n_all} | {n_all})
    curve = []
    for n in ns:
        sel = torch.arange(n_all) < n
        curve.append([int(round(geo["solve_energy_evals"] + n * geo["per_path"])),
                      jsd_to(segment_cv(paths, setup, select=sel), reference["frames"], setup.jsd)])
    frames = segment_cv(paths, setup)
    return _finish({"method": ARMS["c"], "arm": "c", "n_chains": None, "n_paths": n_all, "curve": curve,
                    "evals_per_path": geo["per_path"], "target_hit_fraction": geo["row"].get("target_hit_fraction"),
                    "model": geo["model"], "centre_noise": geo["centre_noise"]},
                   floor, geo, n_geodesic_paths=n_all), frames


def _finish(row, floor, geo, *, n_geodesic_paths: int) -> dict:
    curve = row["curve"]
    row["noise_floor"] = floor
    row["final_jsd"] = curve[-1][1] if curve else float("nan")
    row["n_energy_evals"] = curve[-1][0] if curve else 0
    e = evals_to_threshold(curve, 2 * floor)
    row["evals_to_2x_floor"] = e
    if n_geodesic_paths and geo is not None:
        train = geo["n_training"]
        amortised = int(round(train * n_geodesic_paths / AMORTISE_PATHS))
        row.update(n_training_energy_evals=train, amortised_training_evals=amortised, n_geodesic_paths=n_geodesic_paths,
                   evals_to_2x_floor_with_training=None if e is None else e + train,
                   evals_to_2x_floor_amortised=None if e is None else e + amortised)
    else:
        row.update(n_training_energy_evals=0, amortised_training_evals=0, n_geodesic_paths=0,
                   evals_to_2x_floor_with_training=e, evals_to_2x_floor_amortised=e)
    return row


# ------------------------------------------------------------------ shooting arms
def _checkpoints(rounds: int) -> set:
    pts, r = set(), 1.0
    while r <= rounds:
        pts.add(int(r))
        r *= 1.25
    return pts | {rounds}


def shooting_arm(setup, arm: str, chains: list, offset: int, reference, floor, s: dict, seed: int, geo=None,
                 n_geodesic_paths: int = 0, extra=None) -> tuple:
    """Run M chains from ``chains`` (offset: evaluations already spent on them); ``(row, final pooled frames)``.

    Relaxation first (:func:`tps.baselines.relax_chains` on the same dynamics: no length factor,
    chain by chain, each until it shares no frame with its initial path or after
    ``s["relax_rounds"]`` rounds; its trial evaluations counted, its states never pooled), then
    proper shooting until ``s["rounds"]`` rounds or ``s["arm_time_s"]`` CPU seconds.
    """
    m = len(chains)
    driver = make_chains(setup)
    ref = reference["frames"]
    init = [segment_cv(_as_paths(c), setup) for c in chains]
    rounds = [torch.cat([f for f in init if f is not None])]
    cum = [offset]
    curve = [[offset, jsd_to(rounds[0], ref, setup.jsd)]]
    marks = _checkpoints(s["rounds"])
    block = max(1, min(s["rounds"], BLOCK_ROUNDS, BLOCK_FRAMES // (m * setup.max_frames)))
    counts = dict(trials=0, accepted=0, decorrelated=0)
    t0, c0, b = time.perf_counter(), time.process_time(), 0

    def spent():
        return time.process_time() - c0 >= s["arm_time_s"]

    relax = {"relax_rounds": 0, "relax_evals": 0, "relax_acceptance_rate": float("nan"), "chains_relaxed": 0,
             "chains_relax_accepted": 0,
             "relax_rounds_per_chain": [0] * m, "relax_cpu_s": 0.0}
    if s["relax_rounds"]:
        r = driver.relax(chains, s["relax_rounds"], seed + 7919, until=s.get("relax_until", RELAX_UNTIL[0]))
        chains = r.paths
        trials = sum(r.rounds)  # one trial per chain and round it ran
        # the seeds' own frames (in r.n_energy_evals) are the initial paths, already in ``offset``
        relax.update(relax_rounds=max(r.rounds), relax_evals=int(sum(r.round_evals)),
                     relax_acceptance_rate=sum(r.accepted) / trials if trials else float("nan"),
                     chains_relaxed=int(sum(r.decorrelated)), chains_relax_accepted=sum(a > 0 for a in r.accepted),
                     relax_rounds_per_chain=list(map(int, r.rounds)),
                     relax_cpu_s=time.process_time() - c0)
    cum[0] += relax["relax_evals"]  # sampling starts after the relaxation
    while len(rounds) - 1 < s["rounds"] and not spent():
        n = min(block, s["rounds"] - (len(rounds) - 1))
        chains, frames, evals, c = driver.block(chains, n, seed + 7919 * (b + 1))
        b += 1
        for k in counts:
            counts[k] += c[k]
        for i, (f, e) in enumerate(zip(frames, evals)):
            rounds.append(f)
            cum.append(cum[-1] + e)
            r = len(rounds) - 1
            if r in marks or i == len(frames) - 1:
                curve.append([cum[-1], jsd_to(pooled_frames(rounds, r), ref, setup.jsd)])
    n_rounds = len(rounds) - 1
    final = pooled_frames(rounds, n_rounds)
    if curve[-1][0] != cum[-1]:
        curve.append([cum[-1], jsd_to(final, ref, setup.jsd)])
    per_chain = relax["relax_rounds_per_chain"]
    row = {"method": ARMS[arm], "arm": arm, "n_chains": m, "curve": curve, "n_rounds": n_rounds, **relax,
           "relax_rounds_median": float(np.median(per_chain)) if per_chain else 0.0,
           "initial_evals": offset, "shooting_evals": cum[-1] - offset,
           "sampling_evals": cum[-1] - offset - relax["relax_evals"], "n_trials": counts["trials"],
           "n_accepted": counts["accepted"], "n_decorrelated": counts["decorrelated"],
           "acceptance_rate": counts["accepted"] / counts["trials"] if counts["trials"] else float("nan"),
           "n_pooled_frames": 0 if final is None else int(len(final)), "wall_s": time.perf_counter() - t0,
           "cpu_s": time.process_time() - c0, **(extra or {})}
    return _finish(row, floor, geo, n_geodesic_paths=n_geodesic_paths), final


def _as_paths(frames):
    from tps.core import Paths

    f = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, torch.Tensor) else frames
    return Paths(f[None], torch.zeros(1, f.shape[0], dtype=torch.float64), 0, 1.0, {})


# ------------------------------------------------------------------ outputs
def figure(results, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = results["settings"]["chains"]
    fig, axes = plt.subplots(1, len(ms), figsize=(5.5 * len(ms), 4.2), squeeze=False)
    floor = results["reference"]["noise_floor"]
    colours = {"a1": "tab:blue", "a2": "tab:orange", "b": "tab:green", "c": "tab:red"}
    for ax, m in zip(axes[0], ms):
        for row in results["rows"]:
            if row["n_chains"] not in (m, None) or not row["curve"]:
                continue
            x, y = zip(*row["curve"])
            ax.plot(np.maximum(x, 1), y, "-o", ms=2.5, color=colours[row["arm"]], label=f"({row['arm']}) {row['method']}")
        if math.isfinite(floor):
            ax.axhline(floor, color="k", lw=0.8, ls=":", label=f"reference noise floor {floor:.3f}")
            ax.axhline(2 * floor, color="k", lw=0.8, ls="--", label="2 x floor")
        ax.set_xscale("log")
        ax.set_xlabel("cumulative energy evaluations (training not included)")
        ax.set_ylabel("path_density_jsd to the reference (bits)")
        ax.set_title(f"{results['system']}: M = {m} chains")
        ax.legend(fontsize=7)
    save_figure(fig, out / "convergence.png")
    plt.close(fig)


TABLE_KEYS = ("method", "n_chains", "relax_rounds", "relax_rounds_median", "chains_relaxed", "relax_evals", "n_rounds",
              "acceptance_rate", "initial_evals", "n_energy_evals", "final_jsd", "noise_floor", "evals_to_2x_floor", "evals_to_2x_floor_amortised", "evals_to_2x_floor_with_training")


def write_outputs(out: Path, results: dict, frames: dict) -> None:
    save_results(results, out / "results.json", nonfinite="tokens")
    ref = results["reference"]
    lines = [f"# convergence: {results['system']}{' (quick: NOT converged, smoke run)' if results['quick'] else ''}", "",
             f"Reference {ref['path']}: seed {ref['seed']} (this run: seed {results['seed']}), {ref['n_frames']} frames "
             f"of {ref['n_chains']} chains, split-half noise floor {fmt(ref['noise_floor'], 4)}; hardware: "
             f"{results['hardware']}", "",
             "| " + " | ".join(TABLE_KEYS) + " |", "|" + "---|" * len(TABLE_KEYS)]
    for r in results["rows"]:
        lines.append("| " + " | ".join("null" if r.get(k, "") is None else fmt(r.get(k, float("nan")))
                                       for k in TABLE_KEYS) + " |")
    lines.append("")
    lines += [f"- {k}: {v}" for k, v in results["notes"].items()]
    write_text(out / "table.md", "\n".join(lines) + "\n")
    with atomic_path(out / "paths.npz") as tmp:
        np.savez_compressed(tmp, **{k: v.numpy().astype(np.float32) for k, v in frames.items() if v is not None})
    figure(results, out)


def run(args) -> dict:
    torch.set_num_threads(1)
    try:
        setup, reference, s = prepare(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if reference is None:
        print("[convergence] --quick without --reference: building an in-process stand-in (NOT converged)", flush=True)
        reference = quick_reference(setup, int(args.seed) + 1000, n_chains=4 if setup.is_openmm else 8)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    floor = noise_floor(reference, setup.jsd)
    meta = reference["meta"]
    results = {
        "suite": "convergence", "system": setup.name, "seed": args.seed, "quick": bool(args.quick),
        "hardware": hardware(), "settings": s, "dynamics": setup.dynamics, "states": setup.states,
        "reference": {"path": str(reference.get("path", args.reference)), "note": meta.get("note"), "seed": meta.get("seed"), "n_frames": int(len(reference["frames"])),
                      "n_chains": int(reference["chain"].max()) + 1 if len(reference["chain"]) else 0,
                      "noise_floor": floor, "kept_paths": meta.get("counts", {}).get("kept_paths"),
                      "wall_s": meta.get("wall_s"), "evals": meta.get("counts", {}).get("evals")},
        "rows": [], "notes": {
            "burn-in": "relaxation first (no length factor, chain by chain, each until "
                       + ("it has left its initial path" if s["relax_until"] == "decorrelated" else
                          "its first accepted trial") + f" or {s['relax_rounds']} rounds; counted, never pooled); then the curve point at sampling round "
                       "R pools every chain's states of rounds R//2+1..R (first half discarded)",
            "evaluations": "every trial frame (rejected ones too) plus the initial paths: a1 one high-temperature "
                           "search, a2 all M searches, b the geodesic sampling of the seeds' paths (+ solve energy "
                           "evaluations); training in the _with_training (full) and _amortised (training x geodesic "
                           f"paths used / {AMORTISE_PATHS}) columns only",
            "jsd": f"path_density_jsd (bits) of transition-segment frames, {setup.jsd}"}}
    if args.quick:
        results["notes"]["quick"] = ("smoke run: tiny M, rounds and geodesic solve against a reference of seconds; "
                                     "the numbers only show the machinery runs")
    frames = {}
    seed = int(args.seed)
    geo = None
    if "b" in s["arms"] or "c" in s["arms"]:
        print(f"[convergence] {setup.name}: geodesic ({s['geodesic_paths']} paths, model {s['model']['source']}, "
              f"centre noise {s['centre_noise']})", flush=True)
        geo = geodesic_ensemble(setup, s["geodesic_paths"], seed, bool(args.quick), model=setup.extra["model"],
                                model_info=s["model"], centre_noise=s["centre_noise"])
        results["geodesic"] = {k: geo[k] for k in ("per_path", "solve_energy_evals", "n_training", "solve", "model",
                                                   "model_info", "centre_noise")}
        if "b" in s["arms"]:  # bad seeds fail before any shooting
            from tps.baselines.seeded import seed_paths

            try:
                seed_paths(geo["paths"], setup.state_a, setup.state_b, max(s["chains"]))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
        if "c" in s["arms"]:
            row, frames["geodesic"] = geodesic_row(setup, geo, reference, floor)
            results["rows"].append(row)
            write_outputs(out, results, frames)
    for m in s["chains"]:
        for arm in ("a1", "a2", "b"):
            if arm not in s["arms"]:
                continue
            t0 = time.perf_counter()
            extra, n_geo_used = {}, 0
            if arm == "b":
                chains, offset, n_geo_used, index = seeded_chains(setup, geo, m)
                extra.update(seed_path_index=index, model=geo["model"], centre_noise=geo["centre_noise"])
            else:
                chains, offset = high_temperature_paths(setup, m, seed + 11 + m, shared=arm == "a1")
            extra["initial_wall_s"] = time.perf_counter() - t0
            print(f"[convergence] {setup.name} M={m} ({arm}) {ARMS[arm]}: initial paths {offset} evaluations", flush=True)
            row, frames[f"{ARMS[arm]}_M{m}"] = shooting_arm(setup, arm, chains, offset, reference, floor, s,
                                                            seed + 101 * m + ord(arm[-1]), geo=geo if arm == "b" else None,
                                                            n_geodesic_paths=n_geo_used, extra=extra)
            results["rows"].append(row)
            print(f"  rounds {row['n_rounds']}, acceptance {fmt(row['acceptance_rate'])}, final JSD "
                  f"{fmt(row['final_jsd'])} (floor {fmt(floor, 4)}), evals to 2x floor {row['evals_to_2x_floor']}",
                  flush=True)
            write_outputs(out, results, frames)
    write_outputs(out, results, frames)
    print((out / "table.md").read_text())
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'convergence.png'}, {out / 'paths.npz'}")
    return results
