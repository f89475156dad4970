"""Transition path sampling in OpenPathSampling (OPS), started from a path exported by ``tps export-ops``.

Runs in an OPS environment (openpathsampling, mdtraj, openmm, numpy < 2, six; no ``tps``). It
reads the export folder of ``tps export-ops`` (or ``tps.interop.export_ops``):

- ``transition_NNN.dcd`` + ``topology.pdb``: the initial path, loaded with mdtraj and turned into
  an OPS trajectory by ``openpathsampling.engines.openmm.tools.trajectory_from_mdtraj``;
- ``states.json``: the CV atoms and the periodic balls of states A and B, rebuilt as OPS
  volumes: one ``MDTrajFunctionCV`` per ball (periodic distance of the dihedrals, from
  ``mdtraj.compute_dihedrals``, to the centre) and ``CVDefinedVolume(distance, 0, radius)``,
  united with ``|`` (``A = C5 | C7eq``, ``B = C7ax`` for alanine dipeptide);
- ``system.xml`` / ``integrator.xml``: the same OpenMM system (amber99sbildn, vacuum, HBonds)
  and ``LangevinMiddleIntegrator`` (300 K, 1/ps, 2 fs) for OPS's OpenMM engine.

It then runs flexible-length TPS (``TPSNetwork``) with two-way shooting (uniform shooting-point
selection, velocities redrawn from Maxwell-Boltzmann by ``RandomVelocities`` with constraints)
for ``--steps`` Monte Carlo steps, stores everything in ``--out`` (netCDF storage) and writes
``<out>.json`` (steps, accepted moves, acceptance, wall time). Convert the storage for ``tps``
with ``ops_to_tps.py`` (copied into the export folder).

Usage::

    python run_tps_from_tps_paths.py EXPORT_DIR --out ops_tps.nc [--steps 300] [--path 0]
        [--steps-per-frame 25] [--max-frames 800] [--platform CPU] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def ball_distance(traj, indices, center, periods):
    """Periodic Euclidean distance of each frame's dihedrals to ``center`` (rad), shape ``(n_frames, 1)``.

    Self-contained (imports inside) so that OPS can store and reload it with the storage.
    """
    import mdtraj as md
    import numpy as np

    angles = md.compute_dihedrals(traj, np.asarray(indices, dtype=int))
    diff = angles - np.asarray(center, dtype=float)
    for i, p in enumerate(periods or [None] * diff.shape[1]):
        if p is not None:
            diff[:, i] = np.remainder(diff[:, i] + 0.5 * p, p) - 0.5 * p
    return np.sqrt((diff ** 2).sum(axis=1))[:, None]  # (n_frames, 1): OPS scalarizes it per frame


def build_states(paths, definitions, topology):
    """OPS volumes ``(A, B)`` from ``states.json``: unions of periodic balls in the dihedral CVs."""
    cv = definitions["cv"]
    volumes = {}
    for label in ("A", "B"):
        vol = None
        for ball in definitions["states"][label]["balls"]:
            name = ball.get("name") or label
            dist = paths.MDTrajFunctionCV(f"d_{name}", ball_distance, topology, indices=cv["atom_indices"],
                                          center=list(ball["center"]), periods=cv["periods"])
            part = paths.CVDefinedVolume(dist, lambda_min=0.0, lambda_max=float(ball["radius"])).named(name)
            vol = part if vol is None else vol | part
        volumes[label] = vol.named(label)
    return volumes["A"], volumes["B"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir", help="folder written by 'tps export-ops'")
    parser.add_argument("--out", required=True, help="OPS storage to write (.nc)")
    parser.add_argument("--steps", type=int, default=300, help="Monte Carlo steps (default 300)")
    parser.add_argument("--path", type=int, default=0, help="index of the exported path to start from (default 0)")
    parser.add_argument("--steps-per-frame", type=int, default=25,
                        help="MD steps between stored frames (default 25 = 50 fs, the frame spacing of 'tps run')")
    parser.add_argument("--max-frames", type=int, default=800, help="longest trial path, frames (default 800)")
    parser.add_argument("--platform", default="CPU", help="OpenMM platform (default CPU)")
    parser.add_argument("--threads", type=int, default=1, help="CPU platform threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shooting-point and velocity draws")
    args = parser.parse_args(argv)

    import mdtraj as md
    import openmm
    import openmm.unit as unit
    import openpathsampling as paths
    import openpathsampling.engines.openmm as ops_openmm
    import openpathsampling.rng as ops_rng
    from openpathsampling.engines.openmm.tools import trajectory_from_mdtraj

    folder = args.export_dir
    with open(os.path.join(folder, "states.json")) as fh:
        definitions = json.load(fh)
    if definitions.get("format") != "tps-ops-states":
        parser.error(f"{folder}/states.json is not a tps-ops-states file")
    entries = definitions["trajectories"]
    if not 0 <= args.path < len(entries):
        parser.error(f"--path: expected 0..{len(entries) - 1}, got {args.path}")
    np.random.seed(args.seed)
    ops_rng.DEFAULT_RNG = np.random.default_rng(args.seed)

    md_traj = md.load(os.path.join(folder, entries[args.path]["file"]),
                      top=os.path.join(folder, definitions["topology"]))
    initial = trajectory_from_mdtraj(md_traj)
    with open(os.path.join(folder, definitions["openmm"]["system"])) as fh:
        system = openmm.XmlSerializer.deserialize(fh.read())
    with open(os.path.join(folder, definitions["openmm"]["integrator"])) as fh:
        integrator = openmm.XmlSerializer.deserialize(fh.read())
    integrator.setRandomNumberSeed(args.seed + 1)
    properties = {"Threads": str(args.threads)} if args.platform == "CPU" else {}
    engine = ops_openmm.Engine(initial[0].topology, system, integrator, openmm_properties=properties,
                               options={"n_steps_per_frame": args.steps_per_frame,
                                        "n_frames_max": args.max_frames}).named("openmm")
    engine.initialize(args.platform)

    state_a, state_b = build_states(paths, definitions, initial[0].topology)
    network = paths.TPSNetwork(initial_states=state_a, final_states=state_b).named("tps")
    temperature = definitions["temperature_K"] * unit.kelvin
    beta = 1.0 / (temperature * unit.BOLTZMANN_CONSTANT_kB)
    modifier = paths.RandomVelocities(beta=beta, engine=engine)
    scheme = paths.MoveScheme(network=network)
    scheme.append(paths.strategies.TwoWayShootingStrategy(modifier=modifier, selector=paths.UniformSelector(),
                                                         engine=engine))
    scheme.append(paths.strategies.OrganizeByMoveGroupStrategy())
    ensemble = network.sampling_ensembles[0]
    if not ensemble(initial):
        parser.error(f"{entries[args.path]['file']} is not in the TPS ensemble (first frame in A, last in B, "
                     "none in between in A or B) under the OPS volumes")
    initial_conditions = scheme.initial_conditions_from_trajectories(initial)
    scheme.assert_initial_conditions(initial_conditions)

    storage = paths.Storage(args.out, mode="w", template=initial[0])
    sampler = paths.PathSampling(storage=storage, move_scheme=scheme, sample_set=initial_conditions).named("tps")
    sampler.live_visualizer = None
    t0 = time.perf_counter()
    sampler.run(args.steps)
    wall = time.perf_counter() - t0
    n_accepted = sum(1 for step in storage.steps if step.change is not None and step.change.accepted
                     and step.mccycle > 0)
    n_steps = len(storage.steps) - 1
    lengths = [len(step.active[0].trajectory) for step in storage.steps]
    storage.close()
    summary = {"storage": os.path.abspath(args.out), "initial_path": entries[args.path]["file"],
               "initial_path_frames": len(initial), "n_steps": n_steps, "n_accepted": n_accepted,
               "acceptance": n_accepted / n_steps if n_steps else None, "wall_s": wall,
               "mean_active_length_frames": float(np.mean(lengths)), "steps_per_frame": args.steps_per_frame,
               "max_frames": args.max_frames, "platform": args.platform, "threads": args.threads,
               "seed": args.seed, "ops_version": paths.version.version, "openmm_version": openmm.__version__}
    with open(args.out + ".json", "w") as fh:
        json.dump(summary, fh, indent=1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
