"""Grid surfaces: file format contracts, periodic bilinear interpolation, and the periodic
cubic-spline potential (exact at nodes, periodic, C2, forces = -gradient)."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tps.potentials import Grid2D, PeriodicGridPotential, bilinear, read_grid, write_grid
from tps.potentials.grid import check_radians

REFERENCE = Path(os.environ.get(
    "TPS_REFERENCE_SURFACE",
    Path(__file__).resolve().parents[2].parent / "shared/reference/aldp_phipsi_surface_holdijk.dat",
))


def analytic(phi, psi):
    """A smooth periodic test surface (sum of cosines), any array shape."""
    return 3.0 * np.cos(phi) + 1.5 * np.sin(2 * psi) + 0.8 * np.cos(phi - psi + 0.3) + 5.0


def analytic_grid(n_phi=48, n_psi=40):
    phi = -np.pi + 2 * np.pi * np.arange(n_phi) / n_phi
    psi = -np.pi + 2 * np.pi * np.arange(n_psi) / n_psi
    return Grid2D.from_arrays(phi, psi, analytic(phi[:, None], psi[None, :]))


@pytest.fixture(scope="module")
def grid():
    return analytic_grid()


@pytest.fixture(scope="module")
def potential(grid):
    return PeriodicGridPotential(grid, energy_unit="kJ/mol")


def random_points(n, *, seed=0, span=4 * math.pi, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5).mul(span).to(dtype)


# ---------------------------------------------------------------- spline potential
def test_interface(potential):
    assert potential.event_shape == (2,)
    assert potential.periods == (2 * math.pi, 2 * math.pi)
    assert potential.energy_unit == "kJ/mol"
    x = random_points(12).reshape(3, 4, 2)
    assert potential.energy(x).shape == (3, 4)
    assert potential.forces(x).shape == (3, 4, 2)


def test_spline_exact_at_nodes(grid, potential):
    nodes = torch.from_numpy(grid.nodes())
    assert torch.allclose(potential.energy(nodes), torch.tensor(grid.z), atol=1e-12, rtol=0)


def test_spline_periodic(potential):
    x = random_points(200, seed=1)
    e = potential.energy(x)
    for k in ((1, 0), (0, -1), (3, -2)):
        shifted = x + 2 * math.pi * torch.tensor(k, dtype=torch.float64)
        assert torch.allclose(potential.energy(shifted), e, atol=1e-10, rtol=0)


def test_forces_are_minus_finite_difference_gradient(potential):
    x = random_points(100, seed=2)
    _, f = potential.energy_and_forces(x)
    h = 1e-6
    for k in range(2):
        dx = torch.zeros(2, dtype=torch.float64)
        dx[k] = h
        fd = (potential.energy(x + dx) - potential.energy(x - dx)) / (2 * h)
        assert torch.allclose(f[:, k], -fd, atol=1e-6, rtol=1e-6)


def test_analytic_forces_match_autograd(potential):
    x = random_points(100, seed=3).requires_grad_(True)
    (g,) = torch.autograd.grad(potential._energy(x).sum(), x)
    assert torch.allclose(potential.forces(x.detach()), -g, atol=1e-11, rtol=0)


def test_spline_is_c2_across_nodes(grid, potential):
    """Second derivatives just left and right of a node line agree (a C2 interpolant)."""
    eps = 1e-7
    h0 = grid.spacing[0]
    base = torch.tensor([grid.phi[7], 0.37], dtype=torch.float64)
    hess = []
    for side in (-eps, eps):
        x = base + torch.tensor([side, 0.0], dtype=torch.float64)
        hess.append(torch.autograd.functional.hessian(lambda y: potential._energy(y), x))
    assert torch.allclose(hess[0], hess[1], atol=1e-4 / h0)


def test_spline_accuracy_on_smooth_surface(potential):
    """Between nodes the interpolant converges as h^4; at 48 x 40 nodes the error is < 1e-3."""
    x = random_points(2000, seed=4)
    exact = analytic(x[:, 0].numpy(), x[:, 1].numpy())
    err = np.abs(potential.energy(x).numpy() - exact).max()
    assert err < 1e-3


def test_float32_agrees_with_float64(potential):
    x = random_points(100, seed=5)
    e64, f64 = potential.energy_and_forces(x)
    e32, f32 = potential.energy_and_forces(x.float())
    assert e32.dtype == torch.float32 and f32.dtype == torch.float32
    assert torch.allclose(e32.double(), e64, atol=1e-4)
    assert torch.allclose(f32.double(), f64, atol=1e-3)


def test_evaluations_counted(grid):
    pot = PeriodicGridPotential(grid)
    pot.energy_and_forces(random_points(7))
    pot.energy(random_points(3), count=False)
    assert pot.n_evals == 7


# ---------------------------------------------------------------- bilinear
def test_bilinear_exact_at_nodes(grid):
    nodes = torch.from_numpy(grid.nodes())
    assert torch.allclose(bilinear(grid, nodes), torch.tensor(grid.z), atol=1e-12, rtol=0)


@pytest.mark.parametrize("i, j", [(5, 9), (47, 3)])  # (47, .) edge wraps to node 0
def test_bilinear_linear_along_cell_edge(grid, i, j):
    n0 = grid.shape[0]
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    pts = torch.stack([grid.phi[i] + t * grid.spacing[0], torch.full_like(t, grid.psi[j])], dim=-1)
    expected = (1 - t) * grid.z[i, j] + t * grid.z[(i + 1) % n0, j]
    assert torch.allclose(bilinear(grid, pts), expected, atol=1e-12, rtol=0)


def test_bilinear_periodic_and_dtype(grid):
    x = random_points(50, seed=6)
    shifted = x + 2 * math.pi * torch.tensor([-2.0, 1.0], dtype=torch.float64)
    assert torch.allclose(bilinear(grid, shifted), bilinear(grid, x), atol=1e-10, rtol=0)
    assert bilinear(grid, x.float()).dtype == torch.float32


# ---------------------------------------------------------------- file format
def test_write_read_round_trip(tmp_path, grid):
    path = write_grid(tmp_path / "surface.dat", grid)
    assert path.read_text().startswith("#")
    back = read_grid(path)
    assert back.shape == grid.shape
    np.testing.assert_allclose(back.phi, grid.phi, atol=1e-15)
    np.testing.assert_allclose(back.psi, grid.psi, atol=1e-15)
    np.testing.assert_allclose(back.z, grid.z, rtol=1e-15)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temporary file


def _rows(n_phi=6, n_psi=5):
    phi = -np.pi + 2 * np.pi * np.arange(n_phi) / n_phi
    psi = -np.pi + 2 * np.pi * np.arange(n_psi) / n_psi
    P, Q = np.meshgrid(phi, psi, indexing="xy")  # phi fastest when raveled
    return [[float(p), float(q), float(analytic(p, q))] for p, q in zip(P.ravel(), Q.ravel())]


def _write(tmp_path, rows, name="bad.dat"):
    path = tmp_path / name
    path.write_text("# phi psi z\n" + "\n".join(" ".join(repr(v) for v in r) for r in rows) + "\n")
    return path


def test_reads_well_formed_small_file(tmp_path):
    g = read_grid(_write(tmp_path, _rows(), "good.dat"))
    assert g.shape == (6, 5)
    assert g.z[1, 2] == pytest.approx(analytic(g.phi[1], g.psi[2]))


def _bad_cases():
    rows = _rows()
    wrong_columns = [r[:] for r in rows]
    wrong_columns[4] = wrong_columns[4] + [1.0]
    missing_row = rows[:-1]
    with_nan = [r[:] for r in rows]
    with_nan[3][2] = float("nan")
    degrees = [[math.degrees(r[0]), math.degrees(r[1]), r[2]] for r in rows]
    nonuniform = [[(r[0] + 0.05 if r[0] > 0 else r[0]), r[1], r[2]] for r in rows]
    phi = -np.pi + 2 * np.pi * np.arange(6) / 6
    psi = -np.pi + 2 * np.pi * np.arange(5) / 5
    P, Q = np.meshgrid(phi, psi, indexing="ij")  # psi fastest when raveled
    psi_fastest = [[float(p), float(q), 1.0] for p, q in zip(P.ravel(), Q.ravel())]
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    half_period = [[r[0] / 2, r[1], r[2]] for r in rows]
    return {
        "column": wrong_columns,
        "wrong shape": missing_row,
        "NaN": with_nan,
        "degrees": degrees,
        "non-uniform spacing": nonuniform,
        "psi varying fastest": psi_fastest,
        "not in grid order": shuffled,
        "one period": half_period,
    }


@pytest.mark.parametrize("problem", list(_bad_cases()))
def test_bad_files_raise_naming_file_and_problem(tmp_path, problem):
    path = _write(tmp_path, _bad_cases()[problem], "case.dat")
    with pytest.raises(ValueError) as info:
        read_grid(path)
    msg = str(info.value)
    assert "case.dat" in msg
    assert problem in msg


def test_non_numeric_and_empty_files(tmp_path):
    path = tmp_path / "text.dat"
    path.write_text("# phi psi z\n0.0 0.0 abc\n")
    with pytest.raises(ValueError, match="non-numeric"):
        read_grid(path)
    path.write_text("# phi psi z\n")
    with pytest.raises(ValueError, match="no data rows"):
        read_grid(path)


def test_from_arrays_checks_shape_and_finiteness():
    phi = -np.pi + 2 * np.pi * np.arange(6) / 6
    psi = -np.pi + 2 * np.pi * np.arange(5) / 5
    with pytest.raises(ValueError, match="wrong shape"):
        Grid2D.from_arrays(phi, psi, np.zeros((5, 6)))
    z = np.zeros((6, 5))
    z[2, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        Grid2D.from_arrays(phi, psi, z)


def test_check_radians():
    np.testing.assert_array_equal(check_radians([-2.55, 2.70], "start"), [-2.55, 2.70])
    with pytest.raises(ValueError, match=r"start: .*radians.*degrees"):
        check_radians([-146.0, 155.0], "start")
    with pytest.raises(ValueError, match="NaN"):
        check_radians([float("nan"), 0.0], "end")
    g = analytic_grid()
    with pytest.raises(ValueError, match="degrees"):
        g.nearest_index((65.0, -30.0))
    assert g.nearest_index((math.pi - 1e-9, -math.pi)) == (0, 0)  # +pi wraps to node -pi


# ---------------------------------------------------------------- reference surface
@pytest.mark.skipif(not REFERENCE.exists(), reason="reference surface not available")
def test_reference_surface_facts():
    """Facts from shared/reference/README.md: 89 x 89, z in 0 .. 96.36, endpoint cells 0.89 and 8.89."""
    g = read_grid(REFERENCE)
    assert g.shape == (89, 89)
    assert g.z.min() == pytest.approx(0.0) and g.z.max() == pytest.approx(96.36, abs=0.01)
    assert g.z[g.nearest_index((-2.55, 2.70))] == pytest.approx(0.89, abs=0.01)
    assert g.z[g.nearest_index((0.95, -0.40))] == pytest.approx(8.89, abs=0.01)
    pot = PeriodicGridPotential(g)
    nodes = torch.from_numpy(g.nodes())
    # The file's angles carry 10 digits, so its nodes sit within ~3e-8 rad of the uniform grid.
    assert torch.allclose(pot.energy(nodes), torch.tensor(g.z), atol=1e-5, rtol=0)
