"""Shared test settings: the hypothesis profile used by every property-based test."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Derandomized so a CI failure reproduces on any machine; no per-example deadline (the machine is shared and
# noisy, and speed is measured in bench/, not here). HYPOTHESIS_PROFILE=thorough runs ten times more examples.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
