"""The Muller-Brown system with Doob's Lagrangian protocol (kT = 12.5, disks of radius 0.1)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from tps.potentials.muller_brown import MullerBrown
from tps.states import Ball
from tps.systems import register
from tps.systems.base import ReferenceValue, System
from tps.systems.protocols import ConstraintProtocol, GeodesicOptions, Protocols, TrainingProtocol, sampler_protocol
from tps.systems.surface import (
    add_selection_evals, check_2d_model, low_variance, paths_figure, payload, region_avoidance, sample_surface,
)

NAME = "muller-brown"
SOURCE = "benchmarks.md section 4 (Muller & Brown 1979; Doob's Lagrangian protocol, Du et al. 2024)"
DESCRIPTION = "Muller-Brown 2-D potential at kT = 12.5, minimum A -> minimum B (dimensionless units)"

#: Box covering the three basins and both saddles, used for training-data starts and figures.
BOX = ((-1.5, 1.2), (-0.5, 2.0))


def protocols(quick: bool = False) -> Protocols:
    """Default protocols (benchmarks/muller_brown.py; ``quick``: its ``--quick`` training budget).

    Examples
    --------
    >>> protocols().training.chains, protocols(quick=True).training.chains
    (1000, 500)
    """
    training = TrainingProtocol(steps=4000, batch_size=512, hidden=128, layers=3, chains=1000, data_steps=10_000,
                                data_dt=2e-4, burn_in=2000, thin=20)
    if quick:
        training = training.replace(chains=500, data_steps=6000, burn_in=1000, hidden=96, steps=1500)
    return Protocols(
        geodesic=GeodesicOptions(logsnr=6.0, n_points=128, init_dips=(6.0, 2.0, -2.0), coarse_points=32,
                                 coarse_iter=150, max_iter=150),
        constraints=ConstraintProtocol(low_variance_threshold=5.0, low_variance_weight=1e5, avoid_logsnr=6.0,
                                       avoid_kl_margin=20.0, avoid_weight=1e3),
        sampler=sampler_protocol(n_paths=1000, steps_per_point=15, step_size=4e-4, frames_per_point=1,
                                 save_paths=100),
        training=training)


@dataclass(frozen=True)
class MullerBrownSystem(System):
    """Muller-Brown (dimensionless) with its run steps; made by :func:`load`."""

    def check_model(self, model, *, source: str = "model") -> None:
        check_2d_model(self, model, "MLPDenoiser", source)

    def model_endpoints(self, model) -> tuple:
        p = next(model.network.parameters())
        return tuple(model.to_model(self.endpoints[k]).to(dtype=p.dtype, device=p.device)
                     for k in (self.start, self.target))

    def solve_payload(self, model, options, *, constraint="none", constraint_protocol=None, avoid=None,
                      extras=None, progress=False) -> dict:
        from tps.spacetime import geodesic

        t0 = time.perf_counter()
        cp = constraint_protocol or self.protocols().constraints
        net = model.network
        p = next(net.parameters())
        z_a, z_b = self.model_endpoints(model)
        o = options
        kw = dict(logsnr=o.logsnr, n_points=o.n_points, init_dips=o.init_dips, coarse_points=o.coarse_points,
                  coarse_iter=o.coarse_iter, max_iter=o.max_iter, clamp=o.clamp, seed=o.seed)
        extra = {}
        constraints = low_variance(constraint, cp)
        if constraint == "region-avoiding":
            free = geodesic(net, z_a, z_b, **kw)
            x_star = model.to_model(torch.tensor(avoid, dtype=torch.float64)).to(dtype=p.dtype, device=p.device)
            ra, thr = region_avoidance(net, free.x, free.logsnr, x_star, cp)
            extra["avoid_threshold"] = thr
            constraints = (ra,)
        r = geodesic(net, z_a, z_b, constraints=constraints, **kw)
        return payload(self.name, model, r, t0, extra)

    def sample(self, curve, protocol, *, seed: int, executor=None, checkpoint=None, progress: bool = False,
               generator=None):
        return sample_surface(self, curve, protocol, seed=seed, executor=executor, checkpoint=checkpoint,
                              progress=progress, generator=generator)

    def summarize(self, paths, *, method: str, curve=None, n_training_energy_evals: int = 0,
                  wall_s: float = float("nan"), geodesic_wall_s: float = float("nan")) -> dict:
        from tps.metrics import summarize

        row = summarize(paths, target=self.states[self.target], method=method,
                        n_training_energy_evals=n_training_energy_evals, wall_s=wall_s,
                        geodesic_wall_s=geodesic_wall_s)
        row["lower_bound"] = float(self.reference["lower_bound"].value)
        return add_selection_evals(row, curve)

    def figure(self, paths, curve, path, *, n_total=None, n_show: int = 30, title: str = ""):
        import numpy as np

        def draw(fig, ax, frames, centres, logsnr):
            gx, gy = np.meshgrid(np.linspace(*BOX[0], 200), np.linspace(*BOX[1], 200))
            grid = torch.as_tensor(np.stack([gx, gy], -1).reshape(-1, 2))
            with torch.no_grad():
                u = self.potential.energy(grid).reshape(gx.shape).numpy()
            cs = ax.contourf(gx, gy, np.clip(u, None, 100), levels=30, cmap="viridis")
            fig.colorbar(cs, ax=ax, label="potential energy U (dimensionless, clipped at 100)")
            for p in frames.numpy():
                ax.plot(p[:, 0], p[:, 1], color="white", lw=0.4, alpha=0.5)
            if centres is not None:  # centres of weak restraints (logSNR < 0) wander off: not drawn
                c = centres.numpy().copy()
                c[logsnr.numpy() < 0] = np.nan
                ax.plot(c[:, 0], c[:, 1], color="red", lw=1.5, label="geodesic restraint centres (logSNR >= 0)")
            ax.set_xlim(*BOX[0])
            ax.set_ylim(*BOX[1])
            ax.set_xlabel("x (dimensionless)")
            ax.set_ylabel("y (dimensionless)")
            return torch.stack([self.endpoints[self.start], self.endpoints[self.target]]).numpy()

        return paths_figure(self, paths, curve, path, draw=draw, n_show=n_show, title=title, n_total=n_total)

    def training_data(self, protocol, *, seed: int, progress: bool = False):
        """Overdamped Langevin samples from uniform starts in :data:`BOX` (``tps.sampling.langevin_samples``)."""
        from tps.sampling import langevin_samples

        s = protocol
        g = torch.Generator().manual_seed(seed)
        lo = torch.tensor([BOX[0][0], BOX[1][0]], dtype=torch.float64)
        hi = torch.tensor([BOX[0][1], BOX[1][1]], dtype=torch.float64)
        starts = lo + (hi - lo) * torch.rand(s.chains, 2, generator=g, dtype=torch.float64)
        return langevin_samples(self.potential, starts, kT=self.kT, dt=s.data_dt, n_steps=s.data_steps,
                                burn_in=s.burn_in, thin=s.thin, seed=seed)

    def train(self, protocol, *, seed: int, device: str = "cpu", progress: bool = False, checkpoint=None):
        from tps.diffusion import AffineScaling, DiffusionModel, MLPConfig, MLPDenoiser, TrainingConfig, train_denoiser

        s = protocol
        cfg = TrainingConfig(n_steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=seed)
        t0 = time.perf_counter()
        data = self.training_data(s, seed=seed, progress=progress)
        t_data = time.perf_counter() - t0
        scaling = AffineScaling.fit(data.samples)
        torch.manual_seed(seed)
        net = MLPDenoiser(MLPConfig(dim=2, hidden=s.hidden, n_blocks=s.layers))
        model = DiffusionModel(net, scaling, metadata={"system": self.name, "kT": self.kT,
                                                       "n_training_energy_evals": int(data.n_energy_evals)})
        t1 = time.perf_counter()
        result = train_denoiser(net, scaling.to_model(data.samples).float(), config=cfg, progress=progress)
        info = {"n_training_energy_evals": int(data.n_energy_evals), "data_wall_s": t_data,
                "training_wall_s": time.perf_counter() - t1}
        return model.freeze(), result, info


def load(*, kT: float = 12.5, state_radius: float = 0.1) -> System:
    """Muller-Brown with endpoints at minima A and B and disk states of radius ``state_radius``.

    Parameters
    ----------
    kT : float, optional
        Thermal energy (dimensionless; 12.5 in Doob's Lagrangian protocol).
    state_radius : float, optional
        Radius of the disks around A and B (dimensionless).

    Returns
    -------
    System
        ``endpoints`` ``{"A", "B"}`` as float64 tensors ``(2,)``; ``reference`` holds the energy
        of every stationary point and the minimax ``lower_bound`` ``U(S1)``.

    Raises
    ------
    ValueError
        If ``kT`` is not positive.

    Examples
    --------
    >>> system = load(kT=5.0, state_radius=0.2)
    >>> system.kT, system.states["B"].radius, system.endpoints["B"].tolist()
    (5.0, 0.2, [0.6235, 0.028])
    """
    if not kT > 0:
        raise ValueError(f"kT: expected a positive temperature (dimensionless), got {kT!r}")
    pot = MullerBrown()
    a, b = pot.minimum("A"), pot.minimum("B")
    endpoints = {
        "A": torch.tensor([a.x, a.y], dtype=torch.float64),
        "B": torch.tensor([b.x, b.y], dtype=torch.float64),
    }
    states = {name: Ball(xy, state_radius, name=name) for name, xy in endpoints.items()}
    reference = {f"U({p.name})": ReferenceValue(p.energy, "dimensionless", SOURCE) for p in pot.stationary_points}
    s1 = pot.saddle("S1")
    reference["lower_bound"] = ReferenceValue(s1.energy, "dimensionless",
                                              "minimax barrier A->B = U(S1); " + SOURCE)
    return MullerBrownSystem(NAME, pot, float(kT), endpoints, states, None, None, reference,
                             description=DESCRIPTION, start="A", target="B", pretrained=NAME)


register(NAME, load, protocols=protocols, description=DESCRIPTION)
