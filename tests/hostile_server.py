"""A misbehaving Mimecast API on 127.0.0.1, for the transport tests and ``bench/bench_hostile.py``.

``/oauth/token`` answers a normal token (unless the mode targets the token endpoint); every other POST answers
according to ``mode``:

* ``gzip_bomb``: ``Content-Encoding: gzip``, a small body that inflates to ``size`` bytes (``token_bomb``: the
  same on the token endpoint).
* ``huge``: a valid JSON page padded to ``size`` bytes, streamed.
* ``oversized_page``: one page of ``records`` small records, whatever ``pageSize`` was asked.
* ``slowloris``: the headers at once, then the body one byte every ``interval`` seconds (``token_slowloris``:
  the same on the token endpoint).
* ``header_slowloris``: the status line, then the headers one byte every ``interval`` seconds (the body never
  comes).
* ``echo_error``: HTTP 500 whose ``fail[]`` message echoes the request's ``Authorization`` header and the client
  secret the token request carried.
* ``control_error``: HTTP 400 whose ``fail[]`` message carries ``message`` (ANSI escapes, newlines...).
* ``cycling_token``: full pages of ``records`` records whose next token cycles A, B, A, B...

Bounded: each answer stops after ``max_seconds``, the server runs on daemon threads and stops when the context
manager exits.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

__all__ = ["HostileServer", "gzip_zeros"]

_TOKEN = b'{"access_token":"hostile-token-0123456789","token_type":"Bearer","expires_in":1800}'
_CHUNK = 1 << 20


def gzip_zeros(size: int) -> Iterator[bytes]:
    """A gzip stream of ``size`` bytes of JSON-ish padding, produced a MiB at a time (2 GB -> about 2 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    yield compressor.compress(b'{"meta":{"status":200},"data":[],"pad":"')
    left = size
    block = b"a" * _CHUNK
    while left > 0:
        piece = block if left >= _CHUNK else block[:left]
        left -= len(piece)
        out = compressor.compress(piece)
        if out:
            yield out
    yield compressor.compress(b'"}')
    yield compressor.flush()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read results, not logs."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length)
        cfg = self.server.config
        self.server.requests.append(self.path)
        mode = str(cfg["mode"])
        token = self.path.endswith("/oauth/token")
        if token:
            self.server.token_body = request_body.decode("utf-8", "replace")
        if token and not mode.startswith("token_"):
            self._send_bytes(_TOKEN)
        elif mode in ("gzip_bomb", "token_bomb"):
            self._send_gzip(int(cfg.get("size", 10 << 20)))
        elif mode == "huge":
            self._send_huge(int(cfg.get("size", 10 << 20)))
        elif mode == "oversized_page":
            count = int(cfg.get("records", 10_000))
            body = b'{"meta":{"status":200,"pagination":{}},"data":[' + b",".join([b'{"id":"r"}'] * count) + b"]}"
            self._send_bytes(body)
        elif mode in ("slowloris", "token_slowloris"):
            self._send_slowly(float(cfg.get("interval", 1.0)), float(cfg.get("max_seconds", 10.0)))
        elif mode == "header_slowloris":
            self._send_headers_slowly(float(cfg.get("interval", 1.0)), float(cfg.get("max_seconds", 10.0)))
        elif mode == "echo_error":
            secret = parse_qs(self.server.token_body).get("client_secret", [""])[0]
            echoed = (
                f"denied for {self.headers.get('Authorization')}; token {self.server.last_token()}; secret {secret}"
            )
            self._send_fail(500, echoed)
        elif mode == "control_error":
            self._send_fail(400, str(cfg.get("message", "\x1b[31mred\nforged line")))
        elif mode == "cycling_token":
            count = int(cfg.get("records", 10))
            api_requests = sum(1 for path in self.server.requests if not path.endswith("/oauth/token"))
            token = "A" if api_requests % 2 == 1 else "B"
            records = b",".join([b'{"id":"r"}'] * count)
            body = b'{"meta":{"status":200,"pagination":{"next":"%s"}},"data":[%s]}' % (token.encode(), records)
            self._send_bytes(body)
        else:
            self._send_bytes(b'{"meta":{"status":200},"data":[]}')

    def _head(self, length: int | None, gzip: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send_bytes(self, body: bytes) -> None:
        self._head(len(body))
        self.wfile.write(body)

    def _chunked(self, pieces: Iterator[bytes]) -> None:
        try:
            for piece in pieces:
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up after its cap: expected
            self.close_connection = True

    def _send_gzip(self, size: int) -> None:
        self._head(None, gzip=True)
        self._chunked(gzip_zeros(size))

    def _send_huge(self, size: int) -> None:
        head = b'{"meta":{"status":200},"data":[],"pad":"'
        tail = b'"}'
        pad = max(0, size - len(head) - len(tail))

        def pieces() -> Iterator[bytes]:
            yield head
            left = pad
            block = b"a" * _CHUNK
            while left > 0:
                piece = block if left >= _CHUNK else block[:left]
                left -= len(piece)
                yield piece
            yield tail

        self._head(None)
        self._chunked(pieces())

    def _send_fail(self, status: int, message: str) -> None:
        fail = {"errors": [{"code": "err_hostile", "message": message, "retryable": False}]}
        body = json.dumps({"meta": {"status": status}, "data": [], "fail": [fail]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_headers_slowly(self, interval: float, max_seconds: float) -> None:
        """The status line at once, then the headers a byte at a time; never a body."""
        head = b"Content-Type: application/json\r\nX-Padding: " + b"a" * 1000 + b"\r\n\r\n"
        started = time.monotonic()
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.wfile.flush()
            for index in range(len(head)):
                if time.monotonic() - started > max_seconds:
                    break
                self.wfile.write(head[index : index + 1])
                self.wfile.flush()
                time.sleep(interval)
        except OSError:
            pass
        self.close_connection = True

    def _send_slowly(self, interval: float, max_seconds: float) -> None:
        body = b'{"meta":{"status":200},"data":[]}' + b" " * 1000
        self._head(len(body))
        started = time.monotonic()
        try:
            for index in range(len(body)):
                if time.monotonic() - started > max_seconds:
                    break
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                time.sleep(interval)
        except OSError:
            pass
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    config: dict[str, Any]
    requests: list[str]
    token_body: str = ""

    def last_token(self) -> str:
        """The bare access token this server hands out (echoed without its ``Bearer`` prefix too)."""
        return json.loads(_TOKEN)["access_token"]  # type: ignore[no-any-return]


class HostileServer:
    """``with HostileServer("gzip_bomb", size=...) as server: server.url``: serves until the block ends."""

    def __init__(self, mode: str, **config: Any) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.config = {"mode": mode, **config}
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[str]:
        """Paths of the requests received so far."""
        return self._server.requests

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
