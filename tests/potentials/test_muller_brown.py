"""Muller-Brown: the recorded stationary points are stationary (Newton-refined), their Hessian
signatures, analytic forces = -grad U (finite differences and the base-class autograd path),
batching, the evaluation counter, the OpenMM expression against the torch energy, bad input.

Reference values: ``MullerBrown.stationary_points`` (benchmarks.md section 4, 4-decimal
coordinates, 2-decimal energies)."""

import math

import openmm
import openmm.unit as unit
import pytest
import torch

from tps.potentials import MullerBrown, Potential

torch.set_num_threads(1)

BOX = ((-1.5, 1.2), (-0.5, 2.0))  # tps.systems.muller_brown.BOX: covers basins and saddles


@pytest.fixture(scope="module")
def mb():
    return MullerBrown()


def _grad(mb, x):
    return -MullerBrown._energy_and_forces(mb, x)[1]


def _hessian(mb, x):
    return torch.autograd.functional.hessian(mb._energy, x)


def _newton(mb, x, n_iter=30):
    """Newton's method on the analytic gradient with the autograd Hessian (float64)."""
    x = x.clone()
    for _ in range(n_iter):
        x = x - torch.linalg.solve(_hessian(mb, x), _grad(mb, x))
    return x


def _box_points(n, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand((n, 2), generator=g, dtype=torch.float64)
    lo = torch.tensor([BOX[0][0], BOX[1][0]], dtype=torch.float64)
    hi = torch.tensor([BOX[0][1], BOX[1][1]], dtype=torch.float64)
    return lo + (hi - lo) * u


@pytest.mark.parametrize("name", [p.name for p in MullerBrown.stationary_points])
def test_stationary_points_refine_close_to_recorded(mb, name):
    p = mb.point(name)
    x0 = torch.tensor([p.x, p.y], dtype=torch.float64)
    x = _newton(mb, x0)
    # Newton converged to a true stationary point (gradient ~ machine precision * |U| scale).
    assert float(_grad(mb, x).norm()) < 1e-8
    # The recorded 4-decimal coordinates are within 1e-3 of it, the 2-decimal energy within 0.01.
    assert float((x - x0).norm()) < 1e-3
    assert abs(float(mb.energy(x)) - p.energy) < 0.01
    # Gradient at the recorded (rounded) point is small compared to typical gradients (~1e2-1e3).
    assert float(_grad(mb, x0).norm()) < 1.0


@pytest.mark.parametrize("name", [p.name for p in MullerBrown.stationary_points])
def test_hessian_signature(mb, name):
    p = mb.point(name)
    x = _newton(mb, torch.tensor([p.x, p.y], dtype=torch.float64))
    ev = torch.linalg.eigvalsh(_hessian(mb, x))
    if p.kind == "minimum":
        assert (ev > 0).all(), ev
    else:
        assert p.kind == "saddle"
        assert ev[0] < 0 < ev[1], ev


def test_s1_is_the_minimax_barrier(mb):
    # U(S1) > U(S2): the A-side saddle is the bottleneck of any A -> B path.
    assert mb.saddle("S1").energy > mb.saddle("S2").energy
    assert mb.minimum("A").energy < mb.minimum("B").energy < mb.minimum("intermediate").energy


def test_forces_are_minus_central_difference_gradient(mb):
    x = _box_points(64, seed=0)
    _, f = mb.energy_and_forces(x)
    h = 1e-6
    fd = torch.empty_like(x)
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        fd[:, i] = -(mb.energy(x + e) - mb.energy(x - e)) / (2 * h)
    # Central differences: truncation O(h^2 U''') and round-off O(eps |U| / h) ~ 1e-8;
    # compare relative to the force scale of each point.
    scale = f.norm(dim=-1, keepdim=True).clamp_min(1.0)
    assert torch.allclose(f / scale, fd / scale, rtol=0, atol=1e-6)


def test_analytic_forces_equal_base_class_autograd(mb):
    x = _box_points(64, seed=1)
    e_an, f_an = MullerBrown._energy_and_forces(mb, x)
    e_ag, f_ag = Potential._energy_and_forces(mb, x)
    assert torch.allclose(e_an, e_ag, rtol=1e-12, atol=1e-10)
    assert torch.allclose(f_an, f_ag, rtol=1e-10, atol=1e-9)


def test_batching_with_extra_batch_dims(mb):
    x = _box_points(24, seed=2)
    e_flat, f_flat = mb.energy_and_forces(x)
    xb = x.reshape(2, 3, 4, 2)
    e, f = mb.energy_and_forces(xb)
    assert e.shape == (2, 3, 4) and f.shape == (2, 3, 4, 2)
    assert torch.equal(e.reshape(-1), e_flat)
    assert torch.equal(f.reshape(-1, 2), f_flat)
    # One configuration at a time gives the same numbers.
    for i in (0, 7, 23):
        assert torch.allclose(mb.energy(x[i]), e_flat[i], rtol=1e-14, atol=0)
    assert mb.energy(x[0]).shape == ()


def test_n_evals_counts_configurations():
    mb = MullerBrown()
    x = _box_points(12, seed=3).reshape(3, 4, 2)
    assert mb.n_evals == 0
    mb.energy(x)
    assert mb.n_evals == 12
    mb.energy_and_forces(x[0])
    assert mb.n_evals == 16
    mb.forces(x[0, 0])
    assert mb.n_evals == 17
    mb.energy(x, count=False)
    assert mb.n_evals == 17
    assert mb.reset_counter() == 17 and mb.n_evals == 0


def test_openmm_expression_matches_torch_energy(mb):
    system = openmm.System()
    system.addParticle(1.0)
    force = openmm.CustomExternalForce(MullerBrown.openmm_expression("x", "y"))  # z is free
    force.addParticle(0, [])
    system.addForce(force)
    ctx = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
    pts = torch.cat([_box_points(8, seed=4),
                     torch.tensor([[p.x, p.y] for p in mb.stationary_points], dtype=torch.float64)])
    e_torch, f_torch = mb.energy_and_forces(pts)
    for (x, y), et, ft in zip(pts.tolist(), e_torch.tolist(), f_torch.tolist()):
        for z in (0.0, 3.7):  # the expression does not depend on z
            ctx.setPositions([openmm.Vec3(x, y, z)] * unit.nanometer)
            st = ctx.getState(getEnergy=True, getForces=True)
            e_mm = st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            f_mm = st.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)[0]
            assert math.isclose(e_mm, et, rel_tol=1e-6, abs_tol=1e-9)
            assert abs(f_mm[2]) < 1e-12
            assert math.isclose(f_mm[0], ft[0], rel_tol=1e-6, abs_tol=1e-6)
            assert math.isclose(f_mm[1], ft[1], rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize("bad", [
    torch.tensor([float("nan"), 0.0]),
    torch.tensor([[0.0, 0.0], [float("inf"), 1.0]]),
    torch.zeros(3),
    torch.zeros(4, 3),
    torch.zeros(2, 1),
])
def test_bad_positions_raise_naming_x(mb, bad):
    before = mb.n_evals
    for fn in (mb.energy, mb.energy_and_forces, mb.forces):
        with pytest.raises(ValueError, match=r"^x:"):
            fn(bad)
    assert mb.n_evals == before  # rejected input is not counted


def test_unknown_point_names(mb):
    with pytest.raises(KeyError, match="name"):
        mb.point("C")
    with pytest.raises(KeyError, match="name"):
        mb.minimum("S1")
    with pytest.raises(KeyError, match="name"):
        mb.saddle("A")
