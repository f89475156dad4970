"""A trained diffusion model (network + configuration + coordinate scaling) and its checkpoints."""

from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path

import torch

from tps.diffusion.scaling import AffineScaling
from tps.diffusion.schedule import LOGSNR_MAX, LOGSNR_MIN
from tps.io import save_torch

CHECKPOINT_FORMAT = "tps-denoiser/1"

#: logSNR range assumed for checkpoints that do not record one (all written before the field
#: existed, including the shipped pretrained models): the range of the default
#: :class:`~tps.diffusion.training.AdaptiveLogSNRSampler`, which every training recipe used.
FALLBACK_LOGSNR_RANGE = (LOGSNR_MIN, LOGSNR_MAX)

# Network classes a checkpoint may name (module path : class); lazily imported.
NETWORKS = {
    "MLPDenoiser": "tps.diffusion.mlp:MLPDenoiser",
    "EGNNDenoiser": "tps.diffusion.egnn:EGNNDenoiser",
    "PeriodicMLPDenoiser": "tps.diffusion.periodic:PeriodicMLPDenoiser",
}


def _network_class(name):
    if name not in NETWORKS:
        raise ValueError(f"checkpoint: unknown network class {name!r}; known: {sorted(NETWORKS)}")
    module, cls = NETWORKS[name].split(":")
    return getattr(importlib.import_module(module), cls)


