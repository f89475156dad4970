"""The ``tps`` command: transition paths from pretrained spacetime-geodesic models.

Subcommands::

    tps systems                               bundled systems and the pretrained model each uses
    tps run SYSTEM [--paths N] [--out DIR]    pretrained model -> geodesic -> paths -> metrics + figure
        [--refine shooting [--chains M] [--refine-steps N]]   + geodesic-seeded shooting (DIR/refined/)
    tps train SYSTEM --out FILE.pt            train a model (writes FILE.pt and the recipe FILE.json)
    tps geodesic SYSTEM --out curve.pt        the first half of ``run``
    tps sample SYSTEM --curve curve.pt --out DIR   the second half of ``run``
    tps check-energies TRAJ [--top PDB]       recompute energies with OpenMM, compare with stored ones
    tps export-ops RUN_DIR --out DIR          transition paths + states for OpenPathSampling
    tps compare-ops OPS_H5 RUN_DIR            compare an OpenPathSampling ensemble with a tps run
    tps bench SUITE [args...]                 ``python -m benchmarks SUITE args...``

Every user mistake prints one line ``tps: error: <problem>; <fix>`` on stderr and exits with
status 2; Ctrl-C exits with 130 and keeps the outputs completed so far (``tps run`` resumes
from them). All outputs are written atomically.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from tps.cli._common import SYSTEMS, UserError, _oneline, _user_errors, _version
from tps.cli._stages import CONSTRAINTS
from tps.cli._train import TRAIN_DEFAULTS, cmd_train
from tps.cli._commands import cmd_geodesic, cmd_run, cmd_sample
from tps.cli._check import cmd_check_energies
from tps.cli._bench import cmd_bench, cmd_systems
from tps.cli._ops import cmd_compare_ops, cmd_export_ops
from tps.cli._config import _config_defaults

__all__ = ["main", "build_parser", "UserError"]


# ============================================================================ parser and main
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``tps: error: <problem>; <fix>``, exit status 2)."""

    def error(self, message):
        raise UserError(f"{message}; see '{self.prog} --help'")


