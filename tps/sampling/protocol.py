"""How many paths a sampler draws and how each is integrated: :class:`SamplerProtocol`.

A system's default (``system.protocols().sampler``) is one of these; ``tps run --paths N`` and the
benchmarks' settings are ``protocol.replace(...)`` of it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Optional

__all__ = ["SamplerProtocol"]


@dataclass(frozen=True)
class SamplerProtocol:
    """Settings of annealed Langevin along a curve (and of the path-based baselines).

    Attributes
    ----------
    n_paths : int
        Paths to draw.
    steps_per_point : int
        Integrator steps per curve point (overdamped Langevin steps in 2-D, OpenMM MD steps for
        molecules).
    frames_per_point : int
        Frames recorded per curve point; divides ``steps_per_point``.
    step_size : float, optional
        Overdamped Langevin step of the 2-D systems (reduced, length^2; see
        :func:`tps.sampling.annealed_langevin`); None for OpenMM systems.
    timestep : float, optional
        OpenMM Langevin integrator time step (ps); None for the 2-D systems.
    friction : float, optional
        OpenMM Langevin friction (1/ps); None for the 2-D systems.
    save_paths : int, optional
        Paths written to disk (None: all); metrics always use every path.
    centre_noise : float, optional
        Annealed Langevin with each path's own restraint centres, moved perpendicular to the curve
        by this many restraint widths times one normal draw per path (re-noising the curve point;
        :func:`tps.diffusion.schedule.renoised_centres`). None (default): every path follows the
        curve's centres, as before.
    logsnr_shift : float, optional
        Restraint stiffness ``kT exp(lam - logsnr_shift) / scale^2`` instead of the derived
        ``kT exp(lam) / scale^2``. None (default): the derived one.

    Examples
    --------
    >>> p = SamplerProtocol(n_paths=1000, steps_per_point=15, frames_per_point=1, step_size=4e-4, save_paths=100)
    >>> p.replace(n_paths=50).n_paths, p.as_dict()
    (50, {'n_paths': 1000, 'steps_per_point': 15, 'frames_per_point': 1, 'step_size': 0.0004, 'save_paths': 100})
    >>> p.replace(steps_per_point=14).frames_per_point     # frames must divide the steps: kept 1
    1
    >>> SamplerProtocol(n_paths=3, steps_per_point=12, frames_per_point=12).replace(steps_per_point=10).frames_per_point
    10
    >>> p.annealing_options(), p.replace(centre_noise=2.0).annealing_options()   # only the options set
    ({}, {'centre_noise': 2.0})
    """

    n_paths: int
    steps_per_point: int
    frames_per_point: int = 1
    step_size: Optional[float] = None
    timestep: Optional[float] = None
    friction: Optional[float] = None
    save_paths: Optional[int] = None
    centre_noise: Optional[float] = None
    logsnr_shift: Optional[float] = None

    def __post_init__(self):
        for name in ("n_paths", "steps_per_point", "frames_per_point"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        v = self.save_paths
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
            raise ValueError(f"save_paths: expected a positive integer or None, got {v!r}")
        for name in ("centre_noise", "logsnr_shift"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v)
                                  or (name == "centre_noise" and v < 0)):
                raise ValueError(f"{name}: expected a {'non-negative ' if name == 'centre_noise' else ''}finite number "
                                 f"or None, got {v!r}")
        if self.steps_per_point % self.frames_per_point:
            raise ValueError(f"frames_per_point: {self.frames_per_point} does not divide steps_per_point "
                             f"{self.steps_per_point}; pick a divisor")

    def replace(self, **changes) -> "SamplerProtocol":
        """A copy with ``changes``; when the steps change, ``frames_per_point`` drops to the largest
        divisor of the new ``steps_per_point`` not above its old value (unless given too)."""
        if "steps_per_point" in changes and "frames_per_point" not in changes:
            steps, frames = int(changes["steps_per_point"]), self.frames_per_point
            if steps >= 1 and steps % frames:
                changes["frames_per_point"] = max(f for f in range(1, frames + 1) if steps % f == 0)
        return dataclasses.replace(self, **changes)

    def annealing_options(self) -> dict:
        """Keyword arguments of :func:`tps.sampling.annealed_langevin` beyond the integration settings:
        ``centre_noise`` and ``logsnr_shift`` where set (empty by default, so a sampler passing
        ``**protocol.annealing_options()`` keeps its stream)."""
        return {k: getattr(self, k) for k in ("centre_noise", "logsnr_shift") if getattr(self, k) is not None}

    def as_dict(self) -> dict:
        """The fields that apply (None ones left out), JSON-ready."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
