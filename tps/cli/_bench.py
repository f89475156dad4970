"""``tps systems`` and ``tps bench``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from tps.cli._common import BASE_SYSTEM, DESCRIPTIONS, SYSTEMS, _err


# ============================================================================ systems
def cmd_systems(args) -> int:
    from tps import pretrained
    from tps import systems as registry

    print("bundled systems (tps.systems.available()):")
    for name in registry.available():
        runs = [k for k, v in BASE_SYSTEM.items() if v == name]
        print(f"  {name}: used by 'tps run {' / '.join(runs)}'")
    print()
    print("tps run SYSTEM (pretrained model from tps.pretrained):")
    for name in SYSTEMS:
        model = name if name in pretrained.available() else "none"
        print(f"  {name:26s} {DESCRIPTIONS[name]}; pretrained model: {model}")
    return 0


# ============================================================================ bench
def _benchmarks_root() -> Optional[Path]:
    import tps

    root = Path(tps.__file__).resolve().parents[1]
    return root if (root / "benchmarks" / "__main__.py").is_file() else None


def cmd_bench(args) -> int:
    root = _benchmarks_root()
    if root is None:
        raise _err("the benchmarks folder is not available in this installation (it lives in the source "
                   "repository, beside tps/)", "clone the repository and install it with 'pip install -e .'")
    import importlib

    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        bench = importlib.import_module("benchmarks.__main__")
    except ImportError:
        import subprocess

        return subprocess.call([sys.executable, "-m", "benchmarks", args.suite, *args.rest], cwd=root)
    if args.suite is None:
        raise _err("tps bench needs a suite name", f"valid suites: {', '.join(bench.SUITES)}")
    if args.suite not in bench.SUITES:
        raise _err(f"unknown benchmark suite {args.suite!r}", f"valid suites: {', '.join(bench.SUITES)}")
    try:
        return int(bench.main([args.suite, *args.rest]) or 0)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
