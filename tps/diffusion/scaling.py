"""The saved coordinate transformation between physical and model coordinates.

Diffusion models are trained on ``z = (x - shift) / scale``. The scale is a single number so
that the isotropic restraint of the denoising distribution stays isotropic (and rotations
stay rotations) in physical coordinates: a restraint of stiffness ``kT * exp(lam)`` per model
coordinate has stiffness ``kT * exp(lam) / scale**2`` per physical coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch


@dataclass(frozen=True)
class AffineScaling:
    """``z = (x - shift) / scale``.

    Attributes
    ----------
    shift : tuple of float
        Flattened shift of one configuration (length ``prod(event_shape)``), physical units.
    scale : float
        Physical length per model unit.
    event_shape : tuple of int
    """

    shift: Tuple[float, ...]
    scale: float
    event_shape: Tuple[int, ...]

    @classmethod
    def identity(cls, event_shape) -> "AffineScaling":
        n = 1
        for s in event_shape:
            n *= int(s)
        return cls(tuple([0.0] * n), 1.0, tuple(int(s) for s in event_shape))

    @classmethod
    def fit(cls, data, *, center: bool = True) -> "AffineScaling":
        """Fit to data ``(n, *event)``: shift = mean configuration (if ``center``), scale = overall RMS spread."""
        data = torch.as_tensor(data, dtype=torch.float64)
        if data.dim() < 2 or data.shape[0] < 2:
            raise ValueError(f"data: expected at least two configurations of shape (n, *event), got {tuple(data.shape)}")
        event_shape = tuple(data.shape[1:])
        shift = data.mean(0) if center else torch.zeros(event_shape, dtype=torch.float64)
        scale = float((data - shift).pow(2).mean().sqrt())
        if not scale > 0:
            raise ValueError("data: all configurations are identical; cannot fit a scale")
        return cls(tuple(shift.flatten().tolist()), scale, event_shape)

    def _shift(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.shift, dtype=like.dtype, device=like.device).view(self.event_shape)

    def to_model(self, x) -> torch.Tensor:
        x = torch.as_tensor(x)
        return (x - self._shift(x)) / self.scale

    def to_physical(self, z) -> torch.Tensor:
        z = torch.as_tensor(z)
        return z * self.scale + self._shift(z)

    def as_dict(self) -> dict:
        return {"shift": list(self.shift), "scale": self.scale, "event_shape": list(self.event_shape)}

    @classmethod
    def from_dict(cls, d) -> "AffineScaling":
        return cls(tuple(float(v) for v in d["shift"]), float(d["scale"]), tuple(int(v) for v in d["event_shape"]))
