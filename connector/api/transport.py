"""The transport under every request of the client: bounded bodies, an overall deadline, proxies.

httpx bounds neither the size of a response nor the total time of a request (its timeouts are per read: a
server that sends one byte a second keeps a request alive for ever), and a custom transport makes it ignore
``HTTPS_PROXY``/``NO_PROXY``. ``BoundedTransport`` wraps the real transport, so the token request (read by httpx
inside the auth flow) and the API requests get the same guarantees from one place:

* **Wire bytes** (as received, compressed or not) are counted chunk by chunk and capped: ``MAX_WIRE_BYTES`` for
  an API response, ``MAX_TOKEN_BYTES`` for a token response.
* **Decoded bytes**: the transport inflates ``gzip``/``deflate`` itself, a bounded step at a time, and caps the
  inflated size (``MAX_BODY_BYTES``, ``MAX_TOKEN_BYTES``), so a 2 MB gzip bomb never becomes 2 GB in memory.
  It asks for those two encodings only; a response in any other encoding is refused.
* **Overall deadline** per request (per attempt: every retry gets a new one), checked when the headers have
  arrived and between the chunks of the body. Exceeding it raises ``OverallTimeoutError``, an
  ``httpx.TimeoutException``, so the client retries it as it retries any timeout. A server trickling its
  *headers* never lets ``handle_request`` return, so for an ``httpx.HTTPTransport`` the deadline also reaches
  the socket: the pool's network backend is wrapped (``_DeadlineBackend``) so that every connect, read and
  write waits at most until the deadline of the attempt running on that thread.

A body over a cap raises a non-retryable ``ApiError`` naming the endpoint and the limit: the same request would
get the same answer.
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from connector.errors import ApiError, ConfigError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_TOKEN_BYTES",
    "MAX_WIRE_BYTES",
    "BoundedTransport",
    "Limits",
    "OverallTimeoutError",
    "environment_proxy",
    "proxy_password",
    "redact_url",
    "validate_proxy_url",
]

MAX_WIRE_BYTES = 16 * 1024 * 1024
"""Most bytes one API response may take on the wire (a 500-record audit page is well under 1 MB)."""
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Most bytes one API response body may inflate to (gzip/deflate)."""
MAX_TOKEN_BYTES = 64 * 1024
"""Most bytes a token response may take, on the wire and inflated (a token answer is a few hundred bytes)."""

