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
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import openmm
import openmm.unit as unit
import torch

from tps.diffusion.checkpoint import DiffusionModel
from tps.diffusion.egnn import EGNNConfig, EGNNDenoiser, atom_types_from_topology, resolve_device
from tps.diffusion.scaling import AffineScaling
from tps.diffusion.training import TrainingConfig, TrainingResult, train_denoiser
from tps.metrics.molecular import kabsch_align
from tps.potentials.openmm import boltzmann_kT, positions_nm, select_platform
from tps.sampling.md import MDData, as_mdtraj_topology, check_topology_match
from tps.spacetime.domain import GeodesicWarning, curve_flags, report
from tps.spacetime.geometry import rademacher, segment_terms
from tps.spacetime.solver import GeodesicResult, geodesic

__all__ = [
    "CENTRING", "Endpoints", "CurveRestraints", "center_positions", "kabsch_align", "fit_scaling",
    "model_coordinates", "build_denoiser", "train_model", "check_model_matches", "prepare_endpoints",
    "solve_geodesic", "probe_checked_diagnostics", "linear_curve", "curve_restraints", "sample_paths", "boltzmann_kT",
    "CartesianResult", "transition_paths", "save_paths_dcd",
]

#: Metadata tag of models trained on centroid-free frames (checked when a model is reused).
CENTRING = "centroid"
_KJ = unit.kilojoule_per_mole


# ----------------------------------------------------------------------------- geometry
def center_positions(positions):
    """Remove the centroid (unweighted mean over atoms) of every frame.

    Parameters
    ----------
    positions : Tensor or ndarray, shape ``(..., n_atoms, 3)``

    Returns
    -------
    Same type and shape, each frame with zero centroid; also usable as ``center_fn`` for
    centroid-free training noise.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[0.0, 0.0, 0.0], [0.2, 0.4, 0.0]]])     # (1 frame, 2 atoms, 3) nm
    >>> center_positions(x)
    tensor([[[-0.1000, -0.2000,  0.0000],
             [ 0.1000,  0.2000,  0.0000]]])
    """
    return positions - positions.mean(-2, keepdims=True) if isinstance(positions, np.ndarray) \
        else positions - positions.mean(dim=-2, keepdim=True)


def fit_scaling(frames) -> AffineScaling:
    """Scalar scaling of centroid-free frames: ``z = x / scale`` with ``scale`` the RMS coordinate.

    Parameters
    ----------
    frames : array, shape ``(n_frames, n_atoms, 3)``, nm (centred here)

    Returns
    -------
    AffineScaling
        Zero shift and ``scale`` in nm per model unit, so centred frames have unit RMS
        coordinate in model units.

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> scaling = fit_scaling(np.stack([c5, c7ax]))
    >>> round(scaling.scale, 4), set(scaling.shift)
    (0.1647, {0.0})
    """
    x = center_positions(torch.as_tensor(np.asarray(frames), dtype=torch.float64))
    return AffineScaling.fit(x, center=False)


def model_coordinates(frames, scaling: AffineScaling) -> torch.Tensor:
    """Centred frames in model units, float32 ``(n_frames, n_atoms, 3)``.

    Parameters
    ----------
    frames : array, shape ``(n_frames, n_atoms, 3)``, nm
    scaling : AffineScaling
        From :func:`fit_scaling`.

    Returns
    -------
    Tensor, shape ``(n_frames, n_atoms, 3)``, float32, model units.

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> frames = np.stack([c5, c7ax])
    >>> z = model_coordinates(frames, fit_scaling(frames))
    >>> z.shape, z.dtype, round(float(z.pow(2).mean().sqrt()), 4)       # unit RMS
    (torch.Size([2, 22, 3]), torch.float32, 1.0)
    """
    x = center_positions(torch.as_tensor(np.asarray(frames), dtype=torch.float64))
    return scaling.to_model(x).float()


# ----------------------------------------------------------------------------- model
def build_denoiser(topology, *, sigma_data: float = 1.0, hidden: int = 32, n_layers: int = 3, device="cpu",
                   **config_kwargs) -> EGNNDenoiser:
    """An untrained :class:`EGNNDenoiser` whose atom types and bonds come from ``topology``.

    Parameters
    ----------
    topology : mdtraj.Topology or openmm.app.Topology (with bonds)
    sigma_data : float
        Per-coordinate spread of the model-unit data (1 after :func:`fit_scaling`).
    hidden, n_layers : int
    device : str
        ``"cpu"`` (default), ``"cuda"`` or ``"auto"`` (CUDA if present, else CPU with a warning).
    **config_kwargs
        Further :class:`EGNNConfig` fields (``cutoff``, ``chiral``, ...).

    Returns
    -------
    EGNNDenoiser
        Maps ``(B, n_atoms, 3)`` model coordinates and ``(B,)`` logSNR to ``(B, n_atoms, 3)``.

    Examples
    --------
    >>> import torch
    >>> torch.set_num_threads(1)          # tiny graphs: extra threads only add contention
    >>> from tps.systems import alanine_dipeptide
    >>> net = build_denoiser(alanine_dipeptide.topology(), hidden=8, n_layers=1)
    >>> net.config.n_atoms, net(torch.zeros(2, 22, 3), torch.zeros(2)).shape
    (22, torch.Size([2, 22, 3]))
    """
    config = EGNNConfig.from_topology(as_mdtraj_topology(topology), sigma_data=sigma_data, hidden=hidden,
                                      n_layers=n_layers, **config_kwargs)
    return EGNNDenoiser(config, device=device)


