"""``--workers`` / ``--scheduler`` on ``tps run``, ``tps sample``, ``tps bench`` and ``python -m benchmarks``:
bad input gives one line naming the problem, exit status 2, and nothing written."""

import socket

import pytest

from tps.cli import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _bad(port):
    return [
        (["--workers", "0"], "--workers"),
        (["--workers", "2", "--scheduler", f"tcp://127.0.0.1:{port}"], "not both"),
        (["--scheduler", f"tcp://127.0.0.1:{port}"], f"no Dask scheduler reachable at tcp://127.0.0.1:{port}"),
        (["--scheduler", "127.0.0.1:8786"], "expected an address tcp://HOST:PORT"),
    ]


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("command", ["run", "sample"])
def test_bad_executor_options_one_line_exit_2_nothing_written(tmp_path, capsys, mb_curve, command, case):
    opts, expected = _bad(_closed_port())[case]
    out = tmp_path / "out"
    argv = [command, "muller-brown", "--out", str(out), *opts]
    if command == "sample":
        argv += ["--curve", str(mb_curve)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tps: error: ") and expected in err
    assert not out.exists()


def test_config_key_workers_is_validated_like_the_option(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text("workers = 0\n")
    assert main(["run", "muller-brown", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "workers" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("suite", ["muller-brown", "aldp-2d", "aldp-cartesian"])
@pytest.mark.parametrize("opts", [["--workers", "0"], ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]])
def test_benchmarks_refuse_bad_executor_options(tmp_path, capsys, opts, suite):
    from benchmarks.__main__ import main as bench_main

    out = tmp_path / "bench"
    assert bench_main([suite, "--quick", "--out", str(out), *opts]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("workers" in err)
    assert not out.exists()
    assert main(["bench", suite, "--quick", "--out", str(out), *opts]) == 2
    assert not out.exists()


def test_workers_1_is_the_in_process_run(tmp_path, mb_curve):
    import json

    from tps.io import load_paths

    runs = {}
    for name, extra in (("default", []), ("workers-1", ["--workers", "1"])):
        out = tmp_path / name
        assert main(["sample", "muller-brown", "--curve", str(mb_curve), "--out", str(out), "--paths", "64",
                     "--save-paths", "64", "--quiet", *extra]) == 0
        runs[name] = (load_paths(out / "paths.npz"), json.loads((out / "results.json").read_text()))
    (a, ra), (b, rb) = runs["default"], runs["workers-1"]
    assert a.frames.equal(b.frames) and a.energies.equal(b.energies)
    assert ra["parallel"] == rb["parallel"] == {"executor": "in-process", "n_workers": 1}
