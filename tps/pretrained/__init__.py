"""Pretrained diffusion models shipped with the package.

Each model was produced by the ``tps train`` command recorded beside it
(``data/<name>.json``: the exact command line, resolved arguments, seed, package version,
training energy evaluations, date and held-out metrics)::

    from tps.pretrained import available, load, recipe

    available()                       # ['alanine-dipeptide', 'alanine-dipeptide-phipsi', 'muller-brown']
    model = load("muller-brown")      # tps.diffusion.DiffusionModel, frozen, evaluation mode
    recipe("muller-brown")["command"] # 'tps train muller-brown --out ...'

Models
------
``muller-brown``
    :class:`~tps.diffusion.MLPDenoiser` on the Muller-Brown potential at kT = 12.5 (model
    coordinates via :class:`~tps.diffusion.AffineScaling`).
``alanine-dipeptide-phipsi``
    :class:`~tps.diffusion.PeriodicMLPDenoiser` on alanine dipeptide's (phi, psi) in radians,
    trained on Langevin samples of the package's own free-energy surface
    (``tps/systems/data/alanine_dipeptide/fes_phipsi.dat``, kJ/mol, 300 K).
``alanine-dipeptide``
    All-atom :class:`~tps.diffusion.egnn.EGNNDenoiser` (22 atoms, centroid-free frames, scalar
    scaling) trained on OpenMM MD frames from the C5 and C7ax minima
    (:func:`tps.workflows.cartesian.train_model`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

#: Shipped model names (files ``data/<name>.pt`` and ``data/<name>.json``).
MODELS = ("alanine-dipeptide", "alanine-dipeptide-phipsi", "muller-brown")

__all__ = ["available", "load", "recipe", "path", "MODELS"]


def available() -> list:
    """Names accepted by :func:`load` and :func:`recipe`, sorted.

    Examples
    --------
    >>> available()
    ['alanine-dipeptide', 'alanine-dipeptide-phipsi', 'muller-brown']
    >>> model = load("muller-brown")
    >>> type(model.network).__name__, recipe("muller-brown")["command"]
    ('MLPDenoiser', 'tps train muller-brown --out tps/pretrained/data/muller-brown.pt')
    """
    return sorted(MODELS)


def _check(name) -> str:
    if name not in MODELS:
        raise ValueError(f"name: unknown pretrained model {name!r}; available: {', '.join(available())}")
    return name


def _data_file(name: str, suffix: str) -> Path:
    ref = resources.files(__name__).joinpath("data", f"{name}{suffix}")
    p = Path(str(ref))
    if not p.is_file():
        raise FileNotFoundError(f"pretrained model {name!r}: {p} is missing from this installation; "
                                f"reinstall the package (or recreate it with the command in recipe({name!r}))")
    return p


def path(name: str) -> Path:
    """Path of the shipped checkpoint of ``name`` (``data/<name>.pt``)."""
    return _data_file(_check(name), ".pt")


def load(name: str, *, device="cpu"):
    """Load a shipped model.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    device : str
        ``"cpu"`` (default), ``"cuda"`` or ``"auto"`` (CUDA if available).

    Returns
    -------
    tps.diffusion.DiffusionModel
        Frozen (evaluation mode, no parameter gradients); ``metadata`` holds the training record.

    Raises
    ------
    ValueError
        ``name`` is not a shipped model (the message lists the valid names).
    """
    from tps.diffusion.checkpoint import DiffusionModel

    _check(name)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return DiffusionModel.load(path(name), device=device).freeze()


def recipe(name: str) -> dict:
    """The recorded recipe of a shipped model (``data/<name>.json``, written by ``tps train``).

    Keys include ``command`` (the exact command line), ``argv``, ``arguments`` (every resolved
    setting), ``seed``, ``package_version``, ``n_training_energy_evals``, ``date``,
    ``network``, ``config``, ``scaling`` and ``metrics`` (held-out loss per logSNR band,
    training wall time).
    """
    return json.loads(_data_file(_check(name), ".json").read_text())
