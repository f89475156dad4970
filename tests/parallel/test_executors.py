"""The parallel seam gives the same frames in-process, on 2 LocalCluster workers and on a TCP cluster
(Muller-Brown paths and shooting chains, capped glycine OpenMM paths and MD data); failing tasks are
reported with their index and seed while the others stay on disk; reruns resume from stored tasks."""

import numpy as np
import pytest
import torch
from distributed import Client

from tps.baselines import FixedLengthEnsemble, resample_path, two_way_shooting
from tps.diffusion import alpha_sigma
from tps.parallel import InProcessExecutor, TaskCheckpoint, TaskError, local_client, make_tasks, run_tasks
from tps.parallel.cluster import tcp_cluster
from tps.sampling import annealed_langevin
from tps.sampling.md import md_samples
from tps.sampling.openmm_annealed import openmm_annealed_langevin
from tps.systems import load


@pytest.fixture(scope="module")
def executors():
    """In-process, a 2-process LocalCluster and a 2-worker TCP cluster (dask scheduler + dask worker)."""
    with tcp_cluster(2, wait=False) as (address, _), local_client(2) as local:  # both start at once
        with Client(address, timeout="120s") as tcp:
            tcp.wait_for_workers(2, timeout=120)
            yield {"in-process": InProcessExecutor(), "local-2": local, "tcp-2": tcp}


def _mb_curve(n=20):
    mb = load("muller-brown")
    a, b = mb.endpoints["A"], mb.endpoints["B"]
    lam = torch.full((n,), 8.0, dtype=torch.float64)
    s = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    return mb, alpha_sigma(lam)[0][:, None] * (a + s * (b - a)), lam


def test_muller_brown_paths_and_shooting_identical_on_every_executor(executors):
    mb, curve, lam = _mb_curve()
    ens = FixedLengthEnsemble(mb.states["A"], mb.states["B"], n_frames=7)
    start = resample_path(torch.stack([mb.endpoints["A"], mb.endpoints["B"]]), 7)
    out = {}
    for name, ex in executors.items():
        paths = annealed_langevin(mb.potential, curve, lam, kT=mb.kT, n_paths=40, steps_per_point=5, executor=ex,
                                  seed=3, task_size=16)
        shots = two_way_shooting(mb.potential, ens, start, kT=mb.kT, dt=1e-4, n_chains=6, n_rounds=5, seed=3,
                                 executor=ex, task_size=4)
        out[name] = (paths, shots)
    ref_paths, ref_shots = out["in-process"]
    assert ref_paths.info["n_tasks"] == 3 and ref_shots.info["n_tasks"] == 2
    # tasks draw different noise: the paths of task 0 and task 1 differ
    assert not torch.equal(ref_paths.frames[:16], ref_paths.frames[16:32])
    assert ref_paths.n_energy_evals == 40 * (1 + 20 * 5)
    for name, (paths, shots) in out.items():
        assert torch.equal(paths.frames, ref_paths.frames), name
        assert torch.equal(paths.energies, ref_paths.energies), name
        assert torch.equal(shots.paths.frames, ref_shots.paths.frames), name
        assert shots.n_energy_evals == ref_shots.n_energy_evals and shots.n_accepted == ref_shots.n_accepted
        assert shots.paths.info["chain"].tolist() == ref_shots.paths.info["chain"].tolist()
    assert sorted(set(ref_shots.paths.info["chain"].tolist())) == list(range(6))


def test_glycine_openmm_paths_and_md_data_identical_on_every_executor(executors, glycine_system):
    system, top, c5, c7 = glycine_system
    t = np.linspace(0, 1, 8)[:, None, None]
    centres = (1 - t) * c5[None] + t * c7[None]
    out = {}
    for name, ex in executors.items():
        paths = openmm_annealed_langevin(system, centres, np.full(8, 2000.0), n_paths=5, steps_per_point=10,
                                         x_start=c5, platform="Reference", seed=1, executor=ex, task_size=2)
        data = md_samples(system, top, {"C5": c5, "C7eq": c7}, n_steps=40, report_interval=10, platform="Reference",
                          seed=1, executor=ex)
        out[name] = (paths, data)
    ref_paths, ref_data = out["in-process"]
    assert ref_paths.info["n_tasks"] == 3 and ref_paths.frames.shape == (5, 9, 19, 3)
    assert np.isfinite(ref_paths.energies.numpy()).all()
    for name, (paths, data) in out.items():
        assert torch.equal(paths.frames, ref_paths.frames), name
        assert torch.equal(paths.energies, ref_paths.energies), name
        assert np.array_equal(data.positions, ref_data.positions), name
    # MD data keeps the per-start seeds of the historical path: executor=None gives the same frames
    none = md_samples(system, top, {"C5": c5, "C7eq": c7}, n_steps=40, report_interval=10, platform="Reference",
                      seed=1)
    assert np.array_equal(none.positions, ref_data.positions)


def _draw(shared, task):
    return task.rng().normal(size=task.size) * shared


def _draw_failing(shared, task):
    if task.index == 2:
        raise FloatingPointError("NaN energy at step 17")
    return _draw(shared, task)


