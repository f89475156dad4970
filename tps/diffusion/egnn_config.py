"""The graph and architecture of an :class:`~tps.diffusion.egnn.EGNNDenoiser`: atom types and bonds
from a topology, the frozen :class:`EGNNConfig`, and the device a network runs on.

Re-exported by :mod:`tps.diffusion.egnn` (import them from there or from here).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["EGNNConfig", "atom_types_from_topology", "bonds_from_topology", "resolve_device"]


# ----------------------------------------------------------------------------- topology
def atom_types_from_topology(topology) -> tuple:
    """Integer atom types from element and bonded environment.

    The type key of an atom is ``(atomic number, sorted atomic numbers of its bonded
    neighbours)``; keys are numbered in sorted order, so identical atoms (e.g. the three
    hydrogens of a methyl group, all ``(1, (6,))``) share a type and permuting them is a
    symmetry of the network.

    Parameters
    ----------
    topology : mdtraj.Topology
        Must carry bonds (``topology.create_standard_bonds()`` for a PDB without CONECT).

    Returns
    -------
    tuple of int, length ``n_atoms``
        Type index of each atom, in ``range(n_atom_types)`` where
        ``n_atom_types = max(types) + 1``.

    Examples
    --------
    Alanine dipeptide has 8 atom environments; the three methyl hydrogens of ACE share one:

    >>> import mdtraj
    >>> from tps.systems import alanine_dipeptide
    >>> types = atom_types_from_topology(mdtraj.Topology.from_openmm(alanine_dipeptide.topology()))
    >>> len(types), max(types) + 1, types[:4]               # CH3, H1, H2, H3 of ACE
    (22, 8, (2, 0, 0, 0))
    """
    keys = _environment_keys(topology)
    table = {k: i for i, k in enumerate(sorted(set(keys)))}
    return tuple(table[k] for k in keys)


def bonds_from_topology(topology) -> tuple:
    """Bonds of an ``mdtraj.Topology`` as sorted pairs of atom indices.

    Parameters
    ----------
    topology : mdtraj.Topology

    Returns
    -------
    tuple of (int, int)
        ``(i, j)`` with ``i < j``, sorted.

    Examples
    --------
    >>> import mdtraj
    >>> from tps.systems import alanine_dipeptide
    >>> bonds = bonds_from_topology(mdtraj.Topology.from_openmm(alanine_dipeptide.topology()))
    >>> len(bonds), bonds[:3]                                # a tree: n_atoms - 1 bonds
    (21, ((0, 1), (0, 2), (0, 3)))
    """
    pairs = {tuple(sorted((int(a.index), int(b.index)))) for a, b in topology.bonds}
    return tuple(sorted(pairs))


def _environment_keys(topology) -> list:
    neighbours = [[] for _ in range(topology.n_atoms)]
    for a, b in topology.bonds:
        neighbours[a.index].append(_atomic_number(b))
        neighbours[b.index].append(_atomic_number(a))
    return [(_atomic_number(atom), tuple(sorted(neighbours[atom.index]))) for atom in topology.atoms]


def _atomic_number(atom) -> int:
    element = atom.element
    if element is None:  # virtual sites, unknown elements
        return 0
    return int(element.atomic_number)


def _bond_hops(n_atoms: int, bonds, max_hops: int) -> np.ndarray:
    """Shortest bond-path length between atom pairs, capped: 0 means "more than max_hops"."""
    hops = np.zeros((n_atoms, n_atoms), dtype=np.int64)
    if max_hops <= 0 or not bonds:
        return hops
    adjacency = np.zeros((n_atoms, n_atoms), dtype=bool)
    for i, j in bonds:
        adjacency[i, j] = adjacency[j, i] = True
    reached = np.eye(n_atoms, dtype=bool)
    frontier = np.eye(n_atoms, dtype=bool)
    for k in range(1, max_hops + 1):
        frontier = (frontier.astype(np.int64) @ adjacency.astype(np.int64) > 0) & ~reached
        hops[frontier] = k
        reached |= frontier
    return hops


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class EGNNConfig:
    """Architecture of an :class:`EGNNDenoiser` (JSON-serialisable, immutable).

    Parameters
    ----------
    atom_types : tuple of int, length ``n_atoms``
        Type index of every atom, e.g. from :func:`atom_types_from_topology`.
    n_atom_types : int
        Size of the atom-type embedding table (``> max(atom_types)``).
    bonds : tuple of (int, int)
        Covalent bonds; edges carry a one-hot of the bond-path distance (1..``max_bond_hops``
        or "further"). Empty: no bond information.
    max_bond_hops : int
        Longest bond path encoded on edges (3 distinguishes 1-2, 1-3 and 1-4 pairs).
    hidden : int
        Width of node features and messages.
    n_layers : int
        Number of EGNN layers.
    cutoff : float or None
        Radius of the graph in model-coordinate units of the network input ``c_in x``;
        ``None`` connects all pairs. Messages are multiplied by the smooth envelope
        ``(1 - d^2/cutoff^2)^3`` so the output is continuous (C2) as pairs enter or leave.
    logsnr_embedding_dim : int
        Number of sinusoidal features of ``lam`` (even), from
        :func:`tps.diffusion.embedding.logsnr_embedding`; an MLP of them is concatenated to
        the atom-type embedding to form the initial node features.
    n_radial : int
        Number of Gaussian radial features ``exp(-d^2 / w_k^2)`` per edge.
    radial_max : float
        Largest width ``w_k`` of the radial features (model units); widths are geometric
        from ``radial_max / 2**(n_radial - 1)`` up to it.
    sigma_data : float
        Per-coordinate standard deviation of the (centred, scaled) data, for preconditioning.
    chiral : bool
        ``False`` (default): E(3)-equivariant, so the learned density is symmetric under
        reflection and gives a molecule and its mirror image (e.g. L- and D-alanine) equal
        weight. ``True``: add a cross-product coordinate term (see :class:`EGNNLayer`) that
        keeps rotation, translation and permutation equivariance but can tell enantiomers
        apart (SE(3) only).

    Raises
    ------
    ValueError
        If there are fewer than 2 atoms, an atom type or bond is out of range, or a size,
        width or cutoff is not positive (``logsnr_embedding_dim`` must be even).

    Examples
    --------
    >>> import mdtraj
    >>> from tps.systems import alanine_dipeptide
    >>> top = mdtraj.Topology.from_openmm(alanine_dipeptide.topology())
    >>> config = EGNNConfig.from_topology(top, hidden=16, n_layers=2)
    >>> config.n_atoms, config.n_atom_types, len(config.bonds)
    (22, 8, 21)
    >>> EGNNConfig.from_json(config.to_json()) == config
    True
    """

    atom_types: tuple
    n_atom_types: int
    bonds: tuple = ()
    max_bond_hops: int = 3
    hidden: int = 64
    n_layers: int = 4
    cutoff: float | None = None
    logsnr_embedding_dim: int = 16
    n_radial: int = 8
    radial_max: float = 4.0
    sigma_data: float = 1.0
    chiral: bool = False

    def __post_init__(self):
        object.__setattr__(self, "atom_types", tuple(int(t) for t in self.atom_types))
        object.__setattr__(self, "bonds", tuple(tuple(sorted((int(i), int(j)))) for i, j in self.bonds))
        n = len(self.atom_types)
        if n < 2:
            raise ValueError(f"atom_types: expected at least 2 atoms, got {n}")
        if min(self.atom_types) < 0 or max(self.atom_types) >= self.n_atom_types:
            raise ValueError(
                f"atom_types: expected values in range(n_atom_types={self.n_atom_types}), "
                f"got min {min(self.atom_types)}, max {max(self.atom_types)}"
            )
        for i, j in self.bonds:
            if not (0 <= i < n and 0 <= j < n) or i == j:
                raise ValueError(f"bonds: invalid bond ({i}, {j}) for {n} atoms")
        for name in ("hidden", "n_layers", "n_radial"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)!r}")
        if self.max_bond_hops < 0:
            raise ValueError(f"max_bond_hops: expected >= 0, got {self.max_bond_hops!r}")
        if self.logsnr_embedding_dim <= 0 or self.logsnr_embedding_dim % 2:
            raise ValueError(f"logsnr_embedding_dim: expected a positive even integer, got {self.logsnr_embedding_dim!r}")
        if self.cutoff is not None and not (math.isfinite(self.cutoff) and self.cutoff > 0):
            raise ValueError(f"cutoff: expected None or a positive number, got {self.cutoff!r}")
        for name in ("sigma_data", "radial_max"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: expected a positive number, got {v!r}")

    @property
    def n_atoms(self) -> int:
        """Number of atoms of the molecule the model is built for."""
        return len(self.atom_types)

    @classmethod
    def from_topology(cls, topology, **kwargs) -> "EGNNConfig":
        """Config for an ``mdtraj.Topology``: atom types and bonds from it, the rest from ``kwargs``."""
        types = atom_types_from_topology(topology)
        return cls(atom_types=types, n_atom_types=max(types) + 1, bonds=bonds_from_topology(topology), **kwargs)

    def to_dict(self) -> dict:
        """Plain-Python dictionary (tuples become lists under ``json.dumps``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EGNNConfig":
        """Inverse of :meth:`to_dict`; accepts lists where tuples are expected."""
        return cls(**data)

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "EGNNConfig":
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


# ----------------------------------------------------------------------------- device
def resolve_device(device) -> torch.device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:k"``, ``"auto"`` or a ``torch.device`` into a device.

    ``"auto"`` picks CUDA when available and otherwise warns and uses the CPU; asking for
    CUDA on a machine without it raises ``ValueError``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If ``device`` is not a valid device string, or CUDA is requested but not available.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        warnings.warn("device='auto': CUDA is not available, using the CPU", stacklevel=3)
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:<k>' or 'auto', got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} was requested but CUDA is not available on this machine; "
                             "use device='cpu' or device='auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device: {device!r} requested but only {torch.cuda.device_count()} CUDA devices exist")
    elif dev.type != "cpu":
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:<k>' or 'auto', got {device!r}")
    return dev
