"""The bundled alanine dipeptide: its endpoints are the named minima of amber99sbildn, the
states contain them, bad input is refused with useful messages, and the shipped (phi, psi)
free-energy surface has the known basin ordering."""

import io
import json
import math

import mdtraj
import numpy as np
import openmm.app as app
import pytest
import torch

import tps.systems
from tps.systems import alanine_dipeptide as aldp
from tps.systems.free_energy import basin_free_energy


@pytest.fixture(scope="module")
def system():
    return tps.systems.load("alanine-dipeptide", platform="Reference")


def test_registry_load(system):
    assert system.name == "alanine-dipeptide"
    assert system.potential.event_shape == (22, 3)
    assert system.potential.energy_unit == "kJ/mol"
    # k_B * 300 K = 0.00831446 kJ/mol/K * 300 K
    assert system.kT == pytest.approx(2.494339, abs=1e-5)
    assert set(system.endpoints) == set(system.states) == {"C5", "C7ax", "C7eq"}
    assert isinstance(system.topology, mdtraj.Topology) and system.topology.n_atoms == 22


# (phi, psi) ranges in degrees stated for the named conformers (amber99sbildn, vacuum).
RANGES = {"C5": ((-165, -135), (145, 175)), "C7ax": ((55, 80), (-65, 20)), "C7eq": ((-95, -65), (40, 90))}


@pytest.mark.parametrize("name", ["C5", "C7ax", "C7eq"])
def test_endpoint_angles_in_stated_ranges(system, name):
    x = system.endpoints[name]
    phi, psi = np.degrees(system.cv(x).numpy())
    (lo_phi, hi_phi), (lo_psi, hi_psi) = RANGES[name]
    assert lo_phi <= phi <= hi_phi and lo_psi <= psi <= hi_psi
    # The torch CV agrees with mdtraj's own phi/psi.
    traj = mdtraj.Trajectory(x.numpy()[None], system.topology)
    assert math.radians(phi) == pytest.approx(mdtraj.compute_phi(traj)[1][0, 0], abs=1e-5)
    assert math.radians(psi) == pytest.approx(mdtraj.compute_psi(traj)[1][0, 0], abs=1e-5)
    # Each endpoint lies in its own state only.
    assert [k for k, state in system.states.items() if state(x)] == [name]


def test_endpoints_are_minima(system):
    x = torch.stack([system.endpoints[k] for k in aldp.ENDPOINT_NAMES])
    energies, forces = system.potential.energy_and_forces(x)
    rms = forces.pow(2).sum(-1).mean(-1).sqrt()
    assert (rms < 1e-2).all(), rms  # kJ/mol/nm; a random 0.005 nm kick gives ~ 1e3
    for k, e in zip(aldp.ENDPOINT_NAMES, energies):
        assert e.item() == pytest.approx(system.reference[f"{k}_energy"].value, abs=1e-3)
    # Physics of L-alanine in vacuum with amber99sbildn: C7eq is the global minimum and
    # C7ax (left-handed region) is the highest of the three.
    e = dict(zip(aldp.ENDPOINT_NAMES, energies.tolist()))
    assert e["C7eq"] < e["C5"] < e["C7ax"]


def test_l_chirality(system):
    # CORN rule: seen from H-alpha, CO -> R -> N clockwise <=> (C-CA) . ((CB-CA) x (N-CA)) > 0.
    top = system.topology
    ala = [r for r in top.residues if r.name == "ALA"][0]
    atom = {a.name: a.index for a in ala.atoms}
    x = system.endpoints["C7eq"].numpy()
    ca = x[atom["CA"]]
    assert np.dot(x[atom["C"]] - ca, np.cross(x[atom["CB"]] - ca, x[atom["N"]] - ca)) > 0


def _pdb_text():
    return (aldp.data_dir() / "C7eq.pdb").read_text()


def test_structure_with_missing_atom_names_residue_and_atom(tmp_path):
    lines = [l for l in _pdb_text().splitlines() if not (l.startswith(("ATOM", "HETATM")) and l[12:16].strip() == "CB")]
    lines = [l for l in lines if not l.startswith("CONECT")]
    path = tmp_path / "missing.pdb"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"ALA2 is missing atom\(s\) CB"):
        aldp.read_structure(path)


def test_structure_with_extra_atom_names_residue_and_atom(tmp_path):
    lines = [l for l in _pdb_text().splitlines() if not l.startswith("CONECT")]
    end = max(i for i, l in enumerate(lines) if l.startswith(("ATOM", "HETATM")))
    extra = lines[end][:12] + " XX " + lines[end][16:76] + " C"
    lines.insert(end + 1, extra)
    path = tmp_path / "extra.pdb"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"NME3 has unexpected atom\(s\) XX"):
        aldp.read_structure(path)


def test_untemplatable_residue_names_residue_and_atoms():
    pdb = app.PDBFile(io.StringIO(_pdb_text()))
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.delete([a for a in modeller.topology.atoms() if a.residue.name == "ALA" and a.name == "HB3"])
    with pytest.raises(ValueError, match=r"cannot template residue ALA2 with atoms N, H, CA"):
        aldp.create_openmm_system(modeller.topology)


def test_degrees_are_rejected_with_a_units_message():
    with pytest.raises(ValueError, match="radians.*degrees"):
        aldp.load(platform="Reference", state_centers={"C5": (-150.0, 160.0), "C7ax": (1.05, -0.71)})
    with pytest.raises(ValueError, match="radians"):
        aldp.check_radians([math.radians(60.0), 300.0], "angles")
    assert aldp.check_radians([-2.5, 2.7], "angles").dtype == torch.float64


def test_unavailable_platform_is_refused_by_name():
    with pytest.raises(ValueError, match="available platforms"):
        aldp.load(platform="NoSuchPlatform")


def test_shipped_free_energy_surface():
    phi, psi, f = aldp.load_free_energy_surface()
    n = len(phi)
    assert f.shape == (n, n) and n >= 50
    np.testing.assert_allclose(phi, -math.pi + 2 * math.pi * np.arange(n) / n, atol=1e-8)
    np.testing.assert_allclose(psi, phi)
    assert np.isfinite(f).all() and f.min() == pytest.approx(0.0, abs=1e-9)
    # phi varies fastest in the file, as in the reference format.
    path = aldp.data_dir() / "fes_phipsi.dat"
    assert path.read_text().splitlines()[0] == "# phi psi z"
    rows = np.loadtxt(path, skiprows=1, max_rows=2)
    assert rows[0, 1] == rows[1, 1] and rows[1, 0] > rows[0, 0]
    minima = aldp.reference_minima()["minima"]
    basin = {k: basin_free_energy(phi, f, (minima[k]["phi_rad"], minima[k]["psi_rad"]), radius=aldp.STATE_RADIUS,
                                  kT=aldp.KT) for k in aldp.ENDPOINT_NAMES}
    assert basin["C7eq"] < basin["C7ax"] and basin["C5"] < basin["C7ax"]
    meta = json.loads((aldp.data_dir() / "fes_phipsi.json").read_text())
    assert meta["convergence_rms_halves_kj_per_mol"] < 1.0
    assert meta["basin_free_energies_kj_per_mol"]["C7ax"] == pytest.approx(basin["C7ax"] - min(basin.values()), abs=1e-2)
