"""Reference ensembles to ``.npz`` and back: decorrelated transition-path frames with their chain.

A reference ensemble (e.g. the long two-way-shooting run the benchmarks compare path densities
against) is a set of frames, the shooting chain each frame came from (for split-half noise
floors) and a metadata dict (system, counts, acceptance, wall time, ...). One compressed numpy
archive holds ``frames`` (float32, ``(n, *event)``), ``chain`` (int32, ``(n,)``) and ``meta``
(JSON text; non-finite floats as bare ``NaN`` tokens, the ``"tokens"`` convention of
:mod:`tps.io.results`). Written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tps.io.atomic import atomic_path
from tps.io.results import json_text

__all__ = ["save_reference_ensemble", "load_reference_ensemble"]


def save_reference_ensemble(path, frames, chains, meta: dict, *, event_shape=(2,), block_index: bool = False) -> Path:
    """Write frames grouped in blocks, one chain index per block, and ``meta`` (atomic).

    Parameters
    ----------
    path : str or Path
        Destination ``.npz``.
    frames : list of array or Tensor, each ``(n_i, *event)``
        Blocks of frames (e.g. the kept paths of one chain); stored as float32.
    chains : list of int
        Chain index of each block (``len(chains) == len(frames)``).
    meta : dict
        JSON-compatible metadata.
    event_shape : tuple of int
        Shape of one frame, used only when ``frames`` is empty (default ``(2,)``).
    block_index : bool
        Also store ``path``: the index of each frame's block (when every block is one path, per-path
        statistics can be computed from the file alone). Default False: the file holds only
        ``frames``, ``chain`` and ``meta``.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = save_reference_ensemble(os.path.join(d, "ref.npz"), [np.zeros((3, 2)), np.ones((1, 2))], [0, 4],
    ...                                 {"system": "muller-brown"})
    ...     ref = load_reference_ensemble(f)
    >>> ref["frames"].shape, ref["chain"].tolist(), ref["meta"], "path_index" in ref
    (torch.Size([4, 2]), [0, 0, 0, 4], {'system': 'muller-brown'}, False)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = save_reference_ensemble(os.path.join(d, "ref.npz"), [np.zeros((3, 2)), np.ones((1, 2))], [0, 4],
    ...                                 {}, block_index=True)
    ...     load_reference_ensemble(f)["path_index"].tolist()
    [0, 0, 0, 1]
    """
    if len(frames) != len(chains):
        raise ValueError(f"chains: expected one chain index per block of frames ({len(frames)}), got {len(chains)}")
    if frames:
        f = np.concatenate([_numpy(x) for x in frames]).astype(np.float32)
        c = np.concatenate([np.full(len(x), ch, np.int32) for x, ch in zip(frames, chains)])
    else:
        f, c = np.zeros((0, *event_shape), np.float32), np.zeros(0, np.int32)
    extra = {}
    if block_index:
        extra["path"] = np.repeat(np.arange(len(frames), dtype=np.int32), [len(x) for x in frames]) if frames \
            else np.zeros(0, np.int32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, frames=f, chain=c, meta=np.array(json_text(meta, nonfinite="tokens", indent=None)),
                                **extra)
    return Path(path)


def load_reference_ensemble(path) -> dict:
    """Read a file of :func:`save_reference_ensemble`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        ``{"frames": Tensor float64 (n, *event), "chain": Tensor int64 (n,), "meta": dict, "path": str}``,
        plus ``"path_index"`` (Tensor int64 ``(n,)``, the block of each frame) when the file stores
        it (``block_index=True``; older files do not).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.

    Examples
    --------
    See :func:`save_reference_ensemble`.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    with np.load(path) as z:
        frames, chain, meta = z["frames"], z["chain"], json.loads(str(z["meta"]))
        index = z["path"] if "path" in z.files else None
    out = {"frames": torch.from_numpy(frames.astype(np.float64)), "chain": torch.from_numpy(chain.astype(np.int64)),
           "meta": meta, "path": str(path)}
    if index is not None:
        out["path_index"] = torch.from_numpy(index.astype(np.int64))
    return out


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
