"""Splunk HTTP Event Collector (HEC) as a sink: OCSF events to ``/services/collector/event``, durable on ``sync``.

Each event travels in the HEC envelope ``{"time", "host"?, "source", "sourcetype", "index"?, "event"}``: ``time``
is the OCSF ``time`` (epoch milliseconds) as float seconds, ``sourcetype`` is ``ocsf:<table>`` (props and CIM
mappings are written per class), ``index`` and ``host`` are sent only when set (otherwise the token's defaults
apply). Envelopes are concatenated into request bodies of at most ``max_request_bytes``; a full body is sent from
``write`` (memory stays at one body plus what awaits an acknowledgement), the last partial one from ``sync``.

What ``sync`` promises, which is what the runner commits on:

* without ``ack``: every body was answered HTTP 200 ``{"text": "Success", "code": 0}``. That only says the
  events parsed: Splunk may still lose them before they are indexed.
* with ``ack`` (indexer acknowledgement, enabled per token in Splunk Enterprise): every body's ``ackId`` was
  reported ``true`` by ``/services/collector/ack``. Requests carry ``X-Splunk-Request-Channel`` (one random GUID
  per sink instance). ``sync`` polls every ``ack_poll_seconds``; a body not acknowledged within
  ``ack_timeout_seconds`` of its send is sent again (an ack id that never turns true was lost: the indexer
  restarted, or the ack expired), at most ``max_resends`` times, then ``SinkError``. A resent body may be indexed
  twice: delivery is at-least-once and every event keeps its ``metadata.uid``. A true ack is reported once, so an
  id seen true is forgotten at once.

Errors (always a ``SinkError`` naming "Splunk HEC at <url>", never the token): 503 (HEC code 9 "Server is busy",
18-20 unhealthy) and other 5xx are retried with backoff, 429 after ``Retry-After``, through the same ``Retrier``
and ``RateGate`` as the Mimecast client; 400/401/403/404 fail at once with the HEC code and text (with an
``invalid-event-number``, codes 6, 12 and 13, also the table and ``metadata.uid`` of that event), and so does a
200 that is not a JSON object with ``code`` exactly 0 (a proxy's page, an empty body: not HEC). 413 (body too
large for the server's ``max_content_length``) splits the body in two and sends both halves, and later bodies
are kept at half the smallest size refused. An event whose envelope alone exceeds ``max_request_bytes`` is sent
in a body of its own (``max_request_bytes`` is this side's batching target; the server may accept more); if the
server refuses it with 413 the error names its table and ``metadata.uid``: it is never dropped in silence. After a
failure the sink stays failed: every later ``write`` and ``sync`` raises the same error, so nothing is committed
past it.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn
from urllib.parse import urlsplit

import httpx
import orjson

from connector.api.ratelimit import RateGate, RetryPolicy
from connector.api.retry import Retrier
from connector.api.transport import BoundedTransport, Limits, environment_proxy
from connector.api.urls import LOOPBACK_HOSTS
from connector.config import ParameterSpec, output_settings
from connector.errors import ApiError, ConfigError, SinkError
from connector.events import Batch
from connector.log import register_secret
from connector.secret import Secret

__all__ = [
    "ACK_PATH",
    "EVENT_PATH",
    "TOKEN_ENV",
    "HecSettings",
    "HecSink",
    "HecStats",
    "open_sink",
    "setting_specs",
]

_log = logging.getLogger("connector.sinks.hec")

EVENT_PATH: Final = "/services/collector/event"
ACK_PATH: Final = "/services/collector/ack"
TOKEN_ENV: Final = "SPLUNK_HEC_TOKEN"
"""Environment variable read for ``outputs.hec.token`` when the setting is absent (keeps it out of files)."""

_MAX_RESPONSE_BYTES = 1024 * 1024  # an HEC answer is a few dozen bytes; an ack answer a few per id
_ACK_IDS_PER_QUERY = 1000
_MAX_PENDING_BYTES = 64 * 1024 * 1024  # un-acknowledged bodies kept for a resend before write waits for acks
_MAX_SHOWN_TEXT = 200
_USER_AGENT = "mimecast-ocsf-connector/0.1.0"
_RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})

# HEC codes whose fix is known (Splunk's "Troubleshoot HTTP Event Collector" table; docs/outputs.md).
_ADVICE = {
    1: "the token is disabled in Splunk: enable it, or use another (outputs.hec.token / SPLUNK_HEC_TOKEN)",
    2: "no token reached Splunk: set outputs.hec.token or SPLUNK_HEC_TOKEN",
    3: "the Authorization header was refused: check outputs.hec.token (the token alone, without 'Splunk ')",
    4: "Splunk does not know this token: check outputs.hec.token or SPLUNK_HEC_TOKEN",
    7: "the token may not write to this index: check outputs.hec.index, or add the index to the token",
    14: "indexer acknowledgement is disabled for this token: enable it in Splunk, or set outputs.hec.ack to false",
}
_STATUS_ADVICE = {
    401: _ADVICE[4],
    403: _ADVICE[4],
    404: "check the URL: it must reach the HEC port (8088 by default)",
}


def setting_specs() -> tuple[ParameterSpec, ...]:
    """The settings of ``outputs.hec`` in the config file, with the parameter rules (types, ranges, env)."""

    def spec(key: str, kind: str, default: object, description: str, **kw: Any) -> ParameterSpec:
        return ParameterSpec(
            name=f"outputs.hec.{key}",
            label=key,
            type=kind,
            required=kw.pop("required", False),
            default=default,
            description=description,
            secret=kind == "secret",
            **kw,
        )

    return (
        spec("token", "secret", None, "HEC token", required=True, env=TOKEN_ENV, min_length=16),
        spec("index", "string", "", "index; empty: the token's default index"),
        spec("source", "string", "mimecast", "source field of every event"),
        spec("host", "string", "", "host field; empty: Splunk uses the sender's"),
        spec("sourcetype_prefix", "string", "ocsf:", "sourcetype = prefix + table"),
        spec("ack", "boolean", False, "wait for indexer acknowledgement in sync"),
        spec("max_request_bytes", "integer", 1_000_000, "request body size", minimum=1024, maximum=838_860_800),
        spec("ack_timeout_seconds", "number", 300.0, "resend after", minimum=0.01, maximum=86_400),
        spec("ack_poll_seconds", "number", 1.0, "ack poll interval", minimum=0.001, maximum=300),
        spec("max_resends", "integer", 3, "resends of an unacknowledged body", minimum=0, maximum=100),
        spec("request_timeout_seconds", "number", 30.0, "one request's deadline", minimum=1, maximum=300),
        spec("ca_file", "string", "", "PEM bundle to verify the server with; empty: the system store"),
    )


@dataclass(frozen=True)
class HecSettings:
    """The validated ``outputs.hec`` settings (see ``docs/outputs.md``). ``repr`` masks the token."""

    token: Secret
    index: str = ""
    source: str = "mimecast"
    host: str = ""
    sourcetype_prefix: str = "ocsf:"
    ack: bool = False
    max_request_bytes: int = 1_000_000
    ack_timeout_seconds: float = 300.0
    ack_poll_seconds: float = 1.0
    max_resends: int = 3
    request_timeout_seconds: float = 30.0
    ca_file: str = ""

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object], *, environ: Mapping[str, str] | None = None) -> HecSettings:
        """Validate the ``outputs.hec`` object of the config file (the token may come from ``SPLUNK_HEC_TOKEN``).

        Raises:
            ConfigError: An unknown key, a missing token or a bad value; ``parameter`` is ``outputs.hec.<key>``.
        """
        values = output_settings(setting_specs(), raw, environ=environ)
        ca_file = str(values["ca_file"])
        if ca_file and not os.access(ca_file, os.R_OK):
            raise ConfigError(
                f"Parameter 'outputs.hec.ca_file' names {ca_file!r}, which is not a readable file.",
                parameter="outputs.hec.ca_file",
            )
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class HecStats:
    """What the sink did (the ``Retrier`` adds requests, retries, 429s and waits; thread-safe)."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    slept_seconds: float = 0.0
    events: int = 0
    bodies: int = 0
    resent_bodies: int = 0
    split_bodies: int = 0
    acknowledged: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0, slept_seconds: float = 0.0) -> None:
        """The ``RetryCounters`` protocol."""
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited
            self.slept_seconds += slept_seconds


