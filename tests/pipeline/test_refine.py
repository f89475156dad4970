"""``tps run --refine shooting`` and :func:`tps.pipeline.refine_by_shooting` on Muller-Brown (small settings)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from tps.cli import main
from tps.core import Paths
from tps.pipeline import InputError, refine_by_shooting
from tps.systems import load

torch.set_num_threads(1)

#: A small geodesic ensemble (12 paths on a 16-point curve) refined by 3 chains x 4 rounds.
MB_TINY = ["--paths", "12", "--points", "16", "--max-iter", "10", "--quiet"]
REFINE = ["--refine", "shooting", "--chains", "3", "--refine-steps", "4", "--relax-rounds", "2"]


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("tps: error: ") and "; " in err[0], err[0]
    return err[0]


@pytest.fixture(scope="module")
def refined_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("refine") / "run"
    assert main(["run", "muller-brown", *MB_TINY, *REFINE, "--out", str(out)]) == 0
    return out


def test_refined_ensemble_row_files_and_transitions(refined_run):
    out = refined_run
    results = json.loads((out / "results.json").read_text())
    geo, ref = results["rows"]
    assert results["metrics"] == geo and geo["method"] == "spacetime-geodesic"  # the old keys stay
    assert ref["method"] == "geodesic-seeded-shooting" and results["refined"]["metrics"] == ref
    assert ref["n_chains"] == 3 and ref["n_rounds"] == 4 and ref["burn_in"] == 1 and ref["relax_rounds"] == 2
    assert len(ref["relax_rounds_per_chain"]) == 3 and max(ref["relax_rounds_per_chain"]) <= 2
    assert len(ref["accepted_per_chain"]) == 3 and 0.0 <= ref["acceptance_rate"] <= 1.0
    assert len(set(ref["seed_path_index"])) == 3
    # cost: the seeds' share of the geodesic sampling plus every shooting evaluation
    assert ref["n_energy_evals"] == ref["seed_paths_energy_evals"] + ref["shooting_energy_evals"]
    assert 0 < ref["relax_energy_evals"] < ref["shooting_energy_evals"]  # relaxation is part of the shooting cost
    assert ref["seed_paths_energy_evals"] == round(geo["n_energy_evals"] * 3 / 12)
    assert ref["n_training_energy_evals"] == geo["n_training_energy_evals"]
    for key in ("split_frame_density_chains", "split_path_length_chains", "crossing_median"):
        assert key in ref
    assert (out / "refined.png").is_file() and (out / "paths.png").is_file()
    state = json.loads((out / "state.json").read_text())
    assert set(state) == {"geodesic", "sampling", "refine"}
    # the saved refined paths: 3 chains x 3 kept rounds, each a proper A -> B transition
    mb = load("muller-brown")
    paths = mb.load_paths(out / "refined")
    assert ref["n_states_after_burn_in"] == 9 and paths.n_paths == ref["n_pooled_states"] <= 9
    a, b = mb.states["A"], mb.states["B"]
    for i, n in enumerate(paths.info["lengths"].tolist()):
        f = paths.frames[i, :n].double()
        assert bool(a(f[0])) and bool(b(f[-1])) and not bool((a(f[1:-1]) | b(f[1:-1])).any())


def test_refine_stage_resumes_and_recomputes_on_new_settings(refined_run, tmp_path):
    out = shutil.copytree(refined_run, tmp_path / "run")
    before = (out / "refined" / "paths.npz").stat().st_mtime_ns
    assert main(["run", "muller-brown", *MB_TINY, *REFINE, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["resumed"] == {"geodesic": True, "sampling": True, "refine": True}
    assert (out / "refined" / "paths.npz").stat().st_mtime_ns == before
    argv = ["run", "muller-brown", *MB_TINY, "--refine", "shooting", "--chains", "2", "--refine-steps", "3",
            "--relax-rounds", "0"]
    assert main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["resumed"]["refine"] is False and results["refined"]["metrics"]["n_chains"] == 2


def test_refine_bad_input_one_line_exit_2_nothing_written(refined_run, tmp_path, capsys):
    out = tmp_path / "new"
    for argv, flag in ((["--chains", "3"], "--chains"), (["--refine-steps", "3"], "--refine-steps"),
                       (["--relax-rounds", "3"], "--relax-rounds"),
                       (["--refine", "shooting", "--chains", "13"], "--chains 13")):
        assert main(["run", "muller-brown", *MB_TINY, *argv, "--out", str(out)]) == 2
        assert flag in _one_error_line(capsys)
        assert not out.exists()
    # an existing run is not touched by a refused refine
    kept = shutil.copytree(refined_run, tmp_path / "kept")
    stamp = {p.name: p.stat().st_mtime_ns for p in kept.rglob("*") if p.is_file()}
    assert main(["run", "muller-brown", *MB_TINY, "--refine", "shooting", "--chains", "40", "--out", str(kept)]) == 2
    _one_error_line(capsys)
    assert {p.name: p.stat().st_mtime_ns for p in kept.rglob("*") if p.is_file()} == stamp


def test_refine_without_transitions_is_refused_naming_the_problem():
    mb = load("muller-brown")
    a = mb.endpoints["A"]
    stuck = Paths(a + 0.01 * torch.randn(4, 20, 2, dtype=torch.float64), torch.zeros(4, 20), 80, mb.kT)
    with pytest.raises(InputError, match=r"too few A -> B \(A -> B\) transitions for 2 chains.*only 0 of its 4 paths"):
        refine_by_shooting(mb, stuck, mb.refine_protocol(quick=True), n_chains=2, n_rounds=2)
    with pytest.raises(InputError, match="--chains 5: more chains than the 4 geodesic paths"):
        refine_by_shooting(mb, stuck, mb.refine_protocol(quick=True), n_chains=5, n_rounds=2)


def test_refine_by_shooting_counts_the_seed_share_of_a_larger_ensemble():
    mb = load("muller-brown")
    a, b = mb.endpoints["A"], mb.endpoints["B"]
    line = torch.stack([torch.lerp(a, b, float(s)) for s in torch.linspace(0, 1, 60)])
    geo = Paths(line.expand(4, 60, 2).clone(), torch.zeros(4, 60), 1000, mb.kT)
    quick = mb.refine_protocol(quick=True).replace(relax_rounds=1)
    r = refine_by_shooting(mb, geo, quick, n_chains=2, n_rounds=2, n_source_paths=10)
    assert r.row["seed_paths_energy_evals"] == 200  # 2 of the 10 paths that cost 1000 evaluations
    assert np.isfinite(r.row["path_density_jsd_vs_geodesic"])
    assert set(r.diagnostics) == set(r.shooting.info["diagnostics"])



def test_refined_ensemble_pools_each_chain_from_its_first_path_free_of_seed_frames():
    from types import SimpleNamespace

    from tps.pipeline.refine import _pool
    from tps.systems.protocols import RefineProtocol

    # 3 chains x rounds 2..5 after the burn-in: chain 0 left its seed in the relaxation, chain 1 in
    # round 4 of TPS, chain 2 never
    rnd = torch.tensor([2, 3, 4, 5] * 3)
    chain = torch.arange(3).repeat_interleave(4)
    frames = torch.arange(12, dtype=torch.float64)[:, None, None].expand(12, 3, 2).clone()
    paths = Paths(frames, torch.zeros(12, 3), 100, 1.0, {"round": rnd, "chain": chain, "lengths": torch.full((12,), 3)})
    res = SimpleNamespace(paths=paths, info={"first_decorrelated_round": [None, 4, None],
                                             "relaxed_from_seed": [True, False, False]})
    kept, how = _pool(res, "decorrelated")
    assert how == "decorrelated" and kept.frames[:, 0, 0].tolist() == [0, 1, 2, 3, 6, 7]
    assert kept.info["chain"].tolist() == [0, 0, 0, 0, 1, 1] and kept.info["lengths"].tolist() == [3] * 6
    assert _pool(res, "all")[0] is paths
    stuck = SimpleNamespace(paths=paths, info={"first_decorrelated_round": [None] * 3, "relaxed_from_seed": [False] * 3})
    assert _pool(stuck, "decorrelated") == (paths, "all (no chain left its seed)")
    with pytest.raises(ValueError, match="pool: expected 'decorrelated' or 'all'"):
        RefineProtocol(n_chains=2, n_rounds=3, pool="first")
