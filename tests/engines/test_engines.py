"""Engine contracts: restraint energy formula, Boltzmann statistics, OpenMM energies, context cache."""

import math

import numpy as np
import openmm
import pytest
import torch

from tps.engines import Engine, TorchOverdampedEngine, run_until
from tps.engines.openmm import ContextCache, OpenMMLangevinEngine, context_for
from tps.potentials import Harmonic
from tps.potentials.openmm import OpenMMPotential, boltzmann_kT

torch.set_num_threads(1)


def small_molecule():
    """Three particles: two bonds (one constrained), an angle and Lennard-Jones/Coulomb terms."""
    system = openmm.System()
    for m in (12.0, 1.0, 16.0):
        system.addParticle(m)
    bonds = openmm.HarmonicBondForce()
    bonds.addBond(0, 2, 0.14, 3.0e5)
    system.addForce(bonds)
    angles = openmm.HarmonicAngleForce()
    angles.addAngle(1, 0, 2, 1.9, 400.0)
    system.addForce(angles)
    nb = openmm.NonbondedForce()
    for q, s, e in ((0.4, 0.33, 0.4), (0.1, 0.1, 0.05), (-0.5, 0.3, 0.8)):
        nb.addParticle(q, s, e)
    nb.addException(0, 2, 0.0, 0.1, 0.0)
    nb.addException(0, 1, 0.0, 0.1, 0.0)
    system.addForce(nb)
    system.addConstraint(0, 1, 0.109)
    x0 = np.array([[0.0, 0.0, 0.0], [0.109, 0.0, 0.0], [-0.045, 0.13, 0.0]])
    return system, x0


def test_engines_satisfy_the_protocol():
    system, _ = small_molecule()
    assert isinstance(TorchOverdampedEngine(Harmonic((2,)), kT=1.0, dt=0.01), Engine)
    assert isinstance(OpenMMLangevinEngine(system, platform="Reference", restraint=True), Engine)


def test_torch_restraint_energy_and_restrained_variance():
    """With no potential force, the restrained dynamics samples N(c, kT/k) per coordinate."""
    kT, k = 2.0, 50.0
    g = torch.Generator().manual_seed(3)
    engine = TorchOverdampedEngine(Harmonic((3,), k=1e-12), kT=kT, dt=1e-4, generator=g)  # ~ no force
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    engine.set_restraint(c, k)
    x = torch.zeros(4000, 3, dtype=torch.float64)
    engine.set_positions(x)
    assert torch.allclose(engine.restraint_energy(), 0.5 * k * ((x - c) ** 2).sum(1))
    frames, _ = engine.step(2000, 1)
    h = 2 * kT * 1e-4
    exact = (kT / k) / (1 - h * k / (4 * kT))  # Euler-Maruyama stationary variance of the reduced update
    var = frames[:, 0].var(0)
    se = exact * math.sqrt(2 / (x.shape[0] - 1))
    assert torch.all((var - exact).abs() < 4 * se), (var, exact)
    assert torch.all((frames[:, 0].mean(0) - c).abs() < 4 * math.sqrt(exact / x.shape[0]))


def test_torch_boltzmann_variance_in_a_harmonic_well():
    kT, k, dt = 1.5, 3.0, 0.01
    g = torch.Generator().manual_seed(0)
    engine = TorchOverdampedEngine(Harmonic((2,), k=k), kT=kT, dt=dt, generator=g)
    engine.set_positions(torch.zeros(3000, 2, dtype=torch.float64))
    frames, energies = engine.step(600, 3)
    x = frames[:, -1]
    exact = (kT / k) / (1 - dt * k / 2)  # stationary variance of Euler-Maruyama for a linear force
    se = exact * math.sqrt(2 / (x.shape[0] - 1))
    assert torch.all((x.var(0) - exact).abs() < 4 * se)
    assert torch.allclose(energies[:, -1], 0.5 * k * (x ** 2).sum(1))
    assert engine.n_energy_evals == 3000 * 601


def test_torch_rows_advance_only_the_selected_replicas():
    g = torch.Generator().manual_seed(1)
    engine = TorchOverdampedEngine(Harmonic((2,)), kT=1.0, dt=0.01, generator=g)
    engine.set_positions(torch.zeros(4, 2, dtype=torch.float64))
    before, _ = engine.observe()
    frames, energies = engine.step(5, 1, rows=torch.tensor([1, 3]))
    after, _ = engine.observe()
    assert frames.shape == (2, 1, 2) and energies.shape == (2, 1)
    assert torch.equal(after[[0, 2]], before[[0, 2]])
    assert torch.equal(after[[1, 3]], frames[:, 0])


