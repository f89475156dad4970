"""All-atom metrics: Kabsch RMSD against mdtraj, OpenMM energy recomputation, target states."""

import math

import mdtraj
import numpy as np
import pytest
import torch

from tps.metrics.molecular import (
    consecutive_frame_rmsd,
    heavy_atom_indices,
    kabsch_rmsd,
    openmm_energies,
    phi_psi_target_state,
    rmsd_to_target,
    summarize_molecular,
)
from tps.potentials.openmm import OpenMMPotential
from tps.sampling.paths import Paths
from tps.systems import alanine_dipeptide as ad

torch.set_num_threads(1)


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


@pytest.fixture(scope="module")
def aldp():
    top = ad.topology()
    return top, ad.create_openmm_system(top), ad.minimized_structures()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kabsch_rmsd_matches_mdtraj(aldp, dtype):
    top, _, minima = aldp
    rng = np.random.default_rng(0)
    ref = minima["C5"]
    frames = np.stack([minima[k] for k in ad.ENDPOINT_NAMES] + [ref + 0.02 * rng.normal(size=ref.shape)])
    frames = frames @ random_rotation(rng).T + rng.normal(size=3)
    traj = mdtraj.Trajectory(frames.astype(np.float32), mdtraj.Topology.from_openmm(top))
    target = mdtraj.Trajectory(ref[None].astype(np.float32), traj.topology)
    expected = mdtraj.rmsd(traj, target, 0)
    got = kabsch_rmsd(torch.as_tensor(frames, dtype=dtype), torch.as_tensor(ref, dtype=dtype))
    tol = 1e-5 if dtype == torch.float32 else 2e-6  # mdtraj works in float32
    np.testing.assert_allclose(got.numpy(), expected, atol=tol)
    heavy = heavy_atom_indices(top)
    expected_heavy = mdtraj.rmsd(traj, target, 0, atom_indices=heavy)
    got_heavy = kabsch_rmsd(torch.as_tensor(frames, dtype=dtype), torch.as_tensor(ref, dtype=dtype), atom_indices=heavy)
    np.testing.assert_allclose(got_heavy.numpy(), expected_heavy, atol=tol)


def test_kabsch_rmsd_invariances_and_zero():
    rng = np.random.default_rng(1)
    a = torch.as_tensor(rng.normal(size=(5, 7, 3)))
    b = torch.as_tensor(rng.normal(size=(5, 7, 3)))
    rot = torch.as_tensor(random_rotation(rng))
    base = kabsch_rmsd(a, b)
    torch.testing.assert_close(kabsch_rmsd(a @ rot.T + 3.0, b), base)
    torch.testing.assert_close(kabsch_rmsd(a, b @ rot - 1.0), base)
    torch.testing.assert_close(kabsch_rmsd(b, a), base)
    assert kabsch_rmsd(a, a).abs().max() < 1e-12
    assert kabsch_rmsd(a, a @ rot.T).abs().max() < 1e-12
    # a mirror image is not superposable: the reflection case of the SVD is excluded
    mirror = a * torch.tensor([1.0, 1.0, -1.0], dtype=a.dtype)
    assert (kabsch_rmsd(a, mirror) > 1e-3).all()


def test_kabsch_rmsd_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    a = torch.as_tensor(rng.normal(size=(6, 3)), dtype=torch.float64).requires_grad_()
    b = torch.as_tensor(rng.normal(size=(6, 3)), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: kabsch_rmsd(x, b), (a,), eps=1e-6, atol=1e-6)


def test_openmm_energies_match_potential_and_mdtraj_input(aldp):
    top, system, minima = aldp
    frames = np.stack([minima[k] for k in ad.ENDPOINT_NAMES])
    energies = openmm_energies(system, frames, platform="Reference")
    potential = OpenMMPotential(system, top, platform="Reference")
    np.testing.assert_allclose(energies, potential.energy(torch.as_tensor(frames)).numpy(), rtol=1e-12)
    reference = [ad.reference_minima()["minima"][k]["energy_kj_per_mol"] for k in ad.ENDPOINT_NAMES]
    np.testing.assert_allclose(energies, reference, atol=1e-3)
    traj = mdtraj.Trajectory(frames, mdtraj.Topology.from_openmm(top))
    np.testing.assert_allclose(openmm_energies(system, traj), energies, atol=1e-2)  # float32 positions
    assert openmm_energies(system, torch.as_tensor(frames).reshape(3, 1, 22, 3)).shape == (3, 1)


def test_target_state_and_summary_on_endpoints(aldp):
    top, system, minima = aldp
    heavy = heavy_atom_indices(top)
    assert len(heavy) == 10
    state = phi_psi_target_state(minima["C7ax"], top)
    assert state.radius == 0.75
    assert bool(state(torch.as_tensor(minima["C7ax"])))
    assert not bool(state(torch.as_tensor(minima["C5"])))
    # two one-step "paths": C5 -> C7ax (hits) and C5 -> C5 (does not)
    frames = torch.as_tensor(np.stack([np.stack([minima["C5"], minima["C7ax"]]),
                                       np.stack([minima["C5"], minima["C5"]])]))
    energies = torch.as_tensor(openmm_energies(system, frames))
    paths = Paths(frames, energies, 0, ad.KT)
    rmsd = rmsd_to_target(paths, minima["C7ax"], top)
    assert rmsd[0] < 1e-6 and rmsd[1] > 0.02
    row = summarize_molecular(paths, method="endpoints", system=system, target_positions=minima["C7ax"], topology=top)
    assert row["target_hit_fraction"] == 0.5
    assert row["rmsd_to_target"] == pytest.approx(float(rmsd.mean()))
    assert row["max_step"] == pytest.approx(float(kabsch_rmsd(frames[0, 0], frames[0, 1])))
    assert row["energy_check_max_abs_diff"] < 1e-6
    for key in ("max_energy_mean", "max_energy_std", "minmax", "barrier_mean", "n_energy_evals", "wall_s"):
        assert key in row
    steps = consecutive_frame_rmsd(frames[:, :-1], frames[:, 1:])
    assert steps.shape == (2, 1) and steps[1, 0] < 1e-6
    assert math.isfinite(row["max_energy_mean"])
