"""The spacetime geometry of diffusion models: exponential-family parameters, curve energy and
length, constraints, and geodesic solvers. Works with any x0-predicting denoiser callable."""

from tps.spacetime.constraints import CurveState, LowVariance, RegionAvoidance
from tps.spacetime.curves import line_plus_spline, spline_basis
from tps.spacetime.geometry import (
    curve_energy,
    curve_length,
    expectation_parameters,
    kl_along_curve,
    natural_parameters,
    segment_products,
)
from tps.spacetime.domain import DegenerateGeodesicError, GeodesicDiagnostics, GeodesicWarning, LogSNRRangeWarning
from tps.spacetime.curve import Curve
from tps.spacetime.options import GeodesicOptions
from tps.spacetime.solver import GeodesicResult, edit_distance, geodesic
from tps.spacetime.density import (
    BoltzmannScore,
    DensityGeodesicResult,
    LearnedScore,
    density_geodesic,
    exact_boltzmann_score,
    learned_score,
)

__all__ = [
    "natural_parameters", "expectation_parameters", "curve_energy", "curve_length", "kl_along_curve",
    "segment_products", "geodesic", "edit_distance", "GeodesicResult", "GeodesicOptions", "Curve", "LowVariance", "RegionAvoidance",
    "CurveState", "spline_basis", "line_plus_spline",
    "density_geodesic", "DensityGeodesicResult", "exact_boltzmann_score", "learned_score", "BoltzmannScore",
    "LearnedScore", "GeodesicDiagnostics", "GeodesicWarning", "DegenerateGeodesicError", "LogSNRRangeWarning",
]
