"""OpenMM force fields as a :class:`~tps.potentials.base.Potential`, plus torsion helpers.

Positions are plain tensors in OpenMM's MD units: nm in, kJ/mol and kJ/mol/nm out. One
:class:`openmm.Context` is created per potential and reused for every evaluation.

Platform choice (:func:`select_platform`): for a 22-atom vacuum system the single-threaded
``Reference`` platform runs 30 000 - 97 000 MD steps/s on the project's 2-core CPU machines
(depending on load), the ``CPU`` platform about 3 000 steps/s (its per-step thread and
neighbour-list overhead dominates for tiny systems). ``Reference`` scales as O(N^2) without
cut-offs, so ``"auto"`` uses it only up to :data:`REFERENCE_MAX_ATOMS` atoms; see that constant.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import openmm
import openmm.unit as unit
import torch

from tps.core.units import boltzmann_kT as _core_kT
from tps.potentials.base import Potential

#: Largest system for which ``select_platform(..., "auto")`` picks ``Reference`` on a machine
#: without CUDA. Measured here (2-core CPU shared with other jobs, LangevinMiddleIntegrator 2 fs,
#: HBonds, NoCutoff, CPU platform restricted to one thread; steps/s Reference vs CPU):
#: ALDP 22 atoms 28 000 vs 3 000; ALDP + 10 waters (52 atoms) 8 500 vs 2 300; 148 atoms
#: 1 500 vs 1 800; 241 atoms 520 vs 1 200. Reference is O(N^2) without cut-offs and the
#: crossover lies near 130 atoms single-threaded (earlier with more CPU threads), hence 100.
REFERENCE_MAX_ATOMS = 100

_KJ = unit.kilojoule_per_mole
_KJ_NM = unit.kilojoule_per_mole / unit.nanometer


def available_platforms() -> list:
    """Names of the OpenMM platforms this installation can use, e.g. ``['Reference', 'CPU']``.

    Examples
    --------
    >>> "Reference" in available_platforms()      # always present
    True
    """
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def select_platform(n_atoms: int, platform: Union[str, Sequence[str]] = "auto") -> openmm.Platform:
    """Choose an OpenMM platform for a system of ``n_atoms`` atoms.

    Parameters
    ----------
    n_atoms : int
        Number of particles of the system.
    platform : str or sequence of str
        ``"auto"``: ``CUDA`` when available, else ``Reference`` for at most
        :data:`REFERENCE_MAX_ATOMS` atoms, else ``CPU``.
        A platform name (``"CUDA"``, ``"OpenCL"``, ``"CPU"``, ``"Reference"``): that platform;
        ``ValueError`` listing the available ones if it is missing.
        A sequence of names is a list of preferences: the first available one is used; when
        none is available the ``"auto"`` choice is used with a ``UserWarning`` that names the
        available platforms.

    Returns
    -------
    openmm.Platform

    Raises
    ------
    ValueError
        If a single named platform is not available.

    Examples
    --------
    >>> select_platform(22, "reference").getName()             # case-insensitive
    'Reference'
    >>> select_platform(22, ["NoSuchPlatform", "Reference"]).getName()
    'Reference'
    """
    names = available_platforms()
    if isinstance(platform, str) and platform.lower() != "auto":
        for name in names:
            if name.lower() == platform.lower():
                return openmm.Platform.getPlatformByName(name)
        raise ValueError(f"platform: {platform!r} is not available; available platforms: {', '.join(names)}")
    if not isinstance(platform, str):
        wanted = [str(p) for p in platform]
        for want in wanted:
            for name in names:
                if name.lower() == want.lower():
                    return openmm.Platform.getPlatformByName(name)
        choice = _auto_platform_name(int(n_atoms), names)
        warnings.warn(
            f"platform: none of {wanted} is available; using {choice!r} (available platforms: {', '.join(names)})",
            stacklevel=2,
        )
        return openmm.Platform.getPlatformByName(choice)
    return openmm.Platform.getPlatformByName(_auto_platform_name(int(n_atoms), names))


def _auto_platform_name(n_atoms: int, names: list) -> str:
    if "CUDA" in names:
        return "CUDA"
    if n_atoms <= REFERENCE_MAX_ATOMS or "CPU" not in names:
        return "Reference"
    return "CPU"


class OpenMMPotential(Potential):
    """Energy and forces of an :class:`openmm.System`, batched over configurations.

    Parameters
    ----------
    system : openmm.System
        The force field applied to the molecule. Constraints are ignored for energy and
        force evaluation (positions are taken as given).
    topology : openmm.app.Topology or mdtraj.Topology, optional
        Kept for CV definitions and file output (``self.topology`` is an ``mdtraj.Topology``).
    platform : str or sequence of str
        Passed to :func:`select_platform` (default ``"auto"``).
    platform_properties : dict, optional
        OpenMM platform properties, e.g. ``{"Precision": "double"}`` for CUDA.

    Raises
    ------
    ValueError
        If ``topology`` and ``system`` differ in atom count, or the platform is unavailable.
    TypeError
        If ``topology`` is neither an OpenMM nor an mdtraj topology.

    Notes
    -----
    Positions: Tensor ``(*batch, n_atoms, 3)`` in nm. Energies ``(*batch,)`` in kJ/mol,
    forces ``(*batch, n_atoms, 3)`` in kJ/mol/nm, both in the dtype of the input (use
    float64). Each configuration costs one OpenMM evaluation on a single reused
    ``Context``; ``n_evals`` counts configurations.
    :meth:`energy` is differentiable: its backward pass uses OpenMM's forces.

    Examples
    --------
    The bundled alanine dipeptide C5 minimum (reference energy -88.4518 kJ/mol in
    ``minima.json``); autograd through :meth:`energy` gives minus OpenMM's forces:

    >>> import torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> c5 = torch.as_tensor(alanine_dipeptide.minimized_structures()["C5"])     # (22, 3) nm
    >>> U = OpenMMPotential(alanine_dipeptide.create_openmm_system(top), top, platform="Reference")
    >>> round(float(U.energy(c5)), 2), U.n_atoms, U.energy_unit
    (-88.45, 22, 'kJ/mol')
    >>> x = torch.stack([c5, c5 + 0.01]).requires_grad_(True)   # (2, 22, 3): batched
    >>> U.energy(x).sum().backward()
    >>> torch.allclose(x.grad, -U.forces(x.detach()))
    True
    >>> U.n_evals
    5
    """

    def __init__(self, system: openmm.System, topology=None, *, platform="auto", platform_properties=None):
        n_atoms = system.getNumParticles()
        super().__init__((n_atoms, 3), energy_unit="kJ/mol")
        self.system = system
        self.topology = as_mdtraj_topology(topology)
        if self.topology is not None and self.topology.n_atoms != n_atoms:
            raise ValueError(
                f"topology: has {self.topology.n_atoms} atoms but the system has {n_atoms} particles"
            )
        self.platform = select_platform(n_atoms, platform)
        self.platform_properties = dict(platform_properties or {})
        # The integrator of the evaluation context never steps; it only has to exist.
        self.context = self.make_context(openmm.VerletIntegrator(0.001))

    @property
    def n_atoms(self) -> int:
        """Number of particles of the system."""
        return self.event_shape[0]

    def make_context(self, integrator: openmm.Integrator, *, platform=None) -> openmm.Context:
        """A new :class:`openmm.Context` of this system with ``integrator``, for MD.

        Parameters
        ----------
        integrator : openmm.Integrator
            E.g. ``openmm.LangevinMiddleIntegrator(300, 1, 0.002)`` (K, 1/ps, ps).
        platform : str or sequence of str, optional
            Default: the potential's own platform.
        """
        chosen = self.platform if platform is None else select_platform(self.n_atoms, platform)
        props = self.platform_properties if chosen.getName() == self.platform.getName() else {}
        return openmm.Context(self.system, integrator, chosen, props)

    # ------------------------------------------------------------- implementation
    def _evaluate(self, x: torch.Tensor, forces: bool):
        flat = x.detach().to("cpu", torch.float64).reshape(-1, self.n_atoms, 3).numpy()
        energies = np.empty(flat.shape[0])
        grads = np.empty_like(flat) if forces else None
        for i, pos in enumerate(flat):
            self.context.setPositions(pos)
            state = self.context.getState(getEnergy=True, getForces=forces)
            energies[i] = state.getPotentialEnergy().value_in_unit(_KJ)
            if forces:
                grads[i] = state.getForces(asNumpy=True).value_in_unit(_KJ_NM)
        batch = x.shape[:-2]
        e = torch.from_numpy(energies).to(dtype=x.dtype, device=x.device).reshape(batch)
        f = None if grads is None else torch.from_numpy(grads).to(dtype=x.dtype, device=x.device).reshape(x.shape)
        return e, f

    def _energy(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            return _OpenMMEnergy.apply(x, self)
        return self._evaluate(x, forces=False)[0]

    def _energy_and_forces(self, x: torch.Tensor):
        return self._evaluate(x, forces=True)

    def __repr__(self) -> str:
        return f"OpenMMPotential(n_atoms={self.n_atoms}, platform={self.platform.getName()!r})"


class _OpenMMEnergy(torch.autograd.Function):
    """Energy whose gradient is minus OpenMM's forces (one evaluation for both)."""

    @staticmethod
    def forward(ctx, x, potential):
        e, f = potential._evaluate(x, forces=True)
        ctx.save_for_backward(f)
        return e

    @staticmethod
    def backward(ctx, grad_e):
        (f,) = ctx.saved_tensors
        return -f * grad_e[..., None, None], None