def _number(convert, ok, expected: str):
    """An argparse ``type``: ``convert(text)`` that must satisfy ``ok``, else "expected <expected>"."""

    def parse(text):
        try:
            v = convert(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
_nonneg_float = _number(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
_finite_float = _number(float, math.isfinite, "a finite number")


def _defaults(part: str, field: str, none: str = "") -> str:
    """``name value, ...`` of one protocol number over the systems (the help text's defaults, from the
    systems' protocols so that they have one home)."""
    from tps.systems import protocols_of

    values = [(name, getattr(getattr(protocols_of(name), part), field)) for name in SYSTEMS]
    return ", ".join(f"{name} {none if v is None else v}" for name, v in values)


def _refine_defaults(field: str) -> str:
    from tps.systems.protocols import refine_protocol

    return ", ".join(f"{name} {getattr(refine_protocol(name), field)}" for name in SYSTEMS)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tps", description="Transition path sampling with spacetime geodesics of diffusion models "
                "(Karczewski et al., arXiv 2505.17517). 'tps run SYSTEM' computes transition paths with a "
                "pretrained model; 'tps systems' lists the systems.",
                epilog="Examples: tps run muller-brown; tps run alanine-dipeptide --paths 20 --out runs/aldp; "
                       "tps check-energies runs/aldp/paths/paths.dcd (every path, against the stored energies)")
    p.add_argument("--version", action="version", version=f"tps {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("systems", help="list the bundled systems and their pretrained models",
                       description="List the bundled systems, what each is, and the pretrained model 'tps run' uses.")
    s.set_defaults(func=cmd_systems)

    t = sub.add_parser("train", help="train a diffusion model (checkpoint + recipe JSON)",
                       description="Train the diffusion model of SYSTEM as the shipped pretrained models were "
                                   "trained, and write the checkpoint FILE.pt plus FILE.json (the exact command, "
                                   "every setting, seed, versions, training cost and held-out loss). Defaults "
                                   "per system: " + "; ".join(f"{k}: {v.as_dict()}" for k, v in TRAIN_DEFAULTS.items()))
    t.add_argument("system", choices=SYSTEMS, metavar="SYSTEM", help=f"one of {', '.join(SYSTEMS)}")
    t.add_argument("--out", required=True, type=Path, help="checkpoint file (.pt); the recipe goes beside it (.json)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--steps", type=_positive_int, help="training steps")
    t.add_argument("--batch-size", type=_positive_int, help="training batch size")
    t.add_argument("--hidden", type=_positive_int, help="hidden width of the network")
    t.add_argument("--layers", type=_positive_int, help="residual blocks (MLP) or message-passing layers (EGNN)")
    t.add_argument("--data-steps", type=_positive_int,
                   help="Langevin steps per chain (2-D systems) or MD steps per start structure (all-atom)")
    t.add_argument("--chains", type=_positive_int, help="training-data chains (2-D systems)")
    t.add_argument("--lr", type=_positive_float, help="learning rate")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="training device (default cpu)")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train)

    def common(q, *, model=True, constraint=True, sampling=True, points=True):
        q.add_argument("system", choices=SYSTEMS, metavar="SYSTEM", help=f"one of {', '.join(SYSTEMS)}")
        q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        if sampling:
            q.add_argument("--paths", type=_positive_int,
                           help=f"number of transition paths (default: {_defaults('sampler', 'n_paths')})")
            q.add_argument("--save-paths", type=_positive_int,
                           help=f"paths written to disk (default: {_defaults('sampler', 'save_paths', 'all')}); "
                                "metrics always use every path")
            q.add_argument("--steps-per-point", type=_positive_int,
                           help="Langevin (or OpenMM MD) steps per curve point (default: "
                                f"{_defaults('sampler', 'steps_per_point')})")
            q.add_argument("--centre-noise", type=_nonneg_float, metavar="A",
                           help="each path's restraint centres moved perpendicular to the curve by A restraint "
                                "widths times one normal draw per path (SamplerProtocol.centre_noise; every system; "
                                "default: off)")
            q.add_argument("--logsnr-shift", type=_finite_float, metavar="S",
                           help="2-D systems only: restraint stiffness kT exp(logSNR - S) / scale^2 instead of "
                                "kT exp(logSNR) / scale^2 (SamplerProtocol.logsnr_shift; default: off)")
            from tps.cli._parallel import add_executor_options

            add_executor_options(q)
        if points:
            q.add_argument("--points", type=_positive_int,
                           help=f"points on the geodesic (default: {_defaults('geodesic', 'n_points')})")
            q.add_argument("--max-iter", type=_positive_int,
                           help="L-BFGS iterations of the geodesic solver per stage (default: "
                                f"{_defaults('geodesic', 'max_iter')})")
        if model:
            q.add_argument("--model", type=Path, help="a checkpoint from 'tps train' instead of the pretrained model")
            q.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                           help="device of the model and geodesic solver (default cpu)")
        if constraint:
            q.add_argument("--constraint", choices=CONSTRAINTS, default="none",
                           help="geodesic constraint (default none); region-avoiding needs --avoid (2-D systems) or "
                                "--avoid-structure / --avoid-phipsi (alanine-dipeptide)")
            q.add_argument("--avoid", type=float, nargs=2, metavar=("X", "Y"),
                           help="point the region-avoiding geodesic keeps away from (x y, or phi psi in rad)")
            q.add_argument("--avoid-structure", type=Path, metavar="FILE.pdb",
                           help="alanine-dipeptide: structure the region-avoiding geodesic keeps away from (PDB "
                                "with the system's atoms)")
            q.add_argument("--avoid-phipsi", type=float, nargs=2, metavar=("PHI", "PSI"),
                           help="alanine-dipeptide: (phi, psi) in rad to keep away from, represented by the 8 "
                                "nearest training frames (regenerated from the model's recipe)")
        q.add_argument("--config", type=Path, help="TOML or YAML file of option values (keys: the long option "
                                                   "names); command-line options override it")
        q.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    r = sub.add_parser("run", help="transition paths with a pretrained model (geodesic + paths + metrics + figure)",
                       description="Transition paths for SYSTEM: pretrained diffusion model -> spacetime geodesic "
                                   "-> annealed Langevin paths -> metrics and figure. Writes DIR/results.json, "
                                   "DIR/paths.png, DIR/curve.pt and the paths (paths.npz; all-atom: "
                                   "paths/paths_000.dcd ... with paths/topology.pdb) into --out DIR (default "
                                   "runs/SYSTEM). An interrupted run resumes: stages whose outputs exist with the "
                                   "same settings (recorded in DIR/state.json) are reused.")
    common(r)
    r.add_argument("--out", type=Path, help="output directory (default runs/SYSTEM)")
    r.add_argument("--force", action="store_true", help="recompute every stage even if saved outputs match")
    r.add_argument("--refine", choices=("shooting",),
                   help="refine the geodesic ensemble: 'shooting' starts one two-way-shooting chain from each of "
                        "--chains geodesic paths (cut to their A -> B transitions) and writes DIR/refined/, "
                        "DIR/refined.png and the row 'geodesic-seeded-shooting' of results.json")
    r.add_argument("--chains", type=_positive_int,
                   help=f"--refine: shooting chains, each from a different geodesic path (default: "
                        f"{_refine_defaults('n_chains')})")
    r.add_argument("--refine-steps", type=_positive_int,
                   help=f"--refine: shooting trials per chain, a quarter of them burn-in (default: "
                        f"{_refine_defaults('n_rounds')})")
    r.add_argument("--relax-rounds", type=_nonneg_int,
                   help="--refine: before the shooting trials, at most this many rounds per chain without the "
                        "path-length factor until the chain has left its geodesic seed (discarded, cost counted; "
                        f"0: none; default: {_refine_defaults('relax_rounds')})")
    r.set_defaults(func=cmd_run)

    g = sub.add_parser("geodesic", help="solve the spacetime geodesic only (writes curve.pt)",
                       description="Solve the spacetime geodesic of SYSTEM between its endpoints with the "
                                   "pretrained (or --model) diffusion model; write it to --out (curve.pt) for "
                                   "'tps sample'.")
    common(g, sampling=False)
    g.add_argument("--out", type=Path, required=True, help="curve file to write (e.g. curve.pt)")
    g.set_defaults(func=cmd_geodesic)

    m = sub.add_parser("sample", help="annealed-Langevin paths along a saved curve",
                       description="Run annealed Langevin along the curve of 'tps geodesic' (or 'tps run') and "
                                   "write results.json, paths.png and the paths into --out DIR.")
    common(m, model=False, constraint=False, points=False)
    m.add_argument("--curve", type=Path, required=True, help="curve.pt from 'tps geodesic' or 'tps run'")
    m.add_argument("--out", type=Path, required=True, help="output directory")
    m.set_defaults(func=cmd_sample)

    c = sub.add_parser("check-energies", help="recompute trajectory energies with OpenMM and compare",
                       description="Recompute the potential energy of every frame of TRAJ with OpenMM "
                                   "(alanine dipeptide force field, amber99sbildn, vacuum, unless --forcefield is given) and, when TRAJ carries "
                                   "stored energies (files written by 'tps run' / tps.io.save_paths), report the "
                                   "largest deviation. Exit status 1 when they disagree beyond --tolerance.")
    c.add_argument("traj", type=Path, metavar="TRAJ", help="trajectory: .dcd (with its .json sidecar), .pdb, .h5 "
                                                           "or .npz")
    c.add_argument("--top", type=Path, help="topology PDB (default: TRAJ itself for .pdb, embedded for .h5, "
                                            "topology.pdb beside TRAJ otherwise)")
    c.add_argument("--tolerance", type=_positive_float, default=0.05,
                   help="largest allowed |stored - recomputed| in kJ/mol (default 0.05; float32 DCD coordinates "
                        "alone cause ~1e-3)")
    c.add_argument("--forcefield", nargs="+", metavar="XML",
                   help="OpenMM force-field files for your own molecule, vacuum NoCutoff with HBonds constraints "
                        "(default: the alanine dipeptide force field, amber99sbildn.xml)")
    c.add_argument("--json", action="store_true", help="print the report as one JSON line")
    c.set_defaults(func=cmd_check_energies)

    e = sub.add_parser("export-ops", help="export transition paths and states for OpenPathSampling",
                       description="Write each path of a 'tps run alanine-dipeptide' directory, cut to its A -> B "
                                   "transition (A = C5 | C7eq, B = C7ax, periodic (phi, psi) balls), as "
                                   "DIR/transition_NNN.dcd with DIR/topology.pdb, plus the OpenMM system.xml and "
                                   "integrator.xml, the state definitions states.json and the import script "
                                   "ops_to_tps.py (see docs/howto/openpathsampling.md).")
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="output directory of 'tps run alanine-dipeptide'")
    e.add_argument("--out", type=Path, required=True, help="folder to write")
    e.add_argument("--max-paths", type=_positive_int, help="export at most this many paths (default all)")
    e.add_argument("--quiet", action="store_true", help="no messages")
    e.set_defaults(func=cmd_export_ops)

    o = sub.add_parser("compare-ops", help="compare an OpenPathSampling ensemble with a tps run",
                       description="Compare the paths of OPS_H5 (written by ops_to_tps.py from an OpenPathSampling "
                                   "storage) with those of RUN_DIR ('tps run alanine-dipeptide'), both cut to their "
                                   "A -> B transitions: path-density Jensen-Shannon divergence in (phi, psi), each "
                                   "path's highest energy (recomputed with OpenMM) and the (phi, psi) of that frame.")
    o.add_argument("ops_paths", type=Path, metavar="OPS_H5", help="HDF5 file written by ops_to_tps.py")
    o.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="output directory of 'tps run alanine-dipeptide'")
    o.add_argument("--states", type=Path, help="states.json of 'tps export-ops' (default: A = C5 | C7eq, B = C7ax)")
    o.add_argument("--bins", type=_positive_int, default=36, help="histogram bins per angle (default 36)")
    o.add_argument("--out", type=Path, help="also write the comparison to this JSON file")
    o.add_argument("--json", action="store_true", help="print the comparison as one JSON line")
    o.set_defaults(func=cmd_compare_ops)

    b = sub.add_parser("bench", help="run a benchmark suite (python -m benchmarks SUITE ...)",
                       description="Delegate to 'python -m benchmarks SUITE [args...]' (needs the source "
                                   "repository: the benchmarks folder lives beside tps/). Suites: muller-brown, "
                                   "geodesic-solver, mb-geometry, aldp-2d, aldp-cartesian, all; "
                                   "'tps bench SUITE --help' shows a suite's options.", add_help=True)
    b.add_argument("suite", metavar="SUITE", nargs="?", help="benchmark suite name")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the suite")
    b.set_defaults(func=cmd_bench)
    p._subs = {"run": r, "geodesic": g, "sample": m}
    return p