def train_model(data: MDData, topology, *, system: Optional[openmm.System] = None, hidden: int = 32,
                n_layers: int = 3, training: TrainingConfig = TrainingConfig(n_steps=2000, batch_size=64),
                device="cpu", checkpoint=None, progress: bool = False, metadata: Optional[dict] = None,
                **config_kwargs):
    """Fit the scaling and train an EGNN denoiser on MD frames.

    Parameters
    ----------
    data : MDData
        Training frames; checked against ``topology`` (and ``system``) before anything else.
    topology : mdtraj.Topology or openmm.app.Topology
    system : openmm.System, optional
        Checked for its particle count.
    hidden, n_layers : int
        EGNN size (default 32 x 3: about 0.2 s per step at batch 64 on one CPU thread).
    training : TrainingConfig
        Default 2000 steps at batch 64 (512 is too large for an EGNN on a CPU).
    device : str
    checkpoint : path, optional
        Atomic checkpoint written every ``training.eval_every`` steps and at the end.
    progress : bool
    metadata : dict, optional
        Extra provenance stored in the model.

    Returns
    -------
    model : DiffusionModel
        Frozen, in evaluation mode; ``metadata`` has ``n_atoms``, ``centring``,
        ``n_training_energy_evals``, the wall time of the training loop (``training_wall_s``)
        and of the two held-out evaluations around it (``holdout_wall_s``).
    result : TrainingResult
        ``holdout_final`` gives the held-out loss per logSNR band.

    Raises
    ------
    ValueError
        If the frames do not match ``topology`` (or ``system``), see
        :func:`tps.sampling.md.check_topology_match`.

    Examples
    --------
    A toy run (real models train for thousands of steps on nanoseconds of MD):

    >>> import numpy as np, torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps.diffusion import TrainingConfig
    >>> from tps.sampling.md import md_samples
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> system = alanine_dipeptide.create_openmm_system(top)
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> data = md_samples(system, top, [c5, c7ax], n_steps=100, report_interval=10, platform="Reference")
    >>> model, result = train_model(data, top, hidden=8, n_layers=1,
    ...                             training=TrainingConfig(n_steps=3, batch_size=8, warmup_steps=1, holdout_per_band=32))
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))    # already minimised
    >>> result.n_steps_done, model.metadata["n_training_energy_evals"], model.metadata["centring"]
    (3, 200, 'centroid')
    >>> round(model.scaling.scale, 3), set(model.scaling.shift)           # nm per model unit
    (0.165, {0.0})
    """
    check_topology_match(topology, data.topology, system=system, what="training frames")
    dev = resolve_device(device)
    scaling = fit_scaling(data.positions)
    z = model_coordinates(data.positions, scaling)
    torch.manual_seed(training.seed)  # initial weights too: the same call gives the same model
    net = build_denoiser(topology, sigma_data=float(z.pow(2).mean().sqrt()), hidden=hidden, n_layers=n_layers,
                         device=dev, **config_kwargs)
    meta = {"n_atoms": int(z.shape[1]), "centring": CENTRING, "n_training_energy_evals": int(data.n_energy_evals),
            "n_training_frames": int(z.shape[0])}
    meta.update(metadata or {})
    model = DiffusionModel(net, scaling, metadata=meta)
    save = None if checkpoint is None else (lambda step: model.save(checkpoint))
    torch.manual_seed(training.seed)
    t0 = time.perf_counter()
    result = train_denoiser(net, z.to(dev), config=training, progress=progress, center_fn=center_positions,
                            checkpoint_fn=save)
    model.metadata["training_wall_s"] = float(result.wall_s)
    # train_denoiser evaluates 5 x 4096 held-out samples before and after the loop (not in wall_s)
    model.metadata["holdout_wall_s"] = float(time.perf_counter() - t0 - result.wall_s)
    model.metadata["training_steps"] = int(result.n_steps_done)
    model.metadata["holdout_final"] = dict(result.holdout_final)
    if checkpoint is not None:
        model.save(checkpoint)
    return model.freeze(), result


