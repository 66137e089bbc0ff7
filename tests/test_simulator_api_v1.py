"""Tests of the simulator as an API 1.0 host: it accepts requests signed with its keys and refuses the rest in the
API 1.0 error shape. Requests are signed by hand here (hmac, hashlib, base64), not with the connector's auth."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.simulator import ApiV1Keys, Simulator, TenantSpec, serve
from connector.simulator.api_v1 import verify_request

NOW = calendar.timegm((2026, 6, 15, 12, 0, 0, 0, 0, 0))
AUDIT = "/api/audit/get-audit-events"
KEYS = ApiV1Keys(
    app_id="app-id-1",
    app_key="application-key-0123456789",
    access_key="access-key-1",
    secret_key=base64.b64encode(b"the-simulators-secret-key-bytes").decode(),
)
INVALID_SIGNATURE = {
    "meta": {"status": 401},
    "data": [],
    "fail": [
        {"errors": [{"code": "err_xdk_invalid_signature", "message": "0004 Invalid Signature", "retryable": False}]}
    ],
}


def mc_date(epoch: float) -> str:
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    t = time.gmtime(epoch)
    return f"{days[t.tm_wday]}, {t.tm_mday:02d} {months[t.tm_mon - 1]} {t.tm_year} {time.strftime('%H:%M:%S', t)} UTC"


def signed_headers(path: str = AUDIT, *, keys: ApiV1Keys = KEYS, **override: str) -> dict[str, str]:
    """The documented headers, signed by hand with ``keys``; ``override`` replaces (or, with "", drops) some."""
    date = override.pop("date", mc_date(NOW))
    request_id = override.pop("request_id", str(uuid.uuid4()))
    data = f"{date}:{request_id}:{path}:{keys.app_key}".encode()
    secret = base64.b64decode(keys.secret_key)
    signature = base64.b64encode(hmac.new(secret, data, hashlib.sha1).digest()).decode()
    headers = {
        "x-mc-date": date,
        "x-mc-req-id": request_id,
        "x-mc-app-id": keys.app_id,
        "Authorization": f"MC {keys.access_key}:{signature}",
    }
    headers.update(override)
    return {name: value for name, value in headers.items() if value != ""}


def audit_body(size: int = 50) -> dict[str, Any]:
    window = {"startDateTime": "2026-06-15T00:00:00+0000", "endDateTime": "2026-06-15T12:00:00+0000"}
    return {"meta": {"pagination": {"pageSize": size}}, "data": [window]}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    spec = TenantSpec(seed=7, users=20, groups=4, audit_events_per_day=500, days=1, end=NOW)
    with Simulator(spec, clock=lambda: float(NOW), api_keys_v1=KEYS) as running:
        yield running


@pytest.fixture
def http(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        yield client


def test_a_correctly_signed_request_is_served(sim: Simulator, http: httpx.Client) -> None:
    response = http.post(AUDIT, json=audit_body(), headers=signed_headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fail"] == [] and len(body["data"]) == 50
    assert "X-RateLimit-Remaining" in response.headers
    domains = http.post(
        "/api/domain/get-internal-domain", json={"data": []}, headers=signed_headers("/api/domain/get-internal-domain")
    )
    assert domains.status_code == 200 and domains.json()["data"]
    assert sim.counters.unauthorized == 0


@pytest.mark.parametrize(
    "override",
    [
        {"Authorization": f"MC {KEYS.access_key}:AAAAAAAAAAAAAAAAAAAAAAAAAAA="},  # a signature that does not match
        {"Authorization": "MC another-access-key:c2ln"},
        {"Authorization": "Bearer a-token-from-api-2.0"},
        {"Authorization": ""},
        {"x-mc-date": ""},
        {"x-mc-req-id": ""},
        {"x-mc-app-id": ""},
        {"date": "2026-06-15T12:00:00Z"},  # signed, but not the documented date format
    ],
    ids=[
        "bad-signature",
        "unknown-access-key",
        "bearer",
        "no-authorization",
        "no-date",
        "no-id",
        "no-app-id",
        "iso-date",
    ],
)
def test_a_request_not_correctly_signed_gets_the_api_1_0_invalid_signature_answer(
    sim: Simulator, http: httpx.Client, override: dict[str, str]
) -> None:
    response = http.post(AUDIT, json=audit_body(), headers=signed_headers(**override))
    assert response.status_code == 401
    assert response.json() == INVALID_SIGNATURE
    assert sim.counters.unauthorized == 1


@pytest.mark.parametrize(
    "keys",
    [
        ApiV1Keys(KEYS.app_id, "another-application-key", KEYS.access_key, KEYS.secret_key),
        ApiV1Keys(KEYS.app_id, KEYS.app_key, KEYS.access_key, base64.b64encode(b"another secret").decode()),
    ],
    ids=["wrong-app-key", "wrong-secret-key"],
)
def test_a_request_signed_with_other_keys_is_refused(http: httpx.Client, keys: ApiV1Keys) -> None:
    response = http.post(AUDIT, json=audit_body(), headers=signed_headers(keys=keys))
    assert (response.status_code, response.json()) == (401, INVALID_SIGNATURE)


def test_the_signature_binds_the_path(http: httpx.Client) -> None:
    headers = signed_headers("/api/domain/get-internal-domain")
    response = http.post(AUDIT, json=audit_body(), headers=headers)
    assert (response.status_code, response.json()) == (401, INVALID_SIGNATURE)


def test_a_wrong_app_id_is_err_developer_key(http: httpx.Client) -> None:
    response = http.post(AUDIT, json=audit_body(), headers=signed_headers(**{"x-mc-app-id": "some-other-app"}))
    assert response.status_code == 401
    assert response.json()["fail"] == [
        {"errors": [{"code": "err_developer_key", "message": "App ID is invalid", "retryable": False}]}
    ]


def test_an_expired_binding_answers_418(sim: Simulator, http: httpx.Client) -> None:
    sim.expire_binding()
    response = http.post(AUDIT, json=audit_body(), headers=signed_headers())
    assert response.status_code == 418
    body = response.json()
    assert body["meta"] == {"status": 418} and body["fail"][0]["errors"][0]["code"] == "err_xdk_binding_expired"


def test_an_api_1_0_host_has_no_token_endpoint(sim: Simulator, http: httpx.Client) -> None:
    response = http.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "x"})
    assert response.status_code == 404
    assert sim.counters.token_requests == 0


def test_repeated_request_ids_are_counted(sim: Simulator, http: httpx.Client) -> None:
    headers = signed_headers(request_id="8578FCFC-A305-4D9A-99CB-F4D5ECEFE297")
    for _ in range(2):
        assert http.post(AUDIT, json=audit_body(), headers=headers).status_code == 200
    assert http.post(AUDIT, json=audit_body(), headers=signed_headers()).status_code == 200
    assert sim.counters.repeated_request_ids == 1


def test_gmt_is_read_like_utc_and_the_date_is_not_checked_against_the_clock(http: httpx.Client) -> None:
    # Mimecast documents no tolerance, so the simulator enforces none; one of its pages writes GMT.
    old = mc_date(NOW - 86400 * 365).replace(" UTC", " GMT")
    assert http.post(AUDIT, json=audit_body(), headers=signed_headers(date=old)).status_code == 200


def test_without_keys_a_signed_request_gets_the_oauth2_gateway_answer() -> None:
    # The rest of the OAuth 2.0 behaviour without keys is what tests/test_simulator.py checks.
    with Simulator(TenantSpec(seed=1, users=5, groups=1, audit_events_per_day=10, days=1)) as sim:
        signed = httpx.post(sim.base_url + AUDIT, json=audit_body(), headers=signed_headers())
        assert signed.status_code == 401
        assert signed.json() == {"fail": [{"code": "unauthorized", "message": "Bearer token required"}]}


def test_verify_request_directly() -> None:
    assert verify_request(KEYS, AUDIT, {k.lower(): v for k, v in signed_headers().items()}) is None
    refusal = verify_request(KEYS, AUDIT, {})
    assert refusal is not None and (refusal.status, refusal.code) == (401, "err_xdk_invalid_signature")


def test_keys_need_a_base64_secret_key() -> None:
    with pytest.raises(ValueError, match="base64"):
        ApiV1Keys(secret_key="not base64!")
    assert base64.b64decode(ApiV1Keys().secret_key)


def test_serve_prints_the_api_1_0_keys(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()  # serve starts, prints, sees the event and stops
    assert serve(0, size_preset="tiny", stop_event=stop, api_keys_v1=KEYS) == 0
    out = capsys.readouterr().out
    assert f"app_id={KEYS.app_id}" in out and f"secret_key={KEYS.secret_key}" in out
    assert "client_secret" not in out


def test_cli_refuses_a_secret_key_that_is_not_base64(capsys: pytest.CaptureFixture[str]) -> None:
    from connector.simulator.cli import main

    assert main(["--auth", "api_keys_v1", "--secret-key", "not base64!"]) == 2
    err = capsys.readouterr().err
    assert "--secret-key" in err and "Traceback" not in err
