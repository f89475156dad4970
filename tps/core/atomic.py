"""Atomic file output: a run that fails or is interrupted never leaves a half-written file.

The writers live in the lowest layer so that :class:`tps.core.paths.Paths` can save itself;
:mod:`tps.io` re-exports them (``from tps.io import atomic_path``), which is where callers find them.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path, *, suffix: str | None = None):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary file lives in the same directory so that ``os.replace`` is atomic.
    If the block raises (including ``KeyboardInterrupt``), the temporary file is removed
    and any existing ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        Destination; parent folders are created.
    suffix : str, optional
        Suffix of the temporary file (default: that of ``path``), for writers that pick the
        format from the extension (``numpy.savez`` appends ``.npz`` otherwise).

    Examples
    --------
    >>> import tempfile, os
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_path(os.path.join(d, "out.txt")) as tmp:
    ...         _ = Path(tmp).write_text("done")
    ...     sorted(os.listdir(d))
    ['out.txt']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file 0600; give it the permissions a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return ``Path(path)``."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON (``json.dumps(obj, indent=2)`` plus a newline), atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_torch(path, obj) -> Path:
    """``torch.save(obj, path)``, atomically; return ``Path(path)``."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_npz(path, **arrays) -> Path:
    """``numpy.savez_compressed(path, **arrays)``, atomically; return ``Path(path)``."""
    import numpy as np

    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path)
