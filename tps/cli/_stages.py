"""The two stages of ``tps run``: spacetime geodesic (``solve_curve``) and annealed-Langevin paths
(``sample_curve``), with model loading, path files and metrics."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tps.cli._common import (
    SYSTEMS, TWO_PI, _aldp_endpoints, _err, _file_digest, _jsonable, _oneline, _phipsi_surface, _silence_c_output,
    _threads,
)


# ============================================================================ run settings
@dataclass(frozen=True)
class RunSettings:
    """Every setting of a ``tps run`` (geodesic and sampler); system-specific fields are None elsewhere.

    Units: ``step_size`` in the 2-D systems' length^2 (reduced, see
    :func:`tps.sampling.annealed_langevin`); ``timestep`` ps and ``friction`` 1/ps (OpenMM,
    all-atom); logSNR values in model coordinates. Defaults per system (:data:`RUN_DEFAULTS`)
    are the benchmarks' full protocols.
    """

    paths: int
    points: int
    steps_per_point: int
    frames_per_point: int
    logsnr: float
    init_dips: tuple
    coarse_points: int
    coarse_iter: int
    max_iter: int
    low_variance_threshold: float
    low_variance_weight: float
    step_size: Optional[float] = None          # 2-D annealed Langevin
    clamp: Optional[bool] = None               # per-coordinate ReLU of segment products (phi, psi)
    image_chord_ratio: Optional[float] = None  # (phi, psi): periodic images of the end point tried
    n_nodes: Optional[int] = None              # all-atom: spline nodes of the curve
    timestep: Optional[float] = None           # all-atom OpenMM sampler
    friction: Optional[float] = None
    avoid_logsnr: Optional[float] = None       # region-avoiding geodesic (2-D)
    avoid_kl_margin: Optional[float] = None
    avoid_weight: Optional[float] = None
    avoid_structure: Optional[str] = None      # region-avoiding geodesic (all-atom): a PDB file ...
    avoid_structure_sha256: Optional[str] = None
    avoid_phipsi: Optional[tuple] = None       # ... or (phi, psi) rad -> the avoid_frames nearest training frames
    avoid_frames: Optional[int] = None
    avoid_depth_fraction: Optional[float] = None  # thresholds from the free curve (tps.workflows.avoidance)
    avoid_penalty_ratio: Optional[float] = None
    constraint: str = "none"
    avoid: Optional[tuple] = None
    seed: int = 0
    save_paths: Optional[int] = None           # paths written to disk (None: all)

    def as_dict(self) -> dict:
        """The fields that apply to this run (None ones left out), JSON-ready."""
        return _jsonable({k: v for k, v in dataclasses.asdict(self).items() if v is not None})


#: Default ``tps run`` settings per system (benchmarks/muller_brown.py, aldp_2d.py and aldp_cartesian.py).
RUN_DEFAULTS = {
    "muller-brown": RunSettings(paths=1000, points=128, steps_per_point=15, step_size=4e-4, frames_per_point=1,
                                logsnr=6.0, init_dips=(6.0, 2.0, -2.0), coarse_points=32, coarse_iter=150,
                                max_iter=150, low_variance_threshold=5.0, low_variance_weight=1e5,
                                avoid_logsnr=6.0, avoid_kl_margin=20.0, avoid_weight=1e3, save_paths=100),
    "alanine-dipeptide-phipsi": RunSettings(paths=1000, points=128, steps_per_point=12, step_size=3e-3,
                                            frames_per_point=12, logsnr=4.0, init_dips=(4.0, 1.0), coarse_points=32,
                                            coarse_iter=60, max_iter=60, clamp=True, image_chord_ratio=1.5,
                                            low_variance_threshold=3.0, low_variance_weight=1e4, avoid_logsnr=4.0,
                                            avoid_kl_margin=20.0, avoid_weight=1e3, save_paths=100),
    "alanine-dipeptide": RunSettings(paths=30, points=64, steps_per_point=250, frames_per_point=10, logsnr=4.0,
                                     n_nodes=8, max_iter=30, coarse_points=16, coarse_iter=20, init_dips=(2.0, -1.0),
                                     low_variance_threshold=3.0, low_variance_weight=1e4, timestep=0.002,
                                     friction=1.0),
}
CONSTRAINTS = ("none", "low-variance", "region-avoiding")


def _settings(system: str, args) -> RunSettings:
    """The defaults of ``system`` with the command's options applied (validated)."""
    d = RUN_DEFAULTS[system]
    changes = {key: getattr(args, key) for key in ("paths", "points", "steps_per_point", "max_iter", "save_paths")
               if getattr(args, key, None) is not None}
    s = dataclasses.replace(d, **changes)
    if "max_iter" in changes:
        s = dataclasses.replace(s, coarse_iter=min(d.coarse_iter, s.max_iter))
    if s.steps_per_point % s.frames_per_point:  # frames must divide the steps of a curve point
        s = dataclasses.replace(s, frames_per_point=max(f for f in range(1, s.frames_per_point + 1)
                                                        if s.steps_per_point % f == 0))
    if s.points < 4:
        raise _err(f"--points {s.points}: a curve needs at least 4 points", "pass --points 4 or more")
    constraint = getattr(args, "constraint", None) or "none"
    avoid = getattr(args, "avoid", None)
    molecular = {}
    if constraint == "region-avoiding":
        if system == "alanine-dipeptide":
            from tps.cli._avoid import molecular_avoid_settings

            molecular = molecular_avoid_settings(args)
        else:
            avoid = _avoid_point_2d(system, args)
    else:
        for flag in ("avoid", "avoid_structure", "avoid_phipsi"):
            if getattr(args, flag, None) is not None:
                raise _err(f"--{flag.replace('_', '-')} is only used with --constraint region-avoiding",
                           "add --constraint region-avoiding")
    return dataclasses.replace(s, coarse_points=min(s.coarse_points, s.points), constraint=constraint, avoid=avoid,
                               seed=int(getattr(args, "seed", 0) or 0), **molecular)


