"""Shipped pretrained models: they load, match their recorded recipes, and predict reproducibly."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from tps import pretrained

torch.set_num_threads(1)

NAMES = ["alanine-dipeptide", "alanine-dipeptide-phipsi", "muller-brown"]
NETWORKS = {"muller-brown": "MLPDenoiser", "alanine-dipeptide-phipsi": "PeriodicMLPDenoiser",
            "alanine-dipeptide": "EGNNDenoiser"}


def _roundtrip(obj):
    """What a value looks like after JSON (tuples become lists)."""
    return json.loads(json.dumps(obj))


def _fixed_input(name, model):
    if name == "muller-brown":
        x = torch.tensor([[-0.55, 1.44], [0.62, 0.03], [-0.8, 0.6], [0.2, 0.4]], dtype=torch.float64)
        return model.to_model(x).float(), torch.tensor([-4.0, 0.0, 3.0, 8.0])
    if name == "alanine-dipeptide-phipsi":
        x = torch.tensor([[-2.5, 2.8], [1.1, -0.8], [0.0, 0.0], [3.0, -3.0]])
        return x, torch.tensor([-4.0, 0.0, 3.0, 8.0])
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.cartesian import model_coordinates

    minima = aldp.minimized_structures()
    z = model_coordinates(np.stack([minima["C5"], minima["C7ax"]]), model.scaling)
    return z, torch.tensor([0.0, 4.0])


def test_available_lists_the_three_models():
    assert pretrained.available() == NAMES


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        pretrained.load("no-such-model")
    for name in NAMES:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="muller-brown"):
        pretrained.recipe("alanine")


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_matches_recipe(name):
    rec = pretrained.recipe(name)
    model = pretrained.load(name)
    assert type(model.network).__name__ == NETWORKS[name] == rec["network"]
    assert _roundtrip(dataclasses.asdict(model.network.config)) == rec["config"]
    assert _roundtrip(model.scaling.as_dict()) == rec["scaling"]
    # the recipe is the exact command that wrote this checkpoint, also stored inside it
    assert rec["command"].startswith(f"tps train {name} ")
    assert f"--out tps/pretrained/data/{name}.pt" in rec["command"]
    assert rec["argv"][:2] == ["train", name]
    assert model.metadata["recipe"] == rec
    assert model.metadata["system"] == name
    for key in ("seed", "package_version", "n_training_energy_evals", "date", "metrics", "arguments"):
        assert key in rec
    assert rec["n_training_energy_evals"] > 0 and not rec["interrupted"]
    assert rec["training_steps"] == rec["arguments"]["steps"]
    assert all(np.isfinite(v) for v in rec["metrics"]["holdout_final"].values())
    # frozen: evaluation mode, no parameter gradients
    assert not model.network.training
    assert not any(p.requires_grad for p in model.network.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_predictions_finite_and_reproducible(name):
    a, b = pretrained.load(name), pretrained.load(name)
    z, lam = _fixed_input(name, a)
    with torch.no_grad():
        ya, yb = a(z, lam), b(z, lam)
    assert ya.shape == z.shape
    assert torch.isfinite(ya).all()
    assert torch.equal(ya, yb)


def test_all_atom_model_matches_bundled_topology():
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.cartesian import check_model_matches

    model = pretrained.load("alanine-dipeptide")
    check_model_matches(model, aldp.topology())
    assert model.network.config.n_atoms == 22


def test_checkpoints_are_small():
    for name in NAMES:
        assert pretrained.path(name).stat().st_size < 5 * 2**20
