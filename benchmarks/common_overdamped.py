"""What the overdamped 2-D runners (``benchmarks/muller_brown.py`` and ``benchmarks/aldp_2d.py``) share.

Every row of these runners is :func:`tps.pipeline.run_method`; this module turns a benchmark
protocol (:class:`~benchmarks.common_protocols.MullerBrownProtocol` or
:class:`~benchmarks.common_protocols.PhiPsiProtocol`) into the
:class:`~tps.systems.protocols.Protocols` override it takes:

- :func:`run_protocols`: geodesic, constraint and sampler numbers;
- :func:`with_density`: ``extras["density"]`` of the density-geodesic rows;
- :func:`with_baselines`: ``extras["baselines"]`` of the MD baselines (two-way shooting, unbiased MD);
- :func:`evaluation_ratio_note`, :data:`EXTRA_KEYS`, :func:`write_tables`: the issue-5 table.

Examples
--------
>>> EXTRA_KEYS[:2]
('method', 'path_density_jsd')
>>> from benchmarks.common_protocols import MULLER_BROWN_QUICK
>>> from tps.systems import protocols_of
>>> p = run_protocols(protocols_of("muller-brown", quick=True), MULLER_BROWN_QUICK, 10, clamp=False)
>>> p.sampler.n_paths, p.geodesic.clamp, with_density(p, MULLER_BROWN_QUICK, exact=True).extras["density"]
(10, False, {'beta': 3.0, 'n_iter': 60, 'n_coarse': 32, 'exact': True})
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import markdown_table, write_results
from tps.io import write_text

#: Benchmark protocol fields that are numbers of :func:`tps.pipeline.baselines.overdamped_baseline`.
BASELINE_FIELDS = ("md_dt", "md_chains", "md_steps", "kT_high", "initial_chains", "initial_max_steps",
                   "initial_candidates", "shooting_chains", "shooting_rounds", "shooting_max_frames",
                   "shooting_save_every", "shooting_time_s", "fixed_chains", "fixed_frames", "fixed_rounds",
                   "fixed_time_s")
#: Knots of the coarsest level of the density geodesics of these runners.
DENSITY_COARSE = 32


def run_protocols(protocols, proto, n_paths: int, *, clamp):
    """``protocols`` (the system's, full or quick) with the benchmark protocol's geodesic, constraint and
    sampler numbers, ``n_paths`` paths per row and the solver objective ``clamp``.

    The sampler is the paper's plain annealed Langevin: ``centre_noise`` is the benchmark protocol's
    (None unless it sets one), not the system's ``tps run`` default (aldp (phi, psi) re-noises its
    centres by default since issue 12; these rows keep the protocol they were published with)."""
    g = protocols.geodesic.replace(logsnr=proto.logsnr, n_points=proto.n_points, init_dips=tuple(proto.init_dips),
                                   coarse_points=proto.coarse_points, clamp=clamp)
    c = protocols.constraints.replace(low_variance_threshold=proto.low_variance_threshold,
                                      low_variance_weight=proto.low_variance_weight)
    s = protocols.sampler.replace(n_paths=int(n_paths), steps_per_point=proto.steps_per_point,
                                  step_size=proto.step_size, frames_per_point=getattr(proto, "frames_per_point", 1),
                                  centre_noise=getattr(proto, "centre_noise", None))
    return protocols.replace(geodesic=g, constraints=c, sampler=s)


def with_density(protocols, proto, *, exact: bool):
    """``protocols`` with ``extras["density"]``: ``proto.density_beta``, ``proto.density_iter``
    iterations per knot level, :data:`DENSITY_COARSE` coarse knots, the exact or the learned score."""
    density = {"beta": proto.density_beta, "n_iter": proto.density_iter, "n_coarse": DENSITY_COARSE,
               "exact": bool(exact)}
    return protocols.replace(extras={**protocols.extras, "density": density})


def with_baselines(protocols, proto, *, fixed: bool = False, **changes):
    """``protocols`` with ``extras["baselines"]``: the :data:`BASELINE_FIELDS` that ``proto`` has, ``fixed``
    (fixed-length shooting) and ``changes`` (e.g. ``md_dt`` in the potential's time unit)."""
    params = {k: getattr(proto, k) for k in BASELINE_FIELDS if hasattr(proto, k)}
    params.update(changes, fixed=bool(fixed))
    return protocols.replace(extras={**protocols.extras, "baselines": params})


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
