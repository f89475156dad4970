"""Density geodesics (method.md section 6): endpoints, straight line at beta = 0, minimax limit."""

import pytest
import torch

from tps.metrics.lower_bound import grid_lower_bound
from tps.spacetime import density_geodesic, exact_boltzmann_score, learned_score
from tps.systems import load
from tps.systems.muller_brown import BOX


@pytest.fixture(scope="module")
def mb():
    return load("muller-brown", kT=12.5)


def dense_max_energy(potential, x, k=20):
    """Largest energy on the polyline through the knots (k points per segment)."""
    t = torch.linspace(0, 1, k, dtype=x.dtype)[:-1, None, None]
    pts = torch.cat([(x[:-1][None] * (1 - t) + x[1:][None] * t).reshape(-1, x.shape[-1]), x[-1:]])
    return float(potential.energy(pts, count=False).max())


def solve(mb, beta, **kw):
    score = exact_boltzmann_score(mb.potential, mb.kT)
    kw = {"n_knots": 33, "n_iter": 60} | kw
    return density_geodesic(score, mb.endpoints["A"], mb.endpoints["B"], beta=beta, **kw)


def test_endpoints_fixed_and_knots_even(mb):
    r = solve(mb, 3.0)
    assert r.x.shape == (33, 2)
    assert torch.equal(r.x[0], mb.endpoints["A"]) and torch.equal(r.x[-1], mb.endpoints["B"])
    seg = (r.x[1:] - r.x[:-1]).norm(dim=1)
    assert float(seg.max() / seg.min()) < 1.01  # redistributed evenly in arc length
    assert r.n_knots_per_level[-1] == 33 and r.n_knots_per_level[0] < 33


def test_beta_zero_is_the_straight_line(mb):
    r = solve(mb, 0.0)
    s = torch.linspace(0, 1, 33, dtype=torch.float64)[:, None]
    line = (1 - s) * mb.endpoints["A"] + s * mb.endpoints["B"]
    assert torch.allclose(r.x, line, atol=1e-10)
    assert r.n_score_evals == 0


def test_large_beta_approaches_the_minimax_bound(mb):
    # Grid bottleneck bound at spacing 0.01: -40.67 (U(S1) = -40.66, benchmarks.md section 4).
    lb = grid_lower_bound(mb.potential, mb.endpoints["A"], mb.endpoints["B"], box=BOX, spacing=0.01).value
    s = torch.linspace(0, 1, 200, dtype=torch.float64)[:, None]
    straight = float(mb.potential.energy((1 - s) * mb.endpoints["A"] + s * mb.endpoints["B"], count=False).max())
    maxes = {beta: dense_max_energy(mb.potential, solve(mb, beta).x) for beta in (0.1, 1.0, 10.0)}
    assert maxes[10.0] < straight - 40.0  # the straight line crosses at about +12.7
    # A continuous path cannot beat the bound (0.05: grid resolution); large beta comes close.
    assert lb - 0.05 <= maxes[10.0] <= lb + 0.5
    assert maxes[0.1] > maxes[1.0] > maxes[10.0]


def test_objective_decreases(mb):
    r = solve(mb, 1.0)
    assert r.objective_history[-1] < r.objective_history[0] - 1.0
    assert r.history[-1] < 1e-3 * r.history[0]


def test_learned_score_of_a_gaussian_denoiser_is_exact():
    # Data N(0, I): the x0-denoiser is alpha x (alpha^2 + sigma^2 = 1) and the noisy marginal is
    # N(0, I), whose score is -x at every logSNR.
    score = learned_score(lambda x, lam: torch.sigmoid(lam).sqrt()[:, None] * x, logsnr=2.0)
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(score(x), -x, atol=1e-12)
    # Density geodesics of an isotropic Gaussian between points on a line through the mode are
    # that line (by symmetry); the path stays straight for any beta.
    r = density_geodesic(score, torch.tensor([-1.0, 0.0]).double(), torch.tensor([2.0, 0.0]).double(),
                         beta=5.0, n_knots=17, n_iter=50)
    assert float(r.x[:, 1].abs().max()) < 1e-10


def test_bad_input(mb):
    score = exact_boltzmann_score(mb.potential, mb.kT)
    a, b = mb.endpoints["A"], mb.endpoints["B"]
    with pytest.raises(ValueError, match="beta"):
        density_geodesic(score, a, b, beta=-1.0)
    with pytest.raises(ValueError, match="n_knots"):
        density_geodesic(score, a, b, beta=1.0, n_knots=2)
    with pytest.raises(ValueError, match="x_b"):
        density_geodesic(score, a, torch.zeros(3), beta=1.0)
    with pytest.raises(ValueError, match="score"):
        density_geodesic(None, a, b, beta=1.0)
    with pytest.raises(ValueError, match="logsnr"):
        learned_score(lambda x, lam: x, logsnr=40.0)
