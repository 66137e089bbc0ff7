"""The counters a client keeps for the run summary: requests, pages, retries, 429s, waits and token refreshes.

The retry loop (``connector.api.retry``) counts requests, retries, 429s and waits; the client counts pages; the
token refreshes are read from the auth when it counts them (``MimecastAuth.token_refreshes``; an auth without a
token endpoint has none). Increments are atomic, so one ``ClientStats`` serves every thread of a client.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["ClientStats", "token_refreshes"]


def token_refreshes(auth: object) -> int:
    """``auth.token_refreshes`` when the auth counts the tokens it fetched, else 0."""
    refreshes = getattr(auth, "token_refreshes", 0)
    return refreshes if isinstance(refreshes, int) and not isinstance(refreshes, bool) else 0


@dataclass
class ClientStats:
    """Counters for the run summary; increments go through :meth:`add`, which is thread-safe.

    Attributes:
        requests: API requests sent, including every re-send (the auth's re-send after a 401 too); token
            requests are counted in ``token_refreshes`` instead.
        pages: Pages received (with read-ahead, also a page or two read ahead and dropped when the caller stops
            early).
        retries: Re-sends after a 429, a 5xx, a transport error or a retryable ``fail[]``.
        rate_limited: HTTP 429 answers received.
        slept_seconds: Total time spent waiting (backoff, rate limits, pre-emptive slow-down).
        auth: The auth whose ``token_refreshes`` is reported (any object; one without the attribute counts 0).
    """

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    slept_seconds: float = 0.0
    auth: object = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def token_refreshes(self) -> int:
        """Access tokens fetched so far, read from the auth."""
        return token_refreshes(self.auth)

    def add(
        self,
        *,
        requests: int = 0,
        pages: int = 0,
        retries: int = 0,
        rate_limited: int = 0,
        slept_seconds: float = 0.0,
    ) -> None:
        """Add to the counters atomically."""
        with self._lock:
            self.requests += requests
            self.pages += pages
            self.retries += retries
            self.rate_limited += rate_limited
            self.slept_seconds += slept_seconds

    def as_dict(self) -> dict[str, int | float]:
        """The counters as a plain dict for the run summary."""
        with self._lock:
            return {
                "requests": self.requests,
                "pages": self.pages,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "slept_seconds": round(self.slept_seconds, 3),
                "token_refreshes": self.token_refreshes,
            }
