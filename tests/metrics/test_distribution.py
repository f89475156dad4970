"""path_density_jsd: Jensen-Shannon divergence (bits) of frame histograms of two path ensembles."""

import math

import pytest
import torch

from tps.metrics import jensen_shannon, path_density_jsd
from tps.sampling.paths import Paths
from tps.systems.muller_brown import BOX


def ensemble(n_paths=20, n_frames=40, centre=(0.0, 0.5), spread=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.tensor(centre, dtype=torch.float64) + spread * torch.randn(n_paths, n_frames, 2, generator=g,
                                                                            dtype=torch.float64)


def test_identical_is_zero_disjoint_is_one():
    a = ensemble()
    assert path_density_jsd(a, a, bins=30, ranges=BOX) == 0.0
    left = ensemble(centre=(-1.2, 0.0), spread=0.02)
    right = ensemble(centre=(0.9, 1.5), spread=0.02)
    assert path_density_jsd(left, right, bins=30, ranges=BOX) == pytest.approx(1.0, abs=1e-12)


def test_symmetric_and_between_zero_and_one():
    a, b = ensemble(seed=0), ensemble(centre=(0.2, 0.6), seed=1)
    d_ab = path_density_jsd(a, b, bins=25, ranges=BOX)
    assert d_ab == pytest.approx(path_density_jsd(b, a, bins=25, ranges=BOX), abs=1e-12)
    assert 0.0 < d_ab < 1.0


def test_half_overlap_by_hand():
    # P = (1/2, 1/2, 0), Q = (0, 1/2, 1/2): M = (1/4, 1/2, 1/4), KL(P||M) = 1/2 log2(2) = 1/2 bit each.
    assert jensen_shannon([1, 1, 0], [0, 1, 1]) == pytest.approx(0.5)
    assert jensen_shannon([1, 1, 0], [0, 1, 1], base=math.e) == pytest.approx(0.5 * math.log(2))


def test_padding_is_dropped():
    a = ensemble(n_paths=4, n_frames=30)
    lengths = torch.tensor([30, 10, 20, 5])
    padded = a.clone()
    for i, n in enumerate(lengths.tolist()):
        padded[i, n:] = padded[i, n - 1]
    p = Paths(padded, torch.zeros(4, 30), 0, 1.0, {"lengths": lengths})
    pooled = torch.cat([a[i, :n] for i, n in enumerate(lengths.tolist())])  # (65, 2): frames already pooled
    assert path_density_jsd(p, pooled, bins=30, ranges=BOX) == 0.0
    # Without the lengths the repeated last frames would count.
    assert path_density_jsd(padded, pooled, bins=30, ranges=BOX) > 0.0


def test_periodic_wrap_and_cv():
    period = 2 * math.pi
    ranges = ((-math.pi, math.pi), (-math.pi, math.pi))
    a = ensemble(centre=(3.0, -2.0), spread=0.3, seed=2)
    shifted = a + torch.tensor([period, -2 * period], dtype=torch.float64)  # the same angles, other images
    assert path_density_jsd(a, shifted, bins=36, ranges=ranges, periods=(period, period)) == pytest.approx(0.0, abs=1e-12)
    # A cloud straddling phi = pi is one density, not two half clouds.
    across = ensemble(centre=(math.pi, 0.0), spread=0.1, seed=3)
    wrapped = torch.remainder(across + math.pi, period) - math.pi
    assert path_density_jsd(across, wrapped, bins=36, ranges=ranges, periods=(period, period)) == pytest.approx(0.0, abs=1e-12)
    # cv maps 3-D frames to two coordinates.
    frames3 = torch.cat([a, torch.zeros(20, 40, 1, dtype=torch.float64)], -1)
    d = path_density_jsd(frames3, a, bins=36, ranges=ranges, periods=(period, period), cv=lambda f: f[..., :2])
    assert d == pytest.approx(0.0, abs=1e-12)


def test_bad_input():
    a = ensemble()
    with pytest.raises(ValueError, match="bins"):
        path_density_jsd(a, a, bins=0, ranges=BOX)
    with pytest.raises(ValueError, match="ranges"):
        path_density_jsd(a, a, bins=10, ranges=((1, 0), (0, 1)))
    with pytest.raises(ValueError, match="periods"):
        path_density_jsd(a, a, bins=10, ranges=BOX, periods=(2 * math.pi, None))
    with pytest.raises(ValueError, match="cv"):
        path_density_jsd(a, a, bins=10, ranges=BOX, cv=lambda f: f[..., :1])
    with pytest.raises(ValueError, match="paths"):
        path_density_jsd(a + 100.0, a, bins=10, ranges=BOX)
