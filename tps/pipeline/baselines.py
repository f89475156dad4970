"""The MD baselines of :func:`tps.pipeline.run_method` on an overdamped (2-D) system: two-way
shooting (flexible or fixed length, from a high-temperature initial path) and unbiased MD.

The numbers come from ``protocols.extras["baselines"]`` (a dict; the benchmarks' protocol fields of
the same names): ``md_dt`` (time step, the potential's units), ``md_chains`` and ``md_steps``
(unbiased MD budget), ``kT_high``, ``initial_chains``, ``initial_max_steps``,
``initial_candidates`` (initial path), ``shooting_chains``, ``shooting_rounds``,
``shooting_max_frames``, ``shooting_save_every`` (flexible length), ``fixed`` (bool),
``fixed_chains``, ``fixed_frames``, ``fixed_rounds`` (fixed length). Seeds follow the benchmarks:
initial path ``seed + 2``, shooting ``seed + 3``, unbiased MD ``seed + 4``. States: the system's
:meth:`~tps.systems.base.System.transition_states` (A = every state but the target; the paths start
at the ``start`` endpoint). OpenMM molecules run
their baselines with the system's own ``run_baseline`` (:mod:`tps.systems.molecule_baselines`).

Optional keys (defaults: the Muller-Brown benchmark's rows):

``shooting_time_s``, ``fixed_time_s`` : float or None (None)
    Wall-time cap of the flexible / fixed-length shooting run (checked after each round). A
    capped run is not reproducible: how many rounds fit depends on the machine's load.
``burn_in_of_rounds_run`` : bool (False)
    False: the first ``n_rounds // 4`` of the requested rounds are burn-in. True: the first
    quarter of the rounds actually run (a wall-time cap decides how many; with an executor, of
    each chain's own task; none when fewer than 4 rounds ran) -- what a capped run needs.
``fixed_seed_offset`` : int (3)
    Shooting seed of the fixed-length ensemble is ``seed + fixed_seed_offset`` (the aldp-2d
    benchmark: 5, so its two ensembles draw different streams).
``task_size`` : int, "per-worker" or None (None)
    With an executor: chains per task (None: :mod:`tps.baselines.chains`' default;
    ``"per-worker"``: one task of ``ceil(n_chains / workers)`` chains per worker, each with the
    whole wall-time cap).

Energies of the row: a system with a ``row_energies(paths) -> Paths`` method (the (phi, psi)
system: the periodic bilinear value of the raw grid) reports those for the shooting paths, the
initial path's highest energy and the unbiased-MD paths; otherwise the potential's energies.
"""

from __future__ import annotations

import time

__all__ = ["overdamped_baseline"]

_TASK_SIZES = "an integer >= 1, 'per-worker' or None"


def _param(params: dict, name: str):
    if name not in params:
        raise ValueError(f"protocols.extras['baselines']: missing {name!r} (see tps.pipeline.baselines)")
    return params[name]


def _row_energies(system, paths):
    """``paths`` with the energies the system's rows report (``system.row_energies``; else unchanged)."""
    hook = getattr(system, "row_energies", None)
    return paths if hook is None or paths is None else hook(paths)


