"""train_model is a pure function of its arguments: the same call gives bit-identical weights,
whatever the global RNG state before it (the shipped checkpoints' recipes rely on this)."""

from pathlib import Path

import openmm.app as app
import torch

from tps.diffusion import TrainingConfig
from tps.sampling.md import md_samples
from tps.workflows.cartesian import prepare_endpoints, train_model

DATA = Path(__file__).resolve().parents[2] / "tps" / "systems" / "data" / "glycine_dipeptide"


def test_same_call_same_weights_regardless_of_global_seed():
    a, b = app.PDBFile(str(DATA / "C5.pdb")), app.PDBFile(str(DATA / "C7eq.pdb"))
    system = app.ForceField("amber99sbildn.xml").createSystem(a.topology, nonbondedMethod=app.NoCutoff,
                                                              constraints=app.HBonds)
    ends = prepare_endpoints(system, a.positions, b.positions, max_iterations=50)
    data = md_samples(system, a.topology, {"A": ends.start, "B": ends.target}, n_steps=60, report_interval=10)
    cfg = TrainingConfig(n_steps=3, batch_size=8, holdout_per_band=16, seed=3)
    weights = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model, _ = train_model(data, a.topology, system=system, hidden=8, n_layers=1, training=cfg)
        weights.append(model.denoiser.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    other, _ = train_model(data, a.topology, system=system, hidden=8, n_layers=1,
                           training=TrainingConfig(n_steps=3, batch_size=8, holdout_per_band=16, seed=4))
    assert not all(torch.equal(weights[0][k], v) for k, v in other.denoiser.state_dict().items())
