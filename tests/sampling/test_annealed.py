"""The annealed sampler written once (tps.sampling.annealed.anneal) and its two wrappers.

The reference numbers were recorded with the implementations of the base commit (fa30b27, before
the engine layer): the wrappers must keep those random streams bit for bit.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openmm
import pytest
import torch

from tps.diffusion import alpha_sigma
from tps.diffusion.schedule import restraint_schedule
from tps.engines import TorchOverdampedEngine
from tps.engines.openmm import OpenMMLangevinEngine
from tps.potentials import MullerBrown
from tps.sampling import annealed_langevin
from tps.sampling.annealed import anneal
from tps.sampling.openmm_annealed import openmm_annealed_langevin

torch.set_num_threads(1)

A, B = torch.tensor([[-0.5582, 1.4417], [0.6235, 0.0280]], dtype=torch.float64)


def mb_curve(n=6):
    lam = torch.linspace(-2.0, 8.0, n, dtype=torch.float64)
    s = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    return alpha_sigma(lam)[0][:, None] * (A + s * (B - A)), lam


def two_bonds():
    system = openmm.System()
    for m in (12.0, 1.0, 16.0):
        system.addParticle(m)
    f = openmm.HarmonicBondForce()
    f.addBond(0, 2, 0.14, 3.0e5)
    f.addBond(0, 1, 0.11, 3.0e5)
    system.addForce(f)
    x0 = np.array([[0.0, 0.0, 0.0], [0.11, 0.0, 0.0], [-0.045, 0.13, 0.0]])
    centres = x0[None] + np.linspace(0, 0.2, 5)[:, None, None] * np.array([1.0, 0, 0])
    return system, x0, centres


def test_torch_wrapper_keeps_the_historical_stream():
    curve, lam = mb_curve()
    p = annealed_langevin(MullerBrown(), curve, lam, kT=12.5, n_paths=3, steps_per_point=4, frames_per_point=2,
                          max_restraint_step=0.01, generator=torch.Generator().manual_seed(7))
    expected = ["-0x1.fb0777348c956p-2", "0x1.5fdba2623126ap+0", "-0x1.c106b8bad10aep-2", "0x1.5e23d0e329345p+0",
                "-0x1.c51a1f9b17e1ep-2", "0x1.66f5a7e859b53p+0"]
    assert p.frames[:, -1].flatten().tolist() == [float.fromhex(v) for v in expected]
    assert p.energies[:, 3].sum().item() == float.fromhex("-0x1.98b3f15bee40cp+8")
    assert p.n_energy_evals == 3 * (1 + 6 * 4)


@pytest.mark.skipif(openmm.__version__ != "8.6.1", reason="reference recorded with OpenMM 8.6.1 (Reference platform)")
def test_openmm_wrapper_keeps_the_historical_stream():
    system, x0, centres = two_bonds()
    p = openmm_annealed_langevin(system, centres, np.full(5, 800.0), n_paths=2, steps_per_point=10, x_start=x0, seed=3,
                                 platform="Reference")
    expected = ["0x1.adda25b679313p-6", "0x1.35a8249a6caf3p-5", "0x1.d1f0ebf12cfafp-6", "0x1.584657d7b829ap-9",
                "-0x1.2d7903038bb8bp-6", "0x1.788e79770d7f8p-6"]
    assert p.frames[:, -1, 0].flatten().tolist() == [float.fromhex(v) for v in expected]
    assert p.energies.sum().item() == float.fromhex("0x1.6792da7e0ddabp+3")
    # a second call reuses the cached context (reseeded): the same frames
    again = openmm_annealed_langevin(system, centres, np.full(5, 800.0), n_paths=2, steps_per_point=10, x_start=x0,
                                     seed=3, platform="Reference")
    assert torch.equal(again.frames, p.frames)


def test_torch_wrapper_is_anneal_on_the_torch_engine():
    curve, lam = mb_curve()
    p = annealed_langevin(MullerBrown(), curve, lam, kT=12.5, n_paths=4, steps_per_point=6, step_size=1e-3,
                          generator=torch.Generator().manual_seed(1))
    engine = TorchOverdampedEngine(MullerBrown(), kT=12.5, step_size=1e-3, max_restraint_step=1.0,
                                   generator=torch.Generator().manual_seed(1))
    schedule = restraint_schedule(curve, lam)  # reduced stiffness
    q = anneal(engine, schedule, n_paths=4, steps_per_point=6, x_start=schedule.centres[0].expand(4, 2))
    assert torch.equal(p.frames, q.frames) and torch.equal(p.energies, q.energies)
    assert p.n_energy_evals == q.n_energy_evals
    assert torch.equal(p.info["max_energy_all_steps"], q.info["max_energy_all_steps"])


def test_executor_results_do_not_depend_on_the_worker_count():
    curve, lam = mb_curve()
    runs = []
    for workers in (1, 3):
        with ThreadPoolExecutor(workers) as ex:
            runs.append(annealed_langevin(MullerBrown(), curve, lam, kT=12.5, n_paths=7, steps_per_point=4,
                                          executor=ex, seed=5, task_size=2))
    assert torch.equal(runs[0].frames, runs[1].frames)
    assert runs[0].n_energy_evals == runs[1].n_energy_evals == 7 * (1 + 6 * 4)  # counted per engine, not racy
    system, x0, centres = two_bonds()
    engine = OpenMMLangevinEngine(system, platform="Reference", restraint=True, build=False)
    omm = []
    for workers in (1, 2):
        with ThreadPoolExecutor(workers) as ex:
            omm.append(anneal(engine, (centres, np.full(5, 800.0)), n_paths=3, steps_per_point=10,
                              x_start=np.broadcast_to(x0, (3, 3, 3)), seed=2, executor=ex, task_size=1))
    assert torch.equal(omm[0].frames, omm[1].frames) and omm[0].n_energy_evals == 3 * 5 * 10
