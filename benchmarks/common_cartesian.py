"""All-atom alanine dipeptide: states, references, density curves and figures of the benchmarks.

Used by ``benchmarks/aldp_cartesian.py`` and (states, dynamics) by
``benchmarks/reference_ensemble.py``: the transition states ``A = C5 | C7eq`` and ``B = C7ax``
(:func:`transition_states`), the climbing-image NEB reference (:func:`neb_reference`), plain
OpenMM MD as the throughput and thermal baseline (:func:`plain_md`), the density-geodesic
curves (:func:`density_curve`) and the figures (:func:`figures`).

Examples
--------
>>> STATE_A_BASINS, STATE_B_BASIN
(('C5', 'C7eq'), 'C7ax')
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import save_figure
from benchmarks.common_protocols import CartesianProtocol
from tps.sampling.md import md_samples
from tps.systems import alanine_dipeptide as aldp

#: State A of every row: the basins whose (phi, psi) balls are united (the beta/PII super-basin); B: C7ax.
STATE_A_BASINS = ("C5", "C7eq")
STATE_B_BASIN = "C7ax"
STATE_DEFINITION = ("A = union of the periodic (phi, psi) balls of radius 0.75 rad around the C5 and C7eq minima "
                    "(the beta/PII super-basin, as in the standard TPS definition of alanine dipeptide: Bolhuis, "
                    "Dellago and Chandler 2000); B = periodic ball of radius 0.75 rad around the C7ax minimum "
                    "(centres: the minimised structures, tps/systems/data/alanine_dipeptide/minima.json)")


def transition_states(states=None):
    """States ``(A, B)`` of every row: ``A = Ball(C5) | Ball(C7eq)``, ``B = Ball(C7ax)``.

    ``states``: the package's basin balls (:func:`tps.systems.alanine_dipeptide.load` ``.states``,
    radius 0.75 rad around the minimised structures); loaded when None. ``B.cv`` maps positions
    (nm) to (phi, psi) (rad).
    """
    if states is None:
        states = aldp.load(platform="Reference").states
    a = states[STATE_A_BASINS[0]]
    for name in STATE_A_BASINS[1:]:
        a = a | states[name]
    return a, states[STATE_B_BASIN]


def state_description(states=None) -> dict:
    """The state definitions, as written to ``results.json`` and into the reference ensemble's meta."""
    if states is None:
        states = aldp.load(platform="Reference").states
    a, b = transition_states(states)
    return {"A": repr(a), "A_centres_rad": {k: states[k].center.tolist() for k in STATE_A_BASINS},
            "B": repr(b), "B_centre_rad": states[STATE_B_BASIN].center.tolist(),
            "radius_rad": states[STATE_B_BASIN].radius, "definition": STATE_DEFINITION}


def neb_reference(system, endpoints, topology, proto: CartesianProtocol):
    """Lowest climbing-image NEB saddle over both senses of the phi rotation (kJ/mol), and notes."""
    try:
        from tps.metrics.neb import bond_graph, climbing_image_neb, torsion_band
    except ImportError as exc:  # pragma: no cover - depends on the colleague's module
        return None, f"NEB unavailable ({exc})"
    from tps.potentials.openmm import phi_psi_indices

    torsions = phi_psi_indices(topology)
    found = []
    for turn in (+1, -1):
        band = torsion_band(endpoints.start, endpoints.target, torsions, bond_graph(system), proto.neb_images,
                            turns=(turn, 0))
        r = climbing_image_neb(system, band, max_iterations=proto.neb_max_iterations)
        found.append((r.saddle_energy, turn, r))
    energy, turn, r = min(found, key=lambda t: t[0])
    detail = "; ".join(f"phi sense {t:+d}: saddle {e:.2f} kJ/mol (converged {x.converged}, max force "
                       f"{x.max_force:.1f} kJ/mol/nm, {x.n_iterations} iterations, {x.wall_s:.0f} s)"
                       for e, t, x in found)
    return energy, f"climbing-image NEB, {proto.neb_images} images: {detail}"


