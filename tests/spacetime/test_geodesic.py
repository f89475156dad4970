"""Geodesic solver tests on a single isotropic Gaussian data distribution in d = 2.

Why this case has a known answer
--------------------------------
For data ``N(m, v I)`` the denoising distribution at ``(x, lam)`` is ``N(pm, pv I)`` with
``pv = v / (1 + v exp(lam))`` and ``pm = (sigma^2 m + alpha v x) / (alpha^2 v + sigma^2)``
(:class:`tps.diffusion.gaussian.Gaussian`). The map ``(x, lam) -> (pm, sqrt(pv))`` is a
diffeomorphism onto ``{sqrt(pv) < sqrt(v)}``, and the Fisher-Rao metric of isotropic Gaussians
is ``ds^2 = ||d pm||^2 / pv + 2 d (d sqrt(pv))^2 / pv``: with ``u = pm / sqrt(2 d)`` it is
``2 d`` times the hyperbolic upper half-space metric. So the spacetime geodesic between two
points is a hyperbolic geodesic -- a semicircle in the ``(u, sqrt(pv))`` half-plane
orthogonal to the ``pv = 0`` boundary -- and its length is
``sqrt(2 d) arccosh(1 + (||du||^2 + d(sqrt pv)^2) / (2 sqrt(pv_a pv_b)))``.

What the geodesic must satisfy
------------------------------
- Endpoints ``(x_a, lam_a)`` and ``(x_b, lam_b)`` are fixed exactly (the spline correction
  vanishes at both ends).
- The solver minimises the curve energy, so it never returns a curve of higher energy than
  its straight-line start; the returned energy is the best one in its history.
- The metric is invariant under ``x -> 2 alpha(lam) m - x`` (a point reflection of every
  denoising distribution about the data mean), and under reflections of the data space that
  fix ``m``. For ``m = 0`` and ``x_b = -x_a`` the geodesic therefore satisfies
  ``x(s) = -x(1 - s)``, ``lam(s) = lam(1 - s)``, and stays on the line through the endpoints.
- Reversing the endpoints reverses the curve.
- The semicircle rises: the geodesic dips to lower logSNR (more noise, wider posterior) in
  the middle. Moving the posterior mean by ``Delta`` at posterior width ``sigma_0`` costs
  ``Delta / sigma_0`` in length, while widening the posterior to ``sigma`` costs only
  ``sqrt(2 d) log(sigma / sigma_0)``: when the endpoints are far apart relative to the
  posterior width, it is cheaper to forget (add noise), move while the posterior is wide, and
  re-create the detail than to translate a narrow distribution. The dip deepens with the
  separation.
- Solving a batch of endpoint pairs gives the same curves as solving them one by one.
- The edit distance is a distance: symmetric, zero for identical endpoints, positive
  otherwise, and it obeys the triangle inequality.
- For the discrete estimators ``E = (N-1)/2 sum_n J_n`` and ``L = sum_n sqrt(J_n)`` (``J_n``
  the Jeffreys divergence of segment n), Cauchy-Schwarz gives ``L^2 <= (N-1) sum_n J_n = 2 E``
  exactly, with equality iff all ``J_n`` are equal (a constant-speed curve, which an energy
  minimiser approaches).
"""

from __future__ import annotations

import math

import pytest
import torch

from tps.diffusion.gaussian import Gaussian, exact_jeffreys
from tps.spacetime import curve_energy, curve_length, edit_distance, geodesic

torch.set_num_threads(1)
DTYPE = torch.float64
LAM = 4.0  # endpoint anchor logSNR (method.md section 4)
N_POINTS = 48
MAX_ITER = 60


def _solve(gauss, x_a, x_b, *, logsnr=LAM, n_points=N_POINTS, **kw):
    kw.setdefault("max_iter", MAX_ITER)
    return geodesic(gauss, x_a, x_b, logsnr=logsnr, n_points=n_points, **kw)


@pytest.fixture(scope="module")
def centred():
    return Gaussian(torch.zeros(2, dtype=DTYPE), 1.0)


@pytest.fixture(scope="module")
def offset():
    return Gaussian(torch.tensor([0.5, -0.3], dtype=DTYPE), 0.8)


