"""Each registered system makes its dynamics engine; the engine's energies are the system's potential
and its restraint follows 0.5 k |x - c|^2 (tps.testing)."""

import pytest
import torch

from tps.systems import load
from tps.testing import assert_restraint_energy


@pytest.mark.parametrize("name", ["muller-brown", "alanine-dipeptide-phipsi"])
def test_2d_engine_restraint_and_energies(name):
    system = load(name)
    engine = system.make_engine(seed=0)
    assert engine.kT == system.kT and engine.step_size == system.protocols().sampler.step_size
    x = torch.stack([system.endpoints[system.start], system.endpoints[system.target]])
    torch.testing.assert_close(engine.energy(x), system.potential.energy(x))
    assert_restraint_energy(engine, x=x + 0.05, centre=system.endpoints[system.start])


@pytest.mark.parametrize("name", ["alanine-dipeptide", "glycine-dipeptide"])
def test_molecule_engine_energies_are_the_force_field(name):
    system = load(name, platform="Reference")
    engine = system.make_engine(seed=0, platform="Reference")
    assert engine.kT == pytest.approx(system.kT)
    x = system.endpoints[system.start][None]
    engine.set_positions(x)  # applies the X-H constraints (the minimum was made with flexible bonds)
    xc, e = engine.observe()
    assert float((xc - x).abs().max()) < 1e-3
    torch.testing.assert_close(e.double(), system.potential.energy(xc.double()).double(), atol=1e-6, rtol=1e-9)
    frames, energies = engine.step(4, n_frames=2)
    assert frames.shape == (1, 2, *x.shape[1:]) and torch.isfinite(energies).all()
