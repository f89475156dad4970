"""OpenMM annealed Langevin: the restraint force, its updates, energy bookkeeping, Boltzmann statistics."""

import math

import numpy as np
import openmm
import openmm.unit as unit
import pytest
import torch

from tps.metrics.molecular import openmm_energies
from tps.sampling.openmm_annealed import (
    add_restraint,
    boltzmann_kT,
    openmm_annealed_langevin,
    openmm_restraint_schedule,
    set_restraint,
)

torch.set_num_threads(1)


def free_particles(n=3, mass=10.0):
    system = openmm.System()
    for _ in range(n):
        system.addParticle(mass)
    return system


def reference_context(system):
    return openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))


def test_restraint_force_is_minus_gradient_and_updates():
    rng = np.random.default_rng(1)
    system = free_particles(4)
    force, group = add_restraint(system)
    assert group == 31
    context = reference_context(system)
    x = rng.normal(size=(4, 3))
    context.setPositions(x)
    for k in (250.0, 4000.0):
        centre = rng.normal(size=(4, 3))
        set_restraint(context, force, centre, k)
        state = context.getState(getForces=True, getEnergy=True, groups={group})
        forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        np.testing.assert_allclose(forces, -k * (x - centre), rtol=1e-10, atol=1e-10)
        assert energy == pytest.approx(0.5 * k * ((x - centre) ** 2).sum(), rel=1e-10)


def test_restraint_group_avoids_used_groups():
    system = free_particles(2)
    f = openmm.CustomExternalForce("x^2")
    f.addParticle(0, [])
    f.setForceGroup(31)
    system.addForce(f)
    _, group = add_restraint(system)
    assert group == 30
    with pytest.raises(ValueError, match="already used"):
        add_restraint(system, group=31)


def harmonic_pair():
    """Two particles bonded harmonically (r0 = 0.15 nm) and a third free one."""
    system = free_particles(3, mass=12.0)
    bond = openmm.HarmonicBondForce()
    bond.addBond(0, 1, 0.15, 2.0e4)
    system.addForce(bond)
    x0 = np.array([[0.0, 0.0, 0.0], [0.15, 0.0, 0.0], [0.0, 0.3, 0.0]])
    return system, x0


def test_recorded_energies_exclude_restraint_and_match_recomputation():
    system, x0 = harmonic_pair()
    N, K = 6, 10
    s = np.linspace(0, 1, N)[:, None, None]
    centres = x0 + s * np.array([0.05, 0.0, 0.02])
    paths = openmm_annealed_langevin(system, centres, np.full(N, 500.0), n_paths=3, steps_per_point=K,
                                     x_start=x0, frames_per_point=2, platform="Reference", seed=3)
    assert paths.frames.shape == (3, 1 + 2 * N, 3, 3)
    assert paths.n_energy_evals == 3 * N * K
    assert paths.info["n_energy_readouts"] == 3 * (1 + 2 * N)
    assert paths.kT == pytest.approx(boltzmann_kT(300.0))
    np.testing.assert_allclose(paths.frames[:, 0].numpy(), np.broadcast_to(x0, (3, 3, 3)))
    recomputed = openmm_energies(system, paths.frames, platform="Reference")
    np.testing.assert_allclose(paths.energies.numpy(), recomputed, rtol=1e-6, atol=1e-3)
    # different paths see different noise
    assert not torch.allclose(paths.frames[0, -1], paths.frames[1, -1])


def test_every_path_starts_fresh():
    # Regression: the previous path's last restraint (here 1 nm away, 1e4 kJ/mol/nm^2) must not
    # leak into the next path's start (OpenMM offsets leapfrog velocities by half a step with
    # the current forces). At 1 K all paths then follow the same deterministic drift.
    system, x0 = harmonic_pair()
    centres = np.stack([x0, x0 + np.array([1.0, 0.0, 0.0])])
    paths = openmm_annealed_langevin(system, centres, np.full(2, 1.0e4), temperature=1.0, n_paths=3,
                                     steps_per_point=10, x_start=x0, platform="Reference")
    spread = (paths.frames[:, 1] - paths.frames[0, 1]).abs().max()
    assert spread < 2e-3


def test_alanine_dipeptide_energies_match_recomputation():
    from tps.systems import alanine_dipeptide as ad

    system = ad.create_openmm_system(ad.topology())
    minima = ad.minimized_structures()
    a, b = minima["C5"], minima["C7ax"]
    N, K = 5, 20
    s = np.linspace(0, 1, N)[:, None, None]
    centres = (1 - s) * a + s * b
    paths = openmm_annealed_langevin(system, centres, np.full(N, 2000.0), n_paths=2, steps_per_point=K,
                                     x_start=a, platform="Reference", seed=1)
    assert paths.n_energy_evals == 2 * N * K
    recomputed = openmm_energies(system, paths.frames, platform="Reference")
    np.testing.assert_allclose(paths.energies.numpy(), recomputed, rtol=1e-6, atol=1e-3)
    # the constrained X-H bonds stay at their constraint lengths during the dynamics
    assert system.getNumConstraints() > 0
    i, j, d = system.getConstraintParameters(0)
    r = np.linalg.norm(paths.frames[:, 1:, i] - paths.frames[:, 1:, j], axis=-1)
    np.testing.assert_allclose(r, d.value_in_unit(unit.nanometer), rtol=1e-4)


