"""Tasks: a fixed split of the work, a random stream per task, results in task order, on disk.

A parallel stage cuts ``n_items`` (paths, chains, MD starts) into tasks of ``task_size`` items
(:func:`make_tasks`; the size never depends on the number of workers). Task ``i`` draws its
random numbers from ``numpy.random.SeedSequence(seed, spawn_key=(i,))`` (the ``i``-th child of
``SeedSequence(seed).spawn``), so its result depends on ``(seed, i)`` and its items only.
:func:`run_tasks` submits ``fn(shared, task)`` for every task to an executor, optionally stores
each completed result in a checkpoint directory (atomic writes; a rerun skips the tasks found
there) and returns the results in task order. A task that raises fails the run with one line
naming the task, its seed and the cause, after the other tasks have finished and been stored.

Workers keep expensive objects (an OpenMM context, a deserialised system) between tasks with
:func:`worker_cache`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from tps.parallel.executors import InProcessExecutor, is_dask_client  # noqa: F401  (InProcessExecutor: doctests)

__all__ = ["Task", "TaskError", "TaskCheckpoint", "as_checkpoint", "make_tasks", "task_seed", "task_rng",
           "fingerprint", "run_tasks", "worker_cache"]

_SEED_MAX = 2**31 - 1  # OpenMM and torch both accept seeds in [1, 2^31 - 1)


@dataclass(frozen=True)
class Task:
    """One task: items ``[start, stop)`` of the stage, its index and its seed.

    Attributes
    ----------
    index : int
        Position in the task list (results are assembled in this order).
    start, stop : int
        Items of this task (paths, chains, MD starts).
    seed : int
        The task's seed in ``[1, 2^31 - 1)``, from ``(stage seed, index)`` (:func:`task_seed`).
    stage_seed : int
        The seed of the whole stage.
    """

    index: int
    start: int
    stop: int
    seed: int
    stage_seed: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    def rng(self) -> np.random.Generator:
        """The task's numpy generator (``SeedSequence(stage_seed, spawn_key=(index,))``)."""
        return task_rng(self.stage_seed, self.index)


