"""Alanine dipeptide in (phi, psi) on the package's own free-energy surface (kJ/mol, 300 K).

The surface is ``tps/systems/data/alanine_dipeptide/fes_phipsi.dat`` (periodic bilinear grid,
:class:`~tps.potentials.grid.PeriodicGridPotential`); coordinates are radians, periodic with
period ``2 pi``; the transition is C5 -> C7ax (the minimised structures' angles).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from tps.states import Ball
from tps.systems import register
from tps.systems.base import ReferenceValue, System
from tps.systems.protocols import ConstraintProtocol, GeodesicOptions, Protocols, TrainingProtocol, sampler_protocol
from tps.systems.surface import (
    TWO_PI, add_selection_evals, check_2d_model, draw_phipsi, low_variance, paths_figure, payload, region_avoidance,
    sample_surface,
)

NAME = "alanine-dipeptide-phipsi"
DESCRIPTION = ("alanine dipeptide in (phi, psi) on the package's own free-energy surface (kJ/mol, 300 K), "
               "C5 -> C7ax")
STATE_RADIUS = 0.75  # rad
#: Default ``SamplerProtocol.centre_noise`` of ``tps run``: each path's restraint centres re-noised by 2.5
#: restraint widths (issue 12). Tuned on a seed-11 reference, held-out seed 12, 1000 paths: path_density_jsd
#: 0.287 -> 0.123, target hit 1.000 -> 0.978, every-step max step as unbiased MD's; seeds of ``--refine shooting``
#: then cover both crossing channels (without it the refined chains miss the psi > 0 channel). The benchmark
#: rows of the paper's protocol (benchmarks/aldp_2d.py) keep the plain sampler; ``--centre-noise 0`` turns it off.
CENTRE_NOISE = 2.5


def protocols(quick: bool = False) -> Protocols:
    """Default protocols (benchmarks/aldp_2d.py; ``quick``: its ``--quick`` training budget).

    Examples
    --------
    >>> p = protocols()
    >>> p.extras["image_chord_ratio"], p.constraints.avoid_low_variance_threshold, protocols(quick=True).training.chains
    (1.5, 3.75, 1000)
    """
    training = TrainingProtocol(steps=3000, batch_size=512, hidden=128, layers=3, harmonics=3, chains=2000,
                                data_steps=3000, data_dt=1e-3, burn_in=1000, thin=20)
    if quick:
        training = training.replace(chains=1000, data_steps=2000, burn_in=600, steps=1500)
    return Protocols(
        geodesic=GeodesicOptions(logsnr=4.0, n_points=128, init_dips=(4.0, 1.0), coarse_points=32, coarse_iter=60,
                                 max_iter=60, clamp=True),
        constraints=ConstraintProtocol(low_variance_threshold=3.0, low_variance_weight=1e4, avoid_logsnr=4.0,
                                       avoid_kl_margin=20.0, avoid_weight=1e3, avoid_low_variance_threshold=3.75),
        sampler=sampler_protocol(n_paths=1000, steps_per_point=12, step_size=3e-3, frames_per_point=12,
                                 save_paths=100, centre_noise=CENTRE_NOISE),
        training=training, extras={"image_chord_ratio": 1.5})


def _centres(cx, clam):
    """Restraint centres ``x / alpha`` (identity scaling) of the curve, float64."""
    from tps.diffusion.schedule import restraint_schedule

    return restraint_schedule(cx.double(), clam.double()).centres


@dataclass(frozen=True)
class PhiPsiSystem(System):
    """(phi, psi) of alanine dipeptide with its run steps; made by :func:`load`."""

    grid: Any = None

    def check_model(self, model, *, source: str = "model") -> None:
        check_2d_model(self, model, "PeriodicMLPDenoiser", source)

    def model_endpoints(self, model) -> tuple:
        p = next(model.network.parameters())
        return tuple(self.endpoints[k].to(dtype=p.dtype, device=p.device) for k in (self.start, self.target))

    def choose_image(self, net, x_a, x_b0, options, image_chord_ratio):
        """Periodic image ``x_b0 + 2 pi k`` of the end point: geodesics to the candidate images
        (chord <= ``image_chord_ratio`` x the shortest) solved as one batch; the image whose coarse
        curve has the lowest highest potential energy over its restraint centres is kept.

        Returns ``(index, x_b, init_nodes, info)``."""
        from tps.spacetime import geodesic

        o = options
        k = torch.tensor([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=x_a.dtype, device=x_a.device)
        shifts = TWO_PI * k
        chords = (x_b0[None] + shifts - x_a[None]).norm(dim=1)
        cand = torch.nonzero(chords <= image_chord_ratio * chords.min()).flatten()
        xa = x_a.expand(len(cand), 2).clone()
        xb = x_b0[None] + shifts[cand]
        r = geodesic(net, xa, xb, batched=True, n_points=o.coarse_points, init_dips=o.init_dips,
                     logsnr=o.logsnr, clamp=o.clamp, max_iter=o.coarse_iter, seed=o.seed)
        c = _centres(r.x.reshape(-1, 2), r.logsnr.reshape(-1)).reshape(r.x.shape)
        with torch.no_grad():
            cmax = self.potential.energy(c.cpu()).max(1).values
        best = int(torch.argmin(cmax))
        index = int(cand[best])
        info = {"image_k": [int(v) for v in k[index].round().tolist()],
                "image_candidates": [[int(v) for v in k[i].tolist()] for i in cand.tolist()],
                "image_curve_max_energy": [float(v) for v in cmax],
                # potential evaluations spent choosing the image (counted in the run's n_energy_evals)
                "n_selection_energy_evals": int(c.shape[0] * c.shape[1])}
        return index, xb[best], r.nodes[best][None], info

    def solve_payload(self, model, options, *, constraint="none", constraint_protocol=None, avoid=None,
                      extras=None, progress=False) -> dict:
        from tps.spacetime import LowVariance, geodesic

        t0 = time.perf_counter()
        defaults = self.protocols()
        cp = constraint_protocol or defaults.constraints
        ratio = (extras or defaults.extras)["image_chord_ratio"]
        net = model.network
        p = next(net.parameters())
        x_a, x_b0 = self.model_endpoints(model)
        o = options
        _, x_b, nodes, extra = self.choose_image(net, x_a, x_b0, o, ratio)
        kw = dict(logsnr=o.logsnr, n_points=o.n_points, clamp=o.clamp, max_iter=o.max_iter, seed=o.seed)
        if constraint == "none":
            r = geodesic(net, x_a, x_b, init_nodes=nodes, **kw)
        else:
            constraints = low_variance(constraint, cp)
            if constraint == "region-avoiding":
                free = geodesic(net, x_a, x_b, init_nodes=nodes, **kw)
                point = torch.tensor(avoid, dtype=torch.float64)
                # the image of the point nearest the free curve's restraint centres
                shifts = TWO_PI * torch.tensor([(i, j) for i in range(-2, 3) for j in range(-2, 3)],
                                               dtype=torch.float64)
                cands = point[None] + shifts
                c = _centres(free.x, free.logsnr)
                x_star = cands[int(torch.cdist(cands, c).min(1).values.argmin())]
                ra, thr = region_avoidance(net, free.x, free.logsnr, x_star.to(dtype=p.dtype, device=p.device), cp,
                                           clamp=o.clamp)
                extra.update(avoid_threshold=thr, avoid_image=x_star.tolist())
                constraints = (LowVariance(cp.avoid_low_variance_threshold, weight=cp.low_variance_weight), ra)
            r = geodesic(net, x_a, x_b, init_dips=(o.logsnr,), constraints=constraints,
                         coarse_points=o.coarse_points, coarse_iter=o.coarse_iter, **kw)
        return payload(self.name, model, r, t0, extra)

    def row_energies(self, paths):
        """``paths`` with every frame's energy the periodic bilinear value of the raw grid (never the
        spline the dynamics use): the energies every row of this system reports (sampled paths and,
        through :mod:`tps.pipeline.baselines`, the MD baselines).

        Examples
        --------
        >>> from tps.core import Paths
        >>> s = load()
        >>> p = s.row_energies(Paths(s.endpoints["C5"].expand(1, 2, 2), torch.zeros(1, 2), 0, s.kT, {}))
        >>> bool(p.energies[0, 0] == p.energies[0, 1]), p.info["energies"][:17]
        (True, 'periodic bilinear')
        """
        from tps.potentials.grid import bilinear
        from tps.sampling.paths import Paths

        info = dict(paths.info, energies="periodic bilinear interpolation of the raw free-energy grid")
        return Paths(paths.frames, bilinear(self.grid, paths.frames), paths.n_energy_evals, paths.kT, info)

    def sample(self, curve, protocol, *, seed: int, executor=None, checkpoint=None, progress: bool = False,
               generator=None):
        raw = sample_surface(self, curve, protocol, seed=seed, executor=executor, checkpoint=checkpoint,
                             progress=progress, generator=generator)
        return self.row_energies(raw)  # reported energies: the raw grid's (never the spline's)

    def summarize(self, paths, *, method: str, curve=None, n_training_energy_evals: int = 0,
                  wall_s: float = float("nan"), geodesic_wall_s: float = float("nan")) -> dict:
        from tps.metrics import summarize

        row = summarize(paths, target=self.states[self.target], periods=self.periods, method=method,
                        n_training_energy_evals=n_training_energy_evals, wall_s=wall_s,
                        geodesic_wall_s=geodesic_wall_s)
        return add_selection_evals(row, curve)

    def figure(self, paths, curve, path, *, n_total=None, n_show: int = 30, title: str = ""):
        def draw(fig, ax, frames, centres, logsnr):
            pp = (frames.numpy() + math.pi) % TWO_PI - math.pi
            c = None if centres is None else (centres.numpy() + math.pi) % TWO_PI - math.pi
            ends = torch.stack([self.endpoints[self.start], self.endpoints[self.target]]).numpy()
            return draw_phipsi(fig, ax, pp, c, logsnr, ends)

        return paths_figure(self, paths, curve, path, draw=draw, n_show=n_show, title=title, n_total=n_total)

    def training_data(self, protocol, *, seed: int, progress: bool = False):
        """Overdamped Langevin samples of the surface from uniform starts (``data_dt`` reduced)."""
        from tps.sampling import langevin_samples

        s = protocol
        g = torch.Generator().manual_seed(seed)
        starts = (torch.rand(s.chains, 2, generator=g, dtype=torch.float64) - 0.5) * TWO_PI
        return langevin_samples(self.potential, starts, kT=self.kT, dt=s.data_dt / self.kT, n_steps=s.data_steps,
                                burn_in=s.burn_in, thin=s.thin, seed=seed)

    def train(self, protocol, *, seed: int, device: str = "cpu", progress: bool = False, checkpoint=None):
        from tps.diffusion import (
            AffineScaling, DiffusionModel, PeriodicMLPConfig, PeriodicMLPDenoiser, TrainingConfig, train_denoiser,
        )

        s = protocol
        cfg = TrainingConfig(n_steps=s.steps, batch_size=s.batch_size, lr=s.lr, seed=seed)
        t0 = time.perf_counter()
        data = self.training_data(s, seed=seed, progress=progress)
        t_data = time.perf_counter() - t0
        scaling = AffineScaling.identity((2,))
        torch.manual_seed(seed)
        net = PeriodicMLPDenoiser(PeriodicMLPConfig(dim=2, period=TWO_PI, hidden=s.hidden, n_blocks=s.layers,
                                                    n_harmonics=s.harmonics))
        model = DiffusionModel(net, scaling, metadata={"system": self.name, "kT": self.kT, "energy_unit": "kJ/mol",
                                                       "n_training_energy_evals": int(data.n_energy_evals)})
        t1 = time.perf_counter()
        result = train_denoiser(net, self.potential.wrap(data.samples).float(), config=cfg, progress=progress)
        info = {"n_training_energy_evals": int(data.n_energy_evals), "data_wall_s": t_data,
                "training_wall_s": time.perf_counter() - t1}
        return model.freeze(), result, info


def load(*, state_radius: float = STATE_RADIUS) -> PhiPsiSystem:
    """The (phi, psi) system: the package's surface, C5, C7ax and C7eq endpoints (rad), periodic state balls.

    The transition is C5 -> C7ax; C7eq (one beta/PII super-basin with C5, a few kT apart) is a
    state too, so the transition path ensemble's A is C5 | C7eq (:meth:`System.transition_states`,
    as the benchmarks and the standard TPS definition of alanine dipeptide): used by shooting
    (``tps run --refine shooting`` and the MD baselines) and the crossing coordinate.

    Raises
    ------
    FileNotFoundError
        If the bundled surface is missing from the installation.

    Examples
    --------
    >>> system = load()
    >>> system.endpoints["C5"].tolist(), system.periods == (2 * math.pi, 2 * math.pi), system.energy_unit
    ([-2.565986, 2.776615], True, 'kJ/mol')
    >>> bool(system.states["C7ax"](system.endpoints["C7ax"])), system.pretrained
    (True, 'alanine-dipeptide-phipsi')
    >>> a, b = system.transition_states()
    >>> a(torch.stack([system.endpoints[k] for k in ("C5", "C7eq", "C7ax")])).tolist(), b.name
    ([True, True, False], 'C7ax')
    """
    from tps.potentials.grid import PeriodicGridPotential, read_grid
    from tps.systems.alanine_dipeptide import KT, data_dir, reference_minima

    path = data_dir() / "fes_phipsi.dat"
    if not path.exists():
        raise FileNotFoundError(f"the package's free-energy surface {path} is missing; reinstall the package")
    grid = read_grid(path)
    minima = reference_minima()["minima"]
    endpoints = {k: torch.tensor([minima[k]["phi_rad"], minima[k]["psi_rad"]], dtype=torch.float64)
                 for k in ("C5", "C7ax", "C7eq")}
    periods = (TWO_PI, TWO_PI)
    states = {k: Ball(v, state_radius, periods=periods, name=k) for k, v in endpoints.items()}
    src = "systems/alanine_dipeptide/build.py (restrained then unrestrained L-BFGS minimisation)"
    reference = {f"{k}_{a}": ReferenceValue(minima[k][f"{a}_rad"], "rad", src) for k in endpoints for a in ("phi", "psi")}
    return PhiPsiSystem(NAME, PeriodicGridPotential(grid, energy_unit="kJ/mol"), float(KT), endpoints, states,
                        reference=reference, description=DESCRIPTION, energy_unit="kJ/mol", start="C5",
                        target="C7ax", pretrained=NAME, periods=periods, grid=grid)


register(NAME, load, protocols=protocols, description=DESCRIPTION)
