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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tps.diffusion.checkpoint import DiffusionModel
from tps.metrics.molecular import kabsch_align
from tps.sampling.md import check_topology_match
from tps.systems.alanine_dipeptide import STATE_RADIUS, check_radians

__all__ = [
    "AvoidanceRule", "Avoidance", "read_structure_to_avoid", "frames_near_phipsi", "recipe_training_frames",
    "avoided_model_coordinates", "relative_kl_profiles",
    "check_endpoints_outside", "avoidance_constraints", "solve_avoiding", "closest_approach", "crossing_channels",
]


def _wrap(a):
    return (np.asarray(a, dtype=np.float64) + math.pi) % (2 * math.pi) - math.pi


def _phipsi(positions, topology) -> np.ndarray:
    from tps.potentials.openmm import phi_psi

    return phi_psi(torch.as_tensor(np.asarray(positions), dtype=torch.float64), topology).numpy()


# ----------------------------------------------------------------------------- what to avoid
def read_structure_to_avoid(path, topology) -> np.ndarray:
    """A structure to avoid from a PDB file, checked atom by atom against ``topology``.

    Parameters
    ----------
    path : str or Path
        PDB file with exactly the system's atoms in the system's order (first model used).
    topology : mdtraj.Topology or openmm.app.Topology

    Returns
    -------
    ndarray, shape ``(n_atoms, 3)``, nm

    Raises
    ------
    ValueError
        If the file is missing or unreadable, or its atoms differ from the system's (message
        starts with ``avoid_structure``).

    Examples
    --------
    >>> import tempfile, os
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> path = os.path.join(alanine_dipeptide.data_dir(), "C7eq.pdb")
    >>> read_structure_to_avoid(path, top).shape
    (22, 3)
    """
    import mdtraj

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"avoid_structure: {path}: no such file; pass a PDB file of the structure to avoid")
    try:
        traj = mdtraj.load_pdb(str(path))
    except Exception as exc:
        raise ValueError(f"avoid_structure: {path} cannot be read as a PDB file ({type(exc).__name__}); "
                         "pass a PDB file with the system's atoms") from None
    check_topology_match(topology, traj.topology, what=f"avoid_structure {path.name}")
    return traj.xyz[0].astype(np.float64)


def frames_near_phipsi(frames, topology, phipsi, *, k: int = 8, radius: float = STATE_RADIUS) -> np.ndarray:
    """Indices of the ``k`` frames nearest ``phipsi`` in periodic (phi, psi) distance, within ``radius``.

    Parameters
    ----------
    frames : array, shape ``(n_frames, n_atoms, 3)``, nm
        Typically the model's training frames.
    topology : mdtraj.Topology or openmm.app.Topology
        A dipeptide (one phi and one psi torsion).
    phipsi : (float, float)
        rad.
    k : int
        At most this many frames (default 8).
    radius : float
        rad; frames farther away are not representative (default 0.75, the package's state radius).

    Returns
    -------
    ndarray of int, shape ``(k',)``, ``1 <= k' <= k``, nearest first.

    Raises
    ------
    ValueError
        If the molecule has no (phi, psi), the angles are not radians, or no frame lies within
        ``radius`` (the data do not cover the point).

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> s = alanine_dipeptide.minimized_structures()
    >>> frames = np.stack([s["C5"], s["C7ax"], s["C7eq"]])
    >>> frames_near_phipsi(frames, alanine_dipeptide.topology(), (-1.3, 1.0), k=2).tolist()     # C7eq only
    [2]
    """
    point = check_radians(phipsi, "avoid_phipsi").numpy()
    if point.shape != (2,):
        raise ValueError(f"avoid_phipsi: expected two angles (phi, psi) in rad, got {phipsi!r}")
    try:
        pp = _phipsi(frames, topology)
    except ValueError as exc:
        raise ValueError(f"avoid_phipsi: this molecule has no (phi, psi) ({exc}); pass a structure to avoid "
                         "instead") from None
    dist = np.hypot(*_wrap(pp - point).T)
    order = np.argsort(dist, kind="stable")[: int(k)]
    order = order[dist[order] <= radius]
    if order.size == 0:
        raise ValueError(f"avoid_phipsi: no training frame within {radius:g} rad of ({point[0]:.2f}, {point[1]:.2f}) "
                         f"(nearest {dist.min():.2f} rad); choose a point the training data cover or pass a "
                         "structure to avoid")
    return order


