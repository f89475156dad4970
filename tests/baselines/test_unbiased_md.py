"""Unbiased MD baseline: cost per transition against Kramers' rate, and the lower bound."""

import math

import pytest
import torch

from tps.baselines import unbiased_md
from tps.potentials import Harmonic
from tps.potentials.base import Potential
from tps.states import Ball

torch.set_num_threads(1)


class QuarticDoubleWell(Potential):
    """``U(x) = h (x^2 - 1)^2`` in 1-D: minima at -1 and +1 (U'' = 8h), barrier top at 0 (U'' = -4h)."""

    def __init__(self, h):
        super().__init__((1,))
        self.h = float(h)

    def _energy(self, x):
        return self.h * (x[..., 0] ** 2 - 1.0) ** 2

    def _energy_and_forces(self, x):
        return self._energy(x), -4.0 * self.h * x * (x**2 - 1.0)


def kramers_steps(h, kT, dt):
    """Mean first-passage steps from -1 to +1: 1 / k with the overdamped Kramers rate
    k = sqrt(U''(-1) |U''(0)|) / (2 pi) * exp(-h / kT) (unit mobility)."""
    rate = math.sqrt(8 * h * 4 * h) / (2 * math.pi) * math.exp(-h / kT)
    return 1.0 / (rate * dt)


def states():
    return Ball([-1.0], 0.1, name="A"), Ball([1.0], 0.1, name="B")


def test_cost_per_transition_matches_kramers():
    # h / kT = 3: Kramers time 22.3 -> 2230 steps at dt = 1e-2; 6000 steps leave ~7 % censored.
    h, kT, dt = 1.0, 1.0 / 3.0, 1e-2
    pot = QuarticDoubleWell(h)
    a, b = states()
    res = unbiased_md(pot, torch.tensor([-1.0], dtype=torch.float64), state_a=a, state_b=b, kT=kT, dt=dt,
                      n_chains=200, max_steps=6000, seed=0, barrier_energy=h)
    assert res.n_transitions > 100
    assert res.n_energy_evals == pot.n_evals
    assert res.n_energy_evals == 200 + int(res.steps_run.sum())
    assert res.evals_per_transition_lower_bound is None
    ratio = res.evals_per_transition / kramers_steps(h, kT, dt)
    assert 1 / 3 < ratio < 3, ratio
    # Observed paths run from the last frame in A to the first in B, nothing in A or B between.
    p = res.paths
    assert p is not None and p.n_paths == res.info["n_paths_stored"] > 0
    for frames, n in zip(p.frames, p.info["lengths"].tolist()):
        assert a(frames[0]) and b(frames[n - 1])
        assert not (a(frames[1:n - 1]) | b(frames[1:n - 1])).any()


def test_too_small_budget_is_a_lower_bound():
    # h / kT = 9: about 6e5 steps per transition at dt = 5e-3; 16 chains x 500 steps see none.
    h, kT, dt = 3.0, 1.0 / 3.0, 5e-3
    pot = QuarticDoubleWell(h)
    a, b = states()
    res = unbiased_md(pot, torch.tensor([-1.0], dtype=torch.float64), state_a=a, state_b=b, kT=kT, dt=dt,
                      n_chains=16, max_steps=500, seed=1, barrier_energy=h)
    assert res.n_transitions == 0
    assert res.evals_per_transition is None
    assert res.paths is None
    assert res.evals_per_transition_lower_bound == res.n_energy_evals == 16 * 501
    assert res.info["lower_bound_95"] == pytest.approx(res.n_energy_evals / 3)
    # Soft-mode harmonic extrapolation: sqrt(2) x the Kramers rate for this well (U''(0)/U''(-1) = 1/2).
    ratio = res.evals_per_transition_extrapolated / kramers_steps(h, kT, dt)
    assert 1 / 3 < ratio < 3, ratio
    # Without a barrier energy there is no extrapolation, still no crash.
    res2 = unbiased_md(pot, torch.tensor([-1.0], dtype=torch.float64), state_a=a, state_b=b, kT=kT, dt=dt,
                       n_chains=2, max_steps=5, seed=1)
    assert res2.evals_per_transition_extrapolated is None and res2.evals_per_transition_lower_bound == 12


