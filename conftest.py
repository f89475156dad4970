"""Settings for every pytest run from the repository root (tests, doctests in tps/, notebooks).

One torch thread: the package's tensors are small, and on a 2-core machine a second thread only
adds contention (measured 7-70x slower doctests under load).
"""

import torch

torch.set_num_threads(1)
