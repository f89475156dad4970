"""Alanine dipeptide (ACE-ALA-NME, 22 atoms) in vacuum with amber99sbildn.

The structures were built offline from ideal geometry and minimised by
``systems/alanine_dipeptide/build.py`` (provenance in ``systems/alanine_dipeptide/README.md``);
the files live in ``tps/systems/data/alanine_dipeptide/``.

Physical setting (MD units: nm, ps, kJ/mol, K, radians)
-------------------------------------------------------
- force field ``amber99sbildn.xml``, vacuum, ``NoCutoff``;
- ``HBonds`` constraints for MD with ``flexibleConstraints=True``, so the bonds to hydrogen
  keep their harmonic terms and :class:`~tps.potentials.openmm.OpenMMPotential` evaluates the
  full force field at any positions;
- 300 K, ``LangevinMiddleIntegrator`` with friction 1/ps and a 2 fs step (:func:`integrator`).

Accessors for all-atom work: :func:`read_structure`, :func:`minimized_structures`,
:func:`create_openmm_system`, :func:`integrator`, :func:`reference_minima`,
:func:`load_free_energy_surface`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit
import torch

from tps.core.units import check_radians  # noqa: F401 - re-exported (tps.systems.alanine_dipeptide.check_radians)
from tps.potentials.openmm import OpenMMPotential, PhiPsi, boltzmann_kT
from tps.states import Ball
from tps.systems import register
from tps.systems.base import ReferenceValue, System
from tps.systems.molecule import MoleculeSystem
from tps.systems.protocols import ConstraintProtocol, GeodesicOptions, Protocols, TrainingProtocol, sampler_protocol

NAME = "alanine-dipeptide"
DESCRIPTION = ("alanine dipeptide all-atom (22 atoms, amber99sbildn, vacuum, 300 K), C5 -> C7ax, "
               "paths run inside OpenMM")
FORCE_FIELD = "amber99sbildn.xml"
TEMPERATURE = 300.0  # K
FRICTION = 1.0  # 1/ps
TIMESTEP = 0.002  # ps
#: Boltzmann constant times 300 K, kJ/mol.
KT = boltzmann_kT(TEMPERATURE)
ENDPOINT_NAMES = ("C5", "C7ax", "C7eq")
STATE_RADIUS = 0.75  # rad

#: Atom names per residue, as OpenMM's PDB reader standardises them.
EXPECTED_ATOMS = {
    "ACE": ("CH3", "H1", "H2", "H3", "C", "O"),
    "ALA": ("N", "H", "CA", "HA", "CB", "HB1", "HB2", "HB3", "C", "O"),
    "NME": ("N", "H", "C", "H1", "H2", "H3"),
}


def data_dir() -> Path:
    """Directory of the bundled files (structures, minima.json, fes_phipsi.dat).

    Examples
    --------
    >>> sorted(p.name for p in data_dir().glob("*.pdb"))
    ['C5.pdb', 'C7ax.pdb', 'C7eq.pdb']
    """
    return Path(str(resources.files("tps.systems") / "data" / "alanine_dipeptide"))


# ------------------------------------------------------------------- structures
def check_structure(topology: app.Topology) -> None:
    """Raise ``ValueError`` naming the residue and atom if ``topology`` is not ACE-ALA-NME.

    Checks residue names and order, then the exact atom-name set of each residue.

    Parameters
    ----------
    topology : openmm.app.Topology

    Raises
    ------
    ValueError
        Naming the first wrong residue, or the missing, unexpected or duplicated atoms.

    Examples
    --------
    >>> check_structure(topology())                      # the bundled molecule passes silently
    """
    residues = list(topology.residues())
    names = [r.name for r in residues]
    if names != list(EXPECTED_ATOMS):
        raise ValueError(f"structure: expected residues ACE, ALA, NME in that order, found {', '.join(names)}")
    for residue in residues:
        expected = EXPECTED_ATOMS[residue.name]
        found = [a.name for a in residue.atoms()]
        label = f"{residue.name}{residue.id}"
        missing = [a for a in expected if a not in found]
        extra = [a for a in found if a not in expected]
        if missing:
            raise ValueError(f"structure: residue {label} is missing atom(s) {', '.join(missing)}")
        if extra:
            raise ValueError(f"structure: residue {label} has unexpected atom(s) {', '.join(extra)}")
        if len(found) != len(set(found)):
            dup = sorted({a for a in found if found.count(a) > 1})
            raise ValueError(f"structure: residue {label} has duplicated atom(s) {', '.join(dup)}")


def read_structure(path) -> Tuple[app.Topology, np.ndarray]:
    """Read and validate an ACE-ALA-NME PDB file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    topology : openmm.app.Topology
    positions : ndarray, shape ``(22, 3)``, nm

    Raises
    ------
    ValueError
        If the file is not ACE-ALA-NME (see :func:`check_structure`).

    Examples
    --------
    >>> top, positions = read_structure(data_dir() / "C5.pdb")
    >>> top.getNumAtoms(), positions.shape
    (22, (22, 3))
    """
    pdb = app.PDBFile(str(path))
    check_structure(pdb.topology)
    return pdb.topology, pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)


def minimized_structures() -> Dict[str, np.ndarray]:
    """The three minimised endpoint structures (C5, C7ax, C7eq), name -> ndarray ``(22, 3)`` in nm.

    Read at full precision from ``minima.json`` (the PDB files round to 0.001 Angstrom, which
    alone leaves force RMS ~ 20 kJ/mol/nm on the stiff bonds); atom order is that of the
    bundled PDB files.

    Examples
    --------
    >>> s = minimized_structures()
    >>> sorted(s), s["C5"].shape, s["C5"].dtype
    (['C5', 'C7ax', 'C7eq'], (22, 3), dtype('float64'))
    """
    minima = reference_minima()["minima"]
    return {name: np.asarray(minima[name]["positions_nm"], dtype=np.float64) for name in ENDPOINT_NAMES}


def topology() -> app.Topology:
    """OpenMM topology of the bundled molecule (atom order of every bundled file).

    Examples
    --------
    >>> [r.name for r in topology().residues()], topology().getNumAtoms()
    (['ACE', 'ALA', 'NME'], 22)
    """
    return read_structure(data_dir() / "C7eq.pdb")[0]


def create_openmm_system(topology: app.Topology, *, constraints=app.HBonds, flexible_constraints: bool = True):
    """``amber99sbildn.xml`` vacuum system for ``topology``.

    Parameters
    ----------
    topology : openmm.app.Topology
    constraints : openmm.app constraint type or None
        Default ``HBonds``.
    flexible_constraints : bool
        Keep harmonic terms of constrained bonds (default True), so energies of arbitrary
        positions include them.

    Returns
    -------
    openmm.System
        Vacuum, ``NoCutoff``; energies in kJ/mol.

    Raises
    ------
    ValueError
        Naming the residue and its atoms when the force field has no template for it.

    Examples
    --------
    >>> system = create_openmm_system(topology())
    >>> system.getNumParticles(), system.getNumConstraints()      # 12 X-H bonds
    (22, 12)
    """
    forcefield = app.ForceField(FORCE_FIELD)
    try:
        return forcefield.createSystem(
            topology, nonbondedMethod=app.NoCutoff, constraints=constraints, rigidWater=True,
            flexibleConstraints=flexible_constraints,
        )
    except ValueError as exc:
        templates, unmatched = forcefield.generateTemplatesForUnmatchedResidues(topology)
        detail = "; ".join(
            f"residue {r.name}{r.id} with atoms {', '.join(a.name for a in r.atoms())}" for r in unmatched
        )
        raise ValueError(f"structure: {FORCE_FIELD} cannot template {detail or 'a residue'} ({exc})") from exc


def integrator(*, timestep: float = TIMESTEP, seed: int = 0) -> openmm.LangevinMiddleIntegrator:
    """``LangevinMiddleIntegrator`` at 300 K, friction 1/ps, ``timestep`` in ps (default 2 fs).

    Examples
    --------
    >>> integ = integrator(seed=3)
    >>> (integ.getTemperature().value_in_unit(unit.kelvin), integ.getFriction().value_in_unit(unit.picosecond**-1),
    ...  integ.getStepSize().value_in_unit(unit.picosecond), integ.getRandomNumberSeed())
    (300.0, 1.0, 0.002, 3)
    """
    integ = openmm.LangevinMiddleIntegrator(TEMPERATURE, FRICTION, timestep)
    integ.setRandomNumberSeed(int(seed))
    return integ


def reference_minima() -> dict:
    """Contents of ``minima.json``: phi/psi (deg, rad) and energy (kJ/mol) of each endpoint.

    Examples
    --------
    >>> c5 = reference_minima()["minima"]["C5"]
    >>> c5["energy_kj_per_mol"], c5["phi_rad"], c5["psi_rad"]
    (-88.4518, -2.565986, 2.776615)
    """
    return json.loads((data_dir() / "minima.json").read_text())


# ---------------------------------------------------------------------- angles
def basin_states(centers: Dict[str, Tuple[float, float]], cv, *, radius: float = STATE_RADIUS) -> Dict[str, Ball]:
    """Balls in (phi, psi), periodic, radius in rad, around ``centers`` (name -> (phi, psi) rad).

    Parameters
    ----------
    centers : dict of str to (float, float)
        (phi, psi) in rad.
    cv : callable
        Positions ``(*batch, 22, 3)`` nm -> (phi, psi) ``(*batch, 2)`` rad, e.g.
        :class:`tps.potentials.openmm.PhiPsi`.
    radius : float
        rad.

    Returns
    -------
    dict of str to tps.states.Ball

    Examples
    --------
    >>> from tps.potentials.openmm import PhiPsi
    >>> states = basin_states({"C5": (-2.57, 2.78)}, PhiPsi(topology()))
    >>> states, bool(states["C5"](torch.as_tensor(minimized_structures()["C5"])))
    ({'C5': Ball(C5, r=0.75)}, True)
    """
    radius = float(check_radians(radius, "radius"))
    return {
        name: Ball(check_radians(c, f"centers[{name!r}]"), radius, periods=PhiPsi.periods, cv=cv, name=name)
        for name, c in centers.items()
    }


# ---------------------------------------------------------------------- surface
def load_free_energy_surface(path=None):
    """The bundled (phi, psi) free-energy grid.

    Parameters
    ----------
    path : str or Path, optional
        A ``phi psi z`` file; the bundled ``fes_phipsi.dat`` by default.

    Returns
    -------
    phi : ndarray, shape ``(n,)``, rad, uniform over ``[-pi, pi)``
    psi : ndarray, shape ``(n,)``, rad
    free_energy : ndarray, shape ``(n_psi, n_phi)``, kJ/mol, minimum 0 (``[i_psi, i_phi]``)

    Examples
    --------
    >>> phi, psi, F = load_free_energy_surface()
    >>> phi.shape, F.shape, float(F.min()), round(float(phi[1] - phi[0]), 4)   # 6 degree bins
    ((60,), (60, 60), 0.0, 0.1047)
    """
    path = data_dir() / "fes_phipsi.dat" if path is None else Path(path)
    data = np.loadtxt(path, comments="#")
    phi = np.unique(data[:, 0])
    psi = np.unique(data[:, 1])
    return phi, psi, data[:, 2].reshape(len(psi), len(phi))


def recipe_training_frames(model) -> np.ndarray:
    """Training frames ``(n_frames, 22, 3)`` nm of an all-atom model, regenerated from its
    ``tps train alanine-dipeptide`` recipe (:meth:`tps.systems.molecule.MoleculeSystem.training_frames`)."""
    return load().training_frames(model)


# -------------------------------------------------------------------- protocols
def protocols(quick: bool = False) -> Protocols:
    """Default protocols (benchmarks/aldp_cartesian.py; ``quick``: its ``--quick`` protocol).

    Examples
    --------
    >>> protocols().geodesic.n_nodes, protocols(quick=True).training.data_steps
    (8, 20000)
    """
    geodesic = GeodesicOptions(logsnr=4.0, n_points=64, n_nodes=8, max_iter=30, coarse_points=16, coarse_iter=20,
                               init_dips=(2.0, -1.0))
    sampler = sampler_protocol(n_paths=30, steps_per_point=250, frames_per_point=10, timestep=TIMESTEP,
                               friction=FRICTION)
    training = TrainingProtocol(steps=2400, batch_size=64, hidden=32, layers=3, data_steps=250_000,
                                report_interval=50, holdout_per_band=1024)
    if quick:
        geodesic = geodesic.replace(n_points=32, max_iter=8, coarse_points=12, coarse_iter=6, init_dips=())
        sampler = sampler.replace(steps_per_point=100, frames_per_point=4)
        training = training.replace(data_steps=20_000, report_interval=20, hidden=16, layers=2, steps=150,
                                    batch_size=32)
    constraints = ConstraintProtocol(low_variance_threshold=3.0, low_variance_weight=1e4, avoid_frames=8,
                                     avoid_depth_fraction=0.5, avoid_penalty_ratio=10.0)
    return Protocols(geodesic=geodesic, constraints=constraints, sampler=sampler, training=training)


# ------------------------------------------------------------------------- load
def load(*, platform="auto", state_radius: float = STATE_RADIUS, state_centers: Optional[dict] = None) -> System:
    """The bundled alanine dipeptide as a :class:`tps.systems.System`.

    Parameters
    ----------
    platform : str or sequence of str
        OpenMM platform for the potential (see :func:`tps.potentials.openmm.select_platform`).
    state_radius : float
        Radius of the (phi, psi) state balls, rad (default 0.75).
    state_centers : dict of str to (float, float), optional
        (phi, psi) in radians of each state; default: the minimised endpoints.

    Returns
    -------
    System
        ``endpoints`` are float64 tensors ``(22, 3)`` in nm; ``cv`` maps positions to
        (phi, psi) in rad; ``kT`` in kJ/mol.

    Raises
    ------
    ValueError
        If a state centre or ``state_radius`` is not in radians (outside ``[-2 pi, 2 pi]``), or
        the platform is not available.

    Examples
    --------
    >>> system = load(platform="Reference")
    >>> sorted(system.endpoints), round(system.kT, 3)            # kJ/mol at 300 K
    (['C5', 'C7ax', 'C7eq'], 2.494)
    >>> energies = system.potential.energy(torch.stack(list(system.endpoints.values())))
    >>> [round(e, 2) for e in energies.tolist()]                # kJ/mol, as in minima.json
    [-88.45, -85.0, -90.94]
    """
    top, _ = read_structure(data_dir() / "C7eq.pdb")
    potential = OpenMMPotential(create_openmm_system(top), top, platform=platform)
    cv = PhiPsi(potential.topology)
    structures = minimized_structures()
    endpoints = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in structures.items()}
    minima = reference_minima()["minima"]
    if state_centers is None:
        state_centers = {k: (minima[k]["phi_rad"], minima[k]["psi_rad"]) for k in ENDPOINT_NAMES}
    states = basin_states(state_centers, cv, radius=state_radius)
    src = "systems/alanine_dipeptide/build.py (restrained then unrestrained L-BFGS minimisation)"
    reference = {}
    for k in ENDPOINT_NAMES:
        reference[f"{k}_energy"] = ReferenceValue(minima[k]["energy_kj_per_mol"], "kJ/mol", src)
        reference[f"{k}_phi"] = ReferenceValue(minima[k]["phi_rad"], "rad", src)
        reference[f"{k}_psi"] = ReferenceValue(minima[k]["psi_rad"], "rad", src)
    fes_meta = data_dir() / "fes_phipsi.json"
    if fes_meta.exists():
        meta = json.loads(fes_meta.read_text())
        for k, v in meta.get("basin_free_energies_kj_per_mol", {}).items():
            reference[f"{k}_free_energy"] = ReferenceValue(v, "kJ/mol", "fes_phipsi.dat (well-tempered metadynamics)")
    return MoleculeSystem(
        name=NAME, potential=potential, kT=KT, endpoints=endpoints, states=states,
        topology=potential.topology, cv=cv, reference=reference, description=DESCRIPTION, energy_unit="kJ/mol",
        start="C5", target="C7ax", pretrained=NAME, force_field=FORCE_FIELD, temperature=TEMPERATURE,
        timestep=TIMESTEP, friction=FRICTION, openmm_factory=create_openmm_system,
        free_energy_surface=load_free_energy_surface, openmm_topology=top,
    )


register(NAME, load, protocols=protocols, description=DESCRIPTION)
