"""The protocols of the system runners: every number a benchmark uses, one frozen dataclass per runner.

- :class:`MullerBrownProtocol` / :data:`MULLER_BROWN_QUICK`: ``benchmarks/muller_brown.py``;
- :class:`PhiPsiProtocol` / :data:`PHIPSI_QUICK`: ``benchmarks/aldp_2d.py`` (alanine dipeptide in (phi, psi));
- :class:`CartesianProtocol` / :data:`CARTESIAN_QUICK`: ``benchmarks/aldp_cartesian.py`` (all-atom).

They live here, not in their runners, because ``benchmarks/reference_ensemble.py`` runs the same
dynamics (time steps, friction, frame spacing) and runners never import each other. Each runner's
``results.json`` records its protocol under ``protocol``.

One home for every number: the fields that are also ``tps run`` / ``tps train`` defaults (training
data and network, geodesic solver, constraints, sampler) are READ from the system's protocols
(:func:`tps.systems.protocols_of`, full or ``quick``); the fields written here are the
benchmark's own (density geodesics, MD baselines, path-density histogram, wall-time caps).

Examples
--------
>>> MULLER_BROWN_QUICK.n_chains, MullerBrownProtocol().md_dt
(500, 0.0001)
>>> PhiPsiProtocol().steps_per_point * PhiPsiProtocol().n_points
1536
"""

from __future__ import annotations

from dataclasses import dataclass

from tps.systems import protocols_of


def _muller_brown(p) -> dict:
    """The fields of :class:`MullerBrownProtocol` owned by the ``muller-brown`` system's protocols ``p``."""
    t, g, c = p.training, p.geodesic, p.constraints
    return dict(n_chains=t.chains, data_steps=t.data_steps, data_dt=t.data_dt, burn_in=t.burn_in, thin=t.thin,
                hidden=t.hidden, n_blocks=t.layers, train_steps=t.steps, batch_size=t.batch_size, logsnr=g.logsnr,
                low_variance_threshold=c.low_variance_threshold, low_variance_weight=c.low_variance_weight,
                n_points=g.n_points, steps_per_point=p.sampler.steps_per_point, step_size=p.sampler.step_size,
                init_dips=tuple(g.init_dips), coarse_points=g.coarse_points)


def _phipsi(p) -> dict:
    """The fields of :class:`PhiPsiProtocol` owned by the ``alanine-dipeptide-phipsi`` system's protocols ``p``."""
    t, g, c, s = p.training, p.geodesic, p.constraints, p.sampler
    return dict(n_chains=t.chains, data_steps=t.data_steps, data_dt=t.data_dt, burn_in=t.burn_in, thin=t.thin,
                hidden=t.hidden, n_blocks=t.layers, n_harmonics=t.harmonics, train_steps=t.steps,
                batch_size=t.batch_size, logsnr=g.logsnr, clamp=g.clamp, n_points=g.n_points,
                steps_per_point=s.steps_per_point, step_size=s.step_size, frames_per_point=s.frames_per_point,
                init_dips=tuple(g.init_dips), coarse_points=g.coarse_points,
                image_chord_ratio=p.extras["image_chord_ratio"], coarse_iter=g.coarse_iter, max_iter=g.max_iter,
                low_variance_threshold=c.low_variance_threshold, low_variance_weight=c.low_variance_weight,
                avoid_logsnr=c.avoid_logsnr, avoid_kl_margin=c.avoid_kl_margin, avoid_weight=c.avoid_weight,
                avoid_low_variance_threshold=c.avoid_low_variance_threshold)


def _cartesian(p) -> dict:
    """The fields of :class:`CartesianProtocol` owned by the ``alanine-dipeptide`` system's protocols ``p``."""
    t, g, c, s = p.training, p.geodesic, p.constraints, p.sampler
    return dict(md_steps=t.data_steps, md_report_interval=t.report_interval, hidden=t.hidden, n_layers=t.layers,
                train_steps=t.steps, batch_size=t.batch_size, logsnr=g.logsnr, n_points=g.n_points,
                n_nodes=g.n_nodes, max_iter=g.max_iter, coarse_points=g.coarse_points, coarse_iter=g.coarse_iter,
                init_dips=tuple(g.init_dips), low_variance_threshold=c.low_variance_threshold,
                low_variance_weight=c.low_variance_weight, steps_per_point=s.steps_per_point,
                frames_per_point=s.frames_per_point, timestep=s.timestep, friction=s.friction)


_MB = _muller_brown(protocols_of("muller-brown"))
_PHIPSI = _phipsi(protocols_of("alanine-dipeptide-phipsi"))
_CARTESIAN = _cartesian(protocols_of("alanine-dipeptide"))


