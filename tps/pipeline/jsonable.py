"""The JSON form of run records (``results.json``, ``state.json``, metrics rows of ``tps run``).

One convention for the whole package lives in :mod:`tps.io.results`; run records use its
``nonfinite="null"`` spelling (NaN as ``null``, infinities as ``"inf"`` / ``"-inf"``), the one
``tps run`` has always written, so ``results.json`` files stay comparable across versions.
"""

from __future__ import annotations

__all__ = ["jsonable", "stage_key", "NONFINITE"]

#: The :mod:`tps.io.results` convention of run records.
NONFINITE = "null"


def jsonable(obj):
    """Plain JSON values of ``obj`` (:func:`tps.io.to_json_compatible` with ``nonfinite="null"``).

    Examples
    --------
    >>> import torch
    >>> jsonable({"a": (1, 2.5), "b": float("nan"), "c": float("inf"), 3: torch.tensor(0.5)})
    {'a': [1, 2.5], 'b': None, 'c': 'inf', '3': 0.5}
    """
    from tps.io import to_json_compatible

    return to_json_compatible(obj, nonfinite=NONFINITE)


def stage_key(**parts) -> str:
    """A resumption key: the JSON text of ``parts`` with sorted keys.

    Examples
    --------
    >>> stage_key(b=1, a=(2.0, None))
    '{"a": [2.0, null], "b": 1}'
    """
    from tps.io import json_text

    return json_text(parts, nonfinite=NONFINITE, indent=None, sort_keys=True)