def validate_url(url: str) -> str:
    """The HEC base URL of ``hec:URL``: https (http only for loopback), no credentials, query or fragment.

    A trailing ``/services/collector`` or ``/services/collector/event`` is dropped (people paste the endpoint); a
    path before it is kept (a gateway that serves HEC under a prefix).

    Raises:
        ConfigError: naming ``--output``.
    """
    text = url.strip().rstrip("/")
    shown = text if "@" not in text else "(a URL with credentials)"
    try:
        httpx.URL(text)
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        _ = parts.port
    except (ValueError, httpx.InvalidURL):
        host, parts = "", urlsplit("")
    problem = None
    if parts.scheme.lower() not in ("http", "https") or not host:
        problem = "must be an absolute https URL such as hec:https://splunk.example.com:8088"
    elif parts.username is not None or parts.password is not None:
        problem = "must not contain a user name or password (the token goes in outputs.hec.token)"
    elif parts.query or parts.fragment:
        problem = "must not contain a query string or fragment"
    elif parts.scheme.lower() == "http" and host not in LOOPBACK_HOSTS:
        problem = "must use https: the token would travel in clear text (http only for 127.0.0.1, ::1, localhost)"
    if problem is not None:
        raise ConfigError(f"--output hec:{shown} {problem}.", parameter="--output")
    for suffix in (EVENT_PATH, "/services/collector"):
        if parts.path.rstrip("/").endswith(suffix):
            return text[: len(text) - len(suffix)]
    return text


