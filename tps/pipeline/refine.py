"""Refine a geodesic ensemble by shooting: :func:`refine_by_shooting` (``tps run --refine shooting``).

The geodesic paths are cut to their A -> B transitions (``system.transition_states()``: B the
target state, A the union of the others) and seed ``n_chains`` independent flexible-length two-way-shooting chains, one per path
(:func:`tps.baselines.seeded_shooting`) on the system's dynamics: overdamped Langevin on the
potential (2-D systems, ``protocol.dt``) or the OpenMM Langevin engine (molecules). The pooled
chain states after the burn-in are the refined ensemble; its metrics row (method
``"geodesic-seeded-shooting"``) carries the system's usual metrics plus the shooting statistics
and the split-chain diagnostics of :mod:`tps.metrics.convergence`.

Cost (``n_energy_evals`` of the row): the geodesic sampler's evaluations of the seed paths
(``n_chains`` paths' share of the geodesic ensemble's count) plus every shooting evaluation;
``n_training_energy_evals`` is the model's, as in the geodesic row.
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from tps.pipeline.errors import input_error
from tps.pipeline.run import RunResult

__all__ = ["RefineResult", "refine_by_shooting", "refine_key", "density_grid", "REFINED_METHOD"]

#: The ``method`` of the refined ensemble's metrics row.
REFINED_METHOD = "geodesic-seeded-shooting"


@dataclass
class RefineResult(RunResult):
    """:class:`~tps.pipeline.run.RunResult` of the refined ensemble, with the shooting record.

    Attributes
    ----------
    shooting : ShootingResult or None
        The raw result of :func:`~tps.baselines.seeded_shooting` (None when resumed from disk).
    diagnostics : dict
        Split-chain JSDs (:func:`tps.metrics.split_chain_jsd`) and crossing / length summaries.
    """

    shooting: Any = None
    diagnostics: dict = field(default_factory=dict)


def density_grid(system) -> dict:
    """``bins``, ``ranges``, ``periods``, ``cv`` of the system's frame-density grid (path_density_jsd).

    (phi, psi) systems: 60 x 60 periodic bins over ``[-pi, pi)^2`` (molecules: 36 x 36 on their
    ``cv``, as ``tps compare-ops``); other 2-D systems: 60 x 60 bins over the ``BOX`` of the
    system's module (Muller-Brown's figure box), else over the endpoints' bounding box widened by
    half its span on each side.

    Examples
    --------
    >>> from tps.systems import load
    >>> density_grid(load("muller-brown"))["ranges"]
    ((-1.5, 1.2), (-0.5, 2.0))
    """
    two_pi = 2 * math.pi
    if system.periods is not None:
        return {"bins": 60, "ranges": ((-math.pi, math.pi),) * 2, "periods": (two_pi, two_pi), "cv": None}
    if system.topology is not None and system.cv is not None:
        return {"bins": 36, "ranges": ((-math.pi, math.pi),) * 2, "periods": (two_pi, two_pi), "cv": system.cv}
    box = getattr(importlib.import_module(type(system).__module__), "BOX", None)
    if box is None:
        ends = torch.stack([system.endpoints[system.start], system.endpoints[system.target]]).double()
        lo, hi = ends.min(0).values, ends.max(0).values
        pad = 0.5 * (hi - lo)
        box = tuple((float(a), float(b)) for a, b in zip(lo - pad, hi + pad))
    return {"bins": 60, "ranges": tuple(tuple(float(v) for v in r) for r in box), "periods": None, "cv": None}


def _quantiles(values: torch.Tensor, prefix: str) -> dict:
    v = values[torch.isfinite(values)].double()
    if v.numel() == 0:
        return {f"{prefix}_median": float("nan"), f"{prefix}_p05": float("nan"), f"{prefix}_p95": float("nan")}
    q = torch.quantile(v, torch.tensor([0.5, 0.05, 0.95], dtype=torch.float64))
    return {f"{prefix}_median": float(q[0]), f"{prefix}_p05": float(q[1]), f"{prefix}_p95": float(q[2])}


def _pooled_segments(system, paths):
    """All frames of the paths' A -> B transition segments, ``(n, *event)`` (None if there are none)."""
    from tps.baselines.seeded import transition_segments

    segs = transition_segments(paths, *system.transition_states())
    return torch.cat(segs) if segs else None


def _ensemble_jsd(system, refined, geodesic) -> float:
    """path_density_jsd between the refined ensemble's frames and the geodesic paths' transition segments."""
    from tps.baselines.seeded import frames_and_lengths
    from tps.metrics import path_density_jsd

    g = density_grid(system)
    frames, lengths = frames_and_lengths(refined)
    mine = frames[torch.arange(frames.shape[1])[None] < lengths[:, None]]
    theirs = _pooled_segments(system, geodesic)
    if theirs is None:
        return float("nan")
    cv = g.pop("cv")
    if cv is not None:
        mine, theirs = cv(mine), cv(theirs)
    return path_density_jsd(mine, theirs, **g)


