"""The fidelity benchmark's all-atom pieces (fast; the runs themselves are benchmarks): refused references write
nothing, and the transition segments of all-atom paths are those of their (phi, psi) with A = C5 | C7eq, B = C7ax."""

import argparse
import math

import pytest
import torch

from benchmarks.common import write_reference
from benchmarks.common_cartesian import state_description
from benchmarks.common_fidelity import cartesian_states, transition_cv
from benchmarks.fidelity import run
from tps.sampling import Paths
from tps.systems import alanine_dipeptide, load


@pytest.fixture(scope="module")
def aldp():
    return load("alanine-dipeptide", platform="Reference")


def _reference(path, sy, **meta):
    g = torch.Generator().manual_seed(0)
    frames = [torch.empty(40, 2, dtype=torch.float64).uniform_(-math.pi, math.pi, generator=g) for _ in range(2)]
    base = {"system": "aldp-cartesian", "states": state_description(sy.states), "kT": float(sy.kT), "seed": 12}
    write_reference(path, frames, [0, 1], {**base, **meta})
    return path


@pytest.mark.parametrize("meta, message", [
    ({"system": "aldp-2d"}, "not 'aldp-cartesian'"),
    ({"states": {"A": "C5 only"}}, "other states"),
    ({"kT": 1.0}, "kT = 1.0"),
])
def test_unusable_cartesian_reference_is_one_error_and_nothing_written(tmp_path, aldp, meta, message):
    ref = _reference(tmp_path / "ref.npz", aldp, **meta)
    args = argparse.Namespace(system="aldp-cartesian", reference=ref, tuning_reference=None, out=tmp_path / "out",
                              quick=True, n_paths=2, seed=0, variants=None)
    with pytest.raises(SystemExit) as exc:
        run(args)
    text = str(exc.value)
    assert text.startswith("error: --reference") and message in text and "\n" not in text
    assert not (tmp_path / "out").exists()


def test_transition_segments_of_all_atom_paths(aldp):
    """Path 0: C5 -> C7eq -> C5 -> C7ax -> C5; its segment is the last A frame before the first entry into B,
    to that entry. Path 1 never reaches B and adds nothing."""
    A, B, jsd = cartesian_states(aldp)
    assert jsd["bins"] == 36 and jsd["periods"] == (2 * math.pi, 2 * math.pi)
    s = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in alanine_dipeptide.minimized_structures().items()}
    p0 = torch.stack([s["C5"], s["C7eq"], s["C5"], s["C7ax"], s["C5"]])
    p1 = torch.stack([s["C5"], s["C7eq"], s["C7eq"], s["C5"], s["C7eq"]])
    paths = Paths(torch.stack([p0, p1]), torch.zeros(2, 5), 0, aldp.kT)
    frames, groups = transition_cv(paths, A, B, B.cv)
    assert torch.allclose(frames, B.cv(p0[2:4])) and groups.tolist() == [0, 0]
    assert bool(A(p0[2])) and bool(B(p0[3])) and not bool(B(p1).any())
