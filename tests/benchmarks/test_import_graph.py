"""The benchmark programs form an acyclic graph: runners import ``tps`` and ``benchmarks.common*`` only.

Every import is counted, also those inside functions (a function-local import of another runner
is how the old five-module cycle stayed alive). ``benchmarks/__main__.py`` and
``benchmarks/all.py`` dispatch to the runners by name and may import them.
"""

import ast
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
DISPATCHERS = {"__main__", "all", "__init__"}
RUNNERS = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in DISPATCHERS and not p.stem.startswith("common"))
COMMON = sorted(p.stem for p in BENCHMARKS.glob("common*.py"))


def _benchmark_imports(path: Path) -> set:
    """Every ``benchmarks.*`` module imported anywhere in ``path`` (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "benchmarks"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "benchmarks":
            found.add(node.module)
    return found


@pytest.mark.parametrize("runner", RUNNERS)
def test_runner_imports_only_common_modules(runner):
    imported = _benchmark_imports(BENCHMARKS / f"{runner}.py")
    others = {m for m in imported if not m.split(".")[1].startswith("common")}
    assert not others, f"benchmarks/{runner}.py imports other runners: {sorted(others)}"


@pytest.mark.parametrize("module", COMMON)
def test_common_modules_import_only_common_modules(module):
    imported = _benchmark_imports(BENCHMARKS / f"{module}.py")
    others = {m for m in imported if not m.split(".")[1].startswith("common")}
    assert not others, f"benchmarks/{module}.py imports runners: {sorted(others)}"


def test_common_modules_are_acyclic():
    graph = {m: {i.split(".")[1] for i in _benchmark_imports(BENCHMARKS / f"{m}.py")} for m in COMMON}
    done, active = set(), []

    def visit(m):
        assert m not in active, f"import cycle: {' -> '.join(active + [m])}"
        if m in done:
            return
        active.append(m)
        for n in graph.get(m, ()):
            visit(n)
        active.pop()
        done.add(m)

    for m in graph:
        visit(m)


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_no_module_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= 500


def test_tps_never_imports_benchmarks():
    tps = BENCHMARKS.parent / "tps"
    offenders = [str(p.relative_to(tps)) for p in tps.rglob("*.py") if _benchmark_imports(p)]
    assert not offenders
