"""Sampler options of issue 12 (a truer geodesic ensemble): per-path re-noised restraint centres,
softer restraints (logSNR shift) and the every-step continuity record.

Physics checked: in a harmonic well with a harmonic restraint (product of Gaussians) the tilted
density is narrower than Boltzmann; re-noising the centre by ``w^2 + var_thermal`` restores the
Boltzmann variance exactly, and a logSNR shift gives the variance of the softer restraint.
"""

import math

import pytest
import torch

from tps.diffusion import AffineScaling, alpha_sigma
from tps.diffusion.schedule import renoised_centres, restraint_schedule
from tps.potentials import Harmonic, MullerBrown
from tps.sampling import annealed_langevin
from tps.sampling.protocol import SamplerProtocol

torch.set_num_threads(1)

A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)


def mb_curve(n=8):
    lam = torch.linspace(6.0, 2.0, n, dtype=torch.float64)
    s = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    return alpha_sigma(lam)[0][:, None] * (A + s * (B - A)), lam


def test_defaults_keep_the_stream_and_max_step_counts_every_step():
    curve, lam = mb_curve()
    kw = dict(kT=12.5, n_paths=5, steps_per_point=6, frames_per_point=2, step_size=1e-3)
    p = annealed_langevin(MullerBrown(), curve, lam, generator=torch.Generator().manual_seed(3), **kw)
    q = annealed_langevin(MullerBrown(), curve, lam, generator=torch.Generator().manual_seed(3), centre_noise=0.0,
                          logsnr_shift=0.0, record_max_step=True, **kw)
    assert torch.equal(p.frames, q.frames) and torch.equal(p.energies, q.energies)
    # the every-step record: the largest move over all 6 steps per point, >= the saved frames' steps
    every = annealed_langevin(MullerBrown(), curve, lam, generator=torch.Generator().manual_seed(3),
                              **dict(kw, frames_per_point=6))
    assert torch.equal(every.frames[:, ::3], p.frames)                      # frames 0, 3, 6, ... are the saved ones
    steps = (every.frames[:, 1:] - every.frames[:, :-1]).norm(dim=-1).max(1).values
    assert torch.equal(q.info["max_step_all_steps"], steps)
    saved = (p.frames[:, 1:] - p.frames[:, :-1]).norm(dim=-1).max(1).values
    assert bool((steps > 0).all()) and bool((steps * 2 >= saved).all())  # two steps per saved frame at most 2x
    assert "max_step_all_steps" not in p.info and "centre_noise" not in p.info


