"""The collector end to end against pytest-httpx (strict): audit windows, overlap, dedup, crash safety, inventory.

Every test drives ``MimecastConnector.collect`` the way a host does (store the batch, then commit its checkpoint),
with an injected ``now_ms`` clock and a recording ``sleep``; nothing really waits. Audit responses are matched on
their exact request bodies, so every test also pins the window the collector asked for.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
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
    token_json,
)
from pytest_httpx import HTTPXMock

from connector.api.ratelimit import RetryPolicy
from connector.checkpoint import AuditState, Checkpoint, GroupMembership, InventoryState
from connector.events import Batch
from connector.host import MimecastConnector
from connector.streams.audit import HISTORY_MS, SLICE_MS

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
# 2026-03-02T12:00:00.250Z: a clock with milliseconds, as real clocks have.
T0 = int(datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC).timestamp() * 1000) + 250
OVERLAP = 30 * MINUTE
LOOKBACK = 1 * HOUR
PAGE_SIZE = 500

PARAMS: dict[str, Any] = {
    "api_base_url": BASE,
    "client_key": CLIENT_KEY,
    "client_secret": SECRET_VALUE,
    "event_types": ["audit"],
    "initial_lookback_hours": 1,
    "overlap_minutes": 30,
    "lag_warning_minutes": 20,
    "inventory_interval_minutes": 60,
    "concurrency": 2,
}


# -- helpers ----------------------------------------------------------------------------------------------


class Clock:
    """The injected wall clock (epoch ms)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def mc_time(ms: int) -> str:
    """What the collector must send for ``ms``: whole seconds, ``+0000``."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def rec(rid: str, event_ms: int, audit_type: str = "User Logged On", **extra: Any) -> dict[str, Any]:
    """A realistic audit record of ``audit_type`` at ``event_ms``."""
    when = datetime.fromtimestamp(event_ms // 1000, tz=UTC)
    stamp = f"Date: {when:%Y-%m-%d}, Time: {when:%H:%M:%S} GMT"
    texts = {
        "User Logged On": (
            "authentication_logs",
            f"Successful authentication for alice.ng@contoso.example.org <Alice Ng>, {stamp}, IP: 198.51.100.23, "
            "Application: Mimecast Personal Portal, Method: Cloud",
        ),
        "User Password Changed": (
            "user_account_and_role_logs",
            "Password reset for user: carol.diaz@contoso.example.org User Password Changed, Remote IP is 198.51.100.5",
        ),
        "Folder Log Entry": (
            "profile_group_logs",
            f"Action Performed - Created Finance Approvers by admin@contoso.example.org<Contoso Admin> "
            f"Date: {when:%Y-%m-%d} Time: {when:%H:%M:%S} +0000 IP: 203.0.113.40 Application: Administration Console",
        ),
        "Search Action": ("case_review_logs", "Search Criteria: {}"),
    }
    category, info = texts[audit_type]
    record = {
        "id": rid,
        "auditType": audit_type,
        "category": category,
        "eventTime": mc_time(event_ms),
        "user": "alice.ng@contoso.example.org",
        "eventInfo": info,
    }
    record.update(extra)
    return record


def body(start_ms: int, end_ms: int, token: str | None = None, size: int = PAGE_SIZE) -> dict[str, Any]:
    """The exact audit request body for a window (and page token)."""
    pagination: dict[str, Any] = {"pageSize": size}
    if token is not None:
        pagination["pageToken"] = token
    return {
        "meta": {"pagination": pagination},
        "data": [{"startDateTime": mc_time(start_ms), "endDateTime": mc_time(end_ms)}],
    }


def page(data: list[Any], next_token: str | None = None) -> dict[str, Any]:
    pagination: dict[str, Any] = {"pageSize": PAGE_SIZE}
    if next_token is not None:
        pagination["next"] = next_token
    return {"meta": {"status": 200, "pagination": pagination}, "data": data, "fail": []}


def nested_page(key: str, items: list[Any], next_token: str | None = None) -> dict[str, Any]:
    return page([{key: items}], next_token)


def add_group_listings(httpx_mock: HTTPXMock, cloud: list[dict[str, Any]] | None = None) -> None:
    """The find-groups answers of one directory pull: ``cloud`` folders (none by default), no LDAP ones."""
    for source in ("cloud", "ldap"):
        httpx_mock.add_response(
            method="POST",
            url=FIND_GROUPS_URL,
            match_json={"meta": {"pagination": {"pageSize": 500}}, "data": [{"query": "", "source": source}]},
            json=nested_page("folders", (cloud or []) if source == "cloud" else []),
        )


def add_audit(
    httpx_mock: HTTPXMock,
    start_ms: int,
    end_ms: int,
    records: list[Any],
    *,
    token: str | None = None,
    next_token: str | None = None,
) -> None:
    """Answer exactly the audit request for this window (and page token) with ``records``."""
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_json=body(start_ms, end_ms, token),
        json=page(records, next_token),
    )


@dataclass
class Host:
    """What a host does with the batches: store the events per table, then commit the checkpoint (as JSON)."""

    committed: dict[str, Any] | None = None
    stored: list[dict[str, Any]] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)

    def run(self, connector: MimecastConnector, *, crash_after: int | None = None) -> list[dict[str, Any]]:
        """One pass; ``crash_after=n`` stores the n-th batch's events and dies before committing its checkpoint."""
        new: list[dict[str, Any]] = []
        batches = connector.collect(self.committed)
        for number, batch in enumerate(batches, 1):
            self.batches.append(batch)
            assert all(event["class_uid"] == batch.class_uid for event in batch.events)
            new.extend(batch.events)
            if crash_after == number:
                batches.close()  # type: ignore[attr-defined]
                break
            if batch.checkpoint is not None:
                # What a host persists: JSON, read back on the next run.
                self.committed = json.loads(json.dumps(batch.checkpoint.to_dict()))
        self.stored.extend(new)
        return new

    @property
    def checkpoint(self) -> Checkpoint:
        assert self.committed is not None
        return Checkpoint.from_dict(self.committed)


