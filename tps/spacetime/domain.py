"""The logSNR domain of a denoiser, how solvers keep curves inside it, and the diagnostics of a solve.

A learned denoiser means something only on the logSNR interval it was trained on. Outside,
its Jacobian need not be positive semi-definite, the discrete curve energy (a sum of Jeffreys
divergences, non-negative in exact arithmetic) can become negative, and an optimiser will
exploit that without bound. The geodesic solver therefore

* takes the domain ``(lo, hi)`` from the denoiser (:attr:`tps.diffusion.DiffusionModel.logsnr_range`,
  also set on the network as ``logsnr_range``), from an explicit ``logsnr_range`` argument, or
  falls back to a conservative interval around the endpoints' logSNR (:func:`resolve_logsnr_range`);
* parametrises every curve point's logSNR as ``soft_clamp(u)`` of an unconstrained ``u``
  (:func:`soft_clamp`): the identity well inside the domain, saturating smoothly (C2, tanh)
  towards the bounds, so no point can leave and L-BFGS sees a smooth objective;
* reports what it did in a :class:`GeodesicDiagnostics` and warns (:class:`GeodesicWarning`)
  or raises (:class:`DegenerateGeodesicError`) when the result looks degenerate.
"""

from __future__ import annotations

import math
import warnings
import weakref
from dataclasses import dataclass
from typing import Optional

import torch

from tps.diffusion.checkpoint import check_logsnr_range
from tps.diffusion.schedule import LOGSNR_MAX, LOGSNR_MIN

#: Half-width of the default domain around the endpoints' logSNR for a denoiser without a range.
DEFAULT_HALF_WIDTH = 4.0
#: A result is flagged when negative segment products carry more than this share of sum |products|
#: (well-trained networks show a few per cent at most along their geodesics; a curve that exploits a
#: non-PSD Jacobian shows tens of per cent).
NEGATIVE_FRACTION_TOL = 0.05
#: ... or when more than this fraction of its points sit at a bound of the domain.
BOUND_FRACTION_TOL = 0.05


class LogSNRRangeWarning(UserWarning):
    """A denoiser without a known logSNR domain was given a conservative default one."""


class GeodesicWarning(UserWarning):
    """A solved geodesic looks degenerate (negative segment products, or stuck at a domain bound)."""


class DegenerateGeodesicError(RuntimeError):
    """Raised instead of :class:`GeodesicWarning` when the solver is called with ``strict=True``."""


_warned = weakref.WeakSet()
_warned_ids = set()


def _warn_once(denoiser, message):
    try:
        if denoiser in _warned:
            return
        _warned.add(denoiser)
    except TypeError:  # not weak-referenceable
        if id(denoiser) in _warned_ids:
            return
        _warned_ids.add(id(denoiser))
    warnings.warn(message, LogSNRRangeWarning, stacklevel=4)


def default_logsnr_range(lam_a: float, lam_b: float) -> tuple:
    """Conservative domain ``(min(lam_a, lam_b) - 4, max(lam_a, lam_b) + 4)``, clipped to the schedule range.

    Examples
    --------
    >>> default_logsnr_range(4.0, 4.0), default_logsnr_range(10.0, 6.0)
    ((0.0, 8.0), (2.0, 12.0))
    """
    return (max(LOGSNR_MIN, min(lam_a, lam_b) - DEFAULT_HALF_WIDTH),
            min(LOGSNR_MAX, max(lam_a, lam_b) + DEFAULT_HALF_WIDTH))


