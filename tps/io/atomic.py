"""Atomic file output (defined in :mod:`tps.core.atomic`, the lowest layer, so that
:class:`tps.core.paths.Paths` can use it; this module keeps the old import path)."""

from tps.core.atomic import atomic_path, save_npz, save_torch, write_json, write_text

__all__ = ["atomic_path", "write_text", "write_json", "save_torch", "save_npz"]
