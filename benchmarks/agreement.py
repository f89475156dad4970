"""Does the refined ensemble of ``tps run --refine shooting`` agree with a reference ensemble (issue 12)?

``python -m benchmarks agreement --system muller-brown|aldp-2d --reference REF.npz --run RUN_DIR
[--out DIR] [--n-boot N] [--seed N]``

``RUN_DIR`` is the directory of ``tps run SYSTEM --refine shooting --out RUN_DIR``: its refined
ensemble (``refined/``, the pooled chain states after the burn-in, ``info["chain"]`` per path) is
compared with the reference ensemble ``REF.npz`` of ``python -m benchmarks reference-ensemble``
(long two-way shooting), and so is, for comparison, the geodesic ensemble of the same directory.
Three statistics, each as median and 5-95 % quantiles with bootstrap standard errors (``--n-boot``
resamples of whole chains for the refined and the reference ensembles, whole paths for the geodesic
one):

- ``path_length``: frames of each path's A -> B transition segment (last frame in A before its
  first entry into B, to that entry; ``system.transition_states()``) on the reference's footing:
  the reference keeps every ``frame_stride``-th frame of a segment (``config.frame_stride`` of its
  meta, 10 for aldp-2d), so a segment of ``L`` frames counts ``ceil(L / stride)``. Only defined at
  the reference's time step: a refined run with another ``dt`` is refused. The geodesic ensemble's
  frames are annealing steps, not dynamics time, and get no length;
- ``crossing``: per path, the crossing coordinate of :meth:`tps.systems.System.crossing_coordinate`
  (aldp-2d: psi at the segment's first frame with ``|phi| < 0.3``; Muller-Brown: the signed offset
  along the dividing line through the saddle S1 of the segment's first frame on B's side), read
  from the same thinning of the segments as the reference's (every ``stride``-th frame from the
  first); paths whose thinned segment never enters the region are left out (their fraction is
  reported);
- ``crossing_band``: the same coordinate for every thinned transition-segment frame in the
  dividing slab (aldp-2d: psi of the frames with ``|phi| < 0.3``; Muller-Brown: the frames within
  0.05 of the dividing line, as ``benchmarks fidelity``).

Rows ``refined`` (every chain state after the burn-in, the ensemble ``tps run`` reports) and
``refined_decorrelated`` (a chain's states only from its first path sharing no frame with the
chain's start on, the rule of the reference run; chains that never got there are left out).

Verdict per quantity: agree within noise when ``|difference| <= 2 x`` the combined standard error
``sqrt(se_a^2 + se_b^2)``; a statistic agrees when its median and both quantiles do.

The reference's per-path grouping comes from its npz ``path`` array or, in files written before it
existed, from the checkpoint beside it (``reference_<system>.ckpt.pt``, one block of frames per
kept path); the output says which. Bad input -- a missing file, a reference of another system,
other states or temperature (:func:`benchmarks.common_convergence.check_reference`), a run
directory without a refined ensemble, another time step -- is one line on stderr, exit status 2,
and nothing is written. ``DIR/results.json`` and ``DIR/table.md`` (default ``DIR = RUN_DIR/agreement``)
are written atomically and the table is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import hardware, load_reference
from tps.io import save_results, write_text

#: ``--system`` -> (short name of the reference files, tps.systems name).
SYSTEMS = {"muller-brown": ("muller-brown", "muller-brown"), "aldp-2d": ("aldp-2d", "alanine-dipeptide-phipsi"),
           "alanine-dipeptide-phipsi": ("aldp-2d", "alanine-dipeptide-phipsi")}
#: Half-width of the dividing slab of ``crossing_band`` (as benchmarks fidelity).
SLAB = {"muller-brown": 0.05, "aldp-2d": 0.3}
STATISTICS = ("path_length", "crossing", "crossing_band")
#: Rows of the table: ``refined_decorrelated`` keeps a chain's states only from its first path that shares
#: no frame with the chain's start on (the reference's rule), ``refined`` every state after the burn-in.
ENSEMBLES = ("reference", "refined", "refined_decorrelated", "geodesic")
QUANTITIES = ("median", "q05", "q95")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--system", required=True, choices=tuple(SYSTEMS))
    p.add_argument("--reference", required=True, type=Path,
                   help="reference ensemble npz (python -m benchmarks reference-ensemble)")
    p.add_argument("--run", required=True, type=Path, help="directory of `tps run SYSTEM --refine shooting --out DIR`")
    p.add_argument("--out", type=Path, help="output directory (default RUN/agreement)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")


# ------------------------------------------------------------------ geometry of the crossing
class Crossing:
    """The dividing region of ``system.crossing_coordinate`` and its slab, on frames ``(n, 2)``.

    ``region(f)``: the frames past the dividing surface (aldp: ``|phi| < 0.3``; 2-D: on B's side of
    the line through the highest saddle, normal to its unstable mode); ``slab(f)``: the frames within
    ``half_width`` of it; ``value(f)``: the crossing coordinate (psi, or the offset along the line).

    Examples
    --------
    >>> from tps.systems import load
    >>> c = Crossing(load("alanine-dipeptide-phipsi"), 0.3)
    >>> f = torch.tensor([[0.1, -0.5 + 2 * math.pi], [1.0, 0.0]], dtype=torch.float64)
    >>> c.region(f).tolist(), [round(v, 6) for v in c.value(f).tolist()]
    ([True, False], [-0.5, 0.0])
    >>> mb = Crossing(load("muller-brown"), 0.05)
    >>> on_line = mb.point + 0.2 * mb.along
    >>> mb.slab(on_line[None]).tolist(), round(float(mb.value(on_line[None])[0]), 6)
    ([True], 0.2)
    """

    def __init__(self, system, half_width: float):
        self.half_width = float(half_width)
        self.periodic = system.periods is not None
        if self.periodic:
            return
        self.point, self.normal = system.dividing_line()  # the line of system.crossing_coordinate
        self.along = torch.stack([-self.normal[1], self.normal[0]])

    def _wrap(self, f):
        return torch.remainder(torch.as_tensor(f, dtype=torch.float64) + math.pi, 2 * math.pi) - math.pi

    def _offset(self, f):
        return torch.as_tensor(f, dtype=torch.float64) - self.point

    def region(self, f) -> torch.Tensor:
        if self.periodic:
            return self._wrap(f)[:, 0].abs() < 0.3
        return self._offset(f) @ self.normal >= 0

    def slab(self, f) -> torch.Tensor:
        if self.periodic:
            return self._wrap(f)[:, 0].abs() < self.half_width
        return (self._offset(f) @ self.normal).abs() < self.half_width

    def value(self, f) -> torch.Tensor:
        return self._wrap(f)[:, 1] if self.periodic else self._offset(f) @ self.along


# ------------------------------------------------------------------ ensembles as flat frames
def segments_flat(paths, state_a, state_b, stride: int) -> tuple:
    """Each path's A -> B transition segment, thinned to every ``stride``-th frame from its first.

    Returns
    -------
    frames : Tensor ``(n, *event)`` float64
        The thinned segments, concatenated.
    path : int64 ndarray ``(n,)``
        Segment (0, 1, ...) of each frame.
    source : int64 ndarray ``(n_segments,)``
        Index in ``paths`` of each segment (paths without an A -> B transition give none).

    Examples
    --------
    >>> from tps.states import Ball
    >>> a, b = Ball(torch.tensor([0.0]), 0.5), Ball(torch.tensor([3.0]), 0.5)
    >>> x = torch.tensor([[0.0, 0.3, 1.0, 1.5, 2.0, 2.5, 3.0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2]])[..., None]
    >>> f, path, source = segments_flat(x, a, b, 2)   # segment 0.3 .. 3.0 (6 frames) -> 3 frames
    >>> f.flatten().tolist(), path.tolist(), source.tolist()
    ([0.3, 1.5, 2.5], [0, 0, 0], [0])
    """
    from tps.baselines.seeded import frames_and_lengths, transition_bounds

    frames, lengths = frames_and_lengths(paths)
    start, stop, ok = transition_bounds(state_a(frames), state_b(frames), lengths)
    source = torch.nonzero(ok).flatten().numpy()
    segs = [frames[i, int(start[i]):int(stop[i]) + 1:stride] for i in source]
    if not segs:
        return frames[:0, 0], np.zeros(0, np.int64), source
    path = np.repeat(np.arange(len(segs)), [len(s) for s in segs])
    return torch.cat(segs), path, source


def per_path(frames, path: np.ndarray, crossing: Crossing) -> dict:
    """Per-path length (frames) and crossing coordinate (NaN: never in the region), and the slab frames."""
    n_paths = int(path.max()) + 1 if len(path) else 0
    length = np.bincount(path, minlength=n_paths).astype(np.float64)
    region = crossing.region(frames).numpy()
    value = crossing.value(frames).numpy()
    hits = np.flatnonzero(region)
    first_path, first = np.unique(path[hits], return_index=True)  # hits ascend: the first hit of each path
    cross = np.full(n_paths, np.nan)
    cross[first_path] = value[hits[first]]
    slab = crossing.slab(frames).numpy()
    return {"length": length, "crossing": cross, "band": value[slab], "band_path": path[slab]}


# ------------------------------------------------------------------ statistics
def quantile_summary(values, groups, n_boot: int, seed: int = 0) -> dict:
    """Median and 5-95 % quantiles of ``values`` with bootstrap standard errors over whole ``groups``.

    Examples
    --------
    >>> v = np.linspace(0.0, 1.0, 101)
    >>> s = quantile_summary(v, np.arange(101) // 10, n_boot=50)
    >>> round(s["median"], 2), round(s["q05"], 2), round(s["q95"], 2), s["n_groups"], s["median_se"] > 0
    (0.5, 0.05, 0.95, 11, True)
    >>> quantile_summary(v[:3], np.zeros(3), n_boot=50)["median"] is None   # too few values
    True
    """
    values, groups = np.asarray(values, dtype=np.float64), np.asarray(groups)
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    out = {"n": int(len(values)), "n_groups": int(len(np.unique(groups)))}
    if len(values) < 10 or out["n_groups"] < 2:
        return {**out, **{k: None for k in QUANTITIES}, **{f"{k}_se": None for k in QUANTITIES}}
    order = np.argsort(groups, kind="stable")
    values, groups = values[order], groups[order]
    ids, starts = np.unique(groups, return_index=True)
    bounds = np.append(starts, len(values))
    est = np.quantile(values, [0.5, 0.05, 0.95])
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, 3))
    for b in range(n_boot):
        pick = rng.integers(0, len(ids), len(ids))
        boots[b] = np.quantile(np.concatenate([values[bounds[i]:bounds[i + 1]] for i in pick]), [0.5, 0.05, 0.95])
    se = boots.std(axis=0, ddof=1) if n_boot > 1 else np.full(3, np.nan)
    return {**out, **{k: float(v) for k, v in zip(QUANTITIES, est)},
            **{f"{k}_se": float(v) for k, v in zip(QUANTITIES, se)}}


def verdict(a: dict, ref: dict) -> dict:
    """Per quantity: difference ``a - ref``, combined standard error and ``agree`` (``|diff| <= 2 se``).

    Examples
    --------
    >>> a = {"median": 1.0, "median_se": 0.1, "q05": 0.0, "q05_se": 0.1, "q95": 2.0, "q95_se": 0.1}
    >>> v = verdict(a, dict(a, median=1.5))
    >>> v["median"]["agree"], v["q05"]["agree"], v["agree"]
    (False, True, False)
    """
    out, ok = {}, True
    for k in QUANTITIES:
        x, y, sx, sy = a.get(k), ref.get(k), a.get(f"{k}_se"), ref.get(f"{k}_se")
        if None in (x, y, sx, sy):
            out[k] = {"diff": None, "se": None, "agree": None}
            ok = None if ok is not False else ok
            continue
        se = math.hypot(sx, sy)
        agree = bool(abs(x - y) <= 2 * se)
        out[k] = {"diff": x - y, "se": se, "agree": agree}
        ok = ok and agree if ok is not None else (None if agree else False)
    out["agree"] = ok
    return out


def summarize(stats: dict, path_group: np.ndarray, n_boot: int, seed: int, *, lengths: bool = True) -> dict:
    """The three statistics of one ensemble (:func:`per_path` output; ``path_group``: bootstrap group per path)."""
    out = {"n_paths": int(len(stats["length"])), "n_groups": int(len(np.unique(path_group))),
           "crossing_missing_fraction": float(np.mean(~np.isfinite(stats["crossing"]))) if len(stats["crossing"])
           else None}
    out["path_length"] = quantile_summary(stats["length"], path_group, n_boot, seed) if lengths else None
    out["crossing"] = quantile_summary(stats["crossing"], path_group, n_boot, seed + 1)
    out["crossing_band"] = quantile_summary(stats["band"], path_group[stats["band_path"]], n_boot, seed + 2)
    return out


# ------------------------------------------------------------------ inputs
def load_reference_ensemble(path: Path, short: str, *, run_seed: int) -> dict:
    """The reference as flat frames with per-path grouping; ValueError naming ``--reference`` on bad input."""
    from benchmarks.common_convergence import check_reference, make_setup

    ref = load_reference(path, short)
    meta = ref["meta"]
    check_reference(meta, make_setup(short), seed=run_seed, path=path)
    stride = (meta.get("config") or {}).get("frame_stride")
    if not isinstance(stride, int) or stride < 1 or meta.get("dt") is None:
        raise ValueError(f"--reference: {path} does not record its dt and config.frame_stride (remake it with "
                         "`python -m benchmarks reference-ensemble`)")
    chain = ref["chain"].numpy()
    if "path_index" in ref:
        index, source = ref["path_index"].numpy(), "npz 'path' array"
    else:
        ckpt = path.with_name(path.name[:-len(path.suffix)] + ".ckpt.pt") if path.suffix else path
        if not ckpt.exists():
            raise ValueError(f"--reference: {path} has no 'path' array (written before it existed) and its "
                             f"checkpoint {ckpt.name} is not beside it; remake the reference or copy the checkpoint")
        state = torch.load(ckpt, weights_only=False)
        sizes = [len(f) for f in state["frames"]]
        frame_chain = np.repeat(np.asarray(state["frame_chain"], np.int64), sizes)
        if sum(sizes) != len(chain) or not np.array_equal(frame_chain, chain):
            raise ValueError(f"--reference: the checkpoint {ckpt.name} does not match {path.name} (another segment "
                             "of the run?); rerun the reference to rewrite both")
        index, source = np.repeat(np.arange(len(sizes)), sizes), f"checkpoint {ckpt.name}"
    if len(index) != len(chain) or np.any(np.diff(index) < 0):
        raise ValueError(f"--reference: {path}: its 'path' array does not number the frames' paths in order")
    _, index = np.unique(index, return_inverse=True)
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
    return {"frames": ref["frames"], "path": index, "path_chain": chain[starts], "meta": meta, "stride": stride,
            "dt": float(meta["dt"]), "per_path_source": source, "file": str(path)}


def load_run(run_dir: Path, system) -> dict:
    """Refined and geodesic ensembles and settings of a ``tps run --refine shooting`` directory (ValueError
    naming ``--run``)."""
    results_file = run_dir / "results.json"
    if not results_file.is_file():
        raise ValueError(f"--run: {run_dir} has no results.json (expected the --out directory of `tps run "
                         f"{system.name} --refine shooting`)")
    results = json.loads(results_file.read_text())
    if results.get("system") != system.name:
        raise ValueError(f"--run: {run_dir} is a run of {results.get('system')!r}, not {system.name!r}")
    refined_dir = run_dir / "refined"
    if not isinstance(results.get("refined"), dict) or not system.paths_file(refined_dir).exists():
        raise ValueError(f"--run: {run_dir} holds no refined ensemble (rerun `tps run {system.name} --refine shooting "
                         f"--out {run_dir}`)")
    settings = results["refined"].get("settings", {})
    refined = system.load_paths(refined_dir)
    if "chain" not in refined.info:
        raise ValueError(f"--run: {system.paths_file(refined_dir)} does not record the chain of each path")
    geodesic = system.load_paths(run_dir) if system.paths_file(run_dir).exists() else None
    dt = settings.get("dt", refined.info.get("dt"))
    return {"refined": refined, "geodesic": geodesic, "dt": None if dt is None else float(dt),
            "steps_per_frame": int(settings.get("steps_per_frame", 1)), "seed": int(results.get("seed") or 0),
            "settings": settings, "dir": str(run_dir)}


def footing(run: dict, reference: dict) -> int:
    """The thinning that puts the refined segments on the reference's footing (ValueError when the time steps
    differ: lengths in frames are comparable only at equal dt).

    Examples
    --------
    >>> footing({"dt": 1e-4, "steps_per_frame": 1}, {"dt": 1e-4, "stride": 10, "file": "r.npz"})
    10
    >>> footing({"dt": 2e-4, "steps_per_frame": 1}, {"dt": 1e-4, "stride": 10, "file": "r.npz"})
    Traceback (most recent call last):
    ...
    ValueError: --run: the refined dynamics use dt = 0.0002, the reference r.npz dt = 0.0001; path lengths in frames are only comparable at equal dt (pass a reference made at the run's dt)
    """
    dt, spf, stride = run["dt"], run["steps_per_frame"], reference["stride"]
    if dt is None or not math.isclose(dt, reference["dt"], rel_tol=1e-6):
        raise ValueError(f"--run: the refined dynamics use dt = {dt}, the reference {reference['file']} dt = "
                         f"{reference['dt']:.6g}; path lengths in frames are only comparable at equal dt (pass a "
                         "reference made at the run's dt)")
    if stride % spf:
        raise ValueError(f"--run: the refined frames are {spf} steps apart, which does not divide the reference's "
                         f"frame stride {stride}")
    return stride // spf


def after_decorrelation(refined):
    """Bool ``(n_paths,)``: the chain states from their chain's first decorrelated round on (None without the record).

    The reference ensemble keeps a chain's paths only from its first path sharing no frame with the
    chain's start (:mod:`benchmarks.reference_ensemble`); ``info["first_decorrelated_round"]`` of the
    refined ensemble is that round for each chain (None: never), counted from the chain's relaxed start.

    Examples
    --------
    >>> from tps.core import Paths
    >>> p = Paths(torch.zeros(4, 3, 2), torch.zeros(4, 3), 0, 1.0, {"chain": torch.tensor([0, 1, 0, 1]),
    ...           "round": torch.tensor([2, 2, 3, 3]), "first_decorrelated_round": [3, None]})
    >>> after_decorrelation(p).tolist()
    [False, False, True, False]
    """
    first, rnd = refined.info.get("first_decorrelated_round"), refined.info.get("round")
    if first is None or rnd is None:
        return None
    chain, rnd = np.asarray(refined.info["chain"]).astype(np.int64), np.asarray(rnd)
    start = np.array([np.iinfo(np.int64).max if f is None else int(f) for f in first])
    return rnd >= start[chain]


# ------------------------------------------------------------------ run
def compare(system, short: str, reference: dict, run: dict, *, n_boot: int, seed: int) -> dict:
    """Every statistic of the reference, the refined and the geodesic ensemble, with the verdicts."""
    stride = footing(run, reference)
    crossing = Crossing(system, SLAB[short])
    a, b = system.transition_states()
    ref_stats = per_path(reference["frames"], reference["path"], crossing)
    out = {"reference": summarize(ref_stats, reference["path_chain"], n_boot, seed)}
    frames, path, source = segments_flat(run["refined"], a, b, stride)
    chain = np.asarray(run["refined"].info["chain"]).astype(np.int64)[source]
    out["refined"] = summarize(per_path(frames, path, crossing), chain, n_boot, seed)
    out["refined"]["n_paths_without_transition"] = int(run["refined"].n_paths - len(source))
    keep = after_decorrelation(run["refined"])
    if keep is not None and keep[source].any():
        sub = np.flatnonzero(np.isin(path, np.flatnonzero(keep[source])))
        _, sub_path = np.unique(path[sub], return_inverse=True)
        out["refined_decorrelated"] = summarize(per_path(frames[torch.as_tensor(sub)], sub_path, crossing),
                                                chain[keep[source]], n_boot, seed)
    if run["geodesic"] is not None:
        frames, path, source = segments_flat(run["geodesic"], a, b, 1)
        if len(source):
            out["geodesic"] = summarize(per_path(frames, path, crossing), np.arange(len(source)), n_boot, seed,
                                        lengths=False)
            out["geodesic"]["n_groups_kind"] = "paths"
    out["verdicts"] = {name: {stat: verdict(out[name][stat], out["reference"][stat])
                              for stat in STATISTICS if out[name].get(stat) is not None}
                       for name in ENSEMBLES[1:] if name in out}
    out["thinning"] = stride
    return out


def _cell(s: dict, k: str) -> str:
    return "n/a" if s is None or s.get(k) is None else f"{s[k]:.3g} ± {s[f'{k}_se']:.2g}"


def _verdict_cell(v: dict) -> str:
    if v is None:
        return ""
    if v["agree"] is None:
        return "n/a"
    if v["agree"]:
        return "agree"
    off = [f"{k} {v[k]['diff']:+.3g} ({abs(v[k]['diff']) / v[k]['se']:.1f} se)" for k in QUANTITIES
           if v[k]["agree"] is False]
    return "DIFFER: " + ", ".join(off)


def table(results: dict) -> str:
    """Markdown table of :func:`compare`'s statistics (one row per statistic and ensemble)."""
    c = results["comparison"]
    lines = ["| statistic | ensemble | paths (bootstrap groups) | median | 5 % | 95 % | vs reference |",
             "|---|---|---|---|---|---|---|"]
    for stat in STATISTICS:
        for name in ENSEMBLES:
            e = c.get(name)
            if e is None or e.get(stat) is None:
                continue
            s = e[stat]
            groups = "paths" if name == "geodesic" else "chains"
            lines.append(f"| {stat} | {name} | {s['n']} ({s['n_groups']} {groups}) | {_cell(s, 'median')} | "
                         f"{_cell(s, 'q05')} | {_cell(s, 'q95')} | "
                         f"{_verdict_cell(c['verdicts'].get(name, {}).get(stat))} |")
    r, missing = results["reference"], {k: c[k]["crossing_missing_fraction"] for k in ("refined", "reference")}
    notes = [f"reference {r['file']} (seed {r['seed']}, {r['n_frames']} frames, per-path grouping from "
             f"{r['per_path_source']}); run {results['run']['dir']} (dt {results['run']['dt']:.6g}); segments "
             f"thinned to every {c['thinning']}-th frame as the reference's; path_length in thinned frames; "
             "errors: bootstrap standard errors; agree: |diff| <= 2 x combined se",
             f"crossing: paths without a thinned frame in the region: refined {missing['refined']:.3f}, "
             f"reference {missing['reference']:.3f}"]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def prepare(args) -> tuple:
    """Validate every input before anything is written: ``(system, short, reference, run, out)``."""
    from tps.systems import load

    short, name = SYSTEMS[args.system]
    if args.n_boot < 2:
        raise ValueError(f"--n-boot: expected at least 2 bootstrap resamples, got {args.n_boot}")
    system = load(name)
    run_dir = Path(args.run)
    run = load_run(run_dir, system)
    reference = load_reference_ensemble(Path(args.reference), short, run_seed=run["seed"])
    footing(run, reference)
    out = Path(args.out) if args.out is not None else run_dir / "agreement"
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a directory")
    return system, short, reference, run, out


def run(args) -> dict:
    torch.set_num_threads(1)
    try:
        system, short, reference, run_, out = prepare(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    comparison = compare(system, short, reference, run_, n_boot=args.n_boot, seed=args.seed)
    meta = reference["meta"]
    results = {
        "system": short, "n_boot": args.n_boot, "bootstrap_seed": args.seed,
        "reference": {"file": reference["file"], "seed": meta.get("seed"), "n_frames": int(len(reference["frames"])),
                      "n_paths": int(len(reference["path_chain"])), "frame_stride": reference["stride"],
                      "dt": reference["dt"], "per_path_source": reference["per_path_source"],
                      "states": meta.get("states")},
        "run": {"dir": run_["dir"], "dt": run_["dt"], "steps_per_frame": run_["steps_per_frame"], "seed": run_["seed"],
                "refine_settings": run_["settings"]},
        "comparison": comparison, "hardware": hardware(),
    }
    text = table(results)
    out.mkdir(parents=True, exist_ok=True)
    save_results(results, out / "results.json", nonfinite="tokens")
    write_text(out / "table.md", text)
    print(text)
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}")
    return results
