"""Shooting and unbiased MD written once on an engine: the wrappers are that one algorithm."""

import numpy as np
import openmm
import pytest
import torch

from tps.baselines import (FlexibleLengthEnsemble, openmm_two_way_shooting, two_way_shooting, unbiased_md)
from tps.baselines.trials import draw_trials, trial_caps
from tps.engines import TorchOverdampedEngine
from tps.engines.openmm import OpenMMLangevinEngine
from tps.potentials.base import Potential
from tps.states import Ball

torch.set_num_threads(1)


class DoubleWell(Potential):
    """``U(x, y) = h (x^2 - 1)^2 + 2 y^2`` (minima (+-1, 0), barrier h at the origin)."""

    def __init__(self, h=0.5):
        super().__init__((2,))
        self.h = float(h)

    def _energy(self, x):
        return self.h * (x[..., 0] ** 2 - 1.0) ** 2 + 2.0 * x[..., 1] ** 2

    def _energy_and_forces(self, x):
        fx = -4.0 * self.h * x[..., 0] * (x[..., 0] ** 2 - 1.0)
        return self._energy(x), torch.stack([fx, -4.0 * x[..., 1]], dim=-1)


A, B = Ball([-1.0, 0.0], 0.5, name="A"), Ball([1.0, 0.0], 0.5, name="B")


def straight(n=21):
    xs = torch.cat([torch.tensor([-1.0]), torch.linspace(-0.45, 0.45, n - 2, dtype=torch.float64), torch.tensor([1.0])])
    return torch.stack([xs, torch.zeros_like(xs)], dim=-1)


@pytest.mark.parametrize("source", ["torch", "numpy"])
def test_shooting_frame_is_uniform_over_interior_frames(source):
    rng = torch.Generator().manual_seed(0) if source == "torch" else np.random.default_rng(0)
    n, L = 20000, 7
    k, u, _ = draw_trials(rng, torch.full((n,), L), fixed=False)
    counts = torch.bincount(k, minlength=L).double() / n
    assert counts[0] == 0 and counts[-1] == 0
    se = (0.2 * 0.8 / n) ** 0.5
    assert torch.all((counts[1:-1] - 0.2).abs() < 4 * se), counts
    assert abs(float(u.mean()) - 0.5) < 4 * (1 / 12 / n) ** 0.5


def test_cap_implies_the_path_length_metropolis_test():
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(3, 200, (5000,), generator=g)
    u = torch.rand(5000, generator=g, dtype=torch.float64).clamp(min=1e-300)
    caps = trial_caps(lengths, u, 10**6, True)
    # the longest trial within the cap passes u <= (L_old - 2) / (L_new - 2); one frame more would not
    assert bool((u <= (lengths - 2).double() / (caps - 2).double()).all())
    assert bool((u > (lengths - 2).double() / (caps - 1).double()).all())


def test_torch_engine_is_the_potential_path():
    pot, ens = DoubleWell(), FlexibleLengthEnsemble(A, B, max_frames=400)
    ref = two_way_shooting(pot, ens, straight(), kT=0.25, dt=2e-2, n_chains=3, n_rounds=6, seed=4)
    engine = TorchOverdampedEngine(DoubleWell(), kT=0.25, dt=2e-2)
    res = two_way_shooting(engine, ens, straight(), n_chains=3, n_rounds=6, seed=4)
    assert torch.equal(res.paths.frames, ref.paths.frames)
    assert (res.n_energy_evals, res.n_accepted, res.info["outcomes"]) == (
        ref.n_energy_evals, ref.n_accepted, ref.info["outcomes"])
    with pytest.raises(ValueError, match="kT"):
        two_way_shooting(engine, ens, straight(), kT=0.25, n_rounds=2)

    x0 = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    md_ref = unbiased_md(pot, x0, state_a=A, state_b=B, kT=0.4, dt=2e-2, n_chains=4, max_steps=300, seed=2)
    md = unbiased_md(TorchOverdampedEngine(DoubleWell(), kT=0.4, dt=2e-2), x0, state_a=A, state_b=B, n_chains=4,
                     max_steps=300, seed=2)
    assert torch.equal(md.first_passage_steps, md_ref.first_passage_steps)
    assert md.n_energy_evals == md_ref.n_energy_evals


def _openmm_double_well():
    system = openmm.System()
    system.addParticle(12.0)
    force = openmm.CustomExternalForce("4.0*(x^2-1)^2 + 50*(y^2+z^2)")
    force.addParticle(0, [])
    system.addForce(force)
    return system


def _sa(x):
    return torch.as_tensor(x)[..., 0, 0] < -0.8


def _sb(x):
    return torch.as_tensor(x)[..., 0, 0] > 0.8


def test_openmm_wrapper_is_shooting_on_the_openmm_engine():
    system = _openmm_double_well()
    path = np.stack([[[x, 0.0, 0.0]] for x in np.linspace(-0.9, 0.9, 12)])
    kw = dict(temperature=300.0, timestep=0.01, friction=1.0, platform="Reference")
    ref = openmm_two_way_shooting(system, path, state_a=_sa, state_b=_sb, n_trials=12, max_frames=400, save_every=5,
                                  seed=1, **kw)
    engine = OpenMMLangevinEngine(system, seed=123, **kw)
    res = two_way_shooting(engine, FlexibleLengthEnsemble(_sa, _sb, max_frames=400), torch.from_numpy(path),
                           n_chains=1, n_rounds=12, steps_per_frame=5, seed=1)
    assert torch.equal(res.paths.frames, ref.paths.frames)
    assert res.n_energy_evals == ref.n_energy_evals == sum(ref.info["trial_md_steps"])
    assert res.n_accepted == ref.n_accepted > 0
    # every kept path is in the flexible-length ensemble
    for f, n in zip(res.paths.frames, res.paths.info["lengths"].tolist()):
        f = f[:n]
        assert bool(_sa(f[0])) and bool(_sb(f[-1])) and not bool((_sa(f[1:-1]) | _sb(f[1:-1])).any())
    with pytest.raises(ValueError, match="openmm_unbiased_md"):
        unbiased_md(engine, torch.from_numpy(path[0]), state_a=_sa, state_b=_sb, dt=0.01, n_chains=1, max_steps=10)