def _avoid_point_2d(system: str, args) -> tuple:
    """``--avoid X Y`` of a 2-D system (``--avoid-phipsi`` accepted on the (phi, psi) system)."""
    avoid, phipsi = getattr(args, "avoid", None), getattr(args, "avoid_phipsi", None)
    if getattr(args, "avoid_structure", None) is not None:
        raise _err(f"--avoid-structure: {system} is not a molecule", "pass the point to avoid as --avoid X Y")
    if phipsi is not None:
        if system != "alanine-dipeptide-phipsi":
            raise _err(f"--avoid-phipsi: {system} has no (phi, psi) coordinates", "pass the point as --avoid X Y")
        if avoid is not None:
            raise _err("--avoid and --avoid-phipsi were both given", "pass only one of them")
        avoid = phipsi
    if avoid is None:
        raise _err("--constraint region-avoiding needs the point to avoid",
                   "add --avoid X Y (phi psi in rad for alanine-dipeptide-phipsi)")
    return tuple(float(v) for v in avoid)


# ============================================================================ models
def load_model(system: str, model_path=None, *, device: str = "cpu"):
    """The pretrained model of ``system`` or a user checkpoint, checked for compatibility.

    Returns ``(model, info)`` with ``info = {"source", "sha256"}``.
    """
    from tps import pretrained
    from tps.diffusion.checkpoint import DiffusionModel

    if model_path is None:
        path = pretrained.path(system)
        source = f"pretrained:{system}"
    else:
        path = Path(model_path)
        if not path.is_file():
            raise _err(f"--model {path}: no such file", "pass a checkpoint written by 'tps train' "
                                                        "(or omit --model to use the pretrained one)")
        source = str(path)
    try:
        model = DiffusionModel.load(path, device=device).freeze()
    except Exception as exc:
        raise _err(f"--model {path}: cannot be read as a tps checkpoint ({type(exc).__name__}: "
                   f"{_oneline(exc)[:200]})",
                   f"pass a checkpoint written by 'tps train {system}'") from None
    check_model(system, model, source)
    return model, {"source": source, "path": str(path), "sha256": _file_digest(path),
                   "network": type(model.network).__name__}


