"""``python -m benchmarks SUITE [options] --out DIR``."""

from __future__ import annotations

import argparse
import importlib
import sys

# suite name -> module in this package with add_arguments(parser) and run(args)
SUITES = {
    "muller-brown": "benchmarks.muller_brown",
    "geodesic-solver": "benchmarks.geodesic_solver",
    "mb-geometry": "benchmarks.mb_geometry",
    "aldp-2d": "benchmarks.aldp_2d",
    "aldp-cartesian": "benchmarks.aldp_cartesian",
    "all": "benchmarks.all",
    "reference-ensemble": "benchmarks.reference_ensemble",
    "check": "benchmarks.check_summary",
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m benchmarks SUITE [options] --out DIR\nsuites: {', '.join(SUITES)}")
        return 0
    suite = argv[0]
    if suite not in SUITES:
        print(f"error: unknown suite {suite!r}; valid suites: {', '.join(SUITES)}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUITES[suite])
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks {suite}", description=module.__doc__)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        module.run(args)
    except KeyboardInterrupt:
        print("interrupted: files written so far are complete (atomic writes)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
