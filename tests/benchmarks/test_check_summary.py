"""The CI smoke check of a suite folder and the stored reference-ensemble helpers (fast, no benchmark run)."""

import json
import math

import pytest
import torch

from benchmarks.check_summary import check, main
from benchmarks.common import apply_reference_ensemble, load_reference, write_reference
from tps.sampling.paths import Paths
from tps.states import Ball


def _suite(tmp_path, rows, status="finished", complete=True):
    (tmp_path / "summary.md").write_text("# summary\n")
    (tmp_path / "sys").mkdir()
    (tmp_path / "sys" / "results.json").write_text(json.dumps({"complete": complete, "methods": rows}))
    summary = {"systems": {"sys": {"status": status}, "other": {"status": "skipped: no data"}},
               "rows": [dict(r, system="sys") for r in rows]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


GOOD = {"method": "spacetime-geodesic", "n_paths": 10, "n_energy_evals": 100, "wall_s": 1.0, "max_energy_mean": 3.0,
        "target_hit_fraction": 1.0, "path_density_jsd": 0.2}
BOUND = {"method": "unbiased-md", "n_paths": 0, "n_energy_evals": 5000, "wall_s": 1.0,
         "evals_per_transition_lower_bound": 5000.0}


def test_check_passes_finite_rows_and_explicit_bounds(tmp_path, capsys):
    folder = _suite(tmp_path, [GOOD, BOUND])
    assert check(folder) == []
    assert main([str(folder)]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_reports_nan_missing_files_and_required_systems(tmp_path, capsys):
    bad = dict(GOOD, path_density_jsd=float("nan"))
    no_bound = dict(BOUND, evals_per_transition_lower_bound=None)
    folder = _suite(tmp_path, [bad, no_bound], complete=False)
    problems = check(folder, require=["other"])
    text = "\n".join(problems)
    assert "path_density_jsd" in text and "unbiased-md" in text and "not marked complete" in text
    assert "other: required" in text
    assert main([str(folder)]) == 1
    assert "problem" in capsys.readouterr().err
    assert check(tmp_path / "nowhere") and "missing" in check(tmp_path / "nowhere")[0]


def test_reference_roundtrip_and_jsd(tmp_path):
    g = torch.Generator().manual_seed(0)
    frames = [torch.randn(200, 2, generator=g) * 0.3 for _ in range(4)]
    meta = {"system": "toy", "counts": {"kept_paths": 4}, "acceptance_rate": 0.3}
    write_reference(tmp_path / "reference_toy.npz", frames, [0, 1, 2, 3], meta)
    ref = load_reference(tmp_path / "reference_toy.npz", "toy")
    assert ref["frames"].shape == (800, 2) and ref["chain"].tolist()[:1] == [0]
    with pytest.raises(ValueError, match="not 'other'"):
        load_reference(tmp_path / "reference_toy.npz", "other")
    with pytest.raises(ValueError, match="does not exist"):
        load_reference(tmp_path / "missing.npz", "toy")
    a, b = Ball([-1.0, 0.0], 0.3), Ball([1.0, 0.0], 0.3)
    s = torch.linspace(0, 1, 30, dtype=torch.float64)
    line = torch.stack([2 * s - 1, 0 * s], -1)
    paths = Paths(line.expand(5, 30, 2).clone(), torch.zeros(5, 30), 150, 1.0, {})
    results = {"methods": [{"method": "m", "path_density_jsd": 0.5}, {"method": "none"}], "notes": {}}
    apply_reference_ensemble(results, {"m": paths}, a, b, ref, bins=10, ranges=((-1.5, 1.5), (-1.5, 1.5)))
    row = results["methods"][0]
    assert row["path_density_jsd_in_run"] == 0.5 and 0 < row["path_density_jsd"] <= 1
    assert math.isnan(results["methods"][1]["path_density_jsd"])
    assert results["reference_ensemble"]["n_frames"] == 800
    assert 0 <= results["reference_ensemble"]["noise_floor_jsd"] < 0.2
