"""Climbing-image nudged elastic band on OpenMM forces: the 0 K minimum-energy-path reference.

benchmarks.md section 1 defines the all-atom ``lower_bound`` as the highest saddle on the
minimum-energy path. :func:`climbing_image_neb` finds it (Henkelman, Uberuaga & Jonsson 2000;
improved tangent of Henkelman & Jonsson 2000) with a FIRE optimiser (Bitzek et al. 2006) on
the NEB forces; the climbing image converges onto the saddle point of the band's path.

The energy is the full force field as given: positions are used as they are, constraints are
*not* applied. Build the system with ``flexibleConstraints=True`` (the package default for
alanine dipeptide) so constrained bonds keep their harmonic terms; otherwise a
``UserWarning`` names the constraints without a bond term.

A NEB finds the saddle of the valley it starts in. Initial bands: :func:`linear_band`
(Cartesian, after Kabsch alignment) or :func:`torsion_band` (torsions interpolated, with a
chosen sense of rotation); run both senses when the transition can go either way round.
The band builders live in :mod:`tps.metrics.neb_bands` and are re-exported here.

Measured on alanine dipeptide (amber99sbildn, vacuum, flexible X-H bonds), C5 -> C7ax, 18
images, defaults (fmax 10 kJ/mol/nm), Reference platform, 2-core CPU shared with other jobs:

=================================================== ====================== ================== ========== =====
initial band                                        saddle - E(C5), kJ/mol CI (phi, psi), deg iterations wall
=================================================== ====================== ================== ========== =====
:func:`torsion_band`, phi up through 0, psi down    33.89                  (-2, -26)          4 328      28 s
:func:`torsion_band`, phi down through 180, psi up  61.31 (max force 13)   (121, 177)         20 000     126 s
:func:`linear_band` (Cartesian)                     63.39                  (132, -41)         7 197      34 s
=================================================== ====================== ================== ========== =====

The lowest, 33.89 kJ/mol above C5 (E(C5) = -88.45 kJ/mol, saddle -54.56 kJ/mol), is the 0 K
minimum-energy-path reference for that transition.

Units: nm, kJ/mol, kJ/mol/nm. FIRE uses unit masses, so its time steps are in
``nm / sqrt(kJ/mol/nm^2)``-like units; the defaults suit force fields with X-H bonds
(stiffest mode ~ 5e5 kJ/mol/nm^2).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np
import openmm
import openmm.unit as unit

from tps.metrics.neb_bands import align_band, bond_graph, linear_band, torsion_band
from tps.potentials.openmm import select_platform

__all__ = ["NEBResult", "climbing_image_neb", "remove_rigid_body_motion",
           "align_band", "linear_band", "bond_graph", "torsion_band"]

_KJ = unit.kilojoule_per_mole
_KJ_NM = unit.kilojoule_per_mole / unit.nanometer


@dataclass(frozen=True)
class NEBResult:
    """A converged (or stopped) band.

    Attributes
    ----------
    band : ndarray, shape ``(n_images, n_atoms, 3)``, nm
    energies : ndarray, shape ``(n_images,)``, kJ/mol
    climbing_index : int
        Index of the climbing image (-1 if climbing never started).
    saddle_energy : float
        Energy of the climbing image (the highest image if climbing never started), kJ/mol.
    barrier : float
        ``saddle_energy - energies[0]``, kJ/mol.
    max_force : float
        Largest per-atom norm of the NEB force without springs at the end, kJ/mol/nm.
    converged : bool
        Whether ``max_force`` fell below ``fmax``.
    n_iterations : int
        FIRE iterations run.
    n_energy_evals : int
        Energy+force evaluations (one per interior image per iteration, plus the endpoints).
    wall_s : float
        Seconds spent.

    Examples
    --------
    Returned by :func:`climbing_image_neb` (a run is shown there).
    """

    band: np.ndarray
    energies: np.ndarray
    climbing_index: int
    saddle_energy: float
    barrier: float
    max_force: float
    converged: bool
    n_iterations: int
    n_energy_evals: int
    wall_s: float


# ------------------------------------------------------------------------ NEB
def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


def remove_rigid_body_motion(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Remove overall translations and rotations from a displacement or force field.

    Parameters
    ----------
    x : ndarray, shape ``(..., n, 3)``
        Configurations.
    f : ndarray, shape ``(..., n, 3)``
        Vectors attached to the atoms of ``x``.

    Returns
    -------
    ndarray, shape ``(..., n, 3)``
        ``f`` minus its orthogonal projection (unit weights) on the infinitesimal rigid
        motions of ``x``: the mean is removed, then ``omega x r`` with ``I omega = sum r x f``
        (``I`` the unit-mass inertia tensor about the centroid).

    Examples
    --------
    A field that is a rigid rotation plus a translation is removed entirely:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(5, 3))
    >>> f = np.cross([0.0, 0.0, 1.0], x - x.mean(0)) + [1.0, 2.0, 3.0]
    >>> bool(np.abs(remove_rigid_body_motion(x, f)).max() < 1e-12)
    True
    """
    r = x - x.mean(-2, keepdims=True)
    g = f - f.mean(-2, keepdims=True)
    torque = _cross(r, g).sum(-2)
    rr = np.einsum("...ni,...nj->...ij", r, r)
    inertia = np.eye(3) * np.trace(rr, axis1=-2, axis2=-1)[..., None, None] - rr
    omega = np.einsum("...ij,...j->...i", np.linalg.pinv(inertia, rcond=1e-10), torque)
    return g - _cross(omega[..., None, :], r)


