"""The ``Paths`` container: an ensemble of transition-path frames with energies and cost."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from tps.core.atomic import save_npz


@dataclass
class Paths:
    """An ensemble of paths.

    Attributes
    ----------
    frames : Tensor, shape ``(n_paths, n_frames, *event)``
        Physical coordinates; periodic coordinates are left unwrapped (continuous).
    energies : Tensor, shape ``(n_paths, n_frames)``
        Potential energy of each frame in the potential's unit.
    n_energy_evals : int
        Energy(+force) evaluations spent generating these paths (one per configuration).
    kT : float
        Thermal energy of the sampler, in the potential's unit.
    info : dict
        Sampler settings and provenance; ``info["lengths"]`` (shape ``(n_paths,)``), when
        present, gives the valid frames of variable-length paths (the rest repeat the last one).

    Examples
    --------
    >>> import torch
    >>> frames = torch.linspace(-0.5, 0.5, 12, dtype=torch.float64).reshape(2, 3, 2)
    >>> energies = 0.5 * (frames**2).sum(-1)          # a harmonic well, shape (2, 3)
    >>> paths = Paths(frames, energies, n_energy_evals=6, kT=12.5)
    >>> len(paths), paths.n_frames, paths[1].frames.shape
    (2, 3, torch.Size([1, 3, 2]))
    """

    frames: torch.Tensor
    energies: torch.Tensor
    n_energy_evals: int
    kT: float
    info: dict = field(default_factory=dict)

    @property
    def n_paths(self) -> int:
        """Number of paths, ``frames.shape[0]``."""
        return self.frames.shape[0]

    @property
    def n_frames(self) -> int:
        """Frames per path (padded length), ``frames.shape[1]``."""
        return self.frames.shape[1]

    def __len__(self):
        return self.n_paths

    def __getitem__(self, idx) -> "Paths":
        """Select paths (the evaluation count is shared, not split)."""
        frames = self.frames[idx]
        energies = self.energies[idx]
        if frames.dim() == self.frames.dim() - 1:
            frames, energies = frames[None], energies[None]
        return Paths(frames, energies, self.n_energy_evals, self.kT, dict(self.info))

    def save(self, path, *, max_paths: int | None = None):
        """Atomic ``.npz`` with ``frames`` (float32), ``energies``, ``n_energy_evals``, ``kT``.

        Parameters
        ----------
        path : str or Path
            Destination file.
        max_paths : int, optional
            Save only the first ``max_paths`` paths (all if None).

        Returns
        -------
        Path
            The written file.
        """
        n = self.n_paths if max_paths is None else min(max_paths, self.n_paths)
        return save_npz(
            path,
            frames=self.frames[:n].detach().cpu().numpy().astype(np.float32),
            energies=self.energies[:n].detach().cpu().numpy(),
            n_energy_evals=np.int64(self.n_energy_evals),
            kT=np.float64(self.kT),
        )
