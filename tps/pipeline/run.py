"""One method on one system: :func:`run_method` returns the paths, the metrics row, the curve and timings.

Every consumer (``tps run`` / ``tps sample``, the benchmark runners, notebook 02) goes through
here, so a CLI row and a benchmark row are computed by the same code. The system object
(:func:`tps.systems.load`) does the system-specific work: it checks the model, solves the
geodesic in its model coordinates, samples paths with its engine and summarises them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["RunResult", "run_method", "METHODS", "method_label", "solve_curve", "sample_curve", "linear_curve",
           "density_curve"]

#: Methods :func:`run_method` knows.
METHODS = ("spacetime-geodesic", "linear", "density-geodesic", "two-way-shooting", "unbiased-md")


@dataclass
class RunResult:
    """What one method gave on one system.

    Attributes
    ----------
    paths : tps.core.Paths
        Every path sampled (``n_paths`` of the sampler protocol; the metrics use all of them).
    row : dict
        Metrics row (:func:`tps.metrics.summarize` keys, JSON-ready: non-finite numbers as in
        ``results.json``).
    curve : tps.spacetime.curve.Curve or None
        The curve the paths were sampled along (None for the curve-free baselines).
    timings : dict
        Seconds: ``geodesic_s`` (0 when the curve was given), ``sampling_s``, ``metrics_s``.
    extra : dict
        What a later run can reuse: ``initial_path`` of two-way shooting, for ``run_method(...,
        initial_path=...)`` of the other shooting ensemble (the benchmarks do this).
    """

    paths: Any
    row: dict
    curve: Optional[Any] = None
    timings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def method_label(method: str, constraint: str = "none") -> str:
    """The ``method`` value of the metrics row.

    Examples
    --------
    >>> method_label("spacetime-geodesic", "low-variance"), method_label("linear")
    ('spacetime-geodesic-low-variance', 'linear')
    """
    if method == "spacetime-geodesic" and constraint not in (None, "none"):
        return f"{method}-{constraint}"
    return method


def _protocols(system, protocols):
    return system.protocols() if protocols is None else protocols


def solve_curve(system, model, protocols=None, *, constraint: str = "none", avoid=None, seed: int = 0,
                progress: bool = False):
    """The spacetime geodesic of ``system`` with ``model`` (:class:`~tps.spacetime.curve.Curve`).

    ``protocols.geodesic`` (a :class:`~tps.spacetime.options.GeodesicOptions`) with its ``seed``
    set to ``seed``; ``protocols.constraints`` and ``extras`` go to the system's solve.
    """
    from tps.spacetime.curve import Curve

    p = _protocols(system, protocols)
    options = p.geodesic.replace(seed=int(seed))
    curve = system.solve_geodesic(model, options, constraint=constraint, constraint_protocol=p.constraints,
                                  avoid=avoid, extras=dict(p.extras), progress=progress)
    if isinstance(curve, dict):  # a system that still returns the tps-curve/1 payload
        curve = Curve.from_dict(curve)
    return curve.replace(provenance={"method": method_label("spacetime-geodesic", constraint)})


def linear_curve(system, model, protocols=None):
    """Straight line between the model-coordinate endpoints at the protocol's constant logSNR
    (``geodesic.n_points`` points; the "linear interpolation" baseline of the benchmarks), built by
    ``system.linear_curve`` (2-D: in the network's dtype, as the benchmarks did)."""
    from tps.spacetime.curve import Curve

    p = _protocols(system, protocols)
    t0 = time.perf_counter()
    lam = p.geodesic.logsnr
    lam = float(lam[0] if isinstance(lam, (tuple, list)) else lam)
    x, logsnr = system.linear_curve(model, n_points=int(p.geodesic.n_points), logsnr=lam)
    return Curve(x.detach().cpu(), logsnr.detach().cpu(), model.scaling,
                 {"system": system.name, "method": "linear", "n_evaluations": 0,
                  "wall_s": time.perf_counter() - t0, "extra": {}})


def density_curve(system, model, protocols=None):
    """Density geodesic (Yu et al.; :func:`tps.spacetime.density_geodesic`) at the protocol's constant logSNR,
    as a curve in noisy model coordinates (restraint centres ``x / alpha`` run from start to target).

    Its numbers come from ``protocols.extras["density"]``: ``beta``, ``n_iter``, ``n_coarse`` and
    ``exact`` (True: the exact Boltzmann score ``-grad U / kT`` of the system's potential, path in
    physical coordinates, 2-D systems only; False: the model's learned score at that logSNR).
    ``geodesic.n_points`` knots.
    """
    import torch

    from tps.spacetime import density_geodesic, exact_boltzmann_score, learned_score
    from tps.spacetime.curve import Curve

    p = _protocols(system, protocols)
    d = dict(p.extras.get("density") or {})
    if "beta" not in d:
        raise ValueError("density-geodesic: protocols.extras['density'] needs at least 'beta' (and 'n_iter', "
                         "'n_coarse', 'exact'); e.g. the benchmark protocol's density_beta / density_iter")
    lam = p.geodesic.logsnr
    lam = float(lam[0] if isinstance(lam, (tuple, list)) else lam)
    n = int(p.geodesic.n_points)
    alpha = float(torch.sigmoid(torch.tensor(lam, dtype=torch.float64)).sqrt())
    kw = dict(beta=float(d["beta"]), n_knots=n, n_iter=int(d.get("n_iter", 200)), n_coarse=int(d.get("n_coarse", 9)))
    exact = bool(d.get("exact", False))
    if exact:
        if system.topology is not None:
            raise ValueError(f"density-geodesic with the exact score: not available for the molecule {system.name!r} "
                             "(its physical endpoints need the system's alignment); use exact=False")
        r = density_geodesic(exact_boltzmann_score(system.potential, system.kT), system.endpoints[system.start],
                             system.endpoints[system.target], **kw)
        x = model.to_model(r.x).double() * alpha
    else:
        if system.topology is None:  # 2-D: the float64 endpoints (model_endpoints has the network's dtype)
            z_a, z_b = (model.to_model(system.endpoints[k]).double() for k in (system.start, system.target))
        else:
            z_a, z_b = (z.detach().double() for z in system.model_endpoints(model))
        r = density_geodesic(learned_score(model.network, lam), alpha * z_a, alpha * z_b, **kw)
        x = r.x.detach().double()
    extra = {"density_beta": r.beta, "n_score_evals": int(r.n_score_evals), "density_exact_score": exact}
    return Curve(x.cpu(), torch.full((n,), lam, dtype=torch.float64), model.scaling,
                 {"system": system.name, "method": "density-geodesic", "n_evaluations": int(r.n_score_evals),
                  "wall_s": float(r.wall_s), "extra": extra})


def sample_curve(system, curve, protocols=None, *, seed: int = 0, executor=None, checkpoint=None,
                 progress: bool = False, generator=None):
    """Annealed-Langevin paths along ``curve``; returns ``(paths, wall_s)``.

    ``generator`` (a ``torch.Generator``, 2-D systems): the sampler draws its noise from it
    instead of a generator seeded with ``seed + 1`` (with an executor: the task seed is drawn
    from it), so several runs can share one stream.
    """
    p = _protocols(system, protocols)
    t0 = time.perf_counter()
    kw = {} if generator is None else {"generator": generator}
    paths = system.sample(curve, p.sampler, seed=int(seed), executor=executor, checkpoint=checkpoint,
                          progress=progress, **kw)
    return paths, time.perf_counter() - t0


def summarize(system, paths, *, method: str, curve=None, n_training_energy_evals: int = 0, wall_s=math.nan,
              geodesic_wall_s=math.nan) -> dict:
    """The system's metrics row, JSON-ready (see :func:`tps.pipeline.jsonable.jsonable`)."""
    from tps.pipeline.jsonable import jsonable

    row = system.summarize(paths, method=method, curve=curve, n_training_energy_evals=int(n_training_energy_evals),
                           wall_s=wall_s, geodesic_wall_s=geodesic_wall_s)
    return jsonable(row)


def run_method(system, method: str = "spacetime-geodesic", *, model=None, protocols=None, constraint: str = "none",
               avoid=None, curve=None, seed: int = 0, executor=None, checkpoint=None, progress: bool = False,
               n_training_energy_evals: Optional[int] = None, geodesic_wall_s: Optional[float] = None,
               generator=None, label: Optional[str] = None, initial_path=None) -> RunResult:
    """Run ``method`` on ``system`` and return the paths and their metrics row.

    Parameters
    ----------
    system : tps.systems.System
        A registered system (``tps.systems.load(name)``).
    method : str
        ``"spacetime-geodesic"`` (with ``constraint``), ``"linear"`` (straight line in model
        coordinates at constant logSNR), ``"density-geodesic"`` (numbers in
        ``protocols.extras["density"]``, see :func:`density_curve`), or an MD baseline
        (``"two-way-shooting"``, ``"unbiased-md"``): the system's ``run_baseline(method,
        protocols, model=, seed=, executor=, progress=[, initial_path=])`` returning ``(paths,
        row, curve[, extra])`` where it has one (molecules), else
        :func:`tps.pipeline.baselines.overdamped_baseline` (numbers in
        ``protocols.extras["baselines"]``).
    model : tps.diffusion.DiffusionModel, optional
        Default: the system's pretrained model. Checked with ``system.check_model``.
    protocols : tps.systems.protocols.Protocols, optional
        Default: ``system.protocols()``.
    constraint : {"none", "low-variance", "region-avoiding"}
    avoid : object, optional
        What the region-avoiding geodesic keeps away from (the system's form: a point for the
        2-D systems, the validated settings for a molecule).
    curve : tps.spacetime.curve.Curve, optional
        Sample along this curve instead of solving one (``geodesic_s`` is then 0; the row's
        ``geodesic_wall_s`` is the curve's recorded solve time and its ``wall_s`` the sampling
        time, unless ``geodesic_wall_s`` is given: then both count it, as for a resumed run).
    seed : int
        Geodesic seed; the sampler uses ``seed + 1`` (2-D) or ``seed`` (OpenMM) as before.
    executor, checkpoint : optional
        :mod:`tps.parallel` executor (None: in-process, the historical random stream) and task
        checkpoint directory of the sampler.
    progress : bool
    n_training_energy_evals : int, optional
        Counted in the row (default: the model's metadata).
    generator : torch.Generator, optional
        Noise source of the annealed-Langevin sampler (2-D systems; default: a generator seeded
        with ``seed + 1``). Runs given the same generator continue one random stream: the
        benchmarks' rows share one this way.
    label : str, optional
        The row's ``method`` (default :func:`method_label`), e.g. ``"linear-interpolation"`` or
        ``"mep-calibration"`` for a curve given by the caller. Not for the baselines, whose
        label says which ensemble ran.
    initial_path : optional
        Two-way shooting: ``RunResult.extra["initial_path"]`` of an earlier shooting run with the
        same protocols and seed, reused instead of searched again (its evaluations and seconds
        still count in the row).

    Returns
    -------
    RunResult

    Examples
    --------
    Rows sharing one generator continue its stream, exactly as one sampler call after another:

    >>> import torch
    >>> from tps import pretrained
    >>> from tps.systems import load
    >>> system, model = load("muller-brown"), pretrained.load("muller-brown")
    >>> p = system.protocols()
    >>> p = p.replace(sampler=p.sampler.replace(n_paths=2), geodesic=p.geodesic.replace(n_points=8))
    >>> g = torch.Generator().manual_seed(1)
    >>> r = run_method(system, "linear", model=model, protocols=p, generator=g, label="linear-interpolation")
    >>> r.row["method"], r.paths.frames.shape
    ('linear-interpolation', torch.Size([2, 9, 2]))
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    p = _protocols(system, protocols)
    timings = {}
    if method in ("two-way-shooting", "unbiased-md"):  # curve-free baselines
        t0 = time.perf_counter()
        runner = getattr(system, "run_baseline", None)
        extra = {}
        if runner is not None:  # (paths, row, curve) or (paths, row, curve, extra)
            kw = {} if initial_path is None else {"initial_path": initial_path}
            paths, row, curve, *rest = runner(method, p, model=model, seed=seed, executor=executor, progress=progress,
                                              **kw)
            extra = dict(rest[0]) if rest else {}
        else:
            from tps.pipeline.baselines import overdamped_baseline

            paths, row, extra = overdamped_baseline(system, method, dict(p.extras.get("baselines") or {}), seed=seed,
                                                    executor=executor, initial_path=initial_path)
            curve = None
        timings["sampling_s"] = time.perf_counter() - t0
        from tps.pipeline.jsonable import jsonable

        return RunResult(paths, jsonable(row), curve, timings, extra)
    if model is None and curve is None:
        from tps import pretrained

        if getattr(system, "pretrained", None) is None:
            raise ValueError(f"model: system {system.name!r} has no pretrained model; pass model=")
        model = pretrained.load(system.pretrained)
    if model is not None:
        system.check_model(model)
    if curve is not None:  # sampled along a given curve: its solve is not part of this run's wall time
        timings["geodesic_s"] = 0.0
        gwall = float(curve.wall_s) if geodesic_wall_s is None else float(geodesic_wall_s)
        counted = 0.0 if geodesic_wall_s is None else float(geodesic_wall_s)
    else:
        t0 = time.perf_counter()
        if method == "linear":
            curve = linear_curve(system, model, p)
        elif method == "density-geodesic":
            curve = density_curve(system, model, p)
        else:
            curve = solve_curve(system, model, p, constraint=constraint, avoid=avoid, seed=seed, progress=progress)
        timings["geodesic_s"] = curve.wall_s if math.isfinite(curve.wall_s) else time.perf_counter() - t0
        gwall = counted = timings["geodesic_s"]
    paths, timings["sampling_s"] = sample_curve(system, curve, p, seed=seed, executor=executor, checkpoint=checkpoint,
                                                progress=progress, generator=generator)
    if n_training_energy_evals is None:
        n_training_energy_evals = 0 if model is None else int(model.metadata.get("n_training_energy_evals", 0))
    t0 = time.perf_counter()
    row = summarize(system, paths, method=label or method_label(method, constraint), curve=curve,
                    n_training_energy_evals=n_training_energy_evals, wall_s=counted + timings["sampling_s"],
                    geodesic_wall_s=gwall)
    extra = curve.extra
    if method == "density-geodesic" and "n_score_evals" in extra:  # as the benchmarks' density rows
        row["density_beta"] = extra.get("density_beta")
        row["n_score_evals"] = extra["n_score_evals"]
        if extra.get("density_exact_score"):  # the solver's force evaluations are energy evaluations
            row["n_energy_evals"] = int(row["n_energy_evals"]) + int(extra["n_score_evals"])
    timings["metrics_s"] = time.perf_counter() - t0
    return RunResult(paths, row, curve, timings)