_RECIPE_FRAMES = {}


def recipe_training_frames(model: DiffusionModel) -> np.ndarray:
    """Training frames of an all-atom alanine dipeptide model, regenerated from the recipe it carries.

    Models written by ``tps train alanine-dipeptide`` (the pretrained one included) record the MD
    that made their data (``metadata["recipe"]``: steps per start, report interval, seed): Langevin
    MD from the C5 and C7ax minima, which is deterministic. The frames are regenerated (about 20 s
    for the pretrained recipe's 500 k steps on one core; cached per process) and checked against
    the scale fitted on them at training time.

    Parameters
    ----------
    model : DiffusionModel

    Returns
    -------
    ndarray, shape ``(n_frames, 22, 3)``, nm

    Raises
    ------
    ValueError
        If the model carries no such recipe, or the regenerated frames do not give its scale.

    Examples
    --------
    >>> from tps.diffusion import AffineScaling, DiffusionModel
    >>> from tps.systems import alanine_dipeptide
    >>> from tps.workflows.cartesian import build_denoiser
    >>> bare = DiffusionModel(build_denoiser(alanine_dipeptide.topology(), hidden=8, n_layers=1),
    ...                       AffineScaling((0.0,) * 66, 0.16, (22, 3)))
    >>> recipe_training_frames(bare)
    Traceback (most recent call last):
        ...
    ValueError: model: carries no 'tps train alanine-dipeptide' recipe to regenerate its training frames from; pass structures to avoid instead
    """
    from tps.sampling.md import md_samples
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.cartesian import fit_scaling

    recipe = model.metadata.get("recipe") or {}
    a = recipe.get("arguments") or {}
    if recipe.get("system") != "alanine-dipeptide" or "data_steps" not in a or "report_interval" not in a:
        raise ValueError("model: carries no 'tps train alanine-dipeptide' recipe to regenerate its training frames "
                         "from; pass structures to avoid instead")
    key = (int(a["data_steps"]), int(a["report_interval"]), int(recipe.get("seed", 0)))
    if key not in _RECIPE_FRAMES:
        top = aldp.topology()
        minima = aldp.minimized_structures()
        data = md_samples(aldp.create_openmm_system(top), top, {"C5": minima["C5"], "C7ax": minima["C7ax"]},
                          n_steps=key[0], report_interval=key[1], timestep=aldp.TIMESTEP, friction=aldp.FRICTION,
                          seed=key[2])
        _RECIPE_FRAMES[key] = (data.positions.astype(np.float64), fit_scaling(data.positions).scale)
    frames, scale = _RECIPE_FRAMES[key]
    if abs(scale / model.scaling.scale - 1.0) > 1e-5:
        raise ValueError(f"model: the regenerated training frames have scale {scale:.6g} nm, the model "
                         f"{model.scaling.scale:.6g} nm; pass structures to avoid instead")
    return frames


