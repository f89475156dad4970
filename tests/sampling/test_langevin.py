"""Langevin samplers reproduce known stationary statistics.

- overdamped_langevin on a harmonic well: Euler-Maruyama ``x <- x(1 - k dt) + sqrt(2 kT dt) xi``
  has the exact stationary per-coordinate variance ``kT / (k (1 - k dt / 2))`` (-> kT/k as dt -> 0).
- annealed_langevin on a constant curve: the chain samples the denoising distribution
  ``exp(-U/kT - k_r/2 ||x - c||^2)``, a Gaussian; its Euler-Maruyama update
  ``x <- x - (h/2) K (x - m) + sqrt(h) xi`` has the exact stationary variance
  ``h / (1 - (1 - h K / 2)^2)`` (-> 1/K as h -> 0).
Standard errors come from independent chains; every check is within 6 of them.
"""

import math

import pytest
import torch

from tps.diffusion import AffineScaling, alpha_sigma
from tps.potentials import Harmonic, Potential
from tps.sampling import Paths, annealed_langevin, langevin_samples, overdamped_langevin, restraint_schedule

torch.set_num_threads(1)

N_SE = 6.0


class Flat(Potential):
    """U = 0 everywhere (the denoising distribution is then exactly the Gaussian restraint)."""

    def __init__(self, event_shape=(2,)):
        super().__init__(event_shape)

    def _energy(self, x):
        return torch.zeros(x.shape[: x.dim() - len(self.event_shape)], dtype=x.dtype)

    def _energy_and_forces(self, x):
        return self._energy(x), torch.zeros_like(x)


def _check_within(value, expected, se, what):
    assert abs(value - expected) < N_SE * se, f"{what}: {value:.6g} vs {expected:.6g} (se {se:.3g})"


# --------------------------------------------------------------------------- overdamped
def test_overdamped_langevin_harmonic_boltzmann_statistics():
    d, k, kT = 3, 4.0, 0.7
    dt = 0.01  # k dt = 0.04: the EM bias (2 %) is ~5 standard errors, so the exact EM value is used
    n_chains, burn_in, n_steps = 2000, 300, 800  # (1 - k dt)^(2*300) ~ 2e-11: burn-in removes the start
    pot = Harmonic((d,), k=k)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((n_chains, d), 1.5, dtype=torch.float64)
    samples, energies, n_evals = overdamped_langevin(pot, x0, kT=kT, dt=dt, n_steps=n_steps, burn_in=burn_in,
                                                     save_every=5, generator=g)
    assert samples.shape == (100, n_chains, d) and energies.shape == (100, n_chains)
    assert n_evals == n_chains * n_steps == pot.n_evals
    assert torch.allclose(energies, pot.energy(samples, count=False))

    var_em = kT / (k * (1 - k * dt / 2))
    # Per-chain time averages are independent across chains -> honest standard errors.
    chain_var = samples.pow(2).mean(0)  # (n_chains, d); the mean is 0 by symmetry
    v = chain_var.mean(1)
    _check_within(float(v.mean()), var_em, float(v.std() / math.sqrt(n_chains)), "position variance")
    chain_mean = samples.mean(0).mean(1)
    _check_within(float(chain_mean.mean()), 0.0, float(chain_mean.std() / math.sqrt(n_chains)), "position mean")
    e = energies.mean(0)
    _check_within(float(e.mean()), d * k * var_em / 2, float(e.std() / math.sqrt(n_chains)), "mean energy")
    # dt -> 0 limit: within 2.1 % of the Boltzmann values kT/k and d kT / 2.
    assert abs(float(v.mean()) / (kT / k) - 1) < 0.03
    assert abs(float(e.mean()) / (d * kT / 2) - 1) < 0.03


