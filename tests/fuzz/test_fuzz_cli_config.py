"""Fuzzed ``--config`` files into the ``tps`` command (tps/cli/_config.py).

Contract: whatever the file holds (any TOML/YAML table, wrong types, unknown keys, bad syntax,
binary junk, another format), ``tps run`` either accepts the values or exits with status 2 and
one line ``tps: error: ...; ...`` on stderr; never a traceback, never an internal error, and no
output file (or temporary file) is written before the error.
"""

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from tps.cli import build_parser, main
from tps.cli._common import UserError
from tps.cli._config import _config_defaults

FACTOR = float(os.environ.get("TPS_FUZZ_EXAMPLES", "1"))


def n_examples(n):
    return max(1, int(n * FACTOR))


_KEYS = ["paths", "points", "max-iter", "max_iter", "quiet", "steps-per-point", "seed", "model", "out",
         "no-such-option", "config", "help", "", "paths.x"]
_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                     st.booleans(), st.text(max_size=12), st.none())
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.text(max_size=4), _scalars,
                                                                               max_size=2))
_tables = st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=10)), _values, max_size=4)


def _toml_value(v):
    if v is None:
        return '""'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


def _render(table, fmt):
    if fmt == ".toml":
        return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in table.items())
    return json.dumps(table)  # JSON is YAML


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("tps: error: ") and "; " in lines[0] and "internal error" not in lines[0], lines[0]
    return lines[0]


@settings(max_examples=n_examples(150))
@given(table=_tables, fmt=st.sampled_from([".toml", ".yaml", ".yml"]), junk=st.one_of(st.none(), st.binary(max_size=30)),
       cut=st.one_of(st.none(), st.integers(0, 200)))
def test_config_values_are_accepted_or_refused_in_one_line(tmp_path_factory, table, fmt, junk, cut):
    d = tmp_path_factory.mktemp("cfg")
    raw = _render(table, fmt).encode()
    if cut is not None:
        raw = raw[:cut]
    if junk is not None:
        raw = junk + raw
    cfg = d / f"run{fmt}"
    cfg.write_bytes(raw)
    sub = build_parser()._subs["run"]
    try:
        values = _config_defaults(sub, cfg)
    except UserError as exc:
        assert str(exc).startswith(f"--config {cfg}: ") and "; " in str(exc), exc
    else:
        assert set(values) <= {a.dest for a in sub._actions}


@settings(max_examples=n_examples(40))
@given(table=_tables, fmt=st.sampled_from([".toml", ".yaml", ".json", ""]), junk=st.one_of(st.none(), st.binary(max_size=30)))
def test_run_with_a_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path_factory, capsys, table, fmt, junk):
    """Through ``main``: the system name is unknown, so even a valid config ends in a user error
    (status 2) before any work; the output directory must stay empty."""
    d = tmp_path_factory.mktemp("run")
    cfg = d / f"run{fmt}"
    raw = _render(table, ".toml" if fmt == ".toml" else ".yaml").encode()
    cfg.write_bytes(raw if junk is None else junk + raw)
    out = d / "out"
    capsys.readouterr()
    status = main(["run", "no-such-system", "--config", str(cfg), "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 2
    _one_error_line(captured.err)
    assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in d.iterdir()) == sorted({cfg.name, "out"} & {p.name for p in d.iterdir()})
