"""Where does the spacetime geometry of Muller-Brown put its cheap curves?

Compares the discrete Fisher-Rao energy of two curves at constant logSNR: the straight line
A -> B and the minimum-energy path (the grid minimax route through S1, the intermediate basin
and S2), each mapped to spacetime as ``z_t = alpha * z``. Uses the EXACT denoiser of the
Boltzmann density (quadrature on a 200 x 200 grid, :class:`QuadratureDenoiser`), so the answer
is a property of the geometry, not of a learned model; with ``--model`` a learned denoiser is
compared too. Finding (this machine, issue 2): at every logSNR and every kT tried, the straight
line is cheaper, so constant-noise geodesics are near-straight and the geometry bends paths
only by moving through noise levels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import hardware
from tps.diffusion import AffineScaling, DiffusionModel
from tps.diffusion.quadrature import QuadratureDenoiser
from tps.io import save_results, write_text
from tps.metrics.lower_bound import grid_lower_bound
from tps.spacetime import curve_energy
from tps.systems import load
from tps.systems.muller_brown import BOX


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", type=Path, help="optional learned denoiser checkpoint (its scaling is used)")
    p.add_argument("--kT", type=float, nargs="+", default=[1.0, 3.0, 12.5])
    p.add_argument("--logsnr", type=float, nargs="+", default=[0.0, 2.0, 4.0, 6.0])


def curves(system, n_points=128):
    lb = grid_lower_bound(system.potential, system.endpoints["A"], system.endpoints["B"], box=BOX, spacing=0.01)
    path = torch.as_tensor(lb.path, dtype=torch.float64)
    seg = (path[1:] - path[:-1]).norm(dim=1)
    s = torch.cat([torch.zeros(1, dtype=torch.float64), seg.cumsum(0)])
    s = (s / s[-1]).numpy()
    t = np.linspace(0, 1, n_points)
    mep = torch.stack([torch.from_numpy(np.interp(t, s, path[:, i].numpy())) for i in range(2)], 1)
    tt = torch.from_numpy(t)[:, None]
    line = (1 - tt) * system.endpoints["A"] + tt * system.endpoints["B"]
    return {"straight-line": line, "minimum-energy-path": mep}


def run(args):
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    system = load("muller-brown")
    model = DiffusionModel.load(args.model) if args.model else None
    scaling = model.scaling if model else AffineScaling.identity((2,))
    cs = curves(system)
    denoisers = {f"exact kT={kT:g}": QuadratureDenoiser(system.potential, kT, ((-2.0, 1.7), (-1.0, 2.5)), n=200,
                                                         scaling=scaling) for kT in args.kT}
    if model:
        denoisers[f"learned ({args.model.name})"] = model.network.double()
    rows = []
    for name, den in denoisers.items():
        for lam in args.logsnr:
            row = {"denoiser": name, "logsnr": lam}
            alpha = float(torch.sigmoid(torch.tensor(lam)).sqrt())
            for cname, c in cs.items():
                z = scaling.to_model(c) * alpha
                row[cname] = float(curve_energy(den, z, torch.full((z.shape[0],), lam, dtype=torch.float64)))
            row["ratio_mep_to_line"] = row["minimum-energy-path"] / row["straight-line"]
            rows.append(row)
            print(row)
    save_results({"suite": "mb-geometry", "hardware": hardware(), "rows": rows}, out / "results.json",
                 nonfinite="tokens")
    lines = ["| denoiser | logSNR | E(straight line) | E(minimum-energy path) | ratio |", "|---|---|---|---|---|"]
    lines += [f"| {r['denoiser']} | {r['logsnr']:g} | {r['straight-line']:.1f} | {r['minimum-energy-path']:.1f} | "
              f"{r['ratio_mep_to_line']:.2f} |" for r in rows]
    write_text(out / "table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
