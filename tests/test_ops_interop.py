"""OpenPathSampling interoperability by files (tps.interop.ops, tps/interop/ops_to_tps.py, tps.interop.ops_compare, CLI).

The OPS side itself (numpy < 2) cannot run here; these tests pin down the files both sides
exchange: the exported trajectories load in mdtraj with the right frames and topology and form
proper A -> B transitions under an independent (mdtraj) evaluation of the exported states, the
states agree with the package's own states, and a file in the import script's format reads
back through tps.io.load_paths.
"""

import ast
import json
import math

import mdtraj
import numpy as np
import pytest
import torch

from tps.cli import main
from tps.io import load_paths, save_paths
from tps.interop import ops_to_tps
from tps.interop.ops import IMPORT_SCRIPT, export_ops, read_states, state_definitions, states_from_definitions
from tps.interop.ops_compare import compare_ensembles, noise_floor
from tps.core import Paths
from tps.systems import alanine_dipeptide as aldp


@pytest.fixture(scope="module")
def system():
    return aldp.load(platform="Reference")


@pytest.fixture(scope="module")
def minima():
    return aldp.minimized_structures()


def _path(minima, n_between=17):
    """C7ax (B) -> C5 (A) -> C7eq (A) -> linear Cartesian interpolation -> C7ax (B) -> C5: one A -> B transition.

    With 17 interpolation frames, frames 0-8 of the interpolation have (phi, psi) in C7eq, the
    next ones in neither state, then in C7ax.
    """
    t = np.linspace(0.0, 1.0, n_between)[:, None, None]
    lin = (1 - t) * minima["C7eq"] + t * minima["C7ax"]
    return np.concatenate([minima["C7ax"][None], minima["C5"][None], lin, minima["C7ax"][None], minima["C5"][None]])


def _membership(traj, definitions):
    """(in A, in B) of every frame of an mdtraj trajectory, computed with mdtraj and numpy only."""
    angles = mdtraj.compute_dihedrals(traj, np.asarray(definitions["cv"]["atom_indices"]))
    periods = np.asarray(definitions["cv"]["periods"])
    out = []
    for label in ("A", "B"):
        inside = np.zeros(traj.n_frames, dtype=bool)
        for ball in definitions["states"][label]["balls"]:
            d = angles - np.asarray(ball["center"])
            d = np.remainder(d + periods / 2, periods) - periods / 2
            inside |= np.linalg.norm(d, axis=1) <= ball["radius"]
        out.append(inside)
    return out


def test_states_json_matches_the_package_states(system):
    d = state_definitions(system)
    top = mdtraj.Topology.from_openmm(aldp.topology())
    probe = mdtraj.Trajectory(np.zeros((1, 22, 3)), top)
    assert d["cv"]["atom_indices"] == [mdtraj.compute_phi(probe)[0][0].tolist(), mdtraj.compute_psi(probe)[0][0].tolist()]
    assert d["cv"]["periods"] == [2 * math.pi, 2 * math.pi]
    minima = aldp.reference_minima()["minima"]
    for label, names in (("A", ["C5", "C7eq"]), ("B", ["C7ax"])):
        balls = d["states"][label]["balls"]
        assert [b["name"] for b in balls] == names
        for b in balls:
            assert b["center"] == pytest.approx([minima[b["name"]]["phi_rad"], minima[b["name"]]["psi_rad"]], abs=1e-12)
            assert b["radius"] == aldp.STATE_RADIUS
    assert d["temperature_K"] == pytest.approx(aldp.TEMPERATURE)
    # the volumes rebuilt from the JSON classify configurations as the system's own balls do
    a, b = states_from_definitions(d)
    x = torch.as_tensor(np.stack([aldp.minimized_structures()[k] for k in aldp.ENDPOINT_NAMES]))
    s = system.states
    assert torch.equal(a(x), s["C5"](x) | s["C7eq"](x)) and torch.equal(b(x), s["C7ax"](x))
    assert a(x).tolist() == [True, False, True] and b(x).tolist() == [False, True, False]


def test_export_writes_the_transition_segment(tmp_path, system, minima):
    path = _path(minima)
    out = export_ops([path], system, tmp_path / "export")
    d = read_states(out.states)
    traj = mdtraj.load(str(out.trajectories[0]), top=str(out.topology))
    in_a, in_b = _membership(traj, d)
    assert in_a[0] and in_b[-1] and not (in_a[1:-1] | in_b[1:-1]).any()
    # the segment is frames [last A before the first B entry after A, that entry] of the input
    full = mdtraj.Trajectory(path, traj.topology)
    fa, fb = _membership(full, d)
    first_b = next(i for i in range(2, len(path)) if fb[i])
    last_a = max(i for i in range(first_b) if fa[i])
    assert out.n_frames == (first_b - last_a + 1,) == (traj.n_frames,) and traj.n_frames >= 4
    np.testing.assert_allclose(traj.xyz, path[last_a:first_b + 1], atol=1e-5)  # float32 nm, DCD Angstrom on disk
    assert [a.name for a in traj.topology.atoms] == [a.name for a in mdtraj.Topology.from_openmm(aldp.topology()).atoms]
    assert d["trajectories"] == [{"file": "transition_000.dcd", "n_frames": traj.n_frames, "source_path": 0}]
    assert out.script.read_text() == IMPORT_SCRIPT.read_text()
    import openmm

    omm = openmm.XmlSerializer.deserialize(out.system.read_text())
    assert omm.getNumParticles() == 22 and omm.getNumConstraints() == system.potential.system.getNumConstraints()
    integ = openmm.XmlSerializer.deserialize(out.integrator.read_text())
    assert integ.getTemperature().value_in_unit(openmm.unit.kelvin) == pytest.approx(300.0)


