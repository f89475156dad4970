"""Symmetries, batching, differentiability and argument checks of the EGNN denoiser.

Symmetry contract under test (see ``tps.diffusion.egnn``): for an orthogonal ``R`` (det +1 or
-1), a translation ``t`` and a permutation ``P`` of identical atoms,
``D(x @ R + t) == D(x) @ R`` and ``D(x[:, P]) == D(x)[:, P]``; the output is centroid-free.
The exact denoiser of centroid-free data under isotropic noise has exactly these properties.
"""

from __future__ import annotations

import copy
import dataclasses

import mdtraj as md
import pytest
import torch

from tps.diffusion.egnn import (
    EGNNConfig,
    EGNNDenoiser,
    atom_types_from_topology,
    bonds_from_topology,
    resolve_device,
)

torch.set_num_threads(1)

# ethanol: CH3-CH2-OH; atoms 2, 3, 4 are the methyl hydrogens, 5 and 6 the methylene ones
_ETHANOL_ATOMS = [
    ("C1", "C"), ("C2", "C"), ("H11", "H"), ("H12", "H"), ("H13", "H"),
    ("H21", "H"), ("H22", "H"), ("O", "O"), ("HO", "H"),
]
_ETHANOL_BONDS = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6), (1, 7), (7, 8)]
_N = len(_ETHANOL_ATOMS)


def ethanol_topology() -> md.Topology:
    top = md.Topology()
    residue = top.add_residue("ETH", top.add_chain())
    atoms = [top.add_atom(name, md.element.get_by_symbol(symbol), residue) for name, symbol in _ETHANOL_ATOMS]
    for i, j in _ETHANOL_BONDS:
        top.add_bond(atoms[i], atoms[j])
    return top


def make_model(*, cutoff=None, chiral=False, dtype=torch.float64, seed=0) -> EGNNDenoiser:
    """Small model whose coordinate heads are scaled up so that ``F`` is far from zero."""
    torch.manual_seed(seed)
    config = EGNNConfig.from_topology(ethanol_topology(), hidden=16, n_layers=3, cutoff=cutoff, chiral=chiral)
    model = EGNNDenoiser(config).to(dtype)
    with torch.no_grad():
        for layer in model.layers:
            layer.phi_x[-1].weight.normal_(0.0, 0.3)
            if chiral:
                layer.phi_c[-1].weight.normal_(0.0, 0.3)
    return model


def random_orthogonal(det: float, dtype=torch.float64) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    if torch.sign(torch.linalg.det(q)) != det:
        q[:, 0] = -q[:, 0]
    return q


def inputs(n_batch=4, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_batch, _N, 3, generator=g, dtype=dtype)
    lam = torch.linspace(-8.0, 8.0, n_batch, dtype=dtype)
    return x, lam


def assert_close_rel(a: torch.Tensor, b: torch.Tensor, rtol=1e-6):
    err = (a - b).norm() / b.norm().clamp_min(1e-300)
    assert err < rtol, f"relative error {err:.3e} >= {rtol}"


@pytest.fixture(params=[(None, False), (3.0, False), (None, True)], ids=["all_pairs", "radius", "chiral"])
def model(request):
    cutoff, chiral = request.param
    return make_model(cutoff=cutoff, chiral=chiral)


# ----------------------------------------------------------------------------- topology
def test_atom_types_share_identical_atoms():
    types = atom_types_from_topology(ethanol_topology())
    assert len(types) == _N
    assert types[2] == types[3] == types[4]  # methyl H
    assert types[5] == types[6]  # methylene H
    assert types[8] != types[2]  # H on O differs from H on C
    assert types[0] != types[1]  # C1 bonded to (C, H, H, H), C2 to (C, H, H, O)
    assert len(set(types)) == 5  # C1, C2, O, H on C, H on O


def test_config_from_topology_and_json_round_trip():
    config = EGNNConfig.from_topology(ethanol_topology(), hidden=8, cutoff=1.5)
    assert config.n_atoms == _N
    assert config.n_atom_types == max(config.atom_types) + 1
    assert config.bonds == bonds_from_topology(ethanol_topology()) == tuple(sorted(_ETHANOL_BONDS))
    assert EGNNConfig.from_json(config.to_json()) == config