def check_model_matches(model: DiffusionModel, topology) -> None:
    """Refuse a model trained on another molecule (``ValueError`` naming the mismatch).

    Checks the checkpoint's EGNN configuration against ``topology``: atom count, then the
    atom types (element and bonded environment, in order), and that the model was trained on
    centroid-free frames with a scalar scaling.

    Parameters
    ----------
    model : DiffusionModel
        With an :class:`EGNNDenoiser` network.
    topology : mdtraj.Topology or openmm.app.Topology

    Raises
    ------
    ValueError
        If the network is not an EGNN, or atom count, atom types, centring or scaling differ.

    Examples
    --------
    >>> import mdtraj
    >>> from tps.diffusion import AffineScaling, DiffusionModel
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> model = DiffusionModel(build_denoiser(top, hidden=8, n_layers=1), AffineScaling((0.0,) * 66, 0.16, (22, 3)))
    >>> check_model_matches(model, top)                              # passes silently
    >>> check_model_matches(model, mdtraj.Topology.from_openmm(top).subset(range(21)))
    Traceback (most recent call last):
        ...
    ValueError: model: trained on a molecule with 22 atoms, but this system has 21; train a model for this molecule
    """
    top = as_mdtraj_topology(topology)
    config = getattr(model.network, "config", None)
    if not isinstance(config, EGNNConfig):
        raise ValueError(f"model: expected an EGNNDenoiser model, got {type(model.network).__name__}")
    if config.n_atoms != top.n_atoms:
        raise ValueError(f"model: trained on a molecule with {config.n_atoms} atoms, but this system has "
                         f"{top.n_atoms}; train a model for this molecule")
    types = atom_types_from_topology(top)
    if tuple(types) != tuple(config.atom_types):
        first = next(i for i, (a, b) in enumerate(zip(types, config.atom_types)) if a != b)
        atom = list(top.atoms)[first]
        raise ValueError(f"model: atom types differ from this system's (first at atom {first}, {atom}); "
                         "the model was trained on another molecule or another atom order")
    if model.metadata.get("centring", CENTRING) != CENTRING or any(v != 0.0 for v in model.scaling.shift):
        raise ValueError("model: expected a model trained on centroid-free frames with a scalar scaling "
                         "(see tps.workflows.cartesian.train_model)")


# ----------------------------------------------------------------------------- endpoints
@dataclass
class Endpoints:
    """Minimised, centred, aligned endpoint structures.

    Attributes
    ----------
    start : ndarray, shape ``(n_atoms, 3)``, nm
        Minimised start structure in its own frame (paths start here).
    target : ndarray, shape ``(n_atoms, 3)``, nm
        Minimised target, centred and Kabsch-rotated onto the start, then shifted to
        ``origin`` (same frame as ``start``).
    origin : ndarray, shape ``(3,)``, nm
        Centroid of ``start``.
    energies : dict
        ``{"start": (before, after), "target": (before, after)}`` minimisation energies, kJ/mol.

    Examples
    --------
    :func:`prepare_endpoints` makes them; structures that are already minimised can be wrapped
    directly:

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))
    >>> z_start, z_target = ends.model_coordinates(fit_scaling(np.stack([c5, c7ax])))
    >>> z_start.shape, round(float(z_start.mean(0).abs().max()), 9)   # centred
    (torch.Size([22, 3]), 0.0)
    """

    start: np.ndarray
    target: np.ndarray
    origin: np.ndarray
    energies: dict = field(default_factory=dict)

    def model_coordinates(self, scaling: AffineScaling) -> tuple:
        """``(z_start, z_target)``: centred endpoints in model units, float64 ``(n_atoms, 3)``."""
        za = scaling.to_model(torch.as_tensor(self.start - self.origin, dtype=torch.float64))
        zb = scaling.to_model(torch.as_tensor(self.target - self.origin, dtype=torch.float64))
        return za, zb


def _minimise(system, positions, *, platform, tolerance, max_iterations):
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, select_platform(system.getNumParticles(), platform))
    context.setPositions(np.asarray(positions, dtype=np.float64))
    before = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(_KJ)
    if system.getNumConstraints():
        context.applyConstraints(1e-8)
    openmm.LocalEnergyMinimizer.minimize(context, tolerance, max_iterations)
    state = context.getState(getEnergy=True, getPositions=True)
    after = state.getPotentialEnergy().value_in_unit(_KJ)
    return state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), before, after


def prepare_endpoints(system: openmm.System, start, target, *, temperature: float = 300.0, platform="auto",
                      tolerance: float = 1.0, max_iterations: int = 0, clash_kT: float = 50.0,
                      max_energy: Optional[float] = None) -> Endpoints:
    """Minimise both structures, centre them and rotate ``target`` onto ``start``.

    Parameters
    ----------
    system : openmm.System
    start, target : array, shape ``(n_atoms, 3)``, nm
    temperature : float
        K; sets the warning threshold ``clash_kT * kT``.
    platform : str
    tolerance : float
        ``LocalEnergyMinimizer`` force tolerance, kJ/mol/nm.
    max_iterations : int
        0: until converged.
    clash_kT : float
        Warn (with both energies) when minimisation lowers a structure's energy by more than
        this many kT: the input had clashes or was far from a minimum.
    max_energy : float, optional
        kJ/mol; a minimised energy above it raises ``ValueError`` (non-finite energies always do).

    Returns
    -------
    Endpoints

    Raises
    ------
    ValueError
        If a structure has the wrong shape or non-finite positions, or its minimised energy is
        not finite or exceeds ``max_energy``.

    Warns
    -----
    UserWarning
        When minimisation lowers an energy by more than ``clash_kT * kT``.

    Examples
    --------
    The bundled minima were minimised with flexible X-H bonds; the minimiser here keeps the
    system's ``HBonds`` constraints, so their energies rise slightly:

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> ends = prepare_endpoints(alanine_dipeptide.create_openmm_system(top), s["C5"], s["C7ax"],
    ...                          platform="Reference", max_iterations=20)
    >>> {k: tuple(round(e, 2) for e in v) for k, v in ends.energies.items()}      # kJ/mol, before/after
    {'start': (-88.45, -88.41), 'target': (-85.0, -84.9)}
    >>> bool(np.allclose(ends.origin, ends.target.mean(0)))                # target moved onto the start
    True
    """
    n_atoms = system.getNumParticles()
    kT = boltzmann_kT(temperature)
    out, energies = {}, {}
    for name, x in (("start", start), ("target", target)):
        x = positions_nm(x)
        if x.shape != (n_atoms, 3):
            raise ValueError(f"{name}: expected shape ({n_atoms}, 3) in nm, got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name}: positions contain NaN or infinity")
        xm, before, after = _minimise(system, x, platform=platform, tolerance=tolerance,
                                      max_iterations=max_iterations)
        if not math.isfinite(after):
            raise ValueError(f"{name}: energy {before:.6g} kJ/mol before and {after:.6g} kJ/mol after minimisation; "
                             "check the structure (overlapping atoms?)")
        if max_energy is not None and after > max_energy:
            raise ValueError(f"{name}: minimised energy {after:.2f} kJ/mol exceeds max_energy={max_energy:.2f} kJ/mol "
                             f"(before minimisation {before:.2f} kJ/mol)")
        if not math.isfinite(before) or before - after > clash_kT * kT:
            warnings.warn(f"{name}: energy {before:.1f} kJ/mol before minimisation, {after:.1f} kJ/mol after "
                          f"(drop > {clash_kT:g} kT): the structure had clashes or was far from a minimum",
                          stacklevel=2)
        out[name], energies[name] = xm, (float(before), float(after))
    origin = out["start"].mean(0)
    target_aligned = kabsch_align(out["target"], out["start"]) + origin
    return Endpoints(out["start"], target_aligned, origin, energies)


