"""Training data: Boltzmann samples of a potential from many overdamped Langevin chains."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tps._validation import check_positive, check_positive_int
from tps.sampling.langevin import overdamped_langevin


@dataclass
class BoltzmannSamples:
    """Boltzmann samples with their cost, as returned by :func:`langevin_samples`.

    Attributes
    ----------
    samples : Tensor, shape ``(n_samples, *event)`` (physical coordinates)
    energies : Tensor, shape ``(n_samples,)``
        In the potential's energy unit.
    n_energy_evals : int
        Evaluations spent, reported as ``n_training_energy_evals``.
    kT : float
        Thermal energy in the potential's unit.
    info : dict
        Sampler settings (``n_chains``, ``dt``, ``n_steps``, ``burn_in``, ``thin``, ``seed``).

    Examples
    --------
    >>> import torch
    >>> from tps.potentials import Harmonic
    >>> data = langevin_samples(Harmonic((2,)), torch.zeros(4, 2, dtype=torch.float64), kT=1.0, dt=0.01,
    ...                         n_steps=50, burn_in=10, thin=5)
    >>> data.samples.shape, data.n_energy_evals, data.info["n_chains"]   # 4 chains * 8 kept
    (torch.Size([32, 2]), 200, 4)
    """

    samples: torch.Tensor
    energies: torch.Tensor
    n_energy_evals: int
    kT: float
    info: dict


def langevin_samples(potential, starts, *, kT: float, dt: float, n_steps: int, burn_in: int, thin: int = 10,
                     seed: int = 0, progress: bool = False) -> BoltzmannSamples:
    """Boltzmann samples ``exp(-U/kT)`` from overdamped Langevin chains started at ``starts``.

    Parameters
    ----------
    potential : Potential
    starts : Tensor, shape ``(n_chains, *event)``
        Starting points, e.g. uniform over a box covering the relevant basins.
    kT, dt : float
        Temperature (potential's unit) and time step (unit mobility).
    n_steps, burn_in, thin : int
        Steps per chain, discarded initial steps, and spacing between kept samples.
    seed : int
        Seed of the noise generator (runs are reproducible).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    BoltzmannSamples
        ``n_chains * n_steps`` evaluations; ``n_chains * ceil((n_steps - burn_in) / thin)`` samples.

    Raises
    ------
    ValueError
        If ``kT`` or ``n_steps`` is not positive or ``burn_in`` is not in ``[0, n_steps)``.

    Examples
    --------
    Twenty short Muller-Brown chains started in minimum A stay in its basin at ``kT = 12.5``:

    >>> import torch
    >>> from tps.potentials import MullerBrown
    >>> A = torch.tensor([-0.5582, 1.4417], dtype=torch.float64)
    >>> data = langevin_samples(MullerBrown(), A.expand(20, 2), kT=12.5, dt=1e-4, n_steps=200, burn_in=100)
    >>> data.samples.shape, data.n_energy_evals          # 20 chains * 10 kept, 20 * 200 evals
    (torch.Size([200, 2]), 4000)
    >>> bool(data.energies.mean() < -120)                # U(A) = -146.7
    True
    """
    kT = check_positive(kT, "kT")
    check_positive_int(n_steps, "n_steps")
    if not 0 <= burn_in < n_steps:
        raise ValueError(f"burn_in: expected 0 <= burn_in < n_steps={n_steps}, got {burn_in}")
    g = torch.Generator().manual_seed(seed)
    x, e, n = overdamped_langevin(potential, starts, kT=kT, dt=dt, n_steps=n_steps, save_every=thin,
                                  burn_in=burn_in, generator=g, progress=progress)
    event = tuple(potential.event_shape)
    return BoltzmannSamples(x.reshape((-1,) + event), e.reshape(-1), n, kT,
                            {"n_chains": int(starts.shape[0]), "dt": dt, "n_steps": n_steps, "burn_in": burn_in,
                             "thin": thin, "seed": seed})