def plain_md(system, topology, start, proto: CartesianProtocol) -> tuple:
    """Plain OpenMM MD from ``start`` with frames at the sampler's frame spacing.

    Returns
    -------
    steps_per_s : float
        Throughput (frames read out as often as the sampler does).
    max_step : float
        Largest all-atom Kabsch RMSD between consecutive frames (nm): the thermal baseline of
        ``max_step`` at this frame spacing.
    mean_energy : float
        Mean potential energy of the frames after the first fifth (kJ/mol): the thermal level.
    max_energy : float
        Largest potential energy over all frames (kJ/mol): what max_energy is without any transition.
    n_frames : int
    """
    from tps.metrics.molecular import consecutive_frame_rmsd, openmm_energies

    every = proto.steps_per_point // proto.frames_per_point
    t0 = time.perf_counter()
    data = md_samples(system, topology, start, n_steps=proto.throughput_steps, report_interval=every,
                      timestep=proto.timestep, friction=proto.friction)
    rate = proto.throughput_steps / (time.perf_counter() - t0)
    x = torch.as_tensor(data.positions)
    energies = openmm_energies(system, data.positions)
    return rate, float(consecutive_frame_rmsd(x[:-1], x[1:]).max()), float(energies[len(x) // 5:].mean()), \
        float(energies.max()), len(x)


def _phi_psi_lines(phi_psi):
    """Insert NaN where a path crosses the periodic boundary (for line plots)."""
    out = []
    for i in range(phi_psi.shape[0]):
        if i and np.abs(phi_psi[i] - phi_psi[i - 1]).max() > math.pi:
            out.append([np.nan, np.nan])
        out.append(phi_psi[i])
    return np.asarray(out)


def figures(paths_by_method, cv, endpoints, out: Path, n_show: int = 30) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phi, psi, fes = aldp.load_free_energy_surface()
    methods = list(paths_by_method)
    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4.6), squeeze=False)
    ends = cv(torch.as_tensor(np.stack([endpoints.start, endpoints.target]))).numpy()
    for ax, m in zip(axes[0], methods):
        cs = ax.contourf(phi, psi, np.clip(fes, None, 60), levels=24, cmap="viridis")
        pp = cv(paths_by_method[m].frames[:n_show]).numpy()
        for path in pp:
            line = _phi_psi_lines(path)
            ax.plot(line[:, 0], line[:, 1], color="white", lw=0.5, alpha=0.6)
        ax.plot(ends[:, 0], ends[:, 1], "r*", ms=12)
        ax.set_xlim(-math.pi, math.pi)
        ax.set_ylim(-math.pi, math.pi)
        ax.set_title(m)
        ax.set_xlabel("phi (rad)")
        ax.set_ylabel("psi (rad)")
    fig.colorbar(cs, ax=axes[0].tolist(), label="free energy (kJ/mol), package FES")
    fig.suptitle(f"alanine dipeptide C5 -> C7ax, 300 K: {n_show} paths per method over the (phi, psi) FES")
    save_figure(fig, out / "ramachandran.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 3.8), squeeze=False, sharey=True)
    for ax, m in zip(axes[0], methods):
        e = paths_by_method[m].energies[:5].numpy()
        s = np.linspace(0, 1, e.shape[1])
        for row in e:
            ax.plot(s, row, lw=0.7)
        ax.set_title(m)
        ax.set_xlabel("curve progress s")
    axes[0][0].set_ylabel("OpenMM potential energy (kJ/mol)")
    save_figure(fig, out / "energies.png")
    plt.close(fig)


def density_curve(model, system, endpoints, proto: CartesianProtocol, *, exact: bool):
    """Density-geodesic (Yu et al.) curve at constant logSNR ``proto.logsnr``, in noisy model coordinates.

    ``exact=False``: the learned score of the EGNN model at ``proto.logsnr`` (66-D model
    coordinates), between ``alpha z_start`` and ``alpha z_target``. ``exact=True``: the exact
    Boltzmann score ``F / kT`` of the force field (:class:`~tps.potentials.openmm.OpenMMPotential`)
    between the prepared endpoints in nm, then mapped to ``alpha * z``. Either way the restraint
    centres ``x / alpha`` run from the start to the aligned target, as for the spacetime geodesic.
    """
    from tps.spacetime import density_geodesic, exact_boltzmann_score, learned_score

    lam = torch.full((proto.n_points,), proto.logsnr, dtype=torch.float64)
    alpha = float(torch.sigmoid(torch.tensor(proto.logsnr, dtype=torch.float64)).sqrt())
    kw = dict(beta=proto.density_beta, n_knots=proto.n_points, n_iter=proto.density_iter, n_coarse=16)
    if exact:
        from tps.potentials.openmm import OpenMMPotential

        score = exact_boltzmann_score(OpenMMPotential(system), aldp.KT)
        r = density_geodesic(score, torch.as_tensor(endpoints.start, dtype=torch.float64),
                             torch.as_tensor(endpoints.target, dtype=torch.float64), **kw)
        z = model.scaling.to_model(r.x - torch.as_tensor(endpoints.origin, dtype=torch.float64))
        return alpha * z, lam, r
    za, zb = endpoints.model_coordinates(model.scaling)
    r = density_geodesic(learned_score(model.network, proto.logsnr), alpha * za, alpha * zb, **kw)
    return r.x.double(), lam, r
