"""The all-atom (OpenMM) sampler honours ``SamplerProtocol.centre_noise`` and refuses ``logsnr_shift``."""

import argparse

import pytest
import torch

from tps.cli._common import UserError
from tps.cli._stages import run_protocols
from tps.sampling.openmm_annealed import openmm_annealed_langevin
from tps.spacetime.curve import Curve
from tps.systems import load
from tps.workflows.cartesian import curve_restraints

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def aldp():
    from tps import pretrained

    system = load("alanine-dipeptide", platform="Reference")
    model = pretrained.load(system.pretrained)
    x, lam = system.linear_curve(model, n_points=8, logsnr=4.0)
    curve = Curve(x.detach().double(), lam.detach().double(), model.scaling, {"system": system.name})
    base = system.protocols().sampler.replace(n_paths=8, steps_per_point=20, frames_per_point=2)
    return system, curve, base


def _path_means(paths):
    """Each path's mean frame over the interior of the curve, ``(n_paths, n_atoms, 3)`` nm."""
    f = paths.frames
    return f[:, 2:-2].mean(1)


def test_default_is_the_plain_sampler_and_centre_noise_is_the_sampler_option(aldp):
    system, curve, base = aldp
    ends = system.prepared_endpoints()
    r = curve_restraints(curve.x, curve.logsnr, curve.scaling, temperature=system.temperature, origin=ends.origin)
    kw = dict(temperature=system.temperature, n_paths=base.n_paths, steps_per_point=base.steps_per_point,
              x_start=ends.start, timestep=base.timestep, friction=base.friction,
              frames_per_point=base.frames_per_point, seed=4)
    plain = system.sample(curve, base, seed=4)
    assert torch.equal(plain.frames, openmm_annealed_langevin(system.openmm_system(), r.centres, r.stiffness,
                                                              **kw).frames)
    assert "centre_noise" not in plain.info
    noisy = system.sample(curve, base.replace(centre_noise=2.0), seed=4)
    direct = openmm_annealed_langevin(system.openmm_system(), r.centres, r.stiffness, centre_noise=2.0, **kw)
    assert torch.equal(noisy.frames, direct.frames) and noisy.info["centre_noise"] == 2.0
    assert torch.equal(noisy.frames[:, 0], plain.frames[:, 0])  # same start; only the centres differ


def test_centre_noise_spreads_the_paths_by_restraint_widths(aldp):
    system, curve, base = aldp
    spread = {}
    for a in (None, 1.0, 3.0):
        paths = system.sample(curve, base.replace(centre_noise=a), seed=7)
        spread[a] = float(_path_means(paths).std(0).mean())
    # with one fixed tube the paths' mean frames differ by thermal noise only; re-noised centres move each
    # path's tube sideways by a * width (width sqrt(kT / k) ~ 0.02 nm at logSNR 4), so the spread grows with a
    # (measured for seeds 7-9: 0.002, 0.013, 0.032 nm)
    assert spread[1.0] > 3.0 * spread[None]
    assert spread[3.0] > 1.8 * spread[1.0]


def test_logsnr_shift_is_refused_by_the_sampler_and_the_cli(aldp):
    system, curve, base = aldp
    with pytest.raises(ValueError, match="logsnr_shift"):
        system.sample(curve, base.replace(logsnr_shift=1.0), seed=0)
    args = argparse.Namespace(centre_noise=2.5, logsnr_shift=None)
    assert run_protocols(system, args).sampler.centre_noise == 2.5  # accepted for the molecule now
    with pytest.raises(UserError, match="--logsnr-shift"):
        run_protocols(system, argparse.Namespace(logsnr_shift=1.0))
    # the one-line error of 'tps run alanine-dipeptide --logsnr-shift': tests/test_cli_sampler_options.py
