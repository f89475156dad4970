"""tps.testing.check_equivariance: passes for the package's EGNN, fails for networks that break a symmetry.

The EGNN's symmetry contract (``tps.diffusion.egnn``): ``D(x @ R + t) == D(x) @ R`` for orthogonal
``R`` (det +1 only when chiral) and ``D(x[:, P]) == D(x)[:, P]`` for permutations of identical atoms.
"""

from __future__ import annotations

import mdtraj
import pytest
import torch

from tps.diffusion.egnn import EGNNConfig, EGNNDenoiser
from tps.diffusion.mlp import MLPConfig, MLPDenoiser
from tps.potentials.openmm import as_mdtraj_topology
from tps.systems import alanine_dipeptide
from tps.testing import (
    CheckResult,
    assert_equivariant,
    check_equivariance,
    random_orthogonal,
    terminal_atom_permutations,
)

torch.set_num_threads(1)

_N = 22
_METHYL_H = [0, 2, 3, 1] + list(range(4, _N))  # cycle the three ACE methyl hydrogens (atoms 1, 2, 3)


def egnn(*, chiral=False, dtype=torch.float64, seed=0) -> EGNNDenoiser:
    """A small alanine-dipeptide EGNN (as tps.workflows build_denoiser makes it) whose coordinate
    heads are scaled up, so that the network part is far from zero and the check is not trivial."""
    torch.manual_seed(seed)
    top = as_mdtraj_topology(alanine_dipeptide.topology())
    net = EGNNDenoiser(EGNNConfig.from_topology(top, hidden=8, n_layers=2, chiral=chiral)).to(dtype)
    with torch.no_grad():
        for layer in net.layers:
            layer.phi_x[-1].weight.normal_(0.0, 0.3)
            if chiral:
                layer.phi_c[-1].weight.normal_(0.0, 0.3)
    return net


def flat_mlp():
    """A generic (non-equivariant) denoiser: an MLP on the flattened coordinates, random weights."""
    torch.manual_seed(1)
    mlp = MLPDenoiser(MLPConfig(dim=3 * _N, hidden=16, n_blocks=1)).double()
    with torch.no_grad():
        for p in mlp.parameters():
            p.normal_(0.0, 0.3)
    return lambda x, lam: mlp(x.reshape(len(x), -1), lam).reshape(x.shape)


def test_random_orthogonal_is_orthogonal_with_requested_determinant():
    g = torch.Generator().manual_seed(0)
    for det in (1.0, -1.0):
        r = random_orthogonal(det=det, generator=g)
        assert torch.allclose(r @ r.T, torch.eye(3, dtype=r.dtype), atol=1e-14)
        assert torch.linalg.det(r).item() == pytest.approx(det, abs=1e-12)
    with pytest.raises(ValueError, match="det"):
        random_orthogonal(det=0.5)


