"""Batch files behind pre-signed links: fetched without the bearer token, read as gzip NDJSON, bounded at every step.

The SIEM batch listing (``connector.streams.siem_batch``) hands out links to gzip NDJSON files on another host (S3
in production). Such a link carries its own credential in its query (the signature), so:

* the request goes through an ``httpx.Client`` of its own that has **no auth** and knows no Mimecast header: the
  bearer token, the client secret or API 1.0 keys can never reach the file host, whatever the link says;
* the link is named in logs, errors and summaries only by host and path (:func:`link_name`): the query is a
  credential for as long as the link lives;
* redirects are not followed (the file host answers the object or an error);
* a link is fetched only over https and never from an IP-literal host that is not a public address (loopback,
  private, link-local such as the cloud metadata service 169.254.169.254, unspecified, reserved):
  :func:`link_refusal`. A listing that names one (a compromised or spoofed answer, a proxy rewriting it) would
  otherwise make the connector read its own host's services as if they were log files. Only when the API itself
  is on a loopback host (the simulator, the tests: ``allow_loopback``) may a link be on a loopback host too, over
  http or https. A refused link is a :class:`FileRefusedError` before any request: the caller reports a gap.

A file is read in two steps, so that several can be fetched at once while their records are still handed out in
listing order (``siem_batch`` runs a small pool of :meth:`FileFetcher.fetch` and reads the results one at a time):

* :meth:`FileFetcher.fetch` streams the compressed body into a spooled temporary file (in memory up to
  ``SPOOL_MEMORY_BYTES``, on disk beyond), through the same ``BoundedTransport`` as the API (wire cap, overall
  deadline, socket deadline). 5xx, 429 and network failures are retried with a backoff; 403 (an expired link) and
  404 (a missing object) raise :class:`LinkGoneError` at once: only a new listing gives a new link.
* :func:`read_ndjson` inflates the spooled file a bounded step at a time (``zlib.decompressobj``; concatenated
  gzip members and a plain, uncompressed body are read too), splits lines incrementally and parses each line on
  its own. Memory is bounded per file by the step and the line cap, never by the file size. A decompression bomb
  (more than ``max_ratio`` times the compressed size, or more than ``decoded_bytes`` in all), a line longer than
  ``line_bytes``, or a body that does not inflate is refused with :class:`FileRefusedError`: the same bytes would be
  refused again, so the caller reports the file as a gap instead of retrying it. A line that is not a JSON object
  is handed on as a ``MappingError`` (counted and reported; the other lines of the file are still read).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Final

import httpx

from connector.api.envelope import decode_json
from connector.api.transport import BoundedTransport, Limits, environment_proxy
from connector.api.urls import is_loopback_host
from connector.errors import ApiError, MappingError

__all__ = [
    "DownloadPolicy",
    "FileFetcher",
    "FileLimits",
    "FileRefusedError",
    "LinkGoneError",
    "link_name",
    "link_refusal",
    "read_ndjson",
]

_log = logging.getLogger("connector.api.download")

SPOOL_MEMORY_BYTES: Final = 1 << 20
"""A fetched file stays in memory up to this size; beyond, it is spooled to a temporary file on disk."""
_READ_STEP: Final = 64 * 1024
_INFLATE_STEP: Final = 64 * 1024
_GZIP_MAGIC: Final = b"\x1f\x8b"
_USER_AGENT: Final = "mimecast-ocsf-connector/0.1.0"
_RETRYABLE: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True, slots=True)
class FileLimits:
    """What one batch file may cost.

    Attributes:
        wire_bytes: Most compressed bytes of one file (as received).
        decoded_bytes: Most bytes one file may inflate to.
        max_ratio: Most inflated bytes per compressed byte (NDJSON gzips 5-15x; a bomb 1000x), plus ``slack_bytes``.
        slack_bytes: Allowed on top of the ratio (a small file's header and dictionary).
        line_bytes: Most bytes of one NDJSON line (a SIEM record is a few KB).
        deadline_seconds: Most seconds one download attempt may take, from sending to the last byte.
    """

    wire_bytes: int = 512 << 20
    decoded_bytes: int = 8 << 30
    max_ratio: int = 100
    slack_bytes: int = 16 << 20
    line_bytes: int = 1 << 20
    deadline_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class DownloadPolicy:
    """Attempts and backoff of one download (the file host is not Mimecast's API: it has its own gate, none).

    Attributes:
        attempts: Sends of one link, the first included, for 5xx, 429 and network failures.
        backoff: Seconds before the first retry, doubled after each, up to ``max_backoff``, with up to 10 % jitter.
        max_backoff: Cap on one wait.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0


class LinkGoneError(ApiError):
    """The file host answered 403 (the link expired) or 404 (the object is missing): list again for a new link."""


class FileRefusedError(ApiError):
    """The file's content cannot be read (too large, a decompression bomb, an endless line, a corrupt body): the same
    bytes would be refused again, so the file is reported as a gap rather than fetched again."""


def link_name(url: str) -> str:
    """What a pre-signed link is called in logs and messages: host and path, never the signed query."""
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an unreadable link"
    return f"{parts.host}{parts.path}"


def link_refusal(url: str, *, allow_loopback: bool = False) -> str | None:
    """Why a listed link must not be fetched (see the module docstring), or None when it may be.

    Args:
        url: The link as listed.
        allow_loopback: The API base URL is on a loopback host: a loopback link (http or https) is fetched.
    """
    try:
        parts = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "the link cannot be read"
    scheme, host = parts.scheme.lower(), parts.host
    if not host:
        return "the link names no host"
    if is_loopback_host(host):
        if allow_loopback and scheme in ("http", "https"):
            return None
        return f"the link points to a loopback host ({host}), not a file host"
    if scheme != "https":
        return f"the link is not https ({scheme or 'no scheme'}): its signature would cross the network in clear"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return f"the link points to a non-public address ({host}): private, link-local, reserved or unspecified"
    return None


class FileFetcher:
    """Fetches pre-signed links into spooled files, without any credential of the connector's.

    Thread-safe: ``siem_batch`` calls :meth:`fetch` from a small pool (httpx's connection pool is thread-safe).

    Args:
        proxy_url: An http(s) proxy for every download; empty: ``HTTPS_PROXY``/``NO_PROXY`` for each link's host.
        timeout: httpx's per-operation timeouts.
        limits: Size caps and the deadline of one attempt.
        policy: Attempts and backoff.
        transport: A custom transport (tests); then no proxy is mounted.
        sleep: How to wait between attempts (tests inject one).
        allow_loopback: Links on a loopback host are fetched (only when the API is on one: :func:`link_refusal`).
    """

    def __init__(
        self,
        *,
        proxy_url: str = "",
        timeout: httpx.Timeout | None = None,
        limits: FileLimits | None = None,
        policy: DownloadPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        allow_loopback: bool = False,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.limits = limits if limits is not None else FileLimits()
        self.policy = policy if policy is not None else DownloadPolicy()
        self._timeout = timeout if timeout is not None else httpx.Timeout(60.0, connect=10.0)
        self._proxy_url = proxy_url
        self._transport = transport
        self._sleep = sleep
        self._rng = random.Random()
        self._clients: dict[str | None, httpx.Client] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return "FileFetcher()"

    def _client(self, url: str) -> httpx.Client:
        """The auth-less client for ``url``'s proxy (one per proxy: the environment's may differ per host)."""
        proxy = self._proxy_url or (environment_proxy(url) if self._transport is None else None) or None
        with self._lock:
            if self._closed:
                raise ApiError(f"{link_name(url)} was not fetched: the connector was closed", endpoint=link_name(url))
            client = self._clients.get(proxy)
            if client is None:
                inner = self._transport or httpx.HTTPTransport(retries=2, proxy=proxy)
                body = Limits(
                    wire_bytes=self.limits.wire_bytes,
                    body_bytes=self.limits.decoded_bytes,
                    deadline_seconds=self.limits.deadline_seconds,
                )
                client = httpx.Client(
                    transport=BoundedTransport(inner, body),
                    timeout=self._timeout,
                    follow_redirects=False,
                    headers={"Accept": "*/*", "User-Agent": _USER_AGENT},
                )
                self._clients[proxy] = client
            return client

    def close(self) -> None:
        """Close every connection pool; a fetch after this raises ``ApiError``."""
        with self._lock:
            self._closed = True
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> FileFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fetch(self, url: str, cancel: threading.Event | None = None) -> IO[bytes]:
        """The file behind ``url``, spooled and rewound (the caller closes it).

        Raises:
            LinkGoneError: 403 or 404: the link expired or the object is missing.
            FileRefusedError: the link is refused by :func:`link_refusal` (nothing is sent), or the file is larger
                than ``limits.wire_bytes`` (or inflates past its caps in transit).
            ApiError: 5xx, 429 or network failures on every attempt (retryable), another status (not), or
                ``cancel`` was set.
        """
        name = link_name(url)
        refusal = link_refusal(url, allow_loopback=self.allow_loopback)
        if refusal is not None:
            raise FileRefusedError(f"{name} was not fetched: {refusal}", endpoint=name)
        attempt = 0
        while True:
            attempt += 1
            if cancel is not None and cancel.is_set():
                raise ApiError(f"{name} was not fetched: the pass was stopped", endpoint=name)
            try:
                return self._attempt(url, name)
            except _Transient as transient:
                if attempt >= self.policy.attempts:
                    raise ApiError(
                        f"{name} failed {attempt} times (last: {transient.reason}); the file host keeps failing",
                        endpoint=name,
                        status_code=transient.status,
                        retryable=True,
                    ) from None
                delay = min(self.policy.backoff * 2 ** (attempt - 1), self.policy.max_backoff)
                delay += delay * 0.1 * self._rng.random()
                _log.warning(
                    "retrying a batch file",
                    extra={"file": name, "attempt": attempt, "reason": transient.reason, "delay_s": round(delay, 3)},
                )
                if cancel is not None:
                    if cancel.wait(delay):
                        raise ApiError(f"{name} was not fetched: the pass was stopped", endpoint=name) from None
                else:
                    self._sleep(delay)

    def _attempt(self, url: str, name: str) -> IO[bytes]:
        client = self._client(url)
        try:
            request = client.build_request("GET", url)
            response = client.send(request, stream=True)
        except _RETRYABLE as exc:
            raise _Transient(type(exc).__name__, None) from None
        except httpx.InvalidURL:
            raise FileRefusedError(f"{name}: the listed link is not a URL", endpoint=name) from None
        try:
            status = response.status_code
            if status in (403, 404):
                raise LinkGoneError(
                    f"{name} answered HTTP {status} ({'expired link' if status == 403 else 'no such file'})",
                    endpoint=name,
                    status_code=status,
                )
            if status == 429 or status >= 500:
                raise _Transient(f"HTTP {status}", status)
            if status != 200:
                raise ApiError(
                    f"{name} answered HTTP {status}; batch files are expected as 200 (redirects are not followed)",
                    endpoint=name,
                    status_code=status,
                )
            return self._spool(response, name)
        finally:
            response.close()

    def _spool(self, response: httpx.Response, name: str) -> IO[bytes]:
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 (returned)
        try:
            for chunk in response.iter_raw(_READ_STEP):
                spool.write(chunk)
        except _RETRYABLE as exc:
            spool.close()
            raise _Transient(type(exc).__name__, None) from None
        except ApiError as exc:  # the bounded transport refused the body (too large)
            spool.close()
            if exc.retryable:
                raise _Transient(str(exc), exc.status_code) from None
            raise FileRefusedError(str(exc), endpoint=name) from None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool


class _Transient(Exception):
    def __init__(self, reason: str, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Gunzip:
    """Bounded-step gzip inflation of a byte stream, member after member (``cat a.gz b.gz`` is one valid file)."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._started = False  # bytes of the current member were fed

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Inflate ``data``, at most ``_INFLATE_STEP`` bytes per piece; raises ``zlib.error``."""
        while data:
            self._started = True
            out = self._decoder.decompress(data, _INFLATE_STEP)
            if out:
                yield out
            if self._decoder.eof:
                data = self._decoder.unused_data
                self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
                self._started = False
            else:
                data = self._decoder.unconsumed_tail

    def finish(self) -> bytes:
        """What is left; raises ``zlib.error`` when the last member is cut short."""
        if not self._started:
            return b""
        tail = self._decoder.flush()
        if not self._decoder.eof:
            raise zlib.error("truncated gzip stream")
        return tail


def _decoded(spool: IO[bytes], name: str, limits: FileLimits, compressed: int) -> Iterator[bytes]:
    """The spooled file's bytes, inflated when it is gzip, capped (absolute and per compressed byte)."""
    most = min(limits.decoded_bytes, compressed * limits.max_ratio + limits.slack_bytes)
    total = 0
    head = spool.read(2)
    spool.seek(0)
    gunzip = _Gunzip() if head == _GZIP_MAGIC else None
    while True:
        chunk = spool.read(_READ_STEP)
        pieces: Iterator[bytes]
        if not chunk:
            if gunzip is None:
                return
            pieces = iter((gunzip.finish(),))
        else:
            pieces = gunzip.feed(chunk) if gunzip is not None else iter((chunk,))
        for piece in pieces:
            total += len(piece)
            if total > most:
                raise FileRefusedError(
                    f"{name} inflates to more than {most} bytes ({compressed} compressed): refused as a "
                    f"decompression bomb, not read further",
                    endpoint=name,
                )
            yield piece
        if not chunk:
            return


def read_ndjson(spool: IO[bytes], name: str, limits: FileLimits | None = None) -> Iterator[object]:
    """The records of a spooled NDJSON file (gzip or plain), one per line, in file order.

    A blank line is skipped; a line that is not a JSON object becomes a ``MappingError`` naming the file and the
    line number (the caller counts it as refused; the rest of the file is still read).

    Raises:
        FileRefusedError: a line longer than ``line_bytes``, a bomb, or a body that does not inflate.
    """
    limits = limits if limits is not None else FileLimits()
    spool.seek(0, 2)
    compressed = spool.tell()
    spool.seek(0)
    buffer = bytearray()
    number = 0
    try:
        for piece in _decoded(spool, name, limits, compressed):
            scan = len(buffer)  # the bytes before have no newline: never scanned twice
            buffer += piece
            start = 0
            while True:
                end = buffer.find(b"\n", scan)
                if end < 0:
                    break
                number += 1
                record = _record(bytes(buffer[start:end]), name, number)
                if record is not None:
                    yield record
                start = scan = end + 1
            if start:
                del buffer[:start]
            if len(buffer) > limits.line_bytes:
                raise FileRefusedError(
                    f"{name} line {number + 1} is longer than {limits.line_bytes} bytes: refused, not buffered",
                    endpoint=name,
                )
    except zlib.error:
        raise FileRefusedError(f"{name} is not a gzip file that inflates", endpoint=name) from None
    if buffer:
        record = _record(bytes(buffer), name, number + 1)
        if record is not None:
            yield record


def _record(line: bytes, name: str, number: int) -> object | None:
    text = line.strip()
    if not text:
        return None
    value = decode_json(text)
    if not isinstance(value, dict):
        return MappingError(f"{name} line {number} is not a JSON object", record_id=f"{name}#{number}")
    return value
