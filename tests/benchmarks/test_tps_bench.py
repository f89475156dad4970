"""``tps bench SUITE ...`` runs ``python -m benchmarks SUITE ...`` as a child process.

The contract: the child's exit status comes back unchanged, its output reaches the caller's
streams, it runs in the caller's working directory, and the ``tps`` process never imports the
uninstalled ``benchmarks`` package (no ``sys.path`` edits).
"""

import sys

from tps.cli import main
from tps.cli._bench import _benchmarks_root, _suite_names


def test_suite_names_are_read_without_importing_benchmarks():
    root = _benchmarks_root()
    assert root is not None
    names = _suite_names(root)
    assert {"muller-brown", "aldp-2d", "aldp-cartesian", "all", "check"} <= set(names)


def test_exit_status_and_stderr_of_the_child_pass_through(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    # an empty folder is not a finished suite: the check fails with status 1 and says why on stderr
    assert main(["bench", "check", "."]) == 1
    assert "benchmarks check:" in capsys.readouterr().err
    assert not any(m == "benchmarks" or m.startswith("benchmarks.") for m in set(sys.modules) - before)


def test_a_finished_suite_passes_the_check_in_the_callers_directory(tmp_path, capsys, monkeypatch):
    import json

    folder = tmp_path / "bench"
    (folder / "mb").mkdir(parents=True)
    row = {"method": "spacetime-geodesic", "n_paths": 2, "max_energy_mean": 1.0, "max_energy_std": 0.1,
           "minmax": 0.5, "barrier_mean": 1.0, "max_step": 0.1, "target_hit_fraction": 1.0,
           "n_energy_evals": 10, "wall_s": 0.1, "path_density_jsd": 0.5}
    (folder / "mb" / "results.json").write_text(json.dumps({"complete": True, "methods": [row]}))
    (folder / "mb" / ".done").write_text("complete\n")
    summary = {"systems": {"mb": {"status": "finished"}}, "rows": [dict(row, system="mb")]}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "summary.md").write_text("# summary\n")
    monkeypatch.chdir(tmp_path)
    rc = main(["bench", "check", "bench"])  # relative: found only if the child runs in the caller's directory
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "benchmarks check: OK" in out


def test_system_suites_answer_to_the_tps_systems_names_and_the_short_ones():
    from benchmarks.__main__ import SUITES
    from tps import systems

    assert SUITES["alanine-dipeptide-phipsi"] == SUITES["aldp-2d"]
    assert SUITES["alanine-dipeptide"] == SUITES["aldp-cartesian"]
    assert {"muller-brown", "alanine-dipeptide", "alanine-dipeptide-phipsi"} <= set(systems.available()) & set(SUITES)
