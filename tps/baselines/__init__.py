"""MD baselines: what path samplers are compared against, written once on :mod:`tps.engines`.

- :func:`unbiased_md`: independent overdamped Langevin chains from A until they reach B; cost
  per observed transition, or the budget as a lower bound when none is seen.
- :func:`two_way_shooting`: two-way shooting transition path sampling in a
  :class:`FixedLengthEnsemble` or :class:`FlexibleLengthEnsemble`, with exact cost and
  decorrelation accounting.
- :func:`openmm_two_way_shooting`, :func:`openmm_unbiased_md`: the same two algorithms
  (:func:`tps.baselines.shooting.run_chains`, :func:`tps.baselines.unbiased_md.run_md`) on
  OpenMM's LangevinMiddleIntegrator for an ``openmm.System`` (all-atom molecules).
- :func:`initial_path_high_temperature`, :func:`resample_path`: initial paths for shooting.
"""

from tps.baselines.ensembles import FixedLengthEnsemble, FlexibleLengthEnsemble, resample_path
from tps.baselines.initial_path import initial_path_high_temperature
from tps.baselines.openmm_engine import (
    OpenMMUnbiasedMDResult, openmm_two_way_shooting, openmm_unbiased_md, trim_to_transition,
)
from tps.baselines.shooting import ShootingResult, two_way_shooting
from tps.baselines.unbiased_md import UnbiasedMDResult, pad_paths, unbiased_md

__all__ = [
    "FixedLengthEnsemble", "FlexibleLengthEnsemble", "resample_path", "initial_path_high_temperature",
    "ShootingResult", "two_way_shooting", "UnbiasedMDResult", "pad_paths", "unbiased_md",
    "OpenMMUnbiasedMDResult", "openmm_two_way_shooting", "openmm_unbiased_md", "trim_to_transition",
]
