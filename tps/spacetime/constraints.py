"""Constraints on spacetime curves, added to the curve energy as penalties (method.md section 4).

A constraint is any object with ``penalty(state) -> Tensor (P,)`` where ``state`` is a
:class:`CurveState`. Constraints compose: ``geodesic(..., constraints=(LowVariance(3.0),
RegionAvoidance(x_star, ...)))`` adds their penalties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from tps.spacetime.geometry import expectation_parameters, kl_along_curve


@dataclass
class CurveState:
    """Everything a constraint may look at, for P curves of N points.

    Attributes
    ----------
    x : Tensor, shape ``(P, N, *event)``
        Curve points (model coordinates).
    logsnr : Tensor, shape ``(P, N)``
    eta_x, mu_x : Tensor, shape ``(P, N, d)``
        Natural and expectation parameters of the space part (``d = prod(event)``).
    eta_t, mu_t : Tensor, shape ``(P, N)``
        The noise part.
    denoiser : callable
        The x0-predictor the curve lives in.
    iteration : int
        Optimiser step (for penalty ramps).

    Examples
    --------
    The solver builds one per objective evaluation; by hand, from
    :func:`~tps.spacetime.geometry.segment_products`:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)         # the two modes
    >>> from tps.spacetime import CurveState
    >>> from tps.spacetime.geometry import segment_products
    >>> line = a + torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * (b - a)    # (9, 2)
    >>> lam = torch.full((9,), 4.0, dtype=torch.float64)
    >>> _, params = segment_products(gmm, line[None], lam[None], return_parameters=True)
    >>> state = CurveState(line[None], lam[None], *params, denoiser=gmm)
    >>> state.mu_x.shape, state.mu_t.shape
    (torch.Size([1, 9, 2]), torch.Size([1, 9]))
    """

    x: torch.Tensor
    logsnr: torch.Tensor
    eta_x: torch.Tensor
    eta_t: torch.Tensor
    mu_x: torch.Tensor
    mu_t: torch.Tensor
    denoiser: object
    iteration: int = 0


def softplus_k(u: torch.Tensor, sharpness: float) -> torch.Tensor:
    """``softplus(sharpness * u) / sharpness``: a smooth ``max(u, 0)``, elementwise.

    Examples
    --------
    >>> import torch
    >>> softplus_k(torch.tensor([-1.0, 0.0, 1.0]), 10.0)       # log(2)/10 at 0
    tensor([4.5399e-06, 6.9315e-02, 1.0000e+00])
    """
    return F.softplus(u, beta=sharpness)


class LowVariance:
    """Keep every denoising distribution narrow: ``weight * mean_n softplus_k(threshold - logsnr_n)``.

    Parameters
    ----------
    threshold : float
        logSNR below which the penalty grows (``rho``; 3 in the paper).
    weight : float
        Multiplier of the penalty (in units of curve energy).
    sharpness : float
        ``k`` of the softplus (10 in the paper).

    Examples
    --------
    A curve at logSNR 4 costs almost nothing below a threshold of 3, and ``weight`` per unit of
    logSNR below a threshold of 5:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)         # the two modes
    >>> from tps.spacetime import CurveState
    >>> from tps.spacetime.geometry import segment_products
    >>> line = a + torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * (b - a)    # (9, 2)
    >>> lam = torch.full((9,), 4.0, dtype=torch.float64)
    >>> _, params = segment_products(gmm, line[None], lam[None], return_parameters=True)
    >>> state = CurveState(line[None], lam[None], *params, denoiser=gmm)
    >>> from tps.spacetime import LowVariance
    >>> LowVariance(3.0).penalty(state), LowVariance(5.0).penalty(state)
    (tensor([0.0005], dtype=torch.float64), tensor([100.0005], dtype=torch.float64))
    """

    def __init__(self, threshold: float = 3.0, *, weight: float = 100.0, sharpness: float = 10.0):
        self.threshold, self.weight, self.sharpness = float(threshold), float(weight), float(sharpness)

    def penalty(self, state: CurveState) -> torch.Tensor:
        """Penalty of each curve, shape ``(P,)``."""
        return self.weight * softplus_k(self.threshold - state.logsnr, self.sharpness).mean(1)

    def __repr__(self):
        return f"LowVariance(threshold={self.threshold}, weight={self.weight})"


class RegionAvoidance:
    """Keep the curve's denoising distributions far, in KL, from ``p(x0 | z*)``.

    Penalty ``weight * mean_k softplus_k(threshold - KL_rel_k)`` with
    ``KL_rel_k = KL(p(.|z*) || p(.|gamma_k)) - KL(p(.|z*) || p(.|gamma_0))`` computed by
    :func:`~tps.spacetime.geometry.kl_along_curve`. The threshold is therefore relative to the
    first curve point: a point where ``KL_rel`` falls below it is "too close" to ``z*``.
    Combine with :class:`LowVariance` so that the curve cannot escape by adding noise.

    Parameters
    ----------
    x_star : Tensor, shape ``event`` (model coordinates)
        The point to avoid.
    logsnr_star : float
        Noise level of ``z*`` (4 in the paper).
    threshold : float
        ``rho2`` (-4350 in the paper's 2-D alanine dipeptide setting; problem-specific).
    weight, sharpness : float
        Multiplier of the penalty and ``k`` of the softplus.
    divergence : {"exact", "hutchinson"}
        How ``mu(z*)`` is computed (once, then cached).

    Examples
    --------
    The straight line between the modes passes ``z* = (0, 0)``: mid-way the relative KL is most
    negative, so a threshold of 0 is violated there:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)         # the two modes
    >>> from tps.spacetime import CurveState
    >>> from tps.spacetime.geometry import segment_products
    >>> line = a + torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * (b - a)    # (9, 2)
    >>> lam = torch.full((9,), 4.0, dtype=torch.float64)
    >>> _, params = segment_products(gmm, line[None], lam[None], return_parameters=True)
    >>> state = CurveState(line[None], lam[None], *params, denoiser=gmm)
    >>> from tps.spacetime import RegionAvoidance
    >>> avoid = RegionAvoidance(torch.tensor([0.0, 0.0]), logsnr_star=4.0, threshold=0.0)
    >>> kl = avoid.relative_kl(state)
    >>> int(kl.argmin()), round(float(kl.min()), 1), round(float(avoid.penalty(state)), 2)
    (4, -30.9, 17.38)
    """

    def __init__(self, x_star, *, logsnr_star: float = 4.0, threshold: float, weight: float = 1.0,
                 sharpness: float = 10.0, divergence: str = "exact"):
        self.x_star = torch.as_tensor(x_star)
        self.logsnr_star = float(logsnr_star)
        self.threshold, self.weight, self.sharpness = float(threshold), float(weight), float(sharpness)
        self.divergence = divergence
        self._mu_star = None

    def mu_star(self, denoiser, like: torch.Tensor):
        """Expectation parameters ``(mu_x (d,), mu_t scalar)`` of ``z*``, cached per dtype."""
        if self._mu_star is None or self._mu_star[0].dtype != like.dtype:
            x = self.x_star.to(like)[None]
            lam = torch.full((1,), self.logsnr_star, dtype=like.dtype, device=like.device)
            with torch.no_grad():
                mx, mt = expectation_parameters(denoiser, x, lam, divergence=self.divergence)
            self._mu_star = (mx.reshape(-1).detach(), mt[0].detach())
        return self._mu_star

    def relative_kl(self, state: CurveState) -> torch.Tensor:
        """``KL_rel`` of every curve point, shape ``(P, N)`` (see :func:`kl_along_curve`)."""
        mx, mt = self.mu_star(state.denoiser, state.mu_x)
        return kl_along_curve(state.eta_x, state.eta_t, state.mu_x, state.mu_t, mx, mt)

    def penalty(self, state: CurveState) -> torch.Tensor:
        """Penalty of each curve, shape ``(P,)``."""
        kl = self.relative_kl(state)
        return self.weight * softplus_k(self.threshold - kl, self.sharpness).mean(1)

    def __repr__(self):
        return f"RegionAvoidance(logsnr_star={self.logsnr_star}, threshold={self.threshold}, weight={self.weight})"
