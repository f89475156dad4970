"""Training of x0-predicting denoisers with the adaptive logSNR importance sampler.

Objective: ``E_{lam ~ U[-12, 12]} E_{x0, eps} w(lam) ||D(x_t, lam) - x0||^2 / d`` with
``w(lam) = sqrt(sigmoid(lam + 2))``. ``lam`` is drawn from an adaptive histogram proposal
(Kingma & Gao 2023): bins of the recent per-``lam`` weighted loss, kept as an exponential
moving average; each sample's loss is multiplied by uniform density / proposal density, so
the objective is unchanged while its gradient variance falls.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import torch

from tps._validation import as_tensor, check_finite, check_positive_int
from tps.diffusion.schedule import LOGSNR_MAX, LOGSNR_MIN, add_noise, loss_weight


class AdaptiveLogSNRSampler:
    """Histogram proposal over logSNR adapted to the recent weighted loss.

    Parameters
    ----------
    n_bins : int
        Number of equal-width logSNR bins on ``[low, high]``.
    ema : float
        Decay of the per-bin loss average.
    floor : float
        Fraction of uniform density mixed in, so no bin is ever starved.
    low, high : float
        logSNR range (default ``[LOGSNR_MIN, LOGSNR_MAX] = [-12, 12]``).

    Examples
    --------
    Before any update the proposal is uniform, so every importance weight is 1; after one
    bin reports a large loss it is drawn more often and down-weighted:

    >>> import torch
    >>> s = AdaptiveLogSNRSampler(n_bins=4, ema=0.0)
    >>> lam, w, idx = s.sample(1000, generator=torch.Generator().manual_seed(0))
    >>> bool(lam.min() >= -12) and bool(lam.max() < 12), w.unique()
    (True, tensor([1.]))
    >>> s.update(torch.tensor([0, 1, 2, 3]), torch.tensor([7.0, 1.0, 1.0, 1.0]))
    >>> s.probabilities()                          # 0.9 * loss share + 0.1 / 4
    tensor([0.6550, 0.1150, 0.1150, 0.1150], dtype=torch.float64)
    """

    def __init__(self, *, n_bins: int = 48, ema: float = 0.99, floor: float = 0.1,
                 low: float = LOGSNR_MIN, high: float = LOGSNR_MAX):
        self.low, self.high, self.n_bins = float(low), float(high), int(n_bins)
        self.ema, self.floor = float(ema), float(floor)
        self.bin_loss = torch.ones(self.n_bins, dtype=torch.float64)

    @property
    def bin_width(self) -> float:
        """Width of one logSNR bin, ``(high - low) / n_bins``."""
        return (self.high - self.low) / self.n_bins

    def probabilities(self) -> torch.Tensor:
        """Proposal mass of each bin, shape ``(n_bins,)``, float64, summing to one."""
        p = self.bin_loss.clamp_min(1e-12)
        p = p / p.sum()
        return (1 - self.floor) * p + self.floor / self.n_bins

    def sample(self, n: int, *, generator=None, dtype=torch.float32):
        """Draw ``n`` logSNR values from the proposal.

        Parameters
        ----------
        n : int
        generator : torch.Generator, optional
        dtype : torch.dtype, optional
            Of the returned ``logsnr`` and weights (default float32).

        Returns
        -------
        logsnr : Tensor, shape ``(n,)``
            Uniform within each drawn bin.
        importance_weight : Tensor, shape ``(n,)``
            Uniform density over proposal density; multiplying per-sample losses by it keeps
            the uniform-logSNR objective unbiased.
        bin_index : Tensor of int64, shape ``(n,)``
        """
        p = self.probabilities()
        idx = torch.multinomial(p, n, replacement=True, generator=generator)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        lam = self.low + (idx.double() + u) * self.bin_width
        importance = (1.0 / self.n_bins) / p[idx]  # uniform bin mass / proposal bin mass
        return lam.to(dtype), importance.to(dtype), idx

    def update(self, idx: torch.Tensor, losses: torch.Tensor) -> None:
        """Fold per-sample weighted losses (before importance weighting) into the bin averages.

        Parameters
        ----------
        idx : Tensor of int64, shape ``(n,)``
            Bin of each sample, as returned by :meth:`sample`.
        losses : Tensor, shape ``(n,)``
            Weighted per-sample losses; bins without samples keep their average.
        """
        losses = losses.detach().double().cpu()
        sums = torch.zeros(self.n_bins, dtype=torch.float64).index_add_(0, idx, losses)
        counts = torch.zeros(self.n_bins, dtype=torch.float64).index_add_(0, idx, torch.ones_like(losses))
        seen = counts > 0
        self.bin_loss[seen] = self.ema * self.bin_loss[seen] + (1 - self.ema) * (sums[seen] / counts[seen])


@dataclass(frozen=True)
class TrainingConfig:
    """Training hyper-parameters (all keyword).

    Attributes
    ----------
    n_steps : int
        Optimiser steps.
    batch_size : int
        Configurations per step.
    lr, weight_decay : float
        AdamW learning rate (peak, after a linear warm-up, then cosine decay to 1%) and decay.
    holdout_fraction : float
        Fraction of the data kept out of training for :func:`holdout_loss`.
    warmup_steps : int
        Steps of linear learning-rate warm-up.
    grad_clip : float
        Maximal gradient norm (0 disables clipping).
    seed : int
        Seed of the data split, batches, logSNR draws and noise.
    eval_every : int
        Steps between calls of ``checkpoint_fn`` in :func:`train_denoiser`.
    holdout_per_band : int
        Held-out noisy samples per logSNR band, before and after training.

    Examples
    --------
    >>> TrainingConfig(n_steps=5, batch_size=64).lr
    0.002
    """

    n_steps: int = 4000
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 0.0
    holdout_fraction: float = 0.1
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 500
    holdout_per_band: int = 4096   # held-out samples per logSNR band, before and after training


#: logSNR bands for held-out loss reports.
LOGSNR_BANDS = ((-12.0, -6.0), (-6.0, -2.0), (-2.0, 2.0), (2.0, 6.0), (6.0, 12.0))


@dataclass
class TrainingResult:
    """What training did: loss history, held-out loss per logSNR band before and after, wall time.

    Attributes
    ----------
    history : list of (int, float)
        ``(step, training loss)`` every 50 steps (importance-weighted, loss-weighted).
    holdout_initial, holdout_final : dict of str to float
        :func:`holdout_loss` before and after training, keyed by band ``"[lo, hi)"``.
    wall_s : float
        Seconds spent in the training loop.
    n_steps_done : int
        Steps completed (fewer than ``n_steps`` after an interruption).
    interrupted : bool
        True if training was stopped by ``KeyboardInterrupt``.

    Examples
    --------
    Returned by :func:`train_denoiser` (a run is shown there); an empty result:

    >>> r = TrainingResult()
    >>> r.n_steps_done, r.interrupted, r.history
    (0, False, [])
    """

    history: list = field(default_factory=list)  # (step, train_loss)
    holdout_initial: dict = field(default_factory=dict)
    holdout_final: dict = field(default_factory=dict)
    wall_s: float = 0.0
    n_steps_done: int = 0
    interrupted: bool = False


def _flat_dim(x):
    return math.prod(x.shape[1:])


@torch.no_grad()
def holdout_loss(denoiser, data: torch.Tensor, *, bands=LOGSNR_BANDS, n_per_band: int = 4096, seed: int = 1,
                 center_fn=None) -> dict:
    """Mean unweighted denoising loss ``||D(x_t, lam) - x0||^2 / d`` per logSNR band on ``data``.

    Uses fixed noise (``seed``) so that numbers before and after training are comparable.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x (B, *event), logsnr (B,)) -> (B, *event)``; a ``training_target`` method,
        if present, gives the regression target as in :func:`train_denoiser`.
    data : Tensor, shape ``(n, *event)``
        Held-out configurations in model coordinates.
    bands : sequence of (float, float), optional
        logSNR intervals ``[lo, hi)``, default :data:`LOGSNR_BANDS`.
    n_per_band : int, optional
        Noisy samples per band (drawn with replacement from ``data``).
    seed : int, optional
        Seed of the fixed noise.
    center_fn : callable, optional
        Projection applied to the noise (as in training).

    Returns
    -------
    dict of str to float
        ``{"[lo, hi)": loss}``, in squared model units per coordinate.

    Examples
    --------
    The exact denoiser of a two-well Gaussian mixture: the loss falls from about the data
    variance at low logSNR to almost zero at high logSNR.

    >>> import torch
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])
    >>> data = gmm.sample(200, generator=torch.Generator().manual_seed(0))
    >>> loss = holdout_loss(gmm, data, n_per_band=256)
    >>> list(loss)
    ['[-12, -6)', '[-6, -2)', '[-2, 2)', '[2, 6)', '[6, 12)']
    >>> loss["[-12, -6)"] > 0.5 > 0.001 > loss["[6, 12)"]
    True
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for lo, hi in bands:
        idx = torch.randint(0, data.shape[0], (n_per_band,), generator=g)
        x0 = data[idx]
        lam = lo + (hi - lo) * torch.rand(n_per_band, generator=g, dtype=torch.float64).to(data.dtype)
        noise = torch.randn(x0.shape, generator=g, dtype=torch.float64).to(data.dtype)
        if center_fn is not None:
            noise = center_fn(noise)
        xt, _ = add_noise(x0, lam, noise)
        target_fn = getattr(denoiser, "training_target", None)
        target = x0 if target_fn is None else target_fn(x0, xt, lam)
        losses = []
        for s in range(0, n_per_band, 1024):
            pred = denoiser(xt[s:s + 1024], lam[s:s + 1024])
            losses.append((pred - target[s:s + 1024]).pow(2).flatten(1).mean(1))
        out[f"[{lo:g}, {hi:g})"] = float(torch.cat(losses).mean())
    return out


