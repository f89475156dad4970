"""The protocols of the system runners: every number a benchmark uses, one frozen dataclass per runner.

- :class:`MullerBrownProtocol` / :data:`MULLER_BROWN_QUICK`: ``benchmarks/muller_brown.py``;
- :class:`PhiPsiProtocol` / :data:`PHIPSI_QUICK`: ``benchmarks/aldp_2d.py`` (alanine dipeptide in (phi, psi));
- :class:`CartesianProtocol` / :data:`CARTESIAN_QUICK`: ``benchmarks/aldp_cartesian.py`` (all-atom).

They live here, not in their runners, because ``benchmarks/reference_ensemble.py`` runs the same
dynamics (time steps, friction, frame spacing) and runners never import each other. Each runner's
``results.json`` records its protocol under ``protocol``.

Examples
--------
>>> MULLER_BROWN_QUICK.n_chains, MullerBrownProtocol().md_dt
(500, 0.0001)
>>> PhiPsiProtocol().steps_per_point * PhiPsiProtocol().n_points
1536
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MullerBrownProtocol:
    """Every setting of the Muller-Brown runner (frozen; written to ``results.json``)."""

    n_chains: int = 1000
    data_steps: int = 10_000
    data_dt: float = 2e-4
    burn_in: int = 2000
    thin: int = 20
    hidden: int = 128
    n_blocks: int = 3
    train_steps: int = 4000
    batch_size: int = 512
    logsnr: float = 6.0            # endpoint anchor, model coordinates
    low_variance_threshold: float = 5.0
    low_variance_weight: float = 1e5   # must dominate curve energies of ~1e3 at logSNR 5-6
    calibration_logsnr: float = 8.0    # restraints on the exact minimum-energy path (sampler check)
    n_points: int = 128
    steps_per_point: int = 15      # 128 * 15 + 1 = 1921 evaluations per path
    step_size: float = 4e-4
    init_dips: tuple = (6.0, 2.0, -2.0)   # multi-start logSNR dips of the geodesic solver
    coarse_points: int = 32
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


MULLER_BROWN_QUICK = MullerBrownProtocol(n_chains=500, data_steps=6000, burn_in=1000, hidden=96, train_steps=1500,
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


PHIPSI_QUICK = PhiPsiProtocol(n_chains=1000, data_steps=2000, burn_in=600, train_steps=1500, density_iter=60,
                              md_chains=250, md_steps=2000, shooting_chains=32, shooting_time_s=10.0,
                              shooting_max_frames=8000, fixed_chains=32, fixed_time_s=8.0, initial_candidates=2)


@dataclass(frozen=True)
class CartesianProtocol:
    """Every setting of the all-atom alanine dipeptide runner (frozen; written to ``results.json``)."""

    md_steps: int = 250_000            # per start (C5, C7ax): 0.5 ns each at 2 fs
    md_report_interval: int = 50       # 0.1 ps between training frames
    hidden: int = 32
    n_layers: int = 3
    train_steps: int = 2400
    batch_size: int = 64
    logsnr: float = 4.0                # endpoint anchor, model coordinates
    n_points: int = 64
    n_nodes: int = 8
    max_iter: int = 30
    coarse_points: int = 16
    coarse_iter: int = 20
    init_dips: tuple = (2.0, -1.0)
    low_variance_threshold: float = 3.0
    low_variance_weight: float = 1e4
    steps_per_point: int = 250         # 64 * 250 = 16 000 MD steps (32 ps) per path
    frames_per_point: int = 10         # a frame every 25 steps (50 fs)
    timestep: float = 0.002
    friction: float = 1.0
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


CARTESIAN_QUICK = CartesianProtocol(md_steps=20_000, md_report_interval=20, hidden=16, n_layers=2, train_steps=150,
                                    batch_size=32, n_points=32, max_iter=8, coarse_points=12, coarse_iter=6,
                                    init_dips=(), steps_per_point=100, frames_per_point=4, neb_images=10,
                                    neb_max_iterations=1500, throughput_steps=5000, shooting_trials=300,
                                    shooting_max_frames=400, shooting_time_s=20.0, md_budget=300_000, md_time_s=15.0,
                                    density_iter=20, relax_trials=20, fixed_trials=200, fixed_time_s=10.0)