def as_mdtraj_topology(topology):
    """An ``mdtraj.Topology`` from an ``openmm.app.Topology`` or ``mdtraj.Topology`` (``None`` passes through).

    Raises
    ------
    TypeError
        For any other type.

    Examples
    --------
    >>> from tps.systems import alanine_dipeptide
    >>> top = as_mdtraj_topology(alanine_dipeptide.topology())
    >>> top.n_atoms, top.n_bonds, [r.name for r in top.residues]
    (22, 21, ['ACE', 'ALA', 'NME'])
    """
    if topology is None:
        return None
    import mdtraj

    if isinstance(topology, mdtraj.Topology):
        return topology
    if isinstance(topology, openmm.app.Topology):
        return mdtraj.Topology.from_openmm(topology)
    raise TypeError(f"topology: expected an openmm.app.Topology or mdtraj.Topology, got {type(topology).__name__}")


def positions_nm(x) -> np.ndarray:
    """Positions as a float64 array in nm from an array, tensor, nested list or OpenMM ``Quantity``.

    A ``Quantity`` (e.g. ``openmm.app.PDBFile(...).positions``, a list of ``Vec3`` in nm) is
    converted with its unit; anything else is taken to be in nm already.

    Examples
    --------
    >>> import openmm, openmm.unit as unit
    >>> positions_nm([openmm.Vec3(1.0, 2.0, 3.0)] * unit.angstrom).tolist()
    [[0.1, 0.2, 0.3]]
    """
    if unit.is_quantity(x):
        x = x.value_in_unit(unit.nanometer)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray([list(v) for v in x] if len(x) and isinstance(x[0], openmm.Vec3) else x, dtype=np.float64)


