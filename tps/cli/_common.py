"""Shared pieces of the ``tps`` command: one-line user errors, output helpers, the system names."""

from __future__ import annotations

import datetime as _dt
import os
import sys
from collections.abc import Mapping

from tps.pipeline.errors import InputError


def _system_names() -> tuple:
    from tps.systems import available

    return tuple(available())


#: System names of the CLI: the registered systems (:func:`tps.systems.available`).
SYSTEMS = _system_names()


class _Descriptions(Mapping):
    """System name -> one-line description (:func:`tps.systems.describe`), read on first use."""

    def __init__(self):
        self._cache = {}

    def __getitem__(self, name):
        if name not in SYSTEMS:
            raise KeyError(name)
        if name not in self._cache:
            from tps.systems import describe

            self._cache[name] = describe(name)
        return self._cache[name]

    def __iter__(self):
        return iter(SYSTEMS)

    def __len__(self):
        return len(SYSTEMS)


DESCRIPTIONS = _Descriptions()
#: Bundled system (tps.systems) behind each CLI system name.
BASE_SYSTEM = {"muller-brown": "muller-brown", "alanine-dipeptide": "alanine-dipeptide",
               "alanine-dipeptide-phipsi": "alanine-dipeptide"}


class UserError(Exception):
    """A mistake of the user: printed as one line ``tps: error: <message>``, exit status 2."""


def _user_errors() -> tuple:
    """Exception types whose message is ``<problem>; <fix>`` and that mean a mistake of the user:
    :class:`UserError`, the pipeline's :class:`~tps.pipeline.errors.InputError` and a system's
    refusal of what to avoid."""
    types = [UserError, InputError]
    try:
        from tps.systems.base import InputError as SystemInputError  # incl. a molecule's AvoidInputError

        types.append(SystemInputError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def _err(problem: str, fix: str) -> UserError:
    return UserError(f"{problem}; {fix}")


def _threads():
    import torch

    torch.set_num_threads(1)  # small tensors: extra threads only add contention on shared cores
    return torch


def _version() -> str:
    import tps

    return tps.__version__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _say(args, *msg):
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr, flush=True)


def _progress(args) -> bool:
    return not getattr(args, "quiet", False)


def _jsonable(obj):
    """JSON-ready record values (:func:`tps.pipeline.jsonable.jsonable`, the run records' convention)."""
    from tps.pipeline.jsonable import jsonable

    return jsonable(obj)


def _versions() -> dict:
    import platform

    import torch

    v = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import openmm

        v["openmm"] = openmm.__version__
    except Exception:  # pragma: no cover
        pass
    return v


def _device(spec: str) -> str:
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and not torch.cuda.is_available():
        raise _err("--device cuda: no CUDA device is available", "use --device cpu or --device auto")
    return spec


def _file_digest(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _silence_c_output:
    """Redirect the process's stdout and stderr file descriptors to /dev/null (the DCD reader's C
    plugin prints two lines per file); Python-level output is flushed first and restored after."""

    def __enter__(self):
        self.saved = []
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            null = os.open(os.devnull, os.O_WRONLY)
            for fd in (1, 2):
                self.saved.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            os.close(null)
        except (OSError, ValueError, AttributeError):  # no real descriptors (e.g. embedded): leave as is
            self.__exit__()
            self.saved = []
        return self

    def __exit__(self, *exc):
        for fd, saved in self.saved:
            os.dup2(saved, fd)
            os.close(saved)
        self.saved = []
        return False


def _oneline(exc) -> str:
    return " ".join(str(exc).split())
