"""Geodesic-seeded shooting: the transition cut, the seeds, and chains from distinct seeds
(Muller-Brown with the torch engine; a one-particle OpenMM double well)."""

import numpy as np
import openmm
import pytest
import torch

from tps.baselines import (
    seed_paths, seeded_shooting, transition_bounds, transition_segments, trim_to_transition,
)
from tps.engines.openmm import OpenMMLangevinEngine
from tps.parallel import InProcessExecutor
from tps.states import Ball
from tps.systems import load

A1, B1 = Ball(torch.tensor([0.0]), 0.5), Ball(torch.tensor([3.0]), 0.5)


def _is_transition(f, a, b):
    return bool(a(f[0])) and bool(b(f[-1])) and not bool((a(f[1:-1]) | b(f[1:-1])).any())


def test_transition_segments_on_hand_made_paths():
    x = [
        torch.tensor([0.0, 0.2, 1.0, 0.3, 1.5, 2.0, 2.9, 3.0]),  # re-enters A: cut after the last visit
        torch.tensor([3.0, 2.0, 1.0, 0.0]),                     # B -> A only: no segment
        torch.tensor([3.0, 0.1, 1.4, 2.8, 1.0, 3.1]),           # starts in B, then A -> B
        torch.tensor([0.1, 1.0, 2.0, 1.0]),                     # never reaches B
    ]
    segs = transition_segments([p[:, None] for p in x], A1, B1)
    expected = [[0.3, 1.5, 2.0, 2.9], [0.1, 1.4, 2.8]]
    assert len(segs) == 2 and all(s.flatten().tolist() == pytest.approx(e) for s, e in zip(segs, expected))
    for s in segs:  # first in A, last in B, nothing in between in A or B
        assert _is_transition(s, A1, B1)
    # the same cut as trim_to_transition, path by path
    for p, s in zip([x[0], x[2]], segs):
        assert torch.equal(trim_to_transition(p[:, None], A1, B1), s)


def test_transition_bounds_ignore_padding():
    in_a = torch.tensor([[1, 0, 0, 0, 0]], dtype=torch.bool)
    in_b = torch.tensor([[0, 0, 0, 1, 1]], dtype=torch.bool)
    assert transition_bounds(in_a, in_b, torch.tensor([3]))[2].tolist() == [False]  # B only in the padding
    assert [t.tolist() for t in transition_bounds(in_a, in_b, torch.tensor([4]))] == [[0], [3], [True]]


def test_seed_paths_bad_input_names_the_argument():
    up = torch.linspace(0.0, 3.0, 7).reshape(7, 1)
    with pytest.raises(ValueError, match="n_chains: 3 chains need 3 different paths.*only 2"):
        seed_paths([up, up], A1, B1, 3)
    with pytest.raises(ValueError, match=r"paths: only 1 of its 3 paths contain an A -> B transition"):
        seed_paths([up, up.flip(0), up.flip(0)], A1, B1, 2)
    with pytest.raises(ValueError, match="paths: only 0"):
        seed_paths([up.flip(0)], A1, B1, 1)
    short = torch.tensor([[0.0], [3.0]])  # A -> B in one frame: nothing to shoot from
    with pytest.raises(ValueError, match=r"only 0 of its 1 paths .* at least 3 frames .*\(1 reach B"):
        seed_paths([short], A1, B1, 1)


def _mb_seeds(mb, n, n_frames=40, seed=0):
    """``n`` distinct continuous A -> B paths: the straight line with a random sideways bulge."""
    g = torch.Generator().manual_seed(seed)
    a, b = mb.endpoints["A"], mb.endpoints["B"]
    s = torch.linspace(0, 1, n_frames, dtype=torch.float64)[:, None]
    normal = torch.tensor([(b - a)[1], -(b - a)[0]]) / torch.linalg.norm(b - a)
    bulge = 0.3 * (torch.rand(n, 1, 1, generator=g, dtype=torch.float64) - 0.5)
    line = a + s * (b - a)
    return line[None] + bulge * torch.sin(torch.pi * s)[None] * normal


