"""Path ensembles of transition path sampling, named after the theory (OpenPathSampling style).

- :class:`FixedLengthEnsemble`: paths of exactly ``n_frames`` frames whose first frame lies in A
  and whose last frame lies in B (intermediate frames are free).
- :class:`FlexibleLengthEnsemble`: paths whose first frame lies in A, whose last frame lies in B
  and whose intermediate frames lie in neither; the length is whatever the dynamics take (at most
  ``max_frames``).

A path is a tensor of frames of shape ``(n_frames, *event)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


def resample_path(frames, n_frames: int, *, mode: str = "stretch") -> torch.Tensor:
    """Give a path ``n_frames`` frames, keeping both endpoints.

    Used to put an initial path (e.g. a high-temperature transition of another length) into a
    :class:`FixedLengthEnsemble`: the result starts and ends where the input does, so it lies in
    the ensemble, but it is not a dynamical trajectory of the new length. Shooting regenerates
    all of it; discard a burn-in.

    Parameters
    ----------
    frames : Tensor, shape ``(n_in, *event)``
    n_frames : int
        At least 2.
    mode : {"stretch", "pad"}
        ``"stretch"``: frames at evenly spaced indices (repeated when stretched, skipped when
        compressed). ``"pad"``: the input unchanged in the middle, its first frame repeated before
        and its last frame after (needs ``n_in <= n_frames``); keeps the dynamical transition.

    Returns
    -------
    Tensor, shape ``(n_frames, *event)``
    """
    frames = torch.as_tensor(frames)
    if frames.dim() < 2 or frames.shape[0] < 2:
        raise ValueError(f"frames: expected shape (n_frames >= 2, *event), got {tuple(frames.shape)}")
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 2:
        raise ValueError(f"n_frames: expected an integer >= 2, got {n_frames!r}")
    n_in, n_frames = frames.shape[0], int(n_frames)
    if mode == "stretch":
        idx = torch.linspace(0, n_in - 1, n_frames, dtype=torch.float64).round().long()
    elif mode == "pad":
        if n_in > n_frames:
            raise ValueError(f"n_frames: mode='pad' needs at least the {n_in} input frames, got {n_frames}")
        before = (n_frames - n_in) // 2
        idx = torch.cat([torch.zeros(before, dtype=torch.long), torch.arange(n_in),
                         torch.full((n_frames - n_in - before,), n_in - 1, dtype=torch.long)])
    else:
        raise ValueError(f"mode: expected 'stretch' or 'pad', got {mode!r}")
    return frames[idx].clone()


@dataclass(frozen=True)
class FixedLengthEnsemble:
    """Fixed-length A -> B paths: first frame in ``state_a``, last frame in ``state_b``.

    Attributes
    ----------
    state_a, state_b : Volume
    n_frames : int
        Frames per path (``n_frames - 1`` dynamics steps); at least 3.
    """

    state_a: Any
    state_b: Any
    n_frames: int

    def __post_init__(self):
        if isinstance(self.n_frames, bool) or int(self.n_frames) != self.n_frames or self.n_frames < 3:
            raise ValueError(f"n_frames: expected an integer >= 3, got {self.n_frames!r}")

    def __call__(self, frames) -> bool:
        """Whether one path of shape ``(n_frames, *event)`` belongs to the ensemble."""
        frames = torch.as_tensor(frames)
        return (frames.shape[0] == self.n_frames and bool(self.state_a(frames[0]))
                and bool(self.state_b(frames[-1])))


@dataclass(frozen=True)
class FlexibleLengthEnsemble:
    """Variable-length A -> B paths: first frame in A, last in B, every other frame in neither.

    Attributes
    ----------
    state_a, state_b : Volume
    max_frames : int
        Longest path allowed; a trial that would be longer is rejected (its cost is counted).
    """

    state_a: Any
    state_b: Any
    max_frames: int = 100_000

    def __post_init__(self):
        if isinstance(self.max_frames, bool) or int(self.max_frames) != self.max_frames or self.max_frames < 3:
            raise ValueError(f"max_frames: expected an integer >= 3, got {self.max_frames!r}")

    def __call__(self, frames) -> bool:
        """Whether one path of shape ``(n_frames, *event)`` belongs to the ensemble."""
        frames = torch.as_tensor(frames)
        if not 3 <= frames.shape[0] <= self.max_frames:
            return False
        inner = frames[1:-1]
        return (bool(self.state_a(frames[0])) and bool(self.state_b(frames[-1]))
                and not bool((self.state_a(inner) | self.state_b(inner)).any()))
