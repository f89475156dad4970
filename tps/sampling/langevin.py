"""Langevin samplers on any :class:`~tps.potentials.Potential`.

- :func:`overdamped_langevin`: Euler-Maruyama ``dx = -grad U dt + sqrt(2 kT dt) N(0, I)``
  (unit mobility; Doob's Lagrangian protocol for Muller-Brown uses kT = 12.5, dt = 1e-4).
  Used for training data (Boltzmann samples) and for unbiased MD baselines.
- :func:`annealed_langevin`: Algorithm 1 of Karczewski et al. along a spacetime curve.
"""

from __future__ import annotations

import math
import time

import torch

from tps._validation import as_tensor, check_event_shape, check_finite, check_positive, check_positive_int
from tps.diffusion.schedule import check_logsnr
from tps.diffusion.schedule import renoised_centres
from tps.diffusion.schedule import restraint_schedule as _restraint_schedule
from tps.engines.torch import TorchOverdampedEngine
from tps.engines.torch import blow_up_error as _blow_up
from tps.engines.torch import energy_and_forces_or_blow_up as _energy_and_forces_or_blow_up
from tps.sampling.annealed import anneal
from tps.sampling.paths import Paths


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=None)


def overdamped_langevin(potential, x0, *, kT: float, dt: float, n_steps: int, save_every: int = 1,
                        burn_in: int = 0, generator: torch.Generator | None = None, progress: bool = False):
    """Run independent overdamped Langevin chains.

    Euler-Maruyama for ``dx = -grad U dt + sqrt(2 kT dt) N(0, I)`` with unit mobility, so
    ``dt`` has units of length^2 per energy (for Muller-Brown everything is dimensionless).

    Parameters
    ----------
    potential : Potential
    x0 : Tensor, shape ``(n_chains, *event)``
        Starting configurations.
    kT : float
        Thermal energy in the potential's unit.
    dt : float
        Time step (unit mobility).
    n_steps : int
        Steps per chain; each costs one energy+force evaluation per chain.
    save_every : int
        Keep every ``save_every``-th configuration after ``burn_in`` steps.
    burn_in : int
        Steps discarded before the first saved configuration.
    generator : torch.Generator, optional
        Source of the noise (the global torch generator if None).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    samples : Tensor, shape ``(n_saved, n_chains, *event)``
        The configurations *before* the step of each saved index, ``n_saved =
        ceil((n_steps - burn_in) / save_every)``.
    energies : Tensor, shape ``(n_saved, n_chains)``
    n_evals : int
        Energy+force evaluations spent (``n_chains * n_steps``).

    Raises
    ------
    ValueError
        If ``kT``, ``dt``, ``n_steps`` or ``save_every`` is not positive, ``x0`` has the wrong
        shape or is not finite, ``burn_in`` leaves nothing to save, or (naming ``dt``) the chains
        blow up to non-finite positions or energies because ``dt`` is too large.

    Examples
    --------
    In a harmonic well of stiffness ``k = 1`` at ``kT = 1`` the variance per coordinate is 1
    (Euler-Maruyama's stationary variance is ``1 / (1 - dt/2) = 1.026`` here):

    >>> import torch
    >>> from tps.potentials import Harmonic
    >>> g = torch.Generator().manual_seed(0)
    >>> x, e, n = overdamped_langevin(Harmonic((2,), k=1.0), torch.zeros(200, 2, dtype=torch.float64),
    ...                               kT=1.0, dt=0.05, n_steps=300, burn_in=100, save_every=10, generator=g)
    >>> x.shape, n
    (torch.Size([20, 200, 2]), 60000)
    >>> round(float(x.var()), 1)
    1.0
    """
    kT = check_positive(kT, "kT")
    dt = check_positive(dt, "dt")
    n_steps = check_positive_int(n_steps, "n_steps")
    save_every = check_positive_int(save_every, "save_every")
    x = as_tensor(x0, "x0").clone()
    check_event_shape(x, potential.event_shape, "x0")
    check_finite(x, "x0")
    noise_scale = math.sqrt(2 * kT * dt)
    samples, energies = [], []
    before = potential.n_evals
    bar = _progress(n_steps, "Langevin", progress)
    for step in range(n_steps):
        e, f = _energy_and_forces_or_blow_up(potential, x, "dt", f"step {step}")
        if step >= burn_in and (step - burn_in) % save_every == 0:
            samples.append(x.clone())
            energies.append(e)
        x = x + dt * f + noise_scale * torch.randn(x.shape, dtype=x.dtype, generator=generator)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not samples:
        raise ValueError(f"burn_in: {burn_in} leaves no saved samples out of n_steps={n_steps}")
    samples, energies = torch.stack(samples), torch.stack(energies)
    if not bool(torch.isfinite(energies).all()):
        raise _blow_up("dt", "a saved sample")
    return samples, energies, potential.n_evals - before