def test_seeded_shooting_muller_brown_chains_from_distinct_seeds():
    mb = load("muller-brown")
    a, b = mb.states["A"], mb.states["B"]
    paths = _mb_seeds(mb, 5)
    paths[1] = paths[1].flip(0)  # a B -> A path: skipped, the next path seeds chain 1
    res = seeded_shooting(mb.potential, paths, a, b, n_chains=4, n_rounds=6, burn_in=2, max_frames=400,
                          kT=mb.kT, dt=1e-4, seed=3)
    info = res.info
    assert info["seed_path_index"] == [0, 2, 3, 4]
    assert len(set(info["seed_path_index"])) == 4
    assert len(info["accepted_per_chain"]) == 4 and sum(info["accepted_per_chain"]) == res.n_accepted
    assert len(info["decorrelated_per_chain"]) == 4 and len(info["first_decorrelated_round"]) == 4
    assert len(info["round_evals"]) == 6
    # every frame of every trial is counted: the seeds' frames once plus the rounds' evaluations
    assert res.n_energy_evals == sum(info["seed_frames"]) + sum(info["round_evals"])
    # kept chain states: rounds 3..6 of every chain, each a proper A -> B transition within max_frames
    assert res.paths.n_paths == 4 * 4
    assert sorted(set(res.paths.info["round"].tolist())) == [3, 4, 5, 6]
    lengths = res.paths.info["lengths"]
    for i in range(res.paths.n_paths):
        f = res.paths.frames[i, :int(lengths[i])]
        assert _is_transition(f, a, b) and f.shape[0] <= 400
    # decorrelation from the seed: a chain counts as decorrelated only once none of its seed's frames is left
    for c, first in enumerate(info["first_decorrelated_round"]):
        if first is None:
            assert info["decorrelated_per_chain"][c] == 0
        else:
            assert info["accepted_per_chain"][c] >= 1


def test_seeded_shooting_chain_states_start_from_their_seed():
    mb = load("muller-brown")
    paths = _mb_seeds(mb, 3, seed=1)
    res = seeded_shooting(mb.potential, paths, mb.states["A"], mb.states["B"], n_chains=3, n_rounds=1, burn_in=0,
                          max_frames=400, kT=mb.kT, dt=1e-4, seed=0)
    segs = transition_segments(paths, mb.states["A"], mb.states["B"])
    chain = res.paths.info["chain"].tolist()
    for i, c in enumerate(chain):
        if res.info["accepted_per_chain"][c] == 0:  # rejected: the chain still holds its seed
            n = int(res.paths.info["lengths"][i])
            assert torch.allclose(res.paths.frames[i, :n], segs[c])


def test_seeded_shooting_rejects_too_long_seeds():
    mb = load("muller-brown")
    with pytest.raises(ValueError, match="max_frames: the transition of path 0"):
        seeded_shooting(mb.potential, _mb_seeds(mb, 2), mb.states["A"], mb.states["B"], n_chains=2, n_rounds=2,
                        burn_in=0, max_frames=10, kT=mb.kT, dt=1e-4)
    with pytest.raises(ValueError, match="burn_in"):
        seeded_shooting(mb.potential, _mb_seeds(mb, 2), mb.states["A"], mb.states["B"], n_chains=2, n_rounds=2,
                        burn_in=2, max_frames=100, kT=mb.kT, dt=1e-4)


# ------------------------------------------------------------------ OpenMM
H = 4.0  # kJ/mol


def _double_well():
    system = openmm.System()
    system.addParticle(12.0)
    force = openmm.CustomExternalForce(f"{H}*(x^2-1)^2 + 50*(y^2+z^2)")
    force.addParticle(0, [])
    system.addForce(force)
    return system


def _wa(x):
    return torch.as_tensor(x)[..., 0, 0] < -0.8


def _wb(x):
    return torch.as_tensor(x)[..., 0, 0] > 0.8


def _well_paths(n):
    """``n`` distinct padded paths A -> B (different lengths and a start in A that is cut away)."""
    out = []
    for i in range(n):
        xs = np.concatenate([[-1.0, -0.95], np.linspace(-0.85, 0.9, 10 + 2 * i)])
        out.append(torch.tensor([[[x, 0.0, 0.0]] for x in xs]))
    return out


@pytest.mark.parametrize("executor,relax", [(None, 0), ("in-process", 0), (None, 2), ("in-process", 2)])
def test_seeded_shooting_openmm_two_chains(executor, relax):
    engine = OpenMMLangevinEngine(_double_well(), temperature=300.0, timestep=0.01, platform="Reference", seed=1)
    ex = InProcessExecutor() if executor else None
    res = seeded_shooting(engine, _well_paths(3), _wa, _wb, n_chains=2, n_rounds=2, burn_in=0, max_frames=300,
                          steps_per_frame=5, seed=4, executor=ex, relax_rounds=relax)
    if relax:
        assert len(res.info["relax_rounds_per_chain"]) == 2 and max(res.info["relax_rounds_per_chain"]) <= 2
        assert all(e % 5 == 0 for e in res.info["relax_round_evals"])  # whole frames of MD steps
    info = res.info
    assert info["seed_path_index"] == [0, 1] and info["seed_frames"] == [10, 12]  # cut at the last frame in A (-0.85)
    assert info["n_chains"] == 2 and len(info["accepted_per_chain"]) == 2
    assert len(info["round_evals"]) == 2 and all(e % 5 == 0 for e in info["round_evals"])
    assert res.n_trials == 4 and res.paths.n_paths == 4
    assert sorted(res.paths.info["chain"].tolist()) == [0, 0, 1, 1]
    for i in range(res.paths.n_paths):
        f = res.paths.frames[i, :int(res.paths.info["lengths"][i])]
        assert _is_transition(f, _wa, _wb)


