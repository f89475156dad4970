"""``tps run --centre-noise / --logsnr-shift``: SamplerProtocol options from the command line (--logsnr-shift: 2-D
systems only)."""

import json
import shutil

import torch

from tps.cli import main
from tps.systems import load

torch.set_num_threads(1)

MB_TINY = ["--paths", "12", "--points", "16", "--max-iter", "10", "--quiet"]


def test_centre_noise_is_recorded_keyed_and_spreads_the_paths(tmp_path, capsys):
    plain, noisy = tmp_path / "plain", tmp_path / "noisy"
    assert main(["run", "muller-brown", *MB_TINY, "--out", str(plain)]) == 0
    shutil.copytree(plain, noisy)
    assert main(["run", "muller-brown", *MB_TINY, "--centre-noise", "3", "--out", str(noisy)]) == 0
    results = json.loads((noisy / "results.json").read_text())
    assert results["settings"]["centre_noise"] == 3.0
    assert results["resumed"] == {"geodesic": True, "sampling": False}  # same curve, new paths
    assert "centre_noise" not in json.loads((plain / "results.json").read_text())["settings"]
    mb = load("muller-brown")
    spread = [mb.load_paths(d).frames[:, 3:-3].std(0).mean() for d in (plain, noisy)]
    assert float(spread[1]) > float(spread[0])  # re-noised centres: paths further apart mid-way
    assert main(["run", "alanine-dipeptide", "--logsnr-shift", "1", "--out", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--logsnr-shift" in err[0] and not (tmp_path / "m").exists()
