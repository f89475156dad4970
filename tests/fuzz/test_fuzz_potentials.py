"""Fuzzed positions into the potentials' public ``energy`` / ``forces`` / ``energy_and_forces``.

Contract: any input either gives energies of shape ``batch`` and forces of the input's shape with
no NaN, or raises ``TypeError``/``ValueError`` whose message names the argument ``x``.
"""

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tps.potentials import Harmonic, MullerBrown
from tps.potentials.grid import Grid2D, PeriodicGridPotential

FACTOR = float(os.environ.get("TPS_FUZZ_EXAMPLES", "1"))


def n_examples(n):
    return max(1, int(n * FACTOR))


def _cosine_grid():
    phi = np.linspace(-math.pi, math.pi, 24, endpoint=False)
    z = np.cos(phi)[:, None] + 0.5 * np.sin(2 * phi)[None, :]
    return Grid2D.from_arrays(phi, phi.copy(), z)


POTENTIALS = {
    "muller-brown": MullerBrown,
    "harmonic": lambda: Harmonic((2,), k=3.0, center=[0.5, -0.25]),
    "harmonic-particles": lambda: Harmonic((3, 3), k=2.0),
    "periodic-grid": lambda: PeriodicGridPotential(_cosine_grid()),
}

# Values a user might pass: ordinary coordinates, far-away ones, the special floats.
_finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


def _positions(event_shape):
    """Arrays whose trailing shape is usually, not always, ``event_shape``; float64, float32 or
    integer; half of them may hold huge, infinite or NaN values."""
    good = st.lists(st.integers(0, 3), max_size=2).map(lambda b: tuple(b) + tuple(event_shape))
    bad = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    dtypes = st.sampled_from([np.float64, np.float32, np.int64])
    def elements(dtype, special):
        if dtype == np.int64:
            return st.integers(-100, 100)
        width = 32 if dtype == np.float32 else 64
        finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=width)
        return st.one_of(finite, st.floats(width=width)) if special else finite

    return st.tuples(st.one_of(good, good, bad), dtypes, st.booleans()).flatmap(
        lambda a: hnp.arrays(a[1], a[0], elements=elements(a[1], a[2])))


@pytest.mark.parametrize("name", sorted(POTENTIALS))
@settings(max_examples=n_examples(60))
@given(data=st.data())
def test_energy_and_forces_work_or_name_x(name, data):
    U = POTENTIALS[name]()
    arr = data.draw(_positions(U.event_shape))
    as_tensor = data.draw(st.booleans())
    x = torch.from_numpy(arr) if as_tensor else arr
    n = len(U.event_shape)
    ok_shape = arr.ndim >= n and arr.shape[arr.ndim - n:] == U.event_shape
    ok_values = bool(np.isfinite(arr).all())
    if not (ok_shape and ok_values):
        with pytest.raises((ValueError, TypeError), match=r"^x: "):
            U.energy_and_forces(x)
        with pytest.raises((ValueError, TypeError), match=r"^x: "):
            U.energy(x)
        return
    e = U.energy(x)
    e2, f = U.energy_and_forces(x)
    batch = arr.shape[:arr.ndim - n]
    assert e.shape == batch and e2.shape == batch and f.shape == arr.shape
    assert not torch.isnan(e).any() and not torch.isnan(f).any(), (arr, e, f)
    torch.testing.assert_close(e.detach(), e2, rtol=1e-5, atol=1e-6, equal_nan=False)
    assert U.n_evals == 2 * math.prod(batch)


@settings(max_examples=n_examples(40))
@given(x=hnp.arrays(np.float64, (5, 2), elements=_finite))
def test_forces_are_minus_the_gradient_everywhere_finite(x):
    """Analytic forces agree with autograd of the energy (Muller-Brown and the grid spline)."""
    for U in (MullerBrown(), PeriodicGridPotential(_cosine_grid())):
        xt = torch.from_numpy(x).requires_grad_(True)
        e = U.energy(xt)
        if not torch.isfinite(e).all():  # far outside Muller-Brown's region: +inf, never NaN
            assert not torch.isnan(e).any()
            continue
        (g,) = torch.autograd.grad(e.sum(), xt)
        f = U.forces(torch.from_numpy(x))
        torch.testing.assert_close(f, -g, rtol=1e-6, atol=1e-6 * (1 + float(g.abs().max())))