def _task_size(params: dict, executor, n_chains: int):
    size = params.get("task_size")
    if executor is None or size is None:
        return None
    if size == "per-worker":
        from tps.parallel import n_workers

        return -(-n_chains // min(n_workers(executor), n_chains))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"protocols.extras['baselines']['task_size']: expected {_TASK_SIZES}, got {size!r}")
    return size


def _burn_in_of_rounds_run(paths, n_rounds: int, n_chains: int, per_task: bool):
    """Paths after the first quarter of the rounds run (per chain's task when ``per_task``), and the rounds
    each chain's task ran (``per_task``; else None)."""
    import torch

    from tps.systems.molecule_baselines import subset_paths

    if "round" not in paths.info:
        return paths, None
    rnd = torch.as_tensor(paths.info["round"])
    if per_task:  # tasks stop independently: each chain's own rounds
        chain = torch.as_tensor(paths.info["chain"])
        rounds_of_chain = torch.zeros(n_chains, dtype=torch.int64)
        rounds_of_chain.scatter_reduce_(0, chain, rnd.to(torch.int64), "amax")
        own = rounds_of_chain[chain]
        return subset_paths(paths, (own < 4) | (rnd > own // 4)), rounds_of_chain
    if n_rounds >= 4:
        return subset_paths(paths, rnd > n_rounds // 4), None
    return paths, None


def _unbiased_md(system, params: dict, seed: int):
    from tps.baselines import unbiased_md

    t0 = time.perf_counter()
    a, b = system.transition_states()
    lower = system.reference.get("lower_bound")
    md = unbiased_md(system.potential, system.endpoints[system.start], state_a=a, state_b=b, kT=system.kT,
                     dt=float(_param(params, "md_dt")), n_chains=int(_param(params, "md_chains")),
                     max_steps=int(_param(params, "md_steps")), seed=seed + 4,
                     barrier_energy=None if lower is None else lower.value)
    wall = time.perf_counter() - t0
    extra = {"n_transitions": md.n_transitions, "evals_per_transition": md.evals_per_transition,
             "evals_per_transition_lower_bound": md.evals_per_transition_lower_bound,
             "evals_per_transition_extrapolated": md.evals_per_transition_extrapolated,
             "mean_path_frames": md.info.get("mean_path_frames")}
    paths = _row_energies(system, md.paths)
    if paths is not None:
        row = system.summarize(paths, method="unbiased-md", wall_s=wall, geodesic_wall_s=0.0)
        row["n_energy_evals"] = int(md.n_energy_evals)
    else:  # no transition in the budget: metrics undefined, the budget is a lower bound
        row = {"method": "unbiased-md", "n_paths": 0, "n_energy_evals": int(md.n_energy_evals),
               "n_training_energy_evals": 0, "wall_s": wall, "geodesic_wall_s": 0.0}
    row.update(extra)
    return paths, row, {}


def overdamped_baseline(system, method: str, params: dict, *, seed: int = 0, executor=None, initial_path=None):
    """``(paths, row, extra)`` of ``method`` ("two-way-shooting" or "unbiased-md") on a torch-potential system.

    ``initial_path``: ``extra["initial_path"]`` of an earlier shooting run with the same ``params``
    and ``seed``, i.e. ``(path, seconds)`` of its high-temperature initial path, reused (the flexible
    and fixed ensembles start from the same path); its evaluations and seconds count in the row as
    if searched here.

    Raises
    ------
    ValueError
        For a molecule (OpenMM), when a needed number is missing from ``params`` or an optional one
        is malformed, or when the initial-path search saw no transition in its budget.
    """
    from tps.baselines import (FixedLengthEnsemble, FlexibleLengthEnsemble, initial_path_high_temperature,
                               resample_path, two_way_shooting)

    if system.topology is not None:
        raise ValueError(f"method {method!r}: {system.name!r} is a molecule; its OpenMM baselines are the "
                         "system's run_baseline")
    if method == "unbiased-md":
        return _unbiased_md(system, params, seed)
    pot, kT, dt = system.potential, system.kT, float(_param(params, "md_dt"))
    a, b = system.transition_states()
    if initial_path is None:
        t0 = time.perf_counter()
        init = initial_path_high_temperature(pot, system.endpoints[system.start], state_a=a, state_b=b,
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
        time_s, shoot_seed = params.get("fixed_time_s"), seed + int(params.get("fixed_seed_offset", 3))
    else:
        ens = FlexibleLengthEnsemble(a, b, max_frames=int(_param(params, "shooting_max_frames")))
        start = init
        n_chains, n_rounds = int(_param(params, "shooting_chains")), int(_param(params, "shooting_rounds"))
        save_every = int(params.get("shooting_save_every", 1))
        time_s, shoot_seed = params.get("shooting_time_s"), seed + 3
    by_rounds_run = bool(params.get("burn_in_of_rounds_run", False))
    task_size = _task_size(params, executor, n_chains)
    t0, cpu = time.perf_counter(), time.process_time()
    res = two_way_shooting(pot, ens, start, kT=kT, dt=dt, n_chains=n_chains, n_rounds=n_rounds,
                           burn_in=0 if by_rounds_run else n_rounds // 4, save_every=save_every, seed=shoot_seed,
                           time_limit_s=None if time_s is None else float(time_s), executor=executor,
                           task_size=task_size)
    t_shoot = time.perf_counter() - t0
    cpu = time.process_time() - cpu  # this process only: with an executor the workers' CPU is not in it
    paths, rounds_run, burn_in = res.paths, None, n_rounds // 4
    if by_rounds_run:
        burn_in = res.info["n_rounds"] // 4
        paths, rounds_run = _burn_in_of_rounds_run(paths, res.info["n_rounds"], n_chains, executor is not None)
    paths = _row_energies(system, paths)
    label = "two-way-shooting-fixed" if fixed else "two-way-shooting-variable"
    row = system.summarize(paths, method=label, wall_s=t_init + t_shoot, geodesic_wall_s=0.0)
    row["n_energy_evals"] = int(init.n_energy_evals + res.n_energy_evals)
    row.update({
        "initial_path_energy_evals": int(init.n_energy_evals),
        "initial_path_max_energy": float(_row_energies(system, init).energies.max()),
        "initial_path": f"unbiased overdamped Langevin transition at kT_high = {init.kT:.4g} "
                        f"({start.shape[0] if fixed else init.n_frames} frames)",
        "shooting_energy_evals": int(res.n_energy_evals), "n_chains": n_chains, "n_rounds": res.info["n_rounds"],
        "n_trials": res.n_trials, "n_accepted": res.n_accepted, "acceptance_rate": res.acceptance_rate,
        "n_decorrelated_paths": res.n_decorrelated, "evals_per_accepted_path": res.evals_per_accepted_path,
        "evals_per_decorrelated_path": res.evals_per_decorrelated_path,
        "chains_decorrelated_from_initial": res.info["final_decorrelated_from_initial"],
        "mean_path_frames": float(paths.info["lengths"].double().mean()),
        "n_frames": ens.n_frames if fixed else None, "burn_in_rounds": burn_in, "cpu_s": cpu,
    })
    if time_s is not None:
        row["time_limit_s"] = float(time_s)
    if rounds_run is not None:  # burn-in per task: the first quarter of the rounds each task ran
        row.update({"task_size": res.info["task_size"], "n_tasks": res.info["n_tasks"],
                    "rounds_per_task": rounds_run[::res.info["task_size"]].tolist(), "burn_in_rounds": None})
    return paths, row, {"initial_path": (init, t_init)}