def test_failing_task_names_index_seed_and_cause_and_keeps_the_others(tmp_path):
    tasks = make_tasks(10, task_size=2, seed=5)
    ck = TaskCheckpoint(tmp_path / "tasks", "job-1")
    with pytest.raises(TaskError) as err:
        run_tasks(_draw_failing, tasks, shared=2.0, executor=InProcessExecutor(), checkpoint=ck)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"task 2 (seed {tasks[2].seed}" in msg and "FloatingPointError: NaN energy at step 17" in msg
    assert "4 of 5 tasks completed" in msg
    stored = sorted(p.name for p in (tmp_path / "tasks").glob("task-*.pkl"))
    assert stored == [f"task-{i:05d}.pkl" for i in (0, 1, 3, 4)]
    # the rerun computes only the missing task and gives what an uninterrupted run gives
    calls = []

    def counting(shared, task):
        calls.append(task.index)
        return _draw(shared, task)

    resumed = run_tasks(counting, tasks, shared=2.0, checkpoint=ck)
    assert calls == [2]
    fresh = run_tasks(_draw, tasks, shared=2.0)
    assert all(np.array_equal(a, b) for a, b in zip(resumed, fresh))
    # results stored under another key (other settings) are never reused
    calls.clear()
    run_tasks(counting, tasks, shared=2.0, checkpoint=TaskCheckpoint(tmp_path / "tasks", "job-2"))
    assert calls == list(range(5))


def test_openmm_paths_resume_from_stored_tasks(tmp_path, glycine_system):
    system, _, c5, c7 = glycine_system
    t = np.linspace(0, 1, 6)[:, None, None]
    centres = (1 - t) * c5[None] + t * c7[None]
    kw = dict(n_paths=4, steps_per_point=6, x_start=c5, platform="Reference", seed=2, executor=InProcessExecutor(),
              task_size=1)
    first = openmm_annealed_langevin(system, centres, np.full(6, 1000.0), checkpoint=tmp_path / "ck", **kw)
    assert len(list((tmp_path / "ck").glob("task-*.pkl"))) == 4
    (tmp_path / "ck" / "task-00002.pkl").unlink()  # as if the client died before task 2 came back
    again = openmm_annealed_langevin(system, centres, np.full(6, 1000.0), checkpoint=tmp_path / "ck", **kw)
    assert torch.equal(first.frames, again.frames)
    # other stiffness: stored tasks of the first run are discarded, not reused
    other = openmm_annealed_langevin(system, centres, np.full(6, 3000.0), checkpoint=tmp_path / "ck", **kw)
    assert not torch.equal(first.frames[:, 1:], other.frames[:, 1:])


def test_task_split_does_not_depend_on_worker_count():
    a = make_tasks(9, task_size=4, seed=11)
    assert [(t.start, t.stop) for t in a] == [(0, 4), (4, 8), (8, 9)]
    assert len({t.seed for t in a}) == 3
    assert [t.seed for t in make_tasks(20, task_size=4, seed=11)][:3] == [t.seed for t in a]
    with pytest.raises(ValueError, match="task_size"):
        make_tasks(9, task_size=0, seed=0)


def test_openmm_shooting_and_unbiased_chains_identical_on_every_executor(executors):
    from benchmarks.scaling import QUICK, _aldp, shooting_start
    from tps.baselines.chains import openmm_shooting_chains, openmm_unbiased_chains

    from tps.systems import alanine_dipeptide as aldp

    system, c5, _, a, b = _aldp()
    path, _, _ = shooting_start(QUICK, 1)
    states = aldp.load().states
    md = dict(save_every=10, platform="Reference")
    out = {}
    for name, ex in executors.items():
        shots = openmm_shooting_chains(system, path, n_chains=3, seed=2, executor=ex, n_trials=3, ensemble="fixed",
                                       state_a=a, state_b=b, **md)
        # C5 -> C7eq at 600 K: a few transitions per 1000 steps
        runs = openmm_unbiased_chains(system, c5, n_chains=2, seed=2, executor=ex, n_steps_budget=1000,
                                      state_a=states["C5"], state_b=states["C7eq"], temperature=600.0, **md)
        out[name] = (shots, runs)
    ref_shots, ref_runs = out["in-process"]
    assert [r.n_trials for r in ref_shots] == [3, 3, 3] and all(r.n_energy_evals > 0 for r in ref_shots)
    # chains have their own streams: other shooting points and trial lengths
    assert len({tuple(r.info["trial_md_steps"]) for r in ref_shots}) > 1
    assert sum(r.n_transitions for r in ref_runs) >= 1
    # executor=None runs the same tasks in this process: the same chains
    none = openmm_shooting_chains(system, path, n_chains=3, seed=2, n_trials=3, ensemble="fixed", state_a=a,
                                  state_b=b, **md)
    for name, (shots, runs) in list(out.items()) + [("none", (none, ref_runs))]:
        for r, e in zip(shots, ref_shots):
            assert torch.equal(r.paths.frames, e.paths.frames), name
            assert r.n_energy_evals == e.n_energy_evals and r.n_accepted == e.n_accepted, name
            assert r.info["trial_md_steps"] == e.info["trial_md_steps"], name
        for r, e in zip(runs, ref_runs):
            assert r.n_energy_evals == e.n_energy_evals == 1000, name
            assert r.info["first_passage_steps"] == e.info["first_passage_steps"], name
            assert (r.paths is None) == (e.paths is None), name   # a chain without a transition has no path
            if e.paths is not None:
                assert torch.equal(r.paths.frames, e.paths.frames), name
