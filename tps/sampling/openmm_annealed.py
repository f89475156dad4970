"""Annealed Langevin along a spacetime curve, run inside OpenMM (method.md section 5).

The denoising distribution of a curve point is Boltzmann in the force field plus a harmonic
restraint ``k_n/2 ||x - c_n||^2`` (all atoms, all coordinates). Here that restraint is one
:class:`openmm.CustomExternalForce` with per-particle centres ``(x0, y0, z0)`` and a global
stiffness ``k_restraint``; OpenMM's own ``LangevinMiddleIntegrator``, the system's constraints
and the chosen platform do the dynamics. At each curve point the centres are pushed with
``updateParametersInContext`` and the stiffness with ``setParameter``; one ``Context`` serves
every path (per worker thread). The loop is :func:`tps.sampling.annealed.anneal` on an
:class:`~tps.engines.openmm.OpenMMLangevinEngine`, whose context comes from the cache
:func:`tps.engines.openmm.context_for` (a repeated call reuses it, reseeded).

Units are OpenMM's MD units throughout: nm, ps, kJ/mol, K; stiffness in kJ/mol/nm^2.

Evaluation count (method.md section 7): ``n_energy_evals = n_paths * N * K`` MD steps, one
force evaluation each (``LangevinMiddleIntegrator`` evaluates forces once per step). The
force-field energy read out at every recorded frame is an extra energy evaluation, counted
separately in ``info["n_energy_readouts"] = n_paths * (1 + N * frames_per_point)``.

Measured throughput (alanine dipeptide, 22 atoms, Reference platform, 2-core CPU shared with
other jobs, N = 128, K = 100, 2 fs, 4 paths; steps per CPU-second, because wall-clock rates
swing by 2x with the load; medians of 5 interleaved repetitions): plain
``LangevinMiddleIntegrator`` MD 59 000; the same with a static restraint force 49 000 (0.88);
this sampler 52 500, i.e. 0.89 of plain MD (per-repetition ratios 0.55 - 0.96; the goal was
0.8). The Lepton-evaluated ``CustomExternalForce`` costs ~12 %; the per-point calls
(``setParticleParameters`` for 22 atoms 0.07 ms, ``updateParametersInContext`` and
``setParameter`` < 0.01 ms, the energy readout 0.04 ms, against ~2 ms for 100 steps) cost
nothing measurable. Two worker processes did not help on that loaded 2-core machine: 16 paths
took 8 - 10 s wall against 4 - 7 s with one worker (spawned processes import torch and ``tps``
first, and the second core is shared); it can pay off for long runs on free cores.

Parallel runs: ``executor=`` (any ``concurrent.futures.Executor`` or a
``dask.distributed.Client``, :mod:`tps.parallel`) cuts the paths into tasks of ``task_size``
paths with per-task random streams; each worker keeps one context per system and reseeds it per
task. ``python -m benchmarks scaling`` measures throughput and parallel efficiency.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import warnings
from typing import Optional

import numpy as np
import openmm
import openmm.unit as unit
import torch

from tps.diffusion.schedule import renoised_centres, restraint_schedule
from tps.engines.openmm import RESTRAINT_EXPRESSION, OpenMMLangevinEngine, add_restraint, set_restraint
from tps.potentials.openmm import boltzmann_kT
from tps.sampling.annealed import anneal
from tps.sampling.paths import Paths

__all__ = ["openmm_annealed_langevin", "openmm_restraint_schedule", "add_restraint", "set_restraint",
           "RESTRAINT_EXPRESSION", "DEFAULT_TASK_SIZE"]


def openmm_restraint_schedule(curve_x, curve_logsnr, *, kT: float, scaling=None):
    """Restraint centres (nm) and stiffnesses (kJ/mol/nm^2) of a curve, for OpenMM.

    :func:`tps.diffusion.schedule.restraint_schedule` with ``kT``, as float64 arrays:
    ``centre_n = shift + scale * z_n / alpha_n`` and ``stiffness_n = kT exp(lam_n) / scale^2``.

    Parameters
    ----------
    curve_x : Tensor, shape ``(N, n_atoms, 3)``
        Curve points in model coordinates.
    curve_logsnr : Tensor, shape ``(N,)``
    kT : float
        Thermal energy, kJ/mol.
    scaling : AffineScaling, optional
        Model-to-physical coordinates (nm); identity if None.

    Returns
    -------
    centres : ndarray, shape ``(N, n_atoms, 3)``, nm
    stiffness : ndarray, shape ``(N,)``, kJ/mol/nm^2

    Examples
    --------
    >>> import torch
    >>> from tps.diffusion import AffineScaling
    >>> lam = torch.tensor([0.0, 2.0, 4.0], dtype=torch.float64)
    >>> scaling = AffineScaling((0.1,) * 6, 0.2, (2, 3))              # 2 atoms, scale 0.2 nm
    >>> centres, k = openmm_restraint_schedule(torch.zeros(3, 2, 3, dtype=torch.float64), lam, kT=2.5,
    ...                                        scaling=scaling)
    >>> centres.shape, centres[0, 0].tolist()                      # z = 0 sits at the shift
    ((3, 2, 3), [0.1, 0.1, 0.1])
    >>> k.round(1)                                                 # 2.5 exp(lam) / 0.2^2
    array([  62.5,  461.8, 3412.4])
    """
    with torch.no_grad():
        sched = restraint_schedule(torch.as_tensor(curve_x).detach(), torch.as_tensor(curve_logsnr).detach(), scaling,
                                   kT=float(kT))
    return sched.centres.double().cpu().numpy(), sched.stiffness.double().cpu().numpy()


def _check_inputs(system, centres, stiffness, x_start, n_paths):
    n_atoms = system.getNumParticles()
    centres = np.asarray(centres.detach().cpu() if isinstance(centres, torch.Tensor) else centres, dtype=np.float64)
    if centres.ndim != 3 or centres.shape[1:] != (n_atoms, 3):
        raise ValueError(f"centres: expected shape (N, {n_atoms}, 3) in nm, got {centres.shape}")
    stiffness = np.asarray(stiffness.detach().cpu() if isinstance(stiffness, torch.Tensor) else stiffness, dtype=np.float64)
    if stiffness.ndim == 0:
        stiffness = np.full(centres.shape[0], float(stiffness))
    if stiffness.shape != (centres.shape[0],):
        raise ValueError(f"stiffness: expected shape ({centres.shape[0]},) in kJ/mol/nm^2, got {stiffness.shape}")
    if not (np.isfinite(centres).all() and np.isfinite(stiffness).all()) or (stiffness < 0).any():
        raise ValueError("centres, stiffness: expected finite values and non-negative stiffness")
    x = np.asarray(x_start.detach().cpu() if isinstance(x_start, torch.Tensor) else x_start, dtype=np.float64)
    if x.shape == (n_atoms, 3):
        x = np.broadcast_to(x, (n_paths, n_atoms, 3))
    elif x.shape != (n_paths, n_atoms, 3):
        raise ValueError(f"x_start: expected shape ({n_atoms}, 3) or ({n_paths}, {n_atoms}, 3) in nm, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x_start: expected finite positions")
    return centres, stiffness, np.ascontiguousarray(x)


def _warn_stiff_restraint(system, stiffness, timestep):
    masses = [system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())]
    masses = [m for m in masses if m > 0]
    if not masses or not stiffness.size:
        return
    omega_dt = timestep * math.sqrt(float(stiffness.max()) / min(masses))
    if omega_dt > 1.0:
        warnings.warn(
            f"stiffness: the stiffest restraint ({stiffness.max():.4g} kJ/mol/nm^2) on the lightest particle "
            f"({min(masses):.4g} Da) gives omega*dt = {omega_dt:.2f} > 1 with timestep {timestep} ps; "
            "the integrator may be inaccurate or unstable (LangevinMiddle needs omega*dt < 2): reduce the timestep",
            stacklevel=3,
        )


#: Paths per task when an executor is given (a few seconds of MD per task for alanine dipeptide
#: at the ``tps run`` defaults; scheduling overhead is a few ms per task).
DEFAULT_TASK_SIZE = 4


def openmm_annealed_langevin(system: openmm.System, centres, stiffness, *, temperature: float = 300.0,
                             n_paths: int, steps_per_point: int, x_start, timestep: float = 0.002,
                             friction: float = 1.0, platform="auto", frames_per_point: int = 1, seed: int = 0,
                             n_workers: int = 1, progress: bool = False, executor=None,
                             task_size: Optional[int] = None, checkpoint=None,
                             centre_noise: Optional[float] = None) -> Paths:
    """Annealed Langevin dynamics along restraint centres, inside OpenMM.

    For each curve point ``n`` every path makes ``K = steps_per_point`` steps of OpenMM's
    ``LangevinMiddleIntegrator`` on the force field plus ``stiffness[n]/2 ||x - centres[n]||^2``.
    The concatenated chain is one transition path. Paths start at ``x_start`` (constraints
    applied) with velocities drawn at ``temperature``.

    Parameters
    ----------
    system : openmm.System
        Any molecule; copied, never modified. Its constraints are used for the dynamics.
    centres : array, shape ``(N, n_atoms, 3)``, nm
        Restraint centres in physical coordinates (see :func:`openmm_restraint_schedule`).
    stiffness : array, shape ``(N,)`` (or a scalar), kJ/mol/nm^2
    temperature : float
        K (default 300).
    n_paths : int
    steps_per_point : int
        MD steps per curve point, ``K``.
    x_start : array, shape ``(n_atoms, 3)`` or ``(n_paths, n_atoms, 3)``, nm
    timestep : float
        ps (default 0.002).
    friction : float
        1/ps (default 1).
    platform : str or sequence of str
        See :func:`tps.potentials.openmm.select_platform`.
    frames_per_point : int
        Frames recorded per curve point; must divide ``steps_per_point``.
    seed : int
        Seeds the integrator and the per-path initial velocities. Without an executor: one
        context, one integrator stream for all paths (the historical stream). With an executor:
        per-task streams from ``(seed, task index)``; reproducible for a given
        ``(seed, task_size)`` on deterministic platforms whatever the executor and worker count.
    n_workers : int
        Deprecated: ``n_workers > 1`` runs the task split on a ``ProcessPoolExecutor`` of that
        many ``spawn`` processes; pass ``executor=`` instead. Default 1.
    progress : bool
        A progress bar of paths (no executor) or of completed tasks.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        Where the tasks run (:mod:`tps.parallel`). None (default): in this process, one context.
    task_size : int, optional
        Paths per task with an executor (default :data:`DEFAULT_TASK_SIZE`); fixes the random
        streams, independent of the number of workers.
    checkpoint : path or TaskCheckpoint, optional
        With an executor: directory where completed tasks are stored; a rerun with the same
        inputs resumes from them.
    centre_noise : float, optional
        Each path's own centres, moved perpendicular to the curve by ``centre_noise`` restraint
        widths ``sqrt(kT / stiffness)`` times one normal draw per path
        (:func:`tps.diffusion.schedule.renoised_centres`; the draws come from
        ``numpy.random.default_rng([seed, 2])``, apart from the velocity and integrator streams).
        None or 0 (default): every path follows ``centres``.

    Returns
    -------
    Paths
        ``frames`` float64 ``(n_paths, 1 + N * frames_per_point, n_atoms, 3)`` in nm (first
        frame: ``x_start`` after constraints); ``energies`` ``(n_paths, 1 + N * frames_per_point)``
        force-field energy in kJ/mol *without* the restraint; ``n_energy_evals = n_paths * N * K``
        (MD steps); ``kT`` in kJ/mol; ``info`` with ``wall_s``, ``steps_per_s``,
        ``n_energy_readouts`` (the extra energy evaluations of the recorded frames), platform
        and settings.

    Examples
    --------
    One free particle (12 Da) dragged from the origin to x = 1 nm by a 500 kJ/mol/nm^2 restraint:

    >>> import numpy as np, openmm
    >>> system = openmm.System(); _ = system.addParticle(12.0)
    >>> centres = np.linspace(0.0, 1.0, 20)[:, None, None] * np.array([1.0, 0.0, 0.0])
    >>> paths = openmm_annealed_langevin(system, centres, np.full(20, 500.0), n_paths=2, steps_per_point=50,
    ...                                  x_start=np.zeros((1, 3)), platform="Reference")
    >>> tuple(paths.frames.shape), paths.n_energy_evals
    ((2, 21, 1, 3), 2000)
    >>> bool(abs(paths.frames[:, -1, 0, 0].mean() - 1.0) < 0.3)
    True
    """
    n_paths = int(n_paths)
    K = int(steps_per_point)
    fpp = int(frames_per_point)
    n_workers = int(n_workers)
    if n_paths <= 0 or K <= 0 or fpp <= 0 or n_workers <= 0:
        raise ValueError("n_paths, steps_per_point, frames_per_point, n_workers: expected positive integers")
    if K % fpp:
        raise ValueError(f"frames_per_point: expected a divisor of steps_per_point={K}, got {fpp}")
    for name, v in (("temperature", temperature), ("timestep", timestep), ("friction", friction)):
        if not (math.isfinite(float(v)) and float(v) > 0):
            raise ValueError(f"{name}: expected a positive finite number, got {v!r}")
    centres, stiffness, starts = _check_inputs(system, centres, stiffness, x_start, n_paths)
    N = centres.shape[0]
    schedule_centres = centres
    if centre_noise is not None and not (math.isfinite(float(centre_noise)) and float(centre_noise) >= 0):
        raise ValueError(f"centre_noise: expected a non-negative number or None, got {centre_noise!r}")
    if centre_noise:
        if not (stiffness > 0).all():
            raise ValueError("centre_noise: needs a positive stiffness at every curve point (a restraint width)")
        eps = np.random.default_rng([int(seed), 2]).standard_normal((n_paths,) + centres.shape[1:])
        schedule_centres = renoised_centres(centres, stiffness, eps, scale=float(centre_noise),
                                            kT=boltzmann_kT(temperature)).numpy()
    _warn_stiff_restraint(system, stiffness, float(timestep))
    xml = openmm.XmlSerializer.serialize(system)
    settings = dict(temperature=float(temperature), timestep=float(timestep), friction=float(friction),
                    platform=platform, restraint=True, xml=xml)
    t0 = time.perf_counter()
    pool = None
    if executor is None and n_workers > 1:
        import concurrent.futures

        warnings.warn("n_workers is deprecated: pass executor= (e.g. a dask.distributed.Client); running the task "
                      "split on a process pool", DeprecationWarning, stacklevel=2)
        executor = pool = concurrent.futures.ProcessPoolExecutor(n_workers,
                                                                 mp_context=multiprocessing.get_context("spawn"))
    schedule = (schedule_centres, stiffness)
    if executor is None:
        rng = np.random.default_rng(seed)
        velocity_seeds = rng.integers(1, 2**31 - 1, size=n_paths)
        integrator_seeds = rng.integers(1, 2**31 - 1, size=n_workers)
        engine = OpenMMLangevinEngine(system, seed=int(integrator_seeds[0]), **settings)
        with engine.lock:
            p = anneal(engine, schedule, n_paths=n_paths, steps_per_point=K, frames_per_point=fpp, x_start=starts,
                       velocity_seeds=velocity_seeds, progress=progress, desc="OpenMM annealed Langevin",
                       reduced=False)
        size = None
    else:
        size = DEFAULT_TASK_SIZE if task_size is None else task_size
        engine = OpenMMLangevinEngine(system, seed=int(seed), build=False, **settings)
        key = (xml, (float(temperature), float(timestep), float(friction), platform, fpp, K))
        try:
            p = anneal(engine, schedule, n_paths=n_paths, steps_per_point=K, frames_per_point=fpp, x_start=starts,
                       seed=seed, executor=executor, task_size=size, checkpoint=checkpoint, checkpoint_inputs=key,
                       progress=progress, desc="OpenMM annealed Langevin", reduced=False)
        finally:
            if pool is not None:
                pool.shutdown()
    frames, energies = p.frames, p.energies
    cpu, task_wall, plat, n_tasks = p.info["cpu_s"], p.info["task_wall_s"], p.info["platform"], p.info["n_tasks"]
    wall = time.perf_counter() - t0
    n_steps = n_paths * N * K
    bad = int((~torch.isfinite(energies)).any(1).sum())
    if bad:
        warnings.warn(f"{bad} of {n_paths} paths have non-finite energies (the dynamics blew up): "
                      "reduce the timestep or the restraint stiffness", stacklevel=2)
    info = {
        "sampler": "openmm-annealed-langevin",
        "platform": plat,
        "n_curve_points": N,
        "steps_per_point": K,
        "frames_per_point": fpp,
        "temperature": float(temperature),
        "timestep": float(timestep),
        "friction": float(friction),
        "n_workers": n_workers,
        "n_tasks": n_tasks,
        "task_size": None if size is None else int(size),
        "seed": int(seed),
        **({"centre_noise": float(centre_noise)} if centre_noise else {}),
        "n_md_steps": n_steps,
        "n_energy_readouts": n_paths * (1 + N * fpp),
        "evaluation_convention": "n_energy_evals counts MD steps (one force evaluation each); "
                                 "the energy readouts of recorded frames are counted in n_energy_readouts",
        "wall_s": wall,
        "steps_per_s": n_steps / wall if wall > 0 else float("nan"),
        "cpu_s": cpu,
        "task_wall_s": task_wall,
        "steps_per_cpu_s": n_steps / cpu if cpu > 0 else float("nan"),
    }
    return Paths(frames, energies, n_steps, boltzmann_kT(temperature), info)
