"""Tests for connector.api.auth.MimecastAuth: token caching, expiry skew, 401 refresh, encoding and secrecy."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from helpers_http import AUDIT_URL, BASE, CLIENT_KEY, SECRET_VALUE, TOKEN_URL, FakeClock, fixture, token_json
from pytest_httpx import HTTPXMock

from connector.api.auth import MimecastAuth
from connector.errors import ApiError, AuthError
from connector.log import MASK, safe_line
from connector.secret import Secret

BODY = {"meta": {"pagination": {"pageSize": 1}}, "data": []}
OK = {"meta": {"status": 200}, "data": [], "fail": []}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(clock: FakeClock) -> MimecastAuth:
    return MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(SECRET_VALUE), clock=clock)


@pytest.fixture
def http(auth: MimecastAuth) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, auth=auth, follow_redirects=False) as client:
        yield client


def test_token_is_fetched_once_and_reused(httpx_mock: HTTPXMock, http: httpx.Client, auth: MimecastAuth) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=fixture("token_ok"))
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_headers={"Authorization": "Bearer eyJ-example-access-token"},
        json=OK,
        is_reusable=True,
    )
    for _ in range(3):
        assert http.post("/api/audit/get-audit-events", json=BODY).status_code == 200
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 1
    assert auth.token_refreshes == 1


def test_token_refreshed_skew_seconds_before_expiry(
    httpx_mock: HTTPXMock, http: httpx.Client, auth: MimecastAuth, clock: FakeClock
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1", expires_in=1800))
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t2", expires_in=1800))
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t1"}, json=OK, is_reusable=True)
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t2"}, json=OK)
    http.post("/api/audit/get-audit-events", json=BODY)
    clock.advance(1800 - 60 - 1)  # still inside the lifetime minus the 60 s skew
    http.post("/api/audit/get-audit-events", json=BODY)
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 1
    clock.advance(1)  # now exactly 60 s before expiry
    http.post("/api/audit/get-audit-events", json=BODY)
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 2
    assert auth.token_refreshes == 2


def test_short_lifetime_does_not_mean_a_token_per_request(httpx_mock: HTTPXMock, clock: FakeClock) -> None:
    auth = MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret("x"), clock=clock, skew=60)
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1", expires_in=30))
    httpx_mock.add_response(url=AUDIT_URL, json=OK, is_reusable=True)
    with httpx.Client(auth=auth) as client:
        client.post(AUDIT_URL, json=BODY)
        clock.advance(10)
        client.post(AUDIT_URL, json=BODY)
    assert auth.token_refreshes == 1


def test_401_refreshes_once_and_resends_the_same_request(
    httpx_mock: HTTPXMock, http: httpx.Client, auth: MimecastAuth
) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t2"))
    httpx_mock.add_response(
        url=AUDIT_URL,
        match_headers={"Authorization": "Bearer t1"},
        status_code=401,
        json={"fail": [{"code": "token_expired", "message": "expired"}]},
    )
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t2"}, match_json=BODY, json=OK)
    response = http.post("/api/audit/get-audit-events", json=BODY)
    assert response.status_code == 200
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 2
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 2
    assert auth.token_refreshes == 2


def test_second_401_is_handed_back_without_looping(
    httpx_mock: HTTPXMock, http: httpx.Client, auth: MimecastAuth
) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t2"))
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t1"}, status_code=401)
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t2"}, status_code=401)
    response = http.post("/api/audit/get-audit-events", json=BODY)
    assert response.status_code == 401
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 2
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 2


def test_secret_with_reserved_characters_is_form_encoded(httpx_mock: HTTPXMock) -> None:
    secret = "a+b&c=d%e f"
    expected = b"grant_type=client_credentials&client_id=client-key-123&client_secret=a%2Bb%26c%3Dd%25e+f"
    httpx_mock.add_response(
        method="POST",
        url=TOKEN_URL,
        match_headers={"Content-Type": "application/x-www-form-urlencoded"},
        match_content=expected,
        json=token_json("t1"),
    )
    httpx_mock.add_response(url=AUDIT_URL, json=OK)
    auth = MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(secret))
    with httpx.Client(auth=auth) as client:
        client.post(AUDIT_URL, json=BODY)
    sent = httpx_mock.get_request(url=TOKEN_URL)
    assert sent is not None
    assert parse_qs(sent.content.decode("ascii"))["client_secret"] == [secret]
    assert "Authorization" not in sent.headers  # the token request itself carries no bearer


def test_unicode_secret_round_trips(httpx_mock: HTTPXMock, http: httpx.Client) -> None:
    fields = {"grant_type": "client_credentials", "client_id": CLIENT_KEY, "client_secret": SECRET_VALUE}
    httpx_mock.add_response(url=TOKEN_URL, match_content=urlencode(fields).encode(), json=token_json("t1"))
    httpx_mock.add_response(url=AUDIT_URL, json=OK)
    http.post("/api/audit/get-audit-events", json=BODY)


@pytest.mark.parametrize("status", [400, 401])
def test_token_refusal_is_an_auth_error_without_secret_or_body(
    httpx_mock: HTTPXMock, http: httpx.Client, status: int
) -> None:
    httpx_mock.add_response(
        url=TOKEN_URL,
        status_code=status,
        json={"error": "invalid_client", "echo": SECRET_VALUE, "detail": "body-marker-xyz"},
    )
    with pytest.raises(AuthError) as info:
        http.post("/api/audit/get-audit-events", json=BODY)
    message = str(info.value)
    assert message.startswith("Mimecast rejected the client key or secret")
    assert f"token URL {TOKEN_URL} answered HTTP {status}" in message
    assert "client_key and client_secret" in message
    assert SECRET_VALUE not in message
    assert "body-marker-xyz" not in message
    assert "invalid_client" not in message


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json={"token_type": "Bearer", "expires_in": 1800}),
        httpx.Response(200, text="<html>login page</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"access_token": ""}),
    ],
)
def test_token_response_without_token_is_an_auth_error(
    httpx_mock: HTTPXMock, http: httpx.Client, response: httpx.Response
) -> None:
    httpx_mock.add_response(
        url=TOKEN_URL, status_code=response.status_code, content=response.content, headers=response.headers
    )
    with pytest.raises(AuthError, match="without an access token"):
        http.post("/api/audit/get-audit-events", json=BODY)


@pytest.mark.parametrize("status", [429, 502])
def test_token_endpoint_outage_is_retryable_api_error(httpx_mock: HTTPXMock, http: httpx.Client, status: int) -> None:
    httpx_mock.add_response(url=TOKEN_URL, status_code=status)
    with pytest.raises(ApiError) as info:
        http.post("/api/audit/get-audit-events", json=BODY)
    assert not isinstance(info.value, AuthError)
    assert info.value.retryable is True
    assert info.value.status_code == status


def test_lock_is_released_after_a_failed_token_fetch(httpx_mock: HTTPXMock, http: httpx.Client) -> None:
    httpx_mock.add_exception(httpx.ConnectError("boom"), url=TOKEN_URL)
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=AUDIT_URL, json=OK)
    with pytest.raises(httpx.ConnectError):
        http.post("/api/audit/get-audit-events", json=BODY)
    assert http.post("/api/audit/get-audit-events", json=BODY).status_code == 200  # would deadlock otherwise


def test_no_secret_or_token_in_logs_or_repr(
    httpx_mock: HTTPXMock, http: httpx.Client, auth: MimecastAuth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("tok-AAA"))
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("tok-BBB"))
    httpx_mock.add_response(url=AUDIT_URL, status_code=401)
    httpx_mock.add_response(url=AUDIT_URL, json=OK)
    http.post("/api/audit/get-audit-events", json=BODY)
    assert caplog.records, "expected some log records at DEBUG"
    for record in caplog.records:
        text = record.getMessage() + " " + repr(record.__dict__)
        for forbidden in (SECRET_VALUE, "tok-AAA", "tok-BBB", "client_secret=", "s3cr"):
            assert forbidden not in text
    assert "s3cr" not in repr(auth)


def test_concurrent_requests_share_one_token_fetch(httpx_mock: HTTPXMock, http: httpx.Client) -> None:
    started = threading.Barrier(6)

    def token_callback(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)  # widen the race window: the other threads must wait on the lock, not fetch again
        return httpx.Response(200, json=token_json("shared"))

    httpx_mock.add_callback(token_callback, url=TOKEN_URL)
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer shared"}, json=OK, is_reusable=True)
    errors: list[BaseException] = []

    def worker() -> None:
        started.wait()
        try:
            http.post("/api/audit/get-audit-events", json=BODY)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 1
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 6


def test_401_with_a_token_another_thread_already_replaced_does_not_fetch_again(clock: FakeClock) -> None:
    """Drive two flows by hand: both send with t1, A refreshes to t2 after its 401, B's 401 reuses t2."""
    auth = MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret("x"), clock=clock)

    def api_request() -> httpx.Request:
        return httpx.Request("POST", AUDIT_URL, json=BODY)

    def token_response(request: httpx.Request, token: str) -> httpx.Response:
        assert request.url == TOKEN_URL
        return httpx.Response(200, json=token_json(token), request=request)

    flow_a = auth.sync_auth_flow(api_request())
    sent_a = token_response(next(flow_a), "t1")
    request_a = flow_a.send(sent_a)
    assert request_a.headers["Authorization"] == "Bearer t1"

    flow_b = auth.sync_auth_flow(api_request())
    request_b = next(flow_b)  # cached: straight to the API call
    assert request_b.headers["Authorization"] == "Bearer t1"

    token_request = flow_a.send(httpx.Response(401, request=request_a))
    resent_a = flow_a.send(token_response(token_request, "t2"))
    assert resent_a.headers["Authorization"] == "Bearer t2"

    resent_b = flow_b.send(httpx.Response(401, request=request_b))
    assert resent_b.url == AUDIT_URL  # not a token request
    assert resent_b.headers["Authorization"] == "Bearer t2"
    assert auth.token_refreshes == 2
    for flow in (flow_a, flow_b):
        with pytest.raises(StopIteration):
            flow.send(httpx.Response(200, json=OK))


