"""E(3) equivariance check for any denoiser ``D(x, logsnr)`` on particle coordinates.

The exact denoiser ``E[x0 | x_t = x]`` of a distribution that is invariant under a group ``G``
commutes with ``G``: ``D(g x) = g D(x)``. For molecules in centred model coordinates the group is
made of rotations, reflections (unless the model is deliberately chiral), translations (which the
centred denoiser forgets: ``D(x + t) = D(x)``) and permutations of identical atoms. A network that
is built to be equivariant (e.g. :class:`tps.diffusion.egnn.EGNNDenoiser`) satisfies this to
round-off, at every logSNR and for any weights, trained or not; a generic network does not.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from tps.testing._result import CheckResult, verdict

__all__ = ["random_orthogonal", "terminal_atom_permutations", "check_equivariance", "assert_equivariant"]

#: default (rtol, atol) by dtype: round-off of a few hundred floating point operations
_TOLERANCES = {torch.float64: (1e-8, 1e-12), torch.float32: (1e-4, 1e-6)}
_TRANSLATIONS = ("invariant", "equivariant", None)


def random_orthogonal(*, det: float = 1.0, generator: Optional[torch.Generator] = None,
                      dtype=torch.float64) -> torch.Tensor:
    """A Haar-random 3x3 orthogonal matrix with the requested determinant.

    Parameters
    ----------
    det : {1.0, -1.0}
        ``+1`` for a proper rotation, ``-1`` for a rotation combined with a reflection.
    generator : torch.Generator, optional
        Source of randomness (the global torch generator if None).
    dtype : torch.dtype

    Returns
    -------
    Tensor, shape ``(3, 3)``
        ``R`` with ``R @ R.T == I`` and ``det(R) == det``; it acts on row vectors as ``x @ R``.

    Examples
    --------
    >>> import torch
    >>> R = random_orthogonal(det=-1.0, generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(R @ R.T, torch.eye(3, dtype=R.dtype)), round(float(torch.linalg.det(R)), 6)
    (True, -1.0)
    """
    if det not in (1, -1):
        raise ValueError(f"det: expected +1 or -1, got {det!r}")
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # the sign fix makes the distribution Haar
    if torch.linalg.det(q) * det < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def terminal_atom_permutations(atom_types, bonds) -> list:
    """Permutations of identical terminal atoms (e.g. the hydrogens of a methyl group).

    Terminal atoms (one bond) of the same type bonded to the same atom can always be exchanged:
    the exchange maps the bond graph onto itself and keeps every atom type, so it is a symmetry
    of any denoiser that sees only types and bonds. For each such group of ``m >= 2`` atoms one
    cyclic shift is returned (for ``m = 2`` a swap); together with the group's other elements it
    generates all its permutations.

    Parameters
    ----------
    atom_types : sequence of int, length ``n_atoms``
        E.g. ``EGNNConfig.atom_types`` or :func:`tps.diffusion.egnn.atom_types_from_topology`.
    bonds : sequence of (int, int)
        E.g. ``EGNNConfig.bonds``.

    Returns
    -------
    list of list of int
        Index permutations of ``range(n_atoms)`` for the ``permutations`` argument of
        :func:`check_equivariance`.

    Examples
    --------
    Ethane-like CH3-CH2: the three methyl hydrogens cycle, the two methylene hydrogens swap:

    >>> types = [0, 1, 2, 2, 2, 2, 2]
    >>> bonds = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6)]
    >>> terminal_atom_permutations(types, bonds)
    [[0, 1, 3, 4, 2, 5, 6], [0, 1, 2, 3, 4, 6, 5]]
    """
    n_atoms = len(atom_types)
    neighbours = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[i].append(j)
        neighbours[j].append(i)
    permutations = []
    for centre in range(n_atoms):
        groups = {}
        for atom in sorted(neighbours[centre]):
            if len(neighbours[atom]) == 1:
                groups.setdefault(atom_types[atom], []).append(atom)
        for group in groups.values():
            if len(group) >= 2:
                perm = list(range(n_atoms))
                for a, b in zip(group, group[1:] + group[:1]):
                    perm[a] = b
                permutations.append(perm)
    return permutations


def _inputs(x, logsnr, generator, dtype):
    """The batch ``(B, *event)`` and logSNR ``(B,)``: every example at every logSNR value."""
    lam = torch.as_tensor(logsnr, dtype=torch.float64).reshape(-1)
    if lam.numel() == 0 or not torch.isfinite(lam).all():
        raise ValueError(f"logsnr: expected finite values, got {logsnr!r}")
    if isinstance(x, torch.Tensor):
        x = x.detach()
        dtype = x.dtype if dtype is None else dtype
        if x.dim() == 2:
            x = x.unsqueeze(0)
    else:
        event_shape = tuple(int(n) for n in x)
        dtype = torch.float64 if dtype is None else dtype
        x = torch.randn((lam.numel(), *event_shape), generator=generator, dtype=torch.float64)
    if x.dim() < 3 or x.shape[-1] != 3:
        raise ValueError(f"x: expected positions of shape (n_atoms, 3) or (batch, n_atoms, 3) "
                         f"(or that event shape), got {tuple(x.shape)}")
    n = x.shape[0]
    x = x.to(dtype).repeat(lam.numel(), *([1] * (x.dim() - 1)))
    lam = lam.to(dtype).repeat_interleave(n)
    return x, lam, n


def _transformations(x, *, n_trials, reflections, translation, permutations, generator):
    """``(kind, forward on inputs, expected action on outputs)`` for every transformation tried."""
    spread = float(x.std()) if x.numel() > 1 else 1.0
    out = []
    for trial in range(n_trials):
        dets = (1.0, -1.0) if reflections else (1.0,)
        for det in dets:
            rot = random_orthogonal(det=det, generator=generator, dtype=x.dtype).to(x.device)
            kind = "rotation" if det > 0 else "reflection"
            out.append((kind, lambda y, r=rot: y @ r, lambda d, r=rot: d @ r))
        if translation is not None:
            shift = (3.0 * max(spread, 1.0) * torch.randn(3, generator=generator, dtype=torch.float64)).to(x)
            keep = translation == "invariant"
            out.append(("translation", lambda y, t=shift: y + t, lambda d, t=shift, k=keep: d if k else d + t))
    for perm in permutations:
        index = torch.as_tensor(perm, dtype=torch.long)
        if sorted(index.tolist()) != list(range(x.shape[1])):
            raise ValueError(f"permutations: {list(perm)} is not a permutation of range({x.shape[1]})")
        index = index.to(x.device)
        out.append(("permutation", lambda y, p=index: y[:, p], lambda d, p=index: d[:, p]))
    return out


def check_equivariance(denoiser, x, *, logsnr=(-6.0, -2.0, 0.0, 2.0, 6.0), n_trials: int = 3, seed: int = 0,
                       rtol: Optional[float] = None, atol: Optional[float] = None, reflections: bool = True,
                       translation: Optional[str] = "invariant", permutations: Sequence = (),
                       dtype=None) -> CheckResult:
    """Check ``D(g x, lam) == g D(x, lam)`` for random rotations, reflections, translations, permutations.

    Every transformation ``g`` is applied to the whole batch and the error is the relative
    Frobenius norm ``|D(g x) - g D(x)| / |D(x)|``; the check passes when, for every ``g``,
    ``|D(g x) - g D(x)| <= atol + rtol |D(x)|``.

    Parameters
    ----------
    denoiser : callable
        ``denoiser(x, logsnr)`` with ``x`` of shape ``(B, n_atoms, 3)`` and ``logsnr`` of shape
        ``(B,)``, returning ``(B, n_atoms, 3)`` (an :class:`~tps.diffusion.egnn.EGNNDenoiser`, a
        lambda around a model, an exact denoiser). Cast a network to ``dtype`` first
        (``net.double()``).
    x : Tensor of shape ``(n_atoms, 3)`` or ``(batch, n_atoms, 3)``, or tuple ``(n_atoms, 3)``
        Example positions in model coordinates, or the event shape, in which case one standard
        normal configuration per logSNR value is drawn (in float64 unless ``dtype`` says).
    logsnr : float or sequence of float
        logSNR values; every example is evaluated at every value.
    n_trials : int
        Random rotations (and as many reflections and translations) to try.
    seed : int
        Seed of the generator for the configurations, rotations and shifts.
    rtol, atol : float, optional
        Relative and absolute tolerances; by default ``1e-8, 1e-12`` in float64 and
        ``1e-4, 1e-6`` in float32 (round-off, so a true symmetry passes and a broken one fails).
    reflections : bool
        Also test improper rotations (``det R = -1``). Set False for a model that must tell
        mirror images apart (``EGNNConfig(chiral=True)``).
    translation : {"invariant", "equivariant", None}
        ``"invariant"`` (centred model coordinates): ``D(x + t) == D(x)``; ``"equivariant"``:
        ``D(x + t) == D(x) + t``; None: translations are not tested.
    permutations : sequence of sequences of int
        Permutations of the atoms (axis 1) that must commute with ``D``: ``D(x[:, P]) ==
        D(x)[:, P]``; only permutations of identical atoms (same element and bonded
        environment, e.g. the hydrogens of one methyl group) are symmetries
        (:func:`terminal_atom_permutations` lists the always-safe ones).
    dtype : torch.dtype, optional
        Cast the inputs to it (default: the dtype of ``x``, float64 for an event shape).

    Returns
    -------
    CheckResult
        ``statistic`` is the largest relative error over all transformations, ``tolerance``
        ``rtol + atol / |D(x)|``; ``details`` has the largest error per kind of transformation
        (``"rotation"``, ``"reflection"``, ``"translation"``, ``"permutation"``) and ``"output_norm"``.

    Raises
    ------
    ValueError
        For positions that are not ``(..., n_atoms, 3)``, non-finite logSNR values, an unknown
        ``translation`` or an index list that is not a permutation.

    See Also
    --------
    assert_equivariant : the same check raising ``AssertionError`` on failure.

    Examples
    --------
    The package's EGNN passes in float64; an MLP on flattened coordinates does not:

    >>> import mdtraj, torch
    >>> from tps.diffusion.egnn import EGNNConfig, EGNNDenoiser
    >>> top = mdtraj.Topology()
    >>> res = top.add_residue("H2O", top.add_chain())
    >>> o, h1, h2 = (top.add_atom(n, mdtraj.element.get_by_symbol(n[0]), res) for n in ("O", "H1", "H2"))
    >>> top.add_bond(o, h1); top.add_bond(o, h2)
    >>> _ = torch.manual_seed(0)
    >>> net = EGNNDenoiser(EGNNConfig.from_topology(top, hidden=8, n_layers=2)).double()
    >>> swap_h = terminal_atom_permutations(net.config.atom_types, net.config.bonds)
    >>> swap_h
    [[0, 2, 1]]
    >>> result = check_equivariance(net, (3, 3), permutations=swap_h)
    >>> result.passed, result.statistic < 1e-12
    (True, True)
    >>> from tps.diffusion.mlp import MLPConfig, MLPDenoiser
    >>> mlp = MLPDenoiser(MLPConfig(dim=9, hidden=16, n_blocks=1)).double()
    >>> _ = [p.data.normal_(0.0, 0.3) for p in mlp.parameters()]    # untrained: output layer is zero
    >>> flat = lambda x, lam: mlp(x.reshape(len(x), 9), lam).reshape(x.shape)
    >>> bad = check_equivariance(flat, (3, 3))
    >>> bad.passed, sorted(kind for kind, error in bad.details["errors"].items() if error > 1e-3)
    (False, ['reflection', 'rotation', 'translation'])
    """
    if translation not in _TRANSLATIONS:
        raise ValueError(f"translation: expected one of {_TRANSLATIONS}, got {translation!r}")
    n_trials = int(n_trials)
    if n_trials < 1:
        raise ValueError(f"n_trials: expected a positive integer, got {n_trials!r}")
    generator = torch.Generator().manual_seed(int(seed))
    x, lam, n_configurations = _inputs(x, logsnr, generator, dtype)
    default_rtol, default_atol = _TOLERANCES.get(x.dtype, _TOLERANCES[torch.float32])
    rtol = default_rtol if rtol is None else float(rtol)
    atol = default_atol if atol is None else float(atol)
    transformations = _transformations(x, n_trials=n_trials, reflections=reflections, translation=translation,
                                       permutations=permutations, generator=generator)

    with torch.no_grad():
        reference = denoiser(x, lam)
        if not isinstance(reference, torch.Tensor) or reference.shape != x.shape:
            shape = tuple(reference.shape) if isinstance(reference, torch.Tensor) else type(reference).__name__
            return CheckResult("equivariance", math.nan, rtol, False,
                               f"equivariance: the denoiser returned {shape} for input {tuple(x.shape)}; "
                               f"expected the input's shape", {})
        norm = float(reference.norm())
        errors = {}
        for kind, act_in, act_out in transformations:
            error = float((denoiser(act_in(x), lam) - act_out(reference)).norm())
            errors[kind] = max(errors.get(kind, 0.0), error)
    scale = max(norm, 1e-300)
    relative = {kind: error / scale for kind, error in errors.items()}
    statistic = max(relative.values()) if relative else 0.0
    if not math.isfinite(norm):
        statistic = math.nan
    tolerance = rtol + atol / scale
    passed = verdict(statistic, tolerance)
    worst = max(relative, key=relative.get) if relative else "none"
    kinds = ", ".join(f"{kind} {value:.2e}" for kind, value in relative.items())
    setting = (str(x.dtype).replace("torch.", "") + f", {n_configurations} configurations x "
               f"{x.shape[0] // n_configurations} logSNR values, {n_trials} trials")
    if passed:
        message = (f"equivariance: passed; largest relative error |D(g x) - g D(x)| / |D(x)| = {statistic:.2e} "
                   f"<= {tolerance:.2e} ({kinds}; {setting})")
    else:
        message = (f"equivariance: FAILED for {worst}: relative error |D(g x) - g D(x)| / |D(x)| = "
                   f"{statistic:.2e} > tolerance {tolerance:.2e} ({kinds}; {setting})")
    details = {"errors": relative, "output_norm": norm, "rtol": rtol, "atol": atol, "n_trials": n_trials}
    return CheckResult("equivariance", statistic, tolerance, passed, message, details)


def assert_equivariant(denoiser, x, **kwargs) -> CheckResult:
    """:func:`check_equivariance`, raising ``AssertionError`` with its message on failure.

    Parameters
    ----------
    denoiser, x, **kwargs
        As for :func:`check_equivariance`.

    Returns
    -------
    CheckResult
        The passing result.

    Raises
    ------
    AssertionError
        If the check fails; the message names the transformation and the error.

    Examples
    --------
    >>> import torch
    >>> shrink = lambda x, lam: 0.5 * (x - x.mean(dim=1, keepdim=True))   # equivariant, forgets shifts
    >>> assert_equivariant(shrink, (4, 3)).passed
    True
    >>> assert_equivariant(lambda x, lam: x + 1.0, (4, 3))
    Traceback (most recent call last):
    ...
    AssertionError: equivariance: FAILED for ...
    """
    return check_equivariance(denoiser, x, **kwargs).raise_if_failed()