def _posterior_point(gauss, x, lam):
    _, pm, pv = gauss.posterior(x[None], torch.tensor([lam], dtype=DTYPE))
    return pm[0, 0], float(pv[0, 0].sqrt())


def hyperbolic_distance(gauss, x_a, x_b, lam_a, lam_b) -> float:
    """Closed-form Fisher-Rao distance between the denoising distributions at two points."""
    k = math.sqrt(2 * gauss.dim)
    pa, sa = _posterior_point(gauss, x_a, lam_a)
    pb, sb = _posterior_point(gauss, x_b, lam_b)
    du2 = float(((pa - pb) ** 2).sum()) / k**2
    return k * math.acosh(1 + (du2 + (sa - sb) ** 2) / (2 * sa * sb))


def exact_geodesic(gauss, x_a, x_b, lam_a, lam_b, n_points):
    """The constant-speed hyperbolic geodesic mapped back to spacetime ``(x, lam)``.

    In the half-plane spanned by ``u`` along ``pm_b - pm_a`` and ``sqrt(pv)``, the geodesic is
    ``u = c + R tanh(tau)``, ``sqrt(pv) = R / cosh(tau)`` with ``tau`` linear in ``s``.

    Returns ``x (n_points, d)``, ``lam (n_points,)`` and the distance.
    """
    k = math.sqrt(2 * gauss.dim)
    v, m = gauss.variance, gauss.means[0]
    pa, sa = _posterior_point(gauss, x_a, lam_a)
    pb, sb = _posterior_point(gauss, x_b, lam_b)
    e = (pb - pa) / (pb - pa).norm()
    ub = float((pb - pa).norm()) / k  # u_a = 0
    c = (ub**2 + sb**2 - sa**2) / (2 * ub)
    R = math.sqrt(c**2 + sa**2)
    tau_a, tau_b = math.atanh(-c / R), math.atanh((ub - c) / R)
    tau = tau_a + torch.linspace(0, 1, n_points, dtype=DTYPE) * (tau_b - tau_a)
    pm = pa + (k * (c + R * torch.tanh(tau)))[:, None] * e
    pv = (R / torch.cosh(tau)) ** 2
    lam = torch.log(1 / pv - 1 / v)
    a2, s2 = torch.sigmoid(lam), torch.sigmoid(-lam)
    x = (pm * (a2 * v + s2)[:, None] - s2[:, None] * m) / (a2.sqrt()[:, None] * v)
    return x, lam, k * abs(tau_b - tau_a)


# ---------------------------------------------------------------------------- the reference itself
def test_hyperbolic_distance_matches_jeffreys_for_close_points(offset):
    """Sanity check of the closed form: J(z, z + dz) = d_FR(z, z + dz)^2 to leading order."""
    x = torch.tensor([0.7, -0.2], dtype=DTYPE)
    for dx, dlam in [((1e-3, 0.0), 0.0), ((0.0, 0.0), 1e-3), ((4e-4, -7e-4), 6e-4)]:
        x2 = x + torch.tensor(dx, dtype=DTYPE)
        jeff = float(exact_jeffreys(offset, x[None], torch.tensor([2.0], dtype=DTYPE), x2[None],
                                    torch.tensor([2.0 + dlam], dtype=DTYPE))[0])
        dist = hyperbolic_distance(offset, x, x2, 2.0, 2.0 + dlam)
        assert abs(jeff / dist**2 - 1) < 1e-2


def test_exact_geodesic_reference_hits_endpoints(offset):
    x_a, x_b = torch.tensor([1.9, 0.6], dtype=DTYPE), torch.tensor([-0.9, -1.4], dtype=DTYPE)
    x, lam, dist = exact_geodesic(offset, x_a, x_b, 4.0, 6.0, 33)
    torch.testing.assert_close(x[0], x_a, rtol=0, atol=1e-12)
    torch.testing.assert_close(x[-1], x_b, rtol=0, atol=1e-12)
    assert abs(lam[0] - 4.0) < 1e-10 and abs(lam[-1] - 6.0) < 1e-10
    # Constant speed: the discrete length of the sampled curve converges to the distance.
    assert abs(float(curve_length(offset, x, lam)) / dist - 1) < 1e-2


