"""The host plugin contract, ``MimecastConnector``: configuration errors, check, checkpoints, summary, secrets."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers_http import (
    AUDIT_URL,
    BASE,
    CLIENT_KEY,
    DOMAINS_URL,
    FIND_GROUPS_URL,
    GROUP_MEMBERS_URL,
    SECRET_VALUE,
    TOKEN_URL,
    USERS_URL,
    fixture,
    token_json,
)
from pytest_httpx import HTTPXMock

from connector.api.ratelimit import RetryPolicy
from connector.checkpoint import AuditState, Checkpoint
from connector.collector import RunSummary
from connector.config import Config
from connector.errors import CheckpointError, ConfigError, PermissionDeniedError
from connector.host import MimecastConnector

T0 = int(datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC).timestamp() * 1000) + 250
MINUTE = 60_000
PARAMS: dict[str, Any] = {"api_base_url": BASE, "client_key": CLIENT_KEY, "client_secret": SECRET_VALUE}


def connector(**overrides: Any) -> MimecastConnector:
    return MimecastConnector(
        {**PARAMS, **overrides},
        environ={},
        now_ms=lambda: T0,
        sleep=lambda _: None,
        retry=RetryPolicy(max_attempts=2, base_backoff=1.0, max_backoff=1.0, jitter=0.0),
    )


@pytest.fixture
def audit_only() -> Iterator[MimecastConnector]:
    with connector(event_types=["audit"], initial_lookback_hours=1) as c:
        yield c


def audit_body(start: str, end: str, size: int = 500) -> dict[str, Any]:
    return {"meta": {"pagination": {"pageSize": size}}, "data": [{"startDateTime": start, "endDateTime": end}]}


# -- configuration -------------------------------------------------------------------------------------------


def test_missing_client_key_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        MimecastConnector({"api_base_url": BASE, "client_secret": SECRET_VALUE}, environ={})
    assert caught.value.parameter == "client_key"
    assert "'client_key'" in str(caught.value) and "required" in str(caught.value)
    assert caught.value.exit_code == 2


def test_missing_secret_names_the_parameter_and_the_environment_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        MimecastConnector({"api_base_url": BASE, "client_key": CLIENT_KEY}, environ={})
    assert caught.value.parameter == "client_secret"
    assert "MIMECAST_CLIENT_SECRET" in str(caught.value)


def test_secret_may_come_from_the_environment() -> None:
    with MimecastConnector(
        {"api_base_url": BASE, "client_key": CLIENT_KEY}, environ={"MIMECAST_CLIENT_SECRET": SECRET_VALUE}
    ) as c:
        assert c.config.client_secret.reveal() == SECRET_VALUE


@pytest.mark.parametrize(
    ("override", "parameter", "fragment"),
    [
        ({"overlap_minutes": "thirty"}, "overlap_minutes", "an integer between 0 and 1440"),
        ({"overlap_minute": 30}, "overlap_minute", "did you mean 'overlap_minutes'"),
        ({"event_types": ["audit", "mail"]}, "event_types", "audit, user_management"),
        ({"api_base_url": "http://api.services.mimecast.com"}, "api_base_url", "https"),
        ({"concurrency": 0}, "concurrency", "between 1 and 16"),
    ],
)
def test_bad_parameters_are_named(override: dict[str, Any], parameter: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MimecastConnector({**PARAMS, **override}, environ={})
    assert caught.value.parameter == parameter
    assert fragment in str(caught.value)
    assert SECRET_VALUE not in str(caught.value)


def test_a_config_object_is_accepted_and_repr_hides_the_secret() -> None:
    config = Config.from_parameters(PARAMS, environ={})
    with MimecastConnector(config) as c:
        assert c.config is config
        assert SECRET_VALUE not in repr(c) and SECRET_VALUE not in repr(c.config)
        assert repr(c) == (
            "MimecastConnector(api_base_url='https://api.services.mimecast.com', "
            "event_types=('audit', 'user_management'))"
        )


# -- check -----------------------------------------------------------------------------------------------------


def test_check_sends_one_small_request_per_event_type_using_the_injected_clock(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_json=audit_body("2026-03-02T11:00:00+0000", "2026-03-02T12:00:00+0000", size=1),
        json=fixture("audit_page_last"),
    )
    httpx_mock.add_response(
        method="POST",
        url=FIND_GROUPS_URL,
        match_json={"meta": {"pagination": {"pageSize": 1}}, "data": [{"query": "", "source": "cloud"}]},
        json=fixture("find_groups_page"),
    )
    with connector() as c:
        c.check()


def test_check_names_the_missing_product(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        status_code=403,
        json={"fail": [{"code": "app_forbidden", "message": "Forbidden to perform the requested operation"}]},
    )
    with connector() as c, pytest.raises(PermissionDeniedError) as caught:
        c.check()
    assert caught.value.event_type == "audit"
    assert caught.value.product == "Audit Events"
    assert "'Audit Events'" in str(caught.value)
    assert caught.value.exit_code == 4


# -- collect -----------------------------------------------------------------------------------------------


def test_collect_accepts_the_host_checkpoint_as_a_dict(httpx_mock: HTTPXMock, audit_only: MimecastConnector) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_json=audit_body("2026-03-02T11:20:00+0000", "2026-03-02T12:00:00+0000"),
        json={"meta": {"status": 200, "pagination": {}}, "data": [], "fail": []},
    )
    stored = Checkpoint.of(audit=AuditState(cursor_ms=T0 - 10 * MINUTE - 250)).to_dict()
    batches = list(audit_only.collect(json.loads(json.dumps(stored))))
    assert [(b.table, b.events) for b in batches] == [(None, [])]
    assert batches[0].checkpoint is not None and batches[0].checkpoint.streams["audit"].cursor_ms == T0


@pytest.mark.parametrize(
    ("stored", "fragment"),
    [
        ({"version": 3, "streams": {}, "updated_at_ms": None}, "version 3 is not supported"),
        ({"version": 1, "audit": {"cursor_ms": -1, "seen": {}}, "inventory": {}, "updated_at_ms": None}, "corrupt"),
        ({"cursor": 5}, "corrupt"),
    ],
)
def test_a_corrupt_host_checkpoint_stops_the_run_before_any_request(
    audit_only: MimecastConnector, stored: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(CheckpointError) as caught:
        audit_only.collect(stored)  # raised on the call, before any batch is pulled
    assert fragment in str(caught.value)
    assert "host checkpoint" in str(caught.value)


def test_summary_describes_the_last_collect(httpx_mock: HTTPXMock, audit_only: MimecastConnector) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_json=audit_body("2026-03-02T11:00:00+0000", "2026-03-02T12:00:00+0000"),
        json=fixture("audit_page_last"),
    )
    batches = audit_only.collect(None)
    summary = audit_only.summary  # already this run's summary, before the first batch is pulled
    assert list(batches)
    assert audit_only.summary is summary
    assert summary.ok and summary.exit_code == 0
    assert summary.sections["audit"].window == (T0 - 60 * MINUTE, T0)
    assert summary.http["requests"] == 1 and summary.http["token_refreshes"] == 1
    lines = summary.lines()
    assert lines[0] == "run summary:"
    assert "  audit window 2026-03-02T11:00:00Z -> 2026-03-02T12:00:00Z, 1 pages, 1 records read, " in lines[1]
    assert any(line.startswith("  http: 1 requests, 1 pages") for line in lines)


def test_summary_ok_is_false_when_an_event_type_failed() -> None:
    summary = RunSummary()
    assert summary.ok
    summary.failures["audit"] = "boom"
    assert not summary.ok


# -- secrets ----------------------------------------------------------------------------------------------


def test_secret_never_reaches_logs_checkpoint_or_events(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, status_code=500, json={"fail": []})
    httpx_mock.add_response(method="POST", url=AUDIT_URL, json=fixture("audit_page_last"))
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    httpx_mock.add_response(method="POST", url=GROUP_MEMBERS_URL, json=fixture("group_members_page"))
    httpx_mock.add_response(method="POST", url=GROUP_MEMBERS_URL, status_code=403, json={"fail": []})

    with caplog.at_level(logging.DEBUG), connector(initial_lookback_hours=1) as c:
        batches = list(c.collect(None))
        summary_text = "\n".join(c.summary.lines())

    assert caplog.records  # the run did log (retries, failures)
    encoded = urllib.parse.quote(SECRET_VALUE, safe="")
    logged = caplog.text + "".join(repr(vars(record)) for record in caplog.records)
    assert SECRET_VALUE not in logged and encoded not in logged
    assert "Bearer t1" not in logged
    written = json.dumps([b.events for b in batches]) + json.dumps(
        [b.checkpoint.to_dict() for b in batches if b.checkpoint is not None]
    )
    assert SECRET_VALUE not in written and encoded not in written
    assert SECRET_VALUE not in summary_text and encoded not in summary_text
    # The token request did carry it, so the check above is meaningful.
    token_request = httpx_mock.get_request(url=TOKEN_URL)
    assert token_request is not None and encoded.encode() in token_request.content


def test_domains_and_users_endpoints_are_used_for_inventory(httpx_mock: HTTPXMock) -> None:
    """A smoke test of the inventory wiring through the host with the shared fixtures."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    httpx_mock.add_response(method="POST", url=GROUP_MEMBERS_URL, json=fixture("group_members_page"))
    httpx_mock.add_response(method="POST", url=GROUP_MEMBERS_URL, json=fixture("group_members_page"))
    httpx_mock.add_response(method="POST", url=DOMAINS_URL, json=fixture("internal_domains"))
    httpx_mock.add_response(method="POST", url=USERS_URL, json=fixture("internal_users_page"))
    httpx_mock.add_response(method="POST", url=USERS_URL, json=fixture("internal_users_page"))
    with connector(event_types=["user_management"]) as c:
        batches = list(c.collect(None))
    assert [(b.table, len(b.events)) for b in batches] == [("user_inventory", 4), ("group_management", 0)]
    assert c.summary.sections["user_management"].groups == 2


