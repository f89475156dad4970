"""Spline-corrected curves: the correction is C2, interpolates its nodes and vanishes *exactly* at
both ends (the solvers rely on this to keep the endpoints bit-identical)."""

import pytest
import torch

from tps.spacetime.curves import line_plus_spline, spline_basis


@pytest.mark.parametrize("n_points, n_nodes", [(8, 3), (32, 10), (129, 17), (200, 6)])
def test_basis_vanishes_exactly_at_both_ends_and_interpolates_the_knots(n_points, n_nodes):
    B = spline_basis(n_points, n_nodes)
    assert B.shape == (n_points, n_nodes)
    assert torch.equal(B[0], torch.zeros(n_nodes, dtype=B.dtype))
    assert torch.equal(B[-1], torch.zeros(n_nodes, dtype=B.dtype))
    # Evaluated at the knots s_k = k / (n_nodes + 1) the basis is the identity (a natural
    # cubic spline interpolates its values).
    knots = spline_basis(n_nodes + 2, n_nodes)[1:-1]
    torch.testing.assert_close(knots, torch.eye(n_nodes, dtype=knots.dtype), rtol=0, atol=1e-12)


def test_curve_keeps_its_endpoints_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    start, end = torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(3, 2, generator=g, dtype=torch.float64)
    nodes = 50.0 * torch.randn(3, 7, 2, generator=g, dtype=torch.float64)  # large corrections
    c = line_plus_spline(start, end, nodes, spline_basis(41, 7))
    assert c.shape == (3, 41, 2)
    assert torch.equal(c[:, 0], start) and torch.equal(c[:, -1], end)
