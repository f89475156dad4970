"""OpenMMPotential against OpenMM itself: forces are minus the energy gradient, batching is
exact, the counter counts configurations; torsions agree with mdtraj."""

import math
import warnings

import mdtraj
import numpy as np
import openmm
import openmm.unit as unit
import pytest
import torch

from tps.potentials.openmm import (
    REFERENCE_MAX_ATOMS, OpenMMPotential, PhiPsi, available_platforms, dihedrals, phi_psi, phi_psi_indices,
    select_platform,
)
from tps.systems import alanine_dipeptide as aldp


@pytest.fixture(scope="module")
def setup():
    top, _ = aldp.read_structure(aldp.data_dir() / "C7eq.pdb")
    system = aldp.create_openmm_system(top)
    potential = OpenMMPotential(system, top, platform="Reference")
    return system, top, potential


def _perturbed(n, scale=0.005, seed=0):
    """``n`` copies of the C7eq minimum with Gaussian noise of ``scale`` nm, float64."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.as_tensor(aldp.minimized_structures()["C7eq"], dtype=torch.float64)
    return x0 + scale * torch.randn((n, *x0.shape), generator=g, dtype=torch.float64)


def test_forces_are_minus_energy_gradient(setup):
    _, _, potential = setup
    x = _perturbed(2, seed=1)
    _, forces = potential.energy_and_forces(x)
    g = torch.Generator().manual_seed(2)
    h = 1e-5  # nm; central differences in float64 (Reference platform computes in double)
    for b in range(2):
        # Directional derivative along a random unit direction...
        v = torch.randn(x.shape[1:], generator=g, dtype=torch.float64)
        v /= v.norm()
        e_plus, e_minus = potential.energy(torch.stack([x[b] + h * v, x[b] - h * v]))
        fd = (e_plus - e_minus) / (2 * h)
        assert fd.item() == pytest.approx(-(forces[b] * v).sum().item(), rel=1e-5, abs=1e-4)
        # ... and single Cartesian components of a heavy atom and a hydrogen.
        for atom, axis in [(8, 0), (11, 2), (13, 1)]:
            d = torch.zeros_like(x[b])
            d[atom, axis] = h
            e_plus, e_minus = potential.energy(torch.stack([x[b] + d, x[b] - d]))
            fd = ((e_plus - e_minus) / (2 * h)).item()
            assert fd == pytest.approx(-forces[b, atom, axis].item(), rel=1e-5, abs=1e-3)


def test_autograd_energy_gradient_is_minus_forces(setup):
    _, _, potential = setup
    x = _perturbed(3, seed=3).requires_grad_(True)
    e = potential.energy(x)
    (grad,) = torch.autograd.grad(e.sum(), x)
    _, forces = potential.energy_and_forces(x.detach())
    torch.testing.assert_close(grad, -forces)


def test_batched_energies_equal_single_openmm_evaluations(setup):
    system, _, potential = setup
    x = _perturbed(6, seed=4).reshape(2, 3, 22, 3)
    energies, forces = potential.energy_and_forces(x)
    assert energies.shape == (2, 3) and forces.shape == (2, 3, 22, 3)
    assert energies.dtype == torch.float64
    # An independent context of the same system, one configuration at a time.
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    for idx in np.ndindex(2, 3):
        context.setPositions(x[idx].numpy())
        state = context.getState(getEnergy=True, getForces=True)
        e_ref = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        f_ref = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        assert energies[idx].item() == pytest.approx(e_ref, abs=1e-8)
        np.testing.assert_allclose(forces[idx].numpy(), f_ref, atol=1e-8)
    torch.testing.assert_close(potential.energy(x), energies)


def test_evaluation_counter_counts_configurations(setup):
    _, _, potential = setup
    context = potential.context
    potential.reset_counter()
    x = _perturbed(5, seed=5)
    potential.energy(x)
    assert potential.n_evals == 5
    potential.energy_and_forces(x.reshape(5, 1, 22, 3))
    assert potential.n_evals == 10
    potential.forces(x[0])
    assert potential.n_evals == 11
    potential.energy(x, count=False)
    assert potential.reset_counter() == 11 and potential.n_evals == 0
    assert potential.context is context  # one context, reused


def test_dihedrals_match_mdtraj_and_are_differentiable(setup):
    _, top, _ = setup
    md_top = mdtraj.Topology.from_openmm(top)
    x = _perturbed(4, scale=0.05, seed=6)
    quads = np.array([[0, 4, 6, 8], [4, 6, 8, 14], [6, 8, 14, 16], [8, 14, 16, 18], [1, 0, 4, 5]])
    ours = dihedrals(x, quads)
    ref = mdtraj.compute_dihedrals(mdtraj.Trajectory(x.numpy(), md_top), quads)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-5)  # mdtraj computes in float32
    xg = x[:2].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y: dihedrals(y, quads), (xg,))
    # phi/psi indices come from mdtraj's own definitions: C-N-CA-C and N-CA-C-N.
    idx = phi_psi_indices(md_top)
    names = [[md_top.atom(int(i)).name for i in row] for row in idx]
    assert names == [["C", "N", "CA", "C"], ["N", "CA", "C", "N"]]
    torch.testing.assert_close(PhiPsi(top)(x), dihedrals(x, idx))
    torch.testing.assert_close(phi_psi(x, md_top), dihedrals(x, idx))


def test_select_platform():
    names = available_platforms()
    assert "Reference" in names
    auto_small = select_platform(22).getName()
    assert auto_small == ("CUDA" if "CUDA" in names else "Reference")
    if "CUDA" not in names and "CPU" in names:
        assert select_platform(REFERENCE_MAX_ATOMS + 1).getName() == "CPU"
    assert select_platform(22, "reference").getName() == "Reference"
    with pytest.raises(ValueError, match="available platforms: .*Reference"):
        select_platform(22, "NoSuchPlatform")
    with pytest.warns(UserWarning, match="available platforms: .*Reference"):
        chosen = select_platform(22, ["NoSuchPlatform", "AlsoMissing"])
    assert chosen.getName() == auto_small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_platform(22, ["NoSuchPlatform", "Reference"]).getName() == "Reference"


def test_topology_size_mismatch_is_rejected(setup):
    system, _, _ = setup
    small = mdtraj.Topology()
    chain = small.add_chain()
    res = small.add_residue("ALA", chain)
    small.add_atom("CA", mdtraj.element.carbon, res)
    with pytest.raises(ValueError, match="1 atoms but the system has 22"):
        OpenMMPotential(system, small, platform="Reference")
