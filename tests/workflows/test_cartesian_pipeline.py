"""The generic all-atom pipeline end to end on a second molecule (capped glycine, 19 atoms):
MD frames -> EGNN denoiser -> Hutchinson geodesic -> OpenMM annealed Langevin -> metrics,
with tiny settings. Nothing here is alanine-specific; alanine dipeptide appears only to check
that a model of one molecule is refused for another."""

import time
from pathlib import Path

import mdtraj
import numpy as np
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

from tps.diffusion import TrainingConfig
from tps.metrics.molecular import consecutive_frame_rmsd, kabsch_rmsd, openmm_energies
from tps.sampling.md import MDData, md_samples
from tps.workflows.cartesian import (
    boltzmann_kT, check_model_matches, curve_restraints, kabsch_align, prepare_endpoints, save_paths_dcd,
    train_model, transition_paths,
)

DATA = Path(__file__).resolve().parents[2] / "tps" / "systems" / "data" / "glycine_dipeptide"
TINY = dict(hidden=16, n_layers=2)


def _read(name):
    pdb = app.PDBFile(str(DATA / f"{name}.pdb"))
    return pdb.topology, pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)


@pytest.fixture(scope="module")
def glycine():
    """Topology, amber99sbildn vacuum system (HBonds, flexible constraints), C5 and C7eq structures (nm)."""
    top, c5 = _read("C5")
    _, c7 = _read("C7eq")
    system = app.ForceField("amber99sbildn.xml").createSystem(
        top, nonbondedMethod=app.NoCutoff, constraints=app.HBonds, flexibleConstraints=True)
    return top, system, c5, c7


@pytest.fixture(scope="module")
def pipeline(glycine, tmp_path_factory):
    """The whole pipeline with tiny settings, timed."""
    top, system, c5, c7 = glycine
    torch.manual_seed(0)
    t0 = time.perf_counter()
    endpoints = prepare_endpoints(system, c5, c7)
    data = md_samples(system, top, {"C5": endpoints.start, "C7eq": endpoints.target}, n_steps=300,
                      report_interval=10, seed=0)
    model, training = train_model(data, top, system=system,
                                  training=TrainingConfig(n_steps=50, batch_size=32, warmup_steps=5,
                                                                  holdout_per_band=256), **TINY)
    result = transition_paths(system, top, model, c5, c7, endpoints=endpoints, n_paths=4, steps_per_point=10,
                              n_points=16, frames_per_point=2, seed=0,
                              geodesic_options=dict(max_iter=3, n_nodes=4))
    files = save_paths_dcd(result.paths, top, tmp_path_factory.mktemp("paths"))
    wall = time.perf_counter() - t0
    return dict(data=data, model=model, training=training, result=result, files=files, wall=wall)


def test_pipeline_runs_fast_and_reports_costs(pipeline):
    assert pipeline["wall"] < 60.0
    assert pipeline["data"].n_energy_evals == 2 * 300
    assert pipeline["model"].metadata["n_training_energy_evals"] == 600
    assert set(pipeline["training"].holdout_final) and all(np.isfinite(v) for v in pipeline["training"].holdout_final.values())
    paths = pipeline["result"].paths
    assert paths.frames.shape == (4, 1 + 16 * 2, 19, 3)
    assert paths.n_energy_evals == 4 * 16 * 10


def test_paths_start_in_state_a_and_are_continuous(pipeline):
    paths, endpoints = pipeline["result"].paths, pipeline["result"].endpoints
    start = torch.as_tensor(endpoints.start)
    # first frame is the minimised start structure (constraints applied: sub-1e-4 nm changes)
    assert float(kabsch_rmsd(paths.frames[:, 0], start).max()) < 1e-3
    assert float((paths.frames[:, 0] - start).abs().max()) < 1e-3  # same frame, not only same shape
    steps = consecutive_frame_rmsd(paths.frames[:, :-1], paths.frames[:, 1:])
    assert float(steps.max()) < 0.05


def test_recorded_energies_equal_openmm_on_saved_frames(pipeline, glycine):
    _, system, _, _ = glycine
    paths, files = pipeline["result"].paths, pipeline["files"]
    assert len(files) == 4
    traj = mdtraj.load(str(files[2]), top=str(files[2].parent / "topology.pdb"))
    assert traj.n_frames == paths.n_frames and traj.n_atoms == 19
    recomputed = openmm_energies(system, traj.xyz.astype(np.float64))
    # DCD stores float32 Angstrom; the difference is rounding of positions only
    np.testing.assert_allclose(recomputed, paths.energies[2].numpy(), atol=0.05)


