"""The MD baselines of an all-atom molecule (:meth:`MoleculeSystem.run_baseline`): two-way shooting
(flexible or fixed length) and unbiased MD with the OpenMM engine.

Numbers come from ``protocols.extras["baselines"]`` (a dict, the all-atom benchmark's protocol
fields of the same names): ``initial_temperature`` (K), and optionally ``initial_budget`` (MD
steps, default 5 000 000) and ``initial_time_s`` (s, default 120), of the unbiased-MD transition
that starts shooting, ``relax_trials`` (flexible trials at the system's
temperature without the length factor that relax it; discarded), ``shooting_trials``,
``shooting_max_frames``, ``shooting_time_s`` (flexible length), ``fixed`` (bool),
``fixed_frames``, ``fixed_trials``, ``fixed_time_s`` (fixed length), ``md_budget`` (MD steps) and
``md_time_s`` (unbiased MD). Optional ``state_a`` / ``state_b``: names of the system's states
whose union is A / B (default: the start / target state). Dynamics: the system's temperature,
the sampler protocol's ``timestep`` (ps) and ``friction`` (1/ps), a frame every
``steps_per_point // frames_per_point`` steps. Seeds: the initial transition ``seed + 5``, its
relaxation ``seed + 6``, flexible shooting ``seed + 7``, fixed ``seed + 8``, unbiased MD ``seed``.
A ``*_time_s`` cap is wall time: a capped run reports what it ran, and is not reproducible.

Examples
--------
>>> BASELINE_KEYS["unbiased-md"][:3]
('n_transitions', 'md_steps', 'evals_per_transition')
"""

from __future__ import annotations

import time

import torch

__all__ = ["run_molecule_baseline", "initial_path", "subset_paths", "BASELINE_KEYS"]

#: Keys a baseline row adds to the system's metrics row (besides ``n_energy_evals``).
BASELINE_KEYS = {
    "two-way-shooting": ("initial_path_energy_evals", "n_trials", "n_accepted", "acceptance_rate",
                         "n_decorrelated", "shooting_md_steps", "evals_per_accepted_path",
                         "evals_per_decorrelated_path", "mean_trial_frames", "trial_outcomes",
                         "sampler_steps_per_s", "initial_path", "burn_in_trials", "chain_decorrelated_from_initial",
                         "n_frames"),
    "unbiased-md": ("n_transitions", "md_steps", "evals_per_transition", "evals_per_transition_lower_bound",
                    "evals_per_transition_lower_bound_95", "md_stopped_by_time_limit", "sampler_steps_per_s"),
}


def _param(params: dict, name: str):
    if name not in params:
        raise ValueError(f"protocols.extras['baselines']: missing {name!r} (see tps.systems.molecule_baselines)")
    return params[name]


def subset_paths(paths, keep):
    """The paths selected by ``keep`` (bool or index tensor over paths), per-path info tensors sliced.

    Examples
    --------
    >>> from tps.core import Paths
    >>> p = Paths(torch.zeros(3, 2, 1), torch.zeros(3, 2), 6, 1.0, {"round": torch.tensor([0, 1, 2])})
    >>> subset_paths(p, torch.tensor([False, True, True])).info["round"].tolist()
    [1, 2]
    """
    keep = torch.as_tensor(keep)
    n = paths.n_paths
    info = {k: (v[keep] if isinstance(v, torch.Tensor) and v.shape[:1] == (n,) else v) for k, v in paths.info.items()}
    return type(paths)(paths.frames[keep], paths.energies[keep], paths.n_energy_evals, paths.kT, info)


def _states(system, params):
    def union(names):
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in system.states]
        if unknown or not names:
            raise ValueError(f"protocols.extras['baselines']: unknown state(s) {unknown or names!r}; "
                             f"{system.name} has {', '.join(system.states)}")
        v = system.states[names[0]]
        for n in names[1:]:
            v = v | system.states[n]
        return v

    return union(params.get("state_a", system.start)), union(params.get("state_b", system.target))


