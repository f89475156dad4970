"""The variance-preserving diffusion schedule, parametrised directly by logSNR ``lam``.

``alpha(lam)^2 = sigmoid(lam)``, ``sigma(lam)^2 = sigmoid(-lam)``, so that
``alpha^2 / sigma^2 = exp(lam)`` and ``x_t = alpha * x0 + sigma * eps``.
"""

from __future__ import annotations

import math
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


def restraint_schedule(x, logsnr, scaling=None, *, kT: Optional[float] = None,
                       logsnr_shift: Optional[float] = None) -> RestraintSchedule:
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
    logsnr_shift : float, optional
        Softer restraints: the stiffness uses ``lam - logsnr_shift`` (``exp(-logsnr_shift)`` times
        the derived one; the centres keep ``alpha(lam)``). None or 0 (default): the derivation as is.

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
    >>> restraint_schedule(z, lam, kT=2.5, logsnr_shift=1.0).stiffness    # kT exp(lam - 1)
    tensor([ 0.9197, 50.2138], dtype=torch.float64)
    """
    lam = check_logsnr(logsnr, "logsnr")
    shift = 0.0 if logsnr_shift is None else float(logsnr_shift)
    if not math.isfinite(shift):
        raise ValueError(f"logsnr_shift: expected a finite number, got {logsnr_shift!r}")
    x = torch.as_tensor(x)
    alpha, _ = alpha_sigma(lam)
    z = x / alpha.view((-1,) + (1,) * (x.dim() - 1))
    lam_k = lam - shift if shift else lam  # the stiffness' logSNR (unchanged tensor when no shift: same rounding)
    if scaling is None:
        centres, reduced = z, torch.exp(lam_k)
    else:
        centres, reduced = scaling.to_physical(z), torch.exp(lam_k) / scaling.scale**2
    if kT is None:
        return RestraintSchedule(centres, reduced, lam, None)
    # (kT e^lam) / scale^2 in this order and float64: the rounding of the molecular samplers' schedule
    stiffness = float(kT) * torch.exp(lam_k.double())
    if scaling is not None:
        stiffness = stiffness / scaling.scale**2
    return RestraintSchedule(centres, stiffness, lam, float(kT))


def renoised_centres(centres, stiffness, noise, *, scale: float = 1.0, kT: Optional[float] = None) -> torch.Tensor:
    """Per-path restraint centres: the curve's centres moved sideways by ``scale`` restraint widths.

    A curve point ``z_t`` is one draw ``alpha x0 + sigma eps`` of the forward process, and its
    centre ``z_t / alpha`` lies ``(sigma / alpha) eps`` from the clean point. One fixed curve gives
    every path the same centres, so the paths share one tube of the restraint's width
    ``w_n = k_n^(-1/2)`` (reduced; ``sqrt(kT / k_n)`` with ``kT``). Drawing the noise afresh for each
    path (``noise[i]``, once per path, so its centres move as smoothly as the curve's) spreads the
    paths across the tube: centre ``c_n + scale * w_n * P_n noise[i]``, with ``P_n`` the projection
    perpendicular to the curve's tangent at ``n`` (so a path is not advanced or held back along the
    curve). ``scale = 1`` is the forward process' own spread; a larger one adds the thermal spread
    of ``x0`` across the tube (``w^2 + var_thermal`` per coordinate undoes the narrowing of a
    harmonic tilt exactly).

    Parameters
    ----------
    centres : Tensor, shape ``(N, *event)``
        Restraint centres (:func:`restraint_schedule`), physical coordinates.
    stiffness : Tensor, shape ``(N,)``
        Reduced (1/length^2) when ``kT`` is None, else energy/length^2.
    noise : Tensor, shape ``(n_paths, *event)``
        One standard normal draw per path.
    scale : float
        Offsets in units of the restraint width (non-negative).
    kT : float, optional
        Thermal energy of an energy-unit ``stiffness``.

    Returns
    -------
    Tensor, shape ``(N, n_paths, *event)``, float64
        Centre of curve point ``n`` for path ``i``; ``scale = 0`` gives the curve's centres for every path.

    Raises
    ------
    ValueError
        If shapes disagree, ``scale`` is negative or a stiffness is not positive.

    Examples
    --------
    A straight curve along x: the offsets are along y only, ``scale / sqrt(k)`` per unit of noise.

    >>> import torch
    >>> c = torch.stack([torch.linspace(0, 1, 5), torch.zeros(5)], 1).double()
    >>> out = renoised_centres(c, torch.full((5,), 4.0), torch.tensor([[3.0, 1.0], [0.0, -2.0]]), scale=1.0)
    >>> out.shape, out[2].tolist()       # point 2 (x = 0.5) of both paths: y offsets 1 / 2 and -2 / 2
    (torch.Size([5, 2, 2]), [[0.5, 0.5], [0.5, -1.0]])
    """
    c = torch.as_tensor(centres).detach().to(torch.float64)
    k = torch.as_tensor(stiffness).detach().to(torch.float64).reshape(-1)
    eps = torch.as_tensor(noise).detach().to(torch.float64)
    if c.dim() < 2 or k.shape[0] != c.shape[0]:
        raise ValueError(f"stiffness: expected shape ({c.shape[0] if c.dim() else '?'},) to match centres "
                         f"(N, *event), got {tuple(k.shape)} and centres {tuple(c.shape)}")
    if eps.dim() != c.dim() or tuple(eps.shape[1:]) != tuple(c.shape[1:]):
        raise ValueError(f"noise: expected shape (n_paths, {', '.join(map(str, c.shape[1:]))}), got {tuple(eps.shape)}")
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale: expected a non-negative number, got {scale!r}")
    if not bool((k > 0).all()):
        raise ValueError("stiffness: expected positive values (a restraint width 1/sqrt(k) per point)")
    width = (k if kT is None else k / float(kT)).rsqrt()
    flat, e = c.reshape(c.shape[0], -1), eps.reshape(eps.shape[0], -1)
    t = torch.zeros_like(flat)
    if flat.shape[0] > 1:
        t[1:-1] = flat[2:] - flat[:-2]
        t[0], t[-1] = flat[1] - flat[0], flat[-1] - flat[-2]
    norm = t.norm(dim=1, keepdim=True)
    t = torch.where(norm > 0, t / norm.clamp_min(torch.finfo(t.dtype).tiny), torch.zeros_like(t))
    along = t @ e.T                                                  # (N, n_paths)
    perp = e[None] - along[..., None] * t[:, None]                   # (N, n_paths, D)
    out = flat[:, None] + float(scale) * width[:, None, None] * perp
    return out.reshape((c.shape[0], eps.shape[0]) + tuple(c.shape[1:]))