def test_renoised_centres_are_perpendicular_with_the_restraint_width():
    c = torch.stack([torch.linspace(0, 2, 9), 0.5 * torch.linspace(0, 2, 9)], 1).double()   # straight, slope 1/2
    k = torch.linspace(4.0, 100.0, 9, dtype=torch.float64)
    eps = torch.randn(20000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = renoised_centres(c, k, eps, scale=1.5)
    d = out - c[:, None]
    t = torch.tensor([2.0, 1.0], dtype=torch.float64) / math.sqrt(5.0)
    assert float((d @ t).abs().max()) < 1e-12                                # nothing along the curve
    std = (d @ torch.tensor([-1.0, 2.0], dtype=torch.float64) / math.sqrt(5.0)).std(1)
    assert torch.allclose(std, 1.5 / k.sqrt(), rtol=0.03)                   # scale x width, per point
    assert torch.equal(renoised_centres(c, k, eps[:3], scale=0.0), c[:, None].expand(9, 3, 2))
    # energy-unit stiffness kT k: the same widths
    assert torch.allclose(renoised_centres(c, 2.5 * k, eps[:3], scale=1.5, kT=2.5), out[:, :3], atol=1e-12)
    with pytest.raises(ValueError, match="noise"):
        renoised_centres(c, k, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="scale"):
        renoised_centres(c, k, eps[:3], scale=-1.0)
    with pytest.raises(ValueError, match="stiffness"):
        renoised_centres(c, torch.zeros(9), eps[:3])


def _end_variance(centre_noise=None, logsnr_shift=None, n_paths=4000):
    """Harmonic well k_u = 4 (kT = 1) at the origin, constant curve at logSNR lam = 1 (k_r = e)."""
    lam = torch.full((4,), 1.0, dtype=torch.float64)
    curve = torch.zeros(4, 2, dtype=torch.float64)
    p = annealed_langevin(Harmonic((2,), k=4.0), curve, lam, kT=1.0, n_paths=n_paths, steps_per_point=60,
                          step_size=0.01, scaling=AffineScaling.identity((2,)), x_start=torch.zeros(2),
                          generator=torch.Generator().manual_seed(5), centre_noise=centre_noise,
                          logsnr_shift=logsnr_shift)
    return p.frames[:, -1].var(0), n_paths


@pytest.mark.parametrize("option", ["none", "shift", "renoise"])
def test_options_set_the_variance_of_the_tilted_density(option):
    k_u, h = 4.0, 0.01
    k_r = math.e
    if option == "none":
        v, n = _end_variance()
        k_tot = k_u + k_r
        expected = h / (1 - (1 - h * k_tot / 2) ** 2)                        # EM stationary variance, < 1/k_u
    elif option == "shift":
        v, n = _end_variance(logsnr_shift=1.0)
        k_tot = k_u + k_r / math.e
        expected = h / (1 - (1 - h * k_tot / 2) ** 2)
    else:  # centre variance w^2 + var_thermal = 1/k_r + 1/k_u: the mixture is Boltzmann, 1/k_u
        v, n = _end_variance(centre_noise=math.sqrt(1 + k_r / k_u))
        k_tot = k_u + k_r
        em = h / (1 - (1 - h * k_tot / 2) ** 2)
        expected = em + (k_r / k_tot) ** 2 * (1 / k_r + 1 / k_u)
        assert expected == pytest.approx(1 / k_u, rel=0.02)   # EM bias 1 %
    for i in range(2):
        assert abs(float(v[i]) - expected) < 6 * expected * math.sqrt(2 / (n - 1)), (option, float(v[i]), expected)


def test_protocol_options_and_bad_input():
    p = SamplerProtocol(n_paths=4, steps_per_point=3)
    assert p.annealing_options() == {} and "centre_noise" not in p.as_dict()
    q = p.replace(centre_noise=1.5, logsnr_shift=0.5)
    assert q.annealing_options() == {"centre_noise": 1.5, "logsnr_shift": 0.5}
    for bad in (dict(centre_noise=-1.0), dict(centre_noise=float("nan")), dict(logsnr_shift="1")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            p.replace(**bad)
    curve, lam = mb_curve()
    with pytest.raises(ValueError, match="centre_noise"):
        annealed_langevin(MullerBrown(), curve, lam, kT=12.5, n_paths=2, centre_noise=-0.5)
    with pytest.raises(ValueError, match="logsnr_shift"):
        restraint_schedule(curve, lam, logsnr_shift=float("inf"))


def test_renoised_paths_with_an_executor_do_not_depend_on_the_worker_count():
    from concurrent.futures import ThreadPoolExecutor

    curve, lam = mb_curve()
    runs = []
    for workers in (1, 3):
        with ThreadPoolExecutor(workers) as ex:
            runs.append(annealed_langevin(MullerBrown(), curve, lam, kT=12.5, n_paths=7, steps_per_point=4,
                                          executor=ex, seed=5, task_size=2, centre_noise=3.0, record_max_step=True,
                                          generator=torch.Generator().manual_seed(2)))
    assert torch.equal(runs[0].frames, runs[1].frames)
    assert torch.equal(runs[0].info["max_step_all_steps"], runs[1].info["max_step_all_steps"])
    with ThreadPoolExecutor(1) as ex:
        plain = annealed_langevin(MullerBrown(), curve, lam, kT=12.5, n_paths=7, steps_per_point=4, seed=5,
                                  task_size=2, executor=ex, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(plain.frames, runs[0].frames)                    # the per-path centres were used


def test_openmm_sampler_renoised_centres_spread_the_paths():
    np = pytest.importorskip("numpy")
    openmm = pytest.importorskip("openmm")
    from tps.potentials.openmm import boltzmann_kT
    from tps.sampling.openmm_annealed import openmm_annealed_langevin

    system = openmm.System()
    system.addParticle(12.0)
    centres = np.linspace(0.0, 0.5, 6)[:, None, None] * np.array([1.0, 0.0, 0.0])    # along x
    k = np.full(6, 2000.0)                                                             # width sqrt(kT/k) = 0.035 nm
    kw = dict(n_paths=12, steps_per_point=100, x_start=np.zeros((1, 3)), platform="Reference", friction=20.0, seed=4)
    plain = openmm_annealed_langevin(system, centres, k, **kw)
    again = openmm_annealed_langevin(system, centres, k, centre_noise=0.0, **kw)
    assert torch.equal(plain.frames, again.frames)                                    # off: the same stream
    noisy = openmm_annealed_langevin(system, centres, k, centre_noise=4.0, **kw)
    w = math.sqrt(boltzmann_kT(300.0) / 2000.0)
    side = lambda p: float(p.frames[:, -1, 0, 1:].std())                              # noqa: E731 (y, z spread)
    assert side(plain) < 2 * w < side(noisy)                                          # ~w vs ~sqrt(17) w
    assert noisy.info["centre_noise"] == 4.0
    with pytest.raises(ValueError, match="centre_noise"):
        openmm_annealed_langevin(system, centres, k, centre_noise=-1.0, **kw)
