"""Engines: the dynamics samplers are written against (:class:`~tps.engines.base.Engine`).

- :class:`~tps.engines.torch.TorchOverdampedEngine`: vectorised overdamped Langevin on any potential.
- :class:`~tps.engines.openmm.OpenMMLangevinEngine`: OpenMM ``LangevinMiddleIntegrator``, one
  replica at a time, contexts from the one cache :func:`~tps.engines.openmm.context_for`
  (imported on demand: it loads OpenMM).
"""

from tps.engines.base import Engine, run_until
from tps.engines.torch import TorchOverdampedEngine

__all__ = ["Engine", "run_until", "TorchOverdampedEngine", "OpenMMLangevinEngine", "ContextCache", "context_for"]


def __getattr__(name):
    if name in ("OpenMMLangevinEngine", "ContextCache", "context_for"):
        from tps.engines import openmm as _openmm

        return getattr(_openmm, name)
    raise AttributeError(f"module 'tps.engines' has no attribute {name!r}")
