"""A third system is one file plus its data: ``tps train glycine-dipeptide`` then ``tps run
glycine-dipeptide`` end to end through the command line (tiny settings), and models of one
molecule refused by the other."""

import json

import pytest
import torch

from tps.cli import main
from tps.systems import ModelMismatch, available, load

TRAIN = ["--steps", "30", "--data-steps", "300", "--hidden", "16", "--layers", "2", "--batch-size", "32"]
RUN = ["--paths", "2", "--points", "16", "--max-iter", "3", "--steps-per-point", "10"]


@pytest.fixture(scope="module")
def glycine_run(tmp_path_factory):
    """``tps train glycine-dipeptide`` (300 MD steps per start, 30 training steps) and ``tps run`` with it."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("glycine")
    model = d / "M.pt"
    rc_train = main(["train", "glycine-dipeptide", "--out", str(model), "--quiet", *TRAIN])
    rc_run = main(["run", "glycine-dipeptide", "--model", str(model), "--out", str(d / "run"), "--quiet", *RUN])
    return dict(dir=d, model=model, out=d / "run", rc=(rc_train, rc_run))


def test_glycine_is_registered():
    assert "glycine-dipeptide" in available()
    gly = load("glycine-dipeptide", platform="Reference")
    assert (gly.start, gly.target, gly.pretrained, gly.energy_unit) == ("C5", "C7eq", None, "kJ/mol")
    assert gly.endpoints["C5"].shape == (19, 3)
    # each minimum lies in its own state and not in the other (periodic (phi, psi) balls)
    assert bool(gly.states["C5"](gly.endpoints["C5"])) and not bool(gly.states["C7eq"](gly.endpoints["C5"]))
    assert bool(gly.states["C7eq"](gly.endpoints["C7eq"])) and not bool(gly.states["C5"](gly.endpoints["C7eq"]))
    # minima.json energy (systems/glycine_dipeptide/README.md) equals the force field's
    assert float(gly.potential.energy(gly.endpoints["C5"])) == pytest.approx(-123.5737, abs=1e-3)


def test_train_then_run_end_to_end(glycine_run):
    assert glycine_run["rc"] == (0, 0)
    out = glycine_run["out"]
    recipe = json.loads(glycine_run["model"].with_suffix(".json").read_text())
    assert recipe["system"] == "glycine-dipeptide" and recipe["n_training_energy_evals"] == 2 * 300
    results = json.loads((out / "results.json").read_text())
    assert results["system"] == "glycine-dipeptide" and results["metrics"]["n_paths"] == 2
    # annealed Langevin cost: paths x points x MD steps per point
    assert results["metrics"]["n_energy_evals"] == 2 * 16 * 10
    for name in ("paths.png", "curve.pt", "state.json", "paths/topology.pdb", "paths/paths_000.dcd",
                 "paths/paths_001.dcd"):
        assert (out / name).is_file(), name


def test_paths_start_in_c5_with_openmm_energies(glycine_run):
    gly = load("glycine-dipeptide", platform="Reference")
    paths = gly.load_paths(glycine_run["out"])
    assert paths.frames.shape[0] == 2 and tuple(paths.frames.shape[2:]) == (19, 3)
    assert bool(gly.states["C5"](paths.frames[:, 0].double()).all())
    # the stored energies are the force field's (DCD float32 rounding only): check-energies exits 0
    assert main(["check-energies", str(glycine_run["out"] / "paths" / "paths_001.dcd")]) == 0


def test_models_refused_by_the_other_molecule(glycine_run, capsys):
    from tps import pretrained
    from tps.diffusion.checkpoint import DiffusionModel

    gly_model = DiffusionModel.load(glycine_run["model"])
    with pytest.raises(ModelMismatch, match="19 atoms, but this system has 22"):
        load("alanine-dipeptide", platform="Reference").check_model(gly_model)
    with pytest.raises(ModelMismatch, match="22 atoms, but this system has 19"):
        load("glycine-dipeptide", platform="Reference").check_model(pretrained.load("alanine-dipeptide"))
    # through the command line: one-line error, exit status 2, nothing written
    out = glycine_run["dir"] / "refused"
    assert main(["run", "alanine-dipeptide", "--model", str(glycine_run["model"]), "--out", str(out), "--quiet",
                 *RUN]) == 2
    assert "does not fit alanine-dipeptide" in capsys.readouterr().err
    assert not out.exists()
