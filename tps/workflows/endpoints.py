"""Endpoints of a molecular transition: both structures minimised in the force field, centred,
and the target Kabsch-rotated onto the start (rigid-body motion is not a transition, method.md
section 7). Units: nm, kJ/mol, K."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import openmm
import openmm.unit as unit
import torch

from tps.diffusion.scaling import AffineScaling
from tps.metrics.molecular import kabsch_align
from tps.engines.openmm import context_for
from tps.potentials.openmm import boltzmann_kT, positions_nm
from tps.workflows.coordinates import fit_scaling

__all__ = ["Endpoints", "prepare_endpoints", "kabsch_align", "fit_scaling"]

_KJ = unit.kilojoule_per_mole


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
    # the package's one context factory (cached per system and settings; positions are set here)
    context = context_for(system, integrator=("verlet", 0.001), platform=platform).context
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
