"""Hypothesis profiles: ``ci`` (the default) runs every property test derandomised, so a
run is repeatable and CI is deterministic; ``fuzz`` (``make fuzz``) explores at random,
with many times the examples, for the long runs nobody waits for on a landing.

Select one with ``CASTROOM_HYPOTHESIS=fuzz``. Tests size themselves with
:func:`examples`, so the fuzz profile scales every test, not only the undecorated ones.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("CASTROOM_HYPOTHESIS", "ci")
#: How many times the ``ci`` example counts the ``fuzz`` profile runs.
FUZZ_SCALE = int(os.environ.get("CASTROOM_FUZZ_SCALE", "20"))

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=100 * FUZZ_SCALE,
    suppress_health_check=list(HealthCheck),
)
if PROFILE not in ("ci", "fuzz"):
    raise SystemExit(f"CASTROOM_HYPOTHESIS must be 'ci' or 'fuzz', not {PROFILE!r}")


def examples(count: int) -> int:
    """``count`` examples on CI; ``FUZZ_SCALE`` times as many under the fuzz profile."""
    return count * FUZZ_SCALE if PROFILE == "fuzz" else count
