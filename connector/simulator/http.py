"""The simulator's HTTP layer: a threading server on 127.0.0.1 and a keep-alive handler that defers to
``Simulator.handle``."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import orjson

from connector.simulator.replies import Reply

if TYPE_CHECKING:
    from connector.simulator.server import Simulator

__all__ = ["Handler", "Server"]


class Server(ThreadingHTTPServer):
    """A threading server with a listen backlog deep enough for clients with bounded concurrency."""

    request_queue_size = 128
    daemon_threads = True


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that defers to :meth:`Simulator.handle`."""

    simulator: ClassVar[Simulator]
    _received: float = 0.0
    protocol_version = "HTTP/1.1"
    server_version = "MimecastSimulator/1.0"
    timeout = 60
    # Buffer the reply and send headers and body in one segment: two small writes meet Nagle's algorithm and
    # delayed ACKs and cost ~40 ms per request.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the simulator keeps its own request log."""

    def parse_request(self) -> bool:
        """Note when the request line came in (the latency runs from there), then parse the headers."""
        self._received = time.perf_counter()
        return super().parse_request()

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        target = urlsplit(self.path)
        path = target.path
        headers = {k.lower(): v for k, v in self.headers.items()}
        simulator = self.simulator
        try:
            reply = simulator.handle(method, path, headers, body, received=self._received, query=target.query)
        except Exception as exc:  # a simulator bug must show up as a 500, not a dropped connection
            reply = Reply(500, {"fail": [{"code": "simulator_error", "message": repr(exc)}]})
        simulator._record(method, path, reply.status)
        raw = isinstance(reply.body, bytes)
        payload = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/html" if raw else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self) -> None:
        """Every API call."""
        self._serve("POST")

    def do_GET(self) -> None:
        """``GET /api/audit/get-categories``; other paths answer an error."""
        self._serve("GET")
