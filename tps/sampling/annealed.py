"""Annealed Langevin along a curve of restraints, written once on an :class:`~tps.engines.base.Engine`.

For each curve point ``n`` every path makes ``steps_per_point`` engine steps on the potential
plus the harmonic restraint ``k_n/2 |x - c_n|^2``; the concatenated chain is one transition path
(Algorithm 1 of Karczewski et al.; method.md section 5). The loop

.. code-block:: text

    for rows in engine.batches(n_paths):      # torch: one vectorised batch; OpenMM: one path at a time
        set_restraint(c_0, k_0); set_positions(x_start[rows]); draw_velocities(seeds[rows]); observe()
        for n: set_restraint(c_n, k_n) (n > 0); step(K, frames_per_point)

reproduces the historical streams of :func:`tps.sampling.annealed_langevin` (torch) and
:func:`tps.sampling.openmm_annealed.openmm_annealed_langevin` (OpenMM) bit for bit; both are thin
wrappers of :func:`anneal`.

With an executor (:mod:`tps.parallel`) the paths are cut into tasks; task ``i`` runs on
``engine.spawn(task.seed)`` (torch: a generator seeded with the task seed; OpenMM: this worker's
cached context reseeded) with velocity seeds from ``task.rng()``: the frames depend on
``(seed, task_size)`` only, not on the executor or the number of workers.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from tps.sampling.paths import Paths

__all__ = ["anneal"]


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=None)


def _as_float64(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64)
    return torch.from_numpy(np.array(a, dtype=np.float64))


def _keep_kind_float64(a):
    """float64 in the caller's array kind (rows of numpy centres are cheapest for OpenMM, of tensors for torch)."""
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float64)
    return np.ascontiguousarray(a, dtype=np.float64)


def _centre(centres, n, rows, per_path):
    """Restraint centre of curve point ``n`` for the batch ``rows``: ``(*event)`` shared, or the rows'
    own ``(b, *event)`` (``(*event)`` for a batch of one path) when ``per_path``."""
    if not per_path:
        return centres[n]
    c = centres[n][rows.start:rows.stop]
    return c[0] if len(rows) == 1 else c


def _largest_steps(previous, frames):
    """Largest distance between consecutive configurations ``(b,)`` of ``previous (b, *event)`` followed by
    ``frames (b, K, *event)``."""
    f = torch.as_tensor(frames)
    seq = torch.cat([torch.as_tensor(previous)[:, None].to(f), f], 1)
    return (seq[:, 1:] - seq[:, :-1]).flatten(2).norm(dim=-1).max(1).values.to(torch.float64)


def _run(engine, centres, stiffness, reduced, x, seeds, K, fpp, bar=None, per_path=False, every_step=False):
    """The annealing loop on ``engine`` for the paths ``x`` ``(n, *event)``; returns frames, energies,
    per-path max energies, per-path largest single steps (``every_step``; else None), wall and CPU seconds.

    ``every_step``: the engine records every step (the same moves, so the same stream) and the
    ``fpp`` frames per point are every ``K // fpp``-th of them, as ``engine.step(K, fpp)`` would keep."""
    t0, c0 = time.perf_counter(), time.process_time()
    N = centres.shape[0]
    frames, energies, maxes, steps = [], [], [], []
    stride = K // fpp
    for rows in engine.batches(x.shape[0]):
        engine.set_restraint(_centre(centres, 0, rows, per_path), stiffness[0], reduced=reduced)
        engine.set_positions(x[rows.start:rows.stop])
        engine.draw_velocities(seeds[rows.start:rows.stop])
        x0, e0 = engine.observe()
        fr, en = [x0[:, None]], [e0[:, None]]
        last, big = x0, None
        for n in range(N):
            if n:
                engine.set_restraint(_centre(centres, n, rows, per_path), stiffness[n], reduced=reduced)
            engine.where = f"curve point {n}"
            if every_step:
                f, e = engine.step(K, K)
                s = _largest_steps(last, f)
                big = s if big is None else torch.maximum(big, s)
                last = f[:, -1]
                f, e = f[:, stride - 1::stride], e[:, stride - 1::stride]
            else:
                f, e = engine.step(K, fpp)
            fr.append(f)
            en.append(e)
            if bar is not None:
                bar.update(1)
        frames.append(torch.cat(fr, 1))
        energies.append(torch.cat(en, 1))
        maxes.append(engine.max_energy)
        steps.append(big)
    return (torch.cat(frames), torch.cat(energies), torch.cat(maxes), torch.cat(steps) if every_step else None,
            time.perf_counter() - t0, time.process_time() - c0)


