"""Two-way shooting TPS: ensemble membership, cost accounting, symmetry and path-length statistics."""

import math

import pytest
import torch

from tps.baselines import (FixedLengthEnsemble, FlexibleLengthEnsemble, initial_path_high_temperature,
                           resample_path, two_way_shooting, unbiased_md)
from tps.potentials.base import Potential
from tps.sampling import Paths, overdamped_langevin
from tps.states import Ball

torch.set_num_threads(1)

KT, DT = 0.25, 2e-2


class SymmetricDoubleWell(Potential):
    """``U(x, y) = h (x^2 - 1)^2 + k/2 y^2``: minima (+-1, 0), saddle (0, 0) at height h.

    Mirror-symmetric in x and in y, so the A -> B path ensemble is symmetric under
    (time reversal) x (x -> -x), and under y -> -y.
    """

    def __init__(self, h=0.5, k=4.0):
        super().__init__((2,))
        self.h, self.k = float(h), float(k)

    def _energy(self, x):
        return self.h * (x[..., 0] ** 2 - 1.0) ** 2 + 0.5 * self.k * x[..., 1] ** 2

    def _energy_and_forces(self, x):
        fx = -4.0 * self.h * x[..., 0] * (x[..., 0] ** 2 - 1.0)
        return self._energy(x), torch.stack([fx, -self.k * x[..., 1]], dim=-1)


def states():
    return Ball([-1.0, 0.0], 0.5, name="A"), Ball([1.0, 0.0], 0.5, name="B")


def straight_path(n):
    """Frames (-1, 0), then (-0.45 .. 0.45, 0) evenly, then (1, 0): in both ensembles for r = 0.5."""
    xs = torch.cat([torch.tensor([-1.0]), torch.linspace(-0.45, 0.45, n - 2, dtype=torch.float64), torch.tensor([1.0])])
    return torch.stack([xs, torch.zeros_like(xs)], dim=-1)


def chain_means(values, chain, n_chains):
    """Per-chain means (chains are independent; rounds within a chain are correlated)."""
    return torch.stack([values[chain == c].mean() for c in range(n_chains)])


