"""All-atom transition paths for any OpenMM molecule: MD frames -> EGNN denoiser -> geodesic -> OpenMM paths.

The pipeline takes an ``openmm.System``, its topology, training frames and two structures;
nothing in it knows which molecule it handles.

1. **Model coordinates.** Every frame loses its centroid (unweighted mean over atoms, the
   frame the :class:`~tps.diffusion.egnn.EGNNDenoiser` works in) and is divided by one scalar
   ``scale`` (:class:`~tps.diffusion.AffineScaling` fitted with ``center=False``): a shift
   by a mean structure would break rotation equivariance, a scalar keeps restraints isotropic.
   Training noise gets the same centroid projection (``center_fn``).
2. **Endpoints.** Both structures are minimised in the force field (a warning names the
   energy when minimisation removed a clash; non-finite or, with ``max_energy``, too high
   minimised energies raise ``ValueError``), centred, and the target is Kabsch-rotated onto
   the start (rigid-body motion is not a transition, method.md section 7).
3. **Geodesic** in model coordinates between ``(z_a, lam_a)`` and ``(z_b, lam_a)`` with the
   Hutchinson divergence (:func:`tps.spacetime.geodesic`). Cost choice: one fixed Rademacher
   probe per curve point (``n_probes=1``; common random numbers keep the objective
   deterministic for L-BFGS), so one objective evaluation is one batched denoiser call plus one
   Jacobian-vector product over the ``N`` curve points and a backward pass through both;
   ``N`` = 32-64 points and tens of L-BFGS iterations fit a CPU. Segment products are clamped
   at zero per coordinate (``clamp=True``) so that the optimiser cannot exploit the fixed probes.
4. **Restraints.** Curve point ``(z_n, lam_n)`` is the Boltzmann distribution of the force
   field plus a harmonic restraint with centre ``origin + scale * z_n / alpha_n`` (nm, the
   curve re-centred on the start structure's centroid ``origin``) and stiffness
   ``kT exp(lam_n) / scale^2`` (kJ/mol/nm^2) on every coordinate (method.md section 5).
5. **Paths.** :func:`tps.sampling.openmm_annealed.openmm_annealed_langevin` runs OpenMM's own
   Langevin integrator along the restraints, starting at the minimised start structure.

Units: nm, ps, kJ/mol, K throughout; model coordinates are dimensionless.

The steps live in modules by concept, and every name stays importable from here:
:mod:`tps.workflows.coordinates` (centring, scaling), :mod:`tps.workflows.endpoints` (minimised,
aligned endpoints), :mod:`tps.workflows.models` (build, train and check the EGNN),
:mod:`tps.workflows.geodesics` (solve, probe-checked diagnostics, straight line) and
:mod:`tps.workflows.molecular_paths` (restraints, OpenMM paths, end to end, DCD files).
"""

from __future__ import annotations

from tps.potentials.openmm import boltzmann_kT
from tps.spacetime.solver import GeodesicResult
from tps.workflows.coordinates import CENTRING, center_positions, fit_scaling, model_coordinates
from tps.workflows.endpoints import Endpoints, kabsch_align, prepare_endpoints
from tps.workflows.geodesics import linear_curve, probe_checked_diagnostics, solve_geodesic
from tps.workflows.models import build_denoiser, check_model_matches, train_model
from tps.workflows.molecular_paths import (
    CartesianResult, CurveRestraints, curve_restraints, sample_paths, save_paths_dcd, transition_paths,
    write_topology_pdb,
)

__all__ = [
    "CENTRING", "Endpoints", "CurveRestraints", "center_positions", "kabsch_align", "fit_scaling",
    "model_coordinates", "build_denoiser", "train_model", "check_model_matches", "prepare_endpoints",
    "solve_geodesic", "probe_checked_diagnostics", "linear_curve", "curve_restraints", "sample_paths", "boltzmann_kT",
    "CartesianResult", "transition_paths", "save_paths_dcd", "write_topology_pdb", "GeodesicResult",
]