def test_a_minted_token_is_registered_for_redaction(httpx_mock: HTTPXMock, http: httpx.Client) -> None:
    # The auth registers every token it stores, so an echo of it anywhere (a server error message, a log line,
    # the summary) is masked, not only the "Bearer <token>" form.
    minted = "tok-minted-at-run-time-7f3a9c"
    httpx_mock.add_response(url=TOKEN_URL, json=token_json(minted))
    httpx_mock.add_response(url=AUDIT_URL, json=OK)
    http.post("/api/audit/get-audit-events", json=BODY)
    assert safe_line(f"the server said {minted} twice: {minted}") == f"the server said {MASK} twice: {MASK}"


@pytest.mark.parametrize(
    "token",
    ["tok-with\r\nX-Injected: 1", "tok\nnewline-0123456789", "tok with spaces 0123456789", "tök-non-ascii-0123456789"],
)
def test_a_token_not_fit_for_a_header_is_an_auth_error_without_the_token(
    httpx_mock: HTTPXMock, http: httpx.Client, token: str
) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json(token))
    with pytest.raises(AuthError) as info:
        http.post("/api/audit/get-audit-events", json=BODY)
    assert "not allowed in an HTTP header" in str(info.value)
    assert token not in str(info.value)
    assert not httpx_mock.get_requests(url=AUDIT_URL)  # it was never sent


def test_a_token_response_nested_100k_deep_is_an_auth_error(httpx_mock: HTTPXMock, http: httpx.Client) -> None:
    httpx_mock.add_response(url=TOKEN_URL, content=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(AuthError, match="without an access token"):
        http.post("/api/audit/get-audit-events", json=BODY)
