"""tps.testing.check_restraint_energy: the engine's restraint energy == 0.5 k |x - c|^2, reported energies exclude it.

Passes for the torch and OpenMM engines of the package and for a minimal engine written from the
protocol; fails for a restraint missing its 1/2, for reported energies that include the restraint,
and when the restraint is too small next to the potential to be seen.
"""

from __future__ import annotations

import numpy as np
import openmm
import pytest
import torch

from tps.engines import TorchOverdampedEngine
from tps.potentials import Harmonic, MullerBrown
from tps.testing import CheckResult, assert_restraint_energy, check_restraint_energy

torch.set_num_threads(1)


@pytest.mark.parametrize("reduced", [False, True], ids=["energy_units", "reduced"])
def test_torch_engine_on_muller_brown(reduced):
    engine = TorchOverdampedEngine(MullerBrown(), kT=12.5, dt=1e-4)
    stiffness = 80.0 if reduced else 1000.0  # 80 / length^2 x kT 12.5 = 1000 energy / length^2
    result = check_restraint_energy(engine, stiffness=stiffness, centre=[-0.5, 1.5], reduced=reduced, scale=0.3)
    assert isinstance(result, CheckResult) and result.passed, result.message
    assert result.details["stiffness"] == pytest.approx(1000.0)
    assert np.allclose(result.details["restraint"], result.details["formula"], rtol=1e-12)


def test_openmm_engine_on_free_particles():
    from tps.engines import OpenMMLangevinEngine

    system = openmm.System()
    for mass in (12.0, 1.0, 16.0):
        system.addParticle(mass)
    bond = openmm.HarmonicBondForce()  # a force field that is not zero: its energy must not absorb the restraint
    bond.addBond(0, 1, 0.1, 1000.0)
    system.addForce(bond)
    engine = OpenMMLangevinEngine(system, platform="Reference", restraint=True)
    x = np.array([[0.0, 0.0, 0.0], [0.11, 0.0, 0.0], [0.5, 0.5, 0.0]])
    result = assert_restraint_energy(engine, x=x + np.random.default_rng(0).normal(0.0, 0.05, (4, 3, 3)),
                                     stiffness=500.0)
    assert result.passed and result.statistic < 1e-9
    assert np.all(result.details["formula"] > 1.0)  # kJ/mol: a real restraint, not round-off


def test_minimal_engine_passes_and_its_bugs_fail(minimal_engine):
    potential = Harmonic((3,), k=2.0)
    assert check_restraint_energy(minimal_engine(potential, kT=1.0, dt=1e-3), stiffness=50.0).passed

    result = check_restraint_energy(minimal_engine(potential, kT=1.0, dt=1e-3, restraint_factor=2.0), stiffness=50.0)
    assert not result.passed
    assert result.statistic > 0.3 and "differs from 0.5 k |x - c|^2" in result.message
    with pytest.raises(AssertionError, match=r"restraint_energy: FAILED: the restraint energy differs"):
        assert_restraint_energy(minimal_engine(potential, kT=1.0, dt=1e-3, restraint_factor=2.0), stiffness=50.0)

    result = check_restraint_energy(minimal_engine(potential, kT=1.0, dt=1e-3, report_restraint=True), stiffness=50.0)
    assert not result.passed and "reported (unrestrained) energy changes" in result.message


def test_too_small_restraint_is_not_a_pass(minimal_engine):
    """Restraint energies at the level of atol cannot show a wrong factor: failing says so."""
    engine = minimal_engine(Harmonic((3,)), kT=1.0, dt=1e-3)
    result = check_restraint_energy(engine, stiffness=1e-6, scale=0.01)
    assert not result.passed and "too small" in result.message
    assert check_restraint_energy(engine, stiffness=1.0, scale=1.0).passed


def test_engine_without_restraint_energy_raises_type_error():
    class Plain:
        kT, event_shape = 1.0, (2,)

        def set_restraint(self, centre, stiffness=0.0, *, reduced=False):
            pass

        def set_positions(self, x):
            pass

        def energy(self, x):
            return torch.zeros(len(x), dtype=torch.float64)

    with pytest.raises(TypeError, match="restraint_energy"):
        check_restraint_energy(Plain())


def test_bad_arguments_raise(minimal_engine):
    engine = minimal_engine(Harmonic((3,)), kT=1.0, dt=1e-3)
    with pytest.raises(ValueError, match="stiffness"):
        check_restraint_energy(engine, stiffness=-1.0)
    with pytest.raises(ValueError, match="centre"):
        check_restraint_energy(engine, centre=[1.0, 2.0])
    with pytest.raises(ValueError, match="x: expected shape"):
        check_restraint_energy(engine, x=np.zeros((2, 4)))
