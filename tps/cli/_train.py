"""``tps train``: the training recipes of the pretrained models."""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from pathlib import Path

from tps.cli._common import SYSTEMS, _device, _err, _jsonable, _now, _progress, _say, _threads, _version, _versions
from tps.systems import protocols_of
from tps.systems.protocols import TrainingProtocol


# ============================================================================ training
#: Training data and network settings of ``tps train`` (the systems' :class:`TrainingProtocol`).
TrainSettings = TrainingProtocol

#: Default training settings per system (``tps train`` options override them): ``system.protocols().training``.
TRAIN_DEFAULTS = {name: protocols_of(name).training for name in SYSTEMS}


def train(system: str, settings: TrainSettings, *, seed: int, device: str = "cpu", progress: bool = False,
          partial=None):
    """Train the model of ``system`` with ``settings`` (see :data:`TRAIN_DEFAULTS`) by ``system.train``.

    Returns ``(model, result, info)`` where ``info`` has ``n_training_energy_evals``,
    ``data_wall_s`` and ``training_wall_s``.
    """
    _threads()
    from tps.cli._stages import load_system

    return load_system(system).train(settings, seed=seed, device=device, progress=progress, checkpoint=partial)


def cmd_train(args) -> int:
    from tps.io import write_json

    out = Path(args.out)
    if out.suffix != ".pt":
        raise _err(f"--out {out}: expected a .pt file name", "e.g. --out model.pt (the recipe goes to model.json)")
    defaults = TRAIN_DEFAULTS[args.system]
    changes = {}
    for key in ("steps", "batch_size", "hidden", "layers", "data_steps", "chains", "lr"):
        v = getattr(args, key, None)
        if v is None:
            continue
        if getattr(defaults, key) is None:
            raise _err(f"--{key.replace('_', '-')} does not apply to {args.system}",
                       "leave it out (see 'tps train --help' for the options of each system)")
        changes[key] = v
    settings = dataclasses.replace(defaults, **changes)
    if settings.burn_in is not None:  # shorter chains: burn in at most a third of them
        settings = dataclasses.replace(settings, burn_in=min(settings.burn_in, settings.data_steps // 3))
    device = _device(args.device)
    partial = out.with_name(out.stem + ".partial.pt")
    _say(args, f"training {args.system}: {settings.as_dict()} (seed {args.seed}, device {device})")
    t0 = time.perf_counter()
    model, result, info = train(args.system, settings, seed=args.seed, device=device, progress=_progress(args),
                                partial=partial)
    wall = time.perf_counter() - t0
    if result.interrupted:  # never leave an under-trained model under the requested name
        kept = f" (the last checkpoint is in {partial})" if partial.exists() else ""
        _say(args, f"training interrupted after {result.n_steps_done} steps; {out} not written{kept}")
        raise KeyboardInterrupt
    argv = args._argv
    rec = {
        "name": out.stem,
        "system": args.system,
        "command": shlex.join(["tps"] + list(argv)),
        "argv": list(argv),
        "arguments": settings.as_dict(),
        "seed": args.seed,
        "device": device,
        "package_version": _version(),
        "n_training_energy_evals": info["n_training_energy_evals"],
        "training_steps": int(result.n_steps_done),
        "interrupted": bool(result.interrupted),
        "date": _now(),
        "network": type(model.network).__name__,
        "config": dataclasses.asdict(model.network.config),
        "scaling": model.scaling.as_dict(),
        "metrics": {"holdout_initial": dict(result.holdout_initial), "holdout_final": dict(result.holdout_final),
                    "final_train_loss": float(result.history[-1][1]) if result.history else None,
                    "data_wall_s": info["data_wall_s"], "training_wall_s": info["training_wall_s"],
                    "total_wall_s": wall},
        "versions": _versions(),
    }
    rec = _jsonable(rec)
    model.metadata["recipe"] = rec
    model.save(out)
    write_json(out.with_suffix(".json"), rec)
    for f in (out, out.with_suffix(".json")):
        os.chmod(f, 0o644)  # mkstemp creates 0600 files; checkpoints are meant to be shared
    if partial.exists():
        partial.unlink()
    _say(args, f"wrote {out} and {out.with_suffix('.json')} ({wall:.0f} s; held-out loss "
               f"{rec['metrics']['holdout_final']})")
    return 0