def brute_force_fixed_length(pot, a, b, n_frames, n_trajectories, seed):
    """The fixed-length ensemble by rejection: trajectories of ``n_frames`` frames started from
    equilibrium in A (100 steps of relaxation from the minimum, kept if in A), kept if they end in B."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.tensor([-1.0, 0.0], dtype=torch.float64).expand(n_trajectories, 2)
    relaxed, _, _ = overdamped_langevin(pot, x0, kT=KT, dt=DT, n_steps=100, burn_in=99, generator=g)
    x = relaxed[-1][a(relaxed[-1])]
    frames, _, _ = overdamped_langevin(pot, x, kT=KT, dt=DT, n_steps=n_frames, generator=g)
    frames = frames.transpose(0, 1)
    return frames[b(frames[:, -1])]


def crossing_statistics(frames):
    """Per path: first and last frame index with x >= 0 after a frame with x < 0, y where x first
    becomes >= 0, mean x, max energy (of the double well below)."""
    right = frames[..., 0] >= 0
    first = right.double().argmax(1)
    last = frames.shape[1] - 1 - (~right).double().flip(1).argmax(1)  # first frame after the last x < 0
    y_cross = frames[torch.arange(len(frames)), first, 1]
    return {"first": first, "last": last, "y_cross": y_cross, "mean_x": frames[..., 0].mean(1)}


def test_fixed_length_ensemble_is_stationary_symmetric_and_costed():
    pot = SymmetricDoubleWell()
    a, b = states()
    n_frames, n_chains, n_rounds = 51, 32, 40
    reference = brute_force_fixed_length(pot, a, b, n_frames, 60_000, seed=0)
    assert len(reference) > 400
    ens = FixedLengthEnsemble(a, b, n_frames=n_frames)
    pot.reset_counter()
    # Chains start from brute-force paths, i.e. in the stationary ensemble: shooting must keep it.
    res = two_way_shooting(pot, ens, reference[:n_chains], kT=KT, dt=DT, n_chains=n_chains, n_rounds=n_rounds,
                           seed=1)
    # Cost: every initial frame once, then n_frames - 1 new frames per trial, rejected ones included.
    assert res.n_energy_evals == pot.n_evals == n_chains * n_frames + n_chains * n_rounds * (n_frames - 1)
    assert res.n_trials == n_chains * n_rounds
    assert 0 < res.acceptance_rate < 1
    assert res.evals_per_accepted_path == pytest.approx(res.n_energy_evals / res.n_accepted)
    assert 0 < res.n_decorrelated <= res.n_accepted
    p = res.paths
    assert p.frames.shape == (n_chains * n_rounds, n_frames, 2)
    assert a(p.frames[:, 0]).all() and b(p.frames[:, -1]).all()
    assert torch.allclose(p.energies, pot.energy(p.frames, count=False))
    tps = crossing_statistics(p.frames)
    ref = crossing_statistics(reference[n_chains:])
    n_ref = len(reference) - n_chains
    # Symmetry (time reversal x mirror): first + last crossing = n_frames - 1 and y at crossing = 0
    # (the barrier top) on average, within 4 standard errors of the per-chain means.
    for stat in (tps["first"] + tps["last"] - (n_frames - 1.0), tps["y_cross"]):
        m = chain_means(stat.double(), p.info["chain"], n_chains)
        assert abs(m.mean()) < 4 * m.std() / math.sqrt(n_chains) + 1e-3, (m.mean(), m.std())
    # Stationarity: the shooting chains agree with the brute-force ensemble.
    max_e = p.energies.max(1).values
    ref_max_e = pot.energy(reference[n_chains:], count=False).max(1).values
    for t, r in ((tps["first"].double(), ref["first"].double()), (tps["mean_x"], ref["mean_x"]), (max_e, ref_max_e)):
        m = chain_means(t, p.info["chain"], n_chains)
        se = math.sqrt(m.var() / n_chains + r.var() / n_ref)
        assert abs(m.mean() - r.mean()) < 4 * se, (m.mean(), r.mean(), se)


def test_flexible_length_matches_unbiased_md_path_lengths():
    pot = SymmetricDoubleWell()
    a, b = states()
    # Transition paths cut from unbiased MD (last frame in A to first in B) are exactly the flexible
    # ensemble with its dynamical weights. h/kT = 2: about 800 steps per transition at dt = 0.02.
    md = unbiased_md(pot, torch.tensor([-1.0, 0.0], dtype=torch.float64), state_a=a, state_b=b, kT=KT, dt=DT,
                     n_chains=256, max_steps=4000, seed=2)
    md_len = md.paths.info["lengths"]
    assert len(md_len) > 200
    n_chains = 48
    initial = [md.paths.frames[i, :n] for i, n in enumerate(md_len[:n_chains].tolist())]
    ens = FlexibleLengthEnsemble(a, b, max_frames=5000)
    pot.reset_counter()
    res = two_way_shooting(pot, ens, initial, kT=KT, dt=DT, n_chains=n_chains, n_rounds=40, seed=1)
    assert res.n_energy_evals == pot.n_evals
    assert 0 < res.acceptance_rate < 1
    assert res.n_decorrelated > 0
    p = res.paths
    lengths = p.info["lengths"]
    for frames, n in zip(p.frames, lengths.tolist()):
        assert ens(frames[:n])
    # Path lengths agree; without the min(1, (L_old-2)/(L_new-2)) factor the shooting ensemble would
    # weight paths by their length, shifting the mean by var/mean (about 4 standard errors here).
    ref = md_len[n_chains:].double()
    m = chain_means(lengths.double(), p.info["chain"], n_chains)
    se = math.sqrt(ref.var() / len(ref) + m.var() / n_chains)
    assert abs(m.mean() - ref.mean()) < 4 * se, (m.mean(), ref.mean(), se)


def test_keep_accepted_and_bad_input():
    pot = SymmetricDoubleWell()
    a, b = states()
    ens = FixedLengthEnsemble(a, b, n_frames=41)
    res = two_way_shooting(pot, ens, straight_path(41), kT=KT, dt=DT, n_chains=8, n_rounds=10, keep="accepted",
                           seed=3)
    assert res.n_accepted > 0  # (a guard 'if res.n_accepted:' here used to skip the checks silently)
    assert res.paths.n_paths == res.n_accepted
    assert all(ens(frames) for frames in res.paths.frames)
    with pytest.raises(ValueError, match="initial_path"):
        two_way_shooting(pot, ens, straight_path(40), kT=KT, dt=DT)
    with pytest.raises(ValueError, match="initial_path"):
        two_way_shooting(pot, ens, straight_path(41).flip(0), kT=KT, dt=DT)
    with pytest.raises(ValueError, match="initial_path"):  # interior frames inside A
        two_way_shooting(pot, FlexibleLengthEnsemble(a, b), resample_path(straight_path(5), 50), kT=KT, dt=DT)
    with pytest.raises(ValueError, match="keep"):
        two_way_shooting(pot, ens, straight_path(41), kT=KT, dt=DT, keep="all")
    with pytest.raises(ValueError, match="n_frames"):
        FixedLengthEnsemble(a, b, n_frames=2)
    with pytest.raises(ValueError, match="ensemble"):
        two_way_shooting(pot, None, straight_path(41), kT=KT, dt=DT)


def test_resample_path_keeps_endpoints():
    x = torch.arange(5.0).view(5, 1)
    assert resample_path(x, 9, mode="pad").flatten().tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]
    assert resample_path(x, 9).flatten().tolist() == [0, 0, 1, 2, 2, 2, 3, 4, 4]
    assert resample_path(x, 3).flatten().tolist() == [0, 2, 4]
    with pytest.raises(ValueError, match="n_frames"):
        resample_path(x, 3, mode="pad")
    with pytest.raises(ValueError, match="mode"):
        resample_path(x, 9, mode="spline")


def test_muller_brown_end_to_end():
    from tps.systems import load

    mb = load("muller-brown")
    a, b = mb.states["A"], mb.states["B"]
    init = initial_path_high_temperature(mb.potential, mb.endpoints["A"], state_a=a, state_b=b, kT_high=20.0,
                                         dt=1e-4, n_chains=32, max_steps=20_000, n_candidates=4, seed=0)
    assert init.n_paths == 1 and a(init.frames[0, 0]) and b(init.frames[0, -1])
    mb.potential.reset_counter()
    res = two_way_shooting(mb.potential, FlexibleLengthEnsemble(a, b, max_frames=4000), init, kT=mb.kT, dt=1e-4,
                           n_chains=32, n_rounds=6, seed=0)
    assert res.n_accepted > 0
    assert res.n_energy_evals == mb.potential.n_evals
    s = res.summary()
    # The padded ensemble feeds the package's metrics (info["lengths"] masks the padding).
    from tps.metrics import final_frames, max_energy

    # Padding repeats the last frame, so the plain maximum equals the masked one by construction;
    # poison the padded energies to check that max_energy really ignores them.
    lengths = res.paths.info["lengths"]
    assert (lengths < res.paths.n_frames).any()
    padded = torch.arange(res.paths.n_frames)[None] >= lengths[:, None]
    poisoned = Paths(res.paths.frames, res.paths.energies.masked_fill(padded, 1e9), res.paths.n_energy_evals,
                     res.paths.kT, res.paths.info)
    expected = torch.stack([e[:n].max() for e, n in zip(res.paths.energies, lengths.tolist())])
    assert torch.equal(max_energy(poisoned), expected)
    assert b(final_frames(res.paths)).all()
    # No continuous A -> B path stays below the minimax barrier U(S1) = -40.66; frames are discrete
    # (rms step sqrt(2 kT dt) = 0.05), so allow a few energy units.
    assert s["minmax"] >= mb.reference["lower_bound"].value - 5.0


def test_relaxation_without_length_factor_and_chain_continuation():
    pot = SymmetricDoubleWell()
    a, b = states()
    md = unbiased_md(pot, torch.tensor([-1.0, 0.0], dtype=torch.float64), state_a=a, state_b=b, kT=KT, dt=DT,
                     n_chains=64, max_steps=3000, seed=2)
    n = int(md.paths.info["lengths"].argmin())
    short = md.paths.frames[n, :int(md.paths.info["lengths"][n])]  # the shortest transition: atypical
    ens = FlexibleLengthEnsemble(a, b, max_frames=3000)
    kw = dict(kT=KT, dt=DT, n_chains=16, n_rounds=4, seed=4)
    proper = two_way_shooting(pot, ens, short, **kw)
    relaxed = two_way_shooting(pot, ens, short, length_metropolis=False, **kw)
    # without the length factor no A -> B trial within max_frames is rejected
    assert relaxed.n_accepted >= proper.n_accepted
    assert relaxed.info["length_metropolis"] is False
    for r in (proper, relaxed):
        assert sum(r.info["outcomes"].values()) == r.n_trials and r.info["outcomes"]["accepted"] == r.n_accepted
    assert relaxed.info["outcomes"]["too_long"] <= proper.info["outcomes"]["too_long"] + relaxed.n_trials // 2
    first = relaxed.info["first_decorrelated_round"]
    assert len(first) == 16 and all(f is None or 1 <= f <= 4 for f in first)
    assert sum(f is not None for f in first) >= relaxed.info["final_decorrelated_from_initial"]
    # final chain states continue the chains in another call
    final = relaxed.info["final_chains"]
    assert len(final) == 16 and all(ens(p) for p in final)
    again = two_way_shooting(pot, ens, final, kT=KT, dt=DT, n_chains=16, n_rounds=1, seed=5)
    assert again.n_trials == 16
