"""tps.io: path ensembles (npz, DCD, PDB, HDF5) and results (JSON) round trips, atomic writes, errors."""

import json
import math
import os

import mdtraj
import numpy as np
import pytest
import torch

import tps.io
from tps.io import load_paths, load_results, save_paths, save_results
from tps.sampling import Paths
from tps.systems.alanine_dipeptide import data_dir

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def c5():
    """Alanine dipeptide C5 structure: mdtraj trajectory of one frame (22 atoms, nm)."""
    return mdtraj.load_pdb(str(data_dir() / "C5.pdb"))


def molecular_paths(c5, *, n_paths=3, n_frames=6, lengths=None, seed=0):
    """Paths of C5 with per-frame noise of 0.02 nm (float64 frames, kJ/mol-like energies)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.as_tensor(c5.xyz[0], dtype=torch.float64)
    frames = base + 0.02 * torch.randn(n_paths, n_frames, *base.shape, generator=gen, dtype=torch.float64)
    energies = -100.0 + 10.0 * torch.rand(n_paths, n_frames, generator=gen, dtype=torch.float64)
    info = {"sampler": "test", "steps_per_point": 15, "note": None}
    if lengths is not None:
        lengths = torch.tensor(lengths)
        for i, n in enumerate(lengths.tolist()):  # the pad_paths convention: repeat the last frame
            frames[i, n:] = frames[i, n - 1]
            energies[i, n:] = energies[i, n - 1]
        info["lengths"] = lengths
        info["chain"] = torch.arange(n_paths)
    return Paths(frames, energies, 1234, 2.494, info)


def assert_info_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert isinstance(b[key], torch.Tensor) and a[key].dtype == b[key].dtype
            assert torch.equal(a[key], b[key])
        else:
            assert a[key] == b[key]


# ----------------------------------------------------------------------------- npz
def test_npz_round_trip_is_exact_for_2d_paths(tmp_path):
    gen = torch.Generator().manual_seed(1)
    paths = Paths(torch.randn(4, 7, 2, generator=gen, dtype=torch.float64),
                  torch.randn(4, 7, generator=gen, dtype=torch.float64), 4321, 12.5,
                  {"sampler": "annealed-langevin", "dt": 1e-4, "lengths": torch.tensor([7, 3, 5, 7]),
                   "nan_value": float("nan"), "grid": np.arange(3.0)})
    files = save_paths(paths, tmp_path / "mb" / "paths.npz")
    assert files == [tmp_path / "mb" / "paths.npz"]
    back = load_paths(files[0])
    assert back.frames.dtype == torch.float64 and torch.equal(back.frames, paths.frames)
    assert torch.equal(back.energies, paths.energies)
    assert (back.n_energy_evals, back.kT) == (4321, 12.5)
    assert torch.equal(back.info["lengths"], paths.info["lengths"])
    assert math.isnan(back.info["nan_value"])
    assert isinstance(back.info["grid"], np.ndarray) and np.array_equal(back.info["grid"], np.arange(3.0))
    assert back.info["sampler"] == "annealed-langevin" and back.info["dt"] == 1e-4


def test_list_of_ragged_arrays_is_padded_with_lengths(tmp_path):
    per_path = [np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32) for n in (4, 2, 3)]
    save_paths(per_path, tmp_path / "p.npz", energies=[np.arange(n, dtype=float) for n in (4, 2, 3)], kT=1.0)
    back = load_paths(tmp_path / "p.npz")
    assert back.frames.shape == (3, 4, 2) and back.info["lengths"].tolist() == [4, 2, 3]
    for i, p in enumerate(per_path):
        assert np.array_equal(back.frames[i, :len(p)].numpy(), p)
        assert np.array_equal(back.frames[i, len(p):].numpy(), np.repeat(p[-1:], 4 - len(p), 0))
    assert back.energies[1].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert back.n_energy_evals == 0 and back.kT == 1.0


# ----------------------------------------------------------------------- molecules
@pytest.mark.parametrize("ext, atol", [(".h5", 0.0), (".dcd", 1e-6), (".pdb", 6e-5)])
def test_molecular_round_trip(tmp_path, c5, ext, atol):
    paths = molecular_paths(c5, lengths=[6, 3, 5])
    files = save_paths(paths, tmp_path / f"paths{ext}", topology=c5.topology)
    back = load_paths(files[0], top=c5.topology)
    assert back.frames.shape == paths.frames.shape and back.frames.dtype == torch.float32
    expected = paths.frames.float() if ext == ".h5" else paths.frames
    np.testing.assert_allclose(back.frames.double().numpy(), expected.double().numpy(), rtol=0, atol=atol)
    assert torch.equal(back.energies, paths.energies)  # float64, exact
    assert (back.n_energy_evals, back.kT) == (paths.n_energy_evals, paths.kT)
    assert_info_equal(back.info, paths.info)
    # mdtraj opens the file by itself: all true frames, one path after another, in nm
    traj = mdtraj.load(str(files[0]), top=c5.topology) if ext == ".dcd" else mdtraj.load(str(files[0]))
    assert traj.n_atoms == 22 and traj.n_frames == 6 + 3 + 5
    np.testing.assert_allclose(traj.xyz[6:9], paths.frames[1, :3].numpy(), atol=max(atol, 1e-6))
    assert [a.name for a in traj.topology.atoms] == [a.name for a in c5.topology.atoms]


def test_dcd_split_writes_one_file_per_path(tmp_path, c5):
    paths = molecular_paths(c5, n_paths=3, n_frames=4)
    files = save_paths(paths, tmp_path / "paths.dcd", topology=c5.topology, split=True)
    assert [f.name for f in files] == ["paths_000.dcd", "paths_001.dcd", "paths_002.dcd", "paths.dcd.json"]
    assert not (tmp_path / "paths.dcd").exists()
    for i in range(3):
        traj = mdtraj.load(str(files[i]), top=c5.topology)
        np.testing.assert_allclose(traj.xyz, paths.frames[i].numpy(), atol=1e-6)
    back = load_paths(tmp_path / "paths.dcd")
    np.testing.assert_allclose(back.frames.numpy(), paths.frames.numpy(), atol=1e-6)
    assert torch.equal(back.energies, paths.energies)


def test_openmm_topology_file_topology_and_max_paths(tmp_path, c5):
    from tps.systems.alanine_dipeptide import topology as openmm_topology

    paths = molecular_paths(c5, n_paths=4, n_frames=3, lengths=[3, 2, 3, 1])
    save_paths(paths, tmp_path / "a.h5", topology=openmm_topology(), max_paths=2)
    back = load_paths(tmp_path / "a.h5", top=str(data_dir() / "C5.pdb"))
    assert back.n_paths == 2 and back.info["lengths"].tolist() == [3, 2]
    assert back.info["chain"].tolist() == [0, 1]


def test_sidecar_free_dcd_reads_as_one_path(tmp_path, c5):
    traj = mdtraj.Trajectory(np.repeat(c5.xyz, 5, axis=0), c5.topology)
    traj.save_dcd(str(tmp_path / "md.dcd"))
    back = load_paths(tmp_path / "md.dcd", top=c5.topology)
    assert back.frames.shape == (1, 5, 22, 3) and torch.isnan(back.energies).all()


# --------------------------------------------------------------------------- errors
def test_bad_inputs_name_the_argument(tmp_path, c5):
    paths = molecular_paths(c5)
    with pytest.raises(ValueError, match=r"path: unknown extension '\.xyz'.*\.npz, \.dcd, \.pdb, \.h5"):
        save_paths(paths, tmp_path / "p.xyz")
    with pytest.raises(ValueError, match="topology: required for .dcd"):
        save_paths(paths, tmp_path / "p.dcd")
    with pytest.raises(ValueError, match="topology: has 21 atoms but the frames have 22"):
        save_paths(paths, tmp_path / "p.pdb", topology=c5.atom_slice(range(21)).topology)
    with pytest.raises(ValueError, match=r"paths: \.h5 files need frames of shape"):
        save_paths(Paths(torch.zeros(2, 3, 2), torch.zeros(2, 3), 0, 1.0), tmp_path / "p.h5", topology=c5.topology)
    with pytest.raises(ValueError, match="split: only for .dcd"):
        save_paths(paths, tmp_path / "p.pdb", topology=c5.topology, split=True)
    with pytest.raises(ValueError, match="energies: expected shape"):
        save_paths(np.zeros((2, 3, 2)), tmp_path / "p.npz", energies=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="paths: expected at least one path"):
        save_paths([], tmp_path / "p.npz")
    with pytest.raises(FileNotFoundError, match="path: no such file"):
        load_paths(tmp_path / "missing.npz")
    save_paths(paths, tmp_path / "ok.h5", topology=c5.topology)
    with pytest.raises(ValueError, match="topology: has 21 atoms"):
        load_paths(tmp_path / "ok.h5", top=c5.atom_slice(range(21)).topology)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a path ensemble"):
        load_paths(tmp_path / "other.npz")
    assert sorted(os.listdir(tmp_path)) == ["ok.h5", "other.npz"]  # failed calls wrote nothing


# ------------------------------------------------------------------------- atomicity
@pytest.mark.parametrize("ext", [".npz", ".dcd", ".h5"])
def test_failing_write_leaves_old_files_intact(tmp_path, c5, monkeypatch, ext):
    paths = molecular_paths(c5)
    files = save_paths(paths, tmp_path / f"paths{ext}", topology=c5.topology)
    old = {f.name: f.read_bytes() for f in files}

    def failing(*args, **kwargs):  # half-write the temporary file, then fail
        target = args[0] if ext == ".npz" else args[1]  # savez(file) / Trajectory.save_*(self, file)
        if hasattr(target, "write"):
            target.write(b"partial")
        else:
            with open(target, "wb") as fh:
                fh.write(b"partial")
        raise OSError("disk full")

    if ext == ".npz":
        monkeypatch.setattr(np, "savez_compressed", failing)
    elif ext == ".dcd":
        monkeypatch.setattr(mdtraj.Trajectory, "save_dcd", failing)
    else:
        monkeypatch.setattr(mdtraj.Trajectory, "save_hdf5", failing)
    with pytest.raises(OSError, match="disk full"):
        save_paths(molecular_paths(c5, seed=1), tmp_path / f"paths{ext}", topology=c5.topology)
    assert {f.name: f.read_bytes() for f in files} == old
    assert sorted(os.listdir(tmp_path)) == sorted(old)  # no temporary file left behind


# --------------------------------------------------------------------------- results
def test_results_round_trip_with_numpy_torch_and_nonfinite(tmp_path):
    rows = [{"method": "geodesic", "minmax": np.float32(-40.5), "n_paths": np.int64(100),
             "hits": torch.tensor(0.75, dtype=torch.float64), "profile": torch.arange(3.0),
             "grid": np.eye(2), "wall_s": float("nan"), "upper": np.inf, "lower": -math.inf,
             "ok": np.bool_(True), "out": tmp_path / "x", "tags": ("a", "b")}]
    f = save_results(rows, tmp_path / "r" / "results.json")
    text = f.read_text()
    json.loads(text)  # strict JSON: no NaN/Infinity tokens
    assert "NaN" in text and '"Infinity"' in text and "-Infinity" in text
    back = load_results(f)[0]
    assert back["minmax"] == -40.5 and back["n_paths"] == 100 and back["hits"] == 0.75
    assert back["profile"] == [0.0, 1.0, 2.0] and back["grid"] == [[1.0, 0.0], [0.0, 1.0]]
    assert math.isnan(back["wall_s"]) and back["upper"] == math.inf and back["lower"] == -math.inf
    assert back["ok"] is True and back["out"] == str(tmp_path / "x") and back["tags"] == ["a", "b"]
    assert load_results(f, nonfinite=False)[0]["wall_s"] == "NaN"


def test_results_errors_and_atomicity(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match=r"results\[0\]\['model'\]: cannot write an object of type object"):
        save_results([{"model": object()}], tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    f = save_results({"a": 1}, tmp_path / "r.json")
    old = f.read_bytes()

    def failing(self, *args, **kwargs):
        raise OSError("disk full")

    from pathlib import Path

    monkeypatch.setattr(Path, "write_text", failing)
    with pytest.raises(OSError, match="disk full"):
        save_results({"a": 2}, f)
    monkeypatch.undo()
    assert f.read_bytes() == old and sorted(os.listdir(tmp_path)) == ["r.json"]
    with pytest.raises(FileNotFoundError, match="path: no such file"):
        load_results(tmp_path / "missing.json")


@pytest.mark.parametrize("writer", ["write_text", "write_json", "save_results", "save_torch", "save_npz"])
def test_interrupted_mid_write_leaves_the_old_file(tmp_path, monkeypatch, writer):
    """Interrupt a write after half of its bytes reached the disk (Ctrl-C in the middle): the old
    file must be intact and no temporary file left. An in-place write fails this test; the test
    above cannot tell, its failure comes before any byte is written."""
    import pathlib

    target = tmp_path / ("out.npz" if writer == "save_npz" else "out.pt" if writer == "save_torch" else "out.json")
    value = {"a": list(range(200))}
    write = {"write_text": lambda: tps.io.write_text(target, json.dumps(value)),
             "write_json": lambda: tps.io.write_json(target, value),
             "save_results": lambda: save_results(value, target),
             "save_torch": lambda: tps.io.save_torch(target, value),
             "save_npz": lambda: tps.io.save_npz(target, a=np.arange(200))}[writer]
    write()
    old = target.read_bytes()
    value = {"a": list(range(300))}

    def half_then_interrupt(data: bytes, dest):
        with open(dest, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
        raise KeyboardInterrupt

    real_save, real_savez = torch.save, np.savez_compressed

    def write_text(self, text, *args, **kwargs):
        half_then_interrupt(text.encode(), self)

    def save(obj, f, *args, **kwargs):
        real_save(obj, tmp_path / "full.bin")
        half_then_interrupt((tmp_path / "full.bin").read_bytes(), f)

    def savez(f, **arrays):
        real_savez(tmp_path / "full.npz", **arrays)
        half_then_interrupt((tmp_path / "full.npz").read_bytes(), f)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(np, "savez_compressed", savez)
    with pytest.raises(KeyboardInterrupt):
        write()
    monkeypatch.undo()
    assert target.read_bytes() == old  # the old file, whole
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith(".")) == []  # no temporary left


def test_existing_atomic_helpers_still_exported(tmp_path):
    for name in ("atomic_path", "write_text", "write_json", "save_torch", "save_npz"):
        assert callable(getattr(tps.io, name))
    assert tps.io.write_json(tmp_path / "x.json", {"a": 1}).read_text() == '{\n  "a": 1\n}\n'


def test_atomic_files_get_umask_permissions(tmp_path):
    """Files written atomically are readable like any other file (mkstemp alone gives 0600)."""
    import os
    import stat

    from tps.io import write_text

    old = os.umask(0o022)
    try:
        target = write_text(tmp_path / "x.txt", "hi")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


# ------------------------------------------------------------------ JSON conventions
def _legacy_cli_jsonable(obj):
    """The CLI's former private converter (tps/cli/_common.py ``_jsonable`` at the base commit),
    kept here verbatim in behaviour as the reference the ``"null"`` convention must reproduce."""
    from pathlib import Path

    if isinstance(obj, dict):
        return {str(k): _legacy_cli_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_legacy_cli_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _legacy_cli_jsonable(obj.item())
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    return obj


def _mixed_record(tmp_path):
    return {"method": "spacetime-geodesic", "wall_s": float("nan"), "max_step": float("inf"),
            "low": -math.inf, "n": np.int64(7), "x": np.float32(0.25), "t": torch.tensor(float("nan")),
            "ok": np.bool_(True), "out": tmp_path / "run", 3: "int key", (1, 2): "tuple key",
            "nested": [{"e": np.float64(-1.5), "f": [1.0, float("nan")]}], "tuple": (1, 2.5),
            "grid": np.array([[1.0, np.nan], [np.inf, 0.0]]), "none": None}


def test_null_convention_reproduces_the_cli_records(tmp_path):
    """``nonfinite="null"`` gives the bytes of the CLI's results.json (old ``_jsonable`` then
    ``save_results``) and of its stage keys (``json.dumps(_jsonable(parts), sort_keys=True)``)."""
    from tps.io import json_text, to_json_compatible

    rec = _mixed_record(tmp_path)
    old_file = save_results(_legacy_cli_jsonable(rec), tmp_path / "old.json").read_bytes()
    new_file = save_results(rec, tmp_path / "new.json", nonfinite="null").read_bytes()
    assert new_file == old_file
    assert b'"wall_s": null' in new_file and b'"max_step": "inf"' in new_file
    plain = {k: v for k, v in rec.items() if k != "grid"}  # arrays never reached json.dumps directly
    assert (json_text(plain, nonfinite="null", indent=None, sort_keys=True)
            == json.dumps(_legacy_cli_jsonable(plain), sort_keys=True))
    assert type(to_json_compatible(type("S", (str,), {})("abc"), nonfinite="null")) is str


def test_tokens_convention_is_what_write_json_wrote(tmp_path):
    """``nonfinite="tokens"`` leaves plain records as they are: the benchmarks' results.json bytes."""
    from tps.io import json_text, write_json

    rec = {"suite": "x", "methods": [{"wall_s": float("nan"), "hi": math.inf, "lo": -math.inf, "n": 3}],
           "notes": {"a": "b"}, "flag": True, "none": None}
    old = write_json(tmp_path / "old.json", rec).read_text()
    assert json_text(rec, nonfinite="tokens") + "\n" == old
    assert save_results(rec, tmp_path / "new.json", nonfinite="tokens").read_text() == old
    assert "NaN" in old and "Infinity" in old
    with pytest.raises(ValueError, match="nonfinite: expected one of strings, null, tokens"):
        json_text(rec, nonfinite="none")


