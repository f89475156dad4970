"""Shared recipe steps of the capped-dipeptide builds (``ACE-XXX-NME``) under ``systems/``.

Used by ``systems/alanine_dipeptide/build.py`` and ``systems/glycine_dipeptide/build.py``; each
script keeps its own ideal geometry, basin targets and provenance record.

1. :func:`nerf` places one atom from internal coordinates (natural-extension reference frame).
2. :func:`capped_backbone` places the heavy atoms ACE(CH3, C, O) - N, CA, C, O - NME(N, C) at
   the given backbone torsions, with trans peptide bonds; a side-chain callback adds more atoms.
3. :func:`minimise_basin` adds hydrogens from force-field templates, minimises with harmonic
   (phi, psi) restraints at the target, then without them, and returns the minimum.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

RESIDUE_ID = {"ACE": 1, "NME": 3}


def nerf(a, b, c, bond, angle_deg, torsion_deg):
    """Atom ``d`` with ``|cd| = bond`` (nm), angle ``b-c-d`` and torsion ``a-b-c-d`` (degrees)."""
    angle, torsion = math.radians(angle_deg), math.radians(torsion_deg)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    local = np.array([-bond * math.cos(angle), bond * math.sin(angle) * math.cos(torsion),
                      bond * math.sin(angle) * math.sin(torsion)])
    return c + local[0] * bc + local[1] * m + local[2] * n


def capped_backbone(residue: str, phi_deg: float, psi_deg: float, bond: dict, angle: dict,
                    side_chain: Optional[Callable] = None) -> list:
    """``(residue, atom name, element, position nm)`` of the capped backbone heavy atoms.

    ``bond`` needs ``C-N, N-CA, CA-C, C=O, CH3-C, N-CH3`` (nm) and ``angle`` needs
    ``CA-C-N, C-N-CA, N-CA-C, N-C-O`` (degrees). ``side_chain(atoms)`` receives a dict of the
    placed positions (``ch3, c0, n1, ca, c1, n2``) and returns extra ``(name, element, pos)``
    of the central residue, inserted after CA.
    """
    ch3 = np.zeros(3)
    c0 = np.array([bond["CH3-C"], 0.0, 0.0])
    theta = math.radians(180.0 - angle["CA-C-N"])
    n1 = c0 + bond["C-N"] * np.array([math.cos(theta), math.sin(theta), 0.0])
    ca = nerf(ch3, c0, n1, bond["N-CA"], angle["C-N-CA"], 180.0)
    c1 = nerf(c0, n1, ca, bond["CA-C"], angle["N-CA-C"], phi_deg)
    n2 = nerf(n1, ca, c1, bond["C-N"], angle["CA-C-N"], psi_deg)
    ch3b = nerf(ca, c1, n2, bond["N-CH3"], angle["C-N-CA"], 180.0)
    o0 = nerf(ca, n1, c0, bond["C=O"], angle["N-C-O"], 0.0)
    o1 = nerf(ch3b, n2, c1, bond["C=O"], angle["N-C-O"], 0.0)
    extra = side_chain({"ch3": ch3, "c0": c0, "n1": n1, "ca": ca, "c1": c1, "n2": n2}) if side_chain else []
    return ([("ACE", "CH3", "C", ch3), ("ACE", "C", "C", c0), ("ACE", "O", "O", o0),
             (residue, "N", "N", n1), (residue, "CA", "C", ca)]
            + [(residue, name, element, pos) for name, element, pos in extra]
            + [(residue, "C", "C", c1), (residue, "O", "O", o1), ("NME", "N", "N", n2), ("NME", "C", "C", ch3b)])


def heavy_atom_pdb(atoms: list) -> str:
    """PDB text of ``atoms`` from :func:`capped_backbone` (coordinates in Angstrom, as PDB requires)."""
    lines = []
    for serial, (res, name, element, pos) in enumerate(atoms, start=1):
        x, y, z = 10.0 * pos
        label = f" {name:<3}" if len(name) < 4 else name
        lines.append(f"ATOM  {serial:5d} {label} {res:>3} A{RESIDUE_ID.get(res, 2):4d}    "
                     f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {element:>2}")
    return "\n".join(lines + ["TER", "END"]) + "\n"


def torsion_deg(x, idx) -> float:
    """Torsion (degrees) of the four atoms ``idx`` of positions ``x`` (n_atoms, 3)."""
    p0, p1, p2, p3 = (x[i] for i in idx)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1)
    v, w = b0 - np.dot(b0, b1) * b1, b2 - np.dot(b2, b1) * b1
    return math.degrees(math.atan2(np.dot(np.cross(b1, v), w), np.dot(v, w)))


@dataclass
class Basin:
    topology: app.Topology
    restrained: np.ndarray      # nm, after the restrained minimisation
    positions: np.ndarray       # nm, unrestrained local minimum
    energy: float               # kJ/mol, force field only
    forces: np.ndarray          # kJ/mol/nm at the minimum
    torsions: list              # atom indices of phi and psi


def minimise_basin(forcefield: app.ForceField, pdb_text: str, phi_deg: float, psi_deg: float,
                   restraint_k: float) -> Basin:
    """Hydrogens from templates, then restrained and unrestrained minimisation (Reference platform).

    No constraints while minimising: the result is a local minimum of the force field itself
    (all forces ~ 0), which is what the library's energies evaluate.
    """
    import mdtraj

    pdb = app.PDBFile(io.StringIO(pdb_text))
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.addHydrogens(forcefield)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=None)
    traj = mdtraj.Trajectory(np.zeros((1, modeller.topology.getNumAtoms(), 3)),
                             mdtraj.Topology.from_openmm(modeller.topology))
    idx = [mdtraj.compute_phi(traj)[0][0], mdtraj.compute_psi(traj)[0][0]]
    restraint = openmm.CustomTorsionForce("0.5*k_restraint*d^2; d = atan2(sin(theta-theta0), cos(theta-theta0))")
    restraint.addGlobalParameter("k_restraint", restraint_k)
    restraint.addPerTorsionParameter("theta0")
    for t, target in zip(idx, (phi_deg, psi_deg)):
        restraint.addTorsion(*[int(i) for i in t], [math.radians(target)])
    restraint.setForceGroup(1)
    system.addForce(restraint)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(modeller.positions)
    openmm.LocalEnergyMinimizer.minimize(context, 1e-3, 0)
    restrained = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    context.setParameter("k_restraint", 0.0)
    openmm.LocalEnergyMinimizer.minimize(context, 1e-6, 0)
    state = context.getState(getPositions=True, getEnergy=True, getForces=True, groups={0})
    return Basin(modeller.topology, np.asarray(restrained),
                 np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)),
                 state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                 np.asarray(state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)),
                 idx)


def basin_pdb(basin: Basin, remark: str) -> str:
    """PDB text of the minimised basin with one REMARK line."""
    buf = io.StringIO()
    app.PDBFile.writeFile(basin.topology, basin.positions * unit.nanometer, buf, keepIds=False)
    return f"REMARK   1 {remark}\n" + buf.getvalue()
