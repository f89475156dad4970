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
import math
import sys
from pathlib import Path

import numpy as np
import openmm.app as app

from tps.io import write_json, write_text

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "systems"))
from _dipeptide_build import basin_pdb, capped_backbone, heavy_atom_pdb, minimise_basin, nerf, torsion_deg  # noqa: E402

DATA = REPO / "tps" / "systems" / "data" / "alanine_dipeptide"

#: Ideal internal coordinates (nm, degrees) for the heavy atoms (Engh & Huber-like values).
BOND = {"C-N": 0.1335, "N-CA": 0.1458, "CA-C": 0.1525, "C=O": 0.1231, "CA-CB": 0.1530,
        "CH3-C": 0.1520, "N-CH3": 0.1449}
ANGLE = {"CA-C-N": 116.2, "C-N-CA": 121.7, "N-CA-C": 111.2, "N-C-O": 123.0, "N-CA-CB": 110.5}

#: Target (phi, psi) in degrees for the restrained stage of each named basin.
TARGETS = {"C5": (-150.0, 160.0), "C7ax": (70.0, -60.0), "C7eq": (-80.0, 70.0)}


def heavy_atoms(phi_deg: float, psi_deg: float) -> list:
    """(residue, atom name, element, position in nm) of the ten heavy atoms."""

    def beta_carbon(at):
        # CB: try both tetrahedral positions and keep the L one (CORN rule: seen from H-alpha,
        # CO -> R -> N runs clockwise, i.e. (C - CA) . ((CB - CA) x (N - CA)) > 0).
        for torsion in (phi_deg + 120.0, phi_deg - 120.0):
            cb = nerf(at["c0"], at["n1"], at["ca"], BOND["CA-CB"], ANGLE["N-CA-CB"], torsion)
            if np.dot(at["c1"] - at["ca"], np.cross(cb - at["ca"], at["n1"] - at["ca"])) > 0:
                return [("CB", "C", cb)]
        raise RuntimeError("could not place an L-alanine CB")  # pragma: no cover - geometry guarantees one

    return capped_backbone("ALA", phi_deg, psi_deg, BOND, ANGLE, side_chain=beta_carbon)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument("--restraint-k", type=float, default=2000.0, help="kJ/mol/rad^2")
    args = parser.parse_args(argv)

    forcefield = app.ForceField("amber99sbildn.xml")
    records = {}
    for name, (phi_t, psi_t) in TARGETS.items():
        basin = minimise_basin(forcefield, heavy_atom_pdb(heavy_atoms(phi_t, psi_t)), phi_t, psi_t, args.restraint_k)
        x, idx = basin.positions, basin.torsions
        phi, psi = torsion_deg(x, idx[0]), torsion_deg(x, idx[1])
        records[name] = {
            "target_phi_deg": phi_t, "target_psi_deg": psi_t,
            "restrained_phi_deg": round(torsion_deg(basin.restrained, idx[0]), 3),
            "restrained_psi_deg": round(torsion_deg(basin.restrained, idx[1]), 3),
            "phi_deg": round(phi, 3), "psi_deg": round(psi, 3),
            "phi_rad": round(math.radians(phi), 6), "psi_rad": round(math.radians(psi), 6),
            "energy_kj_per_mol": round(basin.energy, 4),
            "force_rms_kj_per_mol_nm": round(float(np.sqrt((basin.forces ** 2).sum(-1).mean())), 6),
            # Full precision: PDB's 0.001 Angstrom rounding alone gives force RMS ~ 20 kJ/mol/nm.
            "positions_nm": [[float(v) for v in row] for row in x],
        }
        write_text(args.out / f"{name}.pdb", basin_pdb(
            basin, f"alanine dipeptide {name}: amber99sbildn.xml vacuum NoCutoff, minimised unconstrained; "
                   "built by systems/alanine_dipeptide/build.py"))
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
