"""A second envelope fits the client without special cases: a GET listing, a pre-signed download, another auth.

The two envelopes here are test-only sketches of what the SIEM stream will need (the answer shapes Mimecast
documents for its SIEM batch API), not the stream itself:

* ``SiemBatchEnvelope``: ``GET /siem/v1/batch/events/cg?type=..&pageSize=..&nextPage=..`` answering
  ``{"value": [{"url", "size"}], "@nextPage": "...", "isCaughtUp": bool}``; its 429 and 5xx go through the same
  retry loop as the POST envelope's.
* a download of a batch file from a pre-signed URL on another host: ``Call(authenticated=False)``, so no
  ``Authorization`` header (and no token request), still under the bounded transport's caps and deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from client_calls import audit_events
from helpers_http import AUDIT_URL, BASE, CLIENT_KEY, SECRET_VALUE, TOKEN_URL, FakeClock, ZeroRandom, token_json
from pytest_httpx import HTTPXMock

from connector.api.auth import MimecastAuth
from connector.api.client import MimecastClient
from connector.api.envelope import Call, decode_json, http_error
from connector.api.paginate import Page, next_token
from connector.api.ratelimit import RetryPolicy
from connector.api.transport import Limits
from connector.errors import ApiError
from connector.secret import Secret

SIEM_PATH = "/siem/v1/batch/events/cg"
SIEM_URL = f"{BASE}{SIEM_PATH}"
BLOB_HOST = "mimecast-siem-eu.s3.eu-west-1.amazonaws.com"
SIGNATURE = "X-Amz-Signature=0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BLOB_URL = f"https://{BLOB_HOST}/cg/receipt/2026-03-02/batch-1.json.gz?X-Amz-Expires=3600&{SIGNATURE}"
POLICY = RetryPolicy(max_attempts=4, base_backoff=1.0, max_backoff=5.0, jitter=0.0)


class SiemBatchEnvelope:
    """The SIEM batch listing of one log type (a sketch: GET, query parameters, another JSON answer)."""

    name = SIEM_PATH

    def __init__(self, log_type: str) -> None:
        self.log_type = log_type

    def call(self, page_size: int, token: str | None) -> Call:
        params = {"type": self.log_type, "pageSize": str(page_size)}
        if token is not None:
            params["nextPage"] = token
        return Call("GET", self.name, self.name, params=params)

    def interpret(self, response: httpx.Response) -> dict[str, Any]:
        error = http_error(self.name, response)  # 5xx retryable, redirects refused, other 4xx final
        if error is not None:
            raise error
        payload = decode_json(response.content)
        if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
            raise ApiError(f"{self.name} answered without a 'value' list", endpoint=self.name)
        return payload

    def page(self, payload: dict[str, Any]) -> Page:
        caught_up = payload.get("isCaughtUp") is True
        return Page(payload["value"], None if caught_up else next_token(self.name, payload.get("@nextPage")))


def download_call(url: str) -> Call:
    """A pre-signed URL carries its own credential: no bearer token, and a name without the signed query."""
    parts = httpx.URL(url)
    return Call("GET", url, f"{parts.host}{parts.path}", headers={"Accept": "*/*"}, authenticated=False)


def read_blob(response: httpx.Response) -> bytes:
    status = response.status_code
    if status in (403, 404):  # an expired pre-signed URL answers 403: list again, do not retry
        raise ApiError(f"the batch file answered HTTP {status} (expired or gone)", status_code=status)
    if status != 200:
        raise ApiError(f"the batch file answered HTTP {status}", status_code=status, retryable=status >= 500)
    return response.content


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Iterator[MimecastClient]:
    auth = MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(SECRET_VALUE), clock=clock)
    with MimecastClient(BASE, auth, page_size=2, retry=POLICY, sleep=clock.sleep, rng=ZeroRandom(), clock=clock) as c:
        yield c


def siem_page(urls: list[str], next_page: str, caught_up: bool = False) -> dict[str, Any]:
    return {"value": [{"url": url, "size": 1024} for url in urls], "@nextPage": next_page, "isCaughtUp": caught_up}


@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_get_envelope_is_paginated_and_its_429_and_5xx_are_retried_by_the_same_loop(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock, read_ahead: bool
) -> None:
    client.read_ahead = read_ahead
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    first = f"{SIEM_URL}?type=receipt&pageSize=2"
    second = f"{SIEM_URL}?type=receipt&pageSize=2&nextPage=NP2"
    httpx_mock.add_response(method="GET", url=first, status_code=429, headers={"X-RateLimit-Reset": "2500"})
    httpx_mock.add_response(method="GET", url=first, status_code=503)
    httpx_mock.add_response(
        method="GET", url=first, match_headers={"Authorization": "Bearer t1"}, json=siem_page(["u1", "u2"], "NP2")
    )
    httpx_mock.add_response(method="GET", url=second, json=siem_page(["u3"], "NP3", caught_up=True))
    pages = list(client.walk([SiemBatchEnvelope("receipt")]))
    assert [([r["url"] for r in p.records], p.last) for p in pages] == [(["u1", "u2"], False), (["u3"], True)]
    assert clock.sleeps == [2.5, 2.0]  # the 429's reset, then the backoff after the 503 (attempt 2)
    assert client.stats.as_dict() == {
        "requests": 4,
        "pages": 2,
        "retries": 2,
        "rate_limited": 1,
        "slept_seconds": 4.5,
        "token_refreshes": 1,
    }


def test_a_get_envelopes_server_fault_is_final_after_the_policys_attempts(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(method="GET", status_code=502, is_reusable=True)
    with pytest.raises(ApiError) as caught:
        list(client.walk([SiemBatchEnvelope("receipt")]))
    assert caught.value.status_code == 502 and caught.value.retryable
    assert len(httpx_mock.get_requests(method="GET")) == POLICY.max_attempts


def test_a_presigned_download_carries_no_authorization_and_asks_for_no_token(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock
) -> None:
    # No token response is registered: a token request would fail the test (pytest-httpx is strict).
    httpx_mock.add_response(method="GET", url=BLOB_URL, status_code=500)
    httpx_mock.add_response(method="GET", url=BLOB_URL, content=b'{"type":"receipt"}\n')
    assert client.request(download_call(BLOB_URL), read_blob) == b'{"type":"receipt"}\n'
    requests = httpx_mock.get_requests()
    assert [r.url.host for r in requests] == [BLOB_HOST, BLOB_HOST]
    assert all("Authorization" not in r.headers for r in requests)
    assert clock.sleeps == [1.0]  # the 500 went through the same retry loop
    assert client.stats.token_refreshes == 0


def test_a_download_after_a_listing_on_the_same_client_still_carries_no_token(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(
        method="GET", url=f"{SIEM_URL}?type=receipt&pageSize=2", json=siem_page([BLOB_URL], "N", True)
    )
    httpx_mock.add_response(method="GET", url=BLOB_URL, content=b"{}\n")
    [listed] = list(client.walk([SiemBatchEnvelope("receipt")]))
    [blob] = listed.records
    assert client.request(download_call(blob["url"]), read_blob) == b"{}\n"
    listing, download = httpx_mock.get_requests(method="GET")
    assert listing.headers["Authorization"] == "Bearer t1"
    assert "Authorization" not in download.headers


def test_a_download_is_bounded_and_its_signature_stays_out_of_the_error(
    httpx_mock: HTTPXMock, clock: FakeClock
) -> None:
    auth = MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(SECRET_VALUE), clock=clock)
    small = Limits(wire_bytes=1 << 16, body_bytes=1 << 16, deadline_seconds=30.0)
    httpx_mock.add_response(method="GET", url=BLOB_URL, content=b"x" * (1 << 17))
    with (
        MimecastClient(BASE, auth, retry=POLICY, sleep=clock.sleep, limits=small) as client,
        pytest.raises(ApiError, match="on the wire") as caught,
    ):
        client.request(download_call(BLOB_URL), read_blob)
    assert "0f1e2d3c" not in str(caught.value) and "Signature" not in str(caught.value)
    assert caught.value.retryable is False
    assert len(httpx_mock.get_requests()) == 1
    assert "Signature" not in repr(download_call(BLOB_URL))


class HeaderAuth(httpx.Auth):
    """Another scheme (say API 1.0's signed headers): no token endpoint, no ``token_refreshes``, no ``token_url``."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["x-mc-signature"] = "signed"
        yield request


def test_any_httpx_auth_works_without_a_token_endpoint(httpx_mock: HTTPXMock, clock: FakeClock) -> None:
    httpx_mock.add_response(
        url=AUDIT_URL,
        match_headers={"x-mc-signature": "signed"},
        json={"meta": {"status": 200, "pagination": {}}, "data": [{"id": "a1"}], "fail": []},
    )
    with MimecastClient(BASE, HeaderAuth(), retry=POLICY, sleep=clock.sleep) as client:
        start = datetime(2026, 3, 2, tzinfo=UTC)
        assert list(audit_events(client, start, start)) == [{"id": "a1"}]
        assert client.stats.as_dict()["token_refreshes"] == 0
        assert "Authorization" not in httpx_mock.get_request().headers
        assert "signed" not in repr(client)


# -- a real pair of servers on 127.0.0.1: another host, a proxy, the deadline ---------------------------------


class _Recorder(ThreadingHTTPServer):
    """Answers every GET with ``body`` (after ``delay`` seconds) and records the request line and headers."""

    daemon_threads = True

    def __init__(self, body: bytes = b"{}\n", delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.body, self.delay = body, delay
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> _Recorder:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _Recorder
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers.items())))
        self.server.release.wait(self.server.delay)
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.server.body)))
            self.end_headers()
            self.wfile.write(self.server.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (the deadline test)
            self.close_connection = True


@pytest.mark.httpx_mock(should_mock=lambda request: False)
def test_a_download_goes_through_proxy_url_without_the_bearer_token() -> None:
    auth = MimecastAuth("http://localhost:9/oauth/token", CLIENT_KEY, Secret(SECRET_VALUE))
    with _Recorder(b"batch\n") as proxy:
        blob = "http://127.0.0.1:9/cg/batch-1.json.gz?X-Amz-Signature=abc"  # nothing listens there: only via proxy
        with MimecastClient("http://localhost:9", auth, proxy_url=proxy.url, retry=POLICY) as client:
            assert client.request(download_call(blob), read_blob) == b"batch\n"
    [(line, headers)] = proxy.seen
    assert line == blob
    assert "Authorization" not in headers and "authorization" not in {name.lower() for name in headers}


@pytest.mark.httpx_mock(should_mock=lambda request: False)
def test_a_download_from_a_server_too_slow_hits_the_overall_deadline_on_every_attempt() -> None:
    auth = MimecastAuth("http://localhost:9/oauth/token", CLIENT_KEY, Secret(SECRET_VALUE))
    policy = RetryPolicy(max_attempts=2, base_backoff=0.0)
    limits = Limits(deadline_seconds=0.5)
    with _Recorder(delay=3.0) as slow, MimecastClient("http://localhost:9", auth, retry=policy, limits=limits) as c:
        with pytest.raises(ApiError) as caught:
            c.request(download_call(f"{slow.url}/batch-2.json.gz?X-Amz-Signature=abc"), read_blob)
        assert len(slow.seen) == 2
    message = str(caught.value)
    assert "failed 2 times" in message and "overall timeout of 0.5 s" in message
    assert "127.0.0.1/batch-2.json.gz" in message and "Signature" not in message


def test_refusals_for_a_stream_outside_the_manifest_and_a_418_without_api_1_keys_are_clean_errors() -> None:
    from connector.api.envelope import API_KEYS_V1_CREDENTIALS, access_error
    from connector.errors import AuthError, PermissionDeniedError

    denied = access_error("/api/widgets/get-logs", 403, None, "widgets")
    assert isinstance(denied, PermissionDeniedError) and "the widgets event type" in str(denied)
    assert access_error("/api/audit/get-audit-events", 418, None, "audit") is None  # an ordinary HTTP error then
    expired = access_error("/api/audit/get-audit-events", 418, None, "audit", credentials=API_KEYS_V1_CREDENTIALS)
    assert isinstance(expired, AuthError) and "binding" in str(expired)
