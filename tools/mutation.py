"""Mutation testing of the physics core: do the tests notice a planted one-line bug?

Each *mutant* is one small edit of the kind a developer makes (an operator swapped, an
off-by-one, a dropped term, an inverted factor, a non-atomic write) in ``tps/spacetime``,
``tps/sampling``, ``tps/baselines``, ``tps/metrics``, ``tps/potentials``, ``tps/states.py`` or
the code they rely on (``tps/io``, the denoiser's preconditioning). For each mutant the script

1. copies the repository's ``tps/``, ``tests/``, ``benchmarks/`` and ``conftest.py`` once into a
   temporary directory (the checkout itself is never modified, so it is safe to run while
   someone else works in it, and an interrupted run leaves nothing behind);
2. applies the edit there, runs the test files mapped to the mutant (``pytest -x``, fixed
   order, with a timeout), restores the file (in a ``finally``);
3. counts the mutant *killed* if the tests fail (or time out), *survived* if they pass.

The survival rate is the fraction of the catalogue the tests do not notice. Before any
mutant each set of mapped tests runs once unmutated; mutants whose tests already fail are
reported as *invalid* and left out of the rate.

Usage (from the repository root; minutes, not part of the default CI run)::

    python tools/mutation.py                 # whole catalogue (~15-30 min on 2 cores)
    python tools/mutation.py --list          # the catalogue, no test run
    python tools/mutation.py --only langevin-frame-early,atomic-in-place
    python tools/mutation.py --json out.json --timeout 600

Exit status: 0 when the survival rate is at most ``--max-survival`` (default 0.10), 1
otherwise, 2 when the catalogue no longer matches the code (an ``original`` line is missing or
ambiguous: update the catalogue with the code).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("tps", "tests", "benchmarks", "conftest.py", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace the unique text ``original`` in ``file`` by ``mutated``.

    ``tests`` are pytest node ids or files (relative to the repository root) that should notice.
    """

    id: str
    file: str
    original: str
    mutated: str
    tests: tuple
    what: str


def M(id, file, original, mutated, tests, what):  # noqa: N802 - a compact catalogue
    return Mutant(id, file, original, mutated, tuple(tests), what)


_LANGEVIN_T = ["tests/sampling/test_langevin.py"]
_OMM_ANNEALED_T = ["tests/sampling/test_openmm_annealed.py"]
_OMM_ENGINE_T = ["tests/baselines/test_openmm_engine.py"]
_SHOOTING_T = ["tests/baselines/test_shooting.py"]
_UNBIASED_T = ["tests/baselines/test_unbiased_md.py"]
_IO_T = ["tests/test_io.py"]

