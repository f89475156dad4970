"""An initial A -> B path for transition path sampling, from unbiased MD at a higher temperature."""

from __future__ import annotations

from typing import Optional

from tps._validation import check_positive
from tps.baselines.unbiased_md import unbiased_md
from tps.core import Paths


def initial_path_high_temperature(potential, x_start, *, state_a, state_b, kT_high: float, dt: float,
                                  n_chains: int = 16, max_steps: int = 100_000, n_candidates: int = 8,
                                  seed: Optional[int] = None, time_limit_s: Optional[float] = None) -> Paths:
    """Find one A -> B transition path with unbiased overdamped Langevin at ``kT_high``.

    Runs :func:`tps.baselines.unbiased_md` at the elevated temperature until ``n_candidates``
    transitions (last frame in A to first frame in B) are seen, and returns the one with the lowest
    maximum energy (the most typical at a lower temperature). It lies in both the fixed-
    (after :func:`tps.baselines.resample_path`) and the flexible-length ensemble. Shooting at the
    target temperature then decorrelates from it; discard a burn-in.

    Parameters
    ----------
    potential : Potential
    x_start : Tensor, shape ``(*event)`` or ``(n_chains, *event)``
        Start configurations in ``state_a``.
    state_a, state_b : Volume
    kT_high : float
        Elevated thermal energy, in the potential's unit.
    dt : float
    n_chains, max_steps : int
        Chains run in parallel and the step budget of each.
    n_candidates : int
        Transitions to collect before choosing.
    seed : int, optional
    time_limit_s : float, optional

    Returns
    -------
    Paths
        One path, frames ``(1, n_frames, *event)``; ``n_energy_evals`` is the cost of the search
        and ``info["kT_high"]`` the temperature it ran at.

    Raises
    ------
    ValueError
        If no chain reached B within the budget (naming ``max_steps``).
    """
    kT_high = check_positive(kT_high, "kT_high")
    res = unbiased_md(potential, x_start, state_a=state_a, state_b=state_b, kT=kT_high, dt=dt, n_chains=n_chains,
                      max_steps=max_steps, seed=seed, max_transitions=n_candidates, time_limit_s=time_limit_s)
    if res.paths is None:
        raise ValueError(f"max_steps: no A -> B transition stored in {res.n_energy_evals} evaluations at "
                         f"kT_high={kT_high}; raise kT_high or the budget")
    lengths = res.paths.info["lengths"]
    i = int(res.paths.energies.max(dim=1).values.argmin())  # padding repeats the last frame
    n = int(lengths[i])
    return Paths(res.paths.frames[i:i + 1, :n].clone(), res.paths.energies[i:i + 1, :n].clone(),
                 res.n_energy_evals, kT_high, {"sampler": "unbiased-md", "kT_high": kT_high, "dt": dt,
                                               "lengths": lengths[i:i + 1].clone(),
                                               "n_transitions_seen": res.n_transitions})
