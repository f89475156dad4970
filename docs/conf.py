"""Sphinx configuration of the tps documentation.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Environment variables:

- ``TPS_BENCH_DIR``: output directory of ``python -m benchmarks all --quick --out DIR``; the
  benchmarks page shows its tables and figures (without it the page says that none was given).
- ``TPS_DOCS_NB_EXECUTION``: myst-nb execution mode of the notebooks, ``force`` by default
  (execute every notebook on quick settings in every build); ``cache`` reuses outputs of
  unchanged notebooks between local builds, ``off`` renders them without outputs.
- ``TPS_DOCS_MATHJAX``: a local MathJax 2 (``MathJax.js?config=...``) instead of the CDN, for a
  site read without network access (see the Math section below).
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

# Notebooks and build-time figures run on quick settings, with one torch thread (small tensors).
os.environ.setdefault("TPS_QUICK", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# (No MPLBACKEND here: the notebook kernels inherit the environment and must keep Jupyter's inline
# backend, or their figures are not captured; the plot directive picks Agg on its own.)

import tps  # noqa: E402

project = "tps"
author = "the tps authors"
copyright = "2026, the tps authors"
release = version = tps.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "myst_nb",
    "tps_docs",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_autogen", "**.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
smartquotes = False                 # keep "--option" and quotes as typed (CLI flags, code-like text)

# --- API reference: autosummary writes one page per public name; numpydoc renders the sections.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"          # the numpydoc type lines carry shapes and units
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # an override without a docstring shows no torch/stdlib text (not numpydoc)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
add_module_names = False

# --- Math: MathJax from its CDN by default. For reading the site offline, point TPS_DOCS_MATHJAX at a
# local MathJax 2 (Debian: apt-get install libjs-mathjax, then
# TPS_DOCS_MATHJAX=/usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML).
if os.environ.get("TPS_DOCS_MATHJAX"):
    mathjax_path = "file://" + os.environ["TPS_DOCS_MATHJAX"] if os.environ["TPS_DOCS_MATHJAX"].startswith("/") \
        else os.environ["TPS_DOCS_MATHJAX"]
    mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                                   "processEscapes": True, "processClass": "math|output_area"}}

# --- Markdown and notebooks.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("TPS_DOCS_NB_EXECUTION", "force")
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# --- Figures made by the build itself (docs/_ext/figures.py), small and fast.
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.dpi": 110, "savefig.bbox": "tight"}
plot_apply_rcparams = True

# --- HTML.
html_theme = "pydata_sphinx_theme"
html_title = f"tps {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_static_path = []
html_copy_source = False
