"""Alanine dipeptide in (phi, psi): spacetime geodesics on a periodic 2-D energy surface.

Two settings (issue 3):

- ``--surface PATH`` (the seed paper's Table 1 protocol, benchmarks.md section 2): the 89 x 89
  reference grid of Holdijk et al., energies as in the file, kT = 1, endpoints
  (-2.55, 2.70) -> (0.95, -0.40) anchored at logSNR 4, target state a ball of radius 0.75 rad
  (periodic), 1000 paths. The reference file is read by path and never copied.
- no ``--surface``: the package's own OpenMM free-energy surface
  ``tps/systems/data/alanine_dipeptide/fes_phipsi.dat`` (kJ/mol, kT = k_B * 300 K), endpoints
  the minimised C5 and C7ax structures' (phi, psi).

Pipeline: training data by overdamped Langevin on the periodic spline of the grid
(:class:`~tps.potentials.grid.PeriodicGridPotential`, uniform starts on the torus) ->
:class:`~tps.diffusion.periodic.PeriodicMLPDenoiser` (identity scaling, samples wrapped into
[-pi, pi)) -> spacetime geodesics (L-BFGS; the periodic image of the end point is chosen by
solving the endpoint pairs ``x_a -> x_b + 2 pi k``, ``k in {-1, 0, 1}^2`` with a chord at most
1.5 times the shortest, as one batch)
-> annealed Langevin on the spline potential in unwrapped coordinates -> metrics.

Choice of the periodic image: the geodesics to all candidate images are solved as one batch;
by default the image whose coarse curve has the lowest highest potential energy over its
restraint centres is kept (``--image-criterion max-energy``, 32 evaluations per candidate).
The lowest curve energy (``--image-criterion curve-energy``) is the model-only alternative, but
measured here it is not reliable: on the reference surface the direct image and the one across
phi = +-pi had curve energies 69.4 and 69.7 (highest centre energies 42 and 83); on the
package's own surface it picks an image across phi = +-pi whose paths reach 68 kJ/mol instead
of 37.4.

``--workers N`` / ``--scheduler tcp://HOST:PORT`` (:mod:`tps.parallel`): the annealed-Langevin
sampling of every row and the two shooting rows run as tasks (``results.json`` ``parallel`` says
which stages and how); without them every stage runs in this process exactly as before.

Other options: ``--avoid PHI PSI`` (the point the region-avoiding geodesic keeps away from),
``--image K_PHI K_PSI`` (force the end point's image), ``--quick`` (smaller training budget,
about a minute of CPU).

Every reported energy (``max_energy_*``, ``minmax``, ``barrier_mean``) is the periodic bilinear
interpolation of the RAW grid (:func:`~tps.potentials.grid.bilinear`), never the spline or a
model. ``max_step`` uses periodic differences, so it measures continuity on the torus.

Issue-5 rows (as in ``benchmarks/muller_brown.py``, whose helpers are reused):

- ``density-geodesic``: density geodesic (Yu et al.) with the learned score of the run's
  PeriodicMLPDenoiser at the anchor logSNR; ``density-geodesic-exact-score``: the score
  ``-grad U / kT`` of the spline potential, in unwrapped coordinates to the same chosen image of
  the end point (its solver's force evaluations count in ``n_energy_evals``). Both feed the same
  annealed Langevin sampler (same N, K, step size) at constant logSNR = the anchor.
- ``two-way-shooting-variable`` / ``two-way-shooting-fixed``: overdamped Langevin on the spline
  potential (``md_dt / kT``), states A = C5 | C7eq (:data:`STATE_A_CENTRES`) and B = the ball
  around the end point, initial path = one unbiased transition at a higher temperature (a dynamical path:
  an annealed-Langevin path as initial path was accepted 0 of 192 times); the fixed-length row
  pads it to ``fixed_frames`` frames; limited to ``shooting_time_s`` / ``fixed_time_s`` of wall
  time. A long, checkpointed reference run: ``python -m benchmarks reference-ensemble --system
  aldp-2d`` (then ``--reference``). At kT = 1 trials from near the barrier need thousands of
  steps to return to state A, so few (or no) trials are accepted in that budget: the
  shooting ensemble, and every ``path_density_jsd`` measured against it, is only as converged as
  ``n_accepted`` and ``chains_decorrelated_from_initial`` say.
- ``unbiased-md``: ``md_chains x md_steps`` evaluations from the start; with no transition (expected
  at a 36 kT barrier) the budget is reported as a lower bound together with the harmonic-rate
  extrapolation.
- ``path_density_jsd`` for every row against the shooting ensemble on a periodic (phi, psi) grid.

States (every row, both surfaces): A = the union of the balls of radius ``STATE_RADIUS`` around
the C5 and C7eq minima, B = the ball around the end point (see :data:`STATE_A_CENTRES` for why);
recorded in ``results.json`` under ``states``.

Note on the training data: at kT = 1 the 36 kT barriers are not crossed by the data chains,
so basin weights follow the basins of attraction of the uniform starts rather than the
Boltzmann weights; within each basin the samples are Boltzmann.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import torch

from benchmarks.common import (assign_path_density_jsd, hardware, markdown_table, save_figure, save_paths_npz,
                               subset_paths, timer, write_results)
from benchmarks.muller_brown import EXTRA_KEYS, baseline_rows, density_curve, evaluation_ratio_note, write_tables
from tps.baselines import (FixedLengthEnsemble, FlexibleLengthEnsemble, initial_path_high_temperature,
                           resample_path, two_way_shooting)
from tps.diffusion import (AffineScaling, DiffusionModel, PeriodicMLPConfig, PeriodicMLPDenoiser, TrainingConfig,
                           train_denoiser)
from tps.metrics import summarize
from tps.metrics.lower_bound import grid_lower_bound
from tps.potentials.grid import Grid2D, PeriodicGridPotential, bilinear, check_radians, read_grid
from tps.sampling import annealed_langevin, langevin_samples
from tps.sampling.paths import Paths
from tps.spacetime import LowVariance, RegionAvoidance, geodesic
from tps.spacetime.geometry import segment_products
from tps.spacetime.constraints import CurveState
from tps.states import Ball, Volume, periodic_difference

TWO_PI = 2.0 * math.pi
PERIODS = (TWO_PI, TWO_PI)
#: The seed paper's endpoints on the reference surface, (phi, psi) in rad.
REFERENCE_ENDPOINTS = ((-2.55, 2.70), (0.95, -0.40))
STATE_RADIUS = 0.75  # rad
#: State A of EVERY method of this runner (issue 5), on both surfaces: the union of the periodic
#: balls of radius ``STATE_RADIUS`` around the C5 and the C7eq minimum, (phi, psi) in rad of the
#: minimised structures (``tps/systems/data/alanine_dipeptide/minima.json``), the same numbers on
#: the package's own and on the reference surface. Why: on the package's surface C7eq (0.00 kJ/mol)
#: and C5 (0.42) are one beta/PII super-basin with a small barrier between them (about 5-7 kJ/mol,
#: 2-3 kT), separated from C7ax by the 36.7 kJ/mol barrier. With A = the C5 ball only, frames of a
#: C5 -> C7ax transition are committed to C5 almost everywhere, shots dwell in C7eq (in neither
#: state) and two-way shooting accepted 0 of 128 (variable) and 0 of 448 (fixed) trials, and the
#: reference run 0 of 512. The standard TPS definition for alanine dipeptide (Bolhuis, Dellago
#: and Chandler 2000, and later work) likewise puts C7eq and C5 together in state A (the phi < 0
#: beta region) and C7ax in B. The geodesics still start at the C5 point and end at the B point;
#: target_hit, the transition segments of path_density_jsd, shooting, the high-temperature initial
#: path and unbiased MD all use A = C5 | C7eq and B = the ball around the end point.
STATE_A_CENTRES = {"C5": (-2.565986, 2.776615), "C7eq": (-1.352293, 0.943792)}
STATE_A_DEFINITION = ("A = union of periodic (phi, psi) balls of radius 0.75 rad around C5 (-2.566, 2.777) and "
                      "C7eq (-1.352, 0.944) (the beta/PII super-basin, as in the standard TPS definition of "
                      "alanine dipeptide); B = periodic ball of radius 0.75 rad around the end point")


@dataclass(frozen=True)
class Protocol:
    """Every setting of the benchmark (frozen; written to ``results.json``).

    Step sizes are in reduced units (energies divided by kT): the data chains use ``data_dt``
    (overdamped, diffusion ``2 data_dt`` rad^2 per step; ``dt = data_dt / kT`` in the surface's
    unit), the annealed sampler ``step_size`` rad^2 (update ``x - ds/2 grad(U/kT + restraint)``).

    Why these values (measured on the reference surface, 1000 paths, every step a frame):

    - ``N * K = 128 * 12 = 1536`` evaluations per path (1.54 M for 1000 paths, the issue's budget).
    - ``ds = 3e-3``: with K = 12, ds = 1e-3 leaves chains behind (target hit 0.35); 2e-3 to 6e-3
      all reach the target, with max energy 37.24 / 37.15 / 37.12 / 37.07 and the largest
      single step growing from 0.25 to 0.43 rad. 3e-3 keeps steps <= 0.3 rad.
    - ``frames_per_point = K``: every Langevin step is a frame, so ``max_energy`` is the maximum
      over all configurations visited and ``max_step`` is a per-step continuity check (recording
      one frame per curve point hides up to 12 steps and gave max_step > 1 rad and max energies
      below the lower bound).
    - ``clamp = True``: the learned model's Jeffreys estimate can go negative where the model is
      inexact; the ReLU'd per-coordinate products (authors' notebooks) stop the optimiser from
      exploiting that by diving to very low logSNR.
    - ``low_variance_weight = 1e4``: curve energies are O(100), so the weight 100 of the paper
      does not bind; 1e4 keeps the curve's logSNR at about the threshold or above.
    - ``coarse_iter = max_iter = 60``: 100/100 iterations gave the same paths (37.16 vs 37.19)
      at twice the solver time.
    - ``avoid_kl_margin = 20``: the region-avoiding curve keeps ``KL(p(.|z*) || p(.|gamma_k))``
      at least 20 nats above its smallest value on the free geodesic; larger margins (200, 1000)
      pushed the curve over higher ridges (max energy 80 to 90) without moving it further away.
    """

    n_chains: int = 2000
    data_steps: int = 3000
    data_dt: float = 1e-3            # reduced (U/kT) time step of the training-data chains
    burn_in: int = 1000
    thin: int = 20
    hidden: int = 128
    n_blocks: int = 3
    n_harmonics: int = 3
    train_steps: int = 3000
    batch_size: int = 512
    logsnr: float = 4.0              # endpoint anchor
    clamp: bool = True               # ReLU per-coordinate products (authors' notebooks)
    n_points: int = 128              # N
    steps_per_point: int = 12        # K: N*K + 1 = 1537 evaluations per path
    step_size: float = 3e-3          # ds, rad^2 (reduced)
    frames_per_point: int = 12       # every Langevin step is a frame (max energy over all visited states)
    init_dips: tuple = (4.0, 1.0)    # multi-start logSNR dips
    coarse_points: int = 32
    image_chord_ratio: float = 1.5   # periodic images solved: chord <= ratio * shortest chord
    coarse_iter: int = 60             # L-BFGS iterations, coarse multi-start (all candidate images at once)
    max_iter: int = 60                # L-BFGS iterations at full resolution (100/100 cost 2x, same paths)
    low_variance_threshold: float = 3.0
    low_variance_weight: float = 1e4  # curve energies are O(100): the penalty must dominate
    avoid_logsnr: float = 4.0
    avoid_kl_margin: float = 20.0     # relative-KL threshold = (min on the free geodesic) + margin
    avoid_weight: float = 1e3
    avoid_low_variance_threshold: float = 3.75
    # issue-5 rows (benchmarks/muller_brown.py): density geodesics at the anchor logSNR, MD baselines
    density_beta: float = 3.0
    density_iter: int = 150
    md_dt: float = 2e-3               # reduced (U/kT) time step of the MD baselines (dt = md_dt / kT)
    md_chains: int = 500              # unbiased MD budget: chains x steps (36 kT barrier: no transition expected)
    md_steps: int = 4000
    shooting_chains: int = 64         # variable-length two-way shooting chains (from a high-temperature transition)
    shooting_rounds: int = 400        # upper bound; shooting_time_s limits the wall time
    shooting_time_s: float = 40.0    # checked after each round (a round takes up to ~20 s)
    shooting_max_frames: int = 8000   # longer trials rejected (as in the reference-ensemble run; a round lasts
                                      # as long as its longest trial: 20000 made rounds of ~200 s under load)
    kT_high_factor: float = 2.5       # initial path of shooting: unbiased MD at 2.5 kT (a dynamical transition)
    initial_candidates: int = 4
    fixed_chains: int = 64            # two-way-shooting-fixed
    fixed_frames: int = 400           # its length (initial path padded with its end frames). With A = C5 | C7eq
                                      # variable-length paths average ~150 frames; measured 20 s runs (64 chains):
                                      # 250 / 400 / 800 / 2000 frames accepted 1.3 / 0.9 / 1.0 / 0.4 % of trials
    fixed_time_s: float = 30.0
    jsd_bins: int = 60                # path_density_jsd grid: bins per axis over [-pi, pi)^2 (periodic)


QUICK = Protocol(n_chains=1000, data_steps=2000, burn_in=600, train_steps=1500, density_iter=60, md_chains=250,
                 md_steps=2000, shooting_chains=32, shooting_time_s=10.0, shooting_max_frames=8000, fixed_chains=32,
                 fixed_time_s=8.0, initial_candidates=2)


@dataclass
class Setting:
    """The surface and the problem posed on it."""

    name: str
    grid: Grid2D
    potential: PeriodicGridPotential
    kT: float
    unit: str
    start: torch.Tensor               # (2,) rad
    end: torch.Tensor                 # (2,) rad
    lower_bound: float
    lower_bound_path: np.ndarray
    notes: dict = field(default_factory=dict)

    @property
    def target(self) -> Ball:
        return Ball(self.end, STATE_RADIUS, periods=PERIODS, name="end")

    @property
    def source(self) -> Volume:
        """State A of every method: :func:`state_a` (the C5 and C7eq balls; ``start`` lies in the C5 one)."""
        return state_a()

    def as_system(self, x_b: torch.Tensor) -> SimpleNamespace:
        """The attributes the Muller-Brown helpers read (potential, kT, endpoints, states, reference);
        endpoint B is the chosen periodic image ``x_b`` (unwrapped)."""
        return SimpleNamespace(potential=self.potential, kT=self.kT,
                               endpoints={"A": self.start.double(), "B": x_b.double()},
                               states={"A": self.source, "B": self.target},
                               reference={"lower_bound": SimpleNamespace(value=self.lower_bound)})


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--surface", type=Path, default=None,
                   help="reference 'phi psi z' grid (e.g. shared/reference/aldp_phipsi_surface_holdijk.dat): the "
                        "seed paper's protocol with kT = 1; default: the package's own OpenMM free-energy surface")
    p.add_argument("--quick", action="store_true", help="smaller training budget (about a minute of CPU time)")
    p.add_argument("--paths", type=int, default=1000, help="paths per method (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--avoid", type=float, nargs=2, metavar=("PHI", "PSI"), default=None,
                   help="(phi, psi) in rad to avoid for spacetime-geodesic-region-avoiding (default: where the "
                        "unconstrained geodesic's paths cross: median position of their highest-energy frames)")
    p.add_argument("--image-criterion", choices=("max-energy", "curve-energy"), default="max-energy",
                   help="how the end point's periodic image is chosen among the batch of geodesics: lowest "
                        "highest potential energy over each coarse curve's restraint centres (default; costs "
                        "n_candidates * coarse_points evaluations, reported as n_selection_energy_evals) or lowest "
                        "geodesic (curve) energy (model only; on both alanine dipeptide surfaces it ties or picks "
                        "an image whose route crosses a ridge 30 energy units higher)")
    p.add_argument("--reference", type=Path, default=None,
                   help="reference ensemble npz of the package's own surface (python -m benchmarks reference-ensemble "
                        "--system aldp-2d): path_density_jsd against it instead of this run's shooting ensemble")
    p.add_argument("--image", type=int, nargs=2, metavar=("K_PHI", "K_PSI"), default=None,
                   help="use the end point's periodic image x_b + 2 pi (K_PHI, K_PSI) instead of choosing one "
                        "(K in -1, 0, 1)")


# ------------------------------------------------------------------ settings
def state_a() -> Volume:
    """State A of the runner: ``Ball(C5) | Ball(C7eq)`` (:data:`STATE_A_CENTRES`, radius :data:`STATE_RADIUS`)."""
    balls = [Ball(torch.tensor(c, dtype=torch.float64), STATE_RADIUS, periods=PERIODS, name=name)
             for name, c in STATE_A_CENTRES.items()]
    return balls[0] | balls[1]


def state_description(setting: "Setting") -> dict:
    """The state definitions, as written to ``results.json`` and into the reference ensemble's meta."""
    return {"A": repr(setting.source), "A_centres_rad": {k: list(v) for k, v in STATE_A_CENTRES.items()},
            "B": repr(setting.target), "B_centre_rad": setting.end.tolist(), "radius_rad": STATE_RADIUS,
            "definition": STATE_A_DEFINITION}


