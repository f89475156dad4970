"""``tps train``: the training recipes of the pretrained models."""

from __future__ import annotations

import dataclasses
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tps.cli._common import (
    SYSTEMS, TWO_PI, _device, _err, _jsonable, _now, _phipsi_surface, _progress, _say, _threads, _version, _versions,
)


# ============================================================================ training
@dataclass(frozen=True)
class TrainSettings:
    """Training data and network settings of ``tps train`` (system-specific fields None elsewhere).

    ``data_steps`` is Langevin steps per chain (2-D; ``data_dt`` reduced time step, U/kT units) or
    OpenMM MD steps per start structure (all-atom, C5 and C7ax, a frame every ``report_interval``
    steps of 2 fs); ``layers`` is residual blocks (MLP) or message-passing layers (EGNN).
    """

    steps: int
    batch_size: int
    hidden: int
    layers: int
    data_steps: int
    lr: float = 2e-3
    chains: Optional[int] = None            # 2-D: Langevin chains from uniform starts
    data_dt: Optional[float] = None
    burn_in: Optional[int] = None
    thin: Optional[int] = None
    harmonics: Optional[int] = None         # (phi, psi): Fourier features of the periodic MLP
    report_interval: Optional[int] = None   # all-atom: MD steps between training frames
    holdout_per_band: Optional[int] = None  # all-atom: held-out samples per logSNR band (default 4096 is slow)

    def as_dict(self) -> dict:
        """The fields that apply (None ones left out): the ``arguments`` of the recipe."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


#: Default training settings per system (``tps train`` options override them).
TRAIN_DEFAULTS = {
    # benchmarks/muller_brown.py full protocol
    "muller-brown": TrainSettings(steps=4000, batch_size=512, hidden=128, layers=3, chains=1000, data_steps=10_000,
                                  data_dt=2e-4, burn_in=2000, thin=20),
    # benchmarks/aldp_2d.py full protocol on the package's own surface
    "alanine-dipeptide-phipsi": TrainSettings(steps=3000, batch_size=512, hidden=128, layers=3, harmonics=3,
                                              chains=2000, data_steps=3000, data_dt=1e-3, burn_in=1000, thin=20),
    # benchmarks/aldp_cartesian.py full protocol (MD steps per start: C5 and C7ax)
    "alanine-dipeptide": TrainSettings(steps=2400, batch_size=64, hidden=32, layers=3, data_steps=250_000,
                                       report_interval=50, holdout_per_band=1024),
}


def train(system: str, settings: TrainSettings, *, seed: int, device: str = "cpu", progress: bool = False,
          partial=None):
    """Train the model of ``system`` with ``settings`` (see :data:`TRAIN_DEFAULTS`).

    Returns ``(model, result, info)`` where ``info`` has ``n_training_energy_evals``,
    ``data_wall_s`` and ``training_wall_s``.
    """
    torch = _threads()
    from tps.diffusion import AffineScaling, DiffusionModel, TrainingConfig, train_denoiser

    s = settings
    cfg = TrainingConfig(n_steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=seed,
                         **({"warmup_steps": min(100, s.steps // 10), "eval_every": 200,
                             "holdout_per_band": s.holdout_per_band} if system == "alanine-dipeptide" else {}))
    t0 = time.perf_counter()
    if system == "muller-brown":
        from tps.diffusion import MLPConfig, MLPDenoiser
        from tps.sampling import langevin_samples
        from tps.systems import load
        from tps.systems.muller_brown import BOX

        sysm = load("muller-brown")
        g = torch.Generator().manual_seed(seed)
        lo = torch.tensor([BOX[0][0], BOX[1][0]], dtype=torch.float64)
        hi = torch.tensor([BOX[0][1], BOX[1][1]], dtype=torch.float64)
        starts = lo + (hi - lo) * torch.rand(s.chains, 2, generator=g, dtype=torch.float64)
        data = langevin_samples(sysm.potential, starts, kT=sysm.kT, dt=s.data_dt, n_steps=s.data_steps,
                                burn_in=s.burn_in, thin=s.thin, seed=seed)
        t_data = time.perf_counter() - t0
        scaling = AffineScaling.fit(data.samples)
        torch.manual_seed(seed)
        net = MLPDenoiser(MLPConfig(dim=2, hidden=s.hidden, n_blocks=s.layers))
        model = DiffusionModel(net, scaling, metadata={"system": "muller-brown", "kT": sysm.kT,
                                                       "n_training_energy_evals": int(data.n_energy_evals)})
        t1 = time.perf_counter()
        result = train_denoiser(net, scaling.to_model(data.samples).float(), config=cfg, progress=progress)
        n_evals = int(data.n_energy_evals)
    elif system == "alanine-dipeptide-phipsi":
        from tps.diffusion import PeriodicMLPConfig, PeriodicMLPDenoiser
        from tps.sampling import langevin_samples

        grid, pot, kT, _, _ = _phipsi_surface()
        g = torch.Generator().manual_seed(seed)
        starts = (torch.rand(s.chains, 2, generator=g, dtype=torch.float64) - 0.5) * TWO_PI
        data = langevin_samples(pot, starts, kT=kT, dt=s.data_dt / kT, n_steps=s.data_steps,
                                burn_in=s.burn_in, thin=s.thin, seed=seed)
        t_data = time.perf_counter() - t0
        scaling = AffineScaling.identity((2,))
        torch.manual_seed(seed)
        net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, period=TWO_PI, hidden=s.hidden, n_blocks=s.layers,
                                                    n_harmonics=s.harmonics))
        model = DiffusionModel(net, scaling, metadata={"system": "alanine-dipeptide-phipsi", "kT": kT,
                                                       "energy_unit": "kJ/mol",
                                                       "n_training_energy_evals": int(data.n_energy_evals)})
        t1 = time.perf_counter()
        result = train_denoiser(net, pot.wrap(data.samples).float(), config=cfg, progress=progress)
        n_evals = int(data.n_energy_evals)
    elif system == "alanine-dipeptide":
        from tps.sampling.md import md_samples
        from tps.systems import alanine_dipeptide as aldp
        from tps.workflows.cartesian import train_model

        top = aldp.topology()
        omm = aldp.create_openmm_system(top)
        minima = aldp.minimized_structures()
        data = md_samples(omm, top, {"C5": minima["C5"], "C7ax": minima["C7ax"]}, n_steps=s.data_steps,
                          report_interval=s.report_interval, timestep=aldp.TIMESTEP, friction=aldp.FRICTION,
                          seed=seed, progress=progress)
        t_data = time.perf_counter() - t0
        t1 = time.perf_counter()
        # train_model builds the network before seeding: seed here so that its initial weights are reproducible
        torch.manual_seed(seed)
        model, result = train_model(data, top, system=omm, hidden=s.hidden, n_layers=s.layers, training=cfg,
                                    device=device, checkpoint=partial, progress=progress,
                                    metadata={"system": "alanine-dipeptide", "kT": float(aldp.KT),
                                              "temperature": aldp.TEMPERATURE, "md_wall_s": t_data})
        n_evals = int(data.n_energy_evals)
    else:  # pragma: no cover - argparse restricts the choices
        raise _err(f"unknown system {system!r}", f"choose one of {', '.join(SYSTEMS)}")
    info = {"n_training_energy_evals": n_evals, "data_wall_s": t_data,
            "training_wall_s": time.perf_counter() - t1}
    return model.freeze(), result, info


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
                                partial=partial if args.system == "alanine-dipeptide" else None)
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
