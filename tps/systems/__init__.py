"""Registry of bundled systems: ``tps.systems.load(name)``."""

from __future__ import annotations

import importlib

from tps.systems.base import ReferenceValue, System

# name -> "module:function" returning a System; imported lazily so that loading one system
# never pays for another's dependencies.
_REGISTRY = {
    "muller-brown": "tps.systems.muller_brown:load",
    "alanine-dipeptide": "tps.systems.alanine_dipeptide:load",
}


def available() -> list:
    """Names accepted by :func:`load`."""
    return sorted(_REGISTRY)


def load(name: str, **kwargs) -> System:
    """Load a bundled system by name (see :func:`available`)."""
    if name not in _REGISTRY:
        raise ValueError(f"name: unknown system {name!r}; available: {', '.join(available())}")
    module, func = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), func)(**kwargs)


__all__ = ["System", "ReferenceValue", "load", "available"]
