"""Shooting chains as tasks of :mod:`tps.parallel` (torch chains and OpenMM chains).

- :func:`two_way_shooting` with ``executor=`` lands here: the ``n_chains`` chains are cut into
  tasks of ``task_size`` chains, task ``i`` runs :func:`two_way_shooting` on its chains with
  the seed of ``(seed, i)``, and :func:`merge_shooting` puts the results together in chain order
  (paths ordered by round, then chain, as one batch would be).
- :func:`openmm_shooting_chains` runs ``n_chains`` independent OpenMM shooting chains
  (:func:`tps.baselines.openmm_engine.openmm_two_way_shooting`), chain ``c`` seeded from
  ``(seed, c)``; each worker keeps one OpenMM context per system (:func:`tps.engines.openmm.context_for`)
  and reseeds it per chain;
  :func:`openmm_unbiased_chains` does the same for unbiased MD runs
  (:func:`tps.baselines.openmm_engine.openmm_unbiased_md`);
- :func:`openmm_seeded_chains` runs OpenMM chains from one seed path each (geodesic-seeded shooting
  with an executor) and :func:`merge_openmm_chains` pools them as one :class:`~tps.baselines.ShootingResult`.

Results depend on ``(seed, task_size)`` only: the same for every executor and worker count.
"""

from __future__ import annotations

import time
from typing import Optional

import torch

from tps.baselines.unbiased_md import pad_paths
from tps.core import Paths

__all__ = ["merge_shooting", "openmm_shooting_chains", "openmm_unbiased_chains", "openmm_seeded_chains",
           "merge_openmm_chains", "DEFAULT_TASK_SIZE"]

#: Chains per task of :func:`tps.baselines.two_way_shooting` with an executor.
DEFAULT_TASK_SIZE = 4


def _unpadded(paths: Paths):
    lens = paths.info["lengths"].tolist()
    return [(paths.frames[i, :n], paths.energies[i, :n]) for i, n in enumerate(lens)]


def _sum_per_round(infos, key):
    """Per-round counts ``info[key]`` summed over results whose chains ran different numbers of rounds."""
    n = max(len(i.get(key, ())) for i in infos)
    return [sum(i[key][k] for i in infos if k < len(i.get(key, ()))) for k in range(n)]


def _pooled_result(saved, results, info, final_chains):
    """The :class:`~tps.baselines.ShootingResult` of the kept states ``saved`` ``[(round, chain, frames,
    energies)]`` (ordered by round, then chain) of ``results`` with ``info`` (``final_chains`` added)."""
    from tps.baselines.shooting import ShootingResult

    saved.sort(key=lambda s: (s[0], s[1]))
    frames, energies, lens = pad_paths([s[2] for s in saved], [s[3] for s in saved])
    n_evals = sum(r.n_energy_evals for r in results)
    n_trials = sum(r.n_trials for r in results)
    n_acc = sum(r.n_accepted for r in results)
    n_dec = sum(r.n_decorrelated for r in results)
    paths = Paths(frames, energies, n_evals, results[0].paths.kT, {
        **info, "lengths": lens, "chain": torch.tensor([s[1] for s in saved]),
        "round": torch.tensor([s[0] for s in saved]),
        "note": "padded by repeating each path's last frame; lengths holds the true frame counts",
    })
    info["final_chains"] = final_chains
    return ShootingResult(
        paths=paths, n_energy_evals=n_evals, n_trials=n_trials, n_accepted=n_acc, n_decorrelated=n_dec,
        acceptance_rate=n_acc / n_trials, evals_per_accepted_path=n_evals / n_acc if n_acc else None,
        evals_per_decorrelated_path=n_evals / n_dec if n_dec else None, info=info,
    )


def _mean_trial_frames(infos, results):
    return sum(i["mean_trial_frames"] * r.n_trials for i, r in zip(infos, results)) / sum(r.n_trials for r in results)