def test_rebuild_from_dict_config_and_state_dict_is_bit_identical():
    """The checkpoint path: ``from_config(dataclasses.asdict(config))`` plus the weights."""
    model = make_model(cutoff=3.0)
    rebuilt = EGNNDenoiser.from_config(dataclasses.asdict(model.config)).double()
    rebuilt.load_state_dict(model.state_dict())
    assert all("bond_hops" not in k and "all_pairs" not in k for k in model.state_dict())
    x, lam = inputs()
    assert torch.equal(rebuilt(x, lam), model(x, lam))


# ----------------------------------------------------------------------------- symmetries
def test_output_shape_and_centroid_free(model):
    x, lam = inputs()
    out = model(x, lam)
    assert out.shape == x.shape and model.event_shape == (_N, 3)
    assert out.mean(dim=1).abs().max() < 1e-12
    # the network part contributes (otherwise the symmetry tests below would be trivial)
    c_in, c_skip, c_out = model.preconditioning(lam)
    xc = x - x.mean(dim=1, keepdim=True)
    assert (out - c_skip * xc).norm() > 1e-2 * out.norm()
    if model.config.cutoff is not None:  # the radius graph really drops pairs here
        edge_index, _ = model._edges(c_in * xc)
        assert 0 < edge_index.shape[1] < x.shape[0] * _N * (_N - 1)


@pytest.mark.parametrize("det", [1.0, -1.0], ids=["rotation", "reflection"])
def test_orthogonal_equivariance(model, det):
    torch.manual_seed(3)
    x, lam = inputs()
    rot = random_orthogonal(det)
    if det < 0 and model.config.chiral:
        # a chiral model tells mirror images apart: reflection is deliberately not a symmetry
        err = (model(x @ rot, lam) - model(x, lam) @ rot).norm() / model(x, lam).norm()
        assert err > 1e-3
    else:
        assert_close_rel(model(x @ rot, lam), model(x, lam) @ rot)


def test_translation_invariance(model):
    x, lam = inputs()
    shift = torch.tensor([0.7, -1.3, 2.1], dtype=x.dtype)
    assert_close_rel(model(x + shift, lam), model(x, lam))


def test_permutation_of_identical_atoms(model):
    x, lam = inputs()
    perm = torch.tensor([0, 1, 4, 2, 3, 6, 5, 7, 8])  # cycle methyl H's, swap methylene H's
    assert_close_rel(model(x[:, perm], lam), model(x, lam)[:, perm])


def test_permutation_of_different_atoms_is_not_a_symmetry():
    model = make_model()
    x, lam = inputs()
    perm = torch.tensor([0, 1, 2, 3, 4, 5, 6, 8, 7])  # swap O and its H
    err = (model(x[:, perm], lam) - model(x, lam)[:, perm]).norm() / model(x, lam).norm()
    assert err > 1e-3


def test_no_cross_talk_between_batch_members(model):
    x, lam = inputs(n_batch=3)
    out = model(x, lam)
    x2 = x.clone()
    x2[1] = x2[1] + torch.randn(_N, 3, dtype=x.dtype, generator=torch.Generator().manual_seed(2))
    lam2 = lam.clone()
    lam2[1] = 3.0
    out2 = model(x2, lam2)
    assert torch.allclose(out2[0], out[0], rtol=0, atol=1e-12)
    assert torch.allclose(out2[2], out[2], rtol=0, atol=1e-12)
    assert not torch.allclose(out2[1], out[1])
    # a batch of one gives the same answer as inside a batch
    assert torch.allclose(model(x[2:3], lam[2:3])[0], out[2], rtol=0, atol=1e-12)


