"""run_method contracts the benchmarks rely on: rows sharing one generator continue one noise stream
(exactly the sampler called row after row), a shooting row reuses the other's initial path unchanged,
and a molecule's OpenMM baselines give rows with their documented keys (tiny settings)."""

import math

import pytest
import torch

from tps import pretrained, systems
from tps.pipeline import run_method
from tps.sampling import annealed_langevin

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mb():
    system = systems.load("muller-brown")
    p = system.protocols()
    p = p.replace(geodesic=p.geodesic.replace(n_points=12), sampler=p.sampler.replace(n_paths=6))
    return system, pretrained.load("muller-brown"), p


def _annealed(system, model, curve, p, generator):
    s = p.sampler
    return annealed_langevin(system.potential, curve.x.double(), curve.logsnr.double(), kT=system.kT,
                             n_paths=s.n_paths, steps_per_point=s.steps_per_point, step_size=s.step_size,
                             scaling=model.scaling, frames_per_point=s.frames_per_point,
                             x_start=system.endpoints[system.start], generator=generator)


def test_rows_sharing_a_generator_are_the_sampler_called_in_turn(mb):
    system, model, p = mb
    g = torch.Generator().manual_seed(11)
    first = run_method(system, "linear", model=model, protocols=p, generator=g, label="linear-interpolation")
    second = run_method(system, "linear", model=model, protocols=p, curve=first.curve, generator=g, label="again")
    ref = torch.Generator().manual_seed(11)
    assert torch.equal(first.paths.frames, _annealed(system, model, first.curve, p, ref).frames)
    assert torch.equal(second.paths.frames, _annealed(system, model, first.curve, p, ref).frames)
    assert not torch.equal(first.paths.frames, second.paths.frames)  # the stream went on
    assert (first.row["method"], second.row["method"]) == ("linear-interpolation", "again")
    # without a generator: a fresh one seeded with seed + 1
    own = run_method(system, "linear", model=model, protocols=p, seed=4)
    assert torch.equal(own.paths.frames,
                       _annealed(system, model, own.curve, p, torch.Generator().manual_seed(5)).frames)


BASELINES = {"md_dt": 1e-4, "kT_high": 20.0, "initial_chains": 16, "initial_max_steps": 20_000,
             "initial_candidates": 1, "shooting_chains": 4, "shooting_rounds": 2, "shooting_max_frames": 1000,
             "shooting_save_every": 1, "fixed_chains": 4, "fixed_frames": 400, "fixed_rounds": 2}


def test_shooting_from_a_reused_initial_path_is_the_same_row(mb):
    """The benchmarks search the initial path once for both shooting rows: reusing it changes nothing."""
    system, _, p = mb
    q = p.replace(extras={**p.extras, "baselines": {**BASELINES, "fixed": True}})
    alone = run_method(system, "two-way-shooting", protocols=q, seed=2)
    init = alone.extra["initial_path"]  # (path, seconds of its search)
    reused = run_method(system, "two-way-shooting", protocols=q, seed=2, initial_path=init)
    assert torch.equal(reused.paths.frames, alone.paths.frames)
    timing = ("wall_s", "cpu_s")
    assert {k: v for k, v in reused.row.items() if k not in timing} == {k: v for k, v in alone.row.items()
                                                                         if k not in timing}
    assert reused.row["wall_s"] >= init[1]  # the reused path's seconds count as if searched again
    assert reused.row["initial_path_energy_evals"] > 0 and reused.row["n_frames"] == 400


# ---------------------------------------------------------------- molecule (OpenMM) baselines
@pytest.fixture(scope="module")
def aldp():
    pytest.importorskip("openmm")
    system = systems.load("alanine-dipeptide", platform="Reference")
    system.prepared_endpoints()  # minimised once per process (the slow part)
    p = system.protocols(quick=True)
    params = {"initial_temperature": 800.0, "relax_trials": 2, "shooting_trials": 2, "shooting_max_frames": 16,
              "shooting_time_s": 60.0, "fixed_frames": 20, "fixed_trials": 2, "fixed_time_s": 60.0,
              "md_budget": 500, "md_time_s": 60.0, "state_a": ("C5", "C7eq"), "state_b": "C7ax"}
    return system, p.replace(extras={**p.extras, "baselines": params})


def test_molecule_unbiased_md_row_counts_its_budget(aldp):
    from tps.systems.molecule_baselines import BASELINE_KEYS

    system, p = aldp
    r = run_method(system, "unbiased-md", protocols=p, seed=0)
    assert r.curve is None and r.row["method"] == "unbiased-md"
    assert set(BASELINE_KEYS["unbiased-md"]) <= set(r.row)
    assert r.row["md_steps"] == r.row["n_energy_evals"] == 500  # 20 frames of 25 steps, all run
    assert r.row["n_transitions"] == 0 and r.row["n_paths"] == 0  # 1 ps at 300 K: no C5 -> C7ax crossing
    assert r.row["evals_per_transition_lower_bound"] == 500


def test_molecule_shooting_row_from_a_given_initial_path(aldp):
    """Shooting from a given initial path (a straight line C5 -> C7ax cut to its transition part): every
    chain state is an A -> B path, and the row has the documented keys and counts every MD step."""
    from tps.baselines import trim_to_transition
    from tps.systems.molecule_baselines import BASELINE_KEYS, _states

    system, p = aldp
    ends = system.prepared_endpoints()
    s = torch.linspace(0, 1, 16, dtype=torch.float64)[:, None, None]
    line = (1 - s) * torch.as_tensor(ends.start) + s * torch.as_tensor(ends.target)
    a, b = _states(system, p.extras["baselines"])
    frames = trim_to_transition(line, a, b)
    init = {"frames": frames, "n_energy_evals": 7, "wall_s": 0.0, "note": "straight line"}
    r = run_method(system, "two-way-shooting", protocols=p, seed=0, initial_path=init)
    assert r.row["method"] == "two-way-shooting-variable" and r.extra["initial_path"] is init
    assert set(BASELINE_KEYS["two-way-shooting"]) <= set(r.row)
    assert r.row["n_trials"] == 2 and r.row["n_energy_evals"] == 7 + r.row["shooting_md_steps"]
    lengths = r.paths.info["lengths"]
    for f, n in zip(r.paths.frames, lengths.tolist()):
        assert bool(a(f[0])) and bool(b(f[n - 1]))
    assert math.isfinite(r.row["max_energy_mean"])
