"""tps.workflows.cartesian is split by concept; its public names stay importable from it, and the
DCD files of save_paths_dcd are tps.io path files (energies come back with the frames)."""

import importlib
import inspect

import numpy as np
import torch

import tps.workflows.cartesian as cartesian

MODULES = ("coordinates", "endpoints", "models", "geodesics", "molecular_paths")


def test_every_public_name_is_reexported_and_defined_once():
    homes = {}
    for name in cartesian.__all__:
        obj = getattr(cartesian, name)
        module = inspect.getmodule(obj)
        homes[name] = module.__name__ if module else None
    for short in MODULES:
        module = importlib.import_module(f"tps.workflows.{short}")
        assert len(inspect.getsource(module).splitlines()) <= 500
    # the workflow's own functions live in the split modules (not in cartesian.py)
    own = [n for n, m in homes.items() if m and m.startswith("tps.workflows.")]
    assert own and all(homes[n].rsplit(".", 1)[1] in MODULES for n in own)


def test_dcd_files_read_back_with_their_energies(tmp_path):
    from tps.io import load_paths
    from tps.sampling import Paths
    from tps.systems import alanine_dipeptide

    s = alanine_dipeptide.minimized_structures()
    frames = torch.as_tensor(np.stack([s["C5"], s["C7ax"], s["C7eq"]]))[None].repeat(2, 1, 1, 1)  # (2, 3, 22, 3)
    energies = torch.tensor([[-88.45, -85.0, -90.94], [-1.0, -2.0, -3.0]], dtype=torch.float64)
    files = cartesian.save_paths_dcd(Paths(frames, energies, n_energy_evals=6, kT=2.494),
                                     alanine_dipeptide.topology(), tmp_path)
    assert [f.name for f in files] == ["path_000.dcd", "path_001.dcd"] and (tmp_path / "topology.pdb").is_file()
    back = load_paths(tmp_path / "path.dcd")
    np.testing.assert_allclose(back.frames.numpy(), frames.numpy(), atol=1e-5)  # float32 Angstrom in DCD
    torch.testing.assert_close(back.energies, energies)
    assert cartesian.save_paths_dcd(Paths(frames, energies, n_energy_evals=6, kT=2.494),
                                    alanine_dipeptide.topology(), tmp_path / "top_only", max_paths=0) == []
