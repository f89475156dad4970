"""OpenPathSampling (OPS) interoperability by files: export, compare and the import script.

- :func:`export_ops` (:mod:`tps.interop.ops`): transition paths, topology, OpenMM system and
  state definitions of a molecular run, written for OpenPathSampling.
- ``tps/interop/ops_to_tps.py`` (:data:`tps.interop.ops.IMPORT_SCRIPT`): the standalone script
  (no ``tps`` import) that reads an OPS storage back into the HDF5 format of
  :func:`tps.io.load_paths`; :mod:`tps.interop.ops_to_tps` when imported.
- :func:`compare_ensembles` (:mod:`tps.interop.ops_compare`): the two ensembles side by side.

This layer sits above the systems (it reads their states and OpenMM systems); ``tps.io``
does not import it.
"""

from tps.interop.ops import export_ops
from tps.interop.ops_compare import compare_ensembles

__all__ = ["export_ops", "compare_ensembles"]
