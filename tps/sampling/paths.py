"""The ``Paths`` container, defined in :mod:`tps.core.paths` (this name stays importable here)."""

from tps.core.paths import Paths

__all__ = ["Paths"]
