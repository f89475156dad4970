"""E(3)-equivariant x0-predicting denoiser for molecules (an EGNN on a per-molecule graph).

The network ``D(x, logsnr) ~= E[x0 | x_t = x]`` works in *model coordinates*: positions with
their centroid removed, divided by a scalar scale chosen outside this module so that the data
have unit-ish spread. The diffusion is variance preserving in the log signal-to-noise ratio
``lam``: ``alpha^2 = sigmoid(lam)``, ``sigma^2 = sigmoid(-lam)``, ``x_t = alpha x0 + sigma eps``.

Symmetry contract
-----------------
For data whose centroid (unweighted mean over atoms) is zero and isotropic noise, the exact
denoiser ignores the centroid of ``x_t`` (it is pure noise) and returns a centroid-free
``x0``. The network reproduces this exactly. For any rotation or reflection ``R`` (a 3x3
orthogonal matrix acting on the right), translation ``t`` (shape ``(3,)``) and permutation
``P`` of atoms that preserves the atom types and the bond graph (e.g. the three hydrogens of a
methyl group)::

    D(x @ R + t, lam) == D(x, lam) @ R          # no shift: translations are forgotten
    D(x[:, P], lam)   == D(x, lam)[:, P]
    D(x, lam).mean(dim=1) == 0

With ``EGNNConfig(chiral=True)`` the first line holds for rotations (det +1) only, so that a
model trained on one enantiomer does not also assign density to its mirror image.

Batch members are separate graphs: the output for one member does not depend on the others.

Preconditioning (EDM, Karras et al. 2022, written for the VP process)
---------------------------------------------------------------------
Shared with the other denoisers through :func:`tps.diffusion.embedding.preconditioning`.
With ``s = sigma_data`` and the centred input ``x_c = x - mean_atoms(x)``::

    c_in   = 1 / sqrt(alpha^2 s^2 + sigma^2)
    c_skip = alpha s^2 / (alpha^2 s^2 + sigma^2)
    c_out  = sigma s / sqrt(alpha^2 s^2 + sigma^2)
    D(x, lam) = c_skip x_c + c_out F(c_in x_c, lam)

``c_skip x_c`` is the exact denoiser of an isotropic Gaussian of per-coordinate standard
deviation ``s``, so an untrained network (``F ~= 0`` at initialisation) is already sensible;
``c_in x_c`` has unit-ish spread at every noise level and ``c_out`` makes ``F``'s target unit
size. ``F`` is the centred coordinate displacement produced by the EGNN layers.

Cost (alanine dipeptide, 22 atoms, 1 CPU thread, CPU time, measured 2026-11-21 on a shared
2-core machine): default size (hidden 64, 4 layers, all pairs, 140k parameters) forward +
backward of a batch of 64 ~ 0.28 s; hidden 32 / 3 layers ~ 0.13 s. For the Hutchinson
divergence ``v . (J v)`` of a batch of 128 with gradient to ``x``: ``torch.func.jvp`` then
backward ~ 2.5 s, the equal ``v . (J^T v)`` by double backward ~ 1.2 s.

Everything is smooth (SiLU, Gaussian radial features of squared distances, polynomial cutoff
envelope) so that the geometry code can differentiate Jacobian-vector products again
(``torch.func.jvp`` followed by backward, or double backward).

The graph and architecture (atom types, bonds, :class:`EGNNConfig`, :func:`resolve_device`) are
defined in :mod:`tps.diffusion.egnn_config` and re-exported here; this module holds the layers
and the denoiser.
"""


from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from tps.diffusion.egnn_config import (
    EGNNConfig, _bond_hops, atom_types_from_topology, bonds_from_topology, resolve_device,
)
from tps.diffusion.embedding import logsnr_embedding, preconditioning

__all__ = [
    "EGNNConfig",
    "EGNNDenoiser",
    "EGNNLayer",
    "atom_types_from_topology",
    "bonds_from_topology",
    "resolve_device",
]


# ----------------------------------------------------------------------------- layers
def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))


