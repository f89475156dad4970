"""The bundled-system record returned by :func:`tps.systems.load`, and what every system can do.

A :class:`System` holds the data of one system (potential, kT, endpoints, states, topology,
collective variables, reference values) and the steps of a run that depend on it: its default
protocols, how a model is checked and where the endpoints lie in model coordinates, the
geodesic solve, the annealed-Langevin sampler, the metrics row, the figure, the path files and
the training recipe. Subclasses (one file per system) implement the steps; this base class
keeps the record usable on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch


@dataclass(frozen=True)
class ReferenceValue:
    """A number with its unit and where it came from.

    Attributes
    ----------
    value : float
    unit : str
        E.g. ``"kJ/mol"``, ``"rad"``, ``"dimensionless"``.
    source : str
        Provenance: a paper, a table, or the script that computed it.

    Examples
    --------
    >>> from tps.systems import load
    >>> ref = load("muller-brown").reference["U(A)"]
    >>> ref.value, ref.unit, ref.source[:23]
    (-146.7, 'dimensionless', 'benchmarks.md section 4')
    """

    value: float
    unit: str
    source: str


class ModelMismatch(ValueError):
    """A model that does not fit the system (the message names what differs)."""


class InputError(ValueError):
    """A user input the system cannot use: the message is ``"problem; fix"`` (command-line flag names)."""


def curve_parts(curve) -> tuple:
    """``(x, logsnr, scaling, extra)`` of a curve: a :class:`tps.spacetime.curve.Curve` or the
    ``tps-curve/1`` dict of ``tps geodesic`` (``x`` float64 model coordinates, ``logsnr`` float64,
    ``scaling`` an :class:`~tps.diffusion.AffineScaling`, ``extra`` a dict)."""
    from tps.diffusion.scaling import AffineScaling

    if isinstance(curve, dict):
        scaling = curve["scaling"]
        scaling = AffineScaling.from_dict(scaling) if isinstance(scaling, dict) else scaling
        return curve["x"].double(), curve["logsnr"].double(), scaling, dict(curve.get("extra", {}))
    provenance = getattr(curve, "provenance", {}) or {}
    return (curve.x.double(), curve.logsnr.double(), curve.scaling,
            dict(provenance.get("extra", {}) or {}))


def curve_centres(curve) -> torch.Tensor:
    """Restraint centres ``scaling^-1(x / alpha)`` of a curve (dict or Curve), physical units."""
    if isinstance(curve, dict) and "centres" in curve:
        return curve["centres"]
    from tps.diffusion.schedule import restraint_schedule

    x, lam, scaling, _ = curve_parts(curve)
    return restraint_schedule(x, lam, scaling).centres


@dataclass(frozen=True)
class System:
    """Everything a TPS run needs to know about one bundled system.

    Attributes
    ----------
    name : str
        Registry name (``"muller-brown"``, ``"alanine-dipeptide"``, ...).
    potential : tps.potentials.Potential
    kT : float
        Thermal energy in ``potential.energy_unit``.
    endpoints : dict of str to Tensor, each of shape ``potential.event_shape``
        Minimised endpoint configurations (float64; nm for molecules).
    states : dict of str to tps.states.Volume
        Metastable states, one per endpoint, each containing its endpoint.
    topology : object or None
        ``mdtraj.Topology`` / ``openmm.app.Topology`` for molecules, None for model potentials.
    cv : callable or None
        Collective variables used by the state definitions and figures, e.g. (phi, psi).
    reference : dict of str to ReferenceValue
        Known answers (minimum energies, barriers, angles) with units and provenance.
    description : str
        One line for ``tps systems`` and ``results.json``.
    energy_unit : str
        Unit of energies and ``kT`` (default: the potential's).
    start, target : str or None
        Endpoint / state names of the default transition (paths start in ``start``).
    pretrained : str or None
        Name of the shipped model in :mod:`tps.pretrained`.
    periods : tuple or None
        Periods of periodic coordinates (for metrics), e.g. ``(2 pi, 2 pi)``.

    Examples
    --------
    >>> from tps.systems import load
    >>> mb = load("muller-brown")
    >>> mb.name, mb.potential.event_shape, mb.topology is None
    ('muller-brown', (2,), True)
    >>> round(float(mb.potential.energy(mb.endpoints["B"])), 2)       # U(B) = -108.17
    -108.17
    >>> mb.start, mb.target, mb.energy_unit, mb.pretrained
    ('A', 'B', 'dimensionless', 'muller-brown')
    """

    name: str
    potential: Any
    kT: float
    endpoints: Dict[str, torch.Tensor]
    states: Dict[str, Any]
    topology: Optional[Any] = None
    cv: Optional[Callable] = None
    reference: Dict[str, ReferenceValue] = field(default_factory=dict)
    description: str = ""
    energy_unit: Optional[str] = None
    start: Optional[str] = None
    target: Optional[str] = None
    pretrained: Optional[str] = None
    periods: Optional[tuple] = None

    def __post_init__(self):
        if self.energy_unit is None:
            object.__setattr__(self, "energy_unit", getattr(self.potential, "energy_unit", "dimensionless"))

    # ------------------------------------------------------------------ protocols
    def protocols(self, quick: bool = False):
        """The default :class:`~tps.systems.protocols.Protocols` (``quick``: the benchmarks' ``--quick``)."""
        from tps.systems import protocols_of

        return protocols_of(self.name, quick=quick)

    def refine_protocol(self, quick: bool = False):
        """The default :class:`~tps.systems.protocols.RefineProtocol` (geodesic-seeded shooting) of this system."""
        from tps.systems.protocols import refine_protocol

        return refine_protocol(self.name, quick=quick)

    def transition_states(self) -> tuple:
        """``(A, B)`` of the transition path ensemble: B the ``target`` state, A the union of every
        other state (``start`` first).

        Other metastable states on the start's side belong to A, as in the standard TPS state
        definition of alanine dipeptide (A = C5 | C7eq, B = C7ax): a shot that falls into C7eq
        has returned to the reactant basin, instead of dwelling in neither state until it is
        abandoned as too long.

        Examples
        --------
        >>> from tps.systems import load
        >>> a, b = load("muller-brown").transition_states()
        >>> a.name, b.name
        ('A', 'B')
        """
        others = [self.states[self.start]] + [v for k, v in self.states.items() if k not in (self.start, self.target)]
        a = others[0]
        for v in others[1:]:
            a = a | v
        return a, self.states[self.target]

    def crossing_coordinate(self, paths) -> torch.Tensor:
        """Where each path crosses the barrier: one number per path (NaN where it does not cross).

        Only each path's A -> B transition segment counts (:meth:`transition_states`; from its
        last frame in A before it first enters B, through that entry;
        :func:`tps.baselines.seeded.transition_bounds`); the value is read at the segment's
        FIRST frame inside a dividing region:

        - (phi, psi) systems (periodic 2-D coordinates, or a molecule whose ``cv`` gives
          (phi, psi)): psi (rad, in ``[-pi, pi)``) at the first frame with ``|phi| < 0.3`` rad,
          the crossing of the phi = 0 barrier of alanine dipeptide's C5 -> C7ax transition;
        - other 2-D systems: the transition-state dividing line through the highest saddle point
          the potential lists (``potential.stationary_points``), normal to the saddle's unstable
          mode (the Hessian's negative-curvature eigenvector, oriented towards the target); without
          listed saddles, the line through the endpoints' midpoint normal to ``x_target - x_start``.
          The value is the signed distance from that point along the line (direction
          ``(-n_y, n_x)`` for the unit normal ``n``) of the first frame on the target's side. For
          Muller-Brown this is the line through S1 (-0.822, 0.624), the highest barrier of A -> B;
          the spread of the values is the width of the band in which the paths cross it.

        Parameters
        ----------
        paths : Paths or Tensor ``(n_paths, n_frames, *event)``
            ``info["lengths"]`` of a Paths marks padding.

        Returns
        -------
        Tensor, shape ``(n_paths,)``, float64

        Examples
        --------
        >>> import torch
        >>> from tps.systems import load
        >>> mb = load("muller-brown")
        >>> s1 = torch.tensor([-0.822, 0.6243], dtype=torch.float64)
        >>> a, b = mb.endpoints["A"], mb.endpoints["B"]
        >>> path = torch.cat([torch.stack([torch.lerp(a, s1, float(t)) for t in torch.linspace(0, 1, 50)]),
        ...                   torch.stack([torch.lerp(s1, b, float(t)) for t in torch.linspace(0, 1, 50)])])
        >>> abs(float(mb.crossing_coordinate(path[None])[0])) < 0.03   # crosses the plane at S1
        True
        """
        import math

        from tps.baselines.seeded import frames_and_lengths, transition_bounds

        frames, lengths = frames_and_lengths(paths)
        state_a, state_b = self.transition_states()
        start, stop, ok = transition_bounds(state_a(frames), state_b(frames), lengths)
        t = torch.arange(frames.shape[1])[None]
        in_segment = ok[:, None] & (t >= start[:, None]) & (t <= stop[:, None])
        if self.periods is not None or (self.topology is not None and self.cv is not None):
            pp = frames if self.periods is not None else self.cv(frames)
            pp = torch.remainder(pp.to(torch.float64) + math.pi, 2 * math.pi) - math.pi
            region, value = pp[..., 0].abs() < 0.3, pp[..., 1]
        elif tuple(frames.shape[2:]) == (2,):
            point, n = self.dividing_line()
            d = frames - point
            region, value = d @ n >= 0, d @ torch.stack([-n[1], n[0]])
        else:
            raise NotImplementedError(f"{self.name}: no crossing coordinate (needs 2-D or (phi, psi) coordinates)")
        hit = region & in_segment
        first = torch.where(hit, t, frames.shape[1]).min(1).values
        out = value.gather(1, first.clamp(max=frames.shape[1] - 1)[:, None])[:, 0].to(torch.float64)
        return torch.where(hit.any(1), out, torch.full_like(out, float("nan")))

    def dividing_line(self) -> tuple:
        """``(point, normal)`` (float64, unit normal towards the target) of a 2-D system's dividing line.

        The line through the highest saddle point the potential lists, normal to its unstable
        Hessian mode; without listed saddles, the line through the endpoints' midpoint normal to
        ``x_target - x_start`` (:meth:`crossing_coordinate`).

        Examples
        --------
        >>> from tps.systems import load
        >>> point, n = load("muller-brown").dividing_line()
        >>> [round(v, 3) for v in point.tolist()], round(float(n.norm()), 6)
        ([-0.822, 0.624], 1.0)
        """
        x_a, x_b = self.endpoints[self.start].double(), self.endpoints[self.target].double()
        saddles = [p for p in getattr(self.potential, "stationary_points", ()) if p.kind == "saddle"]
        if not saddles:
            return 0.5 * (x_a + x_b), (x_b - x_a) / torch.linalg.norm(x_b - x_a)
        top = max(saddles, key=lambda p: p.energy)
        point = torch.tensor([top.x, top.y], dtype=torch.float64)
        hessian = torch.autograd.functional.hessian(lambda x: self.potential.energy(x).sum(), point)
        n = torch.linalg.eigh(hessian)[1][:, 0]  # unstable mode (lowest eigenvalue)
        return point, (n if float((x_b - point) @ n) > 0 else -n)

    def avoid_settings(self, *, point=None, structure=None, phipsi=None) -> dict:
        """Validated input of a region-avoiding run, checked before anything is written.

        A 2-D system avoids a point (``point``, or ``phipsi`` on a periodic (phi, psi) system);
        returns ``{"avoid": (x, y)}``. Molecules override this (structures or (phi, psi)).

        Raises
        ------
        InputError
            ``"problem; fix"`` naming the command-line flag.

        Examples
        --------
        >>> from tps.systems import load
        >>> load("muller-brown").avoid_settings(point=(-0.5, 1.0))
        {'avoid': (-0.5, 1.0)}
        """
        if structure is not None:
            raise InputError(f"--avoid-structure: {self.name} is not a molecule; pass the point to avoid as --avoid X Y")
        if phipsi is not None:
            if self.periods is None:
                raise InputError(f"--avoid-phipsi: {self.name} has no (phi, psi) coordinates; "
                                 "pass the point as --avoid X Y")
            if point is not None:
                raise InputError("--avoid and --avoid-phipsi were both given; pass only one of them")
            point = phipsi
        if point is None:
            raise InputError("--constraint region-avoiding needs the point to avoid; "
                             "add --avoid X Y (phi psi in rad for alanine-dipeptide-phipsi)")
        return {"avoid": tuple(float(v) for v in point)}

    # ------------------------------------------------------------------ the steps of a run
    def _missing(self, what: str):
        return NotImplementedError(f"{type(self).__name__} ({self.name}) does not implement {what}")

    def make_engine(self, *, seed: int = 0, **overrides):
        """The dynamics engine of this system (:mod:`tps.engines`).

        Here: :class:`~tps.engines.TorchOverdampedEngine` on the potential at ``kT`` with the
        sampler protocol's ``step_size`` (reduced units) and a generator seeded with ``seed``;
        ``overrides`` go to the engine (e.g. ``dt=`` for unbiased dynamics). Molecules return
        an OpenMM Langevin engine.

        Examples
        --------
        >>> from tps.systems import load
        >>> engine = load("muller-brown").make_engine(seed=1)
        >>> type(engine).__name__, engine.kT, engine.step_size
        ('TorchOverdampedEngine', 12.5, 0.0004)
        """
        from tps.engines import TorchOverdampedEngine

        kw = {"step_size": self.protocols().sampler.step_size, **overrides}
        if "generator" not in kw:
            kw["generator"] = torch.Generator().manual_seed(int(seed))
        return TorchOverdampedEngine(self.potential, kT=self.kT, **kw)

    def check_model(self, model, *, source: str = "model") -> None:
        """Raise :class:`ModelMismatch` (a ``ValueError``) if ``model`` was not trained for this system."""
        raise self._missing("check_model")

    def model_endpoints(self, model) -> tuple:
        """``(x_a, x_b)`` of the default transition in ``model``'s coordinates."""
        raise self._missing("model_endpoints")

    def linear_curve(self, model, *, n_points: int, logsnr: float, x_b=None) -> tuple:
        """The straight-line baseline ``((1 - s) x_a + s x_b, logsnr)`` in model coordinates.

        2-D systems build it in the network's dtype (the benchmarks' float32 line); ``x_b``
        replaces the target (e.g. the periodic image a (phi, psi) geodesic chose).

        Returns
        -------
        x : Tensor, shape ``(n_points, *event)``
        logsnr : Tensor, shape ``(n_points,)``

        Examples
        --------
        >>> from tps import pretrained
        >>> from tps.systems import load
        >>> x, lam = load("muller-brown").linear_curve(pretrained.load("muller-brown"), n_points=5, logsnr=6.0)
        >>> x.shape, x.dtype, lam.tolist()
        (torch.Size([5, 2]), torch.float32, [6.0, 6.0, 6.0, 6.0, 6.0])
        """
        z_a, z_b = self.model_endpoints(model)
        z_b = z_b if x_b is None else torch.as_tensor(x_b, dtype=z_a.dtype, device=z_a.device)
        s = torch.linspace(0, 1, int(n_points), dtype=z_a.dtype, device=z_a.device).reshape(-1, *([1] * z_a.dim()))
        return (1 - s) * z_a + s * z_b, torch.full((int(n_points),), float(logsnr), dtype=z_a.dtype,
                                                    device=z_a.device)

    def solve_payload(self, model, options, *, constraint="none", constraint_protocol=None, avoid=None,
                      extras=None, progress=False) -> dict:
        """The spacetime geodesic as the ``tps-curve/1`` dict (see :meth:`solve_geodesic`)."""
        raise self._missing("solve_geodesic")

    def solve_geodesic(self, model, options, *, constraint="none", constraint_protocol=None, avoid=None,
                       extras=None, progress=False):
        """The spacetime geodesic from ``start`` to ``target`` (a :class:`tps.spacetime.curve.Curve`
        when that type is available, else the ``tps-curve/1`` dict of :meth:`solve_payload`)."""
        payload = self.solve_payload(model, options, constraint=constraint, constraint_protocol=constraint_protocol,
                                     avoid=avoid, extras=extras, progress=progress)
        try:
            from tps.spacetime.curve import Curve
        except ImportError:  # pragma: no cover - transitional
            return payload
        return Curve.from_dict(payload)

    def sample(self, curve, protocol, *, seed: int, executor=None, checkpoint=None, progress: bool = False):
        """Annealed-Langevin transition paths along ``curve`` (:class:`tps.sampling.Paths`)."""
        raise self._missing("sample")

    def summarize(self, paths, *, method: str, curve=None, n_training_energy_evals: int = 0,
                  wall_s: float = float("nan"), geodesic_wall_s: float = float("nan")) -> dict:
        """The metrics row of ``paths`` (keys of ``results.json``)."""
        raise self._missing("summarize")

    def figure(self, paths, curve, path, *, n_total=None, n_show: int = 30, title: str = "") -> Path:
        """``paths.png``: the paths over the system's potential or free-energy surface."""
        raise self._missing("figure")

    def paths_file(self, directory) -> Path:
        """Where :meth:`save_paths` writes the paths in ``directory`` (``paths.npz``)."""
        return Path(directory) / "paths.npz"

    def save_paths(self, paths, directory) -> list:
        """Write ``paths`` into ``directory``; returns the files written."""
        from tps.io import save_paths

        return save_paths(paths, self.paths_file(directory))

    def load_paths(self, directory):
        """Read the paths written by :meth:`save_paths`."""
        from tps.io import load_paths

        return load_paths(self.paths_file(directory))

    def training_data(self, protocol, *, seed: int, progress: bool = False):
        """Training samples of this system for ``protocol`` (a :class:`TrainingProtocol`)."""
        raise self._missing("training_data")

    def train(self, protocol, *, seed: int, device: str = "cpu", progress: bool = False, checkpoint=None):
        """``(model, result, info)``: a model trained with ``protocol`` (``info``: training cost and times)."""
        raise self._missing("train")
