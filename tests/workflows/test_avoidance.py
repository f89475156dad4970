"""Region avoidance on a molecule and the all-atom solver's safety (tps.workflows.avoidance, solve_geodesic).

Short solves with the pretrained all-atom model (about 30 s for the module on one CPU thread)."""

from __future__ import annotations

import math
import os
import warnings

import mdtraj
import numpy as np
import pytest
import torch

from tps import pretrained
from tps.spacetime import GeodesicDiagnostics, GeodesicWarning
from tps.systems import alanine_dipeptide as aldp
from tps.workflows.avoidance import (
    AvoidanceRule, avoidance_constraints, avoided_model_coordinates, check_endpoints_outside, closest_approach,
    crossing_channels, frames_near_phipsi, read_structure_to_avoid, relative_kl_profiles,
    solve_avoiding,
)
from tps.workflows.cartesian import (
    Endpoints, build_denoiser, fit_scaling, kabsch_align, probe_checked_diagnostics, solve_geodesic,
)

torch.set_num_threads(1)
SHORT = dict(n_points=12, n_nodes=4, max_iter=8)


@pytest.fixture(scope="module")
def setup():
    s = aldp.minimized_structures()
    ends = Endpoints(s["C5"], kabsch_align(s["C7ax"], s["C5"]) + s["C5"].mean(0), s["C5"].mean(0))
    return pretrained.load("alanine-dipeptide"), ends, s


@pytest.fixture(scope="module")
def solved(setup):
    """Unconstrained and C7eq-avoiding short solves (the C5 -> C7ax curve passes the C7eq side)."""
    model, ends, s = setup
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeodesicWarning)  # the default all-atom solve is not flagged
        avoiding, free, info = solve_avoiding(model, ends, s["C7eq"], **SHORT)
    return avoiding, free, info


def test_avoiding_curve_keeps_farther_from_the_structure_in_kl(setup, solved):
    model, ends, _ = setup
    avoiding, free, info = solved
    kl_free = relative_kl_profiles(model, info.x_star, free.x, free.logsnr)[0][0]
    kl_avoid = relative_kl_profiles(model, info.x_star, avoiding.x, avoiding.logsnr)[0][0]
    threshold = info.thresholds[0]
    # the free curve dips below the threshold (that is what is avoided); the constrained one climbs
    # at least half of the way back to it
    assert kl_free.min() < threshold
    assert kl_avoid.min() > kl_free.min() + 0.5 * (threshold - kl_free.min())
    z_a, z_b = ends.model_coordinates(model.scaling)
    assert torch.equal(avoiding.x[0], z_a.float()) and torch.equal(avoiding.x[-1], z_b.float())
    # LowVariance at the free curve's lowest logSNR: no escape into more noise than the free curve used
    assert float(avoiding.logsnr.min()) >= info.low_variance_threshold - 0.1


def test_thresholds_follow_the_free_curves_kl_profile(setup, solved):
    model, ends, s = setup
    _, free, info = solved
    rule = AvoidanceRule(depth_fraction=0.25)
    other = avoidance_constraints(model, ends, s["C7eq"], free, rule=rule)
    m, e = info.free_min_kl[0], min(0.0, info.free_end_kl[0])
    assert info.thresholds[0] == pytest.approx(m + 0.5 * (e - m), rel=1e-9)
    assert other.thresholds[0] == pytest.approx(m + 0.25 * (e - m), rel=1e-6)
    # the weight makes the free curve's penalty `penalty_ratio` times its energy
    from tps.spacetime.constraints import CurveState
    from tps.spacetime.geometry import segment_products

    net = model.network
    with torch.enable_grad():
        prods, params = segment_products(net, free.x[None], free.logsnr[None], return_parameters=True)
    state = CurveState(free.x[None], free.logsnr[None], *[p.detach() for p in params], denoiser=net)
    penalty = float(info.constraints[0].penalty(state))
    assert penalty == pytest.approx(info.rule.penalty_ratio * info.free_energy, rel=1e-3)