def test_egnn_passes_in_float64_with_permutations_of_identical_atoms():
    net = egnn()
    result = check_equivariance(net, (_N, 3), permutations=[_METHYL_H], n_trials=2)
    assert isinstance(result, CheckResult) and result.passed and bool(result)
    assert set(result.details["errors"]) == {"rotation", "reflection", "translation", "permutation"}
    assert result.statistic < 1e-12 and result.tolerance == pytest.approx(1e-8, rel=1e-3)
    assert "passed" in result.message
    # an example batch works as well as an event shape, and the assert_ variant returns the result
    x = torch.randn(3, _N, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert assert_equivariant(net, x, logsnr=[-3.0, 5.0], n_trials=1).passed


def test_terminal_atom_permutations_of_alanine_dipeptide_are_symmetries():
    """Three methyl groups (ACE, ALA side chain, NME): one 3-cycle each, and nothing else
    (the backbone N-H and C=O atoms are terminal but alone of their type on their atom)."""
    net = egnn()
    perms = terminal_atom_permutations(net.config.atom_types, net.config.bonds)
    assert len(perms) == 3
    for perm in perms:
        moved = [i for i, j in enumerate(perm) if i != j]
        assert len(moved) == 3 and len({net.config.atom_types[i] for i in moved}) == 1
    assert check_equivariance(net, (_N, 3), permutations=perms, n_trials=1).passed


def test_egnn_passes_in_float32_with_float32_tolerances():
    result = check_equivariance(egnn(dtype=torch.float32), (_N, 3), dtype=torch.float32, n_trials=1)
    assert result.passed, result.message
    assert 1e-12 < result.statistic < 1e-4  # round-off of float32, well inside its tolerance


def test_mlp_on_flattened_coordinates_fails_with_a_clear_message():
    result = check_equivariance(flat_mlp(), (_N, 3), n_trials=1)
    assert not result.passed and not bool(result)
    assert all(result.details["errors"][kind] > 1e-2 for kind in ("rotation", "reflection", "translation"))
    with pytest.raises(AssertionError, match=r"equivariance: FAILED for \w+: relative error"):
        assert_equivariant(flat_mlp(), (_N, 3), n_trials=1)


def test_chiral_egnn_is_rotation_but_not_reflection_equivariant():
    net = egnn(chiral=True)
    assert check_equivariance(net, (_N, 3), reflections=False, n_trials=2).passed
    result = check_equivariance(net, (_N, 3), n_trials=2)
    assert not result.passed and "FAILED for reflection" in result.message
    assert result.details["errors"]["rotation"] < 1e-12 < 1e-3 < result.details["errors"]["reflection"]


def test_permutation_of_different_atoms_fails():
    swap_c_and_h = [1, 0] + list(range(2, _N))  # ACE methyl carbon <-> one of its hydrogens
    result = check_equivariance(egnn(), (_N, 3), permutations=[swap_c_and_h], n_trials=1)
    assert not result.passed and "FAILED for permutation" in result.message


def test_translation_modes():
    """A centred denoiser forgets shifts; an uncentred one carries them; each fails the other's rule."""
    centred = lambda x, lam: 0.5 * (x - x.mean(dim=1, keepdim=True))  # noqa: E731
    scaled = lambda x, lam: 0.5 * x  # noqa: E731  (D(x + t) = D(x) + t/2: neither rule)
    shifted = lambda x, lam: x  # noqa: E731
    assert check_equivariance(centred, (5, 3), translation="invariant").passed
    assert not check_equivariance(centred, (5, 3), translation="equivariant").passed
    assert check_equivariance(shifted, (5, 3), translation="equivariant").passed
    assert not check_equivariance(shifted, (5, 3), translation="invariant").passed
    assert not check_equivariance(scaled, (5, 3), translation="invariant").passed
    assert check_equivariance(scaled, (5, 3), translation=None).passed


def test_wrong_output_shape_fails_and_bad_arguments_raise():
    result = check_equivariance(lambda x, lam: x[:, :2], (5, 3))
    assert not result.passed and "expected the input's shape" in result.message
    with pytest.raises(ValueError, match="translation"):
        check_equivariance(lambda x, lam: x, (5, 3), translation="shift")
    with pytest.raises(ValueError, match="permutation"):
        check_equivariance(lambda x, lam: x, (5, 3), permutations=[[0, 0, 1, 2, 3]])
    with pytest.raises(ValueError, match=r"\(n_atoms, 3\)"):
        check_equivariance(lambda x, lam: x, (5, 2))
    with pytest.raises(ValueError, match="n_trials"):
        check_equivariance(lambda x, lam: x, (5, 3), n_trials=0)


def test_same_seed_same_result():
    a = check_equivariance(flat_mlp(), (_N, 3), n_trials=1, seed=3)
    b = check_equivariance(flat_mlp(), (_N, 3), n_trials=1, seed=3)
    assert a.statistic == b.statistic and a.message == b.message


def test_shipped_pretrained_alanine_dipeptide_model_passes():
    """The trained EGNN of tps.pretrained (weights far from initialisation) keeps the symmetry contract."""
    from tps.pretrained import load

    net = load("alanine-dipeptide").network.double()
    perms = terminal_atom_permutations(net.config.atom_types, net.config.bonds)
    result = assert_equivariant(net, (_N, 3), permutations=perms, n_trials=1, reflections=not net.config.chiral)
    assert result.statistic < 1e-12
