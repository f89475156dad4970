"""The numbers of a run, owned by the system: geodesic, constraints, sampler and training protocols.

Each registered system returns a :class:`Protocols` bundle from ``system.protocols(quick=False)``:
the full protocol is what ``tps run`` / ``tps train`` use by default and what the benchmarks run
without ``--quick``; ``quick=True`` is the benchmarks' ``--quick`` protocol. Command-line flags
and benchmark settings are ``replace(...)`` overrides of these objects, so every default has
one home.

Units: logSNR values in model coordinates; ``step_size`` in the reduced units of
:func:`tps.sampling.annealed_langevin` (2-D systems); ``timestep`` ps and ``friction`` 1/ps
(OpenMM, all-atom); ``data_dt`` reduced (U/kT) time step of the 2-D training-data chains.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from tps.spacetime.options import GeodesicOptions

try:  # the sampler protocol of tps.sampling (same fields); local definition until it lands there
    from tps.sampling.protocol import SamplerProtocol
except ImportError:  # pragma: no cover - transitional
    SamplerProtocol = None

__all__ = ["Protocols", "ConstraintProtocol", "TrainingProtocol", "SamplerProtocol", "GeodesicOptions",
           "sampler_protocol", "RUN_FIELDS", "RefineProtocol", "refine_protocol", "REFINE_DEFAULTS"]


class _Replace:
    """``replace(**changes)`` that names unknown fields, and ``as_dict()`` without the None fields."""

    def replace(self, **changes):
        """A copy with ``changes`` applied (``TypeError`` for an unknown field)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown field {unknown[0]!r}; valid fields: "
                            f"{', '.join(sorted(names))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """The fields that apply (None ones left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


if SamplerProtocol is None:
    @dataclass(frozen=True)
    class SamplerProtocol(_Replace):  # noqa: F811 - transitional stand-in for tps.sampling.protocol
        """Annealed-Langevin sampler settings: paths, steps and frames per curve point, step size
        (2-D, reduced length^2) or timestep (ps) and friction (1/ps) (OpenMM), paths written."""

        n_paths: int
        steps_per_point: int
        frames_per_point: int = 1
        step_size: Optional[float] = None
        timestep: Optional[float] = None
        friction: Optional[float] = None
        save_paths: Optional[int] = None


def sampler_protocol(**fields) -> "SamplerProtocol":
    """A :class:`SamplerProtocol` from keyword fields (whichever module defines the class).

    Examples
    --------
    >>> sampler_protocol(n_paths=10, steps_per_point=15, step_size=4e-4).n_paths
    10
    """
    return SamplerProtocol(**fields)


@dataclass(frozen=True)
class ConstraintProtocol(_Replace):
    """Settings of the geodesic constraints (``--constraint low-variance`` / ``region-avoiding``).

    Attributes
    ----------
    low_variance_threshold : float
        Lowest allowed logSNR of the low-variance constraint (model coordinates).
    low_variance_weight : float
        Its penalty weight (must dominate the curve energy).
    avoid_logsnr : float, optional
        logSNR of the avoided point ``(z*, lambda*)`` (2-D systems).
    avoid_kl_margin : float, optional
        Region-avoiding threshold = smallest relative KL on the free geodesic + this margin (nats).
    avoid_weight : float, optional
        Penalty weight of the region-avoiding constraint.
    avoid_low_variance_threshold : float, optional
        Low-variance threshold used TOGETHER with region avoidance (None: region avoidance alone).
    avoid_frames : int, optional
        All-atom: training frames nearest an avoided (phi, psi) that stand for it.
    avoid_depth_fraction, avoid_penalty_ratio : float, optional
        All-atom: thresholds from the free curve (:class:`tps.workflows.avoidance.AvoidanceRule`).

    Examples
    --------
    >>> c = ConstraintProtocol(3.0, 1e4, avoid_low_variance_threshold=3.75)
    >>> c.replace(low_variance_weight=1e5).low_variance_weight, c.as_dict()["avoid_low_variance_threshold"]
    (100000.0, 3.75)
    """

    low_variance_threshold: float
    low_variance_weight: float
    avoid_logsnr: Optional[float] = None
    avoid_kl_margin: Optional[float] = None
    avoid_weight: Optional[float] = None
    avoid_low_variance_threshold: Optional[float] = None
    avoid_frames: Optional[int] = None
    avoid_depth_fraction: Optional[float] = None
    avoid_penalty_ratio: Optional[float] = None


@dataclass(frozen=True)
class TrainingProtocol(_Replace):
    """Training data and network settings (the ``arguments`` of a ``tps train`` recipe).

    ``data_steps`` is Langevin steps per chain (2-D; ``data_dt`` reduced time step, U/kT units) or
    OpenMM MD steps per start structure (all-atom, a frame every ``report_interval`` steps);
    ``layers`` is residual blocks (MLP) or message-passing layers (EGNN). System-specific
    fields are None elsewhere.

    Examples
    --------
    >>> t = TrainingProtocol(steps=10, batch_size=8, hidden=16, layers=2, data_steps=300, report_interval=10)
    >>> t.as_dict()
    {'steps': 10, 'batch_size': 8, 'hidden': 16, 'layers': 2, 'data_steps': 300, 'lr': 0.002, 'report_interval': 10}
    """

    steps: int
    batch_size: int
    hidden: int
    layers: int
    data_steps: int
    lr: float = 2e-3
    chains: Optional[int] = None            # 2-D: Langevin chains from uniform starts
    data_dt: Optional[float] = None
    burn_in: Optional[int] = None
    thin: Optional[int] = None
    harmonics: Optional[int] = None         # (phi, psi): Fourier features of the periodic MLP
    report_interval: Optional[int] = None   # all-atom: MD steps between training frames
    holdout_per_band: Optional[int] = None  # all-atom: held-out samples per logSNR band (default 4096 is slow)


@dataclass(frozen=True)
class RefineProtocol(_Replace):
    """Geodesic-seeded two-way shooting (``tps run --refine shooting``; :func:`tps.pipeline.refine.refine_by_shooting`).

    Attributes
    ----------
    n_chains : int
        Shooting chains, each seeded by a different geodesic path (``--chains``).
    n_rounds : int
        Shooting trials per chain (``--refine-steps``).
    burn_in_fraction : float
        Fraction of the rounds whose chain states are discarded (:attr:`burn_in` rounds).
    max_frames : int
        Longest trial path in frames; longer trials are rejected (their cost counted).
    dt : float, optional
        Overdamped Langevin time step in the potential's units (2-D systems; unit mobility).
        None for molecules: the OpenMM engine's timestep.
    steps_per_frame : int
        Engine steps between recorded frames (molecules: MD steps, the geodesic sampler's frame
        spacing; 1 for overdamped shooting).
    save_every : int
        Keep the chain states of every ``save_every``-th round after the burn-in.
    relax_rounds : int
        Before the ``n_rounds``: at most this many rounds per chain of shooting without the
        length factor (:func:`tps.baselines.relax_chains`), until the chain shares no frame with
        its geodesic seed; discarded, their cost counted. Geodesic seeds are far shorter (in
        frames) than dynamical paths, and from them the TPS acceptance test rejects nearly every
        trial. 0: none.
    pool : {"decorrelated", "all"}
        Which chain states after the burn-in form the refined ensemble: ``"decorrelated"`` keeps
        each chain's states from its first path that shares no frame with its seed on (the rule of
        the reference-ensemble runs; a chain that never leaves its seed contributes nothing; if
        none leaves, every state is kept and the row says so), ``"all"`` every state.

    Examples
    --------
    >>> r = RefineProtocol(n_chains=16, n_rounds=10, dt=1e-4)
    >>> r.burn_in, r.replace(n_rounds=1).burn_in, r.as_dict()["max_frames"]
    (2, 0, 1000)
    """

    n_chains: int
    n_rounds: int
    burn_in_fraction: float = 0.25
    max_frames: int = 1000
    dt: Optional[float] = None
    steps_per_frame: int = 1
    save_every: int = 1
    relax_rounds: int = 20
    pool: str = "decorrelated"

    def __post_init__(self):
        if self.pool not in ("decorrelated", "all"):
            raise ValueError(f"pool: expected 'decorrelated' or 'all', got {self.pool!r}")

    @property
    def burn_in(self) -> int:
        """Rounds discarded: ``floor(burn_in_fraction * n_rounds)``, at most ``n_rounds - 1``."""
        return max(0, min(int(self.burn_in_fraction * self.n_rounds), self.n_rounds - 1))


def _aldp_2d_dt() -> float:
    from tps.core.units import boltzmann_kT

    return 2e-3 / boltzmann_kT(300.0)  # the MD baselines' reduced step md_dt = 2e-3 (benchmarks/aldp_2d.py)


#: Per system: ``(full, quick)`` refine protocols. Muller-Brown: the shooting baseline's overdamped
#: dt = 1e-4 and 1000-frame cap (benchmarks/muller_brown.py), and up to 50 relaxation rounds (from
#: 16 seeds of the default geodesic ensemble, ~5 % of relaxation trials were accepted and 10 of 16
#: chains left their seed within 60 rounds, 2026-12-03); (phi, psi): dt = 2e-3 / kT, an 8000-frame
#: cap (benchmarks/aldp_2d.py) and up to 100 relaxation rounds (with A = C5 | C7eq ~1 % of
#: relaxation trials from geodesic seeds were accepted, at ~70 frames per trial) and 240 rounds (60 left the
#: path-length distribution 2.4 standard errors off the reference's; from 240 rounds on it agrees, and with the
#: default re-noised seeds so do the crossing coordinate and band, 2026-12-03); molecules: a
#: frame every 25 MD steps (the geodesic sampler's spacing) and an 800-frame cap
#: (benchmarks/aldp_cartesian.py).
REFINE_DEFAULTS = {
    "muller-brown": (dict(n_chains=64, n_rounds=40, max_frames=1000, dt=1e-4, relax_rounds=50),
                     dict(n_chains=16, n_rounds=12, max_frames=1000, dt=1e-4, relax_rounds=30)),
    "alanine-dipeptide-phipsi": (dict(n_chains=32, n_rounds=240, max_frames=8000, dt=_aldp_2d_dt, relax_rounds=100),
                                 dict(n_chains=8, n_rounds=10, max_frames=8000, dt=_aldp_2d_dt, relax_rounds=40)),
    "alanine-dipeptide": (dict(n_chains=8, n_rounds=20, max_frames=800, steps_per_frame=25),
                          dict(n_chains=2, n_rounds=4, max_frames=400, steps_per_frame=25)),
    "glycine-dipeptide": (dict(n_chains=8, n_rounds=20, max_frames=800, steps_per_frame=25),
                          dict(n_chains=2, n_rounds=4, max_frames=400, steps_per_frame=25)),
}


def refine_protocol(name: str, quick: bool = False) -> RefineProtocol:
    """The default :class:`RefineProtocol` of system ``name`` (``quick``: a short run for tests and ``--quick``).

    Systems without an entry in :data:`REFINE_DEFAULTS` get 16 chains x 20 rounds with no
    ``dt`` (enough for an OpenMM molecule; a 2-D system must set ``dt``).

    Examples
    --------
    >>> refine_protocol("muller-brown").n_chains, refine_protocol("muller-brown", quick=True).n_rounds
    (64, 12)
    >>> round(refine_protocol("alanine-dipeptide-phipsi").dt, 6)
    0.000802
    """
    full, fast = REFINE_DEFAULTS.get(name, (dict(n_chains=16, n_rounds=20), dict(n_chains=4, n_rounds=5)))
    fields = dict(fast if quick else full)
    if callable(fields.get("dt")):
        fields["dt"] = fields["dt"]()
    return RefineProtocol(**fields)


#: ``tps run`` setting name -> (protocol part, field): how the CLI's flat settings map onto a bundle.
RUN_FIELDS = {
    "paths": ("sampler", "n_paths"), "points": ("geodesic", "n_points"),
    "steps_per_point": ("sampler", "steps_per_point"), "frames_per_point": ("sampler", "frames_per_point"),
    "step_size": ("sampler", "step_size"), "timestep": ("sampler", "timestep"), "friction": ("sampler", "friction"),
    "save_paths": ("sampler", "save_paths"), "centre_noise": ("sampler", "centre_noise"),
    "logsnr_shift": ("sampler", "logsnr_shift"), "logsnr": ("geodesic", "logsnr"), "init_dips": ("geodesic", "init_dips"),
    "coarse_points": ("geodesic", "coarse_points"), "coarse_iter": ("geodesic", "coarse_iter"),
    "max_iter": ("geodesic", "max_iter"), "clamp": ("geodesic", "clamp"), "n_nodes": ("geodesic", "n_nodes"),
    "image_chord_ratio": ("extras", "image_chord_ratio"),
    "low_variance_threshold": ("constraints", "low_variance_threshold"),
    "low_variance_weight": ("constraints", "low_variance_weight"),
    "avoid_logsnr": ("constraints", "avoid_logsnr"), "avoid_kl_margin": ("constraints", "avoid_kl_margin"),
    "avoid_weight": ("constraints", "avoid_weight"), "avoid_frames": ("constraints", "avoid_frames"),
    "avoid_depth_fraction": ("constraints", "avoid_depth_fraction"),
    "avoid_penalty_ratio": ("constraints", "avoid_penalty_ratio"),
}


_CORE_GEODESIC = ("logsnr", "n_points", "init_dips", "coarse_points", "coarse_iter", "max_iter")
_RUN_TIME_FIELDS = ("avoid_frames", "avoid_depth_fraction", "avoid_penalty_ratio")


@dataclass(frozen=True)
class Protocols:
    """Every number of a run of one system.

    Attributes
    ----------
    geodesic : tps.spacetime.options.GeodesicOptions
        Solver settings (only the fields the system's solve uses are set; ``n_nodes`` for the
        all-atom spline).
    constraints : ConstraintProtocol
    sampler : SamplerProtocol
    training : TrainingProtocol
    extras : dict
        System-specific numbers (e.g. ``image_chord_ratio`` of the periodic (phi, psi) system).

    Examples
    --------
    >>> from tps.systems import protocols_of
    >>> p = protocols_of("muller-brown")
    >>> p.geodesic.logsnr, p.sampler.n_paths, p.constraints.low_variance_threshold, p.training.steps
    (6.0, 1000, 5.0, 4000)
    >>> p.with_settings(points=64, paths=10).geodesic.n_points
    64
    """

    geodesic: GeodesicOptions
    constraints: ConstraintProtocol
    sampler: Any
    training: TrainingProtocol
    extras: Dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes) -> "Protocols":
        """A copy with whole parts replaced (``geodesic=...``, ``sampler=...``, ...)."""
        return dataclasses.replace(self, **changes)

    def settings(self) -> dict:
        """The flat ``tps run`` settings of this bundle (names of :data:`RUN_FIELDS`), for records.

        Geodesic fields are the core ones (logsnr, n_points, init_dips, coarse_points,
        coarse_iter, max_iter) plus any that differ from :class:`GeodesicOptions`' defaults;
        fields that are None are left out, and so are the all-atom region-avoiding fields, which
        apply only to a region-avoiding run.

        Examples
        --------
        >>> from tps.systems import protocols_of
        >>> sorted(protocols_of("alanine-dipeptide").settings())[:6]
        ['coarse_iter', 'coarse_points', 'frames_per_point', 'friction', 'init_dips', 'logsnr']
        """
        default = GeodesicOptions()
        out = {}
        for name, (part, key) in RUN_FIELDS.items():
            if key in _RUN_TIME_FIELDS:
                continue
            if part == "extras":
                value = self.extras.get(key)
            else:
                value = getattr(getattr(self, part), key, None)
                if part == "geodesic" and key not in _CORE_GEODESIC and value == getattr(default, key):
                    continue
            if value is not None:
                out[name] = value
        return out

    def with_settings(self, **settings) -> "Protocols":
        """Apply flat ``tps run`` settings (names of :data:`RUN_FIELDS`; None values ignored).

        Raises
        ------
        TypeError
            For a name that is not a run setting.
        """
        parts: Dict[str, dict] = {}
        for name, value in settings.items():
            if name not in RUN_FIELDS:
                raise TypeError(f"Protocols.with_settings: unknown setting {name!r}")
            if value is None:
                continue
            part, key = RUN_FIELDS[name]
            parts.setdefault(part, {})[key] = value
        out = self
        for part, values in parts.items():
            if part == "extras":
                out = dataclasses.replace(out, extras={**out.extras, **values})
            else:
                out = dataclasses.replace(out, **{part: getattr(out, part).replace(**values)})
        return out
