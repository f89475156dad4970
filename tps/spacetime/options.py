"""Settings of the spacetime geodesic solver as one frozen object (:class:`GeodesicOptions`).

:func:`tps.spacetime.geodesic` takes ``options=GeodesicOptions(...)`` and keyword overrides; a
system's default protocol (``system.protocols().geodesic``) is one of these, and command-line
flags or benchmark settings are ``options.replace(...)`` of it, so every number has one home.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["GeodesicOptions"]


@dataclass(frozen=True)
class GeodesicOptions:
    """Every keyword of :func:`tps.spacetime.geodesic`, with the same defaults.

    The fields are documented on :func:`~tps.spacetime.geodesic`; the ones a protocol usually
    sets are ``logsnr`` (anchor logSNR of the endpoints, model coordinates), ``n_points``,
    ``init_dips``, ``coarse_points``, ``coarse_iter``, ``max_iter``, ``clamp`` and ``seed``.
    ``constraints`` holds penalty objects and ``init_nodes`` a tensor ``(P, n_nodes, d + 1)``:
    both are run-time inputs rather than protocol numbers and are left out of :meth:`key`.

    Examples
    --------
    >>> opts = GeodesicOptions(logsnr=6.0, n_points=128, init_dips=(6.0, 2.0, -2.0))
    >>> opts.replace(max_iter=20).max_iter, opts.max_iter
    (20, 300)
    >>> opts.as_dict()["init_dips"], opts.key()["n_points"]
    ((6.0, 2.0, -2.0), 128)
    >>> GeodesicOptions().replace(n_pionts=3)
    Traceback (most recent call last):
    ...
    TypeError: GeodesicOptions: unknown option 'n_pionts'; valid options: batched, clamp, coarse_iter, coarse_points, constraints, divergence, dtype, init_dips, init_nodes, logsnr, logsnr_range, lr, max_iter, method, n_nodes, n_points, n_probes, n_steps, progress, seed, strict, tolerance
    """

    logsnr: Any = 4.0
    n_points: int = 128
    n_nodes: int = 10
    constraints: tuple = ()
    method: str = "lbfgs"
    max_iter: int = 300
    n_steps: int = 10_000
    lr: Optional[float] = None
    divergence: str = "exact"
    n_probes: int = 1
    clamp: Any = None
    logsnr_range: Optional[tuple] = None
    tolerance: float = 1e-9
    batched: Optional[bool] = None
    seed: int = 0
    dtype: Any = None
    coarse_points: Optional[int] = None
    coarse_iter: Optional[int] = None
    init_nodes: Any = None
    init_dips: Any = "auto"
    strict: bool = False
    progress: bool = False

    @classmethod
    def names(cls) -> tuple:
        """The option names (the keywords of :func:`~tps.spacetime.geodesic`).

        Examples
        --------
        >>> "max_iter" in GeodesicOptions.names()
        True
        """
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, options: Optional["GeodesicOptions"] = None, **overrides) -> "GeodesicOptions":
        """``options`` (default :class:`GeodesicOptions`) with ``overrides`` applied.

        Raises
        ------
        TypeError
            If an override is not an option name, or ``options`` is not a GeodesicOptions.

        Examples
        --------
        >>> GeodesicOptions.from_kwargs(None, n_points=9).n_points
        9
        """
        if options is None:
            options = cls()
        elif not isinstance(options, GeodesicOptions):
            raise TypeError(f"options: expected a GeodesicOptions, got {type(options).__name__}")
        return options.replace(**overrides) if overrides else options

    def replace(self, **changes) -> "GeodesicOptions":
        """A copy with ``changes`` applied (unknown names raise :class:`TypeError`)."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise TypeError(f"GeodesicOptions: unknown option {unknown[0]!r}; valid options: "
                            f"{', '.join(sorted(self.names()))}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """The options as keyword arguments of :func:`~tps.spacetime.geodesic` (values as stored)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def key(self) -> dict:
        """The numbers that decide the solved curve, JSON-ready (for resumption keys and provenance).

        Leaves out ``constraints`` and ``init_nodes`` (objects; the pipeline keys the constraint
        by its protocol), ``progress`` (display only) and ``dtype`` (given by the model).
        """
        out = {}
        for name, value in self.as_dict().items():
            if name in ("constraints", "init_nodes", "progress", "dtype"):
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out
