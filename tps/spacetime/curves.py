"""Parametrised spacetime curves: straight line plus a C2 cubic-spline correction vanishing at both ends."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.interpolate import CubicSpline


@lru_cache(maxsize=32)
def _basis_np(n_points: int, n_nodes: int) -> np.ndarray:
    knots = np.linspace(0.0, 1.0, n_nodes + 2)
    s = np.linspace(0.0, 1.0, n_points)
    basis = np.zeros((n_points, n_nodes))
    for k in range(n_nodes):
        values = np.zeros(n_nodes + 2)
        values[k + 1] = 1.0
        basis[:, k] = CubicSpline(knots, values, bc_type="natural")(s)
    basis[0] = 0.0
    basis[-1] = 0.0
    return basis


def spline_basis(n_points: int, n_nodes: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """Matrix ``B`` of shape ``(n_points, n_nodes)``: values at ``n_points`` equispaced ``s`` in [0, 1]
    of the natural cubic spline through ``n_nodes`` interior knots and zero at both ends.

    A correction ``B @ C`` (``C`` of shape ``(n_nodes, d)``) is C2 and vanishes exactly at
    ``s = 0`` and ``s = 1``, so curve endpoints never move.

    Parameters
    ----------
    n_points : int
        Number of equispaced evaluation points ``s``, including both ends.
    n_nodes : int
        Number of interior knots (equispaced in ``(0, 1)``).
    dtype : torch.dtype, optional
    device : torch.device, optional

    Returns
    -------
    Tensor, shape ``(n_points, n_nodes)``
        Column ``k`` is the spline that is 1 at knot ``k`` and 0 at the other knots.

    Examples
    --------
    >>> B = spline_basis(5, 3)          # points s = 0, 1/4, 1/2, 3/4, 1 are the knots here
    >>> B
    tensor([[0., 0., 0.],
            [1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.],
            [0., 0., 0.]], dtype=torch.float64)
    """
    return torch.as_tensor(_basis_np(int(n_points), int(n_nodes)), dtype=dtype, device=device)


def line_plus_spline(start, end, nodes, basis):
    """Evaluate ``(1 - s) start + s end + B @ nodes`` for a batch of curves.

    Parameters
    ----------
    start, end : Tensor, shape ``(P, d)``
    nodes : Tensor, shape ``(P, n_nodes, d)``
    basis : Tensor, shape ``(N, n_nodes)``

    Returns
    -------
    Tensor, shape ``(P, N, d)``

    Examples
    --------
    Spacetime curves ``(x, y, logsnr)`` from ``(-1, 0, 4)`` to ``(1, 0, 4)`` whose logSNR dips
    by about 1 in the middle; the ends stay put:

    >>> import torch
    >>> start = torch.tensor([[-1.0, 0.0, 4.0]], dtype=torch.float64)
    >>> end = torch.tensor([[1.0, 0.0, 4.0]], dtype=torch.float64)
    >>> nodes = torch.zeros(1, 4, 3, dtype=torch.float64)
    >>> nodes[0, :, 2] = -1.0
    >>> c = line_plus_spline(start, end, nodes, spline_basis(16, 4))
    >>> c.shape, c[0, [0, -1]].tolist(), round(float(c[0, :, 2].min()), 2)
    (torch.Size([1, 16, 3]), [[-1.0, 0.0, 4.0], [1.0, 0.0, 4.0]], 2.92)
    """
    N = basis.shape[0]
    s = torch.linspace(0.0, 1.0, N, dtype=basis.dtype, device=basis.device)[None, :, None]
    return (1 - s) * start[:, None] + s * end[:, None] + torch.einsum("nk,pkd->pnd", basis, nodes)