def test_export_drops_padding_and_skips_paths_without_transition(tmp_path, system, minima):
    good = _path(minima)
    stay = np.repeat(minima["C5"][None], 5, axis=0)                      # never leaves A
    width = len(good)
    frames = np.stack([np.concatenate([stay, np.repeat(stay[-1:], width - 5, axis=0)]), good])
    paths = Paths(torch.as_tensor(frames), torch.zeros(2, width, dtype=torch.float64), 0, system.kT,
                  {"lengths": torch.tensor([5, width])})
    out = export_ops(paths, system, tmp_path, max_paths=3)
    assert out.source_paths == (1,) and out.skipped == (0,) and len(out.trajectories) == 1


def test_export_rejects_bad_input(tmp_path, system, minima):
    backwards = _path(minima)[2:-2][::-1]                               # C7ax -> C7eq only: B -> A
    with pytest.raises(ValueError, match="none of the 1 paths goes from state A to state B"):
        export_ops([backwards], system, tmp_path)
    with pytest.raises(ValueError, match=r"paths\[0\]: expected frames of shape \(n_frames, 22, 3\)"):
        export_ops([_path(minima)[:, :21]], system, tmp_path)
    top = mdtraj.Topology.from_openmm(aldp.topology())
    with pytest.raises(ValueError, match="topology"):
        export_ops([_path(minima)], system, tmp_path, topology=top.subset(range(21)))
    renamed = mdtraj.Topology.from_openmm(aldp.topology())
    renamed.atom(0).name = "X"
    with pytest.raises(ValueError, match="topology"):
        export_ops([_path(minima)], system, tmp_path, topology=renamed)
    with pytest.raises(ValueError, match="state_a: unknown state 'alphaR'"):
        export_ops([_path(minima)], system, tmp_path, state_a="alphaR", state_b="C7ax")
    with pytest.raises(ValueError, match="max_paths"):
        export_ops([_path(minima)], system, tmp_path, max_paths=0)
    assert not list(tmp_path.iterdir())                                  # nothing written by a failed call


def test_import_script_format_reads_back(tmp_path, minima):
    top = mdtraj.Topology.from_openmm(aldp.topology())
    p1 = mdtraj.Trajectory(_path(minima)[2:9].astype(np.float32), top)
    p2 = mdtraj.Trajectory(_path(minima)[2:6].astype(np.float32), top)
    f = ops_to_tps.write_tps_h5(str(tmp_path / "ops.h5"), [p1, p2], kT=2.49,
                                info={"source": "openpathsampling", "multiplicity": [3, 1]})
    back = load_paths(f)
    assert tuple(back.frames.shape) == (2, 7, 22, 3) and back.info["lengths"].tolist() == [7, 4]
    np.testing.assert_array_equal(back.frames[0].numpy(), p1.xyz)
    np.testing.assert_array_equal(back.frames[1, :4].numpy(), p2.xyz)
    np.testing.assert_array_equal(back.frames[1, 4:].numpy(), np.repeat(p2.xyz[-1:], 3, axis=0))   # padding
    assert back.info["multiplicity"] == [3, 1] and back.kT == 2.49 and torch.isnan(back.energies).all()
    assert mdtraj.load(f).n_frames == 11


