"""The 2-D systems' sampler honours the sampler protocol's annealing options (re-noised centres)."""

import torch

from tps.sampling import annealed_langevin
from tps.sampling.protocol import SamplerProtocol
from tps.spacetime.curve import Curve
from tps.systems import load


def _curve(system):
    from tps import pretrained

    model = pretrained.load(system.pretrained)
    x, lam = system.linear_curve(model, n_points=16, logsnr=4.0)
    return Curve(x.detach().double(), lam.detach().double(), model.scaling, {"system": system.name})


def test_centre_noise_reaches_the_sampler_and_default_keeps_the_stream():
    system = load("muller-brown")
    curve = _curve(system)
    base = SamplerProtocol(n_paths=64, steps_per_point=4, frames_per_point=1, step_size=4e-4)
    kw = dict(kT=system.kT, n_paths=64, steps_per_point=4, step_size=4e-4, scaling=curve.scaling,
              frames_per_point=1, x_start=system.endpoints[system.start])
    plain = system.sample(curve, base, seed=3)
    direct = annealed_langevin(system.potential, curve.x, curve.logsnr, generator=torch.Generator().manual_seed(4), **kw)
    assert torch.equal(plain.frames, direct.frames)  # no option set: the historical stream
    noisy = system.sample(curve, base.replace(centre_noise=2.0), seed=3)
    direct_noisy = annealed_langevin(system.potential, curve.x, curve.logsnr, centre_noise=2.0,
                                     generator=torch.Generator().manual_seed(4), **kw)
    assert torch.equal(noisy.frames, direct_noisy.frames)
    # re-noised centres spread the paths: the mid-curve frames scatter more across paths
    mid = plain.frames.shape[1] // 2
    assert noisy.frames[:, mid].std(0).sum() > 1.2 * plain.frames[:, mid].std(0).sum()
