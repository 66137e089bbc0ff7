"""Parallel catch-up: ``ordered_walks`` on plain iterators, ``MimecastClient.ordered_pages`` and the window stream
at ``catchup_concurrency`` > 1 (order, prefix commits, the shared rate gate, bounded read-ahead, no thread left).

Nothing here measures speed (bench/bench_catchup.py does); waits on events have generous timeouts only so that a
bug fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_http import AUDIT_URL, BASE, CLIENT_KEY, SECRET_VALUE, TOKEN_URL, token_json
from pytest_httpx import HTTPXMock
from test_e2e import CLIENT_ID, SECRET, Clock, host_run, is_audit_event, make_connector, read_ndjson

from connector.api.ordered import ordered_walks
from connector.api.ratelimit import RateGate, RetryPolicy
from connector.checkpoint import AuditState, Checkpoint
from connector.config import Config
from connector.errors import ConfigError
from connector.host import MimecastConnector
from connector.runner import deliver
from connector.simulator import FaultPlan, Simulator, TenantSpec
from connector.sinks.ndjson import NdjsonSink
from connector.store import CheckpointStore
from connector.streams.audit import SLICE_MS

MINUTE = 60_000
HOUR = 60 * MINUTE
T0 = int(datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC).timestamp() * 1000)
OVERLAP = 30 * MINUTE


def _catch_up_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("walk-", "catch-up-"))]


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class Walks:
    """Walks of known lengths that record what they produced, on which thread; ``fail=(walk, item)`` raises."""

    def __init__(self, lengths: list[int], fail: tuple[int, int] | None = None) -> None:
        self.lengths, self.fail = lengths, fail
        self.produced: list[list[int]] = [[] for _ in lengths]
        self.opened: list[int] = []
        self.cancels: list[threading.Event] = []
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def walk(self, index: int) -> Callable[[threading.Event], Iterator[tuple[int, int]]]:
        def items(cancel: threading.Event) -> Iterator[tuple[int, int]]:
            self.opened.append(index)  # called on the consumer's thread, in order
            self.cancels.append(cancel)
            with self._lock:
                self.running += 1
                self.most_running = max(self.most_running, self.running)
            try:
                for n in range(self.lengths[index]):
                    if self.fail == (index, n):
                        raise LookupError(f"walk {index} failed at {n}")
                    time.sleep(0.001 * ((index * 7 + n * 3) % 4))  # walks finish out of order
                    self.produced[index].append(n)
                    yield index, n
            finally:
                with self._lock:
                    self.running -= 1

        return items

    def all(self) -> Iterator[Callable[[threading.Event], Iterator[tuple[int, int]]]]:
        return (self.walk(i) for i in range(len(self.lengths)))


# -- ordered_walks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 2, 4, 16])
def test_items_come_walk_after_walk_in_order_whatever_order_the_walks_finish_in(concurrency: int) -> None:
    walks = Walks([3, 0, 5, 1, 4, 2, 6, 1])
    got = list(ordered_walks(walks.all(), concurrency=concurrency, ahead=2))
    assert [item for _, item in got] == [(w, n) for w, length in enumerate(walks.lengths) for n in range(length)]
    assert [index for index, (w, _) in got] == [w for w, _ in (item for _, item in got)]
    assert walks.most_running <= concurrency
    assert walks.opened == list(range(8))
    assert _wait_until(lambda: not _catch_up_threads())


def test_at_most_concurrency_walks_are_open_and_the_others_are_not_started() -> None:
    walks = Walks([50] * 8)
    items = ordered_walks(walks.all(), concurrency=3, ahead=2)
    assert next(items) == (0, (0, 0))
    assert walks.opened == [0, 1, 2]  # 3..7 not even created
    items.close()


def test_a_walk_waiting_its_turn_reads_at_most_ahead_items() -> None:
    walks = Walks([40, 40, 40])
    items = ordered_walks(walks.all(), concurrency=3, ahead=4)
    assert next(items) == (0, (0, 0))
    assert _wait_until(lambda: len(walks.produced[1]) == 4 and len(walks.produced[2]) == 4)
    time.sleep(0.05)  # a runaway worker would show itself here
    assert len(walks.produced[1]) == len(walks.produced[2]) == 4
    assert len(walks.produced[0]) <= 1 + 4
    items.close()
    assert not _catch_up_threads()


def test_an_error_in_walk_3_of_8_comes_after_walks_1_and_2_and_stops_every_worker() -> None:
    walks = Walks([3, 3, 3, 3, 3, 3, 3, 3], fail=(2, 1))
    got: list[tuple[int, int]] = []
    with pytest.raises(LookupError, match="walk 2 failed at 1"):
        for _, item in ordered_walks(walks.all(), concurrency=4, ahead=2):
            got.append(item)
    assert got == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]  # nothing of walks 4-8
    assert walks.opened == [0, 1, 2, 3, 4, 5]  # a slot opens only once a walk was handed out whole
    assert all(cancel.is_set() for cancel in walks.cancels[2:])
    assert not _catch_up_threads()  # joined before the error reached the caller


def test_the_other_walks_open_only_once_the_first_has_produced_an_item() -> None:
    """A failure every walk would meet (a refused credential) costs one request, not ``concurrency``."""
    walks = Walks([3] * 6, fail=(0, 0))
    with pytest.raises(LookupError, match="walk 0 failed at 0"):
        list(ordered_walks(walks.all(), concurrency=4, ahead=2))
    assert walks.opened == [0]
    assert not _catch_up_threads()


def test_closing_early_cancels_and_joins_every_open_walk() -> None:
    before = threading.active_count()
    walks = Walks([100] * 6)
    items = ordered_walks(walks.all(), concurrency=4, ahead=3)
    next(items)
    next(items)
    items.close()
    assert all(cancel.is_set() for cancel in walks.cancels)
    assert not _catch_up_threads()
    assert threading.active_count() == before


def test_concurrency_and_ahead_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        list(ordered_walks(iter([]), concurrency=0, ahead=1))
    with pytest.raises(ValueError, match="ahead"):
        list(ordered_walks(iter([]), concurrency=1, ahead=0))


# -- the parameter ------------------------------------------------------------------------------------------


def _config(**extra: Any) -> Config:
    return Config.from_parameters(
        {"api_base_url": BASE, "client_key": CLIENT_KEY, "client_secret": SECRET_VALUE, **extra}, environ={}
    )


def test_catchup_concurrency_defaults_to_4_and_takes_1_to_16() -> None:
    assert _config().catchup_concurrency == 4
    assert _config(catchup_concurrency=1).catchup_concurrency == 1
    assert _config(catchup_concurrency="16").catchup_concurrency == 16
    for bad in (0, 17, 2.5, "four"):
        with pytest.raises(ConfigError) as caught:
            _config(catchup_concurrency=bad)
        assert caught.value.parameter == "catchup_concurrency"


# -- the window stream against pytest-httpx ------------------------------------------------------------------


def _mc(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _from_mc(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp() * 1000)


def _rec(rid: str, event_ms: int) -> dict[str, Any]:
    return {
        "id": rid,
        "auditType": "User Logged On",
        "user": "alice@example.com",
        "eventTime": _mc(event_ms),
        "eventInfo": "Successful logon - Date: 2026-03-02, Time: 10:00:00 GMT, IP: 192.0.2.10, Application: Web",
        "category": "authentication_logs",
    }


class Tenant:
    """Answers audit requests by window: ``pages`` pages of one record per slice (by its start); a slice listed in
    ``failing`` answers a non-retryable ``fail`` on its second page. Records every request, in order."""

    def __init__(self, start: int, pages: int = 2, failing: frozenset[int] = frozenset()) -> None:
        self.start, self.pages, self.failing = start, pages, failing
        self.sent: list[tuple[int, str | None]] = []  # (slice number, page token)
        self._lock = threading.Lock()

    def slice_of(self, start_ms: int) -> int:
        return (start_ms - self.start) // SLICE_MS

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        query = sent["data"][0]
        number = self.slice_of(_from_mc(query["startDateTime"]))
        token = sent["meta"]["pagination"].get("pageToken")
        with self._lock:
            self.sent.append((number, token))
        page = int(token[1:]) if token else 0
        if number in self.failing and page == 1:
            fail = [{"errors": [{"code": "err_slice", "message": "boom", "retryable": False}]}]
            return httpx.Response(200, json={"meta": {"status": 200}, "data": [], "fail": fail})
        record = _rec(f"s{number}p{page}", _from_mc(query["startDateTime"]) + MINUTE * (page + 1))
        pagination = {"pageSize": 500, "next": f"p{page + 1}"} if page + 1 < self.pages else {"pageSize": 500}
        return httpx.Response(200, json={"meta": {"status": 200, "pagination": pagination}, "data": [record]})


@pytest.fixture
def make(httpx_mock: HTTPXMock) -> Iterator[Callable[..., tuple[MimecastConnector, Tenant, Checkpoint]]]:
    """A connector whose audit cursor leaves exactly ``slices`` whole slices to read, against a ``Tenant``."""
    built: list[MimecastConnector] = []

    def factory(
        slices: int, *, concurrency: int, pages: int = 2, failing: frozenset[int] = frozenset()
    ) -> tuple[MimecastConnector, Tenant, Checkpoint]:
        cursor = T0 - slices * SLICE_MS + OVERLAP
        tenant = Tenant(cursor - OVERLAP, pages, failing)
        httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t1"))
        httpx_mock.add_callback(tenant, method="POST", url=AUDIT_URL, is_reusable=True)
        params = {
            "api_base_url": BASE,
            "client_key": CLIENT_KEY,
            "client_secret": SECRET_VALUE,
            "event_types": ["audit"],
            "overlap_minutes": 30,
            "catchup_concurrency": concurrency,
        }
        connector = MimecastConnector(
            params, environ={}, now_ms=lambda: T0, sleep=lambda _: None, retry=RetryPolicy(max_attempts=1)
        )
        built.append(connector)
        return connector, tenant, Checkpoint.of(audit=AuditState(cursor_ms=cursor))

    yield factory
    for connector in built:
        connector.close()


def _original_ids(path: Path) -> list[str]:
    return sorted(e["metadata"]["original_event_uid"] for f in sorted(path.glob("*.ndjson")) for e in read_ndjson(f))


def test_a_failure_in_slice_3_of_8_commits_slices_1_and_2_only_even_with_later_slices_read(
    make: Callable[..., tuple[MimecastConnector, Tenant, Checkpoint]], tmp_path: Path
) -> None:
    connector, tenant, start = make(8, concurrency=4, failing=frozenset({2}))
    store = CheckpointStore(tmp_path / "state.json")
    store.save(start)
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    states: list[int] = []

    def batches() -> Iterator[Any]:
        for batch in connector.collect(store.load()):
            if batch.checkpoint is not None:
                states.append(batch.checkpoint.streams["audit"].cursor_ms)
            yield batch

    deliver(batches(), [sink], store, commit_interval=0.0)
    sink.close()

    first = tenant.start
    ends = [first + (k + 1) * SLICE_MS for k in range(8)]
    assert "err_slice" in connector.summary.failures["audit"]
    assert store.load().streams["audit"].cursor_ms == ends[1]  # slices 1-2, never 4-8
    assert set(states) <= {first + OVERLAP, ends[0], ends[1]}
    assert _original_ids(tmp_path / "out") == ["s0p0", "s0p1", "s1p0", "s1p1", "s2p0"]
    assert {(3, None), (4, None)} <= set(tenant.sent)  # read ahead (then dropped): the slices were read at once
    assert not any(number >= 6 for number, _ in tenant.sent)  # at most 4 slices open: 3, 4, 5 and 6 (index 2..5)
    assert not _catch_up_threads()

    # The next run restarts at slice 3 (its window from the end of slice 2 minus the overlap) and gets to now.
    tenant.failing = frozenset()
    tenant.sent.clear()
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    deliver(connector.collect(store.load()), [sink], store, commit_interval=0.0)
    sink.close()
    assert min(number for number, _ in tenant.sent) == 1  # ends[1] - overlap lies in slice 2 (index 1)
    assert store.load().streams["audit"].cursor_ms == T0
    assert "audit" not in connector.summary.failures


@pytest.mark.parametrize("concurrency", [1, 4])
def test_pages_are_delivered_in_slice_order_and_concurrency_1_sends_the_sequential_requests(
    make: Callable[..., tuple[MimecastConnector, Tenant, Checkpoint]], concurrency: int
) -> None:
    connector, tenant, start = make(5, concurrency=concurrency, pages=3)
    events = [e for batch in connector.collect(start) for e in batch.events]
    assert [e["metadata"]["original_event_uid"] for e in events] == [f"s{k}p{p}" for k in range(5) for p in range(3)]
    sequential = [(k, None if p == 0 else f"p{p}") for k in range(5) for p in range(3)]
    if concurrency == 1:
        assert tenant.sent == sequential
    else:
        assert sorted(tenant.sent, key=str) == sorted(sequential, key=str)
    assert not _catch_up_threads()


def test_concurrency_1_uses_no_catch_up_worker(
    make: Callable[..., tuple[MimecastConnector, Tenant, Checkpoint]], monkeypatch: pytest.MonkeyPatch
) -> None:
    names: list[str] = []
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        names.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    connector, _, checkpoint = make(3, concurrency=1)
    list(connector.collect(checkpoint))
    assert names == ["read-ahead"]  # today's one read-ahead worker over all the slices


# -- against the simulator over real HTTP --------------------------------------------------------------------


class RecordingGate(RateGate):
    """The rate gate, remembering when it was closed and until when."""

    def __init__(self) -> None:
        super().__init__()
        self.closings: list[tuple[float, float]] = []

    def close_for(self, seconds: float) -> float:
        closed_at = time.monotonic()
        opens_at = super().close_for(seconds)
        self.closings.append((closed_at, opens_at))
        return opens_at


class RecordingTransport(httpx.BaseTransport):
    """Remembers when each request was sent (monotonic) and for which window start."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[float, str, int]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        at = time.monotonic()
        start = ""
        if request.url.path == "/api/audit/get-audit-events":
            start = json.loads(request.content)["data"][0]["startDateTime"]
        response = self.inner.handle_request(request)
        with self._lock:
            self.sent.append((at, start, response.status_code))
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_429_on_one_slice_holds_every_slice_until_its_reset() -> None:
    spec = TenantSpec(seed=5, users=20, groups=2, domains=1, audit_events_per_day=2000, days=1.2)
    faults = FaultPlan(latency_seconds=0.01)
    with Simulator(spec, client_id=CLIENT_ID, client_secret=SECRET, faults=faults) as sim:
        transport = RecordingTransport()
        params = {
            "api_base_url": sim.base_url,
            "client_key": CLIENT_ID,
            "client_secret": SECRET,
            "event_types": ["audit"],
            "initial_lookback_hours": 24,
            "page_size": 100,
            "catchup_concurrency": 4,
        }
        policy = RetryPolicy(jitter=0.0, max_rate_limit_wait=5.0)
        with MimecastConnector(params, environ={}, transport=transport, retry=policy) as connector:
            gate = RecordingGate()
            connector.client.gate = gate
            sim.faults.rate_limit_reset_ms = 400
            sim.faults.expire_tokens_after_calls = None
            # the 429 comes after every slice has started reading
            original = sim.handle
            answered = 0

            def handle(*args: Any, **kw: Any) -> Any:
                nonlocal answered
                answered += 1
                if answered == 9:
                    sim.faults.rate_limit_next = 1
                return original(*args, **kw)

            sim.handle = handle  # type: ignore[method-assign]
            events = sum(len(batch.events) for batch in connector.collect(None))
            assert "audit" not in connector.summary.failures
    assert events > 1000
    assert sim.counters.rate_limited == 1
    assert len(gate.closings) == 1
    closed_at, opens_at = gate.closings[0]
    # A request that had passed the gate just before it closed may still go out at once; none later in the block.
    margin = 0.05
    inside = [(at, start) for at, start, _ in transport.sent if closed_at + margin < at < opens_at]
    assert inside == []
    after = {start for at, start, _ in transport.sent if at >= opens_at}
    assert len(after) >= 2  # several slices were held, and went on once it opened
    assert not _catch_up_threads()


