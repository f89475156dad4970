"""The convergence benchmark's contracts (fast; the run itself is the CI smoke run of ``benchmarks all --quick``):
refused references, arguments and models write nothing, the 2x-floor crossing, the burn-in pool, the noise floor,
the per-chain relaxation and its evaluation count, a ``tps train`` checkpoint for the geodesic arms."""

import argparse
import math

import pytest
import torch

from benchmarks.common import write_reference
from benchmarks.common_convergence import (MULLER_BROWN_STATES, check_reference, evals_to_threshold, make_setup,
                                           noise_floor, pooled_frames)
from benchmarks.convergence import parse_chains, prepare, run
from tps.systems.muller_brown import BOX


def _reference(path, **meta):
    g = torch.Generator().manual_seed(0)
    frames = [torch.stack([torch.empty(50).uniform_(-1.0, 0.5, generator=g),
                           torch.empty(50).uniform_(0.0, 1.5, generator=g)], 1) for _ in range(4)]
    base = {"system": "muller-brown", "states": MULLER_BROWN_STATES, "kT": 12.5, "seed": 12}
    write_reference(path, frames, [0, 1, 2, 3], {**base, **meta})
    return path


def _args(tmp_path, reference, **kw):
    a = dict(system="muller-brown", reference=reference, out=tmp_path / "out", chains=None, rounds=None,
             arm_time_s=None, geodesic_paths=None, arms="a1,a2,b,c", seed=0, quick=True)
    a.update(kw)
    return argparse.Namespace(**a)


