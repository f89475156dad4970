"""Periodic cubic B-spline interpolation on a uniform 2-D grid (private kernel).

The interpolant is ``f(u, v) = sum_{k,l} c[k, l] B(u - k) B(v - l)`` with ``B`` the centred
cubic B-spline (support ``[-2, 2]``, ``B(0) = 2/3``, ``B(+-1) = 1/6``) and indices taken
modulo the grid size, so ``f`` is C2 and periodic. Interpolation at the nodes,
``f(i, j) = z[i, j]``, is a circulant system along each axis,
``z_i = (c_{i-1} + 4 c_i + c_{i+1}) / 6``, solved exactly with the FFT (its eigenvalues
``(4 + 2 cos(2 pi k / n)) / 6`` are at least ``1/3``, so it is always well conditioned).
"""

from __future__ import annotations

import numpy as np
import torch


def spline_coefficients(z: np.ndarray) -> np.ndarray:
    """B-spline coefficients that interpolate ``z`` at the nodes, periodic on both axes.

    Parameters
    ----------
    z : ndarray, shape ``(n0, n1)``, float64

    Returns
    -------
    ndarray, shape ``(n0, n1)``, float64
    """
    z = np.asarray(z, dtype=np.float64)
    n0, n1 = z.shape
    k0 = (4.0 + 2.0 * np.cos(2.0 * np.pi * np.arange(n0) / n0)) / 6.0
    k1 = (4.0 + 2.0 * np.cos(2.0 * np.pi * np.arange(n1) / n1)) / 6.0
    c = np.fft.ifft2(np.fft.fft2(z) / (k0[:, None] * k1[None, :]))
    return np.ascontiguousarray(c.real)


def _weights(t: torch.Tensor):
    """Cubic B-spline weights of nodes ``i-1, i, i+1, i+2`` at fraction ``t`` in ``[0, 1)``,
    and their derivatives with respect to ``t``; each of shape ``(*batch, 4)``."""
    s = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    w = torch.stack([s * s * s / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
                     (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t3 / 6.0], dim=-1)
    dw = torch.stack([-0.5 * s * s, 0.5 * (3.0 * t2 - 4.0 * t),
                      0.5 * (-3.0 * t2 + 2.0 * t + 1.0), 0.5 * t2], dim=-1)
    return w, dw


def evaluate(coef: torch.Tensor, u: torch.Tensor, v: torch.Tensor, *, with_gradient: bool):
    """Evaluate the periodic spline at fractional grid coordinates.

    Parameters
    ----------
    coef : Tensor, shape ``(n0, n1)``
        Coefficients from :func:`spline_coefficients`, in the dtype of ``u``.
    u, v : Tensor, shape ``(*batch,)``
        Positions in units of the grid spacing, relative to node 0 (any real value).
    with_gradient : bool
        Also return the derivatives with respect to ``u`` and ``v``.

    Returns
    -------
    value : Tensor, shape ``(*batch,)``
    du, dv : Tensor, shape ``(*batch,)`` (only when ``with_gradient``)
        Derivatives per unit of ``u`` and ``v`` (divide by the spacing for per-radian).
    """
    n0, n1 = coef.shape
    fu = torch.floor(u)
    fv = torch.floor(v)
    tu = u - fu  # differentiable: d tu / d u = 1
    tv = v - fv
    offsets = torch.arange(-1, 3, device=u.device)
    iu = torch.remainder(fu.detach().long().unsqueeze(-1) + offsets, n0)  # (*batch, 4)
    iv = torch.remainder(fv.detach().long().unsqueeze(-1) + offsets, n1)
    flat = iu.unsqueeze(-1) * n1 + iv.unsqueeze(-2)  # (*batch, 4, 4)
    c = coef.reshape(-1)[flat]
    wu, dwu = _weights(tu)
    wv, dwv = _weights(tv)
    cv = torch.einsum("...ab,...b->...a", c, wv)  # (*batch, 4)
    value = (wu * cv).sum(-1)
    if not with_gradient:
        return value
    du = (dwu * cv).sum(-1)
    dv = torch.einsum("...a,...ab,...b->...", wu, c, dwv)
    return value, du, dv