def uids(events: list[dict[str, Any]]) -> list[str]:
    return [event["metadata"]["uid"] for event in events]


def originals(events: list[dict[str, Any]]) -> list[str]:
    """The Mimecast audit ids behind the events (``metadata.original_event_uid``)."""
    return sorted(event["metadata"]["original_event_uid"] for event in events)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(clock: Clock, sleeps: list[float], httpx_mock: HTTPXMock) -> Iterator[Callable[..., MimecastConnector]]:
    """Build a connector; each one fetches one token (registered here, so strict mode checks it was used)."""
    built: list[MimecastConnector] = []

    def factory(**overrides: Any) -> MimecastConnector:
        httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json(f"t{len(built) + 1}"))
        connector = MimecastConnector(
            {**PARAMS, **overrides},
            environ={},
            now_ms=clock,
            sleep=sleeps.append,
            retry=RetryPolicy(max_attempts=2, base_backoff=1.0, max_backoff=1.0, jitter=0.0),
        )
        built.append(connector)
        return connector

    yield factory
    for connector in built:
        connector.close()


# -- audit: windows and exact request bodies ------------------------------------------------------------------


def test_first_run_reads_lookback_window_and_commits_cursor_at_now(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("a1", T0 - 20 * MINUTE)])
    host = Host()
    events = host.run(make())

    request = httpx_mock.get_request(url=AUDIT_URL)
    assert request is not None
    sent = json.loads(request.content)["data"][0]
    assert sent == {"startDateTime": "2026-03-02T11:00:00+0000", "endDateTime": "2026-03-02T12:00:00+0000"}
    assert originals(events) == ["a1"]
    assert host.checkpoint.streams["audit"].cursor_ms == T0
    assert dict(host.checkpoint.streams["audit"].seen) == {"a1": (T0 - 20 * MINUTE) // 1000 * 1000}


def test_next_window_starts_at_cursor_minus_overlap(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    cursor = T0 - 5 * MINUTE
    committed = Checkpoint.of(audit=AuditState(cursor_ms=cursor)).to_dict()
    add_audit(httpx_mock, cursor - OVERLAP, T0, [])
    host = Host(committed=committed)
    assert host.run(make()) == []
    request = httpx_mock.get_request(url=AUDIT_URL)
    assert request is not None
    assert json.loads(request.content) == {
        "meta": {"pagination": {"pageSize": 500}},
        "data": [{"startDateTime": "2026-03-02T11:25:00+0000", "endDateTime": "2026-03-02T12:00:00+0000"}],
    }
    assert host.checkpoint.streams["audit"].cursor_ms == T0


def test_categories_are_sent_when_configured(httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]) -> None:
    expected = body(T0 - LOOKBACK, T0)
    expected["data"][0]["categories"] = ["authentication_logs"]
    httpx_mock.add_response(method="POST", url=AUDIT_URL, match_json=expected, json=page([]))
    Host().run(make(audit_categories=["authentication_logs"]))


def test_long_catch_up_is_read_in_contiguous_six_hour_slices_with_a_checkpoint_after_each(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    cursor = T0 - 13 * HOUR
    start = cursor - OVERLAP
    ends = [start + SLICE_MS, start + 2 * SLICE_MS, T0]
    add_audit(httpx_mock, start, ends[0], [rec("s1", start + HOUR)])
    add_audit(httpx_mock, ends[0], ends[1], [])
    add_audit(httpx_mock, ends[1], T0, [rec("s3", T0 - HOUR)])
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor)).to_dict())
    events = host.run(make())

    assert originals(events) == ["s1", "s3"]
    only_checkpoints = [b.checkpoint for b in host.batches if b.table is None]
    assert [c.streams["audit"].cursor_ms for c in only_checkpoints if c is not None] == ends
    # A page's checkpoint keeps the cursor of the last fully read slice.
    page_checkpoints = [b.checkpoint for b in host.batches if b.table is not None and b.checkpoint]
    assert [c.streams["audit"].cursor_ms for c in page_checkpoints] == [cursor, ends[1]]


def test_a_failing_slice_keeps_the_cursor_at_the_end_of_the_slices_before_it(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    """The client reads the slices as one stream (ahead into the next slice): a failure in slice 2 must still
    leave the cursor at the end of slice 1, deliver slice 1 and slice 2's first page, and never reach slice 3."""
    cursor = T0 - 13 * HOUR
    start = cursor - OVERLAP
    ends = [start + SLICE_MS, start + 2 * SLICE_MS, T0]
    add_audit(httpx_mock, start, ends[0], [rec("s1", start + HOUR)])
    add_audit(httpx_mock, ends[0], ends[1], [rec("s2a", ends[0] + HOUR)], next_token="tok2")
    fail = {"meta": {"status": 200}, "data": [], "fail": [{"errors": [{"code": "err_x", "retryable": False}]}]}
    httpx_mock.add_response(method="POST", url=AUDIT_URL, match_json=body(ends[0], ends[1], "tok2"), json=fail)
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor)).to_dict())
    # One slice at a time, so slice 3 is never requested (tests/test_catchup.py: the same with slices read at once)
    connector = make(catchup_concurrency=1)
    events = host.run(connector)

    assert originals(events) == ["s1", "s2a"]
    assert host.checkpoint.streams["audit"].cursor_ms == ends[0]
    assert sorted(host.checkpoint.streams["audit"].seen) == ["s2a"]  # s1 lies before the new cursor - overlap
    assert "err_x" in connector.summary.failures["audit"]
    assert not httpx_mock.get_requests(match_json=body(ends[1], T0))