def merge_shooting(results, chain_offsets, *, wall_s: Optional[float] = None):
    """One :class:`~tps.baselines.ShootingResult` from results of disjoint groups of chains.

    Parameters
    ----------
    results : list of ShootingResult
        From :func:`two_way_shooting`, in chain order.
    chain_offsets : list of int
        Global index of the first chain of each result.
    wall_s : float, optional
        Wall time of the whole run (default: the sum of the results').

    Returns
    -------
    ShootingResult
        Paths ordered by round, then global chain; counts summed; per-chain lists concatenated.
    """
    saved = []
    for r, off in zip(results, chain_offsets):
        chain, rnd = r.paths.info["chain"].tolist(), r.paths.info["round"].tolist()
        saved.extend((rd, off + c, f, e) for (f, e), c, rd in zip(_unpadded(r.paths), chain, rnd))
    infos = [r.info for r in results]
    info = dict(infos[0])
    info.update({
        "n_chains": sum(i["n_chains"] for i in infos), "n_rounds": max(i["n_rounds"] for i in infos),
        "accepted_per_chain": [a for i in infos for a in i["accepted_per_chain"]],
        "accepted_per_round": _sum_per_round(infos, "accepted_per_round"),
        "round_evals": _sum_per_round(infos, "round_evals"),
        "decorrelated_per_chain": [a for i in infos for a in i["decorrelated_per_chain"]],
        "final_decorrelated_from_initial": sum(i["final_decorrelated_from_initial"] for i in infos),
        "first_decorrelated_round": [a for i in infos for a in i["first_decorrelated_round"]],
        "outcomes": {k: sum(i["outcomes"][k] for i in infos) for k in infos[0]["outcomes"]},
        "mean_trial_frames": _mean_trial_frames(infos, results),
        "n_initial_frames": sum(i["n_initial_frames"] for i in infos),
        "wall_s": sum(i["wall_s"] for i in infos) if wall_s is None else wall_s,
    })
    info.pop("final_chains", None)
    return _pooled_result(saved, results, info, [c for i in infos for c in i.get("final_chains", [])])


def _shooting_task(shared, task):
    from tps.baselines.shooting import two_way_shooting

    starts = shared["initial"][task.start:task.stop]
    if shared["one_initial"]:  # one shared initial path: evaluated once per task, not once per chain
        starts = starts[0]
    return two_way_shooting(shared["potential"], shared["ensemble"], starts, seed=int(task.seed), n_chains=task.size,
                            **shared["kw"])


def shooting_tasks(potential, ensemble, initial, *, executor, seed, task_size, checkpoint, progress, kw):
    """The executor path of :func:`tps.baselines.two_way_shooting` (``initial``: one tensor per chain)."""
    from tps._validation import check_positive_int
    from tps.parallel import as_checkpoint, make_tasks, run_tasks

    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    size = DEFAULT_TASK_SIZE if task_size is None else check_positive_int(task_size, "task_size")
    tasks = make_tasks(len(initial), task_size=size, seed=seed)
    initial = list(initial)
    shared = {"potential": potential, "ensemble": ensemble, "initial": initial, "kw": kw,
              "one_initial": all(p is initial[0] for p in initial)}
    checkpoint = as_checkpoint(checkpoint, (type(potential).__name__, repr(ensemble), initial,
                                            {k: repr(v) for k, v in kw.items()}, seed, size))
    t0 = time.perf_counter()
    results = run_tasks(_shooting_task, tasks, shared=shared, executor=executor, checkpoint=checkpoint,
                        progress=progress, desc="two-way shooting")
    merged = merge_shooting(results, [t.start for t in tasks], wall_s=time.perf_counter() - t0)
    merged.info.update({"seed": int(seed), "task_size": size, "n_tasks": len(tasks)})
    merged.paths.info.update({"seed": int(seed), "task_size": size, "n_tasks": len(tasks)})
    return merged


# ----------------------------------------------------------------------------- OpenMM chains
def _openmm_chain_task(shared, task):
    from tps.baselines import openmm_engine
    from tps.parallel.tasks import OPENMM_LOCK, worker_cache

    fn = getattr(openmm_engine, shared["fn"])  # openmm_two_way_shooting or openmm_unbiased_md
    system = worker_cache(("openmm-system", shared["key"]), lambda: _deserialize(shared["xml"]))
    out = []
    with OPENMM_LOCK:
        seeds = [int(task.seed)] if task.size == 1 else task.rng().integers(1, 2**31 - 1, size=task.size).tolist()
        for c, seed in zip(range(task.start, task.stop), seeds):
            out.append(fn(system, shared["initial"][c], seed=int(seed), **shared["kw"]))
    return out


def _deserialize(xml):
    import openmm

    return openmm.XmlSerializer.deserialize(xml)