def refine_by_shooting(system, paths, protocol=None, *, n_chains: Optional[int] = None,
                       n_rounds: Optional[int] = None, seed: int = 0, executor=None,
                       n_training_energy_evals: int = 0, geodesic_wall_s: float = 0.0,
                       n_source_paths: Optional[int] = None, progress: bool = False) -> RefineResult:
    """Geodesic-seeded two-way shooting from ``paths`` on ``system`` (module docstring).

    Parameters
    ----------
    system : tps.systems.System
    paths : tps.core.Paths
        The geodesic ensemble (``n_energy_evals`` is its sampling cost; the first ``n_chains``
        paths with an A -> B transition seed the chains).
    protocol : tps.systems.protocols.RefineProtocol, optional
        Default: ``system.refine_protocol()``.
    n_chains, n_rounds : int, optional
        Override the protocol's (``--chains``, ``--refine-steps``).
    seed : int
        The shooting trials use ``seed + 5``.
    executor : optional
        :mod:`tps.parallel` executor (chains as tasks).
    n_training_energy_evals : int
        The model's training cost (copied to the row).
    geodesic_wall_s : float
        Wall time of the geodesic stages, counted in the row's ``wall_s``.
    n_source_paths : int, optional
        Paths that ``paths.n_energy_evals`` was spent on (default ``paths.n_paths``; more when
        ``paths`` is the saved part of a larger ensemble): each seed costs
        ``paths.n_energy_evals / n_source_paths``.
    progress : bool

    Returns
    -------
    RefineResult
        ``paths``: the refined ensemble (padded, ``info["lengths"]``, ``info["chain"]``,
        ``info["round"]``); ``row``: metrics (JSON-ready); ``timings["refine_s"]``.

    Raises
    ------
    InputError
        ``--chains`` larger than the number of geodesic paths; fewer geodesic paths with an
        A -> B transition than chains (message ``problem; fix``). ValueError for bad settings.

    Examples
    --------
    >>> import torch
    >>> from tps.core import Paths
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> a, b = mb.endpoints["A"], mb.endpoints["B"]
    >>> line = torch.stack([torch.lerp(a, b, float(s)) for s in torch.linspace(0, 1, 40)])
    >>> geo = Paths(torch.stack([line, line]), torch.zeros(2, 40), 80, mb.kT)
    >>> quick = mb.refine_protocol(quick=True).replace(relax_rounds=1)
    >>> r = refine_by_shooting(mb, geo, quick, n_chains=2, n_rounds=2)
    >>> r.row["method"], r.row["n_chains"], r.row["n_energy_evals"] == 80 + r.shooting.n_energy_evals
    ('geodesic-seeded-shooting', 2, True)
    """
    from tps.baselines import seeded_shooting
    from tps.metrics import split_chain_jsd
    from tps.pipeline.jsonable import jsonable

    protocol = system.refine_protocol() if protocol is None else protocol
    changes = {k: v for k, v in (("n_chains", n_chains), ("n_rounds", n_rounds)) if v is not None}
    protocol = protocol.replace(**changes) if changes else protocol
    if protocol.n_chains > paths.n_paths:
        raise input_error(f"--chains {protocol.n_chains}: more chains than the {paths.n_paths} geodesic paths "
                          "(each chain starts from a different path)",
                          f"pass --chains {paths.n_paths} or fewer, or keep more paths (--paths, --save-paths)")
    a, b = system.transition_states()
    if protocol.dt is None:
        engine = system.make_engine(seed=int(seed) + 5)
        kw = {}
    else:
        engine = system.potential
        kw = {"kT": system.kT, "dt": protocol.dt}
    t0 = time.perf_counter()
    try:
        res = seeded_shooting(engine, paths, a, b, n_chains=protocol.n_chains, n_rounds=protocol.n_rounds,
                              burn_in=protocol.burn_in, max_frames=protocol.max_frames, seed=int(seed) + 5,
                              executor=executor, save_every=protocol.save_every,
                              steps_per_frame=protocol.steps_per_frame, progress=progress,
                              relax_rounds=protocol.relax_rounds, **kw)
    except ValueError as exc:
        msg = str(exc)
        if msg.startswith("paths: only"):
            raise input_error(f"the geodesic paths of {system.name} have too few A -> B ({system.start} -> "
                              f"{system.target}) transitions for {protocol.n_chains} chains ({msg[7:]})",
                              "pass fewer --chains, or sample more paths (--paths, --steps-per-point)") from None
        raise
    t_shoot = time.perf_counter() - t0
    refined, pooled = _pool(res, protocol.pool)
    if callable(getattr(system, "row_energies", None)):  # the energies the system's rows report
        refined = system.row_energies(refined)
    elif getattr(system, "grid", None) is not None:  # (phi, psi): bilinear on the raw grid, as its sampler
        from tps.potentials.grid import bilinear

        refined.energies = bilinear(system.grid, refined.frames)
    t1 = time.perf_counter()
    row = system.summarize(refined, method=REFINED_METHOD, n_training_energy_evals=int(n_training_energy_evals),
                           wall_s=float(geodesic_wall_s) + t_shoot, geodesic_wall_s=float(geodesic_wall_s))
    n_source = paths.n_paths if n_source_paths is None else max(int(n_source_paths), paths.n_paths)
    seed_evals = int(round(paths.n_energy_evals * protocol.n_chains / n_source))
    crossing = system.crossing_coordinate(refined)
    g = density_grid(system)
    periodic = system.periods is not None or g["cv"] is not None
    diagnostics = split_chain_jsd(refined, bins=g["bins"], ranges=g["ranges"], periods=g["periods"], cv=g["cv"],
                                  crossing=crossing, crossing_range=(-math.pi, math.pi) if periodic else None,
                                  crossing_period=2 * math.pi if periodic else None)
    diagnostics.update(_quantiles(crossing, "crossing"))
    diagnostics.update(_quantiles(refined.info["lengths"].double(), "path_frames"))
    geo_crossing = system.crossing_coordinate(paths)
    diagnostics.update(_quantiles(geo_crossing, "geodesic_crossing"))
    info = res.info
    first = info["first_decorrelated_round"]
    row.update({
        "n_energy_evals": seed_evals + int(res.n_energy_evals),
        "seed_paths_energy_evals": seed_evals, "shooting_energy_evals": int(res.n_energy_evals),
        "geodesic_paths_energy_evals": int(paths.n_energy_evals), "n_geodesic_paths": n_source,
        "n_chains": protocol.n_chains, "n_rounds": int(info["n_rounds"]), "burn_in": protocol.burn_in,
        "n_trials": res.n_trials, "n_accepted": res.n_accepted, "acceptance_rate": res.acceptance_rate,
        "accepted_per_chain": list(info["accepted_per_chain"]),
        "n_decorrelated_paths": res.n_decorrelated,
        "chains_decorrelated_from_seed": sum(r is not None or bool(x) for r, x in
                                             zip(first, info.get("relaxed_from_seed", [False] * len(first)))),
        "first_decorrelated_round": list(first),
        "relax_rounds": protocol.relax_rounds,
        "relax_rounds_per_chain": list(info.get("relax_rounds_per_chain", [])),
        "chains_relaxed_from_seed": sum(bool(x) for x in info.get("relaxed_from_seed", [])),
        "relax_energy_evals": int(info.get("relax_energy_evals", 0)),
        "evals_per_accepted_path": res.evals_per_accepted_path,
        "evals_per_decorrelated_path": res.evals_per_decorrelated_path,
        "seed_path_index": list(info["seed_path_index"]),
        "pool": pooled, "n_pooled_states": int(refined.n_paths), "n_states_after_burn_in": int(res.paths.n_paths),
        "mean_path_frames": float(refined.info["lengths"].double().mean()),
        "path_density_jsd_vs_geodesic": _ensemble_jsd(system, refined, paths),
        "shooting_wall_s": t_shoot,
        **{(k if k.endswith(("_median", "_p05", "_p95")) else f"split_{k}"): v for k, v in diagnostics.items()
           if k not in ("n_chains", "n_rounds")},
    })
    info["diagnostics"] = diagnostics
    timings = {"refine_s": t_shoot, "refine_metrics_s": time.perf_counter() - t1}
    return RefineResult(refined, jsonable(row), None, timings, shooting=res, diagnostics=jsonable(diagnostics))


