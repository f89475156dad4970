"""The geodesic side of the convergence benchmark (``benchmarks/convergence.py``): the model, its geodesic ensemble, the seeds.

- :func:`load_geodesic_model`: the system's pretrained model or a ``tps train`` checkpoint
  (``--model``), checked for the system as ``tps run --model`` does (``DiffusionModel.load(path).freeze()``
  and ``system.check_model``), with its source and training evaluations;
- :func:`check_centre_noise`: the ``--centre-noise`` value (every system's sampler takes it: the 2-D
  annealed Langevin sampler and the OpenMM one of alanine dipeptide);
- :func:`geodesic_ensemble`: the spacetime geodesic and its annealed paths (:func:`tps.pipeline.run_method`);
- :func:`seeded_chains`: arm (b)'s seeds, one per geodesic path, and their cost.

Examples
--------
>>> check_centre_noise(None) is None, check_centre_noise(0.5)
(True, 0.5)
>>> check_centre_noise(-1)
Traceback (most recent call last):
...
ValueError: --centre-noise: expected a finite number >= 0, got -1
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Optional

def _oneline(exc) -> str:
    return " ".join(str(exc).split())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def training_evals(model) -> int:
    """Energy evaluations of the model's training data (``metadata["n_training_energy_evals"]``, or its
    ``tps train`` recipe's); 0 when it records none."""
    meta = getattr(model, "metadata", {}) or {}
    value = meta.get("n_training_energy_evals")
    if value is None:
        value = (meta.get("recipe") or {}).get("n_training_energy_evals", 0)
    return int(value or 0)


def load_geodesic_model(pipeline_name: str, path=None) -> tuple:
    """``(model, info)``: the pretrained model of ``pipeline_name`` (``path`` None) or the checkpoint at ``path``.

    ``info``: ``source`` (``"pretrained:NAME"`` or the path), ``path``, ``sha256`` (of a checkpoint;
    None for the pretrained model), ``n_training_energy_evals``. A checkpoint that is missing,
    unreadable or made for another system is a one-line ValueError naming ``--model``.
    """
    from tps.systems import load

    system = load(pipeline_name)
    if path is None:
        from tps import pretrained

        model = pretrained.load(system.pretrained)
        return model, {"source": f"pretrained:{system.pretrained}", "path": str(pretrained.path(system.pretrained)),
                       "sha256": None, "n_training_energy_evals": training_evals(model)}
    from tps.diffusion.checkpoint import DiffusionModel

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--model: {path}: no such file (expected a checkpoint written by 'tps train {pipeline_name}')")
    try:
        model = DiffusionModel.load(path).freeze()
    except Exception as exc:  # any unreadable file is the same user error
        raise ValueError(f"--model: {path} cannot be read as a tps checkpoint ({type(exc).__name__}: "
                         f"{_oneline(exc)[:200]})") from None
    try:
        system.check_model(model, source=f"--model {path}")
    except ValueError as exc:
        raise ValueError(f"--model: {_oneline(exc)}") from None
    return model, {"source": str(path), "path": str(path), "sha256": _sha256(path),
                   "n_training_energy_evals": training_evals(model)}


def check_centre_noise(value) -> Optional[float]:
    """``--centre-noise``: None, or a finite number >= 0 (ValueError naming ``--centre-noise`` otherwise)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"--centre-noise: expected a finite number >= 0, got {value!r}")
    return v


def geodesic_ensemble(setup, n_paths: int, seed: int, quick: bool, *, model=None, model_info=None,
                      centre_noise: Optional[float] = None) -> dict:
    """The model's spacetime geodesic and ``n_paths`` annealed paths (:func:`tps.pipeline.run_method`).

    ``model``: from :func:`load_geodesic_model` (default: the system's pretrained model);
    ``centre_noise``: the sampler protocol's ``centre_noise`` (None: the system's default). The
    returned ``centre_noise`` is the one the sampler recorded in the paths' info (None: none).
    """
    from tps.pipeline import run_method
    from tps.systems import load

    system = load(setup.pipeline_name)
    if model is None:
        model, model_info = load_geodesic_model(setup.pipeline_name)
    p = system.protocols(quick=quick)
    sampler = p.sampler.replace(n_paths=int(n_paths))
    if centre_noise is not None:
        sampler = sampler.replace(centre_noise=float(centre_noise))
    p = p.replace(sampler=sampler)
    if quick:
        p = p.replace(geodesic=p.geodesic.replace(coarse_iter=min(p.geodesic.coarse_iter, 10),
                                                  max_iter=min(p.geodesic.max_iter, 10)))
    res = run_method(system, "spacetime-geodesic", model=model, protocols=p, seed=seed)
    if centre_noise and res.paths.info.get("centre_noise") != float(centre_noise):
        raise RuntimeError(f"centre_noise: the {system.name} sampler did not apply centre_noise={centre_noise} "
                           f"(its paths record {res.paths.info.get('centre_noise')!r})")
    curve = res.curve
    solve_evals = int(curve.extra.get("n_selection_energy_evals", 0)) if curve is not None else 0
    info = dict(model_info or {})
    return {"paths": res.paths, "per_path": res.paths.n_energy_evals / res.paths.n_paths,
            "solve_energy_evals": solve_evals, "n_training": int(info.get("n_training_energy_evals", 0)),
            "solve": {"wall_s": res.timings.get("geodesic_s"),
                      "network_evals": None if curve is None else curve.provenance.get("n_evaluations"),
                      "energy_evals": solve_evals, "sampling_wall_s": res.timings.get("sampling_s"),
                      "iterations": {"coarse_iter": p.geodesic.coarse_iter, "max_iter": p.geodesic.max_iter}},
            "row": res.row, "model": info.get("source"), "model_info": info,
            "centre_noise": res.paths.info.get("centre_noise")}  # as the sampler recorded it


def seeded_chains(setup, geo, m: int) -> tuple:
    """M seeds from M different geodesic paths (:func:`tps.baselines.seeded.seed_paths`):
    ``(seeds, evaluations, geodesic paths used, seed path indices)``."""
    from tps.baselines.seeded import seed_paths

    segments, index = seed_paths(geo["paths"], setup.state_a, setup.state_b, m)
    used = max(index) + 1
    return segments, int(round(geo["solve_energy_evals"] + used * geo["per_path"])), used, list(map(int, index))