def test_history_clamp_starts_just_inside_sixty_days_and_reports_the_gap(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], caplog: pytest.LogCaptureFixture
) -> None:
    cursor = T0 - 70 * DAY
    windows: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["data"][0]
        windows.append((sent["startDateTime"], sent["endDateTime"]))
        return httpx.Response(200, json=page([]))

    httpx_mock.add_callback(answer, method="POST", url=AUDIT_URL, is_reusable=True)
    connector = make()
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor)).to_dict())
    with caplog.at_level("WARNING", logger="connector.collector"):
        host.run(connector)

    floor = T0 - HISTORY_MS
    assert windows[0][0] == mc_time(floor) == "2026-01-01T12:10:00+0000"  # 60 days minus a 10-minute margin
    assert windows[-1][1] == mc_time(T0)
    assert len(windows) == -(-HISTORY_MS // SLICE_MS)
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(windows))
    summary = connector.summary
    assert summary.sections["audit"].history_gap == (cursor - OVERLAP, floor)
    assert summary.sections["audit"].window == (floor, T0)
    assert any("NOT COLLECTED" in line and "2025-12-22T11:30:00Z" in line for line in summary.lines())
    assert any(r.getMessage() == "audit history gap" for r in caplog.records)
    assert host.checkpoint.streams["audit"].cursor_ms == T0


def test_a_cursor_after_now_is_not_used_and_audit_is_collected_from_the_lookback_with_a_warning(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], caplog: pytest.LogCaptureFixture
) -> None:
    """The clock went back a day (or the file was edited): cursor - overlap lies after now. Without the fix every
    run asked for nothing at all and said nothing; now the window is the first run's, and seen ids still dedup."""
    future = T0 + DAY
    committed = Checkpoint.of(audit=AuditState(cursor_ms=future, seen={"a1": T0 - 20 * MINUTE})).to_dict()
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("a1", T0 - 20 * MINUTE), rec("a2", T0 - 10 * MINUTE)])
    host = Host(committed=committed)
    connector = make()
    with caplog.at_level("WARNING", logger="connector.collector"):
        events = host.run(connector)

    assert originals(events) == ["a2"]  # a1 was delivered before: still skipped
    assert host.checkpoint.streams["audit"].cursor_ms == T0
    assert connector.summary.sections["audit"].window == (T0 - LOOKBACK, T0)
    assert connector.summary.sections["audit"].max_late_ms == 0  # a future cursor makes no record "late"
    assert connector.summary.lines()[1] == (
        "  WARNING: audit cursor 2026-03-03T12:00:00Z lies after now (2026-03-02T12:00:00Z): the clock went back or "
        "the checkpoint is wrong; audit collected from now - initial lookback (2026-03-02T11:00:00Z), as on a first "
        "run (records already delivered may be sent again)"
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == ["audit cursor after now"]


def test_a_cursor_just_after_now_is_treated_the_same(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [])
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=T0 + 1)).to_dict())
    connector = make()
    host.run(connector)
    assert host.checkpoint.streams["audit"].cursor_ms == T0
    assert any("lies after now" in line for line in connector.summary.lines())


def test_an_absurd_cursor_object_from_a_host_gives_a_summary_not_a_traceback(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    """The loader refuses 10**17 (tests/test_checkpoint.py); a host may still build a Checkpoint object itself."""
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [])
    connector = make()
    batches = list(connector.collect(Checkpoint.of(audit=AuditState(cursor_ms=10**17))))
    assert batches[-1].checkpoint is not None and batches[-1].checkpoint.streams["audit"].cursor_ms == T0
    assert "audit cursor 100000000000000000 ms (not a date) lies after now" in connector.summary.lines()[1]


def test_a_directory_pull_stamped_after_now_is_pulled_again_with_a_warning(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], caplog: pytest.LogCaptureFixture
) -> None:
    """Without the fix a collected_at in the future made the directory "not due" until the clock caught up."""
    snapshot = {"g-fin": GroupMembership("Finance", ("alice@contoso.example.org",))}
    committed = Checkpoint.of(
        user_management=InventoryState(collected_at_ms=T0 + 30 * DAY, memberships=snapshot)
    ).to_dict()
    add_directory(httpx_mock, GROUPS, USERS)
    host = Host(committed=committed)
    connector = make(event_types=["user_management"])
    with caplog.at_level("WARNING", logger="connector.collector"):
        events = host.run(connector)

    assert events and connector.summary.sections["user_management"].skipped_until_ms is None
    assert host.checkpoint.streams["user_management"].collected_at_ms == T0
    assert any(
        line.startswith("  WARNING: directory collected_at 2026-04-01T12:00:00Z lies after now")
        and "pulled now" in line
        for line in connector.summary.lines()
    )
    assert "directory collected_at after now" in [r.getMessage() for r in caplog.records]


# -- audit: overlap, late records and dedup --------------------------------------------------------------------


def test_late_record_inside_the_overlap_is_collected_exactly_once_across_runs(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make()
    host = Host()
    late_time = T0 - 10 * MINUTE  # happened before run 1's end, but was not indexed yet
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("on-time", T0 - 40 * MINUTE)])
    assert originals(host.run(connector)) == ["on-time"]

    clock.now = T0 + 5 * MINUTE
    add_audit(httpx_mock, T0 - OVERLAP, clock.now, [rec("late", late_time)])
    second = host.run(connector)
    assert originals(second) == ["late"]
    assert connector.summary.sections["audit"].max_late_ms == 10 * MINUTE + 250  # eventTime has whole seconds
    assert connector.summary.sections["audit"].lag_warnings == 0

    clock.now = T0 + 10 * MINUTE
    add_audit(httpx_mock, T0 + 5 * MINUTE - OVERLAP, clock.now, [rec("late", late_time)])
    assert host.run(connector) == []
    assert connector.summary.sections["audit"].duplicates == 1
    assert originals(host.stored) == ["late", "on-time"]


def test_record_seen_in_two_overlapping_windows_is_emitted_once(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make()
    host = Host()
    shared = rec("shared", T0 - 15 * MINUTE)
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [shared, rec("first", T0 - 50 * MINUTE)])
    first = host.run(connector)
    clock.now = T0 + 10 * MINUTE
    add_audit(httpx_mock, T0 - OVERLAP, clock.now, [rec("second", T0 + MINUTE), shared])
    second = host.run(connector)

    assert originals(first) == ["first", "shared"]
    assert originals(second) == ["second"]
    assert len(set(uids(host.stored))) == len(host.stored) == 3