# ---------------------------------------------------------------------------- solver properties
@pytest.mark.parametrize("logsnr", [LAM, (4.0, 6.0)])
def test_endpoints_fixed_exactly(offset, logsnr):
    x_a, x_b = torch.tensor([1.9, 0.6], dtype=DTYPE), torch.tensor([-0.9, -1.4], dtype=DTYPE)
    r = _solve(offset, x_a, x_b, logsnr=logsnr)
    lam_a, lam_b = (logsnr, logsnr) if isinstance(logsnr, float) else logsnr
    assert r.x.shape == (N_POINTS, 2) and r.logsnr.shape == (N_POINTS,)
    assert torch.equal(r.x[0], x_a) and torch.equal(r.x[-1], x_b)
    assert float(r.logsnr[0]) == lam_a and float(r.logsnr[-1]) == lam_b


@pytest.mark.parametrize("starts", ["auto", ()])
@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_energy_never_increased(offset, method, starts):
    x_a, x_b = torch.tensor([1.9, 0.6], dtype=DTYPE), torch.tensor([-0.9, -1.4], dtype=DTYPE)
    kw = {"n_steps": 40, "lr": 0.1} if method == "adam" else {}
    r = _solve(offset, x_a, x_b, n_points=32, method=method, init_dips=starts, **kw)
    # The initial curve is the straight line at constant logSNR.
    s = torch.linspace(0, 1, 32, dtype=DTYPE)[:, None]
    line = (1 - s) * x_a + s * x_b
    initial = float(curve_energy(offset, line, torch.full((32,), LAM, dtype=DTYPE)))
    assert abs(float(r.initial_energy) - initial) < 1e-9 * initial
    assert float(r.energy) <= float(r.initial_energy)
    assert float(r.energy) < 0.5 * initial  # it actually optimised (the line is far from geodesic)
    if starts == ():  # one start: the history is that of the returned curve's optimisation
        assert abs(r.history[0] - initial) < 1e-9 * initial
        # The returned curve is the best one seen.
        assert abs(min(r.history) - float(r.energy)) <= 1e-9 * float(r.energy)
    # Its honest energy is what curve_energy says.
    recomputed = float(curve_energy(offset, r.x, r.logsnr))
    assert abs(recomputed - float(r.energy)) <= 1e-9 * recomputed


