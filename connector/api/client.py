"""The Mimecast API 2.0 HTTP client: envelopes, pagination, retries and rate limits on one ``httpx.Client``.

Every endpoint method is a generator that requests the next page only when the caller asks for more, so a pull
of any size runs in the memory of one page. With ``read_ahead=True`` it requests page N+1 on a helper thread as
soon as page N has arrived, so the network wait overlaps the caller's work on page N (memory: three pages).
Errors are raised as the connector's exception hierarchy:

* HTTP 429: wait the server's ``X-RateLimit-Reset`` (a millisecond duration, capped, with jitter), re-send;
  after ``max_attempts`` sends, ``RateLimitExhaustedError``. The wait closes the client's ``RateGate``: no request
  of any thread is sent before it opens again (the quota is the application's, not the thread's). Before that:
  when ``X-RateLimit-Remaining``, less the requests other threads still have in flight, is at or below
  ``low_remaining``, the gate closes until the reset, so a pull under a quota normally sees no 429 at all.
* HTTP 5xx, timeouts, connection/read errors, and HTTP 200 with a ``fail[]`` entry marked ``retryable``:
  exponential backoff with a cap; after ``max_attempts`` sends, ``ApiError(retryable=True)``.
* HTTP 400/404 (any other 4xx), non-retryable ``fail[]``, ``meta.status`` != 200, non-JSON, redirects:
  ``ApiError`` at once. Redirects are never followed, so credentials never go to another host.
* HTTP 401: ``MimecastAuth`` has already fetched a new token and re-sent the call once, so a 401 that reaches
  the client is final: ``AuthError`` (``PermissionDeniedError`` during ``preflight``).
* HTTP 403: ``PermissionDeniedError`` naming the event type and the Mimecast product the API application
  lacks.
* Repeated page token or page cap: ``PaginationError``.

The client is safe to share between threads (the collector reads group members from a small pool): httpx's
connection pool is thread-safe, the auth fetches a token under a lock, and the statistics are locked.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from connector.api.auth import MimecastAuth
from connector.api.ratelimit import RateGate, RetryPolicy, parse_remaining, parse_reset_delay
from connector.api.transport import (
    BoundedTransport,
    Limits,
    OverallTimeoutError,
    environment_proxy,
    host_pattern,
    redact_url,
    validate_proxy_url,
)
from connector.api.urls import default_token_url, validate_base_url
from connector.errors import (
    ApiError,
    AuthError,
    ConfigError,
    PaginationError,
    PermissionDeniedError,
    RateLimitExhaustedError,
)
from connector.log import redact_text
from connector.registry import registry
from connector.secret import Secret
from connector.timefmt import format_mimecast_time

__all__ = [
    "AUDIT_EVENTS_PATH",
    "DEFAULT_TIMEOUT",
    "EVENT_TYPE_PRODUCTS",
    "FIND_GROUPS_PATH",
    "GROUP_MEMBERS_PATH",
    "INTERNAL_DOMAINS_PATH",
    "INTERNAL_USERS_PATH",
    "PAGE_RECORDS_FACTOR",
    "PAGE_RECORDS_SLACK",
    "ClientStats",
    "Listing",
    "MimecastClient",
    "WindowPage",
]

_log = logging.getLogger("connector.api.client")

AUDIT_EVENTS_PATH = "/api/audit/get-audit-events"
INTERNAL_DOMAINS_PATH = "/api/domain/get-internal-domain"
INTERNAL_USERS_PATH = "/api/user/get-internal-users"
FIND_GROUPS_PATH = "/api/directory/find-groups"
GROUP_MEMBERS_PATH = "/api/directory/get-group-members"

EVENT_TYPE_PRODUCTS: Mapping[str, str] = {value: spec.product for value, spec in registry().event_types.items()}
"""The Mimecast API 2.0 product an application needs for each of our event types (from ``manifest.json``)."""

_ENDPOINT_EVENT_TYPE = {
    AUDIT_EVENTS_PATH: "audit",
    INTERNAL_DOMAINS_PATH: "user_management",
    INTERNAL_USERS_PATH: "user_management",
    FIND_GROUPS_PATH: "user_management",
    GROUP_MEMBERS_PATH: "user_management",
}

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_USER_AGENT = "mimecast-ocsf-connector/0.1.0"
_MAX_SERVER_TEXT = 300
_JSON_BODY = {"Content-Type": "application/json"}
_RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
PAGE_RECORDS_FACTOR = 2
PAGE_RECORDS_SLACK = 100
"""A page may hold at most ``PAGE_RECORDS_FACTOR * pageSize + PAGE_RECORDS_SLACK`` records; a server that ignores
``pageSize`` (a million small records fit under the body cap) is refused instead of filling memory and a batch."""

Record = dict[str, Any]
# How often a read-ahead reader waiting to hand a page over looks at its listing's close event.
_HAND_OVER_POLL_SECONDS = 0.05


class _ListingClosed(Exception):
    """Raised on a read-ahead reader thread when the caller has closed its listing during a wait."""


@dataclass(frozen=True, slots=True)
class Listing:
    """One paginated request of the ``/api`` POST envelope, as a stream declares it.

    Attributes:
        endpoint: The path, e.g. ``/api/audit/get-audit-events``.
        data: The request's ``data`` array (the query).
        records_at: Where the records are: ``data[].<records_at>[]``; ``None`` for the ``data[]`` items themselves.
    """

    endpoint: str
    data: list[Record]
    records_at: str | None = None


@dataclass(frozen=True, slots=True)
class WindowPage:
    """One page of a listing over several windows (:meth:`MimecastClient.audit_event_windows`).

    Attributes:
        window: Index of the window the page belongs to.
        records: The page's records (empty for a window without any).
        last: Whether it is the window's last page: the window has then been read completely.
    """

    window: int
    records: list[Record]
    last: bool


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
    """

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    slept_seconds: float = 0.0
    auth: MimecastAuth | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def token_refreshes(self) -> int:
        """Access tokens fetched so far, read from the auth."""
        return self.auth.token_refreshes if self.auth is not None else 0

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