def reference_setting(path: Path) -> Optional[Setting]:
    """The seed paper's setting on the reference grid, or None (with a message) if the file is missing."""
    path = Path(path)
    if not path.exists():
        print(f"aldp-2d: reference surface {path} not found; skipping the reference-surface comparison "
              f"(it is not shipped with the package: pass --surface PATH to the Holdijk et al. grid)")
        return None
    grid = read_grid(path)
    start, end = (torch.tensor(p, dtype=torch.float64) for p in REFERENCE_ENDPOINTS)
    lb = grid_lower_bound(grid, start.tolist(), end.tolist())
    return Setting("alanine-dipeptide (phi, psi), reference surface of Holdijk et al. (kT = 1)", grid,
                   PeriodicGridPotential(grid), 1.0, "as in the file (unstated)", start, end, lb.value, lb.path,
                   {"surface": str(path), "endpoints": "(-2.55, 2.70) -> (0.95, -0.40), the seed paper's"})


def own_setting() -> Optional[Setting]:
    """The package's own free-energy surface (kJ/mol, 300 K), or None (with a message) if not built yet."""
    from tps.systems.alanine_dipeptide import KT, data_dir, reference_minima

    path = data_dir() / "fes_phipsi.dat"
    if not path.exists():
        print(f"aldp-2d: the package's own free-energy surface {path} does not exist yet (it is produced by the "
              f"metadynamics recipe in systems/alanine_dipeptide); nothing to do without --surface")
        return None
    grid = read_grid(path)
    minima = reference_minima()["minima"]
    start = torch.tensor([minima["C5"]["phi_rad"], minima["C5"]["psi_rad"]], dtype=torch.float64)
    end = torch.tensor([minima["C7ax"]["phi_rad"], minima["C7ax"]["psi_rad"]], dtype=torch.float64)
    lb = grid_lower_bound(grid, start.tolist(), end.tolist())
    return Setting("alanine-dipeptide (phi, psi), own OpenMM free-energy surface (amber99sbildn, vacuum, 300 K)",
                   grid, PeriodicGridPotential(grid, energy_unit="kJ/mol"), float(KT), "kJ/mol", start, end,
                   lb.value, lb.path,
                   {"surface": str(path), "endpoints": "(phi, psi) of the minimised C5 and C7ax structures "
                                                        "(tps/systems/data/alanine_dipeptide/minima.json)"})


