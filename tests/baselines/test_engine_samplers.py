"""Shooting and unbiased MD written once on an engine: the wrappers are that one algorithm."""

import numpy as np
import openmm
import pytest
import torch

from tps.baselines import (FixedLengthEnsemble, FlexibleLengthEnsemble, openmm_two_way_shooting, two_way_shooting,
                           unbiased_md)
from tps.baselines.trials import draw_trials, run_round, trial_caps
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


class RowsOnly(TorchOverdampedEngine):
    """The torch engine without ``select``: the samplers step the running rows with ``step(rows=...)``."""

    select = None

    def spawn(self, seed):
        return RowsOnly(self.potential, kT=self.kT, dt=self.dt, generator=torch.Generator().manual_seed(seed))


def test_dropping_finished_rows_is_stepping_the_running_ones():
    # select (finished shots and replicas leave the batch) and step(rows=...) give the same streams
    for ens in (FlexibleLengthEnsemble(A, B, max_frames=60), FixedLengthEnsemble(A, B, n_frames=21)):
        ref = two_way_shooting(RowsOnly(DoubleWell(), kT=0.25, dt=2e-2), ens, straight(), n_chains=4, n_rounds=5,
                               seed=7)
        res = two_way_shooting(TorchOverdampedEngine(DoubleWell(), kT=0.25, dt=2e-2), ens, straight(), n_chains=4,
                               n_rounds=5, seed=7)
        assert torch.equal(res.paths.frames, ref.paths.frames) and torch.equal(res.paths.energies, ref.paths.energies)
        assert (res.n_energy_evals, res.info["outcomes"], res.info["round_evals"]) == (
            ref.n_energy_evals, ref.info["outcomes"], ref.info["round_evals"])
    x0 = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    md = [unbiased_md(cls(DoubleWell(), kT=0.4, dt=2e-2), x0, state_a=A, state_b=B, n_chains=6, max_steps=400, seed=2)
          for cls in (RowsOnly, TorchOverdampedEngine)]
    assert md[0].n_transitions > 0 and torch.equal(md[0].first_passage_steps, md[1].first_passage_steps)
    assert torch.equal(md[0].paths.frames, md[1].paths.frames) and md[0].n_energy_evals == md[1].n_energy_evals


def test_trials_end_at_their_state_or_exactly_at_their_cap():
    # the running shots are re-evaluated only when something can change: no trial outlives its cap
    g = torch.Generator().manual_seed(3)
    ens = FlexibleLengthEnsemble(A, B, max_frames=400)
    engine = TorchOverdampedEngine(DoubleWell(), kT=0.25, dt=2e-2, generator=g)
    path = straight()
    engine.set_positions(path)
    paths = [(path, engine.observe()[1], engine.forces.clone())] * 64
    lengths = torch.full((64,), path.shape[0])
    k, u, _ = draw_trials(g, lengths, fixed=False)
    caps = trial_caps(lengths, u, ens.max_frames, True)
    r = run_round(engine, ens, paths, k, u=u, caps=caps, seeds=None, fixed=False, length_metropolis=True)
    counts, frames = r.counts, r.trial_frames
    ended = torch.tensor([len(s[0]) > 0 and bool(A(s[0][-1]) | B(s[0][-1])) for s in r.segments]).view(2, 64)
    both = ended[0] & ended[1]
    capped = ~both & ~r.outcomes["forward_in_A"] & ~r.outcomes["backward_in_B"]
    assert bool(capped.any()) and bool(both.any())
    # abandoned at the cap: the first frame count at or past it (one or two shots running)
    assert bool((frames[capped] >= caps[capped]).all()) and bool((frames[capped] <= caps[capped] + 1).all())
    assert bool((frames[both] <= caps[both] + 1).all())
    assert int(engine.n_energy_evals) == path.shape[0] + int(counts.sum())


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
