"""tps: transition path sampling with spacetime geodesics of diffusion models.

The package is organised by the concepts of the method; lower layers never import
higher ones::

    potentials  ->  diffusion  ->  spacetime  ->  sampling  ->  metrics / baselines
                                                                      ->  systems

Import the sub-packages you need, e.g. ``from tps.spacetime import geodesic``.
"""

__version__ = "0.1.0"
