"""Fuzzed ``phi psi z`` grid files into :func:`tps.potentials.grid.read_grid` and points into
:func:`~tps.potentials.grid.bilinear`.

Contract: a damaged file either still reads as a valid periodic grid (finite values, one node
per row) or raises ``ValueError`` whose message starts with the file's name; never a raw
decoding/indexing error, never NaN in the grid.
"""

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tps.potentials.grid import Grid2D, PeriodicGridPotential, bilinear, read_grid, write_grid

FACTOR = float(os.environ.get("TPS_FUZZ_EXAMPLES", "1"))


def n_examples(n):
    return max(1, int(n * FACTOR))


def _grid(n_phi, n_psi, seed):
    rng = np.random.default_rng(seed)
    phi = -math.pi + 2 * math.pi * np.arange(n_phi) / n_phi
    psi = -math.pi + 2 * math.pi * np.arange(n_psi) / n_psi
    return Grid2D.from_arrays(phi, psi, rng.normal(size=(n_phi, n_psi)))


_corruptions = st.sampled_from(["none", "truncate", "drop-line", "token", "binary", "degrees", "swap", "nan",
                                "extra-column", "duplicate"])


def _corrupt(text: str, kind: str, data) -> bytes:
    lines = text.splitlines(keepends=True)
    body = [i for i, ln in enumerate(lines) if not ln.startswith("#")]
    if kind == "truncate":
        return text.encode()[: data.draw(st.integers(0, len(text) - 1))]
    if kind == "drop-line":
        del lines[data.draw(st.sampled_from(body))]
    elif kind == "token":
        i = data.draw(st.sampled_from(body))
        parts = lines[i].split()
        parts[data.draw(st.integers(0, 2))] = data.draw(st.text(min_size=1, max_size=6).filter(lambda t: t.strip()))
        lines[i] = " ".join(parts) + "\n"
    elif kind == "binary":
        blob = data.draw(st.binary(min_size=1, max_size=40))
        at = data.draw(st.integers(0, len(text)))
        return text.encode()[:at] + blob + text.encode()[at:]
    elif kind == "degrees":
        lines = [ln if ln.startswith("#") else " ".join([repr(math.degrees(float(v))) for v in ln.split()[:2]]
                                                         + [ln.split()[2]]) + "\n" for ln in lines]
    elif kind == "swap":
        i, j = data.draw(st.sampled_from(body)), data.draw(st.sampled_from(body))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "nan":
        i = data.draw(st.sampled_from(body))
        parts = lines[i].split()
        parts[data.draw(st.integers(0, 2))] = data.draw(st.sampled_from(["nan", "inf", "-inf", "NaN"]))
        lines[i] = " ".join(parts) + "\n"
    elif kind == "extra-column":
        i = data.draw(st.sampled_from(body))
        lines[i] = lines[i].rstrip("\n") + " 1.0\n"
    elif kind == "duplicate":
        lines.insert(data.draw(st.sampled_from(body)), lines[data.draw(st.sampled_from(body))])
    return "".join(lines).encode()


@settings(max_examples=n_examples(80))
@given(n_phi=st.integers(2, 7), n_psi=st.integers(2, 7), seed=st.integers(0, 2**16), kind=_corruptions,
       data=st.data())
def test_damaged_grid_files_read_or_name_the_file(tmp_path_factory, n_phi, n_psi, seed, kind, data):
    path = tmp_path_factory.mktemp("grid") / "surface.dat"
    write_grid(path, _grid(n_phi, n_psi, seed))
    path.write_bytes(_corrupt(path.read_text(), kind, data))
    try:
        g = read_grid(path)
    except ValueError as exc:
        assert str(exc).startswith(str(path)), exc
        return
    assert kind in ("none", "truncate", "swap", "token", "binary", "drop-line", "duplicate"), kind
    assert np.isfinite(g.z).all() and g.z.shape == (g.phi.size, g.psi.size)
    assert g.phi.size >= 2 and g.psi.size >= 2


@settings(max_examples=n_examples(60))
@given(points=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                         elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_bilinear_and_spline_are_finite_periodic_or_name_points(points):
    grid = _grid(6, 5, 0)
    pts = torch.from_numpy(points)
    if points.shape[-1] != 2:
        with pytest.raises(ValueError, match=r"^points: "):
            bilinear(grid, pts)
        return
    v = bilinear(grid, pts)
    assert v.shape == points.shape[:-1] and torch.isfinite(v).all()
    lo, hi = grid.z.min(), grid.z.max()  # bilinear interpolation never leaves the node range
    assert (v >= lo - 1e-9).all() and (v <= hi + 1e-9).all()
    e, f = PeriodicGridPotential(grid).energy_and_forces(pts)
    assert torch.isfinite(e).all() and torch.isfinite(f).all()
