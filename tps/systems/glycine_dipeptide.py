"""Capped glycine (ACE-GLY-NME, 19 atoms) in vacuum with amber99sbildn: C5 -> C7eq.

The whole system is this file plus ``tps/systems/data/glycine_dipeptide/`` (``C5.pdb``,
``C7eq.pdb``, ``minima.json``; provenance in ``systems/glycine_dipeptide/README.md``): a
:class:`~tps.systems.molecule.MoleculeSystem` with its endpoints, states (periodic (phi, psi)
balls of 0.75 rad around the minima) and protocols (those of alanine dipeptide's all-atom
benchmark; no pretrained model is shipped: train one with ``tps train glycine-dipeptide``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tps.systems import register
from tps.systems.alanine_dipeptide import protocols as _alanine_protocols
from tps.systems.molecule import MoleculeSystem, load_molecule
from tps.systems.protocols import Protocols

NAME = "glycine-dipeptide"
DESCRIPTION = ("capped glycine all-atom (ACE-GLY-NME, 19 atoms, amber99sbildn, vacuum, 300 K), C5 -> C7eq, "
               "paths run inside OpenMM")


def data_dir() -> Path:
    """Directory of the bundled files (``C5.pdb``, ``C7eq.pdb``, ``minima.json``)."""
    return Path(str(resources.files("tps.systems") / "data" / "glycine_dipeptide"))


def protocols(quick: bool = False) -> Protocols:
    """The all-atom protocols of alanine dipeptide (same force field, temperature and size class).

    Examples
    --------
    >>> protocols(quick=True).training.hidden
    16
    """
    return _alanine_protocols(quick=quick)


def load(*, platform="auto", state_radius: float = 0.75) -> MoleculeSystem:
    """The bundled capped glycine (see the module docstring); ``state_radius`` in rad."""
    return load_molecule(name=NAME, data=data_dir(), structure="C5.pdb", endpoint_names=("C5", "C7eq"),
                         start="C5", target="C7eq", description=DESCRIPTION, platform=platform,
                         state_radius=state_radius)


register(NAME, load, protocols=protocols, description=DESCRIPTION)