# ------------------------------------------------------------------ model
def training_data(setting: Setting, proto: Protocol, seed: int):
    """Overdamped Langevin samples of the spline potential from uniform starts on the torus."""
    g = torch.Generator().manual_seed(seed)
    starts = (torch.rand(proto.n_chains, 2, generator=g, dtype=torch.float64) - 0.5) * TWO_PI
    return langevin_samples(setting.potential, starts, kT=setting.kT, dt=proto.data_dt / setting.kT,
                            n_steps=proto.data_steps, burn_in=proto.burn_in, thin=proto.thin, seed=seed)


def train_model(setting: Setting, data, proto: Protocol, seed: int, out: Optional[Path] = None):
    """Train a :class:`PeriodicMLPDenoiser` (identity scaling) on the wrapped samples."""
    scaling = AffineScaling.identity((2,))
    torch.manual_seed(seed)
    net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, period=TWO_PI, hidden=proto.hidden, n_blocks=proto.n_blocks,
                                                n_harmonics=proto.n_harmonics))
    model = DiffusionModel(net, scaling, metadata={"system": "alanine-dipeptide-phipsi", "kT": setting.kT,
                                                   "n_training_energy_evals": data.n_energy_evals})
    cfg = TrainingConfig(n_steps=proto.train_steps, batch_size=proto.batch_size, seed=seed)
    samples = setting.potential.wrap(data.samples).float()
    ckpt = None if out is None else (lambda step: model.save(out / "model.pt"))
    result = train_denoiser(net, samples, config=cfg, progress=True, checkpoint_fn=ckpt)
    return model.freeze(), result


