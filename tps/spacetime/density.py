"""Density geodesics at one noise level (method.md section 6; Yu et al., CVPR 2025).

A path ``gamma`` between two fixed points minimises the length in a metric conformal to a
density ``p``,

    L[gamma] = integral p(gamma(s))^(-beta) ||gamma'(s)|| ds,

so that it prefers regions of high density. The Euler-Lagrange equation of ``L`` says that the
curvature of the path balances the normal component of ``beta * grad log p``; the steepest-descent
flow of ``L`` moves every point along the normal component of

    beta * score(gamma) + gamma'' / ||gamma'||^2,

with ``score = grad log p`` and ``gamma'' / ||gamma'||^2`` the curvature vector (the path's discrete
second derivative over its squared speed). For a Boltzmann density ``p ~ exp(-U/kT)``,
``p^(-beta) = exp(beta U / kT)``: as ``beta`` grows the score term dominates, the path follows
``grad U`` (a zero-temperature string) and its highest energy approaches the minimax
(bottleneck) value; at ``beta = 0`` the path is a straight line.

The solver is the boundary-value scheme of the paper: knots on the path (endpoints fixed), each
iteration moves the interior knots along the normal component of the score term (explicit) and
the curvature term (implicit: one linear solve, stable at any step size), then redistributes the
knots evenly in arc length; the step decays geometrically, and the knot count grows from coarse
to fine by inserting midpoints. Only the score is needed (no divergence, no density values); a
``log_density`` attached to the score (as by :func:`exact_boltzmann_score`) is used to record the
objective.

Two scores are provided: :func:`exact_boltzmann_score` (``-grad U / kT`` of a potential, the path
lives in physical coordinates) and :func:`learned_score` (the score of the noisy marginal at one
logSNR from any x0-denoiser, ``(alpha D(x, lam) - x) / sigma^2``; the path then lives in noisy
model coordinates at that logSNR, and restraint centres for sampling are ``x / alpha``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from tps._validation import as_tensor, check_finite, check_positive, check_positive_int
from tps.diffusion.schedule import alpha_sigma, check_logsnr
from tps.spacetime.domain import check_curve_range


@dataclass
class DensityGeodesicResult:
    """A solved density geodesic.

    Attributes
    ----------
    x : Tensor, shape ``(N, *event)``
        Knots of the path, ``x[0] = x_a`` and ``x[-1] = x_b``, evenly spaced in arc length.
    history : list of float
        Convergence residual after every iteration (all levels): the root-mean-square over
        interior knots of the normal component of ``beta * score + curvature``, times the knot
        spacing (dimensionless: 0 at a geodesic).
    objective_history : list of float
        ``log L`` (log of the discrete length ``sum_i p(mid_i)^(-beta) ||x_{i+1} - x_i||``) at
        every iteration, when the score carries a ``log_density``; empty otherwise.
    beta : float
        The density exponent used.
    n_score_evals : int
        Knots at which the score was evaluated, summed over iterations.
    n_knots_per_level : list of int
        Knot count of each coarse-to-fine level.
    wall_s : float
        Seconds spent.

    Examples
    --------
    At ``beta = 0`` the metric is Euclidean and the geodesic is the straight line, knots evenly
    spaced:

    >>> import torch
    >>> from tps.potentials import Harmonic
    >>> from tps.spacetime import density_geodesic, exact_boltzmann_score
    >>> r = density_geodesic(exact_boltzmann_score(Harmonic((2,)), 1.0), torch.tensor([-1.0, 0.0]),
    ...                      torch.tensor([1.0, 0.0]), beta=0.0, n_knots=5, n_iter=5)
    >>> r.x[:, 0].tolist(), r.x[:, 1].abs().max().item(), r.n_knots_per_level
    ([-1.0, -0.5, 0.0, 0.5, 1.0], 0.0, [5])
    """

    x: torch.Tensor
    history: list = field(default_factory=list)
    objective_history: list = field(default_factory=list)
    beta: float = 0.0
    n_score_evals: int = 0
    n_knots_per_level: list = field(default_factory=list)
    wall_s: float = 0.0


class BoltzmannScore:
    """Exact score ``-grad U / kT`` of a Boltzmann density ``p ~ exp(-U/kT)``.

    Parameters
    ----------
    potential : Potential
    kT : float
        Thermal energy in the potential's unit.
    count : bool
        Count evaluations in ``potential.n_evals`` (default False: the path is a restraint
        schedule, not sampling cost; its cost is reported as ``n_score_evals``).

    Notes
    -----
    ``log_density(x) = -U(x)/kT`` (unnormalised) is available for the objective. Called on
    positions ``(B, *event)`` it returns the score ``(B, *event)`` in 1/length units.

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import Harmonic
    >>> score = BoltzmannScore(Harmonic((2,), k=4.0), kT=2.0)
    >>> x = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    >>> score(x), score.log_density(x)          # -k x / kT and -k |x|^2 / (2 kT)
    (tensor([[-1.,  2.]], dtype=torch.float64), tensor([-1.2500], dtype=torch.float64))
    """

    def __init__(self, potential, kT: float, *, count: bool = False):
        self.potential = potential
        self.kT = check_positive(kT, "kT")
        self.count = bool(count)
        self.event_shape = tuple(potential.event_shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        _, f = self.potential.energy_and_forces(x, count=self.count)
        return (f / self.kT).to(x.dtype)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised ``log p(x) = -U(x)/kT``, shape ``(B,)``."""
        return (-self.potential.energy(x, count=self.count) / self.kT).to(x.dtype)


