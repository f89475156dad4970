"""``tps run alanine-dipeptide --constraint region-avoiding``: what to avoid (``--avoid-structure`` /
``--avoid-phipsi``), the two solves, and the paths' closest approach (:mod:`tps.workflows.avoidance`)."""

from __future__ import annotations

from pathlib import Path

from tps.cli._common import _aldp_endpoints, _err, _file_digest, _oneline


def molecular_avoid_settings(args) -> dict:
    """Validated ``--avoid-structure`` / ``--avoid-phipsi`` of the all-atom system (nothing is written
    before this passes): the file's atoms, radians, and an avoided (phi, psi) region that contains
    neither endpoint (periodic ball of the states' radius, 0.75 rad)."""
    import numpy as np
    import torch

    from tps.potentials.openmm import phi_psi
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.avoidance import check_endpoints_outside, read_structure_to_avoid
    from tps.workflows.cartesian import Endpoints, kabsch_align

    path, phipsi = getattr(args, "avoid_structure", None), getattr(args, "avoid_phipsi", None)
    if getattr(args, "avoid", None) is not None:
        raise _err("--avoid: alanine-dipeptide is all-atom", "pass --avoid-phipsi PHI PSI (rad) or "
                                                               "--avoid-structure FILE.pdb")
    if path is not None and phipsi is not None:
        raise _err("--avoid-structure and --avoid-phipsi were both given", "pass only one of them")
    if path is None and phipsi is None:
        raise _err("--constraint region-avoiding needs what to avoid",
                   "add --avoid-structure FILE.pdb or --avoid-phipsi PHI PSI (rad)")
    top = aldp.topology()
    m = aldp.minimized_structures()
    ends = Endpoints(m["C5"], kabsch_align(m["C7ax"], m["C5"]) + m["C5"].mean(0), m["C5"].mean(0))
    flag = "--avoid-structure" if path is not None else "--avoid-phipsi"
    try:
        if path is not None:
            x = read_structure_to_avoid(path, top)
            check_endpoints_outside(phi_psi(torch.as_tensor(x), top).numpy(), ends, top, what=flag)
            return {"avoid_structure": str(Path(path).resolve()), "avoid_structure_sha256": _file_digest(path),
                    "avoid_depth_fraction": 0.5, "avoid_penalty_ratio": 10.0}
        point = aldp.check_radians(phipsi, flag).numpy()
        check_endpoints_outside(point, ends, top, what=flag)
    except ValueError as exc:
        message = _oneline(exc)
        problem, _, fix = message.partition("; ")
        for name in ("avoid_structure", "avoid_phipsi"):
            problem = problem.replace(name, flag, 1) if problem.startswith(name) else problem
        raise _err(problem if problem.startswith("--") else f"{flag}: {problem}",
                   fix or "see 'tps run --help'") from None
    return {"avoid_phipsi": tuple(float(v) for v in np.asarray(point)), "avoid_frames": 8,
            "avoid_depth_fraction": 0.5, "avoid_penalty_ratio": 10.0}


def aldp_training_frames(model):
    """The model's training frames (:func:`tps.workflows.avoidance.recipe_training_frames`)."""
    from tps.workflows.avoidance import recipe_training_frames

    try:
        return recipe_training_frames(model)
    except ValueError as exc:
        problem, _, fix = _oneline(exc).partition("; ")
        raise _err(f"--avoid-phipsi: {problem.removeprefix('model: ')}",
                   "pass --avoid-structure FILE.pdb instead") from None


def solve_avoiding_aldp(model, endpoints, s, kw):
    """Unconstrained geodesic, then the region-avoiding one (tps.workflows.avoidance; thresholds from the
    first). Returns the result and the curve-file payload (avoided structures, point, and ``extra``)."""
    import numpy as np
    import torch

    from tps.potentials.openmm import phi_psi
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.avoidance import AvoidanceRule, frames_near_phipsi, read_structure_to_avoid, solve_avoiding

    top = aldp.topology()
    extra = {}
    if s.avoid_structure is not None:
        flag = "--avoid-structure"
        structures = read_structure_to_avoid(s.avoid_structure, top)[None]
    else:
        flag = "--avoid-phipsi"
        frames = aldp_training_frames(model)
        try:
            idx = frames_near_phipsi(frames, top, s.avoid_phipsi, k=s.avoid_frames)
        except ValueError as exc:
            problem, _, fix = _oneline(exc).partition("; ")
            raise _err(problem.replace("avoid_phipsi", flag, 1), fix) from None
        structures = frames[idx]
        extra["avoid_training_frames"] = [int(i) for i in idx]
    rule = AvoidanceRule(depth_fraction=s.avoid_depth_fraction, penalty_ratio=s.avoid_penalty_ratio)
    try:
        r, free, info = solve_avoiding(model, endpoints, structures, rule=rule, **kw)
    except ValueError as exc:
        problem, _, fix = _oneline(exc).partition("; ")
        raise _err(problem.replace("avoid_structure", flag, 1), fix or "choose another region") from None
    pp = phi_psi(torch.as_tensor(structures), top).numpy()
    extra.update(avoid_structures_phipsi=pp.tolist(), avoid=info.as_dict(),
                 avoid_free_curve_energy=float(free.energy), avoid_free_n_evaluations=int(free.n_evaluations))
    payload = {"avoid_structures": torch.as_tensor(np.asarray(structures)),
               "avoid_phipsi": None if s.avoid_phipsi is None else list(s.avoid_phipsi), "extra": extra}
    return r, payload


def avoid_metrics(paths, curve) -> dict:
    """Closest approach of the paths to the avoided structures / point, and their crossing channels."""
    import collections

    import torch

    from tps.potentials.openmm import phi_psi
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.avoidance import closest_approach, crossing_channels

    top = aldp.topology()
    frames = paths.frames.detach().cpu().double()
    ca = closest_approach(frames.numpy(), curve["avoid_structures"].double().numpy(), top,
                          phipsi=curve.get("avoid_phipsi"))
    target = phi_psi(torch.as_tensor(_aldp_endpoints().target, dtype=torch.float64), top).numpy()
    channels = collections.Counter(c["channel"] for c in crossing_channels(phi_psi(frames, top).numpy(), target))
    return {"avoid_rmsd_min_nm": ca["rmsd_min_nm"], "avoid_rmsd_mean_nm": ca["rmsd_mean_nm"],
            "avoid_phipsi_min_rad": ca.get("phipsi_min_rad"), "avoid_phipsi_mean_rad": ca.get("phipsi_mean_rad"),
            "crossing_channels": dict(sorted(channels.items()))}