def test_torch_select_keeps_rows_and_their_noise_stream():
    # dropping rows with select, then stepping the whole batch, is step(rows=...) on the full batch
    def engine(seed):
        e = TorchOverdampedEngine(Harmonic((2,)), kT=1.0, dt=0.01, generator=torch.Generator().manual_seed(seed))
        e.set_positions(torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9)))
        e.step(3, 1)
        return e

    full, kept = engine(4), engine(4)
    rows = torch.tensor([0, 2, 3])
    ref = full.step(4, 2, rows=rows)
    kept.select(rows)
    got = kept.step(4, 2)
    assert all(torch.equal(a, b) for a, b in zip(got, ref))
    assert torch.equal(kept.observe()[0], full.observe()[0][rows])
    assert torch.equal(kept.forces, full.forces[rows]) and torch.equal(kept.max_energy, full.max_energy[rows])
    # what step returned is not the engine's state: later in-place row updates leave it alone
    frames, energies = kept.step(1, 1)
    saved = frames.clone(), energies.clone()
    kept.step(2, 1, rows=torch.tensor([1]))
    assert torch.equal(frames, saved[0]) and torch.equal(energies, saved[1])
    # with_forces: the energies and forces of the potential at the recorded frames
    frames, energies, forces = kept.step(4, 2, with_forces=True)
    e_ref, f_ref = kept.potential.energy_and_forces(frames)
    assert torch.equal(energies, e_ref) and torch.equal(forces, f_ref) and torch.equal(forces[:, -1], kept.forces)


def test_run_until_stops_at_the_condition_or_the_cap():
    g = torch.Generator().manual_seed(2)
    engine = TorchOverdampedEngine(Harmonic((1,), k=1.0), kT=1.0, dt=0.01, generator=g)
    engine.set_positions(torch.zeros(1, 1, dtype=torch.float64))
    frames, energies, end = run_until(engine, lambda x: 2 if float(x[0]) > 0.2 else 0, save_every=2, max_frames=500)
    assert end == 2 and float(frames[-1][0]) > 0.2 and all(float(f[0]) <= 0.2 for f in frames[:-1])
    frames, _, end = run_until(engine, lambda x: 0, save_every=1, max_frames=7)
    assert end == 0 and len(frames) == 7


def test_openmm_restraint_energy_matches_the_formula():
    system, x0 = small_molecule()
    engine = OpenMMLangevinEngine(system, platform="Reference", seed=1, restraint=True)
    rng = np.random.default_rng(0)
    engine.set_positions(x0)
    x, _ = engine.observe()
    for k in (100.0, 2500.0):
        centre = x0 + rng.normal(scale=0.05, size=x0.shape)
        engine.set_restraint(centre, k)
        expected = 0.5 * k * ((x[0].numpy() - centre) ** 2).sum()
        assert float(engine.restraint_energy()[0]) == pytest.approx(expected, rel=1e-10)
        engine.set_restraint(centre, k / engine.kT, reduced=True)
        assert float(engine.restraint_energy()[0]) == pytest.approx(expected, rel=1e-10)


def test_openmm_engine_energies_equal_openmm_potential_energies():
    system, x0 = small_molecule()
    engine = OpenMMLangevinEngine(system, temperature=300.0, platform="Reference", seed=4, restraint=True)
    engine.set_restraint(x0, 1000.0)
    engine.set_positions(x0)
    engine.draw_velocities([11])
    frames, energies = engine.step(200, 4)
    potential = OpenMMPotential(system, platform="Reference")
    np.testing.assert_allclose(energies[0].numpy(), potential.energy(frames[0]).numpy(), rtol=1e-9, atol=1e-9)
    assert engine.kT == pytest.approx(boltzmann_kT(300.0))
    assert engine.n_energy_evals == 200 and frames.shape == (1, 4, 3, 3)
    # the constraint holds in every frame
    d = (frames[0, :, 0] - frames[0, :, 1]).norm(dim=-1)
    np.testing.assert_allclose(d.numpy(), 0.109, atol=1e-6)


def test_openmm_velocities_reverse_and_seeded_draws_repeat():
    system, x0 = small_molecule()
    engine = OpenMMLangevinEngine(system, platform="Reference", seed=2)
    engine.set_positions(x0)
    engine.draw_velocities([5])
    v = engine.velocities()
    engine.reverse_velocities()
    assert torch.equal(engine.velocities(), -v)
    engine.draw_velocities([5])
    assert torch.equal(engine.velocities(), v)


def test_context_cache_reuses_contexts_by_settings():
    system, _ = small_molecule()
    cache = ContextCache()
    a = cache.get(system, integrator=("langevin-middle", 300.0, 1.0, 0.002), platform="Reference", seed=1)
    b = cache.get(system, integrator=("langevin-middle", 300.0, 1.0, 0.002), platform="Reference", seed=2)
    c = cache.get(system, integrator=("langevin-middle", 310.0, 1.0, 0.002), platform="Reference", seed=1)
    d = cache.get(system, integrator=("langevin-middle", 300.0, 1.0, 0.002), platform="Reference", restraint=True)
    assert a is b and a is not c and a is not d and cache.n_created == 3
    assert context_for(system, integrator=("verlet", 0.001), platform="Reference") is \
        context_for(system, integrator=("verlet", 0.001), platform="Reference")


def test_a_reseeded_cached_context_repeats_a_fresh_one():
    system, x0 = small_molecule()

    def run(engine):
        engine.set_positions(x0)
        engine.draw_velocities([9])
        return engine.step(50, 1)[0]

    first = run(OpenMMLangevinEngine(system, platform="Reference", seed=7))
    run(OpenMMLangevinEngine(system, platform="Reference", seed=8))  # moves the shared stream on
    again = OpenMMLangevinEngine(system, platform="Reference", seed=7)
    assert torch.equal(run(again), first)
    assert torch.equal(run(again.spawn(7)), first)
