"""Build the bundled alanine dipeptide (ACE-ALA-NME, 22 atoms) from ideal geometry, offline.

Recipe (see README.md next to this file for the provenance record):

1. Place the ten heavy atoms from internal coordinates (ideal bond lengths and angles,
   trans peptide bonds, L-alanine chirality checked with the CORN rule) with the
   natural-extension reference frame (NeRF) construction.
2. Add the twelve hydrogens with ``openmm.app.Modeller.addHydrogens`` using the
   ``amber99sbildn.xml`` templates.
3. For each named basin (C5, C7ax, C7eq): minimise with harmonic (phi, psi) restraints at the
   basin's target angles, then switch the restraints off and minimise again (unrestrained
   local minimisation), and record phi, psi and the potential energy.
4. Write ``tps/systems/data/alanine_dipeptide/{C5,C7ax,C7eq}.pdb`` (topology, viewing) and
   ``minima.json`` (angles, energies and full-precision positions, which the library loads).

Run from the repository root::

    python systems/alanine_dipeptide/build.py
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

from tps.io import write_json, write_text
from tps.potentials.openmm import phi_psi_indices

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tps" / "systems" / "data" / "alanine_dipeptide"

#: Ideal internal coordinates (nm, degrees) for the heavy atoms (Engh & Huber-like values).
BOND = {"C-N": 0.1335, "N-CA": 0.1458, "CA-C": 0.1525, "C=O": 0.1231, "CA-CB": 0.1530,
        "CH3-C": 0.1520, "N-CH3": 0.1449}
ANGLE = {"CA-C-N": 116.2, "C-N-CA": 121.7, "N-CA-C": 111.2, "N-C-O": 123.0, "N-CA-CB": 110.5}

#: Target (phi, psi) in degrees for the restrained stage of each named basin.
TARGETS = {"C5": (-150.0, 160.0), "C7ax": (70.0, -60.0), "C7eq": (-80.0, 70.0)}


def place(a, b, c, bond, angle_deg, torsion_deg):
    """Position of atom D with |CD| = bond, angle BCD and torsion ABCD (NeRF)."""
    angle, torsion = math.radians(angle_deg), math.radians(torsion_deg)
    bc = c - b
    bc /= np.linalg.norm(bc)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    d2 = np.array([-bond * math.cos(angle), bond * math.sin(angle) * math.cos(torsion),
                   bond * math.sin(angle) * math.sin(torsion)])
    return c + d2[0] * bc + d2[1] * m + d2[2] * n


def heavy_atoms(phi_deg: float, psi_deg: float) -> list:
    """(residue, atom name, element, position in nm) of the ten heavy atoms."""
    ch3 = np.array([0.0, 0.0, 0.0])
    c0 = np.array([BOND["CH3-C"], 0.0, 0.0])
    ang = math.radians(180.0 - ANGLE["CA-C-N"])
    n1 = c0 + BOND["C-N"] * np.array([math.cos(ang), math.sin(ang), 0.0])
    ca = place(ch3, c0, n1, BOND["N-CA"], ANGLE["C-N-CA"], 180.0)
    c1 = place(c0, n1, ca, BOND["CA-C"], ANGLE["N-CA-C"], phi_deg)
    n2 = place(n1, ca, c1, BOND["C-N"], ANGLE["CA-C-N"], psi_deg)
    ch3b = place(ca, c1, n2, BOND["N-CH3"], ANGLE["C-N-CA"], 180.0)
    o0 = place(ca, n1, c0, BOND["C=O"], ANGLE["N-C-O"], 0.0)
    o1 = place(ch3b, n2, c1, BOND["C=O"], ANGLE["N-C-O"], 0.0)
    # CB: try both tetrahedral positions and keep the L one (CORN rule: seen from H-alpha,
    # CO -> R -> N runs clockwise, i.e. (C - CA) . ((CB - CA) x (N - CA)) > 0).
    for torsion in (phi_deg + 120.0, phi_deg - 120.0):
        cb = place(c0, n1, ca, BOND["CA-CB"], ANGLE["N-CA-CB"], torsion)
        if np.dot(c1 - ca, np.cross(cb - ca, n1 - ca)) > 0:
            break
    else:  # pragma: no cover - geometry guarantees one of the two
        raise RuntimeError("could not place an L-alanine CB")
    return [
        ("ACE", "CH3", "C", ch3), ("ACE", "C", "C", c0), ("ACE", "O", "O", o0),
        ("ALA", "N", "N", n1), ("ALA", "CA", "C", ca), ("ALA", "CB", "C", cb),
        ("ALA", "C", "C", c1), ("ALA", "O", "O", o1),
        ("NME", "N", "N", n2), ("NME", "C", "C", ch3b),
    ]


def heavy_atom_pdb(phi_deg: float, psi_deg: float) -> str:
    """PDB text of the heavy atoms (coordinates in Angstrom, as PDB requires)."""
    resid = {"ACE": 1, "ALA": 2, "NME": 3}
    lines = []
    for serial, (res, name, element, pos) in enumerate(heavy_atoms(phi_deg, psi_deg), start=1):
        x, y, z = 10.0 * pos
        label = f" {name:<3}" if len(name) < 4 else name
        lines.append(f"ATOM  {serial:5d} {label} {res:>3} A{resid[res]:4d}    "
                     f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {element:>2}")
    lines += ["TER", "END"]
    return "\n".join(lines) + "\n"


def dihedral_restraint_force(indices, targets_rad, k):
    """Harmonic restraints on periodic torsions, stiffness as global parameter ``k_restraint``."""
    force = openmm.CustomTorsionForce("0.5*k_restraint*d^2; d = atan2(sin(theta-theta0), cos(theta-theta0))")
    force.addGlobalParameter("k_restraint", k)
    force.addPerTorsionParameter("theta0")
    for idx, t0 in zip(indices, targets_rad):
        force.addTorsion(*[int(i) for i in idx], [float(t0)])
    return force


def dihedral_deg(x, idx):
    p0, p1, p2, p3 = (x[i] for i in idx)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    return math.degrees(math.atan2(np.dot(np.cross(b1n, v), w), np.dot(v, w)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--restraint-k", type=float, default=2000.0, help="kJ/mol/rad^2")
    args = parser.parse_args(argv)

    forcefield = app.ForceField("amber99sbildn.xml")
    records = {}
    for name, (phi_t, psi_t) in TARGETS.items():
        pdb = app.PDBFile(io.StringIO(heavy_atom_pdb(phi_t, psi_t)))
        modeller = app.Modeller(pdb.topology, pdb.positions)
        modeller.addHydrogens(forcefield)
        topology = modeller.topology
        # No constraints while minimising: the endpoints are local minima of the force field
        # itself (all forces ~ 0), which is what OpenMMPotential evaluates.
        system = forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None)
        import mdtraj

        md_top = mdtraj.Topology.from_openmm(topology)
        idx = phi_psi_indices(md_top)
        restraint = dihedral_restraint_force(idx, [math.radians(phi_t), math.radians(psi_t)], args.restraint_k)
        restraint.setForceGroup(1)
        system.addForce(restraint)
        integrator = openmm.VerletIntegrator(0.001)
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(modeller.positions)
        openmm.LocalEnergyMinimizer.minimize(context, 1e-3, 0)
        restrained = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        context.setParameter("k_restraint", 0.0)
        openmm.LocalEnergyMinimizer.minimize(context, 1e-6, 0)
        state = context.getState(getPositions=True, getEnergy=True, getForces=True, groups={0})
        x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        phi, psi = dihedral_deg(x, idx[0]), dihedral_deg(x, idx[1])
        records[name] = {
            "target_phi_deg": phi_t, "target_psi_deg": psi_t,
            "restrained_phi_deg": round(dihedral_deg(restrained, idx[0]), 3),
            "restrained_psi_deg": round(dihedral_deg(restrained, idx[1]), 3),
            "phi_deg": round(phi, 3), "psi_deg": round(psi, 3),
            "phi_rad": round(math.radians(phi), 6), "psi_rad": round(math.radians(psi), 6),
            "energy_kj_per_mol": round(energy, 4),
            "force_rms_kj_per_mol_nm": round(float(np.sqrt((forces ** 2).sum(-1).mean())), 6),
            # Full precision: PDB's 0.001 Angstrom rounding alone gives force RMS ~ 20 kJ/mol/nm.
            "positions_nm": [[float(v) for v in row] for row in x],
        }
        buf = io.StringIO()
        app.PDBFile.writeFile(topology, x * unit.nanometer, buf, keepIds=False)
        remark = (f"REMARK   1 alanine dipeptide {name}: amber99sbildn.xml vacuum NoCutoff, minimised unconstrained; "
                  f"built by systems/alanine_dipeptide/build.py\n")
        write_text(args.out / f"{name}.pdb", remark + buf.getvalue())
        print(name, {k: v for k, v in records[name].items() if k != "positions_nm"})
    meta = {
        "force_field": "amber99sbildn.xml", "nonbonded_method": "NoCutoff",
        "constraints": "none while minimising (MD with the library uses HBonds)",
        "minimiser": "openmm.LocalEnergyMinimizer (L-BFGS), tolerance 1e-3 restrained then 1e-6 kJ/mol/nm unrestrained, Reference platform",
        "restraint": f"harmonic on wrapped (phi, psi), k = {args.restraint_k} kJ/mol/rad^2",
        "energies": "potential energy of the force field only (restraint excluded), kJ/mol",
        "minima": records,
    }
    write_json(args.out / "minima.json", meta)


if __name__ == "__main__":
    main()
