"""Periodic 2-D energy surfaces given on a grid over two angles (e.g. alanine dipeptide's
backbone dihedrals phi and psi).

Three pieces:

- :class:`Grid2D` and the text format ``phi psi z`` (:func:`read_grid`, :func:`write_grid`):
  a uniform grid covering one period ``2*pi`` in each angle, values ``z[i, j]`` at
  ``(phi[i], psi[j])``, angles in radians.
- :func:`bilinear`: periodic bilinear interpolation of the raw grid. Benchmark metrics use
  this (never a fitted model), so that every method is scored on the same surface.
- :class:`PeriodicGridPotential`: a smooth (C2) periodic potential, the interpolating periodic
  cubic B-spline of the grid, with analytic forces, for samplers that need gradients.

File format
-----------
Comment lines start with ``#`` (a header ``# phi psi z`` is customary); every other non-blank
line holds three numbers ``phi psi z`` with phi in radians varying fastest, i.e. the rows are
``(phi[0], psi[0]), (phi[1], psi[0]), ..., (phi[n_phi-1], psi[0]), (phi[0], psi[1]), ...``,
both angles ascending with uniform spacing ``2*pi / n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tps._validation import as_tensor
from tps.io import atomic_path
from tps.potentials import _periodic_spline
from tps.potentials.base import Potential

TWO_PI = 2.0 * math.pi
_ANGLE_TOL = 1e-6  # rad: tolerance for "same angle" and for uniform spacing in files


def check_radians(values, name: str) -> np.ndarray:
    """Reject angles that cannot be radians (outside ``[-2*pi, 2*pi]``) or are not finite.

    Parameters
    ----------
    values : float or array-like of float
        Angles that should be in radians.
    name : str
        Argument name used in the error message.

    Returns
    -------
    ndarray, float64, the shape of ``values``.

    Raises
    ------
    ValueError
        If a value is NaN/infinite or lies outside ``[-2*pi, 2*pi]`` (the message suggests that
        degrees were given and how to convert them).

    Examples
    --------
    >>> check_radians([-2.55, 2.70], "start")
    array([-2.55,  2.7 ])
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite angles in radians, found NaN or infinite values")
    if arr.size and np.abs(arr).max() > TWO_PI + 1e-9:
        worst = float(arr.flat[np.abs(arr).argmax()])
        raise ValueError(
            f"{name}: angle {worst:g} is outside [-2*pi, 2*pi]; angles must be in radians "
            f"(were degrees given? convert with numpy.deg2rad)"
        )
    return arr


def _check_axis(values: np.ndarray, what: str, source: str) -> tuple[float, float]:
    """Check that sorted unique angles are uniform and cover one period; return (origin, spacing)."""
    n = values.size
    if n < 2:
        raise ValueError(f"{source}: {what} has {n} distinct value(s); a periodic grid needs at least 2")
    diffs = np.diff(values)
    spacing = TWO_PI / n
    if np.ptp(diffs) > _ANGLE_TOL:
        raise ValueError(
            f"{source}: non-uniform spacing in {what}: steps range from {diffs.min():.9g} to {diffs.max():.9g} rad"
        )
    if abs(diffs.mean() - spacing) > _ANGLE_TOL:
        raise ValueError(
            f"{source}: {what} does not cover one period: {n} values with step {diffs.mean():.9g} rad, "
            f"expected step 2*pi/{n} = {spacing:.9g} rad"
        )
    return float(values[0]), spacing


