"""Build capped glycine (ACE-GLY-NME, 19 atoms) from ideal geometry, offline.

The second molecule of the all-atom pipeline: it shows that ``tps.workflows.cartesian`` works
for any OpenMM system (different atom count and atom types from alanine dipeptide).

Recipe:

1. Place the nine heavy atoms from ideal internal coordinates (bond lengths in nm, angles in
   degrees, trans peptide bonds) by the natural-extension reference frame (NeRF) rule, at the
   target backbone torsions (phi, psi) of each basin.
2. Add the ten hydrogens with ``openmm.app.Modeller.addHydrogens`` and the
   ``amber99sbildn.xml`` templates.
3. For each basin (C5: extended, C7eq: the gamma-turn hydrogen-bonded ring): minimise with
   harmonic (phi, psi) restraints at the target, then without restraints (L-BFGS, vacuum,
   ``NoCutoff``, no constraints), and record phi, psi and the potential energy.
4. Write ``tps/systems/data/glycine_dipeptide/{C5,C7eq}.pdb`` and ``minima.json`` (angles,
   energies, full-precision positions).

Run from the repository root::

    python systems/glycine_dipeptide/build.py
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

from tps.io import write_json, write_text

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tps" / "systems" / "data" / "glycine_dipeptide"
FORCE_FIELD = "amber99sbildn.xml"

#: Ideal bond lengths (nm) and angles (degrees) of the heavy-atom backbone.
BOND = {"C-N": 0.1335, "N-CA": 0.1449, "CA-C": 0.1516, "C=O": 0.1231, "CH3-C": 0.1520, "N-CH3": 0.1449}
ANGLE = {"CA-C-N": 116.2, "C-N-CA": 121.7, "N-CA-C": 112.5, "N-C-O": 123.0}

#: Target (phi, psi) in degrees of the restrained stage of each basin.
TARGETS = {"C5": (-160.0, 170.0), "C7eq": (-80.0, 70.0)}


def nerf(a, b, c, bond, angle_deg, torsion_deg):
    """Atom ``d`` with ``|cd| = bond``, angle ``b-c-d`` and torsion ``a-b-c-d`` (NeRF construction)."""
    angle, torsion = math.radians(angle_deg), math.radians(torsion_deg)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    local = np.array([-bond * math.cos(angle), bond * math.sin(angle) * math.cos(torsion),
                      bond * math.sin(angle) * math.sin(torsion)])
    return c + local[0] * bc + local[1] * m + local[2] * n


def backbone(phi_deg: float, psi_deg: float) -> list:
    """``(residue, atom name, element, position nm)`` of the nine heavy atoms."""
    ch3 = np.zeros(3)
    c0 = np.array([BOND["CH3-C"], 0.0, 0.0])
    theta = math.radians(180.0 - ANGLE["CA-C-N"])
    n1 = c0 + BOND["C-N"] * np.array([math.cos(theta), math.sin(theta), 0.0])
    ca = nerf(ch3, c0, n1, BOND["N-CA"], ANGLE["C-N-CA"], 180.0)
    c1 = nerf(c0, n1, ca, BOND["CA-C"], ANGLE["N-CA-C"], phi_deg)
    n2 = nerf(n1, ca, c1, BOND["C-N"], ANGLE["CA-C-N"], psi_deg)
    ch3b = nerf(ca, c1, n2, BOND["N-CH3"], ANGLE["C-N-CA"], 180.0)
    o0 = nerf(ca, n1, c0, BOND["C=O"], ANGLE["N-C-O"], 0.0)
    o1 = nerf(ch3b, n2, c1, BOND["C=O"], ANGLE["N-C-O"], 0.0)
    return [("ACE", "CH3", "C", ch3), ("ACE", "C", "C", c0), ("ACE", "O", "O", o0),
            ("GLY", "N", "N", n1), ("GLY", "CA", "C", ca), ("GLY", "C", "C", c1), ("GLY", "O", "O", o1),
            ("NME", "N", "N", n2), ("NME", "C", "C", ch3b)]


def backbone_pdb(phi_deg: float, psi_deg: float) -> str:
    """PDB text of the heavy atoms (Angstrom)."""
    resid = {"ACE": 1, "GLY": 2, "NME": 3}
    lines = []
    for serial, (res, name, element, pos) in enumerate(backbone(phi_deg, psi_deg), start=1):
        x, y, z = 10.0 * pos
        lines.append(f"ATOM  {serial:5d}  {name:<3} {res:>3} A{resid[res]:4d}    "
                     f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {element:>2}")
    return "\n".join(lines + ["TER", "END"]) + "\n"


def torsion_deg(x, idx) -> float:
    p0, p1, p2, p3 = (x[i] for i in idx)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1)
    v, w = b0 - np.dot(b0, b1) * b1, b2 - np.dot(b2, b1) * b1
    return math.degrees(math.atan2(np.dot(np.cross(b1, v), w), np.dot(v, w)))


def main(argv=None):
    import mdtraj

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--restraint-k", type=float, default=2000.0, help="kJ/mol/rad^2")
    args = parser.parse_args(argv)
    forcefield = app.ForceField(FORCE_FIELD)
    records = {}
    for name, (phi_t, psi_t) in TARGETS.items():
        pdb = app.PDBFile(io.StringIO(backbone_pdb(phi_t, psi_t)))
        modeller = app.Modeller(pdb.topology, pdb.positions)
        modeller.addHydrogens(forcefield)
        system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=None)
        traj = mdtraj.Trajectory(np.zeros((1, modeller.topology.getNumAtoms(), 3)),
                                 mdtraj.Topology.from_openmm(modeller.topology))
        idx = [mdtraj.compute_phi(traj)[0][0], mdtraj.compute_psi(traj)[0][0]]
        restraint = openmm.CustomTorsionForce("0.5*k_restraint*d^2; d = atan2(sin(theta-theta0), cos(theta-theta0))")
        restraint.addGlobalParameter("k_restraint", args.restraint_k)
        restraint.addPerTorsionParameter("theta0")
        for t, target in zip(idx, (phi_t, psi_t)):
            restraint.addTorsion(*[int(i) for i in t], [math.radians(target)])
        restraint.setForceGroup(1)
        system.addForce(restraint)
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(modeller.positions)
        openmm.LocalEnergyMinimizer.minimize(context, 1e-3, 0)
        context.setParameter("k_restraint", 0.0)
        openmm.LocalEnergyMinimizer.minimize(context, 1e-6, 0)
        state = context.getState(getPositions=True, getEnergy=True, groups={0})
        x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        records[name] = {"target_phi_deg": phi_t, "target_psi_deg": psi_t,
                         "phi_deg": round(torsion_deg(x, idx[0]), 3), "psi_deg": round(torsion_deg(x, idx[1]), 3),
                         "energy_kj_per_mol": round(energy, 4),
                         "positions_nm": [[float(v) for v in row] for row in x]}
        buf = io.StringIO()
        app.PDBFile.writeFile(modeller.topology, x * unit.nanometer, buf, keepIds=False)
        remark = (f"REMARK   1 capped glycine {name}: {FORCE_FIELD} vacuum NoCutoff, minimised unconstrained; "
                  "built by systems/glycine_dipeptide/build.py\n")
        write_text(args.out / f"{name}.pdb", remark + buf.getvalue())
        print(name, {k: v for k, v in records[name].items() if k != "positions_nm"})
    write_json(args.out / "minima.json", {
        "molecule": "ACE-GLY-NME", "force_field": FORCE_FIELD, "nonbonded_method": "NoCutoff",
        "minimiser": "openmm.LocalEnergyMinimizer, tolerance 1e-3 restrained then 1e-6 kJ/mol/nm, Reference platform",
        "restraint": f"harmonic on wrapped (phi, psi), k = {args.restraint_k} kJ/mol/rad^2",
        "minima": records})


if __name__ == "__main__":
    main()
