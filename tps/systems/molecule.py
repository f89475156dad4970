"""All-atom molecules in OpenMM: one system class parameterised by data, force field, endpoints,
states and protocols (alanine and glycine dipeptide are instances).

A molecule's data directory holds ``minima.json`` (full-precision minimised structures,
``minima[name]["positions_nm"]``) and a PDB file per endpoint (topology). Physical setting:
vacuum, ``NoCutoff``, ``HBonds`` constraints with ``flexibleConstraints=True`` (energies of any
positions include the X-H bonds), Langevin at ``temperature`` K, ``timestep`` ps, ``friction``
1/ps. Model coordinates are centroid-free frames divided by one scalar scale; the target is
Kabsch-rotated onto the start (:mod:`tps.workflows.cartesian`). Units: nm, ps, kJ/mol, K, rad.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

import torch

from tps.systems.base import ModelMismatch, System, curve_parts
from tps.systems.molecule_avoidance import AvoidInputError
from tps.systems.surface import add_selection_evals, draw_phipsi, low_variance, paths_figure, payload

__all__ = ["MoleculeSystem", "AvoidInputError", "create_openmm_system", "load_molecule"]

#: Prepared (minimised, aligned) endpoints per system name: minimisation is deterministic, done once.
_ENDPOINTS: dict = {}
#: Regenerated training frames per (system, data_steps, report_interval, seed), with their fitted scale.
_RECIPE_FRAMES: dict = {}


def _oneline(exc) -> str:
    return " ".join(str(exc).split())


def create_openmm_system(topology, force_field: str = "amber99sbildn.xml"):
    """Vacuum ``NoCutoff`` system of ``force_field`` with ``HBonds`` constraints kept flexible.

    Examples
    --------
    >>> from tps.systems import alanine_dipeptide as aldp
    >>> create_openmm_system(aldp.topology()).getNumConstraints()
    12
    """
    import openmm.app as app

    return app.ForceField(force_field).createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds,
                                                    rigidWater=True, flexibleConstraints=True)


@dataclass(frozen=True)
class MoleculeSystem(System):
    """An all-atom OpenMM molecule (see the module docstring).

    Attributes
    ----------
    force_field : str
        OpenMM force-field file, e.g. ``"amber99sbildn.xml"``.
    temperature, timestep, friction : float
        K, ps, 1/ps.
    openmm_factory : callable
        ``topology -> openmm.System`` (default :func:`create_openmm_system` with ``force_field``).
    free_energy_surface : callable or None
        ``() -> (phi, psi, F)`` drawn under the paths' (phi, psi) in the figure.
    openmm_topology : openmm.app.Topology or None
        The topology the system was built from (``topology`` holds its mdtraj view).

    The other attributes are those of :class:`~tps.systems.base.System`.
    """

    force_field: str = "amber99sbildn.xml"
    temperature: float = 300.0
    timestep: float = 0.002
    friction: float = 1.0
    openmm_factory: Optional[Callable] = None
    free_energy_surface: Optional[Callable] = None
    openmm_topology: Any = None

    @property
    def omm_topology(self):
        """The ``openmm.app.Topology`` the system was built from (``topology`` is its mdtraj view)."""
        return self.topology if self.openmm_topology is None else self.openmm_topology

    @property
    def force_field_label(self) -> str:
        return self.force_field.removesuffix(".xml")

    def openmm_system(self):
        """A fresh ``openmm.System`` of the molecule."""
        if self.openmm_factory is not None:
            return self.openmm_factory(self.omm_topology)
        return create_openmm_system(self.omm_topology, self.force_field)

    def prepared_endpoints(self):
        """``start`` and ``target`` minimised in the force field, centred, target aligned
        (:func:`tps.workflows.cartesian.prepare_endpoints`; cached per process)."""
        if self.name not in _ENDPOINTS:
            from tps.workflows.cartesian import prepare_endpoints

            _ENDPOINTS[self.name] = prepare_endpoints(self.openmm_system(), self.endpoints[self.start].numpy(),
                                                      self.endpoints[self.target].numpy(),
                                                      temperature=self.temperature)
        return _ENDPOINTS[self.name]

    def make_engine(self, *, seed: int = 0, **overrides):
        """:class:`~tps.engines.openmm.OpenMMLangevinEngine` of the molecule (temperature, timestep,
        friction of the system; ``overrides`` such as ``platform=``, ``restraint=True``)."""
        from tps.engines.openmm import OpenMMLangevinEngine

        kw = dict(temperature=self.temperature, timestep=self.timestep, friction=self.friction, seed=seed)
        kw.update(overrides)
        return OpenMMLangevinEngine(self.openmm_system(), **kw)

    # ----------------------------------------------------------------- model
    def check_model(self, model, *, source: str = "model") -> None:
        from tps.workflows.cartesian import check_model_matches

        net = type(model.network).__name__
        trained_for = model.metadata.get("system")
        what = f"{source}: a {net} model" + (f" trained for {trained_for!r}" if trained_for else "")
        try:
            check_model_matches(model, self.omm_topology)
        except ValueError as exc:
            raise ModelMismatch(f"{what} does not fit {self.name} ({_oneline(exc)})") from None

    def model_endpoints(self, model) -> tuple:
        p = next(model.network.parameters())
        za, zb = self.prepared_endpoints().model_coordinates(model.scaling)
        return za.to(dtype=p.dtype, device=p.device), zb.to(dtype=p.dtype, device=p.device)

    def avoid_settings(self, *, point=None, structure=None, phipsi=None) -> dict:
        """Validated ``--avoid-structure`` / ``--avoid-phipsi`` (:func:`tps.systems.molecule_avoidance.avoid_settings`)."""
        from tps.systems.molecule_avoidance import avoid_settings

        return avoid_settings(self, point=point, structure=structure, phipsi=phipsi)

    # ----------------------------------------------------------------- geodesic
    def linear_curve(self, model, *, n_points: int, logsnr: float, x_b=None) -> tuple:
        """Straight line between the prepared endpoints in float64 (:func:`tps.workflows.cartesian.linear_curve`,
        the all-atom benchmark's baseline); ``x_b`` is not used."""
        from tps.workflows.cartesian import linear_curve

        return linear_curve(self.prepared_endpoints(), model.scaling, n_points=n_points, logsnr=logsnr)

    def solve_payload(self, model, options, *, constraint="none", constraint_protocol=None, avoid=None,
                      extras=None, progress=False) -> dict:
        """The geodesic (Hutchinson divergence, :func:`tps.workflows.cartesian.solve_geodesic`).

        ``avoid`` (region-avoiding): ``{"structure": path}`` or ``{"phipsi": (phi, psi)}`` (rad),
        optionally with ``"label"`` (the name used in error messages)."""
        from tps.workflows.cartesian import solve_geodesic

        t0 = time.perf_counter()
        cp = constraint_protocol or self.protocols().constraints
        ends = self.prepared_endpoints()
        o = options
        kw = dict(logsnr=o.logsnr, n_points=o.n_points, n_nodes=o.n_nodes, max_iter=o.max_iter,
                  init_dips=o.init_dips, coarse_points=o.coarse_points, coarse_iter=o.coarse_iter, seed=o.seed,
                  progress=progress)
        extra, avoid_payload = {}, None
        if constraint == "region-avoiding":
            r, avoid_payload = self._solve_avoiding(model, ends, avoid, cp, kw)
            extra.update(avoid_payload.pop("extra"))
        else:
            r = solve_geodesic(model, ends, constraints=low_variance(constraint, cp), **kw)
        extra["origin_nm"] = ends.origin.tolist()
        curve = payload(self.name, model, r, t0, extra)
        if avoid_payload is not None:
            curve.update(avoid_payload)  # avoided structures (nm) and point, for the paths' closest approach
        return curve

    def _solve_avoiding(self, model, ends, avoid, cp, kw):
        from tps.systems.molecule_avoidance import solve_avoiding

        return solve_avoiding(self, model, ends, avoid, cp, kw)

    # ----------------------------------------------------------------- paths
    def sample(self, curve, protocol, *, seed: int, executor=None, checkpoint=None, progress: bool = False):
        """OpenMM annealed Langevin along the curve's restraints, every path from the minimised start
        (:func:`tps.sampling.openmm_annealed.openmm_annealed_langevin`).

        ``protocol.centre_noise``: each path's own centres, moved perpendicular to the curve by that
        many restraint widths (nm) times one normal draw per path; None keeps every path on the
        curve's centres (the same paths as before the option). ``protocol.logsnr_shift`` is refused
        (ValueError): the OpenMM sampler uses the derived stiffness only.
        """
        from tps.sampling.openmm_annealed import openmm_annealed_langevin
        from tps.workflows.cartesian import curve_restraints

        s = protocol
        if s.logsnr_shift is not None:
            raise ValueError(f"logsnr_shift: the OpenMM sampler of {self.name} does not use it (got "
                             f"{s.logsnr_shift}); leave it None (it is an option of the 2-D systems)")
        cx, clam, scaling, _ = curve_parts(curve)
        ends = self.prepared_endpoints()
        par = {} if executor is None else {"executor": executor,
                                           **({} if checkpoint is None else {"checkpoint": checkpoint})}
        restraints = curve_restraints(cx, clam, scaling, temperature=self.temperature, origin=ends.origin)
        return openmm_annealed_langevin(self.openmm_system(), restraints.centres, restraints.stiffness,
                                        temperature=self.temperature, n_paths=s.n_paths,
                                        steps_per_point=s.steps_per_point, x_start=ends.start, timestep=s.timestep,
                                        friction=s.friction, frames_per_point=s.frames_per_point, seed=seed,
                                        progress=progress, **par, **s.annealing_options())

    def summarize(self, paths, *, method: str, curve=None, n_training_energy_evals: int = 0,
                  wall_s: float = float("nan"), geodesic_wall_s: float = float("nan")) -> dict:
        from tps.metrics.molecular import summarize_molecular

        row = summarize_molecular(paths, system=self.openmm_system(), target_state=self.states[self.target],
                                  target_positions=self.prepared_endpoints().target, topology=self.omm_topology,
                                  method=method, n_training_energy_evals=n_training_energy_evals, wall_s=wall_s,
                                  geodesic_wall_s=geodesic_wall_s)
        if curve is not None and curve.get("avoid_structures") is not None:
            row.update(self.avoid_metrics(paths, curve))
        return add_selection_evals(row, curve)

    def run_baseline(self, method: str, protocols, *, model=None, seed: int = 0, executor=None, progress: bool = False,
                     initial_path=None):
        """An OpenMM MD baseline (``"two-way-shooting"`` or ``"unbiased-md"``) of :func:`tps.pipeline.run_method`.

        Numbers from ``protocols.extras["baselines"]`` and the sampler protocol's dynamics
        (:mod:`tps.systems.molecule_baselines`); ``model`` and ``progress`` are not used, and
        ``executor`` neither (each baseline is one wall-time-limited chain in this process).
        ``initial_path``: the ``extra["initial_path"]`` of an earlier shooting run, reused.

        Returns
        -------
        paths : tps.core.Paths or None
        row : dict
        curve : None
        extra : dict
            ``initial_path`` of a shooting run.
        """
        from tps.systems.molecule_baselines import run_molecule_baseline

        paths, row, extra = run_molecule_baseline(self, method, protocols, seed=seed, initial=initial_path)
        return paths, row, None, extra

    def avoid_metrics(self, paths, curve) -> dict:
        """Closest approach of the paths to the avoided structures / point, and their crossing channels."""
        from tps.systems.molecule_avoidance import avoid_metrics

        return avoid_metrics(self, paths, curve)

    def figure(self, paths, curve, path, *, n_total=None, n_show: int = 30, title: str = ""):
        """(phi, psi) of the paths (over the free-energy surface where the system has one) and
        the OpenMM energies along them."""
        import numpy as np

        cv = self.cv

        def draw(fig, ax, frames, centres, logsnr):
            ends = self.prepared_endpoints()
            pp = cv(frames).numpy()
            ends_pp = cv(torch.as_tensor(np.stack([ends.start, ends.target]))).numpy()
            c = None if centres is None else cv(centres.double()).numpy()
            return draw_phipsi(fig, ax, pp, c, logsnr, ends_pp, background=self.free_energy_surface is not None)

        return paths_figure(self, paths, curve, path, draw=draw, n_show=n_show, title=title, n_total=n_total,
                            energies_panel=True)

    def paths_file(self, directory) -> Path:
        return Path(directory) / "paths" / "paths.dcd"

    def save_paths(self, paths, directory) -> list:
        """``paths/paths_000.dcd``, ... (with their JSON sidecars) and ``paths/topology.pdb``."""
        from tps.io import save_paths

        files = save_paths(paths, self.paths_file(directory), topology=self.omm_topology, split=True)
        files.append(self.write_topology_pdb(Path(directory) / "paths" / "topology.pdb", paths.frames[0, 0]))
        return files

    def write_topology_pdb(self, path, positions) -> Path:
        """One-frame PDB of the molecule at ``positions`` (nm), written atomically."""
        from tps.workflows.molecular_paths import write_topology_pdb

        return write_topology_pdb(path, self.omm_topology, positions)

    # ----------------------------------------------------------------- training
    def training_frames(self, model):
        """The training frames of ``model``, regenerated from the ``tps train`` recipe it carries.

        Models written by ``tps train`` (the pretrained one included) record the MD that made their
        data (``metadata["recipe"]``: steps per start, report interval, seed); that MD is
        deterministic, so the frames are regenerated (cached per process) and checked against the
        scale fitted on them at training time.

        Returns
        -------
        ndarray, shape ``(n_frames, n_atoms, 3)``, nm

        Raises
        ------
        ValueError
            If the model carries no recipe of this system, or the regenerated frames do not give its scale.

        Examples
        --------
        >>> from tps.diffusion import AffineScaling, DiffusionModel
        >>> from tps.systems import load
        >>> from tps.workflows.cartesian import build_denoiser
        >>> aldp = load("alanine-dipeptide", platform="Reference")
        >>> bare = DiffusionModel(build_denoiser(aldp.topology, hidden=8, n_layers=1),
        ...                       AffineScaling((0.0,) * 66, 0.16, (22, 3)))
        >>> aldp.training_frames(bare)
        Traceback (most recent call last):
            ...
        ValueError: model: carries no 'tps train alanine-dipeptide' recipe to regenerate its training frames from; pass structures to avoid instead
        """
        import numpy as np

        from tps.systems.protocols import TrainingProtocol
        from tps.workflows.cartesian import fit_scaling

        recipe = model.metadata.get("recipe") or {}
        a = recipe.get("arguments") or {}
        if recipe.get("system") != self.name or "data_steps" not in a or "report_interval" not in a:
            raise ValueError(f"model: carries no 'tps train {self.name}' recipe to regenerate its training frames "
                             "from; pass structures to avoid instead")
        key = (self.name, int(a["data_steps"]), int(a["report_interval"]), int(recipe.get("seed", 0)))
        if key not in _RECIPE_FRAMES:
            protocol = TrainingProtocol(steps=1, batch_size=1, hidden=1, layers=1, data_steps=key[1],
                                        report_interval=key[2])
            data = self.training_data(protocol, seed=key[3])
            _RECIPE_FRAMES[key] = (data.positions.astype(np.float64), fit_scaling(data.positions).scale)
        frames, scale = _RECIPE_FRAMES[key]
        if abs(scale / model.scaling.scale - 1.0) > 1e-5:
            raise ValueError(f"model: the regenerated training frames have scale {scale:.6g} nm, the model "
                             f"{model.scaling.scale:.6g} nm; pass structures to avoid instead")
        return frames

    def training_data(self, protocol, *, seed: int, progress: bool = False):
        """OpenMM MD from the start and target minima (``data_steps`` each, a frame every ``report_interval``)."""
        from tps.sampling.md import md_samples

        s = protocol
        starts = {k: self.endpoints[k].numpy() for k in (self.start, self.target)}
        return md_samples(self.openmm_system(), self.omm_topology, starts, n_steps=s.data_steps,
                          report_interval=s.report_interval, timestep=self.timestep, friction=self.friction,
                          seed=seed, progress=progress)

    def train(self, protocol, *, seed: int, device: str = "cpu", progress: bool = False, checkpoint=None):
        """EGNN denoiser on MD frames (:func:`tps.workflows.cartesian.train_model`)."""
        from tps.diffusion import TrainingConfig
        from tps.workflows.cartesian import train_model

        s = protocol
        cfg = TrainingConfig(n_steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=seed,
                             warmup_steps=min(100, s.steps // 10), eval_every=200,
                             holdout_per_band=s.holdout_per_band)
        t0 = time.perf_counter()
        data = self.training_data(s, seed=seed, progress=progress)
        t_data = time.perf_counter() - t0
        t1 = time.perf_counter()
        # train_model builds the network before seeding: seed here so that its initial weights are reproducible
        torch.manual_seed(seed)
        model, result = train_model(data, self.omm_topology, system=self.openmm_system(), hidden=s.hidden,
                                    n_layers=s.layers, training=cfg, device=device, checkpoint=checkpoint,
                                    progress=progress,
                                    metadata={"system": self.name, "kT": float(self.kT),
                                              "temperature": self.temperature, "md_wall_s": t_data})
        info = {"n_training_energy_evals": int(data.n_energy_evals), "data_wall_s": t_data,
                "training_wall_s": time.perf_counter() - t1}
        return model.freeze(), result, info


def load_molecule(cls=MoleculeSystem, *, name: str, data: Path, structure: str, endpoint_names: Tuple[str, ...],
                  start: str, target: str, description: str, pretrained: Optional[str] = None,
                  force_field: str = "amber99sbildn.xml", temperature: float = 300.0, platform="auto",
                  state_radius: float = 0.75, state_centers: Optional[dict] = None, **fields: Any) -> MoleculeSystem:
    """A :class:`MoleculeSystem` from a data directory (``structure`` PDB for the topology,
    ``minima.json`` for the endpoints and the (phi, psi) state centres, degrees or radians).

    Examples
    --------
    >>> from tps.systems import load
    >>> gly = load("glycine-dipeptide", platform="Reference")
    >>> gly.endpoints["C5"].shape, gly.start, gly.target, round(gly.kT, 3)
    (torch.Size([19, 3]), 'C5', 'C7eq', 2.494)
    """
    import json
    import math

    import openmm.app as app

    from tps.potentials.openmm import OpenMMPotential, PhiPsi, boltzmann_kT
    from tps.systems.alanine_dipeptide import basin_states
    from tps.systems.base import ReferenceValue

    top = app.PDBFile(str(Path(data) / structure)).topology
    openmm_factory = fields.pop("openmm_factory", None)
    omm = openmm_factory(top) if openmm_factory is not None else create_openmm_system(top, force_field)
    potential = OpenMMPotential(omm, top, platform=platform)
    cv = PhiPsi(potential.topology)
    minima = json.loads((Path(data) / "minima.json").read_text())["minima"]
    endpoints = {k: torch.as_tensor(minima[k]["positions_nm"], dtype=torch.float64) for k in endpoint_names}

    def angle(m, a):
        return m[f"{a}_rad"] if f"{a}_rad" in m else math.radians(m[f"{a}_deg"])

    if state_centers is None:
        state_centers = {k: (angle(minima[k], "phi"), angle(minima[k], "psi")) for k in endpoint_names}
    states = basin_states(state_centers, cv, radius=state_radius)
    src = f"{Path(data).name}/minima.json"
    reference = {f"{k}_energy": ReferenceValue(minima[k]["energy_kj_per_mol"], "kJ/mol", src) for k in endpoint_names}
    return cls(name, potential, boltzmann_kT(temperature), endpoints, states, potential.topology, cv, reference,
               description=description, energy_unit="kJ/mol", start=start, target=target, pretrained=pretrained,
               force_field=force_field, temperature=temperature, openmm_factory=openmm_factory, openmm_topology=top,
               **fields)