def test_http_counters_in_the_summary_are_per_pass(httpx_mock: HTTPXMock, audit_only: MimecastConnector) -> None:
    """A host keeps one connector (one client) for many passes; each summary counts its own requests."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, status_code=503, json={"fail": []})
    httpx_mock.add_response(method="POST", url=AUDIT_URL, json=fixture("audit_page_last"))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, json=fixture("audit_page_last"))
    first = list(audit_only.collect(None))
    assert audit_only.summary.http == {
        "requests": 2,
        "pages": 1,
        "retries": 1,
        "rate_limited": 0,
        "slept_seconds": 1.0,
        "token_refreshes": 1,
    }
    committed = first[-1].checkpoint
    list(audit_only.collect(committed))
    assert audit_only.summary.http == {
        "requests": 1,
        "pages": 1,
        "retries": 0,
        "rate_limited": 0,
        "slept_seconds": 0.0,
        "token_refreshes": 0,
    }
    assert audit_only.client.stats.requests == 3  # the client's own counters stay cumulative


def test_http_counters_are_filled_even_when_the_host_stops_early(
    httpx_mock: HTTPXMock, audit_only: MimecastConnector
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        json={"meta": {"status": 200, "pagination": {"next": "p2"}}, "data": fixture("audit_page_1")["data"]},
    )
    # The host reads ahead: page 2 may or may not have been requested when the host stops.
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        json={"meta": {"status": 200, "pagination": {}}, "data": []},
        is_optional=True,
    )
    batches = audit_only.collect(None)
    next(iter(batches))
    batches.close()  # type: ignore[attr-defined]
    sent = len([r for r in httpx_mock.get_requests() if r.url == AUDIT_URL])
    assert sent in (1, 2)
    assert audit_only.summary.http["requests"] == sent
