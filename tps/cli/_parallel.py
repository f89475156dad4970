"""``--workers N`` / ``--scheduler tcp://HOST:PORT``: where ``tps run`` and ``tps sample`` sample paths."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

from tps.cli._common import UserError, _err


def add_executor_options(parser) -> None:
    """Add ``--workers`` and ``--scheduler`` (also config keys ``workers`` / ``scheduler``)."""
    from tps.cli import _positive_int

    parser.add_argument("--workers", type=_positive_int, metavar="N",
                        help="sample on a local Dask cluster of N worker processes (default 1: in this process, "
                             "the historical random stream; N >= 2 cuts the paths into tasks with their own random "
                             "streams, identical for every N and scheduler)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                        help="sample on an existing Dask cluster (started with 'dask scheduler' / 'dask worker' or "
                             "dask-jobqueue); same results as --workers N >= 2")


def executor_spec(args):
    """The :class:`tps.parallel.ExecutorSpec` of ``args``; one-line user errors."""
    from tps.parallel import ExecutorSpec

    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is not None and scheduler is not None:
        raise _err("--workers and --scheduler: give one of them, not both",
                   "use --workers N for a local cluster or --scheduler tcp://HOST:PORT for an existing one")
    try:
        return ExecutorSpec(workers=workers, scheduler=scheduler)
    except ValueError as exc:
        raise _err(f"--scheduler {scheduler}: expected an address tcp://HOST:PORT" if scheduler is not None
                   else str(exc), "e.g. --scheduler tcp://127.0.0.1:8786") from None


@contextmanager
def cli_executor(args):
    """Open the executor of ``args`` before anything is written (unreachable scheduler: one line, exit 2)."""
    from tps.parallel import open_executor

    spec = executor_spec(args)
    with ExitStack() as stack:  # only opening is translated, not errors of the command body
        try:
            executor = stack.enter_context(open_executor(spec))
        except ValueError as exc:  # "scheduler: no Dask scheduler reachable at ... (...); start one with ..."
            raise UserError(f"--{exc}") from None
        yield executor, spec


def parallel_key(spec):
    """Part of a stage key: None in-process (keys as before), else the task split's identity."""
    return None if spec.in_process else "tasks/1"
