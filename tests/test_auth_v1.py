"""Tests for connector.api.auth_v1.ApiKeysV1Auth: the HMAC-SHA1 signature, its headers, a fresh date and request id
on every send, a final 401, and secrets kept out of reprs, logs and errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
from collections.abc import Iterator

import httpx
import pytest
from helpers_v1 import ACCESS_KEY, APP_ID, APP_KEY, SECRET_KEY, SECRET_KEY_BYTES, V1_PARAMETERS
from pytest_httpx import HTTPXMock

from connector.api.auth_select import build_auth
from connector.api.auth_v1 import ApiKeysV1Auth, decode_secret_key, format_mc_date
from connector.config import Config
from connector.errors import ConfigError
from connector.log import MASK, redact_text, safe_line
from connector.secret import NOT_SET, WITHHELD, Secret
from connector.simulator import ApiV1Keys, Simulator, TenantSpec

BASE = "https://eu-api.mimecast.com"
AUDIT_PATH = "/api/audit/get-audit-events"
AUDIT_URL = BASE + AUDIT_PATH
OK = {"meta": {"status": 200}, "data": [], "fail": []}
# 2015-11-24 12:50:11 UTC, the instant of Mimecast's documented x-mc-date example.
DOC_INSTANT = 1448369411.75
DOC_DATE = "Tue, 24 Nov 2015 12:50:11 UTC"
REQUEST_ID = "8578FCFC-A305-4D9A-99CB-F4D5ECEFE297"


def expected_signature(date: str, request_id: str, path: str) -> str:
    """The signature, computed here from the documented recipe, independently of the module under test."""
    data_to_sign = f"{date}:{request_id}:{path}:{APP_KEY}".encode()
    return base64.b64encode(hmac.new(SECRET_KEY_BYTES, data_to_sign, hashlib.sha1).digest()).decode()


class Ticking:
    """A wall clock that moves one second every time it is read."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1
        return self.now


def make_auth(
    *,
    clock: object = lambda: DOC_INSTANT,
    request_id: object = lambda: REQUEST_ID,
    app_key: Secret | None = None,
    secret_key: Secret | None = None,
    app_id: str = APP_ID,
    access_key: str = ACCESS_KEY,
) -> ApiKeysV1Auth:
    return ApiKeysV1Auth(
        app_id,
        app_key if app_key is not None else Secret(APP_KEY),
        access_key,
        secret_key if secret_key is not None else Secret(SECRET_KEY),
        clock=clock,  # type: ignore[arg-type]
        request_id=request_id,  # type: ignore[arg-type]
    )


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, auth=make_auth(), follow_redirects=False) as client:
        yield client


def test_known_answer_signature_and_the_header_set(httpx_mock: HTTPXMock, http: httpx.Client) -> None:
    signature = expected_signature(DOC_DATE, REQUEST_ID, AUDIT_PATH)
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_headers={
            "x-mc-date": DOC_DATE,
            "x-mc-req-id": REQUEST_ID,
            "x-mc-app-id": APP_ID,
            "Authorization": f"MC {ACCESS_KEY}:{signature}",
        },
        json=OK,
    )
    assert http.post(AUDIT_PATH, json={"data": []}).status_code == 200


def test_the_signature_is_pinned_to_a_literal_value() -> None:
    # A second, literal check: the independent computation above cannot share a mistake with this constant.
    headers = make_auth().headers_for(AUDIT_PATH)
    assert headers["Authorization"] == f"MC {ACCESS_KEY}:ANKxcMhnXqUp08W140zvys1Fo3c="


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        (DOC_INSTANT, DOC_DATE),
        (1704067200, "Mon, 01 Jan 2024 00:00:00 UTC"),
        (951782400, "Tue, 29 Feb 2000 00:00:00 UTC"),
        (1767225599.999, "Wed, 31 Dec 2025 23:59:59 UTC"),
    ],
)
def test_the_date_is_in_the_documented_format_whatever_the_locale(instant: float, text: str) -> None:
    assert format_mc_date(instant) == text


