"""run_method and RunDirectory on Muller-Brown with tiny protocols: contracts of the one pipeline."""

import dataclasses
import json

import pytest
import torch

from tps import pretrained, systems
from tps.pipeline import RunDirectory, geodesic_key, run_method, sampling_key

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mb():
    system = systems.load("muller-brown")
    p = system.protocols()
    p = p.replace(geodesic=p.geodesic.replace(n_points=16, coarse_points=8, max_iter=8, coarse_iter=4),
                  sampler=p.sampler.replace(n_paths=12, save_paths=5))
    return system, pretrained.load("muller-brown"), p


@pytest.fixture(scope="module")
def geodesic_run(mb):
    system, model, p = mb
    return run_method(system, model=model, protocols=p, seed=3)


def test_run_method_gives_paths_from_a_with_their_row(mb, geodesic_run):
    system, _, p = mb
    r = geodesic_run
    assert r.paths.n_paths == 12 and r.row["n_paths"] == 12 and r.row["method"] == "spacetime-geodesic"
    assert r.paths.frames.shape[1] == 1 + 16 * p.sampler.frames_per_point
    # every path starts at minimum A; the curve runs from A to B (model coordinates) at the protocol's logSNR
    assert torch.equal(r.paths.frames[:, 0], system.endpoints["A"].expand(12, 2))
    z_a, z_b = (z.double() for z in system.model_endpoints(mb[1]))
    assert torch.equal(r.curve.x[0], z_a) and torch.equal(r.curve.x[-1], z_b)
    assert r.curve.logsnr[[0, -1]].tolist() == [p.geodesic.logsnr] * 2
    assert r.curve.energy < r.curve.initial_energy
    assert set(r.timings) == {"geodesic_s", "sampling_s", "metrics_s"}
    json.dumps(r.row)  # JSON-ready


def test_sampling_a_given_curve_repeats_the_paths(mb, geodesic_run):
    system, _, p = mb
    again = run_method(system, curve=geodesic_run.curve, protocols=p, seed=3)
    assert torch.equal(again.paths.frames, geodesic_run.paths.frames)
    assert again.timings["geodesic_s"] == 0.0 and again.row["max_energy_mean"] == geodesic_run.row["max_energy_mean"]


def test_linear_is_a_straight_line_at_constant_logsnr(mb):
    system, model, p = mb
    r = run_method(system, "linear", model=model, protocols=p, seed=0)
    x = r.curve.x.double()
    assert r.row["method"] == "linear" and torch.all(r.curve.logsnr == p.geodesic.logsnr)
    second = x[2:] - 2 * x[1:-1] + x[:-2]   # equally spaced points on a line: zero second differences
    eps = torch.finfo(r.curve.x.dtype).eps   # built in the network's dtype (float32), as the benchmarks did
    assert float(second.abs().max()) < 8 * eps * float(x.abs().max())


def test_unknown_method_and_missing_baseline(mb):
    system, model, p = mb
    with pytest.raises(ValueError, match="method: expected one of"):
        run_method(system, "annealing", model=model, protocols=p)


def test_stage_keys_follow_every_protocol_field(mb):
    """The keys come from the dataclasses: changing ANY sampler field changes the paths key only,
    changing any geodesic number changes both."""
    system, _, p = mb
    g0 = geodesic_key(system.name, p, model_sha256="m")
    s0 = sampling_key(g0, p.sampler)
    for f in dataclasses.fields(p.sampler):
        v = getattr(p.sampler, f.name)
        new = dataclasses.replace(p.sampler, **{f.name: (v or 1) * 2 if f.name != "frames_per_point" else 5})
        q = p.replace(sampler=new)
        assert geodesic_key(system.name, q, model_sha256="m") == g0
        assert sampling_key(g0, new) != s0, f.name
    for name in ("logsnr", "n_points", "max_iter", "init_dips", "coarse_iter"):
        q = p.replace(geodesic=p.geodesic.replace(**{name: (4.0, 0.0) if name == "init_dips" else 7}))
        assert geodesic_key(system.name, q, model_sha256="m") != g0, name
    assert geodesic_key(system.name, p, model_sha256="m", seed=1) != g0
    assert sampling_key(g0, p.sampler, seed=1) != s0