def test_import_script_is_standalone_and_selects_paths():
    tree = ast.parse(IMPORT_SCRIPT.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "tps" not in imported and "torch" not in imported

    class T:
        def __init__(self, uuid):
            self.__uuid__ = uuid

    a, b, c = T(1), T(2), T(3)
    chain = [a, a, b, T(2), b, c, a]
    assert ops_to_tps.select(chain, "accepted") == ([a, b, c, a], [2, 3, 1, 1])
    assert ops_to_tps.select(chain, "active") == (chain, [1] * 7)
    with pytest.raises(ValueError, match="mode"):
        ops_to_tps.select(chain, "final")


def test_compare_ensembles(system, minima):
    path = torch.as_tensor(_path(minima))[None]
    ens = Paths(path, torch.zeros(path.shape[:2], dtype=torch.float64), 0, system.kT)
    same = compare_ensembles(ens, ens, system, platform="Reference")
    assert same["path_density_jsd"] == 0.0 and same["max_energy_difference"] == 0.0
    assert same["crossing_distance"] == pytest.approx(0.0, abs=1e-9)
    assert same["ops"]["n_paths"] == 1 and same["ops"]["n_frames"] == same["tps"]["n_frames"]
    # the highest-energy frame of the linear interpolation lies between the two basins
    phi, psi = same["tps"]["crossing_phi_psi"]
    assert -1.35 < phi < 1.05 and -0.71 < psi < 0.94
    # another (coarser) interpolation: different frame density, energies; multiplicity weights count
    coarse = torch.as_tensor(_path(minima, n_between=9))[None]
    other = Paths(coarse, torch.zeros(coarse.shape[:2], dtype=torch.float64), 0, system.kT, {"multiplicity": [4]})
    diff = compare_ensembles(other, ens, system, platform="Reference")
    assert 0.0 < diff["path_density_jsd"] <= 1.0 and diff["ops"]["n_weighted"] == 4
    assert diff["ops"]["n_frames"] == 4 * diff["ops"]["length_mean"]
    # noise floor: two identical paths split into halves agree exactly; two different ones do not
    both = Paths(path.expand(2, -1, -1, -1), torch.zeros(2, path.shape[1], dtype=torch.float64), 0, system.kT)
    assert noise_floor(both, system) == 0.0
    assert noise_floor([path[0], coarse[0]], system) > 0.0                # a list of per-path arrays works too
    with pytest.raises(ValueError, match="at least two"):
        noise_floor(ens, system)


def test_cli_export_and_compare(tmp_path, capsys, minima):
    run = tmp_path / "run"
    save_paths([_path(minima), _path(minima, n_between=9)], run / "paths" / "paths.dcd", topology=aldp.topology(),
               split=True)
    assert main(["export-ops", str(run), "--out", str(tmp_path / "export"), "--quiet"]) == 0
    d = json.loads((tmp_path / "export" / "states.json").read_text())
    assert [t["file"] for t in d["trajectories"]] == ["transition_000.dcd", "transition_001.dcd"]
    capsys.readouterr()
    assert main(["compare-ops", str(tmp_path / "none.h5"), str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tps: error: OPS_H5") and err.count("\n") == 1
    assert main(["export-ops", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "no paths/paths.dcd" in capsys.readouterr().err
    stuck = tmp_path / "stuck"
    save_paths([np.repeat(minima["C5"][None], 4, axis=0)], stuck / "paths" / "paths.dcd", topology=aldp.topology(),
               split=True)
    assert main(["export-ops", str(stuck), "--out", str(tmp_path / "y")]) == 2
    assert "goes from state A to state B" in capsys.readouterr().err


def test_cli_compare_ops_writes_the_cli_json(tmp_path, capsys, minima):
    """A successful ``tps compare-ops``: one JSON line on stdout equal to the ``--out`` file, NaN
    (the noise floor of a one-path ensemble) spelled ``null`` as in every CLI record."""
    run = tmp_path / "run"
    save_paths([_path(minima), _path(minima, n_between=9)], run / "paths" / "paths.dcd", topology=aldp.topology(),
               split=True)
    save_paths([_path(minima)], tmp_path / "ops.h5", topology=aldp.topology())
    capsys.readouterr()
    assert main(["compare-ops", str(tmp_path / "ops.h5"), str(run), "--json", "--out", str(tmp_path / "c.json"),
                 "--bins", "12"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "c.json").read_text())
    assert printed["ops_noise_floor"] is None and printed["tps_noise_floor"] >= 0.0
    assert 0.0 <= printed["path_density_jsd"] <= 1.0 and printed["ops"]["n_paths"] == 1


def test_ops_example_volumes_match_the_tps_balls(system, minima):
    """The OPS script's ball CV (mdtraj + numpy, run inside OPS) gives the distances of tps's own balls."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "ops" / "run_tps_from_tps_paths.py"
    tree = ast.parse(script.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "tps" not in imported and "torch" not in imported
    spec = importlib.util.spec_from_file_location("ops_example", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    d = state_definitions(system)
    frames = _path(minima)
    traj = mdtraj.Trajectory(frames, mdtraj.Topology.from_openmm(aldp.topology()))
    for ball in d["states"]["A"]["balls"] + d["states"]["B"]["balls"]:
        ops_d = example.ball_distance(traj, d["cv"]["atom_indices"], ball["center"], d["cv"]["periods"])
        assert ops_d.shape == (len(frames), 1)                          # one value per frame, as OPS expects
        ours = system.states[ball["name"]].distance(torch.as_tensor(frames)).numpy()
        np.testing.assert_allclose(ops_d[:, 0], ours, atol=1e-5)
    assert (ops_d[:, 0] < 0.75).any() and (ops_d[:, 0] > 0.75).any()   # the path leaves and enters the last ball