def test_relax_chains_stop_once_decorrelated_and_count_every_evaluation():
    from tps.baselines import relax_chains

    mb = load("muller-brown")
    a, b = mb.states["A"], mb.states["B"]
    seeds, _ = seed_paths(_mb_seeds(mb, 3, seed=2), a, b, 3)
    r = relax_chains(mb.potential, seeds, a, b, max_rounds=6, max_frames=1500, kT=mb.kT, dt=1e-4, seed=1)
    assert r.n_energy_evals == sum(s.shape[0] for s in seeds) + sum(r.round_evals)
    for c, p in enumerate(r.paths):
        assert _is_transition(p, a, b) and p.shape[0] <= 1500
        if r.decorrelated[c]:  # no frame of the seed is left, and the chain stopped there
            assert not bool((p[:, None] == seeds[c][None]).all(-1).any())
            assert r.accepted[c] >= 2  # a two-way shot keeps its shooting frame: two accepted trials at least
        else:
            assert r.rounds[c] == 6
    with pytest.raises(ValueError, match=r"initial\[0\]: not in the flexible-length ensemble"):
        relax_chains(mb.potential, [seeds[0].flip(0)], a, b, max_rounds=2, max_frames=100, kT=mb.kT, dt=1e-4)


def test_relax_chains_until_accepted_stops_each_chain_at_its_first_accepted_trial():
    from tps.baselines import relax_chains

    mb = load("muller-brown")
    a, b = mb.states["A"], mb.states["B"]
    seeds, _ = seed_paths(_mb_seeds(mb, 4, seed=2), a, b, 4)
    r = relax_chains(mb.potential, seeds, a, b, max_rounds=8, max_frames=1500, kT=mb.kT, dt=1e-4, seed=1,
                     until="accepted")
    assert r.n_energy_evals == sum(s.shape[0] for s in seeds) + sum(r.round_evals)
    assert any(r.accepted)
    for c, p in enumerate(r.paths):
        assert _is_transition(p, a, b)
        assert r.accepted[c] <= 1
        if r.accepted[c]:
            # a dynamical path now: only its shooting frame can come from the seed
            shared = (p[:, None] == seeds[c][None]).all(-1).any(-1)
            assert int(shared.sum()) <= 1 and not r.decorrelated[c] == bool(shared.any())
        else:
            assert r.rounds[c] == 8 and torch.equal(p, seeds[c].double())
    with pytest.raises(ValueError, match="until: expected"):
        relax_chains(mb.potential, seeds, a, b, max_rounds=2, max_frames=1500, kT=mb.kT, dt=1e-4, until="never")


def test_seeded_shooting_with_relaxation_counts_it_and_reports_per_chain():
    mb = load("muller-brown")
    a, b = mb.states["A"], mb.states["B"]
    res = seeded_shooting(mb.potential, _mb_seeds(mb, 2, seed=3), a, b, n_chains=2, n_rounds=2, burn_in=0,
                          max_frames=1500, kT=mb.kT, dt=1e-4, seed=0, relax_rounds=3)
    info = res.info
    assert len(info["relax_rounds_per_chain"]) == 2 and len(info["relaxed_from_seed"]) == 2
    # relaxation evaluations + the relaxed paths evaluated once more + the TPS rounds
    assert res.n_energy_evals == info["relax_energy_evals"] + info["n_initial_frames"] + sum(info["round_evals"])
    assert res.paths.n_paths == 4


def test_seeded_shooting_with_relaxation_same_on_every_executor():
    from concurrent.futures import ThreadPoolExecutor

    mb = load("muller-brown")
    a, b = mb.states["A"], mb.states["B"]
    kw = dict(n_chains=3, n_rounds=2, burn_in=0, max_frames=1500, kT=mb.kT, dt=1e-4, seed=7, relax_rounds=2,
              task_size=2)
    runs = [seeded_shooting(mb.potential, _mb_seeds(mb, 3, seed=4), a, b, executor=ex, **kw)
            for ex in (InProcessExecutor(), ThreadPoolExecutor(2))]
    assert torch.equal(runs[0].paths.frames, runs[1].paths.frames)
    assert runs[0].info["relax_rounds_per_chain"] == runs[1].info["relax_rounds_per_chain"]
    assert runs[0].n_energy_evals == runs[1].n_energy_evals
