"""Region avoidance on a molecule (``--constraint region-avoiding``): what to avoid, validated before
anything is written; the two solves (:mod:`tps.workflows.avoidance`); the paths' closest approach.
Functions of a :class:`~tps.systems.molecule.MoleculeSystem` (its methods call them)."""

from __future__ import annotations

from pathlib import Path

import torch

from tps.systems.base import InputError


class AvoidInputError(InputError):
    """What to avoid cannot be used (``"problem; fix"``; the problem names the caller's ``label``)."""


def _oneline(exc) -> str:
    return " ".join(str(exc).split())


def avoid_settings(system, *, point=None, structure=None, phipsi=None) -> dict:
    """Validated ``--avoid-structure`` / ``--avoid-phipsi`` (nothing is written before this passes): the
    file's atoms, radians, and an avoided (phi, psi) region that contains neither endpoint (periodic
    ball of the states' radius). Returns the run settings of the avoided region.

    Raises
    ------
    InputError
        ``"problem; fix"`` naming the command-line flag.
    """
    import hashlib

    import numpy as np

    from tps.metrics.molecular import kabsch_align
    from tps.potentials.openmm import phi_psi
    from tps.systems.alanine_dipeptide import check_radians
    from tps.workflows.avoidance import check_endpoints_outside, read_structure_to_avoid
    from tps.workflows.cartesian import Endpoints

    cp = system.protocols().constraints
    if point is not None:
        raise InputError(f"--avoid: {system.name} is all-atom; pass --avoid-phipsi PHI PSI (rad) or "
                         "--avoid-structure FILE.pdb")
    if structure is not None and phipsi is not None:
        raise InputError("--avoid-structure and --avoid-phipsi were both given; pass only one of them")
    if structure is None and phipsi is None:
        raise InputError("--constraint region-avoiding needs what to avoid; "
                         "add --avoid-structure FILE.pdb or --avoid-phipsi PHI PSI (rad)")
    top = system.omm_topology
    a, b = system.endpoints[system.start].numpy(), system.endpoints[system.target].numpy()
    ends = Endpoints(a, kabsch_align(b, a) + a.mean(0), a.mean(0))
    flag = "--avoid-structure" if structure is not None else "--avoid-phipsi"
    rule = {"avoid_depth_fraction": cp.avoid_depth_fraction, "avoid_penalty_ratio": cp.avoid_penalty_ratio}
    try:
        if structure is not None:
            x = read_structure_to_avoid(structure, top)
            check_endpoints_outside(phi_psi(torch.as_tensor(x), top).numpy(), ends, top, what=flag)
            digest = hashlib.sha256(Path(structure).read_bytes()).hexdigest()
            return {"avoid_structure": str(Path(structure).resolve()), "avoid_structure_sha256": digest, **rule}
        pt = check_radians(phipsi, flag).numpy()
        check_endpoints_outside(pt, ends, top, what=flag)
    except ValueError as exc:
        problem, _, fix = _oneline(exc).partition("; ")
        for name in ("avoid_structure", "avoid_phipsi"):
            problem = problem.replace(name, flag, 1) if problem.startswith(name) else problem
        problem = problem if problem.startswith("--") else f"{flag}: {problem}"
        fix = fix or "see 'tps run --help'"
        raise InputError(f"{problem}; {fix}") from None
    return {"avoid_phipsi": tuple(float(v) for v in np.asarray(pt)), "avoid_frames": cp.avoid_frames, **rule}

def solve_avoiding(system, model, ends, avoid, cp, kw):
    """Unconstrained geodesic, then the region-avoiding one (:mod:`tps.workflows.avoidance`)."""
    import numpy as np

    from tps.potentials.openmm import phi_psi
    from tps.workflows.avoidance import AvoidanceRule, frames_near_phipsi, read_structure_to_avoid, solve_avoiding

    avoid = dict(avoid or {})
    top = system.omm_topology
    extra = {}
    if avoid.get("structure") is not None:
        flag = avoid.get("label", "avoid_structure")
        structures = read_structure_to_avoid(avoid["structure"], top)[None]
    else:
        flag = avoid.get("label", "avoid_phipsi")
        try:
            frames = system.training_frames(model)
        except ValueError as exc:
            problem, _, fix = _oneline(exc).partition("; ")
            raise AvoidInputError(f"{flag}: {problem.removeprefix('model: ')}; "
                                  "pass --avoid-structure FILE.pdb instead") from None
        try:
            idx = frames_near_phipsi(frames, top, avoid["phipsi"], k=cp.avoid_frames)
        except ValueError as exc:
            problem, _, fix = _oneline(exc).partition("; ")
            raise AvoidInputError(f"{problem.replace('avoid_phipsi', flag, 1)}; {fix}") from None
        structures = frames[idx]
        extra["avoid_training_frames"] = [int(i) for i in idx]
    rule = AvoidanceRule(depth_fraction=cp.avoid_depth_fraction, penalty_ratio=cp.avoid_penalty_ratio)
    try:
        r, free, info = solve_avoiding(model, ends, structures, rule=rule, **kw)
    except ValueError as exc:
        problem, _, fix = _oneline(exc).partition("; ")
        raise AvoidInputError(f"{problem.replace('avoid_structure', flag, 1)}; "
                              f"{fix or 'choose another region'}") from None
    pp = phi_psi(torch.as_tensor(structures), top).numpy()
    extra.update(avoid_structures_phipsi=pp.tolist(), avoid=info.as_dict(),
                 avoid_free_curve_energy=float(free.energy), avoid_free_n_evaluations=int(free.n_evaluations))
    phipsi = avoid.get("phipsi")
    return r, {"avoid_structures": torch.as_tensor(np.asarray(structures)),
               "avoid_phipsi": None if phipsi is None else list(phipsi), "extra": extra}

def avoid_metrics(system, paths, curve) -> dict:
    """Closest approach of the paths to the avoided structures / point, and their crossing channels."""
    import collections

    from tps.potentials.openmm import phi_psi
    from tps.workflows.avoidance import closest_approach, crossing_channels

    top = system.omm_topology
    frames = paths.frames.detach().cpu().double()
    ca = closest_approach(frames.numpy(), curve["avoid_structures"].double().numpy(), top,
                          phipsi=curve.get("avoid_phipsi"))
    target = phi_psi(torch.as_tensor(system.prepared_endpoints().target, dtype=torch.float64), top).numpy()
    channels = collections.Counter(c["channel"] for c in crossing_channels(phi_psi(frames, top).numpy(), target))
    return {"avoid_rmsd_min_nm": ca["rmsd_min_nm"], "avoid_rmsd_mean_nm": ca["rmsd_mean_nm"],
            "avoid_phipsi_min_rad": ca.get("phipsi_min_rad"), "avoid_phipsi_mean_rad": ca.get("phipsi_mean_rad"),
            "crossing_channels": dict(sorted(channels.items()))}
