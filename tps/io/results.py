"""Results as JSON: numpy/torch values converted, non-finite floats spelled by one named convention.

strict JSON has no NaN or Infinity. The package writes non-finite floats in one of three
spellings, each chosen by name (``nonfinite=``) in :func:`to_json_compatible`, :func:`json_text`
and :func:`save_results`, so that every file keeps the bytes it has always had:

``"strings"`` (default; :func:`save_results`, path-ensemble metadata)
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"``: strict JSON, read back by :func:`load_results`.
``"null"`` (records of the ``tps`` CLI: ``results.json`` of ``tps run``, ``state.json``,
stage keys, checkpoint sidecars)
    NaN becomes ``null`` and infinities ``"inf"`` / ``"-inf"``, for floats and 0-d
    numpy/torch scalars; inside arrays (``ndim >= 1``) the ``"strings"`` spelling, and dict
    keys of any type become ``str(key)``.
``"tokens"`` (``results.json`` of the benchmark runners)
    Non-finite floats are left as floats, so :func:`json.dumps` writes the bare tokens
    ``NaN``, ``Infinity``, ``-Infinity`` (Python's and JavaScript's extension of JSON).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path, PurePath

from tps.io.atomic import write_text

#: How non-finite floats are written by the default ``"strings"`` convention.
NONFINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
#: The conventions for non-finite floats accepted as ``nonfinite=`` (see the module docstring).
NONFINITE_STYLES = ("strings", "null", "tokens")


def _float(value: float, style: str = "strings"):
    if math.isfinite(value):
        return value
    if style == "tokens":
        return value
    if style == "null":
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def to_json_compatible(obj, *, name: str = "results", nonfinite: str = "strings"):
    """Convert ``obj`` to plain JSON types (dict, list, str, int, float, bool, None).

    Parameters
    ----------
    obj : object
        Nested dicts (string-like keys), lists, tuples, sets, dataclasses, ``pathlib`` paths,
        numpy/torch scalars and arrays (arrays become nested lists).
    name : str
        How to name ``obj`` in error messages.
    nonfinite : {"strings", "null", "tokens"}
        Spelling of NaN and infinities (module docstring): ``"NaN"``/``"Infinity"``/
        ``"-Infinity"`` (default), ``null``/``"inf"``/``"-inf"`` (the CLI's records), or left
        as floats (``json.dumps`` then writes bare ``NaN``/``Infinity`` tokens).

    Returns
    -------
    object
        Plain JSON types; ``str`` subclasses become plain ``str``.

    Raises
    ------
    TypeError
        Naming the item (e.g. ``results['rows'][2]``) that has no JSON form.
    ValueError
        If ``nonfinite`` is not one of :data:`NONFINITE_STYLES`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> to_json_compatible({"a": np.float32(0.5), "b": torch.tensor([1, 2]), "c": float("nan")})
    {'a': 0.5, 'b': [1, 2], 'c': 'NaN'}
    >>> to_json_compatible([float("nan"), float("-inf"), np.float64(1.5)], nonfinite="null")
    [None, '-inf', 1.5]
    >>> to_json_compatible({"x": np.float64("inf")}, nonfinite="tokens")
    {'x': inf}
    """
    if nonfinite not in NONFINITE_STYLES:
        raise ValueError(f"nonfinite: expected one of {', '.join(NONFINITE_STYLES)}, got {nonfinite!r}")
    return _convert(obj, name, nonfinite)


def _convert(obj, name: str, style: str):
    import numpy as np

    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str(obj)  # plain str (torch checkpoints load records with weights_only)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(float(obj), style)
    if isinstance(obj, np.generic):
        return _convert(obj.item(), name, style)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"{name}: cannot write an array of dtype {obj.dtype} as JSON")
        # the CLI records have always spelled non-finite array entries as strings
        return _convert(obj.tolist(), name, "strings" if style == "null" and obj.ndim else style)
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):
        return _convert(obj.detach().cpu().numpy(), name, style)
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if style == "null":
                out[str(key)] = _convert(value, f"{name}[{key!r}]", style)
                continue
            if isinstance(key, np.generic):
                key = key.item()
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise TypeError(f"{name}: key {key!r} of type {type(key).__name__} is not a JSON key")
            out[str(key) if not isinstance(key, str) else key] = _convert(value, f"{name}[{key!r}]", style)
        return out
    if isinstance(obj, (list, tuple)):
        return [_convert(v, f"{name}[{i}]", style) for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [_convert(v, f"{name}[{i}]", style) for i, v in enumerate(sorted(obj, key=repr))]
    raise TypeError(f"{name}: cannot write an object of type {type(obj).__name__} as JSON")


def json_text(obj, *, nonfinite: str = "strings", indent=2, sort_keys: bool = False, name: str = "results") -> str:
    """JSON text of ``obj`` under the convention ``nonfinite`` (no trailing newline).

    Parameters
    ----------
    obj : object
        Anything :func:`to_json_compatible` converts.
    nonfinite : {"strings", "null", "tokens"}
        Spelling of NaN and infinities; only ``"tokens"`` writes non-strict JSON.
    indent : int or None
        As in :func:`json.dumps` (None: one line).
    sort_keys : bool
        As in :func:`json.dumps`.
    name : str
        How to name ``obj`` in error messages.

    Returns
    -------
    str

    Examples
    --------
    >>> json_text({"b": float("inf"), "a": 1}, nonfinite="null", indent=None, sort_keys=True)
    '{"a": 1, "b": "inf"}'
    >>> json_text([float("nan")], nonfinite="tokens", indent=None)
    '[NaN]'
    """
    data = to_json_compatible(obj, name=name, nonfinite=nonfinite)
    return json.dumps(data, indent=indent, sort_keys=sort_keys, allow_nan=nonfinite == "tokens")


def _restore_nonfinite(obj):
    if isinstance(obj, str):
        return NONFINITE.get(obj, obj)
    if isinstance(obj, list):
        return [_restore_nonfinite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _restore_nonfinite(v) for k, v in obj.items()}
    return obj


def save_results(results, path, *, nonfinite: str = "strings") -> Path:
    """Write ``results`` (e.g. rows of :func:`tps.metrics.summarize`) as strict JSON, atomically.

    Parameters
    ----------
    results : dict or list
        Anything :func:`to_json_compatible` converts: numpy/torch scalars become numbers,
        arrays nested lists, NaN and infinities the strings ``"NaN"``, ``"Infinity"``,
        ``"-Infinity"`` (so that any JSON reader accepts the file).
    path : str or Path
        Destination, conventionally ``*.json``; parent folders are created. If writing fails,
        an existing file is left untouched.
    nonfinite : {"strings", "null", "tokens"}
        Spelling of NaN and infinities (module docstring); :func:`load_results` restores the
        default ``"strings"`` one.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = save_results([{"method": "geodesic", "minmax": np.float64(-40.5), "wall_s": float("nan")}],
    ...                      os.path.join(d, "results.json"))
    ...     load_results(f)
    [{'method': 'geodesic', 'minmax': -40.5, 'wall_s': nan}]
    """
    return write_text(path, json_text(results, nonfinite=nonfinite) + "\n")


def load_results(path, *, nonfinite: bool = True):
    """Read a JSON file written by :func:`save_results` (or any JSON file).

    Parameters
    ----------
    path : str or Path
    nonfinite : bool
        Turn the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` back into floats (default).

    Returns
    -------
    dict or list
        Arrays come back as (nested) lists.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Starting ``path:`` if the file is not JSON (truncated, damaged or another format).

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = save_results({"max_step": float("inf")}, os.path.join(d, "r.json"))
    ...     load_results(f), load_results(f, nonfinite=False)
    ({'max_step': inf}, {'max_step': 'Infinity'})
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"path: {str(path)!r} is not a JSON file (truncated or damaged? "
                         f"{' '.join(str(exc).split())})") from None
    return _restore_nonfinite(data) if nonfinite else data
