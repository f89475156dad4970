"""The Muller-Brown potential (Muller & Brown, Theor. Chim. Acta 53, 75 (1979)).

Dimensionless energies and coordinates. The parameters are the single source of truth for
both the torch energy and the OpenMM custom-force expression (:meth:`MullerBrown.openmm_expression`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tps.potentials.base import Potential

# Standard parameters (benchmarks.md section 4).
A = (-200.0, -100.0, -170.0, 15.0)
a = (-1.0, -1.0, -6.5, 0.7)
b = (0.0, 0.0, 11.0, 0.6)
c = (-10.0, -10.0, -6.5, 0.7)
_FAR = 1.0e3  # see MullerBrown._terms
X0 = (1.0, 0.0, -0.5, -1.0)
Y0 = (0.0, 0.5, 1.5, 1.0)


@dataclass(frozen=True)
class StationaryPoint:
    """A stationary point of a 2-D potential with its provenance.

    Attributes
    ----------
    name : str
        Label (``"A"``, ``"B"``, ``"intermediate"``, ``"S1"``, ``"S2"`` for Muller-Brown).
    x, y : float
        Coordinates (dimensionless for Muller-Brown), 4 decimals.
    energy : float
        Energy at the point (dimensionless for Muller-Brown), 2 decimals.
    kind : str
        ``"minimum"`` or ``"saddle"``.

    Examples
    --------
    >>> from tps.potentials import MullerBrown
    >>> p = MullerBrown().minimum("B")
    >>> (p.x, p.y, p.energy, p.kind)
    (0.6235, 0.028, -108.17, 'minimum')
    """

    name: str
    x: float
    y: float
    energy: float
    kind: str  # "minimum" or "saddle"


# Reference values: benchmarks.md section 4 (4-decimal coordinates; the tests refine them
# with Newton's method and check that the refined points stay within 1e-3).
STATIONARY_POINTS = (
    StationaryPoint("A", -0.5582, 1.4417, -146.70, "minimum"),
    StationaryPoint("intermediate", -0.0500, 0.4667, -80.77, "minimum"),
    StationaryPoint("B", 0.6235, 0.0280, -108.17, "minimum"),
    StationaryPoint("S1", -0.8220, 0.6243, -40.66, "saddle"),
    StationaryPoint("S2", 0.2125, 0.2930, -72.25, "saddle"),
)


class MullerBrown(Potential):
    """Muller-Brown potential ``U(x, y) = sum_k A_k exp(a_k dx^2 + b_k dx dy + c_k dy^2)``.

    Positions have shape ``(*batch, 2)``; coordinates and energies are dimensionless (the
    benchmark temperature is ``kT = 12.5`` in the same unit). Forces are analytic. Far from the
    minima (tens of units away) the energy overflows to ``+inf``, never NaN. The
    reference minima and saddles are in ``stationary_points`` (benchmarks.md section 4).

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> mb = MullerBrown()
    >>> float(mb.energy(torch.tensor([-0.5582, 1.4417], dtype=torch.float64)))  # doctest: +ELLIPSIS
    -146.69...
    >>> mb.saddle("S1").energy   # the minimax barrier between A and B
    -40.66
    >>> f = mb.forces(torch.tensor([-0.5582, 1.4417], dtype=torch.float64))
    >>> round(float(f.norm()), 2)    # ~0 at the minimum (4-decimal coordinates)
    0.14
    """

    stationary_points = STATIONARY_POINTS

    def __init__(self):
        super().__init__((2,), energy_unit="dimensionless")

    def point(self, name: str) -> StationaryPoint:
        """The stationary point called ``name`` (minimum or saddle).

        Parameters
        ----------
        name : str
            One of ``"A"``, ``"intermediate"``, ``"B"``, ``"S1"``, ``"S2"``.

        Returns
        -------
        StationaryPoint

        Raises
        ------
        KeyError
            If ``name`` is unknown.
        """
        for p in STATIONARY_POINTS:
            if p.name == name:
                return p
        raise KeyError(f"name: unknown stationary point {name!r}; known: {[p.name for p in STATIONARY_POINTS]}")

    def minimum(self, name: str) -> StationaryPoint:
        """The minimum called ``name`` (``"A"``, ``"intermediate"`` or ``"B"``).

        Raises
        ------
        KeyError
            If ``name`` is unknown or names a saddle.
        """
        p = self.point(name)
        if p.kind != "minimum":
            raise KeyError(f"name: {name!r} is a {p.kind}, not a minimum")
        return p

    def saddle(self, name: str) -> StationaryPoint:
        """The saddle called ``name`` (``"S1"``, between A and the intermediate, or ``"S2"``).

        Raises
        ------
        KeyError
            If ``name`` is unknown or names a minimum.
        """
        p = self.point(name)
        if p.kind != "saddle":
            raise KeyError(f"name: {name!r} is a {p.kind}, not a saddle")
        return p

    @staticmethod
    def _params(x):
        kw = dict(dtype=x.dtype, device=x.device)
        return [torch.tensor(v, **kw) for v in (A, a, b, c, X0, Y0)]

    def _terms(self, x):
        A_, a_, b_, c_, x0, y0 = self._params(x)
        # Offsets beyond _FAR are clipped: there the positive-definite 4th term's exponent is at
        # least 0.4 * _FAR**2 = 4e5, so the energy is +inf either way, and the clip keeps
        # a dx^2 + b dx dy + c dy^2 from becoming inf - inf = NaN for huge coordinates.
        dx = (x[..., 0:1] - x0).clamp(-_FAR, _FAR)
        dy = (x[..., 1:2] - y0).clamp(-_FAR, _FAR)
        return A_ * torch.exp(a_ * dx * dx + b_ * dx * dy + c_ * dy * dy), dx, dy, a_, b_, c_

    def _energy(self, x):
        terms = self._terms(x)[0]
        return terms.sum(-1)

    def _energy_and_forces(self, x):
        t, dx, dy, a_, b_, c_ = self._terms(x)
        gx = (t * (2 * a_ * dx + b_ * dy)).sum(-1)
        gy = (t * (b_ * dx + 2 * c_ * dy)).sum(-1)
        return t.sum(-1), -torch.stack([gx, gy], dim=-1)

    @staticmethod
    def openmm_expression(x: str = "x", y: str = "y") -> str:
        """The same energy as an OpenMM custom-force expression in variables ``x``, ``y``.

        Parameters
        ----------
        x, y : str, optional
            Variable names to use in the expression (e.g. ``"x1"``, ``"y1"`` for a bond force).

        Returns
        -------
        str
            Expression built from the module's parameters, the single source of truth.

        Examples
        --------
        >>> from tps.potentials import MullerBrown
        >>> expr = MullerBrown.openmm_expression()
        >>> expr.count("exp("), expr[:20]
        (4, '(-200.0)*exp((-1.0)*')
        """
        parts = []
        for k in range(4):
            parts.append(
                f"({A[k]})*exp(({a[k]})*({x}-({X0[k]}))^2+({b[k]})*({x}-({X0[k]}))*({y}-({Y0[k]}))"
                f"+({c[k]})*({y}-({Y0[k]}))^2)"
            )
        return "+".join(parts)