CATALOGUE = (
    # ---------------------------------------------------------------- the six the issue names
    M("langevin-frame-early", "tps/sampling/langevin.py",
      "if (j + 1) % save_at == 0:", "if j % save_at == 0:", _LANGEVIN_T,
      "annealed Langevin records a frame one step early"),
    M("openmm-annealed-frame-late", "tps/sampling/openmm_annealed.py",
      "integrator.step(chunk)", "integrator.step(chunk + 1)", _OMM_ANNEALED_T,
      "OpenMM annealed Langevin records a frame one step late"),
    M("max-energy-all-steps-last", "tps/sampling/langevin.py",
      "max_all_steps = torch.maximum(max_all_steps, e)", "max_all_steps = e", _LANGEVIN_T,
      "max_energy_all_steps replaced by the last step's energy"),
    M("openmm-shooting-length-factor-inverted", "tps/baselines/openmm_engine.py",
      "accept = u <= (L - 2) / (n_new - 2) or not length_metropolis",
      "accept = u <= (n_new - 2) / (L - 2) or not length_metropolis", _OMM_ENGINE_T,
      "flexible-length acceptance factor inverted in the OpenMM shooting engine"),
    M("openmm-shooting-cap-inverted", "tps/baselines/openmm_engine.py",
      "2 + math.floor((L - 2) / u)", "2 + math.floor((L - 2) * u)", _OMM_ENGINE_T,
      "the length cap that implements the acceptance factor inverted (OpenMM engine)"),
    M("atomic-in-place", "tps/io/atomic.py",
      "        Path(tmp).write_text(text)", "        Path(path).write_text(text)  # noqa", _IO_T,
      "write_text writes the destination in place (then the rename replaces it)"),
    M("atomic-no-tempfile", "tps/io/atomic.py",
      "    with atomic_path(path) as tmp:\n        Path(tmp).write_text(text)",
      "    with __import__('contextlib').nullcontext(path) as tmp:\n        Path(tmp).write_text(text)", _IO_T,
      "write_text without the temporary file (a non-atomic in-place write)"),
    M("unbiased-escape-rate-factor-2", "tps/baselines/unbiased_md.py",
      "rate = kappa / (2.0 * math.pi) *", "rate = kappa / math.pi *", _UNBIASED_T,
      "escape-rate extrapolation of unbiased MD off by a factor 2"),
    M("mlp-input-scaling-dropped", "tps/diffusion/mlp.py",
      "coordinate_embedding(x * c_in[:, None], self.config.n_frequencies)",
      "coordinate_embedding(x, self.config.n_frequencies)", ["tests/diffusion/test_training.py", "tests/diffusion/test_mlp.py"],
      "the MLP denoiser's input scaling c_in dropped"),
    # ---------------------------------------------------------------- samplers
    M("langevin-drift-sign", "tps/sampling/langevin.py",
      "x = x - 0.5 * h * grad + sq", "x = x + 0.5 * h * grad + sq", _LANGEVIN_T,
      "annealed Langevin climbs the tilted energy"),
    M("langevin-restraint-dropped", "tps/sampling/langevin.py",
      "grad = -f / kT + k * (x - c)", "grad = -f / kT", _LANGEVIN_T,
      "annealed Langevin without the restraint"),
    M("langevin-kT-inverted", "tps/sampling/langevin.py",
      "grad = -f / kT + k * (x - c)", "grad = -f * kT + k * (x - c)", _LANGEVIN_T,
      "reduced force multiplied instead of divided by kT"),
    M("restraint-stiffness-scale", "tps/sampling/langevin.py",
      "torch.exp(lam) / scaling.scale**2", "torch.exp(lam) / scaling.scale", _LANGEVIN_T,
      "restraint stiffness divided by scale instead of scale squared"),
    M("overdamped-noise-factor", "tps/sampling/langevin.py",
      "noise_scale = math.sqrt(2 * kT * dt)", "noise_scale = math.sqrt(kT * dt)", _LANGEVIN_T,
      "overdamped Langevin noise without the factor 2"),
    M("overdamped-burn-in-off-by-one", "tps/sampling/langevin.py",
      "if step >= burn_in and", "if step > burn_in and", _LANGEVIN_T,
      "first saved sample one step late"),
    M("omm-restraint-energy-included", "tps/sampling/openmm_annealed.py",
      "    groups = {g for g in range(32) if g != group}", "    groups = set(range(32))", _OMM_ANNEALED_T,
      "recorded OpenMM energies include the restraint"),
    # ---------------------------------------------------------------- baselines
    M("shooting-cap-off-by-one", "tps/baselines/shooting.py",
      "caps = torch.clamp(2 + torch.floor(", "caps = torch.clamp(1 + torch.floor(", _SHOOTING_T,
      "torch shooting: the length cap one frame short"),
    M("unbiased-first-passage-off-by-one", "tps/baselines/unbiased_md.py",
      "first_passage[c] = step", "first_passage[c] = step + 1", _UNBIASED_T,
      "unbiased MD: first-passage step one late"),
    M("unbiased-kappa-inverted", "tps/baselines/unbiased_md.py",
      "kappa = kT / var_max if var_max > 0 else None", "kappa = var_max / kT if var_max > 0 else None",
      _UNBIASED_T, "unbiased MD: soft-mode curvature inverted"),
    # ---------------------------------------------------------------- potentials
    M("muller-brown-force-cross-term", "tps/potentials/muller_brown.py",
      "gx = (t * (2 * a_ * dx + b_ * dy)).sum(-1)", "gx = (t * (2 * a_ * dx)).sum(-1)",
      ["tests/potentials/test_muller_brown.py"], "Muller-Brown analytic force drops the cross term"),
    M("harmonic-force-sign", "tps/potentials/harmonic.py",
      "return self._energy(x), -self.k * d", "return self._energy(x), self.k * d",
      ["tests/sampling/test_langevin.py", "tests/potentials"], "harmonic force has the wrong sign"),
    M("base-forces-sign", "tps/potentials/base.py",
      "return e.detach(), -g", "return e.detach(), g", ["tests/potentials"],
      "autograd forces are +grad U"),
    # ---------------------------------------------------------------- states
    M("ball-boundary-open", "tps/states.py",
      "return self.distance(x) <= self.radius", "return self.distance(x) < self.radius",
      ["tests/test_states.py"], "a state ball excludes its boundary"),
    M("periodic-difference-half-period", "tps/states.py",
      "torch.remainder(di + 0.5 * p, p) - 0.5 * p", "torch.remainder(di, p) - 0.5 * p",
      ["tests/test_states.py"], "periodic difference shifted by half a period"),
    # ---------------------------------------------------------------- metrics
    M("jsd-mixture", "tps/metrics/distribution.py",
      "m = 0.5 * (p + q)", "m = p + q", ["tests/metrics/test_distribution.py"],
      "Jensen-Shannon mixture not halved"),
    M("barrier-from-last-frame", "tps/metrics/paths.py",
      "return e.max(1).values - e[:, 0]", "return e.max(1).values - e[:, -1]",
      ["tests/metrics/test_paths_metrics.py"], "barrier measured from the last frame"),
    M("final-frame-padding", "tps/metrics/paths.py",
      "idx = torch.as_tensor(lengths) - 1", "idx = torch.as_tensor(lengths) - 2",
      ["tests/metrics/test_paths_metrics.py"], "final frame of a padded path off by one"),
    M("max-energy-padding", "tps/metrics/paths.py",
      "e = torch.where(idx < torch.as_tensor(lengths)[:, None], e,", "e = torch.where(idx <= torch.as_tensor(lengths)[:, None], e,",
      ["tests/metrics/test_paths_metrics.py"], "padded frames counted in the maximum energy"),
    # ---------------------------------------------------------------- spacetime
    M("curve-endpoint-swap", "tps/spacetime/curves.py",
      "return (1 - s) * start[:, None] + s * end[:, None] +", "return s * start[:, None] + (1 - s) * end[:, None] +",
      ["tests/spacetime/test_curves.py", "tests/spacetime/test_geodesic.py"], "spline curve runs from end to start"),
    M("spline-basis-end-free", "tps/spacetime/curves.py",
      "    basis[-1] = 0.0\n", "", ["tests/spacetime/test_curves.py", "tests/spacetime/test_geodesic.py"],
      "spline correction not set to exactly 0 at s = 1 (off by ~1e-17)"),
    M("boltzmann-score-kT", "tps/spacetime/density.py",
      "return (f / self.kT).to(x.dtype)", "return (f * self.kT).to(x.dtype)",
      ["tests/spacetime/test_density.py"], "Boltzmann score multiplied by kT"),
    M("low-variance-softplus-sign", "tps/spacetime/constraints.py",
      "return F.softplus(u, beta=sharpness)", "return F.softplus(-u, beta=sharpness)",
      ["tests/spacetime/test_constraints.py::test_low_variance_keeps_logsnr_above_threshold"],
      "constraint penalty on the wrong side"),
    M("region-avoidance-kl-sign", "tps/spacetime/constraints.py",
      "return self.weight * softplus_k(self.threshold - kl, self.sharpness).mean(1)",
      "return self.weight * softplus_k(kl - self.threshold, self.sharpness).mean(1)",
      ["tests/spacetime/test_constraints.py"], "region avoidance pushes the curve towards the point"),
)


