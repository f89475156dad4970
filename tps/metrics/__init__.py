"""Metrics of path ensembles (benchmarks.md section 1) and minimax lower bounds."""

from tps.metrics.convergence import histogram_jsd, jsd_noise_level, split_chain_jsd
from tps.metrics.distribution import jensen_shannon, path_density_jsd
from tps.metrics.paths import (
    barrier,
    final_frames,
    frame_steps,
    max_energy,
    max_step,
    minmax,
    summarize,
    target_hit_fraction,
)

__all__ = [
    "barrier", "final_frames", "frame_steps", "max_energy", "max_step", "minmax", "summarize",
    "target_hit_fraction", "path_density_jsd", "jensen_shannon", "split_chain_jsd", "jsd_noise_level",
    "histogram_jsd",
]
