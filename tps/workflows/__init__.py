"""Workflows: end-to-end pipelines built from the layers below (systems, sampling, diffusion, spacetime, metrics).

:mod:`tps.workflows.cartesian` is the all-atom pipeline for any OpenMM molecule:
:func:`~tps.workflows.cartesian.train_model` (EGNN denoiser on MD frames),
:func:`~tps.workflows.cartesian.prepare_endpoints`, :func:`~tps.workflows.cartesian.solve_geodesic`,
:func:`~tps.workflows.cartesian.sample_paths` (annealed Langevin inside OpenMM), or all of it in
:func:`~tps.workflows.cartesian.transition_paths`. It is imported on demand (it loads OpenMM).
:mod:`tps.workflows.avoidance` keeps such a geodesic away from given structures or from a
(phi, psi) region (:func:`~tps.workflows.avoidance.solve_avoiding`).
"""
