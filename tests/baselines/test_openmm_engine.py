"""OpenMM two-way shooting and unbiased MD on a one-particle double well (fast)."""

import numpy as np
import openmm
import pytest
import torch

from tps.baselines import openmm_two_way_shooting, openmm_unbiased_md, trim_to_transition

H = 4.0  # barrier, kJ/mol (~1.6 kT at 300 K)


def double_well():
    system = openmm.System()
    system.addParticle(12.0)
    force = openmm.CustomExternalForce(f"{H}*(x^2-1)^2 + 50*(y^2+z^2)")
    force.addParticle(0, [])
    system.addForce(force)
    return system


def state_a(x):
    return torch.as_tensor(x)[..., 0, 0] < -0.8


def state_b(x):
    return torch.as_tensor(x)[..., 0, 0] > 0.8


def straight_path(n=12):
    xs = np.linspace(-0.9, 0.9, n)
    return np.stack([[[x, 0.0, 0.0]] for x in xs])


KW = dict(state_a=state_a, state_b=state_b, temperature=300.0, timestep=0.01, friction=1.0, platform="Reference")


def test_shooting_accepts_transition_paths_and_counts_steps():
    res = openmm_two_way_shooting(double_well(), straight_path(), n_trials=30, max_frames=400, save_every=5,
                                  seed=1, **KW)
    assert res.n_trials == 30
    assert res.n_accepted > 0
    assert res.n_accepted == res.info["outcomes"]["accepted"]
    assert sum(res.info["outcomes"].values()) == 30
    # every MD step is counted, rejected trials included
    assert res.n_energy_evals == sum(res.info["trial_md_steps"])
    assert all(s % 5 == 0 and s > 0 for s in res.info["trial_md_steps"])
    paths = res.paths
    lengths = paths.info["lengths"]
    for i in range(paths.n_paths):
        f = paths.frames[i, :int(lengths[i])]
        assert bool(state_a(f[0])) and bool(state_b(f[-1]))
        assert not bool((state_a(f[1:-1]) | state_b(f[1:-1])).any())
        assert len(f) <= 400
    assert res.evals_per_accepted_path == pytest.approx(res.n_energy_evals / res.n_accepted)


def test_shooting_rejects_path_outside_ensemble():
    bad = straight_path()[::-1].copy()
    with pytest.raises(ValueError, match="ensemble"):
        openmm_two_way_shooting(double_well(), bad, n_trials=1, **KW)
    trimmed = trim_to_transition(np.concatenate([straight_path(), straight_path()]), state_a, state_b)
    assert trimmed.shape[0] == 12


def test_unbiased_md_transitions_and_bound():
    x0 = np.array([[-1.0, 0.0, 0.0]])
    res = openmm_unbiased_md(double_well(), x0, n_steps_budget=20000, save_every=10, seed=0, **KW)
    assert res.n_energy_evals == 20000
    assert res.n_transitions > 0
    assert res.evals_per_transition == pytest.approx(20000 / res.n_transitions)
    lengths = res.paths.info["lengths"]
    for i in range(res.paths.n_paths):
        f = res.paths.frames[i, :int(lengths[i])]
        assert bool(state_a(f[0])) and bool(state_b(f[-1]))
    tiny = openmm_unbiased_md(double_well(), x0, n_steps_budget=30, save_every=10, seed=0, **KW)
    assert tiny.n_transitions == 0 and tiny.paths is None
    assert tiny.evals_per_transition is None
    assert tiny.evals_per_transition_lower_bound == 30.0


def test_fixed_length_shooting_keeps_length_and_endpoints():
    path = straight_path(10)
    res = openmm_two_way_shooting(double_well(), path, n_trials=40, save_every=50, seed=2, ensemble="fixed", **KW)
    assert res.info["ensemble"] == "fixed"
    assert sum(res.info["outcomes"].values()) == 40
    assert res.n_accepted == res.info["outcomes"]["accepted"] > 0
    assert res.n_energy_evals == sum(res.info["trial_md_steps"])
    # a trial costs at most (L - 1) * save_every steps; a failed backward shot skips the forward one
    assert all(0 < s <= 9 * 50 for s in res.info["trial_md_steps"])
    assert any(s < 9 * 50 for s in res.info["trial_md_steps"])
    assert res.paths.n_frames == 10 and bool((res.paths.info["lengths"] == 10).all())
    for f in res.paths.frames:
        assert bool(state_a(f[0])) and bool(state_b(f[-1]))


def test_fixed_length_shooting_rejects_unknown_ensemble():
    with pytest.raises(ValueError, match="ensemble"):
        openmm_two_way_shooting(double_well(), straight_path(), n_trials=1, ensemble="fixd", **KW)


def test_flexible_length_shooting_matches_unbiased_md_path_lengths():
    """Transition paths cut from unbiased MD (last frame in A to first in B) are exactly the
    flexible-length ensemble, so the shooting chain's path lengths must agree with theirs (within
    4 standard errors; batch means for the correlated chain). The Metropolis factor
    ``min(1, (L_old - 2) / (L_new - 2))`` is applied by capping each trial at
    ``2 + floor((L_old - 2) / u)`` frames before shooting, so an A -> B trial within the cap always
    passes it: a rejection after the fact ('metropolis') means the factor is wrong (inverted, the
    chain drifts to long paths: 21-29 such rejections in 600 trials)."""
    import math

    md = openmm_unbiased_md(double_well(), np.array([[-1.0, 0.0, 0.0]]), n_steps_budget=200_000, save_every=10,
                            seed=0, **KW)
    md_len = md.paths.info["lengths"].double()
    assert len(md_len) > 40
    first = md.paths.frames[0, :int(md_len[0])].numpy()
    res = openmm_two_way_shooting(double_well(), first, n_trials=600, max_frames=2000, save_every=10, seed=10, **KW)
    assert res.info["outcomes"]["metropolis"] == 0
    assert res.n_accepted > 30
    lengths = res.paths.info["lengths"].double()[60:]  # the first tenth relaxes from the initial path
    batches = lengths[: len(lengths) // 10 * 10].view(10, -1).mean(1)
    se = math.sqrt(batches.var() / 10 + md_len.var() / len(md_len))
    assert abs(float(lengths.mean() - md_len.mean())) < 4 * se, (float(lengths.mean()), float(md_len.mean()), se)