def boltzmann_kT(temperature: float) -> float:
    """``k_B T`` in kJ/mol for ``temperature`` in K (``R * T`` with OpenMM's gas constant).

    Examples
    --------
    >>> round(boltzmann_kT(300.0), 4)
    2.4943
    """
    return _core_kT(temperature)  # tps.core.units.boltzmann_kT: the same float as OpenMM's unit arithmetic


# ---------------------------------------------------------------------- torsions
def dihedrals(positions, indices) -> torch.Tensor:
    """Torsion angles of atom quadruples, batched and differentiable.

    Parameters
    ----------
    positions : Tensor, shape ``(*batch, n_atoms, 3)``, nm
    indices : int array, shape ``(n_dihedrals, 4)``
        Atom indices ``(i, j, k, l)`` of each torsion about the ``j-k`` bond.

    Returns
    -------
    Tensor, shape ``(*batch, n_dihedrals)``, radians in ``(-pi, pi]``, IUPAC sign convention
    (the same as ``mdtraj.compute_dihedrals``).

    Raises
    ------
    ValueError
        If ``indices`` is not of shape ``(n_dihedrals, 4)``.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    >>> dihedrals(x, [[0, 1, 2, 3]])                  # +90 degrees
    tensor([1.5708])
    """
    x = torch.as_tensor(positions)
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long, device=x.device)
    if idx.dim() != 2 or idx.shape[-1] != 4:
        raise ValueError(f"indices: expected shape (n_dihedrals, 4), got {tuple(idx.shape)}")
    p0, p1, p2, p3 = (x[..., idx[:, k], :] for k in range(4))
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1 = torch.cross(b0, b1, dim=-1)
    n2 = torch.cross(b1, b2, dim=-1)
    b1_unit = b1 / b1.norm(dim=-1, keepdim=True)
    m1 = torch.cross(b1_unit, n1, dim=-1)
    return torch.atan2((m1 * n2).sum(-1), (n1 * n2).sum(-1))


