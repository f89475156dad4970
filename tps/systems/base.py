"""The bundled-system record returned by :func:`tps.systems.load`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import torch


@dataclass(frozen=True)
class ReferenceValue:
    """A number with its unit and where it came from.

    Attributes
    ----------
    value : float
    unit : str
        E.g. ``"kJ/mol"``, ``"rad"``, ``"dimensionless"``.
    source : str
        Provenance: a paper, a table, or the script that computed it.

    Examples
    --------
    >>> from tps.systems import load
    >>> ref = load("muller-brown").reference["U(A)"]
    >>> ref.value, ref.unit, ref.source[:23]
    (-146.7, 'dimensionless', 'benchmarks.md section 4')
    """

    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class System:
    """Everything a TPS run needs to know about one bundled system.

    Attributes
    ----------
    name : str
        Registry name (``"muller-brown"``, ``"alanine-dipeptide"``).
    potential : tps.potentials.Potential
    kT : float
        Thermal energy in ``potential.energy_unit``.
    endpoints : dict of str to Tensor, each of shape ``potential.event_shape``
        Minimised endpoint configurations (float64; nm for molecules).
    states : dict of str to tps.states.Volume
        Metastable states, one per endpoint, each containing its endpoint.
    topology : object or None
        ``mdtraj.Topology`` for molecules, None for model potentials.
    cv : callable or None
        Collective variables used by the state definitions and figures, e.g. (phi, psi).
    reference : dict of str to ReferenceValue
        Known answers (minimum energies, barriers, angles) with units and provenance.

    Examples
    --------
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> mb.name, mb.potential.event_shape, mb.topology is None
    ('muller-brown', (2,), True)
    >>> round(float(mb.potential.energy(mb.endpoints["B"])), 2)       # U(B) = -108.17
    -108.17
    """

    name: str
    potential: Any
    kT: float
    endpoints: Dict[str, torch.Tensor]
    states: Dict[str, Any]
    topology: Optional[Any] = None
    cv: Optional[Callable] = None
    reference: Dict[str, ReferenceValue] = field(default_factory=dict)