def test_overdamped_langevin_bad_input():
    pot = Harmonic((2,))
    x0 = torch.zeros(4, 2)
    for kw, name in ((dict(kT=0.0), "kT"), (dict(kT=-1.0), "kT"), (dict(dt=0.0), "dt"), (dict(n_steps=0), "n_steps")):
        args = dict(kT=1.0, dt=0.1, n_steps=5) | kw
        with pytest.raises(ValueError, match=rf"^{name}:"):
            overdamped_langevin(pot, x0, **args)
    with pytest.raises(ValueError, match=r"^x0:"):
        overdamped_langevin(pot, torch.zeros(4, 3), kT=1.0, dt=0.1, n_steps=5)
    with pytest.raises(ValueError, match=r"^x0:"):
        overdamped_langevin(pot, torch.full((4, 2), float("nan")), kT=1.0, dt=0.1, n_steps=5)
    with pytest.raises(ValueError, match=r"^burn_in:"):
        overdamped_langevin(pot, x0, kT=1.0, dt=0.1, n_steps=5, burn_in=5)


def test_langevin_samples_counts():
    pot = Harmonic((2,), k=2.0)
    n_chains, n_steps, burn_in, thin = 6, 25, 5, 3
    starts = torch.zeros(n_chains, 2, dtype=torch.float64)
    out = langevin_samples(pot, starts, kT=1.0, dt=0.01, n_steps=n_steps, burn_in=burn_in, thin=thin, seed=3)
    n_kept = math.ceil((n_steps - burn_in) / thin)  # the docstring's count: 7
    assert out.samples.shape == (n_chains * n_kept, 2)
    assert out.energies.shape == (n_chains * n_kept,)
    assert out.n_energy_evals == n_chains * n_steps == pot.n_evals
    assert out.kT == 1.0 and out.info["n_chains"] == n_chains
    again = langevin_samples(pot, starts, kT=1.0, dt=0.01, n_steps=n_steps, burn_in=burn_in, thin=thin, seed=3)
    assert torch.equal(out.samples, again.samples)  # seeded
    with pytest.raises(ValueError, match=r"^burn_in:"):
        langevin_samples(pot, starts, kT=1.0, dt=0.01, n_steps=10, burn_in=10)
    with pytest.raises(ValueError, match=r"^kT:"):
        langevin_samples(pot, starts, kT=0.0, dt=0.01, n_steps=10, burn_in=1)


