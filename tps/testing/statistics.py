"""Standard errors of time averages of correlated series (block averaging, autocorrelation time).

Successive frames of a Markov chain are correlated, so ``std / sqrt(n_frames)`` underestimates
the error of a time average. Two standard remedies (Flyvbjerg and Petersen 1989; Sokal 1997):

- block averaging: split each chain into a few long contiguous blocks; if a block is much longer
  than the correlation time, block means are independent and their spread gives the error;
- the integrated autocorrelation time ``tau = 1 + 2 sum_t rho(t)`` (in frames), summed up to
  Sokal's self-consistent window ``t <= c tau``; ``n_frames / tau`` is the number of effectively
  independent samples.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["block_standard_error", "integrated_autocorrelation_time"]


def _chains(series) -> np.ndarray:
    a = np.asarray(series, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim < 2 or a.shape[1] < 2:
        raise ValueError(f"series: expected (n_frames,) or (n_chains, n_frames, ...) with n_frames >= 2, "
                         f"got shape {np.shape(series)}")
    return a


def block_standard_error(series, *, n_blocks: int = 8):
    """Mean and standard error of the mean of chains, from the spread of block means.

    Each chain is cut into ``n_blocks`` contiguous blocks of equal length (the first
    ``n_frames mod n_blocks`` frames are dropped); the block means of all chains are treated as
    independent samples, so the error is ``std(block means, ddof=1) / sqrt(n_chains * n_blocks)``.
    Blocks must be much longer than the autocorrelation time (see
    :func:`integrated_autocorrelation_time`).

    Parameters
    ----------
    series : array-like, shape ``(n_frames,)`` or ``(n_chains, n_frames, *rest)``
        Time series; independent chains along axis 0, time along axis 1; every trailing
        coordinate is treated separately.
    n_blocks : int
        Blocks per chain (``>= 1``; at least two blocks in all are needed for a spread).

    Returns
    -------
    mean : ndarray, shape ``rest`` (a float when there is no ``rest``)
        Mean over the frames used.
    standard_error : ndarray, shape ``rest`` (a float when there is no ``rest``)

    Raises
    ------
    ValueError
        If there are fewer frames than blocks or fewer than two blocks in all.

    Examples
    --------
    Independent standard normal numbers: the error is ``1 / sqrt(n)``:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((4, 2500))
    >>> mean, se = block_standard_error(x, n_blocks=10)
    >>> abs(mean) < 4 * se, round(se * 100, 1)
    (True, 1.0)
    """
    a = _chains(series)
    n_blocks = int(n_blocks)
    n_chains, n_frames = a.shape[:2]
    if n_blocks < 1 or n_frames < n_blocks or n_chains * n_blocks < 2:
        raise ValueError(f"n_blocks: need 1 <= n_blocks <= n_frames ({n_frames}) and at least two blocks in all, "
                         f"got n_blocks={n_blocks} for {n_chains} chain(s)")
    length = n_frames // n_blocks
    used = a[:, n_frames - length * n_blocks:]
    means = used.reshape(n_chains * n_blocks, length, *a.shape[2:]).mean(axis=1)
    mean = means.mean(axis=0)
    se = means.std(axis=0, ddof=1) / math.sqrt(means.shape[0])
    if a.ndim == 2:
        return float(mean), float(se)
    return mean, se


def integrated_autocorrelation_time(series, *, window_factor: float = 5.0) -> float:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_t rho(t)``, in frames.

    The autocorrelation ``rho(t)`` is averaged over chains (each about its own mean, via FFT)
    and summed up to the first lag ``M`` with ``M >= window_factor * tau(M)`` (Sokal's
    self-consistent window). Independent frames give ``tau = 1``; ``n_frames / tau`` is the
    effective number of independent samples of one chain.

    Parameters
    ----------
    series : array-like, shape ``(n_frames,)`` or ``(n_chains, n_frames)``
    window_factor : float
        ``c`` of the window rule (5 is Sokal's choice for roughly exponential decay).

    Returns
    -------
    float
        ``tau >= 1`` in frames (``inf`` for a constant series, which carries no information).

    Examples
    --------
    An AR(1) chain ``x_t = a x_{t-1} + noise`` has ``tau = (1 + a) / (1 - a)``, 3 for ``a = 0.5``:

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = np.zeros((8, 4000))
    >>> for t in range(1, 4000):
    ...     x[:, t] = 0.5 * x[:, t - 1] + rng.standard_normal(8)
    >>> round(integrated_autocorrelation_time(x), 1)
    3.0
    """
    a = _chains(series)
    if a.ndim != 2:
        raise ValueError(f"series: expected (n_frames,) or (n_chains, n_frames), got shape {np.shape(series)}")
    n = a.shape[1]
    centred = a - a.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n].mean(axis=0)
    if not acov[0] > 0:
        return math.inf
    rho = acov / acov[0]
    tau = 1.0
    for lag in range(1, n):
        tau += 2.0 * rho[lag]
        if lag >= window_factor * tau:
            break
    return max(float(tau), 1.0)
