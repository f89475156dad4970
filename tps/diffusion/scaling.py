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
    """``z = (x - shift) / scale``: physical coordinates (nm, radians, or dimensionless) to model ones.

    Attributes
    ----------
    shift : tuple of float
        Flattened shift of one configuration (length ``prod(event_shape)``), physical units.
    scale : float
        Physical length per model unit.
    event_shape : tuple of int
        Shape of one configuration.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
    >>> s = AffineScaling.fit(x)                   # shift = mean, scale = RMS spread
    >>> s.shift, s.scale
    ((1.0, 2.0), 1.0)
    >>> s.to_model(x)
    tensor([[-1., -1.],
            [ 1.,  1.]], dtype=torch.float64)
    >>> torch.equal(s.to_physical(s.to_model(x)), x), AffineScaling.from_dict(s.as_dict()) == s
    (True, True)
    """

    shift: Tuple[float, ...]
    scale: float
    event_shape: Tuple[int, ...]

    @classmethod
    def identity(cls, event_shape) -> "AffineScaling":
        """The identity map (zero shift, unit scale) for configurations of ``event_shape``."""
        n = 1
        for s in event_shape:
            n *= int(s)
        return cls(tuple([0.0] * n), 1.0, tuple(int(s) for s in event_shape))

    @classmethod
    def fit(cls, data, *, center: bool = True) -> "AffineScaling":
        """Fit to data ``(n, *event)``: shift = mean configuration (if ``center``), scale = overall RMS spread.

        Parameters
        ----------
        data : Tensor or array-like, shape ``(n, *event)``, physical units
            At least two configurations.
        center : bool, optional
            Subtract the mean configuration (default True); otherwise the shift is zero.

        Returns
        -------
        AffineScaling
            Model coordinates of ``data`` have zero mean (if ``center``) and unit RMS.

        Raises
        ------
        ValueError
            If there are fewer than two configurations or all are identical.
        """
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
        """Model coordinates ``(x - shift) / scale`` of physical ``x`` ``(..., *event)``."""
        x = torch.as_tensor(x)
        return (x - self._shift(x)) / self.scale

    def to_physical(self, z) -> torch.Tensor:
        """Physical coordinates ``z * scale + shift`` of model ``z`` ``(..., *event)``."""
        z = torch.as_tensor(z)
        return z * self.scale + self._shift(z)

    def as_dict(self) -> dict:
        """JSON-compatible dict (``shift``, ``scale``, ``event_shape``), inverse of :meth:`from_dict`."""
        return {"shift": list(self.shift), "scale": self.scale, "event_shape": list(self.event_shape)}

    @classmethod
    def from_dict(cls, d) -> "AffineScaling":
        """Rebuild from the output of :meth:`as_dict`."""
        return cls(tuple(float(v) for v in d["shift"]), float(d["scale"]), tuple(int(v) for v in d["event_shape"]))