# ----------------------------------------------------------------------------- curves
def solve_geodesic(model: DiffusionModel, endpoints: Endpoints, *, logsnr: float = 4.0, n_points: int = 48,
                   n_nodes: int = 8, max_iter: int = 30, init_dips: Sequence[float] = (),
                   coarse_points: Optional[int] = None, coarse_iter: Optional[int] = None, n_probes: int = 1,
                   clamp=True, constraints: Sequence = (), seed: int = 0, check_probes: int = 16,
                   strict: bool = False, progress: bool = False) -> GeodesicResult:
    """Spacetime geodesic between the endpoints in model coordinates (Hutchinson divergence).

    The same safety as :func:`tps.spacetime.geodesic` on any denoiser: every curve point stays in
    the model's logSNR domain (recorded in its checkpoint, ``model.logsnr_range``), the result
    carries ``diagnostics``, and a degenerate result raises a
    :class:`~tps.spacetime.GeodesicWarning` (``strict=True``: an error). One difference: the
    negative-segment check cannot use the solver's own single fixed probe, whose noise alone
    makes ~14-21 % of the segment mass negative on alanine dipeptide (the exact divergence: 2.5 %).
    The returned curve is re-evaluated with ``check_probes`` fresh probes per point (independent
    of the ones the optimiser saw, so that probe exploitation cannot hide); a segment counts as
    negative only when its probe average is below zero by more than 3 standard errors (with 63
    segments about 0.1 noise-only segments are expected), and ``diagnostics.negative_fraction``
    is that significant negative mass over the total.

    Hutchinson probes: bias and variance (measured, ``python -m benchmarks aldp-avoid``, pretrained
    model, the fixed unconstrained C5 -> C7ax curve of ``tps run alanine-dipeptide``, N = 64, 16
    probe sets per count, 2026-12-02). The honest energy with ``n`` probes per point is unbiased
    (exact divergence: 231.1; mean - exact within one standard error for every ``n``) and its
    standard deviation falls as ``1 / sqrt(n)``: 16.3 / 9.4 / 5.9 / 3.8 / 2.7 at n = 1 / 2 / 4 / 8
    / 16 (7 % of the energy at one probe). The per-coordinate clamped objective (``clamp=True``,
    the default here) is not an estimate of the energy: its mean is 642 at one probe and 592 at
    16, and 586 with the exact divergence, because single coordinates' terms are negative even
    when the segment's sum is not; it is a surrogate that is bounded below and keeps the
    optimiser from exploiting the fixed probes. Each extra probe costs one more Jacobian-vector
    product per point (16 probes: 5-10x the time of one; the exact divergence, 66 backward
    passes per point: 50-66x; two runs on a loaded machine).

    Parameters
    ----------
    model : DiffusionModel
        EGNN model of this molecule (see :func:`check_model_matches`).
    endpoints : Endpoints
    logsnr : float
        Anchor logSNR of both endpoints (model units).
    n_points, n_nodes, max_iter, init_dips, coarse_points, coarse_iter, n_probes, constraints, seed
        Passed to :func:`tps.spacetime.geodesic` (L-BFGS, ``divergence="hutchinson"``).
    clamp : bool or str
        Objective of :func:`tps.spacetime.geodesic`: True / ``"coordinate"`` (default) is the
        per-coordinate ReLU of the segment products; ``"segment"`` clamps whole segments;
        False / ``"none"`` is the plain sum. With one fixed probe the Hutchinson term of a
        segment can be negative, and unclamped L-BFGS learns to exploit the probes: on alanine
        dipeptide (EGNN 32x3, N = 32) it drove the estimated curve energy from +683 to -2749
        while curves with fresh probes got no better. Clamped, the objective is bounded below by
        0. The reported ``energy`` is the honest (unclamped) estimate.
    check_probes : int
        Fresh probes per point for the negative-segment check of the returned curve (0: keep
        the solver's own single-probe diagnostics, which flag probe noise).
    strict : bool
        Raise :class:`~tps.spacetime.DegenerateGeodesicError` instead of warning.

    Returns
    -------
    GeodesicResult
        ``x`` of shape ``(n_points, n_atoms, 3)`` in model units, ``logsnr`` ``(n_points,)``;
        ``diagnostics`` with the probe-checked ``negative_fraction``.

    Warns
    -----
    GeodesicWarning
        When the checked curve's significant negative segment mass exceeds
        ``tps.spacetime.domain.NEGATIVE_FRACTION_TOL`` of its total, or
        sits at a bound of the model's logSNR domain.

    Examples
    --------
    With an (untrained, toy) model of alanine dipeptide, as in :func:`train_model`:

    >>> import numpy as np, torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps.diffusion import TrainingConfig
    >>> from tps.sampling.md import md_samples
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> system = alanine_dipeptide.create_openmm_system(top)
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> data = md_samples(system, top, [c5, c7ax], n_steps=100, report_interval=10, platform="Reference")
    >>> model, result = train_model(data, top, hidden=8, n_layers=1,
    ...                             training=TrainingConfig(n_steps=3, batch_size=8, warmup_steps=1, holdout_per_band=32))
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))    # already minimised
    >>> curve = solve_geodesic(model, ends, n_points=8, n_nodes=3, max_iter=3)
    >>> curve.x.shape, bool(curve.energy <= curve.initial_energy)
    (torch.Size([8, 22, 3]), True)
    >>> z_start, _ = ends.model_coordinates(model.scaling)
    >>> torch.equal(curve.x[0], z_start.float())                           # endpoints kept exactly
    True
    >>> curve.diagnostics.range_source, curve.diagnostics.logsnr_range     # the model's trained domain
    ('model', (-12.0, 12.0))
    """
    net = model.network
    param = next(net.parameters())
    za, zb = endpoints.model_coordinates(model.scaling)
    za, zb = za.to(dtype=param.dtype, device=param.device), zb.to(dtype=param.dtype, device=param.device)
    with warnings.catch_warnings():
        if check_probes:  # the solver's flags come from its single fixed probe: re-checked below
            warnings.simplefilter("ignore", GeodesicWarning)
        result = geodesic(net, za, zb, logsnr=logsnr, n_points=n_points, n_nodes=n_nodes, max_iter=max_iter,
                          divergence="hutchinson", n_probes=n_probes, clamp=clamp, init_dips=tuple(init_dips),
                          coarse_points=coarse_points, coarse_iter=coarse_iter, constraints=constraints, seed=seed,
                          strict=strict and not check_probes, progress=progress)
    if check_probes:
        result.diagnostics = probe_checked_diagnostics(net, result.x, result.logsnr, result.diagnostics,
                                                       n_probes=check_probes, seed=seed + 1)
        report(result.diagnostics, strict=strict, stacklevel=3)
    return result


