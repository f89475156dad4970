"""Fuzzed files into the :mod:`tps.io` loaders: truncated, corrupted, wrong-format and
wrong-molecule path ensembles (npz, DCD + sidecar, PDB, HDF5) and results JSON.

Contract: every file either loads (a consistent ``Paths`` with finite frames) or raises
``ValueError`` whose message starts with the argument at fault (``path:`` or ``top:``/
``topology:``); never a raw ``KeyError``/``EOFError``/``BadZipFile``/HDF5 error.
"""

import os
import shutil

import mdtraj
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tps.io import load_paths, load_results, save_paths, save_results
from tps.sampling import Paths
from tps.systems.alanine_dipeptide import data_dir

FACTOR = float(os.environ.get("TPS_FUZZ_EXAMPLES", "1"))


def n_examples(n):
    return max(1, int(n * FACTOR))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One small alanine dipeptide ensemble (2 paths x 3 frames) in every format, and a topology
    of another molecule (the first 10 atoms)."""
    c5 = mdtraj.load_pdb(str(data_dir() / "C5.pdb"))
    gen = torch.Generator().manual_seed(0)
    frames = torch.as_tensor(c5.xyz[0], dtype=torch.float64) + 0.01 * torch.randn(2, 3, 22, 3, generator=gen,
                                                                                     dtype=torch.float64)
    paths = Paths(frames, torch.randn(2, 3, generator=gen, dtype=torch.float64), 10, 2.494, {"sampler": "test"})
    d = tmp_path_factory.mktemp("saved")
    files = {ext: save_paths(paths, d / f"paths{ext}", topology=c5.topology) for ext in (".npz", ".dcd", ".h5", ".pdb")}
    return files, c5.topology, c5.topology.subset(range(10))


_kinds = st.sampled_from(["truncate", "flip", "random", "other-format", "sidecar", "wrong-molecule", "empty"])


def _damage(data, kind, files, ext, dst):
    """Copy the ``ext`` ensemble into ``dst`` with one kind of damage; return the path to load."""
    main = dst / f"paths{ext}"
    for f in files[ext]:
        shutil.copy(f, dst / f.name)
    raw = main.read_bytes()
    if kind == "truncate":
        main.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")])
    elif kind == "flip":
        b = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 8), label="n_flips")):
            i = data.draw(st.integers(0, len(b) - 1), label="at")
            b[i] ^= data.draw(st.integers(1, 255), label="mask")
        main.write_bytes(bytes(b))
    elif kind == "random":
        main.write_bytes(data.draw(st.binary(max_size=200), label="bytes"))
    elif kind == "empty":
        main.write_bytes(b"")
    elif kind == "other-format":
        other = data.draw(st.sampled_from([e for e in files if e != ext]), label="from")
        main.write_bytes(files[other][0].read_bytes())
    elif kind == "sidecar":
        side = dst / f"paths{ext}.json"
        text = side.read_text() if side.exists() else '{"format": "tps-paths"}'
        side.write_text(text[: data.draw(st.integers(0, len(text)), label="side_cut")]
                        + data.draw(st.sampled_from(["", "}", '"x"', "{}", "[1, 2]"]), label="tail"))
    return main


@settings(max_examples=n_examples(120))
@given(ext=st.sampled_from([".npz", ".dcd", ".h5", ".pdb"]), kind=_kinds, data=st.data())
def test_damaged_path_files_load_or_name_the_argument(saved, tmp_path_factory, ext, kind, data):
    files, top, other_top = saved
    dst = tmp_path_factory.mktemp("damaged")
    path = _damage(data, kind, files, ext, dst)
    top_arg = other_top if kind == "wrong-molecule" else data.draw(st.sampled_from([None, top]), label="top")
    try:
        p = load_paths(path, top=top_arg)
    except (ValueError, FileNotFoundError) as exc:
        assert str(exc).startswith(("path: ", "top: ", "topology: ")), repr(exc)
        if kind == "wrong-molecule":
            assert "atoms" in str(exc)
        return
    assert kind not in ("wrong-molecule", "empty", "random"), kind
    assert p.frames.shape[-2:] == (22, 3) and torch.isfinite(p.frames).all()
    assert p.energies.shape == p.frames.shape[:2]


@settings(max_examples=n_examples(60))
@given(kind=st.sampled_from(["truncate", "random", "text"]), data=st.data())
def test_damaged_results_load_or_name_the_path(tmp_path_factory, kind, data):
    f = save_results({"method": "geodesic", "minmax": -40.5, "wall_s": float("nan")},
                     tmp_path_factory.mktemp("r") / "results.json")
    raw = f.read_bytes()
    if kind == "truncate":
        f.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    elif kind == "random":
        f.write_bytes(data.draw(st.binary(max_size=100)))
    else:
        f.write_text(data.draw(st.text(max_size=60)))
    try:
        load_results(f)
    except ValueError as exc:
        assert str(exc).startswith("path: "), repr(exc)
