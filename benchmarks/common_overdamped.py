"""Rows shared by the overdamped 2-D runners (``benchmarks/muller_brown.py`` and ``benchmarks/aldp_2d.py``).

- :func:`density_curve`: the density-geodesic restraint curve (learned or exact score) at the
  anchor logSNR;
- :func:`baseline_rows`: the MD baselines (two-way shooting, unbiased MD) on a potential;
- :func:`evaluation_ratio_note`, :data:`EXTRA_KEYS`, :func:`write_tables`: the issue-5 table.

``system`` is anything with the attributes of a :mod:`tps.systems` record that these read
(``potential``, ``kT``, ``endpoints``, ``states``, ``reference["lower_bound"].value``);
``proto`` is a :class:`~benchmarks.common_protocols.MullerBrownProtocol` or
:class:`~benchmarks.common_protocols.PhiPsiProtocol` (the fields read are named in each function).

Examples
--------
>>> EXTRA_KEYS[:2]
('method', 'path_density_jsd')
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.common import markdown_table, timer, write_results
from tps.baselines import (FixedLengthEnsemble, FlexibleLengthEnsemble, initial_path_high_temperature,
                           resample_path, two_way_shooting, unbiased_md)
from tps.io import write_text
from tps.metrics import summarize
from tps.spacetime import density_geodesic, exact_boltzmann_score, learned_score


def density_curve(system, model, net, proto, *, exact: bool):
    """Density-geodesic restraint curve at constant logSNR ``proto.logsnr`` (model coordinates, noisy).

    ``exact``: the exact Boltzmann score, path in physical coordinates, mapped to ``alpha * z``.
    Otherwise the learned score of the noisy marginal at ``proto.logsnr``, path between
    ``alpha * z_A`` and ``alpha * z_B`` (restraint centres ``x / alpha`` are then ``z_A``, ``z_B``).
    """
    lam = torch.full((proto.n_points,), proto.logsnr, dtype=torch.float64)
    alpha = float(torch.sigmoid(torch.tensor(proto.logsnr, dtype=torch.float64)).sqrt())
    kw = dict(beta=proto.density_beta, n_knots=proto.n_points, n_iter=proto.density_iter, n_coarse=32)
    if exact:
        r = density_geodesic(exact_boltzmann_score(system.potential, system.kT), system.endpoints["A"],
                             system.endpoints["B"], **kw)
        return model.to_model(r.x) * alpha, lam, r
    z_a = model.to_model(system.endpoints["A"]).double()
    z_b = model.to_model(system.endpoints["B"]).double()
    r = density_geodesic(learned_score(net, proto.logsnr), alpha * z_a, alpha * z_b, **kw)
    return r.x, lam, r


def baseline_rows(system, proto, seed: int, methods, *, executor=None):
    """Rows of the MD baselines (benchmarks.md section 5): ``[(method, row, paths), ...]``."""
    pot, kT, dt = system.potential, system.kT, proto.md_dt
    a, b = system.states["A"], system.states["B"]
    out = []
    init, t_init = None, 0.0
    if any(m.startswith("two-way-shooting") for m in methods):
        with timer() as t:
            init = initial_path_high_temperature(pot, system.endpoints["A"], state_a=a, state_b=b,
                                                 kT_high=proto.kT_high, dt=dt, n_chains=proto.initial_chains,
                                                 max_steps=proto.initial_max_steps,
                                                 n_candidates=proto.initial_candidates, seed=seed + 2)
        t_init = t()
    for method in methods:
        if method.startswith("two-way-shooting"):
            variable = method == "two-way-shooting-variable"
            if variable:
                ens = FlexibleLengthEnsemble(a, b, max_frames=proto.shooting_max_frames)
                n_chains, n_rounds, start = proto.shooting_chains, proto.shooting_rounds, init
                save_every = proto.shooting_save_every
            else:
                n_fixed = max(proto.fixed_frames, init.n_frames)  # initial path padded with its end frames
                ens = FixedLengthEnsemble(a, b, n_frames=n_fixed)
                start = resample_path(init.frames[0], n_fixed, mode="pad")
                n_chains, n_rounds, save_every = proto.fixed_chains, proto.fixed_rounds, 1
            with timer() as t:
                res = two_way_shooting(pot, ens, start, kT=kT, dt=dt, n_chains=n_chains, n_rounds=n_rounds,
                                       burn_in=n_rounds // 4, save_every=save_every, seed=seed + 3,
                                       executor=executor)
            row = summarize(res.paths, method=method, target=b, n_training_energy_evals=0,
                            wall_s=t_init + t(), geodesic_wall_s=0.0)
            row["n_energy_evals"] = int(init.n_energy_evals + res.n_energy_evals)
            row.update({
                "initial_path_energy_evals": int(init.n_energy_evals),
                "initial_path_max_energy": float(init.energies.max()),
                "shooting_energy_evals": int(res.n_energy_evals),
                "n_chains": n_chains, "n_rounds": res.info["n_rounds"], "n_trials": res.n_trials,
                "n_accepted": res.n_accepted, "acceptance_rate": res.acceptance_rate,
                "n_decorrelated_paths": res.n_decorrelated,
                "evals_per_accepted_path": res.evals_per_accepted_path,
                "evals_per_decorrelated_path": res.evals_per_decorrelated_path,
                "chains_decorrelated_from_initial": res.info["final_decorrelated_from_initial"],
                "mean_path_frames": float(res.paths.info["lengths"].double().mean()),
                "n_frames": None if variable else ens.n_frames,
            })
            out.append((method, row, res.paths))
        elif method == "unbiased-md":
            with timer() as t:
                md = unbiased_md(pot, system.endpoints["A"], state_a=a, state_b=b, kT=kT, dt=dt,
                                 n_chains=proto.md_chains, max_steps=proto.md_steps, seed=seed + 4,
                                 barrier_energy=system.reference["lower_bound"].value)
            extra = {"n_transitions": md.n_transitions, "evals_per_transition": md.evals_per_transition,
                     "evals_per_transition_lower_bound": md.evals_per_transition_lower_bound,
                     "evals_per_transition_extrapolated": md.evals_per_transition_extrapolated,
                     "mean_path_frames": md.info.get("mean_path_frames")}
            if md.paths is not None:
                row = summarize(md.paths, method=method, target=b, wall_s=t(), geodesic_wall_s=0.0)
                row["n_energy_evals"] = int(md.n_energy_evals)
            else:  # no transition in the budget: metrics undefined, the budget is a lower bound
                row = {"method": method, "n_paths": 0, "n_energy_evals": int(md.n_energy_evals),
                       "n_training_energy_evals": 0, "wall_s": t(), "geodesic_wall_s": 0.0}
            row.update(extra)
            out.append((method, row, md.paths))
    return out


def evaluation_ratio_note(results) -> str:
    """Evaluations per transition path: shooting (and unbiased MD) versus the spacetime geodesic."""
    rows = {r["method"]: r for r in results["methods"]}
    geo = rows.get("spacetime-geodesic")
    if geo is None or not geo.get("n_paths"):
        return "spacetime-geodesic row not run"
    per_path = geo["n_energy_evals"] / geo["n_paths"]
    with_training = (geo["n_energy_evals"] + geo["n_training_energy_evals"]) / geo["n_paths"]
    parts = [f"spacetime geodesic: {per_path:.0f} evaluations per path ({with_training:.0f} with its training "
             f"data amortised over {geo['n_paths']} paths)"]
    shoot = rows.get("two-way-shooting-variable")
    if shoot is not None:
        for key, label in (("evals_per_accepted_path", "accepted"), ("evals_per_decorrelated_path", "decorrelated")):
            v = shoot.get(key)
            if v:
                parts.append(f"variable-length shooting per {label} path: {v:.0f} = {v / per_path:.1f}x "
                             f"({v / with_training:.2f}x the amortised cost)")
        parts.append(f"plus a one-off initial path of {shoot['initial_path_energy_evals']} evaluations")
    md = rows.get("unbiased-md")
    if md is not None:
        v = md.get("evals_per_transition") or md.get("evals_per_transition_lower_bound")
        if v:
            bound = "" if md.get("evals_per_transition") else " (lower bound: no transition seen)"
            parts.append(f"unbiased MD per transition: {v:.0f}{bound} = {v / per_path:.0f}x")
    return "; ".join(parts)


EXTRA_KEYS = ("method", "path_density_jsd", "max_energy_all_steps_mean", "acceptance_rate", "n_decorrelated_paths",
              "evals_per_accepted_path", "evals_per_decorrelated_path", "n_transitions", "evals_per_transition")


def write_tables(out: Path, results: dict) -> None:
    """``results.json`` and ``table.md`` (benchmarks.common), then a second table of the issue-5 keys in table.md."""
    write_results(out, results)
    if any("path_density_jsd" in r or "acceptance_rate" in r or "n_transitions" in r for r in results["methods"]):
        text = (out / "table.md").read_text()
        write_text(out / "table.md", text + "\n" + markdown_table(results["methods"], keys=EXTRA_KEYS))
