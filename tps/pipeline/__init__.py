"""One path from a system to a result.

:func:`run_method` runs a method (spacetime geodesic with any constraint, linear interpolation,
or a baseline the system provides) on a registered system and returns the paths, the metrics
row, the curve and timings; :class:`RunDirectory` owns the files of a ``tps run`` (``state.json``
with stage keys derived from the protocol dataclasses, ``curve.pt``, path files,
``results.json``) and resumes an interrupted run; :func:`refine_by_shooting` refines a geodesic
ensemble by geodesic-seeded shooting (``tps run --refine shooting``). ``tps run``, ``tps sample``, the benchmarks
and notebook 02 all call these.
"""

from tps.pipeline.directory import RunDirectory, geodesic_key, refine_key, sampling_key
from tps.pipeline.refine import REFINED_METHOD, RefineResult, refine_by_shooting
from tps.pipeline.errors import InputError, input_error
from tps.pipeline.run import METHODS, RunResult, linear_curve, method_label, run_method, sample_curve, solve_curve

__all__ = ["run_method", "RunResult", "RunDirectory", "METHODS", "method_label", "solve_curve", "sample_curve",
           "linear_curve", "geodesic_key", "sampling_key", "InputError", "input_error", "refine_by_shooting",
           "RefineResult", "refine_key", "REFINED_METHOD"]