def test_record_on_the_first_second_of_the_next_window_is_not_emitted_twice(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    """The window start is sent in whole seconds, so the next run re-reads the whole second it starts in.

    With a cursor of ...:00.250, ids are pruned below cursor - overlap = 11:30:00.250, but the next request
    starts at 11:30:00 and returns the record stamped 11:30:00 again: it must still be remembered.
    """
    connector = make()
    host = Host()
    boundary = rec("boundary", T0 - OVERLAP - 250)  # eventTime 11:30:00, exactly the next window's start
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [boundary])
    assert originals(host.run(connector)) == ["boundary"]
    assert "boundary" in host.checkpoint.streams["audit"].seen

    clock.now = T0 + 1000
    add_audit(httpx_mock, T0 - OVERLAP, clock.now, [boundary])
    assert host.run(connector) == []
    assert connector.summary.sections["audit"].duplicates == 1


def test_empty_run_does_not_move_the_cursor_past_late_records(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make()
    host = Host()
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [])
    assert host.run(connector) == []
    assert host.checkpoint.streams["audit"].cursor_ms == T0  # the window end, not the newest eventTime (there is none)

    clock.now = T0 + 5 * MINUTE
    late = rec("late", T0 - 25 * MINUTE)  # before the previous cursor, inside the overlap
    add_audit(httpx_mock, T0 - OVERLAP, clock.now, [late])
    assert originals(host.run(connector)) == ["late"]
    assert connector.summary.sections["audit"].max_late_ms == 25 * MINUTE + 250
    assert connector.summary.sections["audit"].lag_warnings == 1  # 25 min late >= lag_warning_minutes (20)


def test_empty_pages_yield_only_checkpoint_batches(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [], next_token="ignored-after-empty-page")
    host = Host()
    host.run(make())
    assert [(b.table, b.events) for b in host.batches] == [(None, [])]
    assert host.checkpoint.streams["audit"].cursor_ms == T0


def test_seen_is_pruned_below_cursor_minus_overlap(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make()
    host = Host()
    records = [rec(f"r{m}", T0 - m * MINUTE) for m in (55, 40, 31, 29, 5)]
    add_audit(httpx_mock, T0 - LOOKBACK, T0, records)
    host.run(connector)
    # Kept: what the next window (from T0 - 30 min) can return again.
    assert sorted(host.checkpoint.streams["audit"].seen) == ["r29", "r5"]

    clock.now = T0 + 2 * HOUR
    add_audit(httpx_mock, T0 - OVERLAP, clock.now, [rec("new", clock.now - 45 * MINUTE), rec("newest", clock.now)])
    host.run(connector)
    assert sorted(host.checkpoint.streams["audit"].seen) == ["newest"]


def test_many_runs_keep_the_checkpoint_bounded(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make()
    host = Host()
    start = T0 - LOOKBACK
    for run in range(12):
        records = [rec(f"run{run}-{n}", clock.now - n * MINUTE) for n in range(0, 30, 3)]
        add_audit(httpx_mock, start, clock.now, records)
        host.run(connector)
        start = clock.now - OVERLAP
        clock.now += 10 * MINUTE
        # Only ids of the last overlap (30 min) survive: at most 4 runs' worth.
        assert len(host.checkpoint.streams["audit"].seen) <= 40
    assert (
        min(host.checkpoint.streams["audit"].seen.values())
        >= host.checkpoint.streams["audit"].cursor_ms - OVERLAP - 1000
    )


# -- audit: at-least-once -------------------------------------------------------------------------------------


def test_crash_before_commit_redelivers_the_same_events_with_the_same_uids(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    records = [rec("x1", T0 - 20 * MINUTE), rec("x2", T0 - 10 * MINUTE, "User Password Changed")]
    host = Host()
    add_audit(httpx_mock, T0 - LOOKBACK, T0, records)
    # The page gives two batches (account_change, authentication); die after storing both, before the commit.
    crashed = host.run(make(), crash_after=2)
    assert host.committed is None
    assert originals(crashed) == ["x1", "x2"]

    clock.now = T0 + MINUTE  # the re-run happens a little later
    add_audit(httpx_mock, T0 + MINUTE - LOOKBACK, clock.now, records)
    rerun = host.run(make())
    assert sorted(uids(rerun)) == sorted(uids(crashed))
    assert host.checkpoint.streams["audit"].cursor_ms == clock.now


def test_crash_between_pages_redelivers_only_the_uncommitted_page(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    host = Host()
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("p1", T0 - 50 * MINUTE)], next_token="tok2")
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("p2", T0 - 40 * MINUTE)], token="tok2")
    crashed = host.run(make(), crash_after=2)  # page 1 committed; page 2 stored, not committed
    assert originals(crashed) == ["p1", "p2"]
    assert sorted(host.checkpoint.streams["audit"].seen) == ["p1"]

    clock.now = T0 + 5 * MINUTE  # restarted a little later: the same window start, not now - lookback
    add_audit(httpx_mock, T0 - LOOKBACK, clock.now, [rec("p1", T0 - 50 * MINUTE)], next_token="tok2")
    add_audit(httpx_mock, T0 - LOOKBACK, clock.now, [rec("p2", T0 - 40 * MINUTE)], token="tok2")
    rerun = host.run(make())
    assert originals(rerun) == ["p2"]
    assert uids(rerun) == [e["metadata"]["uid"] for e in crashed if e["metadata"]["original_event_uid"] == "p2"]


