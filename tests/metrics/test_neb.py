"""Climbing-image NEB: Muller-Brown saddles (benchmarks.md section 4) and the helpers."""

import numpy as np
import openmm
import pytest
import torch

from tps.metrics.neb import (
    align_band,
    bond_graph,
    climbing_image_neb,
    linear_band,
    remove_rigid_body_motion,
    torsion_band,
)
from tps.potentials import MullerBrown

torch.set_num_threads(1)

MIN_A = (-0.5582, 1.4417)
MIN_B = (0.6235, 0.0280)
MIN_I = (-0.0500, 0.4667)


def muller_brown_system():
    """One particle in the Muller-Brown field (x, y), z held near 0 by a stiff harmonic term."""
    system = openmm.System()
    system.addParticle(1.0)
    force = openmm.CustomExternalForce(MullerBrown.openmm_expression() + "+1000*z^2")
    force.addParticle(0, [])
    system.addForce(force)
    return system


@pytest.mark.parametrize("start, end, saddle", [(MIN_A, MIN_I, -40.66), (MIN_I, MIN_B, -72.25)])
def test_climbing_image_finds_muller_brown_saddles(start, end, saddle):
    a = np.array([[start[0], start[1], 0.0]])
    b = np.array([[end[0], end[1], 0.0]])
    band = linear_band(a, b, 12, align=False)
    result = climbing_image_neb(muller_brown_system(), band, spring=100.0, fmax=0.5, dt=2.5e-3, dt_max=1e-2,
                                max_step=0.05, platform="Reference")
    assert result.converged
    assert result.climbing_index > 0
    # S1 = -40.66 and S2 = -72.25 (benchmarks.md section 4, four decimals in x, y)
    assert result.saddle_energy == pytest.approx(saddle, abs=0.5)
    np.testing.assert_allclose(result.band[0], a)
    np.testing.assert_allclose(result.band[-1], b)
    assert result.n_energy_evals == 2 + 10 * result.n_iterations


def test_rigid_body_projection_is_orthogonal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 3))
    f = rng.normal(size=(2, 7, 3))
    g = remove_rigid_body_motion(x, f)
    np.testing.assert_allclose(remove_rigid_body_motion(x, g), g, atol=1e-12)  # idempotent
    np.testing.assert_allclose(g.sum(-2), 0.0, atol=1e-12)  # no net translation
    r = x - x.mean(-2, keepdims=True)
    np.testing.assert_allclose(np.cross(r, g).sum(-2), 0.0, atol=1e-12)  # no net rotation
    rot = np.cross(np.array([0.3, -0.2, 0.5]), r) + np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(remove_rigid_body_motion(x, rot), 0.0, atol=1e-12)


def test_torsion_band_on_alanine_dipeptide():
    from tps.potentials.openmm import dihedrals, phi_psi_indices
    from tps.systems import alanine_dipeptide as ad

    top = ad.topology()
    system = ad.create_openmm_system(top)
    minima = ad.minimized_structures()
    a, b = minima["C5"], minima["C7ax"]
    idx = phi_psi_indices(top)
    band = torsion_band(a, b, idx, bond_graph(system), 9, turns=(1, -1))
    angles = dihedrals(torch.as_tensor(band), idx).numpy()
    np.testing.assert_allclose(band[0], a, atol=1e-12)
    end_angles = dihedrals(torch.as_tensor(b), idx).numpy()
    np.testing.assert_allclose(angles[-1], end_angles, atol=1e-8)
    # phi rises through 0 and psi falls: unwrapped steps all of one sign
    steps = np.remainder(np.diff(angles, axis=0) + np.pi, 2 * np.pi) - np.pi
    assert (steps[:, 0] > 0).all() and (steps[:, 1] < 0).all()
    # the band is aligned and changes smoothly: no image jumps by more than 0.1 nm RMS per atom
    jumps = np.sqrt(((band[1:] - band[:-1]) ** 2).sum(-1).mean(-1))
    assert jumps.max() < 0.1
    np.testing.assert_allclose(align_band(band), band, atol=1e-10)
