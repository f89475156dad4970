"""Fixtures of the parallel tests: a straight Muller-Brown curve file, the capped glycine system, clusters."""

from pathlib import Path

import numpy as np
import openmm.app as app
import openmm.unit as unit
import pytest
import torch

GLYCINE = Path(__file__).resolve().parents[2] / "tps" / "systems" / "data" / "glycine_dipeptide"


def write_mb_curve(path, *, n_points: int = 32, logsnr: float = 6.0) -> Path:
    """A ``tps-curve/1`` file: the straight line from Muller-Brown's A to B at constant logSNR (identity scaling)."""
    from tps.diffusion import alpha_sigma
    from tps.diffusion.scaling import AffineScaling
    from tps.io import save_torch
    from tps.systems import load

    mb = load("muller-brown")
    a, b = mb.endpoints["A"].double(), mb.endpoints["B"].double()
    s = torch.linspace(0, 1, n_points, dtype=torch.float64)[:, None]
    centres = a + s * (b - a)
    lam = torch.full((n_points,), float(logsnr), dtype=torch.float64)
    curve = {"format": "tps-curve/1", "system": "muller-brown", "x": alpha_sigma(lam)[0][:, None] * centres,
             "logsnr": lam, "centres": centres, "scaling": AffineScaling((0.0, 0.0), 1.0, (2,)).as_dict(),
             "curve_energy": float("nan"), "curve_energy_initial": float("nan"), "n_evaluations": 0, "wall_s": 0.0,
             "extra": {}}
    save_torch(path, curve)
    return Path(path)


def glycine():
    """amber99sbildn vacuum system of capped glycine (HBonds), its topology, C5 and C7eq structures (nm)."""
    pdb = app.PDBFile(str(GLYCINE / "C5.pdb"))
    c7 = app.PDBFile(str(GLYCINE / "C7eq.pdb")).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    system = app.ForceField("amber99sbildn.xml").createSystem(pdb.topology, nonbondedMethod=app.NoCutoff,
                                                              constraints=app.HBonds)
    return system, pdb.topology, pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer), np.asarray(c7)


@pytest.fixture(scope="session")
def mb_curve(tmp_path_factory):
    return write_mb_curve(tmp_path_factory.mktemp("curve") / "curve.pt")


@pytest.fixture(scope="session")
def glycine_system():
    return glycine()
