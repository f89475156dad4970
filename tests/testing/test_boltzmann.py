"""tps.testing.check_boltzmann: engines reproduce Gaussian Boltzmann moments; broken ones are caught.

Known answers: at temperature ``kT`` a harmonic potential ``k/2 |x - c|^2`` gives every coordinate
mean ``c``, variance ``kT / k`` and mean energy ``kT / 2``; two harmonic terms add their stiffnesses
(precision-weighted mean). Euler-Maruyama at step ``dt`` inflates the variance by ``1 / (1 - k dt / 2)``.
"""

from __future__ import annotations

import math

import numpy as np
import openmm
import pytest
import torch

from tps.engines import TorchOverdampedEngine
from tps.potentials import Harmonic
from tps.testing import (
    assert_boltzmann,
    block_standard_error,
    check_boltzmann,
    integrated_autocorrelation_time,
    sample_engine,
)

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- statistics helpers
def _ar1(a, n_chains, n_frames, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros((n_chains, n_frames))
    x[:, 0] = rng.standard_normal(n_chains) / math.sqrt(1 - a * a)  # stationary start
    for t in range(1, n_frames):
        x[:, t] = a * x[:, t - 1] + rng.standard_normal(n_chains)
    return x


def test_autocorrelation_time_and_block_error_of_ar1_chains():
    """AR(1), ``x_t = a x_{t-1} + xi``: ``tau = (1 + a) / (1 - a)``, ``var x = 1 / (1 - a^2)``,
    so the standard error of the mean of ``N`` frames is ``sqrt(tau var / N)``."""
    a, n_chains, n_frames = 0.8, 16, 4000
    x = _ar1(a, n_chains, n_frames, seed=0)
    tau = integrated_autocorrelation_time(x)
    assert tau == pytest.approx((1 + a) / (1 - a), rel=0.1)  # 9
    _, se = block_standard_error(x, n_blocks=10)
    exact = math.sqrt((1 + a) / (1 - a) / (1 - a * a) / (n_chains * n_frames))
    assert se == pytest.approx(exact, rel=0.25)  # 160 blocks: the spread estimate is good to ~6 %
    naive = x.std() / math.sqrt(x.size)
    assert se > 2.5 * naive  # correlated frames: the naive error is 3x too small
    assert integrated_autocorrelation_time(np.ones(50)) == math.inf
    with pytest.raises(ValueError, match="n_blocks"):
        block_standard_error(np.zeros(5), n_blocks=10)


# ----------------------------------------------------------------------------- torch engine
def test_torch_engine_unrestrained_harmonic_1d_with_equipartition():
    k, kT, dt = 2.0, 1.0, 0.01
    engine = TorchOverdampedEngine(Harmonic((1,), k=k), kT=kT, dt=dt)
    result = check_boltzmann(engine, expected_mean=0.0, expected_variance=kT / k, expected_energy=kT / 2,
                             n_replicas=16, n_steps=6000, n_frames=60, burn_in_steps=200,
                             bias_tolerance=k * dt / 2)  # Euler-Maruyama's known variance inflation, 1 %
    assert result.passed, result.message
    assert set(result.details) >= {"z_mean", "z_variance", "z_energy", "tau", "n_effective"}
    assert result.details["n_effective"] > 500


def test_torch_engine_restrained_2d_combines_potential_and_restraint():
    """``U = |x - (1, 0)|^2`` (k = 2) plus a reduced restraint 2 at (0, 1), kT = 1: precision P = 4,
    mean (0.5, 0.5), variance 1/4; the restrained update at reduced step h = 2 kT dt inflates the
    variance by ``1 / (1 - h P / 4)``, 0.8 % here (allowed as the bias tolerance)."""
    engine = TorchOverdampedEngine(Harmonic((2,), k=2.0, center=[1.0, 0.0]), kT=1.0, dt=4e-3,
                                   generator=torch.Generator().manual_seed(5))
    result = assert_boltzmann(engine, centre=[0.0, 1.0], stiffness=2.0, reduced=True, expected_mean=[0.5, 0.5],
                              expected_variance=0.25, n_replicas=16, n_steps=8000, n_frames=40, burn_in_steps=500,
                              bias_tolerance=0.008)
    assert result.statistic < 5.0 and "passed" in result.message


def test_torch_engine_at_too_large_a_step_fails():
    """``k dt = 1``: Euler-Maruyama samples variance ``kT / k / (1 - 1/2)``, twice the Boltzmann value."""
    engine = TorchOverdampedEngine(Harmonic((2,), k=2.0), kT=1.0, dt=0.5)
    result = check_boltzmann(engine, expected_mean=0.0, expected_variance=0.5, n_replicas=8, n_steps=1000,
                             n_frames=100, burn_in_steps=50)
    assert not result.passed and "FAILED: variance" in result.message
    assert result.details["variance"] == pytest.approx([1.0, 1.0], rel=0.15)


def test_minimal_engine_passes_and_wrong_noise_fails(minimal_engine):
    """The restraint-only Gaussian (mean c, variance kT / k) is the default expectation."""
    flat = Harmonic((2,), k=1e-12)
    # relaxation time 1 / (k dt) = 50 steps; frames 100 steps apart
    kwargs = dict(centre=[0.3, -0.2], stiffness=4.0, n_replicas=16, n_steps=3000, n_frames=30, burn_in_steps=300,
                  n_blocks=5, bias_tolerance=0.01)  # Euler-Maruyama: k dt / 2 = 1 %
    good = check_boltzmann(minimal_engine(flat, kT=2.0, dt=0.005), **kwargs)
    assert good.passed, good.message
    assert good.details["expected_variance"] == pytest.approx([0.5, 0.5])
    # noise sqrt(kT dt) instead of sqrt(2 kT dt): samples at kT / 2
    bad = check_boltzmann(minimal_engine(flat, kT=2.0, dt=0.005, noise_factor=1 / math.sqrt(2)), **kwargs)
    assert not bad.passed and bad.statistic > 10
    with pytest.raises(AssertionError, match=r"boltzmann: FAILED: variance of coordinate \d"):
        assert_boltzmann(minimal_engine(flat, kT=2.0, dt=0.005, noise_factor=1 / math.sqrt(2)), **kwargs)


def test_too_correlated_frames_are_not_a_pass():
    engine = TorchOverdampedEngine(Harmonic((1,), k=1.0), kT=1.0, dt=1e-3)
    result = check_boltzmann(engine, expected_mean=0.0, expected_variance=1.0, n_replicas=2, n_steps=2000,
                             n_frames=200, burn_in_steps=0)
    assert not result.passed and "autocorrelation" in result.message


def test_missing_expectations_raise():
    engine = TorchOverdampedEngine(Harmonic((1,), k=1.0), kT=1.0, dt=1e-3)
    with pytest.raises(ValueError, match="expected_mean, expected_variance"):
        check_boltzmann(engine, expected_mean=0.0)
    with pytest.raises(ValueError, match="stiffness"):
        check_boltzmann(engine, centre=[0.0])


# ----------------------------------------------------------------------------- OpenMM engine
def _free_particles(masses=(1.0, 1.5, 2.0)) -> openmm.System:
    system = openmm.System()
    for mass in masses:
        system.addParticle(mass)
    return system


_CENTRE = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# k = 1000 kJ/mol/nm^2 on 1-2 Da at friction 50/ps is about critically damped: a correlation time of
# ~0.1 ps = 50 steps, so frames every 100 steps are nearly independent; 160k steps take ~1 s
_RUN = dict(n_replicas=4, n_steps=40_000, n_frames=400, burn_in_steps=500)


def test_openmm_engine_restrained_free_particles():
    from tps.engines import OpenMMLangevinEngine

    engine = OpenMMLangevinEngine(_free_particles(), platform="Reference", friction=50.0, restraint=True)
    result = check_boltzmann(engine, centre=_CENTRE, stiffness=1000.0, **_RUN)
    assert result.passed, result.message
    assert np.allclose(result.details["expected_variance"], engine.kT / 1000.0)
    # the same frames checked against the Boltzmann variance of 600 K instead of 300 K fail
    wrong = check_boltzmann(engine, centre=_CENTRE, stiffness=1000.0, expected_variance=2 * engine.kT / 1000.0,
                            n_replicas=2, n_steps=10_000, n_frames=100, burn_in_steps=500)
    assert not wrong.passed and "FAILED: variance" in wrong.message


def test_openmm_engine_harmonic_external_force_with_equipartition():
    """The engine's own potential is a harmonic CustomExternalForce; its reported energy averages 3 N kT / 2."""
    from tps.engines import OpenMMLangevinEngine

    system = _free_particles()
    force = openmm.CustomExternalForce("0.5*kh*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    force.addGlobalParameter("kh", 1000.0)
    for name in ("x0", "y0", "z0"):
        force.addPerParticleParameter(name)
    for i, centre in enumerate(_CENTRE):
        force.addParticle(i, centre.tolist())
    system.addForce(force)
    engine = OpenMMLangevinEngine(system, platform="Reference", friction=50.0)
    result = check_boltzmann(engine, expected_mean=_CENTRE, expected_variance=engine.kT / 1000.0,
                             expected_energy=1.5 * len(_CENTRE) * engine.kT, **_RUN)
    assert result.passed, result.message
    assert result.details["energy"] == pytest.approx(4.5 * engine.kT, rel=0.1)


def test_sample_engine_runs_openmm_replicas_one_by_one_reproducibly():
    from tps.engines import OpenMMLangevinEngine

    engine = OpenMMLangevinEngine(_free_particles(), platform="Reference", friction=50.0, restraint=True)
    x0 = np.broadcast_to(_CENTRE, (2, 3, 3))
    a, ea = sample_engine(engine, x0, n_steps=100, n_frames=5, centre=_CENTRE, stiffness=1000.0, seed=3)
    b, eb = sample_engine(engine, x0, n_steps=100, n_frames=5, centre=_CENTRE, stiffness=1000.0, seed=3)
    assert a.shape == (2, 5, 3, 3) and ea.shape == (2, 5)
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])