def test_restraints_follow_the_curve_formula(pipeline):
    result, model = pipeline["result"], pipeline["model"]
    r = result.restraints
    lam = torch.as_tensor(r.logsnr)
    expected_k = boltzmann_kT(300.0) * torch.exp(lam) / model.scaling.scale**2
    np.testing.assert_allclose(r.stiffness, expected_k.numpy(), rtol=1e-12)
    # the curve is anchored at the aligned endpoints (z, lam): centre = origin + scale z / alpha
    origin = result.endpoints.origin
    alpha = torch.sigmoid(lam).sqrt().numpy()
    np.testing.assert_allclose(r.centres[0] - origin, (result.endpoints.start - origin) / alpha[0], atol=1e-5)
    np.testing.assert_allclose(r.centres[-1] - origin, (result.endpoints.target - origin) / alpha[-1], atol=1e-5)


def test_linear_baseline_uses_the_same_pipeline(pipeline, glycine):
    top, system, c5, c7 = glycine
    res = transition_paths(system, top, pipeline["model"], c5, c7, endpoints=pipeline["result"].endpoints,
                           curve="linear", n_paths=2, steps_per_point=4, n_points=8, seed=1)
    assert res.geodesic is None
    np.testing.assert_allclose(res.restraints.logsnr, 4.0)
    assert res.paths.frames.shape == (2, 9, 19, 3)


def test_foreign_trajectory_refused_before_training(glycine, swap_atoms):
    top, system, c5, _ = glycine
    import tps.systems.alanine_dipeptide as aldp

    aldp_traj = mdtraj.Trajectory(aldp.minimized_structures()["C5"][None].astype(np.float32),
                                  mdtraj.Topology.from_openmm(aldp.topology()))
    with pytest.raises(ValueError, match="22 atoms but the system has 19"):
        MDData.from_trajectory(aldp_traj, topology=top, system=system)
    # same atom count, wrong order: swapped atoms are named
    md_top = mdtraj.Topology.from_openmm(top)
    order = list(range(19))
    order[0], order[1] = 1, 0
    swapped = mdtraj.Trajectory(c5[order][None].astype(np.float32), swap_atoms(md_top, 0, 1))
    data = MDData.from_trajectory(swapped, n_energy_evals=10)
    with pytest.raises(ValueError, match="atom 0 is"):
        train_model(data, top, system=system, training=TrainingConfig(n_steps=1, batch_size=4))


def test_model_of_another_molecule_refused(pipeline):
    import tps.systems.alanine_dipeptide as aldp

    with pytest.raises(ValueError, match="19 atoms, but this system has 22"):
        check_model_matches(pipeline["model"], aldp.topology())


def test_clashing_endpoint_minimised_with_warning(glycine):
    top, system, c5, c7 = glycine
    clash = c5.copy()
    clash[5] = clash[0] + 0.02  # an atom 0.035 nm from a carbon
    with pytest.warns(UserWarning, match="before minimisation"):
        ends = prepare_endpoints(system, clash, c7)
    assert ends.energies["start"][0] > ends.energies["start"][1] + 100
    with pytest.raises(ValueError, match="exceeds max_energy"):
        prepare_endpoints(system, c5, c7, max_energy=-1e4)


def test_kabsch_align_removes_rotation_and_translation():
    g = np.random.default_rng(0)
    x = g.normal(size=(7, 3))
    q, _ = np.linalg.qr(g.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))  # proper rotation
    moved = x @ q.T + np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(kabsch_align(moved, x), x - x.mean(0), atol=1e-12)


def test_curve_restraints_rejects_shifted_scaling():
    from tps.diffusion import AffineScaling

    with pytest.raises(ValueError, match="without shift"):
        curve_restraints(torch.zeros(3, 2, 3), torch.zeros(3), AffineScaling((1.0,) * 6, 1.0, (2, 3)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_device_auto_falls_back_to_cpu_with_warning(glycine):
    from tps.workflows.cartesian import build_denoiser

    with pytest.warns(UserWarning, match="CUDA is not available"):
        net = build_denoiser(glycine[0], hidden=8, n_layers=1, device="auto")
    assert next(net.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        build_denoiser(glycine[0], hidden=8, n_layers=1, device="cuda")
