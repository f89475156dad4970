"""The ``tps`` command, called in-process as ``main([...])`` with small settings (whole file ~1 min)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from tps.cli import main

torch.set_num_threads(1)

#: Small Muller-Brown run: 40 paths on a 32-point geodesic (a few seconds per stage).
MB_FAST = ["--paths", "40", "--points", "32", "--max-iter", "30", "--quiet"]


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("tps: error: ") and "; " in err[0], err[0]
    return err[0]


@pytest.fixture(scope="module")
def mb_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mb") / "run"
    assert main(["run", "muller-brown", *MB_FAST, "--out", str(out)]) == 0
    return out


@pytest.fixture
def mb_copy(mb_run, tmp_path):
    """A private copy of the module's run (timestamps kept) for tests that rerun into it, so that
    no test sees another's outputs whatever the order (the suite runs in random order)."""
    return shutil.copytree(mb_run, tmp_path / "run")


def test_systems_lists_systems_and_models(capsys):
    assert main(["systems"]) == 0
    text = capsys.readouterr().out
    for name in ("muller-brown", "alanine-dipeptide", "alanine-dipeptide-phipsi"):
        assert name in text
    assert "pretrained model: muller-brown" in text


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert main(["run", "--help"]) == 0
    assert "--constraint" in capsys.readouterr().out


def test_run_muller_brown_writes_results_and_figure(mb_run):
    results = json.loads((mb_run / "results.json").read_text())
    m = results["metrics"]
    for key in ("max_energy_mean", "minmax", "max_step", "target_hit_fraction"):
        assert math.isfinite(m[key]), key
    assert m["n_paths"] == 40
    assert m["target_hit_fraction"] > 0.5
    assert results["seed"] == 0 and results["package_version"]
    assert results["model"]["source"] == "pretrained:muller-brown"
    assert set(results["timings"]) >= {"geodesic_s", "sampling_s", "total_s"}
    assert (mb_run / "paths.png").read_bytes()[:4] == b"\x89PNG"
    from tps.io import load_paths

    paths = load_paths(mb_run / "paths.npz")
    assert paths.frames.shape[:2] == (40, 1 + 32)
    curve = torch.load(mb_run / "curve.pt", weights_only=True)
    assert curve["x"].shape == (32, 2)


def test_run_resumes_saved_stages(mb_copy):
    curve_mtime = (mb_copy / "curve.pt").stat().st_mtime_ns
    assert main(["run", "muller-brown", *MB_FAST, "--out", str(mb_copy)]) == 0
    results = json.loads((mb_copy / "results.json").read_text())
    assert results["resumed"] == {"geodesic": True, "sampling": True}
    assert (mb_copy / "curve.pt").stat().st_mtime_ns == curve_mtime
    # another path count: the saved geodesic is reused, the paths are resampled
    fast = [a if a != "40" else "20" for a in MB_FAST]
    assert fast != MB_FAST and fast[2:] == MB_FAST[2:]
    assert main(["run", "muller-brown", *fast, "--out", str(mb_copy)]) == 0
    results = json.loads((mb_copy / "results.json").read_text())
    assert results["resumed"] == {"geodesic": True, "sampling": False}
    assert results["metrics"]["n_paths"] == 20
    assert (mb_copy / "curve.pt").stat().st_mtime_ns == curve_mtime


