"""Restraint-energy check for dynamics engines (:class:`tps.engines.base.Engine`).

The restraint of the engine protocol is ``0.5 k |x - c|^2`` summed over all coordinates, ``k``
in energy/length^2 (``reduced=True``: 1/length^2, times ``kT``). The check uses the engine only
through its protocol (``set_restraint``, ``set_positions``, ``restraint_energy``, ``energy``,
``kT``, ``event_shape``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tps.testing._inputs import batch_tensor, event_tensor, stiffness_energy
from tps.testing._result import CheckResult, verdict

__all__ = ["check_restraint_energy", "assert_restraint_energy"]


def _restraint_energy(engine) -> float:
    read = getattr(engine, "restraint_energy", None)
    if not callable(read):
        raise TypeError(f"{type(engine).__name__} has no restraint_energy(): the restraint check reads the restraint "
                        f"energy of the current batch through engine.restraint_energy()")
    return float(torch.as_tensor(read()).reshape(-1)[0])


# ----------------------------------------------------------------------------- restraint energy
def check_restraint_energy(engine, *, stiffness: float = 10.0, centre=None, x=None, n_samples: int = 8,
                           scale: float = 0.1, reduced: bool = False, seed: int = 0, rtol: float = 1e-5,
                           atol: float = 1e-8) -> CheckResult:
    """Check that the engine's restraint energy is exactly ``0.5 k |x - c|^2`` and stays out of its energies.

    At each configuration ``x_i`` the engine is moved there (``set_positions``) with the
    restraint ``(c, k)`` set, and ``engine.restraint_energy()`` must equal
    ``0.5 k |x_i - c|^2``; with the restraint cleared it must be 0. The protocol's convention is
    checked too: the energies the engine reports (``engine.energy(x_i)``) never include the
    restraint, so they do not change when it is set.

    Parameters
    ----------
    engine : Engine
        With ``restraint_energy()`` (``(b,)``, energy of the current batch's restraint). For
        OpenMM, use a system without constraints (or configurations that satisfy them):
        ``set_positions`` applies constraints, which moves ``x``.
    stiffness : float
        ``k`` in energy/length^2 (``reduced=True``: in 1/length^2, multiplied by ``engine.kT``).
    centre : array-like, shape ``event_shape``, optional
        ``c``; default: the first configuration (or the origin) displaced by ``scale`` normal noise.
    x : array-like, shape ``(b, *event_shape)``, optional
        Configurations (e.g. near a structure of the system, where the energy is finite);
        default ``n_samples`` configurations ``c + scale * N(0, I)``.
    n_samples : int
        Number of random configurations when ``x`` is not given.
    scale : float
        Spread (length) of the random displacements.
    reduced : bool
        Passed to ``engine.set_restraint``.
    seed : int
        Seed of the random configurations and centre.
    rtol, atol : float
        Each restraint energy must be within ``max(atol, rtol |0.5 k |x_i - c|^2|)`` of the
        formula; each reported energy within ``max(atol, rtol |E_i|)`` of its value without the
        restraint.

    Returns
    -------
    CheckResult
        ``statistic``: the largest relative error; ``tolerance``: ``rtol``; ``details``:
        ``"restraint"`` and ``"formula"`` per configuration and the largest error of each kind
        (``"restraint"``, ``"cleared"``, ``"reported"``). It also fails when the restraint energies
        are too small (below ``100 atol``) for a wrong restraint to show. The engine is left
        unrestrained at the last configuration.

    Raises
    ------
    TypeError
        If the engine has no ``restraint_energy()``.
    ValueError
        For a non-positive stiffness or arrays of the wrong shape.

    See Also
    --------
    assert_restraint_energy : the same check raising ``AssertionError`` on failure.

    Examples
    --------
    >>> import torch
    >>> from tps.engines import TorchOverdampedEngine
    >>> from tps.potentials import MullerBrown
    >>> engine = TorchOverdampedEngine(MullerBrown(), kT=12.5, dt=1e-4)
    >>> result = check_restraint_energy(engine, stiffness=1000.0, centre=[-0.5, 1.5])
    >>> result.passed, result.statistic < 1e-12
    (True, True)
    """
    event_shape = tuple(engine.event_shape)
    generator = torch.Generator().manual_seed(int(seed))
    k = stiffness_energy(engine, stiffness, reduced)
    if x is not None:
        x = batch_tensor(x, event_shape, "x")
    if centre is None:
        base = x[0] if x is not None else torch.zeros(event_shape, dtype=torch.float64)
        centre = base + scale * torch.randn(event_shape, generator=generator, dtype=torch.float64)
    centre = event_tensor(centre, event_shape, "centre")
    if x is None:
        n_samples = int(n_samples)
        if n_samples < 1:
            raise ValueError(f"n_samples: expected a positive integer, got {n_samples!r}")
        x = centre + scale * torch.randn((n_samples, *event_shape), generator=generator, dtype=torch.float64)

    restraint, cleared, reported_on, reported_off = [], [], [], []
    for i in range(x.shape[0]):
        xi = x[i:i + 1]
        engine.set_restraint(centre, stiffness, reduced=reduced)
        engine.set_positions(xi)
        restraint.append(_restraint_energy(engine))
        reported_on.append(float(engine.energy(xi).reshape(-1)[0]))
        engine.set_restraint(None, 0.0)
        engine.set_positions(xi)
        cleared.append(_restraint_energy(engine))
        reported_off.append(float(engine.energy(xi).reshape(-1)[0]))
    restraint, cleared, reported_on, reported_off = map(np.asarray, (restraint, cleared, reported_on, reported_off))
    formula = 0.5 * k * ((x - centre) ** 2).flatten(1).sum(1).numpy()
    floor = np.full_like(formula, atol / rtol)
    errors = {
        "restraint": np.abs(restraint - formula) / np.maximum(np.abs(formula), floor),
        "cleared": np.abs(cleared) / np.maximum(np.abs(formula), floor),
        "reported": np.abs(reported_on - reported_off) / np.maximum(np.abs(reported_off), floor),
    }
    worst = {kind: float(np.max(e)) if np.all(np.isfinite(e)) else math.nan for kind, e in errors.items()}
    statistic = max(worst.values(), key=lambda v: math.inf if math.isnan(v) else v)
    sensitive = float(np.median(np.abs(formula))) > 100 * atol  # a wrong restraint must show above atol
    passed = verdict(statistic, rtol) and sensitive
    kind = max(worst, key=lambda key: math.inf if math.isnan(worst[key]) else worst[key])
    i = int(np.nanargmax(errors[kind])) if np.any(np.isfinite(errors[kind])) else 0
    numbers = (f"at configuration {i}: restraint energy {restraint[i]:.10g} (cleared: {cleared[i]:.3g}), "
               f"0.5 k |x - c|^2 = {formula[i]:.10g} (k = {k:g}); reported energy {reported_on[i]:.10g} with, "
               f"{reported_off[i]:.10g} without the restraint")
    if not sensitive:
        message = (f"restraint_energy: FAILED: the restraint energies (median {np.median(np.abs(formula)):.1e}) are "
                   f"too small next to atol={atol:g} to show a wrong restraint; increase stiffness or scale ({numbers})")
    elif passed:
        message = f"restraint_energy: passed; largest relative error {statistic:.2e} <= {rtol:.2e} ({numbers})"
    else:
        what = {"restraint": "the restraint energy differs from 0.5 k |x - c|^2",
                "cleared": "the restraint energy is not 0 after set_restraint(None)",
                "reported": "the reported (unrestrained) energy changes when the restraint is set"}[kind]
        message = f"restraint_energy: FAILED: {what}: relative error {statistic:.2e} > {rtol:.2e} ({numbers})"
    details = {"errors": worst, "restraint": restraint, "formula": formula, "cleared": cleared,
               "energy_with": reported_on, "energy_without": reported_off, "stiffness": k, "centre": centre}
    return CheckResult("restraint_energy", statistic, rtol, passed, message, details)


def assert_restraint_energy(engine, **kwargs) -> CheckResult:
    """:func:`check_restraint_energy`, raising ``AssertionError`` with its message on failure.

    Parameters
    ----------
    engine, **kwargs
        As for :func:`check_restraint_energy`.

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
    >>> from tps.engines import TorchOverdampedEngine
    >>> from tps.potentials import Harmonic
    >>> engine = TorchOverdampedEngine(Harmonic((3,), k=1.0), kT=2.0, dt=1e-3)
    >>> assert_restraint_energy(engine, stiffness=50.0, reduced=True).passed
    True
    """
    return check_restraint_energy(engine, **kwargs).raise_if_failed()
