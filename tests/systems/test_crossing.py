"""System.crossing_coordinate: where the transition segment first enters the dividing region."""

import math

import pytest
import torch

from tps.core import Paths
from tps.systems import load


def _polyline(points, n=40):
    pts = [torch.as_tensor(p, dtype=torch.float64) for p in points]
    return torch.cat([torch.stack([torch.lerp(p, q, float(t)) for t in torch.linspace(0, 1, n)])
                      for p, q in zip(pts[:-1], pts[1:])])


def test_muller_brown_crossing_is_the_offset_along_the_plane_through_s1():
    mb = load("muller-brown")
    a, b = mb.endpoints["A"], mb.endpoints["B"]
    s1 = torch.tensor([-0.822, 0.6243], dtype=torch.float64)
    # the unstable mode of S1 (Hessian of U by finite differences of the analytic forces), towards B
    eps = 1e-5
    hessian = torch.stack([(mb.potential.forces(s1 - eps * e) - mb.potential.forces(s1 + eps * e)) / (2 * eps)
                           for e in torch.eye(2, dtype=torch.float64)])
    eigenvalues, vectors = torch.linalg.eigh(0.5 * (hessian + hessian.T))
    assert float(eigenvalues[0]) < 0 < float(eigenvalues[1])  # a first-order saddle
    n = vectors[:, 0] if float((b - s1) @ vectors[:, 0]) > 0 else -vectors[:, 0]
    assert float((a - s1) @ n) < 0  # the line separates A from B
    t = torch.stack([-n[1], n[0]])
    paths = []
    for offset in (-0.2, 0.0, 0.15):  # paths that cross the plane exactly at s1 + offset * t
        p = s1 + offset * t
        paths.append(_polyline([a, p - 0.05 * n, p + 0.05 * n, b], n=200))
    paths.append(_polyline([b, 0.5 * (a + b), a, a + 0.01], n=200))  # B -> A only: no transition
    x = mb.crossing_coordinate(torch.stack(paths))
    assert torch.allclose(x[:3], torch.tensor([-0.2, 0.0, 0.15], dtype=torch.float64), atol=2e-3)
    assert math.isnan(float(x[3]))


def test_phipsi_crossing_reads_psi_at_the_first_frame_with_small_phi_in_the_segment():
    aldp = load("alanine-dipeptide-phipsi")
    c5, c7ax = aldp.endpoints["C5"], aldp.endpoints["C7ax"]
    mid = torch.tensor([0.0, -0.5], dtype=torch.float64)
    # a pre-excursion to phi = 0 at psi = 2.0 BEFORE the last visit to C5 does not count
    early = torch.tensor([0.0, 2.0], dtype=torch.float64)
    path = _polyline([c5, early, c5, mid, c7ax], n=300)
    frames = torch.stack([path, path + torch.tensor([2 * math.pi, 0.0], dtype=torch.float64)])  # periodic image
    x = aldp.crossing_coordinate(frames)
    assert torch.allclose(x, torch.full((2,), float(x[0]), dtype=torch.float64))
    # the first frame with |phi| < 0.3 on the way from C5 (phi -2.57) to mid: psi interpolated there
    s = (-0.3 - float(c5[0])) / (0.0 - float(c5[0]))
    assert float(x[0]) == pytest.approx(float(c5[1]) + s * (-0.5 - float(c5[1])), abs=0.02)


def test_crossing_respects_padding_lengths():
    mb = load("muller-brown")
    a, b = mb.endpoints["A"], mb.endpoints["B"]
    path = _polyline([a, b], n=100)
    frames = torch.stack([path, path])
    paths = Paths(frames, frames[..., 0], 0, mb.kT, {"lengths": torch.tensor([100, 30])})  # 2nd stops short of B
    x = mb.crossing_coordinate(paths)
    assert math.isfinite(float(x[0])) and math.isnan(float(x[1]))
