"""``python -m benchmarks agreement``: a refined ensemble (``tps run --refine shooting``) against a reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.__main__ import main as bench_main
from benchmarks.agreement import SLAB, Crossing, per_path, segments_flat
from benchmarks.common_convergence import MULLER_BROWN_STATES
from tps.cli import main as tps_main
from tps.io import save_reference_ensemble
from tps.systems import load

torch.set_num_threads(1)

#: A tiny geodesic ensemble refined by 4 chains x 6 rounds (burn-in 1): 20 refined paths.
TINY = ["--paths", "8", "--points", "16", "--max-iter", "5", "--quiet", "--refine", "shooting", "--chains", "4",
        "--refine-steps", "6", "--relax-rounds", "1"]


@pytest.fixture(scope="module")
def mb():
    return load("muller-brown")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("agreement") / "run"
    assert tps_main(["run", "muller-brown", *TINY, "--out", str(out)]) == 0
    return out


def _reference(path, mb, run_dir, *, shift=0.0, dt=None, block_index=True, states=MULLER_BROWN_STATES):
    """A stand-in reference npz: the refined ensemble's own transition segments (chains kept), moved by
    ``shift`` along the dividing line (which leaves the dividing region and the lengths unchanged)."""
    refined = mb.load_paths(run_dir / "refined")
    settings = json.loads((run_dir / "results.json").read_text())["refined"]["settings"]
    frames, path_index, source = segments_flat(refined, *mb.transition_states(), 1)
    frames = frames + shift * Crossing(mb, SLAB["muller-brown"]).along
    blocks = [frames[torch.as_tensor(path_index == i)] for i in range(len(source))]
    chains = [int(c) for c in refined.info["chain"][source]]
    meta = {"system": "muller-brown", "kT": mb.kT, "dt": settings["dt"] if dt is None else dt, "seed": 12,
            "states": states, "config": {"frame_stride": 1}}
    save_reference_ensemble(path, blocks, chains, meta, block_index=block_index)
    return path, blocks, chains


def _agreement(ref, run_dir, out, *extra) -> int:
    """Exit status of ``python -m benchmarks agreement`` (bad input: SystemExit(2) from the runner)."""
    try:
        return bench_main(["agreement", "--system", "muller-brown", "--reference", str(ref), "--run", str(run_dir),
                           "--out", str(out), "--n-boot", "30", *extra])
    except SystemExit as exc:
        return exc.code


def test_crossing_matches_the_systems_definition(mb, run_dir):
    """Unthinned, the per-path crossing is exactly system.crossing_coordinate, and lengths are segment frames."""
    refined = mb.load_paths(run_dir / "refined")
    frames, path_index, source = segments_flat(refined, *mb.transition_states(), 1)
    stats = per_path(frames, path_index, Crossing(mb, SLAB["muller-brown"]))
    expected = mb.crossing_coordinate(refined)[torch.as_tensor(source)].numpy()
    np.testing.assert_allclose(stats["crossing"], expected, equal_nan=True)
    assert len(source) == refined.n_paths   # shooting paths are A -> B paths
    # a shooting path is its own transition segment: first frame in A, last in B
    np.testing.assert_array_equal(stats["length"], refined.info["lengths"].numpy())


def test_agrees_with_itself_and_not_with_a_shifted_copy(mb, run_dir, tmp_path):
    same, blocks, _ = _reference(tmp_path / "reference_muller-brown.npz", mb, run_dir)
    assert _agreement(same, run_dir, tmp_path / "same") == 0
    res = json.loads((tmp_path / "same" / "results.json").read_text())
    v = res["comparison"]["verdicts"]["refined"]
    assert all(v[s]["agree"] for s in ("path_length", "crossing", "crossing_band")), v
    assert res["reference"]["per_path_source"] == "npz 'path' array"
    assert (tmp_path / "same" / "table.md").read_text().count("| refined |") == 3

    # moved by 3x the range of every crossing value: beyond any bootstrap error of quantiles inside that range
    values = torch.cat(blocks) @ Crossing(mb, SLAB["muller-brown"]).along
    shift = 3 * float(values.max() - values.min()) + 0.1
    moved, _, _ = _reference(tmp_path / "moved" / "reference_muller-brown.npz", mb, run_dir, shift=shift)
    assert _agreement(moved, run_dir, tmp_path / "moved_out") == 0
    res = json.loads((tmp_path / "moved_out" / "results.json").read_text())
    v = res["comparison"]["verdicts"]["refined"]
    assert v["path_length"]["agree"] is True            # moving along the line keeps every length
    assert v["crossing"]["agree"] is False and v["crossing_band"]["agree"] is False
    assert v["crossing"]["median"]["diff"] == pytest.approx(-shift, abs=1e-6)


def test_old_reference_without_path_array_uses_its_checkpoint(mb, run_dir, tmp_path):
    ref, blocks, chains = _reference(tmp_path / "reference_muller-brown.npz", mb, run_dir, block_index=False)
    out = tmp_path / "out"
    assert _agreement(ref, run_dir, out) == 2 and not out.exists()   # neither 'path' nor a checkpoint
    torch.save({"frames": blocks, "frame_chain": chains}, tmp_path / "reference_muller-brown.ckpt.pt")
    assert _agreement(ref, run_dir, out) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["reference"]["per_path_source"] == "checkpoint reference_muller-brown.ckpt.pt"
    assert res["reference"]["n_paths"] == len(blocks)


def test_bad_input_one_line_exit_2_nothing_written(mb, run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    cases = {"dt": dict(dt=2e-4), "states": dict(states="other states")}
    for name, kw in cases.items():
        ref, _, _ = _reference(tmp_path / name / "reference_muller-brown.npz", mb, run_dir, **kw)
        capsys.readouterr()
        assert _agreement(ref, run_dir, out) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and ("--run: the refined dynamics use dt" in err[0] if name == "dt"
                                  else "--reference" in err[0] and "state" in err[0]), err
    ref, _, _ = _reference(tmp_path / "ok" / "reference_muller-brown.npz", mb, run_dir)
    geodesic_only = tmp_path / "geodesic_only"
    geodesic_only.mkdir()
    results = json.loads((run_dir / "results.json").read_text())
    results.pop("refined")
    (geodesic_only / "results.json").write_text(json.dumps(results))
    capsys.readouterr()
    assert _agreement(ref, geodesic_only, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--run" in err[0] and "no refined ensemble" in err[0], err
    assert _agreement(tmp_path / "missing.npz", run_dir, out) == 2
    assert not out.exists()
