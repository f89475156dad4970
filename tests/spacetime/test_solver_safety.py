"""The geodesic solver is safe with any denoiser (issue 11, items 1-3).

- A denoiser trained only on logSNR in [0, 8] carries that domain (``train_denoiser`` records
  it, checkpoints keep it); the default solve keeps every curve point inside it, its honest
  energy is non-negative and within a few percent of the exact geodesic energy of the data
  (a Gaussian mixture, whose exact denoiser gives the truth), and the curve it finds is
  near-optimal in the exact metric too. Evaluating a curve outside the domain is refused.
- A denoiser whose Jacobian is not positive semi-definite in a region (the exact mixture
  denoiser minus a bump ``k w(x) x`` around the origin, through which the straight line runs)
  makes segment products negative there: the diagnostics flag it, a ``GeodesicWarning``
  fires, and ``strict=True`` raises.
- Bad ``logsnr_range`` (empty, reversed, excluding the endpoints' logSNR) is one clear
  ``ValueError`` naming the argument; a raw callable without a range gets the documented
  default around the endpoints and one warning.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from tps.diffusion import AdaptiveLogSNRSampler, AffineScaling, DiffusionModel, MLPConfig, MLPDenoiser, \
    TrainingConfig, train_denoiser
from tps.diffusion.gaussian import GaussianMixture
from tps.spacetime import DegenerateGeodesicError, GeodesicWarning, LogSNRRangeWarning, curve_energy, geodesic

torch.set_num_threads(1)
SMALL = dict(n_points=32, n_nodes=6, max_iter=100)
A = torch.tensor([-1.0, 0.0], dtype=torch.float64)
B = torch.tensor([1.0, 0.0], dtype=torch.float64)


def _broad_mixture():
    return GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.3, 0.3])


@pytest.fixture(scope="module")
def narrow_net():
    """Small MLP trained on the broad mixture with logSNR drawn from [0, 8] only (a few seconds)."""
    torch.manual_seed(0)
    data = _broad_mixture().sample(4000, generator=torch.Generator().manual_seed(0)).float()
    net = MLPDenoiser(MLPConfig(dim=2, hidden=32, n_blocks=2))
    train_denoiser(net, data, config=TrainingConfig(n_steps=400, batch_size=256, warmup_steps=20, holdout_per_band=64),
                   progress=False, sampler=AdaptiveLogSNRSampler(low=0.0, high=8.0))
    return DiffusionModel(net, AffineScaling.identity((2,))).freeze()


def test_narrow_range_model_default_call_stays_inside_and_matches_the_exact_geodesic(narrow_net, tmp_path):
    model = DiffusionModel.load(narrow_net.save(tmp_path / "narrow.pt")).freeze()  # the domain travels
    assert model.logsnr_range == (0.0, 8.0) and model.logsnr_range_source == "recorded"
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeodesicWarning)
        r = geodesic(model.denoiser, A.float(), B.float(), logsnr=4.0, **SMALL)
    assert r.diagnostics.range_source == "model" and r.diagnostics.logsnr_range == (0.0, 8.0)
    assert 0.0 <= float(r.logsnr.min()) and float(r.logsnr.max()) <= 8.0
    assert float(r.logsnr.min()) < 2.0  # it did dip (the straight line is far from the geodesic)
    honest = float(curve_energy(model.denoiser.double(), r.x.double(), r.logsnr.double()))
    model.denoiser.float()
    assert honest >= 0 and abs(honest - float(r.energy)) < 1e-3 * honest
    truth = _broad_mixture()
    exact = geodesic(truth, A, B, logsnr=4.0, logsnr_range=(0.0, 8.0), **SMALL)
    e_true = float(exact.energy)
    assert abs(honest - e_true) < 0.05 * e_true
    # the learned curve is near-optimal in the exact metric as well
    assert float(curve_energy(truth, r.x.double(), r.logsnr.double())) < 1.02 * e_true
    # a curve outside the trained domain is refused rather than evaluated by extrapolation
    outside = r.logsnr.clone()
    outside[len(outside) // 2] = -3.0
    with pytest.raises(ValueError, match="logsnr: .*outside the denoiser's domain"):
        curve_energy(model.denoiser, r.x, outside)


def test_old_checkpoints_get_the_documented_fallback_range_with_identical_weights():
    from tps import pretrained

    model = pretrained.load("muller-brown")
    assert model.logsnr_range == (-12.0, 12.0) and model.logsnr_range_source == "fallback"
    payload = torch.load(pretrained.path("muller-brown"), map_location="cpu", weights_only=True)
    assert "logsnr_range" not in payload
    for k, v in payload["state_dict"].items():
        assert torch.equal(model.network.state_dict()[k], v)


class _NonPSD:
    """The exact mixture denoiser minus ``k w(x) (x - c)``, ``w`` a Gaussian bump of width 0.3 at the
    start point ``c = A``: near it the Jacobian is ``J_exact - k I``, negative definite for large ``k``,
    and every curve from ``A`` must cross that region."""

    logsnr_range = (-12.0, 12.0)

    def __init__(self, k):
        self.k, self.gmm = k, GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])

    def __call__(self, x, lam):
        c = A.to(x)
        w = torch.exp(-((x - c) ** 2).sum(-1, keepdim=True) / (2 * 0.3 ** 2))
        return self.gmm(x, lam) - self.k * w * (x - c)


def test_non_psd_jacobian_is_flagged_warned_and_strict_raises():
    small = dict(n_points=32, n_nodes=6, max_iter=40)
    with pytest.warns(GeodesicWarning, match="negative segment products .*not positive semi-definite"):
        r = geodesic(_NonPSD(10.0), A, B, logsnr=4.0, **small)
    d = r.diagnostics
    assert not d.ok and d.negative_fraction > 0.05
    assert 0 <= float(r.objective) and float(r.energy) < float(r.objective)  # honest energy; bounded objective
    assert float(r.energy) > 0  # the default objective does not seek the non-PSD region ...
    with pytest.warns(GeodesicWarning):  # ... which the plain objective (the old default) exploits without bound
        plain = geodesic(_NonPSD(10.0), A, B, logsnr=4.0, clamp=False, **dict(small, init_dips=()))
    assert float(plain.energy) < -1e3 and plain.diagnostics.negative_fraction > 0.5
    assert len(d.energy_history) == d.evaluations and d.iterations > 0
    with pytest.raises(DegenerateGeodesicError, match="negative segment products"):
        geodesic(_NonPSD(10.0), A, B, logsnr=4.0, strict=True, **small)
    # the exact denoiser itself is not flagged
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeodesicWarning)
        ok = geodesic(_NonPSD(0.0), A, B, logsnr=4.0, strict=True, **small)
    assert ok.diagnostics.ok and ok.diagnostics.negative_fraction == 0.0


@pytest.mark.parametrize("rng, match", [((4.0, 4.0), "lo < hi"), ((8.0, 0.0), "increasing order"),
                                        ((5.0, 8.0), "excludes the endpoints' logSNR 4"),
                                        ((0.0, float("nan")), "finite"), ((1.0,), "pair")])
def test_bad_logsnr_range_is_one_clear_error(rng, match):
    with pytest.raises(ValueError, match=r"^logsnr_range: .*" + match):
        geodesic(_broad_mixture(), A, B, logsnr=4.0, logsnr_range=rng, n_points=8, max_iter=1)


def test_raw_callable_gets_default_range_around_endpoints_and_one_warning():
    gmm = _broad_mixture()

    def raw(x, lam):
        return gmm(x, lam)

    with pytest.warns(LogSNRRangeWarning, match="logsnr_range=\\(lo, hi\\)"):
        r = geodesic(raw, A, B, logsnr=(3.0, 5.0), n_points=12, n_nodes=4, max_iter=5)
    assert r.diagnostics.logsnr_range == (-1.0, 9.0) and r.diagnostics.range_source == "default"
    with warnings.catch_warnings():
        warnings.simplefilter("error", LogSNRRangeWarning)  # one-time
        r2 = geodesic(raw, A, B, logsnr=4.0, n_points=12, n_nodes=4, max_iter=5, logsnr_range=(-2.0, 10.0))
        geodesic(raw, A, B, logsnr=4.0, n_points=12, n_nodes=4, max_iter=5)
    assert r2.diagnostics.range_source == "argument"


def test_default_solve_keeps_the_straight_geodesic_between_noise_levels_of_one_point():
    """Centred Gaussian data, one data point (the mean) at logSNR 2 and 6: in the hyperbolic
    picture the geodesic is the vertical line (posterior mean fixed), so x stays at 0 and the
    logSNR moves monotonically; the dipped starts of the default multi-start must not win."""
    from tps.diffusion.gaussian import Gaussian

    gauss = Gaussian(torch.zeros(2, dtype=torch.float64), 1.0)
    zero = torch.zeros(2, dtype=torch.float64)
    r = geodesic(gauss, zero, zero, logsnr=(2.0, 6.0), n_points=24, n_nodes=6, max_iter=100)
    assert len(r.diagnostics.starts) > 1 and r.diagnostics.ok
    assert float(r.x.abs().max()) < 1e-6
    assert bool((r.logsnr.diff() > 0).all())
    assert float(r.energy) <= float(r.initial_energy) + 1e-12
