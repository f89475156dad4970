"""The EGNN denoiser of a molecule: build it from a topology, train it on MD frames, and check
that a model fits a molecule (atom count, atom types, centring, scalar scaling)."""

from __future__ import annotations

import time
from typing import Optional

import openmm
import torch

from tps.diffusion.checkpoint import DiffusionModel
from tps.diffusion.egnn import EGNNConfig, EGNNDenoiser, atom_types_from_topology, resolve_device
from tps.diffusion.training import TrainingConfig, train_denoiser
from tps.metrics.molecular import kabsch_align
from tps.sampling.md import MDData, as_mdtraj_topology, check_topology_match
from tps.workflows.coordinates import CENTRING, center_positions, fit_scaling, model_coordinates
from tps.workflows.endpoints import Endpoints

__all__ = ["build_denoiser", "train_model", "check_model_matches", "kabsch_align", "Endpoints"]


def build_denoiser(topology, *, sigma_data: float = 1.0, hidden: int = 32, n_layers: int = 3, device="cpu",
                   **config_kwargs) -> EGNNDenoiser:
    """An untrained :class:`EGNNDenoiser` whose atom types and bonds come from ``topology``.

    Parameters
    ----------
    topology : mdtraj.Topology or openmm.app.Topology (with bonds)
    sigma_data : float
        Per-coordinate spread of the model-unit data (1 after :func:`fit_scaling`).
    hidden, n_layers : int
    device : str
        ``"cpu"`` (default), ``"cuda"`` or ``"auto"`` (CUDA if present, else CPU with a warning).
    **config_kwargs
        Further :class:`EGNNConfig` fields (``cutoff``, ``chiral``, ...).

    Returns
    -------
    EGNNDenoiser
        Maps ``(B, n_atoms, 3)`` model coordinates and ``(B,)`` logSNR to ``(B, n_atoms, 3)``.

    Examples
    --------
    >>> import torch
    >>> torch.set_num_threads(1)          # tiny graphs: extra threads only add contention
    >>> from tps.systems import alanine_dipeptide
    >>> net = build_denoiser(alanine_dipeptide.topology(), hidden=8, n_layers=1)
    >>> net.config.n_atoms, net(torch.zeros(2, 22, 3), torch.zeros(2)).shape
    (22, torch.Size([2, 22, 3]))
    """
    config = EGNNConfig.from_topology(as_mdtraj_topology(topology), sigma_data=sigma_data, hidden=hidden,
                                      n_layers=n_layers, **config_kwargs)
    return EGNNDenoiser(config, device=device)


