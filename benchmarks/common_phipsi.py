"""Alanine dipeptide in (phi, psi): the two surfaces of the benchmarks and the states A and B on them.

Used by ``benchmarks/aldp_2d.py`` (every row) and ``benchmarks/reference_ensemble.py`` (the
``aldp-2d`` reference run has the same states and surface). A :class:`Setting` is one surface
(the package's own OpenMM free-energy surface, :func:`own_setting`, or the reference grid of
Holdijk et al., :func:`reference_setting`) with its endpoints, temperature and grid lower bound.

Examples
--------
>>> import torch
>>> a = state_a()
>>> a(torch.tensor([[-2.565986, 2.776615], [1.05, -0.71]], dtype=torch.float64)).tolist()
[True, False]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tps.metrics.lower_bound import grid_lower_bound
from tps.potentials.grid import Grid2D, PeriodicGridPotential, read_grid
from tps.states import Ball, Volume

TWO_PI = 2.0 * math.pi
PERIODS = (TWO_PI, TWO_PI)
#: The seed paper's endpoints on the reference surface, (phi, psi) in rad.
REFERENCE_ENDPOINTS = ((-2.55, 2.70), (0.95, -0.40))
STATE_RADIUS = 0.75  # rad
#: State A of EVERY method of this runner (issue 5), on both surfaces: the union of the periodic
#: balls of radius ``STATE_RADIUS`` around the C5 and the C7eq minimum, (phi, psi) in rad of the
#: minimised structures (``tps/systems/data/alanine_dipeptide/minima.json``), the same numbers on
#: the package's own and on the reference surface. Why: on the package's surface C7eq (0.00 kJ/mol)
#: and C5 (0.42) are one beta/PII super-basin with a small barrier between them (about 5-7 kJ/mol,
#: 2-3 kT), separated from C7ax by the 36.7 kJ/mol barrier. With A = the C5 ball only, frames of a
#: C5 -> C7ax transition are committed to C5 almost everywhere, shots dwell in C7eq (in neither
#: state) and two-way shooting accepted 0 of 128 (variable) and 0 of 448 (fixed) trials, and the
#: reference run 0 of 512. The standard TPS definition for alanine dipeptide (Bolhuis, Dellago
#: and Chandler 2000, and later work) likewise puts C7eq and C5 together in state A (the phi < 0
#: beta region) and C7ax in B. The geodesics still start at the C5 point and end at the B point;
#: target_hit, the transition segments of path_density_jsd, shooting, the high-temperature initial
#: path and unbiased MD all use A = C5 | C7eq and B = the ball around the end point.
STATE_A_CENTRES = {"C5": (-2.565986, 2.776615), "C7eq": (-1.352293, 0.943792)}
STATE_A_DEFINITION = ("A = union of periodic (phi, psi) balls of radius 0.75 rad around C5 (-2.566, 2.777) and "
                      "C7eq (-1.352, 0.944) (the beta/PII super-basin, as in the standard TPS definition of "
                      "alanine dipeptide); B = periodic ball of radius 0.75 rad around the end point")


@dataclass
class Setting:
    """The surface and the problem posed on it."""

    name: str
    grid: Grid2D
    potential: PeriodicGridPotential
    kT: float
    unit: str
    start: torch.Tensor               # (2,) rad
    end: torch.Tensor                 # (2,) rad
    lower_bound: float
    lower_bound_path: np.ndarray
    notes: dict = field(default_factory=dict)

    @property
    def target(self) -> Ball:
        return Ball(self.end, STATE_RADIUS, periods=PERIODS, name="end")

    @property
    def source(self) -> Volume:
        """State A of every method: :func:`state_a` (the C5 and C7eq balls; ``start`` lies in the C5 one)."""
        return state_a()

    def as_system(self, x_b: torch.Tensor):
        """The (phi, psi) system of this setting for :func:`tps.pipeline.run_method`: this surface,
        potential and kT, endpoints ``A`` (the start) and ``B`` = the chosen periodic image ``x_b``
        (unwrapped, float64), states ``A`` = :func:`state_a` and ``B`` = :attr:`target`, and the grid
        lower bound as ``reference["lower_bound"]``."""
        from tps.systems.alanine_dipeptide_phipsi import NAME, PhiPsiSystem
        from tps.systems.base import ReferenceValue

        lower = ReferenceValue(float(self.lower_bound), self.unit, "grid bottleneck (8-neighbour, periodic)")
        return PhiPsiSystem(NAME, self.potential, float(self.kT), {"A": self.start.double(), "B": x_b.double()},
                            {"A": self.source, "B": self.target}, reference={"lower_bound": lower},
                            description=self.name, energy_unit=self.unit, start="A", target="B", periods=PERIODS,
                            grid=self.grid)


def state_a() -> Volume:
    """State A of the runner: ``Ball(C5) | Ball(C7eq)`` (:data:`STATE_A_CENTRES`, radius :data:`STATE_RADIUS`)."""
    balls = [Ball(torch.tensor(c, dtype=torch.float64), STATE_RADIUS, periods=PERIODS, name=name)
             for name, c in STATE_A_CENTRES.items()]
    return balls[0] | balls[1]


def state_description(setting: "Setting") -> dict:
    """The state definitions, as written to ``results.json`` and into the reference ensemble's meta."""
    return {"A": repr(setting.source), "A_centres_rad": {k: list(v) for k, v in STATE_A_CENTRES.items()},
            "B": repr(setting.target), "B_centre_rad": setting.end.tolist(), "radius_rad": STATE_RADIUS,
            "definition": STATE_A_DEFINITION}