@dataclass(frozen=True)
class MullerBrownProtocol:
    """Every setting of the Muller-Brown runner (frozen; written to ``results.json``)."""

    n_chains: int = _MB["n_chains"]
    data_steps: int = _MB["data_steps"]
    data_dt: float = _MB["data_dt"]
    burn_in: int = _MB["burn_in"]
    thin: int = _MB["thin"]
    hidden: int = _MB["hidden"]
    n_blocks: int = _MB["n_blocks"]
    train_steps: int = _MB["train_steps"]
    batch_size: int = _MB["batch_size"]
    logsnr: float = _MB["logsnr"]  # endpoint anchor, model coordinates
    low_variance_threshold: float = _MB["low_variance_threshold"]
    low_variance_weight: float = _MB["low_variance_weight"]  # must dominate curve energies of ~1e3 at logSNR 5-6
    calibration_logsnr: float = 8.0    # restraints on the exact minimum-energy path (sampler check)
    n_points: int = _MB["n_points"]
    steps_per_point: int = _MB["steps_per_point"]  # 128 * 15 + 1 = 1921 evaluations per path
    step_size: float = _MB["step_size"]
    init_dips: tuple = _MB["init_dips"]  # multi-start logSNR dips of the geodesic solver
    coarse_points: int = _MB["coarse_points"]
    # density geodesics (method.md section 6), at the anchor logSNR
    density_beta: float = 3.0          # p^(-beta); 3 is within 0.1 of the minimax limit with the exact score
    density_iter: int = 150            # solver iterations per knot level (levels 32, 64, 128 knots)
    # MD baselines (benchmarks.md section 5), Doob's protocol: overdamped Euler-Maruyama, dt = 1e-4
    md_dt: float = 1e-4
    md_chains: int = 1000              # unbiased MD: chains x steps is the budget
    md_steps: int = 3000
    kT_high: float = 20.0              # initial path for shooting: unbiased MD at this temperature
    initial_chains: int = 32
    initial_max_steps: int = 20_000
    initial_candidates: int = 4
    shooting_chains: int = 256         # variable-length two-way shooting
    shooting_rounds: int = 40
    shooting_max_frames: int = 1000    # longer trials are rejected (their cost is counted)
    shooting_save_every: int = 2       # chain states saved every this many rounds after a quarter burn-in
    fixed_chains: int = 128            # fixed-length two-way shooting
    fixed_frames: int = 1000           # its length: ~2.5 x the mean transition-path length (~400 frames); at the
                                       # initial path's own length (366) no trial was accepted in 1280
    fixed_rounds: int = 10
    jsd_bins: int = 60                 # path_density_jsd grid: bins per axis over BOX


MULLER_BROWN_QUICK = MullerBrownProtocol(**_muller_brown(protocols_of("muller-brown", quick=True)),
                                         density_iter=60, md_chains=500, md_steps=2000, shooting_chains=128,
                                         shooting_rounds=10, shooting_save_every=1, fixed_chains=64, fixed_rounds=5)


@dataclass(frozen=True)
class PhiPsiProtocol:
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

    n_chains: int = _PHIPSI["n_chains"]
    data_steps: int = _PHIPSI["data_steps"]
    data_dt: float = _PHIPSI["data_dt"]  # reduced (U/kT) time step of the training-data chains
    burn_in: int = _PHIPSI["burn_in"]
    thin: int = _PHIPSI["thin"]
    hidden: int = _PHIPSI["hidden"]
    n_blocks: int = _PHIPSI["n_blocks"]
    n_harmonics: int = _PHIPSI["n_harmonics"]
    train_steps: int = _PHIPSI["train_steps"]
    batch_size: int = _PHIPSI["batch_size"]
    logsnr: float = _PHIPSI["logsnr"]  # endpoint anchor
    clamp: bool = _PHIPSI["clamp"]  # ReLU per-coordinate products (authors' notebooks)
    n_points: int = _PHIPSI["n_points"]  # N
    steps_per_point: int = _PHIPSI["steps_per_point"]  # K: N*K + 1 = 1537 evaluations per path
    step_size: float = _PHIPSI["step_size"]  # ds, rad^2 (reduced)
    frames_per_point: int = _PHIPSI["frames_per_point"]  # every Langevin step is a frame (max energy over all visited states)
    init_dips: tuple = _PHIPSI["init_dips"]  # multi-start logSNR dips
    coarse_points: int = _PHIPSI["coarse_points"]
    image_chord_ratio: float = _PHIPSI["image_chord_ratio"]  # periodic images solved: chord <= ratio * shortest chord
    coarse_iter: int = _PHIPSI["coarse_iter"]  # L-BFGS iterations, coarse multi-start (all candidate images at once)
    max_iter: int = _PHIPSI["max_iter"]  # L-BFGS iterations at full resolution (100/100 cost 2x, same paths)
    low_variance_threshold: float = _PHIPSI["low_variance_threshold"]
    low_variance_weight: float = _PHIPSI["low_variance_weight"]  # curve energies are O(100): the penalty must dominate
    avoid_logsnr: float = _PHIPSI["avoid_logsnr"]
    avoid_kl_margin: float = _PHIPSI["avoid_kl_margin"]  # relative-KL threshold = (min on the free geodesic) + margin
    avoid_weight: float = _PHIPSI["avoid_weight"]
    avoid_low_variance_threshold: float = _PHIPSI["avoid_low_variance_threshold"]
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