def check_model(system: str, model, source: str = "model") -> None:
    """Refuse a model trained for another system (:class:`UserError`)."""
    net = type(model.network).__name__
    trained_for = model.metadata.get("system")
    fix = f"pass a model trained with 'tps train {system}', or omit --model to use the pretrained one"
    what = f"--model {source}: a {net} model" + (f" trained for {trained_for!r}" if trained_for else "")
    if system == "alanine-dipeptide":
        from tps.systems import alanine_dipeptide as aldp
        from tps.workflows.cartesian import check_model_matches

        try:
            check_model_matches(model, aldp.topology())
        except ValueError as exc:
            raise _err(f"{what} does not fit {system} ({_oneline(exc)})", fix) from None
        return
    expected = "MLPDenoiser" if system == "muller-brown" else "PeriodicMLPDenoiser"
    dim = getattr(model.network.config, "dim", None)
    if net != expected or dim != 2 or (trained_for is not None and trained_for != system):
        raise _err(f"{what} cannot be used for {system} (expected a {expected} on 2 coordinates"
                   + (f" trained for {system!r}" if trained_for else "") + ")", fix)


# ============================================================================ geodesic stage
def _region_avoidance(net, cx, clam, x_star, s):
    """RegionAvoidance around ``x_star`` (model coordinates) with threshold = min relative KL on the
    free curve ``(cx, clam)`` plus ``avoid_kl_margin`` (benchmarks/aldp_2d.py)."""
    from tps.spacetime import RegionAvoidance
    from tps.spacetime.constraints import CurveState
    from tps.spacetime.geometry import segment_products
    import torch

    probe = RegionAvoidance(x_star, logsnr_star=s.avoid_logsnr, threshold=0.0)
    with torch.enable_grad():
        x, lam = cx[None].detach(), clam[None].detach()
        _, (eta_x, eta_t, mu_x, mu_t) = segment_products(net, x, lam, clamp=bool(s.clamp),
                                                         return_parameters=True)
    kl = probe.relative_kl(CurveState(x, lam, eta_x, eta_t, mu_x, mu_t, net))[0].detach()
    threshold = float(kl.min()) + s.avoid_kl_margin
    return RegionAvoidance(x_star, logsnr_star=s.avoid_logsnr, threshold=threshold, weight=s.avoid_weight), \
        threshold


def _constraints(s):
    from tps.spacetime import LowVariance

    if s.constraint == "low-variance":
        return (LowVariance(s.low_variance_threshold, weight=s.low_variance_weight),)
    return ()


