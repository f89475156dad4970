"""Settings of the property-based (fuzz) tests.

Every example is generated deterministically (``derandomize``) so that a CI failure replays
exactly; ``TPS_FUZZ_EXAMPLES=<factor>`` multiplies each test's number of examples and switches
to fresh random examples for a longer hunt, e.g. ``TPS_FUZZ_EXAMPLES=20 python -m pytest tests/fuzz``.
"""

import os

from hypothesis import HealthCheck, settings

FACTOR = float(os.environ.get("TPS_FUZZ_EXAMPLES", "1"))

settings.register_profile(
    "tps-fuzz",
    deadline=None,
    database=None,
    derandomize=FACTOR == 1,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("tps-fuzz")

