"""``python -m benchmarks SUITE [options] --out DIR``."""

from __future__ import annotations

import argparse
import importlib
import sys

# suite name -> module in this package with add_arguments(parser) and run(args). The system suites are
# also reachable by their tps.systems names (alanine-dipeptide-phipsi = aldp-2d, alanine-dipeptide =
# aldp-cartesian; the short names are kept for the scripts that use them).
SUITES = {
    "muller-brown": "benchmarks.muller_brown",
    "geodesic-solver": "benchmarks.geodesic_solver",
    "mb-geometry": "benchmarks.mb_geometry",
    "aldp-2d": "benchmarks.aldp_2d",
    "aldp-cartesian": "benchmarks.aldp_cartesian",
    "alanine-dipeptide-phipsi": "benchmarks.aldp_2d",
    "alanine-dipeptide": "benchmarks.aldp_cartesian",
    "aldp-avoid": "benchmarks.aldp_region_avoidance",
    "all": "benchmarks.all",
    "reference-ensemble": "benchmarks.reference_ensemble",
    "check": "benchmarks.check_summary",
    "scaling": "benchmarks.scaling",
    "convergence": "benchmarks.convergence",
    "fidelity": "benchmarks.fidelity",
    "agreement": "benchmarks.agreement",
}

#: Suites whose runner takes ``args.executor`` (``--workers N`` / ``--scheduler tcp://HOST:PORT``).
#: (``scaling`` starts its own clusters.)
PARALLEL_SUITES = ("muller-brown", "all", "reference-ensemble", "aldp-2d", "aldp-cartesian", "alanine-dipeptide-phipsi",
                   "alanine-dipeptide")


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
    if suite in PARALLEL_SUITES and not any(a.dest == "workers" for a in parser._actions):
        parser.add_argument("--workers", type=int, help="run the suite's tasks on a local Dask cluster of N worker "
                                                        "processes (default: in this process)")
        parser.add_argument("--scheduler", help="run the suite's tasks on the Dask scheduler at tcp://HOST:PORT")
    args = parser.parse_args(argv[1:])
    from contextlib import nullcontext

    opened = nullcontext(None)
    if suite in PARALLEL_SUITES:
        from tps.parallel import ExecutorSpec, open_executor

        try:
            spec = ExecutorSpec(workers=args.workers, scheduler=args.scheduler)
            opened = open_executor(spec)
            args.executor = opened.__enter__()
        except ValueError as exc:
            print(f"error: --{exc}", file=sys.stderr)
            return 2
    try:
        module.run(args)
    except KeyboardInterrupt:
        print("interrupted: files written so far are complete (atomic writes)", file=sys.stderr)
        return 130
    finally:
        opened.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