_ACCEPT_ENCODING = "gzip, deflate"
# Inflate at most this much per step, so one small compressed chunk never expands into one huge buffer.
_INFLATE_STEP = 64 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may cost.

    Attributes:
        wire_bytes: Most bytes of an API response as received.
        body_bytes: Most bytes of an API response body once inflated.
        token_bytes: Most bytes of a token response, as received and inflated.
        deadline_seconds: Most seconds one request may take, from sending to the last byte of the body.
    """

    wire_bytes: int = MAX_WIRE_BYTES
    body_bytes: int = MAX_BODY_BYTES
    token_bytes: int = MAX_TOKEN_BYTES
    deadline_seconds: float = 30.0


class OverallTimeoutError(httpx.TimeoutException):
    """The request ran past its overall deadline (a server trickling bytes defeats httpx's per-read timeouts)."""

    def __init__(self, message: str, *, request: httpx.Request, seconds: float) -> None:
        super().__init__(message, request=request)
        self.seconds = seconds


def redact_url(url: str) -> str:
    """``url`` with everything before its last ``@`` (user name, password) replaced by ``***``, for messages
    and summaries; also when the URL has no scheme, which ``urlsplit`` would not read as credentials."""
    if "@" not in url:
        return url
    scheme, sep, _ = url.partition("://")
    prefix = f"{scheme}://" if sep and scheme.isalpha() else ""
    return f"{prefix}***@{url.rsplit('@', 1)[1]}"


def proxy_password(url: str) -> str:
    """The password in a proxy URL (``""`` without one), to register for redaction in the logs."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def validate_proxy_url(value: str, parameter: str = "proxy_url") -> str:
    """Return ``value`` stripped when it is empty or an http(s) proxy URL with a host.

    Raises:
        ConfigError: Anything else; the message never shows the URL's user name or password.
    """
    text = value.strip()
    if not text:
        return ""
    shown = redact_url(text)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        host = None
    if parts.scheme.lower() not in ("http", "https") or not host or any(ord(c) < 0x21 for c in text):
        raise ConfigError(
            f"{parameter} must be an http:// or https:// proxy URL such as http://proxy.example.com:3128, "
            f"not {shown!r}; leave it empty to use HTTPS_PROXY/NO_PROXY from the environment.",
            parameter=parameter,
        )
    return text


def environment_proxy(url: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url``, or None (unset, or ``NO_PROXY``).

    The same variables httpx honours with ``trust_env`` when it builds its own transport, read with the
    standard library's parser.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not proxy or not parts.hostname:
        return None
    if urllib.request.proxy_bypass_environment(parts.hostname, proxies):  # type: ignore[attr-defined]
        return None
    return proxy


def host_pattern(url: str) -> str:
    """The httpx mount pattern that matches every request to ``url``'s host (any scheme, any port)."""
    host = urlsplit(url).hostname or ""
    return f"all://[{host}]" if ":" in host else f"all://{host}"


class _Inflater:
    """Bounded-step gzip/deflate decoder (deflate: zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._first = True
        self._decoder = zlib.decompressobj(zlib.MAX_WBITS if self._deflate else zlib.MAX_WBITS | 16)

    def _step(self, data: bytes) -> bytes:
        if self._first:
            self._first = False
            if self._deflate:
                try:
                    return self._decoder.decompress(data, _INFLATE_STEP)
                except zlib.error:
                    self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._decoder.decompress(data, _INFLATE_STEP)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate ``data``, yielding at most ``_INFLATE_STEP`` bytes at a time; raises ``zlib.error``."""
        while True:
            out = self._step(data)
            if out:
                yield out
            data = self._decoder.unconsumed_tail
            if not data and len(out) < _INFLATE_STEP:
                return

    def flush(self) -> bytes:
        return self._decoder.flush(_INFLATE_STEP)


# -- the deadline at the socket ------------------------------------------------------------------------------
# httpx's timeouts bound each socket operation, and a connection is pooled across requests, so the deadline of
# the attempt in progress is kept per thread (set by BoundedTransport around every call into the inner
# transport) and each socket operation's timeout is clamped to what is left of it. Real time.monotonic seconds:
# the socket waits in real time, whatever clock the transport was given.
_attempt = threading.local()


def _remaining(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` clamped to the current attempt's deadline; ``error`` once none is left."""
    deadline: float | None = getattr(_attempt, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the overall deadline of the request has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the current attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend with every new connection wrapped in ``_DeadlineStream``."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _remaining(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _install_deadline_backend(transport: httpx.BaseTransport) -> bool:
    """Wrap the network backend of an ``httpx.HTTPTransport``'s pool (direct or proxied; httpx 0.28 and
    httpcore 1.0 keep it at ``transport._pool._network_backend``). Any other transport (a mock, the simulator's),
    or a future httpx that moved the attribute, is left alone: the deadline is then checked between chunks only."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.NetworkBackend):
        return False
    if not isinstance(backend, _DeadlineBackend):
        pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    return True


class _AttemptDeadline:
    """``with _AttemptDeadline(deadline):`` socket operations on this thread end by ``deadline`` (monotonic
    seconds); the previous value is restored on exit (a token request runs inside an API request's auth flow)."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._previous: float | None = None

    def __enter__(self) -> None:
        self._previous = getattr(_attempt, "deadline", None)
        _attempt.deadline = self._deadline

    def __exit__(self, *exc_info: object) -> None:
        _attempt.deadline = self._previous


class _BoundedStream(httpx.SyncByteStream):
    """The body of one response: counted, capped, inflated and checked against the deadline chunk by chunk."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        *,
        request: httpx.Request,
        name: str,
        wire_cap: int,
        body_cap: int,
        inflater: _Inflater | None,
        deadline: float,
        seconds: float,
        clock: Callable[[], float],
        socket_deadline: float,
    ) -> None:
        self._inner = inner
        self._socket_deadline = socket_deadline
        self._request = request
        self._name = name
        self._wire_cap = wire_cap
        self._body_cap = body_cap
        self._inflater = inflater
        self._deadline = deadline
        self._seconds = seconds
        self._clock = clock

    def _too_large(self, cap: int, what: str) -> ApiError:
        return ApiError(
            f"{self._name} sent a response of more than {cap} bytes {what}; it was refused, not read further "
            f"(the connector bounds every response so that memory stays bounded whatever a server sends).",
            endpoint=self._name,
        )

    def _overall_timeout(self) -> OverallTimeoutError:
        return OverallTimeoutError(
            f"{self._name} did not finish within the overall timeout of {self._seconds:g} s",
            request=self._request,
            seconds=self._seconds,
        )

    def _check_deadline(self) -> None:
        if self._clock() > self._deadline:
            raise self._overall_timeout()

    def _chunks(self) -> Iterator[bytes]:
        """The inner stream's chunks, each read with the socket clamped to the attempt's deadline."""
        chunks = iter(self._inner)
        while True:
            try:
                with _AttemptDeadline(self._socket_deadline):
                    chunk = next(chunks, None)
            except httpx.TimeoutException:
                if time.monotonic() >= self._socket_deadline:
                    raise self._overall_timeout() from None
                raise
            if chunk is None:
                return
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._read()
        except zlib.error:
            raise ApiError(
                f"{self._name} sent a compressed body that does not decompress", endpoint=self._name
            ) from None

    def _read(self) -> Iterator[bytes]:
        wire = 0
        body = 0
        for chunk in self._chunks():
            self._check_deadline()
            wire += len(chunk)
            if wire > self._wire_cap:
                raise self._too_large(self._wire_cap, "on the wire")
            pieces: Iterable[bytes] = self._inflater.feed(chunk) if self._inflater is not None else (chunk,)
            for piece in pieces:
                body += len(piece)
                if body > self._body_cap:
                    raise self._too_large(self._body_cap, "once decompressed")
                yield piece
        if self._inflater is not None:
            tail = self._inflater.flush()
            if body + len(tail) > self._body_cap:
                raise self._too_large(self._body_cap, "once decompressed")
            if tail:
                yield tail

    def close(self) -> None:
        self._inner.close()


class BoundedTransport(httpx.BaseTransport):
    """Wraps a transport so that every response is size-capped and every request has an overall deadline.

    Args:
        inner: The transport that really sends (``httpx.HTTPTransport``, a test's mock, the simulator's).
        limits: Caps and deadline.
        token_urls: URLs (without query) whose responses get the small token cap.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        limits: Limits,
        *,
        token_urls: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inner = inner
        self.limits = limits
        self._token_urls = frozenset(str(httpx.URL(url).copy_with(query=None)) for url in token_urls)
        self._clock = clock
        self.socket_deadline = _install_deadline_backend(inner)
        """Whether the deadline also bounds each socket operation (headers included), not only the body."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        limits = self.limits
        deadline = self._clock() + limits.deadline_seconds
        socket_deadline = time.monotonic() + limits.deadline_seconds
        url = request.url.copy_with(query=None)
        token = str(url) in self._token_urls
        name = str(url) if token else url.path
        # Only encodings this transport can inflate in bounded steps.
        request.headers["Accept-Encoding"] = _ACCEPT_ENCODING
        try:
            with _AttemptDeadline(socket_deadline):  # connect, send, and read the status line and headers
                response = self._inner.handle_request(request)
        except httpx.TimeoutException as exc:
            if time.monotonic() < socket_deadline:
                raise
            raise OverallTimeoutError(
                f"{name} did not finish within the overall timeout of {limits.deadline_seconds:g} s",
                request=request,
                seconds=limits.deadline_seconds,
            ) from exc
        headers = httpx.Headers(response.headers)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        inflater: _Inflater | None = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            inflater = _Inflater("deflate" if encoding == "deflate" else "gzip")
            del headers["content-encoding"]
            headers.pop("content-length", None)
        elif encoding not in ("identity", ""):
            response.close()
            raise ApiError(
                f"{name} answered with Content-Encoding {encoding[:40]!r}, which was not asked for "
                f"(only {_ACCEPT_ENCODING} are accepted)",
                endpoint=name,
                status_code=response.status_code,
            )
        stream = _BoundedStream(
            response.stream,  # type: ignore[arg-type]
            request=request,
            name=name,
            wire_cap=limits.token_bytes if token else limits.wire_bytes,
            body_cap=limits.token_bytes if token else limits.body_bytes,
            inflater=inflater,
            deadline=deadline,
            seconds=limits.deadline_seconds,
            clock=self._clock,
            socket_deadline=socket_deadline,
        )
        try:
            stream._check_deadline()
        except OverallTimeoutError:
            response.close()
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            stream=stream,
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        self._inner.close()