def test_run_directory_resumes_each_stage(mb, tmp_path):
    system, model, p = mb
    d = RunDirectory(tmp_path / "run")
    r1, resumed = d.run(system, model, p, model_sha256="m", seed=3)
    assert resumed == {"geodesic": False, "sampling": False}
    assert r1.paths.n_paths == 5 and r1.row["n_paths"] == 12          # 5 saved, metrics of all 12
    assert system.paths_file(d.path).is_file() and d.curve_path.is_file()
    r2, resumed = d.run(system, model, p, model_sha256="m", seed=3)
    assert resumed == {"geodesic": True, "sampling": True} and r2.row == r1.row
    assert torch.equal(r2.paths.frames, r1.paths.frames)
    q = p.replace(sampler=p.sampler.replace(n_paths=6))
    r3, resumed = d.run(system, model, q, model_sha256="m", seed=3)
    assert resumed == {"geodesic": True, "sampling": False} and r3.row["n_paths"] == 6
    _, resumed = d.run(system, model, q, model_sha256="m", seed=3, force=True)
    assert resumed == {"geodesic": False, "sampling": False}
    d.write_results({"metrics": r3.row, "nan": float("nan")})
    assert json.loads(d.results_path.read_text())["nan"] is None       # the run records' convention


def test_density_geodesic_with_the_exact_score_stays_low(mb):
    """beta large: the exact-score density geodesic follows the valley; its paths' highest energy is far
    below the straight line's (Muller-Brown: the line A -> B crosses a ~+100 ridge)."""
    system, model, p = mb
    q = p.replace(extras={**p.extras, "density": {"beta": 3.0, "n_iter": 30, "n_coarse": 8, "exact": True}})
    r = run_method(system, "density-geodesic", model=model, protocols=q, seed=0)
    line = run_method(system, "linear", model=model, protocols=q, seed=0)
    assert r.row["method"] == "density-geodesic" and r.row["density_beta"] == 3.0 and r.row["n_score_evals"] > 0
    assert r.row["minmax"] < line.row["minmax"] - 20.0
    with pytest.raises(ValueError, match="extras\\['density'\\]"):
        run_method(system, "density-geodesic", model=model, protocols=p)


BASELINES = {"md_dt": 1e-4, "md_chains": 20, "md_steps": 300, "kT_high": 20.0, "initial_chains": 16,
             "initial_max_steps": 20_000, "initial_candidates": 1, "shooting_chains": 4, "shooting_rounds": 4,
             "shooting_max_frames": 1000, "shooting_save_every": 1, "fixed_chains": 4, "fixed_frames": 400,
             "fixed_rounds": 2}


@pytest.mark.parametrize("fixed", [False, True])
def test_two_way_shooting_paths_are_transitions(mb, fixed):
    """Every saved shooting path is a reactive path: it starts in A and ends in B (the ensemble's definition)."""
    system, _, p = mb
    q = p.replace(extras={**p.extras, "baselines": {**BASELINES, "fixed": fixed}})
    r = run_method(system, "two-way-shooting", protocols=q, seed=0)
    assert r.curve is None and r.row["method"] == "two-way-shooting-" + ("fixed" if fixed else "variable")
    lengths = r.paths.info["lengths"]
    a, b = system.states["A"], system.states["B"]
    for f, n in zip(r.paths.frames, lengths.tolist()):
        assert bool(a(f[0])) and bool(b(f[n - 1]))
    assert r.row["n_energy_evals"] == r.row["initial_path_energy_evals"] + r.row["shooting_energy_evals"]


def test_unbiased_md_counts_its_budget(mb):
    system, _, p = mb
    q = p.replace(extras={**p.extras, "baselines": BASELINES})
    r = run_method(system, "unbiased-md", protocols=q, seed=0)
    assert r.row["method"] == "unbiased-md" and r.row["n_energy_evals"] >= 20 * 300 * 0.99
    with pytest.raises(ValueError, match="missing 'md_dt'"):
        run_method(system, "unbiased-md", protocols=p)