def task_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of task ``index`` of a stage seeded with ``seed`` (child ``index`` of ``SeedSequence(seed)``).

    Examples
    --------
    >>> import numpy as np
    >>> a = task_rng(7, 3).random()
    >>> b = np.random.default_rng(np.random.SeedSequence(7).spawn(4)[3]).random()
    >>> a == b
    True
    """
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def task_seed(seed: int, index: int) -> int:
    """An integer seed in ``[1, 2^31 - 1)`` for task ``index`` (for OpenMM integrators, torch generators).

    Examples
    --------
    >>> task_seed(0, 0) == task_seed(0, 0), task_seed(0, 0) != task_seed(0, 1)
    (True, True)
    """
    return int(task_rng(seed, index).integers(1, _SEED_MAX))


def make_tasks(n_items: int, *, task_size: int, seed: int) -> list:
    """Cut ``n_items`` into consecutive tasks of ``task_size`` items (the last may be smaller).

    Examples
    --------
    >>> [(t.index, t.start, t.stop) for t in make_tasks(10, task_size=4, seed=0)]
    [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    """
    for name, v in (("n_items", n_items), ("task_size", task_size)):
        if isinstance(v, bool) or int(v) != v or int(v) < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    n_items, task_size = int(n_items), int(task_size)
    return [Task(i, s, min(s + task_size, n_items), task_seed(seed, i), int(seed))
            for i, s in enumerate(range(0, n_items, task_size))]


def _feed(h, obj) -> None:
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        h.update(repr((type(obj).__name__, obj)).encode())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(f"[{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    elif hasattr(obj, "detach") and hasattr(obj, "numpy"):  # torch tensor
        _feed(h, obj.detach().cpu().numpy())
    elif isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        a = np.ascontiguousarray(obj)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    else:
        h.update(pickle.dumps(obj, protocol=4))


def fingerprint(obj) -> str:
    """SHA-256 (hex) of nested dicts / lists / arrays / tensors / scalars (other objects: their pickle).

    Examples
    --------
    >>> import numpy as np
    >>> fingerprint({"a": np.zeros(3), "n": 2}) == fingerprint({"n": 2, "a": np.zeros(3)})
    True
    >>> fingerprint([1.0]) == fingerprint([1])
    False
    """
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


_local = threading.local()

#: Held by every OpenMM task while it runs: OpenMM's Reference platform draws its random numbers
#: from one process-wide generator, so two threads of one worker would interleave their streams.
OPENMM_LOCK = threading.RLock()


def worker_cache(key, factory: Callable, *, max_entries: int = 4):
    """``factory()`` built once per worker thread and ``key``, then reused (least recently used evicted).

    Parameters
    ----------
    key : hashable
        Identifies what is built (e.g. ``("openmm-context", fingerprint(system_xml), platform)``).
    factory : callable
        Builds the object; called only on a cache miss.
    max_entries : int
        Objects kept per thread.

    Examples
    --------
    >>> calls = []
    >>> def build():
    ...     calls.append(1)
    ...     return object()
    >>> worker_cache("doc-example", build) is worker_cache("doc-example", build), len(calls)
    (True, 1)
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = factory()
    cache[key] = value
    while len(cache) > max_entries:
        cache.popitem(last=False)
    return value


class TaskError(RuntimeError):
    """A task raised: the message names the task, its seed and the cause (one line)."""


class TaskCheckpoint:
    """Completed task results of one stage in ``directory`` (``task-00000.pkl``, ... + ``manifest.json``).

    ``key`` identifies the stage (settings, inputs, seed, task size): results stored under
    another key are discarded, so a rerun with other settings never reuses them. Every file is
    written atomically.

    Parameters
    ----------
    directory : path
    key : str
        E.g. :func:`fingerprint` of everything the results depend on.
    """

    def __init__(self, directory, key: str):
        self.directory = Path(directory)
        self.key = str(key)

    def _file(self, index: int) -> Path:
        return self.directory / f"task-{int(index):05d}.pkl"

    def load(self, n_tasks: int) -> dict:
        """``{index: result}`` of the tasks stored under this key (stale files are removed)."""
        manifest = self.directory / "manifest.json"
        try:
            stored = json.loads(manifest.read_text()).get("key")
        except (OSError, ValueError, AttributeError):
            stored = None
        if stored != self.key:
            for f in self.directory.glob("task-*.pkl"):
                f.unlink()
            return {}
        done = {}
        for i in range(n_tasks):
            f = self._file(i)
            if f.is_file():
                try:
                    with open(f, "rb") as fh:
                        done[i] = pickle.load(fh)
                except Exception:  # unreadable: recompute
                    f.unlink()
        return done

    def start(self, n_tasks: int) -> None:
        from tps.io.atomic import write_json

        write_json(self.directory / "manifest.json", {"format": "tps-tasks/1", "key": self.key, "n_tasks": n_tasks})

    def save(self, index: int, result) -> None:
        from tps.io.atomic import atomic_path

        with atomic_path(self._file(index)) as tmp:
            with open(tmp, "wb") as fh:
                pickle.dump(result, fh, protocol=4)

    def clear(self) -> None:
        """Remove the stored results and the manifest (after the stage's outputs are written)."""
        for f in list(self.directory.glob("task-*.pkl")) + [self.directory / "manifest.json"]:
            if f.is_file():
                f.unlink()
        try:
            self.directory.rmdir()
        except OSError:
            pass


def as_checkpoint(checkpoint, inputs) -> Optional[TaskCheckpoint]:
    """The ``checkpoint=`` argument of a stage as a :class:`TaskCheckpoint` (or None).

    None and a :class:`TaskCheckpoint` are returned as they are; a directory gets the key
    ``fingerprint(inputs)`` (everything the stage's results depend on).

    Examples
    --------
    >>> as_checkpoint(None, (1, 2)) is None
    True
    >>> as_checkpoint("ckpt", (1, 2)).key == fingerprint((1, 2))
    True
    """
    if checkpoint is None or isinstance(checkpoint, TaskCheckpoint):
        return checkpoint
    return TaskCheckpoint(checkpoint, fingerprint(inputs))


def _oneline(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_tasks(fn: Callable, tasks: Sequence[Task], *, shared=None, executor=None,
              checkpoint: Optional[TaskCheckpoint] = None, progress: bool = False, desc: str = "tasks") -> list:
    """Run ``fn(shared, task)`` for every task on ``executor``; results in task order.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name), ``fn(shared, task) -> result``
        (picklable).
    tasks : sequence of Task
    shared : object, optional
        Passed to every call (shipped with each task; keep it small: the stage's inputs).
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        None runs the tasks one after the other in this process.
    checkpoint : TaskCheckpoint, optional
        Completed results are stored there as they arrive; tasks found there are not rerun.
    progress : bool
        A progress bar of completed tasks.
    desc : str
        Label of the progress bar and of errors.

    Returns
    -------
    list
        ``[result of tasks[0], result of tasks[1], ...]``.

    Raises
    ------
    TaskError
        ``"<desc>: task 3 (seed 12345) failed: ValueError: ...; 7 other tasks completed ..."``,
        raised after every other task has finished (and been stored).

    Examples
    --------
    >>> def draw(shared, task):
    ...     return task.rng().integers(0, shared, size=task.size).tolist()
    >>> tasks = make_tasks(5, task_size=2, seed=1)
    >>> run_tasks(draw, tasks, shared=100) == run_tasks(draw, tasks, shared=100, executor=InProcessExecutor())
    True
    """
    tasks = list(tasks)
    results = {}
    if checkpoint is not None:
        results = checkpoint.load(len(tasks))
        checkpoint.start(len(tasks))
    todo = [t for t in tasks if t.index not in results]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, unit="task", leave=False,
                   disable=None)
    failures = []

    def done(task, value=None, exc=None):
        if exc is not None:
            failures.append((task, exc))
        else:
            results[task.index] = value
            if checkpoint is not None:
                checkpoint.save(task.index, value)
        if bar is not None:
            bar.update(1)

    try:
        if executor is None:
            for t in todo:
                try:
                    value = fn(shared, t)
                except Exception as exc:
                    done(t, exc=exc)
                else:
                    done(t, value)
        elif is_dask_client(executor):
            from distributed import as_completed

            futures = {executor.submit(fn, shared, t, pure=False): t for t in todo}
            for fut in as_completed(list(futures)):
                t = futures[fut]
                exc = fut.exception()
                done(t, None if exc is not None else fut.result(), exc)
        else:
            futures = {executor.submit(fn, shared, t): t for t in todo}
            for fut in concurrent.futures.as_completed(futures):
                t = futures[fut]
                exc = fut.exception()
                done(t, None if exc is not None else fut.result(), exc)
    finally:
        if bar is not None:
            bar.close()
    if failures:
        task, exc = min(failures, key=lambda f: f[0].index)
        where = f"; kept in {checkpoint.directory}" if checkpoint is not None else ""
        raise TaskError(f"{desc}: task {task.index} (seed {task.seed}, items {task.start}-{task.stop - 1}) failed: "
                        f"{_oneline(exc)}; {len(results)} of {len(tasks)} tasks completed{where}") from exc
    return [results[t.index] for t in tasks]

