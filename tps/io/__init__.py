"""Files in and out: atomic writes, path ensembles (npz, DCD, PDB, HDF5) and results (JSON).

- :func:`atomic_path`, :func:`write_text`, :func:`write_json`, :func:`save_torch`,
  :func:`save_npz`: a run that fails or is interrupted never leaves a half-written file.
- :func:`save_paths` / :func:`load_paths`: a :class:`tps.core.Paths` ensemble to ``.npz``
  (any system, exact) or, for molecules, through mdtraj to ``.dcd``, ``.pdb`` or ``.h5``
  (positions in nm), and back.
- :func:`save_results` / :func:`load_results`: metric rows with numpy/torch values to strict
  JSON (non-finite floats as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``), and back.
- :func:`save_reference_ensemble` / :func:`load_reference_ensemble`: reference ensembles
  (decorrelated frames, their chain, metadata) to ``.npz`` and back.
- :func:`to_json_compatible` / :func:`json_text`: THE conversion to JSON; ``nonfinite=`` names
  the spelling of NaN and infinities (``"strings"``, the CLI records' ``"null"``, the
  benchmarks' ``"tokens"``; :mod:`tps.io.results`), so each file keeps its bytes.

The writers are defined in :mod:`tps.core.atomic` (so that ``Paths.save`` can use them) and
re-exported here. ``tps.io`` imports only ``tps.core``, ``tps._validation`` and third-party
packages; OpenPathSampling export and comparison live one layer up, in :mod:`tps.interop`.
"""

from tps.io.atomic import atomic_path, save_npz, save_torch, write_json, write_text
from tps.io.results import NONFINITE_STYLES, json_text, load_results, save_results, to_json_compatible
from tps.io.reference import load_reference_ensemble, save_reference_ensemble
from tps.io.trajectories import FORMATS, load_paths, save_paths

__all__ = [
    "atomic_path", "write_text", "write_json", "save_torch", "save_npz",
    "save_paths", "load_paths", "FORMATS", "save_results", "load_results", "to_json_compatible",
    "json_text", "NONFINITE_STYLES", "save_reference_ensemble", "load_reference_ensemble",
]
