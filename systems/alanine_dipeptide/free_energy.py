"""Compute the bundled (phi, psi) free-energy surface of alanine dipeptide.

Well-tempered metadynamics on phi and psi, then MD under the frozen bias with exact
static-bias reweighting (see :mod:`tps.systems.free_energy`). Writes

- ``tps/systems/data/alanine_dipeptide/fes_phipsi.dat``: ``# phi psi z`` rows, rad, rad,
  kJ/mol (min 0), phi varying fastest, uniform grid over ``[-pi, pi)``;
- ``tps/systems/data/alanine_dipeptide/fes_phipsi.json``: provenance and diagnostics;
- ``systems/alanine_dipeptide/fes_halves.npz``: the two half-run surfaces, counts and the
  metadynamics estimate (for the convergence check).

Run from the repository root on one core, e.g.::

    python systems/alanine_dipeptide/free_energy.py --benchmark        # steps/s only
    nohup python systems/alanine_dipeptide/free_energy.py > fes.log &  # the shipped run
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import openmm
import torch

from tps.io import save_npz, write_json
from tps.potentials.openmm import PhiPsi
from tps.systems import alanine_dipeptide as aldp
from tps.systems.free_energy import (
    MetadynamicsConfig, basin_free_energy, fill_empty_bins, torsion_free_energy, write_surface,
)

HERE = Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-steps", type=int, default=MetadynamicsConfig.n_build_steps)
    parser.add_argument("--production-steps", type=int, default=MetadynamicsConfig.n_production_steps)
    parser.add_argument("--max-production-wall-s", type=float, default=None)
    parser.add_argument("--bins", type=int, default=MetadynamicsConfig.n_bins)
    parser.add_argument("--seed", type=int, default=MetadynamicsConfig.seed)
    parser.add_argument("--benchmark", action="store_true", help="short run; print steps/s and write nothing")
    parser.add_argument("--out", type=Path, default=aldp.data_dir())
    parser.add_argument("--save-samples", type=Path, default=None,
                        help="also write the production (phi, psi, bias) samples to this .npz")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    config = replace(MetadynamicsConfig(), n_build_steps=args.build_steps, n_production_steps=args.production_steps,
                     max_production_wall_s=args.max_production_wall_s, n_bins=args.bins, seed=args.seed, temperature=aldp.TEMPERATURE, friction=aldp.FRICTION,
                     timestep=aldp.TIMESTEP)
    if args.benchmark:
        config = replace(config, n_build_steps=20_000, n_production_steps=20_000)
    topology, _ = aldp.read_structure(aldp.data_dir() / "C7eq.pdb")
    system = aldp.create_openmm_system(topology)  # HBonds constraints, 2 fs
    start = aldp.minimized_structures()["C7eq"]
    torsions = PhiPsi(topology).indices
    stamp = lambda msg: print(f"[{datetime.datetime.utcnow():%H:%M:%S}] {msg}", flush=True)  # noqa: E731
    stamp(f"config {config}")
    t0 = time.perf_counter()
    result = torsion_free_energy(system, start, torsions, config=config,
                                 platform=openmm.Platform.getPlatformByName("Reference"), progress=stamp)
    diag = result.diagnostics
    stamp(f"done in {time.perf_counter() - t0:.0f} s: {diag}")
    if args.benchmark:
        return 0

    free_energy = fill_empty_bins(result.free_energy)
    minima = aldp.reference_minima()["minima"]
    raw = {name: basin_free_energy(result.grid, free_energy, (minima[name]["phi_rad"], minima[name]["psi_rad"]),
                                   radius=aldp.STATE_RADIUS, kT=aldp.KT)
           for name in aldp.ENDPOINT_NAMES}
    basins = {name: round(v - min(raw.values()), 3) for name, v in raw.items()}
    write_surface(args.out / "fes_phipsi.dat", result.grid, free_energy)
    meta = {
        "description": "alanine dipeptide (phi, psi) free energy, amber99sbildn.xml, vacuum, NoCutoff, HBonds, "
                       "300 K, LangevinMiddleIntegrator 1/ps, 2 fs",
        "method": "well-tempered metadynamics (openmm.app.Metadynamics, periodic BiasVariables on phi and psi) "
                  "to build a bias, then MD under the frozen bias; F(bin) = -kT ln sum_i exp(V(s_i)/kT) "
                  "(exact static-bias reweighting); bins never visited are set to the largest visited value",
        "convergence": "production split in two halves; RMS of the difference of the two half-run surfaces "
                       "(best constant offset removed) over bins within 30 kJ/mol of the minimum",
        "grid": f"{args.bins} x {args.bins} bin centres -pi + k 2pi/{args.bins}, phi fastest, z in kJ/mol, min 0",
        "basin_free_energies_kj_per_mol": basins,
        "basin_definition": f"-kT ln sum exp(-F/kT) over grid points within {aldp.STATE_RADIUS} rad of the "
                            "minimised endpoint's (phi, psi), minus the same for the most populated of the three "
                            "basins (so the lowest basin is 0); i.e. -kT ln(P_basin / P_most_populated)",
        "endpoint_phi_psi_rad": {k: [minima[k]["phi_rad"], minima[k]["psi_rad"]] for k in aldp.ENDPOINT_NAMES},
        "recipe": "systems/alanine_dipeptide/free_energy.py",
        "command": "python systems/alanine_dipeptide/free_energy.py " + " ".join(sys.argv[1:]),
        "finished_utc": f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}",
        "python": sys.version.split()[0],
        "openmm": openmm.__version__,
        **diag,
    }
    write_json(args.out / "fes_phipsi.json", meta)
    save_npz(HERE / "fes_halves.npz", grid=result.grid, free_energy=result.free_energy, halves=result.halves,
             counts=result.counts, metadynamics_estimate=result.metadynamics_estimate)
    if args.save_samples is not None:
        save_npz(args.save_samples, samples=result.samples, bias=result.sample_bias)
    stamp(f"basins {basins}; convergence RMS {diag['convergence_rms_halves_kj_per_mol']} kJ/mol")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
