"""The exponential-family geometry of denoising distributions (method.md sections 2-3).

Every function takes a *denoiser*: any callable ``denoiser(x: (B, *event), logsnr: (B,))
-> (B, *event)`` returning ``E[x0 | x_t]`` (x0-prediction), in the coordinates the diffusion
model was trained in. Nothing here depends on the package's own networks.

For data density q, the denoising distribution ``p(x0 | x_t, lam) ~ q(x0) exp(eta . T(x0))``
with ``T(x0) = (x0, ||x0||^2)``, natural parameter
``eta = (alpha/sigma^2 x_t, -alpha^2/(2 sigma^2))`` and expectation parameter
``mu = (D, sigma^2/alpha div_x D + ||D||^2)``. The Jeffreys divergence between two members is
exactly ``(eta_1 - eta_2) . (mu_1 - mu_2)``; the discrete curve energy is
``E = (N-1)/2 sum_n (eta_{n+1} - eta_n) . (mu_{n+1} - mu_n)``.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from tps._validation import as_tensor, check_finite
from tps.diffusion.schedule import alpha_sigma, check_logsnr
from tps.spacetime.domain import check_curve_range

DIVERGENCES = ("exact", "hutchinson")


def _expand(v, like):
    return v.view(v.shape + (1,) * (like.dim() - v.dim()))


def natural_parameters(x, logsnr):
    """Natural parameters of the denoising distributions at spacetime points.

    Parameters
    ----------
    x : Tensor, shape ``(B, *event)``
        Noisy states (model coordinates).
    logsnr : Tensor, shape ``(B,)``
        Inside ``[LOGSNR_MIN, LOGSNR_MAX]``.

    Returns
    -------
    eta_x : Tensor, shape ``(B, *event)``  -- ``alpha / sigma^2 * x``
    eta_t : Tensor, shape ``(B,)``         -- ``-alpha^2 / (2 sigma^2) = -exp(logsnr) / 2``

    Raises
    ------
    ValueError
        If ``x`` has no batch dimension or non-finite values, or ``logsnr`` does not match the
        batch or lies outside the schedule range.

    Examples
    --------
    >>> import torch
    >>> eta_x, eta_t = natural_parameters(torch.ones(1, 2), torch.zeros(1))
    >>> eta_x, eta_t   # alpha = sqrt(1/2), sigma^2 = 1/2
    (tensor([[1.4142, 1.4142]]), tensor([-0.5000]))
    """
    x, logsnr = _check_points(x, logsnr)
    alpha, sigma = alpha_sigma(logsnr)
    eta_x = _expand(alpha / sigma**2, x) * x
    eta_t = -0.5 * torch.exp(logsnr)
    return eta_x, eta_t


def _check_points(x, logsnr, *, validate_range=True):
    x = as_tensor(x, "x")
    check_finite(x, "x")
    if x.dim() < 2:
        raise ValueError(f"x: expected shape (B, *event) with a batch dimension, got {tuple(x.shape)}")
    logsnr = check_logsnr(logsnr, "logsnr") if validate_range else as_tensor(logsnr, "logsnr")
    logsnr = logsnr.to(dtype=x.dtype, device=x.device)
    if logsnr.shape != x.shape[:1]:
        raise ValueError(f"logsnr: expected shape ({x.shape[0]},) matching the batch of x, got {tuple(logsnr.shape)}")
    return x, logsnr


def rademacher(shape, *, dtype=torch.float64, device=None, generator=None) -> torch.Tensor:
    """Random +-1 entries (Hutchinson probes), a Tensor of ``shape``.

    Examples
    --------
    >>> import torch
    >>> v = rademacher((2, 1000), generator=torch.Generator().manual_seed(0))
    >>> v.unique().tolist(), bool(v.mean().abs() < 0.1)
    ([-1.0, 1.0], True)
    """
    r = torch.randint(0, 2, shape, generator=generator, device=device if generator is None else None)
    return (2 * r - 1).to(dtype=dtype, device=device)


def call_denoiser(denoiser: Callable, x: torch.Tensor, logsnr: torch.Tensor) -> torch.Tensor:
    """Call ``denoiser`` and check that it returned a tensor of the input's shape.

    Raises
    ------
    TypeError
        If the output is not a Tensor.
    ValueError
        If its shape differs from that of ``x``.

    Examples
    --------
    >>> import torch
    >>> call_denoiser(lambda x, lam: x[:, :1], torch.zeros(3, 2), torch.zeros(3))
    Traceback (most recent call last):
        ...
    ValueError: denoiser: expected an output of shape (3, 2) (same as x), got (3, 1)
    """
    out = denoiser(x, logsnr)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"denoiser: expected it to return a Tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise ValueError(f"denoiser: expected an output of shape {tuple(x.shape)} (same as x), got {tuple(out.shape)}")
    return out


def expectation_parameters(denoiser, x, logsnr, *, divergence: str = "exact", n_probes: int = 1,
                           generator: Optional[torch.Generator] = None, probes: Optional[torch.Tensor] = None,
                           _validate: bool = True):
    """Expectation parameters ``mu = (E[x0|x_t], E[||x0||^2 | x_t])`` from a denoiser.

    ``E[||x0||^2 | x_t] = sigma^2/alpha * div_x D(x_t, lam) + ||D||^2``.

    Parameters
    ----------
    denoiser : callable
        ``(B, *event), (B,) -> (B, *event)``.
    x : Tensor, shape ``(B, *event)``
    logsnr : Tensor, shape ``(B,)``
    divergence : {"exact", "hutchinson"}
        ``"exact"``: one backward pass per coordinate (cost grows with dimension).
        ``"hutchinson"``: ``v . (J v)`` averaged over ``n_probes`` Rademacher probes
        (one vector-Jacobian product each); unbiased.
    n_probes : int
    generator : torch.Generator, optional
        For the probes.
    probes : Tensor, shape ``(n_probes, B, *event)``, optional
        Fixed probes (common random numbers across calls), overriding ``n_probes``.

    Returns
    -------
    mu_x : Tensor, shape ``(B, *event)``
        The denoiser output ``E[x0 | x_t]`` (model coordinates).
    mu_t : Tensor, shape ``(B,)``
        ``E[||x0||^2 | x_t]`` (squared model units).

    Gradients flow to ``x`` and ``logsnr`` if they require grad (the divergence is then
    computed with ``create_graph=True``).

    Raises
    ------
    ValueError
        If ``divergence`` is unknown, the inputs are malformed (see :func:`natural_parameters`),
        ``probes`` has the wrong shape, or the denoiser's output shape differs from ``x``.
    TypeError
        If the denoiser does not return a Tensor.

    Examples
    --------
    From a Gaussian-mixture denoiser by autograd, against the mixture's closed form:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> x, lam = torch.tensor([[0.3, -0.2]], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64)
    >>> mu_x, mu_t = expectation_parameters(gmm, x, lam)
    >>> mu_x, mu_t
    (tensor([[ 0.5743, -0.0500]], dtype=torch.float64), tensor([0.8585], dtype=torch.float64))
    >>> torch.allclose(mu_t, gmm.expectation_parameters(x, lam)[1])
    True
    """
    if _validate:
        x, logsnr = _check_points(x, logsnr)
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence: expected one of {DIVERGENCES}, got {divergence!r}")
    need_graph = torch.is_grad_enabled() and (x.requires_grad or logsnr.requires_grad)
    with torch.enable_grad():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        d = call_denoiser(denoiser, xg, logsnr)
        flat = d.reshape(d.shape[0], -1)
        dim = flat.shape[1]
        if divergence == "exact":
            div = _exact_divergence(d, xg, dim, need_graph)
        else:
            if probes is None:
                probes = rademacher((n_probes,) + tuple(x.shape), dtype=d.dtype, device=d.device, generator=generator)
            elif probes.shape[1:] != x.shape:
                raise ValueError(f"probes: expected shape (n_probes, {', '.join(map(str, x.shape))}), got {tuple(probes.shape)}")
            div = torch.zeros(d.shape[0], dtype=d.dtype, device=d.device)
            for k in range(probes.shape[0]):
                v = probes[k]
                (vj,) = torch.autograd.grad(d, xg, grad_outputs=v, create_graph=need_graph, retain_graph=True)
                div = div + (vj * v).reshape(v.shape[0], -1).sum(1)
            div = div / probes.shape[0]
    if not need_graph:
        d, div = d.detach(), div.detach()
    alpha, sigma = alpha_sigma(logsnr)
    mu_t = sigma**2 / alpha * div + d.reshape(d.shape[0], -1).pow(2).sum(1)
    return d, mu_t


def _exact_divergence(d, xg, dim, create_graph):
    """Trace of dD/dx per batch member: all ``dim`` vector-Jacobian products in one batched
    backward pass (``is_grads_batched``, about twice as fast as a loop for small ``dim``), with
    a plain loop as fallback for networks whose operations cannot be batched that way."""
    B = d.shape[0]
    try:
        eye = torch.eye(dim, dtype=d.dtype, device=d.device)
        cot = eye[:, None, :].expand(dim, B, dim).reshape((dim,) + tuple(d.shape))
        (g,) = torch.autograd.grad(d, xg, grad_outputs=cot, is_grads_batched=True, create_graph=create_graph,
                                   retain_graph=True)
        g = g.reshape(dim, B, dim)
        return torch.diagonal(g, dim1=0, dim2=2).sum(-1)
    except RuntimeError:
        flat = d.reshape(B, -1)
        div = torch.zeros(B, dtype=d.dtype, device=d.device)
        for i in range(dim):
            (g,) = torch.autograd.grad(flat[:, i].sum(), xg, create_graph=create_graph, retain_graph=True)
            div = div + g.reshape(B, -1)[:, i]
        return div


def _curve_inputs(x, logsnr, denoiser=None, logsnr_range=None):
    """Accept a curve ``(N, *event)`` with logsnr ``(N,)`` or curves ``(P, N, *event)`` with ``(P, N)``
    (``event`` the denoiser's ``event_shape`` when it has one) inside the denoiser's logSNR domain."""
    x = as_tensor(x, "x")
    check_finite(x, "x")
    logsnr = check_logsnr(logsnr, "logsnr").to(dtype=x.dtype, device=x.device)
    if logsnr.dim() not in (1, 2) or tuple(x.shape[: logsnr.dim()]) != tuple(logsnr.shape):
        raise ValueError(
            f"logsnr: expected shape (N,) for a curve x of shape (N, *event), or (P, N) for curves (P, N, *event); "
            f"got logsnr {tuple(logsnr.shape)} with x {tuple(x.shape)}"
        )
    if logsnr.shape[-1] < 2:
        raise ValueError(f"x: a curve needs at least 2 points, got {logsnr.shape[-1]}")
    event = getattr(denoiser, "event_shape", None)
    if event is not None and tuple(x.shape[logsnr.dim():]) != tuple(event):
        raise ValueError(f"x: expected curve points of shape {tuple(event)} to match the denoiser, "
                         f"got x of shape {tuple(x.shape)}")
    check_curve_range(denoiser, logsnr, logsnr_range)
    return x, logsnr


def segment_products(denoiser, x, logsnr, *, divergence="exact", probes=None, clamp=False, generator=None,
                     return_parameters=False):
    """``<eta_{n+1} - eta_n, mu_{n+1} - mu_n>`` for each segment of one or more curves.

    Each product is the Jeffreys divergence between the denoising distributions at
    neighbouring curve points. Inputs are not validated here (see :func:`curve_energy`).

    Parameters
    ----------
    denoiser : callable
        ``(B, *event), (B,) -> (B, *event)`` x0-predictor.
    x : Tensor, shape ``(P, N, *event)``
        P curves of N points (model coordinates).
    logsnr : Tensor, shape ``(P, N)``
    divergence : {"exact", "hutchinson"}
        See :func:`expectation_parameters`.
    probes : Tensor, shape ``(n_probes, P, N, *event)``, optional
        Fixed Hutchinson probes.
    clamp : bool
        Clamp each per-coordinate product at zero before summing (the authors' notebooks do
        this for numerical safety; exact arithmetic makes the sum non-negative anyway).
    generator : torch.Generator, optional
        For Hutchinson probes drawn here.
    return_parameters : bool
        Also return the natural and expectation parameters of every point.

    Returns
    -------
    Tensor, shape ``(P, N-1)`` (and the parameters ``(eta_x, eta_t, mu_x, mu_t)`` reshaped to
    ``(P, N, ...)`` when ``return_parameters``).

    Examples
    --------
    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    >>> line = a + torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * (b - a)    # (9, 2)
    >>> lam = torch.full((9,), 4.0, dtype=torch.float64)
    >>> prods = segment_products(gmm, line[None], lam[None])
    >>> prods.shape, bool((prods >= 0).all())
    (torch.Size([1, 8]), True)
    """
    prod, params = segment_terms(denoiser, x, logsnr, divergence=divergence, probes=probes, generator=generator)
    if clamp:
        prod = prod.clamp_min(0)
    out = prod.sum(-1)
    if return_parameters:
        return out, params
    return out


def segment_terms(denoiser, x, logsnr, *, divergence="exact", probes=None, generator=None):
    """Per-coordinate terms ``(eta_{n+1} - eta_n)_i (mu_{n+1} - mu_n)_i`` of every segment, unclamped.

    Their sum over the last axis is :func:`segment_products`; the solver clamps them in
    different ways for its objective while reporting the honest sum.

    Parameters
    ----------
    denoiser, x, logsnr, divergence, probes, generator
        As in :func:`segment_products` (``x`` of shape ``(P, N, *event)``, ``logsnr`` ``(P, N)``).

    Returns
    -------
    terms : Tensor, shape ``(P, N - 1, d + 1)``
        Space coordinates first, the noise coordinate last.
    parameters : tuple
        ``(eta_x (P, N, d), eta_t (P, N), mu_x (P, N, d), mu_t (P, N))``.

    Examples
    --------
    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> x = torch.tensor([[[0.0, 0.0], [0.5, 0.0]]], dtype=torch.float64)
    >>> terms, _ = segment_terms(gmm, x, torch.full((1, 2), 2.0, dtype=torch.float64))
    >>> terms.shape, torch.allclose(terms.sum(-1), segment_products(gmm, x, torch.full((1, 2), 2.0, dtype=torch.float64)))
    (torch.Size([1, 1, 3]), True)
    """
    P, N = logsnr.shape
    event = tuple(x.shape[2:])
    xf = x.reshape((P * N,) + event)
    lf = logsnr.reshape(P * N)
    alpha, sigma = alpha_sigma(lf)
    eta_x = _expand(alpha / sigma**2, xf) * xf
    eta_t = -0.5 * torch.exp(lf)
    pf = None if probes is None else probes.reshape((probes.shape[0], P * N) + event)
    mu_x, mu_t = expectation_parameters(denoiser, xf, lf, divergence=divergence, probes=pf, generator=generator,
                                        _validate=False)
    eta_x, mu_x = eta_x.reshape(P, N, -1), mu_x.reshape(P, N, -1)
    eta_t, mu_t = eta_t.reshape(P, N, 1), mu_t.reshape(P, N, 1)
    d_eta = torch.cat([eta_x[:, 1:] - eta_x[:, :-1], eta_t[:, 1:] - eta_t[:, :-1]], dim=-1)
    d_mu = torch.cat([mu_x[:, 1:] - mu_x[:, :-1], mu_t[:, 1:] - mu_t[:, :-1]], dim=-1)
    return d_eta * d_mu, (eta_x, eta_t[..., 0], mu_x, mu_t[..., 0])


def curve_energy(denoiser, x, logsnr, *, divergence: str = "exact", clamp: bool = False, probes=None,
                 generator=None, logsnr_range=None) -> torch.Tensor:
    """Discrete Fisher-Rao energy ``(N-1)/2 * sum_n <eta_{n+1}-eta_n, mu_{n+1}-mu_n>``.

    Parameters
    ----------
    denoiser : callable
    x : Tensor, shape ``(N, *event)`` (or ``(P, N, *event)`` for P curves)
    logsnr : Tensor, shape ``(N,)`` (or ``(P, N)``)
    divergence : {"exact", "hutchinson"}
        See :func:`expectation_parameters`.
    clamp : bool
        See :func:`segment_products`.
    probes : Tensor, optional
        Fixed Hutchinson probes, shape ``(n_probes, P, N, *event)``.
    generator : torch.Generator, optional
        For Hutchinson probes.
    logsnr_range : (float, float), optional
        The denoiser's valid logSNR domain (default: its ``logsnr_range`` attribute, as on a
        :class:`~tps.diffusion.DiffusionModel` and its network). When a domain is known, a curve
        that leaves it is refused: the energy would be that of an extrapolating network.

    Returns
    -------
    Tensor, scalar (or ``(P,)``). Each summand is the Jeffreys divergence between neighbouring
    denoising distributions, so no log-partition function and no simulation is needed.

    Raises
    ------
    ValueError
        If the shapes of ``x`` and ``logsnr`` do not match, a curve has fewer than 2 points,
        a value is not finite or outside the schedule's logSNR range, or the curve leaves the
        denoiser's domain.

    Examples
    --------
    A two-point curve has energy ``J / 2``, half the closed-form Jeffreys divergence:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> from tps.diffusion.gaussian import exact_jeffreys
    >>> x = torch.tensor([[0.3, -0.2], [0.5, 0.1]], dtype=torch.float64)
    >>> lam = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> curve_energy(gmm, x, lam)
    tensor(0.5104, dtype=torch.float64)
    >>> 0.5 * exact_jeffreys(gmm, x[:1], lam[:1], x[1:], lam[1:])
    tensor([0.5104], dtype=torch.float64)
    """
    x, logsnr = _curve_inputs(x, logsnr, denoiser, logsnr_range)
    single = logsnr.dim() == 1
    if single:
        x, logsnr = x[None], logsnr[None]
    prod = segment_products(denoiser, x, logsnr, divergence=divergence, clamp=clamp, probes=probes, generator=generator)
    energy = 0.5 * (prod.shape[1]) * prod.sum(1)
    return energy[0] if single else energy


def curve_length(denoiser, x, logsnr, *, divergence: str = "exact", clamp: bool = False, probes=None,
                 generator=None, logsnr_range=None) -> torch.Tensor:
    """Discrete Fisher-Rao length ``sum_n sqrt(<eta_{n+1}-eta_n, mu_{n+1}-mu_n>)``.

    Segment products are clamped at zero before the square root (``clamp`` applies the
    per-coordinate clamp of :func:`segment_products` as well when True). Parameters (including
    ``logsnr_range``), shapes and errors as in :func:`curve_energy`.

    Returns
    -------
    Tensor, scalar (or ``(P,)``), dimensionless.

    Examples
    --------
    By Cauchy-Schwarz ``L^2 <= 2 E``, with equality for a curve of constant speed; the straight
    line between the two modes at logSNR 4 is close to that:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    >>> line = a + torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * (b - a)    # (9, 2)
    >>> lam = torch.full((9,), 4.0, dtype=torch.float64)
    >>> L, E = curve_length(gmm, line, lam), curve_energy(gmm, line, lam)
    >>> round(float(L), 2), round(float(L ** 2 / (2 * E)), 3)
    (14.79, 0.985)
    """
    x, logsnr = _curve_inputs(x, logsnr, denoiser, logsnr_range)
    single = logsnr.dim() == 1
    if single:
        x, logsnr = x[None], logsnr[None]
    prod = segment_products(denoiser, x, logsnr, divergence=divergence, clamp=clamp, probes=probes, generator=generator)
    length = prod.clamp_min(0).sqrt().sum(1)
    return length[0] if single else length


def kl_along_curve(eta_x, eta_t, mu_x, mu_t, mu_star_x, mu_star_t):
    """Relative ``KL(p(.|z*) || p(.|gamma_k))`` along discretised curves, up to the constant ``KL(z*||gamma_0)``.

    ``KL_rel_k = sum_{n<k} (eta_{n+1} - eta_n) . ((mu_n + mu_{n+1})/2 - mu*)`` (trapezoid rule of
    ``integral (d eta/du) . (mu(gamma_u) - mu*) du``).

    Parameters
    ----------
    eta_x, mu_x : Tensor, shape ``(P, N, d)``
        Natural and expectation parameters of the space part along P curves (e.g. from
        ``segment_products(..., return_parameters=True)``).
    eta_t, mu_t : Tensor, shape ``(P, N)``
        The noise part.
    mu_star_x : Tensor, shape ``(d,)``; mu_star_t : scalar Tensor
        Expectation parameters of the reference point ``z*``.

    Returns
    -------
    Tensor, shape ``(P, N)`` with ``KL_rel_0 = 0``.

    Examples
    --------
    With ``z*`` the first curve point the relative KL is ``KL(gamma_0 || gamma_k) >= 0``, and it
    grows along the line away from it:

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])   # exact denoiser
    >>> a, b = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    >>> line = a + torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * (b - a)    # (9, 2)
    >>> lam = torch.full((9,), 4.0, dtype=torch.float64)
    >>> _, (eta_x, eta_t, mu_x, mu_t) = segment_products(gmm, line[None], lam[None], return_parameters=True)
    >>> kl = kl_along_curve(eta_x, eta_t, mu_x, mu_t, mu_x[0, 0], mu_t[0, 0])
    >>> kl.shape, float(kl[0, 0]), bool((kl.diff(dim=1) > 0).all())
    (torch.Size([1, 9]), 0.0, True)
    """
    d_eta_x = eta_x[:, 1:] - eta_x[:, :-1]
    d_eta_t = eta_t[:, 1:] - eta_t[:, :-1]
    mid_x = 0.5 * (mu_x[:, 1:] + mu_x[:, :-1]) - mu_star_x
    mid_t = 0.5 * (mu_t[:, 1:] + mu_t[:, :-1]) - mu_star_t
    inc = (d_eta_x * mid_x).sum(-1) + d_eta_t * mid_t
    zero = torch.zeros_like(inc[:, :1])
    return torch.cat([zero, torch.cumsum(inc, dim=1)], dim=1)
