"""One execution seam for every parallel stage: executors, tasks, per-task seeds, checkpoints.

``executor=None`` keeps a stage's historical single-process path (same random stream). Any
``concurrent.futures.Executor`` or ``dask.distributed.Client`` runs the stage as tasks of a
fixed size, each with the random stream of ``(seed, task index)``, assembled in task order:
bit-identical results for every executor, worker count and completion order.

- :mod:`tps.parallel.executors`: :class:`InProcessExecutor`, :class:`ExecutorSpec`
  (``--workers N`` / ``--scheduler tcp://HOST:PORT``), :func:`open_executor`, :func:`local_client`.
- :mod:`tps.parallel.tasks`: :func:`make_tasks`, :func:`run_tasks`, :class:`TaskCheckpoint`, :func:`as_checkpoint`,
  :func:`worker_cache`, :class:`TaskError`.
"""

from tps.parallel.executors import (
    ExecutorSpec, InProcessExecutor, is_dask_client, local_client, n_workers, open_executor, parse_scheduler_address,
)
from tps.parallel.tasks import (
    Task, TaskCheckpoint, TaskError, as_checkpoint, fingerprint, make_tasks, run_tasks, task_rng, task_seed,
    worker_cache,
)

__all__ = ["ExecutorSpec", "InProcessExecutor", "is_dask_client", "local_client", "n_workers", "open_executor",
           "parse_scheduler_address", "Task", "TaskCheckpoint", "TaskError", "as_checkpoint", "fingerprint",
           "make_tasks", "run_tasks", "task_rng", "task_seed", "worker_cache"]
