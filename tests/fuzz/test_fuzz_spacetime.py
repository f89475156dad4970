"""Fuzzed arguments into :func:`tps.spacetime.geodesic` and :func:`tps.spacetime.curve_energy`
on a two-well Gaussian mixture (exact denoiser).

Contract: every call either returns a curve with the given endpoints and a finite energy, or
raises ``TypeError``/``ValueError`` whose message starts with the name of an argument that was
given a bad value. Only long-standing keyword arguments are fuzzed, so that new options of the
solver do not break these tests.
"""

import math
import os

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tps.diffusion.gaussian import GaussianMixture
from tps.spacetime import curve_energy, geodesic

FACTOR = float(os.environ.get("TPS_FUZZ_EXAMPLES", "1"))


def n_examples(n):
    return max(1, int(n * FACTOR))


GMM = GaussianMixture(torch.tensor([0.5, 0.5], dtype=torch.float64),
                      torch.tensor([[-1.5, 0.0], [1.5, 0.0]], dtype=torch.float64),
                      torch.tensor([0.1, 0.1], dtype=torch.float64))
A = torch.tensor([-1.5, 0.0], dtype=torch.float64)
B = torch.tensor([1.5, 0.0], dtype=torch.float64)

_ENDPOINTS = {"ok": (A, B), "list": ([-1.5, 0.0], [1.5, 0.0]), "wrong-shape": (torch.zeros(3), torch.zeros(3)),
              "mismatch": (A, torch.zeros(3)), "nan": (torch.tensor([float("nan"), 0.0]), B),
              "inf": (A, torch.tensor([0.0, float("inf")]))}
_BAD_ENDPOINTS = {"wrong-shape": "x_a", "mismatch": "x_b", "nan": "x_a", "inf": "x_b"}


def _count_ok(v, low):
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


@settings(max_examples=n_examples(40))
@given(ends=st.sampled_from(sorted(_ENDPOINTS)),
       logsnr=st.one_of(st.floats(-6, 8), st.tuples(st.floats(-6, 8), st.floats(-6, 8)),
                        st.sampled_from([float("nan"), float("inf"), (1.0, 2.0, 3.0), None, "abc", (1.0, None)])),
       n_points=st.one_of(st.integers(3, 9), st.sampled_from([0, 1, 2, -4, 2.5, True])),
       n_nodes=st.one_of(st.integers(1, 4), st.sampled_from([0, -1, 1.5])),
       max_iter=st.integers(1, 3),
       method=st.sampled_from(["lbfgs", "adam", "newton"]))
def test_geodesic_arguments(ends, logsnr, n_points, n_nodes, max_iter, method):
    x_a, x_b = _ENDPOINTS[ends]
    bad = set()
    if ends in _BAD_ENDPOINTS:
        bad.add(_BAD_ENDPOINTS[ends])
    lams = logsnr if isinstance(logsnr, tuple) else (logsnr,)
    if len(lams) not in (1, 2) or not all(isinstance(v, float) and math.isfinite(v) for v in lams):
        bad.add("logsnr")
    if not _count_ok(n_points, 3):
        bad.add("n_points")
    if not _count_ok(n_nodes, 1):
        bad.add("n_nodes")
    if method not in ("lbfgs", "adam"):
        bad.add("method")
    kw = dict(logsnr=logsnr, n_points=n_points, n_nodes=n_nodes, method=method, max_iter=max_iter, n_steps=max_iter)
    try:
        res = geodesic(GMM, x_a, x_b, **kw)
    except (TypeError, ValueError) as exc:
        name = str(exc).split(":")[0]
        assert bad, f"valid arguments refused: {exc!r}"
        assert name in bad, (repr(exc), bad)
        return
    assert not bad, f"bad arguments {bad} accepted"
    assert res.x.shape == (n_points, 2) and res.logsnr.shape == (n_points,)
    assert torch.equal(res.x[0], torch.as_tensor(x_a, dtype=res.x.dtype))
    assert torch.equal(res.x[-1], torch.as_tensor(x_b, dtype=res.x.dtype))
    assert torch.isfinite(res.x).all() and torch.isfinite(res.logsnr).all() and math.isfinite(float(res.energy))


@settings(max_examples=n_examples(60))
@given(n=st.integers(0, 6), shape=st.sampled_from(["ok", "event", "logsnr-len", "batch"]),
       value=st.sampled_from(["ok", "nan-x", "inf-logsnr", "huge-logsnr"]))
def test_curve_energy_arguments(n, shape, value):
    x = torch.linspace(-1.5, 1.5, n, dtype=torch.float64)[:, None] * torch.tensor([1.0, 0.0], dtype=torch.float64)
    lam = torch.full((n,), 3.0, dtype=torch.float64)
    bad = set()
    if shape == "event":
        x = torch.zeros(n, 3, dtype=torch.float64)
        bad.add("x")
    elif shape == "logsnr-len":
        lam = torch.full((n + 1,), 3.0, dtype=torch.float64)
        bad.add("logsnr")
    elif shape == "batch":
        x, lam = x.expand(2, n, 2), lam.expand(2, n)
    if n < 2:
        bad |= {"x", "logsnr"}
    if value == "nan-x" and n:
        x = x.clone()
        x[..., n // 2, 0] = float("nan")
        bad.add("x")
    elif value in ("inf-logsnr", "huge-logsnr") and lam.shape[-1]:
        lam = lam.clone()
        lam[..., 0] = float("inf") if value == "inf-logsnr" else 1e4
        bad.add("logsnr")
    try:
        e = curve_energy(GMM, x, lam)
    except (TypeError, ValueError) as exc:
        assert bad, f"valid arguments refused: {exc!r}"
        assert str(exc).split(":")[0] in bad, (repr(exc), bad)
        return
    assert not bad, f"bad arguments {bad} accepted"
    assert torch.isfinite(e).all() and e.shape == x.shape[:-2]
