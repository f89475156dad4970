"""Workflows: end-to-end pipelines built from the layers below (systems, sampling, diffusion, spacetime, metrics)."""
