"""A solved spacetime curve with its provenance: :class:`Curve` (``curve.pt`` files).

A curve is the bridge between the geodesic stage and the sampling stage of a run: points ``x``
in model coordinates, their logSNR, the model's coordinate scaling (so that restraint centres
and stiffnesses can be derived without the model) and where it came from. On disk it is the
``tps-curve/1`` dictionary that ``tps geodesic`` / ``tps run`` have always written (same keys,
same ``torch.save`` format), so files move freely between versions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Optional

import torch

__all__ = ["Curve", "CurveFileError", "FORMAT"]

#: The ``format`` tag of curve files.
FORMAT = "tps-curve/1"
#: Provenance entries stored under these top-level keys of the file (file key -> provenance key).
_RENAMED = {"curve_energy": "energy", "curve_energy_initial": "initial_energy"}
_ARRAYS = ("x", "logsnr", "centres")


class CurveFileError(ValueError):
    """A file that is not a readable ``tps-curve/1`` curve."""


def _plain(obj):
    """Plain Python values that ``torch.load(weights_only=True)`` reads back (tensors kept);
    non-finite floats stay floats (the historical curve-file convention)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _plain(obj.item())
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str(obj)  # plain str (e.g. torch.__version__ is a subclass)
    return obj


@dataclass(frozen=True, eq=False)
class Curve:
    """A curve in spacetime: points, logSNR, coordinate scaling and provenance.

    Attributes
    ----------
    x : Tensor, shape ``(N, *event)``, float64
        Noisy curve points in model coordinates.
    logsnr : Tensor, shape ``(N,)``, float64
        logSNR of each point (dimensionless).
    scaling : tps.diffusion.scaling.AffineScaling or None
        Model-to-physical coordinates of the model the curve was solved with (None: identity).
    provenance : dict
        JSON-ready facts: ``system``, ``method``, ``energy`` and ``initial_energy`` (discrete
        curve energy of the solved and initial curve, dimensionless), ``n_evaluations``,
        ``wall_s``, ``key`` (resumption key of the run that solved it), ``model`` (source,
        sha256, network), ``settings``, ``extra`` (system-specific numbers, e.g. the periodic image
        chosen), and any system payload (e.g. avoided structures, which may be tensors).

    Examples
    --------
    >>> import torch
    >>> from tps.diffusion.scaling import AffineScaling
    >>> lam = torch.tensor([4.0, 0.0, 4.0], dtype=torch.float64)
    >>> x = torch.tensor([[0.0, 0.0], [0.5, 0.2], [1.0, 0.0]], dtype=torch.float64)
    >>> c = Curve(x, lam, AffineScaling((1.0, 0.0), 2.0, (2,)), {"system": "muller-brown", "energy": 3.5})
    >>> c.n_points, c.event_shape, c.energy
    (3, (2,), 3.5)
    >>> c.centres()[1]                      # shift + scale * x / alpha, alpha^2 = sigmoid(0) = 1/2
    tensor([2.4142, 0.5657], dtype=torch.float64)
    >>> c.restraints(kT=2.0).stiffness      # kT exp(lam) / scale^2
    tensor([27.2991,  0.5000, 27.2991], dtype=torch.float64)
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     back = Curve.load(c.save(os.path.join(d, "curve.pt")))
    >>> torch.equal(back.x, c.x), back.scaling == c.scaling, back.provenance["energy"]
    (True, True, 3.5)
    """

    x: torch.Tensor
    logsnr: torch.Tensor
    scaling: Optional[Any] = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        x = torch.as_tensor(self.x)
        lam = torch.as_tensor(self.logsnr)
        if lam.dim() != 1 or x.dim() < 2 or x.shape[0] != lam.shape[0]:
            raise ValueError(f"Curve: expected x (N, *event) and logsnr (N,), got {tuple(x.shape)} and "
                             f"{tuple(lam.shape)}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "logsnr", lam)
        object.__setattr__(self, "provenance", dict(self.provenance))

    # ------------------------------------------------------------------ derived quantities
    @property
    def n_points(self) -> int:
        """Number of curve points ``N``."""
        return int(self.x.shape[0])

    @property
    def event_shape(self) -> tuple:
        """Shape of one point (``(2,)`` for a surface, ``(n_atoms, 3)`` for a molecule)."""
        return tuple(self.x.shape[1:])

    @property
    def system(self) -> Optional[str]:
        """Name of the system the curve was solved for (from the provenance)."""
        return self.provenance.get("system")

    @property
    def energy(self) -> float:
        """Discrete curve energy of the solved curve (NaN if not recorded)."""
        return float(self.provenance.get("energy", math.nan))

    @property
    def initial_energy(self) -> float:
        """Discrete curve energy of the initial curve (NaN if not recorded)."""
        return float(self.provenance.get("initial_energy", math.nan))

    @property
    def wall_s(self) -> float:
        """Seconds the solve took (NaN if not recorded)."""
        return float(self.provenance.get("wall_s", math.nan))

    @property
    def key(self) -> Optional[str]:
        """Resumption key of the stage that solved the curve (None if not recorded)."""
        return self.provenance.get("key")

    @property
    def extra(self) -> dict:
        """System-specific numbers recorded with the solve (image chosen, thresholds, ...)."""
        return dict(self.provenance.get("extra") or {})

    def restraints(self, kT: Optional[float] = None):
        """Harmonic restraints of the denoising distributions along the curve.

        Parameters
        ----------
        kT : float, optional
            Thermal energy; None gives the reduced stiffness ``exp(lam) / scale^2``.

        Returns
        -------
        tps.diffusion.schedule.RestraintSchedule
            ``centres (N, *event)`` in physical coordinates and ``stiffness (N,)``
            (energy/length^2, or 1/length^2 when ``kT`` is None); see
            :func:`tps.diffusion.schedule.restraint_schedule`.
        """
        from tps.diffusion.schedule import restraint_schedule

        return restraint_schedule(self.x, self.logsnr, self.scaling, kT=kT)

    def centres(self) -> torch.Tensor:
        """Restraint centres ``shift + scale * x / alpha`` in physical coordinates, ``(N, *event)``."""
        return self.restraints().centres

    def replace(self, **changes) -> "Curve":
        """A copy with fields replaced; ``provenance=`` entries are merged into the existing ones."""
        if "provenance" in changes:
            changes["provenance"] = {**self.provenance, **changes["provenance"]}
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ file format
    def to_dict(self) -> dict:
        """The ``tps-curve/1`` dictionary: ``format``, ``system``, ``x``, ``logsnr``, ``centres``,
        ``scaling`` (dict or None), ``curve_energy``, ``curve_energy_initial``, ``n_evaluations``,
        ``wall_s``, ``extra``, then the other provenance entries (``key``, ``model``, ...)."""
        p = dict(self.provenance)
        d = {"format": FORMAT, "system": p.pop("system", None), "x": self.x, "logsnr": self.logsnr,
             "centres": self.centres(), "scaling": None if self.scaling is None else self.scaling.as_dict(),
             "curve_energy": float(p.pop("energy", math.nan)),
             "curve_energy_initial": float(p.pop("initial_energy", math.nan)),
             "n_evaluations": int(p.pop("n_evaluations", 0)), "wall_s": float(p.pop("wall_s", math.nan)),
             "extra": p.pop("extra", {})}
        d.update(p)
        return _plain(d)

    @classmethod
    def from_dict(cls, d: dict) -> "Curve":
        """Rebuild a curve from :meth:`to_dict` output (or an old ``tps-curve/1`` file's dict).

        Raises
        ------
        CurveFileError
            If ``d`` is not a ``tps-curve/1`` dictionary.
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT or "x" not in d or "logsnr" not in d:
            raise CurveFileError("not a tps curve (format tps-curve/1)")
        from tps.diffusion.scaling import AffineScaling

        scaling = None if d.get("scaling") is None else AffineScaling.from_dict(d["scaling"])
        prov = {}
        for k, v in d.items():
            if k in ("format", "x", "logsnr", "centres", "scaling"):
                continue
            prov[_RENAMED.get(k, k)] = v
        return cls(torch.as_tensor(d["x"]), torch.as_tensor(d["logsnr"]), scaling, prov)

    def save(self, path) -> Path:
        """Write the curve (``torch.save`` of :meth:`to_dict`) atomically; returns ``Path(path)``."""
        from tps.io import save_torch

        return save_torch(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "Curve":
        """Read a curve file written by :meth:`save` or by any version of ``tps geodesic``/``tps run``.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        CurveFileError
            If it is not a readable curve file (the message says why).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CurveFileError(f"not a readable curve file ({type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())[:160]})") from None
        return cls.from_dict(d)

    # ------------------------------------------------------------------ dict-style reading
    def __getitem__(self, name: str):
        """Read a ``tps-curve/1`` key (``curve["centres"]``, ``curve["extra"]``, ...), as older code did."""
        if name == "x":
            return self.x
        if name == "logsnr":
            return self.logsnr
        d = self.to_dict()
        if name not in d:
            raise KeyError(name)
        return d[name]

    def get(self, name: str, default=None):
        """``curve[name]`` or ``default`` when the key is absent."""
        try:
            return self[name]
        except KeyError:
            return default
