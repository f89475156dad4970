"""Sinusoidal embeddings and the EDM-style preconditioning of x0-predictors (VP, logSNR)."""

from __future__ import annotations

import math

import torch

from tps.diffusion.schedule import LOGSNR_MAX, LOGSNR_MIN, alpha_sigma


def logsnr_embedding(logsnr: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of logSNR values ``(B,)`` -> ``(B, dim)`` (``dim`` even).

    The logSNR range [-12, 12] is mapped to [-1, 1] and embedded with geometric frequencies
    from 1 to ~100, so neighbouring noise levels get neighbouring embeddings.

    Examples
    --------
    >>> import torch
    >>> e = logsnr_embedding(torch.tensor([0.0, 12.0]), 8)
    >>> e.shape, e[0].tolist()                       # lam = 0 is the centre: sin 0, cos 0
    (torch.Size([2, 8]), [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    """
    half = dim // 2
    u = (logsnr - 0.5 * (LOGSNR_MAX + LOGSNR_MIN)) / (0.5 * (LOGSNR_MAX - LOGSNR_MIN))
    freqs = torch.exp(torch.linspace(0.0, math.log(100.0), half, dtype=logsnr.dtype, device=logsnr.device))
    arg = u[..., None] * freqs * math.pi / 2
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)


def coordinate_embedding(z: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """Fourier features of coordinates ``(B, d)`` -> ``(B, d * (1 + 2 n_frequencies))``.

    Frequencies ``2^k * pi / 4`` for ``k = 0 .. n_frequencies-1`` (model coordinates have unit spread).

    Examples
    --------
    >>> import torch
    >>> coordinate_embedding(torch.zeros(3, 2), 4).shape        # 2 * (1 + 2 * 4)
    torch.Size([3, 18])
    """
    if n_frequencies == 0:
        return z
    freqs = (2.0 ** torch.arange(n_frequencies, dtype=z.dtype, device=z.device)) * (math.pi / 4)
    arg = z[..., None] * freqs  # (B, d, F)
    return torch.cat([z, torch.sin(arg).flatten(-2), torch.cos(arg).flatten(-2)], dim=-1)


def preconditioning(logsnr: torch.Tensor, sigma_data: float):
    """EDM-style coefficients for a VP x0-predictor ``D = c_skip x + c_out F(c_in x, lam)``.

    With data of spread ``sigma_data``: ``c_in = 1/sqrt(alpha^2 s^2 + sigma^2)`` makes the
    network input unit-variance, ``c_skip = alpha s^2/(alpha^2 s^2 + sigma^2)`` is the optimal
    linear (Gaussian-data) denoiser and ``c_out = sigma s / sqrt(alpha^2 s^2 + sigma^2)`` the
    standard deviation of what is left to predict. Returns ``(c_in, c_skip, c_out)``, each ``(B,)``.

    Examples
    --------
    With ``sigma_data = 1`` the input needs no rescaling (VP keeps unit variance) and the skip
    term is ``alpha``, the exact denoiser of standard normal data:

    >>> import torch
    >>> c_in, c_skip, c_out = preconditioning(torch.tensor([0.0]), 1.0)
    >>> c_in, c_skip, c_out                         # 1, sqrt(1/2), sqrt(1/2)
    (tensor([1.]), tensor([0.7071]), tensor([0.7071]))
    """
    alpha, sigma = alpha_sigma(logsnr)
    s2 = sigma_data**2
    denom = alpha**2 * s2 + sigma**2
    return denom.rsqrt(), alpha * s2 / denom, sigma * sigma_data * denom.rsqrt()
