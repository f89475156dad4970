"""State volumes (metastable basins) in configuration or collective-variable space.

Volumes compose like sets, in the style of OpenPathSampling: ``a & b``, ``a | b``, ``~a``.
A volume maps positions of shape ``(*batch, *event)`` to a boolean mask of shape ``(*batch,)``.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

__all__ = ["Volume", "Ball", "periodic_difference"]


def periodic_difference(a, b, periods: Optional[Sequence[Optional[float]]]) -> torch.Tensor:
    """``b - a`` along the last axis, wrapped into ``[-p/2, p/2)`` for each periodic coordinate.

    Parameters
    ----------
    a, b : Tensor or array-like, shape ``(..., d)`` (broadcastable)
        Coordinates in any unit (radians for dihedrals).
    periods : sequence of (float or None), length ``d``, or None
        Period of each coordinate in the unit of ``a``; None entries (or ``periods=None``)
        leave that coordinate unwrapped.

    Returns
    -------
    Tensor, shape ``broadcast(a, b).shape``

    Raises
    ------
    ValueError
        If ``periods`` does not have one entry per coordinate.

    Examples
    --------
    >>> import math, torch
    >>> d = periodic_difference(torch.tensor([3.0, 0.0]), torch.tensor([-3.0, 5.0]), (2 * math.pi, None))
    >>> [round(v, 4) for v in d.tolist()]
    [0.2832, 5.0]
    """
    a = torch.as_tensor(a)
    b = torch.as_tensor(b, dtype=a.dtype if a.is_floating_point() else None)
    d = b - a
    if periods is None:
        return d
    if len(periods) != d.shape[-1]:
        raise ValueError(f"periods: expected {d.shape[-1]} entries, got {len(periods)}")
    cols = []
    for i, p in enumerate(periods):
        di = d[..., i]
        cols.append(di if p is None else torch.remainder(di + 0.5 * p, p) - 0.5 * p)
    return torch.stack(cols, dim=-1)


class Volume:
    """Base class of state volumes: ``volume(x) -> bool mask``.

    Subclasses implement ``__call__``, mapping positions ``(*batch, *event)`` to a boolean
    Tensor ``(*batch,)``. Volumes combine with ``&`` (intersection), ``|`` (union) and ``~``
    (complement) into new volumes.

    Examples
    --------
    >>> import torch
    >>> from tps.states import Ball
    >>> a = Ball([0.0, 0.0], 1.0, name="a")
    >>> b = Ball([1.0, 0.0], 1.0, name="b")
    >>> x = torch.tensor([[0.5, 0.0], [-0.8, 0.0], [3.0, 0.0]])
    >>> (a & b)(x), (a | b)(x), (a & ~b)(x)
    (tensor([ True, False, False]), tensor([ True,  True, False]), tensor([False,  True, False]))
    >>> a & ~b
    (Ball(a, r=1.0) & ~Ball(b, r=1.0))
    """

    def __call__(self, x) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __and__(self, other):
        return _Combined(self, other, torch.logical_and, "&")

    def __or__(self, other):
        return _Combined(self, other, torch.logical_or, "|")

    def __invert__(self):
        return _Negated(self)


class _Combined(Volume):
    def __init__(self, a, b, op, sym):
        self.a, self.b, self.op, self.sym = a, b, op, sym

    def __call__(self, x):
        return self.op(self.a(x), self.b(x))

    def __repr__(self):
        return f"({self.a!r} {self.sym} {self.b!r})"


class _Negated(Volume):
    def __init__(self, a):
        self.a = a

    def __call__(self, x):
        return ~self.a(x)

    def __repr__(self):
        return f"~{self.a!r}"


class Ball(Volume):
    """Points within ``radius`` (Euclidean, periodic differences) of ``center``.

    Parameters
    ----------
    center : array, shape ``(d,)``
        Centre in the coordinates returned by ``cv`` (or in raw coordinates if ``cv`` is None).
    radius : float
        Same unit as ``center``.
    periods : sequence of float or None, optional
        Period of each coordinate (``2*pi`` for dihedrals), None for non-periodic ones.
    cv : callable, optional
        Maps positions ``(*batch, *event)`` to collective variables ``(*batch, d)``, e.g.
        :class:`tps.potentials.openmm.PhiPsi` (nm -> radians).
    name : str, optional
        Label used in ``repr``.

    Raises
    ------
    ValueError
        If ``center`` is not a vector or ``radius`` is not positive.

    Examples
    --------
    A Muller-Brown state contains its centre; a periodic ball wraps around the torus:

    >>> import math, torch
    >>> from tps.states import Ball
    >>> A = Ball([-0.5582, 1.4417], 0.1, name="A")
    >>> A(torch.tensor([[-0.5582, 1.4417], [-0.5582, 1.6]], dtype=torch.float64))
    tensor([ True, False])
    >>> C5 = Ball([-2.57, 2.78], 0.75, periods=(2 * math.pi, 2 * math.pi))
    >>> C5(torch.tensor([-2.57, -3.1], dtype=torch.float64))    # psi = 2.78 - 2*pi + 0.4
    tensor(True)
    """

    def __init__(self, center, radius: float, *, periods=None, cv: Optional[Callable] = None, name: str = ""):
        self.center = torch.as_tensor(center, dtype=torch.float64)
        if self.center.dim() != 1:
            raise ValueError(f"center: expected a 1-D vector, got shape {tuple(self.center.shape)}")
        if not radius > 0:
            raise ValueError(f"radius: expected a positive number, got {radius!r}")
        self.radius = float(radius)
        self.periods = None if periods is None else tuple(periods)
        self.cv = cv
        self.name = name

    def coordinates(self, x) -> torch.Tensor:
        """``cv(x)``, or ``x`` itself when the ball has no ``cv``; shape ``(*batch, d)``."""
        x = torch.as_tensor(x)
        return self.cv(x) if self.cv is not None else x

    def distance(self, x) -> torch.Tensor:
        """Distance of each configuration to the centre (periodic), shape ``(*batch,)``.

        Parameters
        ----------
        x : Tensor or array-like, shape ``(*batch, *event)``

        Returns
        -------
        Tensor, shape ``(*batch,)``, in the unit of ``center``.
        """
        y = self.coordinates(x)
        d = periodic_difference(self.center.to(y), y, self.periods)
        return d.norm(dim=-1)

    def __call__(self, x) -> torch.Tensor:
        return self.distance(x) <= self.radius

    def __repr__(self):
        return f"Ball({self.name or self.center.tolist()}, r={self.radius})"
