"""State volumes (metastable basins) in configuration or collective-variable space.

Volumes compose like sets, in the style of OpenPathSampling: ``a & b``, ``a | b``, ``~a``.
A volume maps positions of shape ``(*batch, *event)`` to a boolean mask of shape ``(*batch,)``.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch


def periodic_difference(a, b, periods: Optional[Sequence[Optional[float]]]) -> torch.Tensor:
    """``b - a`` along the last axis, wrapped into ``[-p/2, p/2)`` for each periodic coordinate."""
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
    """Base class: ``volume(x) -> bool mask``."""

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
        Maps positions ``(*batch, *event)`` to collective variables ``(*batch, d)``.
    name : str, optional
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
        x = torch.as_tensor(x)
        return self.cv(x) if self.cv is not None else x

    def distance(self, x) -> torch.Tensor:
        """Distance of each configuration to the centre, shape ``(*batch,)``."""
        y = self.coordinates(x)
        d = periodic_difference(self.center.to(y), y, self.periods)
        return d.norm(dim=-1)

    def __call__(self, x) -> torch.Tensor:
        return self.distance(x) <= self.radius

    def __repr__(self):
        return f"Ball({self.name or self.center.tolist()}, r={self.radius})"