def test_a_crash_in_the_first_slice_of_the_first_run_does_not_skip_the_start_of_the_lookback(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    """Page checkpoints of the first run pin its window start, so a restart cannot recompute now - lookback."""
    host = Host()
    earliest = rec("earliest", T0 - LOOKBACK + MINUTE)  # on page 2
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("p1", T0 - 30 * MINUTE)], next_token="tok2")
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [earliest], token="tok2")
    crashed = host.run(make(), crash_after=2)  # page 1 committed; page 2 stored but not committed
    assert originals(crashed) == ["earliest", "p1"]
    assert sorted(host.checkpoint.streams["audit"].seen) == ["p1"]
    assert host.checkpoint.streams["audit"].cursor_ms == T0 - LOOKBACK + OVERLAP  # next window starts at T0 - LOOKBACK

    clock.now = T0 + 10 * MINUTE
    add_audit(httpx_mock, T0 - LOOKBACK, clock.now, [earliest, rec("p1", T0 - 30 * MINUTE)])
    assert originals(host.run(make())) == ["earliest"]
    assert host.checkpoint.streams["audit"].cursor_ms == clock.now


def test_a_crash_during_a_clamped_catch_up_restarts_from_the_clamped_start(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    cursor = T0 - 70 * DAY
    floor = T0 - HISTORY_MS
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor)).to_dict())
    add_audit(httpx_mock, floor, floor + SLICE_MS, [rec("old", floor + HOUR)], next_token="tok2")
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_json=body(floor, floor + SLICE_MS, "tok2"),
        status_code=500,
        is_reusable=True,
    )
    connector = make(catchup_concurrency=1)  # one slice at a time: the later slices are never requested
    host.run(connector)
    assert "audit" in connector.summary.failures
    assert host.checkpoint.streams["audit"].cursor_ms == floor + OVERLAP  # pins the clamped start
    assert connector.summary.sections["audit"].history_gap == (cursor - OVERLAP, floor)


def test_page_failure_mid_run_commits_only_the_pages_read(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    cursor = T0 - 10 * MINUTE
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor, seen={"old": cursor - MINUTE})).to_dict())
    add_audit(httpx_mock, cursor - OVERLAP, T0, [rec("p1", T0 - 5 * MINUTE)], next_token="tok2")
    fail = {
        "meta": {"status": 200},
        "data": [],
        "fail": [{"key": {}, "errors": [{"code": "err_internal", "message": "boom", "retryable": False}]}],
    }
    httpx_mock.add_response(method="POST", url=AUDIT_URL, match_json=body(cursor - OVERLAP, T0, "tok2"), json=fail)
    connector = make()
    events = host.run(connector)

    assert originals(events) == ["p1"]
    checkpoints = [b.checkpoint for b in host.batches if b.checkpoint is not None]
    assert [c.streams["audit"].cursor_ms for c in checkpoints] == [cursor]  # never advanced
    assert host.checkpoint.streams["audit"].cursor_ms == cursor
    assert sorted(host.checkpoint.streams["audit"].seen) == ["old", "p1"]
    assert "err_internal" in connector.summary.failures["audit"]
    assert connector.summary.exit_code == 5
    assert not connector.summary.ok

    # The next run re-reads the same window and delivers what page 2 held, once.
    clock.now = T0 + MINUTE
    add_audit(httpx_mock, cursor - OVERLAP, clock.now, [rec("p1", T0 - 5 * MINUTE)], next_token="tok2")
    add_audit(httpx_mock, cursor - OVERLAP, clock.now, [rec("p2", T0 - 4 * MINUTE)], token="tok2")
    assert originals(host.run(connector)) == ["p2"]
    assert host.checkpoint.streams["audit"].cursor_ms == clock.now


# -- audit: batches and record accounting ----------------------------------------------------------------------


