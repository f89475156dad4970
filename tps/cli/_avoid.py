"""``tps run SYSTEM --constraint region-avoiding`` on a molecule: what to avoid (``--avoid-structure`` /
``--avoid-phipsi``), validated by the system (:meth:`tps.systems.molecule.MoleculeSystem.avoid_settings`);
the solve and the paths' closest approach are the system's too."""

from __future__ import annotations

from tps.cli._common import UserError


def molecular_avoid_settings(args, system=None) -> dict:
    """Validated ``--avoid-structure`` / ``--avoid-phipsi`` of a molecule (nothing is written before this
    passes); ``system`` is the system object or name (default ``alanine-dipeptide``)."""
    from tps.systems import load
    from tps.systems.base import InputError

    if system is None or isinstance(system, str):
        system = load(system or "alanine-dipeptide")
    try:
        return system.avoid_settings(point=getattr(args, "avoid", None),
                                     structure=getattr(args, "avoid_structure", None),
                                     phipsi=getattr(args, "avoid_phipsi", None))
    except InputError as exc:
        raise UserError(str(exc)) from None


def avoid_metrics(paths, curve, system=None) -> dict:
    """Closest approach of the paths to the avoided structures / point (``system.avoid_metrics``)."""
    from tps.systems import load

    if system is None or isinstance(system, str):
        system = load(system or "alanine-dipeptide")
    return system.avoid_metrics(paths, curve)