def probe_checked_diagnostics(net, x, logsnr, diagnostics, *, n_probes: int = 16, seed: int = 1,
                              n_sigma: float = 3.0):
    """Diagnostics whose negative-segment mass counts only segments negative beyond probe noise.

    Each of ``n_probes`` fresh Rademacher probes gives one estimate of every segment product;
    a segment is negative when the average is below zero by more than ``n_sigma`` standard
    errors, and only that excess counts (``negative_fraction`` = significant negative mass
    over the total absolute mass). With the exact divergence this is the plain fraction.

    Parameters
    ----------
    net : callable
        The denoiser.
    x : Tensor, shape ``(N, *event)``; logsnr : Tensor, shape ``(N,)``
        The curve.
    diagnostics : GeodesicDiagnostics
        The solver's (its domain and bound fraction are kept).
    n_probes : int
        At least 2.
    seed : int
    n_sigma : float

    Returns
    -------
    GeodesicDiagnostics
        With ``negative_fraction`` and ``problems`` recomputed.

    Examples
    --------
    See :func:`solve_geodesic` (its diagnostics come from here).
    """
    if int(n_probes) < 2:
        raise ValueError(f"n_probes: expected at least 2 (a standard error needs two), got {n_probes!r}")
    x, lam = x.detach()[None], logsnr.detach()[None]
    gen = torch.Generator().manual_seed(int(seed))
    prods = []
    for _ in range(int(n_probes)):
        probe = rademacher((1,) + tuple(x.shape), dtype=x.dtype, generator=gen).to(x.device)
        with torch.enable_grad():
            terms, _ = segment_terms(net, x, lam, divergence="hutchinson", probes=probe)
        prods.append(terms.detach().double().sum(-1))
    prods = torch.stack(prods)  # (n_probes, 1, N - 1)
    mean, se = prods.mean(0), prods.std(0) / math.sqrt(prods.shape[0])
    significant = torch.where(mean + n_sigma * se < 0, mean + n_sigma * se, mean.abs())
    lo, hi = diagnostics.logsnr_range
    neg, at_bound, problems = curve_flags(significant, lam, lo, hi)
    return dataclasses.replace(diagnostics, negative_fraction=neg, bound_fraction=at_bound, problems=problems)


