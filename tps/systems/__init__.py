"""Registry of bundled systems: ``tps.systems.load(name)``.

Each system is one module that calls :func:`register` with a factory (returning a
:class:`System`) and its default protocols (:mod:`tps.systems.protocols`). The modules of this
package are imported on first use (:func:`available`, :func:`load`), so that importing
:mod:`tps.systems` pays for no system's dependencies; a new molecule is one file in this
package (see ``tps/systems/glycine_dipeptide.py``) plus its data, registered when its module is
imported, or one :func:`register` call from anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Dict, Tuple

from tps.systems.base import ModelMismatch, ReferenceValue, System


_REGISTRY: Dict[str, Tuple[Callable, Callable, str]] = {}
_LOADED = False


def register(name: str, factory: Callable, *, protocols: Callable, description: str = "") -> None:
    """Register a system under ``name`` (registering a name again replaces it).

    Parameters
    ----------
    name : str
        Registry name (lower case, words joined by ``-``).
    factory : callable
        ``factory(**kwargs) -> System``; called by :func:`load`.
    protocols : callable
        ``protocols(quick=False) -> Protocols``: the default numbers, available without building
        the system (:func:`protocols_of`).
    description : str
        One line for ``tps systems`` and ``results.json`` (:func:`describe`).

    Examples
    --------
    >>> from tps.systems import muller_brown
    >>> register("muller-brown-hot", lambda **kw: muller_brown.load(kT=20.0, **kw), protocols=muller_brown.protocols)
    >>> load("muller-brown-hot").kT, "muller-brown-hot" in available()
    (20.0, True)
    >>> unregister("muller-brown-hot")
    """
    if not callable(factory) or not callable(protocols):
        raise TypeError("register: factory and protocols must be callables")
    _REGISTRY[str(name)] = (factory, protocols, str(description))


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (no error if absent)."""
    _REGISTRY.pop(name, None)


def bundled_modules() -> list:
    """The public modules of this package (a system module registers its system when imported).

    Examples
    --------
    >>> "tps.systems.glycine_dipeptide" in bundled_modules()
    True
    """
    return sorted(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _ensure_bundled() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in bundled_modules():
            importlib.import_module(module)


def available() -> list:
    """Names accepted by :func:`load`.

    Returns
    -------
    list of str
        Sorted.

    Examples
    --------
    >>> available()
    ['alanine-dipeptide', 'alanine-dipeptide-phipsi', 'glycine-dipeptide', 'muller-brown']
    """
    _ensure_bundled()
    return sorted(_REGISTRY)


def _entry(name: str) -> tuple:
    _ensure_bundled()
    if name not in _REGISTRY:
        raise ValueError(f"name: unknown system {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def protocols_of(name: str, *, quick: bool = False):
    """The default :class:`~tps.systems.protocols.Protocols` of ``name`` without building the system.

    Examples
    --------
    >>> protocols_of("alanine-dipeptide").sampler.n_paths, protocols_of("alanine-dipeptide", quick=True).geodesic.n_points
    (30, 32)
    """
    return _entry(name)[1](quick=quick)


def describe(name: str) -> str:
    """The one-line description of ``name`` without building the system.

    Examples
    --------
    >>> describe("muller-brown")
    'Muller-Brown 2-D potential at kT = 12.5, minimum A -> minimum B (dimensionless units)'
    """
    return _entry(name)[2]


def load(name: str, **kwargs) -> System:
    """Load a bundled system by name (see :func:`available`).

    Parameters
    ----------
    name : str
        ``"muller-brown"`` (dimensionless, ``kT = 12.5``), ``"alanine-dipeptide"`` (OpenMM,
        nm and kJ/mol, 300 K), ``"alanine-dipeptide-phipsi"`` ((phi, psi) in rad on the package's
        free-energy surface, kJ/mol) or ``"glycine-dipeptide"`` (OpenMM, capped glycine).
    **kwargs
        Passed to the system's loader, e.g. :func:`tps.systems.muller_brown.load` (``kT``,
        ``state_radius``) or :func:`tps.systems.alanine_dipeptide.load` (``platform``,
        ``state_radius``, ``state_centers``).

    Returns
    -------
    System

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the available names).

    Examples
    --------
    >>> mb = load("muller-brown")
    >>> mb.kT, mb.potential.energy_unit, sorted(mb.endpoints)
    (12.5, 'dimensionless', ['A', 'B'])
    >>> bool(mb.states["A"](mb.endpoints["A"])), bool(mb.states["B"](mb.endpoints["A"]))
    (True, False)
    >>> mb.reference["lower_bound"].value                        # U(S1), the minimax barrier
    -40.66

    The all-atom system: the bundled C5 minimum has the reference energy and lies in its state.

    >>> aldp = load("alanine-dipeptide", platform="Reference")
    >>> c5 = aldp.endpoints["C5"]                                # (22, 3) nm
    >>> round(float(aldp.potential.energy(c5)), 2), aldp.reference["C5_energy"].value   # kJ/mol
    (-88.45, -88.4518)
    >>> bool(aldp.states["C5"](c5)), [round(v, 2) for v in aldp.cv(c5).tolist()]   # (phi, psi) rad
    (True, [-2.57, 2.78])
    """
    return _entry(name)[0](**kwargs)


__all__ = ["System", "ReferenceValue", "ModelMismatch", "load", "available", "register", "unregister",
           "protocols_of", "describe", "bundled_modules"]