def openmm_shooting_chains(system, initial_path, *, n_chains: int, seed: int = 0, executor=None,
                           task_size: int = 1, checkpoint=None, progress: bool = False, **kwargs) -> list:
    """``n_chains`` independent OpenMM two-way shooting chains, as tasks (:mod:`tps.parallel`).

    Parameters
    ----------
    system : openmm.System
    initial_path : array, shape ``(F, n_atoms, 3)`` nm, or a list of ``n_chains`` such arrays
        One initial path shared by every chain, or one per chain.
    n_chains : int
    seed : int
        Chain ``c`` of task ``i`` uses the seed of ``(seed, i)`` (``task_size=1``: one chain per
        task) or the ``c``-th draw of that task's generator.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        None: the tasks run one after the other in this process (same results).
    task_size : int
        Chains per task (default 1).
    checkpoint : path or TaskCheckpoint, optional
        Completed chains are stored there; a rerun resumes from them.
    progress : bool
        Progress bar of completed tasks.
    **kwargs
        ``state_a``, ``state_b``, ``n_trials`` and the other keyword arguments of
        :func:`~tps.baselines.openmm_engine.openmm_two_way_shooting` (not ``seed``).

    Returns
    -------
    list of ShootingResult
        One per chain, in chain order.

    Examples
    --------
    See ``tests/baselines`` and ``python -m benchmarks scaling``.
    """
    return _openmm_chains("openmm_two_way_shooting", system, initial_path, n_chains=n_chains, seed=seed,
                          executor=executor, task_size=task_size, checkpoint=checkpoint, progress=progress,
                          desc="OpenMM shooting chains", kwargs=kwargs)


def openmm_unbiased_chains(system, x_start, *, n_chains: int, seed: int = 0, executor=None, task_size: int = 1,
                           checkpoint=None, progress: bool = False, **kwargs) -> list:
    """``n_chains`` independent OpenMM unbiased-MD runs (:func:`~tps.baselines.openmm_engine.openmm_unbiased_md`), as tasks.

    Parameters
    ----------
    system : openmm.System
    x_start : array, shape ``(n_atoms, 3)`` nm, or a list of ``n_chains`` such arrays
    n_chains, seed, executor, task_size, checkpoint, progress
        As :func:`openmm_shooting_chains` (chain ``c`` of a one-chain task uses the task's seed).
    **kwargs
        ``state_a``, ``state_b``, ``n_steps_budget`` (per chain) and the other keyword arguments of
        :func:`~tps.baselines.openmm_engine.openmm_unbiased_md` (not ``seed``).

    Returns
    -------
    list of OpenMMUnbiasedMDResult
        One per chain, in chain order; the total cost is the sum of their ``n_energy_evals``.
    """
    return _openmm_chains("openmm_unbiased_md", system, x_start, n_chains=n_chains, seed=seed, executor=executor,
                          task_size=task_size, checkpoint=checkpoint, progress=progress, desc="OpenMM unbiased MD",
                          kwargs=kwargs)


def _openmm_chains(fn, system, initial_path, *, n_chains, seed, executor, task_size, checkpoint, progress, desc,
                   kwargs) -> list:
    import numpy as np
    import openmm

    from tps._validation import check_positive_int
    from tps.parallel import as_checkpoint, fingerprint, make_tasks, run_tasks

    n_chains = check_positive_int(n_chains, "n_chains")
    task_size = check_positive_int(task_size, "task_size")
    if "seed" in kwargs:
        raise ValueError("seed: pass it as openmm_shooting_chains(seed=...), not in the chain keyword arguments")
    if isinstance(initial_path, (list, tuple)):
        if len(initial_path) != n_chains:
            raise ValueError(f"initial_path: expected one path or n_chains={n_chains} paths, got {len(initial_path)}")
        initial = [np.asarray(p, dtype=np.float64) for p in initial_path]
    else:
        initial = [np.asarray(initial_path, dtype=np.float64)] * n_chains
    xml = openmm.XmlSerializer.serialize(system if isinstance(system, openmm.System) else system.potential.system)
    kw = dict(kwargs)
    key = fingerprint((xml, {k: repr(v) for k, v in kw.items() if k not in ("state_a", "state_b")}))
    tasks = make_tasks(n_chains, task_size=task_size, seed=seed)
    shared = {"xml": xml, "key": key, "initial": initial, "kw": kw, "fn": fn}
    checkpoint = as_checkpoint(checkpoint, (fn, key, initial, repr(kw.get("state_a")), repr(kw.get("state_b")),
                                            int(seed), task_size))
    results = run_tasks(_openmm_chain_task, tasks, shared=shared, executor=executor, checkpoint=checkpoint,
                        progress=progress, desc=desc)
    return [r for chunk in results for r in chunk]