def test_strong_fixed_restraint_gives_boltzmann_gaussian():
    # Free particles in a harmonic well k: each coordinate is N(c, kT/k). Near-critical damping
    # (omega = gamma = 10/ps) decorrelates x^2 in ~5 frames: ~1400 effective samples per
    # coordinate, so the sample variance has relative sd sqrt(2/1400) = 0.038; 6 sigma = 0.23
    # per coordinate and 0.08 pooled over the 9 coordinates (worst over 20 seeds: 0.20, 0.064).
    system = free_particles(3, mass=10.0)
    k, T = 1000.0, 300.0
    kT = boltzmann_kT(T)
    centre = np.array([[0.1, -0.2, 0.3], [1.0, 1.0, 1.0], [-0.5, 0.0, 0.25]])
    N, K = 500, 20
    paths = openmm_annealed_langevin(system, np.broadcast_to(centre, (N, 3, 3)), k, temperature=T, n_paths=4,
                                     steps_per_point=K, x_start=centre, friction=10.0, platform="Reference",
                                     seed=7)
    x = paths.frames[:, 50:].reshape(-1, 3, 3).numpy()
    sd = math.sqrt(kT / k)
    np.testing.assert_array_less(np.abs(x.mean(0) - centre), 6 * sd / math.sqrt(x.shape[0] / 5))
    var = x.var(0)
    np.testing.assert_allclose(var, kT / k, rtol=0.25)
    assert var.mean() == pytest.approx(kT / k, rel=0.08)


def test_restraint_schedule_in_md_units():
    lam = torch.tensor([2.0, 4.0])
    curve = torch.zeros(2, 3, 3)
    centres, stiffness = openmm_restraint_schedule(curve, lam, kT=2.5)
    assert centres.shape == (2, 3, 3)
    np.testing.assert_allclose(stiffness, 2.5 * np.exp(lam.numpy()))


def test_input_checks_and_stiffness_warning():
    system = free_particles(2)
    x0 = np.zeros((2, 3))
    with pytest.raises(ValueError, match="centres"):
        openmm_annealed_langevin(system, np.zeros((4, 3, 3)), 1.0, n_paths=1, steps_per_point=1, x_start=x0)
    with pytest.raises(ValueError, match="frames_per_point"):
        openmm_annealed_langevin(system, np.zeros((4, 2, 3)), 1.0, n_paths=1, steps_per_point=3,
                                 frames_per_point=2, x_start=x0)
    with pytest.warns(UserWarning, match="omega"):
        openmm_annealed_langevin(free_particles(2, mass=1.0), np.zeros((1, 2, 3)), 1e6, n_paths=1,
                                 steps_per_point=1, x_start=x0, platform="Reference")


def test_two_workers_share_the_paths():
    system, x0 = harmonic_pair()
    N, K = 3, 5
    paths = openmm_annealed_langevin(system, np.broadcast_to(x0, (N, 3, 3)), 300.0, n_paths=3, steps_per_point=K,
                                     x_start=x0, platform="Reference", n_workers=2)
    assert paths.frames.shape == (3, 1 + N, 3, 3)
    assert paths.n_energy_evals == 3 * N * K
    assert torch.isfinite(paths.energies).all()


@pytest.mark.parametrize("fpp", [1, 5])
def test_frames_are_taken_after_the_right_number_of_steps(fpp):
    """With the noise off (friction and temperature ~ 0) a particle released at rest in a fixed
    restraint oscillates, x(t) = x0 cos(omega t), omega = sqrt(k / m); frame n must be the state
    after n * K / frames_per_point steps of dt. One step more or less per frame shifts the phase by
    omega dt per frame (0.013 rad here, 0.26 rad over 20 frames); the integrator's own phase error
    over the run is below 1e-3 rad."""
    mass, k, dt, K, N, x0 = 12.0, 500.0, 0.002, 10, 20, 0.1
    system = free_particles(1, mass=mass)
    centres = np.zeros((N, 1, 3))
    paths = openmm_annealed_langevin(system, centres, np.full(N, k), temperature=1e-9, friction=1e-9, timestep=dt,
                                     n_paths=1, steps_per_point=K, frames_per_point=fpp,
                                     x_start=np.array([[x0, 0.0, 0.0]]), platform="Reference", seed=0)
    omega = math.sqrt(k / mass)
    t = np.arange(1 + N * fpp) * (K // fpp) * dt
    np.testing.assert_allclose(paths.frames[0, :, 0, 0].numpy(), x0 * np.cos(omega * t), atol=2e-4)