def _pool(res, pool: str):
    """``(paths, how)``: the chain states that form the refined ensemble (``RefineProtocol.pool``).

    ``"decorrelated"``: chain ``c``'s states from its first round whose path shares no frame with
    its seed (all of its states if it left the seed during the relaxation; none if it never
    did). If no chain left its seed, every state is kept and ``how`` says so.
    """
    from tps.systems.molecule_baselines import subset_paths

    paths = res.paths
    if pool == "all":
        return paths, "all"
    first = res.info["first_decorrelated_round"]
    relaxed = res.info.get("relaxed_from_seed", [False] * len(first))
    start = torch.tensor([0 if bool(x) else (10**9 if r is None else int(r)) for r, x in zip(first, relaxed)])
    chain = torch.as_tensor(paths.info["chain"]).long()
    keep = torch.as_tensor(paths.info["round"]).long() >= start[chain]
    if not bool(keep.any()):
        return paths, "all (no chain left its seed)"
    return subset_paths(paths, keep), "decorrelated"


def refine_key(sampling_key: str, protocol, *, seed: int = 0, parallel=None) -> str:
    """Key of the refine stage: the paths stage's key, ``asdict`` of the refine protocol, the seed
    and the executor split (None in-process).

    Examples
    --------
    >>> from tps.systems.protocols import RefineProtocol
    >>> p = RefineProtocol(n_chains=4, n_rounds=10, dt=1e-4)
    >>> refine_key("s", p) == refine_key("s", p.replace(n_rounds=11))
    False
    """
    from dataclasses import asdict

    from tps.pipeline.jsonable import stage_key

    extra = {} if parallel is None else {"parallel": parallel}
    return stage_key(sampling=sampling_key, refine=asdict(protocol), seed=int(seed), **extra)