def test_structure_is_aligned_exactly_like_the_target(setup):
    model, ends, s = setup
    angle = 0.7
    rot = np.array([[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0],
                    [0.0, 0.0, 1.0]])
    moved = s["C7ax"] @ rot.T + np.array([1.0, -2.0, 0.5])
    z = avoided_model_coordinates(np.stack([moved, s["C5"]]), ends, model.scaling)
    z_a, z_b = ends.model_coordinates(model.scaling)
    assert torch.allclose(z[0], z_b, atol=1e-10) and torch.allclose(z[1], z_a, atol=1e-10)


def test_an_avoided_region_that_contains_an_endpoint_is_refused(setup, solved):
    model, ends, s = setup
    _, free, _ = solved
    with pytest.raises(ValueError, match="^avoid_structure: .*contains an endpoint"):
        avoidance_constraints(model, ends, s["C5"], free)
    top = aldp.topology()
    with pytest.raises(ValueError, match="^avoid_phipsi: .*contains the target"):
        check_endpoints_outside((1.0, -0.8), ends, top)
    check_endpoints_outside((-1.05, -0.70), ends, top)  # alpha-R: neither endpoint


def test_structure_with_other_atoms_is_refused(tmp_path):
    top = aldp.topology()
    traj = mdtraj.load(os.path.join(aldp.data_dir(), "C7eq.pdb"))
    traj.atom_slice(range(21)).save_pdb(str(tmp_path / "short.pdb"))
    with pytest.raises(ValueError, match="^avoid_structure short.pdb: has 21 atoms but the system has 22"):
        read_structure_to_avoid(tmp_path / "short.pdb", top)
    traj.topology.atom(5).name = "OX"          # same count, another atom
    traj.save_pdb(str(tmp_path / "renamed.pdb"))
    with pytest.raises(ValueError, match="^avoid_structure renamed.pdb: atom 5 is .*atom order"):
        read_structure_to_avoid(tmp_path / "renamed.pdb", top)
    assert read_structure_to_avoid(os.path.join(aldp.data_dir(), "C7eq.pdb"), top).shape == (22, 3)


def test_frames_near_phipsi_is_periodic_and_refuses_uncovered_points():
    s = aldp.minimized_structures()
    top = aldp.topology()
    frames = np.stack([s["C7ax"], s["C5"], s["C7eq"]])
    # C5 sits at phi = -2.57: the same point written as phi + 2 pi is 0 rad away
    assert frames_near_phipsi(frames, top, (-2.566 + 2 * math.pi, 2.777), k=1).tolist() == [1]
    assert frames_near_phipsi(frames, top, (-2.0, 2.0), k=3, radius=1.5).tolist() == [1, 2]
    with pytest.raises(ValueError, match="^avoid_phipsi: no training frame within 0.75 rad"):
        frames_near_phipsi(frames, top, (3.0, -1.0))
    with pytest.raises(ValueError, match="degrees"):
        frames_near_phipsi(frames, top, (-60.0, -40.0))


def test_closest_approach_and_channels_on_known_paths():
    s = aldp.minimized_structures()
    top = aldp.topology()
    frames = np.stack([np.stack([s["C5"], s["C7eq"], s["C7ax"]]), np.stack([s["C5"], s["C5"], s["C7ax"]])])
    r = closest_approach(frames, s["C7eq"], top)
    assert r["rmsd_nm"][0] == pytest.approx(0.0, abs=1e-9) and r["rmsd_nm"][1] > 0.05
    assert r["phipsi_rad"][0] == pytest.approx(0.0, abs=1e-9) and r["phipsi_rad"][1] > 1.0
    deg = np.radians
    paths = np.stack([deg([[-150, 160], [-70, -30], [10, -20], [60, -40]]),      # through alpha-R
                      deg([[-150, 160], [-90, 150], [20, 140], [60, -40]]),      # phi = 0 near psi = 145
                      deg([[-150, 160], [-175, -30], [170, -35], [60, -40]]),    # across phi = +-180
                      deg([[-150, 160], [-140, 150], [-130, 150], [-120, 150]])])  # never arrives
    channels = [c["channel"] for c in crossing_channels(paths, deg([60.0, -41.0]))]
    assert channels == ["phi=0, alpha-R side", "phi=0, psi~pi side", "phi=pi", "none"]