def _server_text(value: object) -> str:
    """Text the server sent, for an error message: shortened, and with every registered secret masked (a server
    that echoes the request would otherwise put the access token or the client secret into ``str(error)``)."""
    text = redact_text(str(value)) if value is not None else ""  # before cutting: no secret is left half-shown
    return text if len(text) <= _MAX_SERVER_TEXT else text[:_MAX_SERVER_TEXT] + "…"


def _first_fail(fail: list[Any]) -> tuple[str | None, str | None, bool]:
    """(code, message, retryable) of the first error in a ``fail[]`` array, in either of Mimecast's shapes."""
    first = fail[0] if isinstance(fail[0], dict) else {}
    errors = first.get("errors")
    error = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else first
    code = error.get("code")
    message = error.get("message")
    return (
        _server_text(code) if code is not None else None,
        _server_text(message) if message is not None else None,
        error.get("retryable") is True,
    )


def _is_certificate_failure(exc: BaseException) -> bool:
    """Whether a transport error is a failed TLS certificate verification (anywhere in its cause chain)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _certificate_error(endpoint: str, exc: httpx.HTTPError) -> ApiError:
    """Not retried: the same certificate fails the same way; the fix is on this machine or the proxy."""
    try:
        host = exc.request.url.host
    except RuntimeError:
        host = "the server"
    return ApiError(
        f"The TLS certificate of {host} could not be verified ({endpoint}): this is a certificate problem, not a "
        f"network one, so the request was not retried. Check that the system CA store is up to date, and if a "
        f"TLS-inspecting proxy sits in between, that its CA certificate is installed in the system CA store "
        f"(or SSL_CERT_FILE points to a bundle that holds it).",
        endpoint=endpoint,
    )


def _token_endpoint_gave_up(exc: ApiError, attempts: int) -> ApiError:
    """The final error once the token endpoint failed on every attempt (its own message says it will retry)."""
    status = f"HTTP {exc.status_code}" if exc.status_code is not None else "an error"
    return ApiError(
        f"The Mimecast token URL {exc.endpoint} failed {attempts} times (last answer: {status}); giving up. "
        f"Try again later; if it persists, check Mimecast's service status and token_url.",
        endpoint=exc.endpoint,
        status_code=exc.status_code,
        retryable=True,
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _decode_json(content: bytes) -> Any:
    """The JSON value of a response body, or None when it is not JSON.

    orjson first (about twice as fast as ``json`` on a 500-record page). It refuses a string holding a lone
    surrogate escape such as ``"\\ud83d"`` (a cut emoji in a tenant's text), which would refuse the whole page on
    every run; ``json`` reads it, and each lone surrogate becomes U+FFFD, so the page's records are mapped and the
    events stay valid UTF-8. The walk is iterative: nesting depth cannot overflow the stack.
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        payload = json.loads(content)
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or nested absurdly
        return None
    if isinstance(payload, str):
        return _LONE_SURROGATE.sub("\ufffd", payload)
    stack: list[Any] = [payload] if isinstance(payload, dict | list) else []
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, str):
                if _LONE_SURROGATE.search(value):
                    node[key] = _LONE_SURROGATE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)
        if isinstance(node, dict) and any(isinstance(k, str) and _LONE_SURROGATE.search(k) for k in node):
            for old in [k for k in node if _LONE_SURROGATE.search(k)]:
                node[_LONE_SURROGATE.sub("\ufffd", old)] = node.pop(old)
    return payload


def _describe(code: str | None, message: str | None) -> str:
    parts = [part for part in (code, message) if part]
    return ": ".join(parts) if parts else "no error details"


def _check_page_records(endpoint: str, count: int, size: int) -> None:
    """Refuse a page far larger than the ``pageSize`` asked for (see ``PAGE_RECORDS_FACTOR``)."""
    most = PAGE_RECORDS_FACTOR * size + PAGE_RECORDS_SLACK
    if count > most:
        raise ApiError(
            f"{endpoint} answered a page of {count} records to a request for {size}; pages of more than {most} "
            f"records ({PAGE_RECORDS_FACTOR} x pageSize + {PAGE_RECORDS_SLACK}) are refused, so the server's "
            f"ignoring pageSize cannot fill memory or one batch.",
            endpoint=endpoint,
        )


