"""Model coordinates of a molecule: centroid-free frames divided by one scalar scale.

Every frame loses its centroid (unweighted mean over atoms, the frame the
:class:`~tps.diffusion.egnn.EGNNDenoiser` works in) and is divided by one scalar ``scale``
(:class:`~tps.diffusion.AffineScaling` fitted with ``center=False``): a shift by a mean structure
would break rotation equivariance, a scalar keeps restraints isotropic. Units: nm in, model
units (dimensionless) out.
"""

from __future__ import annotations

import numpy as np
import torch

from tps.diffusion.scaling import AffineScaling

__all__ = ["CENTRING", "center_positions", "fit_scaling", "model_coordinates"]

#: Metadata tag of models trained on centroid-free frames (checked when a model is reused).
CENTRING = "centroid"


def center_positions(positions):
    """Remove the centroid (unweighted mean over atoms) of every frame.

    Parameters
    ----------
    positions : Tensor or ndarray, shape ``(..., n_atoms, 3)``

    Returns
    -------
    Same type and shape, each frame with zero centroid; also usable as ``center_fn`` for
    centroid-free training noise.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[0.0, 0.0, 0.0], [0.2, 0.4, 0.0]]])     # (1 frame, 2 atoms, 3) nm
    >>> center_positions(x)
    tensor([[[-0.1000, -0.2000,  0.0000],
             [ 0.1000,  0.2000,  0.0000]]])
    """
    return positions - positions.mean(-2, keepdims=True) if isinstance(positions, np.ndarray) \
        else positions - positions.mean(dim=-2, keepdim=True)


def fit_scaling(frames) -> AffineScaling:
    """Scalar scaling of centroid-free frames: ``z = x / scale`` with ``scale`` the RMS coordinate.

    Parameters
    ----------
    frames : array, shape ``(n_frames, n_atoms, 3)``, nm (centred here)

    Returns
    -------
    AffineScaling
        Zero shift and ``scale`` in nm per model unit, so centred frames have unit RMS
        coordinate in model units.

    Examples
    --------
    Two frames of two atoms, the second the first moved by 1 nm; centred, every coordinate
    is +-0.1 nm:

    >>> import numpy as np
    >>> frames = np.array([[[0.0, 0.0, 0.0], [0.2, 0.2, 0.2]],
    ...                    [[1.0, 1.0, 1.0], [1.2, 1.2, 1.2]]])          # (2 frames, 2 atoms, 3) nm
    >>> scaling = fit_scaling(frames)
    >>> scaling.scale, set(scaling.shift)                               # nm per model unit
    (0.1, {0.0})
    """
    x = center_positions(torch.as_tensor(np.asarray(frames), dtype=torch.float64))
    return AffineScaling.fit(x, center=False)


def model_coordinates(frames, scaling: AffineScaling) -> torch.Tensor:
    """Centred frames in model units, float32 ``(n_frames, n_atoms, 3)``.

    Parameters
    ----------
    frames : array, shape ``(n_frames, n_atoms, 3)``, nm
    scaling : AffineScaling
        From :func:`fit_scaling`.

    Returns
    -------
    Tensor, shape ``(n_frames, n_atoms, 3)``, float32, model units.

    Examples
    --------
    The frames of :func:`fit_scaling`'s example: both become the same centred frame, in units
    of 0.1 nm:

    >>> import numpy as np
    >>> frames = np.array([[[0.0, 0.0, 0.0], [0.2, 0.2, 0.2]],
    ...                    [[1.0, 1.0, 1.0], [1.2, 1.2, 1.2]]])          # (2 frames, 2 atoms, 3) nm
    >>> z = model_coordinates(frames, fit_scaling(frames))
    >>> z[1], z.dtype
    (tensor([[-1., -1., -1.],
            [ 1.,  1.,  1.]]), torch.float32)
    """
    x = center_positions(torch.as_tensor(np.asarray(frames), dtype=torch.float64))
    return scaling.to_model(x).float()
