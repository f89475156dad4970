"""Building blocks of the spacetime geodesic solver (:func:`tps.spacetime.geodesic`): the result
type, endpoint checks, the objective of P curves at one resolution, the optimiser loop and the
multi-start dips. Private to :mod:`tps.spacetime.solver` apart from :class:`GeodesicResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch

from tps._validation import as_tensor, check_finite
from tps.diffusion.schedule import check_logsnr
from tps.spacetime.constraints import CurveState
from tps.spacetime.curves import line_plus_spline, spline_basis
from tps.spacetime.domain import GeodesicDiagnostics, margin, soft_clamp, soft_clamp_inverse
from tps.spacetime.geometry import rademacher, segment_terms

METHODS = ("lbfgs", "adam")
#: ``clamp`` argument -> objective: "abs" (default), "segment", "plain" (old default), "coordinate" (old clamp=True).
OBJECTIVES = {None: "abs", "abs": "abs", "segment": "segment", False: "plain", "plain": "plain", "none": "plain",
              True: "coordinate", "coordinate": "coordinate"}
#: Depths of the automatic multi-start dips below the endpoints' logSNR.
AUTO_DIP_DEPTHS = (0.0, 4.0, 8.0)


@dataclass
class GeodesicResult:
    """A solved spacetime curve.

    Attributes
    ----------
    x : Tensor, shape ``(N, *event)`` (``(P, N, *event)`` for a batch of P endpoint pairs)
        Curve points in the denoiser's coordinates.
    logsnr : Tensor, shape ``(N,)`` (or ``(P, N)``)
        Inside the denoiser's logSNR domain (``diagnostics.logsnr_range``).
    energy : Tensor, scalar (or ``(P,)``)
        Honest discrete curve energy of the returned curve: unclamped segment products, no
        penalties (negative only if the denoiser's Jacobian is not positive semi-definite).
    objective : Tensor, scalar (or ``(P,)``)
        What was minimised: the (clamped, see ``clamp``) energy plus constraint penalties.
    initial_energy, initial_objective : Tensor
        The same for the initial curve (straight line at constant logSNR by default).
    history : list of float
        Total objective (summed over pairs) at every objective evaluation (L-BFGS line-search
        evaluations included; one per step for Adam), across all stages of a multi-start solve.
    n_evaluations : int
        Objective+gradient evaluations (each evaluates all curve points of the stage).
    wall_s : float
    method : str
    nodes : Tensor, shape ``(P, n_nodes, d + 1)``
        Spline node values (space coordinates, then the unconstrained logSNR variable ``u``).
    diagnostics : GeodesicDiagnostics
        Iterations, convergence, honest energy history, negative-segment and at-bound fractions.

    Examples
    --------
    With ``max_iter=0`` the solver returns its initial curve, the straight line at constant
    logSNR:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)         # the two modes
    >>> from tps.spacetime import geodesic
    >>> res = geodesic(gmm, a, b, logsnr=4.0, n_points=9, n_nodes=4, max_iter=0, init_dips=())
    >>> res.x.shape, res.logsnr.unique(), res.nodes.shape
    (torch.Size([9, 2]), tensor([4.], dtype=torch.float64), torch.Size([1, 4, 3]))
    >>> bool(res.energy == res.initial_energy), round(float(res.energy), 1)
    (True, 111.0)
    >>> res.diagnostics.ok, res.diagnostics.logsnr_range, res.diagnostics.range_source
    (True, (-12.0, 12.0), 'model')
    """

    x: torch.Tensor
    logsnr: torch.Tensor
    energy: torch.Tensor
    objective: torch.Tensor
    initial_energy: torch.Tensor
    initial_objective: torch.Tensor
    history: list = field(default_factory=list)
    n_evaluations: int = 0
    wall_s: float = 0.0
    method: str = "lbfgs"
    nodes: Optional[torch.Tensor] = None
    diagnostics: Optional[GeodesicDiagnostics] = None


def _endpoint_logsnr(logsnr, name="logsnr"):
    try:
        [float(v) for v in (logsnr if isinstance(logsnr, (tuple, list)) else (logsnr,))]
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or a pair (logsnr_a, logsnr_b), got {logsnr!r}") from None
    if isinstance(logsnr, (tuple, list)):
        if len(logsnr) != 2:
            raise ValueError(f"{name}: expected a number or a pair (logsnr_a, logsnr_b), got {logsnr!r}")
        lam = check_logsnr(torch.tensor([float(v) for v in logsnr], dtype=torch.float64), name)
        return float(lam[0]), float(lam[1])
    lam = float(check_logsnr(torch.tensor([float(logsnr)], dtype=torch.float64), name)[0])
    return lam, lam


def _prepare_endpoints(denoiser, x_a, x_b, batched):
    x_a = as_tensor(x_a, "x_a")
    x_b = as_tensor(x_b, "x_b")
    check_finite(x_a, "x_a")
    check_finite(x_b, "x_b")
    if x_a.shape != x_b.shape:
        raise ValueError(f"x_b: expected the same shape as x_a {tuple(x_a.shape)}, got {tuple(x_b.shape)}")
    event = getattr(denoiser, "event_shape", None)
    if batched is None:
        batched = event is not None and x_a.dim() == len(event) + 1
    if event is not None:
        want = x_a.shape[1:] if batched else x_a.shape
        if tuple(want) != tuple(event):
            raise ValueError(
                f"x_a: expected shape {tuple(event)} (or (P, {', '.join(map(str, event))}) for a batch) "
                f"to match the denoiser, got {tuple(x_a.shape)}"
            )
    if not batched:
        x_a, x_b = x_a[None], x_b[None]
    return x_a, x_b, batched


class _Problem:
    """The objective of P curves at one resolution: honest energy, clamped objective, penalties."""

    def __init__(self, denoiser, x_a, x_b, lam_a, lam_b, lo, hi, n_points, n_nodes, constraints, divergence,
                 n_probes, seed, objective):
        self.denoiser, self.lo, self.hi = denoiser, lo, hi
        self.n_points, self.constraints, self.divergence, self.objective = n_points, constraints, divergence, objective
        self.lam_a, self.lam_b = lam_a, lam_b
        dtype, device = x_a.dtype, x_a.device
        self.P, self.event = x_a.shape[0], tuple(x_a.shape[1:])
        self.d = d = math.prod(self.event)
        u_a, u_b = soft_clamp_inverse(lam_a, lo, hi), soft_clamp_inverse(lam_b, lo, hi)
        self.u_a, self.u_b = u_a, u_b
        self.start = torch.cat([x_a.reshape(self.P, d), torch.full((self.P, 1), u_a, dtype=dtype, device=device)], 1)
        self.end = torch.cat([x_b.reshape(self.P, d), torch.full((self.P, 1), u_b, dtype=dtype, device=device)], 1)
        self.basis = spline_basis(n_points, n_nodes, dtype=dtype, device=device)
        self.probes = None
        if divergence == "hutchinson":
            g = torch.Generator().manual_seed(seed)
            self.probes = rademacher((n_probes, self.P, n_points) + self.event, dtype=dtype, generator=g).to(device)
        self.n_eval = 0
        self.energy_history = []

    def evaluate(self, nodes, iteration=0):
        P, n, d = self.P, self.n_points, self.d
        z = line_plus_spline(self.start, self.end, nodes, self.basis)
        x = z[..., :d].reshape((P, n) + self.event)
        lam = soft_clamp(z[..., d], self.lo, self.hi)
        first = torch.full((P, 1), self.lam_a, dtype=lam.dtype, device=lam.device)
        last = torch.full((P, 1), self.lam_b, dtype=lam.dtype, device=lam.device)
        lam = torch.cat([first, lam[:, 1:-1], last], 1)  # the endpoints exactly
        terms, (eta_x, eta_t, mu_x, mu_t) = segment_terms(self.denoiser, x, lam, divergence=self.divergence,
                                                          probes=self.probes)
        prods = terms.sum(-1)
        scale = 0.5 * (n - 1)
        energy = scale * prods.sum(1)
        if self.objective == "plain":
            objective = energy
        elif self.objective == "coordinate":
            objective = scale * terms.clamp_min(0).sum(-1).sum(1)
        elif self.objective == "segment":
            objective = scale * prods.clamp_min(0).sum(1)
        else:
            objective = scale * prods.abs().sum(1)
        if self.constraints:
            state = CurveState(x, lam, eta_x, eta_t, mu_x, mu_t, self.denoiser, iteration)
            for c in self.constraints:
                objective = objective + c.penalty(state)
        self.n_eval += 1
        self.energy_history.append(float(energy.detach().sum()))
        return x, lam, energy, objective, prods

    def dip_nodes(self, dip, dtype, device):
        """Nodes whose logSNR profile dips parabolically to ``dip`` mid-way (in the ``u`` variable)."""
        s = torch.arange(1, self.basis.shape[1] + 1, dtype=dtype, device=device) / (self.basis.shape[1] + 1)
        base = (1 - s) * self.u_a + s * self.u_b
        nodes = torch.zeros(self.P, self.basis.shape[1], self.d + 1, dtype=dtype, device=device)
        nodes[:, :, self.d] = (soft_clamp_inverse(dip, self.lo, self.hi) - base) * 4 * s * (1 - s)
        return nodes


def _optimise(problem, nodes0, *, method, max_iter, n_steps, lr, tolerance, progress):
    """Minimise ``problem``'s objective from ``nodes0``; returns the best nodes seen and run statistics."""
    nodes = nodes0.detach().clone().requires_grad_(True)
    _, _, _, o0, _ = problem.evaluate(nodes)
    best = {"obj": float(o0.detach().sum()), "nodes": nodes.detach().clone()}
    history = [best["obj"]]
    stats = {"iterations": 0, "converged": max_iter == 0 if method == "lbfgs" else False}

    def remember(obj, nodes_):
        v = float(obj.detach().sum())
        if math.isfinite(v) and v < best["obj"]:
            best["obj"], best["nodes"] = v, nodes_.detach().clone()

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter if method == "lbfgs" else n_steps, desc=f"geodesic ({method})", leave=False,
                   disable=None)
    try:
        if method == "lbfgs" and max_iter > 0:
            max_eval = max_iter * 5 // 4
            opt = torch.optim.LBFGS([nodes], lr=1.0 if lr is None else lr, max_iter=max_iter, max_eval=max_eval,
                                    history_size=20, tolerance_grad=1e-10, tolerance_change=tolerance,
                                    line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                _, _, _, obj, _ = problem.evaluate(nodes)
                total = obj.sum()
                total.backward()
                remember(obj, nodes)
                history.append(float(total.detach()))
                if bar is not None:
                    bar.update(1)
                return total

            opt.step(closure)
            st = opt.state[nodes]
            stats["iterations"] = int(st.get("n_iter", 0))
            stats["converged"] = stats["iterations"] < max_iter and int(st.get("func_evals", 0)) < max_eval
        elif method == "adam":
            opt = torch.optim.Adam([nodes], lr=0.1 if lr is None else lr)
            for step in range(n_steps):
                opt.zero_grad()
                _, _, _, obj, _ = problem.evaluate(nodes, step)
                total = obj.sum()
                total.backward()
                remember(obj, nodes)  # before the step: obj belongs to these nodes
                opt.step()
                history.append(float(total.detach()))
                stats["iterations"] = step + 1
                if bar is not None:
                    bar.update(1)
            k = max(1, n_steps // 10)
            stats["converged"] = len(history) > k and abs(history[-1] - history[-1 - k]) <= 1e-3 * abs(history[-1])
    except KeyboardInterrupt:
        pass  # keep the best curve found so far
    finally:
        if bar is not None:
            bar.close()
    return best["nodes"], history, stats


def _resolve_dips(init_dips, init_nodes, lam_a, lam_b, lo, hi):
    if init_nodes is not None:
        return (), False
    if init_dips is None or (isinstance(init_dips, str) and init_dips == "auto"):
        m = margin(lo, hi)
        top = min(lam_a, lam_b, hi - m)
        dips = []
        for depth in AUTO_DIP_DEPTHS:
            v = max(top - depth, lo + m)
            if all(abs(v - w) > 0.5 for w in dips):
                dips.append(v)
        return tuple(dips), True
    if isinstance(init_dips, str):
        raise ValueError(f"init_dips: expected 'auto', () or a sequence of logSNR values, got {init_dips!r}")
    dips = tuple(float(v) for v in init_dips)
    for v in dips:
        if not lo <= v <= hi:
            raise ValueError(f"init_dips: {v:g} is outside the logSNR domain [{lo:g}, {hi:g}]; give dips inside it")
    return dips, False