def restraint_schedule(curve_x, curve_logsnr, scaling=None):
    """:func:`tps.diffusion.schedule.restraint_schedule` (reduced stiffness) as a tuple ``(centres, stiffness)``.

    Parameters, formula and errors are those of the schedule function; ``centres (N, *event)`` are in
    physical coordinates and ``stiffness (N,)`` in 1/length^2 (units of 1/kT).

    Examples
    --------
    >>> import torch
    >>> centres, k = restraint_schedule(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    >>> centres.shape, k.tolist()                # exp(0) with the identity scaling
    (torch.Size([3, 2]), [1.0, 1.0, 1.0])
    """
    return tuple(_restraint_schedule(curve_x, curve_logsnr, scaling))


def annealed_langevin(potential, curve_x, curve_logsnr, *, kT: float, n_paths: int, steps_per_point: int = 16,
                      step_size: float = 4e-4, scaling=None, x_start=None, frames_per_point: int = 1,
                      max_restraint_step: float = 1.0, generator: torch.Generator | None = None,
                      progress: bool = False, executor=None, seed: int | None = None, task_size: int | None = None,
                      checkpoint=None, centre_noise: float | None = None, logsnr_shift: float | None = None,
                      record_max_step: bool = False) -> Paths:
    """Annealed Langevin dynamics along a spacetime curve (Algorithm 1 of Karczewski et al.).

    For each curve point ``n`` every chain makes ``steps_per_point`` unadjusted Langevin steps
    ``x <- x - (ds/2) grad u_n(x) + sqrt(ds) xi`` on the tilted reduced energy
    ``u_n(x) = U(x)/kT + k_n/2 ||x - c_n||^2`` (centre ``c_n`` and stiffness ``k_n`` from
    :func:`restraint_schedule`). Chains start at ``x_start`` (default: the first restraint
    centre, i.e. ``x_a``). The concatenated chain is one transition path.

    Parameters
    ----------
    potential : Potential
    curve_x : Tensor, shape ``(N, *event)``
        Curve points in model coordinates.
    curve_logsnr : Tensor, shape ``(N,)``
        logSNR of each curve point (dimensionless, inside ``[LOGSNR_MIN, LOGSNR_MAX]``).
    kT : float
        Thermal energy in the potential's unit.
    n_paths : int
        Number of independent chains (paths).
    steps_per_point : int
        ``K``; the cost per path is ``N * K`` evaluations (+1 for the first frame).
    step_size : float
        ``ds`` in physical length^2 (reduced units: the drift is ``ds/2`` times the reduced force).
    scaling : AffineScaling, optional
        Model-to-physical coordinates; identity if None.
    x_start : Tensor, shape ``(*event)`` or ``(n_paths, *event)``, optional
    frames_per_point : int
        Frames recorded per curve point (must divide ``steps_per_point``).
    max_restraint_step : float
        Upper bound on ``ds * k_n``: where the restraint is stiffer than ``max_restraint_step/ds``
        the step shrinks to ``max_restraint_step / k_n`` so that Euler-Maruyama stays stable
        (the harmonic part contracts by ``1 - ds k_n / 2 >= 1/2`` per step).
    generator : torch.Generator, optional
        Noise source without an executor (the global generator if None).
    progress : bool
        Progress bar of curve points (no executor) or of completed tasks.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        None (default): one batch of all paths in this process (the historical stream). Otherwise
        the paths are cut into tasks of ``task_size`` run there (:mod:`tps.parallel`), task ``i``
        with a generator seeded from ``(seed, i)``: the same frames for every executor and
        worker count. ``potential`` must be picklable.
    seed : int, optional
        Seed of the task streams (executor only); default: one integer drawn from ``generator``.
    task_size : int, optional
        Paths per task (executor only; default :data:`DEFAULT_TASK_SIZE`).
    checkpoint : path or TaskCheckpoint, optional
        Executor only: completed tasks are stored there and reused by a rerun.
    centre_noise : float, optional
        Give each path its own restraint centres, moved perpendicular to the curve by
        ``centre_noise`` restraint widths times one standard normal draw per path
        (:func:`tps.diffusion.schedule.renoised_centres`; the draws come first from ``generator``,
        before any Langevin noise). None or 0 (default): every path follows the curve's centres.
    logsnr_shift : float, optional
        Softer restraints ``exp(lam - logsnr_shift) / scale^2`` (centres unchanged). None or 0: the
        derived stiffness.
    record_max_step : bool
        Record ``info["max_step_all_steps"] (n_paths,)``, each path's largest move between consecutive
        Langevin steps (saved or not); see :func:`tps.sampling.annealed.anneal`.

    Returns
    -------
    Paths
        ``frames`` of shape ``(n_paths, 1 + N * frames_per_point, *event)`` with energies and
        ``n_energy_evals = n_paths * (1 + N * steps_per_point)``; ``info["max_energy_all_steps"]``
        (shape ``(n_paths,)``) is each path's largest energy over every Langevin step, so a chain
        that jumps a barrier between saved frames cannot hide it.

    Raises
    ------
    ValueError
        If a count or step is not positive, ``frames_per_point`` does not divide
        ``steps_per_point``, the curve is empty, the curve, its logSNR or ``x_start`` have the
        wrong shape or non-finite values, or (naming ``step_size``) the chains blow up to
        non-finite positions or energies because the step is too large.

    Examples
    --------
    Along a stiff (logSNR 8) straight curve from Muller-Brown's A to B every path is dragged into
    B; it crosses the ridge between them (energy ~ 13, see :func:`tps.metrics.max_energy`):

    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> from tps.diffusion import alpha_sigma
    >>> A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)
    >>> lam = torch.full((20,), 8.0, dtype=torch.float64)
    >>> s = torch.linspace(0, 1, 20, dtype=torch.float64)[:, None]
    >>> curve = alpha_sigma(lam)[0][:, None] * (A + s * (B - A))     # z_t = alpha * x0
    >>> g = torch.Generator().manual_seed(0)
    >>> paths = annealed_langevin(MullerBrown(), curve, lam, kT=12.5, n_paths=4, steps_per_point=5,
    ...                           generator=g)
    >>> paths.frames.shape, paths.n_energy_evals                    # 4 * (1 + 20 * 5)
    (torch.Size([4, 21, 2]), 404)
    >>> bool(((paths.frames[:, -1] - B).norm(dim=-1) < 0.1).all())
    True
    """
    kT = check_positive(kT, "kT")
    n_paths = check_positive_int(n_paths, "n_paths")
    K = check_positive_int(steps_per_point, "steps_per_point")
    ds = check_positive(step_size, "step_size")
    fpp = check_positive_int(frames_per_point, "frames_per_point")
    if K % fpp:
        raise ValueError(f"frames_per_point: expected a divisor of steps_per_point={K}, got {fpp}")
    curve_x = as_tensor(curve_x, "curve_x")
    check_finite(curve_x, "curve_x")
    event = tuple(potential.event_shape)
    if tuple(curve_x.shape[1:]) != event or curve_x.shape[0] == 0:
        raise ValueError(f"curve_x: expected shape (N, {', '.join(map(str, event))}), got {tuple(curve_x.shape)}")
    lam = check_logsnr(curve_logsnr, "curve_logsnr").to(curve_x)
    if lam.shape != curve_x.shape[:1]:
        raise ValueError(f"curve_logsnr: expected shape ({curve_x.shape[0]},), got {tuple(lam.shape)}")
    noise = None if centre_noise is None else float(centre_noise)
    if noise is not None and not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"centre_noise: expected a non-negative number or None, got {centre_noise!r}")
    with torch.no_grad():
        sched = _restraint_schedule(curve_x.detach(), lam.detach(), scaling, logsnr_shift=logsnr_shift)
    centres = sched.centres.to(torch.float64)
    stiffness = sched.stiffness.to(torch.float64)
    if x_start is None:
        x = centres[0].expand((n_paths,) + event).clone()
    else:
        x_start = as_tensor(x_start, "x_start").to(torch.float64)
        check_finite(x_start, "x_start")
        if tuple(x_start.shape) == event:
            x = x_start.expand((n_paths,) + event).clone()
        elif tuple(x_start.shape) == (n_paths,) + event:
            x = x_start.clone()
        else:
            raise ValueError(f"x_start: expected shape {event} or {(n_paths,) + event}, got {tuple(x_start.shape)}")
    path_centres = centres
    if noise:  # drawn before any Langevin noise, so a run with a given generator is reproducible
        eps = torch.randn((n_paths,) + event, dtype=torch.float64, generator=generator)
        path_centres = renoised_centres(centres, stiffness, eps, scale=noise)
    step_sizes = torch.minimum(torch.full_like(stiffness, ds), max_restraint_step / stiffness)
    engine = TorchOverdampedEngine(potential, kT=kT, step_size=ds, max_restraint_step=max_restraint_step,
                                   generator=generator, step_name="step_size")
    common = {"sampler": "annealed-langevin", "n_curve_points": int(centres.shape[0]), "steps_per_point": K,
              "step_size": ds, "frames_per_point": fpp, "min_step_size_used": float(step_sizes.min())}
    options = {k: v for k, v in (("centre_noise", noise), ("logsnr_shift", logsnr_shift)) if v}
    common.update(options)
    extra = {"record_max_step": True} if record_max_step else {}
    if executor is None:
        t0 = time.perf_counter()
        p = anneal(engine, (path_centres, stiffness), n_paths=n_paths, steps_per_point=K, frames_per_point=fpp,
                   x_start=x, progress=progress, desc="annealed Langevin", reduced=True, **extra)
        info = {**common, "max_energy_all_steps": p.info["max_energy_all_steps"],
                "wall_s": time.perf_counter() - t0}
        if record_max_step:
            info["max_step_all_steps"] = p.info["max_step_all_steps"]
        return Paths(p.frames, p.energies, p.n_energy_evals, kT, info)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    size = DEFAULT_TASK_SIZE if task_size is None else check_positive_int(task_size, "task_size")
    lam = lam.detach()
    inputs = (type(potential).__name__, curve_x.detach(), lam, {"kT": kT, "step_size": ds, "scaling": repr(scaling),
                                                              "max_restraint_step": repr(max_restraint_step),
                                                              **{k: repr(v) for k, v in options.items()}})
    t0 = time.perf_counter()
    p = anneal(engine, (path_centres, stiffness), n_paths=n_paths, steps_per_point=K, frames_per_point=fpp,
               x_start=x, seed=seed, executor=executor, task_size=size, checkpoint=checkpoint,
               checkpoint_inputs=inputs, progress=progress, desc="annealed Langevin", reduced=True, **extra)
    info = {**common, "max_energy_all_steps": p.info["max_energy_all_steps"], "seed": int(seed), "task_size": size,
            "n_tasks": p.info["n_tasks"], "wall_s": time.perf_counter() - t0}
    if record_max_step:
        info["max_step_all_steps"] = p.info["max_step_all_steps"]
    return Paths(p.frames, p.energies, p.n_energy_evals, kT, info)


#: Paths per task of :func:`annealed_langevin` with an executor (a vectorised batch per task).
DEFAULT_TASK_SIZE = 128
