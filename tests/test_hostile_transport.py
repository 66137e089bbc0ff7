"""A hostile server on 127.0.0.1 (tests/hostile_server.py) cannot exhaust memory or hold a request for ever.

Caps are injected small (a few MiB at most) so the suite stays fast; the figures at the real caps are in
bench/RESULTS.md (bench/bench_hostile.py).
"""

from __future__ import annotations

import ssl
import time

import httpx
import pytest
from client_calls import audit_events
from helpers_http import AUDIT_URL, BASE, CLIENT_KEY, SECRET_VALUE, TOKEN_URL, token_json
from hostile_server import HostileServer
from pytest_httpx import HTTPXMock

from connector.api.auth import MimecastAuth
from connector.api.client import MimecastClient
from connector.api.ratelimit import RetryPolicy
from connector.api.transport import MAX_TOKEN_BYTES, Limits, validate_proxy_url
from connector.errors import ApiError, ConfigError
from connector.secret import Secret

AUDIT = "/api/audit/get-audit-events"
MIB = 1 << 20
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _no_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def make_client(base: str, *, attempts: int = 3, **kw: object) -> MimecastClient:
    auth = MimecastAuth(f"{base}/oauth/token", CLIENT_KEY, Secret(SECRET_VALUE))
    return MimecastClient(
        base,
        auth,
        page_size=10,
        retry=RetryPolicy(max_attempts=attempts),
        sleep=lambda _seconds: None,
        **kw,  # type: ignore[arg-type]
    )


def pull(client: MimecastClient) -> list[object]:
    from datetime import UTC, datetime, timedelta

    end = datetime(2026, 3, 2, tzinfo=UTC)
    with client:
        return list(audit_events(client, end - timedelta(hours=1), end))


SMALL = Limits(wire_bytes=MIB, body_bytes=2 * MIB, token_bytes=MAX_TOKEN_BYTES, deadline_seconds=30.0)


def test_a_gzip_bomb_is_refused_once_its_inflated_size_passes_the_cap() -> None:
    with HostileServer("gzip_bomb", size=50 * MIB) as server, pytest.raises(ApiError) as caught:
        pull(make_client(server.url, limits=SMALL))
    message = str(caught.value)
    assert AUDIT in message and str(2 * MIB) in message and "decompressed" in message
    assert caught.value.retryable is False
    assert server.requests == ["/oauth/token", AUDIT]  # refused at once, not retried


def test_a_huge_body_is_refused_once_its_wire_size_passes_the_cap() -> None:
    with HostileServer("huge", size=20 * MIB) as server, pytest.raises(ApiError) as caught:
        pull(make_client(server.url, limits=SMALL))
    assert AUDIT in str(caught.value) and str(MIB) in str(caught.value) and "on the wire" in str(caught.value)
    assert server.requests == ["/oauth/token", AUDIT]


def test_a_gzip_bomb_from_the_token_endpoint_is_refused_at_the_token_cap() -> None:
    with HostileServer("token_bomb", size=20 * MIB) as server, pytest.raises(ApiError) as caught:
        pull(make_client(server.url, limits=SMALL))
    assert f"{server.url}/oauth/token" in str(caught.value) and str(MAX_TOKEN_BYTES) in str(caught.value)
    assert server.requests == ["/oauth/token"]


def test_a_page_far_larger_than_the_page_size_is_refused() -> None:
    with HostileServer("oversized_page", records=5000) as server, pytest.raises(ApiError) as caught:
        pull(make_client(server.url, limits=SMALL))
    message = str(caught.value)
    assert AUDIT in message and "5000 records" in message and "120" in message  # 2 x 10 + 100


def test_a_page_within_the_tolerance_is_accepted() -> None:
    with HostileServer("oversized_page", records=120) as server:
        assert len(pull(make_client(server.url, limits=SMALL))) == 120


def test_a_server_trickling_one_byte_at_a_time_hits_the_overall_deadline_and_is_retried() -> None:
    limits = Limits(deadline_seconds=1.0)
    with HostileServer("slowloris", interval=0.2, max_seconds=5) as server, pytest.raises(ApiError) as caught:
        pull(make_client(server.url, attempts=2, limits=limits, timeout=httpx.Timeout(1.0)))
    message = str(caught.value)
    assert "failed 2 times" in message and "overall timeout of 1 s" in message
    assert caught.value.retryable is True
    assert server.requests == ["/oauth/token", AUDIT, AUDIT]


