"""Diffusion models: the logSNR schedule, denoiser networks, training and checkpoints."""

from tps.diffusion.checkpoint import DiffusionModel
from tps.diffusion.mlp import MLPConfig, MLPDenoiser
from tps.diffusion.periodic import PeriodicMLPConfig, PeriodicMLPDenoiser
from tps.diffusion.scaling import AffineScaling
from tps.diffusion.schedule import LOGSNR_MAX, LOGSNR_MIN, add_noise, alpha_sigma, check_logsnr, loss_weight
from tps.diffusion.training import (
    LOGSNR_BANDS,
    AdaptiveLogSNRSampler,
    TrainingConfig,
    TrainingResult,
    holdout_loss,
    train_denoiser,
)

__all__ = [
    "DiffusionModel", "MLPConfig", "MLPDenoiser", "PeriodicMLPConfig", "PeriodicMLPDenoiser", "AffineScaling", "LOGSNR_MIN", "LOGSNR_MAX",
    "add_noise", "alpha_sigma", "check_logsnr", "loss_weight", "LOGSNR_BANDS", "AdaptiveLogSNRSampler",
    "TrainingConfig", "TrainingResult", "holdout_loss", "train_denoiser",
]
