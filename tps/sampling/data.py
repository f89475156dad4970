"""Training data: Boltzmann samples of a potential from many overdamped Langevin chains."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tps._validation import check_positive, check_positive_int
from tps.sampling.langevin import overdamped_langevin


@dataclass
class BoltzmannSamples:
    """Samples with their cost.

    Attributes
    ----------
    samples : Tensor, shape ``(n_samples, *event)`` (physical coordinates)
    energies : Tensor, shape ``(n_samples,)``
    n_energy_evals : int
        Evaluations spent, reported as ``n_training_energy_evals``.
    kT : float
    info : dict
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

    Returns
    -------
    BoltzmannSamples
        ``n_chains * n_steps`` evaluations; ``n_chains * ceil((n_steps - burn_in) / thin)`` samples.
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
