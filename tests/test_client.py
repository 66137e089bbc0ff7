"""Tests for connector.api.client.MimecastClient against pytest-httpx (strict): envelopes, pagination, retries."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
from client_calls import (
    audit_event_pages,
    audit_event_windows,
    audit_events,
    group_members,
    groups,
    internal_domains,
    internal_users,
    preflight,
)
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
    FakeClock,
    ZeroRandom,
    fixture,
    token_json,
)
from pytest_httpx import HTTPXMock

from connector.api.auth import MimecastAuth
from connector.api.client import ClientStats, MimecastClient
from connector.api.ratelimit import RetryPolicy
from connector.config import Config
from connector.errors import (
    ApiError,
    AuthError,
    ConfigError,
    PaginationError,
    PermissionDeniedError,
    RateLimitExhaustedError,
)
from connector.secret import Secret

START = datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC)
END = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
WINDOW = {"startDateTime": "2026-03-02T00:00:00+0000", "endDateTime": "2026-03-02T10:00:00+0000"}
NOW = datetime(2026, 3, 2, 12, 30, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=4, base_backoff=1.0, max_backoff=5.0, max_rate_limit_wait=60.0, jitter=0.0)
PAGE1_TOKEN = "eNoVjEEKgCAQAL8SnQ1sXdWuQfQ"


def envelope(data: list[Any], page_size: int = 2, token: str | None = None) -> dict[str, Any]:
    pagination: dict[str, Any] = {"pageSize": page_size}
    if token is not None:
        pagination["pageToken"] = token
    return {"meta": {"pagination": pagination}, "data": data}


def page(data: list[Any], next_token: str | None = None, status: int = 200) -> dict[str, Any]:
    pagination: dict[str, Any] = {"pageSize": 2}
    if next_token is not None:
        pagination["next"] = next_token
    return {"meta": {"status": status, "pagination": pagination}, "data": data, "fail": []}


def record(n: int) -> dict[str, Any]:
    return {"id": f"id-{n}", "auditType": "User Logged On", "eventTime": "2026-03-02T09:14:05+0000"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(clock: FakeClock) -> MimecastAuth:
    return MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(SECRET_VALUE), clock=clock)


@pytest.fixture
def client(auth: MimecastAuth, clock: FakeClock) -> Iterator[MimecastClient]:
    with MimecastClient(
        BASE,
        auth,
        page_size=2,
        retry=POLICY,
        sleep=clock.sleep,
        rng=ZeroRandom(),
        clock=clock,
    ) as c:
        yield c


@pytest.fixture
def token(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))


# -- audit pagination and envelopes --------------------------------------------------------------------------


@pytest.mark.usefixtures("token")
def test_multi_page_audit_pull_sends_exact_bodies(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    query = {**WINDOW, "categories": ["authentication_logs", "account_logs"]}
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_headers={"Authorization": "Bearer t1", "Content-Type": "application/json"},
        match_json=envelope([query]),
        json=fixture("audit_page_1"),
    )
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_json=envelope([query], token=PAGE1_TOKEN),
        json=fixture("audit_page_last"),
    )
    records = list(audit_events(client, START, END, categories=["authentication_logs", "account_logs"]))
    expected = fixture("audit_page_1")["data"] + fixture("audit_page_last")["data"]
    assert records == expected
    assert client.stats.as_dict() == {
        "requests": 2,
        "pages": 2,
        "retries": 0,
        "rate_limited": 0,
        "slept_seconds": 0.0,
        "token_refreshes": 1,
    }


@pytest.mark.usefixtures("token")
def test_window_is_sent_in_utc_with_colonless_offset(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    cest = timezone(timedelta(hours=2))
    httpx_mock.add_response(
        url=AUDIT_URL,
        match_json=envelope(
            [{"startDateTime": "2026-03-01T22:00:00+0000", "endDateTime": "2026-03-02T08:30:15+0000"}],
            page_size=7,
        ),
        json=page([]),
    )
    pages = list(
        audit_event_pages(
            client,
            datetime(2026, 3, 2, 0, 0, tzinfo=cest),
            datetime(2026, 3, 2, 10, 30, 15, tzinfo=cest),
            page_size=7,
        )
    )
    assert pages == []


def test_naive_or_inverted_window_is_refused_before_any_request(client: MimecastClient) -> None:
    with pytest.raises(ValueError):
        audit_event_pages(client, datetime(2026, 3, 2), datetime(2026, 3, 3))
    with pytest.raises(ValueError):
        audit_event_pages(client, END, START)


@pytest.mark.usefixtures("token")
def test_pages_are_streamed_not_buffered(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    order: list[str] = []

    def second_page(request: httpx.Request) -> httpx.Response:
        order.append("request page 2")
        return httpx.Response(200, json=page([record(3)]))

    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1), record(2)], "p2"))
    httpx_mock.add_callback(second_page, url=AUDIT_URL, match_json=envelope([WINDOW], token="p2"))
    for item in audit_events(client, START, END):
        order.append(f"got {item['id']}")
    assert order == ["got id-1", "got id-2", "request page 2", "got id-3"]


@pytest.mark.usefixtures("token")
def test_read_ahead_requests_two_pages_ahead_and_no_further(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    requested: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        token = json.loads(request.content)["meta"]["pagination"].get("pageToken")
        requested.append(token or "p1")
        n = 1 if token is None else int(token[1:])
        return httpx.Response(200, json=page([record(n)], f"p{n + 1}" if n < 4 else None))

    httpx_mock.add_callback(answer, url=AUDIT_URL, is_reusable=True)
    client.read_ahead = True
    pages = audit_event_pages(client, START, END)
    first = next(pages)
    deadline = time.monotonic() + 2
    while len(requested) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # give a runaway prefetch the chance to show itself
    assert first == [record(1)]
    # while page 1 is handed out, page 2 waits in the queue and page 3 is in hand; page 4 is not requested
    assert requested == ["p1", "p2", "p3"]
    assert [r["id"] for p in pages for r in p] == ["id-2", "id-3", "id-4"]
    assert requested == ["p1", "p2", "p3", "p4"]


@pytest.mark.usefixtures("token")
def test_read_ahead_uses_one_worker_per_listing_and_none_for_a_single_page(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    threads: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread().name)
        body = json.loads(request.content)
        if body["data"][0].get("id") == "single":
            return httpx.Response(200, json=page([{"groupMembers": [{"emailAddress": "a@example.org"}]}]))
        token = body["meta"]["pagination"].get("pageToken")
        n = 1 if token is None else int(token[1:])
        return httpx.Response(200, json=page([{"groupMembers": [{"n": n}]}], f"p{n + 1}" if n < 4 else None))

    httpx_mock.add_callback(answer, url=GROUP_MEMBERS_URL, is_reusable=True)
    client.read_ahead = True
    caller = threading.current_thread().name
    assert len(list(group_members(client, "single"))) == 1
    assert threads == [caller]  # one page: read on the caller's thread, no worker started
    threads.clear()
    assert [m["n"] for m in group_members(client, "many")] == [1, 2, 3, 4]
    assert threads[0] == caller and threads[1:] == ["read-ahead"] * 3


@pytest.mark.usefixtures("token")
def test_read_ahead_leaves_no_request_running_when_the_caller_stops(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    started: list[str] = []
    finished: list[str] = []

    def slow_second_page(request: httpx.Request) -> httpx.Response:
        started.append("p2")
        time.sleep(0.1)
        finished.append("p2")
        return httpx.Response(200, json=page([record(2)], "p3"))

    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "p2"))
    # The prefetch may be cancelled before it is sent (then page 2 is never requested), or be in flight.
    httpx_mock.add_callback(
        slow_second_page, url=AUDIT_URL, match_json=envelope([WINDOW], token="p2"), is_optional=True
    )
    client.read_ahead = True
    pages = audit_event_pages(client, START, END)
    assert next(pages) == [record(1)]
    pages.close()  # e.g. the host crashed or stopped after one batch
    assert started == finished  # whatever was sent had completed before close() returned
    time.sleep(0.15)
    assert started == finished and len(started) <= 1  # and nothing was sent afterwards


@pytest.mark.usefixtures("token")
def test_closing_a_read_ahead_listing_cuts_a_long_rate_limit_wait_short(
    httpx_mock: HTTPXMock, auth: MimecastAuth
) -> None:
    """The reader may be waiting out a 429 (up to a minute) when the caller stops: close() must not wait for it,
    and nothing is sent afterwards."""
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "p2"))
    second_page_answered = threading.Event()

    def rate_limited_second_page(request: httpx.Request) -> httpx.Response:
        second_page_answered.set()
        return rate_limited(reset="60000")

    httpx_mock.add_callback(rate_limited_second_page, url=AUDIT_URL, match_json=envelope([WINDOW], token="p2"))
    policy = RetryPolicy(max_attempts=4, base_backoff=1.0, max_backoff=5.0, max_rate_limit_wait=60.0, jitter=0.0)
    with MimecastClient(BASE, auth, page_size=2, retry=policy, rng=ZeroRandom(), read_ahead=True) as client:
        pages = audit_event_pages(client, START, END)
        assert next(pages) == [record(1)]
        assert second_page_answered.wait(2)  # the reader is now in its 60 s wait
        started = time.monotonic()
        pages.close()
        assert time.monotonic() - started < 1.0
        time.sleep(0.2)
        assert len(httpx_mock.get_requests(match_json=envelope([WINDOW], token="p2"))) == 1
        assert client.stats.slept_seconds < 1.0  # what it really waited, not the 60 s it was told


@pytest.mark.usefixtures("token")
def test_read_ahead_raises_a_failing_page_only_after_the_pages_before_it(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "p2"))
    failed = {"meta": {"status": 200}, "data": [], "fail": [{"errors": [{"code": "err_x", "retryable": False}]}]}
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW], token="p2"), json=failed)
    client.read_ahead = True
    got: list[str] = []
    with pytest.raises(ApiError, match="err_x"):
        for item in audit_events(client, START, END):
            got.append(item["id"])
    assert got == ["id-1"]


# -- several windows as one stream ---------------------------------------------------------------------------

MIDDLE = datetime(2026, 3, 2, 5, 0, 0, tzinfo=UTC)
FIRST_HALF = {"startDateTime": "2026-03-02T00:00:00+0000", "endDateTime": "2026-03-02T05:00:00+0000"}
SECOND_HALF = {"startDateTime": "2026-03-02T05:00:00+0000", "endDateTime": "2026-03-02T10:00:00+0000"}
EMPTY_WINDOW = {"startDateTime": "2026-03-02T10:00:00+0000", "endDateTime": "2026-03-02T10:00:00+0000"}


def _three_windows(httpx_mock: HTTPXMock, answer: Any = None) -> None:
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([FIRST_HALF]), json=page([record(1)], "a2"))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([FIRST_HALF], token="a2"), json=page([record(2)]))
    if answer is None:
        httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([SECOND_HALF]), json=page([record(3)]))
    else:
        httpx_mock.add_callback(answer, url=AUDIT_URL, match_json=envelope([SECOND_HALF]))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([EMPTY_WINDOW]), json=page([]))


@pytest.mark.parametrize("read_ahead", [False, True])
@pytest.mark.usefixtures("token")
def test_windows_are_read_in_order_and_each_ends_with_a_last_page(
    httpx_mock: HTTPXMock, client: MimecastClient, read_ahead: bool
) -> None:
    _three_windows(httpx_mock)
    client.read_ahead = read_ahead
    pages = audit_event_windows(client, [(START, MIDDLE), (MIDDLE, END), (END, END)])
    got = [(p.window, [r["id"] for r in p.records], p.last) for p in pages]
    assert got == [(0, ["id-1"], False), (0, ["id-2"], True), (1, ["id-3"], True), (2, [], True)]
    assert client.stats.pages == 4


@pytest.mark.usefixtures("token")
def test_windows_on_demand_request_the_next_window_only_when_asked(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    _three_windows(httpx_mock)
    pages = audit_event_windows(client, [(START, MIDDLE), (MIDDLE, END), (END, END)])
    assert [next(pages).window, next(pages).window] == [0, 0]
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 2  # the second window is not requested yet
    assert [p.window for p in pages] == [1, 2]


@pytest.mark.usefixtures("token")
def test_read_ahead_goes_on_to_the_next_window_while_the_caller_holds_the_last_page(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    second_window_requested = threading.Event()

    def second_window(request: httpx.Request) -> httpx.Response:
        second_window_requested.set()
        return httpx.Response(200, json=page([record(3)]))

    _three_windows(httpx_mock, second_window)
    client.read_ahead = True
    pages = audit_event_windows(client, [(START, MIDDLE), (MIDDLE, END), (END, END)])
    assert next(pages).window == 0
    last_of_first = next(pages)
    assert (last_of_first.window, last_of_first.last) == (0, True)
    # the caller has not asked for more: the reader has gone on to window 1 by itself
    assert second_window_requested.wait(2)
    assert [(p.window, p.last) for p in pages] == [(1, True), (2, True)]


@pytest.mark.parametrize("read_ahead", [False, True])
@pytest.mark.usefixtures("token")
def test_a_failing_window_raises_after_the_pages_before_it_and_is_not_marked_read(
    httpx_mock: HTTPXMock, client: MimecastClient, read_ahead: bool
) -> None:
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([FIRST_HALF]), json=page([record(1)]))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([SECOND_HALF]), json=page([record(2)], "same"))
    httpx_mock.add_response(
        url=AUDIT_URL, match_json=envelope([SECOND_HALF], token="same"), json=page([record(3)], "same")
    )
    client.read_ahead = read_ahead
    got: list[tuple[int, bool]] = []
    with pytest.raises(PaginationError, match="not advancing"):
        for p in audit_event_windows(client, [(START, MIDDLE), (MIDDLE, END), (END, END)]):
            got.append((p.window, p.last))
    assert got == [(0, True), (1, False), (1, False)]  # window 1 never ends: its cursor must not move
    assert not httpx_mock.get_requests(match_json=envelope([EMPTY_WINDOW]))


def test_an_inverted_window_is_refused_before_any_request(client: MimecastClient) -> None:
    with pytest.raises(ValueError, match="must not be after"):
        audit_event_windows(client, [(START, MIDDLE), (END, MIDDLE)])


@pytest.mark.usefixtures("token")
def test_empty_data_ends_even_with_a_next_token(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "p2"))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW], token="p2"), json=page([], "p3"))
    assert [r["id"] for r in audit_events(client, START, END)] == ["id-1"]


@pytest.mark.usefixtures("token")
def test_empty_next_token_ends(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=AUDIT_URL, json=page([record(1)], ""))
    assert len(list(audit_events(client, START, END))) == 1


@pytest.mark.usefixtures("token")
def test_repeated_page_token_is_a_pagination_error(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "same"))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW], token="same"), json=page([record(2)], "same"))
    seen: list[str] = []
    with pytest.raises(PaginationError, match="not advancing") as info:
        for item in audit_events(client, START, END):
            seen.append(item["id"])
    assert seen == ["id-1", "id-2"]
    assert info.value.endpoint == "/api/audit/get-audit-events"
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 2


@pytest.mark.usefixtures("token")
def test_a_token_cycle_is_a_pagination_error_at_its_first_repeat(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    """A -> B -> A: before, only the token just used was compared, so the cycle ran to max_pages (10,000
    requests every run)."""
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "A"))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW], token="A"), json=page([record(2)], "B"))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW], token="B"), json=page([record(3)], "A"))
    seen: list[str] = []
    with pytest.raises(PaginationError, match="already given") as info:
        for item in audit_events(client, START, END):
            seen.append(item["id"])
    assert seen == ["id-1", "id-2", "id-3"]  # what arrived is handed out before the error
    assert info.value.endpoint == "/api/audit/get-audit-events"
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 3


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize("value", [False, True, 0.5, {"t": 1}, ["A"]])
def test_a_next_token_that_is_not_text_or_a_number_is_an_api_error(
    httpx_mock: HTTPXMock, client: MimecastClient, value: object
) -> None:
    """Before, ``false`` was sent back as the token 'False' and ``{}`` as "{}"."""
    body = page([record(1)], "x")
    body["meta"]["pagination"]["next"] = value
    httpx_mock.add_response(url=AUDIT_URL, json=body)
    with pytest.raises(ApiError, match="neither text nor a number") as info:
        list(audit_events(client, START, END))
    assert info.value.endpoint == "/api/audit/get-audit-events"
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 1


@pytest.mark.usefixtures("token")
def test_an_integer_next_token_is_sent_back_as_its_digits(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    body = page([record(1)], "x")
    body["meta"]["pagination"]["next"] = 2
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=body)
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW], token="2"), json=page([record(2)], None))
    assert [r["id"] for r in audit_events(client, START, END)] == ["id-1", "id-2"]


@pytest.mark.usefixtures("token")
def test_page_cap_is_a_pagination_error(httpx_mock: HTTPXMock, auth: MimecastAuth, clock: FakeClock) -> None:
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "p2"))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW], token="p2"), json=page([record(2)], "p3"))
    with MimecastClient(BASE, auth, page_size=2, max_pages=2, sleep=clock.sleep, clock=clock) as capped:
        pages = audit_event_pages(capped, START, END)
        assert len(next(pages)) == 1
        assert len(next(pages)) == 1
        with pytest.raises(PaginationError) as info:
            next(pages)
    assert "cap of 2 pages" in str(info.value)
    assert "/api/audit/get-audit-events" in str(info.value)


# -- fail arrays and meta.status -----------------------------------------------------------------------------


@pytest.mark.usefixtures("token")
def test_retryable_fail_is_retried_with_backoff(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock
) -> None:
    failing = fixture("fail_with_200")
    failing["fail"][0]["errors"][0].update(code="err_temporary", retryable=True)
    httpx_mock.add_response(url=AUDIT_URL, json=failing)
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=fixture("audit_page_last"))
    assert len(list(audit_events(client, START, END))) == 1
    assert clock.sleeps == [1.0]
    assert client.stats.retries == 1
    assert client.stats.requests == 2


@pytest.mark.usefixtures("token")
def test_non_retryable_fail_is_an_error_without_retry(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock
) -> None:
    httpx_mock.add_response(url=AUDIT_URL, json=fixture("fail_with_200"))
    with pytest.raises(ApiError) as info:
        list(audit_events(client, START, END))
    assert info.value.code == "err_validation_date_format"
    assert info.value.retryable is False
    assert "Invalid date format" in str(info.value)
    assert clock.sleeps == []


@pytest.mark.usefixtures("token")
def test_gateway_style_fail_entry_is_read(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(
        url=AUDIT_URL,
        json={"meta": {"status": 200}, "data": [], "fail": [{"code": "x_bad", "message": "Bad"}]},
    )
    with pytest.raises(ApiError, match="x_bad: Bad"):
        list(audit_events(client, START, END))


@pytest.mark.usefixtures("token")
def test_meta_status_other_than_200_is_an_error(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=AUDIT_URL, json=page([record(1)], status=400))
    with pytest.raises(ApiError, match=r"meta\.status 400") as info:
        list(audit_events(client, START, END))
    assert info.value.retryable is False


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(200, json=["not", "an", "envelope"]),
        httpx.Response(200, json={"meta": {"status": 200}, "data": {"not": "a list"}}),
    ],
)
def test_malformed_answers_are_api_errors(
    httpx_mock: HTTPXMock, client: MimecastClient, response: httpx.Response
) -> None:
    httpx_mock.add_response(url=AUDIT_URL, content=response.content, headers=response.headers)
    with pytest.raises(ApiError):
        list(audit_events(client, START, END))


@pytest.mark.usefixtures("token")
def test_a_malformed_record_is_passed_on_with_the_rest_of_the_page(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    # The mapper reports it with its position; raising would fail the same window on every run.
    good = {"id": "a1", "auditType": "User Logged On"}
    httpx_mock.add_response(url=AUDIT_URL, json={"meta": {"status": 200}, "data": ["not an object", good]})
    assert list(audit_events(client, START, END)) == ["not an object", good]


# -- rate limits ---------------------------------------------------------------------------------------------


def rate_limited(reset: str = "2500", remaining: str = "0") -> httpx.Response:
    sample = fixture("rate_limited_429")
    headers = {**sample["headers"], "X-RateLimit-Reset": reset, "X-RateLimit-Remaining": remaining}
    return httpx.Response(sample["status"], headers=headers, json=sample["body"])


@pytest.mark.usefixtures("token")
def test_429_waits_the_reset_duration_then_resends(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock
) -> None:
    httpx_mock.add_callback(lambda request: rate_limited("2500"), url=AUDIT_URL, match_json=envelope([WINDOW]))
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=fixture("audit_page_last"))
    assert len(list(audit_events(client, START, END))) == 1
    assert clock.sleeps == [2.5]
    assert client.stats.rate_limited == 1
    assert client.stats.retries == 1
    assert client.stats.slept_seconds == 2.5


@pytest.mark.usefixtures("token")
def test_429_jitter_is_bounded(httpx_mock: HTTPXMock, auth: MimecastAuth, clock: FakeClock) -> None:
    import random

    httpx_mock.add_callback(lambda request: rate_limited("2500"), url=AUDIT_URL)
    httpx_mock.add_response(url=AUDIT_URL, json=fixture("audit_page_last"))
    policy = RetryPolicy(jitter=0.2)
    with MimecastClient(BASE, auth, retry=policy, sleep=clock.sleep, clock=clock, rng=random.Random(7)) as c:
        list(audit_events(c, START, END))
    assert len(clock.sleeps) == 1
    assert 2.5 <= clock.sleeps[0] <= 3.0


@pytest.mark.usefixtures("token")
def test_epoch_looking_reset_is_clamped(httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock) -> None:
    httpx_mock.add_callback(lambda request: rate_limited("1732350000000"), url=AUDIT_URL)
    httpx_mock.add_response(url=AUDIT_URL, json=fixture("audit_page_last"))
    list(audit_events(client, START, END))
    assert clock.sleeps == [60.0]


@pytest.mark.usefixtures("token")
def test_429_exhaustion_raises_rate_limit_exhausted(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock
) -> None:
    httpx_mock.add_callback(lambda request: rate_limited("2000"), url=AUDIT_URL, is_reusable=True)
    with pytest.raises(RateLimitExhaustedError) as info:
        list(audit_events(client, START, END))
    assert info.value.status_code == 429
    assert info.value.retryable is True
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 4
    assert clock.sleeps == [2.0, 2.0, 2.0]
    assert client.stats.rate_limited == 4


@pytest.mark.usefixtures("token")
def test_low_remaining_slows_down_before_the_next_request(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock
) -> None:
    order: list[str] = []

    def second(request: httpx.Request) -> httpx.Response:
        order.append(f"page 2 at {clock.now}")
        return httpx.Response(200, json=page([record(2)]))

    httpx_mock.add_response(
        url=AUDIT_URL,
        headers={"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "3000"},
        json=page([record(1)], "p2"),
    )
    httpx_mock.add_callback(second, url=AUDIT_URL, match_json=envelope([WINDOW], token="p2"))
    start = clock.now
    assert len(list(audit_events(client, START, END))) == 2
    assert clock.sleeps == [3.0]
    assert order == [f"page 2 at {start + 3.0}"]


@pytest.mark.usefixtures("token")
def test_plenty_remaining_does_not_slow_down(httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock) -> None:
    httpx_mock.add_response(
        url=AUDIT_URL,
        headers={"X-RateLimit-Remaining": "90", "X-RateLimit-Reset": "3000"},
        json=page([record(1)], "p2"),
    )
    httpx_mock.add_response(url=AUDIT_URL, json=page([record(2)]))
    list(audit_events(client, START, END))
    assert clock.sleeps == []


# -- 5xx, transport errors and plain 4xx ---------------------------------------------------------------------


@pytest.mark.usefixtures("token")
def test_5xx_backoff_sequence_then_success(httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock) -> None:
    for status in (500, 502, 503):
        httpx_mock.add_response(url=AUDIT_URL, status_code=status)
    httpx_mock.add_response(url=AUDIT_URL, json=fixture("audit_page_last"))
    assert len(list(audit_events(client, START, END))) == 1
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert client.stats.retries == 3


@pytest.mark.usefixtures("token")
def test_5xx_exhaustion_is_a_retryable_api_error(httpx_mock: HTTPXMock, auth: MimecastAuth, clock: FakeClock) -> None:
    httpx_mock.add_response(url=AUDIT_URL, status_code=503, is_reusable=True)
    policy = RetryPolicy(max_attempts=6, base_backoff=1.0, max_backoff=5.0)
    with (
        MimecastClient(BASE, auth, retry=policy, sleep=clock.sleep, clock=clock) as c,
        pytest.raises(ApiError) as info,
    ):
        list(audit_events(c, START, END))
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]  # capped at max_backoff
    assert info.value.retryable is True
    assert info.value.status_code == 503
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 6


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("read timed out"), httpx.ConnectError("refused"), httpx.ReadError("reset")]
)
def test_transport_errors_are_retried(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock, exc: Exception
) -> None:
    httpx_mock.add_exception(exc, url=AUDIT_URL)
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=fixture("audit_page_last"))
    assert len(list(audit_events(client, START, END))) == 1
    assert clock.sleeps == [1.0]
    assert client.stats.requests == 2


@pytest.mark.usefixtures("token")
def test_timeouts_exhausted_become_api_error(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    for _ in range(4):
        httpx_mock.add_exception(httpx.ReadTimeout("read timed out"), url=AUDIT_URL)
    with pytest.raises(ApiError, match="ReadTimeout") as info:
        list(audit_events(client, START, END))
    assert info.value.retryable is True
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize("status", [400, 404])
def test_400_and_404_are_not_retried(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock, status: int
) -> None:
    httpx_mock.add_response(
        url=AUDIT_URL, status_code=status, json={"fail": [{"code": "bad_request", "message": "nope"}]}
    )
    with pytest.raises(ApiError) as info:
        list(audit_events(client, START, END))
    assert info.value.status_code == status
    assert info.value.retryable is False
    assert info.value.code == "bad_request"
    assert f"HTTP {status}" in str(info.value)
    assert clock.sleeps == []
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 1


@pytest.mark.usefixtures("token")
def test_redirect_is_not_followed(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(
        url=AUDIT_URL,
        status_code=302,
        headers={"Location": "https://evil.example.net/api/audit/get-audit-events"},
    )
    with pytest.raises(ApiError, match=r"redirect to evil\.example\.net") as info:
        list(audit_events(client, START, END))
    assert info.value.retryable is False
    assert len(httpx_mock.get_requests()) == 2  # the token request and the one API call, nothing to evil


def test_token_endpoint_outage_is_retried_by_the_client(
    httpx_mock: HTTPXMock, client: MimecastClient, clock: FakeClock
) -> None:
    httpx_mock.add_response(url=TOKEN_URL, status_code=503)
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t1"}, json=page([]))
    assert list(audit_events(client, START, END)) == []
    assert clock.sleeps == [1.0]


def test_token_refusal_is_an_auth_error_and_not_retried(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=TOKEN_URL, status_code=401, json={"error": "invalid_client"})
    with pytest.raises(AuthError, match="rejected the client key or secret") as info:
        list(audit_events(client, START, END))
    assert not isinstance(info.value, PermissionDeniedError)


# -- 401 / 403 -----------------------------------------------------------------------------------------------


def test_401_after_refresh_is_an_auth_error(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t2"))
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t1"}, status_code=401)
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t2"}, status_code=401)
    with pytest.raises(AuthError, match="freshly issued access token") as info:
        list(audit_events(client, START, END))
    assert not isinstance(info.value, PermissionDeniedError)
    assert len(httpx_mock.get_requests(url=TOKEN_URL)) == 2
    assert len(httpx_mock.get_requests(url=AUDIT_URL)) == 2
    assert client.stats.token_refreshes == 2
    assert client.stats.requests == 2


def test_401_once_then_success_refreshes_transparently(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t2"))
    httpx_mock.add_response(url=AUDIT_URL, match_headers={"Authorization": "Bearer t1"}, status_code=401)
    httpx_mock.add_response(
        url=AUDIT_URL,
        match_headers={"Authorization": "Bearer t2"},
        match_json=envelope([WINDOW]),
        json=page([]),
    )
    assert list(audit_events(client, START, END)) == []
    assert client.stats.as_dict()["token_refreshes"] == 2
    assert client.stats.requests == 2  # the first send and the auth's re-send after the 401


@pytest.mark.usefixtures("token")
def test_403_on_an_endpoint_names_the_missing_product(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(
        url=GROUP_MEMBERS_URL,
        status_code=403,
        json={"fail": [{"code": "app_forbidden", "message": "Forbidden to perform the requested operation"}]},
    )
    with pytest.raises(PermissionDeniedError) as info:
        list(group_members(client, "g1"))
    assert info.value.product == "User and Group Management"
    assert info.value.event_type == "user_management"
    assert "app_forbidden" in str(info.value)
    assert len(httpx_mock.get_requests(url=GROUP_MEMBERS_URL)) == 1


@pytest.mark.usefixtures("token")
@pytest.mark.parametrize(
    ("event_type", "url", "data", "product"),
    [
        (
            "audit",
            AUDIT_URL,
            [{"startDateTime": "2026-03-02T11:30:00+0000", "endDateTime": "2026-03-02T12:30:00+0000"}],
            "Audit Events",
        ),
        ("user_management", FIND_GROUPS_URL, [{"query": "", "source": "cloud"}], "User and Group Management"),
    ],
)
def test_preflight_403_names_event_type_and_product(
    httpx_mock: HTTPXMock, client: MimecastClient, event_type: str, url: str, data: list[Any], product: str
) -> None:
    httpx_mock.add_response(
        url=url,
        match_json=envelope(data, page_size=1),
        status_code=403,
        json={"fail": [{"code": "app_forbidden"}]},
    )
    with pytest.raises(PermissionDeniedError) as info:
        preflight(client, [event_type], NOW)
    message = str(info.value)
    assert f"the {event_type} event type" in message
    assert f"'{product}' product" in message
    assert "Administration Console → Services → API and Platform Integrations" in message
    assert info.value.event_type == event_type
    assert info.value.product == product


def test_preflight_401_after_refresh_is_permission_denied(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t2"))
    httpx_mock.add_response(url=AUDIT_URL, status_code=401, is_reusable=True)
    with pytest.raises(PermissionDeniedError, match="'Audit Events' product"):
        preflight(client, ["audit"], NOW)


@pytest.mark.usefixtures("token")
def test_preflight_passes_for_both_event_types(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    httpx_mock.add_response(url=AUDIT_URL, json=page([record(1)], "more"))
    httpx_mock.add_response(url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    preflight(client, ["audit", "user_management"], NOW)
    assert client.stats.requests == 2


# -- directory endpoints -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("token")
def test_internal_domains_paginate(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    first = fixture("internal_domains")
    first["meta"]["pagination"] = {"pageSize": 2, "next": "d2"}
    httpx_mock.add_response(url=DOMAINS_URL, match_json=envelope([]), json=first)
    httpx_mock.add_response(
        url=DOMAINS_URL, match_json=envelope([], token="d2"), json=page([{"domain": "third.example.net"}])
    )
    domains = [d["domain"] for d in internal_domains(client)]
    assert domains == ["contoso.example.org", "fabrikam.example.com", "third.example.net"]


@pytest.mark.usefixtures("token")
def test_internal_users_paginate(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    first = fixture("internal_users_page")
    first["meta"]["pagination"]["next"] = "u2"
    data = [{"domain": "contoso.example.org"}]
    httpx_mock.add_response(url=USERS_URL, match_json=envelope(data, page_size=100), json=first)
    last = page([{"users": [{"emailAddress": "zed@contoso.example.org", "name": "Zed"}]}])
    httpx_mock.add_response(url=USERS_URL, match_json=envelope(data, page_size=100, token="u2"), json=last)
    users = [u["emailAddress"] for u in internal_users(client, "contoso.example.org", page_size=100)]
    assert users == ["alice.ng@contoso.example.org", "finance@contoso.example.org", "zed@contoso.example.org"]


@pytest.mark.usefixtures("token")
def test_groups_paginate(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    first = fixture("find_groups_page")
    first["meta"]["pagination"]["next"] = "g2"
    data = [{"query": "fin", "source": "ldap"}]
    httpx_mock.add_response(url=FIND_GROUPS_URL, match_json=envelope(data), json=first)
    httpx_mock.add_response(
        url=FIND_GROUPS_URL, match_json=envelope(data, token="g2"), json=page([{"folders": []}], "g3")
    )
    names = [g["description"] for g in groups(client, source="ldap", query="fin")]
    assert names == ["Finance Approvers", "VIP Protection"]


@pytest.mark.usefixtures("token")
def test_group_members_paginate(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    first = fixture("group_members_page")
    first["meta"]["pagination"]["next"] = "m2"
    data = [{"id": "eNoVzEEKgjAQRuG7zNoBHiJ"}]
    httpx_mock.add_response(url=GROUP_MEMBERS_URL, match_json=envelope(data), json=first)
    last = page([{"groupMembers": [{"emailAddress": "dan@contoso.example.org", "internal": True}]}])
    httpx_mock.add_response(url=GROUP_MEMBERS_URL, match_json=envelope(data, token="m2"), json=last)
    members = [m["emailAddress"] for m in group_members(client, "eNoVzEEKgjAQRuG7zNoBHiJ")]
    assert members == [
        "alice.ng@contoso.example.org",
        "carol.diaz@contoso.example.org",
        "dan@contoso.example.org",
    ]
    assert client.stats.pages == 2


def test_concurrent_group_members_share_one_token(httpx_mock: HTTPXMock, client: MimecastClient) -> None:
    token_calls: list[int] = []
    token_lock = threading.Lock()

    def token_callback(request: httpx.Request) -> httpx.Response:
        with token_lock:
            token_calls.append(1)
        return httpx.Response(200, json=token_json("shared"))

    def members_callback(request: httpx.Request) -> httpx.Response:
        import json

        group_id = json.loads(request.content)["data"][0]["id"]
        return httpx.Response(200, json=page([{"groupMembers": [{"emailAddress": f"{group_id}@example.org"}]}]))

    httpx_mock.add_callback(token_callback, url=TOKEN_URL, is_reusable=True)
    httpx_mock.add_callback(
        members_callback,
        url=GROUP_MEMBERS_URL,
        match_headers={"Authorization": "Bearer shared"},
        is_reusable=True,
    )
    group_ids = [f"g{n}" for n in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda gid: [m["emailAddress"] for m in group_members(client, gid)], group_ids))
    assert results == [[f"{gid}@example.org"] for gid in group_ids]
    assert len(token_calls) == 1
    assert client.stats.requests == 12
    assert client.stats.pages == 12


# -- secrecy, construction, stats ----------------------------------------------------------------------------


def test_no_secret_or_token_in_logs_or_errors(
    httpx_mock: HTTPXMock, client: MimecastClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("tok-SECRET-1"))
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("tok-SECRET-2"))
    httpx_mock.add_callback(lambda request: rate_limited("1000"), url=AUDIT_URL)
    httpx_mock.add_response(url=AUDIT_URL, status_code=500)
    httpx_mock.add_response(url=AUDIT_URL, json=page([record(1)], "p2"))
    httpx_mock.add_response(url=AUDIT_URL, status_code=401)
    httpx_mock.add_response(url=AUDIT_URL, status_code=403, json={"fail": [{"code": "app_forbidden"}]})
    errors: list[str] = []
    try:
        list(audit_events(client, START, END))
    except PermissionDeniedError as exc:
        errors.append(str(exc))
        errors.append(repr(exc))
    assert errors
    httpx_mock.add_response(url=TOKEN_URL, status_code=401, json={"echo": SECRET_VALUE})
    client.auth.invalidate()
    try:
        list(audit_events(client, START, END))
    except AuthError as exc:
        errors.append(str(exc))
    assert len(errors) == 3
    messages = [r.getMessage() + " " + repr(r.__dict__) for r in caplog.records]
    assert any("page fetched" in m for m in messages)
    for text in messages + errors + [repr(client), repr(client.auth)]:
        for forbidden in (SECRET_VALUE, "tok-SECRET-1", "tok-SECRET-2", "Bearer tok"):
            assert forbidden not in text


def test_page_fetched_log_carries_structured_extra(
    httpx_mock: HTTPXMock, client: MimecastClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="connector.api.paginate")
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=AUDIT_URL, json=page([record(1), record(2)]))
    list(audit_events(client, START, END))
    fetched = [r for r in caplog.records if r.getMessage() == "page fetched"]
    assert len(fetched) == 1
    assert fetched[0].__dict__["endpoint"] == "/api/audit/get-audit-events"
    assert fetched[0].__dict__["page"] == 1
    assert fetched[0].__dict__["records"] == 2


def oauth_config(**changes: object) -> Config:
    parameters = {"api_base_url": BASE + "/", "client_key": CLIENT_KEY, "client_secret": SECRET_VALUE, **changes}
    return Config.from_parameters(parameters, environ={})


def test_from_config_defaults_the_token_url(httpx_mock: HTTPXMock, clock: FakeClock) -> None:
    httpx_mock.add_response(url=TOKEN_URL, json=token_json("t1"))
    httpx_mock.add_response(url=DOMAINS_URL, json=page([]))
    with MimecastClient.from_config(oauth_config(), sleep=clock.sleep, clock=clock) as c:
        assert c.auth.token_url == TOKEN_URL
        assert list(internal_domains(c)) == []


def test_from_config_with_explicit_token_url_on_loopback(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="http://127.0.0.1:8080/custom/token", json=token_json("t1"))
    httpx_mock.add_response(url="http://127.0.0.1:8080/api/domain/get-internal-domain", json=page([]))
    config = oauth_config(api_base_url="http://127.0.0.1:8080", token_url="http://127.0.0.1:8080/custom/token")
    with MimecastClient.from_config(config) as c:
        assert list(internal_domains(c)) == []


@pytest.mark.parametrize(
    ("base", "token_url", "key", "parameter"),
    [
        ("https://eu-api.mimecast.com", "", CLIENT_KEY, "api_base_url"),
        ("http://api.services.mimecast.com", "", CLIENT_KEY, "api_base_url"),
        (BASE, "http://example.org/oauth/token", CLIENT_KEY, "token_url"),
        (BASE, "", " ", "client_key"),
    ],
)
def test_the_configuration_the_client_is_built_from_is_validated(
    base: str, token_url: str, key: str, parameter: str
) -> None:
    with pytest.raises(ConfigError) as info:
        MimecastClient.from_config(oauth_config(api_base_url=base, token_url=token_url, client_key=key))
    assert info.value.parameter == parameter


def test_constructor_validates_page_size(auth: MimecastAuth) -> None:
    with pytest.raises(ConfigError) as info:
        MimecastClient(BASE, auth, page_size=0)
    assert info.value.parameter == "page_size"


def test_client_uses_explicit_timeout_and_no_redirects(client: MimecastClient) -> None:
    http = client._http
    assert http.follow_redirects is False
    assert http.timeout.connect == 10.0
    assert http.timeout.read == 30.0


def test_stats_are_thread_safe() -> None:
    stats = ClientStats()

    def bump() -> None:
        for _ in range(1000):
            stats.add(requests=1, slept_seconds=0.5)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.as_dict() == {
        "requests": 8000,
        "pages": 0,
        "retries": 0,
        "rate_limited": 0,
        "slept_seconds": 4000.0,
        "token_refreshes": 0,
    }


@pytest.mark.usefixtures("token")
def test_closing_the_client_during_a_listing_is_an_api_error_not_a_runtime_error(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    """A host that calls close() while collect() is still running: before, httpx's bare RuntimeError escaped."""
    httpx_mock.add_response(url=AUDIT_URL, match_json=envelope([WINDOW]), json=page([record(1)], "p2"))
    pages = audit_event_pages(client, START, END)
    assert len(next(pages)) == 1
    client.close()
    with pytest.raises(ApiError, match="closed") as info:
        next(pages)
    assert not info.value.retryable