def test_strings_convention_round_trips(tmp_path):
    from tps.io import NONFINITE_STYLES, to_json_compatible

    assert NONFINITE_STYLES == ("strings", "null", "tokens")
    row = {"a": float("nan"), "b": [math.inf, -math.inf], "c": np.float64(2.0)}
    assert to_json_compatible(row) == {"a": "NaN", "b": ["Infinity", "-Infinity"], "c": 2.0}
    back = load_results(save_results(row, tmp_path / "r.json"))
    assert math.isnan(back["a"]) and back["b"] == [math.inf, -math.inf] and back["c"] == 2.0


# ------------------------------------------------------------------ reference ensembles
def test_reference_ensemble_round_trip_and_old_layout(tmp_path):
    """The npz holds exactly the arrays of the benchmarks' former writer (frames float32, chain
    int32, meta JSON text with bare NaN tokens); reading gives float64/int64 tensors back."""
    from tps.io import load_reference_ensemble, save_reference_ensemble

    gen = torch.Generator().manual_seed(3)
    blocks = [torch.randn(4, 2, generator=gen, dtype=torch.float64), torch.randn(2, 2, generator=gen, dtype=torch.float64)]
    meta = {"system": "muller-brown", "counts": {"kept_paths": 2}, "acceptance_rate": float("nan")}
    f = save_reference_ensemble(tmp_path / "r" / "ref.npz", blocks, [1, 7], meta)
    with np.load(f) as z:
        assert z["frames"].dtype == np.float32 and z["chain"].dtype == np.int32
        np.testing.assert_array_equal(z["frames"], torch.cat(blocks).numpy().astype(np.float32))
        assert str(z["meta"]) == json.dumps(meta)
    ref = load_reference_ensemble(f)
    assert ref["chain"].tolist() == [1, 1, 1, 1, 7, 7] and ref["frames"].dtype == torch.float64
    assert ref["meta"]["counts"] == {"kept_paths": 2} and math.isnan(ref["meta"]["acceptance_rate"])
    empty = load_reference_ensemble(save_reference_ensemble(tmp_path / "e.npz", [], [], {"system": "x"}))
    assert tuple(empty["frames"].shape) == (0, 2)
    with pytest.raises(FileNotFoundError, match="path: no such file"):
        load_reference_ensemble(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="one chain index per block"):
        save_reference_ensemble(tmp_path / "bad.npz", blocks, [1], meta)
