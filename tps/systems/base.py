"""The bundled-system record returned by :func:`tps.systems.load`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import torch


@dataclass(frozen=True)
class ReferenceValue:
    """A number with its unit and where it came from."""

    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class System:
    """Everything a TPS run needs to know about one bundled system.

    Attributes
    ----------
    name : str
    potential : tps.potentials.Potential
    kT : float
        Thermal energy in ``potential.energy_unit``.
    endpoints : dict of str to Tensor, each of shape ``potential.event_shape``
    states : dict of str to tps.states.Volume
    topology : object or None
        ``mdtraj.Topology`` for molecules, None for model potentials.
    cv : callable or None
        Collective variables used by the state definitions and figures, e.g. (phi, psi).
    reference : dict of str to ReferenceValue
    """

    name: str
    potential: Any
    kT: float
    endpoints: Dict[str, torch.Tensor]
    states: Dict[str, Any]
    topology: Optional[Any] = None
    cv: Optional[Callable] = None
    reference: Dict[str, ReferenceValue] = field(default_factory=dict)
