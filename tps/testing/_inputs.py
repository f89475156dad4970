"""Argument handling shared by the engine checks (private)."""

from __future__ import annotations

import math

import numpy as np
import torch


def event_tensor(value, event_shape, name) -> torch.Tensor:
    t = value.to(torch.float64) if isinstance(value, torch.Tensor) else torch.tensor(np.asarray(value, dtype=np.float64))
    try:
        return torch.broadcast_to(t, event_shape).clone()
    except RuntimeError:
        raise ValueError(f"{name}: expected a value broadcastable to the event shape {event_shape}, "
                         f"got shape {tuple(t.shape)}") from None


def batch_tensor(x, event_shape, name) -> torch.Tensor:
    x = x.to(torch.float64) if isinstance(x, torch.Tensor) else torch.tensor(np.asarray(x, dtype=np.float64))
    if tuple(x.shape) == tuple(event_shape):
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(f"{name}: expected shape (b, {', '.join(map(str, event_shape))}), got {tuple(x.shape)}")
    return x


def stiffness_energy(engine, stiffness, reduced) -> float:
    k = float(stiffness)
    if not (math.isfinite(k) and k > 0):
        raise ValueError(f"stiffness: expected a positive finite number, got {stiffness!r}")
    return k * float(engine.kT) if reduced else k
