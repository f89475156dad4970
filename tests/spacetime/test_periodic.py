"""Periodic (torus) coordinates: quasi-periodic denoiser, geodesics across +-pi, annealed Langevin across +pi.

The exact periodic denoiser used here is a Gaussian mixture tiled over the lattice ``2 pi Z^2``
(a wrapped isotropic Gaussian, truncated to ``|k| <= 3`` images, which is exact to far below the
tolerances for the noise levels used).
"""

import math

import numpy as np
import pytest
import torch

from tps.diffusion import PeriodicMLPConfig, PeriodicMLPDenoiser
from tps.diffusion.gaussian import GaussianMixture
from tps.metrics.paths import frame_steps, target_hit_fraction
from tps.potentials.grid import Grid2D, PeriodicGridPotential
from tps.sampling import annealed_langevin
from tps.spacetime import geodesic
from tps.states import Ball

TWO_PI = 2 * math.pi
PERIODS = (TWO_PI, TWO_PI)


def lattice(n: int) -> torch.Tensor:
    """Integer vectors ``k in {-n..n}^2``, shape ``((2n+1)^2, 2)``, float64."""
    r = range(-n, n + 1)
    return torch.tensor([(i, j) for i in r for j in r], dtype=torch.float64)


def wrapped_gaussian(centre, variance: float, n_images: int = 3) -> GaussianMixture:
    """Exact denoiser of a wrapped isotropic Gaussian on the torus, tiled over R^2."""
    k = lattice(n_images)
    means = torch.as_tensor(centre, dtype=torch.float64)[None] + TWO_PI * k
    return GaussianMixture(torch.ones(len(k), dtype=torch.float64), means,
                           torch.full((len(k),), variance, dtype=torch.float64))


def test_periodic_mlp_denoiser_is_quasi_periodic_float64():
    torch.manual_seed(0)
    net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, hidden=32, n_blocks=2)).double()
    for p in net.parameters():  # the output layer starts at zero: make the periodic part non-trivial
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(64, 2, dtype=torch.float64) * 3
    lam = torch.linspace(-6, 8, 64, dtype=torch.float64)
    alpha = torch.sigmoid(lam).sqrt()[:, None]
    base = net(x, lam)
    assert (base - x / alpha).abs().max() > 1e-3  # the correction is not trivially zero
    for k in ([1, 0], [0, -1], [2, 3], [-3, 1]):
        kk = torch.tensor(k, dtype=torch.float64)
        shifted = net(x + TWO_PI * kk * alpha, lam)
        torch.testing.assert_close(shifted, base + TWO_PI * kk, atol=1e-6, rtol=0)


def test_wrapped_gaussian_denoiser_is_quasi_periodic():
    """Sanity check of the exact test denoiser itself (truncation error far below tolerance)."""
    d = wrapped_gaussian([math.pi, 0.0], 0.25)
    x = torch.tensor([[2.8, 0.1], [-2.9, -0.2]], dtype=torch.float64)
    lam = torch.tensor([4.0, 2.0], dtype=torch.float64)
    alpha = torch.sigmoid(lam).sqrt()[:, None]
    shift = torch.tensor([TWO_PI, 0.0], dtype=torch.float64)
    torch.testing.assert_close(d(x + alpha * shift, lam), d(x, lam) + shift, atol=1e-8, rtol=0)


def test_geodesic_over_images_picks_the_one_crossing_pi():
    """Endpoints on either side of phi = +-pi: of the nine images of the end point, the geodesic to
    the image across the boundary is the shortest, and that curve crosses phi = pi continuously."""
    denoiser = wrapped_gaussian([math.pi, 0.0], 0.25)
    x_a = torch.tensor([2.8, 0.3], dtype=torch.float64)
    x_b = torch.tensor([-2.8, -0.3], dtype=torch.float64)
    k = lattice(1)
    xa = x_a.expand(len(k), 2).clone()
    xb = x_b[None] + TWO_PI * k
    r = geodesic(denoiser, xa, xb, batched=True, logsnr=4.0, n_points=24, n_nodes=4, max_iter=40)
    best = int(torch.argmin(r.energy))
    assert k[best].tolist() == [1.0, 0.0]
    # the straight chord to the crossing image is already far shorter than any other image's geodesic
    others = torch.cat([r.energy[:best], r.energy[best + 1:]])
    assert float(r.energy[best]) < 0.5 * float(others.min())
    alpha = torch.sigmoid(r.logsnr[best]).sqrt()
    phi = r.x[best, :, 0] / alpha
    assert phi[0] < math.pi < phi[-1]
    assert float(phi.diff().abs().max()) < 0.2  # no jumps: it crosses, it does not wrap


def cosine_grid(n: int = 48) -> Grid2D:
    ang = -math.pi + TWO_PI * np.arange(n) / n
    P, Q = np.meshgrid(ang, ang, indexing="ij")
    return Grid2D.from_arrays(ang, ang, 2.0 * np.cos(P) + np.cos(Q) + 0.5 * np.cos(P - Q))


def test_annealed_langevin_crosses_plus_pi_continuously():
    U = PeriodicGridPotential(cosine_grid())
    start = torch.tensor([2.4, 0.2], dtype=torch.float64)
    end_unwrapped = torch.tensor([TWO_PI - 2.4, -0.3], dtype=torch.float64)  # 3.88 rad: across +pi
    N = 40
    s = torch.linspace(0, 1, N, dtype=torch.float64)[:, None]
    lam = torch.full((N,), 5.0, dtype=torch.float64)
    curve_x = ((1 - s) * start + s * end_unwrapped) * torch.sigmoid(lam).sqrt()[:, None]
    g = torch.Generator().manual_seed(0)
    paths = annealed_langevin(U, curve_x, lam, kT=1.0, n_paths=200, steps_per_point=8, step_size=2e-3,
                              frames_per_point=8, x_start=start, generator=g)
    periodic_steps = frame_steps(paths, periods=PERIODS)
    plain_steps = frame_steps(paths)
    assert float(periodic_steps.max()) < 0.35
    # unwrapped frames: the periodic and plain steps agree, i.e. no frame jumps by a period
    torch.testing.assert_close(periodic_steps, plain_steps)
    assert (paths.frames[:, -1, 0] > math.pi).float().mean() > 0.95  # crossed +pi in unwrapped phi
    target = Ball(end_unwrapped - torch.tensor([TWO_PI, 0.0], dtype=torch.float64), 0.75, periods=PERIODS)
    assert target_hit_fraction(paths, target) > 0.95
    # periodicity of the potential along the way: energies of wrapped and unwrapped frames agree
    f = paths.frames[:5]
    torch.testing.assert_close(U.energy(f, count=False), U.energy(U.wrap(f), count=False), atol=1e-9, rtol=0)


@pytest.mark.parametrize("k", [(1, 0), (0, -1)])
def test_periodic_grid_potential_is_periodic(k):
    U = PeriodicGridPotential(cosine_grid())
    x = torch.rand(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 6 - 3
    shift = TWO_PI * torch.tensor(k, dtype=torch.float64)
    e0, f0 = U.energy_and_forces(x)
    e1, f1 = U.energy_and_forces(x + shift)
    torch.testing.assert_close(e1, e0, atol=1e-9, rtol=0)
    torch.testing.assert_close(f1, f0, atol=1e-9, rtol=0)
