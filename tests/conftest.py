"""Test-suite settings: one torch thread (small tensors; extra threads only add contention)."""

import torch

torch.set_num_threads(1)