def test_one_batch_per_table_per_page_and_only_the_last_carries_the_checkpoint(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    page1 = [
        rec("a", T0 - 50 * MINUTE),
        rec("b", T0 - 49 * MINUTE, "User Password Changed"),
        rec("c", T0 - 48 * MINUTE, "Folder Log Entry"),
        rec("d", T0 - 47 * MINUTE),
    ]
    page2 = [rec("e", T0 - 46 * MINUTE, "User Password Changed")]
    add_audit(httpx_mock, T0 - LOOKBACK, T0, page1, next_token="tok2")
    add_audit(httpx_mock, T0 - LOOKBACK, T0, page2, token="tok2")
    host = Host()
    host.run(make())

    shape = [(b.table, b.class_uid, originals(b.events), b.checkpoint is not None) for b in host.batches]
    assert shape == [
        ("account_change", 3001, ["b"], False),
        ("authentication", 3002, ["a", "d"], False),
        ("group_management", 3006, ["c"], True),
        ("account_change", 3001, ["e"], True),
        (None, None, [], True),
    ]
    for batch in host.batches:
        assert {e["class_uid"] for e in batch.events} <= {batch.class_uid}
    first_page_checkpoint = host.batches[2].checkpoint
    assert first_page_checkpoint is not None
    assert sorted(first_page_checkpoint.streams["audit"].seen) == ["a", "b", "c", "d"]


def test_audit_types_outside_the_four_classes_are_counted(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    add_audit(
        httpx_mock,
        T0 - LOOKBACK,
        T0,
        [rec("s1", T0 - 20 * MINUTE, "Search Action"), rec("s2", T0 - 19 * MINUTE, "Search Action"),
         rec("ok", T0 - 18 * MINUTE)],
    )  # fmt: skip
    connector = make()
    host = Host()
    events = host.run(connector)
    assert originals(events) == ["ok"]
    report = connector.summary.report
    assert report.other_types == {"Search Action": 2}
    assert report.emitted == {"authentication": 1}
    assert any("Search Action x2" in line for line in connector.summary.lines())
    assert connector.summary.ok  # not a failure
    assert connector.summary.sections["audit"].records == 3
    # Remembered like any record, so the overlap re-read does not count them again.
    assert {"s1", "s2", "ok"} <= set(host.checkpoint.streams["audit"].seen)


def test_malformed_records_are_reported_with_their_id_and_the_run_continues(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    bad_time = rec("bad-time", T0 - 20 * MINUTE)
    bad_time["eventTime"] = "yesterday"
    no_type = rec("no-type", T0 - 19 * MINUTE)
    del no_type["auditType"]
    no_id = rec("", T0 - 18 * MINUTE)
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [bad_time, rec("good1", T0 - 17 * MINUTE)], next_token="tok2")
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [no_type, no_id, rec("good2", T0 - 16 * MINUTE)], token="tok2")
    connector = make()
    host = Host()
    events = host.run(connector)

    assert originals(events) == ["good1", "good2"]
    report = connector.summary.report
    assert report.failed == {"mapping": 3}
    assert [e.record_id for e in report.errors] == ["bad-time", "no-type", "#4"]
    assert "unparseable eventTime 'yesterday'" in report.errors[0].message
    lines = "\n".join(connector.summary.lines())
    assert "bad-time:" in lines and "no-type:" in lines
    assert not connector.summary.ok
    assert connector.summary.failures == {}
    assert host.checkpoint.streams["audit"].cursor_ms == T0  # refused records do not hold the cursor back


# -- one event type failing --------------------------------------------------------------------------------


def add_directory(
    httpx_mock: HTTPXMock,
    groups: dict[str, tuple[str, str, list[str]]],
    users: dict[str, list[str]],
) -> None:
    """Answer one complete directory pull: groups per source, members per group, users per domain."""
    for source in ("cloud", "ldap"):
        folders = [
            {"id": gid, "description": name, "source": src} for gid, (name, src, _) in groups.items() if src == source
        ]
        httpx_mock.add_response(
            method="POST",
            url=FIND_GROUPS_URL,
            match_json={"meta": {"pagination": {"pageSize": PAGE_SIZE}}, "data": [{"query": "", "source": source}]},
            json=nested_page("folders", folders),
        )
    for gid, (_, _, members) in groups.items():
        httpx_mock.add_response(
            method="POST",
            url=GROUP_MEMBERS_URL,
            match_json={"meta": {"pagination": {"pageSize": PAGE_SIZE}}, "data": [{"id": gid}]},
            json=nested_page("groupMembers", [{"emailAddress": m, "name": m.split("@")[0]} for m in members]),
        )
    httpx_mock.add_response(method="POST", url=DOMAINS_URL, json=page([{"domain": domain} for domain in users]))
    for domain, addresses in users.items():
        httpx_mock.add_response(
            method="POST",
            url=USERS_URL,
            match_json={"meta": {"pagination": {"pageSize": PAGE_SIZE}}, "data": [{"domain": domain}]},
            json=nested_page(
                "users", [{"emailAddress": a, "name": a.split("@")[0], "domain": domain} for a in addresses]
            ),
        )


GROUPS = {
    "g-fin": ("Finance Approvers", "cloud", ["alice@contoso.example.org", "Carol@contoso.example.org"]),
    "g-vip": ("VIP Protection", "ldap", ["alice@contoso.example.org"]),
}
USERS = {
    "contoso.example.org": ["alice@contoso.example.org", "carol@contoso.example.org"],
    "fabrikam.example.com": ["dan@fabrikam.example.com"],
}


def test_audit_403_is_recorded_and_inventory_still_runs(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=AUDIT_URL,
        match_json=body(T0 - LOOKBACK, T0),
        status_code=403,
        json={"fail": [{"code": "app_forbidden", "message": "Forbidden to perform the requested operation"}]},
    )
    add_directory(httpx_mock, GROUPS, USERS)
    connector = make(event_types=["audit", "user_management"])
    host = Host()
    events = host.run(connector)

    summary = connector.summary
    assert "Audit Events" in summary.failures["audit"]
    assert "user_management" not in summary.failures
    assert summary.exit_code == 4
    assert not summary.ok
    assert {e["class_uid"] for e in events} == {5003}
    assert "audit" not in host.checkpoint.streams  # nothing advanced for audit
    assert host.checkpoint.streams["user_management"].collected_at_ms == T0
    assert any(line.startswith("  FAILED audit:") for line in summary.lines())


def test_inventory_failure_is_recorded_and_audit_is_still_collected(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("a1", T0 - MINUTE)])
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, status_code=403, json={"fail": []})
    connector = make(event_types=["audit", "user_management"])
    host = Host()
    assert originals(host.run(connector)) == ["a1"]
    assert "User and Group Management" in connector.summary.failures["user_management"]
    assert connector.summary.exit_code == 4
    assert host.checkpoint.streams["audit"].cursor_ms == T0
    assert "user_management" not in host.checkpoint.streams


# -- inventory ---------------------------------------------------------------------------------------------


