"""Free-energy surfaces in two torsions from well-tempered metadynamics with OpenMM.

Protocol (:func:`torsion_free_energy`)
--------------------------------------
1. **Build**: well-tempered metadynamics (``openmm.app.Metadynamics``) on two periodic
   torsions. The bias converges towards ``V(s) = -(1 - 1/gamma) F(s)``.
2. **Production**: the bias is frozen (no more hills) and MD continues under the static
   potential ``U(x) + V(s(x))``. Each production sample ``s_i`` gets the exact importance weight
   ``exp(+V(s_i)/kT)`` of a static bias, and

   ``F(bin) = -kT ln sum_{i in bin} exp(V(s_i)/kT)`` (+ const).

   No time-dependent reweighting (``c(t)``) is needed, and the estimate does not rely on the
   bias having converged: the bias only flattens the landscape so that every basin and the
   barriers between them are visited.
3. **Convergence**: the production samples are split into two halves; each half gives its
   own surface; after removing the best constant offset, the RMS difference over the bins
   within ``region`` kJ/mol of the minimum of the full estimate is reported.

Grid convention: ``n_bins`` uniform points over ``[-pi, pi)``; bin ``k`` is centred on
``-pi + k * 2 pi / n_bins``; arrays are indexed ``[i_psi, i_phi]`` (second torsion first), so
flattening in C order makes the first torsion vary fastest.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

from tps.core.units import boltzmann_kT
from tps.io import write_text


@dataclass(frozen=True)
class MetadynamicsConfig:
    """Settings of a two-torsion well-tempered metadynamics free-energy run.

    Attributes
    ----------
    temperature : float
        K.
    friction : float
        1/ps (``LangevinMiddleIntegrator``).
    timestep : float
        ps.
    bias_factor : float
        gamma = (T + Delta T) / T of well-tempered metadynamics.
    height : float
        Initial hill height, kJ/mol.
    width : float
        Hill standard deviation in each torsion, rad.
    frequency : int
        MD steps between hills.
    grid_width : int
        Points per torsion of the bias grid.
    n_build_steps : int
        Metadynamics steps (hills deposited).
    n_production_steps : int
        Steps under the frozen bias (at most; see ``max_production_wall_s``).
    max_production_wall_s : float or None
        Stop production early after this many wall-clock seconds (the steps actually run
        are reported); None for no limit.
    sample_interval : int
        Steps between recorded production samples.
    n_bins : int
        Histogram bins per torsion (also the output grid).
    seed : int
        Integrator random seed (0 lets OpenMM pick one).

    Examples
    --------
    >>> MetadynamicsConfig(n_build_steps=1000, n_production_steps=1000).bias_factor   # defaults kept
    6.0
    """

    temperature: float = 300.0
    friction: float = 1.0
    timestep: float = 0.002
    bias_factor: float = 6.0
    height: float = 1.2
    width: float = 0.35
    frequency: int = 500
    grid_width: int = 120
    n_build_steps: int = 2_000_000
    n_production_steps: int = 20_000_000
    max_production_wall_s: Optional[float] = None
    sample_interval: int = 100
    n_bins: int = 60
    seed: int = 1


@dataclass(frozen=True)
class FreeEnergySurface:
    """Result of :func:`torsion_free_energy`.

    Attributes
    ----------
    grid : ndarray, shape ``(n_bins,)``
        Bin centres in rad, uniform over ``[-pi, pi)`` (same for both torsions).
    free_energy : ndarray, shape ``(n_bins, n_bins)``
        kJ/mol, minimum 0, indexed ``[i_second, i_first]``; NaN where no sample fell.
    halves : ndarray, shape ``(2, n_bins, n_bins)``
        Estimates from the first and second half of production (each minimum 0).
    metadynamics_estimate : ndarray, shape ``(n_bins, n_bins)``
        ``-(gamma/(gamma-1)) V`` of the final bias at the bin centres, minimum 0 (a cross-check).
    counts : ndarray of int, shape ``(n_bins, n_bins)``
        Production samples per bin.
    diagnostics : dict
        Steps, wall time, platform, convergence RMS and the like (JSON-serialisable).
    samples : ndarray, shape ``(n_samples, 2)``
        Production torsions, rad, in time order.
    sample_bias : ndarray, shape ``(n_samples,)``
        The frozen bias at each sample, kJ/mol.

    Examples
    --------
    Returned by :func:`torsion_free_energy` (a short run is shown there).
    """

    grid: np.ndarray
    free_energy: np.ndarray
    halves: np.ndarray
    metadynamics_estimate: np.ndarray
    counts: np.ndarray
    diagnostics: dict
    samples: np.ndarray
    sample_bias: np.ndarray


def torsion_bias_variable(indices: Sequence[int], *, width: float, grid_width: int) -> app.BiasVariable:
    """A periodic ``BiasVariable`` on the torsion ``indices`` (4 atoms), range ``[-pi, pi]``.

    Parameters
    ----------
    indices : sequence of 4 int
        Atoms of the torsion.
    width : float
        Hill standard deviation, rad.
    grid_width : int
        Points of the bias grid over ``[-pi, pi]``.

    Returns
    -------
    openmm.app.BiasVariable

    Examples
    --------
    >>> v = torsion_bias_variable([4, 6, 8, 14], width=0.35, grid_width=60)     # alanine dipeptide phi
    >>> round(v.minValue, 4), round(v.maxValue, 4), v.periodic, v.gridWidth
    (-3.1416, 3.1416, True, 60)
    """
    force = openmm.CustomTorsionForce("theta")
    force.addTorsion(*[int(i) for i in indices], [])
    return app.BiasVariable(force, -math.pi, math.pi, width, periodic=True, gridWidth=grid_width)


def bin_index(angles: np.ndarray, n_bins: int) -> np.ndarray:
    """Index of the bin centred on ``-pi + k 2pi/n_bins`` containing each angle (rad).

    Parameters
    ----------
    angles : array-like of float, rad
        Any real values (wrapped periodically).
    n_bins : int

    Returns
    -------
    ndarray of int64, shape of ``angles``, in ``range(n_bins)``.

    Examples
    --------
    >>> bin_index([-math.pi, 0.0, 3.1], 4)          # 3.1 is nearer +pi, the same bin as -pi
    array([0, 2, 0])
    """
    h = 2 * math.pi / n_bins
    return np.rint((np.asarray(angles) + math.pi) / h).astype(np.int64) % n_bins


def reweighted_free_energy(samples: np.ndarray, bias: np.ndarray, kT: float, n_bins: int):
    """Free energy from samples drawn under a static bias.

    Parameters
    ----------
    samples : ndarray, shape ``(n, 2)``, rad
    bias : ndarray, shape ``(n,)``, kJ/mol, the bias at each sample
    kT : float, kJ/mol
    n_bins : int

    Returns
    -------
    free_energy : ndarray ``(n_bins, n_bins)`` kJ/mol, min 0, NaN in empty bins, ``[i_2, i_1]``
    counts : ndarray of int ``(n_bins, n_bins)``

    Examples
    --------
    Without bias, a bin with half the samples lies ``kT ln 2`` higher; a bias of ``kT ln 2`` on
    its sample makes the two bins equal:

    >>> samples = np.array([[0.0, 0.0], [0.0, 0.0], [math.pi / 2, 0.0]])      # (phi, psi) rad
    >>> kT = 2.494
    >>> f, counts = reweighted_free_energy(samples, np.zeros(3), kT, 4)
    >>> counts[2, 2:].tolist(), round(float(f[2, 3]), 4), round(kT * math.log(2), 4)
    ([2, 1], 1.7287, 1.7287)
    >>> f, _ = reweighted_free_energy(samples, np.array([0.0, 0.0, kT * math.log(2)]), kT, 4)
    >>> round(float(f[2, 3]), 12)
    0.0
    """
    i1 = bin_index(samples[:, 0], n_bins)
    i2 = bin_index(samples[:, 1], n_bins)
    flat = i2 * n_bins + i1
    log_w = bias / kT
    shift = log_w.max()
    weights = np.bincount(flat, weights=np.exp(log_w - shift), minlength=n_bins * n_bins)
    counts = np.bincount(flat, minlength=n_bins * n_bins).reshape(n_bins, n_bins)
    with np.errstate(divide="ignore"):
        f = -kT * (np.log(weights) + shift)
    f[~np.isfinite(f)] = np.nan
    f = f.reshape(n_bins, n_bins)
    return f - np.nanmin(f), counts


def aligned_rms(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """RMS of ``a - b`` over ``mask`` after removing the mean difference (best constant).

    Examples
    --------
    >>> a = np.arange(4.0)
    >>> aligned_rms(a, a + 5.0, a >= 0)                 # a constant offset costs nothing
    0.0
    """
    d = (a - b)[mask]
    return float(np.sqrt(np.mean((d - d.mean()) ** 2)))


def basin_free_energy(grid, free_energy, center, *, radius: float, kT: float) -> float:
    """Free energy of a basin: ``-kT ln sum exp(-F/kT)`` over the grid points within ``radius``.

    Parameters
    ----------
    grid : ndarray, shape ``(n,)``, rad
    free_energy : ndarray, shape ``(n, n)``, kJ/mol, indexed ``[i_2, i_1]``
    center : (float, float), rad
    radius : float, rad (Euclidean distance over periodic differences)
    kT : float, kJ/mol

    Returns
    -------
    float, kJ/mol, on the zero of ``free_energy`` (one bin at F = 0 contributes 0). Only
    differences between basins of the same grid are meaningful.

    Examples
    --------
    Two bins at F = 0 inside the radius: ``-kT ln 2``.

    >>> grid = -math.pi + 2 * math.pi * np.arange(6) / 6
    >>> F = np.full((6, 6), 50.0); F[0, 0] = F[0, 1] = 0.0
    >>> round(basin_free_energy(grid, F, (grid[0] + 0.5, grid[0]), radius=0.6, kT=2.494), 4)
    -1.7287
    """
    g1, g2 = np.meshgrid(grid, grid)  # [i_2, i_1]
    d1 = np.remainder(g1 - center[0] + math.pi, 2 * math.pi) - math.pi
    d2 = np.remainder(g2 - center[1] + math.pi, 2 * math.pi) - math.pi
    inside = (np.hypot(d1, d2) <= radius) & np.isfinite(free_energy)
    return float(-kT * np.log(np.sum(np.exp(-free_energy[inside] / kT))))


def torsion_free_energy(
    system: openmm.System,
    positions: np.ndarray,
    torsions: Sequence[Sequence[int]],
    *,
    config: MetadynamicsConfig = MetadynamicsConfig(),
    platform: Optional[openmm.Platform] = None,
    region: float = 30.0,
    progress: Optional[Callable[[str], None]] = None,
) -> FreeEnergySurface:
    """Free energy in two torsions by well-tempered metadynamics + static-bias reweighting.

    Parameters
    ----------
    system : openmm.System
        Modified in place: the metadynamics bias force is added. Pass a fresh copy.
    positions : ndarray, shape ``(n_atoms, 3)``, nm
        Starting structure (constraints are applied first).
    torsions : int array, shape ``(2, 4)``
        Atom indices of the two torsions (e.g. phi and psi).
    config : MetadynamicsConfig
    platform : openmm.Platform, optional
        Default ``Reference``.
    region : float
        kJ/mol above the minimum over which the half-vs-half RMS is measured.
    progress : callable, optional
        Called with a status line now and then.

    Returns
    -------
    FreeEnergySurface

    Examples
    --------
    Far too short to converge (the bundled surface took 2e6 + 2e7 steps), but it shows the
    shapes and the cost accounting:

    >>> from tps.potentials.openmm import phi_psi_indices
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> config = MetadynamicsConfig(n_build_steps=1000, n_production_steps=1000, sample_interval=10,
    ...                             n_bins=12, frequency=250)
    >>> fes = torsion_free_energy(alanine_dipeptide.create_openmm_system(top),
    ...                           alanine_dipeptide.minimized_structures()["C5"], phi_psi_indices(top), config=config)
    >>> fes.free_energy.shape, fes.samples.shape, fes.diagnostics["n_energy_evals"], float(np.nanmin(fes.free_energy))
    ((12, 12), (100, 2), 2000, 0.0)
    """
    say = progress or (lambda msg: None)
    platform = platform or openmm.Platform.getPlatformByName("Reference")
    kT = boltzmann_kT(config.temperature)
    variables = [torsion_bias_variable(t, width=config.width, grid_width=config.grid_width) for t in torsions]
    meta = app.Metadynamics(system, variables, config.temperature * unit.kelvin, config.bias_factor,
                            config.height * unit.kilojoule_per_mole, config.frequency)
    bias_group = meta._force.getForceGroup()  # the bias force is alone in its group
    integrator = openmm.LangevinMiddleIntegrator(config.temperature, config.friction, config.timestep)
    integrator.setRandomNumberSeed(int(config.seed))
    simulation = app.Simulation(app.Topology(), system, integrator, platform)
    simulation.context.setPositions(np.asarray(positions))
    simulation.context.applyConstraints(1e-8)
    simulation.context.setVelocitiesToTemperature(config.temperature, int(config.seed))

    t0 = time.perf_counter()
    chunk = max(config.frequency, (config.n_build_steps // 20) // config.frequency * config.frequency)
    done = 0
    while done < config.n_build_steps:
        n = min(chunk, config.n_build_steps - done)
        meta.step(simulation, n)
        done += n
        say(f"build {done}/{config.n_build_steps} steps, {time.perf_counter() - t0:.0f} s")
    t_build = time.perf_counter() - t0

    n_samples = config.n_production_steps // config.sample_interval
    samples = np.empty((n_samples, 2))
    bias = np.empty(n_samples)
    t1 = time.perf_counter()
    report = max(1, n_samples // 200)
    for i in range(n_samples):
        integrator.step(config.sample_interval)
        samples[i] = meta.getCollectiveVariables(simulation)
        bias[i] = simulation.context.getState(getEnergy=True, groups={bias_group}).getPotentialEnergy().value_in_unit(
            unit.kilojoule_per_mole)
        if (i + 1) % report == 0:
            say(f"production {(i + 1) * config.sample_interval}/{config.n_production_steps} steps, "
                f"{time.perf_counter() - t1:.0f} s")
            if config.max_production_wall_s is not None and time.perf_counter() - t1 > config.max_production_wall_s:
                samples, bias = samples[: i + 1], bias[: i + 1]
                say(f"production stopped at the wall-time limit after {(i + 1) * config.sample_interval} steps")
                break
    t_prod = time.perf_counter() - t1
    n_samples = len(samples)
    n_production_steps = n_samples * config.sample_interval

    n_bins = config.n_bins
    grid = -math.pi + 2 * math.pi * np.arange(n_bins) / n_bins
    free_energy, counts = reweighted_free_energy(samples, bias, kT, n_bins)
    half = n_samples // 2
    halves = np.stack([reweighted_free_energy(samples[:half], bias[:half], kT, n_bins)[0],
                       reweighted_free_energy(samples[half:], bias[half:], kT, n_bins)[0]])
    mask = (free_energy <= region) & np.isfinite(halves).all(axis=0)
    rms = aligned_rms(halves[0], halves[1], mask)

    # Metadynamics' own estimate, bias grid (gridWidth points over [-pi, pi]) read at bin centres.
    total_bias = meta._totalBias  # [i_2, i_1], includes the periodic endpoint
    gw = config.grid_width
    idx = np.rint((grid + math.pi) / (2 * math.pi) * (gw - 1)).astype(int) % (gw - 1)
    meta_f = -(config.bias_factor / (config.bias_factor - 1)) * total_bias[np.ix_(idx, idx)]
    meta_f -= meta_f.min()
    meta_mask = mask & np.isfinite(free_energy)
    diagnostics = {
        "config": asdict(config),
        "platform": platform.getName(),
        "n_build_steps": config.n_build_steps,
        "n_production_steps": n_production_steps,
        "n_md_steps": config.n_build_steps + n_production_steps,
        "n_energy_evals": config.n_build_steps + n_production_steps,
        "simulated_time_ns": (config.n_build_steps + n_production_steps) * config.timestep / 1000,
        "wall_s_build": round(t_build, 1),
        "wall_s_production": round(t_prod, 1),
        "wall_s": round(t_build + t_prod, 1),
        "steps_per_s_build": round(config.n_build_steps / max(t_build, 1e-9), 1),
        "steps_per_s_production": round(n_production_steps / max(t_prod, 1e-9), 1),
        "n_samples": int(n_samples),
        "empty_bins": int((counts == 0).sum()),
        "region_kj_per_mol": region,
        "n_bins_in_region": int(mask.sum()),
        "convergence_rms_halves_kj_per_mol": round(rms, 4),
        "rms_vs_metadynamics_estimate_kj_per_mol": round(aligned_rms(free_energy, meta_f, meta_mask), 4),
        "kT_kj_per_mol": kT,
    }
    return FreeEnergySurface(grid, free_energy, halves, meta_f, counts, diagnostics, samples, bias)


def fill_empty_bins(free_energy: np.ndarray) -> np.ndarray:
    """Replace NaN bins by the largest finite value (a cap for never-visited, high-F bins).

    Examples
    --------
    >>> fill_empty_bins(np.array([[0.0, np.nan], [3.0, 1.0]]))
    array([[0., 3.],
           [3., 1.]])
    """
    out = free_energy.copy()
    out[~np.isfinite(out)] = np.nanmax(free_energy)
    return out


def write_surface(path, grid: np.ndarray, free_energy: np.ndarray) -> None:
    """Write ``# phi psi z`` rows (rad, rad, kJ/mol), first torsion varying fastest.

    Parameters
    ----------
    path : str or Path
        Written atomically.
    grid : ndarray, shape ``(n,)``, rad
        Bin centres, uniform over ``[-pi, pi)``.
    free_energy : ndarray, shape ``(n, n)``, kJ/mol
        Indexed ``[i_psi, i_phi]``.

    Examples
    --------
    The file is the format :func:`tps.potentials.read_grid` reads (which indexes ``[i_phi, i_psi]``):

    >>> import os, tempfile
    >>> from tps.potentials import read_grid
    >>> grid = -math.pi + 2 * math.pi * np.arange(6) / 6
    >>> F = np.arange(36.0).reshape(6, 6)
    >>> path = os.path.join(tempfile.mkdtemp(), "fes.dat")
    >>> write_surface(path, grid, F)
    >>> bool(np.array_equal(read_grid(path).z, F.T))
    True
    """
    n = len(grid)
    lines = ["# phi psi z"]
    for j in range(n):
        for i in range(n):
            lines.append(f"{grid[i]:.9e} {grid[j]:.9e} {free_energy[j, i]:.9e}")
    write_text(path, "\n".join(lines) + "\n")
