"""``--config FILE``: TOML or YAML option values, validated against the command's options."""

from __future__ import annotations

import argparse
from pathlib import Path

from tps.cli._common import UserError, _err, _oneline


# ============================================================================ config files
def _read_config(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise _err(f"--config {path}: no such file", "pass a TOML (.toml) or YAML (.yaml/.yml) file")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise _err(f"--config {path}: unknown format {path.suffix or '(none)'!r}",
                       "use a .toml, .yaml or .yml file")
    except UserError:
        raise
    except Exception as exc:
        raise _err(f"--config {path}: malformed ({_oneline(exc)[:200]})", "fix the file's syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _err(f"--config {path}: expected a table of option = value", "write e.g. 'paths = 20'")
    return data


def _config_defaults(sub: argparse.ArgumentParser, path: Path) -> dict:
    """Config keys (long option names, '-' or '_') converted like the command line's values."""
    data = _read_config(path)
    actions = {}
    for a in sub._actions:
        longs = [o for o in a.option_strings if o.startswith("--")]
        if not longs or a.dest in ("help", "config"):
            continue
        actions[longs[0][2:]] = a
    out = {}
    for key, value in data.items():
        name = str(key).replace("_", "-")
        if name not in actions:
            raise _err(f"--config {path}: unknown key {key!r}", f"valid keys: {', '.join(sorted(actions))}")
        a = actions[name]
        try:
            if isinstance(a, argparse._StoreTrueAction):
                if not isinstance(value, bool):
                    raise ValueError("expected true or false")
                v = value
            elif a.nargs not in (None, "?"):
                if not isinstance(value, (list, tuple)) or (isinstance(a.nargs, int) and len(value) != a.nargs):
                    raise ValueError(f"expected a list of {a.nargs} values")
                v = [a.type(str(x)) if a.type else x for x in value]
            else:
                if isinstance(value, (dict, list)):
                    raise ValueError("expected a single value")
                v = a.type(str(value)) if a.type else value
            if a.choices is not None and v not in a.choices:
                raise ValueError(f"expected one of {', '.join(map(str, a.choices))}")
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise _err(f"--config {path}: bad value {value!r} for {key!r} ({_oneline(exc)})",
                       f"see 'tps {sub.prog.split()[-1]} --help'") from None
        out[a.dest] = v
    return out