def train_denoiser(model, data, *, config: TrainingConfig = TrainingConfig(), progress: bool = True,
                   center_fn=None, checkpoint_fn=None, sampler: Optional[AdaptiveLogSNRSampler] = None) -> TrainingResult:
    """Train an x0-predicting ``model`` on ``data`` (model coordinates).

    Parameters
    ----------
    model : torch.nn.Module
        ``model(x (B, *event), logsnr (B,)) -> (B, *event)``. If it has a method
        ``training_target(x0, x_t, logsnr)``, its output replaces ``x0`` as the regression target.
    data : Tensor, shape ``(n, *event)``
        Training configurations in model coordinates (see :class:`AffineScaling`).
    config : TrainingConfig
    progress : bool
        Show a tqdm progress bar.
    center_fn : callable, optional
        Projection applied to the noise (e.g. centre-of-mass removal for molecules).
    checkpoint_fn : callable, optional
        Called as ``checkpoint_fn(step)`` every ``config.eval_every`` steps and at the end
        (including after Ctrl-C), e.g. to write an atomic checkpoint.

    sampler : AdaptiveLogSNRSampler, optional
        logSNR proposal (a fresh one on ``[-12, 12]`` by default); pass one to continue its
        adaptation, or one with a narrower ``[low, high]`` to train on that range only.

    Returns
    -------
    TrainingResult
        The trained range ``(sampler.low, sampler.high)`` is also recorded on the model as its
        ``logsnr_range`` attribute (the domain where its predictions mean anything), which
        :class:`~tps.diffusion.DiffusionModel` checkpoints and the geodesic solver respect.
        On ``KeyboardInterrupt`` training stops, the checkpoint function runs, and the partial
        result is returned with ``interrupted=True``.

    Raises
    ------
    ValueError
        If ``data`` has fewer than 10 configurations or non-finite values, or
        ``config.n_steps`` is not positive.

    Examples
    --------
    A few steps on samples of a Gaussian mixture (real runs take thousands):

    >>> import torch
    >>> torch.set_num_threads(1)          # tiny tensors: extra threads only add contention
    >>> from tps.diffusion import MLPConfig, MLPDenoiser, TrainingConfig
    >>> from tps.diffusion.gaussian import GaussianMixture
    >>> _ = torch.manual_seed(0)
    >>> gmm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.1, 0.1])
    >>> data = gmm.sample(200, generator=torch.Generator().manual_seed(0)).float()
    >>> net = MLPDenoiser(MLPConfig(dim=2, hidden=16, n_blocks=1))
    >>> config = TrainingConfig(n_steps=5, batch_size=64, warmup_steps=1, holdout_per_band=128)
    >>> result = train_denoiser(net, data, config=config, progress=False)
    >>> result.n_steps_done, result.interrupted, len(result.holdout_final), net.logsnr_range
    (5, False, 5, (-12.0, 12.0))
    """
    data = as_tensor(data, "data")
    check_finite(data, "data")
    if data.dim() < 2 or data.shape[0] < 10:
        raise ValueError(f"data: expected at least 10 configurations of shape (n, *event), got {tuple(data.shape)}")
    n_steps = check_positive_int(config.n_steps, "config.n_steps")
    param = next(model.parameters())
    data = data.to(dtype=param.dtype, device=param.device)
    g = torch.Generator().manual_seed(config.seed)
    perm = torch.randperm(data.shape[0], generator=g)
    n_hold = max(1, int(config.holdout_fraction * data.shape[0]))
    hold, train = data[perm[:n_hold]], data[perm[n_hold:]]
    sampler = sampler or AdaptiveLogSNRSampler()
    model.logsnr_range = (float(sampler.low), float(sampler.high))  # the domain travels with the model
    # a model may define its own regression target (e.g. nearest periodic image of x0)
    target_fn = getattr(model, "training_target", None)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def lr_at(step):
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        frac = (step - config.warmup_steps) / max(1, n_steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, frac))) * 0.99 + 0.01

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    result = TrainingResult()
    model.eval()
    result.holdout_initial = holdout_loss(model, hold, center_fn=center_fn, n_per_band=config.holdout_per_band)
    model.train()
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, desc="training denoiser", leave=False, disable=None)
    done = 0
    try:
        for step in range(n_steps):
            idx = torch.randint(0, train.shape[0], (config.batch_size,), generator=g)
            x0 = train[idx]
            lam, imp, bins = sampler.sample(config.batch_size, generator=g, dtype=x0.dtype)
            lam, imp = lam.to(x0.device), imp.to(x0.device)
            noise = torch.randn(x0.shape, generator=g, dtype=torch.float32).to(x0)
            if center_fn is not None:
                noise = center_fn(noise)
            xt, _ = add_noise(x0, lam, noise)
            if target_fn is not None:
                x0 = target_fn(x0, xt, lam)
            per = loss_weight(lam) * (model(xt, lam) - x0).pow(2).flatten(1).mean(1)
            loss = (imp * per).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            sampler.update(bins, per)
            done = step + 1
            if step % 50 == 0:
                result.history.append((step, float(loss.detach())))
                if bar is not None:
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if bar is not None:
                bar.update(1)
            if checkpoint_fn is not None and (step + 1) % config.eval_every == 0:
                checkpoint_fn(step + 1)
        result.n_steps_done = n_steps
    except KeyboardInterrupt:
        result.interrupted = True
        result.n_steps_done = done
    finally:
        if bar is not None:
            bar.close()
    result.wall_s = time.perf_counter() - t0
    model.eval()
    result.holdout_final = holdout_loss(model, hold, center_fn=center_fn, n_per_band=config.holdout_per_band)
    if checkpoint_fn is not None:
        checkpoint_fn(result.n_steps_done)
    return result
