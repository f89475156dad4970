"""Physics tests of the spacetime geometry against Gaussian mixtures with exact denoisers.

A Gaussian-mixture data distribution has a closed-form denoising posterior
(:mod:`tps.diffusion.gaussian`), so the expectation parameters
``mu = (E[x0|x_t], E[||x0||^2|x_t])`` and the Jeffreys divergence between two denoising
distributions are known exactly. The estimators of :mod:`tps.spacetime` only see the
denoiser as a black box (autograd divergence or Hutchinson probes) and must reproduce them.
All checks run in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

from tps.diffusion.gaussian import Gaussian, GaussianMixture, exact_jeffreys
from tps.spacetime import curve_energy, curve_length, expectation_parameters, natural_parameters

torch.set_num_threads(1)
DTYPE = torch.float64


def _gmm(dim: int, n_components: int = 3, seed: int = 0) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    means = 1.5 * torch.randn(n_components, dim, generator=g, dtype=DTYPE)
    variances = 0.3 + 0.7 * torch.rand(n_components, generator=g, dtype=DTYPE)
    weights = 0.5 + torch.rand(n_components, generator=g, dtype=DTYPE)
    return GaussianMixture(weights, means, variances)


def _smooth_curve(gmm: GaussianMixture, n_points: int, seed: int = 1):
    """A smooth spacetime curve: straight line in x plus sine bumps, logSNR dipping from 4 to about -2."""
    g = torch.Generator().manual_seed(seed)
    s = torch.linspace(0, 1, n_points, dtype=DTYPE)
    x_a, x_b = gmm.means[0], gmm.means[-1] + 1.0
    bumps = torch.randn(3, gmm.dim, generator=g, dtype=DTYPE)
    x = (1 - s)[:, None] * x_a + s[:, None] * x_b
    for j in range(3):
        x = x + torch.sin((j + 1) * math.pi * s)[:, None] * bumps[j]
    logsnr = 4.0 - 6.0 * torch.sin(math.pi * s) + 0.7 * torch.sin(3 * math.pi * s)
    return x, logsnr


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


# ---------------------------------------------------------------------------- natural parameters
def test_natural_parameters_by_hand():
    # lam = 0: alpha^2 = sigma^2 = 1/2, alpha/sigma^2 = sqrt(2), eta_t = -exp(0)/2 = -1/2.
    # lam = log 3: alpha^2 = 3/4, sigma^2 = 1/4, alpha/sigma^2 = 2 sqrt(3), eta_t = -3/2.
    x = torch.tensor([[1.0, -2.0], [0.5, 4.0]], dtype=DTYPE)
    logsnr = torch.tensor([0.0, math.log(3.0)], dtype=DTYPE)
    eta_x, eta_t = natural_parameters(x, logsnr)
    expected_x = torch.tensor([[math.sqrt(2.0), -2 * math.sqrt(2.0)], [math.sqrt(3.0), 8 * math.sqrt(3.0)]], dtype=DTYPE)
    torch.testing.assert_close(eta_x, expected_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(eta_t, torch.tensor([-0.5, -1.5], dtype=DTYPE), rtol=1e-12, atol=1e-12)


def test_natural_parameters_shapes_for_molecular_events():
    x = torch.randn(5, 4, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(0))
    logsnr = torch.linspace(-3, 3, 5, dtype=DTYPE)
    eta_x, eta_t = natural_parameters(x, logsnr)
    assert eta_x.shape == (5, 4, 3) and eta_t.shape == (5,)
    assert eta_x.dtype == DTYPE and eta_t.dtype == DTYPE
    # eta_t = -alpha^2 / (2 sigma^2) = -exp(lam) / 2 for every event shape.
    torch.testing.assert_close(eta_t, -0.5 * torch.exp(logsnr), rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------- expectation parameters
@pytest.mark.parametrize("lam", [-12.0, -4.0, 0.0, 4.0, 8.0, 12.0])
def test_expectation_parameters_match_closed_form(lam):
    """Autograd divergence through the black-box denoiser reproduces the GMM's closed form."""
    gmm = _gmm(dim=3)
    g = torch.Generator().manual_seed(2)
    alpha = math.sqrt(1 / (1 + math.exp(-lam)))
    # Noisy points of the right scale: alpha x0 + sigma eps with x0 from the data.
    x0 = gmm.sample(6, generator=g)
    x = alpha * x0 + math.sqrt(1 - alpha**2) * torch.randn(6, 3, generator=g, dtype=DTYPE)
    logsnr = torch.full((6,), lam, dtype=DTYPE)
    mu_x, mu_t = expectation_parameters(gmm, x, logsnr, divergence="exact")
    assert mu_x.shape == (6, 3) and mu_t.shape == (6,)
    exact_x, exact_t = gmm.denoise(x, logsnr), gmm.second_moment(x, logsnr)
    assert _rel(mu_x, exact_x) < 1e-6
    assert ((mu_t - exact_t).abs() / exact_t.abs()).max() < 1e-6


