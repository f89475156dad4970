"""md_samples: OpenMM Langevin frames with their cost; MDData checks foreign trajectories."""

import mdtraj
import numpy as np
import pytest

from tps.metrics.molecular import kabsch_rmsd
from tps.sampling.md import MDData, check_topology_match, md_samples
from tps.systems import alanine_dipeptide as aldp


@pytest.fixture(scope="module")
def aldp_setup():
    top = aldp.topology()
    return top, aldp.create_openmm_system(top), aldp.minimized_structures()


def test_frames_cost_and_reproducibility(aldp_setup, tmp_path):
    top, system, ms = aldp_setup
    starts = {"C5": ms["C5"], "C7ax": ms["C7ax"]}
    a = md_samples(system, top, starts, n_steps=200, report_interval=20, seed=3)
    b = md_samples(system, top, starts, n_steps=200, report_interval=20, seed=3)
    assert a.n_frames == 2 * 10 and a.n_energy_evals == 2 * 200
    assert a.info["start_names"] == ["C5", "C7ax"] and list(a.info["start"]) == [0] * 10 + [1] * 10
    np.testing.assert_array_equal(a.positions, b.positions)  # Reference platform, fixed seeds
    # 0.4 ps of 300 K dynamics stays near the start structure but moves off it
    import torch

    rmsd = kabsch_rmsd(torch.as_tensor(a.positions[:10]), torch.as_tensor(ms["C5"]))
    assert float(rmsd.min()) > 1e-3 and float(rmsd.max()) < 0.1
    dcd, pdb = a.save(tmp_path / "md.dcd")
    back = MDData.load(dcd, n_energy_evals=a.n_energy_evals, system=system)
    np.testing.assert_allclose(back.positions, a.positions, atol=1e-5)


def test_potential_energy_is_thermal(aldp_setup):
    """Mean potential energy over 2 ps at 300 K lies well above the minimum (equipartition ~ kT/2 per mode)."""
    top, system, ms = aldp_setup
    from tps.metrics.molecular import openmm_energies

    d = md_samples(system, top, ms["C7eq"], n_steps=1000, report_interval=50, seed=0)
    e = openmm_energies(system, d.positions)
    e0 = float(openmm_energies(system, ms["C7eq"][None])[0])
    # 3 * 22 - 6 = 60 modes minus 12 constrained X-H bonds: ~48 kT/2 ~ 60 kJ/mol expected
    assert 20.0 < float(e[5:].mean()) - e0 < 120.0


def test_foreign_topology_refused(aldp_setup, swap_atoms):
    top, system, ms = aldp_setup
    md_top = mdtraj.Topology.from_openmm(top)
    short = mdtraj.Trajectory(ms["C5"][None, :21].astype(np.float32), md_top.subset(range(21)))
    with pytest.raises(ValueError, match="21 atoms but the system has 22"):
        MDData.from_trajectory(short, topology=top)
    with pytest.raises(ValueError, match="21 atoms but the OpenMM system has 22"):
        MDData.from_trajectory(short, system=system)
    with pytest.raises(ValueError, match="atom 4 is"):
        check_topology_match(top, swap_atoms(top, 4, 5))
    with pytest.raises(ValueError, match="NaN"):
        MDData.from_trajectory(mdtraj.Trajectory(np.full((1, 22, 3), np.nan, np.float32), md_top))


def test_bad_arguments(aldp_setup):
    top, system, ms = aldp_setup
    with pytest.raises(ValueError, match="starts"):
        md_samples(system, top, ms["C5"][:5], n_steps=10, report_interval=5)
    with pytest.raises(ValueError, match="report_interval"):
        md_samples(system, top, ms["C5"], n_steps=10, report_interval=20)
