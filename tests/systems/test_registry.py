"""The system registry and the protocols it owns: the full protocols are exactly the numbers the
command line used before systems owned them (regression values copied from tps/cli/_stages.py
RUN_DEFAULTS and tps/cli/_train.py TRAIN_DEFAULTS at commit fa30b27)."""

import pytest
import torch

from tps import pretrained
from tps.systems import available, describe, load, protocols_of, register, unregister
from tps.systems.base import InputError

OLD_RUN = {
    "muller-brown": dict(paths=1000, points=128, steps_per_point=15, step_size=4e-4, frames_per_point=1, logsnr=6.0,
                         init_dips=(6.0, 2.0, -2.0), coarse_points=32, coarse_iter=150, max_iter=150,
                         low_variance_threshold=5.0, low_variance_weight=1e5, avoid_logsnr=6.0, avoid_kl_margin=20.0,
                         avoid_weight=1e3, save_paths=100),
    "alanine-dipeptide-phipsi": dict(paths=1000, points=128, steps_per_point=12, step_size=3e-3, frames_per_point=12,
                                     logsnr=4.0, init_dips=(4.0, 1.0), coarse_points=32, coarse_iter=60, max_iter=60,
                                     clamp=True, image_chord_ratio=1.5, low_variance_threshold=3.0,
                                     low_variance_weight=1e4, avoid_logsnr=4.0, avoid_kl_margin=20.0, avoid_weight=1e3,
                                     save_paths=100, centre_noise=2.5),  # issue 12: re-noised centres by default
    "alanine-dipeptide": dict(paths=30, points=64, steps_per_point=250, frames_per_point=10, logsnr=4.0, n_nodes=8,
                              max_iter=30, coarse_points=16, coarse_iter=20, init_dips=(2.0, -1.0),
                              low_variance_threshold=3.0, low_variance_weight=1e4, timestep=0.002, friction=1.0),
}
OLD_TRAIN = {
    "muller-brown": dict(steps=4000, batch_size=512, hidden=128, layers=3, chains=1000, data_steps=10_000,
                         data_dt=2e-4, burn_in=2000, thin=20, lr=2e-3),
    "alanine-dipeptide-phipsi": dict(steps=3000, batch_size=512, hidden=128, layers=3, harmonics=3, chains=2000,
                                     data_steps=3000, data_dt=1e-3, burn_in=1000, thin=20, lr=2e-3),
    "alanine-dipeptide": dict(steps=2400, batch_size=64, hidden=32, layers=3, data_steps=250_000, report_interval=50,
                              holdout_per_band=1024, lr=2e-3),
}


def test_available_and_unknown_name():
    assert available() == ["alanine-dipeptide", "alanine-dipeptide-phipsi", "glycine-dipeptide", "muller-brown"]
    with pytest.raises(ValueError, match="unknown system 'nope'; available: alanine-dipeptide"):
        load("nope")
    assert all(describe(name) for name in available())


@pytest.mark.parametrize("name", sorted(OLD_RUN))
def test_full_protocols_are_the_old_command_line_defaults(name):
    p = protocols_of(name)
    assert p.settings() == OLD_RUN[name]
    assert p.training.as_dict() == OLD_TRAIN[name]
    # the region-avoiding low-variance threshold has one home (aldp_2d: 3.75 = 3.0 + 0.75)
    expected = 3.75 if name == "alanine-dipeptide-phipsi" else None
    assert p.constraints.avoid_low_variance_threshold == expected


def test_quick_protocols_shrink_only_the_budget():
    full, quick = protocols_of("alanine-dipeptide"), protocols_of("alanine-dipeptide", quick=True)
    assert quick.constraints == full.constraints and quick.geodesic.logsnr == full.geodesic.logsnr
    assert (quick.training.data_steps, quick.geodesic.n_points, quick.sampler.steps_per_point) == (20_000, 32, 100)
    mb = protocols_of("muller-brown", quick=True)
    assert mb.training.chains == 500 and mb.sampler == protocols_of("muller-brown").sampler


def test_register_one_more_system():
    from tps.systems import muller_brown

    register("muller-brown-hot", lambda **kw: muller_brown.load(kT=25.0, **kw), protocols=muller_brown.protocols,
             description="hot Muller-Brown")
    try:
        hot = load("muller-brown-hot")
        assert hot.kT == 25.0 and describe("muller-brown-hot") == "hot Muller-Brown"
        assert "muller-brown-hot" in available()
    finally:
        unregister("muller-brown-hot")
    assert "muller-brown-hot" not in available()


@pytest.mark.parametrize("name", ["muller-brown", "alanine-dipeptide-phipsi"])
def test_model_endpoints_map_back_to_the_endpoints(name):
    system = load(name)
    model = pretrained.load(name)
    system.check_model(model)  # the shipped model fits its system
    for key, z in zip((system.start, system.target), system.model_endpoints(model)):
        torch.testing.assert_close(model.to_physical(z.double()), system.endpoints[key], atol=1e-5, rtol=0)


def test_molecule_endpoints_are_centred_and_aligned():
    aldp = load("alanine-dipeptide", platform="Reference")
    model = pretrained.load("alanine-dipeptide")
    za, zb = aldp.model_endpoints(model)
    assert float(za.double().mean(0).abs().max()) < 1e-6 and float(zb.double().mean(0).abs().max()) < 1e-6
    # Kabsch alignment: no rotation brings the target closer to the start
    from tps.metrics.molecular import kabsch_rmsd

    rmsd = float(kabsch_rmsd(zb.double()[None], za.double()))
    assert float((zb - za).double().pow(2).sum(-1).mean().sqrt()) == pytest.approx(rmsd, rel=1e-4)


def test_model_of_another_2d_system_refused():
    from tps.systems import ModelMismatch

    with pytest.raises(ModelMismatch, match="cannot be used for alanine-dipeptide-phipsi"):
        load("alanine-dipeptide-phipsi").check_model(pretrained.load("muller-brown"))


def test_avoid_inputs_checked_by_the_system():
    mb = load("muller-brown")
    assert mb.avoid_settings(point=(0.0, 1.0)) == {"avoid": (0.0, 1.0)}
    with pytest.raises(InputError, match="--avoid-phipsi: muller-brown has no"):
        mb.avoid_settings(phipsi=(0.0, 1.0))
    with pytest.raises(InputError, match="needs the point to avoid"):
        mb.avoid_settings()
    aldp = load("alanine-dipeptide", platform="Reference")
    with pytest.raises(InputError, match="looks like degrees"):
        aldp.avoid_settings(phipsi=(-150.0, 150.0))
    assert aldp.avoid_settings(phipsi=(-0.2, 1.5))["avoid_frames"] == 8