def phi_psi_indices(topology) -> np.ndarray:
    """Atom indices of the backbone phi and psi torsions, found by ``mdtraj.compute_phi/psi``.

    Parameters
    ----------
    topology : mdtraj.Topology or openmm.app.Topology
        A topology with exactly one phi and one psi torsion (a dipeptide).

    Returns
    -------
    ndarray of int, shape ``(2, 4)``: row 0 is phi = C(i-1)-N-CA-C, row 1 psi = N-CA-C-N(i+1).

    Raises
    ------
    ValueError
        If the topology does not have exactly one phi and one psi torsion.

    Examples
    --------
    >>> from tps.systems import alanine_dipeptide
    >>> phi_psi_indices(alanine_dipeptide.topology()).tolist()
    [[4, 6, 8, 14], [6, 8, 14, 16]]
    """
    import mdtraj

    top = as_mdtraj_topology(topology)
    traj = mdtraj.Trajectory(np.zeros((1, top.n_atoms, 3)), top)
    phi, _ = mdtraj.compute_phi(traj)
    psi, _ = mdtraj.compute_psi(traj)
    if len(phi) != 1 or len(psi) != 1:
        raise ValueError(f"topology: expected one phi and one psi torsion, found {len(phi)} and {len(psi)}")
    return np.concatenate([phi, psi]).astype(np.int64)


def phi_psi(positions, topology) -> torch.Tensor:
    """(phi, psi) of a dipeptide: ``(*batch, n_atoms, 3)`` nm -> ``(*batch, 2)`` rad, differentiable.

    Indices come from :func:`phi_psi_indices` on every call; build a :class:`PhiPsi` once to
    reuse them.

    Examples
    --------
    >>> import torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> c5 = torch.as_tensor(alanine_dipeptide.minimized_structures()["C5"])     # (22, 3) nm
    >>> [round(v, 3) for v in phi_psi(c5, top).tolist()]      # minima.json: -2.566, 2.777
    [-2.566, 2.777]
    """
    return dihedrals(positions, phi_psi_indices(topology))


class PhiPsi:
    """The (phi, psi) collective variable of a dipeptide, as a callable.

    Parameters
    ----------
    topology : mdtraj.Topology or openmm.app.Topology

    Calling it maps positions ``(*batch, n_atoms, 3)`` in nm to ``(*batch, 2)`` radians in
    ``(-pi, pi]``; differentiable. ``indices`` is the ``(2, 4)`` array of atom indices.

    Examples
    --------
    >>> import torch
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> c5 = torch.as_tensor(alanine_dipeptide.minimized_structures()["C5"])     # (22, 3) nm
    >>> cv = PhiPsi(top)
    >>> cv
    PhiPsi(phi=[4, 6, 8, 14], psi=[6, 8, 14, 16])
    >>> cv(torch.stack([c5, c5])).shape
    torch.Size([2, 2])
    """

    periods = (2 * math.pi, 2 * math.pi)

    def __init__(self, topology):
        self.indices = phi_psi_indices(topology)

    def __call__(self, positions) -> torch.Tensor:
        return dihedrals(positions, self.indices)

    def __repr__(self) -> str:
        return f"PhiPsi(phi={self.indices[0].tolist()}, psi={self.indices[1].tolist()})"
