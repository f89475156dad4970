"""Shared pieces of the benchmark programs: hardware description, result files, tables, figures, path-density
comparisons and the reference-ensemble files (:func:`write_reference`, :func:`load_reference`).

The runners import only ``tps`` and the ``benchmarks.common*`` modules, never each other; their
protocols are in :mod:`benchmarks.common_protocols`.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from tps.io import atomic_path, save_results, write_text
from tps.io.reference import load_reference_ensemble, save_reference_ensemble
from tps.metrics import path_density_jsd
from tps.systems.molecule_baselines import subset_paths  # noqa: F401 (re-exported: the benchmarks select paths with it)

RESULT_KEYS = ("method", "n_paths", "max_energy_mean", "max_energy_std", "minmax", "barrier_mean", "max_step",
               "target_hit_fraction", "n_energy_evals", "n_training_energy_evals", "wall_s", "geodesic_wall_s")


def hardware() -> str:
    """A one-line description of the machine the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = f", CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}){gpu}; torch {torch.__version__} with {torch.get_num_threads()} thread(s)"


@contextmanager
def timer():
    """``with timer() as t: ...; t()`` gives the elapsed seconds."""
    start = time.perf_counter()
    end = [None]
    yield lambda: (end[0] if end[0] is not None else time.perf_counter()) - start
    end[0] = time.perf_counter()


def fmt(v, digits=3):
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if abs(v) >= 1e5:
            return f"{v:.3g}"
        return f"{v:.{digits}f}"
    if isinstance(v, int) and abs(v) >= 10_000:
        return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k"
    return str(v)


def markdown_table(rows, keys=RESULT_KEYS) -> str:
    head = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n"
    body = "".join("| " + " | ".join(fmt(r.get(k, float("nan"))) for k in keys) + " |\n" for r in rows)
    return head + body


def write_results(out: Path, results: dict) -> None:
    """Write ``results.json`` and ``table.md`` atomically (called after every method, so an
    interrupted run keeps what it finished)."""
    save_results(results, out / "results.json", nonfinite="tokens")
    lines = [f"# {results['suite']}: {results['system']}", "",
             f"kT = {results['kT']}, lower bound = {results['lower_bound']}, hardware: {results['hardware']}", ""]
    lines.append(markdown_table(results["methods"]))
    for k, v in results.get("notes", {}).items():
        lines.append(f"- {k}: {v}")
    write_text(out / "table.md", "\n".join(lines) + "\n")


