"""Geodesic solvers in the spacetime of a diffusion model (method.md section 4).

The curve is ``gamma(s) = (1 - s) z_a + s z_b + B(s) C`` in spacetime ``z = (x, u)``, with
``B`` the natural-cubic-spline basis of ``n_nodes`` interior nodes vanishing at both ends
(:func:`~tps.spacetime.curves.spline_basis`), evaluated at ``n_points`` equispaced ``s``; the
logSNR of a point is ``soft_clamp(u)`` (:func:`~tps.spacetime.domain.soft_clamp`), the identity
well inside the denoiser's logSNR domain and saturating smoothly at its bounds, so that no
point leaves the range the denoiser was trained on. The parameters ``C`` minimise the discrete
curve energy plus constraint penalties.

Safety (:mod:`tps.spacetime.domain`): the domain comes from the denoiser (``logsnr_range``,
carried by :class:`~tps.diffusion.DiffusionModel` and its network) or the ``logsnr_range``
argument; the objective sums absolute segment products (bounded below even where a learned
Jacobian is not positive semi-definite, and no reward for crossing such a region) while the
reported ``energy`` is the honest, unclamped estimator; every result carries :class:`~tps.spacetime.domain.GeodesicDiagnostics`
and a degenerate one raises a :class:`~tps.spacetime.domain.GeodesicWarning` (or, with
``strict=True``, a :class:`~tps.spacetime.domain.DegenerateGeodesicError`).

Solvers
-------
``"lbfgs"`` (default): full-batch L-BFGS with strong-Wolfe line search on all curve points
evaluated at once. The objective is deterministic (fixed Hutchinson probes when the
divergence is estimated), so quasi-Newton steps pay: a few hundred evaluations reach the
energy that 10 000 Adam steps reach. By default several starts whose logSNR dips to different
depths are solved as one batch on a coarse curve and the best is refined (the energy is not
convex in the curve).
``"adam"``: the reference protocol of the authors' notebooks (Adam, lr 0.1, 10 000 steps),
kept for comparisons.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from tps._validation import as_tensor, check_finite, check_positive_int
from tps.diffusion.schedule import check_logsnr
from tps.spacetime.constraints import CurveState
from tps.spacetime.curves import line_plus_spline, spline_basis
from tps.spacetime.domain import (GeodesicDiagnostics, curve_flags, margin, report, resolve_logsnr_range, soft_clamp,
                                  soft_clamp_inverse)
from tps.spacetime.geometry import call_denoiser, curve_length, rademacher, segment_terms
from tps.spacetime.lbfgs import batched_lbfgs

METHODS = ("lbfgs", "adam")
#: ``clamp`` argument -> objective: "abs" (default), "segment", "plain" (old default), "coordinate" (old clamp=True).
OBJECTIVES = {None: "abs", "abs": "abs", "segment": "segment", False: "plain", "plain": "plain", "none": "plain",
              True: "coordinate", "coordinate": "coordinate"}
#: Depths of the automatic multi-start dips below the endpoints' logSNR.
AUTO_DIP_DEPTHS = (0.0, 4.0, 8.0)


@dataclass
class GeodesicResult:
    """A solved spacetime curve.

    Attributes
    ----------
    x : Tensor, shape ``(N, *event)`` (``(P, N, *event)`` for a batch of P endpoint pairs)
        Curve points in the denoiser's coordinates.
    logsnr : Tensor, shape ``(N,)`` (or ``(P, N)``)
        Inside the denoiser's logSNR domain (``diagnostics.logsnr_range``).
    energy : Tensor, scalar (or ``(P,)``)
        Honest discrete curve energy of the returned curve: unclamped segment products, no
        penalties (negative only if the denoiser's Jacobian is not positive semi-definite).
    objective : Tensor, scalar (or ``(P,)``)
        What was minimised: the (clamped, see ``clamp``) energy plus constraint penalties.
    initial_energy, initial_objective : Tensor
        The same for the initial curve (straight line at constant logSNR by default).
    history : list of float
        Total objective (summed over pairs) at every objective evaluation (L-BFGS line-search
        evaluations included; one per step for Adam), across all stages of a multi-start solve.
    n_evaluations : int
        Objective+gradient evaluations (each evaluates all curve points of the stage).
    wall_s : float
    method : str
    nodes : Tensor, shape ``(P, n_nodes, d + 1)``
        Spline node values (space coordinates, then the unconstrained logSNR variable ``u``).
    diagnostics : GeodesicDiagnostics
        Iterations, convergence, honest energy history, negative-segment and at-bound fractions.

    Examples
    --------
    With ``max_iter=0`` the solver returns its initial curve, the straight line at constant
    logSNR:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)         # the two modes
    >>> from tps.spacetime import geodesic
    >>> res = geodesic(gmm, a, b, logsnr=4.0, n_points=9, n_nodes=4, max_iter=0, init_dips=())
    >>> res.x.shape, res.logsnr.unique(), res.nodes.shape
    (torch.Size([9, 2]), tensor([4.], dtype=torch.float64), torch.Size([1, 4, 3]))
    >>> bool(res.energy == res.initial_energy), round(float(res.energy), 1)
    (True, 111.0)
    >>> res.diagnostics.ok, res.diagnostics.logsnr_range, res.diagnostics.range_source
    (True, (-12.0, 12.0), 'model')
    """

    x: torch.Tensor
    logsnr: torch.Tensor
    energy: torch.Tensor
    objective: torch.Tensor
    initial_energy: torch.Tensor
    initial_objective: torch.Tensor
    history: list = field(default_factory=list)
    n_evaluations: int = 0
    wall_s: float = 0.0
    method: str = "lbfgs"
    nodes: Optional[torch.Tensor] = None
    diagnostics: Optional[GeodesicDiagnostics] = None


def _endpoint_logsnr(logsnr, name="logsnr"):
    try:
        [float(v) for v in (logsnr if isinstance(logsnr, (tuple, list)) else (logsnr,))]
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or a pair (logsnr_a, logsnr_b), got {logsnr!r}") from None
    if isinstance(logsnr, (tuple, list)):
        if len(logsnr) != 2:
            raise ValueError(f"{name}: expected a number or a pair (logsnr_a, logsnr_b), got {logsnr!r}")
        lam = check_logsnr(torch.tensor([float(v) for v in logsnr], dtype=torch.float64), name)
        return float(lam[0]), float(lam[1])
    lam = float(check_logsnr(torch.tensor([float(logsnr)], dtype=torch.float64), name)[0])
    return lam, lam


def _prepare_endpoints(denoiser, x_a, x_b, batched):
    x_a = as_tensor(x_a, "x_a")
    x_b = as_tensor(x_b, "x_b")
    check_finite(x_a, "x_a")
    check_finite(x_b, "x_b")
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_b: expected the same shape as x_a {tuple(x_a.shape)}, got {tuple(x_b.shape)}")
    event = getattr(denoiser, "event_shape", None)
    if batched is None:
        batched = event is not None and x_a.dim() == len(event) + 1
    if event is not None:
        want = x_a.shape[1:] if batched else x_a.shape
        if tuple(want) != tuple(event):
            raise ValueError(
                f"x_a: expected shape {tuple(event)} (or (P, {', '.join(map(str, event))}) for a batch) "
                f"to match the denoiser, got {tuple(x_a.shape)}"
            )
    if not batched:
        x_a, x_b = x_a[None], x_b[None]
    return x_a, x_b, batched


class _Problem:
    """The objective of P curves at one resolution: honest energy, clamped objective, penalties."""

    def __init__(self, denoiser, x_a, x_b, lam_a, lam_b, lo, hi, n_points, n_nodes, constraints, divergence,
                 n_probes, seed, objective):
        self.denoiser, self.lo, self.hi = denoiser, lo, hi
        self.n_points, self.constraints, self.divergence, self.objective = n_points, constraints, divergence, objective
        self.lam_a, self.lam_b = lam_a, lam_b
        dtype, device = x_a.dtype, x_a.device
        self.P, self.event = x_a.shape[0], tuple(x_a.shape[1:])
        self.d = d = math.prod(self.event)
        u_a, u_b = soft_clamp_inverse(lam_a, lo, hi), soft_clamp_inverse(lam_b, lo, hi)
        self.u_a, self.u_b = u_a, u_b
        self.start = torch.cat([x_a.reshape(self.P, d), torch.full((self.P, 1), u_a, dtype=dtype, device=device)], 1)
        self.end = torch.cat([x_b.reshape(self.P, d), torch.full((self.P, 1), u_b, dtype=dtype, device=device)], 1)
        self.basis = spline_basis(n_points, n_nodes, dtype=dtype, device=device)
        self.probes = None
        if divergence == "hutchinson":
            g = torch.Generator().manual_seed(seed)
            self.probes = rademacher((n_probes, self.P, n_points) + self.event, dtype=dtype, generator=g).to(device)
        self.n_eval = 0
        self.energy_history = []

    def evaluate(self, nodes, iteration=0):
        P, n, d = self.P, self.n_points, self.d
        z = line_plus_spline(self.start, self.end, nodes, self.basis)
        x = z[..., :d].reshape((P, n) + self.event)
        lam = soft_clamp(z[..., d], self.lo, self.hi)
        first = torch.full((P, 1), self.lam_a, dtype=lam.dtype, device=lam.device)
        last = torch.full((P, 1), self.lam_b, dtype=lam.dtype, device=lam.device)
        lam = torch.cat([first, lam[:, 1:-1], last], 1)  # the endpoints exactly
        terms, (eta_x, eta_t, mu_x, mu_t) = segment_terms(self.denoiser, x, lam, divergence=self.divergence,
                                                          probes=self.probes)
        prods = terms.sum(-1)
        scale = 0.5 * (n - 1)
        energy = scale * prods.sum(1)
        if self.objective == "plain":
            objective = energy
        elif self.objective == "coordinate":
            objective = scale * terms.clamp_min(0).sum(-1).sum(1)
        elif self.objective == "segment":
            objective = scale * prods.clamp_min(0).sum(1)
        else:
            objective = scale * prods.abs().sum(1)
        if self.constraints:
            state = CurveState(x, lam, eta_x, eta_t, mu_x, mu_t, self.denoiser, iteration)
            for c in self.constraints:
                objective = objective + c.penalty(state)
        self.n_eval += 1
        self.energy_history.append(float(energy.detach().sum()))
        return x, lam, energy, objective, prods

    def dip_nodes(self, dip, dtype, device):
        """Nodes whose logSNR profile dips parabolically to ``dip`` mid-way (in the ``u`` variable)."""
        s = torch.arange(1, self.basis.shape[1] + 1, dtype=dtype, device=device) / (self.basis.shape[1] + 1)
        base = (1 - s) * self.u_a + s * self.u_b
        nodes = torch.zeros(self.P, self.basis.shape[1], self.d + 1, dtype=dtype, device=device)
        nodes[:, :, self.d] = (soft_clamp_inverse(dip, self.lo, self.hi) - base) * 4 * s * (1 - s)
        return nodes


def _optimise(problem, nodes0, *, method, max_iter, n_steps, lr, tolerance, progress):
    """Minimise ``problem``'s objective from ``nodes0``; returns the best nodes seen and run statistics."""
    nodes = nodes0.detach().clone().requires_grad_(True)
    _, _, _, o0, _ = problem.evaluate(nodes)
    best = {"obj": float(o0.detach().sum()), "nodes": nodes.detach().clone()}
    history = [best["obj"]]
    stats = {"iterations": 0, "converged": max_iter == 0 if method == "lbfgs" else False}

    def remember(obj, nodes_):
        v = float(obj.detach().sum())
        if math.isfinite(v) and v < best["obj"]:
            best["obj"], best["nodes"] = v, nodes_.detach().clone()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter if method == "lbfgs" else n_steps, desc=f"geodesic ({method})", leave=False,
                   disable=None)
    try:
        if method == "lbfgs" and max_iter > 0:
            max_eval = max_iter * 5 // 4
            opt = torch.optim.LBFGS([nodes], lr=1.0 if lr is None else lr, max_iter=max_iter, max_eval=max_eval,
                                    history_size=20, tolerance_grad=1e-10, tolerance_change=tolerance,
                                    line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                _, _, _, obj, _ = problem.evaluate(nodes)
                total = obj.sum()
                total.backward()
                remember(obj, nodes)
                history.append(float(total.detach()))
                if bar is not None:
                    bar.update(1)
                return total

            opt.step(closure)
            st = opt.state[nodes]
            stats["iterations"] = int(st.get("n_iter", 0))
            stats["converged"] = stats["iterations"] < max_iter and int(st.get("func_evals", 0)) < max_eval
        elif method == "adam":
            opt = torch.optim.Adam([nodes], lr=0.1 if lr is None else lr)
            for step in range(n_steps):
                opt.zero_grad()
                _, _, _, obj, _ = problem.evaluate(nodes, step)
                total = obj.sum()
                total.backward()
                remember(obj, nodes)  # before the step: obj belongs to these nodes
                opt.step()
                history.append(float(total.detach()))
                stats["iterations"] = step + 1
                if bar is not None:
                    bar.update(1)
            k = max(1, n_steps // 10)
            stats["converged"] = len(history) > k and abs(history[-1] - history[-1 - k]) <= 1e-3 * abs(history[-1])
    except KeyboardInterrupt:
        pass  # keep the best curve found so far
    finally:
        if bar is not None:
            bar.close()
    return best["nodes"], history, stats


def _resolve_dips(init_dips, init_nodes, lam_a, lam_b, lo, hi):
    if init_nodes is not None:
        return (), False
    if init_dips is None or (isinstance(init_dips, str) and init_dips == "auto"):
        m = margin(lo, hi)
        top = min(lam_a, lam_b, hi - m)
        dips = []
        for depth in AUTO_DIP_DEPTHS:
            v = max(top - depth, lo + m)
            if all(abs(v - w) > 0.5 for w in dips):
                dips.append(v)
        return tuple(dips), True
    if isinstance(init_dips, str):
        raise ValueError(f"init_dips: expected 'auto', () or a sequence of logSNR values, got {init_dips!r}")
    dips = tuple(float(v) for v in init_dips)
    for v in dips:
        if not lo <= v <= hi:
            raise ValueError(f"init_dips: {v:g} is outside the logSNR domain [{lo:g}, {hi:g}]; give dips inside it")
    return dips, False


def geodesic(denoiser, x_a, x_b, *, logsnr=4.0, n_points: int = 128, n_nodes: int = 10,
             constraints: Sequence = (), method: str = "lbfgs", max_iter: int = 300, n_steps: int = 10_000,
             lr: Optional[float] = None, divergence: str = "exact", n_probes: int = 1, clamp=None,
             logsnr_range=None, tolerance: float = 1e-9, batched: Optional[bool] = None, seed: int = 0, dtype=None,
             coarse_points: Optional[int] = None, coarse_iter: Optional[int] = None, init_nodes=None,
             init_dips="auto", strict: bool = False, progress: bool = False) -> GeodesicResult:
    """Shortest path in the Fisher-Rao spacetime geometry between ``(x_a, logsnr_a)`` and ``(x_b, logsnr_b)``.

    Parameters
    ----------
    denoiser : callable
        ``(B, *event), (B,) -> (B, *event)`` x0-predictor. If it has an ``event_shape``
        attribute, endpoint shapes are checked against it; a ``logsnr_range`` attribute (as on a
        :class:`~tps.diffusion.DiffusionModel` and its network) gives its valid logSNR domain.
    x_a, x_b : Tensor, shape ``event`` or ``(P, *event)``
        Endpoints in the denoiser's (model) coordinates (a batch of P pairs is solved at once).
    logsnr : float or (float, float)
        Anchor noise level(s) of the endpoints (the metric degenerates at zero noise).
    n_points : int
        Curve discretisation ``N``.
    n_nodes : int
        Interior spline nodes of the correction.
    constraints : sequence of constraint objects
        Each with ``penalty(CurveState) -> (P,)`` (see :mod:`tps.spacetime.constraints`).
    method : {"lbfgs", "adam"}
    max_iter : int
        L-BFGS iterations (of each stage).
    n_steps, lr : int, float
        Adam steps and learning rate (reference protocol: 10 000, 0.1).
    divergence : {"exact", "hutchinson"}
        Hutchinson probes are drawn once (``seed``) and kept fixed (common random numbers).
    n_probes : int
        Hutchinson probes per curve point.
    clamp : {None, "abs", "segment", False, True}
        The objective. ``None`` (default, = ``"abs"``): the sum of the absolute segment
        products, bounded below even where a learned Jacobian is not positive semi-definite,
        equal to the plain energy where every segment is non-negative, and -- unlike clamping
        them at zero (``"segment"``), which makes such regions free to cross -- charging a
        negative segment its magnitude, so the curve has no reason to seek them. ``False``
        (or ``"plain"``): the plain sum (unbounded below where segments can be negative).
        ``True`` (or ``"coordinate"``): per-coordinate ReLU of the products (see
        :func:`~tps.spacetime.geometry.segment_products`). The reported ``energy`` is always
        the plain, unclamped sum.
    logsnr_range : (float, float), optional
        The denoiser's valid logSNR domain; every curve point stays strictly inside it. Default:
        ``denoiser.logsnr_range``; for a denoiser without one, the conservative
        ``(min(lam_a, lam_b) - 4, max(lam_a, lam_b) + 4)`` of the endpoints' logSNR (clipped to
        ``[-12, 12]``), with a one-time :class:`~tps.spacetime.domain.LogSNRRangeWarning`
        saying how to widen it.
    tolerance : float
        L-BFGS stops when the objective changes less than this (relative to its size).
    batched : bool, optional
        Whether ``x_a`` carries a leading batch dimension; inferred from ``denoiser.event_shape``.
    seed : int
        Seed of the Hutchinson probes.
    dtype : torch.dtype, optional
        Computation dtype (default: that of ``x_a``).
    coarse_points : int, optional
        Multi-start: the starts are solved on this many curve points (default ``min(n_points,
        32)`` for automatic starts, ``n_points`` for explicit ``init_dips``). Single start:
        coarse-to-fine, first solve on this many points then refine at ``n_points``.
    coarse_iter : int, optional
        L-BFGS iterations of the coarse stage (default ``max(10, max_iter // 20)``, at most
        ``max_iter``, for automatic starts: enough to tell the basins apart; else ``max_iter``).
    init_nodes : Tensor, shape ``(P, n_nodes, d + 1)``, optional
        Initial spline nodes: one start from this curve (overrides ``init_dips``).
    init_dips : "auto" or sequence of float
        Multi-start: the energy is not convex in the curve (a curve can lower its cost by moving
        through noise, and how deep it dips is a discrete choice between basins of the
        optimiser). For each value, a start whose logSNR profile dips parabolically to that
        value mid-way is optimised, all starts of all pairs as one batch (on ``coarse_points``
        for ``coarse_iter`` iterations); the best start of each pair is then refined at
        ``n_points``. ``"auto"`` (default): dips to ``lam, lam - 4, lam - 8`` with ``lam`` the
        lower endpoint logSNR, limited to the domain (L-BFGS; Adam starts from the straight
        line). ``()``: a single start from the straight line at constant logSNR (the solver's
        behaviour before multi-start became the default).
    strict : bool
        Raise :class:`~tps.spacetime.domain.DegenerateGeodesicError` instead of warning when the
        result is flagged (see ``diagnostics``).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    GeodesicResult
        Curve points ``x`` ``(N, *event)`` (or ``(P, N, *event)``) and ``logsnr`` ``(N,)``
        (or ``(P, N)``) whose first and last points are exactly the given endpoints, with
        ``diagnostics``.

    Raises
    ------
    ValueError
        If ``method``, ``divergence`` or ``clamp`` is unknown, ``n_points < 3``, a constraint
        lacks a ``penalty`` method, the endpoints differ in shape or do not match
        ``denoiser.event_shape``, ``logsnr`` is outside the schedule range, or
        ``logsnr_range`` is not an increasing pair containing the endpoints' logSNR.
    DegenerateGeodesicError
        With ``strict=True``, if negative segment products carry more than 5 % of the
        curve's absolute energy or more than 5 % of its points sit at a domain bound.

    Warns
    -----
    GeodesicWarning
        In those cases without ``strict``.
    LogSNRRangeWarning
        Once per denoiser without a known logSNR range.

    Notes
    -----
    The returned curve is never worse (in objective) than the initial curve (straight line
    at constant logSNR, or ``init_nodes``).

    Examples
    --------
    Between the two modes of a Gaussian mixture the geodesic leaves the straight line through
    the empty middle by adding noise (its logSNR dips), and its energy drops well below the
    line's:

    >>> import torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)         # the two modes
    >>> res = geodesic(gmm, a, b, logsnr=4.0, n_points=12, n_nodes=4, max_iter=10)
    >>> torch.equal(res.x[0], a), torch.equal(res.x[-1], b), res.logsnr[[0, -1]].tolist()
    (True, True, [4.0, 4.0])
    >>> bool(res.energy < res.initial_energy / 2), bool(res.logsnr.min() < 1.0), res.diagnostics.starts
    (True, True, (4.0, 0.0, -4.0))

    Constraints add penalties; :class:`LowVariance` keeps the logSNR near or above its threshold:

    >>> from tps.spacetime import LowVariance
    >>> res = geodesic(gmm, a, b, logsnr=4.0, n_points=12, n_nodes=4, max_iter=10,
    ...                constraints=(LowVariance(3.0),))
    >>> bool(res.logsnr.min() > 2.5)
    True

    A raw callable without a known domain is kept near the endpoints' logSNR (here ``[0, 8]``)
    unless given ``logsnr_range``:

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     res = geodesic(lambda x, lam: gmm(x, lam), a, b, n_points=12, n_nodes=4, max_iter=10)
    >>> res.diagnostics.logsnr_range, res.diagnostics.range_source, bool(res.logsnr.min() > 0)
    ((0.0, 8.0), 'default', True)
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    try:
        objective_kind = OBJECTIVES[clamp]
    except (KeyError, TypeError):
        raise ValueError(f"clamp: expected None ('abs'), 'segment', False ('plain') or True ('coordinate'), "
                         f"got {clamp!r}") from None
    n_points = check_positive_int(n_points, "n_points")
    n_nodes = check_positive_int(n_nodes, "n_nodes")
    if n_points < 3:
        raise ValueError(f"n_points: expected at least 3, got {n_points}")
    for c in constraints:
        if not hasattr(c, "penalty"):
            raise TypeError(f"constraints: expected objects with a penalty(state) method, got {type(c).__name__}")
    lam_a, lam_b = _endpoint_logsnr(logsnr)
    x_a, x_b, batched = _prepare_endpoints(denoiser, x_a, x_b, batched)
    if dtype is not None:
        x_a, x_b = x_a.to(dtype), x_b.to(dtype)
    dtype, device = x_a.dtype, x_a.device
    lo, hi, source = resolve_logsnr_range(denoiser, logsnr_range, (lam_a, lam_b))
    P, event = x_a.shape[0], tuple(x_a.shape[1:])
    d = math.prod(event)
    if init_nodes is not None:
        init_nodes = as_tensor(init_nodes, "init_nodes").to(dtype=dtype, device=device)
        if tuple(init_nodes.shape) != (P, n_nodes, d + 1):
            raise ValueError(f"init_nodes: expected shape {(P, n_nodes, d + 1)}, got {tuple(init_nodes.shape)}")
    dips, auto = _resolve_dips(init_dips, init_nodes, lam_a, lam_b, lo, hi)
    if auto and method == "adam":  # Adam has no cheap coarse stage: the reference protocol's single start
        dips = ()
    # check the denoiser's output shape once, with a clear error
    with torch.no_grad():
        call_denoiser(denoiser, x_a, torch.full((P,), lam_a, dtype=dtype, device=device))

    def problem(xa, xb, n):
        return _Problem(denoiser, xa, xb, lam_a, lam_b, lo, hi, n, n_nodes, constraints, divergence, n_probes, seed,
                        objective_kind)

    opt_kw = dict(method=method, n_steps=n_steps, lr=lr, tolerance=tolerance, progress=progress)
    fine = problem(x_a, x_b, n_points)
    start_nodes = init_nodes if init_nodes is not None else torch.zeros(P, n_nodes, d + 1, dtype=dtype, device=device)
    with torch.no_grad():
        _, _, initial_energy, initial_objective, _ = fine.evaluate(start_nodes)
    fine.n_eval, fine.energy_history = 0, []
    n_eval, energy_history, history = 0, [], []
    if dips:
        cp = coarse_points or (min(n_points, 32) if auto else n_points)
        ci = coarse_iter or (min(max_iter, max(10, max_iter // 20)) if auto else max_iter)
        S = len(dips)
        rep = (S,) + (1,) * len(event)
        coarse = problem(x_a.repeat(rep), x_b.repeat(rep), cp)
        one = problem(x_a, x_b, cp)  # the P pairs once: dip_nodes needs their shapes and end logSNR only
        nodes0 = torch.cat([one.dip_nodes(dip, dtype, device) for dip in dips])  # start-major
        if method == "lbfgs" and auto:  # independent starts: own step lengths and curvature pairs
            cnodes, _, info = batched_lbfgs(lambda v: coarse.evaluate(v)[3], nodes0, max_iter=ci, tolerance=tolerance)
            h = info["history"]
        else:  # explicit dips: one L-BFGS on the summed objective (as before multi-start was the default)
            cnodes, h, _ = _optimise(coarse, nodes0, max_iter=ci, **opt_kw)
        with torch.no_grad():
            _, _, _, cobj, _ = coarse.evaluate(cnodes)
        best = cobj.reshape(S, P).argmin(0)
        start_nodes = cnodes.reshape((S, P) + tuple(cnodes.shape[1:]))[best, torch.arange(P)]
        n_eval, energy_history, history = coarse.n_eval, coarse.energy_history, h
    elif coarse_points is not None and coarse_points < n_points:
        coarse = problem(x_a, x_b, coarse_points)
        start_nodes, h, _ = _optimise(coarse, start_nodes, max_iter=coarse_iter or max_iter, **opt_kw)
        coarse.evaluate(start_nodes.detach())
        n_eval, energy_history, history = coarse.n_eval, coarse.energy_history, h
    final_nodes, h, stats = _optimise(fine, start_nodes, max_iter=max_iter, **opt_kw)
    with torch.no_grad():
        x, lam, energy, objective, prods = fine.evaluate(final_nodes)
    worse = objective > initial_objective  # never return a curve worse than the initial one
    if bool(worse.any()):
        init = init_nodes if init_nodes is not None else torch.zeros_like(final_nodes)
        final_nodes = torch.where(worse[:, None, None], init, final_nodes)
        with torch.no_grad():
            x, lam, energy, objective, prods = fine.evaluate(final_nodes)
    history = history + h
    n_eval += fine.n_eval
    energy_history = energy_history + fine.energy_history
    neg, at_bound, problems = curve_flags(prods, lam, lo, hi)
    diagnostics = GeodesicDiagnostics(
        iterations=stats["iterations"], evaluations=n_eval, converged=bool(stats["converged"]),
        energy_history=tuple(energy_history), negative_fraction=neg, bound_fraction=at_bound,
        logsnr_min=float(lam.min()), logsnr_max=float(lam.max()), logsnr_range=(lo, hi), range_source=source,
        objective=objective_kind, starts=dips, problems=problems)
    report(diagnostics, strict=strict, stacklevel=3)
    x, lam, energy, objective = x.detach(), lam.detach(), energy.detach(), objective.detach()
    initial_energy, initial_objective = initial_energy.detach(), initial_objective.detach()
    if not batched:
        x, lam, energy, objective = x[0], lam[0], energy[0], objective[0]
        initial_energy, initial_objective = initial_energy[0], initial_objective[0]
    return GeodesicResult(x, lam, energy, objective, initial_energy, initial_objective, history, n_eval,
                          time.perf_counter() - t0, method, final_nodes.detach(), diagnostics)


def edit_distance(denoiser, x_a, x_b, *, logsnr=4.0, n_points: int = 64, divergence: str = "exact",
                  logsnr_range=None, **solver_kwargs) -> torch.Tensor:
    """Diffusion Edit Distance: the Fisher-Rao length of the spacetime geodesic joining two data points.

    Endpoints are anchored at ``logsnr`` (default 4). Extra keyword arguments go to
    :func:`geodesic`.

    Parameters
    ----------
    denoiser : callable
        ``(B, *event), (B,) -> (B, *event)`` x0-predictor.
    x_a, x_b : Tensor, shape ``event`` or ``(P, *event)``
        Data points in the denoiser's coordinates.
    logsnr : float
        Noise level at which both endpoints are anchored.
    n_points : int
        Curve discretisation.
    divergence : {"exact", "hutchinson"}
    logsnr_range : (float, float), optional
        The denoiser's valid logSNR domain (see :func:`geodesic`; default ``denoiser.logsnr_range``).
    **solver_kwargs
        Passed to :func:`geodesic` (e.g. ``n_nodes``, ``max_iter``, ``constraints``, ``strict``).

    Returns
    -------
    Tensor, scalar (or ``(P,)`` for batched endpoints), dimensionless, detached.

    Examples
    --------
    >>> import torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)         # the two modes
    >>> d_ab = edit_distance(gmm, a, b, n_points=12, n_nodes=4, max_iter=10)
    >>> d_ba = edit_distance(gmm, b, a, n_points=12, n_nodes=4, max_iter=10)
    >>> round(float(d_ab), 2), round(float(d_ba), 2)          # symmetric
    (6.4, 6.4)
    """
    result = geodesic(denoiser, x_a, x_b, logsnr=logsnr, n_points=n_points, divergence=divergence,
                      logsnr_range=logsnr_range, **solver_kwargs)
    return curve_length(denoiser, result.x, result.logsnr, divergence=divergence, clamp=False,
                        logsnr_range=result.diagnostics.logsnr_range).detach()
