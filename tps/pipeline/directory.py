"""The output directory of a run: ``state.json`` (stage keys), ``curve.pt``, path files, ``results.json``.

A run has two stages, the geodesic and the paths, and optionally a third, the refined ensemble
(``tps run --refine shooting``: geodesic-seeded shooting, files under ``refined/``). Each finished stage is recorded in
``state.json`` under a key: the JSON text of everything that decides its output. The keys are
derived from the protocol dataclasses themselves (``dataclasses.asdict`` of the sampler and
constraint protocols, :meth:`GeodesicOptions.key <tps.spacetime.options.GeodesicOptions.key>`),
so a new protocol field changes the key without a hand-kept list. A rerun with the same key
reuses the stage's saved output; anything else recomputes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Callable, Optional

from tps.pipeline.jsonable import jsonable, stage_key
from tps.pipeline.refine import refine_key
from tps.pipeline.run import RunResult, run_method, solve_curve

__all__ = ["RunDirectory", "geodesic_key", "sampling_key", "refine_key"]


def _now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _version() -> str:
    import tps

    return tps.__version__


def geodesic_key(system_name: str, protocols, *, model_sha256: str, constraint: str = "none", avoid=None,
                 seed: int = 0) -> str:
    """Key of the geodesic stage: system, model file digest, the geodesic options with ``seed``,
    the constraint protocol and extras, the constraint and what it avoids, the package version.

    Examples
    --------
    >>> from tps.systems import load
    >>> p = load("muller-brown").protocols()
    >>> k = geodesic_key("muller-brown", p, model_sha256="abc")
    >>> k == geodesic_key("muller-brown", p.replace(sampler=p.sampler.replace(n_paths=5)), model_sha256="abc")
    True
    >>> k == geodesic_key("muller-brown", p.replace(geodesic=p.geodesic.replace(max_iter=5)), model_sha256="abc")
    False
    """
    return stage_key(system=system_name, model_sha256=model_sha256,
                     geodesic=protocols.geodesic.replace(seed=int(seed)).key(),
                     constraints=dataclasses.asdict(protocols.constraints), extras=dict(protocols.extras),
                     constraint=constraint, avoid=avoid, version=_version())


def sampling_key(gkey: str, sampler, *, seed: int = 0, parallel=None) -> str:
    """Key of the paths stage: the geodesic key, ``dataclasses.asdict`` of the sampler protocol,
    the seed, and the task split when sampling on an executor (None in-process)."""
    extra = {} if parallel is None else {"parallel": parallel}
    return stage_key(geodesic=gkey, sampler=dataclasses.asdict(sampler), seed=int(seed), **extra)


class RunDirectory:
    """The files of one ``tps run`` and the logic that resumes it.

    Parameters
    ----------
    path : str or Path
        The directory (created when the first stage finishes, so a refused input writes nothing).

    Examples
    --------
    >>> import tempfile
    >>> d = RunDirectory(tempfile.mkdtemp())
    >>> d.state(), d.curve_path.name, d.results_path.name
    ({}, 'curve.pt', 'results.json')
    """

    def __init__(self, path):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path}: exists and is not a directory")

    @property
    def state_path(self) -> Path:
        return self.path / "state.json"

    @property
    def curve_path(self) -> Path:
        return self.path / "curve.pt"

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    def state(self) -> dict:
        """The recorded stages (``{}`` when there is no readable ``state.json``)."""
        try:
            state = json.loads(self.state_path.read_text())
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        from tps.io import write_json

        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.state_path, jsonable(state))

    # ------------------------------------------------------------------ stages
    def saved_curve(self, gkey: str, state: Optional[dict] = None):
        """The saved curve if its stage key is ``gkey`` (else None)."""
        from tps.spacetime.curve import Curve

        state = self.state() if state is None else state
        if state.get("geodesic", {}).get("key") != gkey or not self.curve_path.is_file():
            return None
        try:
            curve = Curve.load(self.curve_path)
        except ValueError:
            return None
        return curve if curve.key == gkey else None

    def save_curve(self, curve, gkey: str):
        """Write ``curve.pt`` (with its key) and start a new ``state.json`` with the geodesic stage."""
        curve = curve.replace(provenance={"key": gkey})
        self.path.mkdir(parents=True, exist_ok=True)
        curve.save(self.curve_path)
        self._write_state({"geodesic": {"key": gkey, "file": self.curve_path.name, "wall_s": curve.wall_s,
                                        "date": _now()}})
        return curve

    def saved_paths(self, system, skey: str, state: Optional[dict] = None):
        """``(paths, row, timings)`` of the saved paths stage if its key is ``skey`` (else None)."""
        state = self.state() if state is None else state
        saved = state.get("sampling", {})
        if saved.get("key") != skey or not isinstance(saved.get("metrics"), dict) or \
                not system.paths_file(self.path).exists():
            return None
        try:
            paths = system.load_paths(self.path)
        except Exception:
            return None
        timings = {"sampling_s": float(saved.get("wall_s", float("nan"))),
                   "metrics_s": float(saved.get("metrics_s", float("nan")))}
        return paths, saved["metrics"], timings

    def save_paths(self, system, result: RunResult, skey: str, *, save_paths: Optional[int] = None):
        """Write the first ``save_paths`` paths (all if None) through the system and record the stage;
        returns the paths written."""
        paths = result.paths
        n_save = save_paths or paths.n_paths
        if n_save < paths.n_paths:
            paths = paths[:n_save]
        files = system.save_paths(paths, self.path)
        state = self.state()
        state["sampling"] = {"key": skey, "files": [str(Path(f).relative_to(self.path)) for f in files],
                             "wall_s": result.timings["sampling_s"], "metrics_s": result.timings["metrics_s"],
                             "metrics": result.row, "date": _now()}
        self._write_state(state)
        return paths

    def write_results(self, results: dict) -> Path:
        """Write ``results.json`` (JSON convention of :func:`tps.pipeline.jsonable.jsonable`)."""
        from tps.io import save_results

        from tps.pipeline.jsonable import NONFINITE

        return save_results(results, self.results_path, nonfinite=NONFINITE)

    # ------------------------------------------------------------------ the resumable run
    def run(self, system, model, protocols, *, model_sha256: str, constraint: str = "none", avoid=None,
            seed: int = 0, executor=None, parallel=None, force: bool = False, progress: bool = False,
            say: Callable = lambda *_: None, legacy_keys: Optional[tuple] = None):
        """Geodesic then paths, each reused when its saved output has the same key.

        ``legacy_keys`` ``(geodesic, paths)``: keys an earlier version wrote for the same run, also
        accepted (so that its run directories resume); new stages are recorded under the new keys.

        Returns
        -------
        result : RunResult
            ``paths`` are the saved ones (``save_paths`` of the sampler protocol), ``row`` uses every path.
        resumed : dict
            ``{"geodesic": bool, "sampling": bool}``.
        """
        state = {} if force else self.state()
        gkey = geodesic_key(system.name, protocols, model_sha256=model_sha256, constraint=constraint, avoid=avoid,
                            seed=seed)
        resumed = {"geodesic": False, "sampling": False}
        curve = self.saved_curve(gkey, state)
        old_g, old_s = legacy_keys or (None, None)
        if curve is None and old_g is not None:
            curve = self.saved_curve(old_g, state)
        g = protocols.geodesic
        if curve is None:
            say(f"[1/3] geodesic ({system.name}, {g.n_points} points, constraint {constraint})")
            curve = solve_curve(system, model, protocols, constraint=constraint, avoid=avoid, seed=seed,
                                progress=progress)
            curve = self.save_curve(curve, gkey)
            state = self.state()
        else:
            resumed["geodesic"] = True
            say(f"[1/3] geodesic: reusing {self.curve_path} (same settings and model)")
        timings = {"geodesic_s": curve.wall_s}
        s = protocols.sampler
        skey = sampling_key(gkey, s, seed=seed, parallel=parallel)
        saved = self.saved_paths(system, skey, state)
        if saved is None and old_s is not None and curve.key == old_g:
            saved = self.saved_paths(system, old_s, state)
        if saved is not None:
            paths, row, t = saved
            timings.update(t)
            resumed["sampling"] = True
            say(f"[2/3] paths: reusing {system.paths_file(self.path)} and their metrics (same settings)")
            return RunResult(paths, row, curve, timings), resumed
        say(f"[2/3] annealed Langevin: {s.n_paths} paths x {g.n_points} points x {s.steps_per_point} steps")
        tasks_dir = None if executor is None else self.path / "tasks" / "sampling"
        result = run_method(system, "spacetime-geodesic", model=model, protocols=protocols, constraint=constraint,
                            curve=curve, geodesic_wall_s=curve.wall_s, seed=seed, executor=executor,
                            checkpoint=tasks_dir, progress=progress)
        result.timings["geodesic_s"] = timings["geodesic_s"]
        result.paths = self.save_paths(system, result, skey, save_paths=s.save_paths)
        if tasks_dir is not None:  # the paths are saved: the per-task results are no longer needed
            shutil.rmtree(tasks_dir, ignore_errors=True)
            if tasks_dir.parent.is_dir() and not any(tasks_dir.parent.iterdir()):
                tasks_dir.parent.rmdir()
        return result, resumed

    # ------------------------------------------------------------------ the refine stage
    @property
    def refined_dir(self) -> Path:
        """``refined/``: the refined ensemble's path files (the system's format)."""
        return self.path / "refined"

    def saved_refined(self, system, rkey: str, state: Optional[dict] = None):
        """``(paths, row, diagnostics, timings)`` of the saved refine stage if its key is ``rkey`` (else None)."""
        state = self.state() if state is None else state
        saved = state.get("refine", {})
        if saved.get("key") != rkey or not isinstance(saved.get("metrics"), dict) or \
                not system.paths_file(self.refined_dir).exists():
            return None
        try:
            paths = system.load_paths(self.refined_dir)
        except Exception:
            return None
        timings = {"refine_s": float(saved.get("wall_s", float("nan"))),
                   "refine_metrics_s": float(saved.get("metrics_s", float("nan")))}
        return paths, saved["metrics"], saved.get("diagnostics", {}), timings

    def save_refined(self, system, result, rkey: str) -> list:
        """Write the refined paths into ``refined/`` through the system and record the stage; returns the files."""
        files = system.save_paths(result.paths, self.refined_dir)
        state = self.state()
        state["refine"] = {"key": rkey, "files": [str(Path(f).relative_to(self.path)) for f in files],
                           "wall_s": result.timings["refine_s"], "metrics_s": result.timings["refine_metrics_s"],
                           "metrics": result.row, "diagnostics": result.diagnostics, "date": _now()}
        self._write_state(state)
        return files

    def refine(self, system, geodesic: RunResult, protocol, *, seed: int = 0, executor=None, parallel=None,
               force: bool = False, n_training_energy_evals: int = 0, say: Callable = lambda *_: None):
        """The refine stage after :meth:`run`: geodesic-seeded shooting from ``geodesic.paths``
        (:func:`tps.pipeline.refine.refine_by_shooting`), reused when saved with the same key.

        The key chains the paths stage's key (``state.json``), ``protocol`` and ``seed``, so new
        geodesic paths or other refine settings recompute it. Nothing is written before the
        shooting has succeeded (a refused input leaves ``refined/`` and ``state.json`` as they were).

        Returns
        -------
        result : RefineResult
        resumed : bool
        """
        from tps.pipeline.refine import RefineResult, refine_by_shooting

        state = self.state()
        rkey = refine_key(state.get("sampling", {}).get("key", ""), protocol, seed=seed, parallel=parallel)
        saved = None if force else self.saved_refined(system, rkey, state)
        if saved is not None:
            paths, row, diagnostics, timings = saved
            say(f"[refine] reusing {system.paths_file(self.refined_dir)} and its metrics (same settings)")
            return RefineResult(paths, row, None, timings, diagnostics=diagnostics), True
        say(f"[refine] geodesic-seeded shooting: {protocol.n_chains} chains x {protocol.n_rounds} rounds "
            f"(burn-in {protocol.burn_in})")
        gwall = sum(float(geodesic.timings.get(k, 0.0) or 0.0) for k in ("geodesic_s", "sampling_s"))
        result = refine_by_shooting(system, geodesic.paths, protocol, seed=seed, executor=executor,
                                    n_training_energy_evals=n_training_energy_evals,
                                    geodesic_wall_s=gwall if math.isfinite(gwall) else 0.0,
                                    n_source_paths=geodesic.row.get("n_paths"))
        self.save_refined(system, result, rkey)
        return result, False
