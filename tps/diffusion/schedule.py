"""The variance-preserving diffusion schedule, parametrised directly by logSNR ``lam``.

``alpha(lam)^2 = sigmoid(lam)``, ``sigma(lam)^2 = sigmoid(-lam)``, so that
``alpha^2 / sigma^2 = exp(lam)`` and ``x_t = alpha * x0 + sigma * eps``.
"""

from __future__ import annotations

import torch

from tps._validation import as_tensor, check_finite

#: The logSNR range the package's models are trained on and the geometry accepts.
LOGSNR_MIN = -12.0
LOGSNR_MAX = 12.0


def alpha_sigma(logsnr: torch.Tensor):
    """Return ``(alpha, sigma)`` for logSNR values (any shape)."""
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


def loss_weight(logsnr: torch.Tensor) -> torch.Tensor:
    """Training weight ``w(lam) = sqrt(sigmoid(lam + 2))`` of the x0-prediction loss."""
    return torch.sigmoid(logsnr + 2.0).sqrt()


def check_logsnr(logsnr, name: str = "logsnr", *, low: float = LOGSNR_MIN, high: float = LOGSNR_MAX) -> torch.Tensor:
    """Validate logSNR values: finite and inside the schedule range ``[low, high]``."""
    t = as_tensor(logsnr, name)
    check_finite(t, name)
    if t.numel() and (t.min() < low - 1e-9 or t.max() > high + 1e-9):
        raise ValueError(
            f"{name}: expected logSNR values inside the schedule range [{low}, {high}], "
            f"got values in [{t.min().item():.3g}, {t.max().item():.3g}]"
        )
    return t


def add_noise(x0: torch.Tensor, logsnr: torch.Tensor, noise: torch.Tensor | None = None, *, generator=None):
    """Sample ``x_t = alpha x0 + sigma eps`` with ``logsnr`` of shape ``(B,)``; returns ``(x_t, eps)``."""
    if noise is None:
        noise = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device, generator=generator)
    alpha, sigma = alpha_sigma(logsnr)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    return alpha.view(shape) * x0 + sigma.view(shape) * noise, noise
