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
import sys
from pathlib import Path

import openmm.app as app

from tps.io import write_json, write_text

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "systems"))
from _dipeptide_build import basin_pdb, capped_backbone, heavy_atom_pdb, minimise_basin, torsion_deg  # noqa: E402

DATA = REPO / "tps" / "systems" / "data" / "glycine_dipeptide"
FORCE_FIELD = "amber99sbildn.xml"

#: Ideal bond lengths (nm) and angles (degrees) of the heavy-atom backbone.
BOND = {"C-N": 0.1335, "N-CA": 0.1449, "CA-C": 0.1516, "C=O": 0.1231, "CH3-C": 0.1520, "N-CH3": 0.1449}
ANGLE = {"CA-C-N": 116.2, "C-N-CA": 121.7, "N-CA-C": 112.5, "N-C-O": 123.0}

#: Target (phi, psi) in degrees of the restrained stage of each basin.
TARGETS = {"C5": (-160.0, 170.0), "C7eq": (-80.0, 70.0)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--restraint-k", type=float, default=2000.0, help="kJ/mol/rad^2")
    args = parser.parse_args(argv)
    forcefield = app.ForceField(FORCE_FIELD)
    records = {}
    for name, (phi_t, psi_t) in TARGETS.items():
        atoms = capped_backbone("GLY", phi_t, psi_t, BOND, ANGLE)
        basin = minimise_basin(forcefield, heavy_atom_pdb(atoms), phi_t, psi_t, args.restraint_k)
        x, idx = basin.positions, basin.torsions
        records[name] = {"target_phi_deg": phi_t, "target_psi_deg": psi_t,
                         "phi_deg": round(torsion_deg(x, idx[0]), 3), "psi_deg": round(torsion_deg(x, idx[1]), 3),
                         "energy_kj_per_mol": round(basin.energy, 4),
                         "positions_nm": [[float(v) for v in row] for row in x]}
        write_text(args.out / f"{name}.pdb", basin_pdb(
            basin, f"capped glycine {name}: {FORCE_FIELD} vacuum NoCutoff, minimised unconstrained; "
                   "built by systems/glycine_dipeptide/build.py"))
        print(name, {k: v for k, v in records[name].items() if k != "positions_nm"})
    write_json(args.out / "minima.json", {
        "molecule": "ACE-GLY-NME", "force_field": FORCE_FIELD, "nonbonded_method": "NoCutoff",
        "minimiser": "openmm.LocalEnergyMinimizer, tolerance 1e-3 restrained then 1e-6 kJ/mol/nm, Reference platform",
        "restraint": f"harmonic on wrapped (phi, psi), k = {args.restraint_k} kJ/mol/rad^2",
        "minima": records})


if __name__ == "__main__":
    main()
