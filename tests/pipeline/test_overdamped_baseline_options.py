"""Optional numbers of the 2-D MD baselines (tps.pipeline.baselines): burn-in over the rounds actually
run, wall-time caps, the fixed ensemble's seed offset, chains per task, and the energies a system's
rows report (the (phi, psi) system: the raw grid's). Tiny Muller-Brown / (phi, psi) settings."""

import concurrent.futures

import pytest
import torch

from tps import systems
from tps.pipeline import run_method
from tps.potentials.grid import bilinear

torch.set_num_threads(1)

MB = {"md_dt": 1e-4, "kT_high": 20.0, "initial_chains": 16, "initial_max_steps": 20_000, "initial_candidates": 1,
      "shooting_chains": 4, "shooting_rounds": 8, "shooting_max_frames": 1000, "fixed_chains": 4,
      "fixed_frames": 400, "fixed_rounds": 4}
TIMING = ("wall_s", "cpu_s")


@pytest.fixture(scope="module")
def mb():
    system = systems.load("muller-brown")
    first = _run(system, system.protocols(), {}, seed=1)
    return system, system.protocols(), first.extra["initial_path"]


def _run(system, p, changes, *, seed=1, initial=None, executor=None):
    q = p.replace(extras={**p.extras, "baselines": {**MB, **changes}})
    return run_method(system, "two-way-shooting", protocols=q, seed=seed, initial_path=initial, executor=executor)


def _same(a, b):
    assert torch.equal(a.paths.frames, b.paths.frames) and torch.equal(a.paths.energies, b.paths.energies)
    for key in ("round", "chain", "lengths"):
        assert torch.equal(torch.as_tensor(a.paths.info[key]), torch.as_tensor(b.paths.info[key]))
    assert {k: v for k, v in a.row.items() if k not in TIMING} == {k: v for k, v in b.row.items() if k not in TIMING}


def test_burn_in_over_rounds_run_is_the_requested_quarter_when_every_round_ran(mb):
    system, p, init = mb
    by_request = _run(system, p, {}, initial=init)
    by_run = _run(system, p, {"burn_in_of_rounds_run": True}, initial=init)
    _same(by_request, by_run)
    assert by_run.row["burn_in_rounds"] == 2 and int(by_run.paths.info["round"].min()) == 3
    assert by_run.row["n_paths"] == 4 * 6  # 4 chains x rounds 3..8


def test_burn_in_per_task_with_one_task_per_worker(mb):
    system, p, init = mb
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        per_worker = _run(system, p, {"burn_in_of_rounds_run": True, "task_size": "per-worker"}, initial=init,
                          executor=ex)
        two_chains = _run(system, p, {"task_size": 2}, initial=init, executor=ex)
        with pytest.raises(ValueError, match="task_size"):
            _run(system, p, {"task_size": 0}, initial=init, executor=ex)
    # ceil(4 chains / 2 workers) = 2 chains per task; every task ran its 8 rounds
    assert per_worker.row["task_size"] == 2 and per_worker.row["rounds_per_task"] == [8, 8]
    assert per_worker.row["burn_in_rounds"] is None
    assert torch.equal(per_worker.paths.frames, two_chains.paths.frames)
    assert torch.equal(per_worker.paths.info["round"], two_chains.paths.info["round"])


def test_wall_time_cap_stops_after_the_first_round(mb):
    system, p, init = mb
    r = _run(system, p, {"shooting_time_s": 1e-9, "burn_in_of_rounds_run": True}, initial=init)
    assert r.row["n_rounds"] == 1 and r.row["n_trials"] == 4 and r.row["time_limit_s"] == 1e-9
    # fewer than 4 rounds run: no burn-in, every chain's state after its one trial is kept
    assert r.row["n_paths"] == 4 and r.paths.info["round"].tolist() == [1, 1, 1, 1]


def test_fixed_ensemble_seed_is_seed_plus_its_offset(mb):
    system, p, init = mb
    a = _run(system, p, {"fixed": True, "fixed_seed_offset": 5}, seed=1, initial=init)
    b = _run(system, p, {"fixed": True}, seed=3, initial=init)  # default offset 3: the same stream seed 6
    c = _run(system, p, {"fixed": True}, seed=1, initial=init)
    _same(a, b)
    # (fixed-length trials from this initial path are rejected at this size: the stream shows in the outcomes)
    assert a.paths.info["outcomes"] == b.paths.info["outcomes"] != c.paths.info["outcomes"]


def test_phipsi_rows_report_raw_grid_energies():
    """The (phi, psi) system's baseline rows use the raw grid's periodic bilinear energies (its
    ``row_energies``), never the spline the dynamics run on."""
    system = systems.load("alanine-dipeptide-phipsi")
    p = system.protocols()
    params = {"md_dt": 8e-4, "kT_high": 40.0, "initial_chains": 16, "initial_max_steps": 5000,
              "initial_candidates": 1, "shooting_chains": 2, "shooting_rounds": 1, "shooting_max_frames": 3000}
    r = run_method(system, "two-way-shooting", protocols=p.replace(extras={**p.extras, "baselines": params}), seed=0)
    raw = bilinear(system.grid, r.paths.frames)
    assert torch.equal(r.paths.energies, raw)
    spline = system.potential.energy(r.paths.frames.reshape(-1, 2)).reshape(raw.shape)
    assert not torch.allclose(spline.double(), raw.double())  # the two really differ: the test can fail
    init, _ = r.extra["initial_path"]
    assert r.row["initial_path_max_energy"] == float(bilinear(system.grid, init.frames).max())
    n = r.paths.info["lengths"]
    per_path = torch.stack([raw[i, :int(k)].max() for i, k in enumerate(n)])
    assert r.row["max_energy_mean"] == pytest.approx(float(per_path.double().mean()))