def merge_openmm_chains(results, *, burn_in: int = 0, save_every: int = 1, wall_s: Optional[float] = None):
    """One :class:`~tps.baselines.ShootingResult` from one-chain OpenMM results, chain ``c`` = ``results[c]``.

    Parameters
    ----------
    results : list of ShootingResult
        From :func:`~tps.baselines.openmm_engine.openmm_two_way_shooting` (chain state after every trial).
    burn_in : int
        Trials whose chain states are dropped.
    save_every : int
        Keep the states of every ``save_every``-th trial after the burn-in.
    wall_s : float, optional
        Wall time of the whole run (default: the sum of the chains').

    Returns
    -------
    ShootingResult
        Kept states ordered by round, then chain (``info["chain"]``, ``info["round"]``,
        ``info["lengths"]``); per-chain and per-round counts as :func:`~tps.baselines.two_way_shooting`.
    """
    saved = []
    for c, r in enumerate(results):
        rnd = r.paths.info["round"].tolist()
        saved.extend((rd, c, f, e) for (f, e), rd in zip(_unpadded(r.paths), rnd)
                     if rd > burn_in and (rd - burn_in - 1) % save_every == 0)
    if not saved:  # stopped before the burn-in ended: keep each chain's last state
        saved = [(int(r.paths.info["round"][-1]), c, *_unpadded(r.paths)[-1]) for c, r in enumerate(results)]
    infos = [r.info for r in results]
    info = {
        "sampler": "openmm-two-way-shooting", "ensemble": infos[0]["ensemble"], "n_chains": len(results),
        "n_rounds": max(i["n_trials"] for i in infos), "burn_in": int(burn_in), "keep": "chain",
        "accepted_per_chain": [r.n_accepted for r in results],
        "accepted_per_round": _sum_per_round(infos, "accepted_per_round"),
        "round_evals": _sum_per_round(infos, "round_evals"), "decorrelated_per_chain": [r.n_decorrelated for r in results],
        "final_decorrelated_from_initial": sum(bool(i["final_decorrelated_from_initial"]) for i in infos),
        "first_decorrelated_round": [i["decorrelation_trials"][0] if i["decorrelation_trials"] else None
                                     for i in infos],
        "outcomes": {k: sum(i["outcomes"][k] for i in infos) for k in infos[0]["outcomes"]},
        "mean_trial_frames": _mean_trial_frames(infos, results),
        "n_initial_frames": sum(i["n_initial_frames"] for i in infos),
        "n_energy_readouts": sum(i["n_energy_readouts"] for i in infos),
        **{k: infos[0][k] for k in ("engine", "platform", "temperature", "timestep", "friction", "save_every",
                                    "max_frames", "length_metropolis")},
        "wall_s": sum(i["wall_s"] for i in infos) if wall_s is None else wall_s,
    }
    return _pooled_result(saved, results, info, [_unpadded(r.paths)[-1][0] for r in results])


def openmm_seeded_chains(engine, seeds, *, state_a, state_b, n_rounds: int, burn_in: int = 0, save_every: int = 1,
                         max_frames: int, steps_per_frame: int, seed: int = 0, executor=None, task_size: int = 1,
                         checkpoint=None, progress: bool = False, time_limit_s: Optional[float] = None):
    """OpenMM two-way shooting chains, chain ``c`` from ``seeds[c]``, as tasks; pooled by :func:`merge_openmm_chains`.

    Parameters
    ----------
    engine : OpenMMLangevinEngine
        Its system, temperature, timestep, friction and platform request are used.
    seeds : list of array or Tensor ``(F_c, n_atoms, 3)``, nm
        One flexible-length path per chain (first frame in A, last in B, none in between).
    state_a, state_b : Volume
    n_rounds, burn_in, save_every : int
        Trials per chain; trials dropped; keep every ``save_every``-th state after the burn-in.
    max_frames, steps_per_frame : int
        Longest trial (frames); MD steps per frame.
    seed, executor, task_size, checkpoint, progress
        As :func:`openmm_shooting_chains`.
    time_limit_s : float, optional
        Per chain.

    Returns
    -------
    ShootingResult
    """
    import openmm

    system = openmm.XmlSerializer.deserialize(engine.xml)
    t0 = time.perf_counter()
    kw = dict(state_a=state_a, state_b=state_b, temperature=engine.temperature, timestep=engine.timestep,
              friction=engine.friction, n_trials=int(n_rounds), max_frames=int(max_frames),
              save_every=int(steps_per_frame), platform=engine.platform_request)
    if time_limit_s is not None:
        kw["time_limit_s"] = time_limit_s
    results = openmm_shooting_chains(system, [torch.as_tensor(s).detach().cpu().double().numpy() for s in seeds],
                                     n_chains=len(seeds), seed=seed, executor=executor, task_size=task_size,
                                     checkpoint=checkpoint, progress=progress, **kw)
    merged = merge_openmm_chains(results, burn_in=burn_in, save_every=save_every, wall_s=time.perf_counter() - t0)
    merged.info.update({"seed": int(seed), "task_size": int(task_size)})
    return merged
