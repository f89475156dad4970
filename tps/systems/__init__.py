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
    """Names accepted by :func:`load`.

    Returns
    -------
    list of str
        Sorted.

    Examples
    --------
    >>> available()
    ['alanine-dipeptide', 'muller-brown']
    """
    return sorted(_REGISTRY)


def load(name: str, **kwargs) -> System:
    """Load a bundled system by name (see :func:`available`).

    Parameters
    ----------
    name : str
        ``"muller-brown"`` (dimensionless, ``kT = 12.5``) or ``"alanine-dipeptide"`` (OpenMM,
        nm and kJ/mol, 300 K).
    **kwargs
        Passed to the system's loader: :func:`tps.systems.muller_brown.load` (``kT``,
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
    if name not in _REGISTRY:
        raise ValueError(f"name: unknown system {name!r}; available: {', '.join(available())}")
    module, func = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), func)(**kwargs)


__all__ = ["System", "ReferenceValue", "load", "available"]