@pytest.mark.parametrize("meta, message", [
    ({"system": "aldp-2d"}, "not 'muller-brown'"),
    ({"states": "disks of radius 0.2"}, "other state definitions"),
    ({"kT": 10.0}, "kT = 10.0"),
    ({"seed": 0}, "seed 0, the seed of this run"),
])
def test_unusable_reference_is_one_error_and_nothing_written(tmp_path, capsys, meta, message):
    ref = _reference(tmp_path / "ref.npz", **meta)
    args = _args(tmp_path, ref)
    with pytest.raises(ValueError, match="--reference") as info:
        prepare(args)
    assert message in str(info.value)
    with pytest.raises(SystemExit) as stop:
        run(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --reference") and message in err[0]
    assert not (tmp_path / "out").exists()


def test_bad_arguments_name_the_option(tmp_path):
    ref = _reference(tmp_path / "ref.npz")
    for kw, name in (({"chains": "0,4"}, "--chains"), ({"chains": "a"}, "--chains"),
                     ({"chains": "16", "geodesic_paths": 8}, "--geodesic-paths"), ({"arms": "a1,x"}, "--arms"),
                     ({"rounds": 0}, "--rounds"), ({"relax_until": "never"}, "--relax-until")):
        with pytest.raises(ValueError, match=name):
            prepare(_args(tmp_path, ref, **kw))
    with pytest.raises(ValueError, match="does not exist"):
        prepare(_args(tmp_path, tmp_path / "missing.npz"))
    assert parse_chains("64,16,16") == [16, 64]
    assert not (tmp_path / "out").exists()


def test_accepted_reference_passes():
    setup = make_setup("muller-brown")
    check_reference({"system": "muller-brown", "states": MULLER_BROWN_STATES, "kT": 12.5, "seed": 12}, setup,
                    seed=0, path="ref.npz")
    with pytest.raises(ValueError, match="does not record its seed"):
        check_reference({"system": "muller-brown", "states": MULLER_BROWN_STATES, "kT": 12.5}, setup, seed=0,
                        path="ref.npz")


def test_evals_to_2x_floor_on_a_hand_made_curve():
    floor = 0.02
    curve = [[1000, 0.6], [2000, 0.05], [3000, float("nan")], [4000, 0.04], [5000, 0.045], [6000, 0.01]]
    assert evals_to_threshold(curve, 2 * floor) == 4000  # first point at or below 0.04, NaN skipped
    assert evals_to_threshold(curve, floor) == 6000
    assert evals_to_threshold(curve, 0.005) is None  # never reached: null in results.json
    assert evals_to_threshold(curve, float("nan")) is None
    assert evals_to_threshold([], 0.1) is None


def test_pool_discards_the_first_half_of_the_rounds():
    rounds = [torch.full((1, 2), float(r)) for r in range(9)]  # round r's frames all equal r
    assert pooled_frames(rounds, 0)[:, 0].tolist() == [0.0]
    assert pooled_frames(rounds, 8)[:, 0].tolist() == [5.0, 6.0, 7.0, 8.0]
    assert pooled_frames(rounds, 3)[:, 0].tolist() == [2.0, 3.0]
    rounds[6] = None  # a round without transition frames
    assert pooled_frames(rounds, 8)[:, 0].tolist() == [5.0, 7.0, 8.0]


def test_noise_floor_is_the_split_half_jsd(tmp_path):
    jsd = dict(bins=20, ranges=BOX)
    g = torch.Generator().manual_seed(1)
    same = torch.rand(4000, 2, generator=g) * 0.5
    ref = {"frames": torch.cat([same, same]), "chain": torch.tensor([0] * 4000 + [1] * 4000)}
    assert noise_floor(ref, jsd) == pytest.approx(0.0, abs=1e-12)
    apart = torch.cat([same - 0.9, same + 0.5])  # halves in disjoint cells
    assert noise_floor({"frames": apart, "chain": ref["chain"]}, jsd) == pytest.approx(1.0)
    assert math.isnan(noise_floor({"frames": same, "chain": torch.zeros(4000, dtype=torch.int64)}, jsd))


def test_check_flags_broken_convergence_rows(tmp_path):
    import json

    from benchmarks.check_summary import check_convergence

    sub = tmp_path / "convergence" / "muller-brown"
    sub.mkdir(parents=True)
    for f in ("paths.npz", "table.md", "convergence.png"):
        (sub / f).write_text("x")
    good = {"method": "geodesic-seeded-shooting", "n_chains": 4, "noise_floor": 0.02, "final_jsd": 0.1,
            "evals_to_2x_floor": None, "curve": [[10, 0.5], [20, 0.1]]}
    rows = [good, dict(good, final_jsd=float("nan")), dict(good, curve=[[20, 0.5], [10, 0.1]]),
            dict(good, evals_to_2x_floor=-1)]
    summary = {"convergence": {"muller-brown": {"status": "finished"}}}
    (sub / "results.json").write_text(json.dumps({"complete": True, "rows": rows[:1]}))
    assert check_convergence(tmp_path, summary) == []
    (sub / "results.json").write_text(json.dumps({"complete": True, "rows": rows}))
    text = "\n".join(check_convergence(tmp_path, summary))
    assert "final_jsd" in text and "decrease" in text and "evals_to_2x_floor = -1" in text
    assert check_convergence(tmp_path, {"convergence": {"muller-brown": {"status": "failed: SystemExit: 2"}}})


def test_suite_runs_convergence_quick_on_muller_brown_and_full_only_with_a_reference(tmp_path):
    from benchmarks.all import convergence_argv

    quick = argparse.Namespace(quick=True, seed=3, reference=None)
    assert convergence_argv("muller-brown", quick, tmp_path) == ["--system", "muller-brown", "--out", str(tmp_path),
                                                                "--seed", "3", "--quick"]
    assert convergence_argv("aldp-2d", quick, tmp_path) is None
    full = argparse.Namespace(quick=False, seed=0, reference=tmp_path)
    assert convergence_argv("muller-brown", full, tmp_path) is None  # no reference file there
    _reference(tmp_path / "reference_muller-brown.npz")
    assert convergence_argv("muller-brown", full, tmp_path)[-2:] == ["--reference",
                                                                     str(tmp_path / "reference_muller-brown.npz")]


def _line_seed():
    from tps.baselines import transition_segments
    from tps.systems import load

    mb = load("muller-brown")
    line = torch.stack([torch.lerp(mb.endpoints["A"], mb.endpoints["B"], float(s)) for s in torch.linspace(0, 1, 30)])
    return transition_segments(line[None], mb.states["A"], mb.states["B"])[0]  # 28 frames, A -> B


@pytest.mark.parametrize("until", ["decorrelated", "accepted"])
def test_relaxation_stops_each_chain_once_it_left_its_seed_and_is_counted_once(monkeypatch, until):
    from benchmarks import common_convergence
    from benchmarks.convergence import shooting_arm

    seen = []
    relax = common_convergence.TorchChains.relax

    def spy(self, chains, max_rounds, seed, **kw):
        seen.append((list(chains), relax(self, chains, max_rounds, seed, **kw)))
        return seen[-1][1]

    monkeypatch.setattr(common_convergence.TorchChains, "relax", spy)
    torch.manual_seed(0)
    setup = make_setup("muller-brown")
    seed = _line_seed()
    ref = {"frames": torch.rand(2000, 2) * torch.tensor([2.7, 2.5]) + torch.tensor([-1.5, -0.5]),
           "chain": torch.arange(2000) % 2}
    max_rounds, offset = 10, 123
    row, _ = shooting_arm(setup, "a1", [seed] * 4, offset, ref, 0.1, dict(rounds=1, relax_rounds=max_rounds,
                                                                          relax_until=until, arm_time_s=60.0), 1)
    (seeds, r), = seen
    per_chain = row["relax_rounds_per_chain"]
    assert per_chain == r.rounds and row["relax_rounds"] == max(per_chain) <= max_rounds
    # per-chain stopping: a chain that left its seed early stops while the others go on
    assert min(per_chain) < max(per_chain)
    stopped = r.decorrelated if until == "decorrelated" else [a > 0 for a in r.accepted]
    assert all(done for n, done in zip(per_chain, stopped) if n < max_rounds)  # early stop only by the rule
    assert row["chains_relaxed"] == sum(r.decorrelated) and row["chains_relax_accepted"] == sum(a > 0 for a in r.accepted)
    if until == "accepted":  # stopped at the first accepted trial
        assert max(r.accepted) == 1 and row["chains_relax_accepted"] >= sum(n < max_rounds for n in per_chain)
    else:
        assert row["chains_relaxed"] >= sum(n < max_rounds for n in per_chain)
    for path, start, done in zip(r.paths, seeds, r.decorrelated):  # decorrelated: no frame of the seed left
        if done:
            assert not (path[:, None, :] == start[None, :, :]).all(-1).any()
    # the seeds' frames are the initial paths' (in `offset`); only the relaxation trials are added
    assert row["relax_evals"] == sum(r.round_evals) == r.n_energy_evals - sum(len(s) for s in seeds) > 0
    assert row["n_energy_evals"] == offset + row["relax_evals"] + row["sampling_evals"]
    assert row["sampling_evals"] > 0 and row["curve"][0][0] == offset
    assert row["relax_acceptance_rate"] == pytest.approx(sum(r.accepted) / sum(r.rounds))


def test_bad_model_and_centre_noise_exit_2_and_write_nothing(tmp_path, capsys):
    ref = _reference(tmp_path / "ref.npz")
    garbage = tmp_path / "model.pt"
    garbage.write_bytes(b"not a checkpoint")
    for kw, text in (({"model": tmp_path / "missing.pt"}, "no such file"), ({"model": garbage}, "cannot be read"),
                     ({"centre_noise": -1.0}, "finite number >= 0"), ({"centre_noise": float("nan")}, "got nan")):
        args = _args(tmp_path, ref, **kw)
        with pytest.raises(SystemExit) as stop:
            run(args)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        option = "--model" if "model" in kw else "--centre-noise"
        assert len(err) == 1 and err[0].startswith(f"error: {option}") and text in err[0], err
        assert not (tmp_path / "out").exists()


def test_model_checkpoint_serves_the_geodesic_arm_and_its_training_is_recorded(tmp_path):
    import hashlib
    import json

    from tps.cli import main

    model = tmp_path / "mb.pt"
    assert main(["train", "muller-brown", "--out", str(model), "--steps", "5", "--data-steps", "300", "--chains", "20",
                 "--hidden", "8", "--layers", "1", "--quiet"]) == 0
    with pytest.raises(ValueError, match="^--model: "):  # a Muller-Brown model does not fit alanine dipeptide
        prepare(_args(tmp_path, None, system="aldp-2d", model=model, arms="c"))
    ref = _reference(tmp_path / "ref.npz")
    run(_args(tmp_path, ref, arms="c", geodesic_paths=4, model=model, centre_noise=0.5))
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    training = 300 * 20  # data MD steps x chains of the recipe
    assert res["settings"]["model"] == {"source": str(model), "path": str(model), "sha256": sha,
                                        "n_training_energy_evals": training}
    assert res["geodesic"]["model"] == str(model) and res["geodesic"]["n_training"] == training
    row, = res["rows"]
    assert row["arm"] == "c" and row["model"] == str(model) and row["n_training_energy_evals"] == training
    assert res["settings"]["centre_noise"] == res["geodesic"]["centre_noise"] == row["centre_noise"] == 0.5
