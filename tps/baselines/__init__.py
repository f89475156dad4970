"""MD baselines: what path samplers are compared against, written once on :mod:`tps.engines`.

- :func:`unbiased_md`: independent overdamped Langevin chains from A until they reach B; cost
  per observed transition, or the budget as a lower bound when none is seen.
- :func:`two_way_shooting`: two-way shooting transition path sampling in a
  :class:`FixedLengthEnsemble` or :class:`FlexibleLengthEnsemble`, with exact cost and
  decorrelation accounting.
- :func:`openmm_two_way_shooting`, :func:`openmm_unbiased_md`: the same two algorithms
  (:func:`run_chains`, :func:`run_md`) on
  OpenMM's LangevinMiddleIntegrator for an ``openmm.System`` (all-atom molecules).
- :func:`seeded_shooting`: shooting chains started from different (e.g. geodesic) paths, each cut to
  its A -> B transition (:func:`transition_segments`, :func:`seed_paths`).
- :func:`initial_path_high_temperature`, :func:`resample_path`: initial paths for shooting.
- :func:`run_chains`, :func:`run_md`: the two algorithms on any :class:`~tps.engines.base.Engine`
  (round mechanics in :mod:`tps.baselines.trials`).
"""

from tps.baselines.ensembles import FixedLengthEnsemble, FlexibleLengthEnsemble, resample_path
from tps.baselines.initial_path import initial_path_high_temperature
from tps.baselines.openmm_engine import (
    OpenMMUnbiasedMDResult, openmm_two_way_shooting, openmm_unbiased_md, trim_to_transition,
)
from tps.baselines.relax import RelaxResult, relax_chains
from tps.baselines.seeded import seed_paths, seeded_shooting, transition_bounds, transition_segments
from tps.baselines.shooting import ChainRun, ShootingResult, run_chains, shooting_result, two_way_shooting
from tps.baselines.unbiased_md import MDRun, UnbiasedMDResult, pad_paths, run_md, unbiased_md

__all__ = [
    "FixedLengthEnsemble", "FlexibleLengthEnsemble", "resample_path", "initial_path_high_temperature",
    "ShootingResult", "two_way_shooting", "UnbiasedMDResult", "pad_paths", "unbiased_md",
    "OpenMMUnbiasedMDResult", "openmm_two_way_shooting", "openmm_unbiased_md", "trim_to_transition",
    "ChainRun", "run_chains", "shooting_result", "MDRun", "run_md", "seeded_shooting", "seed_paths",
    "transition_segments", "transition_bounds", "relax_chains", "RelaxResult",
]
