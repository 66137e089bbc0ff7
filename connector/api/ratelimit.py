"""Rate-limit header parsing and the retry policy, as pure functions with exact-value tests.

Mimecast documents ``X-RateLimit-Reset`` as the time **in milliseconds until requests are allowed again** (a
duration; values seen are 2,000 to 5,000). Peers misread it as an epoch timestamp and either never waited or
slept for decades; here anything absurdly large is clamped to a cap instead of being slept on. A standard
``Retry-After`` (seconds) wins when present.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_RESET_CAP",
    "RateGate",
    "RetryPolicy",
    "header_value",
    "parse_remaining",
    "parse_reset_delay",
]

DEFAULT_RESET_CAP = 3600.0
"""No parsed delay exceeds an hour; larger values are taken for misread epochs and clamped."""


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for ``httpx.Headers`` and plain dicts alike."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if math.isnan(value):
        return None
    return value


def parse_reset_delay(headers: Mapping[str, str], cap: float = DEFAULT_RESET_CAP) -> float | None:
    """How long the server asks us to wait, in seconds, or ``None`` when it does not say.

    ``Retry-After`` (numeric seconds) wins; otherwise ``X-RateLimit-Reset`` is read as a duration in
    milliseconds (``"2500"`` → ``2.5``). Negative values become 0; values above ``cap`` (for example an epoch
    timestamp in seconds or milliseconds) are clamped to ``cap``. An HTTP-date ``Retry-After`` is ignored
    (Mimecast has not been seen sending one) and the reset header is used instead.

    Args:
        headers: Response headers.
        cap: The largest delay returned, in seconds.
    """
    retry_after = _number(header_value(headers, "Retry-After"))
    if retry_after is not None:
        seconds = retry_after
    else:
        reset_ms = _number(header_value(headers, "X-RateLimit-Reset"))
        if reset_ms is None:
            return None
        seconds = reset_ms / 1000.0
    return min(max(seconds, 0.0), cap)


def parse_remaining(headers: Mapping[str, str]) -> int | None:
    """``X-RateLimit-Remaining`` as an int, or ``None`` when absent or malformed."""
    value = _number(header_value(headers, "X-RateLimit-Remaining"))
    if value is None or math.isinf(value):
        return None
    return int(value)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long the client retries; small and tenacity-shaped, with no hidden clock.

    Attributes:
        max_attempts: Total sends of one request, including the first (so ``max_attempts - 1`` retries).
        base_backoff: Seconds before the first retry after a 5xx, a transport error or a retryable ``fail``.
        max_backoff: Cap on the exponential backoff.
        max_rate_limit_wait: Cap on one wait after a 429 (before jitter).
        jitter: Fraction of the rate-limit wait added at random (0.1 → up to +10 %), so threads that were
            throttled together do not come back together.
        low_remaining: When ``X-RateLimit-Remaining`` is at or below this, wait out the reset delay before the
            next request instead of running into a 429. Negative turns it off.
    """

    max_attempts: int = 5
    base_backoff: float = 1.0
    max_backoff: float = 60.0
    max_rate_limit_wait: float = 60.0
    jitter: float = 0.1
    low_remaining: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_backoff < 0 or self.max_backoff < 0 or self.max_rate_limit_wait < 0:
            raise ValueError("backoff and wait limits must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): base·2^(attempt-1), capped."""
        exponent = min(max(attempt - 1, 0), 62)
        return min(self.base_backoff * (2.0**exponent), self.max_backoff)

    def rate_limit_wait(self, headers: Mapping[str, str], rng: random.Random, attempt: int = 1) -> float:
        """Seconds to wait after a 429: the server's reset delay (or the backoff when it gives none), capped
        at ``max_rate_limit_wait``, plus up to ``jitter`` of it at random.

        Args:
            headers: The 429 response headers.
            rng: Source of jitter; inject a seeded or zero ``Random`` in tests.
            attempt: The 1-based attempt that was throttled, used only when no header says how long to wait.
        """
        delay = parse_reset_delay(headers)
        if delay is None:
            delay = self.backoff(attempt)
        delay = min(delay, self.max_rate_limit_wait)
        return delay + delay * self.jitter * rng.random()

    def preemptive_wait(self, headers: Mapping[str, str]) -> float:
        """Seconds to pause before the next request because the budget is (nearly) spent, else 0.

        Applies when ``X-RateLimit-Remaining`` <= ``low_remaining`` and a reset delay is given; the pause is
        the reset delay capped at ``max_rate_limit_wait``.
        """
        remaining = parse_remaining(headers)
        if remaining is None or remaining > self.low_remaining:
            return 0.0
        delay = parse_reset_delay(headers)
        if delay is None:
            return 0.0
        return min(delay, self.max_rate_limit_wait)


class RateGate:
    """The time before which no request may be sent, shared by every thread of a client (or of an HTTP sink).

    Mimecast counts its quota per application (per Mimecast user, in fact), not per connection or thread: after a
    429, a request from any thread before ``X-RateLimit-Reset`` has passed would only be refused too and spend the
    budget again. So a 429 or a nearly spent budget closes the gate for everyone: ``close_for(seconds)`` moves the
    opening time later (a later, longer reset extends it; a shorter one never brings it forward), and every send
    first waits for ``opens_at()``. Thread-safe; the clock is injectable for tests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._opens_at = 0.0
        self._lock = threading.Lock()

    def close_for(self, seconds: float) -> float:
        """Keep the gate closed for at least ``seconds`` from now; returns the (possibly later) opening time."""
        with self._lock:
            self._opens_at = max(self._opens_at, self._clock() + max(seconds, 0.0))
            return self._opens_at

    def opens_at(self) -> float:
        """The clock reading at which requests may be sent again (in the past when the gate is open)."""
        with self._lock:
            return self._opens_at

    def delay(self) -> float:
        """Seconds until the gate opens; 0 when it is open."""
        with self._lock:
            return max(self._opens_at - self._clock(), 0.0)
