"""Faults the simulator injects on demand.

A :class:`FaultPlan` is mutable: a test changes its fields between (or during) runs, under
``Simulator.faults``. Counters such as ``rate_limit_next`` are consumed one per API request (the token
endpoint is never faulted, except by ``latency_seconds``), so "the next 3 requests answer 429" means exactly
that. Which fault wins when several are armed follows the real gateway's order: authentication (401), then
permission (403), then quota and bursts (429), then server errors (5xx), then injected HTTP-200-with-``fail``
answers; ``slow_next`` delays only requests that got past all of those. The ``siem_*`` download faults act on
the SIEM file host (which has no bearer token, quota or gateway), in this order: expired, missing, server error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MALFORMED_KINDS", "FaultPlan"]

#: Kinds of malformed audit entries :attr:`FaultPlan.malformed_per_page` mixes into pages, in rotation.
MALFORMED_KINDS: tuple[str, ...] = (
    "missing_id",
    "bad_event_time",
    "not_an_object",
    "missing_event_info",
    "null_id",
    "missing_audit_type",
)


@dataclass
class FaultPlan:
    """Faults to inject. Every field defaults to "off".

    Attributes:
        expire_tokens_after_calls: after this many more authenticated API calls, every issued token expires
            (the next call answers 401 ``token_expired``); fires once, then resets to ``None``.
        rate_limit_next: the next K API requests answer 429 with ``X-RateLimit-Reset: rate_limit_reset_ms``.
        rate_limit_reset_ms: the ``X-RateLimit-Reset`` sent with burst 429s (a test may set an epoch-like
            value).
        quota_limit: when set, enforce at most this many API requests per ``quota_window_seconds`` of the
            simulator's clock; beyond that answer 429 with the milliseconds until the window resets.
        quota_window_seconds: length of a quota window.
        server_error_next: the next K API requests answer ``server_error_status``.
        server_error_status: status for those (500, 502, 503, 504).
        server_error_html: those answer an HTML page (as a load balancer does) instead of a JSON envelope.
        latency_seconds: real (wall-clock) time every request takes at least, including the token endpoint;
            the server's own work runs inside it rather than on top of it.
        slow_next: the next K API requests are delayed by ``slow_seconds`` more (to trip client timeouts).
        slow_seconds: that delay.
        fail_next: the next K API requests answer HTTP 200 with a ``fail`` entry.
        fail_retryable: the ``retryable`` flag of those entries.
        fail_code: the ``code`` of those entries.
        lag_max_seconds: index lag: an affected audit record becomes visible only ``lag`` seconds after its
            ``eventTime``, with ``lag`` spread deterministically over ``[0, lag_max_seconds]``.
        lag_fraction: share of audit records affected by index lag.
        malformed_per_page: audit pages carry this many extra malformed entries (see :data:`MALFORMED_KINDS`).
        malformed_pages: how many more audit pages carry them (``None`` = every page while
            ``malformed_per_page`` is set).
        forbid_audit: audit endpoints answer 403 ``app_forbidden`` (the app lacks "Audit Events").
        forbid_directory: user, domain and group endpoints answer 403 ``app_forbidden``.
        repeat_page_token_next: the next K paginated answers send back, as ``next``, the token the request
            used (a server that does not advance; a client must stop, not loop).
        next_on_last_page: the last page of a listing also carries a ``next`` (pointing past the end, where an
            empty page answers), as some servers do.
        siem_expire_links_next: the next K SIEM file downloads answer 403 ``AccessDenied`` "Request has expired",
            whatever the link's own expiry.
        siem_missing_links_next: the next K SIEM file downloads answer 404 ``NoSuchKey``.
        siem_download_error_next: the next K SIEM file downloads answer 503 ``SlowDown``.
        siem_download_latency_seconds: real (wall-clock) time every request to the SIEM file host takes at least.
        siem_repeat_last: while set, every SIEM batch file after a type's first starts with the last N records of
            the type's previous file again (their ``_offset`` differs): a record repeated in two files. Set it
            before listing: the listed ``size`` includes the repeat.
        siem_caught_up_types: batch listings of these types answer no file, ``isCaughtUp: true`` and, as
            ``@nextPage``, the position asked for (clear it and the files appear after that token).
        siem_empty_types: these types have no data: the batch listing answers as for a caught-up type and the
            stream endpoint leaves them out.
        siem_list_budget: at most this many SIEM batch list calls per ``siem_list_budget_window_seconds`` of the
            simulator's clock (the docs: 50 per 15 minutes); beyond, 429 with the milliseconds until the window
            resets in ``X-RateLimit-Reset``.
        siem_list_budget_window_seconds: that window.
        siem_stream_budget: the same for SIEM stream calls (the docs: 300 per hour).
        siem_stream_budget_window_seconds: that window.
        forbid_siem: both SIEM endpoints answer 403 ``app_forbidden`` (the app lacks the "Threats, Security
            Events, and Data" product); audit and directory still answer.
    """

    expire_tokens_after_calls: int | None = None
    rate_limit_next: int = 0
    rate_limit_reset_ms: int = 2500
    quota_limit: int | None = None
    quota_window_seconds: float = 60.0
    server_error_next: int = 0
    server_error_status: int = 503
    server_error_html: bool = False
    latency_seconds: float = 0.0
    slow_next: int = 0
    slow_seconds: float = 2.0
    fail_next: int = 0
    fail_retryable: bool = True
    fail_code: str = "err_internal_temporary"
    lag_max_seconds: float = 0.0
    lag_fraction: float = 0.2
    malformed_per_page: int = 0
    malformed_pages: int | None = None
    forbid_audit: bool = False
    forbid_directory: bool = False
    repeat_page_token_next: int = 0
    next_on_last_page: bool = False
    siem_expire_links_next: int = 0
    siem_missing_links_next: int = 0
    siem_download_error_next: int = 0
    siem_download_latency_seconds: float = 0.0
    siem_repeat_last: int = 0
    siem_caught_up_types: set[str] = field(default_factory=set)
    siem_empty_types: set[str] = field(default_factory=set)
    siem_list_budget: int | None = None
    siem_list_budget_window_seconds: float = 900.0
    siem_stream_budget: int | None = None
    siem_stream_budget_window_seconds: float = 3600.0
    forbid_siem: bool = False

    def reset(self) -> None:
        """Switch every fault off."""
        for name, value in FaultPlan().__dict__.items():
            setattr(self, name, value)