def linear_curve(endpoints: Endpoints, scaling: AffineScaling, *, n_points: int = 48, logsnr: float = 4.0) -> tuple:
    """Straight line between the aligned endpoints at constant logSNR (the baseline curve).

    The same spacetime points as the geodesic solver's initial curve: ``x_n = (1 - s_n) z_a + s_n z_b``
    at ``logsnr``, with the endpoints anchored as ``(z, logsnr)`` exactly as the geodesic's.

    Parameters
    ----------
    endpoints : Endpoints
    scaling : AffineScaling
        From :func:`fit_scaling` (the model's).
    n_points : int
    logsnr : float

    Returns
    -------
    x : Tensor, shape ``(n_points, n_atoms, 3)``, model units
    logsnr : Tensor, shape ``(n_points,)``

    Examples
    --------
    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))
    >>> scaling = fit_scaling(np.stack([c5, c7ax]))
    >>> x, lam = linear_curve(ends, scaling, n_points=5)
    >>> x.shape, lam.tolist()
    (torch.Size([5, 22, 3]), [4.0, 4.0, 4.0, 4.0, 4.0])
    >>> bool((x[0] == ends.model_coordinates(scaling)[0]).all())
    True
    """
    za, zb = endpoints.model_coordinates(scaling)
    s = torch.linspace(0.0, 1.0, int(n_points), dtype=torch.float64)[:, None, None]
    lam = torch.full((int(n_points),), float(logsnr), dtype=torch.float64)
    return (1 - s) * za + s * zb, lam


@dataclass
class CurveRestraints:
    """Physical restraints of a spacetime curve, ready for OpenMM.

    Attributes
    ----------
    centres : ndarray, shape ``(N, n_atoms, 3)``, nm
    stiffness : ndarray, shape ``(N,)``, kJ/mol/nm^2
    logsnr : ndarray, shape ``(N,)``

    Examples
    --------
    Made by :func:`curve_restraints` (example there).
    """

    centres: np.ndarray
    stiffness: np.ndarray
    logsnr: np.ndarray


def curve_restraints(curve_x, curve_logsnr, scaling: AffineScaling, *, temperature: float = 300.0,
                     origin=None) -> CurveRestraints:
    """Restraint centres ``origin + scale * z_n / alpha_n`` and stiffness ``kT exp(lam_n) / scale^2``.

    Parameters
    ----------
    curve_x : Tensor, shape ``(N, n_atoms, 3)``, model units
    curve_logsnr : Tensor, shape ``(N,)``
    scaling : AffineScaling
        Scalar scaling without shift (:func:`fit_scaling`).
    temperature : float
        K.
    origin : array, shape ``(3,)``, nm, optional
        Where the centred curve is placed (the start structure's centroid).

    Returns
    -------
    CurveRestraints

    Raises
    ------
    ValueError
        If the shapes are not ``(N, n_atoms, 3)`` and ``(N,)`` or ``scaling`` has a shift.

    Examples
    --------
    Along the straight line at logSNR 4 the first centre is the start structure scaled by
    ``1 / alpha(4) = 1.009`` about its centroid, and the stiffness is ``kT e^4 / scale^2``:

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()      # name -> (22, 3) nm
    >>> c5, c7ax = structures["C5"], structures["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))
    >>> scaling = fit_scaling(np.stack([c5, c7ax]))
    >>> r = curve_restraints(*linear_curve(ends, scaling, n_points=5), scaling, origin=ends.origin)
    >>> r.centres.shape, round(float(r.stiffness[0]), 1)          # kJ/mol/nm^2
    ((5, 22, 3), 5018.9)
    >>> alpha = np.sqrt(1 / (1 + np.exp(-4.0)))
    >>> bool(np.allclose(r.centres[0] - ends.origin, (c5 - ends.origin) / alpha))
    True
    """
    x = torch.as_tensor(curve_x).detach().double().cpu()
    lam = torch.as_tensor(curve_logsnr).detach().double().cpu()
    if x.dim() != 3 or x.shape[-1] != 3 or lam.shape != (x.shape[0],):
        raise ValueError(f"curve_x, curve_logsnr: expected shapes (N, n_atoms, 3) and (N,), got "
                         f"{tuple(x.shape)} and {tuple(lam.shape)}")
    if any(v != 0.0 for v in scaling.shift):
        raise ValueError("scaling: expected a scalar scaling without shift (fit_scaling)")
    alpha = torch.sigmoid(lam).sqrt()[:, None, None]
    centres = center_positions(x / alpha) * scaling.scale
    if origin is not None:
        centres = centres + torch.as_tensor(np.asarray(origin), dtype=torch.float64)
    stiffness = boltzmann_kT(temperature) * torch.exp(lam) / scaling.scale**2
    return CurveRestraints(centres.numpy(), stiffness.numpy(), lam.numpy())


