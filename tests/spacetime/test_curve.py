"""Curve: the tps-curve/1 file format both ways, and restraints from the one schedule derivation."""

import math

import pytest
import torch

from tps.diffusion import alpha_sigma
from tps.diffusion.scaling import AffineScaling
from tps.spacetime.curve import Curve, CurveFileError


def _old_style_dict():
    """A curve file as ``tps geodesic`` wrote it before Curve existed (tps/cli/_stages.py at the base commit)."""
    lam = torch.tensor([6.0, 1.0, -2.0, 6.0], dtype=torch.float64)
    centres = torch.tensor([[-0.55, 1.44], [-0.3, 1.0], [0.2, 0.5], [0.62, 0.03]], dtype=torch.float64)
    scaling = AffineScaling((0.1, 0.2), 0.5, (2,))
    x = alpha_sigma(lam)[0][:, None] * scaling.to_model(centres)
    return {"format": "tps-curve/1", "system": "muller-brown", "x": x, "logsnr": lam, "centres": centres,
            "scaling": scaling.as_dict(), "curve_energy": 12.5, "curve_energy_initial": 80.0, "n_evaluations": 7,
            "wall_s": 0.25, "extra": {"image_k": [0, 1]}, "key": "k1"}


def test_old_files_load_and_new_files_keep_the_old_keys(tmp_path):
    old = _old_style_dict()
    path = tmp_path / "old.pt"
    torch.save(old, path)
    c = Curve.load(path)
    assert c.system == "muller-brown" and c.energy == 12.5 and c.initial_energy == 80.0 and c.key == "k1"
    assert c.extra == {"image_k": [0, 1]} and c.scaling == AffineScaling.from_dict(old["scaling"])
    torch.testing.assert_close(c.centres(), old["centres"], rtol=0, atol=1e-12)
    back = torch.load(c.save(tmp_path / "new.pt"), weights_only=True)   # what an old _load_curve reads
    assert set(old) <= set(back) and back["format"] == "tps-curve/1"
    for k in ("x", "logsnr"):
        assert torch.equal(back[k], old[k])
    for k in ("system", "scaling", "curve_energy", "curve_energy_initial", "n_evaluations", "wall_s", "extra", "key"):
        assert back[k] == old[k], k


def test_restraints_are_the_denoising_distributions():
    # centre shift + scale * x / alpha and stiffness kT e^lam / scale^2 (method.md, restraint schedule)
    c = Curve.from_dict(_old_style_dict())
    lam = c.logsnr
    r = c.restraints(kT=12.5)
    torch.testing.assert_close(r.stiffness, 12.5 * torch.exp(lam) / 0.25)
    torch.testing.assert_close(r.centres, c.centres())
    assert c.restraints().stiffness.dtype == torch.float64


def test_refuses_what_is_not_a_curve(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(CurveFileError, match="not a tps curve"):
        Curve.load(bad)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a torch file")
    with pytest.raises(CurveFileError, match="not a readable curve file"):
        Curve.load(junk)
    with pytest.raises(FileNotFoundError):
        Curve.load(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="expected x"):
        Curve(torch.zeros(3, 2), torch.zeros(4))


def test_dict_style_reading_and_missing_provenance():
    c = Curve(torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    assert c["logsnr"] is c.logsnr and c.get("avoid_structures") is None and c["extra"] == {}
    assert math.isnan(c.energy) and c.key is None and c.n_points == 4 and c.event_shape == (2,)
    assert c.replace(provenance={"key": "a"}).replace(provenance={"energy": 1.0}).provenance == {"key": "a",
                                                                                                "energy": 1.0}
