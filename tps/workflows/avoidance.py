"""Region avoidance for all-atom geodesics: "not through this conformation" (method.md section 4).

A :class:`~tps.spacetime.RegionAvoidance` constraint keeps the denoising distributions of the
curve far, in KL, from ``p(. | z*)``. On a molecule ``z*`` is a structure; this module makes
it one and gives it thresholds:

1. **What to avoid.** A structure (a PDB file, :func:`read_structure_to_avoid`, or frames of the
   training data) or a (phi, psi) point, mapped to its ``k`` nearest training frames in periodic
   (phi, psi) distance (:func:`frames_near_phipsi`): frames the model was trained on, so that
   ``p(. | z*)`` is something the model knows. Several structures give several ``z*``.
2. **Model coordinates** exactly as the endpoints (:mod:`tps.workflows.cartesian`): centred,
   Kabsch-rotated onto the start structure, divided by the model's scale
   (:func:`avoided_model_coordinates`).
3. **Thresholds from the unconstrained curve** (:func:`avoidance_constraints`; nothing tuned
   per run). For each ``z*_j`` the relative KL profile ``KL_rel_j(k)`` of the unconstrained
   curve (exact divergence) has its closest approach ``m_j = min_k KL_rel_j(k)`` and the nearer
   endpoint's value ``e_j = min(0, KL_rel_j(N - 1))`` (``KL_rel_j(0) = 0``). The depth
   ``D_j = e_j - m_j`` is how much closer to ``z*_j`` the curve gets than its endpoints are;
   ``D_j <= 0`` means the unconstrained curve is nearest ``z*_j`` at an endpoint (the region
   contains an endpoint, or the route already keeps away) and is refused. The threshold is
   ``rho2_j = m_j + depth_fraction * D_j`` (default 1/2: the constrained curve must stay out of
   the nearer half of the unconstrained curve's KL dip towards ``z*_j``). The weight makes the
   unconstrained curve's summed penalty ``penalty_ratio`` (default 10) times its curve energy.
   A :class:`~tps.spacetime.LowVariance` term with ``rho`` = the unconstrained curve's lowest
   logSNR keeps the curve from escaping by adding noise (avoidance is not bought with more noise
   than the free curve already used).
4. **Measure** (:func:`closest_approach`): the paths' smallest RMSD to the avoided structures
   and smallest periodic (phi, psi) distance to the avoided point.

Units: nm, rad; KL values are dimensionless (nats), model coordinates are dimensionless.

The steps live in three modules, all of whose names this module re-exports: what to avoid
(:mod:`tps.workflows.avoidance_targets`), thresholds and the solve (here), measures on the
paths (:mod:`tps.workflows.avoidance_measures`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from tps.diffusion.checkpoint import DiffusionModel
from tps.workflows.avoidance_measures import closest_approach, crossing_channels
from tps.workflows.avoidance_targets import (
    avoided_model_coordinates, check_endpoints_outside, frames_near_phipsi, read_structure_to_avoid,
)

__all__ = [
    "AvoidanceRule", "Avoidance", "read_structure_to_avoid", "frames_near_phipsi",
    "avoided_model_coordinates", "relative_kl_profiles",
    "check_endpoints_outside", "avoidance_constraints", "solve_avoiding", "closest_approach", "crossing_channels",
]


# ----------------------------------------------------------------------------- thresholds
@dataclass(frozen=True)
class AvoidanceRule:
    """How the avoidance thresholds and weights follow from the unconstrained curve (module docstring, step 3).

    Attributes
    ----------
    depth_fraction : float
        ``rho2_j = m_j + depth_fraction * D_j`` (0 < f < 1; default 0.5).
    penalty_ratio : float
        The unconstrained curve's summed avoidance penalty, in units of its curve energy (default 10).
    sharpness : float
        ``k`` of the softplus (in 1/nats).
    logsnr_star : float, optional
        Noise level of every ``z*`` (default: the endpoints' anchor logSNR).
    low_variance_weight : float
        Weight of the :class:`~tps.spacetime.LowVariance` term whose threshold ``rho`` is the
        unconstrained curve's lowest logSNR; 0 leaves it out.

    Examples
    --------
    >>> AvoidanceRule()
    AvoidanceRule(depth_fraction=0.5, penalty_ratio=10.0, sharpness=10.0, logsnr_star=None, low_variance_weight=10000.0)
    >>> AvoidanceRule(depth_fraction=1.5)
    Traceback (most recent call last):
        ...
    ValueError: depth_fraction: expected a number in (0, 1), got 1.5
    """

    depth_fraction: float = 0.5
    penalty_ratio: float = 10.0
    sharpness: float = 10.0
    logsnr_star: Optional[float] = None
    low_variance_weight: float = 1e4

    def __post_init__(self):
        if not 0.0 < float(self.depth_fraction) < 1.0:
            raise ValueError(f"depth_fraction: expected a number in (0, 1), got {self.depth_fraction!r}")
        for name in ("penalty_ratio", "sharpness"):
            v = float(getattr(self, name))
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        if not (float(self.low_variance_weight) >= 0 and math.isfinite(float(self.low_variance_weight))):
            raise ValueError(f"low_variance_weight: expected a number >= 0, got {self.low_variance_weight!r}")


@dataclass
class Avoidance:
    """Constraints that keep a geodesic away from structures, and how they were derived.

    Attributes
    ----------
    constraints : tuple
        One :class:`~tps.spacetime.RegionAvoidance` per avoided structure, then the
        :class:`~tps.spacetime.LowVariance` term (if its weight is not 0).
    x_star : Tensor, shape ``(k, n_atoms, 3)``
        Avoided structures in model coordinates.
    thresholds : list of float
        ``rho2_j`` (nats, relative KL).
    free_min_kl, free_end_kl : list of float
        ``m_j`` and ``KL_rel_j(N - 1)`` of the unconstrained curve.
    weight : float
        Weight of each RegionAvoidance term.
    low_variance_threshold : float
        ``rho``: the unconstrained curve's lowest logSNR.
    free_energy : float
        Exact-divergence curve energy of the unconstrained curve.

    Examples
    --------
    Made by :func:`avoidance_constraints`.
    """

    constraints: tuple
    x_star: torch.Tensor
    thresholds: list
    free_min_kl: list
    free_end_kl: list
    weight: float
    low_variance_threshold: float
    free_energy: float
    rule: AvoidanceRule = field(default_factory=AvoidanceRule)

    def as_dict(self) -> dict:
        """JSON-ready summary (no tensors)."""
        return {"n_structures": int(self.x_star.shape[0]), "thresholds": [float(v) for v in self.thresholds],
                "free_min_kl": [float(v) for v in self.free_min_kl],
                "free_end_kl": [float(v) for v in self.free_end_kl], "weight": float(self.weight),
                "low_variance_threshold": float(self.low_variance_threshold), "free_energy": float(self.free_energy),
                "depth_fraction": self.rule.depth_fraction, "penalty_ratio": self.rule.penalty_ratio}


def _curve_state(net, x, lam):
    from tps.spacetime.constraints import CurveState
    from tps.spacetime.geometry import segment_products

    x, lam = x.detach()[None], lam.detach()[None]
    with torch.enable_grad():
        prods, (eta_x, eta_t, mu_x, mu_t) = segment_products(net, x, lam, divergence="exact", return_parameters=True)
    params = [t.detach() for t in (eta_x, eta_t, mu_x, mu_t)]
    energy = 0.5 * (x.shape[1] - 1) * float(prods.detach().sum())
    return CurveState(x, lam, *params, denoiser=net), energy


def relative_kl_profiles(model: DiffusionModel, x_star, curve_x, curve_logsnr, *, logsnr_star: float = 4.0):
    """``KL_rel`` of every curve point to every ``z*`` (exact divergence), and the curve energy.

    Parameters
    ----------
    model : DiffusionModel
    x_star : Tensor, shape ``(k, *event)``, model units
    curve_x : Tensor, shape ``(N, *event)``; curve_logsnr : Tensor, shape ``(N,)``
    logsnr_star : float

    Returns
    -------
    kl : ndarray, shape ``(k, N)``
        ``KL(p(.|z*_j) || p(.|gamma_n)) - KL(p(.|z*_j) || p(.|gamma_0))``, nats.
    energy : float
        Exact-divergence discrete curve energy.

    Examples
    --------
    See :func:`avoidance_constraints`.
    """
    from tps.spacetime import RegionAvoidance

    net = model.network
    param = next(net.parameters())
    state, energy = _curve_state(net, curve_x.to(param), curve_logsnr.to(param))
    out = []
    for z in torch.as_tensor(x_star):
        probe = RegionAvoidance(z.to(param), logsnr_star=logsnr_star, threshold=0.0, divergence="exact")
        out.append(probe.relative_kl(state)[0].detach().double().cpu().numpy())
    return np.stack(out), energy


def avoidance_constraints(model: DiffusionModel, endpoints, structures, free, *, logsnr: float = 4.0,
                          rule: AvoidanceRule = AvoidanceRule()) -> Avoidance:
    """RegionAvoidance terms around ``structures`` with thresholds from the unconstrained curve ``free``.

    Parameters
    ----------
    model : DiffusionModel
        The molecule's EGNN model.
    endpoints : tps.workflows.cartesian.Endpoints
    structures : array, shape ``(k, n_atoms, 3)`` or ``(n_atoms, 3)``, nm
        Structures to avoid (raw; aligned here).
    free : GeodesicResult
        The unconstrained geodesic between the same endpoints.
    logsnr : float
        Anchor logSNR of the endpoints (default noise level of ``z*``).
    rule : AvoidanceRule

    Returns
    -------
    Avoidance

    Raises
    ------
    ValueError
        If for some structure the unconstrained curve is nearest (in KL) at an endpoint: the
        avoided region contains that endpoint (or the route already keeps away from it).

    Examples
    --------
    See :func:`solve_avoiding`.
    """
    from tps.spacetime import LowVariance, RegionAvoidance

    lam_star = float(logsnr if rule.logsnr_star is None else rule.logsnr_star)
    z = avoided_model_coordinates(structures, endpoints, model.scaling)
    kl, energy = relative_kl_profiles(model, z, free.x, free.logsnr, logsnr_star=lam_star)
    mins, ends = kl.min(1), kl[:, -1]
    depth = np.minimum(0.0, ends) - mins
    if (depth <= 0).any():
        j = int(np.argmin(depth))
        where = "start" if int(np.argmin(kl[j])) == 0 or ends[j] > 0 else "target"
        raise ValueError(f"avoid_structure: structure {j} is nearest (in KL) to the {where} of the unconstrained "
                         "curve, so the avoided region contains an endpoint (or the route already keeps away); "
                         "choose a structure between the endpoints")
    thresholds = mins + rule.depth_fraction * depth
    param = next(model.network.parameters())
    unit = sum(float(torch.nn.functional.softplus(torch.as_tensor(t - kl[j]), beta=rule.sharpness).mean())
               for j, t in enumerate(thresholds))
    weight = rule.penalty_ratio * max(energy, 1e-12) / unit
    constraints = [RegionAvoidance(zj.to(param), logsnr_star=lam_star, threshold=float(t), weight=weight,
                                   sharpness=rule.sharpness, divergence="exact") for zj, t in zip(z, thresholds)]
    rho = float(free.logsnr.min())
    if rule.low_variance_weight > 0:
        constraints.append(LowVariance(rho, weight=rule.low_variance_weight))
    return Avoidance(tuple(constraints), z, thresholds.tolist(), mins.tolist(), ends.tolist(), float(weight), rho,
                     float(energy), rule)


def solve_avoiding(model: DiffusionModel, endpoints, structures, *, free=None, logsnr: float = 4.0,
                   rule: AvoidanceRule = AvoidanceRule(), **geodesic_options):
    """The unconstrained geodesic, then the geodesic that avoids ``structures`` (thresholds from the first).

    Parameters
    ----------
    model : DiffusionModel
    endpoints : tps.workflows.cartesian.Endpoints
    structures : array, shape ``(k, n_atoms, 3)`` or ``(n_atoms, 3)``, nm
    free : GeodesicResult, optional
        The unconstrained geodesic, if already solved with the same options.
    logsnr : float
    rule : AvoidanceRule
    **geodesic_options
        Passed to :func:`tps.workflows.cartesian.solve_geodesic` for both solves
        (``n_points``, ``max_iter``, ``init_dips``, ``seed``, ...); ``constraints`` given here are
        added to the avoidance terms of the second solve only.

    Returns
    -------
    avoiding : GeodesicResult
    free : GeodesicResult
    avoidance : Avoidance

    Examples
    --------
    A short solve with the pretrained all-atom model, avoiding the C7eq minimum (the C5 -> C7ax
    curve passes its side): the constrained curve stays farther (in KL) from it than the
    unconstrained one. ``structures`` may equally be training frames, e.g. ``data.positions[i]``
    or ``frames[frames_near_phipsi(frames, topology, (phi, psi))]``.

    >>> import numpy as np, torch
    >>> torch.set_num_threads(1)
    >>> from tps import pretrained
    >>> from tps.systems import alanine_dipeptide
    >>> from tps.workflows.cartesian import Endpoints, kabsch_align
    >>> model = pretrained.load("alanine-dipeptide")
    >>> s = alanine_dipeptide.minimized_structures()
    >>> ends = Endpoints(s["C5"], kabsch_align(s["C7ax"], s["C5"]) + s["C5"].mean(0), s["C5"].mean(0))
    >>> avoiding, free, info = solve_avoiding(model, ends, s["C7eq"], n_points=12, n_nodes=4, max_iter=4)
    >>> kl_free = relative_kl_profiles(model, info.x_star, free.x, free.logsnr)[0].min()
    >>> kl_avoid = relative_kl_profiles(model, info.x_star, avoiding.x, avoiding.logsnr)[0].min()
    >>> bool(kl_avoid > kl_free)
    True
    """
    from tps.workflows.cartesian import solve_geodesic

    extra = tuple(geodesic_options.pop("constraints", ()))
    if free is None:
        free = solve_geodesic(model, endpoints, logsnr=logsnr, **geodesic_options)
    avoidance = avoidance_constraints(model, endpoints, structures, free, logsnr=logsnr, rule=rule)
    avoiding = solve_geodesic(model, endpoints, logsnr=logsnr, constraints=avoidance.constraints + extra,
                              **geodesic_options)
    return avoiding, free, avoidance