def _tangent(x_prev, x, x_next, e_prev, e, e_next):
    t_plus, t_minus = x_next - x, x - x_prev
    if e_next > e > e_prev:
        tau = t_plus
    elif e_next < e < e_prev:
        tau = t_minus
    else:
        d_max = max(abs(e_next - e), abs(e_prev - e))
        d_min = min(abs(e_next - e), abs(e_prev - e))
        tau = t_plus * d_max + t_minus * d_min if e_next > e_prev else t_plus * d_min + t_minus * d_max
    return tau / np.linalg.norm(tau)


def _warn_missing_bond_terms(system):
    if not system.getNumConstraints():
        return
    bonded = set()
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for b in range(force.getNumBonds()):
                i, j = force.getBondParameters(b)[:2]
                bonded.add((min(i, j), max(i, j)))
    missing = [(i, j) for i, j, _ in (system.getConstraintParameters(c) for c in range(system.getNumConstraints()))
               if (min(i, j), max(i, j)) not in bonded]
    if missing:
        warnings.warn(
            f"system: {len(missing)} constraints have no harmonic bond term (e.g. atoms {missing[0]}); the NEB "
            "ignores constraints, so these bonds are free. Build the system with flexibleConstraints=True.",
            stacklevel=3,
        )


def climbing_image_neb(system: openmm.System, band, *, spring: float = 1000.0, fmax: float = 10.0,
                       climb: bool = True, climb_fmax: Optional[float] = None, max_iterations: int = 20000,
                       dt: float = 1e-3, dt_max: float = 4e-3, max_step: float = 0.01,
                       remove_rigid_body: Optional[bool] = None, divergence_energy: float = 1.0e4,
                       platform="auto") -> NEBResult:
    """Relax a band of images to the minimum-energy path; the climbing image finds its saddle.

    Parameters
    ----------
    system : openmm.System
        The energy is evaluated at the positions as given (no constraints applied).
    band : array, shape ``(n_images, n_atoms, 3)``, nm
        Initial band, endpoints included (they stay fixed); e.g. :func:`linear_band` or
        :func:`torsion_band`.
    spring : float
        Spring constant between neighbouring images, kJ/mol/nm^2 (on the full Cartesian
        distance between images).
    fmax : float
        Convergence: the largest per-atom norm of the NEB force without its spring part
        (the perpendicular force; the full climbing force for the climbing image) over all
        interior images, kJ/mol/nm (default 10; the common 0.05 eV/A is 48).
    climb : bool
        Use a climbing image (the highest interior image, re-chosen every iteration).
    climb_fmax : float, optional
        Climbing starts once the perpendicular force has stayed below this for 20 iterations
        (default ``5 * fmax``), so that the band first settles into the valley.
    max_iterations : int
    dt, dt_max : float
        Initial and largest FIRE time steps (unit masses).
    max_step : float
        Largest displacement of any atom in one iteration, nm.
    remove_rigid_body : bool, optional
        Project overall translations and rotations out of the NEB forces of each image (right
        for isolated molecules). Default: True for systems of 3 or more particles.
    divergence_energy : float
        Stop (with a ``UserWarning``, ``converged=False``) when an image rises more than this
        above the higher endpoint (and above the highest image of the initial band), kJ/mol;
        guards against a climbing image running up a wall when the band has not found its
        valley.
    platform : str or sequence of str

    Returns
    -------
    NEBResult

    Examples
    --------
    Muller-Brown (dimensionless, one particle; z held at 0) from minimum A to the
    intermediate minimum: the climbing image lands on saddle S1 (U = -40.66).

    >>> import openmm
    >>> from tps.potentials import MullerBrown
    >>> system = openmm.System(); _ = system.addParticle(1.0)
    >>> force = openmm.CustomExternalForce(MullerBrown.openmm_expression() + "+1000*z^2")
    >>> _ = force.addParticle(0, []); _ = system.addForce(force)
    >>> band = linear_band([[-0.5582, 1.4417, 0.0]], [[-0.05, 0.4667, 0.0]], 12, align=False)
    >>> result = climbing_image_neb(system, band, spring=100.0, fmax=0.5, dt=2.5e-3, dt_max=1e-2,
    ...                             max_step=0.05, platform="Reference")
    >>> round(result.saddle_energy, 1)
    -40.7
    """
    band = np.array(band, dtype=np.float64, copy=True)
    n_images, n_atoms = band.shape[0], band.shape[1]
    if band.ndim != 3 or band.shape[2] != 3 or n_atoms != system.getNumParticles() or n_images < 3:
        raise ValueError(f"band: expected shape (n_images >= 3, {system.getNumParticles()}, 3) in nm, got {band.shape}")
    _warn_missing_bond_terms(system)
    if remove_rigid_body is None:
        remove_rigid_body = n_atoms >= 3
    climb_fmax = 5.0 * fmax if climb_fmax is None else float(climb_fmax)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), select_platform(n_atoms, platform))

    def evaluate(x):
        context.setPositions(x)
        state = context.getState(getEnergy=True, getForces=True)
        return (state.getPotentialEnergy().value_in_unit(_KJ),
                state.getForces(asNumpy=True).value_in_unit(_KJ_NM))

    t0 = time.perf_counter()
    energies = np.empty(n_images)
    forces = np.zeros_like(band)
    for m in (0, n_images - 1):
        energies[m], _ = evaluate(band[m])
    n_evals = 2
    interior = range(1, n_images - 1)
    ceiling = None  # divergence threshold, set from the initial band
    velocity = np.zeros_like(band)
    alpha, dt_now, n_positive = 0.1, float(dt), 0
    climbing, ci, converged, worst, calm = False, -1, False, np.inf, 0
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        for m in interior:
            energies[m], forces[m] = evaluate(band[m])
        n_evals += n_images - 2
        if ceiling is None:
            ceiling = max(energies[[0, -1]].max() + divergence_energy, float(np.nanmax(energies)))
        if not np.isfinite(energies).all() or energies.max() > ceiling:
            warnings.warn(
                f"climbing_image_neb: stopped at iteration {iteration}: an image reached "
                f"{energies.max() - energies[0]:.4g} kJ/mol above the first image (the band left its valley; "
                "try another initial band, a smaller dt_max or climb=False)",
                stacklevel=2,
            )
            break
        ci = 1 + int(np.argmax(energies[1:-1])) if climbing else -1
        true_part = np.zeros_like(band)
        spring_part = np.zeros_like(band)
        for m in interior:
            tau = _tangent(band[m - 1], band[m], band[m + 1], energies[m - 1], energies[m], energies[m + 1])
            f = forces[m]
            f_par = np.sum(f * tau)
            if m == ci:
                true_part[m] = f - 2.0 * f_par * tau
            else:
                true_part[m] = f - f_par * tau
                d_next = np.linalg.norm(band[m + 1] - band[m])
                d_prev = np.linalg.norm(band[m] - band[m - 1])
                spring_part[m] = spring * (d_next - d_prev) * tau
        if remove_rigid_body:
            true_part[1:-1] = remove_rigid_body_motion(band[1:-1], true_part[1:-1])
            spring_part[1:-1] = remove_rigid_body_motion(band[1:-1], spring_part[1:-1])
        worst = float(np.linalg.norm(true_part[1:-1], axis=-1).max())
        neb = true_part + spring_part
        calm = calm + 1 if worst < climb_fmax else 0
        if climb and not climbing and calm >= 20:
            climbing = True
            velocity[:] = 0.0
            continue
        if worst < fmax and (climbing or not climb):
            converged = True
            break
        # FIRE
        power = np.sum(neb * velocity)
        if power > 0:
            v_norm, f_norm = np.linalg.norm(velocity), np.linalg.norm(neb)
            velocity = (1 - alpha) * velocity + alpha * v_norm * neb / max(f_norm, 1e-300)
            n_positive += 1
            if n_positive > 5:
                dt_now = min(dt_now * 1.1, dt_max)
                alpha *= 0.99
        else:
            velocity[:] = 0.0
            alpha, dt_now, n_positive = 0.1, dt_now * 0.5, 0
        velocity += dt_now * neb
        step = dt_now * velocity
        longest = np.linalg.norm(step, axis=-1).max()
        if longest > max_step:
            step *= max_step / longest
        band += step
    if not converged:  # energies of the band as returned
        for m in interior:
            energies[m], _ = evaluate(band[m])
        n_evals += n_images - 2
    wall = time.perf_counter() - t0
    top = ci if ci >= 0 else 1 + int(np.argmax(energies[1:-1]))
    return NEBResult(
        band=band, energies=energies.copy(), climbing_index=ci, saddle_energy=float(energies[top]),
        barrier=float(energies[top] - energies[0]), max_force=worst, converged=converged,
        n_iterations=iteration, n_energy_evals=n_evals, wall_s=wall,
    )
