"""Exact denoisers of low-dimensional Boltzmann densities by quadrature on a grid.

For data ``q(x) ~ exp(-U(x)/kT)`` restricted to a box, the denoising distribution in model
coordinates ``z = (x - shift)/scale`` is ``p(z0 | z_t) ~ q(z0) exp(-||alpha z0 - z_t||^2 / (2 sigma^2))``.
On a fine grid its mean and second moment are softmax-weighted sums, differentiable in
``z_t`` and ``lam``: an oracle denoiser that isolates the geometry from the learning error.
"""

from __future__ import annotations

import torch

from tps.diffusion.schedule import alpha_sigma


class QuadratureDenoiser(torch.nn.Module):
    """``E[z0 | z_t, lam]`` of a Boltzmann density by quadrature on a regular grid.

    Parameters
    ----------
    potential : Potential
        With ``event_shape == (d,)`` (d = 1 or 2 in practice: the grid has ``n**d`` nodes).
    kT : float
        Thermal energy in the potential's unit.
    box : sequence of (low, high)
        Physical extent of the grid in each coordinate.
    n : int
        Grid nodes per coordinate.
    scaling : AffineScaling, optional
        Physical -> model coordinates (identity if None).
    dtype : torch.dtype, optional
        Of the grid (default float64).

    Notes
    -----
    Exact up to quadrature error and truncation to the box; memory ``B * n**d`` per call.
    Called as ``denoiser(z (B, d), logsnr (B,)) -> (B, d)`` in model coordinates.

    Examples
    --------
    A harmonic well ``k = 4`` at ``kT = 1`` has Gaussian data of variance 1/4, whose exact
    denoiser the quadrature reproduces:

    >>> import torch
    >>> from tps.potentials import Harmonic
    >>> from tps.diffusion.gaussian import Gaussian
    >>> oracle = QuadratureDenoiser(Harmonic((2,), k=4.0), 1.0, [(-3.0, 3.0), (-3.0, 3.0)], n=101)
    >>> z = torch.tensor([[0.3, -0.4], [1.0, 0.2]], dtype=torch.float64)
    >>> lam = torch.tensor([0.0, 3.0], dtype=torch.float64)
    >>> oracle(z, lam)
    tensor([[ 0.0849, -0.1131],
            [ 0.8544,  0.1709]], dtype=torch.float64)
    >>> torch.allclose(oracle(z, lam), Gaussian([0.0, 0.0], 0.25)(z, lam), atol=1e-6)
    True
    """

    def __init__(self, potential, kT: float, box, *, n: int = 150, scaling=None, dtype=torch.float64):
        super().__init__()
        axes = [torch.linspace(lo, hi, n, dtype=dtype) for lo, hi in box]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
        log_q = -potential.energy(grid, count=False).to(dtype) / kT
        z = grid if scaling is None else scaling.to_model(grid)
        self.register_buffer("nodes", z)
        self.register_buffer("log_q", log_q - log_q.max())
        self.event_shape = (len(axes),)

    def forward(self, x: torch.Tensor, logsnr: torch.Tensor) -> torch.Tensor:
        """``E[z0 | z_t = x]``, ``(B, d)``, for noisy ``x`` ``(B, d)`` at logSNR ``(B,)``; differentiable."""
        nodes, log_q = self.nodes.to(x.dtype), self.log_q.to(x.dtype)
        alpha, sigma = alpha_sigma(logsnr)
        # -||alpha z0 - x||^2 / (2 sigma^2), expanded to avoid a (B, G, d) tensor
        cross = x @ nodes.T  # (B, G)
        sq = (nodes * nodes).sum(-1)  # (G,)
        logits = log_q + (alpha[:, None] * cross - 0.5 * alpha[:, None] ** 2 * sq) / sigma[:, None] ** 2
        w = torch.softmax(logits, dim=-1)
        return w @ nodes
