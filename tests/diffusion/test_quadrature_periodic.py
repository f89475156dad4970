"""The quadrature denoiser is exact for a Gaussian Boltzmann density; the periodic denoiser is
quasi-periodic and survives a checkpoint round trip."""

import math

import torch

from tps.diffusion import AffineScaling, DiffusionModel, PeriodicMLPConfig, PeriodicMLPDenoiser
from tps.diffusion.gaussian import Gaussian
from tps.diffusion.quadrature import QuadratureDenoiser
from tps.potentials import Harmonic


def test_quadrature_denoiser_matches_closed_form_gaussian():
    # U = k/2 |x - c|^2 at kT: Boltzmann = N(c, kT/k). Derivation: exp(-U/kT) is that Gaussian.
    k, kT = 4.0, 1.0
    c = torch.tensor([0.3, -0.2], dtype=torch.float64)
    quad = QuadratureDenoiser(Harmonic((2,), k=k, center=c), kT, ((-3.0, 3.0), (-3.0, 3.0)), n=301)
    exact = Gaussian(c, kT / k)
    x = torch.tensor([[0.5, 0.1], [-1.0, 1.0], [2.0, -0.5]], dtype=torch.float64)
    for lam in (-2.0, 0.0, 3.0):
        logsnr = torch.full((3,), lam, dtype=torch.float64)
        assert torch.allclose(quad(x, logsnr), exact(x, logsnr), atol=1e-4)


def test_periodic_denoiser_quasi_periodicity_and_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, hidden=16, n_blocks=1)).double()
    torch.nn.init.normal_(net.trunk.out.weight, std=0.1)  # make the periodic correction non-trivial
    x = torch.randn(5, 2, dtype=torch.float64)
    lam = torch.linspace(-4, 6, 5, dtype=torch.float64)
    alpha = torch.sigmoid(lam).sqrt()[:, None]
    shift = torch.tensor([1.0, -2.0], dtype=torch.float64) * 2 * math.pi
    assert torch.allclose(net(x + alpha * shift, lam), net(x, lam) + shift, atol=1e-9)
    model = DiffusionModel(net, AffineScaling.identity((2,)))
    model.save(tmp_path / "m.pt")
    back = DiffusionModel.load(tmp_path / "m.pt")
    assert torch.equal(back.network.double()(x, lam), net(x, lam))


def test_nearest_image_target_is_within_half_a_period_of_u():
    net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2))
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(100, 2, generator=g) * 2 * math.pi - math.pi
    lam = torch.full((100,), -3.0)
    xt = torch.sigmoid(lam).sqrt()[:, None] * x0 + torch.sigmoid(-lam).sqrt()[:, None] * 3 * torch.randn(100, 2, generator=g)
    target = net.training_target(x0, xt, lam)
    u = xt / torch.sigmoid(lam).sqrt()[:, None]
    assert (target - u).abs().max() <= math.pi + 1e-5
    k = (target - x0) / (2 * math.pi)
    assert torch.allclose(k, k.round(), atol=1e-4)
