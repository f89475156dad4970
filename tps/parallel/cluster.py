"""A throw-away Dask TCP cluster on 127.0.0.1: ``dask scheduler`` plus ``dask worker`` processes.

For tests, benchmarks and trying ``--scheduler`` locally; on a real cluster start the scheduler
and workers yourself (or with ``dask-jobqueue``, see the README).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

__all__ = ["tcp_cluster"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds (workers first, the scheduler last)."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextmanager
def tcp_cluster(n_workers: int = 2, *, log_dir: Optional[Path] = None, nanny: bool = False, timeout: float = 120.0,
                wait: bool = True):
    """Start ``dask scheduler`` and ``n_workers`` single-threaded ``dask worker`` processes on 127.0.0.1.

    Yields ``(address, worker_processes)``: ``"tcp://127.0.0.1:PORT"`` (for ``--scheduler``) and
    the ``subprocess.Popen`` of each worker (e.g. to kill one). Every process is stopped when the
    block ends, also on errors.

    Parameters
    ----------
    n_workers : int
    log_dir : path, optional
        Where ``scheduler.log`` and ``worker<i>.log`` go (default: discarded).
    nanny : bool
        Run workers under a nanny (which restarts a killed worker); default False.
    timeout : float
        Seconds to wait for every worker to connect.
    wait : bool
        Wait for the workers before yielding (default); False: the caller waits (e.g.
        ``Client(address).wait_for_workers(n)``) and can start other things meanwhile.
    """
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    procs, logs = [], []

    def out(name):
        if log_dir is None:
            return subprocess.DEVNULL
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        logs.append(open(Path(log_dir) / name, "w"))
        return logs[-1]

    try:
        procs.append(subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                              "--no-dashboard", "--dashboard-address", ":0"],
                                      stdout=out("scheduler.log"), stderr=subprocess.STDOUT))
        workers = []
        for i in range(n_workers):
            workers.append(subprocess.Popen(
                dask + ["worker", address, "--nthreads", "1", "--nanny" if nanny else "--no-nanny", "--no-dashboard",
                        "--host", "127.0.0.1", "--name", f"worker-{i}"],
                stdout=out(f"worker{i}.log"), stderr=subprocess.STDOUT))
            procs.append(workers[-1])
        if wait:
            with Client(address, timeout=f"{timeout}s") as client:
                client.wait_for_workers(n_workers, timeout=timeout)
        yield address, workers
    finally:
        _stop(procs)
        for log in logs:
            log.close()
