"""Exact denoisers: Gaussian-mixture data distributions with closed-form denoising posteriors.

A data distribution ``q(x0) = sum_k w_k N(x0; m_k, v_k I)`` in ``R^d`` (isotropic component
covariances) stays a Gaussian mixture under the variance-preserving forward process
``x_t = alpha x0 + sigma eps`` (``alpha^2 = sigmoid(lam)``, ``sigma^2 = sigmoid(-lam)``), and
so does the denoising posterior ``p(x0 | x_t)``. Per component ``k``:

- noisy marginal: ``x_t | k ~ N(alpha m_k, c_k I)`` with ``c_k = alpha^2 v_k + sigma^2``;
- posterior: ``x0 | x_t, k ~ N(pm_k, pv_k I)`` with
  ``pv_k = v_k sigma^2 / c_k = v_k / (1 + v_k exp(lam))`` and
  ``pm_k = (sigma^2 m_k + alpha v_k x_t) / c_k``;
- posterior weights ``pi_k(x_t) ~ w_k N(x_t; alpha m_k, c_k I)``.

Hence, in closed form and without autograd,

- ``E[x0 | x_t] = sum_k pi_k pm_k`` (the exact denoiser),
- ``E[||x0||^2 | x_t] = sum_k pi_k (||pm_k||^2 + d pv_k)``,
- ``grad log p_t(x_t) = sum_k pi_k (alpha m_k - x_t) / c_k``.

These are the test systems with known answers for the spacetime geometry: an instance of
:class:`GaussianMixture` *is* a denoiser callable ``denoiser(x, logsnr)``, and
:func:`exact_jeffreys` gives the Jeffreys divergence between two of its denoising
distributions exactly. Everything is batched and works in float32 and float64; events are
vectors of shape ``(d,)``.
"""

from __future__ import annotations

import math

import torch

from tps._validation import as_tensor, check_finite, check_positive_int
from tps.diffusion.schedule import LOGSNR_MAX, LOGSNR_MIN, alpha_sigma

__all__ = ["GaussianMixture", "Gaussian", "exact_jeffreys"]