class DiffusionModel:
    """A denoiser network with the scaling between physical and model coordinates.

    The network is an x0-predictor in model coordinates: ``model.denoiser(z, logsnr)``.
    Everything in :mod:`tps.spacetime` works in model coordinates; :meth:`to_model` and
    :meth:`to_physical` convert, and samplers use ``scaling.scale`` to turn the restraint
    stiffness into physical units.

    Parameters
    ----------
    network : torch.nn.Module
        With a ``config`` dataclass attribute and a ``from_config`` classmethod.
    scaling : AffineScaling
    metadata : dict, optional
        Free-form provenance (training data cost, system name, ...), saved with checkpoints.
    logsnr_range : (float, float), optional
        The logSNR interval the network was trained on, its valid domain. Default: the
        ``logsnr_range`` attribute that :func:`~tps.diffusion.train_denoiser` leaves on the
        network, else :data:`FALLBACK_LOGSNR_RANGE`. It is also set as the network's
        ``logsnr_range`` attribute, so that :func:`tps.spacetime.geodesic` finds it on
        ``model.denoiser``.

    Notes
    -----
    Calling the model is calling the network: ``model(z (B, *event), logsnr (B,)) -> (B, *event)``,
    in model coordinates.

    Examples
    --------
    A checkpoint round trip gives identical predictions:

    >>> import os, tempfile, torch
    >>> from tps.diffusion import AffineScaling, DiffusionModel, MLPConfig, MLPDenoiser
    >>> _ = torch.manual_seed(0)
    >>> net = MLPDenoiser(MLPConfig(dim=2, hidden=16, n_blocks=1))
    >>> model = DiffusionModel(net, AffineScaling((0.0, 0.5), 2.0, (2,)), metadata={"system": "toy"},
    ...                        logsnr_range=(-6.0, 8.0)).freeze()
    >>> model.to_model(torch.tensor([2.0, 2.5]))
    tensor([1., 1.])
    >>> path = model.save(os.path.join(tempfile.mkdtemp(), "model.pt"))
    >>> again = DiffusionModel.load(path)
    >>> z, lam = torch.randn(3, 2), torch.zeros(3)
    >>> torch.equal(again(z, lam), model(z, lam)), again.metadata
    (True, {'system': 'toy'})

    The domain travels with the model (and with its network, which the solvers are given):

    >>> again.logsnr_range, again.logsnr_range_source, again.denoiser.logsnr_range
    ((-6.0, 8.0), 'recorded', (-6.0, 8.0))
    >>> DiffusionModel(MLPDenoiser(MLPConfig(dim=2)), model.scaling).logsnr_range_source   # untrained
    'fallback'
    """

    def __init__(self, network, scaling: AffineScaling, *, metadata=None, logsnr_range=None):
        self.network = network
        self.scaling = scaling
        self.metadata = dict(metadata or {})
        if logsnr_range is not None:
            network.logsnr_range = check_logsnr_range(logsnr_range)
        elif getattr(network, "logsnr_range", None) is None:
            network.logsnr_range = FALLBACK_LOGSNR_RANGE  # this very object marks the fallback

    @property
    def logsnr_range(self) -> tuple:
        """``(lo, hi)``: the logSNR interval the network was trained on (its valid domain).

        Read from the network's ``logsnr_range`` attribute (set by training, by the constructor
        or by :meth:`load`), else :data:`FALLBACK_LOGSNR_RANGE`.
        """
        rng = getattr(self.network, "logsnr_range", None)
        return FALLBACK_LOGSNR_RANGE if rng is None else tuple(float(v) for v in rng)

    @property
    def logsnr_range_source(self) -> str:
        """``"recorded"`` (by training, the constructor or the checkpoint) or ``"fallback"`` (an old
        checkpoint without the field, or a network never trained by :func:`train_denoiser`);
        a fallback range is not written into new checkpoints."""
        rng = getattr(self.network, "logsnr_range", None)
        return "fallback" if rng is None or rng is FALLBACK_LOGSNR_RANGE else "recorded"

    @property
    def denoiser(self):
        """The network, an x0-predictor in model coordinates."""
        return self.network

    def __call__(self, z, logsnr):
        return self.network(z, logsnr)

    def to_model(self, x):
        """Model coordinates of physical ``x`` (see :meth:`AffineScaling.to_model`)."""
        return self.scaling.to_model(x)

    def to_physical(self, z):
        """Physical coordinates of model ``z`` (see :meth:`AffineScaling.to_physical`)."""
        return self.scaling.to_physical(z)

    def freeze(self) -> "DiffusionModel":
        """Evaluation mode with parameters excluded from autograd (for geodesic solving).

        Returns
        -------
        DiffusionModel
            ``self``, so that ``DiffusionModel(net, scaling).freeze()`` chains.
        """
        self.network.eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        return self

    def save(self, path) -> Path:
        """Write an atomic checkpoint: network class, configuration, weights, scaling, metadata.

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Path
            The written file (example in the class docstring).
        """
        payload = {
            "format": CHECKPOINT_FORMAT,
            "network": type(self.network).__name__,
            "config": dataclasses.asdict(self.network.config),
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "scaling": self.scaling.as_dict(),
            "metadata": self.metadata,
            "logsnr_range": None if self.logsnr_range_source == "fallback" else list(self.logsnr_range),
            "dtype": str(next(iter(self.network.state_dict().values())).dtype).replace("torch.", ""),
        }
        return save_torch(path, payload)

    @classmethod
    def load(cls, path, *, device="cpu") -> "DiffusionModel":
        """Load a checkpoint written by :meth:`save`; predictions are bit-identical.

        Parameters
        ----------
        path : str or Path
        device : str or torch.device, optional
            Where to put the network (default ``"cpu"``).

        Returns
        -------
        DiffusionModel
            With the network in evaluation mode and the saved dtype. A checkpoint without a
            recorded ``logsnr_range`` (written before the field existed, like the shipped
            pretrained models) gets :data:`FALLBACK_LOGSNR_RANGE` and
            ``logsnr_range_source == "fallback"``.

        Raises
        ------
        FileNotFoundError
            If ``path`` is not a file.
        ValueError
            If the file is not a ``tps-denoiser/1`` checkpoint or names an unknown network class.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"path: no checkpoint at {path}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"path: {path} is not a tps denoiser checkpoint (format {payload.get('format')!r})")
        net_cls = _network_class(payload["network"])
        network = net_cls.from_config(payload["config"], device=device)
        if "dtype" in payload:  # restore the saved precision before loading weights (bit-identical)
            network.to(getattr(torch, payload["dtype"]))
        network.load_state_dict(payload["state_dict"])
        network.to(device)
        network.eval()
        recorded = payload.get("logsnr_range")
        return cls(network, AffineScaling.from_dict(payload["scaling"]), metadata=payload["metadata"],
                   logsnr_range=recorded)


def check_logsnr_range(logsnr_range, name: str = "logsnr_range") -> tuple:
    """Validate a logSNR interval ``(lo, hi)`` with ``LOGSNR_MIN <= lo < hi <= LOGSNR_MAX``.

    Parameters
    ----------
    logsnr_range : pair of float
    name : str
        Argument name for the error message.

    Returns
    -------
    (float, float)

    Raises
    ------
    ValueError
        If it is not two finite numbers, is empty or reversed, or leaves the schedule range.

    Examples
    --------
    >>> check_logsnr_range([0, 8])
    (0.0, 8.0)
    >>> check_logsnr_range((8, 0))
    Traceback (most recent call last):
        ...
    ValueError: logsnr_range: expected (lo, hi) with lo < hi, got (8.0, 0.0); give the interval in increasing order
    """
    try:
        lo, hi = (float(v) for v in logsnr_range)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a pair of numbers (lo, hi), got {logsnr_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name}: expected finite numbers, got {(lo, hi)}")
    if not lo < hi:
        raise ValueError(f"{name}: expected (lo, hi) with lo < hi, got {(lo, hi)}; "
                         + ("give the interval in increasing order" if lo > hi else "an empty interval has no curve"))
    if lo < LOGSNR_MIN or hi > LOGSNR_MAX:
        raise ValueError(f"{name}: expected an interval inside the schedule range [{LOGSNR_MIN:g}, {LOGSNR_MAX:g}], "
                         f"got {(lo, hi)}")
    return lo, hi