@pytest.mark.usefixtures("token")
def test_a_lone_surrogate_in_a_page_becomes_a_replacement_character(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    """A tenant's text cut in the middle of an emoji (``\\ud83d`` without its pair): orjson refuses it, which
    refused the whole page on every run, so collection stopped for good."""
    body = (
        b'{"meta":{"status":200,"pagination":{}},"fail":[],"data":[{"id":"id-1","auditType":"User Logged On",'
        b'"eventTime":"2026-03-02T09:14:05+0000","eventInfo":"cut \\ud83d here, whole \\ud83d\\ude00",'
        b'"\\udc00key":[["\\udfff"]]}]}'
    )
    httpx_mock.add_response(url=AUDIT_URL, content=body, headers={"Content-Type": "application/json"})
    [only] = list(audit_events(client, START, END))
    assert only["eventInfo"] == "cut \ufffd here, whole \U0001f600"
    assert only["\ufffdkey"] == [["\ufffd"]]
    orjson.dumps(only)  # valid UTF-8 again


@pytest.mark.usefixtures("token")
def test_a_body_nested_too_deeply_for_either_parser_is_a_non_json_answer(
    httpx_mock: HTTPXMock, client: MimecastClient
) -> None:
    httpx_mock.add_response(url=AUDIT_URL, content=b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(ApiError):
        list(audit_events(client, START, END))
