"""The lowest layer: the data containers and constants every other layer shares.

- :class:`Paths` (:mod:`tps.core.paths`): an ensemble of transition-path frames with their
  energies, evaluation count and ``kT``; every sampler returns one.
- :func:`boltzmann_kT` (:mod:`tps.core.units`): ``k_B T`` in kJ/mol from a temperature in K;
  :func:`check_radians` refuses angles that look like degrees.
- :func:`atomic_path` and the writers of :mod:`tps.core.atomic`: a file is either written
  completely or not at all (re-exported by :mod:`tps.io`, where callers normally find them).

``tps.core`` imports nothing from the rest of ``tps`` (only ``tps._validation`` and
third-party packages), so any layer may import it.
"""

from tps.core.atomic import atomic_path
from tps.core.paths import Paths
from tps.core.units import MOLAR_GAS_CONSTANT, MOLAR_GAS_CONSTANT_KJ, boltzmann_kT, check_radians, temperature_from_kT

__all__ = ["Paths", "boltzmann_kT", "temperature_from_kT", "check_radians", "MOLAR_GAS_CONSTANT", "MOLAR_GAS_CONSTANT_KJ", "atomic_path"]