def exact_boltzmann_score(potential, kT: float, *, count: bool = False) -> BoltzmannScore:
    """The exact score ``-grad U / kT`` of a potential at temperature ``kT`` (see :class:`BoltzmannScore`).

    Parameters
    ----------
    potential : Potential
    kT : float
        Thermal energy in the potential's unit (12.5 for the Muller-Brown benchmark).
    count : bool, optional
        Count evaluations in ``potential.n_evals``.

    Returns
    -------
    BoltzmannScore

    Raises
    ------
    ValueError
        If ``kT`` is not positive.

    Examples
    --------
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> score = exact_boltzmann_score(mb.potential, mb.kT)
    >>> score(mb.endpoints["A"][None]).abs().max() < 1e-2   # a minimum: zero score
    tensor(True)
    """
    return BoltzmannScore(potential, kT, count=count)


class LearnedScore:
    """Score of the noisy marginal at one logSNR from an x0-denoiser: ``(alpha D(x, lam) - x) / sigma^2``.

    Parameters
    ----------
    denoiser : callable
        ``(B, *event), (B,) -> (B, *event)`` x0-predictor in model coordinates.
    logsnr : float
        The fixed noise level ``lam``.
    logsnr_range : (float, float), optional
        The denoiser's valid logSNR domain (default: its ``logsnr_range`` attribute, as on a
        :class:`~tps.diffusion.DiffusionModel` and its network; no check beyond the schedule
        range for a denoiser without one).

    Raises
    ------
    ValueError
        If ``logsnr`` is outside the schedule range or the denoiser's domain.

    Notes
    -----
    Called on noisy model coordinates ``(B, *event)``, returns the score ``(B, *event)``
    (detached, no gradient through the network), in the input's dtype.

    Examples
    --------
    Standard normal data stay standard normal under the variance-preserving schedule, so the
    score of the noisy marginal is ``-x`` at every logSNR:

    >>> import torch
    >>> from tps.diffusion.gaussian import Gaussian
    >>> score = LearnedScore(Gaussian([0.0, 0.0], 1.0), logsnr=2.0)
    >>> score(torch.tensor([[0.5, -1.0]], dtype=torch.float64))
    tensor([[-0.5000,  1.0000]], dtype=torch.float64)
    """

    def __init__(self, denoiser: Callable, logsnr: float, *, logsnr_range=None):
        self.denoiser = denoiser
        lam = check_logsnr(torch.tensor([float(logsnr)], dtype=torch.float64), "logsnr")
        check_curve_range(denoiser, lam, logsnr_range)
        self.logsnr = float(lam[0])
        alpha, sigma = alpha_sigma(lam)
        self.alpha, self.sigma = float(alpha[0]), float(sigma[0])
        params = list(denoiser.parameters()) if isinstance(denoiser, torch.nn.Module) else []
        buffers = list(denoiser.buffers()) if isinstance(denoiser, torch.nn.Module) else []
        floats = [t for t in params + buffers if t.is_floating_point()]
        self.dtype = floats[0].dtype if floats else None
        self.event_shape = getattr(denoiser, "event_shape", None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xin = x if self.dtype is None else x.to(self.dtype)
        lam = torch.full((x.shape[0],), self.logsnr, dtype=xin.dtype)
        with torch.no_grad():
            d = self.denoiser(xin, lam)
        return ((self.alpha * d.to(x.dtype) - x) / self.sigma**2).detach()


def learned_score(denoiser: Callable, logsnr: float, *, logsnr_range=None) -> LearnedScore:
    """Score of the noisy marginal at ``logsnr`` from any x0-denoiser (see :class:`LearnedScore`).

    The path solved with it lives in noisy model coordinates at ``logsnr``; the restraint centre
    of a point ``x`` is ``x / alpha`` (what :func:`tps.sampling.annealed_langevin` computes from a
    constant-logSNR curve).

    Parameters
    ----------
    denoiser : callable
        ``(B, *event), (B,) -> (B, *event)`` x0-predictor in model coordinates.
    logsnr : float
        The noise level, inside the schedule range and the denoiser's domain.
    logsnr_range : (float, float), optional
        The denoiser's valid logSNR domain (default ``denoiser.logsnr_range`` if it has one).

    Returns
    -------
    LearnedScore

    Raises
    ------
    ValueError
        If ``logsnr`` is outside the denoiser's domain (the score would be an extrapolation):

        >>> learned_score(lambda x, lam: x, 5.0, logsnr_range=(-2.0, 4.0))
        Traceback (most recent call last):
            ...
        ValueError: logsnr: 5 lies outside the denoiser's domain [-2, 4] (from the argument logsnr_range); keep logSNR inside it (the geodesic solver does) or pass a logsnr_range the denoiser is valid on

    Examples
    --------
    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])
    >>> score = learned_score(gmm, 4.0)
    >>> torch.allclose(score(torch.zeros(1, 2, dtype=torch.float64)), torch.zeros(1, 2, dtype=torch.float64))
    True
    """
    return LearnedScore(denoiser, logsnr, logsnr_range=logsnr_range)


# ---------------------------------------------------------------------------- path helpers
def _arc_length(x: torch.Tensor) -> torch.Tensor:
    seg = (x[1:] - x[:-1]).norm(dim=-1)
    return torch.cat([torch.zeros(1, dtype=x.dtype), seg.cumsum(0)])


def _redistribute(x: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` knots evenly spaced in arc length along the polyline ``x`` of shape ``(M, d)``."""
    s = _arc_length(x)
    if float(s[-1]) == 0.0:
        return x[:1].expand(n, -1).clone()
    t = torch.linspace(0, float(s[-1]), n, dtype=x.dtype)
    idx = torch.searchsorted(s, t, right=True).clamp(1, x.shape[0] - 1)
    s0, s1 = s[idx - 1], s[idx]
    w = ((t - s0) / (s1 - s0).clamp(min=1e-300)).clamp(0, 1)[:, None]
    out = (1 - w) * x[idx - 1] + w * x[idx]
    out[0], out[-1] = x[0], x[-1]
    return out


def _normal_part(v: torch.Tensor, tangent: torch.Tensor) -> torch.Tensor:
    return v - (v * tangent).sum(-1, keepdim=True) * tangent


def _levels(n_knots: int, n_coarse: int) -> list:
    sizes = [n_knots]
    while (sizes[-1] - 1) // 2 + 1 >= n_coarse and sizes[-1] > n_coarse:
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes[::-1]


def density_geodesic(score: Callable, x_a, x_b, *, beta: float, n_knots: int = 64, n_iter: int = 200,
                     step_size: float = 0.5, final_step_size: float = 0.01, n_coarse: int = 9,
                     init=None, tolerance: float = 0.0) -> DensityGeodesicResult:
    """Shortest path between ``x_a`` and ``x_b`` in the metric ``p^(-beta) * Euclidean`` at one noise level.

    Parameters
    ----------
    score : callable
        ``(B, *event) -> (B, *event)``, ``grad log p`` (e.g. :func:`exact_boltzmann_score` or
        :func:`learned_score`); an optional ``score.log_density(x) -> (B,)`` is used to record
        the objective.
    x_a, x_b : Tensor, shape ``event``
        Fixed endpoints, in the score's coordinates.
    beta : float
        Density exponent, ``>= 0``. ``0``: straight line; large: the path follows the score
        (minimum-energy path for a Boltzmann density).
    n_knots : int
        Knots of the returned path (``>= 3``), endpoints included.
    n_iter : int
        Iterations at each knot level.
    step_size, final_step_size : float
        Largest knot move per iteration, as a fraction of the knot spacing, at the first and the
        last iteration of each level (geometric decay in between). The curvature term is taken
        implicitly, so only the explicit score term is limited by the step.
    n_coarse : int
        Knots of the coarsest level; the count roughly doubles (midpoints inserted) up to
        ``n_knots``.
    init : Tensor, shape ``(M, *event)``, optional
        Initial path from ``x_a`` to ``x_b`` (default: the straight line), resampled to the
        coarse level.
    tolerance : float
        Stop a level early when the residual (see :class:`DensityGeodesicResult`) drops below it
        (default 0: run all iterations).

    Returns
    -------
    DensityGeodesicResult

    Raises
    ------
    ValueError
        If ``score`` is not callable, the endpoints differ in shape or are not finite, ``beta``
        is negative or not finite, or a count or step is out of range.

    Examples
    --------
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> r = density_geodesic(exact_boltzmann_score(mb.potential, mb.kT), mb.endpoints["A"], mb.endpoints["B"],
    ...                      beta=10.0, n_knots=17, n_iter=40)
    >>> r.x.shape, bool((r.x[0] == mb.endpoints["A"]).all()), bool((r.x[-1] == mb.endpoints["B"]).all())
    (torch.Size([17, 2]), True, True)
    >>> abs(float(mb.potential.energy(r.x, count=False).max()) - (-40.66)) < 0.5   # U(S1), the minimax value
    True
    """
    if not callable(score):
        raise ValueError(f"score: expected a callable (B, *event) -> (B, *event), got {type(score).__name__}")
    x_a = as_tensor(x_a, "x_a")
    x_b = as_tensor(x_b, "x_b")
    check_finite(x_a, "x_a")
    check_finite(x_b, "x_b")
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_b: expected the same shape as x_a {tuple(x_a.shape)}, got {tuple(x_b.shape)}")
    if x_a.dim() == 0:
        raise ValueError("x_a: expected at least one coordinate (shape event), got a scalar")
    try:
        beta = float(beta)
    except Exception as exc:
        raise ValueError(f"beta: expected a number >= 0, got {beta!r}") from exc
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta: expected a finite number >= 0, got {beta!r}")
    n_knots = check_positive_int(n_knots, "n_knots")
    if n_knots < 3:
        raise ValueError(f"n_knots: expected at least 3 knots, got {n_knots}")
    n_iter = check_positive_int(n_iter, "n_iter")
    step_size = check_positive(step_size, "step_size")
    final_step_size = check_positive(final_step_size, "final_step_size")
    n_coarse = check_positive_int(n_coarse, "n_coarse")
    if n_coarse < 3:
        raise ValueError(f"n_coarse: expected at least 3 knots, got {n_coarse}")
    if not (math.isfinite(float(tolerance)) and float(tolerance) >= 0):
        raise ValueError(f"tolerance: expected a finite number >= 0, got {tolerance!r}")

    event = tuple(x_a.shape)
    dtype = x_a.dtype if x_a.dtype in (torch.float32, torch.float64) else torch.float64
    a, b = x_a.reshape(-1).to(dtype), x_b.reshape(-1).to(dtype)
    levels = _levels(n_knots, min(n_coarse, n_knots))
    if init is None:
        s = torch.linspace(0, 1, levels[0], dtype=dtype)[:, None]
        x = (1 - s) * a + s * b
    else:
        init = as_tensor(init, "init").to(dtype)
        check_finite(init, "init")
        if init.dim() != len(event) + 1 or tuple(init.shape[1:]) != event or init.shape[0] < 2:
            raise ValueError(f"init: expected shape (M >= 2, {', '.join(map(str, event))}), got {tuple(init.shape)}")
        init = init.reshape(init.shape[0], -1).clone()
        init[0], init[-1] = a, b
        x = _redistribute(init, levels[0])
    log_density = getattr(score, "log_density", None)

    def evaluate_score(pts):
        out = score(pts.reshape((-1,) + event))
        out = torch.as_tensor(out)
        if tuple(out.shape) != (pts.shape[0],) + event:
            raise ValueError(f"score: expected an output of shape {(pts.shape[0],) + event}, got {tuple(out.shape)}")
        return out.reshape(pts.shape[0], -1).to(dtype)

    def objective(pts):
        mid = 0.5 * (pts[1:] + pts[:-1])
        lp = torch.as_tensor(log_density(mid.reshape((-1,) + event))).to(dtype)
        seg = (pts[1:] - pts[:-1]).norm(dim=-1).clamp(min=1e-300)
        return float(torch.logsumexp(-beta * lp + seg.log(), 0))

    t0 = time.perf_counter()
    history, objective_history = [], []
    n_evals = 0
    for li, n in enumerate(levels):
        if li > 0:
            x = _redistribute(x, n)
        m = n - 2  # interior knots
        decay = (final_step_size / step_size) ** (1.0 / max(n_iter - 1, 1))
        for it in range(n_iter):
            eta_frac = step_size * decay**it
            inner = x[1:-1]
            chord = x[2:] - x[:-2]                       # central differences, (m, d)
            chord_sq = (chord * chord).sum(-1).clamp(min=1e-300)
            tangent = chord / chord_sq.sqrt()[:, None]
            h = float(_arc_length(x)[-1]) / (n - 1)      # knot spacing after redistribution
            if beta > 0:
                force = beta * _normal_part(evaluate_score(inner), tangent)
                n_evals += m
            else:
                force = torch.zeros_like(inner)
            curvature = 4.0 * (x[2:] - 2 * inner + x[:-2]) / chord_sq[:, None]
            residual = force + _normal_part(curvature, tangent)
            history.append(float(residual.norm(dim=-1).pow(2).mean().sqrt()) * h)
            if log_density is not None:
                objective_history.append(objective(x))
            if tolerance > 0 and history[-1] < tolerance:
                break
            # Step: the largest explicit (score) move is eta_frac * h; curvature term implicit.
            fmax = float(force.norm(dim=-1).max()) if m else 0.0
            eta = eta_frac * h / fmax if fmax > 0 else eta_frac * h * h
            eta = min(eta, eta_frac * h * h * 1e6)
            # (I - eta D L) x_new = x + eta * force, D = 4 / |chord|^2, endpoints as boundary values.
            diag_w = eta * 4.0 / chord_sq
            A = torch.diag(1 + 2 * diag_w)
            if m > 1:
                A = A - torch.diag(diag_w[1:], -1) - torch.diag(diag_w[:-1], 1)
            rhs = inner + eta * force
            rhs[0] = rhs[0] + diag_w[0] * x[0]
            rhs[-1] = rhs[-1] + diag_w[-1] * x[-1]
            new_inner = torch.linalg.solve(A, rhs)
            x = torch.cat([x[:1], new_inner, x[-1:]])
            x = _redistribute(x, n)
            if not torch.isfinite(x).all():
                raise ValueError("score: the path became non-finite; check the score or lower step_size")
    if x.shape[0] != n_knots:
        x = _redistribute(x, n_knots)
    return DensityGeodesicResult(x=x.reshape((n_knots,) + event), history=history,
                                 objective_history=objective_history, beta=beta, n_score_evals=n_evals,
                                 n_knots_per_level=list(levels), wall_s=time.perf_counter() - t0)
