"""Sphinx extension of the tps documentation: pages generated from the package at build time.

- API reference: one page per sub-package listing every name in its ``__all__``, and one page
  per public module (no underscore in its dotted name) listing its own public names that the
  package does not re-export (its ``__all__`` if it has one, else the functions and classes it
  defines). :mod:`sphinx.ext.autosummary` then writes one page per name. Nothing is listed by
  hand, so a new public name appears in the reference without editing the docs.
- Notebooks: ``notebooks/*.ipynb`` are copied (without outputs, as committed) into
  ``docs/notebooks/`` for myst-nb, which executes them during the build.
- Benchmarks: ``docs/_autogen/benchmarks.md`` (tables and figures) from the output directory of
  ``python -m benchmarks all --quick --out DIR`` named by the environment variable
  ``TPS_BENCH_DIR``; without it, a page that says that no directory was given.

Every generated file is written only when its content changes, so incremental builds stay
incremental. All generated paths are in ``.gitignore``.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
import json
import os
import pkgutil
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
API_DIR = DOCS / "api" / "modules"
NOTEBOOK_DIR = DOCS / "notebooks"
AUTOGEN = DOCS / "_autogen"

#: Sub-packages in the order of the package's layers, bottom up (tps/__init__.py, ARCHITECTURE.md);
#: any other public sub-package found in ``tps/`` follows them in alphabetical order.
PACKAGES = ("core", "io", "potentials", "diffusion", "spacetime", "parallel", "engines", "sampling", "metrics",
            "baselines", "workflows", "pretrained", "systems", "interop", "pipeline", "cli", "testing")


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _copy_if_changed(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _module_names(mod) -> list:
    """The public names a module owns: ``__all__``, else the functions and classes defined in it."""
    names = getattr(mod, "__all__", None)
    if names is not None:
        missing = [n for n in names if not hasattr(mod, n)]
        if missing:
            logger.warning(f"{mod.__name__}.__all__ names {missing}, which the module does not define")
        return [n for n in names if hasattr(mod, n)]
    return [k for k, v in vars(mod).items()
            if not k.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
            and getattr(v, "__module__", None) == mod.__name__]


def _autosummary(module: str, names: list) -> str:
    lines = [f".. currentmodule:: {module}", "", ".. autosummary::", "   :toctree: ../generated", ""]
    lines += [f"   {n}" for n in names]
    return "\n".join(lines) + "\n"


def _docname(module: str) -> str:
    """Page name of a module: dots become underscores (``tps.sampling.md`` must not end in ``.md``)."""
    return module.replace(".", "_")


def _page(title: str, module: str, intro: str, names: list, extra: str = "") -> str:
    underline = "=" * len(title)
    body = [title, underline, "", f".. automodule:: {module}", "   :no-members:", "", intro, ""]
    if names:
        body.append(_autosummary(module, names))
    if extra:
        body.append(extra)
    return "\n".join(body)


def generate_api() -> list:
    """Write ``docs/api/modules/*.rst``; return the page names in order."""
    import tps

    pages = []
    exported = set()
    subpackages = {}
    found = sorted(m.name for m in pkgutil.iter_modules(tps.__path__) if m.ispkg and not m.name.startswith("_"))
    packages = [p for p in PACKAGES if p in found] + [p for p in found if p not in PACKAGES]
    classes = set()  # autodoc registers a class under its canonical name: document each class once

    def once(obj_of, names):
        keep = []
        for n in names:
            obj = obj_of(n)
            if inspect.isclass(obj):
                if id(obj) in classes:
                    continue
                classes.add(id(obj))
            keep.append(n)
        return keep

    for name in packages:
        pkg = importlib.import_module(f"tps.{name}")
        all_names = _module_names(pkg) if hasattr(pkg, "__all__") else []
        exported.update(id(getattr(pkg, n)) for n in all_names)
        subpackages[name] = (pkg, once(lambda n: getattr(pkg, n), all_names))
    modules = {name: [] for name in packages}
    top_modules = []
    for info in pkgutil.walk_packages(tps.__path__, "tps."):
        parts = info.name.split(".")
        if info.ispkg or any(p.startswith("_") for p in parts[1:]):
            continue
        mod = importlib.import_module(info.name)
        own = once(lambda n: getattr(mod, n), [n for n in _module_names(mod) if id(getattr(mod, n)) not in exported])
        if not own:
            continue
        if len(parts) == 2:
            top_modules.append((info.name, own))
        elif parts[1] in modules:
            modules[parts[1]].append((info.name, own))
    for name in packages:
        pkg, names = subpackages[name]
        extra = ""
        if modules[name]:
            extra = "Modules\n-------\n\nPublic names of the modules that ``tps.{}`` does not re-export " \
                    "(some load OpenMM, so they are imported on demand):\n\n.. toctree::\n   :maxdepth: 1\n\n".format(name)
            extra += "".join(f"   {_docname(m)}\n" for m, _ in modules[name])
            for module, own in modules[name]:
                _write_if_changed(API_DIR / f"{_docname(module)}.rst",
                                  _page(f"``{module}``", module, "", own))
        intro = "" if names else "This package exports no names of its own; its modules are listed below."
        _write_if_changed(API_DIR / f"{_docname(f'tps.{name}')}.rst",
                          _page(f"``tps.{name}``", f"tps.{name}", intro, names, extra))
        pages.append(_docname(f"tps.{name}"))
    for module, own in top_modules:
        _write_if_changed(API_DIR / f"{_docname(module)}.rst", _page(f"``{module}``", module, "", own))
        pages.append(_docname(module))
    for stale in API_DIR.glob("*.rst"):
        if stale.stem != "index" and stale.stem not in pages and not any(
                stale.stem == _docname(m) for ms in modules.values() for m, _ in ms):
            stale.unlink()
    index = ["API reference", "=============", "",
             "Every public name of the package, generated from each sub-package's ``__all__`` and from",
             "the public modules' own names. Each entry shows its numpydoc sections (parameters with",
             "shapes and units, returns, raises, examples that run as doctests).", "",
             ".. toctree::", "   :maxdepth: 2", ""]
    index += [f"   {p}" for p in pages]
    _write_if_changed(API_DIR / "index.rst", "\n".join(index) + "\n")
    return pages


def copy_notebooks() -> list:
    """Copy ``notebooks/*.ipynb`` into ``docs/notebooks/``; return their stems."""
    stems = []
    for src in sorted((ROOT / "notebooks").glob("*.ipynb")):
        _copy_if_changed(src, NOTEBOOK_DIR / src.name)
        stems.append(src.stem)
    for stale in NOTEBOOK_DIR.glob("*.ipynb"):
        if stale.stem not in stems:
            stale.unlink()
    return stems


# --------------------------------------------------------------------------------------------
# Benchmarks page


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}".replace(",", "\u202f")
    if isinstance(v, float):
        if v != v:
            return "-"
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1e5:
            return f"{v:.3g}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 10:
            return f"{v:.2f}"
        return f"{v:.3g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(rows: list, keys: list) -> str:
    def present(v):
        return v is not None and not (isinstance(v, float) and v != v)

    keys = [k for k in keys if any(present(r.get(k)) for r in rows)]
    if not keys:
        return ""
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |")
    return "\n".join(out) + "\n"


#: Columns of the per-system tables (the metrics of benchmarks.md section 1), when present.
ROW_KEYS = ["method", "n_paths", "max_energy_mean", "max_energy_std", "minmax", "lower_bound", "barrier_mean",
            "max_step", "target_hit_fraction", "rmsd_to_target", "path_density_jsd", "n_energy_evals",
            "evals_per_path", "n_training_energy_evals", "wall_s"]


def _text(v) -> str:
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_text(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_text(x) for x in v)
    return _fmt(v)


def _figure(src: Path, name: str, caption: str) -> list:
    return [f"```{{figure}} /_autogen/bench/{name}", f":alt: {caption}", ":width: 100%", "", caption, "```", ""]


def benchmarks_page(bench_dir) -> tuple:
    """Markdown body of the benchmarks page and the figures to copy: ``(text, {src: name})``.

    ``bench_dir`` is the ``--out`` directory of ``python -m benchmarks all``: ``summary.json``
    (suite settings, per-system status and hardware, one row per system and method) and
    ``<system>/results.json`` (rows, protocol, notes) with the figures ``<system>/*.png``.
    """
    if not bench_dir:
        return ("```{note}\nNo benchmark directory was given to this build (environment variable "
                "`TPS_BENCH_DIR`), so this page shows no measurements. Run `python -m benchmarks all "
                "--quick --out DIR` and build with `TPS_BENCH_DIR=DIR` (continuous integration does "
                "both) to fill it.\n```\n", {})
    bench = Path(bench_dir)
    summary_path = bench / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"TPS_BENCH_DIR={bench_dir}: no summary.json there; expected the --out "
                                "directory of `python -m benchmarks all`")
    summary = json.loads(summary_path.read_text())
    systems = summary.get("systems", {})
    written = datetime.datetime.fromtimestamp(summary_path.stat().st_mtime, datetime.timezone.utc)
    command = "python -m benchmarks all" + (" --quick" if summary.get("quick") else "") + \
        (f" --seed {summary['seed']}" if summary.get("seed") is not None else "")
    hardware = sorted({info["hardware"] for info in systems.values() if isinstance(info, dict) and info.get("hardware")})
    text = [f"These tables and figures were read by the documentation build from the output directory of "
            f"`{command}` (its `summary.json` and each system's `results.json`); nothing on this page "
            "was typed by hand.", "",
            f"- **measured**: {written:%Y-%m-%d %H:%M} UTC (when `summary.json` was written)",
            f"- **hardware**: {'; '.join(hardware) if hardware else 'not recorded'}",
            f"- **suite wall time**: {_fmt(summary.get('wall_s'))} s, "
            f"{'quick settings' if summary.get('quick') else 'full protocols'}, seed {summary.get('seed')}", ""]
    if summary.get("quick"):
        text += ["Quick settings are a smoke test of every method (fewer training steps, chains and rounds), "
                 "not the published protocol: the full-protocol figures and their reading are in "
                 "`benchmarks/RESULTS.md`.", ""]
    text += ["## Status of each system", ""]
    for system, info in systems.items():
        status = info.get("status", "") if isinstance(info, dict) else str(info)
        wall = f", {_fmt(info['wall_s'])} s" if isinstance(info, dict) and info.get("wall_s") else ""
        text.append(f"- **{system}**: {status}{wall}")
    text.append("")
    figures = {}
    for system, info in systems.items():
        results_path = bench / system / "results.json"
        if not results_path.is_file():
            continue
        results = json.loads(results_path.read_text())
        text += [f"## {system}", ""]
        for key in ("system", "kT", "lower_bound", "seed", "hardware"):
            if results.get(key) is not None:
                text.append(f"- {key}: {_text(results[key])}")
        if isinstance(info, dict):
            for key in ("energy_unit", "jsd_reference"):
                if info.get(key):
                    text.append(f"- {key}: {_text(info[key])}")
        text.append("")
        methods = results.get("methods") or results.get("rows") or []
        if methods:
            text.append(_table(methods, ROW_KEYS))
        for png in sorted((bench / system).glob("*.png")):
            name = f"{system}-{png.name}"
            figures[png] = name
            text += _figure(png, name, f"`{system}/{png.name}`")
        notes = results.get("notes") or {}
        if notes:
            text += ["Notes recorded in `results.json`:", ""]
            items = notes.items() if isinstance(notes, dict) else enumerate(notes)
            for key, note in items:
                text.append(f"- *{key}*: {_text(note)}")
            text.append("")
        protocol = results.get("protocol")
        if protocol:
            text += [f"Protocol: {_text(protocol)}", ""]
    return "\n".join(text) + "\n", figures


def generate_benchmarks() -> None:
    text, figures = benchmarks_page(os.environ.get("TPS_BENCH_DIR", "").strip())
    for src, name in figures.items():
        _copy_if_changed(src, AUTOGEN / "bench" / name)
    _write_if_changed(AUTOGEN / "benchmarks.md", text)


def _on_config_inited(app, config) -> None:
    # autosummary rewrites its stubs every build; drop those of names that no longer exist.
    shutil.rmtree(DOCS / "api" / "generated", ignore_errors=True)
    generate_api()
    # Name the pages autosummary reads explicitly: with ``True`` it scans the documents of the
    # previous build's environment and misses API pages that are new in this one.
    config.autosummary_generate = sorted(str(p.relative_to(DOCS)) for p in API_DIR.glob("*.rst"))
    copy_notebooks()
    generate_benchmarks()


def _check_notebook_figures(app, doctree, docname) -> None:
    """Warn (an error under -W) when an executed notebook page has no figure: outputs were lost."""
    if not docname.startswith("notebooks/") or app.config.nb_execution_mode == "off":
        return
    from docutils import nodes

    if not any(True for _ in doctree.findall(nodes.image)):
        logger.warning(f"{docname}: the executed notebook has no figure in its outputs", location=docname)


def setup(app):
    app.connect("config-inited", _on_config_inited)
    app.connect("doctree-resolved", _check_notebook_figures)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
