"""x0-predicting denoiser for data on a torus (dihedral angles), exact in structure.

Treat the periodic data density as tiled over R^d. Its denoiser then satisfies
``D(x_t + alpha * P k, lam) = D(x_t, lam) + P k`` for every integer vector ``k`` (``P`` the
period), so ``D(x_t, lam) - x_t / alpha`` is a P-periodic function of ``u = x_t / alpha``. This
module parametrises exactly that: ``D = u + g(sin(2 pi u / P), cos(2 pi u / P), lam)``.

Training on data from a single period is enough: for ``x0`` in one tile and
``u = x0 + (sigma/alpha) eps``, the joint law of ``(u mod P, x0 - u)`` is the same as for the
infinite tiling, so the loss minimiser is the tiled denoiser. Geodesics and annealed Langevin
chains then live in unwrapped coordinates and cross the +-pi boundary whenever that is shorter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tps._validation import check_event_shape
from tps.diffusion.mlp import ResidualTrunk
from tps.diffusion.schedule import alpha_sigma


@dataclass(frozen=True)
class PeriodicMLPConfig:
    """Configuration of :class:`PeriodicMLPDenoiser`.

    Attributes
    ----------
    dim : int
        Number of (periodic) coordinates.
    period : float
        Period of every coordinate in model coordinates (``2*pi`` for radians with identity scaling).
    hidden, n_blocks : int
        Width and number of residual blocks of the network trunk.
    n_harmonics : int
        Fourier harmonics of the phase fed to the network.
    logsnr_dim : int
        Size of the sinusoidal logSNR embedding.

    Examples
    --------
    >>> import math
    >>> PeriodicMLPConfig(dim=2).period == 2 * math.pi
    True
    """

    dim: int
    period: float = 2 * math.pi
    hidden: int = 128
    n_blocks: int = 3
    n_harmonics: int = 3
    logsnr_dim: int = 32


class PeriodicMLPDenoiser(nn.Module):
    """``D(x_t, lam) = x_t/alpha + g(phase(x_t/alpha), lam)`` with ``g`` periodic (see module docstring).

    The output correction is scaled by ``min(sigma/alpha, period)`` (the posterior spread, capped
    at one period), so at low noise ``D -> x_t/alpha`` and at high noise the network predicts an
    offset of at most about one period.

    Parameters
    ----------
    config : PeriodicMLPConfig

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`PeriodicMLPConfig`.
    ValueError
        If ``config.period`` is not positive.

    Notes
    -----
    Called as ``net(x, logsnr)`` with ``x`` ``(B, dim)`` unwrapped model coordinates and
    ``logsnr`` ``(B,)``; returns the predicted ``x0``, ``(B, dim)``. Shifting ``x`` by
    ``alpha * period`` shifts the output by one period (the example checks it).

    Examples
    --------
    >>> import math, torch
    >>> from tps.diffusion.periodic import PeriodicMLPConfig, PeriodicMLPDenoiser
    >>> net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, hidden=16, n_blocks=1))
    >>> x, lam = torch.randn(3, 2), torch.zeros(3)
    >>> shift = torch.sigmoid(lam).sqrt()[:, None] * 2 * math.pi
    >>> torch.allclose(net(x + shift, lam), net(x, lam) + 2 * math.pi, atol=1e-5)
    True
    """

    def __init__(self, config: PeriodicMLPConfig):
        super().__init__()
        if not isinstance(config, PeriodicMLPConfig):
            raise TypeError(f"config: expected PeriodicMLPConfig, got {type(config).__name__}")
        if not config.period > 0:
            raise ValueError(f"config.period: expected a positive period, got {config.period}")
        self.config = config
        c = config
        self.trunk = ResidualTrunk(2 * c.dim * c.n_harmonics + 1, c.dim, hidden=c.hidden, n_blocks=c.n_blocks,
                                   logsnr_dim=c.logsnr_dim)

    @property
    def event_shape(self):
        """Shape of one configuration, ``(dim,)``."""
        return (self.config.dim,)

    @property
    def periods(self):
        """Period of each coordinate, ``(period,) * dim``."""
        return (self.config.period,) * self.config.dim

    @classmethod
    def from_config(cls, config, **_):
        """Build from a :class:`PeriodicMLPConfig` or its ``dataclasses.asdict`` (checkpoints)."""
        if isinstance(config, dict):
            config = PeriodicMLPConfig(**config)
        return cls(config)

    def training_target(self, x0: torch.Tensor, x_t: torch.Tensor, logsnr: torch.Tensor) -> torch.Tensor:
        """The image of ``x0`` nearest to ``u = x_t / alpha`` (used as the regression target).

        The tiled posterior puts equal prior mass on every image of ``x0``; regressing on the raw
        single-tile ``x0`` adds an irreducible variance ``(sigma/alpha)^2`` that swamps training
        at high noise. The nearest image has the same conditional mean as long as the posterior
        spread ``sigma/alpha`` is below half a period (logSNR above about ``2 ln(2/P)``, i.e.
        -0.9 for P = 2 pi) and is a wrapped approximation of it below.

        Parameters
        ----------
        x0 : Tensor, shape ``(B, dim)``
            Clean data, one period.
        x_t : Tensor, shape ``(B, dim)``
            Noisy data.
        logsnr : Tensor, shape ``(B,)``

        Returns
        -------
        Tensor, shape ``(B, dim)``
            ``x0 + P * round((x_t / alpha - x0) / P)``.
        """
        alpha, _ = alpha_sigma(logsnr)
        u = x_t / alpha.view((-1,) + (1,) * (x_t.dim() - 1))
        P = self.config.period
        return x0 + P * torch.round((u - x0) / P)

    def forward(self, x: torch.Tensor, logsnr: torch.Tensor) -> torch.Tensor:
        """Predicted ``x0``, ``(B, dim)``, of noisy ``x`` ``(B, dim)`` at logSNR ``(B,)`` (unwrapped).

        Raises
        ------
        ValueError
            If ``x`` is not ``(B, dim)`` or ``logsnr`` does not match its batch.
        """
        check_event_shape(x, self.event_shape, "x")
        if logsnr.shape != x.shape[:1]:
            raise ValueError(f"logsnr: expected shape ({x.shape[0]},) matching the batch of x, got {tuple(logsnr.shape)}")
        c = self.config
        alpha, sigma = alpha_sigma(logsnr)
        u = x / alpha[:, None]
        k = torch.arange(1, c.n_harmonics + 1, dtype=x.dtype, device=x.device)
        phase = (2 * math.pi / c.period) * u[..., None] * k  # (B, d, H)
        spread = torch.clamp(sigma / alpha, max=c.period)
        feats = torch.cat([torch.sin(phase).flatten(1), torch.cos(phase).flatten(1),
                           torch.log(spread)[:, None] / 4], dim=1)
        g = self.trunk(feats, logsnr)
        return u + spread[:, None] * g