def test_cutoff_envelope_is_continuous():
    """Moving one atom across the cutoff radius changes the output continuously."""
    model = make_model(cutoff=1.0)
    x, lam = inputs(n_batch=1)
    x[0, 7] = x[0, 0] + torch.tensor([0.0, 0.0, 1.0], dtype=x.dtype)  # O exactly at the cutoff from C1
    c_in = model.preconditioning(lam)[0]
    # input coordinates are scaled by c_in, so place the pair at cutoff / c_in in x units
    direction = torch.tensor([0.0, 0.0, 1.0], dtype=x.dtype)
    outs = []
    for delta in (-1e-7, 1e-7):
        y = x.clone()
        y[0, 7] = y[0, 0] + direction * (1.0 + delta) / c_in.reshape(())
        outs.append(model(y, lam))
    assert (outs[0] - outs[1]).abs().max() < 1e-5


# ----------------------------------------------------------------------------- preconditioning
def test_zero_network_is_exact_gaussian_denoiser():
    """With the coordinate heads zeroed, D is E[x0 | x_t] for x0 ~ N(0, s^2 I) (centroid-free)."""
    config = EGNNConfig.from_topology(ethanol_topology(), hidden=8, n_layers=2, sigma_data=0.6)
    model = EGNNDenoiser(config).double()
    with torch.no_grad():
        for layer in model.layers:
            layer.phi_x[-1].weight.zero_()
    x, lam = inputs()
    alpha2, sigma2 = torch.sigmoid(lam), torch.sigmoid(-lam)
    gain = (alpha2.sqrt() * 0.36 / (alpha2 * 0.36 + sigma2))[:, None, None]
    assert_close_rel(model(x, lam), gain * (x - x.mean(dim=1, keepdim=True)), rtol=1e-12)


# ----------------------------------------------------------------------------- dtype, AD
def test_float32_forward():
    model = make_model(dtype=torch.float32)
    x, lam = inputs(dtype=torch.float32)
    out = model(x, lam)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    ref = copy.deepcopy(model).double()(x.double(), lam.double())
    assert_close_rel(out.double(), ref, rtol=1e-4)


def test_scalar_logsnr_broadcasts(model):
    x, lam = inputs()
    assert torch.equal(model(x, 2.0), model(x, torch.full((4,), 2.0, dtype=x.dtype)))


def test_double_backward(model):
    x, lam = inputs()
    x.requires_grad_(True)
    w = torch.randn_like(x)
    (g,) = torch.autograd.grad((model(x, lam) * w).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad((g * g).sum(), x)
    assert torch.isfinite(gg).all() and gg.abs().max() > 0


def test_jvp_matches_finite_difference_and_backpropagates(model):
    x, lam = inputs()
    v = torch.randn_like(x)
    x.requires_grad_(True)
    out, jv = torch.func.jvp(lambda y: model(y, lam), (x,), (v,))
    eps = 1e-6
    with torch.no_grad():
        fd = (model(x + eps * v, lam) - model(x - eps * v, lam)) / (2 * eps)
    assert_close_rel(jv.detach(), fd, rtol=1e-6)
    # Hutchinson-style divergence term, back-propagated to inputs and parameters
    (v * jv).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# ----------------------------------------------------------------------------- checks
def test_wrong_atom_count_is_refused():
    model = make_model()
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, 9, 3\).*9-atom"):
        model(torch.randn(2, 22, 3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="x: expected shape"):
        model(torch.randn(_N, 3, dtype=torch.float64), torch.zeros((), dtype=torch.float64))
    with pytest.raises(ValueError, match="logsnr"):
        model(torch.randn(2, _N, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="dtype"):
        model(torch.randn(2, _N, 3, dtype=torch.float32), torch.zeros(2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_cuda_without_cuda_raises_and_auto_warns():
    config = EGNNConfig.from_topology(ethanol_topology(), hidden=8, n_layers=1)
    with pytest.raises(ValueError, match="CUDA is not available"):
        EGNNDenoiser(config, device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        EGNNDenoiser.from_config(config, device="cuda")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        model = EGNNDenoiser(config, device="auto")
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="atom_types"):
        EGNNConfig(atom_types=(0, 3), n_atom_types=2)
    with pytest.raises(ValueError, match="bonds"):
        EGNNConfig(atom_types=(0, 1), n_atom_types=2, bonds=((0, 5),))
    with pytest.raises(ValueError, match="cutoff"):
        EGNNConfig(atom_types=(0, 1), n_atom_types=2, cutoff=-1.0)