PHIPSI_QUICK = PhiPsiProtocol(**_phipsi(protocols_of("alanine-dipeptide-phipsi", quick=True)), density_iter=60,
                              md_chains=250, md_steps=2000, shooting_chains=32, shooting_time_s=10.0,
                              shooting_max_frames=8000, fixed_chains=32, fixed_time_s=8.0, initial_candidates=2)


@dataclass(frozen=True)
class CartesianProtocol:
    """Every setting of the all-atom alanine dipeptide runner (frozen; written to ``results.json``)."""

    md_steps: int = _CARTESIAN["md_steps"]  # per start (C5, C7ax): 0.5 ns each at 2 fs
    md_report_interval: int = _CARTESIAN["md_report_interval"]  # 0.1 ps between training frames
    hidden: int = _CARTESIAN["hidden"]
    n_layers: int = _CARTESIAN["n_layers"]
    train_steps: int = _CARTESIAN["train_steps"]
    batch_size: int = _CARTESIAN["batch_size"]
    logsnr: float = _CARTESIAN["logsnr"]  # endpoint anchor, model coordinates
    n_points: int = _CARTESIAN["n_points"]
    n_nodes: int = _CARTESIAN["n_nodes"]
    max_iter: int = _CARTESIAN["max_iter"]
    coarse_points: int = _CARTESIAN["coarse_points"]
    coarse_iter: int = _CARTESIAN["coarse_iter"]
    init_dips: tuple = _CARTESIAN["init_dips"]
    low_variance_threshold: float = _CARTESIAN["low_variance_threshold"]
    low_variance_weight: float = _CARTESIAN["low_variance_weight"]
    steps_per_point: int = _CARTESIAN["steps_per_point"]  # 64 * 250 = 16 000 MD steps (32 ps) per path
    frames_per_point: int = _CARTESIAN["frames_per_point"]  # a frame every 25 steps (50 fs)
    timestep: float = _CARTESIAN["timestep"]
    friction: float = _CARTESIAN["friction"]
    neb_images: int = 16
    neb_max_iterations: int = 4000
    throughput_steps: int = 20_000     # plain OpenMM MD, for the sampler's relative throughput
    shooting_trials: int = 1000        # two-way-shooting-variable (OpenMM engine, one chain)
    shooting_max_frames: int = 800     # longest trial path, frames (800 * 25 = 20 000 MD steps)
    shooting_time_s: float = 100.0     # wall-time cap of the shooting row
    md_budget: int = 2_000_000         # unbiased-md: MD steps (4 ns) from C5
    md_time_s: float = 70.0            # wall-time cap of the unbiased-md row
    # issue-5 rows: density geodesics (method.md section 6) at the anchor logSNR, same OpenMM sampler
    density_beta: float = 3.0
    density_iter: int = 100            # solver iterations per knot level
    # shooting: initial path = an 800 K transition (unbiased MD), relaxed at 300 K (paths discarded)
    initial_temperature: float = 800.0
    relax_trials: int = 40             # flexible shooting without the length factor, then proper TPS
    fixed_frames: int = 20             # two-way-shooting-fixed: path length in frames (20 * 25 = 500 MD steps). With
                                       # A = C5 | C7eq transitions take ~8 frames; 30 s runs (2026-11-21) accepted
                                       # 1.3 / 0.9 / 0.5 % of trials at 20 / 40 / 80 frames
    fixed_trials: int = 1000
    fixed_time_s: float = 60.0         # wall-time cap of the fixed-length row


CARTESIAN_QUICK = CartesianProtocol(**_cartesian(protocols_of("alanine-dipeptide", quick=True)), neb_images=10,
                                    neb_max_iterations=1500, throughput_steps=5000, shooting_trials=300,
                                    shooting_max_frames=400, shooting_time_s=20.0, md_budget=300_000, md_time_s=15.0,
                                    density_iter=20, relax_trials=20, fixed_trials=200, fixed_time_s=10.0)
