"""Where tasks run: in-process, any ``concurrent.futures.Executor``, or a Dask cluster.

Every parallel stage of ``tps`` takes ``executor=``:

- ``None`` (default): the historical single-process code path, unchanged (same random stream);
- any :class:`concurrent.futures.Executor` (e.g. :class:`InProcessExecutor`, a
  ``ProcessPoolExecutor``);
- a :class:`dask.distributed.Client` (a ``LocalCluster``, a TCP scheduler, ``dask-jobqueue``).

With an executor the work is cut into tasks of a fixed size whose random streams come from
``(seed, task index)`` (:mod:`tps.parallel.tasks`), so every executor, worker count and
completion order gives bit-identical results.

:func:`open_executor` turns the command-line choice (``--workers N`` / ``--scheduler
tcp://HOST:PORT``, :class:`ExecutorSpec`) into an executor for the duration of a ``with`` block.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

__all__ = ["InProcessExecutor", "ExecutorSpec", "open_executor", "local_client", "is_dask_client",
           "parse_scheduler_address", "n_workers"]

_ADDRESS = re.compile(r"^tcp://(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.\-]+):(?P<port>[0-9]{1,5})$")


class InProcessExecutor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` that runs each call at once, in the calling thread.

    Useful to run the task split of a parallel stage without any worker: its results are
    bit-identical to those of a Dask cluster running the same tasks.

    Examples
    --------
    >>> ex = InProcessExecutor()
    >>> ex.submit(pow, 2, 10).result()
    1024
    >>> ex.submit(int, "x").exception()
    ValueError("invalid literal for int() with base 10: 'x'")
    """

    def submit(self, fn, /, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # KeyboardInterrupt propagates
            future.set_exception(exc)
        return future


def is_dask_client(executor) -> bool:
    """True if ``executor`` is a :class:`dask.distributed.Client` (without importing dask otherwise)."""
    mod = type(executor).__module__ or ""
    if not mod.startswith("distributed"):
        return False
    from distributed import Client

    return isinstance(executor, Client)


def n_workers(executor) -> int:
    """Workers behind ``executor`` now: 1 for None or :class:`InProcessExecutor`, the cluster's worker
    count for a Dask client, ``max_workers`` of a pool (1 when unknown).

    Examples
    --------
    >>> import concurrent.futures
    >>> n_workers(None), n_workers(concurrent.futures.ThreadPoolExecutor(3))
    (1, 3)
    """
    if executor is None or isinstance(executor, InProcessExecutor):
        return 1
    if is_dask_client(executor):
        return max(1, len(executor.scheduler_info().get("workers", {})))
    return max(1, int(getattr(executor, "_max_workers", 1) or 1))


def parse_scheduler_address(address: str) -> tuple:
    """``"tcp://HOST:PORT"`` -> ``(host, port)``.

    Raises
    ------
    ValueError
        Naming ``scheduler`` and the expected form.

    Examples
    --------
    >>> parse_scheduler_address("tcp://127.0.0.1:8786")
    ('127.0.0.1', 8786)
    >>> parse_scheduler_address("127.0.0.1")
    Traceback (most recent call last):
        ...
    ValueError: scheduler: expected an address tcp://HOST:PORT, got '127.0.0.1'
    """
    m = _ADDRESS.match(str(address).strip())
    port = int(m.group("port")) if m else 0
    if m is None or not 0 < port < 65536:
        raise ValueError(f"scheduler: expected an address tcp://HOST:PORT, got {address!r}")
    return m.group("host").strip("[]"), port


@dataclass(frozen=True)
class ExecutorSpec:
    """Where to run: ``workers`` local processes or an existing ``scheduler`` (not both).

    Attributes
    ----------
    workers : int, optional
        ``None`` or 1: in-process (the historical code path); ``N >= 2``: a ``LocalCluster`` of
        ``N`` single-threaded worker processes.
    scheduler : str, optional
        Address ``tcp://HOST:PORT`` of a running Dask scheduler.

    Examples
    --------
    >>> ExecutorSpec(workers=2).in_process, ExecutorSpec().in_process
    (False, True)
    >>> ExecutorSpec(workers=0)
    Traceback (most recent call last):
        ...
    ValueError: workers: expected a positive integer, got 0
    >>> ExecutorSpec(workers=2, scheduler="tcp://127.0.0.1:8786")
    Traceback (most recent call last):
        ...
    ValueError: workers, scheduler: give --workers N or --scheduler tcp://HOST:PORT, not both
    """

    workers: Optional[int] = None
    scheduler: Optional[str] = None

    def __post_init__(self):
        w = self.workers
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 1):
            raise ValueError(f"workers: expected a positive integer, got {w!r}")
        if self.scheduler is not None:
            if w is not None:
                raise ValueError("workers, scheduler: give --workers N or --scheduler tcp://HOST:PORT, not both")
            parse_scheduler_address(self.scheduler)

    @property
    def in_process(self) -> bool:
        return self.scheduler is None and (self.workers is None or self.workers == 1)

    def describe(self) -> dict:
        """JSON-ready description for ``results.json``."""
        if self.scheduler is not None:
            return {"executor": "dask-scheduler", "scheduler": self.scheduler}
        if self.in_process:
            return {"executor": "in-process", "n_workers": 1}
        return {"executor": "dask-local-cluster", "n_workers": self.workers}


def check_scheduler_reachable(address: str, *, timeout: float = 5.0) -> None:
    """Open (and close) a TCP connection to ``address``; ``ValueError`` naming it if that fails."""
    host, port = parse_scheduler_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ValueError(f"scheduler: no Dask scheduler reachable at {address} ({exc.strerror or exc}); start one "
                         "with 'dask scheduler' or check the address") from None


@contextmanager
def local_client(n_workers: int, *, host: str = "127.0.0.1"):
    """A ``dask.distributed.Client`` on a ``LocalCluster`` of ``n_workers`` single-threaded processes.

    Both are closed when the block ends. Workers are separate processes (one OpenMM context or
    torch model each); the dashboard is off.
    """
    from distributed import Client, LocalCluster

    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers: expected a positive integer, got {n_workers!r}")
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host=host,
                           dashboard_address=":0", scheduler_kwargs={"dashboard": False},
                           silence_logs=logging.ERROR)
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@contextmanager
def open_executor(spec: Optional[ExecutorSpec] = None, *, timeout: float = 10.0):
    """Yield the executor of ``spec`` (None for in-process), closing what was opened at the end.

    Parameters
    ----------
    spec : ExecutorSpec, optional
        None, ``workers`` in (None, 1): yields None (in-process, the historical path).
    timeout : float
        Seconds to wait for a scheduler to answer.

    Raises
    ------
    ValueError
        ``scheduler: no Dask scheduler reachable at ...`` before anything runs.

    Examples
    --------
    >>> with open_executor(ExecutorSpec(workers=1)) as ex:
    ...     print(ex)
    None
    """
    spec = spec if spec is not None else ExecutorSpec()
    if spec.in_process:
        yield None
        return
    if spec.scheduler is not None:
        check_scheduler_reachable(spec.scheduler, timeout=min(timeout, 5.0))
        from distributed import Client

        try:
            client = Client(spec.scheduler, timeout=f"{float(timeout)}s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"scheduler: no Dask scheduler answered at {spec.scheduler} ({exc}); start one with "
                             "'dask scheduler' or check the address") from None
        try:
            yield client
        finally:
            client.close()
        return
    with local_client(spec.workers) as client:
        yield client
