"""The ``tps`` command: transition paths from pretrained spacetime-geodesic models.

Subcommands::

    tps systems                               bundled systems and the pretrained model each uses
    tps run SYSTEM [--paths N] [--out DIR]    pretrained model -> geodesic -> paths -> metrics + figure
    tps train SYSTEM --out FILE.pt            train a model (writes FILE.pt and the recipe FILE.json)
    tps geodesic SYSTEM --out curve.pt        the first half of ``run``
    tps sample SYSTEM --curve curve.pt --out DIR   the second half of ``run``
    tps check-energies TRAJ [--top PDB]       recompute energies with OpenMM, compare with stored ones
    tps bench SUITE [args...]                 ``python -m benchmarks SUITE args...``

Every user mistake prints one line ``tps: error: <problem>; <fix>`` on stderr and exits with
status 2; Ctrl-C exits with 130 and keeps the outputs completed so far (``tps run`` resumes
from them). All outputs are written atomically.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

SYSTEMS = ("alanine-dipeptide", "alanine-dipeptide-phipsi", "muller-brown")
DESCRIPTIONS = {
    "muller-brown": "Muller-Brown 2-D potential at kT = 12.5, minimum A -> minimum B (dimensionless units)",
    "alanine-dipeptide": "alanine dipeptide all-atom (22 atoms, amber99sbildn, vacuum, 300 K), C5 -> C7ax, "
                         "paths run inside OpenMM",
    "alanine-dipeptide-phipsi": "alanine dipeptide in (phi, psi) on the package's own free-energy surface "
                                "(kJ/mol, 300 K), C5 -> C7ax",
}
#: Bundled system (tps.systems) behind each CLI system name.
BASE_SYSTEM = {"muller-brown": "muller-brown", "alanine-dipeptide": "alanine-dipeptide",
               "alanine-dipeptide-phipsi": "alanine-dipeptide"}
TWO_PI = 2.0 * math.pi


class UserError(Exception):
    """A mistake of the user: printed as one line ``tps: error: <message>``, exit status 2."""


def _err(problem: str, fix: str) -> UserError:
    return UserError(f"{problem}; {fix}")


def _threads():
    import torch

    torch.set_num_threads(1)  # small tensors: extra threads only add contention on shared cores
    return torch


def _version() -> str:
    import tps

    return tps.__version__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _say(args, *msg):
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr, flush=True)


def _progress(args) -> bool:
    return not getattr(args, "quiet", False)


# ============================================================================ training
#: Default training settings per system (``tps train`` options override them).
TRAIN_DEFAULTS = {
    # benchmarks/muller_brown.py full protocol
    "muller-brown": dict(steps=4000, batch_size=512, hidden=128, layers=3, chains=1000, data_steps=10_000,
                         data_dt=2e-4, burn_in=2000, thin=20, lr=2e-3),
    # benchmarks/aldp_2d.py full protocol on the package's own surface
    "alanine-dipeptide-phipsi": dict(steps=3000, batch_size=512, hidden=128, layers=3, harmonics=3, chains=2000,
                                     data_steps=3000, data_dt=1e-3, burn_in=1000, thin=20, lr=2e-3),
    # benchmarks/aldp_cartesian.py full protocol (MD steps per start: C5 and C7ax)
    "alanine-dipeptide": dict(steps=2400, batch_size=64, hidden=32, layers=3, data_steps=250_000,
                              report_interval=50, lr=2e-3, holdout_per_band=1024),
}


def _phipsi_surface():
    from tps.potentials.grid import PeriodicGridPotential, read_grid
    from tps.systems.alanine_dipeptide import KT, data_dir, reference_minima
    import torch

    path = data_dir() / "fes_phipsi.dat"
    if not path.exists():
        raise _err(f"the package's free-energy surface {path} is missing", "reinstall the package")
    grid = read_grid(path)
    minima = reference_minima()["minima"]
    start = torch.tensor([minima["C5"]["phi_rad"], minima["C5"]["psi_rad"]], dtype=torch.float64)
    end = torch.tensor([minima["C7ax"]["phi_rad"], minima["C7ax"]["psi_rad"]], dtype=torch.float64)
    return grid, PeriodicGridPotential(grid, energy_unit="kJ/mol"), float(KT), start, end


def train(system: str, settings: dict, *, seed: int, device: str = "cpu", progress: bool = False,
          partial=None):
    """Train the model of ``system`` with ``settings`` (see :data:`TRAIN_DEFAULTS`).

    Returns ``(model, result, info)`` where ``info`` has ``n_training_energy_evals``,
    ``data_wall_s`` and ``training_wall_s``.
    """
    torch = _threads()
    from tps.diffusion import AffineScaling, DiffusionModel, TrainingConfig, train_denoiser

    s = settings
    cfg = TrainingConfig(n_steps=s["steps"], batch_size=s["batch_size"], lr=s["lr"], seed=seed,
                         **({"warmup_steps": min(100, s["steps"] // 10), "eval_every": 200,
                             "holdout_per_band": s["holdout_per_band"]} if system == "alanine-dipeptide" else {}))
    t0 = time.perf_counter()
    if system == "muller-brown":
        from tps.diffusion import MLPConfig, MLPDenoiser
        from tps.sampling import langevin_samples
        from tps.systems import load
        from tps.systems.muller_brown import BOX

        sysm = load("muller-brown")
        g = torch.Generator().manual_seed(seed)
        lo = torch.tensor([BOX[0][0], BOX[1][0]], dtype=torch.float64)
        hi = torch.tensor([BOX[0][1], BOX[1][1]], dtype=torch.float64)
        starts = lo + (hi - lo) * torch.rand(s["chains"], 2, generator=g, dtype=torch.float64)
        data = langevin_samples(sysm.potential, starts, kT=sysm.kT, dt=s["data_dt"], n_steps=s["data_steps"],
                                burn_in=s["burn_in"], thin=s["thin"], seed=seed)
        t_data = time.perf_counter() - t0
        scaling = AffineScaling.fit(data.samples)
        torch.manual_seed(seed)
        net = MLPDenoiser(MLPConfig(dim=2, hidden=s["hidden"], n_blocks=s["layers"]))
        model = DiffusionModel(net, scaling, metadata={"system": "muller-brown", "kT": sysm.kT,
                                                       "n_training_energy_evals": int(data.n_energy_evals)})
        t1 = time.perf_counter()
        result = train_denoiser(net, scaling.to_model(data.samples).float(), config=cfg, progress=progress)
        n_evals = int(data.n_energy_evals)
    elif system == "alanine-dipeptide-phipsi":
        from tps.diffusion import PeriodicMLPConfig, PeriodicMLPDenoiser
        from tps.sampling import langevin_samples

        grid, pot, kT, _, _ = _phipsi_surface()
        g = torch.Generator().manual_seed(seed)
        starts = (torch.rand(s["chains"], 2, generator=g, dtype=torch.float64) - 0.5) * TWO_PI
        data = langevin_samples(pot, starts, kT=kT, dt=s["data_dt"] / kT, n_steps=s["data_steps"],
                                burn_in=s["burn_in"], thin=s["thin"], seed=seed)
        t_data = time.perf_counter() - t0
        scaling = AffineScaling.identity((2,))
        torch.manual_seed(seed)
        net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, period=TWO_PI, hidden=s["hidden"], n_blocks=s["layers"],
                                                    n_harmonics=s["harmonics"]))
        model = DiffusionModel(net, scaling, metadata={"system": "alanine-dipeptide-phipsi", "kT": kT,
                                                       "energy_unit": "kJ/mol",
                                                       "n_training_energy_evals": int(data.n_energy_evals)})
        t1 = time.perf_counter()
        result = train_denoiser(net, pot.wrap(data.samples).float(), config=cfg, progress=progress)
        n_evals = int(data.n_energy_evals)
    elif system == "alanine-dipeptide":
        from tps.sampling.md import md_samples
        from tps.systems import alanine_dipeptide as aldp
        from tps.workflows.cartesian import train_model

        top = aldp.topology()
        omm = aldp.create_openmm_system(top)
        minima = aldp.minimized_structures()
        data = md_samples(omm, top, {"C5": minima["C5"], "C7ax": minima["C7ax"]}, n_steps=s["data_steps"],
                          report_interval=s["report_interval"], timestep=aldp.TIMESTEP, friction=aldp.FRICTION,
                          seed=seed, progress=progress)
        t_data = time.perf_counter() - t0
        t1 = time.perf_counter()
        model, result = train_model(data, top, system=omm, hidden=s["hidden"], n_layers=s["layers"], training=cfg,
                                    device=device, checkpoint=partial, progress=progress,
                                    metadata={"system": "alanine-dipeptide", "kT": float(aldp.KT),
                                              "temperature": aldp.TEMPERATURE, "md_wall_s": t_data})
        n_evals = int(data.n_energy_evals)
    else:  # pragma: no cover - argparse restricts the choices
        raise _err(f"unknown system {system!r}", f"choose one of {', '.join(SYSTEMS)}")
    info = {"n_training_energy_evals": n_evals, "data_wall_s": t_data,
            "training_wall_s": time.perf_counter() - t1}
    return model.freeze(), result, info


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _jsonable(obj.item())
    if isinstance(obj, str):
        return str(obj)  # plain str: checkpoints load with weights_only (torch.__version__ is a subclass)
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    return obj


def cmd_train(args) -> int:
    import dataclasses

    from tps.io import write_json

    out = Path(args.out)
    if out.suffix != ".pt":
        raise _err(f"--out {out}: expected a .pt file name", "e.g. --out model.pt (the recipe goes to model.json)")
    settings = dict(TRAIN_DEFAULTS[args.system])
    for key in settings:
        v = getattr(args, key, None)
        if v is not None:
            settings[key] = v
    for key in ("steps", "batch_size", "hidden", "layers", "data_steps"):
        if settings[key] < 1:
            raise _err(f"--{key.replace('_', '-')} {settings[key]}: must be a positive integer",
                       "pass a number >= 1")
    if "burn_in" in settings:  # shorter chains: burn in at most a third of them
        settings["burn_in"] = min(settings["burn_in"], settings["data_steps"] // 3)
    device = _device(args.device)
    partial = out.with_name(out.stem + ".partial.pt")
    _say(args, f"training {args.system}: {settings} (seed {args.seed}, device {device})")
    t0 = time.perf_counter()
    model, result, info = train(args.system, settings, seed=args.seed, device=device, progress=_progress(args),
                                partial=partial if args.system == "alanine-dipeptide" else None)
    wall = time.perf_counter() - t0
    if result.interrupted:  # never leave an under-trained model under the requested name
        kept = f" (the last checkpoint is in {partial})" if partial.exists() else ""
        _say(args, f"training interrupted after {result.n_steps_done} steps; {out} not written{kept}")
        raise KeyboardInterrupt
    argv = args._argv
    rec = {
        "name": out.stem,
        "system": args.system,
        "command": shlex.join(["tps"] + list(argv)),
        "argv": list(argv),
        "arguments": settings,
        "seed": args.seed,
        "device": device,
        "package_version": _version(),
        "n_training_energy_evals": info["n_training_energy_evals"],
        "training_steps": int(result.n_steps_done),
        "interrupted": bool(result.interrupted),
        "date": _now(),
        "network": type(model.network).__name__,
        "config": dataclasses.asdict(model.network.config),
        "scaling": model.scaling.as_dict(),
        "metrics": {"holdout_initial": dict(result.holdout_initial), "holdout_final": dict(result.holdout_final),
                    "final_train_loss": float(result.history[-1][1]) if result.history else None,
                    "data_wall_s": info["data_wall_s"], "training_wall_s": info["training_wall_s"],
                    "total_wall_s": wall},
        "versions": _versions(),
    }
    rec = _jsonable(rec)
    model.metadata["recipe"] = rec
    model.save(out)
    write_json(out.with_suffix(".json"), rec)
    for f in (out, out.with_suffix(".json")):
        os.chmod(f, 0o644)  # mkstemp creates 0600 files; checkpoints are meant to be shared
    if partial.exists():
        partial.unlink()
    _say(args, f"wrote {out} and {out.with_suffix('.json')} ({wall:.0f} s; held-out loss {rec['metrics']['holdout_final']})")
    return 0


def _versions() -> dict:
    import platform

    import torch

    v = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import openmm

        v["openmm"] = openmm.__version__
    except Exception:  # pragma: no cover
        pass
    return v


def _device(spec: str) -> str:
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and not torch.cuda.is_available():
        raise _err("--device cuda: no CUDA device is available", "use --device cpu or --device auto")
    return spec


# ============================================================================ run settings
#: Default ``tps run`` settings per system (geodesic and sampler; values of the benchmarks' full protocols).
RUN_DEFAULTS = {
    "muller-brown": dict(paths=1000, points=128, steps_per_point=15, step_size=4e-4, frames_per_point=1,
                         logsnr=6.0, init_dips=(6.0, 2.0, -2.0), coarse_points=32, coarse_iter=150, max_iter=150,
                         low_variance_threshold=5.0, low_variance_weight=1e5,
                         avoid_logsnr=6.0, avoid_kl_margin=20.0, avoid_weight=1e3),
    "alanine-dipeptide-phipsi": dict(paths=1000, points=128, steps_per_point=12, step_size=3e-3, frames_per_point=12,
                                     logsnr=4.0, init_dips=(4.0, 1.0), coarse_points=32, coarse_iter=60, max_iter=60,
                                     clamp=True, image_chord_ratio=1.5, low_variance_threshold=3.0,
                                     low_variance_weight=1e4, avoid_logsnr=4.0, avoid_kl_margin=20.0,
                                     avoid_weight=1e3),
    "alanine-dipeptide": dict(paths=30, points=64, steps_per_point=250, frames_per_point=10, logsnr=4.0, n_nodes=8,
                              max_iter=30, coarse_points=16, coarse_iter=20, init_dips=(2.0, -1.0),
                              low_variance_threshold=3.0, low_variance_weight=1e4, timestep=0.002, friction=1.0),
}
CONSTRAINTS = ("none", "low-variance", "region-avoiding")
#: Options of each stage that change its output (the rest: out, quiet, config, device, ...).
GEODESIC_KEYS = ("points", "constraint", "avoid", "seed")
SAMPLE_KEYS = ("paths", "steps_per_point", "seed")


def _settings(system: str, args) -> dict:
    s = dict(RUN_DEFAULTS[system])
    s["save_paths"] = getattr(args, "save_paths", None) or (None if system == "alanine-dipeptide" else 100)
    for key in ("paths", "points", "steps_per_point", "max_iter"):
        v = getattr(args, key, None)
        if v is not None:
            s[key] = v
    if getattr(args, "max_iter", None) is not None:
        s["coarse_iter"] = min(s["coarse_iter"], s["max_iter"])
    if s["steps_per_point"] % s["frames_per_point"]:
        s["frames_per_point"] = 1 if system != "alanine-dipeptide" else \
            max(d for d in range(1, s["frames_per_point"] + 1) if s["steps_per_point"] % d == 0)
    if s["points"] < 4:
        raise _err(f"--points {s['points']}: a curve needs at least 4 points", "pass --points 4 or more")
    s["coarse_points"] = min(s["coarse_points"], s["points"])
    constraint = getattr(args, "constraint", None) or "none"
    s["constraint"] = constraint
    avoid = getattr(args, "avoid", None)
    if constraint == "region-avoiding":
        if system == "alanine-dipeptide":
            raise _err("--constraint region-avoiding is not available for the all-atom system",
                       "use --constraint low-variance or none (region avoidance works on the 2-D systems)")
        if avoid is None:
            raise _err("--constraint region-avoiding needs the point to avoid",
                       "add --avoid X Y (phi psi in rad for alanine-dipeptide-phipsi)")
        s["avoid"] = [float(v) for v in avoid]
    elif avoid is not None:
        raise _err("--avoid is only used with --constraint region-avoiding", "add --constraint region-avoiding")
    s["seed"] = int(getattr(args, "seed", 0) or 0)
    return s


def _file_digest(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stage_key(**parts) -> str:
    return json.dumps(_jsonable(parts), sort_keys=True)


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

    probe = RegionAvoidance(x_star, logsnr_star=s["avoid_logsnr"], threshold=0.0)
    with torch.enable_grad():
        x, lam = cx[None].detach(), clam[None].detach()
        _, (eta_x, eta_t, mu_x, mu_t) = segment_products(net, x, lam, clamp=s.get("clamp", False),
                                                         return_parameters=True)
    kl = probe.relative_kl(CurveState(x, lam, eta_x, eta_t, mu_x, mu_t, net))[0].detach()
    threshold = float(kl.min()) + s["avoid_kl_margin"]
    return RegionAvoidance(x_star, logsnr_star=s["avoid_logsnr"], threshold=threshold, weight=s["avoid_weight"]), \
        threshold


def _constraints(s):
    from tps.spacetime import LowVariance

    if s["constraint"] == "low-variance":
        return (LowVariance(s["low_variance_threshold"], weight=s["low_variance_weight"]),)
    return ()


def solve_curve(system: str, model, s: dict, *, progress: bool = False) -> dict:
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
        kw = dict(logsnr=s["logsnr"], n_points=s["points"], init_dips=s["init_dips"],
                  coarse_points=s["coarse_points"], coarse_iter=s["coarse_iter"], max_iter=s["max_iter"],
                  seed=s["seed"])
        constraints = _constraints(s)
        if s["constraint"] == "region-avoiding":
            free = geodesic(net, z_a, z_b, **kw)
            x_star = model.to_model(torch.tensor(s["avoid"], dtype=torch.float64)).to(dtype=dtype, device=dev)
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
        kw = dict(logsnr=s["logsnr"], n_points=s["points"], clamp=s["clamp"], max_iter=s["max_iter"], seed=s["seed"])
        if s["constraint"] == "none":
            r = geodesic(net, x_a, x_b, init_nodes=nodes, **kw)
        else:
            constraints = _constraints(s)
            if s["constraint"] == "region-avoiding":
                from tps.spacetime import LowVariance

                free = geodesic(net, x_a, x_b, init_nodes=nodes, **kw)
                point = torch.tensor(s["avoid"], dtype=torch.float64)
                # the image of the point nearest the free curve's restraint centres
                shifts = TWO_PI * torch.tensor([(i, j) for i in range(-2, 3) for j in range(-2, 3)],
                                               dtype=torch.float64)
                cands = point[None] + shifts
                c = _centres(free.x, free.logsnr)
                x_star = cands[int(torch.cdist(cands, c).min(1).values.argmin())]
                ra, thr = _region_avoidance(net, free.x, free.logsnr, x_star.to(dtype=dtype, device=dev), s)
                extra.update(avoid_threshold=thr, avoid_image=x_star.tolist())
                constraints = (LowVariance(s["low_variance_threshold"] + 0.75, weight=s["low_variance_weight"]), ra)
            r = geodesic(net, x_a, x_b, init_dips=(s["logsnr"],), constraints=constraints,
                         coarse_points=s["coarse_points"], coarse_iter=s["coarse_iter"], **kw)
    elif system == "alanine-dipeptide":
        from tps.workflows.cartesian import solve_geodesic

        endpoints = _aldp_endpoints()
        r = solve_geodesic(model, endpoints, logsnr=s["logsnr"], n_points=s["points"], n_nodes=s["n_nodes"],
                           max_iter=s["max_iter"], init_dips=s["init_dips"], coarse_points=s["coarse_points"],
                           coarse_iter=s["coarse_iter"], constraints=_constraints(s), seed=s["seed"],
                           progress=progress)
        extra["origin_nm"] = endpoints.origin.tolist()
    else:  # pragma: no cover
        raise _err(f"unknown system {system!r}", f"choose one of {', '.join(SYSTEMS)}")
    x = r.x.detach().double().cpu()
    lam = r.logsnr.detach().double().cpu()
    with torch.no_grad():
        alpha = torch.sigmoid(lam).sqrt().reshape(-1, *([1] * (x.dim() - 1)))
        centres = model.to_physical(x / alpha)
    return {"format": "tps-curve/1", "system": system, "x": x, "logsnr": lam, "centres": centres,
            "scaling": model.scaling.as_dict(), "curve_energy": float(r.energy),
            "curve_energy_initial": float(r.initial_energy), "n_evaluations": int(r.n_evaluations),
            "wall_s": time.perf_counter() - t0, "extra": _jsonable(extra)}


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
    cand = torch.nonzero(chords <= s["image_chord_ratio"] * chords.min()).flatten()
    xa = x_a.expand(len(cand), 2).clone()
    xb = x_b0[None] + shifts[cand]
    r = geodesic(net, xa, xb, batched=True, n_points=s["coarse_points"], init_dips=s["init_dips"],
                 logsnr=s["logsnr"], clamp=s["clamp"], max_iter=s["coarse_iter"], seed=s["seed"])
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


_ENDPOINTS = None


def _aldp_endpoints():
    """Minimised, aligned C5 and C7ax structures (cached per process)."""
    global _ENDPOINTS
    if _ENDPOINTS is None:
        from tps.systems import alanine_dipeptide as aldp
        from tps.workflows.cartesian import prepare_endpoints

        top = aldp.topology()
        minima = aldp.minimized_structures()
        _ENDPOINTS = prepare_endpoints(aldp.create_openmm_system(top), minima["C5"], minima["C7ax"])
    return _ENDPOINTS


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
def sample_curve(system: str, curve: dict, s: dict, *, progress: bool = False):
    """Annealed Langevin paths along ``curve``; returns ``(paths, wall_s)``."""
    torch = _threads()
    from tps.diffusion.scaling import AffineScaling

    t0 = time.perf_counter()
    scaling = AffineScaling.from_dict(curve["scaling"])
    cx, clam = curve["x"].double(), curve["logsnr"].double()
    gen = torch.Generator().manual_seed(s["seed"] + 1)
    if system == "muller-brown":
        from tps.sampling import annealed_langevin
        from tps.systems import load

        sysm = load("muller-brown")
        paths = annealed_langevin(sysm.potential, cx, clam, kT=sysm.kT, n_paths=s["paths"],
                                  steps_per_point=s["steps_per_point"], step_size=s["step_size"], scaling=scaling,
                                  frames_per_point=s["frames_per_point"], x_start=sysm.endpoints["A"],
                                  generator=gen, progress=progress)
    elif system == "alanine-dipeptide-phipsi":
        from tps.potentials.grid import bilinear
        from tps.sampling import annealed_langevin
        from tps.sampling.paths import Paths

        grid, pot, kT, start, _ = _phipsi_surface()
        raw = annealed_langevin(pot, cx, clam, kT=kT, n_paths=s["paths"], steps_per_point=s["steps_per_point"],
                                step_size=s["step_size"], scaling=scaling, frames_per_point=s["frames_per_point"],
                                x_start=start, generator=gen, progress=progress)
        # reported energies: periodic bilinear interpolation of the raw grid (never the spline)
        info = dict(raw.info, energies="periodic bilinear interpolation of the raw free-energy grid")
        paths = Paths(raw.frames, bilinear(grid, raw.frames), raw.n_energy_evals, raw.kT, info)
    elif system == "alanine-dipeptide":
        from tps.systems import alanine_dipeptide as aldp
        from tps.workflows.cartesian import curve_restraints, sample_paths

        endpoints = _aldp_endpoints()
        omm = aldp.create_openmm_system(aldp.topology())
        restraints = curve_restraints(cx, clam, scaling, temperature=aldp.TEMPERATURE, origin=endpoints.origin)
        paths = sample_paths(omm, restraints, endpoints, n_paths=s["paths"], steps_per_point=s["steps_per_point"],
                             temperature=aldp.TEMPERATURE, timestep=s["timestep"], friction=s["friction"],
                             frames_per_point=s["frames_per_point"], seed=s["seed"], progress=progress)
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


class _silence_c_output:
    """Redirect the process's stdout and stderr file descriptors to /dev/null (the DCD reader's C
    plugin prints two lines per file); Python-level output is flushed first and restored after."""

    def __enter__(self):
        self.saved = []
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            null = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                self.saved.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            os.close(null)
        except (OSError, ValueError, AttributeError):  # no real descriptors (e.g. embedded): leave as is
            self.__exit__()
            self.saved = []
        return self

    def __exit__(self, *exc):
        for fd, saved in self.saved:
            os.dup2(saved, fd)
            os.close(saved)
        self.saved = []
        return False


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
    n_sel = int((curve or {}).get("extra", {}).get("n_selection_energy_evals", 0))
    if n_sel:
        row["n_selection_energy_evals"] = n_sel
        row["n_energy_evals"] = int(row["n_energy_evals"]) + n_sel
    return _jsonable(row)


# ============================================================================ figures
def _wrapped_lines(xy):
    import numpy as np

    out = []
    for i in range(len(xy)):
        if i and np.abs(xy[i] - xy[i - 1]).max() > math.pi:
            out.append([np.nan, np.nan])
        out.append(xy[i])
    return np.asarray(out)


def figure(system: str, paths, curve: Optional[dict], path, *, n_show: int = 30, title: str = "",
           n_total: Optional[int] = None) -> Path:
    """``paths.png``: paths over the potential (Muller-Brown) or the (phi, psi) free-energy surface."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from tps.io import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    frames = paths.frames[:n_show].detach().cpu().double()
    if system == "muller-brown":
        from tps.systems import load
        from tps.systems.muller_brown import BOX

        sysm = load("muller-brown")
        gx, gy = np.meshgrid(np.linspace(*BOX[0], 200), np.linspace(*BOX[1], 200))
        grid = torch.as_tensor(np.stack([gx, gy], -1).reshape(-1, 2))
        with torch.no_grad():
            u = sysm.potential.energy(grid).reshape(gx.shape).numpy()
        cs = ax.contourf(gx, gy, np.clip(u, None, 100), levels=30, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="potential energy U (dimensionless, clipped at 100)")
        for p in frames.numpy():
            ax.plot(p[:, 0], p[:, 1], color="white", lw=0.4, alpha=0.5)
        if curve is not None:  # centres of weak restraints (logSNR < 0) wander off: not drawn
            c = curve["centres"].numpy().copy()
            c[curve["logsnr"].numpy() < 0] = np.nan
            ax.plot(c[:, 0], c[:, 1], color="red", lw=1.5, label="geodesic restraint centres (logSNR >= 0)")
        ends = torch.stack([sysm.endpoints["A"], sysm.endpoints["B"]]).numpy()
        ax.set_xlim(*BOX[0])
        ax.set_ylim(*BOX[1])
        ax.set_xlabel("x (dimensionless)")
        ax.set_ylabel("y (dimensionless)")
    else:
        from tps.systems import alanine_dipeptide as aldp

        phi, psi, fes = aldp.load_free_energy_surface()
        cs = ax.contourf(phi, psi, np.clip(fes, None, 60), levels=24, cmap="viridis")
        fig.colorbar(cs, ax=ax, label="free energy (kJ/mol), package (phi, psi) surface")
        if system == "alanine-dipeptide":
            cv = aldp.load().states["C7ax"].cv
            pp = cv(frames).numpy()
            ends = cv(torch.as_tensor(np.stack([_aldp_endpoints().start, _aldp_endpoints().target]))).numpy()
        else:
            pp = (frames.numpy() + math.pi) % TWO_PI - math.pi
            _, _, _, start, end = _phipsi_surface()
            ends = torch.stack([start, end]).numpy()
        for p in pp:
            line = _wrapped_lines(p)
            ax.plot(line[:, 0], line[:, 1], color="white", lw=0.4, alpha=0.6)
        if curve is not None and system == "alanine-dipeptide-phipsi":
            c = (curve["centres"].numpy() + math.pi) % TWO_PI - math.pi
            c[curve["logsnr"].numpy() < 0] = np.nan
            line = _wrapped_lines(c)
            ax.plot(line[:, 0], line[:, 1], color="red", lw=1.5, label="geodesic restraint centres (logSNR >= 0)")
        ax.set_xlim(-math.pi, math.pi)
        ax.set_ylim(-math.pi, math.pi)
        ax.set_xlabel(r"$\phi$ (rad)")
        ax.set_ylabel(r"$\psi$ (rad)")
    ax.plot(ends[:, 0], ends[:, 1], "r*", ms=12, label="endpoints")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(title or f"{system}: {min(n_show, paths.n_paths)} of {n_total or paths.n_paths} transition paths",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


# ============================================================================ run / geodesic / sample
_SAMPLING_ONLY = ("paths", "steps_per_point", "step_size", "frames_per_point", "timestep", "friction", "save_paths")


def _geodesic_key(system: str, s: dict, model_info: dict) -> str:
    return _stage_key(system=system, model_sha256=model_info["sha256"],
                      settings={k: v for k, v in s.items() if k not in _SAMPLING_ONLY}, version=_version())


def _sampling_key(gkey: str, s: dict) -> str:
    return _stage_key(geodesic=gkey, settings={k: s[k] for k in _SAMPLING_ONLY if k in s}, seed=s["seed"])


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_results(path: Path, results: dict) -> None:
    try:
        from tps.io import save_results
    except ImportError:  # pragma: no cover - older tps.io
        save_results = None
    if save_results is not None:
        save_results(_jsonable(results), path)
    else:  # pragma: no cover
        from tps.io import write_json

        write_json(path, _jsonable(results))


def _check_out_dir(out: Path, option: str = "--out") -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise _err(f"{option} {out}: exists and is not a directory", "pass a directory name")
    return out


def _save_curve(path: Path, curve: dict) -> None:
    from tps.io import save_torch

    save_torch(path, curve)


def _summary_line(system, row, timings) -> str:
    unit = "" if system == "muller-brown" else " kJ/mol"
    return (f"{system}: {row['n_paths']} paths, target_hit_fraction {row['target_hit_fraction']:.3f}, "
            f"max_energy {row['max_energy_mean']:.2f} +- {row['max_energy_std']:.2f}{unit} (minmax "
            f"{row['minmax']:.2f}), max_step {row['max_step']:.4g}; "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def cmd_run(args) -> int:
    torch = _threads()
    system = args.system
    s = _settings(system, args)
    out = _check_out_dir(args.out or Path("runs") / system)
    device = _device(args.device)
    t_start = time.perf_counter()
    model, minfo = load_model(system, args.model, device=device)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    state = {} if args.force else _read_state(state_path)
    gkey = _geodesic_key(system, s, minfo)
    curve_path = out / "curve.pt"
    timings, resumed = {}, {"geodesic": False, "sampling": False}
    curve = None
    if state.get("geodesic", {}).get("key") == gkey and curve_path.is_file():
        try:
            curve = _load_curve(curve_path, system)
            resumed["geodesic"] = curve.get("key") == gkey
            if not resumed["geodesic"]:
                curve = None
        except UserError:
            curve = None
    from tps.io import write_json

    if curve is None:
        _say(args, f"[1/3] geodesic ({system}, {s['points']} points, constraint {s['constraint']})")
        curve = solve_curve(system, model, s, progress=_progress(args))
        curve["key"] = gkey
        _save_curve(curve_path, curve)
        state = {"geodesic": {"key": gkey, "file": curve_path.name, "wall_s": curve["wall_s"], "date": _now()}}
        write_json(state_path, state)
    else:
        _say(args, f"[1/3] geodesic: reusing {curve_path} (same settings and model)")
    timings["geodesic_s"] = curve["wall_s"]
    skey = _sampling_key(gkey, s)
    paths, row = None, None
    method = "spacetime-geodesic" + ("" if s["constraint"] == "none" else f"-{s['constraint']}")
    saved = state.get("sampling", {})
    if saved.get("key") == skey and isinstance(saved.get("metrics"), dict) and _paths_file(system, out).exists():
        try:
            paths = load_run_paths(system, out)
            row = saved["metrics"]
            resumed["sampling"] = True
            timings["sampling_s"] = float(saved.get("wall_s", float("nan")))
            timings["metrics_s"] = float(saved.get("metrics_s", float("nan")))
            _say(args, f"[2/3] paths: reusing {_paths_file(system, out)} and their metrics (same settings)")
        except Exception:
            paths, row = None, None
    if paths is None:
        _say(args, f"[2/3] annealed Langevin: {s['paths']} paths x {s['points']} points x "
                   f"{s['steps_per_point']} steps")
        paths, t_sample = sample_curve(system, curve, s, progress=_progress(args))
        timings["sampling_s"] = t_sample
        t0 = time.perf_counter()
        row = metrics(system, paths, n_training_energy_evals=int(model.metadata.get("n_training_energy_evals", 0)),
                      wall_s=timings["geodesic_s"] + t_sample, geodesic_wall_s=timings["geodesic_s"], method=method,
                      curve=curve)
        timings["metrics_s"] = time.perf_counter() - t0
        n_save = s["save_paths"] or paths.n_paths
        if n_save < paths.n_paths:
            paths = paths[:n_save]
        files = save_run_paths(system, paths, out)
        state["sampling"] = {"key": skey, "files": [str(Path(f).relative_to(out)) for f in files],
                             "wall_s": t_sample, "metrics_s": timings["metrics_s"], "metrics": row, "date": _now()}
        write_json(state_path, _jsonable(state))
    _say(args, "[3/3] figure")
    t0 = time.perf_counter()
    figure(system, paths, curve, out / "paths.png", n_total=row["n_paths"])
    timings["figure_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    results = {
        "system": system,
        "description": DESCRIPTIONS[system],
        "command": shlex.join(["tps"] + list(args._argv)),
        "package_version": _version(),
        "date": _now(),
        "seed": s["seed"],
        "settings": s,
        "model": minfo | {"metadata": {k: v for k, v in model.metadata.items() if k != "recipe"}},
        "curve": {"curve_energy": curve["curve_energy"], "curve_energy_initial": curve["curve_energy_initial"],
                  "n_evaluations": curve["n_evaluations"], "logsnr_min": float(curve["logsnr"].min()),
                  "logsnr_mean": float(curve["logsnr"].mean()), **curve.get("extra", {})},
        "metrics": row,
        "timings": timings,
        "resumed": resumed,
        "files": {"paths": str(_paths_file(system, out).relative_to(out)), "figure": "paths.png",
                  "curve": "curve.pt"},
        "energy_unit": "dimensionless" if system == "muller-brown" else "kJ/mol",
        "hardware": {"device": device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
        "versions": _versions(),
    }
    if system == "alanine-dipeptide":
        results["files"]["topology"] = "paths/topology.pdb"
    _write_results(out / "results.json", results)
    if not args.quiet:
        print(_summary_line(system, row, timings))
        print(f"wrote {out / 'results.json'}, {out / 'paths.png'}, {out / results['files']['paths']}, {curve_path}")
    return 0


def cmd_geodesic(args) -> int:
    _threads()
    system = args.system
    s = _settings(system, args)
    out = Path(args.out)
    if out.is_dir():
        raise _err(f"--out {out}: is a directory", "pass a file name such as curve.pt")
    device = _device(args.device)
    model, minfo = load_model(system, args.model, device=device)
    curve = solve_curve(system, model, s, progress=_progress(args))
    curve["key"] = _geodesic_key(system, s, minfo)
    curve["model"] = {k: minfo[k] for k in ("source", "sha256", "network")}
    curve["settings"] = _jsonable(s)
    _save_curve(out, curve)
    if not args.quiet:
        print(f"{system}: curve energy {curve['curve_energy']:.4g} (straight line {curve['curve_energy_initial']:.4g}), "
              f"logSNR min {float(curve['logsnr'].min()):.2f}, {curve['wall_s']:.1f} s; wrote {out}")
    return 0


def cmd_sample(args) -> int:
    torch = _threads()
    system = args.system
    curve = _load_curve(args.curve, system)
    s = _settings(system, args)
    s["points"] = int(curve["x"].shape[0])
    out = _check_out_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths, t_sample = sample_curve(system, curve, s, progress=_progress(args))
    row = metrics(system, paths, wall_s=t_sample, geodesic_wall_s=float(curve.get("wall_s", float("nan"))),
                  curve=curve)
    if s["save_paths"] and s["save_paths"] < paths.n_paths:
        paths = paths[:s["save_paths"]]
    save_run_paths(system, paths, out)
    figure(system, paths, curve, out / "paths.png", n_total=row["n_paths"])
    results = {"system": system, "command": shlex.join(["tps"] + list(args._argv)), "package_version": _version(),
               "date": _now(), "seed": s["seed"], "settings": s, "curve_file": str(args.curve),
               "metrics": row, "timings": {"sampling_s": t_sample},
               "files": {"paths": str(_paths_file(system, out).relative_to(out)), "figure": "paths.png"},
               "hardware": {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
               "versions": _versions()}
    _write_results(out / "results.json", results)
    if not args.quiet:
        print(_summary_line(system, row, {"sampling_s": t_sample}))
        print(f"wrote {out / 'results.json'}, {out / 'paths.png'}, {out / results['files']['paths']}")
    return 0


# ============================================================================ check-energies
def cmd_check_energies(args) -> int:
    _threads()
    import numpy as np

    traj = Path(args.traj)
    if not traj.is_file() and not Path(str(traj) + ".json").is_file():
        raise _err(f"{traj}: no such file", "pass a trajectory written by 'tps run' (.dcd, .pdb, .h5 or .npz)")
    ext = traj.suffix.lower()
    if ext not in (".dcd", ".pdb", ".h5", ".hdf5", ".npz"):
        raise _err(f"{traj}: unknown trajectory format {traj.suffix or '(none)'!r}",
                   "pass a .dcd, .pdb, .h5 or .npz file")
    from openmm import app

    from tps.io import load_paths
    from tps.metrics.molecular import openmm_energies
    from tps.systems import alanine_dipeptide as aldp

    try:
        with _silence_c_output():
            paths = load_paths(traj)
    except ValueError as exc:
        raise _err(f"{traj}: cannot be read ({_oneline(exc)[:200]})",
                   "pass a trajectory written by 'tps run' or tps.io.save_paths") from None
    frames = paths.frames.detach().cpu().double().numpy()
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise _err(f"{traj}: frames of shape {frames.shape[1:]} per path are not all-atom positions",
                   "check-energies needs a molecular trajectory (n_atoms x 3 per frame), e.g. the paths of "
                   "'tps run alanine-dipeptide'")
    top_path = Path(args.top) if args.top else None
    if top_path is None:
        if ext == ".pdb":
            top_path = traj
        elif ext in (".h5", ".hdf5"):
            top_path = None
        else:
            guess = traj.parent / "topology.pdb"
            if not guess.is_file():
                raise _err(f"{traj}: a {ext} file has no topology", "pass --top TOPOLOGY.pdb")
            top_path = guess
    if top_path is not None and not top_path.is_file():
        raise _err(f"--top {top_path}: no such file", "pass the topology PDB written beside the trajectory")
    if top_path is not None:
        topology = app.PDBFile(str(top_path)).topology
    else:
        import mdtraj

        topology = mdtraj.load_hdf5(str(traj), frame=0).topology.to_openmm()
    if frames.shape[2] != topology.getNumAtoms():
        raise _err(f"{traj}: {frames.shape[2]} atoms per frame but the topology has {topology.getNumAtoms()}",
                   "pass the topology this trajectory was written with (--top)")
    try:
        system = aldp.create_openmm_system(topology)
    except ValueError as exc:
        raise _err(f"the force field ({aldp.FORCE_FIELD}) cannot build this topology ({_oneline(exc)[:160]})",
                   "check-energies uses the alanine dipeptide force field; pass an alanine dipeptide topology") \
            from None
    lengths = paths.info.get("lengths")
    lengths = [frames.shape[1]] * frames.shape[0] if lengths is None else [int(v) for v in np.asarray(lengths)]
    flat = np.concatenate([frames[i, :n] for i, n in enumerate(lengths)])
    stored = paths.energies.detach().cpu().double().numpy()
    stored = np.concatenate([stored[i, :n] for i, n in enumerate(lengths)])
    recomputed = openmm_energies(system, flat)
    report = {"file": str(traj), "n_paths": len(lengths), "n_frames": int(len(flat)),
              "force_field": aldp.FORCE_FIELD, "energy_unit": "kJ/mol",
              "recomputed_min": float(recomputed.min()), "recomputed_max": float(recomputed.max()),
              "tolerance": args.tolerance}
    status = 0
    if np.isfinite(stored).any():
        mask = np.isfinite(stored)
        dev = np.abs(stored[mask] - recomputed[mask])
        worst = int(np.flatnonzero(mask)[int(dev.argmax())])
        report.update(n_compared=int(mask.sum()), max_abs_deviation=float(dev.max()),
                      worst_frame=worst, stored_at_worst=float(stored[worst]),
                      recomputed_at_worst=float(recomputed[worst]))
        ok = bool(dev.max() <= args.tolerance)
        report["agree"] = ok
        status = 0 if ok else 1
        line = (f"{traj}: {len(flat)} frames, stored and OpenMM energies {'agree' if ok else 'DISAGREE'}: "
                f"max |deviation| {dev.max():.3g} kJ/mol (tolerance {args.tolerance:g}) at frame {worst} "
                f"(stored {stored[worst]:.4f}, OpenMM {recomputed[worst]:.4f})")
    else:
        report["agree"] = None
        line = (f"{traj}: {len(flat)} frames, no stored energies to compare; OpenMM energies "
                f"{recomputed.min():.2f} .. {recomputed.max():.2f} kJ/mol")
    if args.json:
        print(json.dumps(_jsonable(report)))
    else:
        print(line)
    return status


# ============================================================================ bench
def _benchmarks_root() -> Optional[Path]:
    import tps

    root = Path(tps.__file__).resolve().parents[1]
    return root if (root / "benchmarks" / "__main__.py").is_file() else None


def cmd_bench(args) -> int:
    root = _benchmarks_root()
    if root is None:
        raise _err("the benchmarks folder is not available in this installation (it lives in the source "
                   "repository, beside tps/)", "clone the repository and install it with 'pip install -e .'")
    import importlib

    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        bench = importlib.import_module("benchmarks.__main__")
    except ImportError:
        import subprocess

        return subprocess.call([sys.executable, "-m", "benchmarks", args.suite, *args.rest], cwd=root)
    if args.suite is None:
        raise _err("tps bench needs a suite name", f"valid suites: {', '.join(bench.SUITES)}")
    if args.suite not in bench.SUITES:
        raise _err(f"unknown benchmark suite {args.suite!r}", f"valid suites: {', '.join(bench.SUITES)}")
    try:
        return int(bench.main([args.suite, *args.rest]) or 0)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2


# ============================================================================ config files
def _read_config(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise _err(f"--config {path}: no such file", "pass a TOML (.toml) or YAML (.yaml/.yml) file")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise _err(f"--config {path}: unknown format {path.suffix or '(none)'!r}",
                       "use a .toml, .yaml or .yml file")
    except UserError:
        raise
    except Exception as exc:
        raise _err(f"--config {path}: malformed ({_oneline(exc)[:200]})", "fix the file's syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _err(f"--config {path}: expected a table of option = value", "write e.g. 'paths = 20'")
    return data


def _config_defaults(sub: argparse.ArgumentParser, path: Path) -> dict:
    """Config keys (long option names, '-' or '_') converted like the command line's values."""
    data = _read_config(path)
    actions = {}
    for a in sub._actions:
        longs = [o for o in a.option_strings if o.startswith("--")]
        if not longs or a.dest in ("help", "config"):
            continue
        actions[longs[0][2:]] = a
    out = {}
    for key, value in data.items():
        name = str(key).replace("_", "-")
        if name not in actions:
            raise _err(f"--config {path}: unknown key {key!r}", f"valid keys: {', '.join(sorted(actions))}")
        a = actions[name]
        try:
            if isinstance(a, argparse._StoreTrueAction):
                if not isinstance(value, bool):
                    raise ValueError("expected true or false")
                v = value
            elif a.nargs not in (None, "?"):
                if not isinstance(value, (list, tuple)) or (isinstance(a.nargs, int) and len(value) != a.nargs):
                    raise ValueError(f"expected a list of {a.nargs} values")
                v = [a.type(str(x)) if a.type else x for x in value]
            else:
                if isinstance(value, (dict, list)):
                    raise ValueError("expected a single value")
                v = a.type(str(value)) if a.type else value
            if a.choices is not None and v not in a.choices:
                raise ValueError(f"expected one of {', '.join(map(str, a.choices))}")
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise _err(f"--config {path}: bad value {value!r} for {key!r} ({_oneline(exc)})",
                       f"see 'tps {sub.prog.split()[-1]} --help'") from None
        out[a.dest] = v
    return out


# ============================================================================ systems
def cmd_systems(args) -> int:
    from tps import pretrained
    from tps import systems as registry

    print("bundled systems (tps.systems.available()):")
    for name in registry.available():
        runs = [k for k, v in BASE_SYSTEM.items() if v == name]
        print(f"  {name}: used by 'tps run {' / '.join(runs)}'")
    print()
    print("tps run SYSTEM (pretrained model from tps.pretrained):")
    for name in SYSTEMS:
        model = name if name in pretrained.available() else "none"
        print(f"  {name:26s} {DESCRIPTIONS[name]}; pretrained model: {model}")
    return 0


# ============================================================================ parser and main
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``tps: error: <problem>; <fix>``, exit status 2)."""

    def error(self, message):
        raise UserError(f"{message}; see '{self.prog} --help'")


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tps", description="Transition path sampling with spacetime geodesics of diffusion models "
                "(Karczewski et al., arXiv 2505.17517). 'tps run SYSTEM' computes transition paths with a "
                "pretrained model; 'tps systems' lists the systems.",
                epilog="Examples: tps run muller-brown; tps run alanine-dipeptide --paths 20 --out runs/aldp; "
                       "tps check-energies runs/aldp/paths/path_000.dcd --top runs/aldp/paths/topology.pdb")
    p.add_argument("--version", action="version", version=f"tps {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("systems", help="list the bundled systems and their pretrained models",
                       description="List the bundled systems, what each is, and the pretrained model 'tps run' uses.")
    s.set_defaults(func=cmd_systems)

    t = sub.add_parser("train", help="train a diffusion model (checkpoint + recipe JSON)",
                       description="Train the diffusion model of SYSTEM as the shipped pretrained models were "
                                   "trained, and write the checkpoint FILE.pt plus FILE.json (the exact command, "
                                   "every setting, seed, versions, training cost and held-out loss). Defaults "
                                   "per system: " + "; ".join(f"{k}: {v}" for k, v in TRAIN_DEFAULTS.items()))
    t.add_argument("system", choices=SYSTEMS, metavar="SYSTEM", help=f"one of {', '.join(SYSTEMS)}")
    t.add_argument("--out", required=True, type=Path, help="checkpoint file (.pt); the recipe goes beside it (.json)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--steps", type=_positive_int, help="training steps")
    t.add_argument("--batch-size", type=_positive_int, help="training batch size")
    t.add_argument("--hidden", type=_positive_int, help="hidden width of the network")
    t.add_argument("--layers", type=_positive_int, help="residual blocks (MLP) or message-passing layers (EGNN)")
    t.add_argument("--data-steps", type=_positive_int,
                   help="Langevin steps per chain (2-D systems) or MD steps per start structure (all-atom)")
    t.add_argument("--chains", type=_positive_int, help="training-data chains (2-D systems)")
    t.add_argument("--lr", type=_positive_float, help="learning rate")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="training device (default cpu)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    def common(q, *, model=True, constraint=True, sampling=True, points=True):
        q.add_argument("system", choices=SYSTEMS, metavar="SYSTEM", help=f"one of {', '.join(SYSTEMS)}")
        q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        if sampling:
            q.add_argument("--paths", type=_positive_int,
                           help="number of transition paths (default: muller-brown and alanine-dipeptide-phipsi "
                                "1000, alanine-dipeptide 30)")
            q.add_argument("--save-paths", type=_positive_int,
                           help="paths written to disk (default 100 for the 2-D systems, all for alanine-dipeptide); "
                                "metrics always use every path")
            q.add_argument("--steps-per-point", type=_positive_int,
                           help="Langevin (or OpenMM MD) steps per curve point (default 15 / 12 / 250)")
        if points:
            q.add_argument("--points", type=_positive_int, help="points on the geodesic (default 128 / 128 / 64)")
            q.add_argument("--max-iter", type=_positive_int,
                           help="L-BFGS iterations of the geodesic solver per stage (default 150 / 60 / 30)")
        if model:
            q.add_argument("--model", type=Path, help="a checkpoint from 'tps train' instead of the pretrained model")
            q.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                           help="device of the model and geodesic solver (default cpu)")
        if constraint:
            q.add_argument("--constraint", choices=CONSTRAINTS, default="none",
                           help="geodesic constraint (default none); region-avoiding (2-D systems) needs --avoid")
            q.add_argument("--avoid", type=float, nargs=2, metavar=("X", "Y"),
                           help="point the region-avoiding geodesic keeps away from (x y, or phi psi in rad)")
        q.add_argument("--config", type=Path, help="TOML or YAML file of option values (keys: the long option "
                                                   "names); command-line options override it")
        q.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    r = sub.add_parser("run", help="transition paths with a pretrained model (geodesic + paths + metrics + figure)",
                       description="Transition paths for SYSTEM: pretrained diffusion model -> spacetime geodesic "
                                   "-> annealed Langevin paths -> metrics and figure. Writes DIR/results.json, "
                                   "DIR/paths.png, DIR/curve.pt and the paths (paths.npz; all-atom: "
                                   "paths/paths_000.dcd ... with paths/topology.pdb) into --out DIR (default "
                                   "runs/SYSTEM). An interrupted run resumes: stages whose outputs exist with the "
                                   "same settings (recorded in DIR/state.json) are reused.")
    common(r)
    r.add_argument("--out", type=Path, help="output directory (default runs/SYSTEM)")
    r.add_argument("--force", action="store_true", help="recompute every stage even if saved outputs match")
    r.set_defaults(func=cmd_run)

    g = sub.add_parser("geodesic", help="solve the spacetime geodesic only (writes curve.pt)",
                       description="Solve the spacetime geodesic of SYSTEM between its endpoints with the "
                                   "pretrained (or --model) diffusion model; write it to --out (curve.pt) for "
                                   "'tps sample'.")
    common(g, sampling=False)
    g.add_argument("--out", type=Path, required=True, help="curve file to write (e.g. curve.pt)")
    g.set_defaults(func=cmd_geodesic)

    m = sub.add_parser("sample", help="annealed-Langevin paths along a saved curve",
                       description="Run annealed Langevin along the curve of 'tps geodesic' (or 'tps run') and "
                                   "write results.json, paths.png and the paths into --out DIR.")
    common(m, model=False, constraint=False, points=False)
    m.add_argument("--curve", type=Path, required=True, help="curve.pt from 'tps geodesic' or 'tps run'")
    m.add_argument("--out", type=Path, required=True, help="output directory")
    m.set_defaults(func=cmd_sample)

    c = sub.add_parser("check-energies", help="recompute trajectory energies with OpenMM and compare",
                       description="Recompute the potential energy of every frame of TRAJ with OpenMM "
                                   "(alanine dipeptide force field, amber99sbildn, vacuum) and, when TRAJ carries "
                                   "stored energies (files written by 'tps run' / tps.io.save_paths), report the "
                                   "largest deviation. Exit status 1 when they disagree beyond --tolerance.")
    c.add_argument("traj", type=Path, metavar="TRAJ", help="trajectory: .dcd (with its .json sidecar), .pdb, .h5 "
                                                           "or .npz")
    c.add_argument("--top", type=Path, help="topology PDB (default: TRAJ itself for .pdb, embedded for .h5, "
                                            "topology.pdb beside TRAJ otherwise)")
    c.add_argument("--tolerance", type=_positive_float, default=0.05,
                   help="largest allowed |stored - recomputed| in kJ/mol (default 0.05; float32 DCD coordinates "
                        "alone cause ~1e-3)")
    c.add_argument("--json", action="store_true", help="print the report as one JSON line")
    c.set_defaults(func=cmd_check_energies)

    b = sub.add_parser("bench", help="run a benchmark suite (python -m benchmarks SUITE ...)",
                       description="Delegate to 'python -m benchmarks SUITE [args...]' (needs the source "
                                   "repository: the benchmarks folder lives beside tps/). Suites: muller-brown, "
                                   "geodesic-solver, mb-geometry, aldp-2d, aldp-cartesian, all; "
                                   "'tps bench SUITE --help' shows a suite's options.", add_help=True)
    b.add_argument("suite", metavar="SUITE", nargs="?", help="benchmark suite name")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the suite")
    b.set_defaults(func=cmd_bench)
    p._subs = {"run": r, "geodesic": g, "sample": m}
    return p


def main(argv=None) -> int:
    """Entry point of the ``tps`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0)
        if getattr(args, "func", None) is None:
            parser.print_help(sys.stderr)
            return 2
        if getattr(args, "config", None) is not None:
            sub = parser._subs[args.command]
            sub.set_defaults(**_config_defaults(sub, args.config))
            args = parser.parse_args(argv)
        args._argv = argv
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"tps: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tps: interrupted; outputs completed so far are kept (rerun the same command to resume)",
              file=sys.stderr)
        return 130
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"tps: error: {_oneline(exc)}; check the path", file=sys.stderr)
        return 2
    except ValueError as exc:
        if os.environ.get("TPS_DEBUG"):
            raise
        print(f"tps: error: {_oneline(exc)}; check the inputs (TPS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


def _oneline(exc) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