def test_symmetric_endpoints_give_symmetric_geodesic(centred):
    # Data mean 0, x_b = -x_a: x(s) = -x(1-s), lam(s) = lam(1-s), and the curve stays on the
    # line through the endpoints (reflection across that line fixes both endpoints).
    x_a = torch.tensor([1.2, 0.9], dtype=DTYPE)
    r = _solve(centred, x_a, -x_a)
    scale = float(x_a.norm())
    assert float((r.x + r.x.flip(0)).abs().max()) < 1e-4 * scale
    assert float((r.logsnr - r.logsnr.flip(0)).abs().max()) < 1e-4
    normal = torch.tensor([-0.9, 1.2], dtype=DTYPE) / 1.5
    assert float((r.x @ normal).abs().max()) < 1e-4 * scale
    # The midpoint is the data mean: the reflection's fixed point.
    assert float(r.x[N_POINTS // 2 - 1 : N_POINTS // 2 + 1].mean(0).norm()) < 1e-4 * scale


def test_reversing_endpoints_reverses_curve(offset):
    # a property of the geodesic, so of a converged solve (the default multi-start's batched
    # coarse stage is not bit-symmetric under reversal, only its converged result is)
    x_a, x_b = torch.tensor([1.9, 0.6], dtype=DTYPE), torch.tensor([-0.9, -1.4], dtype=DTYPE)
    forward = _solve(offset, x_a, x_b, logsnr=(4.0, 6.0), max_iter=300)
    backward = _solve(offset, x_b, x_a, logsnr=(6.0, 4.0), max_iter=300)
    assert forward.diagnostics.converged and backward.diagnostics.converged
    assert float((forward.x - backward.x.flip(0)).abs().max()) < 1e-3
    assert float((forward.logsnr - backward.logsnr.flip(0)).abs().max()) < 1e-3
    assert abs(float(forward.energy) / float(backward.energy) - 1) < 1e-4


def test_geodesic_dips_to_lower_logsnr_when_endpoints_are_far(centred):
    near = _solve(centred, torch.tensor([0.15, 0.0], dtype=DTYPE), torch.tensor([-0.15, 0.0], dtype=DTYPE))
    x_far = torch.tensor([1.5, 0.0], dtype=DTYPE)
    far = _solve(centred, x_far, -x_far)
    # Endpoints 3 data standard deviations apart, posterior width at lam = 4 only 0.13:
    # the geodesic forgets most of the detail in the middle.
    assert float(far.logsnr.min()) < LAM - 3.0
    assert abs(int(far.logsnr.argmin()) - (N_POINTS - 1) / 2) <= 1
    assert float(near.logsnr.min()) < LAM  # a hyperbolic geodesic always rises a little...
    assert float(far.logsnr.min()) < float(near.logsnr.min()) - 2.0  # ...and more the farther apart
    # Depth of the dip versus the closed form (loose: the 10-node spline cannot follow the
    # exact logSNR profile; the energy is flat in that direction).
    _, lam_exact, _ = exact_geodesic(centred, x_far, -x_far, LAM, LAM, N_POINTS)
    assert abs(float(far.logsnr.min()) - float(lam_exact.min())) < 0.75


@pytest.mark.parametrize("logsnr", [LAM, (4.0, 6.0)])
def test_energy_and_length_match_hyperbolic_closed_form(offset, logsnr):
    x_a, x_b = torch.tensor([1.9, 0.6], dtype=DTYPE), torch.tensor([-0.9, -1.4], dtype=DTYPE)
    lam_a, lam_b = (logsnr, logsnr) if isinstance(logsnr, float) else logsnr
    x_ref, lam_ref, dist = exact_geodesic(offset, x_a, x_b, lam_a, lam_b, N_POINTS)
    r = _solve(offset, x_a, x_b, logsnr=logsnr, max_iter=150)
    length = float(curve_length(offset, r.x, r.logsnr))
    assert abs(length / dist - 1) < 5e-3
    # Against the discrete energy of the sampled exact geodesic (same discretisation bias).
    e_ref = float(curve_energy(offset, x_ref, lam_ref))
    assert abs(float(r.energy) / e_ref - 1) < 5e-3
    # Coarse pointwise agreement (spline parametrisation limits the logSNR profile).
    assert float((r.x - x_ref).abs().max()) < 0.6
    assert float((r.logsnr - lam_ref).abs().max()) < 1.0


def test_batched_solve_matches_separate_solves(offset):
    g = torch.Generator().manual_seed(0)
    x_a = torch.randn(3, 2, generator=g, dtype=DTYPE)
    x_b = torch.randn(3, 2, generator=g, dtype=DTYPE) + torch.tensor([1.0, 0.0], dtype=DTYPE)
    # The batch is one optimisation of the summed energy; run it to convergence so that the
    # comparison tests the geometry, not where L-BFGS happened to stop.
    batch = _solve(offset, x_a, x_b, n_points=24, max_iter=200)
    assert batch.x.shape == (3, 24, 2) and batch.logsnr.shape == (3, 24) and batch.energy.shape == (3,)
    for p in range(3):
        single = _solve(offset, x_a[p], x_b[p], n_points=24, max_iter=200)
        assert abs(float(batch.energy[p]) / float(single.energy) - 1) < 1e-6
        assert float((batch.x[p] - single.x).abs().max()) < 5e-3
        assert float((batch.logsnr[p] - single.logsnr).abs().max()) < 1e-2


def test_length_energy_cauchy_schwarz(offset):
    """L^2 <= 2E for every discrete curve; near equality for the (constant-speed) geodesic."""
    x_a, x_b = torch.tensor([1.9, 0.6], dtype=DTYPE), torch.tensor([-0.9, -1.4], dtype=DTYPE)
    r = _solve(offset, x_a, x_b, logsnr=(4.0, 6.0))
    length, energy = float(curve_length(offset, r.x, r.logsnr)), float(r.energy)
    assert length**2 <= 2 * energy * (1 + 1e-12)
    assert length**2 > 0.97 * 2 * energy
    # A badly parametrised curve (same path, non-uniform speed): strict inequality.
    s = torch.linspace(0, 1, N_POINTS, dtype=DTYPE) ** 2
    idx = (s * (N_POINTS - 1)).round().long()
    x_slow, lam_slow = r.x[idx], r.logsnr[idx]
    l2, e2 = float(curve_length(offset, x_slow, lam_slow)), float(curve_energy(offset, x_slow, lam_slow))
    assert l2**2 < 0.95 * 2 * e2


def test_hutchinson_solve_equals_exact_for_isotropic_gaussian(offset):
    """The denoiser's Jacobian is c(lam) I here, so v.(J v) = c d for every Rademacher probe:
    the Hutchinson geodesic must coincide with the exact one."""
    x_a, x_b = torch.tensor([1.9, 0.6], dtype=DTYPE), torch.tensor([-0.9, -1.4], dtype=DTYPE)
    exact = _solve(offset, x_a, x_b, n_points=32)
    hutch = _solve(offset, x_a, x_b, n_points=32, divergence="hutchinson", n_probes=1)
    assert abs(float(hutch.energy) / float(exact.energy) - 1) < 1e-8
    assert float((hutch.x - exact.x).abs().max()) < 1e-6


# ---------------------------------------------------------------------------- edit distance
def test_edit_distance_is_a_distance(offset):
    a = torch.tensor([1.2, 0.4], dtype=DTYPE)
    b = torch.tensor([-0.6, -1.0], dtype=DTYPE)
    c = torch.tensor([0.3, 1.5], dtype=DTYPE)
    kw = dict(logsnr=LAM, n_points=32, max_iter=MAX_ITER)
    d_ab = float(edit_distance(offset, a, b, **kw))
    d_ba = float(edit_distance(offset, b, a, **kw))
    d_bc = float(edit_distance(offset, b, c, **kw))
    d_ac = float(edit_distance(offset, a, c, **kw))
    d_aa = float(edit_distance(offset, a, a, **kw))
    assert d_ab > 0 and d_bc > 0 and d_ac > 0
    assert abs(d_ab - d_ba) < 1e-4 * d_ab
    assert d_aa < 1e-8
    assert d_ac <= d_ab + d_bc
    assert abs(d_ab / hyperbolic_distance(offset, a, b, LAM, LAM) - 1) < 1e-2


# ---------------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument(offset):
    x_a, x_b = torch.tensor([1.0, 0.0], dtype=DTYPE), torch.tensor([-1.0, 0.0], dtype=DTYPE)
    nan = torch.tensor([float("nan"), 0.0], dtype=DTYPE)
    with pytest.raises(ValueError, match="x_a"):
        geodesic(offset, nan, x_b, n_points=8, max_iter=2)
    with pytest.raises(ValueError, match="x_b"):
        geodesic(offset, x_a, nan, n_points=8, max_iter=2)
    with pytest.raises(ValueError, match="x_a|x_b"):
        geodesic(offset, x_a, torch.zeros(3, dtype=DTYPE), n_points=8, max_iter=2)
    with pytest.raises(ValueError, match="x_a|x_b"):
        edit_distance(offset, x_a, torch.zeros(2, 2, 2, dtype=DTYPE), n_points=8, max_iter=2)
    for bad in (12.5, -13.0, (4.0, 20.0), float("nan")):
        with pytest.raises(ValueError, match="logsnr"):
            geodesic(offset, x_a, x_b, logsnr=bad, n_points=8, max_iter=2)
    with pytest.raises(ValueError, match="logsnr"):
        edit_distance(offset, x_a, x_b, logsnr=15.0, n_points=8, max_iter=2)

    def wrong_shape(x, logsnr):
        return x[..., :1]

    def not_a_tensor(x, logsnr):
        return x.tolist()

    for bad_denoiser in (wrong_shape, not_a_tensor):
        with pytest.raises((ValueError, TypeError), match="denoiser"):
            geodesic(bad_denoiser, x_a, x_b, n_points=8, max_iter=2)
