"""Physical constants and unit conversions shared by every layer (kJ/mol, K, nm).

The one place where a temperature becomes a thermal energy: :func:`boltzmann_kT` gives the
same floats, bit for bit, as OpenMM's ``(MOLAR_GAS_CONSTANT_R * T * kelvin).value_in_unit(
kilojoule_per_mole)`` without importing OpenMM.
"""

from __future__ import annotations

#: Molar gas constant ``R = N_A k_B`` in J/(K mol) (the CODATA 2018 value OpenMM uses).
MOLAR_GAS_CONSTANT = 8.31446261815324

#: ``R`` in kJ/(K mol), for the inverse conversion :func:`temperature_from_kT`.
MOLAR_GAS_CONSTANT_KJ = 0.00831446261815324


def boltzmann_kT(temperature: float) -> float:
    """Thermal energy ``k_B T`` per mole in kJ/mol for ``temperature`` in K.

    Parameters
    ----------
    temperature : float
        Temperature in K.

    Returns
    -------
    float
        ``R * T`` in kJ/mol, computed as OpenMM's unit system does (J/mol, then times 0.001),
        so that it equals ``openmm.unit`` arithmetic to the last bit.

    Examples
    --------
    >>> round(boltzmann_kT(300.0), 4)
    2.4943
    """
    return MOLAR_GAS_CONSTANT * float(temperature) * 0.001


def temperature_from_kT(kT: float) -> float:
    """Temperature in K whose thermal energy ``k_B T`` is ``kT`` kJ/mol (inverse of :func:`boltzmann_kT`).

    Parameters
    ----------
    kT : float
        Thermal energy in kJ/mol.

    Returns
    -------
    float
        ``kT / R`` in K (equal to the temperature up to rounding in the last bit).

    Examples
    --------
    >>> round(temperature_from_kT(boltzmann_kT(300.0)), 9)
    300.0
    """
    return float(kT) / MOLAR_GAS_CONSTANT_KJ


def check_radians(values, name: str):
    """Return ``values`` as a float64 tensor; reject angles outside ``[-2 pi, 2 pi]``.

    Such values are almost always degrees passed where radians are expected.

    Parameters
    ----------
    values : float or array-like of float
        Angles, rad.
    name : str
        Argument named in the error message.

    Returns
    -------
    Tensor, float64, the shape of ``values``.

    Raises
    ------
    ValueError
        If a value is not finite or lies outside ``[-2 pi, 2 pi]``.

    Examples
    --------
    >>> check_radians([-2.5, 2.7], "centers").tolist()
    [-2.5, 2.7]
    >>> check_radians([-150.0, 150.0], "centers")
    Traceback (most recent call last):
        ...
    ValueError: centers: angles must be in radians within [-2*pi, 2*pi]; got [-150.0, 150.0], which looks like degrees (convert with math.radians)
    """
    import math

    import torch

    t = torch.as_tensor(values, dtype=torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: expected finite angles in radians, got {values!r}")
    if (t.abs() > 2 * math.pi).any():
        raise ValueError(
            f"{name}: angles must be in radians within [-2*pi, 2*pi]; got {t.tolist()}, "
            "which looks like degrees (convert with math.radians)")
    return t