def _copy_tree(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".hypothesis")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dst / name)


def check_catalogue(catalogue=CATALOGUE, root: Path = ROOT) -> list:
    """Problems with the catalogue: an ``original`` text missing or not unique, unknown tests."""
    problems, ids = [], set()
    for m in catalogue:
        if m.id in ids:
            problems.append(f"{m.id}: duplicate id")
        ids.add(m.id)
        text = (root / m.file).read_text()
        n = text.count(m.original)
        if n != 1:
            problems.append(f"{m.id}: {m.original!r} occurs {n} times in {m.file}")
        for t in m.tests:
            if not (root / t.split("::")[0]).exists():
                problems.append(f"{m.id}: no test file {t}")
    return problems


def _pytest(workdir: Path, tests, timeout: float) -> tuple:
    env = dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly",
           "--no-header", "-W", "ignore::DeprecationWarning", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    return ("passed" if proc.returncode == 0 else "failed"), time.perf_counter() - t0, tail[0]


def run(catalogue, *, timeout: float, log=print) -> list:
    """Run every mutant of ``catalogue``; return one dict per mutant (``status``: killed/survived)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="tps-mutation-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        baseline = {}
        for tests in sorted({m.tests for m in catalogue}):
            status, secs, tail = _pytest(work, list(tests), timeout)
            baseline[tests] = status
            log(f"unmutated {' '.join(tests)}: {status} in {secs:.0f} s ({tail})")
        for i, m in enumerate(catalogue, 1):
            if baseline[m.tests] != "passed":  # the tests fail anyway: the mutant tells nothing
                rows.append({**asdict(m), "status": "invalid", "pytest": baseline[m.tests], "seconds": 0.0,
                             "tail": "mapped tests fail without the mutant"})
                log(f"[{i:2d}/{len(catalogue)}] invalid  {m.id:42s} (mapped tests fail unmutated)")
                continue
            target = work / m.file
            original = target.read_text()
            try:
                target.write_text(original.replace(m.original, m.mutated, 1))
                status, secs, tail = _pytest(work, list(m.tests), timeout)
            finally:
                target.write_text(original)
            verdict = "survived" if status == "passed" else "killed"
            rows.append({**asdict(m), "status": verdict, "pytest": status, "seconds": round(secs, 1), "tail": tail})
            log(f"[{i:2d}/{len(catalogue)}] {verdict:8s} {m.id:42s} {secs:6.1f} s  {m.what}")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/mutation.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="comma-separated mutant ids")
    p.add_argument("--list", action="store_true", help="print the catalogue and exit")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant's test run (default 600)")
    p.add_argument("--json", type=Path, help="write the per-mutant results here")
    p.add_argument("--max-survival", type=float, default=0.10, help="exit 1 above this survival rate")
    args = p.parse_args(argv)
    problems = check_catalogue()
    if problems:
        print("catalogue out of date:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    catalogue = CATALOGUE
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {m.id for m in CATALOGUE}
        if unknown:
            print(f"--only: unknown ids {sorted(unknown)}", file=sys.stderr)
            return 2
        catalogue = tuple(m for m in CATALOGUE if m.id in wanted)
    if args.list:
        for m in catalogue:
            print(f"{m.id:42s} {m.file:34s} {m.what}")
        return 0
    rows = run(catalogue, timeout=args.timeout)
    survived = [r["id"] for r in rows if r["status"] == "survived"]
    invalid = [r["id"] for r in rows if r["status"] == "invalid"]
    n = len(rows) - len(invalid)
    rate = len(survived) / n if n else 1.0
    print(f"\n{n} mutants: {n - len(survived)} killed, {len(survived)} survived (survival rate {rate:.0%})"
          + (f": {', '.join(survived)}" if survived else ""))
    if invalid:
        print(f"{len(invalid)} not counted (their tests fail unmutated): {', '.join(invalid)}")
    if args.json:
        args.json.write_text(json.dumps({"survival_rate": rate, "mutants": rows}, indent=2) + "\n")
    return 0 if rate <= args.max_survival else 1


if __name__ == "__main__":
    sys.exit(main())