def save_paths_npz(out: Path, paths_by_method: dict, *, max_paths: int = 100) -> None:
    """``paths.npz``: for each method, frames of its first ``max_paths`` paths, float32 ``(n, n_frames, *event)``."""
    arrays = {m: p.frames[:max_paths].detach().cpu().numpy().astype(np.float32) for m, p in paths_by_method.items()}
    with atomic_path(out / "paths.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip("."))


def transition_frames(paths, state_a, state_b, select=None):
    """Frames of the transition segments, ``(n, 2)``: from each path's last frame in A before it first
    enters B, to that entry; padding (``info["lengths"]``) dropped; ``select`` (bool, ``(n_paths,)``)
    keeps a subset of paths. None if no kept path reaches B."""
    frames = paths.frames
    n_paths, n_frames = frames.shape[:2]
    lengths = paths.info.get("lengths")
    lengths = torch.full((n_paths,), n_frames) if lengths is None else torch.as_tensor(lengths)
    if select is not None:
        frames, lengths = frames[select], lengths[select]
    t = torch.arange(n_frames)[None]
    valid = t < lengths[:, None]
    in_b = state_b(frames) & valid
    reached = in_b.any(1)
    if not bool(reached.any()):
        return None
    first_b = torch.where(in_b, t, n_frames).min(1).values
    last_a = torch.where(state_a(frames) & (t < first_b[:, None]), t, 0).max(1).values
    keep = reached[:, None] & (t >= last_a[:, None]) & (t <= first_b[:, None])
    return frames[keep]


def assign_path_density_jsd(rows, paths_by_method, state_a, state_b, *, reference_method, **jsd_kwargs) -> None:
    """Set ``row["path_density_jsd"]`` for every result row (in place).

    Each row's transition-segment frames are compared with those of ``reference_method``'s
    ensemble; the reference row itself gets the JSD between its two halves of chains (the noise
    floor). ``jsd_kwargs`` go to :func:`tps.metrics.path_density_jsd` (bins, ranges, periods).
    """
    ref_paths = paths_by_method.get(reference_method)
    reference = transition_frames(ref_paths, state_a, state_b) if ref_paths is not None else None
    for row in rows:
        paths = paths_by_method.get(row["method"])
        value = float("nan")
        if row["method"] == reference_method and paths is not None:
            half = torch.as_tensor(paths.info["chain"]) < int(row["n_chains"]) // 2
            first, second = (transition_frames(paths, state_a, state_b, select=m) for m in (half, ~half))
            if first is not None and second is not None:
                value = path_density_jsd(first, second, **jsd_kwargs)
        elif reference is not None and paths is not None:
            frames = transition_frames(paths, state_a, state_b)
            if frames is not None:
                value = path_density_jsd(frames, reference, **jsd_kwargs)
        row["path_density_jsd"] = value


def apply_reference_ensemble(results, paths_by_method, state_a, state_b, reference: dict, *, cv=None,
                             **jsd_kwargs) -> None:
    """Measure every row's ``path_density_jsd`` against a stored reference ensemble (in place).

    ``reference``: :func:`load_reference` (frames are collective
    variables ``(n, 2)``). Each row's transition-segment frames (:func:`transition_frames`, mapped
    by ``cv``) are compared with them; the value measured against the in-run shooting ensemble,
    if any, is kept as ``path_density_jsd_in_run``. ``results["reference_ensemble"]`` records the
    file, its size, its split-half noise floor (chains of the two halves) and its description.
    """
    ref = reference["frames"]
    for row in results["methods"]:
        if "path_density_jsd" in row:
            row["path_density_jsd_in_run"] = row["path_density_jsd"]
        paths = paths_by_method.get(row["method"])
        value = float("nan")
        if paths is not None:
            frames = transition_frames(paths, state_a, state_b)
            if frames is not None:
                value = path_density_jsd(frames if cv is None else cv(frames), ref, **jsd_kwargs)
        row["path_density_jsd"] = value
    chain = reference["chain"]
    n_chains = int(chain.max()) + 1 if len(chain) else 0
    floor = float("nan")
    if n_chains >= 2:
        first = chain < n_chains // 2
        floor = path_density_jsd(ref[first], ref[~first], **jsd_kwargs)
    meta = reference["meta"]
    results["reference_ensemble"] = {
        "path": reference["path"], "n_frames": int(len(ref)), "n_chains": n_chains, "noise_floor_jsd": floor,
        "kept_paths": meta.get("counts", {}).get("kept_paths"), "acceptance_rate": meta.get("acceptance_rate"),
        "shooting_energy_evals": meta.get("counts", {}).get("evals"), "wall_s": meta.get("wall_s"),
        "cpu_s": meta.get("cpu_s"), "meta": meta}
    results["notes"]["path_density_jsd"] = (
        f"Jensen-Shannon divergence in bits of each row's transition-segment frames (last frame in A before first "
        f"entering B, to that entry) against the stored two-way-shooting reference ensemble {reference['path']} "
        f"({len(ref)} frames, {meta.get('counts', {}).get('kept_paths')} kept chain states of {n_chains} chains, "
        f"acceptance {meta.get('acceptance_rate')}); its split-half (by chain) noise floor is {floor:.4f}; "
        f"path_density_jsd_in_run: the same against this run's own shooting ensemble")


def use_reference_ensemble(results, paths_by_method, state_a, state_b, path, system: str, *, cv=None, check=None,
                           **jsd_kwargs) -> bool:
    """Load ``path`` (:func:`load_reference`) and apply it with
    :func:`apply_reference_ensemble`; ``check(meta)`` may raise ValueError when the reference was made
    with other settings. A reference that cannot be used (missing, empty, other system or settings)
    does not stop a finished run: it is reported in ``results["notes"]["reference_ensemble"]`` and on
    stderr, and the in-run shooting ensemble stays the reference. Returns whether it was used."""
    try:
        reference = load_reference(path, system)
        if check is not None:
            check(reference["meta"])
    except ValueError as exc:
        results["notes"]["reference_ensemble"] = (f"not used: {exc}; path_density_jsd is measured against this run's "
                                                  "own shooting ensemble")
        print(f"warning: {exc}; path_density_jsd stays against the in-run shooting ensemble", file=sys.stderr)
        return False
    apply_reference_ensemble(results, paths_by_method, state_a, state_b, reference, cv=cv, **jsd_kwargs)
    return True


def write_reference(path: Path, frames: list, chains: list, meta: dict, *, block_index: bool = False) -> None:
    """The npz read by :func:`load_reference` (:func:`tps.io.save_reference_ensemble`, atomic): ``frames`` are
    blocks ``(n_i, 2)`` of collective variables, ``chains`` the chain of each block; ``block_index``: also the
    block (kept path) of each frame (npz ``path``, loaded as ``"path_index"``)."""
    save_reference_ensemble(path, frames, chains, meta, block_index=block_index)


def same_description(a, b) -> bool:
    """Equality of JSON-like descriptions (a reference's ``meta`` against a run's): tuples and lists alike,
    numbers to 1e-9 relative.

    Examples
    --------
    >>> same_description({"r": [0.75, (1, 2)]}, {"r": (0.75 + 1e-12, [1, 2])}), same_description({"r": 1}, {"r": 2})
    (True, False)
    """
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_description(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_description(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def load_reference(path, system: str) -> dict:
    """Read a reference ensemble npz (:func:`tps.io.load_reference_ensemble`): ``{"frames": Tensor (n, 2),
    "chain": Tensor (n,), "meta": dict, "path": str}`` and, in files that store it, ``"path_index"``
    (Tensor (n,): the kept path of each frame).

    Raises ValueError (naming ``--reference``) when it is missing, empty or was made for another system.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"--reference: {path} does not exist (make it with `python -m benchmarks reference-ensemble "
                         f"--system {system} --out DIR`)")
    reference = load_reference_ensemble(path)
    meta = reference["meta"]
    if meta.get("system") != system:
        raise ValueError(f"--reference: {path} is a reference ensemble of {meta.get('system')!r}, not {system!r}")
    if len(reference["frames"]) == 0:
        raise ValueError(f"--reference: {path} holds no frames yet (its run has not kept any decorrelated path)")
    return reference
