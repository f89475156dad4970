"""State volumes: Ball membership with periodic differences, set algebra (&, |, ~)."""

import math

import pytest
import torch

from tps.states import Ball, Volume, periodic_difference

torch.set_num_threads(1)

TWO_PI = 2 * math.pi


def test_periodic_difference_wraps_into_half_open_interval():
    a = torch.tensor([[3.0, 3.0], [-3.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[-3.0, -3.0], [3.0, 1.0], [math.pi, 7.0]], dtype=torch.float64)
    d = periodic_difference(a, b, (TWO_PI, None))
    assert d[0, 0].item() == pytest.approx(TWO_PI - 6.0)  # 3 -> -3 across +-pi: +0.283
    assert d[1, 0].item() == pytest.approx(6.0 - TWO_PI)  # -3 -> 3 across +-pi: -0.283
    assert d[0, 1].item() == -6.0 and d[2, 1].item() == 7.0  # non-periodic: plain difference
    assert d[2, 0].item() == pytest.approx(-math.pi)  # half a period maps to -p/2
    assert (d[:, 0] >= -math.pi).all() and (d[:, 0] < math.pi).all()
    assert torch.equal(periodic_difference(a, b, None), b - a)
    with pytest.raises(ValueError, match="periods"):
        periodic_difference(a, b, (TWO_PI,))


def test_ball_membership_with_periodic_differences():
    # Alanine-dipeptide-like target: 0.75 rad around (phi, psi) = (3.0, -3.0).
    ball = Ball([3.0, -3.0], 0.75, periods=(TWO_PI, TWO_PI))
    x = torch.tensor([
        [3.0, -3.0],     # the centre
        [-3.0, 3.0],     # across both +-pi edges: distance sqrt(2) * 0.283 = 0.40 -> inside
        [3.0 + TWO_PI, -3.0 - 2 * TWO_PI],  # the centre, unwrapped by whole periods -> inside
        [2.0, -3.0],     # 1 rad away -> outside
        [3.0, -2.3],     # 0.7 rad away -> inside
        [0.0, 0.0],      # far
    ], dtype=torch.float64)
    assert ball(x).tolist() == [True, True, True, False, True, False]
    assert ball.distance(x)[1].item() == pytest.approx(math.sqrt(2) * (TWO_PI - 6.0))
    # The same ball without periods sees only Euclidean distance.
    flat = Ball([3.0, -3.0], 0.75)
    assert flat(x).tolist() == [True, False, False, False, True, False]
    # Batch shape is kept; the boundary belongs to the ball.
    assert ball(x.reshape(2, 3, 2)).shape == (2, 3)
    assert Ball([0.0, 0.0], 0.625)(torch.tensor([0.375, 0.5], dtype=torch.float64)).item()  # 3-4-5, exact


def test_ball_with_collective_variable():
    # A ball in the CV "first coordinate of the first atom" of (n_atoms, 3) configurations.
    ball = Ball([1.0], 0.1, cv=lambda x: x[..., 0, :1])
    x = torch.zeros(4, 5, 3, dtype=torch.float64)
    x[0, 0, 0] = 1.05
    x[1, 0, 0] = 1.2
    x[2, 1, 0] = 1.0  # another atom: does not count
    assert ball(x).tolist() == [True, False, False, False]


def test_set_algebra():
    a = Ball([0.0, 0.0], 1.0, name="a")
    b = Ball([1.0, 0.0], 1.0, name="b")
    x = torch.tensor([[-0.8, 0.0], [0.5, 0.0], [1.8, 0.0], [5.0, 5.0]], dtype=torch.float64)
    ia, ib = a(x), b(x)
    assert ia.tolist() == [True, True, False, False] and ib.tolist() == [False, True, True, False]
    assert (a & b)(x).tolist() == [False, True, False, False]
    assert (a | b)(x).tolist() == [True, True, True, False]
    assert (~a)(x).tolist() == [False, False, True, True]
    assert (a & ~b)(x).tolist() == [True, False, False, False]
    # De Morgan and double negation on many random points.
    y = 4 * torch.rand(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 2
    assert torch.equal((~(a | b))(y), ((~a) & (~b))(y))
    assert torch.equal((~(a & b))(y), ((~a) | (~b))(y))
    assert torch.equal((~~a)(y), a(y))
    assert isinstance(a & b, Volume) and "a" in repr(a | ~b) and "b" in repr(a | ~b)
    assert (a & b)(x).dtype == torch.bool


def test_ball_bad_input():
    with pytest.raises(ValueError, match="center"):
        Ball([[0.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match="radius"):
        Ball([0.0, 0.0], 0.0)
    with pytest.raises(ValueError, match="radius"):
        Ball([0.0, 0.0], -1.0)
