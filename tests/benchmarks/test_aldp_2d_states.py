"""aldp-2d (benchmarks.common_phipsi): state A = C5 | C7eq for every method (issue 5), the same (phi, psi) definition on both surfaces."""

import math

import pytest
import torch

phipsi = pytest.importorskip("benchmarks.common_phipsi")


def test_state_a_centres_are_the_minimised_structures():
    from tps.systems.alanine_dipeptide import reference_minima

    minima = reference_minima()["minima"]
    for name, (phi, psi) in phipsi.STATE_A_CENTRES.items():
        assert phi == pytest.approx(minima[name]["phi_rad"], abs=1e-6)
        assert psi == pytest.approx(minima[name]["psi_rad"], abs=1e-6)


def test_state_a_is_the_union_of_c5_and_c7eq():
    a = phipsi.state_a()
    pts = torch.tensor([[-2.565986, 2.776615],          # C5
                        [-1.352293, 0.943792],          # C7eq
                        [-2.565986, 2.776615 - 2 * math.pi + 0.3],  # C5 across psi = +-pi
                        [1.050574, -0.713157],          # C7ax
                        [0.0, 0.0]], dtype=torch.float64)
    assert a(pts).tolist() == [True, True, True, False, False]


def test_setting_states_and_description():
    setting = phipsi.own_setting()
    if setting is None:
        pytest.skip("package free-energy surface not built")
    a, b = setting.source, setting.target
    assert bool(a(setting.start)) and not bool(a(setting.end))
    assert bool(b(setting.end)) and not bool(b(setting.start))
    desc = phipsi.state_description(setting)
    assert "C7eq" in desc["A"] and desc["radius_rad"] == phipsi.STATE_RADIUS
    assert set(desc["A_centres_rad"]) == {"C5", "C7eq"}
