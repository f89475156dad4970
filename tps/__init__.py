"""tps: transition path sampling with spacetime geodesics of diffusion models.

Layers, top to bottom; a module imports only its own layer or lower ones (``|``: independent
siblings). The contracts are in ``pyproject.toml`` and checked by ``lint-imports``::

    cli                   argument parsing; calls the pipeline
    pipeline              run_method(system, method) -> paths + metrics row; RunDirectory
    interop               OpenPathSampling export / compare / import script
    systems               registered systems (tps.systems.load(name)) and their protocols
    pretrained            shipped checkpoints by system name
    workflows             all-atom coordinates, endpoints, models; region avoidance
    baselines | metrics   shooting and unbiased MD on engines | path metrics, NEB
    sampling              samplers written once on engines (annealed Langevin)
    engines               Engine protocol: overdamped torch, OpenMM Langevin
    spacetime | parallel  geodesic solver, GeodesicOptions, Curve | task executors
    diffusion             denoisers, schedule, checkpoints, training
    potentials, states    energies and forces; the Volume algebra of states
    io, core              files (one JSON convention); Paths, units, atomic writes

One path: system -> engine -> sampler -> pipeline -> CLI / benchmarks / notebooks (ARCHITECTURE.md).
Import the sub-packages you need, e.g. ``from tps.spacetime import geodesic``.
"""

__version__ = "0.1.0"