def solve_curve(system: str, model, s: RunSettings, *, progress: bool = False) -> dict:
    """Solve the spacetime geodesic of ``system`` with settings ``s``; returns the curve payload
    (``x``, ``logsnr`` in model coordinates, ``centres`` in physical coordinates, ``scaling``, ...)."""
    torch = _threads()
    from tps.spacetime import geodesic

    t0 = time.perf_counter()
    net = model.network
    dtype = next(net.parameters()).dtype
    dev = next(net.parameters()).device
    extra = {}
    if system == "muller-brown":
        from tps.systems import load

        sysm = load("muller-brown")
        z_a = model.to_model(sysm.endpoints["A"]).to(dtype=dtype, device=dev)
        z_b = model.to_model(sysm.endpoints["B"]).to(dtype=dtype, device=dev)
        kw = dict(logsnr=s.logsnr, n_points=s.points, init_dips=s.init_dips,
                  coarse_points=s.coarse_points, coarse_iter=s.coarse_iter, max_iter=s.max_iter,
                  seed=s.seed)
        constraints = _constraints(s)
        if s.constraint == "region-avoiding":
            free = geodesic(net, z_a, z_b, **kw)
            x_star = model.to_model(torch.tensor(s.avoid, dtype=torch.float64)).to(dtype=dtype, device=dev)
            ra, thr = _region_avoidance(net, free.x, free.logsnr, x_star, s)
            extra["avoid_threshold"] = thr
            constraints = (ra,)
        r = geodesic(net, z_a, z_b, constraints=constraints, **kw)
    elif system == "alanine-dipeptide-phipsi":
        grid, pot, kT, start, end = _phipsi_surface()
        x_a = start.to(dtype=dtype, device=dev)
        x_b0 = end.to(dtype=dtype, device=dev)
        k, x_b, nodes, image_info = _choose_image(net, x_a, x_b0, pot, s)
        extra.update(image_info)
        kw = dict(logsnr=s.logsnr, n_points=s.points, clamp=s.clamp, max_iter=s.max_iter, seed=s.seed)
        if s.constraint == "none":
            r = geodesic(net, x_a, x_b, init_nodes=nodes, **kw)
        else:
            constraints = _constraints(s)
            if s.constraint == "region-avoiding":
                from tps.spacetime import LowVariance

                free = geodesic(net, x_a, x_b, init_nodes=nodes, **kw)
                point = torch.tensor(s.avoid, dtype=torch.float64)
                # the image of the point nearest the free curve's restraint centres
                shifts = TWO_PI * torch.tensor([(i, j) for i in range(-2, 3) for j in range(-2, 3)],
                                               dtype=torch.float64)
                cands = point[None] + shifts
                c = _centres(free.x, free.logsnr)
                x_star = cands[int(torch.cdist(cands, c).min(1).values.argmin())]
                ra, thr = _region_avoidance(net, free.x, free.logsnr, x_star.to(dtype=dtype, device=dev), s)
                extra.update(avoid_threshold=thr, avoid_image=x_star.tolist())
                constraints = (LowVariance(s.low_variance_threshold + 0.75, weight=s.low_variance_weight), ra)
            r = geodesic(net, x_a, x_b, init_dips=(s.logsnr,), constraints=constraints,
                         coarse_points=s.coarse_points, coarse_iter=s.coarse_iter, **kw)
    elif system == "alanine-dipeptide":
        from tps.workflows.cartesian import solve_geodesic

        endpoints = _aldp_endpoints()
        kw = dict(logsnr=s.logsnr, n_points=s.points, n_nodes=s.n_nodes, max_iter=s.max_iter, init_dips=s.init_dips,
                  coarse_points=s.coarse_points, coarse_iter=s.coarse_iter, seed=s.seed, progress=progress)
        if s.constraint == "region-avoiding":
            from tps.cli._avoid import solve_avoiding_aldp

            r, avoid_payload = solve_avoiding_aldp(model, endpoints, s, kw)
            extra.update(avoid_payload.pop("extra"))
        else:
            r = solve_geodesic(model, endpoints, constraints=_constraints(s), **kw)
        extra["origin_nm"] = endpoints.origin.tolist()
    else:  # pragma: no cover
        raise _err(f"unknown system {system!r}", f"choose one of {', '.join(SYSTEMS)}")
    x = r.x.detach().double().cpu()
    lam = r.logsnr.detach().double().cpu()
    with torch.no_grad():
        alpha = torch.sigmoid(lam).sqrt().reshape(-1, *([1] * (x.dim() - 1)))
        centres = model.to_physical(x / alpha)
    curve = {"format": "tps-curve/1", "system": system, "x": x, "logsnr": lam, "centres": centres,
             "scaling": model.scaling.as_dict(), "curve_energy": float(r.energy),
             "curve_energy_initial": float(r.initial_energy), "n_evaluations": int(r.n_evaluations),
             "wall_s": time.perf_counter() - t0, "extra": _jsonable(extra)}
    if system == "alanine-dipeptide" and s.constraint == "region-avoiding":
        curve.update(avoid_payload)  # avoided structures (nm) and point, for the paths' closest approach
    return curve


def _centres(cx, clam):
    import torch

    alpha = torch.sigmoid(clam.double()).sqrt()
    return cx.double() / alpha[:, None]