def avoided_model_coordinates(structures, endpoints, scaling) -> torch.Tensor:
    """Structures to avoid in model coordinates, brought there exactly like the target endpoint.

    Each structure is centred, Kabsch-rotated onto the (centred) start structure and divided by
    the model's scale, as :func:`tps.workflows.cartesian.prepare_endpoints` and
    :meth:`~tps.workflows.cartesian.Endpoints.model_coordinates` do with the target.

    Parameters
    ----------
    structures : array, shape ``(k, n_atoms, 3)`` or ``(n_atoms, 3)``, nm
    endpoints : tps.workflows.cartesian.Endpoints
    scaling : AffineScaling
        The model's scalar scaling.

    Returns
    -------
    Tensor, shape ``(k, n_atoms, 3)``, float64, model units.

    Examples
    --------
    The target itself lands exactly on the geodesic's end point:

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> from tps.workflows.cartesian import Endpoints, fit_scaling, kabsch_align
    >>> s = alanine_dipeptide.minimized_structures()
    >>> ends = Endpoints(s["C5"], kabsch_align(s["C7ax"], s["C5"]) + s["C5"].mean(0), s["C5"].mean(0))
    >>> scaling = fit_scaling(np.stack([s["C5"], s["C7ax"]]))
    >>> z = avoided_model_coordinates(s["C7ax"] + 1.0, ends, scaling)          # shifted copy
    >>> z.shape, bool(np.allclose(z[0], ends.model_coordinates(scaling)[1]))
    (torch.Size([1, 22, 3]), True)
    """
    x = np.asarray(structures, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    n_atoms = endpoints.start.shape[0]
    if x.ndim != 3 or x.shape[1:] != (n_atoms, 3):
        raise ValueError(f"avoid_structure: expected shape (k, {n_atoms}, 3) or ({n_atoms}, 3) in nm, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("avoid_structure: positions contain NaN or infinity")
    aligned = np.stack([kabsch_align(xi, endpoints.start) for xi in x])
    return scaling.to_model(torch.as_tensor(aligned, dtype=torch.float64))


def check_endpoints_outside(points_phipsi, endpoints, topology, *, radius: float = STATE_RADIUS,
                            what: str = "avoid_phipsi") -> None:
    """Refuse an avoided (phi, psi) region that contains an endpoint.

    Parameters
    ----------
    points_phipsi : array, shape ``(2,)`` or ``(k, 2)``, rad
        Avoided point(s).
    endpoints : tps.workflows.cartesian.Endpoints
    topology : mdtraj.Topology or openmm.app.Topology
    radius : float
        rad; the avoided region is the periodic ball of this radius (default 0.75, the states').
    what : str
        Argument named in the message.

    Raises
    ------
    ValueError
        If an endpoint's (phi, psi) lies within ``radius`` of an avoided point.

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> from tps.workflows.cartesian import Endpoints, kabsch_align
    >>> s = alanine_dipeptide.minimized_structures()
    >>> ends = Endpoints(s["C5"], kabsch_align(s["C7ax"], s["C5"]) + s["C5"].mean(0), s["C5"].mean(0))
    >>> check_endpoints_outside((-1.1, -0.7), ends, alanine_dipeptide.topology())        # alpha-R: fine
    >>> check_endpoints_outside((-2.6, 2.8), ends, alanine_dipeptide.topology())
    Traceback (most recent call last):
        ...
    ValueError: avoid_phipsi: the avoided region (radius 0.75 rad around (-2.60, 2.80)) contains the start (phi, psi) = (-2.57, 2.78); choose a point at least 0.75 rad from both endpoints
    """
    pts = np.atleast_2d(np.asarray(points_phipsi, dtype=np.float64))
    ends = _phipsi(np.stack([endpoints.start, endpoints.target]), topology)
    for p in pts:
        for name, e in zip(("start", "target"), ends):
            if float(np.hypot(*_wrap(e - p))) < radius:
                raise ValueError(f"{what}: the avoided region (radius {radius:g} rad around ({p[0]:.2f}, {p[1]:.2f})) "
                                 f"contains the {name} (phi, psi) = ({e[0]:.2f}, {e[1]:.2f}); choose a point at "
                                 f"least {radius:g} rad from both endpoints")


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


# ----------------------------------------------------------------------------- measures on paths
def closest_approach(frames, structures, topology, *, phipsi=None) -> dict:
    """How near the paths come to the avoided structures (heavy-atom RMSD) and (phi, psi) point.

    Parameters
    ----------
    frames : array, shape ``(n_paths, n_frames, n_atoms, 3)``, nm
    structures : array, shape ``(k, n_atoms, 3)`` or ``(n_atoms, 3)``, nm
    topology : mdtraj.Topology or openmm.app.Topology
    phipsi : (float, float), optional
        rad; default: the (phi, psi) of each structure (nearest counts), when the molecule has them.

    Returns
    -------
    dict
        ``rmsd_nm``: per-path smallest heavy-atom Kabsch RMSD to any structure, ``(n_paths,)``;
        ``rmsd_min_nm`` / ``rmsd_mean_nm``: its minimum and mean over paths; likewise
        ``phipsi_rad``, ``phipsi_min_rad``, ``phipsi_mean_rad`` (periodic Euclidean distance in
        (phi, psi)), absent for molecules without (phi, psi).

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> s = alanine_dipeptide.minimized_structures()
    >>> frames = np.stack([s["C5"], s["C7eq"]])[None]                   # one path of two frames
    >>> r = closest_approach(frames, s["C7eq"], alanine_dipeptide.topology())
    >>> round(r["rmsd_min_nm"], 6), round(r["phipsi_min_rad"], 6)
    (0.0, 0.0)
    """
    from tps.metrics.molecular import heavy_atom_indices, kabsch_rmsd

    f = torch.as_tensor(np.asarray(frames, dtype=np.float64))
    s = torch.as_tensor(np.asarray(structures, dtype=np.float64))
    if s.dim() == 2:
        s = s[None]
    heavy = heavy_atom_indices(topology)
    rmsd = torch.stack([kabsch_rmsd(f, sj, atom_indices=heavy) for sj in s]).amin(0).amin(-1).numpy()
    out = {"rmsd_nm": rmsd, "rmsd_min_nm": float(rmsd.min()), "rmsd_mean_nm": float(rmsd.mean())}
    try:
        pp = _phipsi(f, topology)
        points = np.atleast_2d(np.asarray(phipsi, dtype=np.float64)) if phipsi is not None else _phipsi(s, topology)
    except ValueError:
        return out
    d = np.stack([np.hypot(*np.moveaxis(_wrap(pp - p), -1, 0)) for p in points]).min(0).min(-1)
    out.update(phipsi_rad=d, phipsi_min_rad=float(d.min()), phipsi_mean_rad=float(d.mean()))
    return out


def crossing_channels(phipsi, target_center, *, radius: float = STATE_RADIUS) -> list:
    """Where each path crosses into the target's phi half: the last phi sign change before entering the target.

    Parameters
    ----------
    phipsi : array, shape ``(n_paths, n_frames, 2)``, rad
    target_center : (float, float)
        rad; the target ball's centre (entered when within ``radius``).
    radius : float
        rad.

    Returns
    -------
    list of dict, one per path
        ``{"channel": ..., "psi_deg": psi at the crossing, "frame": index}``; ``channel`` is
        ``"phi=0, alpha-R side"`` (phi crosses 0 with psi in (-120, 60] degrees),
        ``"phi=0, psi~pi side"`` (phi crosses 0 with psi elsewhere), ``"phi=pi"`` (phi crosses
        +-180 degrees) or ``"none"`` (no crossing before the target, or the target never reached).

    Examples
    --------
    >>> import numpy as np
    >>> path = np.radians([[-150, 160], [-70, -30], [10, -20], [60, -40]])[None]
    >>> crossing_channels(path, np.radians([60.0, -41.0]))
    [{'channel': 'phi=0, alpha-R side', 'psi_deg': -25.0, 'frame': 1}]
    """
    pp = np.asarray(phipsi, dtype=np.float64)
    center = np.asarray(target_center, dtype=np.float64)
    out = []
    for path in pp:
        inside = np.nonzero(np.hypot(*_wrap(path - center).T) <= radius)[0]
        end = int(inside[0]) if inside.size else 0
        phi = path[: end + 1, 0]
        flips = np.nonzero(np.sign(phi[:-1]) != np.sign(phi[1:]))[0]
        if flips.size == 0:
            out.append({"channel": "none", "psi_deg": float("nan"), "frame": -1})
            continue
        j = int(flips[-1])
        psi = math.degrees(math.atan2(np.sin(path[j:j + 2, 1]).sum(), np.cos(path[j:j + 2, 1]).sum()))
        if abs(phi[j + 1] - phi[j]) > math.pi:
            channel = "phi=pi"
        else:
            channel = "phi=0, alpha-R side" if -120.0 < psi <= 60.0 else "phi=0, psi~pi side"
        out.append({"channel": channel, "psi_deg": round(psi, 1), "frame": j})
    return out
