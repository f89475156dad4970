"""The ``Potential`` interface: batched energies, forces from one autograd implementation,
and an evaluation counter shared by every sampler.

Conventions
-----------
- A potential maps positions of shape ``(*batch, *event_shape)`` to energies of shape
  ``(*batch,)``. For a 2-D model potential ``event_shape == (2,)``; for a molecule it is
  ``(n_atoms, 3)`` in nm.
- Energies are in ``energy_unit`` (``"dimensionless"`` for Muller-Brown, ``"kJ/mol"`` for
  force fields); ``kT`` passed to samplers is in the same unit.
- One *evaluation* is one configuration's energy, or energy and forces together, computed
  once. ``n_evals`` counts them; every sampler in the package increments it through
  :meth:`Potential.energy_and_forces`, so ``n_evals`` is the number to report.
- ``periods`` names the period of each coordinate of the event (``None`` for a
  non-periodic coordinate). Periodic differences are taken with :meth:`displacement`.
"""

from __future__ import annotations

import math

import torch

from tps._validation import as_tensor, check_event_shape, check_finite
from tps.states import periodic_difference


class Potential:
    """Base class of every potential energy surface.

    Subclasses implement :meth:`_energy` (pure, differentiable torch code) and may override
    :meth:`_energy_and_forces` with analytic forces. The public methods validate input and
    count evaluations; the private ones compute.

    Parameters
    ----------
    event_shape : tuple of int
        Shape of one configuration.
    energy_unit : str
        Unit of the returned energies.
    periods : tuple of (float or None), optional
        Period of each coordinate when ``event_shape`` is one-dimensional (e.g.
        ``(2*pi, 2*pi)`` radians for a torus of dihedral angles); ``None`` for a
        non-periodic coordinate.

    Attributes
    ----------
    n_evals : int
        Configurations evaluated so far (see the module docstring for what counts).

    Raises
    ------
    ValueError
        If ``periods`` does not have one entry per coordinate of a one-dimensional event.

    Examples
    --------
    A subclass only writes the energy; forces come from autograd and evaluations are counted:

    >>> import torch
    >>> from tps.potentials import Potential
    >>> class Quartic(Potential):
    ...     def _energy(self, x):
    ...         return (x ** 4).sum(-1)
    >>> U = Quartic((2,))
    >>> x = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    >>> U.energy(x)
    tensor([17.0000,  0.0625], dtype=torch.float64)
    >>> U.forces(x)[0]                       # -4 x**3
    tensor([-4., 32.], dtype=torch.float64)
    >>> U.n_evals
    4
    """

    def __init__(self, event_shape, *, energy_unit: str = "dimensionless", periods=None):
        self.event_shape = tuple(int(s) for s in event_shape)
        self.energy_unit = energy_unit
        if periods is not None:
            periods = tuple(None if p is None else float(p) for p in periods)
            if len(self.event_shape) != 1 or len(periods) != self.event_shape[0]:
                raise ValueError(
                    f"periods: expected one entry per coordinate of event_shape {self.event_shape}, got {periods}"
                )
        self.periods = periods
        self.n_evals = 0

    # ------------------------------------------------------------------ public API
    @property
    def dim(self) -> int:
        """Number of degrees of freedom of one configuration, ``prod(event_shape)``."""
        return math.prod(self.event_shape)

    def reset_counter(self) -> int:
        """Set the evaluation counter to zero and return its previous value.

        Returns
        -------
        int
            ``n_evals`` before the reset.
        """
        n, self.n_evals = self.n_evals, 0
        return n

    def energy(self, x, *, count: bool = True) -> torch.Tensor:
        """Potential energy.

        Parameters
        ----------
        x : Tensor or array-like, shape ``(*batch, *event_shape)``
            Positions in the potential's length unit (nm for molecules, radians for angle
            surfaces, dimensionless for Muller-Brown).
        count : bool, optional
            Add the number of configurations to ``n_evals`` (default True).

        Returns
        -------
        Tensor, shape ``(*batch,)``
            Energies in ``energy_unit``, differentiable with respect to ``x`` for the torch
            potentials.

        Raises
        ------
        TypeError
            If ``x`` cannot be converted to a floating tensor.
        ValueError
            If the trailing dimensions of ``x`` are not ``event_shape`` or ``x`` is not finite.

        Examples
        --------
        >>> import torch
        >>> from tps.potentials import Harmonic
        >>> U = Harmonic((3,), k=2.0)
        >>> U.energy(torch.ones(4, 5, 3, dtype=torch.float64)).shape   # 2/2 * 3 = 3 each
        torch.Size([4, 5])
        >>> U.n_evals
        20
        """
        x, batch = self._check(x)
        if count:
            self.n_evals += math.prod(batch)
        return self._energy(x)

    def energy_and_forces(self, x, *, count: bool = True):
        """Energy and forces (minus the gradient), counted as one evaluation per configuration.

        Parameters
        ----------
        x : Tensor or array-like, shape ``(*batch, *event_shape)``
            Positions (see :meth:`energy`).
        count : bool, optional
            Add the number of configurations to ``n_evals`` (default True).

        Returns
        -------
        energy : Tensor, shape ``(*batch,)``
            In ``energy_unit``, detached.
        forces : Tensor, shape ``(*batch, *event_shape)``
            ``-grad U`` in ``energy_unit`` per length unit (kJ/mol/nm for molecules), detached.

        Raises
        ------
        ValueError
            If ``x`` has the wrong trailing shape or is not finite.

        Examples
        --------
        Forces agree with minus the finite-difference gradient of the energy:

        >>> import torch
        >>> from tps.potentials import MullerBrown
        >>> mb = MullerBrown()
        >>> x = torch.tensor([0.1, 0.4], dtype=torch.float64)
        >>> e, f = mb.energy_and_forces(x)
        >>> h = torch.tensor([1e-6, 0.0], dtype=torch.float64)
        >>> fd = -(mb.energy(x + h) - mb.energy(x - h)) / 2e-6
        >>> bool(torch.isclose(f[0], fd, rtol=1e-6))
        True
        """
        x, batch = self._check(x)
        if count:
            self.n_evals += math.prod(batch)
        e, f = self._energy_and_forces(x)
        return e.detach(), f.detach()

    def forces(self, x, *, count: bool = True) -> torch.Tensor:
        """Forces ``-grad U``, the second output of :meth:`energy_and_forces`.

        Parameters
        ----------
        x : Tensor or array-like, shape ``(*batch, *event_shape)``
        count : bool, optional
            Add the number of configurations to ``n_evals`` (default True).

        Returns
        -------
        Tensor, shape ``(*batch, *event_shape)``
            In ``energy_unit`` per length unit.
        """
        return self.energy_and_forces(x, count=count)[1]

    def displacement(self, a, b) -> torch.Tensor:
        """``b - a`` with periodic coordinates wrapped into ``[-period/2, period/2)``.

        Parameters
        ----------
        a, b : Tensor or array-like, shape ``(*batch, *event_shape)`` (broadcastable)

        Returns
        -------
        Tensor
            The broadcast shape of ``a`` and ``b``; plain ``b - a`` when ``periods`` is None.

        Examples
        --------
        >>> import math, torch
        >>> from tps.potentials import Potential
        >>> torus = Potential((2,), periods=(2 * math.pi, None))
        >>> d = torus.displacement(torch.tensor([3.0, 3.0]), torch.tensor([-3.0, -3.0]))
        >>> [round(v, 4) for v in d.tolist()]       # the angle goes the short way round
        [0.2832, -6.0]
        """
        return periodic_difference(a, b, self.periods)

    def wrap(self, x) -> torch.Tensor:
        """Map periodic coordinates into ``[-period/2, period/2)``; identity otherwise.

        Parameters
        ----------
        x : Tensor or array-like, shape ``(*batch, *event_shape)``

        Returns
        -------
        Tensor, same shape as ``x``.
        """
        x = torch.as_tensor(x)
        return periodic_difference(torch.zeros_like(x), x, self.periods)

    # ------------------------------------------------------------- implementation
    def _energy(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _energy_and_forces(self, x: torch.Tensor):
        """Default: forces by autograd of :meth:`_energy` (the one implementation)."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            e = self._energy(xg)
            (g,) = torch.autograd.grad(e.sum(), xg)
        return e.detach(), -g

    def _check(self, x):
        x = as_tensor(x, "x")
        batch = check_event_shape(x, self.event_shape, "x")
        check_finite(x, "x")
        return x, batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}(event_shape={self.event_shape}, energy_unit={self.energy_unit!r})"