def _line(n=9, d=3):
    x = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)[:, None] * torch.ones(d, dtype=torch.float64)
    return x, torch.full((n,), 2.0, dtype=torch.float64)


def _diagnostics():
    return GeodesicDiagnostics(iterations=1, evaluations=1, converged=True, energy_history=(1.0,),
                               negative_fraction=0.0, bound_fraction=0.0, logsnr_min=2.0, logsnr_max=2.0,
                               logsnr_range=(-12.0, 12.0), range_source="argument", objective="coordinate")


def test_probe_check_ignores_probe_noise_but_flags_a_non_psd_denoiser():
    x, lam = _line()
    # symmetric positive-definite Jacobian with large off-diagonal terms: every exact segment
    # product is positive, single Rademacher probes are noisy (v.Av varies with v)
    a = torch.tensor([[1.0, 0.9, 0.9], [0.9, 1.0, 0.9], [0.9, 0.9, 1.0]], dtype=torch.float64) * 0.3
    psd = probe_checked_diagnostics(lambda z, l: z @ a, x, lam, _diagnostics(), n_probes=16)
    assert psd.ok and psd.negative_fraction <= 0.01
    bad = probe_checked_diagnostics(lambda z, l: -3.0 * z, x, lam, _diagnostics(), n_probes=4)
    assert not bad.ok and bad.negative_fraction > 0.5 and "negative segment products" in bad.problems[0]
    with pytest.raises(ValueError, match="^n_probes"):
        probe_checked_diagnostics(lambda z, l: z, x, lam, _diagnostics(), n_probes=1)


def test_all_atom_solve_uses_the_models_domain_and_honours_strict(setup):
    model, ends, _ = setup
    r = solve_geodesic(model, ends, n_points=8, n_nodes=3, max_iter=2, strict=True)
    d = r.diagnostics
    assert d.range_source == "model" and d.logsnr_range == tuple(model.logsnr_range)
    assert d.logsnr_range[0] < float(r.logsnr.min()) and float(r.logsnr.max()) < d.logsnr_range[1]
    assert d.ok and d.negative_fraction <= 0.01


def test_training_frames_are_regenerated_from_the_models_recipe():
    from tps.diffusion import AffineScaling, DiffusionModel
    from tps.sampling.md import md_samples

    top = aldp.topology()
    s = aldp.minimized_structures()
    data = md_samples(aldp.create_openmm_system(top), top, {"C5": s["C5"], "C7ax": s["C7ax"]}, n_steps=200,
                      report_interval=20, timestep=aldp.TIMESTEP, friction=aldp.FRICTION, seed=3)
    recipe = {"system": "alanine-dipeptide", "arguments": {"data_steps": 200, "report_interval": 20}, "seed": 3}
    net = build_denoiser(top, hidden=8, n_layers=1)
    scaling = fit_scaling(data.positions)
    frames = aldp.recipe_training_frames(DiffusionModel(net, scaling, metadata={"recipe": recipe}))
    assert frames.shape == (20, 22, 3) and np.allclose(frames, data.positions, atol=1e-6)
    other = AffineScaling(scaling.shift, scaling.scale * 1.01, scaling.event_shape)  # not this data's model
    with pytest.raises(ValueError, match="^model: the regenerated training frames have scale"):
        aldp.recipe_training_frames(DiffusionModel(net, other, metadata={"recipe": recipe}))
