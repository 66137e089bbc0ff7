"""The Mimecast API 2.0 client the connector calls: a facade that wires the ``connector.api`` modules together.

Each of them has one job: ``envelope`` (the ``/api`` POST
envelope and its error rules), ``retry`` (the retry loop, 429s and the shared ``RateGate``), ``paginate`` (the
page-token walk and its loop guard), ``prefetch`` (the read-ahead worker), ``channel`` (the bounded, proxied
``httpx.Client``), ``transport`` (response caps and the deadline), ``stats`` (the run-summary counters).

It knows no endpoint: a stream declares what it reads (``connector.streams``) and asks for the pages of its
listings (``pages``), or for one record to test a permission (``probe``). Pages are generated: the next page is
requested only when the caller asks for more, so a pull
of any size runs in the memory of a page. With ``read_ahead`` one worker thread per walk requests up to two
pages ahead while the caller works on the page it has (memory: three pages). The client is safe to share between
threads (the collector reads group members from a small pool): httpx's connection pool is thread-safe, the auth
fetches a token under a lock, the retry loop's state is per thread or locked, and the statistics are locked.

Any ``httpx.Auth`` will do. Two attributes are read when it has them: ``token_refreshes`` (an int, for the run
summary) and ``token_url`` (its token endpoint: the small response cap, and a proxy mount for its host).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import httpx

from connector.api import paginate
from connector.api.auth_select import build_auth
from connector.api.channel import open_channel, send
from connector.api.envelope import (
    API_KEYS_V1_CREDENTIALS,
    EVENT_TYPE_PRODUCTS,
    OAUTH2_CREDENTIALS,
    Call,
    Envelope,
    Listing,
    PostEnvelope,
)
from connector.api.ordered import ordered_walks
from connector.api.paginate import PAGE_RECORDS_FACTOR, PAGE_RECORDS_SLACK, Page, WindowPage
from connector.api.prefetch import Prefetch
from connector.api.ratelimit import RateGate, RetryPolicy
from connector.api.retry import Retrier
from connector.api.stats import ClientStats
from connector.api.transport import Limits, validate_proxy_url
from connector.api.urls import validate_base_url
from connector.config import Config
from connector.errors import ConfigError

__all__ = [
    "CATCHUP_AHEAD_PAGES",
    "DEFAULT_TIMEOUT",
    "EVENT_TYPE_PRODUCTS",
    "PAGE_RECORDS_FACTOR",
    "PAGE_RECORDS_SLACK",
    "READ_AHEAD_PAGES",
    "ClientStats",
    "Listing",
    "MimecastClient",
    "WindowPage",
]

_log = logging.getLogger("connector.api.client")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
READ_AHEAD_PAGES = 2
"""With read-ahead, most pages of one walk fetched and not yet taken by the caller (memory: this plus one)."""
CATCHUP_AHEAD_PAGES = 8
"""In :meth:`MimecastClient.ordered_pages`, most pages of one listing fetched and not yet taken by the caller. The
listings after the one being consumed can only be read this far ahead: a catch-up gets the full ``concurrency``
when its listings (slices) have up to about ``CATCHUP_AHEAD_PAGES x c / (c - 1)`` pages (docs/architecture.md,
"Parallel catch-up"); memory: ``concurrency x CATCHUP_AHEAD_PAGES`` pages (about 0.4 MiB each at 500 records)."""
_RATE_LIMIT_ADVICE = (
    "the limit is shared by all applications of the same Mimecast user. Run less often or lower the concurrency."
)
_GIVE_UP_ADVICE = "Try again later; if it persists, check Mimecast's service status and token_url."

Record = dict[str, Any]
T = TypeVar("T")


class MimecastClient:
    """Calls the Mimecast API 2.0 endpoints the connector needs, page by page, with retries.

    Use as a context manager (or call :meth:`close`) so the connection pool is released.
    """

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth,
        *,
        page_size: int = 500,
        max_pages: int = 10000,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        read_ahead: bool = False,
        gate: RateGate | None = None,
        limits: Limits | None = None,
        proxy_url: str = "",
        auth_method: str = "oauth2",
    ) -> None:
        """Create the client; no request is sent until an endpoint method is iterated.

        Args:
            base_url: ``api_base_url``, e.g. ``https://api.services.mimecast.com`` (validated here).
            auth: Any ``httpx.Auth`` (``MimecastAuth``; see the module docstring for what else is read of it).
            page_size: Default ``pageSize`` sent with every paginated request.
            max_pages: Most pages one endpoint call may read before ``PaginationError`` (a runaway guard).
            retry: Retry and rate-limit policy; defaults to ``RetryPolicy()``.
            sleep: Injected so tests never really wait (called once per wait). Default: real time, and on a
                read-ahead worker a wait ends early when the caller closes the listing.
            rng: Jitter source; defaults to a fresh ``random.Random()``.
            clock: Monotonic seconds, for the rate gate.
            transport: A custom transport (tests, the embedded simulator); defaults to an ``HTTPTransport``
                that retries connection setup twice.
            timeout: Defaults to 30 s per read, 10 s to connect (httpx timeouts bound each read, not a request).
            read_ahead: Request page N+1 (on a worker thread, one per walk) as soon as page N has arrived, while
                the caller is still processing earlier pages, so the network wait overlaps the caller's work
                instead of adding to it. At most ``READ_AHEAD_PAGES`` pages are read ahead per walk; errors are
                raised when the caller asks for the page that failed. Off by default: a listing then requests the
                next page only when the caller asks for it. Also settable as the ``read_ahead`` attribute.
            gate: The rate gate every request waits for; share one between clients that spend the same Mimecast
                quota. Defaults to a new ``RateGate`` on ``clock``.
            limits: Response size caps and the overall deadline of one request (``connector.api.transport``);
                defaults to the documented caps and a deadline equal to the read timeout.
            proxy_url: An http(s) proxy for every request; empty: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``
                and ``NO_PROXY`` from the environment. Not used with a custom ``transport``.
            auth_method: What ``auth`` is (``oauth2`` or ``api_keys_v1``): which base URLs fit, and what the
                messages of a refused request tell the user to check.

        Raises:
            ConfigError: ``base_url``, ``page_size``, ``max_pages`` or ``proxy_url`` is invalid.
        """
        self.base_url = validate_base_url(base_url, auth_method=auth_method)
        self._credentials = API_KEYS_V1_CREDENTIALS if auth_method == "api_keys_v1" else OAUTH2_CREDENTIALS
        proxy_url = validate_proxy_url(proxy_url)
        if page_size < 1:
            raise ConfigError("page_size must be at least 1", parameter="page_size")
        if max_pages < 1:
            raise ConfigError("max_pages must be at least 1", parameter="max_pages")
        self.auth = auth
        self.page_size = page_size
        self.max_pages = max_pages
        self.read_ahead = read_ahead
        self.stats = ClientStats(auth=auth)
        self._retrier = Retrier(
            retry if retry is not None else RetryPolicy(),
            self.stats,
            gate=gate,
            sleep=sleep,
            rng=rng,
            clock=clock,
            service="Mimecast",
            rate_limit_advice=_RATE_LIMIT_ADVICE,
            give_up_advice=_GIVE_UP_ADVICE,
        )
        timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        if limits is None:
            limits = Limits(deadline_seconds=timeout.read if timeout.read is not None else 30.0)
        self.limits = limits
        self._http = open_channel(
            self.base_url, auth, timeout=timeout, limits=limits, transport=transport, proxy_url=proxy_url
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry and rate-limit policy (settable)."""
        return self._retrier.policy

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self._retrier.policy = policy

    @property
    def gate(self) -> RateGate:
        """The rate gate every request of this client waits for (settable, to share one between clients)."""
        return self._retrier.gate

    @gate.setter
    def gate(self, gate: RateGate) -> None:
        self._retrier.gate = gate

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        token_skew: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
        **kw: Any,
    ) -> MimecastClient:
        """Build the auth ``config.auth_method`` names (``build_auth``) and the client on ``config.api_base_url``.

        Args:
            config: The validated configuration, its secrets present.
            token_skew: Seconds before expiry at which an OAuth 2.0 token is renewed.
            wall_clock: Seconds since the epoch, for the date an API 1.0 signature covers.
            **kw: Passed to :class:`MimecastClient`; ``clock`` is shared with the auth.

        Raises:
            ConfigError: A URL or a credential is invalid, or a secret is missing.
        """
        clock = kw.get("clock", time.monotonic)
        auth = build_auth(config, clock=clock, token_skew=token_skew, wall_clock=wall_clock)
        return cls(config.api_base_url, auth, auth_method=config.auth_method, **kw)

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

    # -- listings ------------------------------------------------------------------------------------------

    def pages(
        self, listings: Sequence[Listing], *, page_size: int | None = None, event_type: str | None = None
    ) -> Iterator[WindowPage]:
        """The pages of several listings in a row, as one stream : every listing
        ends with a page marked ``last``, which says it was read completely. ``event_type`` is what a 401/403
        names (with its product); default the event type of a known endpoint."""
        size = self._page_size(page_size)
        if len({listing.records_at for listing in listings}) > 1:
            raise ValueError("the listings of one pages() call must select their records the same way")
        return self._walk([self._envelope(listing, event_type) for listing in listings], size)

    def ordered_pages(
        self,
        listings: Iterable[Listing],
        *,
        concurrency: int,
        ahead: int = CATCHUP_AHEAD_PAGES,
        page_size: int | None = None,
        event_type: str | None = None,
    ) -> Iterator[WindowPage]:
        """The pages of several listings in order, as :meth:`pages`, with up to ``concurrency`` listings read at once.

        Each listing being read has a worker thread of its own, at most ``ahead`` pages ahead of the caller; all of
        them go through this client's retry loop and its one rate gate (a 429 on any of them holds them all).
        Pages are handed out listing after listing (``connector.api.ordered``): every page of listing k comes
        before any of listing k + 1, and an error in listing k is raised after its pages before it and before any
        page of a later listing. ``listings`` is iterated lazily, on the caller's thread, one when a slot opens.
        ``concurrency`` 1, or a single listing, is exactly :meth:`pages`.
        """
        if concurrency < 1:
            raise ConfigError("catchup_concurrency must be at least 1", parameter="catchup_concurrency")
        if concurrency == 1 or (isinstance(listings, Sequence) and len(listings) <= 1):
            return self.pages(list(listings), page_size=page_size, event_type=event_type)
        return self._ordered(listings, self._page_size(page_size), event_type, concurrency, ahead)

    def probe(self, listing: Listing | Envelope, event_type: str) -> None:
        """One request for one record of ``listing``: a 401/403 names ``event_type`` and the product it needs.

        ``listing`` is a ``/api`` POST listing, or an envelope of another shape built as a probe (the SIEM GET).

        Raises:
            PermissionDeniedError: the API application lacks the event type's product.
            AuthError, ApiError: as for any request.
        """
        envelope: Envelope = (
            PostEnvelope(listing, event_type, probe=True, credentials=self._credentials)
            if isinstance(listing, Listing)
            else listing
        )
        self.request(envelope.call(1, None), envelope.interpret)
        _log.info("preflight passed", extra={"event_type": event_type})

    # -- any envelope --------------------------------------------------------------------------------------

    def walk(self, envelopes: Sequence[Envelope], *, page_size: int | None = None) -> Iterator[WindowPage]:
        """The pages of several listings of any envelope in a row, as :meth:`pages` (with read-ahead if set)."""
        return self._walk(envelopes, self._page_size(page_size))

    def request(
        self, call: Call, interpret: Callable[[httpx.Response], T], *, cancel: threading.Event | None = None
    ) -> T:
        """Send ``call`` through the retry loop and return what ``interpret`` makes of the answer.

        ``call.authenticated=False`` sends it without the client's auth (a pre-signed download on another host);
        it still goes through the bounded transport (size caps, overall deadline) and shares the rate gate.

        Raises:
            ApiError: as the retry loop raises it (connector.api.retry), or whatever ``interpret`` raises.
        """
        return self._retrier.call(call.name, lambda: send(self._http, call), interpret, cancel=cancel)

    # -- plumbing ------------------------------------------------------------------------------------------

    def _envelope(self, listing: Listing, event_type: str | None = None) -> PostEnvelope:
        return PostEnvelope(listing, event_type, credentials=self._credentials)

    def _page_size(self, page_size: int | None) -> int:
        size = self.page_size if page_size is None else page_size
        if size < 1:
            raise ConfigError("page_size must be at least 1", parameter="page_size")
        return size

    def _fetch(self, envelope: Envelope, size: int, token: str | None, cancel: threading.Event | None) -> Page:
        """One page of ``envelope``'s listing: its records and the next page token (``None`` at the end)."""
        page = envelope.page(self.request(envelope.call(size, token), envelope.interpret, cancel=cancel))
        self.stats.add(pages=1)
        return page

    def _ordered(
        self, listings: Iterable[Listing], size: int, event_type: str | None, concurrency: int, ahead: int
    ) -> Generator[WindowPage, None, None]:
        """:meth:`ordered_pages` once its arguments are checked: one page-token walk per listing."""

        def walk(envelope: Envelope) -> Callable[[threading.Event], Iterator[WindowPage]]:
            def pages(cancel: threading.Event) -> Iterator[WindowPage]:
                return paginate.walk(
                    [envelope],
                    lambda envelope, token: self._fetch(envelope, size, token, cancel),
                    page_size=size,
                    max_pages=self.max_pages,
                )

            return pages

        def walks() -> Iterator[Callable[[threading.Event], Iterator[WindowPage]]]:
            selected: set[str | None] = set()
            for listing in listings:
                selected.add(listing.records_at)
                if len(selected) > 1:
                    raise ValueError("the listings of one ordered_pages() call must select their records the same way")
                yield walk(self._envelope(listing, event_type))

        ordered = ordered_walks(walks(), concurrency=concurrency, ahead=ahead, last=_is_last, name="catch-up")
        try:
            for index, page in ordered:
                yield WindowPage(index, page.records, page.last)
        finally:
            ordered.close()

    def _walk(
        self, envelopes: Sequence[Envelope], size: int
    ) -> Generator[WindowPage, None, None] | Prefetch[WindowPage]:
        """Every listing goes through here: the walk, on a read-ahead worker when ``read_ahead`` is on."""
        # Set when the caller closes a read-ahead walk: the worker's retry and 429 waits end at once.
        cancel = threading.Event() if self.read_ahead else None
        pages = paginate.walk(
            envelopes,
            lambda envelope, token: self._fetch(envelope, size, token, cancel),
            page_size=size,
            max_pages=self.max_pages,
        )
        if cancel is None:
            return pages
        final = len(envelopes) - 1
        # A single page (the usual group's members) is read on the caller's thread: no worker for nothing.
        return Prefetch(
            pages, ahead=READ_AHEAD_PAGES, cancel=cancel, last=lambda page: page.last and page.window == final
        )


def _is_last(page: WindowPage) -> bool:
    return page.last
