"""Path-ensemble metrics (benchmarks.md section 1) on hand-computed two-path examples."""

import math

import pytest
import torch

from tps.metrics import barrier, final_frames, frame_steps, max_energy, max_step, minmax, summarize
from tps.metrics.paths import target_hit_fraction
from tps.sampling import Paths
from tps.states import Ball

torch.set_num_threads(1)

# benchmarks.md section 1, as written to results.json by benchmarks/*.py
RESULT_KEYS = ["method", "n_paths", "max_energy_mean", "max_energy_std", "minmax", "barrier_mean", "max_step",
               "target_hit_fraction", "n_energy_evals", "n_training_energy_evals", "wall_s", "geodesic_wall_s"]


def _paths(lengths=None):
    """Two 3-frame paths in 2-D.

    path 0: (0,0) -> (3,4) -> (3,4), energies 0, 3, 1: steps 5, 0; max 3, barrier 3
    path 1: (0,0) -> (1,0) -> (1,1), energies 2, 5, 4: steps 1, 1; max 5, barrier 3
    """
    frames = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]],
                           [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]], dtype=torch.float64)
    energies = torch.tensor([[0.0, 3.0, 1.0], [2.0, 5.0, 4.0]], dtype=torch.float64)
    info = {} if lengths is None else {"lengths": lengths}
    return Paths(frames, energies, 77, 1.0, info)


def test_energy_metrics_hand_computed():
    p = _paths()
    assert max_energy(p).tolist() == [3.0, 5.0]
    assert minmax(p) == 3.0
    assert barrier(p).tolist() == [3.0, 3.0]
    # Plain tensors of energies work too.
    assert max_energy(p.energies).tolist() == [3.0, 5.0]
    with pytest.raises(ValueError, match="paths"):
        max_energy(torch.zeros(3))


def test_max_step_hand_computed():
    p = _paths()
    assert frame_steps(p).tolist() == [[5.0, 0.0], [1.0, 1.0]]
    assert max_step(p) == 5.0


def test_max_step_periodic_across_pi():
    # phi goes 3.0 -> -3.0 (across +-pi): a step of 2 pi - 6 = 0.283 rad, not 6 rad.
    frames = torch.tensor([[[3.0, 0.5], [-3.0, 0.5], [-2.9, 0.6]]], dtype=torch.float64)
    p = Paths(frames, torch.zeros(1, 3, dtype=torch.float64), 3, 1.0)
    assert max_step(p) == pytest.approx(6.0)
    steps = frame_steps(p, periods=(2 * math.pi, 2 * math.pi))
    assert steps[0, 0].item() == pytest.approx(2 * math.pi - 6.0, abs=1e-12)
    assert steps[0, 1].item() == pytest.approx(math.sqrt(0.02), abs=1e-12)
    assert max_step(p, periods=(2 * math.pi, None)) == pytest.approx(2 * math.pi - 6.0, abs=1e-12)
    # A custom distance overrides the Euclidean one.
    assert max_step(p, distance=lambda a, b: (b - a).abs().sum(-1)) == pytest.approx(6.0)


def test_target_hit_fraction_with_ball():
    p = _paths()
    assert target_hit_fraction(p, Ball([1.0, 1.0], 0.1)) == 0.5  # only path 1 ends at (1, 1)
    assert target_hit_fraction(p, Ball([3.0, 4.05], 0.1)) == 0.5  # only path 0 ends at (3, 4)
    assert target_hit_fraction(p, Ball([0.0, 0.0], 0.1)) == 0.0
    assert target_hit_fraction(p, Ball([2.0, 2.5], 3.0)) == 1.0


def test_variable_length_paths():
    # Path 0 has length 2: its padded third frame (energy 9) must not count; its last frame is (1, 1)
    # after re-padding. Path 1 has all 3 frames.
    frames = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]],
                           [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]], dtype=torch.float64)
    energies = torch.tensor([[0.0, 2.0, 9.0], [1.0, 5.0, 4.0]], dtype=torch.float64)
    p = Paths(frames, energies, 10, 1.0, {"lengths": [2, 3]})
    assert max_energy(p).tolist() == [2.0, 5.0]
    assert minmax(p) == 2.0
    assert barrier(p).tolist() == [2.0, 4.0]
    assert final_frames(p).tolist() == [[1.0, 1.0], [2.0, 0.0]]
    assert target_hit_fraction(p, Ball([1.0, 1.0], 0.1)) == 0.5
    assert max_step(p) == pytest.approx(math.sqrt(2))  # padding repeats the last frame: zero step
    # With length 1 for path 0 the final frame is its start.
    p1 = Paths(frames, energies, 10, 1.0, {"lengths": torch.tensor([1, 3])})
    assert final_frames(p1)[0].tolist() == [0.0, 0.0]
    assert max_energy(p1).tolist() == [0.0, 5.0]


def test_summarize_keys_and_values():
    p = _paths()
    row = summarize(p, method="test", target=Ball([1.0, 1.0], 0.1), n_training_energy_evals=1000,
                    wall_s=2.5, geodesic_wall_s=1.5)
    assert list(row) == RESULT_KEYS
    assert row["method"] == "test" and row["n_paths"] == 2
    assert row["max_energy_mean"] == 4.0
    assert row["max_energy_std"] == pytest.approx(math.sqrt(2.0))  # unbiased std of (3, 5)
    assert row["minmax"] == 3.0 and row["barrier_mean"] == 3.0
    assert row["max_step"] == 5.0 and row["target_hit_fraction"] == 0.5
    assert row["n_energy_evals"] == 77 and row["n_training_energy_evals"] == 1000
    assert row["wall_s"] == 2.5 and row["geodesic_wall_s"] == 1.5
    # JSON-ready plain types.
    assert all(isinstance(row[k], (str, int, float)) for k in RESULT_KEYS)
    # A single path has std 0 (not NaN); defaults for the walls are NaN.
    one = summarize(p[1], method="one", target=Ball([1.0, 1.0], 0.1))
    assert list(one) == RESULT_KEYS
    assert one["max_energy_std"] == 0.0 and one["n_paths"] == 1 and math.isnan(one["wall_s"])
    # Periodic max_step goes through summarize: with period 4 in x, path 0's step (3, 4) wraps to
    # (-1, 4), length sqrt(17).
    row = summarize(p, method="t", target=Ball([1.0, 1.0], 0.1), periods=(4.0, None))
    assert row["max_step"] == pytest.approx(math.sqrt(17.0))