def main(argv=None) -> int:
    """Entry point of the ``tps`` console script; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``tps`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when ``check-energies`` finds a disagreement (or on an internal error),
        2 for a user mistake (one line ``tps: error: <problem>; <fix>`` on stderr), 130 after Ctrl-C.

    Examples
    --------
    >>> main(["systems"])  # doctest: +ELLIPSIS
    bundled systems (tps.systems.available()):
    ...
      muller-brown               Muller-Brown 2-D potential at kT = 12.5, ...; pretrained model: muller-brown
    0
    >>> main(["run", "no-such-system"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0)
        if getattr(args, "func", None) is None:
            parser.print_help(sys.stderr)
            return 2
        if getattr(args, "config", None) is not None:
            sub = parser._subs[args.command]
            sub.set_defaults(**_config_defaults(sub, args.config))
            args = parser.parse_args(argv)
        args._argv = argv
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        print(f"tps: error: {_oneline(exc) if not isinstance(exc, UserError) else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tps: interrupted; outputs completed so far are kept (rerun the same command to resume)",
              file=sys.stderr)
        return 130
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"tps: error: {_oneline(exc)}; check the path", file=sys.stderr)
        return 2
    except ValueError as exc:
        if os.environ.get("TPS_DEBUG"):
            raise
        print(f"tps: error: {_oneline(exc)}; check the inputs (TPS_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2
    except Exception as exc:  # not a user mistake: one line, status 1, traceback on request
        if os.environ.get("TPS_DEBUG"):
            raise
        print(f"tps: error: internal error ({type(exc).__name__}: {_oneline(exc)[:300]}); rerun with TPS_DEBUG=1 "
              "for the traceback and report it", file=sys.stderr)
        return 1
