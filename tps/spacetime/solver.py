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

import torch

from tps._validation import as_tensor, check_positive_int
from tps.spacetime.domain import GeodesicDiagnostics, curve_flags, report, resolve_logsnr_range
from tps.spacetime.geometry import call_denoiser, curve_length
from tps.spacetime.lbfgs import batched_lbfgs
from tps.spacetime.options import GeodesicOptions
from tps.spacetime.solver_parts import (AUTO_DIP_DEPTHS, METHODS, OBJECTIVES, GeodesicResult, _endpoint_logsnr,
                                        _optimise, _prepare_endpoints, _Problem, _resolve_dips)

__all__ = ["geodesic", "edit_distance", "GeodesicResult", "GeodesicOptions", "METHODS", "OBJECTIVES",
           "AUTO_DIP_DEPTHS"]



def geodesic(denoiser, x_a, x_b, options: GeodesicOptions = None, **overrides) -> GeodesicResult:
    """Shortest path in the Fisher-Rao spacetime geometry between ``(x_a, logsnr_a)`` and ``(x_b, logsnr_b)``.

    Parameters
    ----------
    denoiser : callable
        ``(B, *event), (B,) -> (B, *event)`` x0-predictor. If it has an ``event_shape``
        attribute, endpoint shapes are checked against it; a ``logsnr_range`` attribute (as on a
        :class:`~tps.diffusion.DiffusionModel` and its network) gives its valid logSNR domain.
    x_a, x_b : Tensor, shape ``event`` or ``(P, *event)``
        Endpoints in the denoiser's (model) coordinates (a batch of P pairs is solved at once).
    options : GeodesicOptions, optional
        Every setting below as one frozen object (:class:`~tps.spacetime.options.GeodesicOptions`,
        default: its defaults); a system's protocol carries one through the pipeline.
    **overrides
        Any of the settings below as keywords, applied on top of ``options`` (keyword calls
        without ``options`` work as they always did).
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
    TypeError
        If an override is not a setting name (see :class:`~tps.spacetime.options.GeodesicOptions`).
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

    The same settings as one object (what a system's protocol carries); keywords override it:

    >>> from tps.spacetime.options import GeodesicOptions
    >>> opts = GeodesicOptions(logsnr=4.0, n_points=12, n_nodes=4, max_iter=10)
    >>> torch.equal(geodesic(gmm, a, b, opts).x, geodesic(gmm, a, b, logsnr=4.0, n_points=12, n_nodes=4,
    ...                                                    max_iter=10).x)
    True
    >>> geodesic(gmm, a, b, opts, n_points=9).x.shape
    torch.Size([9, 2])

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
    o = GeodesicOptions.from_kwargs(options, **overrides)
    logsnr, n_points, n_nodes, constraints, method = o.logsnr, o.n_points, o.n_nodes, o.constraints, o.method
    max_iter, n_steps, lr, divergence, n_probes, clamp = o.max_iter, o.n_steps, o.lr, o.divergence, o.n_probes, o.clamp
    logsnr_range, tolerance, batched, seed, dtype = o.logsnr_range, o.tolerance, o.batched, o.seed, o.dtype
    coarse_points, coarse_iter, init_nodes, init_dips = o.coarse_points, o.coarse_iter, o.init_nodes, o.init_dips
    strict, progress = o.strict, o.progress
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
