"""A real cluster: ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; ``tps sample
--scheduler`` runs while one worker is killed with SIGKILL; the paths equal the in-process ones.
Every process started here is stopped at the end, also when the test fails."""

import os
import signal
import subprocess
import sys
import time

import torch
from distributed import Client

from tps.cli import build_parser
from tps.cli._stages import load_curve, load_system, run_protocols, with_points
from tps.io import load_paths
from tps.parallel import InProcessExecutor
from tps.pipeline import run_method
from tps.parallel.cluster import tcp_cluster

ARGS = ["--paths", "768", "--save-paths", "768", "--steps-per-point", "40", "--seed", "4", "--quiet"]


def _busy_workers(client) -> set:
    return {w for w, keys in client.processing().items() if keys}


def test_worker_killed_mid_run_gives_the_in_process_paths(tmp_path, mb_curve):
    out = tmp_path / "run"
    with tcp_cluster(2, log_dir=tmp_path / "logs") as (address, workers):
        cmd = [sys.executable, "-m", "tps.cli", "sample", "muller-brown", "--curve", str(mb_curve), "--out", str(out),
               "--scheduler", address, *ARGS]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with Client(address, timeout="60s") as client:
                victim = client.scheduler_info()["workers"]
                name_of = {addr: w["name"] for addr, w in victim.items()}
                deadline = time.monotonic() + 180
                while len(_busy_workers(client)) < 2 and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                busy = _busy_workers(client)
                running_at_kill = proc.poll() is None
                os.kill(workers[1].pid, signal.SIGKILL)  # worker-1 dies with tasks in flight
                workers[1].wait(timeout=10)
                worker1_was_busy = any(name_of.get(a) == "worker-1" for a in busy)
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert running_at_kill and worker1_was_busy, "the kill must hit a worker with tasks of a running job"
    assert proc.returncode == 0, stderr
    saved = load_paths(out / "paths.npz")
    args = build_parser().parse_args(["sample", "muller-brown", "--curve", str(mb_curve), "--out", str(out), *ARGS])
    system = load_system("muller-brown")
    curve = load_curve(mb_curve, "muller-brown")
    expected = run_method(system, curve=curve, protocols=with_points(run_protocols(system, args), curve), seed=4,
                          executor=InProcessExecutor()).paths
    assert expected.info["n_tasks"] == 6
    assert torch.equal(saved.frames, expected.frames)
    assert torch.equal(saved.energies, expected.energies)