def sample_paths(system: openmm.System, restraints: CurveRestraints, endpoints: Endpoints, *, n_paths: int,
                 steps_per_point: int, temperature: float = 300.0, timestep: float = 0.002, friction: float = 1.0,
                 platform="auto", frames_per_point: int = 1, seed: int = 0, n_workers: int = 1,
                 progress: bool = False, executor=None, checkpoint=None):
    """Annealed Langevin in OpenMM along ``restraints``, every path starting at ``endpoints.start``.

    Parameters
    ----------
    system : openmm.System
        The force field (the restraint is added inside the sampler).
    restraints : CurveRestraints
        From :func:`curve_restraints`.
    endpoints : Endpoints
    n_paths, steps_per_point : int
        Paths, and MD steps per curve point.
    temperature : float
        K.
    timestep : float
        ps (default 0.002).
    friction : float
        1/ps.
    platform, frames_per_point, seed, n_workers, progress, executor, checkpoint
        Passed to :func:`tps.sampling.openmm_annealed.openmm_annealed_langevin` (``executor``:
        None, a ``concurrent.futures.Executor`` or a ``dask.distributed.Client``, see
        :mod:`tps.parallel`).

    Returns
    -------
    tps.sampling.Paths
        Frames ``(n_paths, 1 + N * frames_per_point, n_atoms, 3)`` nm; energies of the force
        field (restraint excluded), kJ/mol; ``n_energy_evals = n_paths * N * steps_per_point``.

    Examples
    --------
    Twenty MD steps per path along the straight line from C5 to C7ax (far too few to cross;
    the numbers only show the bookkeeping):

    >>> import numpy as np
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))
    >>> scaling = fit_scaling(np.stack([c5, c7ax]))
    >>> restraints = curve_restraints(*linear_curve(ends, scaling, n_points=5), scaling, origin=ends.origin)
    >>> paths = sample_paths(alanine_dipeptide.create_openmm_system(top), restraints, ends, n_paths=2,
    ...                      steps_per_point=4, platform="Reference")
    >>> tuple(paths.frames.shape), paths.n_energy_evals                   # 2 paths * 5 points * 4 steps
    ((2, 6, 22, 3), 40)
    >>> bool(np.abs(paths.frames[:, 0].numpy() - c5).max() < 1e-3)       # starts at C5 (X-H constrained)
    True
    """
    from tps.sampling.openmm_annealed import openmm_annealed_langevin

    t0 = time.perf_counter()
    paths = openmm_annealed_langevin(system, restraints.centres, restraints.stiffness, temperature=temperature,
                                     n_paths=n_paths, steps_per_point=steps_per_point, x_start=endpoints.start,
                                     timestep=timestep, friction=friction, platform=platform,
                                     frames_per_point=frames_per_point, seed=seed, n_workers=n_workers,
                                     progress=progress, executor=executor, checkpoint=checkpoint)
    paths.info.setdefault("wall_s", time.perf_counter() - t0)
    return paths


# ----------------------------------------------------------------------------- end to end
@dataclass
class CartesianResult:
    """Everything one pipeline run made.

    Attributes
    ----------
    paths : tps.sampling.Paths
        Frames in nm, force-field energies in kJ/mol.
    endpoints : Endpoints
    restraints : CurveRestraints
        The restraint schedule the paths were sampled along.
    geodesic : GeodesicResult or None
        None for the straight-line baseline.
    wall_s : dict
        ``{"geodesic": s, "sampling": s}``.

    Examples
    --------
    Returned by :func:`transition_paths` (a toy run is shown there).
    """

    paths: object
    endpoints: Endpoints
    restraints: CurveRestraints
    geodesic: Optional[GeodesicResult] = None
    wall_s: dict = field(default_factory=dict)


