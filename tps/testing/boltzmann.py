"""Boltzmann-statistics check for dynamics engines (:class:`tps.engines.base.Engine`).

A harmonic restraint ``0.5 k |x - c|^2`` on an otherwise flat potential has a known Boltzmann
distribution: every coordinate is Gaussian with mean ``c`` and variance ``kT / k``. An engine
that samples at the temperature it reports reproduces these moments; one with a wrong noise
amplitude, friction-dependent bias, wrong restraint or too large a step does not. On any other
potential with known moments (e.g. :class:`tps.potentials.Harmonic`, whose mean energy is
``dim kT / 2``) the expected moments are passed instead.

Frames of one replica are correlated, so the standard errors come from block averages
(:func:`tps.testing.statistics.block_standard_error`), and the check refuses to pass when the
blocks are not much longer than the integrated autocorrelation time.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from tps.testing._inputs import batch_tensor, event_tensor, stiffness_energy
from tps.testing._result import CheckResult, verdict
from tps.testing.statistics import block_standard_error, integrated_autocorrelation_time

__all__ = ["check_boltzmann", "assert_boltzmann", "sample_engine"]


def sample_engine(engine, x_start, *, n_steps: int, n_frames: int, burn_in_steps: int = 0, centre=None,
                  stiffness: float = 0.0, reduced: bool = False, seed: Optional[int] = 0):
    """Run every replica from ``x_start`` (restrained if ``centre`` is given) and return its frames.

    Replicas are run batch by batch as ``engine.batches`` groups them: restraint set, positions
    set, velocities drawn (one seed per replica), ``burn_in_steps`` discarded, then ``n_steps``
    steps recording ``n_frames`` evenly spaced frames.

    Parameters
    ----------
    engine : Engine
    x_start : array-like, shape ``(n_replicas, *event_shape)``
    n_steps, n_frames : int
        ``n_frames`` must divide ``n_steps``.
    burn_in_steps : int
    centre : array-like, shape ``event_shape``, optional
        Restraint centre; None leaves the engine's restraint as it is (normally none, and an
        engine built without restraint support is fine).
    stiffness : float
        Restraint stiffness (energy/length^2, or 1/length^2 if ``reduced``).
    reduced : bool
    seed : int or None
        The engine is reseeded and the velocity seeds drawn from ``numpy.random.SeedSequence(seed)``
        (all non-zero: OpenMM reads 0 as "random"); None keeps the engine's stream and uses
        velocity seeds ``1, 2, ...``.

    Returns
    -------
    frames : Tensor, shape ``(n_replicas, n_frames, *event_shape)``
    energies : Tensor, shape ``(n_replicas, n_frames)``
        Unrestrained energies as the engine reports them.

    Examples
    --------
    >>> import torch
    >>> from tps.engines import TorchOverdampedEngine
    >>> from tps.potentials import Harmonic
    >>> engine = TorchOverdampedEngine(Harmonic((2,), k=1.0), kT=1.0, dt=0.01)
    >>> frames, energies = sample_engine(engine, torch.zeros(3, 2), n_steps=100, n_frames=10)
    >>> tuple(frames.shape), tuple(energies.shape)
    ((3, 10, 2), (3, 10))
    """
    event_shape = tuple(engine.event_shape)
    x_start = batch_tensor(x_start, event_shape, "x_start")
    n = x_start.shape[0]
    if seed is None:
        velocity_seeds = list(range(1, n + 1))
    else:  # seeds in 1 .. 2^31 - 2: OpenMM reads 0 as "pick a random seed"
        engine_seed, *velocity_seeds = [int(s) % (2 ** 31 - 2) + 1
                                        for s in np.random.SeedSequence(int(seed)).generate_state(n + 1)]
        engine.reseed(engine_seed)
    frames, energies = [], []
    for rows in engine.batches(n):
        if centre is not None:
            engine.set_restraint(centre, stiffness, reduced=reduced)
        engine.set_positions(x_start[rows.start:rows.stop])
        engine.draw_velocities(velocity_seeds[rows.start:rows.stop])
        if burn_in_steps:
            engine.step(int(burn_in_steps), 1)
        fr, en = engine.step(int(n_steps), int(n_frames))
        frames.append(torch.as_tensor(fr, dtype=torch.float64))
        energies.append(torch.as_tensor(en, dtype=torch.float64))
    return torch.cat(frames), torch.cat(energies)


def _mean_and_error(series, n_blocks):
    """Per coordinate of ``series`` ``(n_chains, n_frames, d)``: mean, standard error and autocorrelation time.

    The standard error is the larger of the block-average error and ``sqrt(var tau / n)``, so
    that neither a few noisy blocks nor a truncated autocorrelation sum makes it too small.
    """
    mean, block_se = block_standard_error(series, n_blocks=n_blocks)
    n = series.shape[0] * series.shape[1]
    tau = np.array([integrated_autocorrelation_time(series[:, :, j]) for j in range(series.shape[2])])
    with np.errstate(invalid="ignore"):
        acf_se = np.sqrt(series.var(axis=(0, 1)) * tau / n)
    return mean, np.fmax(block_se, np.nan_to_num(acf_se, nan=np.inf)), tau


def _z(estimate, standard_error, expected, allowance):
    """``(|estimate - expected| - allowance)_+ / standard_error`` (inf where the error is 0 but the gap is not)."""
    gap = np.maximum(np.abs(estimate - expected) - allowance, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(gap > 0, gap / standard_error, 0.0)
    return np.where(np.isnan(z), np.inf, z)


def check_boltzmann(engine, *, centre=None, stiffness: Optional[float] = None, reduced: bool = False,
                    expected_mean=None, expected_variance=None, expected_energy: Optional[float] = None,
                    n_replicas: int = 4, n_steps: int = 10_000, n_frames: int = 500, burn_in_steps: int = 1_000,
                    x_start=None, seed: Optional[int] = 0, n_blocks: int = 8, n_sigma: float = 5.0,
                    bias_tolerance: float = 0.0, min_block_tau: float = 3.0) -> CheckResult:
    """Check that the engine samples known Boltzmann moments (mean, variance, optionally mean energy).

    The engine is run (:func:`sample_engine`) and, per coordinate, the time-averaged mean and
    variance are compared with their expectation in units of their standard error (the larger
    of the block-average and the autocorrelation-time estimates); the check passes when every
    ``|z| <= n_sigma`` and the blocks are at least ``min_block_tau`` integrated autocorrelation
    times long.

    Parameters
    ----------
    engine : Engine
    centre : array-like, broadcastable to ``event_shape``, optional
        Restraint centre ``c``; with it, and the engine's own potential flat, every coordinate
        is Gaussian with mean ``c`` and variance ``kT / k`` (the defaults of the expectations).
        None runs unrestrained and needs ``expected_mean`` and ``expected_variance``.
    stiffness : float, optional
        ``k`` (energy/length^2, or 1/length^2 if ``reduced``); required with ``centre``.
    reduced : bool
        Passed to ``engine.set_restraint``.
    expected_mean, expected_variance : array-like, broadcastable to ``event_shape``, optional
        Boltzmann mean and variance of every coordinate (length, length^2).
    expected_energy : float, optional
        Boltzmann mean of the reported (unrestrained) energy, e.g. ``dim kT / 2`` for a harmonic
        potential; None skips the energy test.
    n_replicas : int
        Independent replicas (OpenMM engines run them one after another).
    n_steps, n_frames, burn_in_steps : int
        Steps per replica, frames recorded in them (``n_frames`` divides ``n_steps``), steps
        discarded first. Frames should be about one correlation time apart.
    x_start : array-like, shape ``(n_replicas, *event_shape)``, optional
        Starting configurations; default the expected mean.
    seed : int or None
        Seed of the engine stream and velocities (see :func:`sample_engine`).
    n_blocks : int
        Blocks per replica for the standard errors.
    n_sigma : float
        Largest ``|z|`` that passes (5: a false alarm is rare even over many coordinates).
    bias_tolerance : float
        Known relative systematic error allowed on top (of the standard deviation for means,
        of the variance for variances, of ``kT`` for the energy), e.g. ``k dt / 2`` for
        Euler-Maruyama; 0 by default.
    min_block_tau : float
        Least block length in integrated autocorrelation times (of every tested series; shorter
        blocks underestimate the error, so the check fails and asks for longer runs).

    Returns
    -------
    CheckResult
        ``statistic``: the largest ``|z|``; ``tolerance``: ``n_sigma``; ``details``: ``mean``,
        ``mean_se``, ``variance``, ``variance_se``, the expectations, ``z_mean``, ``z_variance``
        (per coordinate, flattened), ``tau`` (the longest autocorrelation time, frames) and
        ``n_effective`` (frames / autocorrelation time of the positions). The engine is left with
        its last batch and, if the check set one, the restraint cleared.

    Raises
    ------
    ValueError
        If the expectations cannot be determined (no restraint and no ``expected_mean`` /
        ``expected_variance``) or the arrays have the wrong shape.

    See Also
    --------
    assert_boltzmann : the same check raising ``AssertionError`` on failure.

    Examples
    --------
    A restraint of reduced stiffness 4 holds each coordinate at variance ``1/4``:

    >>> import torch
    >>> from tps.engines import TorchOverdampedEngine
    >>> from tps.potentials import Harmonic
    >>> engine = TorchOverdampedEngine(Harmonic((2,), k=1e-9), kT=1.0, dt=2.5e-3)
    >>> result = check_boltzmann(engine, centre=[1.0, -1.0], stiffness=4.0, reduced=True, n_replicas=8,
    ...                          n_steps=10000, n_frames=50, burn_in_steps=500, n_blocks=5)
    >>> result.passed, result.details["expected_variance"].tolist()
    (True, [0.25, 0.25])
    >>> print(result.message)                                   # doctest: +ELLIPSIS
    boltzmann: passed; largest |z| = ... <= 5 (...; 8 replicas x 50 frames, tau = ... frames, ...)
    """
    event_shape = tuple(engine.event_shape)
    kT = float(engine.kT)
    if centre is not None:
        if stiffness is None:
            raise ValueError("stiffness: required with a restraint centre")
        k = stiffness_energy(engine, stiffness, reduced)
        centre = event_tensor(centre, event_shape, "centre")
        mean0 = centre if expected_mean is None else event_tensor(expected_mean, event_shape, "expected_mean")
        var0 = (torch.full(event_shape, kT / k, dtype=torch.float64) if expected_variance is None
                else event_tensor(expected_variance, event_shape, "expected_variance"))
    else:
        if expected_mean is None or expected_variance is None:
            raise ValueError("expected_mean, expected_variance: required without a restraint centre "
                             "(the check cannot know the engine's own Boltzmann distribution)")
        mean0 = event_tensor(expected_mean, event_shape, "expected_mean")
        var0 = event_tensor(expected_variance, event_shape, "expected_variance")
    n_replicas = int(n_replicas)
    if x_start is None:
        x_start = mean0.expand(n_replicas, *event_shape)
    frames, energies = sample_engine(engine, x_start, n_steps=n_steps, n_frames=n_frames, burn_in_steps=burn_in_steps,
                                     centre=centre, stiffness=0.0 if stiffness is None else stiffness, reduced=reduced,
                                     seed=seed)
    if centre is not None:
        engine.set_restraint(None, 0.0)

    x = frames.reshape(frames.shape[0], frames.shape[1], -1).numpy()
    mu, sd2 = mean0.reshape(-1).numpy(), var0.reshape(-1).numpy()
    mean, mean_se, tau_mean = _mean_and_error(x, n_blocks)
    variance, variance_se, tau_variance = _mean_and_error((x - x.mean(axis=(0, 1))) ** 2, n_blocks)
    z = {"mean": _z(mean, mean_se, mu, bias_tolerance * np.sqrt(sd2)),
         "variance": _z(variance, variance_se, sd2, bias_tolerance * sd2)}
    details = {"mean": mean, "mean_se": mean_se, "expected_mean": mu, "variance": variance,
               "variance_se": variance_se, "expected_variance": sd2}
    taus = [tau_mean, tau_variance]
    if expected_energy is not None:
        energy, energy_se, tau_energy = _mean_and_error(energies.numpy()[:, :, None], n_blocks)
        z["energy"] = _z(energy, energy_se, float(expected_energy), bias_tolerance * kT)
        details.update(energy=float(energy[0]), energy_se=float(energy_se[0]), expected_energy=float(expected_energy))
        taus.append(tau_energy)
    tau = float(max(np.max(t) for t in taus))
    block = x.shape[1] // int(n_blocks)
    n_effective = x.shape[0] * x.shape[1] / float(np.max(tau_mean))
    details.update({f"z_{kind}": value for kind, value in z.items()})
    details.update(tau=tau, n_effective=n_effective, block_frames=block, n_frames_total=x.shape[0] * x.shape[1])

    worst_kind = max(z, key=lambda kind: float(np.max(z[kind])))
    j = int(np.argmax(z[worst_kind]))
    statistic = float(np.max(z[worst_kind]))
    correlated = not (block >= min_block_tau * tau)
    passed = verdict(statistic, n_sigma) and not correlated
    sampling = (f"{x.shape[0]} replicas x {x.shape[1]} frames, tau = {tau:.3g} frames, "
                f"{n_effective:.0f} effective samples, blocks of {block} frames")
    if worst_kind == "energy":
        worst = (f"mean energy {details['energy']:.5g} +- {details['energy_se']:.2g} vs expected "
                 f"{float(expected_energy):.5g}")
    else:
        est, se, exp = details[worst_kind][j], details[f"{worst_kind}_se"][j], details[f"expected_{worst_kind}"][j]
        worst = f"{worst_kind} of coordinate {j}: {est:.5g} +- {se:.2g} vs expected {exp:.5g}"
    if correlated:
        message = (f"boltzmann: FAILED: blocks of {block} frames are shorter than {min_block_tau:g} autocorrelation "
                   f"times (tau = {tau:.3g} frames), so the standard errors cannot be trusted; run longer, record "
                   f"frames further apart or use fewer blocks ({worst}; {sampling})")
    elif passed:
        message = f"boltzmann: passed; largest |z| = {statistic:.2f} <= {n_sigma:g} ({worst}; {sampling})"
    else:
        message = (f"boltzmann: FAILED: {worst} (|z| = {statistic:.2f} > {n_sigma:g} standard errors"
                   f"{', beyond a bias tolerance of %g' % bias_tolerance if bias_tolerance else ''}; {sampling})")
    return CheckResult("boltzmann", statistic, float(n_sigma), passed, message, details)


def assert_boltzmann(engine, **kwargs) -> CheckResult:
    """:func:`check_boltzmann`, raising ``AssertionError`` with its message on failure.

    Parameters
    ----------
    engine, **kwargs
        As for :func:`check_boltzmann`.

    Returns
    -------
    CheckResult
        The passing result.

    Raises
    ------
    AssertionError
        If the check fails.

    Examples
    --------
    A harmonic potential ``k = 2`` at ``kT = 1``, unrestrained: variance ``1/2``, mean energy ``kT/2``;
    Euler-Maruyama inflates the variance by ``1 / (1 - k dt / 2) - 1 = 1 %`` here, hence the bias tolerance:

    >>> from tps.engines import TorchOverdampedEngine
    >>> from tps.potentials import Harmonic
    >>> engine = TorchOverdampedEngine(Harmonic((1,), k=2.0), kT=1.0, dt=0.01)
    >>> assert_boltzmann(engine, expected_mean=0.0, expected_variance=0.5, expected_energy=0.5, n_replicas=8,
    ...                  n_steps=5000, n_frames=100, burn_in_steps=200, bias_tolerance=0.01).passed
    True
    """
    return check_boltzmann(engine, **kwargs).raise_if_failed()