def _dynamics(system, protocols) -> dict:
    s = protocols.sampler
    return dict(temperature=system.temperature, timestep=s.timestep, friction=s.friction,
                save_every=s.steps_per_point // s.frames_per_point)


def initial_path(system, protocols, *, seed: int = 0):
    """The initial path of shooting: one unbiased-MD A -> B transition at ``initial_temperature``,
    relaxed by ``relax_trials`` flexible trials without the length factor.

    Returns
    -------
    dict or None
        ``frames`` (``(F, n_atoms, 3)`` nm), ``n_energy_evals`` (MD steps of both parts), ``wall_s``
        and a one-line ``note``; None when no transition was seen (``note`` then in ``skipped``).
    """
    from tps.baselines import openmm_two_way_shooting, openmm_unbiased_md

    params = dict(protocols.extras.get("baselines") or {})
    state_a, state_b = _states(system, params)
    md = _dynamics(system, protocols)
    omm = system.openmm_system()
    t0 = time.perf_counter()
    hot_t = float(_param(params, "initial_temperature"))
    hot = openmm_unbiased_md(omm, system.prepared_endpoints().start, state_a=state_a, state_b=state_b,
                             n_steps_budget=int(params.get("initial_budget", 5_000_000)), max_transitions=1,
                             seed=seed + 5, time_limit_s=float(params.get("initial_time_s", 120.0)),
                             **(md | {"temperature": hot_t}))
    if hot.paths is None:
        return {"frames": None, "n_energy_evals": int(hot.n_energy_evals), "wall_s": time.perf_counter() - t0,
                "skipped": f"skipped: no A -> B transition in {hot.n_energy_evals} MD steps at {hot_t} K"}
    first = hot.paths.frames[0, :int(hot.paths.info["lengths"][0])]
    relax = openmm_two_way_shooting(omm, first, state_a=state_a, state_b=state_b,
                                    n_trials=int(_param(params, "relax_trials")),
                                    max_frames=int(_param(params, "shooting_max_frames")), length_metropolis=False,
                                    seed=seed + 6, **md)
    relaxed = relax.paths.frames[-1, :int(relax.paths.info["lengths"][-1])]
    note = (f"{hot_t:g} K unbiased-MD transition ({first.shape[0]} frames, {hot.n_energy_evals} MD steps) relaxed "
            f"by {relax.n_trials} flexible trials at {system.temperature:g} K without the length factor "
            f"({relax.n_accepted} accepted, {relax.n_energy_evals} MD steps; discarded) -> {relaxed.shape[0]} frames")
    return {"frames": relaxed, "n_energy_evals": int(hot.n_energy_evals + relax.n_energy_evals),
            "wall_s": time.perf_counter() - t0, "note": note}


def _burned_in(res):
    """Chain states from the first decorrelated path on (all of them, flagged, if it never decorrelated)."""
    dec = res.info["decorrelation_trials"]
    if not dec:
        return res.paths, 0, False
    keep = torch.as_tensor(res.paths.info["round"]) >= dec[0]
    return subset_paths(res.paths, keep), int(dec[0]), True


def run_molecule_baseline(system, method: str, protocols, *, seed: int = 0, initial=None):
    """``(paths, row, extra)`` of ``method`` ("two-way-shooting" or "unbiased-md") on a molecule.

    ``initial``: the :func:`initial_path` dict of an earlier shooting run (same protocols and
    seed), reused; ``extra["initial_path"]`` of a shooting run holds it. Shooting keeps its chain
    states from the first decorrelated path on; with no initial transition the row has
    ``n_paths = 0`` and a ``note``. The row is the system's metrics row (:meth:`summarize`) plus
    :data:`BASELINE_KEYS`; ``n_energy_evals`` counts every MD step (rejected trials and the
    initial path included).

    Raises
    ------
    ValueError
        For another method, or when a needed number is missing from ``extras["baselines"]``.
    """
    from tps.baselines import openmm_two_way_shooting, openmm_unbiased_md, resample_path

    params = dict(protocols.extras.get("baselines") or {})
    state_a, state_b = _states(system, params)
    md = _dynamics(system, protocols)
    if method == "unbiased-md":
        t0 = time.perf_counter()
        res = openmm_unbiased_md(system.openmm_system(), system.prepared_endpoints().start, state_a=state_a,
                                 state_b=state_b, n_steps_budget=int(_param(params, "md_budget")),
                                 time_limit_s=float(_param(params, "md_time_s")), seed=seed, **md)
        wall = time.perf_counter() - t0
        if res.paths is not None:
            row = system.summarize(res.paths, method=method, wall_s=wall)
        else:
            row = {"method": method, "n_paths": 0, "n_energy_evals": res.n_energy_evals, "wall_s": wall}
        row.update(n_transitions=res.n_transitions, md_steps=res.n_energy_evals,
                   evals_per_transition=res.evals_per_transition,
                   evals_per_transition_lower_bound=res.evals_per_transition_lower_bound,
                   evals_per_transition_lower_bound_95=res.info["lower_bound_95"],
                   md_stopped_by_time_limit=res.info["stopped_by_time_limit"],
                   sampler_steps_per_s=res.info["steps_per_s"])
        return res.paths, row, {}
    if method != "two-way-shooting":
        raise ValueError(f"method: expected 'two-way-shooting' or 'unbiased-md', got {method!r}")
    fixed = bool(params.get("fixed", False))
    label = "two-way-shooting-fixed" if fixed else "two-way-shooting-variable"
    init = initial_path(system, protocols, seed=seed) if initial is None else initial
    if init["frames"] is None:
        return None, {"method": label, "n_paths": 0, "n_energy_evals": init["n_energy_evals"],
                      "wall_s": init["wall_s"], "note": init["skipped"]}, {"initial_path": init}
    relaxed = init["frames"]
    if fixed:
        start = resample_path(relaxed, max(int(_param(params, "fixed_frames")), relaxed.shape[0]), mode="pad")
        kw = dict(ensemble="fixed", n_trials=int(_param(params, "fixed_trials")),
                  time_limit_s=float(_param(params, "fixed_time_s")))
    else:
        start = relaxed
        kw = dict(n_trials=int(_param(params, "shooting_trials")),
                  time_limit_s=float(_param(params, "shooting_time_s")))
    t0 = time.perf_counter()
    res = openmm_two_way_shooting(system.openmm_system(), start, state_a=state_a, state_b=state_b,
                                  max_frames=int(_param(params, "shooting_max_frames")),
                                  seed=seed + (8 if fixed else 7), **md, **kw)
    kept, burn, decorrelated = _burned_in(res)
    row = system.summarize(kept, method=label, wall_s=init["wall_s"] + time.perf_counter() - t0)
    row.update(n_energy_evals=int(init["n_energy_evals"] + res.n_energy_evals),
               initial_path_energy_evals=int(init["n_energy_evals"]), n_trials=res.n_trials,
               n_accepted=res.n_accepted, acceptance_rate=res.acceptance_rate, n_decorrelated=res.n_decorrelated,
               shooting_md_steps=res.n_energy_evals, evals_per_accepted_path=res.evals_per_accepted_path,
               evals_per_decorrelated_path=res.evals_per_decorrelated_path,
               mean_trial_frames=res.info["mean_trial_frames"], trial_outcomes=res.info["outcomes"],
               sampler_steps_per_s=res.info["steps_per_s"], initial_path=init["note"], burn_in_trials=burn,
               chain_decorrelated_from_initial=decorrelated, n_frames=int(start.shape[0]) if fixed else None)
    return kept, row, {"initial_path": init}
