"""Batched L-BFGS: many independent problems, one objective evaluation per step for all of them.

The starts of a multi-start geodesic solve are independent curves. Summing their energies and
handing the sum to one L-BFGS couples them through a shared step length and a shared
curvature history, so one badly scaled start (a dip deep under a constraint's penalty) slows
all the others. Here every problem keeps its own curvature pairs, its own step length
(backtracking Armijo line search) and its own stopping test, while every trial point of every
problem is evaluated in one batched call, so S starts cost about what one does.
"""

from __future__ import annotations

import math

import torch


def batched_lbfgs(fun, x0: torch.Tensor, *, max_iter: int = 100, history_size: int = 20,
                  tolerance: float = 1e-9, c1: float = 1e-4, max_backtracks: int = 20):
    """Minimise ``B`` independent objectives, batched.

    Parameters
    ----------
    fun : callable
        ``fun(x (B, ...)) -> (B,)``: the objective of every problem, differentiable; problem
        ``b`` depends on ``x[b]`` only (the gradient of the sum is then every problem's gradient).
    x0 : Tensor, shape ``(B, ...)``
        Starting points.
    max_iter : int
        Iterations (each one evaluation of all problems, plus backtracking evaluations).
    history_size : int
        Curvature pairs kept per problem.
    tolerance : float
        A problem stops when its objective changes by less than ``tolerance * max(1, |f|)``.
    c1 : float
        Armijo sufficient-decrease constant.
    max_backtracks : int
        Step reductions (safeguarded quadratic interpolation, by 2 to 1000 each) before a
        problem's step is rejected (it then restarts from steepest descent
        once, and stops if that fails too).

    Returns
    -------
    x : Tensor, shape ``(B, ...)``
        Best point of every problem (never worse than ``x0``).
    f : Tensor, shape ``(B,)``
    info : dict
        ``evaluations`` (batched calls), ``iterations``, ``converged`` (Tensor of bool, ``(B,)``)
        and ``history`` (sum of the objectives after each iteration).

    Examples
    --------
    Two independent quadratics of very different scales converge together:

    >>> import torch
    >>> scale = torch.tensor([[1.0, 10.0], [1e4, 1.0]], dtype=torch.float64)
    >>> fun = lambda x: (scale * (x - 1) ** 2).sum(1)
    >>> x, f, info = batched_lbfgs(fun, torch.zeros(2, 2, dtype=torch.float64), max_iter=50)
    >>> torch.allclose(x, torch.ones(2, 2, dtype=torch.float64), atol=1e-6), info["converged"].tolist()
    (True, [True, True])
    """
    B = x0.shape[0]
    shape = x0.shape
    n_eval = [0]

    def evaluate(x):
        xg = x.detach().reshape(shape).requires_grad_(True)
        with torch.enable_grad():
            f = fun(xg)
            (g,) = torch.autograd.grad(f.sum(), xg)
        n_eval[0] += 1
        return f.detach(), g.detach().reshape(B, -1)

    x = x0.detach().reshape(B, -1).clone()
    f, g = evaluate(x)
    S, Y, rho = [], [], []
    active = torch.isfinite(f)
    converged = torch.zeros(B, dtype=torch.bool, device=x.device)
    restarted = torch.zeros(B, dtype=torch.bool, device=x.device)
    history = [float(f.sum())]
    it = 0
    for it in range(1, max_iter + 1):
        if not bool(active.any()):
            break
        # two-loop recursion, every problem with its own pairs (rho = 0 masks an unusable pair)
        q = g.clone()
        alphas = []
        for s_, y_, r_ in zip(reversed(S), reversed(Y), reversed(rho)):
            a = r_ * (s_ * q).sum(1)
            q = q - a[:, None] * y_
            alphas.append(a)
        if S:
            gamma = torch.ones(B, dtype=x.dtype, device=x.device)
            for s_, y_, r_ in zip(S, Y, rho):  # the latest usable pair sets the scale
                yy = (y_ * y_).sum(1)
                ok = r_ > 0
                gamma = torch.where(ok, (s_ * y_).sum(1) / yy.clamp_min(1e-300), gamma)
            q = q * gamma[:, None]
        else:
            q = q * torch.clamp(1.0 / g.abs().sum(1).clamp_min(1e-300), max=1.0)[:, None]
        for s_, y_, r_, a in zip(S, Y, rho, reversed(alphas)):
            b_ = r_ * (y_ * q).sum(1)
            q = q + s_ * (a - b_)[:, None]
        d = -q
        gd = (g * d).sum(1)
        bad = ~(gd < 0) | ~torch.isfinite(gd)  # not a descent direction: steepest descent
        if bool(bad.any()):
            sd = -g * torch.clamp(1.0 / g.abs().sum(1).clamp_min(1e-300), max=1.0)[:, None]
            d = torch.where(bad[:, None], sd, d)
            gd = (g * d).sum(1)
        d = torch.where(active[:, None], d, torch.zeros_like(d))
        t = torch.ones(B, dtype=x.dtype, device=x.device)
        pending = active.clone()
        x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
        for _ in range(max_backtracks):
            trial = torch.where(pending[:, None], x + t[:, None] * d, x_new)
            ft, gt = evaluate(trial)
            ok = pending & torch.isfinite(ft) & (ft <= f + c1 * t * gd)
            x_new = torch.where(ok[:, None], trial, x_new)
            f_new = torch.where(ok, ft, f_new)
            g_new = torch.where(ok[:, None], gt, g_new)
            pending = pending & ~ok
            if not bool(pending.any()):
                break
            # safeguarded quadratic interpolation of f along d (shrinks fast after a wild trial)
            denom = 2 * (ft - f - gd * t)
            t_q = torch.where(torch.isfinite(ft) & (denom > 0), -gd * t * t / denom.clamp_min(1e-300), t * 1e-3)
            t = torch.where(pending, torch.minimum(torch.maximum(t_q, t * 1e-3), t * 0.5), t)
        failed = pending  # no acceptable step
        moved = active & ~failed
        s_new, y_new = x_new - x, g_new - g
        sy = (s_new * y_new).sum(1)
        r_new = torch.where(moved & (sy > 1e-10), 1.0 / sy.clamp_min(1e-300), torch.zeros_like(sy))
        S.append(s_new)
        Y.append(y_new)
        rho.append(r_new)
        if len(S) > history_size:
            S.pop(0), Y.pop(0), rho.pop(0)
        change = (f - f_new).abs()
        small = moved & (change <= tolerance * torch.clamp(f_new.abs(), min=1.0))
        x, f, g = x_new, f_new, g_new
        # a failed line search: drop that problem's memory and retry once from steepest descent
        retry = failed & ~restarted
        if bool(retry.any()):
            for r_ in rho:
                r_[retry] = 0.0
        restarted = (restarted & ~moved) | retry
        stop = small | (failed & ~retry) | (g.abs().amax(1) <= 1e-10)
        converged = converged | (active & stop)
        active = active & ~stop
        history.append(float(f.sum()))
    return x.reshape(shape), f, {"evaluations": n_eval[0], "iterations": it, "converged": converged,
                                 "history": history}