# ------------------------------------------------------------------ curves
def image_shifts(dtype=torch.float32) -> torch.Tensor:
    """The nine lattice shifts ``2 pi k``, ``k in {-1, 0, 1}^2``, shape ``(9, 2)``; index 4 is ``k = (0, 0)``."""
    k = torch.tensor([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=dtype)
    return TWO_PI * k


def solver_kwargs(proto: Protocol) -> dict:
    return dict(logsnr=proto.logsnr, clamp=proto.clamp, coarse_points=proto.coarse_points,
                coarse_iter=proto.coarse_iter, max_iter=proto.max_iter)


def choose_image(net, x_a: torch.Tensor, x_b: torch.Tensor, proto: Protocol, force=None, potential=None):
    """Solve the free geodesic to the candidate images of ``x_b`` as one batch and keep the best one.

    Candidates are the images ``x_b + 2 pi k``, ``k in {-1, 0, 1}^2``, whose chord from ``x_a`` is
    at most ``proto.image_chord_ratio`` times the shortest chord (the others cross a period
    more than needed; on both alanine dipeptide surfaces their geodesic energies were over
    2.5 times the best when all nine were solved). The candidates' geodesics (multi-start,
    ``proto.coarse_points`` points) are solved together with ``geodesic(..., batched=True)``.

    Parameters
    ----------
    net : callable
        Denoiser ``(B, 2), (B,) -> (B, 2)`` (angles in rad).
    x_a, x_b : Tensor, shape ``(2,)``
        Start and (wrapped) end point.
    proto : Protocol
    force : pair of int, optional
        Solve and return this image ``k`` (still solved alongside the candidates, for the record).
    potential : Potential, optional
        If given, choose the image whose coarse curve has the lowest highest potential energy
        over its restraint centres ``x / alpha`` (costs ``n_candidates * coarse_points``
        evaluations, counted in ``potential.n_evals``) instead of the lowest curve energy.

    Returns
    -------
    index : int
        Row of :func:`image_shifts` chosen.
    shift : Tensor, shape ``(2,)``
    energies : list of float or None
        Curve energy of every image's geodesic (None for images not solved).
    result : GeodesicResult
        The batched solve over the candidates.
    nodes : Tensor, shape ``(1, n_nodes, 3)``
        Spline nodes of the chosen image's curve (to warm-start the full-resolution solve).
    """
    shifts = image_shifts(x_a.dtype)
    chords = (x_b[None] + shifts - x_a[None]).norm(dim=1)
    keep = chords <= proto.image_chord_ratio * chords.min()
    forced = None
    if force is not None:
        if not all(int(v) in (-1, 0, 1) for v in force) or len(force) != 2:
            raise ValueError(f"image: expected two integers in {{-1, 0, 1}}, got {force!r}")
        forced = (int(force[0]) + 1) * 3 + (int(force[1]) + 1)
        keep[forced] = True
    cand = torch.nonzero(keep).flatten()
    xa = x_a.expand(len(cand), 2).clone()
    xb = x_b[None] + shifts[cand]
    r = geodesic(net, xa, xb, batched=True, n_points=proto.coarse_points, init_dips=proto.init_dips,
                 logsnr=proto.logsnr, clamp=proto.clamp, max_iter=proto.coarse_iter)
    energies = [None] * len(shifts)
    for i, e in zip(cand.tolist(), r.energy.tolist()):
        energies[i] = e
    if forced is not None:
        best = int((cand == forced).nonzero()[0, 0])
    elif potential is not None:
        c = centres(r.x.reshape(-1, 2), r.logsnr.reshape(-1)).reshape(r.x.shape)
        best = int(torch.argmin(potential.energy(c).max(1).values))
    else:
        best = int(torch.argmin(r.energy))
    index = int(cand[best])
    return index, shifts[index], energies, r, r.nodes[best][None]


def straight_curve(x_a, x_b, proto: Protocol):
    s = torch.linspace(0, 1, proto.n_points, dtype=x_a.dtype)[:, None]
    return (1 - s) * x_a + s * x_b, torch.full((proto.n_points,), proto.logsnr, dtype=x_a.dtype)


def centres(cx: torch.Tensor, clam: torch.Tensor) -> torch.Tensor:
    """Restraint centres ``x / alpha`` (physical = model coordinates here), shape ``(N, 2)``."""
    alpha = torch.sigmoid(clam.double()).sqrt()
    return cx.double() / alpha[:, None]


def relative_kl_profile(net, cx, clam, x_star, logsnr_star, proto: Protocol) -> torch.Tensor:
    """``KL(p(.|z*) || p(.|gamma_k)) - KL(p(.|z*) || p(.|gamma_0))`` along one curve, shape ``(N,)``."""
    probe = RegionAvoidance(x_star, logsnr_star=logsnr_star, threshold=0.0)
    with torch.enable_grad():
        x = cx[None].detach()
        lam = clam[None].detach()
        _, (eta_x, eta_t, mu_x, mu_t) = segment_products(net, x, lam, clamp=proto.clamp, return_parameters=True)
    state = CurveState(x, lam, eta_x, eta_t, mu_x, mu_t, net)
    return probe.relative_kl(state)[0].detach()


def nearest_image(point: torch.Tensor, curve_points: torch.Tensor) -> torch.Tensor:
    """The periodic image ``point + 2 pi k`` (``k in {-2..2}^2``) closest to any of ``curve_points`` ``(M, 2)``, shape ``(2,)``."""
    k = torch.tensor([(i, j) for i in range(-2, 3) for j in range(-2, 3)], dtype=torch.float64)
    cands = point.double()[None] + TWO_PI * k
    d = torch.cdist(cands, curve_points.double()).min(1).values
    return cands[int(d.argmin())]


def crossing_point(paths: Paths) -> torch.Tensor:
    """Median (unwrapped) position of each path's highest-energy frame, shape ``(2,)``: where paths cross."""
    i = paths.energies.argmax(1)
    pts = paths.frames[torch.arange(paths.n_paths), i]
    return pts.median(0).values.double()


def min_periodic_distance(frames: torch.Tensor, point) -> float:
    """Smallest periodic distance of any frame (``(n, T, 2)``) to ``point`` (rad)."""
    p = torch.as_tensor(point, dtype=frames.dtype)
    return float(periodic_difference(p, frames, PERIODS).norm(dim=-1).min())


# ------------------------------------------------------------------ sampling
def sample(setting: Setting, cx, clam, proto: Protocol, n_paths: int, gen: torch.Generator, *,
           executor=None) -> Paths:
    """Annealed Langevin on the spline potential; energies then replaced by raw-grid bilinear values.

    ``executor=None``: one batch drawing its noise from ``gen`` (the historical stream of the
    published figures). With an executor (``--workers`` / ``--scheduler``) the paths run as
    :mod:`tps.parallel` tasks whose streams come from ``(seed, task index)``, ``seed`` being one
    integer drawn from ``gen`` (so each row still has its own seed derived from ``--seed``): the
    same frames for every worker count, but not those of the in-process run.
    """
    paths = annealed_langevin(setting.potential, cx.double(), clam.double(), kT=setting.kT, n_paths=n_paths,
                              steps_per_point=proto.steps_per_point, step_size=proto.step_size,
                              frames_per_point=proto.frames_per_point, x_start=setting.start, generator=gen,
                              progress=True, executor=executor)
    raw = bilinear(setting.grid, paths.frames)
    info = dict(paths.info, energies="periodic bilinear interpolation of the raw grid")
    return Paths(paths.frames, raw, paths.n_energy_evals, paths.kT, info)


# ------------------------------------------------------------------ MD baselines, path density
def raw_energies(setting: Setting, paths: Paths) -> Paths:
    """``paths`` with every frame's energy replaced by the periodic bilinear value of the raw grid."""
    info = dict(paths.info, energies="periodic bilinear interpolation of the raw grid")
    return Paths(paths.frames, bilinear(setting.grid, paths.frames), paths.n_energy_evals, paths.kT, info)


def high_temperature_initial_path(setting: Setting, proto: Protocol, seed: int) -> Paths:
    """One start -> target transition of unbiased overdamped Langevin at ``kT_high`` = the larger of
    ``proto.kT_high_factor * kT`` and a sixth of the grid barrier (same dt): a dynamical initial path for
    shooting (the lowest-max-energy of ``initial_candidates``)."""
    barrier = setting.lower_bound - float(bilinear(setting.grid, setting.start))
    kT_high = max(proto.kT_high_factor * setting.kT, barrier / 6.0)  # at most a 6 kT_high barrier
    return initial_path_high_temperature(setting.potential, setting.start, state_a=setting.source,
                                         state_b=setting.target, kT_high=kT_high,
                                         dt=proto.md_dt / setting.kT, n_chains=64, max_steps=50_000,
                                         n_candidates=proto.initial_candidates, seed=seed + 2)


def shooting_row(setting: Setting, initial: Paths, proto: Protocol, seed: int, *, fixed: bool = False,
                 executor=None):
    """Two-way shooting (overdamped Langevin on the spline potential, dt = md_dt / kT) from the
    high-temperature transition ``initial`` (:func:`high_temperature_initial_path`): variable length
    (at most ``proto.shooting_max_frames`` frames) or fixed length (``proto.fixed_frames``, the initial path
    padded with its end frames);
    wall time limited by ``proto.shooting_time_s`` / ``proto.fixed_time_s``; the first quarter of
    the rounds run is burn-in.

    With an executor the chains are cut into one task per worker (``ceil(n_chains / workers)``
    chains each, task ``i`` seeded from ``(seed, i)``), and every task gets the whole wall-time
    budget: the row still lasts about ``time_s`` of wall time, with ``workers`` times the CPU time.
    The tasks stop independently, so they may run different numbers of rounds; the burn-in is
    the first quarter of the rounds run by each chain's own task. A wall-time-limited run is not
    reproducible in either mode (how many rounds fit depends on the machine's load).
    """
    a, b = setting.source, setting.target
    init = initial.frames[0, :int(initial.info["lengths"][0])]
    method = "two-way-shooting-fixed" if fixed else "two-way-shooting-variable"
    if fixed:
        init = resample_path(init, max(proto.fixed_frames, init.shape[0]), mode="pad")
        ens = FixedLengthEnsemble(a, b, n_frames=init.shape[0])
        n_chains, time_s = proto.fixed_chains, proto.fixed_time_s
    else:
        ens = FlexibleLengthEnsemble(a, b, max_frames=proto.shooting_max_frames)
        n_chains, time_s = proto.shooting_chains, proto.shooting_time_s
    with timer() as t:
        cpu = time.process_time()
        task_size = None  # executor=None: one batch in this process
        if executor is not None:
            from tps.parallel import n_workers

            task_size = -(-n_chains // min(n_workers(executor), n_chains))
        res = two_way_shooting(setting.potential, ens, init, kT=setting.kT, dt=proto.md_dt / setting.kT,
                               n_chains=n_chains, n_rounds=proto.shooting_rounds, burn_in=0,
                               seed=seed + (5 if fixed else 3), time_limit_s=time_s, executor=executor,
                               task_size=task_size)
        cpu = time.process_time() - cpu  # this process only: with an executor the workers' CPU is not in it
    n_rounds = res.info["n_rounds"]
    # burn-in: the first quarter of the rounds actually run (the time limit decides how many)
    rnd = torch.as_tensor(res.paths.info["round"]) if "round" in res.paths.info else None
    paths = raw_energies(setting, res.paths)
    rounds_of_chain = torch.zeros(n_chains, dtype=torch.int64)
    if rnd is not None and executor is not None:  # tasks stop independently: each chain's own rounds
        chain = torch.as_tensor(res.paths.info["chain"])
        rounds_of_chain.scatter_reduce_(0, chain, rnd.to(torch.int64), "amax")
        own = rounds_of_chain[chain]
        paths = subset_paths(paths, (own < 4) | (rnd > own // 4))
    elif rnd is not None and n_rounds >= 4:
        paths = subset_paths(paths, rnd > n_rounds // 4)
    row = summarize(paths, method=method, target=b, periods=PERIODS, n_training_energy_evals=0,
                    wall_s=t(), geodesic_wall_s=0.0)
    initial_evals = int(initial.n_energy_evals)
    row.update({
        "n_energy_evals": int(initial_evals + res.n_energy_evals), "shooting_energy_evals": int(res.n_energy_evals),
        "initial_path_energy_evals": initial_evals,
        "initial_path": f"unbiased overdamped Langevin transition at kT_high = {initial.kT:.4g} "
                        f"({init.shape[0]} frames)",
        "initial_path_max_energy": float(bilinear(setting.grid, init).max()),
        "n_chains": n_chains, "n_rounds": n_rounds, "n_trials": res.n_trials,
        "n_accepted": res.n_accepted, "acceptance_rate": res.acceptance_rate,
        "n_decorrelated_paths": res.n_decorrelated, "evals_per_accepted_path": res.evals_per_accepted_path,
        "evals_per_decorrelated_path": res.evals_per_decorrelated_path,
        "chains_decorrelated_from_initial": res.info["final_decorrelated_from_initial"],
        "mean_path_frames": float(paths.info["lengths"].double().mean()), "cpu_s": cpu,
        "burn_in_rounds": n_rounds // 4, "n_frames": int(init.shape[0]) if fixed else None})
    if executor is not None:  # burn-in per task: the first quarter of the rounds each task ran
        row.update({"task_size": res.info["task_size"], "n_tasks": res.info["n_tasks"], "task_time_limit_s": time_s,
                    "rounds_per_task": rounds_of_chain[::res.info["task_size"]].tolist(), "burn_in_rounds": None})
    return row, paths


def add_path_density_jsd(results, paths_by_method, setting: Setting, proto: Protocol) -> None:
    """``path_density_jsd`` of every row against the variable-length shooting ensemble on the periodic
    ``jsd_bins x jsd_bins`` (phi, psi) grid over [-pi, pi)^2 (in place); the shooting row reports its
    two chain halves' JSD (noise floor)."""
    a, b = setting.source, setting.target
    kw = dict(bins=proto.jsd_bins, ranges=((-math.pi, math.pi), (-math.pi, math.pi)), periods=PERIODS)
    ref_name = "two-way-shooting-variable"
    assign_path_density_jsd(results["methods"], paths_by_method, a, b, reference_method=ref_name, **kw)
    results["notes"]["path_density_jsd"] = (
        f"Jensen-Shannon divergence in bits between the periodic {proto.jsd_bins} x {proto.jsd_bins} (phi, psi) "
        f"histograms over [-pi, pi)^2 of all transition-segment frames (last frame in state A before first "
        f"entering the target ball, to that entry) of a row and of the {ref_name} ensemble of this run (after "
        f"burn-in); the {ref_name} row reports the JSD between its chains' two halves (noise floor). The "
        f"reference is only as converged as the shooting budget allows (chains_decorrelated_from_initial)")


# ------------------------------------------------------------------ figure
def _wrapped_segments(xy: np.ndarray) -> np.ndarray:
    """Wrap an unwrapped (T, 2) polyline into [-pi, pi)^2, with NaN breaks where it crosses the boundary."""
    w = (xy + math.pi) % TWO_PI - math.pi
    jump = np.abs(np.diff(w, axis=0)).max(1) > math.pi
    out = []
    for i in range(len(w)):
        out.append(w[i])
        if i < len(jump) and jump[i]:
            out.append([np.nan, np.nan])
    return np.asarray(out)


def figure(setting: Setting, curves: dict, paths_by_method: dict, out: Path, avoid_point=None, n_show: int = 30):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = setting.grid
    P, Q = np.meshgrid(g.phi, g.psi, indexing="ij")
    z = g.z
    vmax = float(np.quantile(z, 0.95))
    methods = list(paths_by_method)
    fig, axes = plt.subplots(1, len(methods), figsize=(5.4 * len(methods), 4.8), squeeze=False,
                             constrained_layout=True)
    lbp = _wrapped_segments(setting.lower_bound_path)
    for ax, m in zip(axes[0], methods):
        ax.contourf(P, Q, np.minimum(z, vmax), levels=30, cmap="viridis")
        ax.contour(P, Q, np.minimum(z, vmax), levels=12, colors="k", linewidths=0.3)
        for f in paths_by_method[m].frames[:n_show].numpy():
            seg = _wrapped_segments(f)
            ax.plot(seg[:, 0], seg[:, 1], color="white", lw=0.5, alpha=0.6)
        ax.plot(lbp[:, 0], lbp[:, 1], "r--", lw=1, label="minimax grid path")
        if m in curves:
            c = curves[m].numpy()
            w = (c[:, :2] + math.pi) % TWO_PI - math.pi
            sc = ax.scatter(w[:, 0], w[:, 1], c=c[:, 2], cmap="magma", s=6, zorder=3)
            fig.colorbar(sc, ax=ax, label="logSNR of curve point")
        if avoid_point is not None and "region" in m:
            a = (np.asarray(avoid_point) + math.pi) % TWO_PI - math.pi
            ax.plot(a[0], a[1], "rx", ms=10, mew=2)
        for p, mk in ((setting.start, "o"), (setting.end, "s")):
            ax.plot(float(p[0]), float(p[1]), "w" + mk, ms=7, mec="k")
        if ax is axes[0][0]:
            ax.legend(loc="lower left", fontsize=7)
        ax.set_xlim(-math.pi, math.pi)
        ax.set_ylim(-math.pi, math.pi)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("phi (rad)")
        ax.set_ylabel("psi (rad)")
    fig.suptitle(f"{setting.name}\n{n_show} paths per method (wrapped onto the torus); dots: restraint centres",
                 fontsize=9)
    save_figure(fig, out / "paths.png")
    plt.close(fig)


# ------------------------------------------------------------------ run
def run(args) -> Optional[dict]:
    torch.set_num_threads(1)  # small tensors: extra threads only add contention
    out = Path(args.out)
    proto = QUICK if args.quick else Protocol()
    setting = reference_setting(args.surface) if args.surface is not None else own_setting()
    if setting is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    kT = setting.kT
    results = {"suite": "aldp-2d", "system": setting.name, "kT": kT, "energy_unit": setting.unit,
               "lower_bound": setting.lower_bound, "hardware": hardware(), "seed": args.seed,
               "protocol": proto.__dict__ | {"quick": bool(args.quick)}, "methods": [],
               "notes": dict(setting.notes)}
    results["states"] = state_description(setting)
    executor = getattr(args, "executor", None)  # --workers / --scheduler (None: everything in this process)
    if executor is not None:
        results["parallel"] = {
            "executor": type(executor).__name__, "workers": getattr(args, "workers", None),
            "scheduler": getattr(args, "scheduler", None),
            "as_tasks": ["annealed Langevin of every row (seed of each row: one integer drawn from the run's "
                         "generator, seeded with seed + 1)",
                         "two-way shooting rows (one task of ceil(n_chains / workers) chains per worker, each with "
                         "the whole shooting_time_s / fixed_time_s wall budget; burn-in per task)"],
            "in_process": ["training data and training", "geodesics and periodic-image choice",
                           "high-temperature initial path of shooting", "unbiased-md (tps.baselines.unbiased_md "
                           "has no executor path)"],
            "note": "annealed Langevin: the task streams give the same frames for every worker count, but not "
                    "those of the in-process run (the published figures); shooting: wall-time limited, so its "
                    "rounds depend on the load in either mode"}
    results["notes"]["states"] = (f"{STATE_A_DEFINITION}; the same A and B for every row (target_hit, transition "
                                  "segments of path_density_jsd, shooting, its initial path, unbiased MD); until "
                                  "2026-11-21 A was the C5 ball only, and shooting accepted nothing (C7eq, outside "
                                  "both states, made trials long and frames committed to C5)")
    results["notes"]["energies"] = ("every frame's energy is the periodic bilinear interpolation of the raw grid; "
                                    "lower_bound is the bottleneck value on the raw grid (8-neighbour, periodic)")
    with timer() as t_data:
        data = training_data(setting, proto, args.seed)
    with timer() as t_train:
        model, training = train_model(setting, data, proto, args.seed, out)
    results["notes"]["training"] = (
        f"{data.n_energy_evals} Langevin evaluations ({t_data():.1f} s) from {proto.n_chains} uniform starts on the "
        f"torus (barriers are not crossed: basin weights follow the starts' basins of attraction), "
        f"{training.n_steps_done} training steps ({t_train():.1f} s); held-out loss per logSNR band "
        f"{training.holdout_final}")
    net = model.network.float()
    x_a = setting.start.float()
    x_b0 = setting.end.float()

    # periodic image of the end point: batched solve over the candidate images
    cpu0 = time.process_time()
    with timer() as t_img:
        n_before = setting.potential.n_evals
        index, shift, image_energies, image_result, image_nodes = choose_image(
            net, x_a, x_b0, proto, args.image,
            potential=setting.potential if args.image_criterion == "max-energy" else None)
        n_selection = setting.potential.n_evals - n_before
    cpu_img = time.process_time() - cpu0
    x_b = x_b0 + shift
    k = (shift / TWO_PI).round().int().tolist()
    results["periodic_image"] = {"k": k, "end_unwrapped": x_b.tolist(), "curve_energies_by_k": {
        str((int(round(s[0] / TWO_PI)), int(round(s[1] / TWO_PI)))): e
        for s, e in zip(image_shifts(torch.float64).tolist(), image_energies)}, "wall_s": t_img(), "cpu_s": cpu_img}
    with torch.no_grad():
        img_cmax = bilinear(setting.grid, centres(image_result.x.reshape(-1, 2),
                                                  image_result.logsnr.reshape(-1)).reshape(image_result.x.shape))
    solved = [i for i, e in enumerate(image_energies) if e is not None]
    results["periodic_image"]["curve_max_energy_by_k"] = {
        str(tuple(int(v) for v in (image_shifts(torch.float64)[i] / TWO_PI).round().tolist())): float(m)
        for i, m in zip(solved, img_cmax.max(1).values)}
    results["periodic_image"]["forced"] = args.image is not None
    results["periodic_image"]["criterion"] = "--image" if args.image is not None else args.image_criterion
    results["periodic_image"]["n_selection_energy_evals"] = n_selection
    how = {"curve-energy": "lowest coarse geodesic (curve) energy",
           "max-energy": "lowest highest potential energy over the coarse curve's restraint centres"}
    chosen_by = "forced by --image" if args.image is not None else how[args.image_criterion]
    results["notes"]["periodic image"] = (
        f"end point image x_b + 2 pi k with k = {tuple(k)} ({chosen_by}); candidates: the images k in "
        f"{{-1, 0, 1}}^2 whose chord is <= {proto.image_chord_ratio} x the shortest, solved as one batch in "
        f"{t_img():.1f} s (CPU {cpu_img:.1f} s); energies by k in results.json periodic_image")
    print(f"periodic image k = {tuple(k)}; coarse curve energies "
          f"{['-' if e is None else '%.1f' % e for e in image_energies]}")

    skw = solver_kwargs(proto)
    curves, paths_by_method = {}, {}
    gen = torch.Generator().manual_seed(args.seed + 1)
    avoid_point = None

    def record(method, cx, clam, geo_wall, extra, geo_cpu=0.0):
        cpu = time.process_time()
        with timer() as t_sample:
            paths = sample(setting, cx, clam, proto, args.paths, gen, executor=executor)
        cpu = time.process_time() - cpu
        row = summarize(paths, method=method, target=setting.target, periods=PERIODS,
                        n_training_energy_evals=data.n_energy_evals, wall_s=geo_wall + t_sample(),
                        geodesic_wall_s=geo_wall)
        row["sampling_wall_s"] = t_sample()
        row["geodesic_cpu_s"] = geo_cpu
        # the chosen image serves every row: its selection cost is part of every row's sampling cost
        row["n_selection_energy_evals"] = n_selection
        row["n_energy_evals"] += n_selection
        row["sampling_cpu_s"] = cpu
        row["excess_over_lower_bound_kT"] = (row["max_energy_mean"] - setting.lower_bound) / kT
        row["curve_logsnr_min"] = float(clam.min())
        row["curve_logsnr_mean"] = float(clam.mean())
        c = centres(cx, clam)
        row["curve_max_energy"] = float(bilinear(setting.grid, c).max())
        row["periodic_image_k"] = k
        row.update(extra)
        results["methods"].append(row)
        paths_by_method[method] = paths
        curves[method] = torch.cat([c, clam.double()[:, None]], 1)
        write_results(out, results)
        save_paths_npz(out, paths_by_method)
        print(f"{method}: max energy {row['max_energy_mean']:.2f} +- {row['max_energy_std']:.2f}, "
              f"hit {row['target_hit_fraction']:.3f}, max_step {row['max_step']:.3f}, "
              f"geodesic {geo_wall:.1f} s, sampling {t_sample():.1f} s")
        return row

    # 1. free geodesic
    cpu0 = time.process_time()
    with timer() as t_geo:  # refine the chosen image's coarse multi-start solution at full resolution
        r = geodesic(net, x_a, x_b, n_points=proto.n_points, init_nodes=image_nodes,
                     logsnr=proto.logsnr, clamp=proto.clamp, max_iter=proto.max_iter)
    cpu_geo = cpu_img + time.process_time() - cpu0
    free_curve = (r.x, r.logsnr)
    record("spacetime-geodesic", r.x, r.logsnr, t_img() + t_geo(),
                      {"curve_energy": float(r.energy), "solver_evaluations": r.n_evaluations}, cpu_geo)

    # 2. low variance
    lv = LowVariance(proto.low_variance_threshold, weight=proto.low_variance_weight)
    cpu0 = time.process_time()
    with timer() as t_geo:
        r = geodesic(net, x_a, x_b, n_points=proto.n_points, init_dips=(proto.logsnr,), constraints=(lv,), **skw)
    cpu_geo = cpu_img + time.process_time() - cpu0
    record("spacetime-geodesic-low-variance", r.x, r.logsnr, t_img() + t_geo(),
           {"curve_energy": float(r.energy), "solver_evaluations": r.n_evaluations,
            "low_variance_threshold": proto.low_variance_threshold, "low_variance_weight": proto.low_variance_weight},
           cpu_geo)

    # 3. region avoiding
    if args.avoid is not None:
        requested = torch.as_tensor(check_radians(args.avoid, "--avoid"), dtype=torch.float64)
        route = paths_by_method["spacetime-geodesic"].frames[:50].reshape(-1, 2)
        avoid_point = nearest_image(requested, route)
        avoid_note = f"--avoid {tuple(args.avoid)} (image nearest the free geodesic's paths: {avoid_point.tolist()})"
    else:
        avoid_point = crossing_point(paths_by_method["spacetime-geodesic"])
        avoid_note = (f"default: the free geodesic paths' typical crossing point {avoid_point.tolist()} (median "
                      f"position of each path's highest-energy frame; grid energy "
                      f"{float(bilinear(setting.grid, avoid_point)):.2f})")
    cpu0 = time.process_time()
    with timer() as t_geo:
        x_star = avoid_point.float()
        kl = relative_kl_profile(net, free_curve[0], free_curve[1], x_star, proto.avoid_logsnr, proto)
        threshold = float(kl.min()) + proto.avoid_kl_margin
        ra = RegionAvoidance(x_star, logsnr_star=proto.avoid_logsnr, threshold=threshold, weight=proto.avoid_weight)
        lv2 = LowVariance(proto.avoid_low_variance_threshold, weight=proto.low_variance_weight)
        r = geodesic(net, x_a, x_b, n_points=proto.n_points, init_dips=(proto.logsnr,), constraints=(lv2, ra), **skw)
    cpu_geo = cpu_img + time.process_time() - cpu0
    results["notes"]["region avoidance"] = (
        f"avoided point {avoid_note}; z* at logSNR {proto.avoid_logsnr}; relative-KL threshold {threshold:.1f} "
        f"(= minimum on the free geodesic + {proto.avoid_kl_margin}); plus LowVariance("
        f"{proto.avoid_low_variance_threshold})")
    record("spacetime-geodesic-region-avoiding", r.x, r.logsnr, t_img() + t_geo(),
           {"curve_energy": float(r.energy), "solver_evaluations": r.n_evaluations,
            "avoided_point": avoid_point.tolist(), "avoid_kl_threshold": threshold}, cpu_geo)

    # 4. straight line to the chosen image at constant logSNR
    cx, clam = straight_curve(x_a, x_b, proto)
    record("linear-interpolation", cx, clam, 0.0, {})

    # 5, 6. density geodesics at the anchor logSNR (learned score; exact score -grad U / kT of the spline
    # potential in unwrapped coordinates, to the same chosen image x_b), same sampler at constant logSNR
    system = setting.as_system(x_b)
    for method, exact in (("density-geodesic", False), ("density-geodesic-exact-score", True)):
        cpu0 = time.process_time()
        with timer() as t_geo:
            cx, clam, dens = density_curve(system, model, net, proto, exact=exact)
        extra = {"density_beta": dens.beta, "n_score_evals": dens.n_score_evals}
        row = record(method, cx.detach(), clam, t_geo(), extra, time.process_time() - cpu0)
        if exact:  # the solver's force evaluations are energy evaluations
            row["n_energy_evals"] += dens.n_score_evals
    for row in results["methods"]:  # distances of all frames and of the restraint centres to the avoided point
        m = row["method"]
        row["min_distance_to_avoided_point"] = min_periodic_distance(paths_by_method[m].frames, avoid_point)
        row["curve_min_distance_to_avoided_point"] = min_periodic_distance(curves[m][None, :, :2], avoid_point)
    write_results(out, results)

    # 7, 8. MD baselines on the spline potential (overdamped Langevin, dt = md_dt / kT)
    with timer() as t_base:
        try:
            hot = high_temperature_initial_path(setting, proto, args.seed)
        except ValueError as exc:  # no high-temperature transition in the budget: say so in the table
            hot = None
            for m in ("two-way-shooting-variable", "two-way-shooting-fixed"):
                results["methods"].append({"method": m, "n_paths": 0, "n_energy_evals": 64 * 50_000,
                                           "n_accepted": 0, "n_trials": 0, "wall_s": t_base(),
                                           "note": f"no initial path (budget of the search spent): {exc}"})
        for fixed in (False, True) if hot is not None else ():
            row, paths = shooting_row(setting, hot, proto, args.seed, fixed=fixed, executor=executor)
            results["methods"].append(row)
            paths_by_method[row["method"]] = paths
            write_tables(out, results)
        md_proto = replace(proto, md_dt=proto.md_dt / kT)
        for method, row, paths in baseline_rows(system, md_proto, args.seed, ["unbiased-md"]):
            if paths is not None:  # a transition was seen: grid energies and periodic steps like every row
                paths = raw_energies(setting, paths)
                extra = {k: v for k, v in row.items() if k not in ("max_energy_mean", "max_energy_std", "minmax",
                                                                   "barrier_mean", "max_step")}
                row = summarize(paths, method=method, target=setting.target, periods=PERIODS) | extra
                paths_by_method[method] = paths
            results["methods"].append(row)
    results["notes"]["baselines"] = (
        f"overdamped Langevin on the spline potential, dt = {proto.md_dt} / kT, states: {STATE_A_DEFINITION}; "
        f"variable-length two-way shooting: "
        f"{proto.shooting_chains} chains from one dynamical transition of unbiased MD at the larger of "
        f"{proto.kT_high_factor} kT and a sixth of the grid barrier (its cost is initial_path_energy_evals); "
        f"fixed length: {proto.fixed_frames} frames (initial path padded with its end frames); "
        f"at most {proto.shooting_time_s} s, burn-in a quarter of the rounds run, trials longer than "
        f"{proto.shooting_max_frames} frames rejected; unbiased MD: {proto.md_chains} chains x {proto.md_steps} steps "
        f"from the start (with no transition the budget is a lower bound on evaluations per transition; "
        f"evals_per_transition_extrapolated: harmonic-rate estimate over the grid lower bound); baselines "
        f"{t_base():.1f} s wall")
    add_path_density_jsd(results, paths_by_method, setting, proto)
    if getattr(args, "reference", None) is not None:
        from benchmarks.common import use_reference_ensemble

        def same_surface(meta):
            if meta.get("surface") != setting.notes.get("surface"):
                raise ValueError(f"--reference: {args.reference} was made on {meta.get('surface')}, this run uses "
                                 f"{setting.notes.get('surface')}")
            if meta.get("states") != results["states"]:
                raise ValueError(f"--reference: {args.reference} was made with other states ({meta.get('states')}); "
                                 f"this run uses {results['states']}")

        use_reference_ensemble(results, paths_by_method, setting.source, setting.target, args.reference, "aldp-2d",
                               check=same_surface, bins=proto.jsd_bins,
                               ranges=((-math.pi, math.pi), (-math.pi, math.pi)), periods=PERIODS)
    note = evaluation_ratio_note(results)
    shoot = next(r for r in results["methods"] if r["method"] == "two-way-shooting-variable")
    if not shoot["n_accepted"] and shoot.get("n_trials"):  # no accepted trial: its evaluations bound the cost per accepted path from below
        shoot["evals_per_accepted_path_lower_bound"] = shoot["n_energy_evals"]
        note += (f"; variable-length shooting: no trial accepted in {shoot['n_trials']} trials, so more than "
                 f"{shoot['n_energy_evals']} evaluations per accepted path (its ensemble is the initial path only, "
                 f"and path_density_jsd compares with that one path)")
    results["notes"]["evaluations per transition path"] = note
    write_tables(out, results)
    save_paths_npz(out, paths_by_method)
    figure(setting, curves, paths_by_method, out, avoid_point=avoid_point)
    print(markdown_table(results["methods"]))
    print(markdown_table(results["methods"], keys=EXTRA_KEYS + ("evals_per_transition_lower_bound",
                                                               "evals_per_transition_extrapolated")))
    print(f"evaluations per transition path: {results['notes']['evaluations per transition path']}")
    print(f"lower bound {setting.lower_bound:.3f} ({setting.unit}); hardware: {results['hardware']}")
    print(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'paths.png'}, {out / 'paths.npz'}")
    return results
