"""Split-chain diagnostics: halves of one distribution agree within the finite-sample noise,
halves of shifted distributions do not; the round split detects a drifting ensemble."""

import math

import pytest
import torch

from tps.core import Paths
from tps.metrics import histogram_jsd, jsd_noise_level, split_chain_jsd

RANGES = ((-2.0, 2.0), (-2.0, 2.0))


def _ensemble(n_paths, n_frames, *, shift_odd_chains=0.0, shift_late_rounds=0.0, n_chains=8, seed=0):
    """Independent frames (so the noise level is that of n_paths * n_frames samples), chains and rounds
    assigned round-robin; odd chains and/or the later half of the rounds optionally shifted in x."""
    g = torch.Generator().manual_seed(seed)
    frames = 0.4 * torch.randn(n_paths, n_frames, 2, generator=g, dtype=torch.float64)
    chain = torch.arange(n_paths) % n_chains
    rnd = 1 + torch.arange(n_paths) // n_chains
    lengths = torch.randint(5, n_frames + 1, (n_paths,), generator=g)
    frames[chain % 2 == 1, :, 0] += shift_odd_chains
    late = rnd > int(rnd.max()) // 2
    frames[late, :, 0] += shift_late_rounds
    return Paths(frames, frames[..., 0], 0, 1.0, {"chain": chain, "round": rnd, "lengths": lengths})


def test_noise_level_matches_the_g_test_mean():
    # the chi-squared mean: 4 n ln2 JSD ~ chi2(k - 1); average over repeats within 10 %
    g = torch.Generator().manual_seed(1)
    k, n = 10, 2000
    vals = [histogram_jsd(torch.rand(n, generator=g).numpy(), torch.rand(n, generator=g).numpy(), bins=k,
                          range=(0, 1)) for _ in range(200)]
    assert sum(vals) / len(vals) == pytest.approx(jsd_noise_level(k, n), rel=0.1)


def test_same_distribution_halves_agree_within_noise():
    paths = _ensemble(800, 20)
    crossing = torch.randn(800, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    d = split_chain_jsd(paths, bins=12, ranges=RANGES, crossing=crossing, crossing_range=(-3, 3), crossing_bins=12)
    n_frames_half = int(paths.info["lengths"].sum()) // 2
    # 6-sigma bound of the chi-squared statistic with k - 1 degrees of freedom
    bound2d = (143 + 6 * math.sqrt(2 * 143)) / (4 * n_frames_half * math.log(2))
    bound1d = (11 + 6 * math.sqrt(2 * 11)) / (4 * 400 * math.log(2))
    for label in ("chains", "rounds"):
        assert 0 <= d[f"frame_density_{label}"] < bound2d
        assert 0 <= d[f"crossing_{label}"] < bound1d
        assert 0 <= d[f"path_length_{label}"] < (19 + 6 * math.sqrt(38)) / (4 * 400 * math.log(2))
    assert d["n_chains"] == 8.0 and d["n_rounds"] == 100.0


def test_shifted_chains_are_detected_and_the_round_split_is_not_fooled():
    paths = _ensemble(800, 20, shift_odd_chains=0.8)
    d = split_chain_jsd(paths, bins=12, ranges=RANGES)
    noise = jsd_noise_level(144, int(paths.info["lengths"].sum()) // 2)
    assert d["frame_density_chains"] > 10 * noise  # two Gaussians 2 sigma apart
    assert d["frame_density_rounds"] < 5 * noise         # every round holds both kinds of chain


def test_drift_between_rounds_is_detected():
    paths = _ensemble(800, 20, shift_late_rounds=0.8)
    d = split_chain_jsd(paths, bins=12, ranges=RANGES)
    noise = jsd_noise_level(144, int(paths.info["lengths"].sum()) // 2)
    assert d["frame_density_rounds"] > 10 * noise
    assert d["frame_density_chains"] < 5 * noise


def test_periodic_crossing_coordinate_wraps():
    # psi near +-pi: the same distribution seen through the wrap agrees with itself
    a = torch.tensor([3.1, -3.1, 3.0, -3.0] * 50, dtype=torch.float64)
    assert histogram_jsd(a, a + 2 * math.pi, bins=8, range=(-math.pi, math.pi), period=2 * math.pi) == 0.0
    with pytest.raises(ValueError, match="range"):
        histogram_jsd(a, a, period=2 * math.pi)


def test_bad_input_names_the_argument():
    paths = _ensemble(16, 5)
    with pytest.raises(ValueError, match="crossing: expected one value per path"):
        split_chain_jsd(paths, bins=4, ranges=RANGES, crossing=torch.zeros(3))
    bare = Paths(paths.frames, paths.energies, 0, 1.0, {})
    with pytest.raises(ValueError, match=r"paths: expected info\['chain'\]"):
        split_chain_jsd(bare, bins=4, ranges=RANGES)
    one_chain = Paths(paths.frames, paths.energies, 0, 1.0, {**paths.info, "chain": torch.zeros(16, dtype=int)})
    assert math.isnan(split_chain_jsd(one_chain, bins=4, ranges=RANGES)["frame_density_chains"])
