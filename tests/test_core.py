"""tps.core: the lowest layer (Paths, units) and the old import paths that re-export it."""

import numpy as np
import pytest
import torch

from tps.core import Paths, boltzmann_kT, temperature_from_kT


def test_boltzmann_kT_matches_openmm_units_bit_for_bit():
    """kT = R T in kJ/mol, equal to the last bit to OpenMM's unit arithmetic, which the package
    used in three places before (random stream and results must not change)."""
    unit = pytest.importorskip("openmm.unit")
    temps = np.concatenate([[1.0, 273.15, 298.15, 300.0, 310.0, 350.0, 1000.0],
                            np.random.default_rng(0).uniform(1.0, 2000.0, 500)])
    for t in temps:
        expected = (unit.MOLAR_GAS_CONSTANT_R * float(t) * unit.kelvin).value_in_unit(unit.kilojoule_per_mole)
        assert boltzmann_kT(t) == expected
    assert boltzmann_kT(300) == pytest.approx(2.494339, abs=1e-6)  # k_B N_A 300 K
    assert temperature_from_kT(boltzmann_kT(300.0)) == pytest.approx(300.0, rel=1e-15)


def test_paths_has_one_class_under_every_old_name(tmp_path):
    from tps.sampling import Paths as sampling_paths
    from tps.sampling.paths import Paths as module_paths

    assert sampling_paths is Paths and module_paths is Paths
    frames = torch.zeros(3, 4, 2, dtype=torch.float64)
    paths = Paths(frames, torch.zeros(3, 4, dtype=torch.float64), n_energy_evals=12, kT=1.0)
    with np.load(paths.save(tmp_path / "p.npz", max_paths=2)) as data:
        assert data["frames"].shape == (2, 4, 2) and data["frames"].dtype == np.float32
        assert int(data["n_energy_evals"]) == 12


def test_io_imports_nothing_above_core():
    """tps.io may import only tps.core and tps._validation (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys, tps.io; print(sorted(m for m in sys.modules if m.startswith('tps.') "
            "and m.split('.')[1] not in ('io', 'core', '_validation')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_constants_below_the_systems_agree_with_the_systems():
    """Defaults that a lower layer cannot import from tps.systems equal the systems' values."""
    from tps.systems import alanine_dipeptide as aldp
    from tps.workflows.avoidance_targets import STATE_RADIUS

    assert STATE_RADIUS == aldp.STATE_RADIUS
    assert boltzmann_kT(aldp.TEMPERATURE) == aldp.KT
