"""The minimax (bottleneck) lower bound on the maximum energy of any path between two states.

For continuous paths from ``a`` to ``b`` the quantity ``min over paths of max U on the path``
is the energy of the highest saddle that must be crossed (benchmarks.md section 1,
``lower_bound``). On a grid it is the bottleneck shortest path: the path between two cells
whose highest cell is as low as possible. It is computed exactly as the largest value on the
path joining the two cells in a minimum spanning tree of the grid graph (edge weight = the
larger of its two cell values); among the cells no higher than that value, the returned path
is the one with the fewest steps.

:func:`bottleneck_path` works on a raw array; :func:`grid_lower_bound` takes coordinates and
either a :class:`~tps.potentials.grid.Grid2D` (periodic in both angles) or any 2-D
:class:`~tps.potentials.base.Potential` evaluated on a box at a given spacing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from tps.potentials.base import Potential
from tps.potentials.grid import Grid2D, check_radians

_OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


def _edges(shape, periodic, connectivity):
    """Undirected neighbour pairs of a 2-D grid as flat indices, each pair once, no self-loops."""
    n0, n1 = shape
    I, J = np.meshgrid(np.arange(n0), np.arange(n1), indexing="ij")
    us, vs = [], []
    for d0, d1 in _OFFSETS[connectivity]:
        I2, J2 = I + d0, J + d1
        keep = np.ones(shape, dtype=bool)
        if periodic[0]:
            I2 = I2 % n0
        else:
            keep &= (I2 >= 0) & (I2 < n0)
        if periodic[1]:
            J2 = J2 % n1
        else:
            keep &= (J2 >= 0) & (J2 < n1)
        us.append((I * n1 + J)[keep])
        vs.append((I2 * n1 + J2)[keep])
    u, v = np.concatenate(us), np.concatenate(vs)
    if all(n >= 3 for n, p in zip(shape, periodic) if p):
        return u, v  # every pair is distinct and no cell is its own neighbour
    # A periodic axis of length 1 or 2 makes self-loops and repeated pairs: keep each pair once.
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    key = np.unique(lo[lo != hi] * (n0 * n1) + hi[lo != hi])
    return key // (n0 * n1), key % (n0 * n1)


def _bfs_path(n, u, v, start, end):
    """Fewest-step path from ``start`` to ``end`` on the undirected graph (u, v); None if none."""
    graph = coo_matrix((np.ones(u.size), (u, v)), shape=(n, n)).tocsr()
    _, pred = breadth_first_order(graph, start, directed=False, return_predecessors=True)
    if end != start and pred[end] < 0:
        return None
    path = [end]
    while path[-1] != start:
        path.append(pred[path[-1]])
    return np.asarray(path[::-1], dtype=np.int64)


def _check_index(index, shape, name):
    idx = tuple(int(i) for i in np.asarray(index).reshape(-1))
    if len(idx) != 2 or not all(0 <= i < n for i, n in zip(idx, shape)):
        raise ValueError(f"{name}: expected a cell index (i, j) with 0 <= i < {shape[0]}, 0 <= j < {shape[1]}, got {index!r}")
    return idx


def bottleneck_path(z, start_index, end_index, *, periodic=(True, True), connectivity: int = 8):
    """Minimax path between two cells of a 2-D grid.

    Minimises, over all paths of neighbouring cells from ``start_index`` to ``end_index``,
    the largest cell value on the path (both end cells included).

    Parameters
    ----------
    z : array-like or Tensor, shape ``(n0, n1)``
        Cell values (e.g. energies); finite.
    start_index, end_index : pair of int
        Cell indices ``(i, j)``.
    periodic : pair of bool, optional
        Whether axis 0 / axis 1 wraps around (default both, for dihedral angles).
    connectivity : {4, 8}, optional
        Neighbours of a cell: the 4 sharing an edge, or the 8 sharing an edge or a corner.

    Returns
    -------
    value : float
        The minimax value, in the unit of ``z``.
    path_indices : ndarray, shape ``(n_cells, 2)``, int64
        A minimax path (the one with the fewest steps among them), starting at
        ``start_index`` and ending at ``end_index``; consecutive cells are neighbours
        (through the periodic boundary where ``periodic``).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.zeros((5, 5)); z[2, :] = 10.0; z[2, 3] = 4.0  # a wall with a gap of height 4
    >>> value, path = bottleneck_path(z, (0, 0), (4, 0), periodic=(False, False))
    >>> value
    4.0
    """
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().numpy()
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"z: expected a 2-D array, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"z: expected finite values, found {int((~np.isfinite(z)).sum())} NaN or infinite entries")
    if connectivity not in _OFFSETS:
        raise ValueError(f"connectivity: expected 4 or 8, got {connectivity!r}")
    periodic = tuple(bool(p) for p in periodic)
    if len(periodic) != 2:
        raise ValueError(f"periodic: expected two booleans, got {periodic!r}")
    s = _check_index(start_index, z.shape, "start_index")
    e = _check_index(end_index, z.shape, "end_index")
    n1 = z.shape[1]
    flat = z.ravel()
    si, ei = s[0] * n1 + s[1], e[0] * n1 + e[1]
    n = flat.size
    if si == ei:
        return float(flat[si]), np.asarray([s], dtype=np.int64)
    u, v = _edges(z.shape, periodic, connectivity)
    # Edge weight: the larger cell value, shifted to be > 0 (sparse graphs drop zero weights).
    w = np.maximum(flat[u], flat[v]) - flat.min() + 1.0
    mst = minimum_spanning_tree(coo_matrix((w, (u, v)), shape=(n, n)).tocsr()).tocoo()
    tree_path = _bfs_path(n, mst.row, mst.col, si, ei)
    if tree_path is None:  # pragma: no cover - a grid graph is connected
        raise ValueError("no path between start_index and end_index")
    value = float(flat[tree_path].max())
    low = flat <= value
    keep = low[u] & low[v]
    path = _bfs_path(n, u[keep], v[keep], si, ei)
    return value, np.stack([path // n1, path % n1], axis=1)


@dataclass(frozen=True)
class LowerBound:
    """Result of :func:`grid_lower_bound`.

    Attributes
    ----------
    value : float
        Minimax energy over grid paths, in the surface's energy unit.
    path : ndarray, shape ``(n_cells, 2)``, float64
        Coordinates of the cells on a minimax path (radians for dihedral grids).
    path_indices : ndarray, shape ``(n_cells, 2)``, int64
    start_index, end_index : tuple of int
        Cells nearest to the requested endpoints.
    shape : tuple of int
        Grid shape ``(n0, n1)``.
    spacing : tuple of float
        Grid spacing along each coordinate.

    Examples
    --------
    Returned by :func:`grid_lower_bound` (Muller-Brown example there).
    """

    value: float
    path: np.ndarray
    path_indices: np.ndarray
    start_index: tuple
    end_index: tuple
    shape: tuple
    spacing: tuple


def _nearest(coord: float, origin: float, h: float, n: int, period: Optional[float], name: str) -> int:
    k = int(math.floor((coord - origin) / h + 0.5))
    if period is not None:
        return k % n
    if not 0 <= k < n:
        raise ValueError(f"{name}: coordinate {coord:g} lies outside the box [{origin:g}, {origin + (n - 1) * h:g}]")
    return k


def grid_lower_bound(surface, start, end, *, box: Optional[Sequence] = None, spacing=None,
                     connectivity: int = 8, chunk_size: int = 65536) -> LowerBound:
    """Minimax lower bound between two points, from a grid surface or a 2-D potential.

    Parameters
    ----------
    surface : Grid2D or Potential
        A :class:`Grid2D` is used as is (periodic in both angles, endpoints in radians).
        A 2-D :class:`Potential` (``event_shape == (2,)``) is evaluated in float64 on the
        nodes ``lo + k * spacing`` of ``box``; coordinates with a period in
        ``surface.periods`` wrap (their box defaults to ``[-p/2, p/2)`` and their spacing is
        adjusted so that a whole number of cells fills the period). Evaluations are not
        counted in ``surface.n_evals`` (a metric, not sampling cost).
    start, end : pair of float
        Endpoint coordinates; each is mapped to the nearest grid node.
    box : ((lo0, hi0), (lo1, hi1)), optional
        Required for non-periodic coordinates of a potential; inclusive bounds.
    spacing : float or pair of float, optional
        Required for a potential: node spacing in its coordinate unit.
    connectivity : {4, 8}, optional
    chunk_size : int, optional
        Nodes per energy call.

    Returns
    -------
    LowerBound

    Notes
    -----
    Accuracy on Muller-Brown, minimum A -> minimum B, box [-1.5, 1.2] x [-0.5, 2.0] (the
    continuous bound is U(S1) = -40.6648, S1 refined by Newton's method), measured when this
    module was written:

    ======== ============ ============
    spacing  8 neighbours 4 neighbours
    ======== ============ ============
    0.05     -41.023      -40.394
    0.02     -40.671      -40.655
    0.01     -40.671      -40.659
    0.005    -40.667      -40.665
    ======== ============ ============

    so 0.01 or finer is within 0.01 of the bound (0.005: 541 x 501 nodes, about 0.3 s). A grid
    path can step diagonally past the saddle, so the 8-neighbour value may lie slightly below
    the continuous bound; a coarse 4-neighbour grid tends to lie above it. On the reference
    alanine dipeptide grid (benchmarks.md section 2) the value between (-2.55, 2.70) and
    (0.95, -0.40) is 36.336 with either connectivity, periodic or not.

    Examples
    --------
    >>> from tps.potentials import MullerBrown
    >>> mb = MullerBrown()
    >>> lb = grid_lower_bound(mb, (-0.5582, 1.4417), (0.6235, 0.0280),
    ...                       box=((-1.5, 1.2), (-0.5, 2.0)), spacing=0.01)
    >>> round(lb.value, 1)
    -40.7
    """
    if isinstance(surface, Grid2D):
        start = check_radians(start, "start").reshape(-1)
        end = check_radians(end, "end").reshape(-1)
        z, axes, periods = surface.z, (surface.phi, surface.psi), (2 * math.pi, 2 * math.pi)
        spacings = surface.spacing
    elif isinstance(surface, Potential):
        if surface.event_shape != (2,):
            raise ValueError(f"surface: expected a 2-D potential (event_shape (2,)), got {surface.event_shape}")
        if spacing is None:
            raise ValueError("spacing: required when surface is a Potential (node spacing in its coordinate unit)")
        sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (2,))
        if not (np.isfinite(sp).all() and (sp > 0).all()):
            raise ValueError(f"spacing: expected positive numbers, got {spacing!r}")
        periods = tuple(surface.periods) if surface.periods is not None else (None, None)
        axes, spacings = [], []
        for k in range(2):
            p = periods[k]
            if p is not None:
                lo = -0.5 * p if box is None else float(box[k][0])
                n = max(1, int(round(p / sp[k])))
                h = p / n
            else:
                if box is None:
                    raise ValueError("box: required for non-periodic coordinates, e.g. ((x_lo, x_hi), (y_lo, y_hi))")
                lo, hi = float(box[k][0]), float(box[k][1])
                if not hi > lo:
                    raise ValueError(f"box: expected lo < hi on axis {k}, got ({lo}, {hi})")
                n = int(math.floor((hi - lo) / sp[k] + 1e-9)) + 1
                h = float(sp[k])
            axes.append(lo + h * np.arange(n))
            spacings.append(h)
        spacings = tuple(spacings)
        z = _evaluate(surface, axes, chunk_size)
        start = np.asarray(start, dtype=np.float64).reshape(-1)
        end = np.asarray(end, dtype=np.float64).reshape(-1)
    else:
        raise TypeError(f"surface: expected a Grid2D or a Potential, got {type(surface).__name__}")
    for name, pt in (("start", start), ("end", end)):
        if pt.size != 2:
            raise ValueError(f"{name}: expected two coordinates, got {pt.size}")
    s_idx = tuple(_nearest(start[k], axes[k][0], spacings[k], axes[k].size, periods[k], "start") for k in range(2))
    e_idx = tuple(_nearest(end[k], axes[k][0], spacings[k], axes[k].size, periods[k], "end") for k in range(2))
    value, idx = bottleneck_path(z, s_idx, e_idx, periodic=tuple(p is not None for p in periods),
                                 connectivity=connectivity)
    path = np.stack([axes[0][idx[:, 0]], axes[1][idx[:, 1]]], axis=1)
    return LowerBound(value, path, idx, s_idx, e_idx, tuple(z.shape), tuple(float(h) for h in spacings))


def _evaluate(potential: Potential, axes, chunk_size: int) -> np.ndarray:
    """Energies on the ``"ij"`` mesh of ``axes``, shape ``(n0, n1)``, float64, uncounted."""
    X, Y = np.meshgrid(axes[0], axes[1], indexing="ij")
    pts = torch.from_numpy(np.stack([X.ravel(), Y.ravel()], axis=1))
    out = np.empty(pts.shape[0])
    with torch.no_grad():
        for i in range(0, pts.shape[0], chunk_size):
            out[i:i + chunk_size] = potential.energy(pts[i:i + chunk_size], count=False).cpu().numpy()
    return out.reshape(X.shape)