def test_expectation_parameters_mixed_logsnr_batch():
    gmm = _gmm(dim=4, seed=3)
    x = torch.randn(4, 4, dtype=DTYPE, generator=torch.Generator().manual_seed(1))
    logsnr = torch.tensor([-4.0, 0.0, 4.0, 8.0], dtype=DTYPE)
    mu_x, mu_t = expectation_parameters(gmm, x, logsnr)  # "exact" is the default
    assert _rel(mu_x, gmm.denoise(x, logsnr)) < 1e-6
    assert ((mu_t - gmm.second_moment(x, logsnr)).abs() / gmm.second_moment(x, logsnr)).max() < 1e-6


def test_hutchinson_second_moment_is_unbiased():
    """Mean of many single-probe estimates of mu_t lies within 3 standard errors of the exact value.

    d = 6 and points between mixture components at lam = 0, where the denoiser's Jacobian has
    large off-diagonal entries, so one Rademacher probe has a clearly non-zero variance.
    """
    gmm = _gmm(dim=6, seed=4)
    x = torch.stack([
        0.5 * (gmm.means[0] + gmm.means[1]),
        0.5 * (gmm.means[1] + gmm.means[2]),
        (gmm.means[0] + gmm.means[1] + gmm.means[2]) / 3,
    ]) * math.sqrt(0.5)
    logsnr = torch.zeros(3, dtype=DTYPE)
    exact_x, exact_t = gmm.expectation_parameters(x, logsnr)
    gen = torch.Generator().manual_seed(5)
    n_rep = 400
    estimates = []
    for _ in range(n_rep):
        mu_x, mu_t = expectation_parameters(gmm, x, logsnr, divergence="hutchinson", n_probes=1, generator=gen)
        estimates.append(mu_t.detach())
    # The space part needs no divergence: it is the denoiser itself.
    assert _rel(mu_x.detach(), exact_x) < 1e-10
    est = torch.stack(estimates)  # (n_rep, 3)
    std = est.std(dim=0)
    se = std / math.sqrt(n_rep)
    assert (std > 1e-3 * exact_t.abs()).all(), "estimator is trivially exact here; the test would not test it"
    assert ((est.mean(0) - exact_t).abs() <= 3 * se + 1e-12).all()

    # More probes average: the variance of a 16-probe estimate is 1/16 of a single probe's.
    many = torch.stack([
        expectation_parameters(gmm, x, logsnr, divergence="hutchinson", n_probes=16, generator=gen)[1].detach()
        for _ in range(100)
    ])
    assert (many.std(0) < 0.5 * std).all()
    assert ((many.mean(0) - exact_t).abs() <= 4 * many.std(0) / 10 + 1e-12).all()


def test_hutchinson_generator_reproducible():
    gmm = _gmm(dim=6, seed=4)
    x = torch.randn(3, 6, dtype=DTYPE, generator=torch.Generator().manual_seed(2))
    logsnr = torch.zeros(3, dtype=DTYPE)
    a = expectation_parameters(gmm, x, logsnr, divergence="hutchinson", generator=torch.Generator().manual_seed(7))[1]
    b = expectation_parameters(gmm, x, logsnr, divergence="hutchinson", generator=torch.Generator().manual_seed(7))[1]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------------------- Jeffreys divergence
def test_exact_jeffreys_equals_gaussian_kl_sum():
    """For one Gaussian the posteriors are N(pm, pv I); check (eta1-eta2).(mu1-mu2) = KL12 + KL21."""
    gauss = Gaussian(torch.tensor([0.3, -0.2, 1.0], dtype=DTYPE), 0.7)
    g = torch.Generator().manual_seed(8)
    x1, x2 = torch.randn(5, 3, generator=g, dtype=DTYPE), torch.randn(5, 3, generator=g, dtype=DTYPE)
    lam1 = torch.tensor([-4.0, 0.0, 2.0, 4.0, 8.0], dtype=DTYPE)
    lam2 = torch.tensor([-3.0, 1.0, 2.0, -1.0, 7.5], dtype=DTYPE)
    _, pm1, pv1 = gauss.posterior(x1, lam1)
    _, pm2, pv2 = gauss.posterior(x2, lam2)
    pm1, pm2, pv1, pv2 = pm1[:, 0], pm2[:, 0], pv1[:, 0], pv2[:, 0]
    d = 3

    def kl(ma, va, mb, vb):  # KL(N(ma, va I) || N(mb, vb I))
        return 0.5 * (d * va / vb + ((ma - mb) ** 2).sum(-1) / vb - d + d * torch.log(vb / va))

    expected = kl(pm1, pv1, pm2, pv2) + kl(pm2, pv2, pm1, pv1)
    torch.testing.assert_close(exact_jeffreys(gauss, x1, lam1, x2, lam2), expected, rtol=1e-10, atol=1e-12)


