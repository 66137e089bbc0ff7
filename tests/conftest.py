"""Shared test settings: the hypothesis profile used by every property-based test, and the logging fixture of the
tests that run the CLI."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Derandomized so a CI failure reproduces on any machine; no per-example deadline (the machine is shared and
# noisy, and speed is measured in bench/, not here). HYPOTHESIS_PROFILE=thorough runs ten times more examples.
settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI installs a JSON handler on the root logger (bound to the captured stderr) and sets the level of
    httpx's logger; take both back after the test."""
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    handlers, level, httpx_level = root.handlers[:], root.level, httpx_logger.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    httpx_logger.setLevel(httpx_level)
