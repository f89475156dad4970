"""The MD baselines of :func:`tps.pipeline.run_method` on an overdamped (2-D) system: two-way
shooting (flexible or fixed length, from a high-temperature initial path) and unbiased MD.

The numbers come from ``protocols.extras["baselines"]`` (a dict; the benchmarks' protocol fields of
the same names): ``md_dt`` (time step, the potential's units), ``md_chains`` and ``md_steps``
(unbiased MD budget), ``kT_high``, ``initial_chains``, ``initial_max_steps``,
``initial_candidates`` (initial path), ``shooting_chains``, ``shooting_rounds``,
``shooting_max_frames``, ``shooting_save_every`` (flexible length), ``fixed`` (bool),
``fixed_chains``, ``fixed_frames``, ``fixed_rounds`` (fixed length). Seeds follow the benchmarks:
initial path ``seed + 2``, shooting ``seed + 3``, unbiased MD ``seed + 4``. OpenMM molecules run
their baselines with the system's own ``run_baseline`` (:mod:`tps.systems.molecule_baselines`).
"""

from __future__ import annotations

import time

__all__ = ["overdamped_baseline"]


def _param(params: dict, name: str):
    if name not in params:
        raise ValueError(f"protocols.extras['baselines']: missing {name!r} (see tps.pipeline.baselines)")
    return params[name]


def overdamped_baseline(system, method: str, params: dict, *, seed: int = 0, executor=None, initial_path=None):
    """``(paths, row, extra)`` of ``method`` ("two-way-shooting" or "unbiased-md") on a torch-potential system.

    ``initial_path``: ``extra["initial_path"]`` of an earlier shooting run with the same ``params``
    and ``seed``, i.e. ``(path, seconds)`` of its high-temperature initial path, reused (the flexible
    and fixed ensembles start from the same path); its evaluations and seconds count in the row as
    if searched here.

    Raises
    ------
    ValueError
        For a molecule (OpenMM), or when a needed number is missing from ``params``.
    """
    from tps.baselines import (FixedLengthEnsemble, FlexibleLengthEnsemble, initial_path_high_temperature,
                               resample_path, two_way_shooting, unbiased_md)

    if system.topology is not None:
        raise ValueError(f"method {method!r}: {system.name!r} is a molecule; its OpenMM baselines are the "
                         "system's run_baseline")
    pot, kT, dt = system.potential, system.kT, float(_param(params, "md_dt"))
    a, b = system.states[system.start], system.states[system.target]
    x_start = system.endpoints[system.start]
    if method == "unbiased-md":
        t0 = time.perf_counter()
        lower = system.reference.get("lower_bound")
        md = unbiased_md(pot, x_start, state_a=a, state_b=b, kT=kT, dt=dt, n_chains=int(_param(params, "md_chains")),
                         max_steps=int(_param(params, "md_steps")), seed=seed + 4,
                         barrier_energy=None if lower is None else lower.value)
        wall = time.perf_counter() - t0
        extra = {"n_transitions": md.n_transitions, "evals_per_transition": md.evals_per_transition,
                 "evals_per_transition_lower_bound": md.evals_per_transition_lower_bound,
                 "evals_per_transition_extrapolated": md.evals_per_transition_extrapolated,
                 "mean_path_frames": md.info.get("mean_path_frames")}
        if md.paths is not None:
            row = system.summarize(md.paths, method=method, wall_s=wall, geodesic_wall_s=0.0)
            row["n_energy_evals"] = int(md.n_energy_evals)
        else:  # no transition in the budget: metrics undefined, the budget is a lower bound
            row = {"method": method, "n_paths": 0, "n_energy_evals": int(md.n_energy_evals),
                   "n_training_energy_evals": 0, "wall_s": wall, "geodesic_wall_s": 0.0}
        row.update(extra)
        return md.paths, row, {}
    if initial_path is None:
        t0 = time.perf_counter()
        init = initial_path_high_temperature(pot, x_start, state_a=a, state_b=b,
                                             kT_high=float(_param(params, "kT_high")), dt=dt,
                                             n_chains=int(_param(params, "initial_chains")),
                                             max_steps=int(_param(params, "initial_max_steps")),
                                             n_candidates=int(_param(params, "initial_candidates")), seed=seed + 2)
        t_init = time.perf_counter() - t0
    else:
        init, t_init = initial_path
    fixed = bool(params.get("fixed", False))
    if fixed:
        n_fixed = max(int(_param(params, "fixed_frames")), init.n_frames)  # initial path padded with its end frames
        ens = FixedLengthEnsemble(a, b, n_frames=n_fixed)
        start = resample_path(init.frames[0], n_fixed, mode="pad")
        n_chains, n_rounds, save_every = int(_param(params, "fixed_chains")), int(_param(params, "fixed_rounds")), 1
    else:
        ens = FlexibleLengthEnsemble(a, b, max_frames=int(_param(params, "shooting_max_frames")))
        start = init
        n_chains, n_rounds = int(_param(params, "shooting_chains")), int(_param(params, "shooting_rounds"))
        save_every = int(params.get("shooting_save_every", 1))
    t0 = time.perf_counter()
    res = two_way_shooting(pot, ens, start, kT=kT, dt=dt, n_chains=n_chains, n_rounds=n_rounds, burn_in=n_rounds // 4,
                           save_every=save_every, seed=seed + 3, executor=executor)
    t_shoot = time.perf_counter() - t0
    label = "two-way-shooting-fixed" if fixed else "two-way-shooting-variable"
    row = system.summarize(res.paths, method=label, wall_s=t_init + t_shoot, geodesic_wall_s=0.0)
    row["n_energy_evals"] = int(init.n_energy_evals + res.n_energy_evals)
    row.update({
        "initial_path_energy_evals": int(init.n_energy_evals), "initial_path_max_energy": float(init.energies.max()),
        "shooting_energy_evals": int(res.n_energy_evals), "n_chains": n_chains, "n_rounds": res.info["n_rounds"],
        "n_trials": res.n_trials, "n_accepted": res.n_accepted, "acceptance_rate": res.acceptance_rate,
        "n_decorrelated_paths": res.n_decorrelated, "evals_per_accepted_path": res.evals_per_accepted_path,
        "evals_per_decorrelated_path": res.evals_per_decorrelated_path,
        "chains_decorrelated_from_initial": res.info["final_decorrelated_from_initial"],
        "mean_path_frames": float(res.paths.info["lengths"].double().mean()),
        "n_frames": ens.n_frames if fixed else None,
    })
    return res.paths, row, {"initial_path": (init, t_init)}