def resolve_logsnr_range(denoiser, logsnr_range, endpoint_logsnr=None, *, warn: bool = True):
    """The logSNR domain ``(lo, hi)`` a solver must keep a curve in, and where it came from.

    Parameters
    ----------
    denoiser : callable
        Its ``logsnr_range`` attribute, if any, is used when ``logsnr_range`` is None.
    logsnr_range : (float, float) or None
        An explicit domain (wins over the denoiser's).
    endpoint_logsnr : (float, float), optional
        The endpoints' logSNR: they must lie in the domain, and without any range the default is
        :func:`default_logsnr_range` of them (with a one-time :class:`LogSNRRangeWarning`).
    warn : bool
        Issue that warning.

    Returns
    -------
    lo, hi : float
    source : str
        ``"argument"``, ``"model"`` or ``"default"``; ``"schedule"`` when there was no range
        and no endpoints (then the schedule range is returned).

    Raises
    ------
    ValueError
        If the range is not two finite numbers, empty or reversed, outside the schedule range,
        or excludes an endpoint's logSNR; the message names ``logsnr_range`` and the fix.

    Examples
    --------
    >>> resolve_logsnr_range(None, (0.0, 8.0), (4.0, 4.0))
    (0.0, 8.0, 'argument')
    >>> resolve_logsnr_range(None, (5.0, 8.0), (4.0, 4.0))
    Traceback (most recent call last):
        ...
    ValueError: logsnr_range: (5.0, 8.0) excludes the endpoints' logSNR 4; widen it to contain it or anchor the endpoints inside it (argument logsnr)
    """
    if logsnr_range is not None:
        lo, hi = check_logsnr_range(logsnr_range)
        source = "argument"
    elif getattr(denoiser, "logsnr_range", None) is not None:
        lo, hi = check_logsnr_range(denoiser.logsnr_range, "denoiser.logsnr_range")
        source = "model"
    elif endpoint_logsnr is None:
        return LOGSNR_MIN, LOGSNR_MAX, "schedule"
    else:
        lo, hi = default_logsnr_range(*endpoint_logsnr)
        if warn:
            _warn_once(denoiser, f"denoiser: no logSNR range known (no logsnr_range attribute); keeping curves in the "
                                 f"conservative default [{lo:g}, {hi:g}] (endpoints' logSNR +- {DEFAULT_HALF_WIDTH:g}). "
                                 f"Pass logsnr_range=(lo, hi) with the range the denoiser was trained on to widen it "
                                 f"(a tps DiffusionModel carries it as model.logsnr_range)")
        return lo, hi, "default"
    if endpoint_logsnr is not None:
        bad = [v for v in endpoint_logsnr if not lo <= v <= hi]
        if bad and source == "argument":
            raise ValueError(f"logsnr_range: {(lo, hi)} excludes the endpoints' logSNR {bad[0]:g}; widen it to "
                             f"contain it or anchor the endpoints inside it (argument logsnr)")
        if bad:
            raise ValueError(f"logsnr: the endpoints' logSNR {bad[0]:g} is outside the denoiser's logSNR range "
                             f"{(lo, hi)} (denoiser.logsnr_range, the range it was trained on); anchor the endpoints "
                             f"inside it, or pass logsnr_range=(lo, hi) if the denoiser is valid there")
    return lo, hi, source


def margin(lo: float, hi: float) -> float:
    """Width of the saturating band of :func:`soft_clamp` at each bound: ``min(1, (hi - lo) / 8)``."""
    return min(1.0, (hi - lo) / 8.0)


