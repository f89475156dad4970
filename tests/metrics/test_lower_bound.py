"""Minimax (bottleneck) lower bound: known answers on synthetic grids, a slow plain reference
implementation, periodic wrap, the alanine dipeptide reference value and Muller-Brown's saddle."""

import heapq
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tps.metrics.lower_bound import bottleneck_path, grid_lower_bound
from tps.potentials import Grid2D, MullerBrown, PeriodicGridPotential, read_grid

REFERENCE = Path(os.environ.get(
    "TPS_REFERENCE_SURFACE",
    Path(__file__).resolve().parents[2].parent / "shared/reference/aldp_phipsi_surface_holdijk.dat",
))


def slow_bottleneck(z, start, end, periodic, connectivity):
    """Plain Dijkstra with max instead of sum (the reference for the fast kernel)."""
    n0, n1 = z.shape
    steps = [(0, 1), (0, -1), (1, 0), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    best = {start: z[start]}
    heap = [(z[start], start)]
    while heap:
        cost, (i, j) = heapq.heappop(heap)
        if (i, j) == end:
            return cost
        if cost > best[(i, j)]:
            continue
        for di, dj in steps:
            a, b = i + di, j + dj
            if periodic[0]:
                a %= n0
            if periodic[1]:
                b %= n1
            if not (0 <= a < n0 and 0 <= b < n1):
                continue
            c = max(cost, z[a, b])
            if c < best.get((a, b), math.inf):
                best[(a, b)] = c
                heapq.heappush(heap, (c, (a, b)))
    return math.inf


def assert_valid_path(z, path, start, end, periodic, connectivity, value):
    assert tuple(path[0]) == tuple(start) and tuple(path[-1]) == tuple(end)
    assert z[path[:, 0], path[:, 1]].max() == value
    d = np.diff(path, axis=0)
    for k in range(2):
        if periodic[k]:
            n = z.shape[k]
            d[:, k] = (d[:, k] + n // 2) % n - n // 2 if n > 2 else d[:, k] % n
    d = np.abs(d)
    assert (d.max(axis=1) == 1).all()
    if connectivity == 4:
        assert (d.sum(axis=1) == 1).all()


def test_wall_with_gap():
    """A wall of height 10 with one gap of height 4: the bound is 4 and the path uses the gap."""
    z = np.zeros((9, 12))
    z[4, :] = 10.0
    z[4, 8] = 4.0
    for connectivity in (4, 8):
        value, path = bottleneck_path(z, (0, 1), (8, 1), periodic=(False, False), connectivity=connectivity)
        assert value == 4.0
        assert [4, 8] in path.tolist()
        assert_valid_path(z, path, (0, 1), (8, 1), (False, False), connectivity, value)


def test_diagonal_gap_needs_eight_neighbours():
    """An anti-diagonal wall of height 10 over a floor of 1: 4-neighbour paths must climb it,
    8-neighbour paths slip between its corners."""
    z = np.ones((6, 6))
    for i in range(6):
        z[i, 5 - i] = 10.0
    assert bottleneck_path(z, (0, 0), (5, 5), periodic=(False, False), connectivity=4)[0] == 10.0
    assert bottleneck_path(z, (0, 0), (5, 5), periodic=(False, False), connectivity=8)[0] == 1.0


def test_periodic_wrap_is_used_when_lower():
    """Direct route crosses a barrier of 10; the route across phi = +-pi only one of 3."""
    n = 40
    z = np.zeros((n, 30))
    z[18:23, :] = 10.0  # wall in the middle of phi
    z[0, :] = 3.0  # lower wall at the periodic boundary
    z[n - 1, :] = 3.0
    start, end = (10, 5), (30, 5)
    value, path = bottleneck_path(z, start, end, periodic=(True, True))
    assert value == 3.0
    assert np.any(np.abs(np.diff(path[:, 0])) == n - 1)  # the path steps across the boundary
    assert_valid_path(z, path, start, end, (True, True), 8, value)
    assert bottleneck_path(z, start, end, periodic=(False, True))[0] == 10.0


@pytest.mark.parametrize("periodic", [(True, True), (False, False), (True, False)])
@pytest.mark.parametrize("connectivity", [4, 8])
def test_matches_plain_dijkstra(periodic, connectivity):
    rng = np.random.default_rng(7)
    for trial in range(5):
        shape = tuple(rng.integers(2, 14, size=2))
        z = rng.normal(size=shape).round(2)  # rounding makes ties
        start = tuple(int(rng.integers(0, s)) for s in shape)
        end = tuple(int(rng.integers(0, s)) for s in shape)
        value, path = bottleneck_path(z, start, end, periodic=periodic, connectivity=connectivity)
        assert value == slow_bottleneck(z, start, end, periodic, connectivity)
        assert_valid_path(z, path, start, end, periodic, connectivity, value)


def test_same_cell_and_bad_input():
    z = np.arange(12.0).reshape(3, 4)
    value, path = bottleneck_path(z, (1, 2), (1, 2))
    assert value == 6.0 and path.tolist() == [[1, 2]]
    with pytest.raises(ValueError, match="start_index"):
        bottleneck_path(z, (3, 0), (0, 0))
    with pytest.raises(ValueError, match="connectivity"):
        bottleneck_path(z, (0, 0), (1, 1), connectivity=6)
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bottleneck_path(bad, (0, 1), (1, 1))


def test_grid2d_endpoints_in_radians_and_wrap():
    n = 36
    ang = -np.pi + 2 * np.pi * np.arange(n) / n
    z = 5.0 + 5.0 * np.cos(ang)[:, None] * np.ones(n)  # barrier 10 at phi = 0, 0 at phi = -pi
    grid = Grid2D.from_arrays(ang, ang, z)
    lb = grid_lower_bound(grid, (-1.5, 0.0), (1.5, 0.0))
    # Downhill both ways to phi = -pi: the bound is the higher endpoint, not the barrier of 10.
    assert lb.value == max(z[lb.start_index], z[lb.end_index]) < 10.0
    assert bottleneck_path(z, lb.start_index, lb.end_index, periodic=(False, False))[0] == 10.0
    assert lb.path.shape == (len(lb.path_indices), 2)
    with pytest.raises(ValueError, match="degrees"):
        grid_lower_bound(grid, (-146.0, 155.0), (65.0, -30.0))


def test_periodic_potential_is_evaluated_on_the_torus():
    """A spline potential with periods: the grid wraps, so the bound equals the wrapped grid's."""
    n = 36
    ang = -np.pi + 2 * np.pi * np.arange(n) / n
    z = 5.0 + 5.0 * np.cos(ang)[:, None] * np.ones(n)
    pot = PeriodicGridPotential(Grid2D.from_arrays(ang, ang, z))
    lb = grid_lower_bound(pot, (-1.5, 0.0), (1.5, 0.0), spacing=2 * np.pi / n)
    assert lb.shape == (n, n)
    assert lb.value == pytest.approx(5.0 + 5.0 * np.cos(ang[lb.start_index[0]]), abs=1e-9)
    assert pot.n_evals == 0  # a metric is not sampling cost


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference surface not available")
@pytest.mark.parametrize("connectivity", [4, 8])
def test_reference_alanine_dipeptide_bound(connectivity):
    """36.336: shared/reference/README.md (bottleneck path on the raw 89 x 89 grid, periodic)."""
    grid = read_grid(REFERENCE)
    lb = grid_lower_bound(grid, (-2.55, 2.70), (0.95, -0.40), connectivity=connectivity)
    assert lb.value == pytest.approx(36.336, abs=5e-4)
    assert_valid_path(grid.z, lb.path_indices, lb.start_index, lb.end_index, (True, True), connectivity, lb.value)


def test_muller_brown_bound_is_saddle_energy():
    """U(S1) = -40.66 (benchmarks.md section 4) is the minimax value between minima A and B."""
    mb = MullerBrown()
    a, b = mb.minimum("A"), mb.minimum("B")
    lb = grid_lower_bound(mb, (a.x, a.y), (b.x, b.y), box=((-1.5, 1.2), (-0.5, 2.0)), spacing=0.005)
    assert lb.shape == (541, 501)
    assert lb.value == pytest.approx(mb.saddle("S1").energy, abs=0.5)
    assert lb.value == pytest.approx(-40.665, abs=0.01)  # measured; exact saddle -40.6648
    top = lb.path[int(mb.energy(torch.from_numpy(lb.path), count=False).argmax())]
    assert np.hypot(top[0] - mb.saddle("S1").x, top[1] - mb.saddle("S1").y) < 0.02
    assert mb.n_evals == 0


def test_potential_needs_box_and_spacing():
    mb = MullerBrown()
    with pytest.raises(ValueError, match="spacing"):
        grid_lower_bound(mb, (0, 0), (0.5, 0.5), box=((-1, 1), (-1, 1)))
    with pytest.raises(ValueError, match="box"):
        grid_lower_bound(mb, (0, 0), (0.5, 0.5), spacing=0.1)
    with pytest.raises(ValueError, match="outside the box"):
        grid_lower_bound(mb, (0, 0), (1.5, 0.5), box=((-1, 1), (-1, 1)), spacing=0.1)