# --------------------------------------------------------------------------- annealed
def test_restraint_schedule_formula():
    lam = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)
    z = torch.tensor([[0.3, -0.2], [1.0, 0.5], [-0.7, 2.0]], dtype=torch.float64)
    alpha, _ = alpha_sigma(lam)
    c, k = restraint_schedule(z, lam)
    assert torch.allclose(c, z / alpha[:, None]) and torch.allclose(k, lam.exp())
    sc = AffineScaling((1.0, -1.0), 2.0, (2,))
    c, k = restraint_schedule(z, lam, sc)
    assert torch.allclose(c, torch.tensor([1.0, -1.0], dtype=torch.float64) + 2.0 * z / alpha[:, None])
    assert torch.allclose(k, lam.exp() / 4.0)
    with pytest.raises(ValueError, match=r"^logsnr:"):
        restraint_schedule(z, torch.tensor([0.0, 13.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("case", [
    # flat U, lam = 1: restraint k = e, ds k = 0.54 (no cap; EM variance 16 % above exp(-lam))
    dict(pot="flat", lam=1.0, ds=0.2, kT=1.0),
    # flat U, lam = 3: k = 20.1, ds k = 2 > max_restraint_step = 1, so the step is capped at 1/k
    dict(pot="flat", lam=3.0, ds=0.1, kT=1.0),
    # harmonic U (k_U = 4, kT = 0.7) plus the restraint at lam = 0: product of two Gaussians
    dict(pot="harmonic", lam=0.0, ds=0.05, kT=0.7),
])
def test_annealed_langevin_constant_curve_samples_denoising_gaussian(case):
    d, n_paths, N, K, fpp = 2, 4000, 4, 50, 5
    lam = case["lam"]
    pot = Flat((d,)) if case["pot"] == "flat" else Harmonic((d,), k=4.0)
    x_t = torch.tensor([0.4, -0.8], dtype=torch.float64)
    curve_x = x_t.expand(N, d).clone()
    curve_lam = torch.full((N,), lam, dtype=torch.float64)
    x_start = torch.tensor([2.0, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    paths = annealed_langevin(pot, curve_x, curve_lam, kT=case["kT"], n_paths=n_paths, steps_per_point=K,
                              step_size=case["ds"], scaling=AffineScaling.identity((d,)), x_start=x_start,
                              frames_per_point=fpp, generator=g)
    assert isinstance(paths, Paths)
    assert paths.frames.shape == (n_paths, 1 + N * fpp, d)
    assert paths.energies.shape == (n_paths, 1 + N * fpp)
    assert paths.n_energy_evals == n_paths * (1 + N * K) == pot.n_evals
    assert torch.equal(paths.frames[:, 0], x_start.expand(n_paths, d))
    assert torch.allclose(paths.energies, pot.energy(paths.frames, count=False))

    alpha = math.sqrt(1 / (1 + math.exp(-lam)))
    c = x_t / alpha  # the restraint centre x_t / alpha
    k_r = math.exp(lam)  # restraint stiffness: the denoising variance is exp(-lam)
    h = min(case["ds"], 1.0 / k_r)  # max_restraint_step = 1 caps h k_r <= 1
    assert paths.info["min_step_size_used"] == pytest.approx(h, rel=1e-12)
    k_u = 0.0 if case["pot"] == "flat" else 4.0 / case["kT"]
    K_tot = k_u + k_r
    mean = k_r * c / K_tot  # harmonic U is centred at 0
    var = h / (1 - (1 - h * K_tot / 2) ** 2)  # exact EM stationary variance
    assert (1 - h * K_tot / 2) ** (2 * N * K) < 1e-12  # the start is forgotten
    if case["pot"] == "flat":
        assert var == pytest.approx(math.exp(-lam) / (1 - h * k_r / 4))  # the h -> 0 limit is exp(-lam)

    x = paths.frames[:, -1]
    for i in range(d):
        m, v = float(x[:, i].mean()), float(x[:, i].var())
        _check_within(m, float(mean[i]), math.sqrt(var / n_paths), f"mean[{i}]")
        _check_within(v, var, var * math.sqrt(2 / (n_paths - 1)), f"variance[{i}]")
    # Coordinates are independent.
    cov = float(((x[:, 0] - x[:, 0].mean()) * (x[:, 1] - x[:, 1].mean())).mean())
    _check_within(cov, 0.0, var / math.sqrt(n_paths), "covariance")


def test_annealed_langevin_default_start_and_batched_start():
    pot = Flat((2,))
    curve_x = torch.tensor([[0.5, 0.5], [0.0, 0.0], [-0.5, 0.2]], dtype=torch.float64)
    lam = torch.tensor([4.0, 0.0, 4.0], dtype=torch.float64)
    p = annealed_langevin(pot, curve_x, lam, kT=1.0, n_paths=3, steps_per_point=4)
    alpha, _ = alpha_sigma(lam[:1])
    assert torch.allclose(p.frames[:, 0], (curve_x[0] / alpha).expand(3, 2))  # default: first centre
    starts = torch.arange(6, dtype=torch.float64).reshape(3, 2)
    p = annealed_langevin(pot, curve_x, lam, kT=1.0, n_paths=3, steps_per_point=4, x_start=starts)
    assert torch.equal(p.frames[:, 0], starts)
    assert p.frames.shape == (3, 1 + 3, 2) and p.n_energy_evals == 3 * (1 + 3 * 4)


def test_annealed_langevin_bad_input():
    pot = Flat((2,))
    cx = torch.zeros(3, 2, dtype=torch.float64)
    lam = torch.zeros(3, dtype=torch.float64)
    base = dict(kT=1.0, n_paths=2, steps_per_point=4)
    cases = [
        ((cx, lam), dict(kT=0.0), "kT"),
        ((cx, lam), dict(kT=-2.0), "kT"),
        ((torch.full((3, 2), float("nan")), lam), {}, "curve_x"),
        ((torch.zeros(3, 3), lam), {}, "curve_x"),
        ((cx, torch.tensor([0.0, 12.5, 0.0])), {}, "curve_logsnr"),
        ((cx, torch.tensor([-13.0, 0.0, 0.0])), {}, "curve_logsnr"),
        ((cx, torch.tensor([0.0, float("nan"), 0.0])), {}, "curve_logsnr"),
        ((cx, torch.zeros(4)), {}, "curve_logsnr"),
        ((cx, lam), dict(x_start=torch.zeros(5, 2)), "x_start"),
        ((cx, lam), dict(x_start=torch.tensor([float("inf"), 0.0])), "x_start"),
        ((cx, lam), dict(frames_per_point=3), "frames_per_point"),
        ((cx, lam), dict(n_paths=0), "n_paths"),
        ((cx, lam), dict(step_size=0.0), "step_size"),
    ]
    for args, kw, name in cases:
        with pytest.raises(ValueError, match=rf"^{name}:"):
            annealed_langevin(pot, *args, **(base | kw))
    assert pot.n_evals == 0  # nothing was evaluated for rejected input


@pytest.mark.parametrize("fpp", [1, 2])
def test_annealed_langevin_matches_a_step_by_step_reference(fpp):
    """Algorithm 1 written out plainly, with the same noise draws: each recorded frame is the state
    after exactly the right number of steps (frame n after n * K / frames_per_point), the step
    shrinks where the restraint is stiff, and ``max_energy_all_steps`` is the maximum over every
    step, not only the recorded frames (it is >= the recorded maximum)."""
    pot = Harmonic((2,), k=3.0, center=[0.2, -0.1])
    kT, K, ds, cap = 0.7, 4, 0.05, 0.5
    curve_x = torch.tensor([[0.5, 0.5], [0.1, 0.0], [-0.5, 0.2]], dtype=torch.float64)
    lam = torch.tensor([4.0, 0.0, 3.0], dtype=torch.float64)
    start = torch.tensor([[0.2, -0.1], [0.3, 0.0], [0.1, -0.2]], dtype=torch.float64)  # near U's minimum
    p = annealed_langevin(pot, curve_x, lam, kT=kT, n_paths=3, steps_per_point=K, step_size=ds,
                          frames_per_point=fpp, max_restraint_step=cap, x_start=start,
                          generator=torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(11)
    alpha = torch.sigmoid(lam).sqrt()
    x, states = start.clone(), [start.clone()]
    for n in range(3):
        c, k = curve_x[n] / alpha[n], math.exp(float(lam[n]))
        h = min(ds, cap / k)  # exp(4) * 0.05 > 0.5: the first point's step is capped
        for _ in range(K):
            grad = 3.0 * (x - torch.tensor([0.2, -0.1], dtype=torch.float64)) / kT + k * (x - c)
            x = x - 0.5 * h * grad + math.sqrt(h) * torch.randn(x.shape, dtype=x.dtype, generator=g)
            states.append(x.clone())
    states = torch.stack(states, 1)  # (paths, 1 + N K, 2): the state after every step
    every = K // fpp
    torch.testing.assert_close(p.frames, states[:, ::every], rtol=1e-12, atol=1e-12)
    energies = pot.energy(states, count=False)
    torch.testing.assert_close(p.energies, energies[:, ::every], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(p.info["max_energy_all_steps"], energies.max(1).values, rtol=1e-12, atol=1e-12)
    assert (p.info["max_energy_all_steps"] >= p.energies.max(1).values).all()
    if fpp == 1:  # three of four steps unrecorded: some path's maximum falls between frames
        assert (p.info["max_energy_all_steps"] > p.energies.max(1).values).any()
    assert p.info["min_step_size_used"] == pytest.approx(cap / math.exp(4.0))