def test_only_the_path_is_signed_not_the_host_or_the_query(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(is_reusable=True, json=OK)
    with httpx.Client(auth=make_auth()) as client:
        client.post("http://127.0.0.1:8080/prefix/api/audit/get-audit-events?x=1", json={})
        client.post("https://eu-api.mimecast.com/api/audit/get-audit-events", json={})
    first, second = httpx_mock.get_requests()
    prefixed = expected_signature(DOC_DATE, REQUEST_ID, "/prefix/api/audit/get-audit-events")
    assert first.headers["Authorization"] == f"MC {ACCESS_KEY}:{prefixed}"
    plain = expected_signature(DOC_DATE, REQUEST_ID, AUDIT_PATH)
    assert second.headers["Authorization"] == f"MC {ACCESS_KEY}:{plain}"


def test_every_request_gets_a_fresh_date_and_request_id(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=AUDIT_URL, is_reusable=True, json=OK)
    with httpx.Client(base_url=BASE, auth=ApiKeysV1Auth(APP_ID, Secret(APP_KEY), ACCESS_KEY, Secret(SECRET_KEY))) as c:
        for _ in range(3):
            c.post(AUDIT_PATH, json={})
    sent = httpx_mock.get_requests()
    ids = [request.headers["x-mc-req-id"] for request in sent]
    assert len(set(ids)) == 3
    for request in sent:
        date, request_id = request.headers["x-mc-date"], request.headers["x-mc-req-id"]
        assert request.headers["Authorization"] == f"MC {ACCESS_KEY}:{expected_signature(date, request_id, AUDIT_PATH)}"


def test_the_injected_clock_and_id_source_are_read_once_per_send(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=AUDIT_URL, is_reusable=True, json=OK)
    counter = itertools.count(1)
    auth = make_auth(clock=Ticking(DOC_INSTANT - 1), request_id=lambda: f"id-{next(counter)}")
    with httpx.Client(base_url=BASE, auth=auth) as client:
        client.post(AUDIT_PATH, json={})
        client.post(AUDIT_PATH, json={})
    first, second = httpx_mock.get_requests()
    assert (first.headers["x-mc-date"], first.headers["x-mc-req-id"]) == (DOC_DATE, "id-1")
    assert (second.headers["x-mc-date"], second.headers["x-mc-req-id"]) == ("Tue, 24 Nov 2015 12:50:12 UTC", "id-2")


def test_a_resend_after_a_transport_error_is_signed_anew(httpx_mock: HTTPXMock) -> None:
    sent: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(dict(request.headers))  # a copy: the re-send updates the same request object
        if len(sent) == 1:
            raise httpx.ReadTimeout("read timed out", request=request)
        return httpx.Response(200, json=OK)

    httpx_mock.add_callback(answer, url=AUDIT_URL, is_reusable=True)
    counter = itertools.count(1)
    auth = make_auth(clock=Ticking(DOC_INSTANT), request_id=lambda: f"id-{next(counter)}")
    with httpx.Client(base_url=BASE, auth=auth) as client:
        request = client.build_request("POST", AUDIT_PATH, json={})
        with pytest.raises(httpx.ReadTimeout):
            client.send(request)
        assert client.send(request).status_code == 200  # what the client's retry loop does: send it again
    first, second = sent
    assert (first["x-mc-req-id"], second["x-mc-req-id"]) == ("id-1", "id-2")
    assert first["x-mc-date"] != second["x-mc-date"]
    assert first["authorization"] != second["authorization"]
    for headers in sent:
        date, request_id = headers["x-mc-date"], headers["x-mc-req-id"]
        assert headers["authorization"] == f"MC {ACCESS_KEY}:{expected_signature(date, request_id, AUDIT_PATH)}"


def test_a_401_is_final_no_resend(httpx_mock: HTTPXMock, http: httpx.Client) -> None:
    body = {
        "meta": {"status": 401},
        "data": [],
        "fail": [{"errors": [{"code": "err_xdk_invalid_signature", "message": "0004 Invalid Signature"}]}],
    }
    httpx_mock.add_response(url=AUDIT_URL, status_code=401, json=body)
    response = http.post(AUDIT_PATH, json={})
    assert response.status_code == 401
    assert len(httpx_mock.get_requests()) == 1


def test_the_client_protocol_attributes() -> None:
    auth = make_auth()
    assert auth.token_refreshes == 0
    assert auth.token_url is None
    assert auth.app_id == APP_ID
    assert auth.requires_request_body is False


def test_secrets_never_show_in_repr_str_or_logs(
    httpx_mock: HTTPXMock, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(url=AUDIT_URL, json=OK)
    with caplog.at_level(logging.DEBUG):
        http.post(AUDIT_PATH, json={})
    auth = make_auth()
    shown = f"{auth!r} {auth} {vars(auth)!r} {caplog.text}"
    for secret in (APP_KEY, SECRET_KEY, SECRET_KEY_BYTES.decode()):
        assert secret not in shown
    # Built auths register both secrets: a line that quotes one prints the mask instead.
    assert (
        safe_line(f"app_key is {APP_KEY} and secret_key is {SECRET_KEY}")
        == f"app_key is {MASK} and secret_key is {MASK}"
    )
    header = auth.headers_for(AUDIT_PATH)["Authorization"]
    assert redact_text(f"Authorization: {header}") == f"Authorization: MC {MASK}"


def test_a_base64_secret_key_decodes_to_the_hmac_key() -> None:
    assert decode_secret_key(Secret(SECRET_KEY)) == SECRET_KEY_BYTES
    assert decode_secret_key(Secret("c2VjcmV0")) == b"secret"


@pytest.mark.parametrize("bad", ["not base64!", "c2VjcmV", "c2Vj cmV0", "c2VjcmV0\n", "====", "c2VjcmV0-_"])
def test_a_secret_key_that_is_not_base64_is_a_config_error_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_auth(secret_key=Secret(bad))
    assert caught.value.parameter == "secret_key"
    assert "secret_key" in str(caught.value) and "base64" in str(caught.value)
    assert bad.strip() not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("app_id", "app id"), ("app_id", "id\r\nX-Evil: 1"), ("app_id", ""), ("access_key", "kéy"), ("access_key", "")],
)
def test_ids_a_header_cannot_carry_are_config_errors(field: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_auth(**{field: value})  # type: ignore[arg-type]
    assert caught.value.parameter == field


@pytest.mark.parametrize("field", ["app_key", "secret_key"])
def test_missing_or_withheld_secrets_are_config_errors_naming_them(field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_auth(**{field: NOT_SET})  # type: ignore[arg-type]
    assert caught.value.parameter == field and "api_keys_v1" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        make_auth(**{field: WITHHELD})  # type: ignore[arg-type]
    assert caught.value.parameter == field and "with_secret" in str(caught.value)


def test_a_plain_string_secret_is_refused() -> None:
    with pytest.raises(TypeError):
        ApiKeysV1Auth(APP_ID, APP_KEY, ACCESS_KEY, Secret(SECRET_KEY))  # type: ignore[arg-type]


# -- end to end, against the simulator as an API 1.0 host on 127.0.0.1 ------------------------------------------

SIM_KEYS = ApiV1Keys(app_id=APP_ID, app_key=APP_KEY, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
SIM_SPEC = TenantSpec(seed=3, users=30, groups=4, audit_events_per_day=400, days=1, end=1_781_524_800)


def audit_pages(client: httpx.Client) -> tuple[int, int]:
    """Read one audit window to its end with plain httpx; (pages, records)."""
    window = {"startDateTime": "2026-06-14T00:00:00+0000", "endDateTime": "2026-06-15T12:00:00+0000"}
    pages = records = 0
    token: str | None = None
    while True:
        pagination: dict[str, object] = {"pageSize": 100, **({"pageToken": token} if token else {})}
        response = client.post(AUDIT_PATH, json={"meta": {"pagination": pagination}, "data": [window]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["fail"] == []
        pages, records = pages + 1, records + len(body["data"])
        token = body["meta"]["pagination"].get("next")
        if not token:
            return pages, records


@pytest.mark.httpx_mock(should_mock=lambda request: request.url.host != "127.0.0.1")
def test_end_to_end_a_raw_httpx_client_reads_the_simulator_with_api_v1_keys() -> None:
    with Simulator(SIM_SPEC, clock=lambda: 1_781_524_800.0, api_keys_v1=SIM_KEYS) as sim:
        auth = ApiKeysV1Auth(APP_ID, Secret(APP_KEY), ACCESS_KEY, Secret(SECRET_KEY))
        with httpx.Client(base_url=sim.base_url, auth=auth, timeout=10) as client:
            pages, records = audit_pages(client)
            domains = client.post("/api/domain/get-internal-domain", json={"data": []})
        assert pages > 1 and records > 100
        assert domains.status_code == 200 and domains.json()["data"]
        counters = sim.counters
        assert counters.unauthorized == 0 and counters.repeated_request_ids == 0
        assert counters.api_requests == pages + 1 and counters.token_requests == 0


@pytest.mark.httpx_mock(should_mock=lambda request: request.url.host != "127.0.0.1")
def test_end_to_end_from_parameters_to_a_signed_request() -> None:
    with Simulator(SIM_SPEC, clock=lambda: 1_781_524_800.0, api_keys_v1=SIM_KEYS) as sim:
        config = Config.from_parameters({**V1_PARAMETERS, "api_base_url": sim.base_url}, environ={})
        with httpx.Client(base_url=config.api_base_url, auth=build_auth(config), timeout=10) as client:
            assert audit_pages(client)[1] > 100


@pytest.mark.httpx_mock(should_mock=lambda request: request.url.host != "127.0.0.1")
def test_end_to_end_wrong_keys_get_the_api_1_0_error_once() -> None:
    wrong = base64.b64encode(b"not the simulator's secret key").decode()
    with Simulator(SIM_SPEC, clock=lambda: 1_781_524_800.0, api_keys_v1=SIM_KEYS) as sim:
        auth = ApiKeysV1Auth(APP_ID, Secret(APP_KEY), ACCESS_KEY, Secret(wrong))
        with httpx.Client(base_url=sim.base_url, auth=auth, timeout=10) as client:
            response = client.post(AUDIT_PATH, json={"data": []})
        assert response.status_code == 401
        assert response.json() == {
            "meta": {"status": 401},
            "data": [],
            "fail": [
                {
                    "errors": [
                        {"code": "err_xdk_invalid_signature", "message": "0004 Invalid Signature", "retryable": False}
                    ]
                }
            ],
        }
        assert sim.counters.api_requests == 1  # a 401 is final: not re-sent
