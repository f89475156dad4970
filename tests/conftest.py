"""Shared test fixtures (the one-thread setting lives in the root conftest.py)."""

import mdtraj
import pytest


@pytest.fixture
def swap_atoms():
    """``swap_atoms(topology, i, j)``: a copy of ``topology`` (as mdtraj) whose atoms ``i`` and ``j``
    trade name and element, as in a file written with another atom order."""

    def swapped(topology, i, j):
        top = (topology if isinstance(topology, mdtraj.Topology) else mdtraj.Topology.from_openmm(topology)).copy()
        a, b = top.atom(i), top.atom(j)
        a.name, b.name = b.name, a.name
        a.element, b.element = b.element, a.element
        return top

    return swapped