def test_jeffreys_terms_non_negative():
    gmm = _gmm(dim=5, seed=9)
    g = torch.Generator().manual_seed(10)
    x1, x2 = 2 * torch.randn(200, 5, generator=g, dtype=DTYPE), 2 * torch.randn(200, 5, generator=g, dtype=DTYPE)
    lam1 = -8 + 16 * torch.rand(200, generator=g, dtype=DTYPE)
    lam2 = -8 + 16 * torch.rand(200, generator=g, dtype=DTYPE)
    jeff = exact_jeffreys(gmm, x1, lam1, x2, lam2)
    assert (jeff >= -1e-10 * jeff.abs().max()).all()
    # Two-point curves: the energy estimator is (2-1)/2 * J, also non-negative.
    for i in range(5):
        e = curve_energy(gmm, torch.stack([x1[i], x2[i]]), torch.stack([lam1[i], lam2[i]]))
        assert e.dim() == 0
        torch.testing.assert_close(e.detach(), 0.5 * jeff[i], rtol=1e-6, atol=0)
        assert e >= 0


# ---------------------------------------------------------------------------- curve energy and length
def test_curve_energy_matches_closed_form_jeffreys_sum():
    gmm = _gmm(dim=3, seed=11)
    n = 24
    x, logsnr = _smooth_curve(gmm, n)
    jeff = exact_jeffreys(gmm, x[:-1], logsnr[:-1], x[1:], logsnr[1:])  # (n-1,)
    # The test is only discriminating if some per-coordinate products of the increments are
    # negative (a per-coordinate ReLU clamp would then change the value).
    eta_x, eta_t = natural_parameters(x, logsnr)
    mu_x, mu_t = gmm.expectation_parameters(x, logsnr)
    per_coord = torch.cat([eta_x.diff(dim=0) * mu_x.diff(dim=0), (eta_t.diff() * mu_t.diff())[:, None]], dim=1)
    assert (per_coord < 0).any()

    energy = curve_energy(gmm, x, logsnr, divergence="exact")
    expected_energy = (n - 1) / 2 * jeff.sum()
    assert energy.dim() == 0
    assert abs(float(energy) - float(expected_energy)) < 1e-6 * float(expected_energy)

    length = curve_length(gmm, x, logsnr, divergence="exact")
    expected_length = jeff.clamp_min(0).sqrt().sum()
    assert length.dim() == 0
    assert abs(float(length) - float(expected_length)) < 1e-6 * float(expected_length)


def test_length_energy_cauchy_schwarz():
    """Discrete Cauchy-Schwarz: (sum_n sqrt(J_n))^2 <= (N-1) sum_n J_n, i.e. L^2 <= 2 E."""
    gmm = _gmm(dim=3, seed=12)
    x, logsnr = _smooth_curve(gmm, 16, seed=13)
    e = float(curve_energy(gmm, x, logsnr))
    l = float(curve_length(gmm, x, logsnr))
    assert l**2 <= 2 * e * (1 + 1e-12)
    assert l**2 < 0.999 * 2 * e  # strict: the increments of this curve are far from equal


def test_curve_energy_gradient_matches_finite_differences():
    """Geodesic solvers descend curve_energy: its autograd gradient (through the divergence) must be right."""
    gmm = _gmm(dim=3, seed=14)
    x, logsnr = _smooth_curve(gmm, 8, seed=15)
    x = x.clone().requires_grad_(True)
    logsnr = logsnr.clone().requires_grad_(True)
    gx, gl = torch.autograd.grad(curve_energy(gmm, x, logsnr), (x, logsnr))
    h = 1e-6
    for n, i in [(3, 0), (5, 2)]:
        xp, xm = x.detach().clone(), x.detach().clone()
        xp[n, i] += h
        xm[n, i] -= h
        fd = (curve_energy(gmm, xp, logsnr.detach()) - curve_energy(gmm, xm, logsnr.detach())) / (2 * h)
        assert abs(float(fd) - float(gx[n, i])) < 1e-5 * max(1.0, abs(float(fd)))
    for n in (2, 4):
        lp, lm = logsnr.detach().clone(), logsnr.detach().clone()
        lp[n] += h
        lm[n] -= h
        fd = (curve_energy(gmm, x.detach(), lp) - curve_energy(gmm, x.detach(), lm)) / (2 * h)
        assert abs(float(fd) - float(gl[n])) < 1e-5 * max(1.0, abs(float(fd)))