def _radial_features(d2: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """``exp(-d^2 / w_k^2)``: smooth in ``d^2`` (no square root, safe at ``d = 0``)."""
    return torch.exp(-d2 / widths**2)


class EGNNLayer(MessagePassing):
    """One E(n)-equivariant layer (Satorras, Hoogeboom & Welling 2021).

    For an edge ``j -> i`` with ``r_ij = x_i - x_j``::

        m_ij = w_ij phi_e(h_i, h_j, |r_ij|^2, rbf(|r_ij|^2), a_ij)
        x_i' = x_i + (1/Z) sum_j r_ij / sqrt(|r_ij|^2 + 1) * w_ij phi_x(m_ij)
        h_i' = h_i + phi_h(h_i, (1/Z) sum_j m_ij)

    With ``chiral=True`` the coordinate update gains the pseudovector term
    ``(1/Z) sum_j w_ij phi_c(m_ij) (c_i x c_j) / sqrt((1 + |c_i|^2)(1 + |c_j|^2))`` with
    ``c_i`` the position relative to the molecule's centroid: still equivariant under
    rotations, translations and permutations, but no longer under reflections.

    where ``a_ij`` are fixed edge attributes (bond-path one-hot, initial radial features),
    ``w_ij`` the cutoff envelope (1 for the all-pairs graph) and ``Z`` a constant
    normaliser. Messages for features and coordinates are aggregated together by one sum
    (``aggr="add"``).

    Parameters
    ----------
    hidden : int
        Node feature width.
    n_edge_attr : int
        Width of the fixed edge attributes.
    radial_widths : Tensor, shape ``(n_radial,)``
        Widths of the radial features, model units.
    chiral : bool, keyword-only
        Add the reflection-breaking cross-product term.

    Examples
    --------
    A building block of :class:`EGNNDenoiser` (whose example checks the equivariance of the
    stack); it is not used on its own.
    """

    def __init__(self, hidden: int, n_edge_attr: int, radial_widths: torch.Tensor, *, chiral: bool = False):
        super().__init__(aggr="add", node_dim=0)
        self.register_buffer("radial_widths", radial_widths.clone(), persistent=False)
        n_radial = radial_widths.numel()
        # phi_e's first linear map is split into a target part, a source part (both applied
        # per node, then gathered: much cheaper than per edge) and an edge part.
        self.edge_in_target = nn.Linear(hidden, hidden)
        self.edge_in_source = nn.Linear(hidden, hidden, bias=False)
        self.edge_in_geometry = nn.Linear(1 + n_radial + n_edge_attr, hidden, bias=False)
        self.phi_e_out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.phi_x = _mlp(hidden, hidden, 1)
        nn.init.xavier_uniform_(self.phi_x[-1].weight, gain=1e-3)
        nn.init.zeros_(self.phi_x[-1].bias)
        self.phi_h = _mlp(2 * hidden, hidden, hidden)
        self.hidden = hidden
        self.chiral = bool(chiral)
        if self.chiral:
            self.phi_c = _mlp(hidden, hidden, 1)
            nn.init.xavier_uniform_(self.phi_c[-1].weight, gain=1e-3)
            nn.init.zeros_(self.phi_c[-1].bias)

    def forward(self, h, pos, edge_index, edge_attr, edge_weight, norm: float, n_atoms: int):
        """Update node features and positions.

        Parameters
        ----------
        h : Tensor, shape ``(n_nodes, hidden)``
        pos : Tensor, shape ``(n_nodes, 3)``, model units
        edge_index : LongTensor, shape ``(2, n_edges)``; row 0 source ``j``, row 1 target ``i``
        edge_attr : Tensor, shape ``(n_edges, n_edge_attr)``
        edge_weight : Tensor, shape ``(n_edges, 1)``
        norm : float
            Constant the aggregated sums are divided by.
        n_atoms : int
            Atoms per molecule; nodes are numbered ``molecule * n_atoms + atom``.

        Returns
        -------
        h_new : Tensor, shape ``(n_nodes, hidden)``
        pos_new : Tensor, shape ``(n_nodes, 3)``
        """
        per_molecule = pos.reshape(-1, n_atoms, 3)
        centred = (per_molecule - per_molecule.mean(dim=1, keepdim=True)).reshape(-1, 3)
        agg = self.propagate(
            edge_index, a=self.edge_in_target(h), b=self.edge_in_source(h), pos=pos, c=centred,
            edge_attr=edge_attr, edge_weight=edge_weight,
        )
        agg = agg / norm
        m_i, dx = agg[:, : self.hidden], agg[:, self.hidden:]
        h_new = h + self.phi_h(torch.cat([h, m_i], dim=-1))
        return h_new, pos + dx

    def message(self, a_i, b_j, pos_i, pos_j, c_i, c_j, edge_attr, edge_weight):
        """Feature message and coordinate shift of every edge ``j -> i`` (torch_geometric hook)."""
        rel = pos_i - pos_j
        d2 = (rel * rel).sum(dim=-1, keepdim=True)
        geometry = torch.cat([d2, _radial_features(d2, self.radial_widths), edge_attr], dim=-1)
        m = self.phi_e_out(a_i + b_j + self.edge_in_geometry(geometry)) * edge_weight
        shift = rel / torch.sqrt(d2 + 1.0) * self.phi_x(m) * edge_weight
        if self.chiral:
            norms = (1.0 + (c_i * c_i).sum(-1, keepdim=True)) * (1.0 + (c_j * c_j).sum(-1, keepdim=True))
            shift = shift + torch.cross(c_i, c_j, dim=-1) * torch.rsqrt(norms) * self.phi_c(m) * edge_weight
        return torch.cat([m, shift], dim=-1)


# ----------------------------------------------------------------------------- denoiser
class EGNNDenoiser(nn.Module):
    """E(3)-equivariant, permutation-equivariant x0-predictor ``D(x, logsnr)`` for one molecule.

    Parameters
    ----------
    config : EGNNConfig
    device : str or torch.device, keyword-only
        ``"cpu"`` (default), ``"cuda"``, ``"cuda:k"`` or ``"auto"`` (CUDA if available,
        else the CPU with a warning). CUDA requested but absent raises ``ValueError``.

    Attributes
    ----------
    config : EGNNConfig
    event_shape : tuple ``(n_atoms, 3)``

    Examples
    --------
    >>> import torch
    >>> torch.set_num_threads(1)          # tiny graphs: extra threads only add contention
    >>> cfg = EGNNConfig(atom_types=(0, 1, 1), n_atom_types=2, bonds=((0, 1), (0, 2)), hidden=16, n_layers=2)
    >>> model = EGNNDenoiser(cfg)
    >>> model(torch.randn(5, 3, 3), torch.zeros(5)).shape
    torch.Size([5, 3, 3])

    Rotating the input rotates the output, and swapping the two identical atoms swaps their
    predictions:

    >>> _ = torch.manual_seed(0)
    >>> x, lam = torch.randn(5, 3, 3), torch.zeros(5)
    >>> rot, _ = torch.linalg.qr(torch.randn(3, 3))
    >>> torch.allclose(model(x @ rot.T, lam), model(x, lam) @ rot.T, atol=1e-5)
    True
    >>> torch.allclose(model(x[:, [0, 2, 1]], lam), model(x, lam)[:, [0, 2, 1]], atol=1e-5)
    True
    """

    def __init__(self, config: EGNNConfig, *, device="cpu"):
        super().__init__()
        if not isinstance(config, EGNNConfig):
            raise TypeError(f"config: expected an EGNNConfig, got {type(config).__name__}")
        dev = resolve_device(device)
        self.config = config
        n, hidden = config.n_atoms, config.hidden
        self.event_shape = (n, 3)

        self.register_buffer("atom_types", torch.tensor(config.atom_types, dtype=torch.long), persistent=False)
        hops = torch.from_numpy(_bond_hops(n, config.bonds, config.max_bond_hops))
        self.register_buffer("bond_hops", hops, persistent=False)
        src, dst = torch.nonzero(~torch.eye(n, dtype=torch.bool), as_tuple=True)
        self.register_buffer("all_pairs", torch.stack([src, dst]), persistent=False)  # (2, n (n-1)), j -> i
        widths = config.radial_max * 2.0 ** -torch.arange(config.n_radial - 1, -1, -1, dtype=torch.float32)
        self.register_buffer("radial_widths", widths, persistent=False)

        self.type_embedding = nn.Embedding(config.n_atom_types, hidden)
        self.logsnr_mlp = _mlp(config.logsnr_embedding_dim, hidden, hidden)
        self.node_in = _mlp(2 * hidden, hidden, hidden)
        self.n_edge_attr = (config.max_bond_hops + 1 if config.bonds else 0) + config.n_radial
        self.layers = nn.ModuleList(
            EGNNLayer(hidden, self.n_edge_attr, widths, chiral=config.chiral) for _ in range(config.n_layers)
        )
        self.norm = float(n - 1)
        self.to(dev)

    @classmethod
    def from_config(cls, config, *, device="cpu") -> "EGNNDenoiser":
        """Build a fresh (untrained) model from an :class:`EGNNConfig` or its ``to_dict()``."""
        if isinstance(config, dict):
            config = EGNNConfig.from_dict(config)
        return cls(config, device=device)

    # ------------------------------------------------------------------ public API
    def forward(self, x: torch.Tensor, logsnr) -> torch.Tensor:
        """Predict ``E[x0 | x_t = x]``.

        Parameters
        ----------
        x : Tensor, shape ``(B, n_atoms, 3)`` (any leading batch shape), model units
            Noisy positions ``x_t``; the centroid is ignored.
        logsnr : Tensor or float, shape ``(B,)`` (the leading batch shape) or scalar
            Log signal-to-noise ratio ``lam`` of each batch member.

        Returns
        -------
        Tensor, shape like ``x``, model units
            Centroid-free denoised positions.
        """
        x, lam, batch_shape = self._check_inputs(x, logsnr)
        out = self._denoise(x.reshape(-1, *self.event_shape), lam.reshape(-1))
        return out.reshape(*batch_shape, *self.event_shape)

    # ------------------------------------------------------------------ internals
    def _check_inputs(self, x, logsnr):
        n = self.config.n_atoms
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor of shape (batch, {n}, 3), got {type(x).__name__}")
        if x.dim() < 3 or tuple(x.shape[-2:]) != (n, 3):
            raise ValueError(
                f"x: expected shape (batch, {n}, 3) for this model of a {n}-atom molecule, got {tuple(x.shape)}"
            )
        param = self.type_embedding.weight
        if not x.is_floating_point() or x.dtype != param.dtype:
            raise TypeError(f"x: dtype {x.dtype} does not match the model's {param.dtype}; "
                            f"cast x or the model (model.double() / model.float())")
        if x.device != param.device:
            raise ValueError(f"x: on device {x.device} but the model is on {param.device}")
        batch_shape = tuple(x.shape[:-2])
        lam = torch.as_tensor(logsnr, dtype=x.dtype, device=x.device)
        if lam.dim() == 0:
            lam = lam.expand(batch_shape)
        if tuple(lam.shape) != batch_shape:
            raise ValueError(f"logsnr: expected shape {batch_shape} (the batch shape of x) or a scalar, "
                             f"got {tuple(lam.shape)}")
        return x, lam, batch_shape

    def preconditioning(self, logsnr: torch.Tensor):
        """EDM coefficients for the VP process.

        Parameters
        ----------
        logsnr : Tensor, shape ``(B,)``

        Returns
        -------
        c_in, c_skip, c_out : Tensor, each shape ``(B, 1, 1)``
        """
        c_in, c_skip, c_out = preconditioning(logsnr, self.config.sigma_data)
        return c_in[:, None, None], c_skip[:, None, None], c_out[:, None, None]

    def _denoise(self, x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``x`` shape ``(B, n, 3)``, ``lam`` shape ``(B,)`` -> shape ``(B, n, 3)``."""
        c_in, c_skip, c_out = self.preconditioning(lam)
        xc = x - x.mean(dim=1, keepdim=True)
        return c_skip * xc + c_out * self._displacement(c_in * xc, lam)

    def _displacement(self, y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """Network ``F``: centred, equivariant coordinate displacement, shape ``(B, n, 3)``."""
        n_batch, n = y.shape[0], self.config.n_atoms
        hidden = self.config.hidden
        pos0 = y.reshape(n_batch * n, 3)
        edge_index, pair_index = self._edges(y)
        src, dst = edge_index

        type_h = self.type_embedding(self.atom_types).to(y.dtype)  # (n, hidden)
        lam_h = self.logsnr_mlp(logsnr_embedding(lam, self.config.logsnr_embedding_dim))  # (B, hidden)
        h = torch.cat([type_h.expand(n_batch, n, hidden), lam_h[:, None, :].expand(n_batch, n, hidden)], dim=-1)
        h = self.node_in(h).reshape(n_batch * n, hidden)

        rel0 = pos0[dst] - pos0[src]
        d2_0 = (rel0 * rel0).sum(dim=-1, keepdim=True)
        attrs = [_radial_features(d2_0, self.radial_widths)]
        if self.config.bonds:
            n_hop_classes = self.config.max_bond_hops + 1
            hops = self.bond_hops[pair_index[1], pair_index[0]]
            attrs.append(nn.functional.one_hot(hops, n_hop_classes).to(y.dtype))
        edge_attr = torch.cat(attrs, dim=-1)
        if self.config.cutoff is None:
            edge_weight = torch.ones_like(d2_0)
        else:
            edge_weight = torch.clamp(1.0 - d2_0 / self.config.cutoff**2, min=0.0) ** 3

        pos = pos0
        for layer in self.layers:
            h, pos = layer(h, pos, edge_index, edge_attr, edge_weight, self.norm, n)
        disp = (pos - pos0).reshape(n_batch, n, 3)
        return disp - disp.mean(dim=1, keepdim=True)

    def _edges(self, y: torch.Tensor):
        """Edges of the batched graph (no edges between batch members).

        Returns
        -------
        edge_index : LongTensor, shape ``(2, n_edges)``, node ids ``b * n_atoms + atom``
        pair_index : LongTensor, shape ``(2, n_edges)``, atom ids within the molecule
        """
        n_batch, n = y.shape[0], self.config.n_atoms
        if self.config.cutoff is None:
            offsets = (torch.arange(n_batch, device=y.device) * n).repeat_interleave(self.all_pairs.shape[1])
            pairs = self.all_pairs.repeat(1, n_batch)
            return pairs + offsets, pairs
        with torch.no_grad():
            yd = y.detach()
            d2 = ((yd[:, :, None, :] - yd[:, None, :, :]) ** 2).sum(dim=-1)  # (B, n, n)
            mask = (d2 < self.config.cutoff**2) & ~torch.eye(n, dtype=torch.bool, device=y.device)
            b, i, j = torch.nonzero(mask, as_tuple=True)
        pairs = torch.stack([j, i])  # message j -> i
        return pairs + b * n, pairs
