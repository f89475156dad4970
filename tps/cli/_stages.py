"""What ``tps run`` / ``geodesic`` / ``sample`` read from the command line: the system, its protocols
with the command's overrides, what to avoid, the model and the curve file (one-line user errors)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tps.cli._common import UserError, _err, _file_digest, _oneline

CONSTRAINTS = ("none", "low-variance", "region-avoiding")


# ============================================================================ systems and protocols
def load_system(name: str):
    """The registered system ``name`` (:func:`tps.systems.load`)."""
    from tps import systems

    return systems.load(name)


_system = load_system  # the name tps/cli/_train.py and _figures.py use


def run_protocols(system, args):
    """The system's default protocols with the command's options applied (validated).

    ``--paths``, ``--save-paths``, ``--steps-per-point``, ``--centre-noise`` and ``--logsnr-shift``
    (2-D systems only; the OpenMM sampler refuses it) override the sampler protocol (frames per point
    drop to a divisor of the steps); ``--points`` and ``--max-iter`` the geodesic options (the coarse
    stage is capped by them).
    """
    p = system.protocols()
    g, s = p.geodesic, p.sampler
    sampler = {k: getattr(args, a) for k, a in (("n_paths", "paths"), ("steps_per_point", "steps_per_point"),
                                                ("save_paths", "save_paths"), ("centre_noise", "centre_noise"),
                                                ("logsnr_shift", "logsnr_shift"))
               if getattr(args, a, None) is not None}
    if sampler.get("logsnr_shift") is not None and system.topology is not None:
        raise _err(f"--logsnr-shift: the OpenMM sampler of {system.name} does not use it",
                   "use it with the 2-D systems (muller-brown, alanine-dipeptide-phipsi), or omit it")
    if sampler:
        s = s.replace(**sampler)
    if getattr(args, "points", None) is not None:
        g = g.replace(n_points=args.points)
    if getattr(args, "max_iter", None) is not None:
        g = g.replace(max_iter=args.max_iter,
                      coarse_iter=None if g.coarse_iter is None else min(g.coarse_iter, args.max_iter))
    if g.n_points < 4:
        raise _err(f"--points {g.n_points}: a curve needs at least 4 points", "pass --points 4 or more")
    if g.coarse_points is not None:
        g = g.replace(coarse_points=min(g.coarse_points, g.n_points))
    return p.replace(geodesic=g, sampler=s)


def constraint_and_avoid(system, args) -> tuple:
    """``(constraint, avoid, record)`` of the command, validated (``system.avoid_settings``) before
    anything is written.

    ``record``: the validated run settings of what is avoided (``{}`` without region avoidance);
    ``avoid``: what the system's solve keeps away from, made from it: the point ``(x, y)`` (rad for
    (phi, psi)) of a 2-D system, or ``{"structure": path, "sha256": ..., "label": "--avoid-structure"}``
    / ``{"phipsi": (phi, psi), "label": "--avoid-phipsi"}`` for a molecule.
    """
    constraint = getattr(args, "constraint", None) or "none"
    if constraint != "region-avoiding":
        for flag in ("avoid", "avoid_structure", "avoid_phipsi"):
            if getattr(args, flag, None) is not None:
                raise _err(f"--{flag.replace('_', '-')} is only used with --constraint region-avoiding",
                           "add --constraint region-avoiding")
        return constraint, None, {}
    structure = getattr(args, "avoid_structure", None)
    record = system.avoid_settings(point=getattr(args, "avoid", None), phipsi=getattr(args, "avoid_phipsi", None),
                                   structure=None if structure is None else str(structure))
    if record.get("avoid") is not None:
        return constraint, tuple(record["avoid"]), record
    if record.get("avoid_structure") is not None:
        return constraint, {"structure": record["avoid_structure"], "sha256": record.get("avoid_structure_sha256"),
                            "label": "--avoid-structure"}, record
    return constraint, {"phipsi": tuple(record["avoid_phipsi"]), "label": "--avoid-phipsi"}, record


def settings_view(protocols, *, constraint: str = "none", avoid_record=None, seed: int = 0) -> dict:
    """The ``settings`` of ``results.json``: the protocols' flat ``tps run`` settings
    (``Protocols.settings()``), what is avoided, the constraint and the seed."""
    from tps.pipeline.jsonable import jsonable

    out = {**protocols.settings(), **(avoid_record or {}), "constraint": constraint, "seed": int(seed)}
    return jsonable(out)


def legacy_keys(system, protocols, *, model_sha256: str, constraint: str = "none", avoid_record=None,
                seed: int = 0, parallel=None) -> tuple:
    """The ``(geodesic, paths)`` stage keys ``tps run`` wrote before the pipeline (flat settings split
    into the sampler's and the rest), so that run directories of earlier versions resume."""
    from tps.pipeline.jsonable import stage_key
    from tps.cli._common import _version
    from tps.systems.protocols import RUN_FIELDS

    flat = settings_view(protocols, constraint=constraint, avoid_record=avoid_record, seed=seed)
    sampler = [name for name, (part, _) in RUN_FIELDS.items() if part == "sampler"]
    gkey = stage_key(system=system.name, model_sha256=model_sha256,
                     settings={k: v for k, v in flat.items() if k not in sampler}, version=_version())
    extra = {} if parallel is None else {"parallel": parallel}
    skey = stage_key(geodesic=gkey, settings={k: flat[k] for k in sampler if k in flat}, seed=int(seed), **extra)
    return gkey, skey


# ============================================================================ models and curves
def load_model(system, model_path=None, *, device: str = "cpu"):
    """The pretrained model of ``system`` or a user checkpoint, checked for compatibility.

    Returns ``(model, info)`` with ``info = {"source", "path", "sha256", "network"}``.
    """
    from tps import pretrained
    from tps.diffusion.checkpoint import DiffusionModel

    name = system.name
    if model_path is None:
        if system.pretrained is None:
            raise _err(f"{name} has no pretrained model", f"train one with 'tps train {name} --out MODEL.pt' and "
                                                          "pass --model MODEL.pt")
        path = pretrained.path(system.pretrained)
        source = f"pretrained:{system.pretrained}"
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
                   f"pass a checkpoint written by 'tps train {name}'") from None
    try:
        system.check_model(model, source=f"--model {source}")
    except ValueError as exc:
        raise _err(_oneline(exc), f"pass a model trained with 'tps train {name}', or omit --model to use the "
                                  "pretrained one") from None
    return model, {"source": source, "path": str(path), "sha256": _file_digest(path),
                   "network": type(model.network).__name__}