def test_consecutive_runs_with_lag_faults_and_a_crash_lose_and_duplicate_nothing_at_concurrency_4(
    tmp_path: Path,
) -> None:
    """A first run over 2 days, an outage of 30 hours (a catch-up of 6 slices), 429s, 5xx, a retryable ``fail``,
    index lag and a crash between a write and its commit: every record once (by uid), nothing missing."""
    now = 1_781_524_800  # 2026-06-15T12:00:00Z
    clock = Clock(now)
    lag = 20 * 60
    spec = TenantSpec(seed=21, users=30, groups=3, domains=1, audit_events_per_day=1500, days=3.5, end=now + 40 * 3600)
    faults = FaultPlan(lag_max_seconds=lag, lag_fraction=0.3)
    sim = Simulator(spec, client_id=CLIENT_ID, client_secret=SECRET, clock=clock.seconds, faults=faults)
    store = CheckpointStore(tmp_path / "state.json")
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    sleeps: list[float] = []
    runs = []
    with sim:

        def run(name: str, **kw: Any) -> Any:
            connector = make_connector(sim, clock, sleeps)
            connector.config = replace(connector.config, initial_lookback_hours=48)
            with connector:
                result = host_run(name, connector, store, sink, sim, clock, **kw)
            runs.append(result)
            assert result.summary is not None and not result.summary.failures, result.summary.failures
            return result

        sim.faults.rate_limit_next = 2
        run("first")
        clock.advance(30 * 3600)
        sim.faults.server_error_next = 2
        sim.faults.fail_next = 1
        crash = run("outage", crash_after_batches=9)
        clock.advance(5 * 60)
        sim.faults.rate_limit_next = 3
        run("restart")
        clock.advance(lag + 5 * 60)
        run("settled")
    sink.close()
    assert crash.crashed
    assert sim.counters.rate_limited == 5 and sim.counters.server_errors == 2
    audit = [
        e for f in sorted((tmp_path / "out").glob("*.ndjson")) for e in read_ndjson(f) if is_audit_event(f.stem, e)
    ]
    delivered = [e["metadata"]["original_event_uid"] for e in audit]
    uids_per_record: dict[str, set[str]] = {}
    for e in audit:
        uids_per_record.setdefault(e["metadata"]["original_event_uid"], set()).add(e["metadata"]["uid"])
    assert all(len(uids) == 1 for uids in uids_per_record.values())
    redelivered = {rid for rid in set(delivered) if delivered.count(rid) > 1}
    assert redelivered <= {e["metadata"]["original_event_uid"] for e in crash.uncommitted}
    tenant = sim.tenant
    settled_until = runs[-1].started_ms // 1000 - lag
    first = tenant.first_index_at_or_after(now - 48 * 3600)
    until = tenant.first_index_at_or_after(settled_until + 1)
    expected = {tenant.audit_id(i) for i in range(first, until)}
    assert len(expected) > 3000
    assert expected - set(delivered) == set()
    assert not _catch_up_threads()
