"""Fuzzed arguments into the samplers: :func:`tps.sampling.annealed_langevin` and
:func:`tps.sampling.overdamped_langevin` on Muller-Brown.

Contract: every call either returns paths/samples of the documented shapes with no NaN, or
raises ``TypeError``/``ValueError`` whose message starts with the name of an argument that was
given a bad value.
"""

import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tps.potentials import MullerBrown
from tps.sampling import annealed_langevin, overdamped_langevin

FACTOR = float(os.environ.get("TPS_FUZZ_EXAMPLES", "1"))


def n_examples(n):
    return max(1, int(n * FACTOR))


A = torch.tensor([-0.5582, 1.4417], dtype=torch.float64)
B = torch.tensor([0.6235, 0.0280], dtype=torch.float64)

_BAD = [0, -1, -2.5, float("nan"), float("inf"), "3", None, True, 2.5, [1, 2], 1e300]


def _maybe_bad(valid):
    return st.one_of(valid, st.sampled_from(_BAD))


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _is_positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


@settings(max_examples=n_examples(80))
@given(n_paths=_maybe_bad(st.integers(1, 3)), K=_maybe_bad(st.sampled_from([1, 2, 4])),
       fpp=_maybe_bad(st.sampled_from([1, 2])), kT=_maybe_bad(st.floats(0.5, 50.0)),
       step_size=_maybe_bad(st.floats(1e-6, 1e-3)), n_points=st.integers(0, 5),
       logsnr=st.one_of(st.floats(-12, 12), st.sampled_from([float("nan"), float("inf"), 40.0])),
       start=st.sampled_from(["none", "one", "batch", "wrong", "nan"]))
def test_annealed_langevin_arguments(n_paths, K, fpp, kT, step_size, n_points, logsnr, start):
    s = torch.linspace(0, 1, n_points, dtype=torch.float64)[:, None]
    curve = A + s * (B - A)
    lam = torch.full((n_points,), logsnr, dtype=torch.float64)
    x_start = {"none": None, "one": A, "batch": A.expand(n_paths if _is_count(n_paths) else 1, 2),
               "wrong": torch.zeros(3), "nan": torch.tensor([float("nan"), 0.0])}[start]
    args = dict(kT=kT, n_paths=n_paths, steps_per_point=K, step_size=step_size, frames_per_point=fpp)
    bad = {k for k, v in args.items() if not (_is_count(v) if k in ("n_paths", "steps_per_point", "frames_per_point")
                                               else _is_positive(v))}
    if _is_count(K) and _is_count(fpp) and K % fpp:
        bad.add("frames_per_point")
    if not math.isfinite(logsnr) or abs(logsnr) > 30:
        bad.add("curve_logsnr")
    if n_points == 0:
        bad.add("curve_x")
    if start in ("wrong", "nan"):
        bad.add("x_start")
    g = torch.Generator().manual_seed(0)
    try:
        paths = annealed_langevin(MullerBrown(), curve, lam, x_start=x_start, generator=g, **args)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith("step_size: the chains blew up"):  # a step too large for Muller-Brown
            return
        assert bad, f"valid arguments refused: {exc!r}"
        name = str(exc).split(":")[0]
        assert set(name.replace(" ", "").split(",")) & bad or name in bad, (repr(exc), bad)
        return
    assert not bad, f"bad arguments {bad} accepted"
    assert paths.frames.shape == (n_paths, 1 + n_points * fpp, 2)
    assert torch.isfinite(paths.frames).all() and not torch.isnan(paths.energies).any()
    assert (paths.info["max_energy_all_steps"] >= paths.energies.max(1).values).all()


@settings(max_examples=n_examples(60))
@given(kT=_maybe_bad(st.floats(0.1, 20.0)), dt=_maybe_bad(st.floats(1e-6, 1e-3)),
       n_steps=_maybe_bad(st.integers(1, 20)), save_every=_maybe_bad(st.integers(1, 5)),
       burn_in=st.integers(0, 25), x0=st.sampled_from(["one", "batch", "wrong", "nan"]))
def test_overdamped_langevin_arguments(kT, dt, n_steps, save_every, burn_in, x0):
    x = {"one": A, "batch": A.expand(3, 2), "wrong": torch.zeros(3), "nan": torch.tensor([0.0, float("inf")])}[x0]
    args = dict(kT=kT, dt=dt, n_steps=n_steps, save_every=save_every)
    bad = {k for k, v in args.items() if not (_is_count(v) if k in ("n_steps", "save_every") else _is_positive(v))}
    if x0 in ("wrong", "nan"):
        bad.add("x0")
    if not bad and burn_in >= n_steps:
        bad.add("burn_in")
    try:
        samples, energies, n = overdamped_langevin(MullerBrown(), x, burn_in=burn_in,
                                                   generator=torch.Generator().manual_seed(0), **args)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith("dt: the chains blew up"):  # a step too large for Muller-Brown
            return
        assert bad, f"valid arguments refused: {exc!r}"
        assert str(exc).split(":")[0] in bad, (repr(exc), bad)
        return
    assert not bad, f"bad arguments {bad} accepted"
    assert torch.isfinite(samples).all() and torch.isfinite(energies).all()
    assert samples.shape[1:] == x.shape and energies.shape == samples.shape[:-1]


@pytest.mark.parametrize("step_size", [10.0, 1e3])
def test_annealed_langevin_with_a_huge_step_is_refused_not_nan(step_size):
    """A step far too large for the potential blows the chains up; the sampler must say so
    (naming ``step_size``) instead of returning NaN frames."""
    s = torch.linspace(0, 1, 4, dtype=torch.float64)[:, None]
    lam = torch.full((4,), 0.0, dtype=torch.float64)
    try:
        paths = annealed_langevin(MullerBrown(), A + s * (B - A), lam, kT=12.5, n_paths=2, steps_per_point=20,
                                  step_size=step_size, max_restraint_step=1e9,
                                  generator=torch.Generator().manual_seed(0))
    except ValueError as exc:
        assert str(exc).startswith("step_size: "), exc
    else:
        assert torch.isfinite(paths.frames).all() and torch.isfinite(paths.energies).all()