@dataclass(frozen=True, eq=False)
class Grid2D:
    """Values on a uniform periodic grid over two angles.

    Attributes
    ----------
    phi : ndarray, shape ``(n_phi,)``, float64, radians
        Ascending node positions, spacing ``2*pi / n_phi``.
    psi : ndarray, shape ``(n_psi,)``, float64, radians
    z : ndarray, shape ``(n_phi, n_psi)``, float64
        ``z[i, j]`` is the value at ``(phi[i], psi[j])`` (``"ij"`` indexing), in the unit of the
        source (the reference alanine dipeptide surface does not state one).
    source : str
        Where the grid came from (a file path or ``"arrays"``), used in messages.

    Examples
    --------
    >>> import numpy as np
    >>> ang = -np.pi + 2 * np.pi * np.arange(8) / 8
    >>> g = Grid2D.from_arrays(ang, ang, np.cos(ang)[:, None] + np.cos(ang)[None, :])
    >>> g.shape, round(g.spacing[0], 4)
    ((8, 8), 0.7854)
    """

    phi: np.ndarray
    psi: np.ndarray
    z: np.ndarray
    source: str = "arrays"

    @classmethod
    def from_arrays(cls, phi, psi, z, *, source: str = "arrays") -> "Grid2D":
        """Build a grid from node angles and values, validating them.

        Parameters
        ----------
        phi : array-like, shape ``(n_phi,)``, radians, ascending, uniform, spacing ``2*pi/n_phi``
        psi : array-like, shape ``(n_psi,)``, radians, same conditions
        z : array-like, shape ``(n_phi, n_psi)``
            ``z[i, j]`` at ``(phi[i], psi[j])``.
        source : str, optional
            Name used in error messages.

        Returns
        -------
        Grid2D
            With read-only float64 arrays.

        Raises
        ------
        ValueError
            If an angle is outside ``[-2*pi, 2*pi]`` (degrees?), the axes are not ascending and
            uniform over one period, ``z`` has the wrong shape, or a value is not finite.
        """
        phi = check_radians(phi, f"{source}: phi").reshape(-1).copy()
        psi = check_radians(psi, f"{source}: psi").reshape(-1).copy()
        if isinstance(z, torch.Tensor):
            z = z.detach().cpu().numpy()
        z = np.array(z, dtype=np.float64)
        if z.shape != (phi.size, psi.size):
            raise ValueError(
                f"{source}: wrong shape: z has shape {z.shape}, expected (n_phi, n_psi) = ({phi.size}, {psi.size})"
            )
        if not np.isfinite(z).all():
            raise ValueError(f"{source}: z contains {int((~np.isfinite(z)).sum())} NaN or infinite values")
        for name, ax in (("phi", phi), ("psi", psi)):
            if ax.size > 1 and not (np.diff(ax) > 0).all():
                raise ValueError(f"{source}: {name} must be strictly ascending")
            _check_axis(ax, name, source)
        for arr in (phi, psi, z):
            arr.setflags(write=False)
        return cls(phi, psi, z, source)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_phi, n_psi)``."""
        return self.z.shape

    @property
    def origin(self) -> tuple[float, float]:
        """``(phi[0], psi[0])`` in radians."""
        return float(self.phi[0]), float(self.psi[0])

    @property
    def spacing(self) -> tuple[float, float]:
        """Node spacing ``(2*pi/n_phi, 2*pi/n_psi)`` in radians."""
        return TWO_PI / self.z.shape[0], TWO_PI / self.z.shape[1]

    def nearest_index(self, point) -> tuple[int, int]:
        """Index ``(i, j)`` of the node nearest (periodically) to ``point = (phi, psi)`` in radians."""
        p = check_radians(point, "point").reshape(-1)
        if p.size != 2:
            raise ValueError(f"point: expected (phi, psi), got {p.size} values")
        idx = []
        for k in range(2):
            u = (p[k] - self.origin[k]) / self.spacing[k]
            idx.append(int(np.floor(u + 0.5)) % self.z.shape[k])
        return idx[0], idx[1]

    def nodes(self) -> np.ndarray:
        """All node positions, shape ``(n_phi, n_psi, 2)``, float64, radians (``"ij"`` order)."""
        P, Q = np.meshgrid(self.phi, self.psi, indexing="ij")
        return np.stack([P, Q], axis=-1)


def read_grid(path) -> Grid2D:
    """Read a ``phi psi z`` text file (see the module docstring for the format).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Grid2D

    Raises
    ------
    ValueError
        Naming the file and the problem: a row without exactly three numbers, a non-numeric
        entry, NaN/infinite values, a row count that is not ``n_phi * n_psi`` for the distinct
        angles found (wrong shape), angles outside ``[-2*pi, 2*pi]`` (degrees?), non-uniform
        spacing or a grid not covering one period, rows not ordered with phi varying fastest.

    Examples
    --------
    A grid survives a round trip through the text format:

    >>> import os, tempfile
    >>> import numpy as np
    >>> ang = -np.pi + 2 * np.pi * np.arange(6) / 6
    >>> g = Grid2D.from_arrays(ang, ang, np.sin(ang)[:, None] * np.cos(ang)[None, :])
    >>> path = os.path.join(tempfile.mkdtemp(), "surface.dat")
    >>> g2 = read_grid(write_grid(path, g))
    >>> g2.shape, bool(np.array_equal(g2.z, g.z))
    ((6, 6), True)
    """
    path = Path(path)
    source = str(path)
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not a text file (byte {exc.start} is not UTF-8); expected lines 'phi psi z'") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        if len(parts) != 3:
            raise ValueError(
                f"{source}: wrong column count at line {lineno}: expected 3 columns (phi psi z), got {len(parts)}"
            )
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise ValueError(f"{source}: non-numeric entry at line {lineno}: {s!r}") from None
    if not rows:
        raise ValueError(f"{source}: no data rows (expected lines 'phi psi z')")
    data = np.asarray(rows, dtype=np.float64)
    bad = ~np.isfinite(data)
    if bad.any():
        raise ValueError(f"{source}: {int(bad.sum())} NaN or infinite values (first in data row {int(np.argwhere(bad)[0, 0]) + 1})")
    phi_col, psi_col, z_col = data.T
    check_radians(phi_col, f"{source}: phi column")
    check_radians(psi_col, f"{source}: psi column")
    phi = _distinct(phi_col)
    psi = _distinct(psi_col)
    n_phi, n_psi = phi.size, psi.size
    if n_phi * n_psi != len(data):
        raise ValueError(
            f"{source}: wrong shape: {len(data)} rows but {n_phi} distinct phi x {n_psi} distinct psi = "
            f"{n_phi * n_psi}; the file must hold every (phi, psi) node exactly once"
        )
    _check_axis(phi, "phi", source)
    _check_axis(psi, "psi", source)
    phi_fast = (np.tile(phi, n_psi), np.repeat(psi, n_phi))
    if not _close(phi_col, phi_fast[0]) or not _close(psi_col, phi_fast[1]):
        psi_fast = (np.repeat(phi, n_psi), np.tile(psi, n_phi))
        if _close(phi_col, psi_fast[0]) and _close(psi_col, psi_fast[1]):
            raise ValueError(f"{source}: rows have psi varying fastest; the format needs phi varying fastest")
        raise ValueError(
            f"{source}: rows are not in grid order (phi varying fastest, both angles ascending)"
        )
    z = z_col.reshape(n_psi, n_phi).T
    return Grid2D.from_arrays(phi, psi, z, source=source)


def _distinct(col: np.ndarray) -> np.ndarray:
    """Sorted distinct values of ``col``, merging values closer than the angle tolerance."""
    s = np.sort(col)
    keep = np.concatenate([[True], np.diff(s) > _ANGLE_TOL])
    return s[keep]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.abs(a - b).max() <= _ANGLE_TOL)


def write_grid(path, grid: Grid2D, *, header: str = "phi psi z") -> Path:
    """Write ``grid`` in the ``phi psi z`` format, atomically (all or nothing).

    Parameters
    ----------
    path : str or Path
    grid : Grid2D
    header : str, optional
        Text of the ``#`` comment line written first.

    Returns
    -------
    Path
        ``path``; values are written with 17 significant digits, so :func:`read_grid` gives
        them back exactly (round trip in its example).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> ang = -np.pi + 2 * np.pi * np.arange(4) / 4
    >>> path = write_grid(os.path.join(tempfile.mkdtemp(), "g.dat"), Grid2D.from_arrays(ang, ang, np.zeros((4, 4))))
    >>> lines = path.read_text().splitlines()
    >>> lines[0], len(lines)                   # header, then 16 rows "phi psi z", phi fastest
    ('# phi psi z', 17)
    """
    P, Q = np.meshgrid(grid.phi, grid.psi, indexing="xy")  # (n_psi, n_phi): phi fastest when raveled
    data = np.column_stack([P.ravel(), Q.ravel(), grid.z.T.ravel()])
    with atomic_path(path) as tmp:
        np.savetxt(tmp, data, fmt="%.17e", header=header, comments="# ")
    return Path(path)


def _fractional(grid: Grid2D, points: torch.Tensor):
    """Positions in units of the spacing relative to node (0, 0): two tensors ``(*batch,)``."""
    (p0, q0), (h0, h1) = grid.origin, grid.spacing
    return (points[..., 0] - p0) / h0, (points[..., 1] - q0) / h1


def bilinear(grid: Grid2D, points) -> torch.Tensor:
    """Periodic bilinear interpolation of the raw grid values.

    This is the surface benchmark metrics are scored on (never a fitted model).

    Parameters
    ----------
    grid : Grid2D
    points : Tensor or array-like, shape ``(*batch, 2)``, radians
        ``(phi, psi)``; any real values (wrapped periodically).

    Returns
    -------
    Tensor, shape ``(*batch,)``, dtype of ``points`` (float64 for non-float input), in the unit
    of ``grid.z``. Differentiable almost everywhere with respect to ``points``.

    Raises
    ------
    ValueError
        If ``points`` does not have a last axis of length 2.

    Examples
    --------
    Exact at the nodes, linear between them, periodic:

    >>> import numpy as np, torch
    >>> ang = -np.pi + 2 * np.pi * np.arange(4) / 4            # -pi, -pi/2, 0, pi/2
    >>> g = Grid2D.from_arrays(ang, ang, np.add.outer(np.arange(4.0), np.zeros(4)))
    >>> pts = torch.tensor([[0.0, 0.0], [np.pi / 4, 1.0], [np.pi / 4 + 2 * np.pi, 1.0]])
    >>> bilinear(g, pts)
    tensor([2.0000, 2.5000, 2.5000])
    """
    x = as_tensor(points, "points")
    if x.dim() < 1 or x.shape[-1] != 2:
        raise ValueError(f"points: expected shape (*batch, 2), got {tuple(x.shape)}")
    n0, n1 = grid.shape
    z = torch.from_numpy(grid.z.copy()).to(dtype=x.dtype, device=x.device)
    u, v = _fractional(grid, x)
    fu, fv = torch.floor(u), torch.floor(v)
    tu, tv = u - fu, v - fv
    i0 = torch.remainder(fu.detach().long(), n0)
    j0 = torch.remainder(fv.detach().long(), n1)
    i1, j1 = (i0 + 1) % n0, (j0 + 1) % n1
    return ((1 - tu) * (1 - tv) * z[i0, j0] + tu * (1 - tv) * z[i1, j0]
            + (1 - tu) * tv * z[i0, j1] + tu * tv * z[i1, j1])


class PeriodicGridPotential(Potential):
    """Smooth periodic potential on the torus: the interpolating periodic cubic B-spline of a grid.

    ``U`` is C2, equals ``grid.z`` at every node and satisfies ``U(x + 2*pi*k) = U(x)``.
    Forces are analytic (the spline's exact derivative).

    Parameters
    ----------
    grid : Grid2D
    energy_unit : str, optional
        Unit of ``grid.z`` (e.g. ``"kJ/mol"``); ``"dimensionless"`` by default.

    Notes
    -----
    Positions have shape ``(*batch, 2)`` = ``(phi, psi)`` in radians, float32 or float64;
    energies have shape ``(*batch,)`` in the input's dtype. ``periods == (2*pi, 2*pi)``.
    Spline coefficients are computed once in float64 by FFT (see
    :mod:`tps.potentials._periodic_spline`). On a smooth surface sampled at 89 x 89 the
    spline error between nodes is O(h^4); benchmark metrics should still use
    :func:`bilinear` on the raw grid.

    Examples
    --------
    >>> import numpy as np, torch
    >>> ang = -np.pi + 2 * np.pi * np.arange(16) / 16
    >>> g = Grid2D.from_arrays(ang, ang, np.cos(ang)[:, None] * np.ones(16))
    >>> U = PeriodicGridPotential(g)
    >>> round(float(U.energy(torch.tensor([0.0, 1.0], dtype=torch.float64))), 9)  # node: cos(0)
    1.0
    >>> x = torch.tensor([0.5, 0.0], dtype=torch.float64)        # between nodes: ~ -sin(0.5)
    >>> round(float(U.energy(x + 2 * np.pi)), 6) == round(float(U.energy(x)), 6)
    True
    >>> round(float(U.forces(x)[0]), 2)                           # -dU/dphi ~ sin(0.5) = 0.479
    0.48
    """

    def __init__(self, grid: Grid2D, *, energy_unit: str = "dimensionless"):
        if not isinstance(grid, Grid2D):
            raise TypeError(f"grid: expected a Grid2D, got {type(grid).__name__}")
        super().__init__((2,), energy_unit=energy_unit, periods=(TWO_PI, TWO_PI))
        self.grid = grid
        self._coef64 = torch.from_numpy(_periodic_spline.spline_coefficients(grid.z))
        self._coef_cache = {}

    @classmethod
    def from_file(cls, path, *, energy_unit: str = "dimensionless") -> "PeriodicGridPotential":
        """Spline potential of the grid in a ``phi psi z`` file (see :func:`read_grid`).

        Parameters
        ----------
        path : str or Path
        energy_unit : str, optional
            Unit of the file's values.

        Returns
        -------
        PeriodicGridPotential
        """
        return cls(read_grid(path), energy_unit=energy_unit)

    def _coef(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.dtype, x.device)
        if key not in self._coef_cache:
            self._coef_cache[key] = self._coef64.to(dtype=x.dtype, device=x.device)
        return self._coef_cache[key]

    def _energy(self, x):
        u, v = _fractional(self.grid, x)
        return _periodic_spline.evaluate(self._coef(x), u, v, with_gradient=False)

    def _energy_and_forces(self, x):
        u, v = _fractional(self.grid, x)
        e, du, dv = _periodic_spline.evaluate(self._coef(x), u, v, with_gradient=True)
        h0, h1 = self.grid.spacing
        return e, -torch.stack([du / h0, dv / h1], dim=-1)

    def __repr__(self) -> str:
        return (f"PeriodicGridPotential(shape={self.grid.shape}, source={self.grid.source!r}, "
                f"energy_unit={self.energy_unit!r})")
