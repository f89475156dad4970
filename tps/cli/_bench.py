"""``tps systems`` and ``tps bench``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

from tps.cli._common import BASE_SYSTEM, DESCRIPTIONS, _err


# ============================================================================ systems
def cmd_systems(args) -> int:
    from tps import pretrained
    from tps import systems as registry

    print("bundled systems (tps.systems.available()):")
    for name in registry.available():
        runs = [k for k, v in BASE_SYSTEM.items() if v == name] or [name]
        print(f"  {name}: used by 'tps run {' / '.join(runs)}'")
    print()
    print("tps run SYSTEM (pretrained model from tps.pretrained):")
    for name in registry.available():
        description = DESCRIPTIONS.get(name) or registry.load(name).description
        model = name if name in pretrained.available() else "none"
        print(f"  {name:26s} {description}; pretrained model: {model}")
    return 0


# ============================================================================ bench
def _benchmarks_root() -> Optional[Path]:
    """The source checkout holding ``benchmarks/`` beside the ``tps`` package, or None (installed wheel)."""
    import tps

    root = Path(tps.__file__).resolve().parents[1]
    return root if (root / "benchmarks" / "__main__.py").is_file() else None


def _suite_names(root: Path) -> Optional[tuple]:
    """The keys of ``SUITES`` in ``benchmarks/__main__.py``, read without importing it (None if unreadable)."""
    try:
        tree = ast.parse((root / "benchmarks" / "__main__.py").read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        target = getattr(node, "target", None) or (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "SUITES" and getattr(node, "value", None) is not None:
            try:
                return tuple(ast.literal_eval(node.value))
            except ValueError:
                return None
    return None


def _fileno(stream) -> Optional[int]:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # e.g. replaced by an in-process capture
        return None


def _forward(pipe, stream) -> None:
    """Copy a child's output to ``stream`` as it arrives (chunks, so progress bars without newlines show)."""
    for chunk in iter(lambda: pipe.read1(8192), b""):
        stream.write(chunk.decode(errors="replace"))
        stream.flush()
    pipe.close()


def run_suite(root: Path, argv: list) -> int:
    """Run ``python -m benchmarks *argv`` with this interpreter, in the current directory; its exit status.

    The child inherits this process's stdout and stderr when they are real files; when they are
    not (replaced in-process, e.g. by a test's capture), its output is forwarded to them. Ctrl-C
    reaches the child too: this process waits for it to finish its atomic writes (a second Ctrl-C
    stops waiting). A child killed by signal N gives ``128 + N``.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    cmd = [sys.executable, "-m", "benchmarks", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    real = _fileno(sys.stdout) is not None and _fileno(sys.stderr) is not None
    pipe = None if real else subprocess.PIPE
    proc = subprocess.Popen(cmd, env=env, stdout=pipe, stderr=pipe)
    threads = [] if real else [threading.Thread(target=_forward, args=(p, s), daemon=True)
                               for p, s in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
    for t in threads:
        t.start()
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # the child got the same SIGINT: let it write what it finished
        rc = proc.wait()
    for t in threads:
        t.join()
    return 128 - rc if rc < 0 else rc


def cmd_bench(args) -> int:
    root = _benchmarks_root()
    if root is None:
        raise _err("the benchmarks folder is not available in this installation (it lives in the source "
                   "repository, beside tps/)", "clone the repository and install it with 'pip install -e .'")
    suites = _suite_names(root)
    if suites is not None:
        if args.suite is None:
            raise _err("tps bench needs a suite name", f"valid suites: {', '.join(suites)}")
        if args.suite not in suites:
            raise _err(f"unknown benchmark suite {args.suite!r}", f"valid suites: {', '.join(suites)}")
    return run_suite(root, [a for a in (args.suite, *args.rest) if a is not None])