def train_model(data: MDData, topology, *, system: Optional[openmm.System] = None, hidden: int = 32,
                n_layers: int = 3, training: TrainingConfig = TrainingConfig(n_steps=2000, batch_size=64),
                device="cpu", checkpoint=None, progress: bool = False, metadata: Optional[dict] = None,
                **config_kwargs):
    """Fit the scaling and train an EGNN denoiser on MD frames.

    Parameters
    ----------
    data : MDData
        Training frames; checked against ``topology`` (and ``system``) before anything else.
    topology : mdtraj.Topology or openmm.app.Topology
    system : openmm.System, optional
        Checked for its particle count.
    hidden, n_layers : int
        EGNN size (default 32 x 3: about 0.2 s per step at batch 64 on one CPU thread).
    training : TrainingConfig
        Default 2000 steps at batch 64 (512 is too large for an EGNN on a CPU).
    device : str
    checkpoint : path, optional
        Atomic checkpoint written every ``training.eval_every`` steps and at the end.
    progress : bool
    metadata : dict, optional
        Extra provenance stored in the model.

    Returns
    -------
    model : DiffusionModel
        Frozen, in evaluation mode; ``metadata`` has ``n_atoms``, ``centring``,
        ``n_training_energy_evals``, the wall time of the training loop (``training_wall_s``)
        and of the two held-out evaluations around it (``holdout_wall_s``).
    result : TrainingResult
        ``holdout_final`` gives the held-out loss per logSNR band.

    Raises
    ------
    ValueError
        If the frames do not match ``topology`` (or ``system``), see
        :func:`tps.sampling.md.check_topology_match`.

    Examples
    --------
    A toy run (real models train for thousands of steps on nanoseconds of MD):

    >>> import torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps.diffusion import TrainingConfig
    >>> from tps.sampling.md import md_samples
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> system = alanine_dipeptide.create_openmm_system(top)
    >>> s = alanine_dipeptide.minimized_structures()
    >>> c5, c7ax = s["C5"], s["C7ax"]
    >>> data = md_samples(system, top, [c5, c7ax], n_steps=100, report_interval=10, platform="Reference")
    >>> model, result = train_model(data, top, hidden=8, n_layers=1,
    ...                             training=TrainingConfig(n_steps=3, batch_size=8, warmup_steps=1, holdout_per_band=32))
    >>> result.n_steps_done, model.metadata["n_training_energy_evals"], model.metadata["centring"]
    (3, 200, 'centroid')
    >>> round(model.scaling.scale, 3), set(model.scaling.shift)           # nm per model unit
    (0.165, {0.0})
    """
    check_topology_match(topology, data.topology, system=system, what="training frames")
    dev = resolve_device(device)
    scaling = fit_scaling(data.positions)
    z = model_coordinates(data.positions, scaling)
    torch.manual_seed(training.seed)  # initial weights too: the same call gives the same model
    net = build_denoiser(topology, sigma_data=float(z.pow(2).mean().sqrt()), hidden=hidden, n_layers=n_layers,
                         device=dev, **config_kwargs)
    meta = {"n_atoms": int(z.shape[1]), "centring": CENTRING, "n_training_energy_evals": int(data.n_energy_evals),
            "n_training_frames": int(z.shape[0])}
    meta.update(metadata or {})
    model = DiffusionModel(net, scaling, metadata=meta)
    save = None if checkpoint is None else (lambda step: model.save(checkpoint))
    torch.manual_seed(training.seed)
    t0 = time.perf_counter()
    result = train_denoiser(net, z.to(dev), config=training, progress=progress, center_fn=center_positions,
                            checkpoint_fn=save)
    model.metadata["training_wall_s"] = float(result.wall_s)
    # train_denoiser evaluates 5 x 4096 held-out samples before and after the loop (not in wall_s)
    model.metadata["holdout_wall_s"] = float(time.perf_counter() - t0 - result.wall_s)
    model.metadata["training_steps"] = int(result.n_steps_done)
    model.metadata["holdout_final"] = dict(result.holdout_final)
    if checkpoint is not None:
        model.save(checkpoint)
    return model.freeze(), result


def check_model_matches(model: DiffusionModel, topology) -> None:
    """Refuse a model trained on another molecule (``ValueError`` naming the mismatch).

    Checks the checkpoint's EGNN configuration against ``topology``: atom count, then the
    atom types (element and bonded environment, in order), and that the model was trained on
    centroid-free frames with a scalar scaling.

    Parameters
    ----------
    model : DiffusionModel
        With an :class:`EGNNDenoiser` network.
    topology : mdtraj.Topology or openmm.app.Topology

    Raises
    ------
    ValueError
        If the network is not an EGNN, or atom count, atom types, centring or scaling differ.

    Examples
    --------
    >>> import mdtraj
    >>> from tps.diffusion import AffineScaling, DiffusionModel
    >>> from tps.systems import alanine_dipeptide
    >>> top = alanine_dipeptide.topology()
    >>> model = DiffusionModel(build_denoiser(top, hidden=8, n_layers=1), AffineScaling((0.0,) * 66, 0.16, (22, 3)))
    >>> check_model_matches(model, top)                              # passes silently
    >>> check_model_matches(model, mdtraj.Topology.from_openmm(top).subset(range(21)))
    Traceback (most recent call last):
        ...
    ValueError: model: trained on a molecule with 22 atoms, but this system has 21; train a model for this molecule
    """
    top = as_mdtraj_topology(topology)
    config = getattr(model.network, "config", None)
    if not isinstance(config, EGNNConfig):
        raise ValueError(f"model: expected an EGNNDenoiser model, got {type(model.network).__name__}")
    if config.n_atoms != top.n_atoms:
        raise ValueError(f"model: trained on a molecule with {config.n_atoms} atoms, but this system has "
                         f"{top.n_atoms}; train a model for this molecule")
    types = atom_types_from_topology(top)
    if tuple(types) != tuple(config.atom_types):
        first = next(i for i, (a, b) in enumerate(zip(types, config.atom_types)) if a != b)
        atom = list(top.atoms)[first]
        raise ValueError(f"model: atom types differ from this system's (first at atom {first}, {atom}); "
                         "the model was trained on another molecule or another atom order")
    if model.metadata.get("centring", CENTRING) != CENTRING or any(v != 0.0 for v in model.scaling.shift):
        raise ValueError("model: expected a model trained on centroid-free frames with a scalar scaling "
                         "(see tps.workflows.cartesian.train_model)")
