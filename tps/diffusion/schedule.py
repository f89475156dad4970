"""The variance-preserving diffusion schedule, parametrised directly by logSNR ``lam``.

``alpha(lam)^2 = sigmoid(lam)``, ``sigma(lam)^2 = sigmoid(-lam)``, so that
``alpha^2 / sigma^2 = exp(lam)`` and ``x_t = alpha * x0 + sigma * eps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from tps._validation import as_tensor, check_finite

#: The logSNR range the package's models are trained on and the geometry accepts.
LOGSNR_MIN = -12.0
LOGSNR_MAX = 12.0


def alpha_sigma(logsnr: torch.Tensor):
    """Signal and noise scales of the variance-preserving schedule at logSNR ``lam``.

    Parameters
    ----------
    logsnr : Tensor, any shape
        logSNR values ``lam = log(alpha^2 / sigma^2)`` (dimensionless).

    Returns
    -------
    alpha, sigma : Tensor, shape of ``logsnr``
        ``sqrt(sigmoid(lam))`` and ``sqrt(sigmoid(-lam))``; ``alpha^2 + sigma^2 = 1``.

    Examples
    --------
    >>> import torch
    >>> alpha, sigma = alpha_sigma(torch.tensor([0.0, 2.0], dtype=torch.float64))
    >>> alpha ** 2 + sigma ** 2, (alpha / sigma) ** 2    # 1 and exp(lam)
    (tensor([1., 1.], dtype=torch.float64), tensor([1.0000, 7.3891], dtype=torch.float64))
    """
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


def loss_weight(logsnr: torch.Tensor) -> torch.Tensor:
    """Training weight ``w(lam) = sqrt(sigmoid(lam + 2))`` of the x0-prediction loss.

    Parameters
    ----------
    logsnr : Tensor, any shape

    Returns
    -------
    Tensor, shape of ``logsnr``, in ``(0, 1)``; tends to 1 at high logSNR and to 0 at low.

    Examples
    --------
    >>> import torch
    >>> loss_weight(torch.tensor([-2.0, 12.0]))
    tensor([0.7071, 1.0000])
    """
    return torch.sigmoid(logsnr + 2.0).sqrt()


def check_logsnr(logsnr, name: str = "logsnr", *, low: float = LOGSNR_MIN, high: float = LOGSNR_MAX) -> torch.Tensor:
    """Validate logSNR values: finite and inside the schedule range ``[low, high]``.

    Parameters
    ----------
    logsnr : Tensor or array-like, any shape
    name : str, optional
        Argument name used in error messages.
    low, high : float, optional
        Accepted range (default ``[LOGSNR_MIN, LOGSNR_MAX] = [-12, 12]``).

    Returns
    -------
    Tensor
        ``logsnr`` as a floating tensor.

    Raises
    ------
    TypeError
        If ``logsnr`` cannot be converted to a floating tensor.
    ValueError
        If a value is NaN/infinite or outside ``[low, high]``.

    Examples
    --------
    >>> check_logsnr([0.0, 6.0])
    tensor([0., 6.])
    >>> check_logsnr([15.0], "curve_logsnr")
    Traceback (most recent call last):
        ...
    ValueError: curve_logsnr: expected logSNR values inside the schedule range [-12.0, 12.0], got values in [15, 15]
    """
    t = as_tensor(logsnr, name)
    check_finite(t, name)
    if t.numel() and (t.min() < low - 1e-9 or t.max() > high + 1e-9):
        raise ValueError(
            f"{name}: expected logSNR values inside the schedule range [{low}, {high}], "
            f"got values in [{t.min().item():.3g}, {t.max().item():.3g}]"
        )
    return t


def add_noise(x0: torch.Tensor, logsnr: torch.Tensor, noise: torch.Tensor | None = None, *, generator=None):
    """Sample ``x_t = alpha x0 + sigma eps`` at logSNR ``lam``.

    Parameters
    ----------
    x0 : Tensor, shape ``(B, *event)``
        Clean data in model coordinates.
    logsnr : Tensor, shape ``(B,)``
    noise : Tensor, shape ``(B, *event)``, optional
        ``eps``; drawn from ``N(0, I)`` when None.
    generator : torch.Generator, optional
        Used only when ``noise`` is None.

    Returns
    -------
    x_t : Tensor, shape ``(B, *event)``
    eps : Tensor, shape ``(B, *event)``

    Examples
    --------
    >>> import torch
    >>> x_t, eps = add_noise(torch.ones(2, 3), torch.tensor([0.0, 12.0]), torch.zeros(2, 3))
    >>> x_t                               # alpha(0) = sqrt(1/2); alpha(12) ~ 1
    tensor([[0.7071, 0.7071, 0.7071],
            [1.0000, 1.0000, 1.0000]])
    """
    if noise is None:
        noise = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device, generator=generator)
    alpha, sigma = alpha_sigma(logsnr)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    return alpha.view(shape) * x0 + sigma.view(shape) * noise, noise


@dataclass(frozen=True)
class RestraintSchedule:
    """Harmonic restraints of the denoising distributions along a curve (see :func:`restraint_schedule`).

    Unpacks as ``centres, stiffness = schedule``.

    Attributes
    ----------
    centres : Tensor, shape ``(N, *event)``
        Restraint centres in physical coordinates.
    stiffness : Tensor, shape ``(N,)``
        ``kT exp(lam) / scale^2`` in energy/length^2, or reduced ``exp(lam) / scale^2``
        (1/length^2, units of 1/kT) when ``kT`` is None.
    logsnr : Tensor, shape ``(N,)``
    kT : float or None
        Thermal energy the stiffness is expressed with; None: reduced.
    """

    centres: torch.Tensor
    stiffness: torch.Tensor
    logsnr: torch.Tensor
    kT: Optional[float] = None

    @property
    def reduced(self) -> bool:
        """True when ``stiffness`` is in units of 1/kT (``kT`` is None)."""
        return self.kT is None

    def __iter__(self):
        return iter((self.centres, self.stiffness))

    def __len__(self) -> int:
        return int(self.centres.shape[0])


def restraint_schedule(x, logsnr, scaling=None, *, kT: Optional[float] = None) -> RestraintSchedule:
    """Physical restraint centres and stiffnesses of the denoising distributions along a curve.

    THE one derivation in the package. The denoising distribution at ``(z_t, lam)`` (model
    coordinates ``z``) is Boltzmann in ``U(x)/kT + exp(lam)/2 * ||z(x) - z_t/alpha||^2``. With
    ``z = (x - shift)/scale`` this is a harmonic restraint in physical coordinates with centre
    ``shift + scale * z_t / alpha`` and stiffness ``kT exp(lam) / scale^2`` (per coordinate).

    Parameters
    ----------
    x : Tensor, shape ``(N, *event)``
        Noisy curve points ``z_t`` in model coordinates.
    logsnr : Tensor, shape ``(N,)``
        logSNR of each point, inside ``[LOGSNR_MIN, LOGSNR_MAX]``.
    scaling : AffineScaling, optional
        Model-to-physical coordinates; identity if None.
    kT : float, optional
        Thermal energy; the stiffness is then in energy/length^2 (float64). None (default):
        reduced stiffness ``exp(lam) / scale^2`` in 1/length^2, dtype of ``x``.

    Returns
    -------
    RestraintSchedule
        ``centres (N, *event)`` and ``stiffness (N,)``; unpacks as ``centres, stiffness``.

    Raises
    ------
    ValueError
        If a logSNR value is outside the schedule range or not finite.

    Examples
    --------
    >>> import torch
    >>> from tps.diffusion import AffineScaling, alpha_sigma
    >>> lam = torch.tensor([0.0, 4.0], dtype=torch.float64)
    >>> alpha, _ = alpha_sigma(lam)
    >>> z = alpha[:, None] * torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> centres, k = restraint_schedule(z, lam, AffineScaling((0.5, 0.5), 2.0, (2,)))
    >>> centres                                  # shift + scale * z / alpha
    tensor([[2.5000, 0.5000],
            [0.5000, 2.5000]], dtype=torch.float64)
    >>> k                                        # exp(lam) / scale**2
    tensor([ 0.2500, 13.6495], dtype=torch.float64)
    >>> restraint_schedule(z, lam, kT=2.5).stiffness    # kT exp(lam), energy/length^2
    tensor([  2.5000, 136.4954], dtype=torch.float64)
    """
    lam = check_logsnr(logsnr, "logsnr")
    x = torch.as_tensor(x)
    alpha, _ = alpha_sigma(lam)
    z = x / alpha.view((-1,) + (1,) * (x.dim() - 1))
    if scaling is None:
        centres, reduced = z, torch.exp(lam)
    else:
        centres, reduced = scaling.to_physical(z), torch.exp(lam) / scaling.scale**2
    if kT is None:
        return RestraintSchedule(centres, reduced, lam, None)
    # (kT e^lam) / scale^2 in this order and float64: the rounding of the molecular samplers' schedule
    stiffness = float(kT) * torch.exp(lam.double())
    if scaling is not None:
        stiffness = stiffness / scaling.scale**2
    return RestraintSchedule(centres, stiffness, lam, float(kT))
