"""The MLP denoiser's preconditioning for data of spread ``sigma_data != 1``, from its definition.

``D(x, lam) = c_skip x + c_out F(c_in x, lam)`` with ``alpha^2 = sigmoid(lam)``,
``sigma^2 = sigmoid(-lam)``, ``s = sigma_data``: ``c_in = 1 / sqrt(alpha^2 s^2 + sigma^2)``,
``c_skip = alpha s^2 / (alpha^2 s^2 + sigma^2)``, ``c_out = sigma s / sqrt(alpha^2 s^2 + sigma^2)``.
Round trips (save/load) cannot see a dropped or wrong coefficient; these reference outputs can.
"""

import pytest
import torch

from tps.diffusion.embedding import coordinate_embedding
from tps.diffusion.mlp import MLPConfig, MLPDenoiser


@pytest.mark.parametrize("sigma_data", [0.3, 2.5])
def test_untrained_denoiser_is_the_exact_gaussian_denoiser(sigma_data):
    """The output layer starts at zero, so D = c_skip x, the posterior mean of N(0, s^2 I) data:
    E[x0 | x] = alpha s^2 x / (alpha^2 s^2 + sigma^2)."""
    net = MLPDenoiser(MLPConfig(dim=2, hidden=8, n_blocks=1, sigma_data=sigma_data)).double()
    x = torch.tensor([[1.0, -2.0], [0.5, 0.25], [-3.0, 4.0]], dtype=torch.float64)
    lam = torch.tensor([-3.0, 0.0, 5.0], dtype=torch.float64)
    a2, s2 = torch.sigmoid(lam), sigma_data**2
    expected = (a2.sqrt() * s2 / (a2 * s2 + torch.sigmoid(-lam)))[:, None] * x
    torch.testing.assert_close(net(x, lam), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sigma_data", [0.3, 2.5])
def test_trained_denoiser_follows_the_preconditioning_definition(sigma_data):
    torch.manual_seed(0)
    net = MLPDenoiser(MLPConfig(dim=2, hidden=16, n_blocks=2, n_frequencies=3, sigma_data=sigma_data)).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # a non-trivial network (the output layer starts at zero)
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = 2.0 * torch.randn(6, 2, generator=g, dtype=torch.float64)
    lam = torch.linspace(-6.0, 8.0, 6, dtype=torch.float64)
    alpha, sigma = torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()
    s = sigma_data
    norm = torch.sqrt(alpha**2 * s**2 + sigma**2)
    c_in, c_skip, c_out = 1 / norm, alpha * s**2 / norm**2, sigma * s / norm
    with torch.no_grad():
        f = net.trunk(coordinate_embedding(c_in[:, None] * x, 3), lam)
        expected = c_skip[:, None] * x + c_out[:, None] * f
        out = net(x, lam)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    # The network part is not negligible (so a wrong c_in or c_out shows).
    assert float((out - c_skip[:, None] * x).abs().max()) > 0.01
