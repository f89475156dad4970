"""x0-predicting MLP denoiser for low-dimensional data (2-D surfaces, collective variables)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tps._validation import check_event_shape
from tps.diffusion.embedding import coordinate_embedding, logsnr_embedding, preconditioning


@dataclass(frozen=True)
class MLPConfig:
    """Configuration of :class:`MLPDenoiser`.

    Attributes
    ----------
    dim : int
        Number of coordinates.
    hidden : int
        Width of the hidden layers.
    n_blocks : int
        Number of residual blocks.
    n_frequencies : int
        Fourier features per coordinate (0 = raw coordinates only).
    logsnr_dim : int
        Size of the sinusoidal logSNR embedding.
    sigma_data : float
        Spread of the data in model coordinates (1 after :class:`AffineScaling`).

    Examples
    --------
    >>> cfg = MLPConfig(dim=2, hidden=16, n_blocks=1)
    >>> cfg.n_frequencies, cfg.sigma_data          # defaults
    (4, 1.0)
    """

    dim: int
    hidden: int = 128
    n_blocks: int = 3
    n_frequencies: int = 4
    logsnr_dim: int = 32
    sigma_data: float = 1.0


class _Block(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.lin1 = nn.Linear(hidden, hidden)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.lin2 = nn.Linear(hidden, hidden)

    def forward(self, h, c):
        scale, shift = self.film(c).chunk(2, dim=-1)
        u = self.norm(h) * (1 + scale) + shift
        return h + self.lin2(nn.functional.silu(self.lin1(nn.functional.silu(u))))


class ResidualTrunk(nn.Module):
    """Shared network body of the MLP denoisers: input layer, logSNR-conditioned (FiLM) residual
    blocks with SiLU activations, and a zero-initialised output layer (so an untrained denoiser
    is exactly its preconditioning skip term).

    Examples
    --------
    >>> import torch
    >>> trunk = ResidualTrunk(6, 2, hidden=16, n_blocks=1, logsnr_dim=8)
    >>> trunk(torch.randn(4, 6), torch.zeros(4))       # zero output layer: exactly 0 untrained
    tensor([[0., 0.],
            [0., 0.],
            [0., 0.],
            [0., 0.]], grad_fn=<AddmmBackward0>)
    """

    def __init__(self, in_dim: int, out_dim: int, *, hidden: int, n_blocks: int, logsnr_dim: int):
        super().__init__()
        self.logsnr_dim = logsnr_dim
        self.inp = nn.Linear(in_dim, hidden)
        self.cond = nn.Sequential(nn.Linear(logsnr_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList([_Block(hidden) for _ in range(n_blocks)])
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, out_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, features: torch.Tensor, logsnr: torch.Tensor) -> torch.Tensor:
        """Features ``(B, in_dim)`` and logSNR ``(B,)`` -> output ``(B, out_dim)``."""
        h = self.inp(features)
        cond = self.cond(logsnr_embedding(logsnr, self.logsnr_dim))
        for block in self.blocks:
            h = block(h, cond)
        return self.out(nn.functional.silu(self.out_norm(h)))


class MLPDenoiser(nn.Module):
    """x0-prediction ``D(x_t, lam) ~= E[x0 | x_t]`` for data in R^dim (model coordinates).

    A residual MLP with SiLU activations (smooth, so the geometry can differentiate its
    Jacobian), Fourier features of the coordinates, FiLM conditioning on a sinusoidal logSNR
    embedding, and EDM-style preconditioning (:func:`preconditioning`), so that at high logSNR
    the output tends to ``x / alpha`` without the network having to learn it.

    Parameters
    ----------
    config : MLPConfig

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`MLPConfig`.

    Notes
    -----
    Called as ``net(x, logsnr)`` with ``x`` of shape ``(B, dim)`` (model coordinates) and
    ``logsnr`` of shape ``(B,)``; returns the predicted ``x0``, shape ``(B, dim)``.

    Examples
    --------
    The output layer starts at zero, so an untrained network is its skip term ``alpha * x``:
    the exact denoiser of standard normal data.

    >>> import torch
    >>> from tps.diffusion import MLPConfig, MLPDenoiser
    >>> from tps.diffusion.gaussian import Gaussian
    >>> _ = torch.manual_seed(0)
    >>> net = MLPDenoiser(MLPConfig(dim=2, hidden=16, n_blocks=1))
    >>> x, lam = torch.randn(5, 2), torch.linspace(-3.0, 3.0, 5)
    >>> net(x, lam).shape
    torch.Size([5, 2])
    >>> torch.allclose(net(x, lam), Gaussian([0.0, 0.0], 1.0)(x, lam).float(), atol=1e-6)
    True
    """

    def __init__(self, config: MLPConfig):
        super().__init__()
        if not isinstance(config, MLPConfig):
            raise TypeError(f"config: expected MLPConfig, got {type(config).__name__}")
        self.config = config
        c = config
        self.trunk = ResidualTrunk(c.dim * (1 + 2 * c.n_frequencies), c.dim, hidden=c.hidden, n_blocks=c.n_blocks,
                                   logsnr_dim=c.logsnr_dim)

    @property
    def event_shape(self):
        """Shape of one configuration, ``(dim,)``."""
        return (self.config.dim,)

    @classmethod
    def from_config(cls, config, **_):
        """Build from an :class:`MLPConfig` or its ``dataclasses.asdict`` (checkpoints)."""
        if isinstance(config, dict):
            config = MLPConfig(**config)
        return cls(config)

    def forward(self, x: torch.Tensor, logsnr: torch.Tensor) -> torch.Tensor:
        """Predicted ``x0``, ``(B, dim)``, of noisy ``x`` ``(B, dim)`` at logSNR ``(B,)`` (model coordinates).

        Raises
        ------
        ValueError
            If ``x`` is not ``(B, dim)`` or ``logsnr`` does not match its batch.
        """
        check_event_shape(x, self.event_shape, "x")
        if logsnr.shape != x.shape[:1]:
            raise ValueError(f"logsnr: expected shape ({x.shape[0]},) matching the batch of x, got {tuple(logsnr.shape)}")
        c_in, c_skip, c_out = preconditioning(logsnr, self.config.sigma_data)
        f = self.trunk(coordinate_embedding(x * c_in[:, None], self.config.n_frequencies), logsnr)
        return c_skip[:, None] * x + c_out[:, None] * f