def test_first_inventory_emits_users_with_groups_and_no_membership_events(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    add_directory(httpx_mock, GROUPS, USERS)
    connector = make(event_types=["user_management"])
    host = Host()
    host.run(connector)

    shape = [(b.table, b.class_uid, len(b.events), b.checkpoint is not None) for b in host.batches]
    assert shape == [("user_inventory", 5003, 3, False), ("group_management", 3006, 0, True)]
    users = {e["user"]["email_addr"]: e["user"] for e in host.batches[0].events}
    assert sorted(g["uid"] for g in users["alice@contoso.example.org"]["groups"]) == ["g-fin", "g-vip"]
    assert [g["name"] for g in users["carol@contoso.example.org"]["groups"]] == ["Finance Approvers"]
    assert "groups" not in users["dan@fabrikam.example.com"]
    inventory = host.checkpoint.streams["user_management"]
    assert inventory.collected_at_ms == T0
    assert inventory.memberships == {
        "g-fin": GroupMembership("Finance Approvers", ("alice@contoso.example.org", "carol@contoso.example.org")),
        "g-vip": GroupMembership("VIP Protection", ("alice@contoso.example.org",)),
    }
    summary = connector.summary
    assert (
        summary.sections["user_management"].users,
        summary.sections["user_management"].groups,
        summary.sections["user_management"].membership_changes,
    ) == (3, 2, 0)


def test_second_inventory_turns_membership_changes_into_add_and_remove_events(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make(event_types=["user_management"])
    host = Host()
    add_directory(httpx_mock, GROUPS, USERS)
    host.run(connector)

    clock.now = T0 + 61 * MINUTE
    changed = {
        "g-fin": ("Finance Approvers", "cloud", ["alice@contoso.example.org", "dan@fabrikam.example.com"]),
        "g-vip": ("VIP Protection", "ldap", ["alice@contoso.example.org"]),
    }
    add_directory(httpx_mock, changed, USERS)
    events = host.run(connector)

    changes = [e for e in events if e["class_uid"] == 3006]
    got = sorted((e["activity_id"], e["group"]["uid"], e["user"]["email_addr"]) for e in changes)
    assert got == [(3, "g-fin", "dan@fabrikam.example.com"), (4, "g-fin", "carol@contoso.example.org")]
    assert all(e["group"]["name"] == "Finance Approvers" for e in changes)
    assert connector.summary.sections["user_management"].membership_changes == 2
    assert host.batches[-1].events == changes and host.batches[-1].checkpoint is not None
    assert host.checkpoint.streams["user_management"].collected_at_ms == clock.now
    assert host.checkpoint.streams["user_management"].memberships is not None
    assert host.checkpoint.streams["user_management"].memberships["g-fin"].members == (
        "alice@contoso.example.org",
        "dan@fabrikam.example.com",
    )


def test_a_crash_before_committing_membership_changes_redelivers_them_with_the_same_uids(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make(event_types=["user_management"])
    host = Host()
    add_directory(httpx_mock, GROUPS, USERS)
    host.run(connector)
    changed = {**GROUPS, "g-vip": ("VIP Protection", "ldap", ["alice@contoso.example.org", "dan@fabrikam.example.com"])}

    clock.now = T0 + 61 * MINUTE
    add_directory(httpx_mock, changed, USERS)
    batches = sum(1 for _ in connector.collect(host.committed))
    add_directory(httpx_mock, changed, USERS)
    crashed = host.run(connector, crash_after=batches)  # stores the change events, dies before the commit
    clock.now = T0 + 75 * MINUTE  # the retry pulls again, later
    add_directory(httpx_mock, changed, USERS)
    retried = host.run(connector)

    first = [e for e in crashed if e["class_uid"] == 3006]
    again = [e for e in retried if e["class_uid"] == 3006]
    assert len(first) == 1 and first[0]["user"]["email_addr"] == "dan@fabrikam.example.com"
    assert uids(again) == uids(first)
    assert again[0]["time"] > first[0]["time"]


def test_inventory_is_skipped_until_the_interval_has_passed(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    connector = make(event_types=["user_management"])
    host = Host()
    add_directory(httpx_mock, GROUPS, USERS)
    host.run(connector)
    requests_after_first = len(httpx_mock.get_requests())

    clock.now = T0 + 59 * MINUTE
    assert host.run(connector) == []
    assert len(httpx_mock.get_requests()) == requests_after_first  # no directory call at all
    assert connector.summary.sections["user_management"].skipped_until_ms == T0 + 60 * MINUTE
    assert any("not due until 2026-03-02T13:00:00Z" in line for line in connector.summary.lines())
    assert host.checkpoint.streams["user_management"].collected_at_ms == T0

    clock.now = T0 + 60 * MINUTE
    add_directory(httpx_mock, GROUPS, USERS)
    assert len(host.run(connector)) == 3
    assert connector.summary.sections["user_management"].skipped_until_ms is None


def test_user_inventory_is_sent_in_batches_of_1000_without_checkpoint(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    domain = "contoso.example.org"
    addresses = [f"user{n:04d}@{domain}" for n in range(1001)]
    add_group_listings(httpx_mock)
    httpx_mock.add_response(method="POST", url=DOMAINS_URL, json=page([{"domain": domain}]))
    tokens = [None, "u2", "u3"]
    for index, chunk in enumerate((addresses[:500], addresses[500:1000], addresses[1000:])):
        pagination: dict[str, Any] = {"pageSize": 500}
        if tokens[index] is not None:
            pagination["pageToken"] = tokens[index]
        next_token = tokens[index + 1] if index + 1 < len(tokens) else None
        httpx_mock.add_response(
            method="POST",
            url=USERS_URL,
            match_json={"meta": {"pagination": pagination}, "data": [{"domain": domain}]},
            json=nested_page("users", [{"emailAddress": a, "domain": domain} for a in chunk], next_token),
        )
    host = Host()
    connector = make(event_types=["user_management"])
    host.run(connector)
    shape = [(b.table, len(b.events), b.checkpoint is not None) for b in host.batches]
    assert shape == [("user_inventory", 1000, False), ("user_inventory", 1, False), ("group_management", 0, True)]
    assert connector.summary.sections["user_management"].users == 1001


def test_inventory_failing_midway_commits_nothing_and_keeps_the_previous_snapshot(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], clock: Clock
) -> None:
    previous = InventoryState(collected_at_ms=T0 - 2 * HOUR, memberships={"g-fin": GroupMembership("F", ("x@y.z",))})
    host = Host(committed=Checkpoint.of(user_management=previous).to_dict())
    add_group_listings(httpx_mock, [{"id": "g-fin", "description": "F"}])
    httpx_mock.add_response(method="POST", url=GROUP_MEMBERS_URL, status_code=400, json={"fail": []})
    connector = make(event_types=["user_management"])
    assert host.run(connector) == []
    assert "user_management" in connector.summary.failures
    assert host.checkpoint.streams["user_management"] == previous  # a partial pull must not look like mass removals


def test_users_mapped_before_their_listing_failed_are_not_reported_as_delivered(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    """A failed listing printed "3 events" (user_inventory) that no batch ever carried: they were mapped into the
    pending batch, then the next page failed. The summary counts what the consumer took."""
    add_group_listings(httpx_mock)
    domain = "contoso.example.org"
    httpx_mock.add_response(method="POST", url=DOMAINS_URL, json=page([{"domain": domain}]))
    people = [{"emailAddress": f"u{n}@{domain}", "name": f"u{n}", "domain": domain} for n in range(3)]
    httpx_mock.add_response(
        method="POST",
        url=USERS_URL,
        match_json={"meta": {"pagination": {"pageSize": 500}}, "data": [{"domain": domain}]},
        json=nested_page("users", people, next_token="u-tok2"),
    )
    httpx_mock.add_response(
        method="POST",
        url=USERS_URL,
        match_json={"meta": {"pagination": {"pageSize": 500, "pageToken": "u-tok2"}}, "data": [{"domain": domain}]},
        status_code=400,
        json={"fail": []},
    )
    connector = make(event_types=["user_management"])
    assert Host().run(connector) == []

    summary = connector.summary
    assert "user_management" in summary.failures
    assert summary.report.emitted["user_inventory"] == 3 and summary.delivered["user_inventory"] == 0
    assert "  user_inventory: 0 events delivered (3 mapped, 3 not handed out: the pass ended first, the next run " \
        "sends them)" in summary.lines()  # fmt: skip
    assert not any(line.strip() == "user_inventory: 3 events" for line in summary.lines())


def test_delivered_counts_a_batch_once_the_host_asks_for_the_next(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    cursor = T0 - 10 * MINUTE
    add_audit(
        httpx_mock,
        cursor - OVERLAP,
        T0,
        [rec("a1", T0 - 5 * MINUTE), rec("c1", T0 - 4 * MINUTE, "User Password Changed")],
    )
    connector = make()
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor)).to_dict())
    # Took the first batch (account_change), asked for the second, and died with it before asking for more: the
    # second counts as handed out only once the consumer comes back for the next one.
    host.run(connector, crash_after=2)
    assert dict(connector.summary.report.emitted) == {"account_change": 1, "authentication": 1}
    assert dict(connector.summary.delivered) == {"account_change": 1}

    add_audit(
        httpx_mock,
        cursor - OVERLAP,
        T0,
        [rec("a1", T0 - 5 * MINUTE), rec("c1", T0 - 4 * MINUTE, "User Password Changed")],
    )
    host.run(connector)
    assert connector.summary.delivered == connector.summary.report.emitted
    assert "  authentication: 1 events delivered" in connector.summary.lines()


def test_checkpoint_survives_both_event_types_in_one_run(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    add_audit(httpx_mock, T0 - LOOKBACK, T0, [rec("a1", T0 - MINUTE)])
    add_directory(httpx_mock, GROUPS, USERS)
    host = Host()
    host.run(make(event_types=["audit", "user_management"]))
    final = host.checkpoint
    assert final.streams["audit"].cursor_ms == T0 and "a1" in final.streams["audit"].seen
    assert final.streams["user_management"].collected_at_ms == T0
    assert host.batches[-1].table == "group_management"


def test_group_members_are_read_in_parallel_within_the_concurrency_bound(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    groups = {f"g{n}": (f"Group {n}", "cloud", [f"user{n}@contoso.example.org"]) for n in range(4)}
    add_group_listings(httpx_mock, [{"id": gid, "description": name} for gid, (name, _, _) in groups.items()])
    lock = threading.Lock()
    active = [0, 0]  # now, most
    barrier = threading.Barrier(2, timeout=10)  # concurrency=2: each pair must really run side by side

    def members(request: httpx.Request) -> httpx.Response:
        gid = json.loads(request.content)["data"][0]["id"]
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        barrier.wait()
        with lock:
            active[0] -= 1
        return httpx.Response(200, json=nested_page("groupMembers", [{"emailAddress": groups[gid][2][0]}]))

    httpx_mock.add_callback(members, method="POST", url=GROUP_MEMBERS_URL, is_reusable=True)
    httpx_mock.add_response(method="POST", url=DOMAINS_URL, json=page([]))
    host = Host()
    host.run(make(event_types=["user_management"], concurrency=2))
    assert active[1] == 2
    assert len(httpx_mock.get_requests(url=GROUP_MEMBERS_URL)) == 4
    memberships = host.checkpoint.streams["user_management"].memberships
    assert memberships is not None and sorted(memberships) == ["g0", "g1", "g2", "g3"]


def test_a_record_indexed_late_near_the_overlap_edge_is_logged(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector], caplog: pytest.LogCaptureFixture
) -> None:
    cursor = T0 - 5 * MINUTE
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor)).to_dict())
    add_audit(httpx_mock, cursor - OVERLAP, T0, [rec("late", cursor - 28 * MINUTE), rec("fresh", cursor - MINUTE)])
    connector = make()
    with caplog.at_level(logging.WARNING, logger="connector.collector"):
        assert originals(host.run(connector)) == ["fresh", "late"]
    warnings = [r for r in caplog.records if r.getMessage().startswith("audit record indexed late")]
    assert [getattr(r, "record_id", None) for r in warnings] == ["late"]
    assert getattr(warnings[0], "overlap_minutes", None) == 30
    assert connector.summary.sections["audit"].lag_warnings == 1
    assert any("28.0 min after the previous cursor" in line for line in connector.summary.lines())


def test_an_id_less_record_is_reported_at_its_position_even_after_skipped_duplicates(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    cursor = T0 - 5 * MINUTE
    host = Host(committed=Checkpoint.of(audit=AuditState(cursor_ms=cursor, seen={"dup": cursor - MINUTE})).to_dict())
    no_id = rec("", cursor)
    add_audit(httpx_mock, cursor - OVERLAP, T0, [rec("dup", cursor - MINUTE), rec("ok", cursor), no_id])
    connector = make()
    assert originals(host.run(connector)) == ["ok"]
    assert [e.record_id for e in connector.summary.report.errors] == ["#3"]  # the third record read in this pass
    assert connector.summary.sections["audit"].duplicates == 1


def test_a_record_that_is_not_an_object_is_reported_and_the_page_still_delivered(
    httpx_mock: HTTPXMock, make: Callable[..., MimecastConnector]
) -> None:
    add_audit(httpx_mock, T0 - LOOKBACK, T0, ["not an object", rec("ok", T0 - MINUTE), None])
    connector = make()
    host = Host()
    assert originals(host.run(connector)) == ["ok"]
    assert [e.record_id for e in connector.summary.report.errors] == ["#1", "#3"]
    assert host.checkpoint.streams["audit"].cursor_ms == T0