def reference_setting(path: Path) -> Optional[Setting]:
    """The seed paper's setting on the reference grid, or None (with a message) if the file is missing."""
    path = Path(path)
    if not path.exists():
        print(f"aldp-2d: reference surface {path} not found; skipping the reference-surface comparison "
              f"(it is not shipped with the package: pass --surface PATH to the Holdijk et al. grid)")
        return None
    grid = read_grid(path)
    start, end = (torch.tensor(p, dtype=torch.float64) for p in REFERENCE_ENDPOINTS)
    lb = grid_lower_bound(grid, start.tolist(), end.tolist())
    return Setting("alanine-dipeptide (phi, psi), reference surface of Holdijk et al. (kT = 1)", grid,
                   PeriodicGridPotential(grid), 1.0, "as in the file (unstated)", start, end, lb.value, lb.path,
                   {"surface": str(path), "endpoints": "(-2.55, 2.70) -> (0.95, -0.40), the seed paper's"})


def own_setting() -> Optional[Setting]:
    """The package's own free-energy surface (kJ/mol, 300 K), or None (with a message) if not built yet.

    Surface, potential, kT and endpoints are those of the registered system
    ``alanine-dipeptide-phipsi`` (:func:`tps.systems.load`).
    """
    from tps.systems import load
    from tps.systems.alanine_dipeptide import data_dir

    path = data_dir() / "fes_phipsi.dat"
    if not path.exists():
        print(f"aldp-2d: the package's own free-energy surface {path} does not exist yet (it is produced by the "
              f"metadynamics recipe in systems/alanine_dipeptide); nothing to do without --surface")
        return None
    system = load("alanine-dipeptide-phipsi")
    start, end = system.endpoints[system.start], system.endpoints[system.target]
    lb = grid_lower_bound(system.grid, start.tolist(), end.tolist())
    return Setting("alanine-dipeptide (phi, psi), own OpenMM free-energy surface (amber99sbildn, vacuum, 300 K)",
                   system.grid, system.potential, float(system.kT), system.energy_unit, start, end, lb.value, lb.path,
                   {"surface": str(path), "endpoints": "(phi, psi) of the minimised C5 and C7ax structures "
                                                        "(tps/systems/data/alanine_dipeptide/minima.json)"})