class _TooLarge(Exception):
    """HTTP 413: the body is over the server's limit (split and sent again, or refused with the event named)."""


@dataclass(slots=True)
class _Body:
    """One request body and the events in it (their tables, uids and envelope sizes, to split and to name)."""

    data: bytes
    tables: list[str]
    uids: list[str]
    sizes: list[int]
    sent_at: float = 0.0
    sends: int = 0

    def split(self) -> tuple[_Body, _Body]:
        half = len(self.sizes) // 2
        cut = sum(self.sizes[:half])
        return (
            _Body(self.data[:cut], self.tables[:half], self.uids[:half], self.sizes[:half], sends=self.sends),
            _Body(self.data[cut:], self.tables[half:], self.uids[half:], self.sizes[half:], sends=self.sends),
        )


def _uid(event: Mapping[str, Any]) -> str:
    metadata = event.get("metadata")
    uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    return str(uid) if uid is not None else "(no metadata.uid)"


def _reply(response: httpx.Response) -> dict[str, Any]:
    """The HEC answer body as an object (``{}`` when it is not JSON: a proxy's page, a plain-text 413)."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _success(reply: Mapping[str, Any]) -> bool:
    """Whether an answer is HEC's success, ``{"text": "Success", "code": 0, ...}``: ``code`` exactly the integer 0
    (an HTML page, an empty body, ``[]`` or ``"code": null`` is not: ``_reply`` gives ``{}`` for the first three)."""
    code = reply.get("code")
    return isinstance(code, int) and not isinstance(code, bool) and code == 0


def _text(reply: Mapping[str, Any], response: httpx.Response) -> str:
    text = reply.get("text")
    if not isinstance(text, str):
        text = response.text if response.content and not reply else ""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_SHOWN_TEXT else text[: _MAX_SHOWN_TEXT - 3] + "..."


class HecSink:
    """Sends batches to one Splunk HTTP Event Collector (see the module docstring for what ``sync`` promises).

    Args:
        url: The HEC base URL (``https://splunk.example.com:8088``; see ``validate_url``).
        settings: The validated ``outputs.hec`` settings.
        transport: A custom httpx transport (tests); default: real HTTP(S), TLS verified against ``ca_file`` or
            the system store, proxies from ``HTTPS_PROXY``/``NO_PROXY``.
        retry: Attempts and backoff per request (503, 429, network errors); default ``RetryPolicy()``.
        sleep: Injected so tests never really wait (backoff, 429 waits and ack polls). Default ``time.sleep``.
        clock: Monotonic seconds: ack timeouts and the rate gate.
        rng: Jitter of 429 waits.
        channel: The request channel GUID (default: a new random one per sink).
    """

    def __init__(
        self,
        url: str,
        settings: HecSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        channel: str | None = None,
    ) -> None:
        self.url = validate_url(url)
        self.label = f"Splunk HEC at {self.url}"
        self.settings = settings
        self.stats = HecStats()
        register_secret(settings.token)  # masked in every log line and error the CLI prints
        self._sleep = sleep or time.sleep
        self._clock = clock
        self._max_bytes = settings.max_request_bytes
        self._channel = (channel or str(uuid.uuid4())) if settings.ack else None
        self._retrier = Retrier(
            retry if retry is not None else RetryPolicy(),
            self.stats,
            gate=RateGate(clock),
            sleep=sleep,
            rng=rng,
            clock=clock,
            service=self.label,
            rate_limit_advice="Splunk is throttling this token; send less often or raise the limit in Splunk.",
            give_up_advice="Check that Splunk is up and its HEC queues drain.",
        )
        self._http = self._client(transport)
        self._parts: list[bytes] = []
        self._part_bytes = 0
        self._tables: list[str] = []
        self._uids: list[str] = []
        self._sizes: list[int] = []
        self._pending: dict[int, _Body] = {}
        self._pending_bytes = 0
        self._failure: SinkError | None = None
        self._closed = False
        self._prefix = settings.sourcetype_prefix

    def __repr__(self) -> str:
        return f"HecSink({self.url!r}, ack={self.settings.ack})"

    def _client(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        seconds = self.settings.request_timeout_seconds
        limits = Limits(_MAX_RESPONSE_BYTES, _MAX_RESPONSE_BYTES, _MAX_RESPONSE_BYTES, deadline_seconds=seconds)
        if transport is None:
            verify: ssl.SSLContext | bool = True
            if self.settings.ca_file:
                try:
                    verify = ssl.create_default_context(cafile=self.settings.ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(
                        f"Parameter 'outputs.hec.ca_file': {self.settings.ca_file} is not a PEM certificate bundle "
                        f"({exc.__class__.__name__}).",
                        parameter="outputs.hec.ca_file",
                    ) from None
            transport = httpx.HTTPTransport(verify=verify, retries=2, proxy=environment_proxy(self.url))
        headers = {
            "Authorization": f"Splunk {self.settings.token.reveal()}",
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if self._channel is not None:
            headers["X-Splunk-Request-Channel"] = self._channel
        return httpx.Client(
            base_url=self.url,
            transport=BoundedTransport(transport, limits),
            timeout=httpx.Timeout(seconds, connect=min(10.0, seconds)),
            follow_redirects=False,
            headers=headers,
        )

    # -- the Sink protocol ---------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Add the batch's events to the current body; send every body that is full.

        Raises:
            SinkError: a body was refused, or the sink failed earlier.
        """
        self._check()
        if not batch.events or batch.table is None:
            return
        try:
            table, sourcetype = batch.table, self._prefix + batch.table
            for event in batch.events:
                envelope = self._envelope(sourcetype, event)
                if self._parts and self._part_bytes + len(envelope) > self._max_bytes:
                    self._flush()
                self._parts.append(envelope)
                self._part_bytes += len(envelope)
                self._tables.append(table)
                self._uids.append(_uid(event))
                self._sizes.append(len(envelope))
                self.stats.events += 1
                if len(envelope) > self._max_bytes:  # alone in its body (see the module docstring)
                    _log.warning(
                        "an event is larger than max_request_bytes; it is sent in a body of its own",
                        extra={"table": table, "uid": self._uids[-1], "bytes": len(envelope)},
                    )
                    self._flush()
            if self._pending_bytes > _MAX_PENDING_BYTES:
                self._await_acks()
        except SinkError as error:
            self._fail(error)

    def sync(self) -> None:
        """Send the last partial body and, with ``ack``, return only once every body sent is acknowledged.

        Raises:
            SinkError: a body was refused, or not acknowledged after ``max_resends`` resends; the caller must not
                commit. Every later ``write`` and ``sync`` raises it again.
        """
        self._check()
        try:
            if self._parts:
                self._flush()
            self._await_acks()
        except SinkError as error:
            self._fail(error)

    def close(self) -> None:
        """Sync, then close the connections (a ``SinkError`` of the sync is raised after closing)."""
        if self._closed:
            return
        try:
            self.sync()
        finally:
            self._closed = True
            self._http.close()
            _log.info(
                "splunk hec output closed",
                extra={
                    "url": self.url,
                    "events": self.stats.events,
                    "bodies": self.stats.bodies,
                    "resent_bodies": self.stats.resent_bodies,
                    "split_bodies": self.stats.split_bodies,
                    "requests": self.stats.requests,
                    "retries": self.stats.retries,
                },
            )

    # -- bodies --------------------------------------------------------------------------------------------

    def _envelope(self, sourcetype: str, event: Mapping[str, Any]) -> bytes:
        record: dict[str, Any] = {}
        when = event.get("time")
        if isinstance(when, int | float) and not isinstance(when, bool):
            record["time"] = when / 1000
        if self.settings.host:
            record["host"] = self.settings.host
        record["source"] = self.settings.source
        record["sourcetype"] = sourcetype
        if self.settings.index:
            record["index"] = self.settings.index
        record["event"] = event
        return orjson.dumps(record)

    def _flush(self) -> None:
        body = _Body(b"".join(self._parts), self._tables, self._uids, self._sizes)
        self._parts, self._part_bytes = [], 0
        self._tables, self._uids, self._sizes = [], [], []
        self._send(body)

    def _send(self, body: _Body) -> None:
        """POST one body (halves of it after a 413); with ``ack``, keep it until its ack id is reported true."""
        try:
            ack_id = self._post(body)
        except _TooLarge:
            if len(body.sizes) == 1:
                raise SinkError(
                    f"{self.label} refused an event of table {body.tables[0]} (metadata.uid {body.uids[0]}) as too "
                    f"large (HTTP 413, {len(body.data)} bytes alone in its request): raise max_content_length in "
                    "Splunk's [http_input] settings; the checkpoint was not advanced past it.",
                    path=self.url,
                ) from None
            # Later bodies at most the size of the halves that go now: under the server's limit once they pass.
            self._max_bytes = min(self._max_bytes, max(len(body.data) // 2, 1))
            self.stats.split_bodies += 1
            _log.warning(
                "Splunk HEC refused a body as too large (HTTP 413); it is split and sent again",
                extra={"url": self.url, "bytes": len(body.data), "events": len(body.sizes)},
            )
            for half in body.split():
                self._send(half)
            return
        self.stats.bodies += 1
        if ack_id is None:
            return
        body.sent_at = self._clock()
        body.sends += 1
        earlier = self._pending.pop(ack_id, None)
        self._pending[ack_id] = body
        self._pending_bytes += len(body.data)
        if earlier is not None:  # the server reuses ids: it restarted and forgot the earlier body, which is lost
            self._pending_bytes -= len(earlier.data)
            self._resend(earlier, "Splunk HEC gave an ack id again that an earlier body still waits for")

    def _resend(self, body: _Body, why: str) -> None:
        if body.sends > self.settings.max_resends:
            raise SinkError(
                f"{self.label} never acknowledged {len(body.sizes)} events (first: table {body.tables[0]}, "
                f"metadata.uid {body.uids[0]}) after {body.sends} sends, waiting "
                f"{self.settings.ack_timeout_seconds:g} s for each: check the indexers' health; the checkpoint was "
                "not advanced past them, so the next run delivers them again.",
                path=self.url,
            )
        self.stats.resent_bodies += 1
        _log.warning(
            f"{why}; it is sent again", extra={"url": self.url, "events": len(body.sizes), "sends": body.sends}
        )
        self._send(body)

    def _post(self, body: _Body) -> int | None:
        def send() -> httpx.Response:
            return self._http.post(EVENT_PATH, content=body.data)

        return self._call(EVENT_PATH, send, lambda response: self._accepted(response, body))

    def _accepted(self, response: httpx.Response, body: _Body) -> int | None:
        """The ack id of an accepted body (None without ack); raises for every other answer."""
        status = response.status_code
        reply = _reply(response)
        code = reply.get("code")
        if status == 413:
            raise _TooLarge
        if status == 200 and not _success(reply):
            raise SinkError(
                f"{self.label} answered HTTP 200 without HEC's success answer (a JSON object with code 0) "
                f"({_text(reply, response)[:80]!r}): something other than Splunk HEC answers at this URL (a proxy "
                "page, a load balancer); check the URL. The checkpoint was not advanced past these events.",
                path=self.url,
            )
        if status == 200:
            if self._channel is None:
                return None
            ack_id = reply.get("ackId")
            if not isinstance(ack_id, int) or isinstance(ack_id, bool):
                raise SinkError(
                    f"{self.label} accepted the events without an ackId: indexer acknowledgement is not enabled for "
                    "this token. Enable it in Splunk, or set outputs.hec.ack to false (then sync only means "
                    "'received', not 'indexed').",
                    path=self.url,
                )
            return ack_id
        if status in _RETRYABLE_STATUSES:
            raise self._answer_error(status, reply, response, retryable=True)
        number = reply.get("invalid-event-number")
        if status == 400 and isinstance(number, int) and 0 <= number < len(body.uids):  # codes 6, 12, 13
            raise SinkError(
                f"{self.label} refused event {number} of a request (HEC code {code}, {_text(reply, response)!r}): "
                f"table {body.tables[number]}, metadata.uid {body.uids[number]}; the checkpoint was not advanced "
                "past it.",
                path=self.url,
            )
        raise self._answer_error(status, reply, response, retryable=False)

    # -- acknowledgements ----------------------------------------------------------------------------------

    def _await_acks(self) -> None:
        """Poll until every pending body is acknowledged; resend those that time out (see the module docstring)."""
        while self._pending:
            for ack_id in self._acknowledged(list(self._pending)):
                self._forget(ack_id)
                self.stats.acknowledged += 1
            if not self._pending:
                return
            now = self._clock()
            for key, body in list(self._pending.items()):
                if now - body.sent_at >= self.settings.ack_timeout_seconds and key in self._pending:
                    self._forget(key)
                    self._resend(body, "Splunk HEC did not acknowledge a body in time")
            if self._pending:
                self._sleep(self.settings.ack_poll_seconds)
                self.stats.add(slept_seconds=self.settings.ack_poll_seconds)

    def _forget(self, key: int) -> None:
        body = self._pending.pop(key)
        self._pending_bytes -= len(body.data)

    def _acknowledged(self, ack_ids: list[int]) -> set[int]:
        """The ids among ``ack_ids`` that ``/services/collector/ack`` reports true."""
        done: set[int] = set()
        for start in range(0, len(ack_ids), _ACK_IDS_PER_QUERY):
            done |= self._query(ack_ids[start : start + _ACK_IDS_PER_QUERY])
        return done

    def _query(self, asked: list[int]) -> set[int]:
        content = orjson.dumps({"acks": asked})

        def send() -> httpx.Response:
            return self._http.post(ACK_PATH, content=content)

        def interpret(response: httpx.Response) -> set[int]:
            return self._ack_answer(response, asked)

        result: set[int] = self._call(ACK_PATH, send, interpret)
        return result

    def _ack_answer(self, response: httpx.Response, asked: list[int]) -> set[int]:
        status = response.status_code
        reply = _reply(response)
        if status in _RETRYABLE_STATUSES:
            raise self._answer_error(status, reply, response, retryable=True)
        if status != 200:
            raise self._answer_error(status, reply, response, retryable=False)
        acks = reply.get("acks")
        if not isinstance(acks, dict):
            raise SinkError(
                f"{self.label} answered the acknowledgement query without an 'acks' object; the checkpoint was not "
                "advanced.",
                path=self.url,
            )
        wanted = {str(ack_id): ack_id for ack_id in asked}
        return {wanted[key] for key, value in acks.items() if value is True and key in wanted}

    # -- errors --------------------------------------------------------------------------------------------

    def _call(self, name: str, send: Callable[[], httpx.Response], interpret: Callable[[httpx.Response], Any]) -> Any:
        try:
            return self._retrier.call(name, send, interpret)
        except ApiError as exc:  # retries spent (5xx, 429, network), or a certificate failure
            spent = f" (gave up after {self._retrier.policy.max_attempts} attempts)" if exc.retryable else ""
            raise SinkError(
                f"{exc}{spent}; the checkpoint was not advanced past these events, so the next run delivers them "
                "again.",
                path=self.url,
            ) from None
        except RuntimeError:  # httpx: the client has been closed
            if not self._http.is_closed:
                raise
            raise SinkError(f"{self.label} was already closed; nothing more is sent.", path=self.url) from None

    def _answer_error(
        self, status: int, reply: Mapping[str, Any], response: httpx.Response, *, retryable: bool
    ) -> ApiError | SinkError:
        code = reply.get("code")
        known = isinstance(code, int) and not isinstance(code, bool)
        text = _text(reply, response)
        parts = ([f"HEC code {code}"] if known else []) + ([repr(text)] if text else [])
        detail = f"HTTP {status}" + (f" ({', '.join(parts)})" if parts else "")
        if retryable:
            return ApiError(
                f"{self.label} answered {detail}",
                endpoint=response.request.url.path,
                status_code=status,
                retryable=True,
            )
        advice = _ADVICE.get(code) if isinstance(code, int) else None
        if advice is None:
            advice = _STATUS_ADVICE.get(status, "see docs/outputs.md")
        return SinkError(
            f"{self.label} refused the request: {detail}; {advice}. The checkpoint was not advanced past these events.",
            path=self.url,
        )

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise SinkError(f"{self.label} was already closed; nothing more is sent.", path=self.url)

    def _fail(self, error: SinkError) -> NoReturn:
        self._failure = error
        raise error


def open_sink(target: str, settings: Mapping[str, object]) -> HecSink:
    """``--output hec:URL``: the sink for ``target`` with the config file's ``outputs.hec`` settings.

    Raises:
        ConfigError: a bad URL or setting, named (``--output``, ``outputs.hec.<key>``).
    """
    return HecSink(target, HecSettings.from_mapping(settings))