class GaussianMixture:
    """Mixture of isotropic Gaussians in ``R^d`` with an exact denoiser.

    Parameters
    ----------
    weights : Tensor, shape ``(K,)``
        Positive mixture weights; normalised to sum to one.
    means : Tensor, shape ``(K, d)``
        Component means.
    variances : Tensor, shape ``(K,)``
        Positive per-coordinate variance of each component (covariance ``variances[k] * I``).

    Notes
    -----
    Parameters are stored in the dtype given (float64 when integers are passed) and cast to
    the dtype and device of ``x_t`` in every method, so one instance serves float32 and
    float64 inputs. Calling the instance is :meth:`denoise`, so it can be passed wherever a
    denoiser ``(x: (B, d), logsnr: (B,)) -> (B, d)`` is expected.

    Examples
    --------
    >>> import torch
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])
    >>> x_t = torch.zeros(1, 2, dtype=torch.float64)
    >>> gmm(x_t, torch.zeros(1, dtype=torch.float64))  # symmetric point: mean of the data
    tensor([[0., 0.]], dtype=torch.float64)
    >>> gmm.variances.tolist(), gmm.second_moment_data()   # Python floats kept in float64
    ([0.1, 0.1], 1.2)

    The score is the gradient of the noisy log density, and Tweedie's formula
    ``(alpha D - x_t) / sigma^2``:

    >>> x, lam = torch.tensor([[0.5, 0.5]], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    >>> xg = x.clone().requires_grad_(True)
    >>> (grad,) = torch.autograd.grad(gmm.noisy_log_prob(xg, lam).sum(), xg)
    >>> gmm.score(x, lam)
    tensor([[-0.1804, -0.9091]], dtype=torch.float64)
    >>> torch.allclose(grad, gmm.score(x, lam)), torch.allclose((0.5 ** 0.5 * gmm(x, lam) - x) / 0.5, grad)
    (True, True)
    """

    def __init__(self, weights, means, variances):
        weights = _as_float(weights, "weights")
        means = _as_float(means, "means")
        variances = _as_float(variances, "variances")
        if weights.dim() != 1 or weights.shape[0] == 0:
            raise ValueError(f"weights: expected shape (K,) with K >= 1, got {tuple(weights.shape)}")
        n_components = weights.shape[0]
        if means.dim() != 2 or means.shape[0] != n_components or means.shape[1] == 0:
            raise ValueError(
                f"means: expected shape (K, d) = ({n_components}, d) with d >= 1, got {tuple(means.shape)}"
            )
        if variances.shape != (n_components,):
            raise ValueError(f"variances: expected shape (K,) = ({n_components},), got {tuple(variances.shape)}")
        for t, name in ((weights, "weights"), (means, "means"), (variances, "variances")):
            check_finite(t, name)
        if not (weights > 0).all():
            raise ValueError(f"weights: expected positive values, got {weights.tolist()}")
        if not (variances > 0).all():
            raise ValueError(f"variances: expected positive values, got {variances.tolist()}")
        self.weights = weights / weights.sum()
        self.means = means
        self.variances = variances

    # ------------------------------------------------------------------ description
    @property
    def n_components(self) -> int:
        """Number of mixture components ``K``."""
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the data space."""
        return self.means.shape[1]

    @property
    def event_shape(self) -> tuple:
        """Shape ``(d,)`` of one data point."""
        return (self.dim,)

    @property
    def logsnr_range(self) -> tuple:
        """``(LOGSNR_MIN, LOGSNR_MAX)``: the exact denoiser is valid over the whole schedule."""
        return (LOGSNR_MIN, LOGSNR_MAX)

    def mean(self) -> torch.Tensor:
        """Mean of the data distribution, shape ``(d,)``."""
        return self.weights @ self.means

    def second_moment_data(self) -> float:
        """``E_q ||x0||^2`` of the data distribution (a float)."""
        return float((self.weights * ((self.means**2).sum(-1) + self.dim * self.variances)).sum())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_components={self.n_components}, dim={self.dim})"

    # ------------------------------------------------------------------ data distribution
    def sample(self, n, *, generator=None) -> torch.Tensor:
        """Draw ``n`` samples from the data distribution.

        Parameters
        ----------
        n : int
            Number of samples.
        generator : torch.Generator, optional
            Source of randomness (for reproducibility).

        Returns
        -------
        Tensor, shape ``(n, d)``, dtype of the parameters.
        """
        n = check_positive_int(n, "n")
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn((n, self.dim), dtype=self.means.dtype, generator=generator)
        return self.means[k] + self.variances[k].sqrt().unsqueeze(-1) * eps

    def log_prob(self, x) -> torch.Tensor:
        """Log density of the data distribution.

        Parameters
        ----------
        x : Tensor, shape ``(*batch, d)``

        Returns
        -------
        Tensor, shape ``(*batch,)``.
        """
        x = self._check_points(x, "x")
        w, m, v = self._params(x)
        sq = ((x.unsqueeze(-2) - m) ** 2).sum(-1)  # (*batch, K)
        log_comp = -0.5 * sq / v - 0.5 * self.dim * torch.log(2 * math.pi * v)
        return torch.logsumexp(log_comp + w.log(), dim=-1)

    # ------------------------------------------------------------------ denoising posterior
    def posterior(self, x_t, logsnr):
        """The denoising posterior ``p(x0 | x_t)`` at logSNR ``logsnr``, a Gaussian mixture.

        Parameters
        ----------
        x_t : Tensor, shape ``(*batch, d)``
            Noisy points.
        logsnr : Tensor, shape ``(*batch,)`` or broadcastable to it (e.g. a float)
            Log signal-to-noise ratio ``lam`` of each point.

        Returns
        -------
        post_weights : Tensor, shape ``(*batch, K)``
            Posterior component probabilities ``pi_k(x_t)`` (sum to one).
        post_means : Tensor, shape ``(*batch, K, d)``
            ``pm_k = (sigma^2 m_k + alpha v_k x_t) / (alpha^2 v_k + sigma^2)``.
        post_vars : Tensor, shape ``(*batch, K)``
            Per-coordinate variances ``pv_k = v_k / (1 + v_k exp(lam))``.
        """
        x_t, logsnr = self._check_inputs(x_t, logsnr)
        return self._posterior(x_t, logsnr)

    def denoise(self, x_t, logsnr) -> torch.Tensor:
        """The exact denoiser ``E[x0 | x_t]``.

        Parameters
        ----------
        x_t : Tensor, shape ``(*batch, d)``
        logsnr : Tensor, shape ``(*batch,)`` or broadcastable to it

        Returns
        -------
        Tensor, shape ``(*batch, d)``. Differentiable with respect to ``x_t``.
        """
        pi, pm, _ = self.posterior(x_t, logsnr)
        return (pi.unsqueeze(-1) * pm).sum(-2)

    __call__ = denoise

    def second_moment(self, x_t, logsnr) -> torch.Tensor:
        """``E[||x0||^2 | x_t]`` in closed form (the time part of the expectation parameter).

        Parameters
        ----------
        x_t : Tensor, shape ``(*batch, d)``
        logsnr : Tensor, shape ``(*batch,)`` or broadcastable to it

        Returns
        -------
        Tensor, shape ``(*batch,)``: ``sum_k pi_k (||pm_k||^2 + d pv_k)``.
        """
        pi, pm, pv = self.posterior(x_t, logsnr)
        return (pi * ((pm**2).sum(-1) + self.dim * pv)).sum(-1)

    def expectation_parameters(self, x_t, logsnr):
        """Closed-form expectation parameters ``(E[x0|x_t], E[||x0||^2|x_t])``.

        Returns
        -------
        mu_x : Tensor, shape ``(*batch, d)``
        mu_t : Tensor, shape ``(*batch,)``
        """
        pi, pm, pv = self.posterior(x_t, logsnr)
        mu_x = (pi.unsqueeze(-1) * pm).sum(-2)
        mu_t = (pi * ((pm**2).sum(-1) + self.dim * pv)).sum(-1)
        return mu_x, mu_t

    def denoiser_divergence(self, x_t, logsnr) -> torch.Tensor:
        """``div_x E[x0 | x_t]`` in closed form.

        Uses ``E[||x0||^2 | x_t] = (sigma^2/alpha) div_x D + ||D||^2``, i.e.
        ``div_x D = (alpha/sigma^2) * tr Cov[x0 | x_t]``.

        Returns
        -------
        Tensor, shape ``(*batch,)``.
        """
        x_t, logsnr = self._check_inputs(x_t, logsnr)
        mu_x, mu_t = self.expectation_parameters(x_t, logsnr)
        alpha, sigma = alpha_sigma(logsnr)
        return alpha / sigma**2 * (mu_t - (mu_x**2).sum(-1))

    def score(self, x_t, logsnr) -> torch.Tensor:
        """Score ``grad_x log p_t(x_t)`` of the noisy marginal at logSNR ``logsnr``.

        Parameters
        ----------
        x_t : Tensor, shape ``(*batch, d)``
        logsnr : Tensor, shape ``(*batch,)`` or broadcastable to it

        Returns
        -------
        Tensor, shape ``(*batch, d)``: ``sum_k pi_k (alpha m_k - x_t) / c_k``; equal to
        ``(alpha D - x_t) / sigma^2`` (Tweedie).
        """
        x_t, logsnr = self._check_inputs(x_t, logsnr)
        pi, c, alpha = self._responsibilities(x_t, logsnr)
        _, m, _ = self._params(x_t)
        a = alpha.unsqueeze(-1).unsqueeze(-1)
        return (pi.unsqueeze(-1) * (a * m - x_t.unsqueeze(-2)) / c.unsqueeze(-1)).sum(-2)

    def noisy_log_prob(self, x_t, logsnr) -> torch.Tensor:
        """Log density of the noisy marginal ``p_t(x_t)`` at logSNR ``logsnr``.

        Returns
        -------
        Tensor, shape ``(*batch,)``.
        """
        x_t, logsnr = self._check_inputs(x_t, logsnr)
        return torch.logsumexp(self._log_joint(x_t, logsnr)[0], dim=-1)

    # ------------------------------------------------------------------ private
    def _params(self, like: torch.Tensor):
        kw = dict(dtype=like.dtype, device=like.device)
        return self.weights.to(**kw), self.means.to(**kw), self.variances.to(**kw)

    def _check_points(self, x, name: str) -> torch.Tensor:
        x = as_tensor(x, name)
        if x.dim() < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"{name}: expected shape (*batch, {self.dim}), got {tuple(x.shape)}")
        return x

    def _check_inputs(self, x_t, logsnr):
        x_t = self._check_points(x_t, "x_t")
        logsnr = as_tensor(logsnr, "logsnr", dtype=x_t.dtype, device=x_t.device)
        try:
            logsnr = torch.broadcast_to(logsnr, x_t.shape[:-1])
        except RuntimeError as exc:
            raise ValueError(
                f"logsnr: expected shape broadcastable to the batch shape {tuple(x_t.shape[:-1])}, "
                f"got {tuple(logsnr.shape)}"
            ) from exc
        return x_t, logsnr

    def _log_joint(self, x_t, logsnr):
        """``log w_k + log N(x_t; alpha m_k, c_k I)``, shape ``(*batch, K)``, and ``c``, ``alpha``."""
        w, m, v = self._params(x_t)
        alpha, sigma = alpha_sigma(logsnr)
        a = alpha.unsqueeze(-1)  # (*batch, 1)
        c = a**2 * v + sigma.unsqueeze(-1) ** 2  # (*batch, K)
        sq = ((x_t.unsqueeze(-2) - a.unsqueeze(-1) * m) ** 2).sum(-1)  # (*batch, K)
        log_joint = w.log() - 0.5 * sq / c - 0.5 * self.dim * torch.log(2 * math.pi * c)
        return log_joint, c, alpha

    def _responsibilities(self, x_t, logsnr):
        log_joint, c, alpha = self._log_joint(x_t, logsnr)
        return torch.softmax(log_joint, dim=-1), c, alpha

    def _posterior(self, x_t, logsnr):
        pi, c, alpha = self._responsibilities(x_t, logsnr)
        _, m, v = self._params(x_t)
        sigma2 = torch.sigmoid(-logsnr).unsqueeze(-1)  # (*batch, 1)
        post_vars = v * sigma2 / c  # (*batch, K)
        a = alpha.unsqueeze(-1).unsqueeze(-1)  # (*batch, 1, 1)
        post_means = (sigma2.unsqueeze(-1) * m + a * v.unsqueeze(-1) * x_t.unsqueeze(-2)) / c.unsqueeze(-1)
        return pi, post_means, post_vars


class Gaussian(GaussianMixture):
    """A single isotropic Gaussian ``N(mean, variance I)``: the ``K = 1`` mixture.

    Its denoising posterior is one Gaussian ``N(pm, pv I)``, so the denoising distributions
    form the family of isotropic Gaussians whose Fisher-Rao geometry is hyperbolic:
    ``ds^2 = ||d pm||^2 / pv + 2 d (d sqrt(pv))^2 / pv``.

    Parameters
    ----------
    mean : Tensor, shape ``(d,)``
    variance : float
        Positive per-coordinate variance.

    Raises
    ------
    ValueError
        If ``mean`` is not a non-empty vector or ``variance`` is not one positive number.

    Examples
    --------
    The posterior is ``N(pm, pv I)`` with ``pv = v / (1 + v exp(lam))`` and
    ``pm = (sigma^2 m + alpha v x_t) / (alpha^2 v + sigma^2)``:

    >>> import torch
    >>> g = Gaussian([1.0, 0.0], 0.25)
    >>> x, lam = torch.tensor([[0.5, 0.5]], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    >>> g(x, lam), g.posterior(x, lam)[2]            # pv = 0.25 / 1.25
    (tensor([[0.9414, 0.1414]], dtype=torch.float64), tensor([[0.2000]], dtype=torch.float64))
    """

    def __init__(self, mean, variance):
        mean = _as_float(mean, "mean")
        if mean.dim() != 1 or mean.shape[0] == 0:
            raise ValueError(f"mean: expected shape (d,) with d >= 1, got {tuple(mean.shape)}")
        variance = _as_float(variance, "variance").to(mean.dtype)
        if variance.numel() != 1:
            raise ValueError(f"variance: expected a single positive number, got shape {tuple(variance.shape)}")
        if not (torch.isfinite(variance).all() and variance.item() > 0):
            raise ValueError(f"variance: expected a positive finite number, got {variance.item()!r}")
        super().__init__(torch.ones(1, dtype=mean.dtype), mean.unsqueeze(0), variance.reshape(1))

    @property
    def variance(self) -> float:
        """Per-coordinate variance of the data distribution."""
        return float(self.variances[0])

    def __repr__(self) -> str:
        return f"Gaussian(dim={self.dim}, variance={self.variance:g})"


def exact_jeffreys(gmm: GaussianMixture, x1, lam1, x2, lam2) -> torch.Tensor:
    """Jeffreys divergence between two denoising distributions of a Gaussian mixture.

    ``J = KL(p1 || p2) + KL(p2 || p1)`` with ``p_i = p(x0 | x_i, lam_i)``, computed as
    ``(eta_1 - eta_2) . (mu_1 - mu_2)`` from the natural parameters
    ``eta = (alpha/sigma^2 x, -exp(lam)/2)`` and the closed-form expectation parameters
    ``mu = (E[x0|x], E[||x0||^2|x])``.

    The identity is exact for any exponential family: with log-partition ``A``,
    ``KL(p1 || p2) = A(eta_2) - A(eta_1) - (eta_2 - eta_1) . mu_1``, and adding the reverse
    divergence cancels the ``A`` terms. The denoising distributions
    ``p(x0|x_t) ~ q(x0) exp(eta . T(x0))`` with ``T = (x0, ||x0||^2)`` form such a family
    with base measure ``q``, whatever ``q`` is; here ``mu`` is evaluated in closed form, so
    the result involves no autograd and no Monte Carlo.

    Parameters
    ----------
    gmm : GaussianMixture
        The data distribution.
    x1, x2 : Tensor, shape ``(*batch, d)``
        Noisy points.
    lam1, lam2 : Tensor, shape ``(*batch,)`` or broadcastable
        Their logSNRs.

    Returns
    -------
    Tensor, shape ``(*batch,)``, non-negative up to rounding.

    Raises
    ------
    TypeError
        If ``gmm`` is not a :class:`GaussianMixture`.

    Examples
    --------
    >>> import torch
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])
    >>> x = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    >>> exact_jeffreys(gmm, x, 1.0, x, 1.0), exact_jeffreys(gmm, x, 1.0, x + 0.1, 2.0)
    (tensor([0.], dtype=torch.float64), tensor([0.7802], dtype=torch.float64))
    """
    if not isinstance(gmm, GaussianMixture):
        raise TypeError(f"gmm: expected a GaussianMixture, got {type(gmm).__name__}")
    x1, lam1 = gmm._check_inputs(x1, lam1)
    x2, lam2 = gmm._check_inputs(x2, lam2)
    eta1_x, eta1_t = _natural(x1, lam1)
    eta2_x, eta2_t = _natural(x2, lam2)
    mu1_x, mu1_t = gmm.expectation_parameters(x1, lam1)
    mu2_x, mu2_t = gmm.expectation_parameters(x2, lam2)
    return ((eta1_x - eta2_x) * (mu1_x - mu2_x)).sum(-1) + (eta1_t - eta2_t) * (mu1_t - mu2_t)


def _natural(x, logsnr):
    """Natural parameters ``(alpha/sigma^2 x, -exp(lam)/2)`` (private copy: no spacetime import)."""
    alpha, sigma = alpha_sigma(logsnr)
    return (alpha / sigma**2).unsqueeze(-1) * x, -0.5 * torch.exp(logsnr)


def _as_float(value, name: str) -> torch.Tensor:
    # non-tensor input straight to float64 (via float32 it would lose digits: 0.1 -> 0.10000000149)
    t = as_tensor(value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64), name)
    if not isinstance(value, torch.Tensor) and not t.is_floating_point():
        t = t.to(torch.float64)
    if not isinstance(value, torch.Tensor) and t.dtype == torch.float32:
        t = t.to(torch.float64)
    return t