def _audit_query(start: datetime, end: datetime, categories: Sequence[str] | None) -> Record:
    """The ``data[0]`` of an audit request; raises ValueError for a naive datetime or a reversed window."""
    if start > end:
        raise ValueError("audit window start must not be after its end")
    query: Record = {"startDateTime": format_mimecast_time(start), "endDateTime": format_mimecast_time(end)}
    if categories:
        query["categories"] = list(categories)
    return query


class MimecastClient:
    """Calls the Mimecast API 2.0 endpoints the connector needs, page by page, with retries.

    Use as a context manager (or call :meth:`close`) so the connection pool is released.
    """

    def __init__(
        self,
        base_url: str,
        auth: MimecastAuth,
        *,
        page_size: int = 500,
        max_pages: int = 10000,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        read_ahead: bool = False,
        gate: RateGate | None = None,
        limits: Limits | None = None,
        proxy_url: str = "",
    ) -> None:
        """Create the client; no request is sent until an endpoint method is iterated.

        Args:
            base_url: ``api_base_url``, e.g. ``https://api.services.mimecast.com`` (validated here).
            auth: The token provider; its ``token_refreshes`` feeds ``stats``.
            page_size: Default ``pageSize`` sent with every paginated request.
            max_pages: Most pages one endpoint call may read before ``PaginationError`` (a runaway guard).
            retry: Retry and rate-limit policy; defaults to ``RetryPolicy()``.
            sleep: Injected so tests never really wait (called once per wait). Default: real time, and on a
                read-ahead reader thread a wait ends early when the caller closes the listing.
            rng: Jitter source; defaults to a fresh ``random.Random()``.
            clock: Monotonic seconds, for the pre-emptive slow-down deadline.
            now: Current UTC time, for the preflight audit window.
            transport: A custom transport (tests, the embedded simulator); defaults to an ``HTTPTransport``
                that retries connection setup twice.
            timeout: Defaults to 30 s per read, 10 s to connect (httpx timeouts bound each read, not a request).
            limits: Response size caps and the overall deadline of one request (``connector.api.transport``);
                defaults to the documented caps and a deadline equal to the read timeout.
            proxy_url: An http(s) proxy for every request; empty: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``
                and ``NO_PROXY`` from the environment. Not used with a custom ``transport``.
            read_ahead: Request page N+1 (on a helper thread) as soon as page N has arrived, while the caller
                is still processing earlier pages, so the network wait overlaps the caller's mapping work instead
                of adding to it. At most two pages are read ahead per listing (memory stays at three pages);
                errors are raised when the caller asks for the page that failed. Off by default: a listing then
                requests the next page only when the caller asks for it. Also settable as the ``read_ahead`` attribute.
            gate: The rate gate every request waits for; share one between clients that spend the same Mimecast
                quota. Defaults to a new ``RateGate`` on ``clock``.

        Raises:
            ConfigError: ``base_url``, ``page_size``, ``max_pages`` or ``proxy_url`` is invalid.
        """
        self.base_url = validate_base_url(base_url)
        proxy_url = validate_proxy_url(proxy_url)
        if page_size < 1:
            raise ConfigError("page_size must be at least 1", parameter="page_size")
        if max_pages < 1:
            raise ConfigError("max_pages must be at least 1", parameter="max_pages")
        self.auth = auth
        self.page_size = page_size
        self.max_pages = max_pages
        self.retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._now = now if now is not None else (lambda: datetime.now(UTC))
        self.read_ahead = read_ahead
        self.gate = gate if gate is not None else RateGate(clock)
        # per thread: the gate opening time this thread has already waited for (see ``_wait_for_gate``)
        self._waited = threading.local()
        self._in_flight = 0
        self._slowdown_lock = threading.Lock()
        # per thread: ``stop``, the close event of the read-ahead listing this thread reads (see ``_pause``)
        self._listing = threading.local()
        self.stats = ClientStats(auth=auth)
        timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        if limits is None:
            limits = Limits(deadline_seconds=timeout.read if timeout.read is not None else 30.0)
        self.limits = limits
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout,
            follow_redirects=False,
            transport=self._bounded(transport if transport is not None else self._real_transport(None)),
            mounts=self._proxy_mounts(proxy_url) if transport is None else None,
            headers={"Accept": "application/json", "User-Agent": _USER_AGENT},
        )

    @staticmethod
    def _real_transport(proxy: str | None) -> httpx.BaseTransport:
        """HTTPS through ``proxy`` (or direct); connection setup is retried twice."""
        return httpx.HTTPTransport(retries=2, proxy=proxy)

    def _bounded(self, transport: httpx.BaseTransport) -> httpx.BaseTransport:
        """``transport`` under the size caps and the overall deadline (token responses get the small cap)."""
        return BoundedTransport(transport, self.limits, token_urls=[self.auth.token_url])

    def _proxy_mounts(self, proxy_url: str) -> dict[str, httpx.BaseTransport | None]:
        """One proxied transport per host the client talks to (API and token URL) that needs a proxy.

        Passing a transport makes httpx ignore the proxy variables, so they are read here, per host, the way
        httpx reads them itself (``NO_PROXY`` included); an explicit ``proxy_url`` applies to every host.
        """
        mounts: dict[str, httpx.BaseTransport | None] = {}
        for url in (self.base_url, self.auth.token_url):
            proxy = proxy_url or environment_proxy(url)
            if proxy:
                mounts[host_pattern(url)] = self._bounded(self._real_transport(proxy))
                _log.debug("using a proxy", extra={"host": httpx.URL(url).host, "proxy": redact_url(proxy)})
        return mounts

    @classmethod
    def from_credentials(
        cls,
        base_url: str,
        token_url: str | None,
        client_key: str,
        client_secret: Secret,
        *,
        token_skew: float = 60.0,
        **kw: Any,
    ) -> MimecastClient:
        """Build the auth and the client from the connector's parameters.

        Args:
            base_url: ``api_base_url``.
            token_url: ``token_url``; empty or ``None`` means ``{api_base_url}/oauth/token``.
            client_key: The API 2.0 application's Client ID.
            client_secret: Its Client Secret.
            token_skew: Seconds before expiry at which the token is renewed.
            **kw: Passed to :class:`MimecastClient` (``page_size``, ``retry``, ``sleep``, ``clock``, ...);
                ``clock`` is shared with the auth.

        Raises:
            ConfigError: A URL or the client key is invalid.
        """
        base = validate_base_url(base_url)
        token = validate_base_url(token_url, parameter="token_url") if token_url else default_token_url(base)
        if not client_key or not client_key.strip():
            raise ConfigError("client_key is required", parameter="client_key")
        if not client_secret:
            raise ConfigError("client_secret is required", parameter="client_secret")
        clock = kw.get("clock", time.monotonic)
        auth = MimecastAuth(token, client_key.strip(), client_secret, clock=clock, skew=token_skew)
        return cls(base, auth, **kw)

    # -- lifecycle -----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> MimecastClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MimecastClient(base_url={self.base_url!r})"

    # -- endpoints -----------------------------------------------------------------------------------------

    def audit_event_pages(
        self,
        start: datetime,
        end: datetime,
        categories: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[list[Record]]:
        """Audit events with ``start <= eventTime < end`` (as Mimecast applies it), one page at a time.

        Args:
            start: Window start, an aware datetime (sent as ``yyyy-MM-ddTHH:mm:ss+0000``).
            end: Window end, an aware datetime.
            categories: Only these audit categories; ``None`` or empty means all.
            page_size: Overrides the client's page size for this pull.

        Raises:
            ValueError: A naive datetime, or ``start`` after ``end``.
        """
        return self._paginate(AUDIT_EVENTS_PATH, [_audit_query(start, end, categories)], page_size, None)

    def audit_event_windows(
        self,
        windows: Sequence[tuple[datetime, datetime]],
        categories: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[WindowPage]:
        """:meth:`audit_event_pages` over several windows in a row, as one stream of pages.

        Each window is its own sequential listing; every window ends with a page marked ``last`` (an empty one
        for a window without records), so the caller knows when a window has been read completely. With
        ``read_ahead`` the reader goes on to the next window's first page as soon as a window's last page has
        arrived, instead of waiting for the caller to finish that page.

        Raises:
            ValueError: A naive datetime, or a window whose start is after its end (before any request).
        """
        queries = [[_audit_query(start, end, categories)] for start, end in windows]
        size = self._page_size(page_size)
        return self._walk([(AUDIT_EVENTS_PATH, query) for query in queries], size, None)

    def audit_events(
        self,
        start: datetime,
        end: datetime,
        categories: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Record]:
        """The records of :meth:`audit_event_pages`, one by one (still read page by page)."""
        for page in self.audit_event_pages(start, end, categories, page_size):
            yield from page

    def internal_domains(self, page_size: int | None = None) -> Iterator[Record]:
        """The tenant's internal domains (``data[]`` items with ``domain``)."""
        for page in self._paginate(INTERNAL_DOMAINS_PATH, [], page_size, None):
            yield from page

    def internal_users(self, domain: str, page_size: int | None = None) -> Iterator[Record]:
        """Internal users of one domain (``data[0].users[]``)."""
        for page in self._paginate(INTERNAL_USERS_PATH, [{"domain": domain}], page_size, "users"):
            yield from page

    def groups(self, source: str = "cloud", query: str = "", page_size: int | None = None) -> Iterator[Record]:
        """Directory groups from ``source`` ("cloud" or "ldap"), ``data[0].folders[]``.

        Raises:
            ConfigError: ``source`` is neither "cloud" nor "ldap".
        """
        if source not in ("cloud", "ldap"):
            raise ConfigError(f"group source must be 'cloud' or 'ldap', not {source!r}", parameter="source")
        data = [{"query": query, "source": source}]
        for page in self._paginate(FIND_GROUPS_PATH, data, page_size, "folders"):
            yield from page

    def group_members(self, group_id: str, page_size: int | None = None) -> Iterator[Record]:
        """Members of one group (``data[0].groupMembers[]``); safe to call from several threads at once."""
        for page in self._paginate(GROUP_MEMBERS_PATH, [{"id": group_id}], page_size, "groupMembers"):
            yield from page

    def pages(self, listings: Sequence[Listing], *, page_size: int | None = None) -> Iterator[WindowPage]:
        """The pages of several listings in a row, as one stream (see :meth:`audit_event_windows`): every listing
        ends with a page marked ``last``, which says it was read completely."""
        size = self._page_size(page_size)
        if len({listing.records_at for listing in listings}) > 1:
            raise ValueError("the listings of one pages() call must select their records the same way")
        nested = listings[0].records_at if listings else None
        return self._walk([(listing.endpoint, listing.data) for listing in listings], size, nested)

    def probe(self, listing: Listing, event_type: str) -> None:
        """One request for one record of ``listing``: a 401/403 names ``event_type`` and the product it needs.

        Raises:
            PermissionDeniedError: the API application lacks the event type's product.
            AuthError, ApiError: as for any request.
        """
        self._post(listing.endpoint, self._envelope(listing.data, 1, None), denied_event_type=event_type)
        _log.info("preflight passed", extra={"event_type": event_type})

    def preflight(self, event_types: Iterable[str]) -> None:
        """Make one small request per event type, so a missing product is reported before the first run.

        ``audit`` reads one audit event from the last hour; ``user_management`` reads one group.

        Raises:
            PermissionDeniedError: 401/403: the message names the event type and the missing product.
            AuthError: The token endpoint refused the credentials.
            ApiError: Any other failure.
            ConfigError: An unknown event type.
        """
        for event_type in event_types:
            if event_type == "audit":
                end = self._now()
                query = {
                    "startDateTime": format_mimecast_time(end - timedelta(hours=1)),
                    "endDateTime": format_mimecast_time(end),
                }
                body = self._envelope([query], 1, None)
                self._post(AUDIT_EVENTS_PATH, body, denied_event_type="audit")
            elif event_type == "user_management":
                body = self._envelope([{"query": "", "source": "cloud"}], 1, None)
                self._post(FIND_GROUPS_PATH, body, denied_event_type="user_management")
            else:
                known = ", ".join(sorted(EVENT_TYPE_PRODUCTS))
                raise ConfigError(f"unknown event type {event_type!r} (known: {known})", parameter="event_types")
            _log.info("preflight passed", extra={"event_type": event_type})

    # -- pagination ----------------------------------------------------------------------------------------

    @staticmethod
    def _envelope(data: list[Record], page_size: int, token: str | None) -> Record:
        pagination: Record = {"pageSize": page_size}
        if token is not None:
            pagination["pageToken"] = token
        return {"meta": {"pagination": pagination}, "data": data}

    def _page_size(self, page_size: int | None) -> int:
        size = self.page_size if page_size is None else page_size
        if size < 1:
            raise ConfigError("page_size must be at least 1", parameter="page_size")
        return size

    def _paginate(
        self, endpoint: str, data: list[Record], page_size: int | None, nested: str | None
    ) -> Iterator[list[Record]]:
        return self._pages(endpoint, data, self._page_size(page_size), nested)

    def _pages(self, endpoint: str, data: list[Record], size: int, nested: str | None) -> Iterator[list[Record]]:
        for page in self._walk([(endpoint, data)], size, nested):
            if page.records:
                yield page.records

    def _walk(
        self, listings: Sequence[tuple[str, list[Record]]], size: int, nested: str | None
    ) -> Iterator[WindowPage]:
        if self.read_ahead:
            return self._walk_read_ahead(listings, size, nested)
        return self._walk_on_demand(listings, size, nested)

    def _fetch(
        self, endpoint: str, data: list[Record], size: int, nested: str | None, token: str | None
    ) -> tuple[list[Record], str | None]:
        """One page: its records and the next page token (``None`` at the end)."""
        payload = self._post(endpoint, self._envelope(data, size, token))
        records = self._records(endpoint, payload, nested)
        _check_page_records(endpoint, len(records), size)
        self.stats.add(pages=1)
        return records, self._next_token(endpoint, payload)

    def _after_page(
        self, endpoint: str, page_number: int, records: list[Record], seen: set[str], next_token: str | None
    ) -> PaginationError | None:
        """Log a page; the error to raise once its records are handed out, if the listing cannot go on.

        ``seen`` holds every token this listing was given so far: a token given twice (A, B, A...) would loop,
        so the listing stops there, not at ``max_pages``. An empty page ends the listing even with a next token
        (servers send one alongside an empty last page: docs/mimecast-api.md).
        """
        _log.debug(
            "page fetched",
            extra={
                "endpoint": endpoint,
                "page": page_number,
                "records": len(records),
                "has_next": next_token is not None,
            },
        )
        if not records or next_token is None:
            return None
        if next_token in seen:
            return PaginationError(
                f"Mimecast returned a page token for {endpoint} that it had already given in this listing "
                f"(page {page_number}); the server is not advancing, so the pull stops here instead of looping.",
                endpoint=endpoint,
            )
        if page_number >= self.max_pages:
            return PaginationError(
                f"{endpoint} still had more pages after the cap of {self.max_pages} pages per call; "
                f"the pull stops here. Narrow the window or raise max_pages.",
                endpoint=endpoint,
            )
        seen.add(next_token)  # at most max_pages tokens
        return None

    def _walk_on_demand(
        self, listings: Sequence[tuple[str, list[Record]]], size: int, nested: str | None
    ) -> Generator[WindowPage, None, None]:
        """Each listing in turn, page by page; a page is requested only when the caller asks for it."""
        for index, (endpoint, data) in enumerate(listings):
            token: str | None = None
            seen: set[str] = set()  # every token this listing was given
            page_number = 0
            while True:
                records, next_token = self._fetch(endpoint, data, size, nested, token)
                page_number += 1
                error = self._after_page(endpoint, page_number, records, seen, next_token)
                last = (not records or next_token is None) and error is None
                yield WindowPage(index, records, last)
                if error is not None:
                    raise error
                if last:
                    break
                token = next_token

    def _walk_read_ahead(
        self, listings: Sequence[tuple[str, list[Record]]], size: int, nested: str | None
    ) -> Iterator[WindowPage]:
        # A reader thread runs the on-demand walk and hands pages over through a one-slot queue: it sends the
        # request for the next page the moment a page has arrived and been parsed (also across listings),
        # without waiting for this thread, which is busy mapping and would make it wait for the GIL before
        # every request. It blocks when it is two pages ahead: one page in the queue and one in hand.
        pages: queue.Queue[tuple[WindowPage | None, BaseException | None] | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item: tuple[WindowPage | None, BaseException | None] | None) -> bool:
            """Put ``item`` in the queue; False (item dropped) once the caller has closed the listing."""
            while not stop.is_set():
                try:
                    pages.put(item, timeout=_HAND_OVER_POLL_SECONDS)
                except queue.Full:
                    continue
                return True
            return False

        def read() -> None:
            self._listing.stop = stop  # lets this thread's waits (backoff, 429, slow-down) end at close()
            walk = self._walk_on_demand(listings, size, nested)
            try:
                for page in walk:
                    if not hand_over((page, None)) or stop.is_set():
                        return
            except _ListingClosed:
                return
            except BaseException as exc:  # handed to the caller, in order, after the pages before it
                hand_over((None, exc))
            finally:
                walk.close()
                hand_over(None)

        reader = threading.Thread(target=read, name="read-ahead", daemon=True)
        reader.start()
        try:
            while (item := pages.get()) is not None:
                page, error = item
                if error is not None:
                    raise error
                assert page is not None
                yield page
        finally:
            # A caller that stops early leaves at most one request in flight: let it finish (its retry waits end
            # at once) and drop what it brings, so no request of this listing is still running once the caller
            # moves on (or closes the client). The garbage collector may close an abandoned listing on the
            # reader thread itself: that thread must not wait for itself; it ends on its own right after.
            stop.set()
            if threading.current_thread() is not reader:
                reader.join()

    @staticmethod
    def _next_token(endpoint: str, payload: Record) -> str | None:
        """``meta.pagination.next``: a non-blank string (or an integer) goes on; absent, null or blank ends.

        Anything else (``false``, ``0.5``, an object) is a server fault, refused rather than sent back as the
        text ``'False'`` or read as the end of the listing (which would lose the rest in silence).
        """
        meta = payload.get("meta")
        pagination = meta.get("pagination") if isinstance(meta, dict) else None
        value = pagination.get("next") if isinstance(pagination, dict) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ApiError(
            f"{endpoint} answered with a next page token that is neither text nor a number "
            f"(a JSON {type(value).__name__}); the listing cannot go on.",
            endpoint=endpoint,
        )

    @staticmethod
    def _records(endpoint: str, payload: Record, nested: str | None) -> list[Record]:
        data = payload.get("data", [])
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ApiError(f"{endpoint} answered with a 'data' that is not a list", endpoint=endpoint)
        items: list[Any] = data
        if nested is not None:
            items = []
            for entry in data:
                inner = entry.get(nested, []) if isinstance(entry, dict) else None
                if inner is None:
                    inner = []
                if not isinstance(inner, list):
                    raise ApiError(f"{endpoint} answered with a '{nested}' that is not a list", endpoint=endpoint)
                items.extend(inner)
        # A malformed entry (not an object) is passed on, not raised: the mapper reports it with its position
        # and the rest of the page is still delivered. Raising here would fail the same window on every run.
        return items

    # -- one request with retries --------------------------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` (backoff, rate limit, slow-down). On a read-ahead reader thread, a real-time wait is cut
        short when the caller closes the listing (``_ListingClosed``), so closing never waits for a long rate
        limit; an injected ``sleep`` (tests) is called once, as it is."""
        stop: threading.Event | None = getattr(self._listing, "stop", None)
        if stop is not None and stop.is_set():
            raise _ListingClosed
        if seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
        elif stop is None:
            time.sleep(seconds)
        else:
            started = time.monotonic()
            if stop.wait(seconds):
                self.stats.add(slept_seconds=time.monotonic() - started)
                raise _ListingClosed
        self.stats.add(slept_seconds=seconds)

    def _wait_for_gate(self, endpoint: str) -> None:
        """Wait until the rate gate is open (a 429 or a spent budget closed it, on this thread or another).

        A wait that another thread extends meanwhile is waited out too. The opening time this thread has waited
        for is remembered, so a thread never waits twice for the same closing (its own 429 wait included; with an
        injected ``sleep`` the clock does not move while it "sleeps").
        """
        while True:
            opens_at = self.gate.opens_at()
            if opens_at <= getattr(self._waited, "until", 0.0):
                return
            delay = opens_at - self._clock()
            if delay > 0:
                _log.info("rate limited, waiting for the gate", extra={"endpoint": endpoint, "delay_s": delay})
                self._pause(delay)
            self._waited.until = opens_at

    def _send(self, endpoint: str, body: Record) -> httpx.Response:
        """POST once, counting the request as in flight while it is (for :meth:`_note_rate_headers`)."""
        with self._slowdown_lock:
            self._in_flight += 1
        try:
            # orjson: the envelope is small, but the page that comes back is not (parsed in _interpret).
            return self._http.post(endpoint, content=orjson.dumps(body), headers=_JSON_BODY)
        except RuntimeError:  # httpx: "Cannot send a request, as the client has been closed."
            if not self._http.is_closed:
                raise
            raise ApiError(
                f"{endpoint} was not requested: the connector was closed (close()) while a pull was still running; "
                f"nothing more is sent and the last committed checkpoint stays valid.",
                endpoint=endpoint,
            ) from None
        finally:
            with self._slowdown_lock:
                self._in_flight -= 1

    def _note_rate_headers(self, headers: httpx.Headers) -> None:
        """Pause before the next request when the window's budget is (nearly) spent.

        ``X-RateLimit-Remaining`` was counted when the server answered; the requests other threads still have
        in flight will spend part of it too, so they are subtracted before comparing with the policy's
        ``low_remaining`` (a sequential pull has none in flight: exactly ``RetryPolicy.preemptive_wait``).
        """
        remaining = parse_remaining(headers)
        if remaining is None:
            return
        with self._slowdown_lock:
            others = self._in_flight
        if remaining - others > self.retry.low_remaining:
            return
        delay = parse_reset_delay(headers)
        if delay is None:
            return
        wait = min(delay, self.retry.max_rate_limit_wait)
        if wait > 0:
            self.gate.close_for(wait)

    def _post(self, endpoint: str, body: Record, *, denied_event_type: str | None = None) -> Record:
        """Send one POST, retrying per the policy, and return the JSON payload of a successful answer."""
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_gate(endpoint)
            try:
                response = self._send(endpoint, body)
            except _RETRYABLE_TRANSPORT_ERRORS as exc:
                self.stats.add(requests=1)
                if _is_certificate_failure(exc):  # the same certificate fails the same way on every attempt
                    raise _certificate_error(endpoint, exc) from exc
                if attempt >= policy.max_attempts:
                    raise self._transport_error(endpoint, attempt, exc) from exc
                self._retry_after_backoff(endpoint, attempt, type(exc).__name__, None)
                continue
            except ApiError as exc:  # the token endpoint was rate limited or failed, or a response was too large
                if not exc.retryable:
                    raise
                if attempt >= policy.max_attempts:
                    raise _token_endpoint_gave_up(exc, attempt) from exc
                self._retry_after_backoff(endpoint, attempt, "token endpoint", exc.status_code)
                continue
            # The auth may have re-sent the call once after a 401; that 401 is in the history.
            resent = sum(1 for earlier in response.history if earlier.request.url == response.request.url)
            self.stats.add(requests=1 + resent)

            if response.status_code == 429:
                self.stats.add(rate_limited=1)
                if attempt >= policy.max_attempts:
                    raise RateLimitExhaustedError(
                        f"Mimecast kept answering HTTP 429 (rate limited) to {endpoint} after {attempt} "
                        f"attempts; the limit is shared by all applications of the same Mimecast user. "
                        f"Run less often or lower the concurrency.",
                        endpoint=endpoint,
                        status_code=429,
                        retryable=True,
                    )
                wait = policy.rate_limit_wait(response.headers, self._rng, attempt)
                _log.warning(
                    "rate limited, waiting",
                    extra={"endpoint": endpoint, "attempt": attempt, "delay_s": round(wait, 3)},
                )
                self.stats.add(retries=1)
                # Every thread of this client waits for the reset, not only this one (RateGate).
                mine = self._clock() + wait
                self.gate.close_for(wait)
                self._pause(wait)
                self._waited.until = max(getattr(self._waited, "until", 0.0), mine)
                continue

            self._note_rate_headers(response.headers)
            try:
                return self._interpret(endpoint, response, denied_event_type)
            except ApiError as exc:
                if not exc.retryable or attempt >= policy.max_attempts:
                    raise
                self._retry_after_backoff(endpoint, attempt, exc.code or "server error", exc.status_code)

    def _transport_error(self, endpoint: str, attempt: int, exc: Exception) -> ApiError:
        """The final error after ``attempt`` network failures or timeouts."""
        if isinstance(exc, OverallTimeoutError):
            cause = f"{exc}: the overall timeout per request was exceeded (a server too slow to answer)"
        else:
            cause = f"network problem or timeout reaching {self.base_url}"
        return ApiError(
            f"{endpoint} failed {attempt} times; last error: {type(exc).__name__} ({cause})",
            endpoint=endpoint,
            retryable=True,
        )

    def _retry_after_backoff(self, endpoint: str, attempt: int, reason: str, status: int | None) -> None:
        delay = self.retry.backoff(attempt)
        _log.warning(
            "retrying request",
            extra={
                "endpoint": endpoint,
                "attempt": attempt,
                "reason": reason,
                "status": status,
                "delay_s": delay,
            },
        )
        self.stats.add(retries=1)
        self._pause(delay)

    def _denied(self, event_type: str, endpoint: str, status: int, code: str | None) -> PermissionDeniedError:
        product = EVENT_TYPE_PRODUCTS[event_type]
        detail = f" ({code})" if code else ""
        return PermissionDeniedError(
            f"Mimecast refused the {event_type} event type: {endpoint} answered HTTP {status}{detail}. "
            f"The API application lacks the '{product}' product (or a role that allows it). Add it in "
            f"Administration Console → Services → API and Platform Integrations, on the API 2.0 application "
            f"whose Client ID is the configured client_key.",
            event_type=event_type,
            product=product,
        )

    def _interpret(self, endpoint: str, response: httpx.Response, denied_event_type: str | None) -> Record:
        """Turn one non-429 answer into its payload or the matching exception."""
        status = response.status_code
        code: str | None = None
        message: str | None = None
        payload: Any = None
        payload = _decode_json(response.content)
        if isinstance(payload, dict) and isinstance(payload.get("fail"), list) and payload["fail"]:
            code, message, fail_retryable = _first_fail(payload["fail"])
        else:
            fail_retryable = False

        if 300 <= status < 400:
            location = response.headers.get("location", "")
            host = urlsplit(location).hostname or "an unknown location"
            raise ApiError(
                f"{endpoint} answered HTTP {status}, a redirect to {host}. Redirects are not followed "
                f"so that credentials never leave the configured host; check api_base_url.",
                endpoint=endpoint,
                status_code=status,
            )
        if status == 401:
            event_type = denied_event_type or _ENDPOINT_EVENT_TYPE.get(endpoint)
            if denied_event_type is not None:
                raise self._denied(denied_event_type, endpoint, status, code)
            product = EVENT_TYPE_PRODUCTS.get(event_type or "", "the needed")
            raise AuthError(
                f"Mimecast answered HTTP 401 to {endpoint} even with a freshly issued access token. "
                f"Check that the API 2.0 application is enabled and has the '{product}' product, "
                f"or run the connector's check to test each event type."
            )
        if status == 403:
            event_type = denied_event_type or _ENDPOINT_EVENT_TYPE.get(endpoint, "audit")
            raise self._denied(event_type, endpoint, status, code)
        if status >= 500:
            raise ApiError(
                f"Mimecast answered HTTP {status} to {endpoint} ({_describe(code, message)})",
                endpoint=endpoint,
                status_code=status,
                code=code,
                retryable=True,
            )
        if status >= 400 or status < 200:
            raise ApiError(
                f"Mimecast answered HTTP {status} to {endpoint} ({_describe(code, message)})",
                endpoint=endpoint,
                status_code=status,
                code=code,
            )
        if not isinstance(payload, dict):
            raise ApiError(
                f"{endpoint} answered HTTP {status} with a body that is not a JSON object",
                endpoint=endpoint,
                status_code=status,
            )
        if code is not None or message is not None or payload.get("fail"):
            raise ApiError(
                f"Mimecast reported an error for {endpoint}: {_describe(code, message)}",
                endpoint=endpoint,
                status_code=status,
                code=code,
                retryable=fail_retryable,
            )
        meta = payload.get("meta")
        meta_status = meta.get("status") if isinstance(meta, dict) else None
        if meta_status is not None and meta_status != 200:
            retryable = isinstance(meta_status, int) and (meta_status == 429 or meta_status >= 500)
            raise ApiError(
                f"{endpoint} answered with meta.status {_server_text(meta_status)} instead of 200",
                endpoint=endpoint,
                status_code=meta_status if isinstance(meta_status, int) else status,
                code=f"meta_status_{_server_text(meta_status)}",
                retryable=retryable,
            )
        return payload