def soft_clamp(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Map unconstrained ``u`` into ``(lo, hi)``: identity on ``[lo + m, hi - m]``, tanh saturation beyond.

    ``m = margin(lo, hi)``; above ``b = hi - m`` the value is ``b + m tanh((u - b) / m)`` (and
    symmetrically below ``lo + m``), which matches the identity in value, slope and curvature at
    the joins (C2) and never crosses the bounds (it reaches them only where tanh rounds to 1). Curves that stay inside the identity band are
    unaffected, bit for bit.

    Parameters
    ----------
    u : Tensor, any shape
    lo, hi : float

    Returns
    -------
    Tensor, shape of ``u``, values in ``(lo, hi)``.

    Examples
    --------
    >>> import torch
    >>> soft_clamp(torch.tensor([-50.0, 0.5, 4.0, 7.5, 50.0]), 0.0, 8.0)
    tensor([0.0000, 0.5379, 4.0000, 7.4621, 8.0000])
    >>> float(soft_clamp(torch.tensor(-1e6, dtype=torch.float64), 0.0, 8.0)) >= 0.0
    True
    """
    m = margin(lo, hi)
    a, b = lo + m, hi - m
    upper = b + m * torch.tanh((u - b) / m)
    lower = a + m * torch.tanh((u - a) / m)
    return torch.where(u > b, upper, torch.where(u < a, lower, u))


def soft_clamp_inverse(lam: float, lo: float, hi: float) -> float:
    """The ``u`` with ``soft_clamp(u) = lam`` (a value at a bound maps to a large finite ``u``).

    Examples
    --------
    >>> u = soft_clamp_inverse(7.5, 0.0, 8.0)
    >>> import torch; round(float(soft_clamp(torch.tensor(u, dtype=torch.float64), 0.0, 8.0)), 12)
    7.5
    """
    m = margin(lo, hi)
    a, b = lo + m, hi - m
    if a <= lam <= b:
        return float(lam)
    edge = b if lam > b else a
    r = max(-1 + 1e-12, min(1 - 1e-12, (lam - edge) / m))
    return edge + m * math.atanh(r)


@dataclass(frozen=True)
class GeodesicDiagnostics:
    """What a geodesic solve did and whether its result can be trusted.

    Attributes
    ----------
    iterations : int
        Optimiser iterations of the final stage (L-BFGS iterations or Adam steps).
    evaluations : int
        Objective+gradient evaluations, all stages (each over all curves of the batch).
    converged : bool
        The final stage stopped on its tolerance (L-BFGS) or its objective changed by less than
        0.1 % over the last tenth of the steps (Adam).
    energy_history : tuple of float
        Honest (unclamped) curve energy, summed over the batch, at every evaluation.
    negative_fraction : float
        Worst curve of the batch: sum of the negative segment products over sum of their
        absolute values. The exact metric makes every product non-negative; a sizeable
        fraction means the denoiser's Jacobian is not positive semi-definite where the curve
        goes (outside its training domain, or a Hutchinson estimate with too few probes).
    bound_fraction : float
        Worst curve: fraction of its points whose logSNR lies within ``margin / 4`` of a bound
        of the domain (the curve presses against the domain).
    logsnr_min, logsnr_max : float
        Extremes of the returned curves' logSNR.
    logsnr_range : (float, float)
        The domain the curves were kept in.
    range_source : str
        ``"argument"``, ``"model"`` (the denoiser's ``logsnr_range``) or ``"default"``.
    objective : str
        What was minimised: ``"abs"`` (absolute segment products), ``"segment"`` (negative
        segment products clamped at zero), ``"plain"`` or ``"coordinate"`` (per-coordinate
        clamp), plus constraint penalties.
    starts : tuple of float
        logSNR dips of the multi-start (empty: one start).
    problems : tuple of str
        Why the result is flagged; empty when it is not.

    Examples
    --------
    >>> d = GeodesicDiagnostics(iterations=3, evaluations=5, converged=True, energy_history=(2.0, 1.0),
    ...                         negative_fraction=0.0, bound_fraction=0.0, logsnr_min=1.0, logsnr_max=4.0,
    ...                         logsnr_range=(-12.0, 12.0), range_source="model", objective="abs")
    >>> d.ok
    True
    """

    iterations: int
    evaluations: int
    converged: bool
    energy_history: tuple
    negative_fraction: float
    bound_fraction: float
    logsnr_min: float
    logsnr_max: float
    logsnr_range: tuple
    range_source: str
    objective: str
    starts: tuple = ()
    problems: tuple = ()

    @property
    def ok(self) -> bool:
        """True when nothing was flagged."""
        return not self.problems


def curve_flags(prods: torch.Tensor, lam: torch.Tensor, lo: float, hi: float):
    """Negative-segment and at-bound fractions of P curves (worst curve) and the problems they indicate.

    Parameters
    ----------
    prods : Tensor, shape ``(P, N - 1)``
        Honest segment products.
    lam : Tensor, shape ``(P, N)``
    lo, hi : float
        The domain.

    Returns
    -------
    negative_fraction, bound_fraction : float
    problems : tuple of str

    Examples
    --------
    >>> import torch
    >>> lam = torch.tensor([[4.0, 0.01, 0.01, 4.0]])
    >>> neg, at_bound, problems = curve_flags(torch.tensor([[1.0, -1.0, 2.0]]), lam, 0.0, 8.0)
    >>> neg, at_bound, len(problems)
    (0.25, 0.5, 2)
    """
    prods = prods.detach().double()
    total = prods.abs().sum(1).clamp_min(1e-300)
    neg = float(((-prods).clamp_min(0).sum(1) / total).max())
    tol = margin(lo, hi) / 4
    at = ((lam.detach() <= lo + tol) | (lam.detach() >= hi - tol)).double().mean(1)
    at_bound = float(at.max())
    problems = []
    if neg > NEGATIVE_FRACTION_TOL:
        problems.append(f"negative segment products carry {neg:.1%} of the curve's |energy| (the exact metric makes "
                        f"them non-negative): the denoiser's Jacobian is not positive semi-definite along the curve, "
                        f"most likely because the denoiser is used outside the data or logSNR range it was trained on "
                        f"(or, with divergence='hutchinson', too few probes). Fix: pass logsnr_range=(lo, hi) with the "
                        f"trained range, keep the default clamp=None (objective |segment products|), or use more probes")
    if at_bound > BOUND_FRACTION_TOL:
        problems.append(f"{at_bound:.0%} of the curve's points sit at a bound of the logSNR domain [{lo:g}, {hi:g}]: "
                        f"the geodesic wants to leave the range where the denoiser is valid. Fix: train the model "
                        f"over a wider logSNR range (or pass a wider logsnr_range if it is valid there), or add a "
                        f"LowVariance constraint to keep the curve at low noise")
    return neg, at_bound, tuple(problems)


def report(diagnostics: GeodesicDiagnostics, *, strict: bool = False, stacklevel: int = 3) -> None:
    """Warn (:class:`GeodesicWarning`) or, with ``strict``, raise (:class:`DegenerateGeodesicError`) on problems.

    Examples
    --------
    >>> d = GeodesicDiagnostics(0, 1, False, (1.0,), 0.5, 0.0, 4.0, 4.0, (0.0, 8.0), "argument", "plain",
    ...                         problems=("negative segment products ...",))
    >>> report(d, strict=True)
    Traceback (most recent call last):
        ...
    tps.spacetime.domain.DegenerateGeodesicError: geodesic: negative segment products ...
    """
    if diagnostics.ok:
        return
    message = "geodesic: " + "; ".join(diagnostics.problems)
    if strict:
        raise DegenerateGeodesicError(message)
    warnings.warn(message + " (strict=True turns this into an error; see result.diagnostics)", GeodesicWarning,
                  stacklevel=stacklevel)


def check_curve_range(denoiser, logsnr: torch.Tensor, logsnr_range: Optional[tuple]) -> None:
    """Raise if a given curve's logSNR leaves the denoiser's known domain (no check when none is known).

    Examples
    --------
    >>> import torch
    >>> check_curve_range(None, torch.tensor([1.0, -3.0]), (0.0, 8.0))
    Traceback (most recent call last):
        ...
    ValueError: logsnr: -3 lies outside the denoiser's domain [0, 8] (from the argument logsnr_range); keep logSNR inside it (the geodesic solver does) or pass a logsnr_range the denoiser is valid on
    """
    lo, hi, source = resolve_logsnr_range(denoiser, logsnr_range, None, warn=False)
    if source == "schedule":
        return
    lmin, lmax = float(logsnr.detach().min()), float(logsnr.detach().max())
    if lmin < lo or lmax > hi:
        where = "the argument logsnr_range" if source == "argument" else "denoiser.logsnr_range"
        worst = lmin if lmin < lo else lmax
        raise ValueError(f"logsnr: {worst:g} lies outside the denoiser's domain [{lo:g}, {hi:g}] (from {where}); "
                         f"keep logSNR inside it (the geodesic solver does) or pass a logsnr_range the denoiser is "
                         f"valid on")