def transition_paths(system: openmm.System, topology, model: DiffusionModel, start, target, *, n_paths: int,
                     steps_per_point: int, curve: str = "geodesic", temperature: float = 300.0,
                     logsnr: float = 4.0, n_points: int = 48, geodesic_options: Optional[dict] = None,
                     endpoints: Optional[Endpoints] = None, timestep: float = 0.002, friction: float = 1.0,
                     platform="auto", frames_per_point: int = 1, seed: int = 0, n_workers: int = 1,
                     progress: bool = False, executor=None) -> CartesianResult:
    """Transition paths from ``start`` to ``target`` for any molecule: endpoints -> curve -> OpenMM paths.

    Parameters
    ----------
    system : openmm.System
    topology : mdtraj.Topology or openmm.app.Topology
    model : DiffusionModel
        EGNN model trained on this molecule (refused otherwise, :func:`check_model_matches`).
    start, target : array, shape ``(n_atoms, 3)``, nm
        Raw structures (minimised and aligned here) unless ``endpoints`` is given.
    n_paths, steps_per_point : int
        Paths and MD steps per curve point: ``n_points * steps_per_point`` MD steps per path.
    curve : {"geodesic", "linear"}
        Spacetime geodesic, or the straight line at constant ``logsnr`` (baseline).
    temperature : float
        K.
    logsnr : float
        Anchor logSNR of the endpoints (and of the whole straight line).
    n_points : int
    geodesic_options : dict, optional
        Extra keyword arguments of :func:`solve_geodesic` (``max_iter``, ``init_dips``,
        ``coarse_points``, ``constraints``, ...).
    endpoints : Endpoints, optional
        Reuse prepared endpoints (skips minimisation).
    timestep, friction, platform, frames_per_point, seed, n_workers, progress, executor
        Passed to :func:`sample_paths`.

    Returns
    -------
    CartesianResult

    Raises
    ------
    ValueError
        If ``curve`` is unknown, the topology and system differ in atom count, or the model
        was trained on another molecule (:func:`check_model_matches`).

    Examples
    --------
    The whole pipeline at toy size (model as in :func:`train_model`; endpoints given, so no
    minimisation):

    >>> import numpy as np, torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps.diffusion import TrainingConfig
    >>> from tps.sampling.md import md_samples
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> system = alanine_dipeptide.create_openmm_system(top)
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> data = md_samples(system, top, [c5, c7ax], n_steps=100, report_interval=10, platform="Reference")
    >>> model, result = train_model(data, top, hidden=8, n_layers=1,
    ...                             training=TrainingConfig(n_steps=3, batch_size=8, warmup_steps=1, holdout_per_band=32))
    >>> ends = Endpoints(c5, kabsch_align(c7ax, c5) + c5.mean(0), c5.mean(0))    # already minimised
    >>> run = transition_paths(system, top, model, c5, c7ax, n_paths=2, steps_per_point=2, n_points=8,
    ...                        endpoints=ends, platform="Reference", geodesic_options=dict(n_nodes=3, max_iter=3))
    >>> tuple(run.paths.frames.shape), run.paths.n_energy_evals, run.restraints.centres.shape, sorted(run.wall_s)
    ((2, 9, 22, 3), 32, (8, 22, 3), ['geodesic', 'sampling'])
    >>> transition_paths(system, top, model, c5, c7ax, n_paths=1, steps_per_point=1, curve="spline")
    Traceback (most recent call last):
        ...
    ValueError: curve: expected 'geodesic' or 'linear', got 'spline'
    """
    if curve not in ("geodesic", "linear"):
        raise ValueError(f"curve: expected 'geodesic' or 'linear', got {curve!r}")
    if system.getNumParticles() != as_mdtraj_topology(topology).n_atoms:
        raise ValueError(f"topology: has {as_mdtraj_topology(topology).n_atoms} atoms but the OpenMM system has "
                         f"{system.getNumParticles()} particles")
    check_model_matches(model, topology)
    if endpoints is None:
        endpoints = prepare_endpoints(system, start, target, temperature=temperature, platform=platform)
    t0 = time.perf_counter()
    result = None
    if curve == "geodesic":
        result = solve_geodesic(model, endpoints, logsnr=logsnr, n_points=n_points, seed=seed, progress=progress,
                                **(geodesic_options or {}))
        cx, clam = result.x, result.logsnr
    else:
        cx, clam = linear_curve(endpoints, model.scaling, n_points=n_points, logsnr=logsnr)
    t_curve = time.perf_counter() - t0
    restraints = curve_restraints(cx, clam, model.scaling, temperature=temperature, origin=endpoints.origin)
    t0 = time.perf_counter()
    paths = sample_paths(system, restraints, endpoints, n_paths=n_paths, steps_per_point=steps_per_point,
                         temperature=temperature, timestep=timestep, friction=friction, platform=platform,
                         frames_per_point=frames_per_point, seed=seed, n_workers=n_workers, progress=progress,
                         executor=executor)
    return CartesianResult(paths, endpoints, restraints, result,
                           {"geodesic": t_curve, "sampling": time.perf_counter() - t0})


def save_paths_dcd(paths, topology, directory, *, max_paths: Optional[int] = None) -> list:
    """One DCD file per path (``path_000.dcd``, ...) plus ``topology.pdb`` in ``directory``.

    VMD and mdtraj open them: ``mdtraj.load("path_000.dcd", top="topology.pdb")``.

    Parameters
    ----------
    paths : tps.sampling.Paths
        Frames ``(n_paths, n_frames, n_atoms, 3)``, nm.
    topology : mdtraj.Topology or openmm.app.Topology
    directory : path
    max_paths : int, optional

    Returns
    -------
    list of Path
        The DCD files written.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> import mdtraj
    >>> from tps.sampling import Paths
    >>> from tps.systems import alanine_dipeptide
    >>> structures = alanine_dipeptide.minimized_structures()
    >>> frames = torch.as_tensor(np.stack([structures["C5"], structures["C7ax"]]))[None]   # (1, 2, 22, 3)
    >>> paths = Paths(frames, torch.zeros(1, 2), n_energy_evals=0, kT=2.494)
    >>> directory = tempfile.mkdtemp()
    >>> files = save_paths_dcd(paths, alanine_dipeptide.topology(), directory)
    >>> [f.name for f in files], mdtraj.load(str(files[0]), top=os.path.join(directory, "topology.pdb")).n_frames
    (['path_000.dcd'], 2)
    """
    import mdtraj
    from pathlib import Path

    from tps.io import atomic_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    top = as_mdtraj_topology(topology)
    frames = paths.frames.detach().cpu().numpy()
    n = frames.shape[0] if max_paths is None else min(int(max_paths), frames.shape[0])
    with atomic_path(directory / "topology.pdb") as tmp:
        mdtraj.Trajectory(frames[0, :1].astype(np.float32), top).save_pdb(str(tmp))
    written = []
    for i in range(n):
        path = directory / f"path_{i:03d}.dcd"
        with atomic_path(path) as tmp:
            mdtraj.Trajectory(frames[i].astype(np.float32), top).save_dcd(str(tmp))
        written.append(path)
    return written