def _choose_image(net, x_a, x_b0, potential, s):
    """Periodic image ``x_b0 + 2 pi k`` of the end point: geodesics to the candidate images
    (chord <= ``image_chord_ratio`` x the shortest) solved as one batch; the image whose coarse
    curve has the lowest highest potential energy over its restraint centres is kept."""
    import torch
    from tps.spacetime import geodesic

    k = torch.tensor([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=x_a.dtype, device=x_a.device)
    shifts = TWO_PI * k
    chords = (x_b0[None] + shifts - x_a[None]).norm(dim=1)
    cand = torch.nonzero(chords <= s.image_chord_ratio * chords.min()).flatten()
    xa = x_a.expand(len(cand), 2).clone()
    xb = x_b0[None] + shifts[cand]
    r = geodesic(net, xa, xb, batched=True, n_points=s.coarse_points, init_dips=s.init_dips,
                 logsnr=s.logsnr, clamp=s.clamp, max_iter=s.coarse_iter, seed=s.seed)
    c = _centres(r.x.reshape(-1, 2), r.logsnr.reshape(-1)).reshape(r.x.shape)
    with torch.no_grad():
        cmax = potential.energy(c.cpu()).max(1).values
    best = int(torch.argmin(cmax))
    index = int(cand[best])
    info = {"image_k": [int(v) for v in k[index].round().tolist()],
            "image_candidates": [[int(v) for v in k[i].tolist()] for i in cand.tolist()],
            "image_curve_max_energy": [float(v) for v in cmax],
            # potential evaluations spent choosing the image (counted in the run's n_energy_evals)
            "n_selection_energy_evals": int(c.shape[0] * c.shape[1])}
    return index, xb[best], r.nodes[best][None], info


def _load_curve(path, system: Optional[str] = None) -> dict:
    import torch

    path = Path(path)
    if not path.is_file():
        raise _err(f"--curve {path}: no such file", f"write one with 'tps geodesic {system or 'SYSTEM'} --out {path}'")
    try:
        curve = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _err(f"--curve {path}: not a readable curve file ({type(exc).__name__}: {_oneline(exc)[:160]})",
                   "pass a curve.pt written by 'tps geodesic' or 'tps run'") from None
    if not isinstance(curve, dict) or curve.get("format") != "tps-curve/1":
        raise _err(f"--curve {path}: not a tps curve file", "pass a curve.pt written by 'tps geodesic' or 'tps run'")
    if system is not None and curve["system"] != system:
        raise _err(f"--curve {path}: solved for {curve['system']!r}, not {system!r}",
                   f"use 'tps sample {curve['system']} ...' or solve a curve for {system}")
    return curve


# ============================================================================ sampling stage
def sample_curve(system: str, curve: dict, s: RunSettings, *, progress: bool = False, executor=None,
                 checkpoint=None):
    """Annealed Langevin paths along ``curve``; returns ``(paths, wall_s)``.

    ``executor`` (None: in-process, the historical stream) and ``checkpoint`` (directory of
    completed tasks, executor only; the sampler keys them by its inputs) go to the sampler
    (:mod:`tps.parallel`).
    """
    torch = _threads()
    par = {}
    if executor is not None:
        par = {"executor": executor, "seed": s.seed + 1}
        if checkpoint is not None:
            par["checkpoint"] = checkpoint
    from tps.diffusion.scaling import AffineScaling

    t0 = time.perf_counter()
    scaling = AffineScaling.from_dict(curve["scaling"])
    cx, clam = curve["x"].double(), curve["logsnr"].double()
    gen = torch.Generator().manual_seed(s.seed + 1)
    if system == "muller-brown":
        from tps.sampling import annealed_langevin
        from tps.systems import load

        sysm = load("muller-brown")
        paths = annealed_langevin(sysm.potential, cx, clam, kT=sysm.kT, n_paths=s.paths,
                                  steps_per_point=s.steps_per_point, step_size=s.step_size, scaling=scaling,
                                  frames_per_point=s.frames_per_point, x_start=sysm.endpoints["A"],
                                  generator=gen, progress=progress, **par)
    elif system == "alanine-dipeptide-phipsi":
        from tps.potentials.grid import bilinear
        from tps.sampling import annealed_langevin
        from tps.sampling.paths import Paths

        grid, pot, kT, start, _ = _phipsi_surface()
        raw = annealed_langevin(pot, cx, clam, kT=kT, n_paths=s.paths, steps_per_point=s.steps_per_point,
                                step_size=s.step_size, scaling=scaling, frames_per_point=s.frames_per_point,
                                x_start=start, generator=gen, progress=progress, **par)
        # reported energies: periodic bilinear interpolation of the raw grid (never the spline)
        info = dict(raw.info, energies="periodic bilinear interpolation of the raw free-energy grid")
        paths = Paths(raw.frames, bilinear(grid, raw.frames), raw.n_energy_evals, raw.kT, info)
    elif system == "alanine-dipeptide":
        from tps.systems import alanine_dipeptide as aldp
        from tps.workflows.cartesian import curve_restraints, sample_paths

        endpoints = _aldp_endpoints()
        omm = aldp.create_openmm_system(aldp.topology())
        restraints = curve_restraints(cx, clam, scaling, temperature=aldp.TEMPERATURE, origin=endpoints.origin)
        paths = sample_paths(omm, restraints, endpoints, n_paths=s.paths, steps_per_point=s.steps_per_point,
                             temperature=aldp.TEMPERATURE, timestep=s.timestep, friction=s.friction,
                             frames_per_point=s.frames_per_point, seed=s.seed, progress=progress,
                             **{k: v for k, v in par.items() if k != "seed"})
    else:  # pragma: no cover
        raise _err(f"unknown system {system!r}", f"choose one of {', '.join(SYSTEMS)}")
    return paths, time.perf_counter() - t0


def _paths_file(system: str, out: Path) -> Path:
    return out / ("paths" if system == "alanine-dipeptide" else "") / \
        ("paths.dcd" if system == "alanine-dipeptide" else "paths.npz")


def save_run_paths(system: str, paths, out: Path) -> list:
    """Write the paths (``paths.npz``; all-atom: ``paths/paths_000.dcd``... + ``paths/topology.pdb``)."""
    from tps.io import save_paths

    if system != "alanine-dipeptide":
        return save_paths(paths, _paths_file(system, out))
    from tps.systems import alanine_dipeptide as aldp

    top = aldp.topology()
    files = save_paths(paths, _paths_file(system, out), topology=top, split=True)
    files.append(_write_topology_pdb(out / "paths" / "topology.pdb", paths.frames[0, 0]))
    return files


def _write_topology_pdb(path: Path, positions) -> Path:
    import mdtraj
    import numpy as np

    from tps.io import atomic_path
    from tps.sampling.md import as_mdtraj_topology
    from tps.systems import alanine_dipeptide as aldp

    top = as_mdtraj_topology(aldp.topology())
    xyz = np.asarray(positions.detach().cpu() if hasattr(positions, "detach") else positions, dtype=np.float32)
    with atomic_path(path) as tmp:
        mdtraj.Trajectory(xyz[None], top).save_pdb(str(tmp))
    return path


def load_run_paths(system: str, out: Path):
    from tps.io import load_paths

    with _silence_c_output():
        return load_paths(_paths_file(system, out))


def metrics(system: str, paths, *, n_training_energy_evals: int = 0, wall_s=float("nan"),
            geodesic_wall_s=float("nan"), method="spacetime-geodesic", curve: Optional[dict] = None) -> dict:
    """``tps.metrics.summarize`` (2-D) or ``summarize_molecular`` (all-atom) row of ``paths``."""
    _threads()
    kw = dict(method=method, n_training_energy_evals=n_training_energy_evals, wall_s=wall_s,
              geodesic_wall_s=geodesic_wall_s)
    if system == "muller-brown":
        from tps.metrics import summarize
        from tps.systems import load

        sysm = load("muller-brown")
        row = summarize(paths, target=sysm.states["B"], **kw)
        row["lower_bound"] = float(sysm.reference["lower_bound"].value)
    elif system == "alanine-dipeptide-phipsi":
        from tps.metrics import summarize
        from tps.states import Ball

        _, _, _, _, end = _phipsi_surface()
        row = summarize(paths, target=Ball(end, 0.75, periods=(TWO_PI, TWO_PI), name="C7ax"),
                        periods=(TWO_PI, TWO_PI), **kw)
    else:
        from tps.metrics.molecular import summarize_molecular
        from tps.systems import alanine_dipeptide as aldp

        sysm = aldp.load()
        top = aldp.topology()
        row = summarize_molecular(paths, system=aldp.create_openmm_system(top), target_state=sysm.states["C7ax"],
                                  target_positions=_aldp_endpoints().target, topology=top, **kw)
    if system == "alanine-dipeptide" and (curve or {}).get("avoid_structures") is not None:
        from tps.cli._avoid import avoid_metrics

        row.update(avoid_metrics(paths, curve))
    n_sel = int((curve or {}).get("extra", {}).get("n_selection_energy_evals", 0))
    if n_sel:
        row["n_selection_energy_evals"] = n_sel
        row["n_energy_evals"] = int(row["n_energy_evals"]) + n_sel
    return _jsonable(row)