def test_a_token_endpoint_trickling_bytes_hits_the_overall_deadline() -> None:
    limits = Limits(deadline_seconds=1.0)
    with HostileServer("token_slowloris", interval=0.2, max_seconds=5) as server, pytest.raises(ApiError) as caught:
        pull(make_client(server.url, attempts=2, limits=limits, timeout=httpx.Timeout(1.0)))
    assert f"{server.url}/oauth/token did not finish within the overall timeout of 1 s" in str(caught.value)
    assert server.requests == ["/oauth/token", "/oauth/token"]


# -- TLS certificate failures (no cryptography package to mint a certificate: pytest-httpx raises the error) --


def _certificate_error(message: str = "certificate verify failed: self-signed certificate") -> httpx.ConnectError:
    error = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] " + message)
    error.__cause__ = ssl.SSLCertVerificationError(1, message)
    return error


def _https_client() -> MimecastClient:
    return make_client(BASE, attempts=5)


def test_a_certificate_failure_is_reported_as_such_and_not_retried(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(_certificate_error(), url=TOKEN_URL)
    with pytest.raises(ApiError) as caught:
        pull(_https_client())
    message = str(caught.value)
    assert "certificate problem" in message and "api.services.mimecast.com" in message
    assert "CA store" in message and "verify" not in message.replace("verified", "")
    assert caught.value.retryable is False
    assert len(httpx_mock.get_requests()) == 1


def test_a_certificate_failure_known_only_by_its_message_is_not_retried(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_exception(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] unable to get local issuer"))
    with pytest.raises(ApiError, match="certificate problem"):
        pull(_https_client())
    assert [request.url for request in httpx_mock.get_requests()] == [TOKEN_URL, AUDIT_URL]


def test_an_ordinary_connect_error_is_still_retried(httpx_mock: HTTPXMock) -> None:
    for _ in range(5):
        httpx_mock.add_exception(httpx.ConnectError("connection refused"), url=TOKEN_URL)
    with pytest.raises(ApiError, match="failed 5 times; last error: ConnectError"):
        pull(_https_client())


def test_the_token_endpoints_final_failure_says_it_gave_up(httpx_mock: HTTPXMock) -> None:
    for _ in range(5):
        httpx_mock.add_response(url=TOKEN_URL, status_code=503)
    with pytest.raises(ApiError) as caught:
        pull(_https_client())
    message = str(caught.value)
    assert "failed 5 times" in message and "giving up" in message and "HTTP 503" in message
    assert "will be retried" not in message


# -- proxies -------------------------------------------------------------------------------------------------

_NOWHERE = "http://localhost:9"  # nothing listens there: a request only succeeds through the proxy


def test_http_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with HostileServer("ok") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert pull(make_client(_NOWHERE)) == []
    assert proxy.requests == [f"{_NOWHERE}/oauth/token", f"{_NOWHERE}{AUDIT}"]


def test_no_proxy_from_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with HostileServer("ok") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost")
        with pytest.raises(ApiError, match="ConnectError"):
            pull(make_client(_NOWHERE, attempts=1))
    assert proxy.requests == []


def test_proxy_url_overrides_the_environment_and_may_carry_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    with HostileServer("ok") as proxy:
        url = proxy.url.replace("http://", "http://user:pa55word@")
        assert pull(make_client(_NOWHERE, proxy_url=url)) == []
    assert proxy.requests == [f"{_NOWHERE}/oauth/token", f"{_NOWHERE}{AUDIT}"]


@pytest.mark.parametrize(
    "value", ["ftp://user:pa55word@proxy.example.com", "user:pa55word@proxy", "http://user:pa55word@", "http://a b"]
)
def test_a_bad_proxy_url_is_a_config_error_that_hides_its_credentials(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_proxy_url(value)
    assert caught.value.parameter == "proxy_url" and "pa55word" not in str(caught.value)


def test_a_custom_transport_is_still_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json=token_json("t1"))
        return httpx.Response(200, content=b" " * (2 * MIB))

    client = make_client(BASE, limits=SMALL, transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError, match="on the wire"):
        pull(client)


def test_a_server_trickling_its_headers_hits_the_overall_deadline_on_every_attempt() -> None:
    # httpx's read timeout restarts with every byte, so only the overall deadline ends this (while the headers
    # are being read, before handle_request has returned anything to check between chunks).
    limits = Limits(deadline_seconds=1.0)
    started = time.monotonic()
    with HostileServer("header_slowloris", interval=0.2, max_seconds=20) as server, pytest.raises(ApiError) as caught:
        pull(make_client(server.url, attempts=2, limits=limits, timeout=httpx.Timeout(1.0)))
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert "failed 2 times" in message and "overall timeout of 1 s" in message, message
    assert caught.value.retryable is True
    assert server.requests == ["/oauth/token", AUDIT, AUDIT]
    assert elapsed < 6.0, f"two 1 s attempts took {elapsed:.1f} s"
