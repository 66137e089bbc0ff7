"""A local Splunk HTTP Event Collector for tests: ``/services/collector/event`` and ``/services/collector/ack``.

It follows Splunk's documented protocol (docs/outputs.md, "Splunk HEC"): ``Authorization: Splunk <token>``
(code 2 without it, 3 malformed, 4 unknown token); a body of concatenated event objects, each with a non-empty
``event`` (code 6 "Invalid data format" with ``invalid-event-number``, 12/13 without or with a blank event);
``{"text": "Success", "code": 0}`` on success, plus ``"ackId": N`` when acknowledgement is on. With ack, a
``X-Splunk-Request-Channel`` GUID is required (code 10 missing, 11 not a GUID); ack ids count from 0 per channel;
``POST /services/collector/ack`` with ``{"acks": [ids]}`` answers ``{"acks": {"id": bool}}`` and a true status
is reported once, then forgotten. Without ack, the ack endpoint answers code 14 "ACK is disabled". A body over
``max_body_bytes`` is 413 (read first, so the connection stays usable).

Faults (``HecFaults``, change them between or during requests): answer 503 code 9 "Server is busy" or 429 with
``Retry-After`` to the next N event requests; slow acks (true only after an id was polled N times); lost acks (the
next N ack ids never turn true, though their events were indexed); ``hold_acks`` (nothing turns true while set);
``crash_before_ack`` (bodies are answered with an ack id, but dropped unindexed and never acknowledged: an indexer
that died between accepting and indexing). ``indexed`` is every envelope indexed, in order.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WHITESPACE = re.compile(r"\s*")


@dataclass
class HecFaults:
    busy: int = 0
    throttle: int = 0
    retry_after: str = "1"
    slow_ack_polls: int = 0
    lose_acks: int = 0
    hold_acks: bool = False
    crash_before_ack: bool = False


@dataclass
class _Channel:
    next_id: int = 0
    pending: dict[int, int] = field(default_factory=dict)  # ack id -> polls still needed before it is true
    lost: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Received:
    path: str
    status: int
    size: int
    channel: str | None
    authorization: str | None


class HecReceiver:
    """The receiver; ``with HecReceiver(token) as hec: hec.url``."""

    def __init__(self, token: str, *, ack: bool = True, max_body_bytes: int = 1_000_000) -> None:
        self.token = token
        self.ack = ack
        self.max_body_bytes = max_body_bytes
        self.faults = HecFaults()
        self.indexed: list[dict[str, Any]] = []
        self.requests: list[Received] = []
        self.ack_queries = 0
        self.first_ack_query = threading.Event()
        self._channels: dict[str, _Channel] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> HecReceiver:
        handler = type("Bound", (_Handler,), {"receiver": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- what was indexed --------------------------------------------------------------------------------------

    def uids(self, sourcetype: str | None = None) -> Counter[str]:
        """How often each ``metadata.uid`` was indexed (of one sourcetype, or of all)."""
        return Counter(
            e["event"]["metadata"]["uid"] for e in self.indexed if sourcetype is None or e["sourcetype"] == sourcetype
        )

    def event_requests(self) -> list[Received]:
        return [r for r in self.requests if r.path == "/services/collector/event"]

    # -- the protocol ------------------------------------------------------------------------------------------

    def handle(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        with self._lock:
            status, answer = self._answer(path, query, headers, body)
            self.requests.append(
                Received(path, status, len(body), headers.get("x-splunk-request-channel"), headers.get("authorization"))
            )
        return status, answer

    def _answer(self, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        if path not in ("/services/collector/event", "/services/collector/ack"):
            return 404, {"text": "The requested URL was not found on this server.", "code": 404}
        refused = self._auth(headers.get("authorization"))
        if refused is not None:
            return refused
        channel_id = headers.get("x-splunk-request-channel") or parse_qs(query).get("channel", [None])[0]
        if path == "/services/collector/ack":
            return self._ack(channel_id, body)
        if len(body) > self.max_body_bytes:
            return 413, f"Content-Length of {len(body)} too large (maximum is {self.max_body_bytes})".encode()
        if self.faults.busy > 0:
            self.faults.busy -= 1
            return 503, {"text": "Server is busy", "code": 9}
        if self.faults.throttle > 0:
            self.faults.throttle -= 1
            return 429, ({"text": "Too many requests", "code": 9}, {"Retry-After": self.faults.retry_after})
        channel = None
        if self.ack:
            if channel_id is None:
                return 400, {"text": "Data channel is missing", "code": 10}
            if not _GUID.fullmatch(channel_id):
                return 400, {"text": "Invalid data channel", "code": 11}
            channel = self._channels.setdefault(channel_id, _Channel())
        events, problem = _parse(body)
        if problem is not None:
            return 400, problem
        if not events:
            return 400, {"text": "No data", "code": 5}
        if not (self.ack and self.faults.crash_before_ack):
            self.indexed.extend(events)
        if channel is None:
            return 200, {"text": "Success", "code": 0}
        ack_id = channel.next_id
        channel.next_id += 1
        if self.faults.crash_before_ack:
            channel.lost.add(ack_id)
        elif self.faults.lose_acks > 0:
            self.faults.lose_acks -= 1
            channel.lost.add(ack_id)
        else:
            channel.pending[ack_id] = self.faults.slow_ack_polls
        return 200, {"text": "Success", "code": 0, "ackId": ack_id}

    def _auth(self, header: str | None) -> tuple[int, object] | None:
        if not header:
            return 401, {"text": "Token is required", "code": 2}
        scheme, _, token = header.partition(" ")
        if scheme != "Splunk" or not token:
            return 401, {"text": "Invalid authorization", "code": 3}
        if token != self.token:
            return 403, {"text": "Invalid token", "code": 4}
        return None

    def _ack(self, channel_id: str | None, body: bytes) -> tuple[int, object]:
        if not self.ack:
            return 400, {"text": "ACK is disabled", "code": 14}
        if channel_id is None:
            return 400, {"text": "Data channel is missing", "code": 10}
        self.ack_queries += 1
        self.first_ack_query.set()
        try:
            asked = json.loads(body)["acks"]
            assert isinstance(asked, list) and all(isinstance(i, int) for i in asked)
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, {"text": "Invalid data format", "code": 6}
        channel = self._channels.get(channel_id, _Channel())
        answer: dict[str, bool] = {}
        for ack_id in asked:
            polls = channel.pending.get(ack_id)
            done = polls is not None and polls <= 0 and not self.faults.hold_acks
            if done:
                del channel.pending[ack_id]  # a true status is reported once
            elif polls is not None and not self.faults.hold_acks:
                channel.pending[ack_id] = polls - 1
            answer[str(ack_id)] = done
        return 200, {"acks": answer}


def _parse(body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Concatenated JSON event objects, parsed in one pass (``raw_decode`` from each object's end)."""
    text = body.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    events: list[dict[str, Any]] = []
    position = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    while position < len(text):
        number = len(events)
        try:
            item, position = decoder.raw_decode(text, position)
        except ValueError:
            return events, {"text": "Invalid data format", "code": 6, "invalid-event-number": number}
        if not isinstance(item, dict) or "event" not in item:
            return events, {"text": "Event field is required", "code": 12, "invalid-event-number": number}
        if item["event"] in ("", None, {}):
            return events, {"text": "Event field cannot be blank", "code": 13, "invalid-event-number": number}
        events.append(item)
        position = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
    return events, None


class _Handler(BaseHTTPRequestHandler):
    receiver: HecReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, answer = self.receiver.handle(parts.path, parts.query, headers, body)
        extra: dict[str, str] = {}
        if isinstance(answer, tuple):
            answer, extra = answer
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(answer, bytes) else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
