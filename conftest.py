"""Settings for every pytest run from the repository root (tests, doctests in tps/, notebooks).

One torch thread: the package's tensors are small, and on a 2-core machine a second thread only
adds contention (measured 7-70x slower doctests under load).
"""

import torch

torch.set_num_threads(1)


import os

import pytest


def _global_state() -> tuple:
    return (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(), os.getcwd(),
            {k: v for k, v in os.environ.items() if k.startswith("TPS_")})


@pytest.fixture(autouse=True)
def _no_leaked_global_state():
    """Fail a test (or doctest) that leaves process-wide settings changed for the tests after it.

    The suite runs in random order (pytest-randomly); a test that changes torch's default dtype,
    grad mode or thread count, the working directory or a ``TPS_*`` environment variable would
    make later tests pass or fail depending on the order. Draws from torch's global random
    generator are the other shared state: tests use their own ``torch.Generator``.
    """
    before = _global_state()
    yield
    after = _global_state()
    names = ("torch default dtype", "torch grad mode", "torch threads", "working directory", "TPS_* environment")
    changed = [f"{n}: {a!r} -> {b!r}" for n, a, b in zip(names, before, after) if a != b]
    assert not changed, "test left global state changed: " + "; ".join(changed)
