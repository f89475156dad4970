"""Argument checks shared by the public functions (private module)."""

from __future__ import annotations

import math

import torch


def as_tensor(value, name: str, *, dtype=None, device=None) -> torch.Tensor:
    """Convert ``value`` to a floating tensor or raise ``TypeError`` naming ``name``."""
    if isinstance(value, torch.Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(value)
        except Exception as exc:  # pragma: no cover - message path
            raise TypeError(f"{name}: expected a tensor or array of numbers, got {type(value).__name__}") from exc
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name}: expected a real-valued tensor, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype if dtype is not None else t.dtype, device=device if device is not None else t.device)
    return t


def check_finite(t: torch.Tensor, name: str) -> torch.Tensor:
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).sum().item()
        raise ValueError(f"{name}: expected finite values, found {bad} NaN or infinite entries")
    return t


def check_event_shape(t: torch.Tensor, event_shape: tuple, name: str) -> tuple:
    """Check that ``t`` ends in ``event_shape``; return its batch shape."""
    n = len(event_shape)
    if t.dim() < n or tuple(t.shape[t.dim() - n:]) != tuple(event_shape):
        raise ValueError(
            f"{name}: expected shape (*batch, {', '.join(map(str, event_shape))}), got {tuple(t.shape)}"
        )
    return tuple(t.shape[: t.dim() - n])


def check_positive(value, name: str) -> float:
    if isinstance(value, (str, bytes, bool)):  # float("3") and float(True) would pass silently
        raise TypeError(f"{name}: expected a positive number, got {value!r}")
    try:
        v = float(value)
    except Exception as exc:
        raise TypeError(f"{name}: expected a positive number, got {value!r}") from exc
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return v


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (hasattr(value, "__index__")):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    v = int(value)
    if v <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return v