def _task(shared, task):
    """One executor task: paths ``task.start .. task.stop - 1`` on ``engine.spawn(task.seed)``."""
    seeds = task.rng().integers(1, 2**31 - 1, size=task.size)
    recipe = shared["engine"]
    lock = getattr(recipe, "lock", None)
    if lock is None:
        from contextlib import nullcontext

        lock = nullcontext()
    with lock:
        engine = recipe.spawn(task.seed)
        per_path = shared.get("per_path", False)
        centres = shared["centres"][:, task.start:task.stop] if per_path else shared["centres"]
        frames, energies, maxes, steps, wall, cpu = _run(engine, centres, shared["stiffness"], shared["reduced"],
                                                         shared["x"][task.start:task.stop], seeds, shared["K"],
                                                         shared["fpp"], per_path=per_path,
                                                         every_step=shared.get("every_step", False))
        platform = getattr(getattr(engine, "platform", None), "getName", lambda: None)()
        return {"frames": frames, "energies": energies, "max_energy": maxes, "max_step": steps,
                "n_energy_evals": engine.n_energy_evals, "n_readouts": engine.n_readouts, "wall_s": wall,
                "cpu_s": cpu, "platform": platform}


def anneal(engine, schedule, *, n_paths: int, steps_per_point: int, frames_per_point: int = 1, x_start,
           velocity_seeds=None, seed: Optional[int] = None, executor=None, task_size: Optional[int] = None,
           checkpoint=None, checkpoint_inputs=None, progress: bool = False,
           desc: str = "annealed Langevin", reduced: Optional[bool] = None, record_max_step: bool = False) -> Paths:
    """Annealed Langevin along a restraint schedule on ``engine`` (module docstring).

    Parameters
    ----------
    engine : Engine
        Its random stream is used as it stands in-process (seed it before); with an executor it
        must be picklable and have ``spawn(seed)``.
    schedule : RestraintSchedule or (centres, stiffness)
        ``centres (N, *event)`` in the engine's length unit, or ``(N, n_paths, *event)``: each path's
        own centres (e.g. :func:`~tps.diffusion.schedule.renoised_centres`); ``stiffness (N,)`` in
        energy/length^2, or reduced (1/length^2) when ``schedule.kT`` is None (a
        :class:`~tps.diffusion.schedule.RestraintSchedule`).
    n_paths : int
    steps_per_point : int
        Engine steps per curve point, ``K``.
    frames_per_point : int
        Frames recorded per curve point (divides ``K``).
    x_start : Tensor or array, shape ``(n_paths, *event)``
    velocity_seeds : array of int, shape ``(n_paths,)``, optional
        Seeds of the initial velocities (OpenMM); default: ``numpy.random.default_rng(seed)``
        draws in ``[1, 2^31 - 1)``. Ignored with an executor (per-task streams).
    seed : int, optional
        Stage seed of the tasks (required with an executor).
    executor : None, concurrent.futures.Executor or dask.distributed.Client
    task_size : int, optional
        Paths per task (default ``engine.default_task_size`` or 16).
    checkpoint : path or TaskCheckpoint, optional
        Executor only: completed tasks stored there are reused by a rerun with the same inputs.
    checkpoint_inputs : object, optional
        What the results depend on besides ``seed`` and ``task_size`` (fingerprinted).
    progress : bool
    desc : str
        Progress-bar label.
    reduced : bool, optional
        Whether ``stiffness`` is reduced (1/length^2); default: ``schedule.kT is None`` for a
        :class:`~tps.diffusion.schedule.RestraintSchedule`, False for a tuple.
    record_max_step : bool
        Also record ``info["max_step_all_steps"] (n_paths,)``: each path's largest move between
        consecutive integrator steps (not only saved frames; Euclidean in the engine's coordinates),
        the continuity check. The engine then reads out every step (cheap in torch, slower for
        OpenMM); frames, energies and the random stream are unchanged.

    Returns
    -------
    Paths
        ``frames (n_paths, 1 + N * frames_per_point, *event)``, unrestrained ``energies``,
        ``n_energy_evals`` counted by the engine, ``kT = engine.kT``; ``info`` with
        ``max_energy_all_steps (n_paths,)``, ``n_energy_readouts``, ``wall_s``, ``cpu_s``,
        ``task_wall_s``, ``n_tasks``, ``task_size``, ``seed`` and ``platform`` (OpenMM).

    Examples
    --------
    >>> import torch
    >>> from tps.engines import TorchOverdampedEngine
    >>> from tps.potentials import Harmonic
    >>> engine = TorchOverdampedEngine(Harmonic((1,), k=1.0), kT=1.0, step_size=1e-3,
    ...                                generator=torch.Generator().manual_seed(0))
    >>> centres = torch.linspace(0, 3, 10, dtype=torch.float64)[:, None]
    >>> paths = anneal(engine, (centres, torch.full((10,), 400.0, dtype=torch.float64)), n_paths=3,
    ...                steps_per_point=20, x_start=torch.zeros(3, 1, dtype=torch.float64))
    >>> paths.frames.shape, paths.n_energy_evals             # 3 * (1 + 10 * 20)
    (torch.Size([3, 11, 1]), 603)
    >>> bool((paths.frames[:, -1, 0] > 2.5).all())
    True

    Each path with its own centres (here offset by +-0.5), largest single step recorded:

    >>> own = centres[:, None] + torch.tensor([[0.5], [-0.5], [0.0]], dtype=torch.float64)   # (10, 3, 1)
    >>> paths = anneal(engine, (own, torch.full((10,), 400.0, dtype=torch.float64)), n_paths=3,
    ...                steps_per_point=20, x_start=torch.zeros(3, 1, dtype=torch.float64), record_max_step=True)
    >>> (paths.frames[:, -1, 0] - 3.0).round().tolist(), paths.info["max_step_all_steps"].shape
    ([1.0, -0.0, 0.0], torch.Size([3]))
    """
    n_paths, K, fpp = int(n_paths), int(steps_per_point), int(frames_per_point)
    if n_paths <= 0 or K <= 0 or fpp <= 0 or K % fpp:
        raise ValueError(f"n_paths, steps_per_point, frames_per_point: expected positive integers with "
                         f"frames_per_point dividing steps_per_point, got {n_paths}, {K}, {fpp}")
    centres, stiffness = schedule
    if reduced is None:
        reduced = getattr(schedule, "kT", 0.0) is None
    centres, stiffness = _keep_kind_float64(centres), _keep_kind_float64(stiffness)
    x = _as_float64(x_start)
    N = centres.shape[0]
    per_path = centres.ndim == x.dim() + 1
    if per_path and centres.shape[1] != n_paths:
        raise ValueError(f"schedule: per-path centres must have shape (N, n_paths={n_paths}, *event), got "
                         f"{tuple(centres.shape)}")
    every = bool(record_max_step)
    t0 = time.perf_counter()
    if executor is None:
        if velocity_seeds is None:
            velocity_seeds = np.random.default_rng(seed).integers(1, 2**31 - 1, size=n_paths)
        bar = _progress(len(engine.batches(n_paths)) * N, desc, progress)
        before, before_r = engine.n_energy_evals, engine.n_readouts
        try:
            frames, energies, maxes, steps, task_wall, cpu = _run(engine, centres, stiffness, reduced, x,
                                                                  np.asarray(velocity_seeds), K, fpp, bar,
                                                                  per_path=per_path, every_step=every)
        finally:
            if bar is not None:
                bar.close()
        n_evals, n_readouts, n_tasks, size = engine.n_energy_evals - before, engine.n_readouts - before_r, 1, None
        platform = getattr(getattr(engine, "platform", None), "getName", lambda: None)()
    else:
        from tps.parallel import as_checkpoint, make_tasks, run_tasks

        if seed is None:
            raise ValueError("seed: expected an integer stage seed with an executor")
        size = int(task_size or getattr(engine, "default_task_size", 16))
        tasks = make_tasks(n_paths, task_size=size, seed=int(seed))
        shared = {"engine": engine, "centres": centres, "stiffness": stiffness, "reduced": reduced, "x": x, "K": K,
                  "fpp": fpp}
        key = ("anneal/2", checkpoint_inputs, centres, stiffness, reduced, x, K, fpp, int(seed), size)
        if per_path or every:  # only then: the keys of earlier checkpoints stay valid
            shared.update(per_path=per_path, every_step=every)
            key = key + (per_path, every)
        checkpoint = as_checkpoint(checkpoint, key)
        res = run_tasks(_task, tasks, shared=shared, executor=executor, checkpoint=checkpoint, progress=progress,
                        desc=desc)
        frames = torch.cat([r["frames"] for r in res])
        energies = torch.cat([r["energies"] for r in res])
        maxes = torch.cat([r["max_energy"] for r in res])
        steps = torch.cat([r["max_step"] for r in res]) if every else None
        n_evals = sum(int(r["n_energy_evals"]) for r in res)
        n_readouts = sum(int(r["n_readouts"]) for r in res)
        task_wall, cpu = sum(r["wall_s"] for r in res), sum(r["cpu_s"] for r in res)
        n_tasks, platform = len(tasks), res[0]["platform"]
    info = {"n_curve_points": N, "steps_per_point": K, "frames_per_point": fpp, "max_energy_all_steps": maxes,
            "n_energy_readouts": n_readouts, "wall_s": time.perf_counter() - t0, "cpu_s": cpu,
            "task_wall_s": task_wall, "n_tasks": n_tasks, "task_size": size, "seed": seed, "platform": platform}
    if every:
        info["max_step_all_steps"] = steps
    return Paths(frames, energies, n_evals, engine.kT, info)