def test_bad_input():
    pot = QuarticDoubleWell(1.0)
    a, b = states()
    kw = dict(state_a=a, state_b=b, kT=0.3, dt=1e-3, n_chains=2, max_steps=5)
    with pytest.raises(ValueError, match="x_start"):
        unbiased_md(pot, torch.tensor([0.0]), **kw)
    with pytest.raises(ValueError, match="x_start"):
        unbiased_md(pot, torch.zeros(3, 1) - 1, **kw)
    with pytest.raises(ValueError, match="kT"):
        unbiased_md(pot, torch.tensor([-1.0]), **{**kw, "kT": -1.0})
    with pytest.raises(ValueError, match="max_steps"):
        unbiased_md(pot, torch.tensor([-1.0]), **{**kw, "max_steps": 0})


def test_extrapolation_in_a_harmonic_well_matches_its_closed_form():
    """``U = k x^2 / 2`` sampled by Euler-Maruyama has the stationary variance
    ``kT / (k (1 - k dt / 2))``, so the soft-mode curvature is ``kappa = k (1 - k dt / 2)`` and,
    with ``U_min = 0``, the extrapolated cost is ``2 pi / (kappa dt) * exp(barrier / kT)``.
    The variance comes from 64 chains x ~20 correlation times: a few per cent; a factor 2 in the
    rate (or its inverse) is far outside the 15 % window."""
    k, kT, dt, barrier = 1.0, 0.5, 0.01, 3.0

    pot = Harmonic((1,), k=k)
    a, b = Ball([0.0], 40.0, name="A"), Ball([50.0], 1.0, name="B")  # B is never reached
    res = unbiased_md(pot, torch.tensor([0.0], dtype=torch.float64), state_a=a, state_b=b, kT=kT, dt=dt,
                      n_chains=64, max_steps=2000, seed=3, barrier_energy=barrier)
    assert res.n_transitions == 0
    kappa = k * (1 - k * dt / 2)
    assert res.info["soft_mode_curvature"] == pytest.approx(kappa, rel=0.15)
    assert 0.0 <= res.info["min_energy"] < 1e-4 * kT
    expected = 2 * math.pi / (kappa * dt) * math.exp(barrier / kT)
    assert res.evals_per_transition_extrapolated == pytest.approx(expected, rel=0.15)


def test_first_passage_step_of_a_driven_chain():
    """A constant force F with negligible noise moves every chain by F dt per step: from 0 it first
    enters B = [0.9925, 1.0075] at step 100 (x = 0.99 after 99 steps) and last leaves A = [-0.505,
    0.505] after step 50, so the stored path runs over frames 50..100 (51 frames)."""

    class Slope(Potential):
        def __init__(self):
            super().__init__((1,))

        def _energy(self, x):
            return -x[..., 0]

        def _energy_and_forces(self, x):
            return self._energy(x), torch.ones_like(x)

    a, b = Ball([0.0], 0.505, name="A"), Ball([1.0], 0.0075, name="B")
    res = unbiased_md(Slope(), torch.tensor([0.0], dtype=torch.float64), state_a=a, state_b=b, kT=1e-14, dt=0.01,
                      n_chains=3, max_steps=500, seed=0)
    assert res.n_transitions == 3
    assert res.first_passage_steps.tolist() == [100, 100, 100]
    assert res.steps_run.tolist() == [100, 100, 100]
    assert res.n_energy_evals == 3 * 101
    assert res.paths.info["lengths"].tolist() == [51, 51, 51]
    torch.testing.assert_close(res.paths.frames[:, 0, 0], torch.full((3,), 0.5, dtype=torch.float64), atol=1e-6, rtol=0)