# ---------------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    gmm = _gmm(dim=3)
    x = torch.randn(4, 3, dtype=DTYPE, generator=torch.Generator().manual_seed(3))
    logsnr = torch.zeros(4, dtype=DTYPE)
    x_nan = x.clone()
    x_nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"\bx\b"):
        natural_parameters(x_nan, logsnr)
    with pytest.raises(ValueError, match=r"\bx\b"):
        expectation_parameters(gmm, x_nan, logsnr)
    with pytest.raises(ValueError, match=r"\bx\b"):
        curve_energy(gmm, x_nan, logsnr)
    for bad in (torch.tensor([0.0, 0.0, 13.0, 0.0], dtype=DTYPE), torch.tensor([-12.5, 0.0, 0.0, 0.0], dtype=DTYPE)):
        with pytest.raises(ValueError, match="logsnr"):
            natural_parameters(x, bad)
        with pytest.raises(ValueError, match="logsnr"):
            curve_energy(gmm, x, bad)
    with pytest.raises(ValueError, match="logsnr"):
        natural_parameters(x, torch.zeros(3, dtype=DTYPE))  # one logSNR per point
    with pytest.raises(ValueError, match="logsnr"):
        natural_parameters(x, torch.tensor([0.0, float("nan"), 0.0, 0.0], dtype=DTYPE))

    def wrong_shape(x, logsnr):
        return x[:, :2]

    with pytest.raises((ValueError, TypeError), match="denoiser"):
        expectation_parameters(wrong_shape, x, logsnr)
    with pytest.raises((ValueError, TypeError), match="denoiser"):
        curve_energy(wrong_shape, x, logsnr)
    with pytest.raises((ValueError, TypeError), match="divergence"):
        expectation_parameters(gmm, x, logsnr, divergence="approximate")


# ---------------------------------------------------------------------------- float32, batches of curves
def test_float32_matches_float64_closed_form():
    gmm = _gmm(dim=3, seed=16)
    x, logsnr = _smooth_curve(gmm, 12, seed=17)
    mu_x, mu_t = expectation_parameters(gmm, x.float(), logsnr.float())
    assert mu_x.dtype == torch.float32 and mu_t.dtype == torch.float32
    exact_x, exact_t = gmm.expectation_parameters(x, logsnr)
    assert _rel(mu_x.double(), exact_x) < 1e-4
    assert ((mu_t.double() - exact_t).abs() / exact_t.abs()).max() < 1e-4
    e32 = curve_energy(gmm, x.float(), logsnr.float())
    assert e32.dtype == torch.float32
    assert abs(float(e32) / float(curve_energy(gmm, x, logsnr)) - 1) < 1e-3


def test_curve_energy_of_a_batch_of_curves():
    gmm = _gmm(dim=3, seed=18)
    curves = [_smooth_curve(gmm, 10, seed=s) for s in (19, 20)]
    x = torch.stack([c[0] for c in curves])
    logsnr = torch.stack([c[1] for c in curves])
    energies = curve_energy(gmm, x, logsnr)
    assert energies.shape == (2,)
    for p in range(2):
        torch.testing.assert_close(energies[p], curve_energy(gmm, x[p], logsnr[p]), rtol=1e-12, atol=0)


def test_kl_along_curve_matches_gaussian_closed_form():
    """method.md section 3: KL(z*||gamma_k) - KL(z*||gamma_0) = int d eta . (mu(gamma) - mu*), per Gaussian KL."""
    from tps.spacetime import kl_along_curve

    gauss = Gaussian(torch.tensor([0.4, -0.2, 0.1], dtype=DTYPE), 0.6)
    x, logsnr = _smooth_curve(gauss, 400, seed=21)
    x_star = torch.tensor([[0.3, 0.5, -0.4]], dtype=DTYPE)
    lam_star = torch.tensor([4.0], dtype=DTYPE)
    eta_x, eta_t = natural_parameters(x, logsnr)
    mu_x, mu_t = gauss.expectation_parameters(x, logsnr)
    ms_x, ms_t = gauss.expectation_parameters(x_star, lam_star)
    kl_rel = kl_along_curve(eta_x[None], eta_t[None], mu_x[None], mu_t[None], ms_x[0], ms_t[0])[0]

    _, pm, pv = gauss.posterior(x, logsnr)
    _, pm_s, pv_s = gauss.posterior(x_star, lam_star)
    pm, pv, pm_s, pv_s = pm[:, 0], pv[:, 0], pm_s[0, 0], pv_s[0, 0]
    d = gauss.dim
    kl = 0.5 * (d * pv_s / pv + ((pm_s - pm) ** 2).sum(-1) / pv - d + d * torch.log(pv / pv_s))  # KL(p* || p_n)
    expected = kl - kl[0]
    assert kl_rel.shape == (400,)
    assert float((kl_rel - expected).abs().max()) < 1e-3 * float(expected.abs().max())
