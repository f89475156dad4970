"""Results as strict JSON: numpy/torch values converted, non-finite floats spelled out."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path, PurePath

from tps.io.atomic import write_text

#: How non-finite floats are written (strict JSON has no NaN/Infinity tokens).
NONFINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _float(value: float):
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def to_json_compatible(obj, *, name: str = "results"):
    """Convert ``obj`` to plain JSON types (dict, list, str, int, float, bool, None).

    Parameters
    ----------
    obj : object
        Nested dicts (string-like keys), lists, tuples, sets, dataclasses, ``pathlib`` paths,
        numpy/torch scalars and arrays (arrays become nested lists).
    name : str
        How to name ``obj`` in error messages.

    Returns
    -------
    object
        Non-finite floats become ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``.

    Raises
    ------
    TypeError
        Naming the item (e.g. ``results['rows'][2]``) that has no JSON form.

    Examples
    --------
    >>> import numpy as np, torch
    >>> to_json_compatible({"a": np.float32(0.5), "b": torch.tensor([1, 2]), "c": float("nan")})
    {'a': 0.5, 'b': [1, 2], 'c': 'NaN'}
    """
    import numpy as np

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(float(obj))
    if isinstance(obj, np.generic):
        return to_json_compatible(obj.item(), name=name)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"{name}: cannot write an array of dtype {obj.dtype} as JSON")
        return to_json_compatible(obj.tolist(), name=name)
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):
        return to_json_compatible(obj.detach().cpu().numpy(), name=name)
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if isinstance(key, np.generic):
                key = key.item()
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise TypeError(f"{name}: key {key!r} of type {type(key).__name__} is not a JSON key")
            out[str(key) if not isinstance(key, str) else key] = to_json_compatible(value, name=f"{name}[{key!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_json_compatible(v, name=f"{name}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return [to_json_compatible(v, name=f"{name}[{i}]") for i, v in enumerate(sorted(obj, key=repr))]
    raise TypeError(f"{name}: cannot write an object of type {type(obj).__name__} as JSON")


def _restore_nonfinite(obj):
    if isinstance(obj, str):
        return NONFINITE.get(obj, obj)
    if isinstance(obj, list):
        return [_restore_nonfinite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _restore_nonfinite(v) for k, v in obj.items()}
    return obj


def save_results(results, path) -> Path:
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
    return write_text(path, json.dumps(to_json_compatible(results), indent=2, allow_nan=False) + "\n")


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