def test_config_file_and_override(mb_copy, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('paths = 30\npoints = 32\nmax_iter = 30\nquiet = true\nsteps-per-point = 15\n')
    assert main(["run", "muller-brown", "--config", str(cfg), "--out", str(mb_copy)]) == 0
    results = json.loads((mb_copy / "results.json").read_text())
    assert results["metrics"]["n_paths"] == 30 and results["resumed"]["geodesic"]
    yml = tmp_path / "run.yaml"
    yml.write_text("paths: 30\npoints: 32\nmax-iter: 30\nquiet: true\n")
    # command-line options override the file
    assert main(["run", "muller-brown", "--config", str(yml), "--paths", "25", "--out", str(mb_copy)]) == 0
    assert json.loads((mb_copy / "results.json").read_text())["metrics"]["n_paths"] == 25


def test_config_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("paths = 10\nnumber_of_paths = 20\n")
    assert main(["run", "muller-brown", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys)
    assert "'number_of_paths'" in line and "valid keys" in line and "paths" in line
    malformed = tmp_path / "m.toml"
    malformed.write_text("paths = = 3\n")
    assert main(["run", "muller-brown", "--config", str(malformed)]) == 2
    assert "malformed" in _one_error_line(capsys)
    wrong = tmp_path / "w.toml"
    wrong.write_text("paths = -3\n")
    assert main(["run", "muller-brown", "--config", str(wrong)]) == 2
    assert "'paths'" in _one_error_line(capsys)
    assert main(["run", "muller-brown", "--config", str(tmp_path / "missing.toml")]) == 2
    _one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_user_errors_exit_2_with_one_line_and_keep_outputs(mb_run, capsys):
    results = mb_run / "results.json"
    before = results.read_bytes()
    cases = [
        ["run", "muller-brown", "--model", str(mb_run / "nope.pt"), "--out", str(mb_run)],   # missing file
        ["run", "no-such-system", "--out", str(mb_run)],                                       # unknown system
        ["run", "muller-brown", "--paths", "0", "--out", str(mb_run)],                         # bad number
        ["run", "muller-brown", "--paths", "many", "--out", str(mb_run)],
        ["sample", "muller-brown", "--curve", str(mb_run / "nope.pt"), "--out", str(mb_run)],
        ["run", "muller-brown", "--model", str(mb_run / "results.json"), "--out", str(mb_run)],  # not a checkpoint
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        _one_error_line(capsys)
    assert results.read_bytes() == before


def test_incompatible_checkpoint_is_refused(mb_run, capsys):
    from tps import pretrained

    before = (mb_run / "results.json").read_bytes()
    mb = str(pretrained.path("muller-brown"))
    assert main(["run", "alanine-dipeptide", "--model", mb, "--out", str(mb_run)]) == 2
    line = _one_error_line(capsys)
    assert "MLPDenoiser" in line and "alanine-dipeptide" in line
    assert main(["run", "alanine-dipeptide-phipsi", "--model", mb, "--out", str(mb_run)]) == 2
    _one_error_line(capsys)
    # a curve solved for another system
    assert main(["sample", "alanine-dipeptide", "--curve", str(mb_run / "curve.pt"), "--out", str(mb_run)]) == 2
    assert "muller-brown" in _one_error_line(capsys)
    assert (mb_run / "results.json").read_bytes() == before


def test_geodesic_then_sample(tmp_path):
    curve = tmp_path / "curve.pt"
    assert main(["geodesic", "muller-brown", "--points", "16", "--max-iter", "5", "--out", str(curve), "--quiet"]) == 0
    out = tmp_path / "sampled"
    assert main(["sample", "muller-brown", "--curve", str(curve), "--paths", "10", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"]["n_paths"] == 10 and results["settings"]["points"] == 16
    assert (out / "paths.npz").is_file() and (out / "paths.png").is_file()


def test_train_writes_checkpoint_and_recipe(tmp_path, capsys):
    from tps.diffusion.checkpoint import DiffusionModel

    out = tmp_path / "mb.pt"
    argv = ["train", "muller-brown", "--out", str(out), "--steps", "20", "--data-steps", "300", "--chains", "20",
            "--hidden", "8", "--layers", "1", "--quiet"]
    assert main(argv) == 0
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["argv"] == argv and recipe["command"].startswith("tps train muller-brown --out ")
    assert recipe["arguments"]["steps"] == 20 and recipe["arguments"]["hidden"] == 8
    assert recipe["n_training_energy_evals"] == 20 * 300
    model = DiffusionModel.load(out)
    assert model.metadata["recipe"] == recipe and model.network.config.hidden == 8
    # the checkpoint serves 'tps geodesic' for its system, and is refused for another one
    assert main(["geodesic", "muller-brown", "--model", str(out), "--points", "8", "--max-iter", "2", "--out",
                 str(tmp_path / "c.pt"), "--quiet"]) == 0
    assert main(["geodesic", "alanine-dipeptide", "--model", str(out), "--out", str(tmp_path / "c.pt")]) == 2
    _one_error_line(capsys)
    # an option that does not apply to the system
    assert main(["train", "alanine-dipeptide", "--out", str(tmp_path / "a.pt"), "--chains", "3"]) == 2
    assert "--chains" in _one_error_line(capsys)
    assert not (tmp_path / "a.pt").exists()


def test_bench_delegates_to_benchmarks(capsys):
    assert main(["bench", "muller-brown", "--help"]) == 0
    assert "--paths" in capsys.readouterr().out


def test_bench_unknown_suite_lists_valid_ones(capsys):
    assert main(["bench", "no-such-suite"]) == 2
    line = _one_error_line(capsys)
    assert "muller-brown" in line and "aldp-cartesian" in line


# ------------------------------------------------------------------ all-atom
def _tiny_trajectory(path):
    """Two frames (the minimised C5 and C7ax) with OpenMM energies, written by tps.io.save_paths."""
    from tps.io import save_paths
    from tps.metrics.molecular import openmm_energies
    from tps.sampling.paths import Paths
    from tps.systems import alanine_dipeptide as aldp

    top = aldp.topology()
    minima = aldp.minimized_structures()
    frames = np.stack([minima["C5"], minima["C7ax"]])[None]
    energies = openmm_energies(aldp.create_openmm_system(top), frames)
    save_paths(Paths(torch.as_tensor(frames), torch.as_tensor(energies), 0, aldp.KT), path, topology=top)
    return energies


def test_check_energies_agrees_and_flags_corruption(tmp_path, capsys):
    from tps.systems import alanine_dipeptide as aldp

    h5 = tmp_path / "tiny.h5"
    _tiny_trajectory(h5)
    assert main(["check-energies", str(h5)]) == 0
    assert "agree" in capsys.readouterr().out
    dcd = tmp_path / "tiny.dcd"
    energies = _tiny_trajectory(dcd)
    pdb = str(aldp.data_dir() / "C5.pdb")
    assert main(["check-energies", str(dcd), "--top", pdb, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agree"] and report["n_frames"] == 2 and report["max_abs_deviation"] < 0.05
    sidecar = tmp_path / "tiny.dcd.json"
    meta = json.loads(sidecar.read_text())
    meta["energies"][0][1] = float(energies[0, 1]) + 5.0   # corrupt one stored energy
    sidecar.write_text(json.dumps(meta))
    assert main(["check-energies", str(dcd), "--top", pdb]) == 1
    assert "DISAGREE" in capsys.readouterr().out
    # a bundled structure without stored energies: energies reported, nothing to compare
    assert main(["check-energies", pdb]) == 0
    assert "no stored energies" in capsys.readouterr().out
    assert main(["check-energies", str(tmp_path / "missing.dcd"), "--top", pdb]) == 2
    _one_error_line(capsys)


def test_check_energies_with_a_users_force_field(tmp_path, capsys):
    """--forcefield: another molecule (capped glycine) checked with the force field it was made with."""
    import openmm.app as app

    from tps.io import save_paths
    from tps.metrics.molecular import openmm_energies
    from tps.sampling.paths import Paths
    from tps.systems import alanine_dipeptide as aldp

    pdb = app.PDBFile(str(aldp.data_dir().parent / "glycine_dipeptide" / "C5.pdb"))
    system = app.ForceField("amber03.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff,
                                                        constraints=app.HBonds)
    x = np.asarray(pdb.getPositions(asNumpy=True)._value)
    frames = np.stack([x, x + 0.003])[None]
    energies = openmm_energies(system, frames)
    h5 = tmp_path / "gly.h5"
    save_paths(Paths(torch.as_tensor(frames), torch.as_tensor(energies), 0, aldp.KT), h5, topology=pdb.topology)
    assert main(["check-energies", str(h5), "--forcefield", "amber03.xml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["force_field"] == "amber03.xml"
    assert main(["check-energies", str(h5)]) == 1          # the default (amber99sbildn) disagrees by ~50 kJ/mol
    capsys.readouterr()
    assert main(["check-energies", str(h5), "--forcefield", "no-such-field.xml"]) == 2
    assert "--forcefield" in _one_error_line(capsys)


def test_run_alanine_dipeptide_tiny(tmp_path, capsys):
    out = tmp_path / "aldp"
    argv = ["run", "alanine-dipeptide", "--paths", "2", "--points", "8", "--max-iter", "3", "--steps-per-point", "20",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    m = results["metrics"]
    assert m["n_paths"] == 2 and math.isfinite(m["max_energy_mean"]) and math.isfinite(m["max_step"])
    assert (out / "paths.png").is_file() and (out / "paths" / "topology.pdb").is_file()
    assert (out / "paths" / "paths_000.dcd").is_file()
    capsys.readouterr()
    assert main(["check-energies", str(out / "paths" / "paths.dcd")]) == 0
    assert "agree" in capsys.readouterr().out


def test_all_atom_region_avoidance_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    import os

    import mdtraj

    from tps.systems import alanine_dipeptide as aldp

    c7eq = os.path.join(aldp.data_dir(), "C7eq.pdb")
    short = tmp_path / "short.pdb"
    mdtraj.load(c7eq).atom_slice(range(21)).save_pdb(str(short))
    out = tmp_path / "out"
    ra = ["--constraint", "region-avoiding"]
    cases = [
        (["alanine-dipeptide", *ra, "--avoid-structure", str(short)], "--avoid-structure short.pdb: has 21 atoms"),
        (["muller-brown", *ra, "--avoid-phipsi", "-1.0", "-0.7"], "--avoid-phipsi: muller-brown has no (phi, psi)"),
        (["alanine-dipeptide", *ra, "--avoid-phipsi", "-2.5", "2.7"], "contains the start"),       # C5
        (["alanine-dipeptide", *ra, "--avoid-phipsi", "1.0", "-0.8"], "contains the target"),      # C7ax
        (["alanine-dipeptide", *ra, "--avoid-structure", os.path.join(aldp.data_dir(), "C5.pdb")], "contains the start"),
        (["alanine-dipeptide", *ra, "--avoid-phipsi", "-1.0", "-0.7", "--avoid-structure", c7eq], "both given"),
        (["alanine-dipeptide", "--avoid-phipsi", "-1.0", "-0.7"], "only used with --constraint region-avoiding"),
        (["alanine-dipeptide", "--avoid-structure", c7eq], "only used with --constraint region-avoiding"),
        (["alanine-dipeptide", *ra], "needs what to avoid"),
        (["alanine-dipeptide", *ra, "--avoid-phipsi", "-60", "-40"], "degrees"),
    ]
    for argv, expected in cases:
        assert main(["run", *argv, "--out", str(out), "--quiet"]) == 2, argv
        line = _one_error_line(capsys)
        assert expected in line, (argv, line)
        assert not out.exists(), argv


def test_run_alanine_dipeptide_region_avoiding_tiny(tmp_path):
    import os

    from tps.systems import alanine_dipeptide as aldp

    out = tmp_path / "avoid"
    argv = ["run", "alanine-dipeptide", "--paths", "2", "--points", "8", "--max-iter", "3", "--steps-per-point", "20",
            "--constraint", "region-avoiding", "--avoid-structure", os.path.join(aldp.data_dir(), "C7eq.pdb"),
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    avoid = results["curve"]["avoid"]
    assert avoid["n_structures"] == 1 and avoid["free_min_kl"][0] < avoid["thresholds"][0] < 0
    m = results["metrics"]
    assert m["method"] == "spacetime-geodesic-region-avoiding" and 0.0 <= m["avoid_rmsd_min_nm"] < 1.0
    assert sum(m["crossing_channels"].values()) == 2



def test_a_system_without_a_pretrained_model_asks_for_one(tmp_path, capsys):
    """glycine-dipeptide is a CLI system because it is registered (tps.systems.available()); it ships no
    pretrained model, so 'tps run' without --model says how to get one (train + run end to end:
    tests/systems/test_glycine_dipeptide.py)."""
    assert main(["run", "glycine-dipeptide", "--out", str(tmp_path / "none"), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "no pretrained model" in line and "tps train glycine-dipeptide" in line
    assert not (tmp_path / "none").exists()


def test_run_directories_of_earlier_versions_resume():
    """The stage keys 'tps run muller-brown --paths 50' wrote at commit fa30b27 (state.json of that run,
    version and model digest left out) are reproduced from the system's protocols, so such a
    directory resumes."""
    from tps.cli import build_parser
    from tps.cli._stages import constraint_and_avoid, legacy_keys, load_system, run_protocols

    args = build_parser().parse_args(["run", "muller-brown", "--paths", "50"])
    system = load_system("muller-brown")
    protocols = run_protocols(system, args)
    constraint, _, record = constraint_and_avoid(system, args)
    gkey, skey = legacy_keys(system, protocols, model_sha256="m", constraint=constraint, avoid_record=record, seed=0)
    g, s = json.loads(gkey), json.loads(skey)
    assert g["system"] == "muller-brown" and g["settings"] == {
        "avoid_kl_margin": 20.0, "avoid_logsnr": 6.0, "avoid_weight": 1000.0, "coarse_iter": 150, "coarse_points": 32,
        "constraint": "none", "init_dips": [6.0, 2.0, -2.0], "logsnr": 6.0, "low_variance_threshold": 5.0,
        "low_variance_weight": 100000.0, "max_iter": 150, "points": 128, "seed": 0}
    assert s == {"geodesic": gkey, "seed": 0, "settings": {"frames_per_point": 1, "paths": 50, "save_paths": 100,
                                                            "step_size": 0.0004, "steps_per_point": 15}}