def load_curve(path, system_name=None):
    """The :class:`~tps.spacetime.curve.Curve` of ``--curve`` (any version's ``curve.pt``), checked
    to belong to ``system_name``."""
    from tps.spacetime.curve import Curve

    path = Path(path)
    if not path.is_file():
        raise _err(f"--curve {path}: no such file",
                   f"write one with 'tps geodesic {system_name or 'SYSTEM'} --out {path}'")
    try:
        curve = Curve.load(path)
    except ValueError as exc:
        problem = _oneline(exc) if str(exc).startswith("not a readable") else "not a tps curve file"
        raise _err(f"--curve {path}: {problem}", "pass a curve.pt written by 'tps geodesic' or 'tps run'") from None
    if system_name is not None and curve.system != system_name:
        raise _err(f"--curve {path}: solved for {curve.system!r}, not {system_name!r}",
                   f"use 'tps sample {curve.system} ...' or solve a curve for {system_name}")
    return curve


def with_points(protocols, curve):
    """``protocols`` whose geodesic has the curve's number of points (``tps sample``)."""
    return protocols.replace(geodesic=dataclasses.replace(protocols.geodesic, n_points=curve.n_points))


__all__ = ["CONSTRAINTS", "UserError", "load_system", "run_protocols", "constraint_and_avoid", "settings_view",
           "legacy_keys",
           "load_model", "load_curve", "with_points"]
