"""Runnable benchmarks: ``python -m benchmarks SUITE --out DIR`` (see ``python -m benchmarks --help``)."""
