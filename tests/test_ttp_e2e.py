"""End to end: the four TTP and DLP streams against the embedded simulator over real HTTP on 127.0.0.1.

One module-scoped scenario runs six consecutive collections of ``ttp_url``, ``ttp_attachment``,
``ttp_impersonation`` and ``dlp`` while records keep arriving with index lag (up to 20 minutes, below the 30-minute
overlap) and faults are injected: a token that expires mid-pagination, 429 bursts with ``X-RateLimit-Reset``, 5xx,
HTTP 200 with a retryable ``fail``, and a token that expires on the clock between runs. A host loop writes each
batch durably and only then commits its checkpoint. The tests check that nothing is lost and nothing duplicated by
``metadata.uid`` for each stream, that every request asked for the oldest record first, the tables, the cursors
and the state kept, and what a missing product and a cursor older than the history do.
"""

from __future__ import annotations

import calendar
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.checkpoint import Checkpoint
from connector.errors import PermissionDeniedError
from connector.host import MimecastConnector
from connector.mapping.mapper import Mapper
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.simulator import FaultPlan, Reply, Simulator, TenantSpec
from connector.simulator.ttp import LOG_PATHS, TtpSpec
from connector.sinks.ndjson import NdjsonSink
from connector.store import CheckpointStore
from connector.streams import registry as stream_registry
from connector.streams.keys import KeySnapshot
from connector.streams.ttp import HISTORY_MS, LOGS
from connector.streams.window import KeyedWindowState, WindowState
from connector.timefmt import parse_mimecast_time_ms

NOW = calendar.timegm((2026, 6, 15, 12, 0, 0, 0, 0, 0))
MINUTE, HOUR = 60, 3600
LAG_MAX = 20 * MINUTE
CLIENT_ID, SECRET = "ttp-client-id", "ttp-S3cr3t-for-the-e2e-runs"
NAMES = tuple(log.name for log in LOGS)
TABLES = {log.name: log.table for log in LOGS}
RATES = TtpSpec({"ttp_url": 480, "ttp_attachment": 160, "ttp_impersonation": 96, "dlp": 192})


class Clock:
    """The one wall clock both sides read (seconds for the simulator, ms for the connector)."""

    def __init__(self, start: float) -> None:
        self.t = float(start)

    def seconds(self) -> float:
        return self.t

    def ms(self) -> int:
        return int(self.t * 1000)


class WaitClock:
    """The connector's monotonic clock: it moves only by what the connector sleeps (recorded, not slept)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.now = 1000.0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def monotonic(self) -> float:
        with self._lock:
            return self.now


class RecordingSimulator(Simulator):
    """The simulator, remembering the query of every log request it answered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, **kwargs: Any) -> Reply:
        if path in PATHS:
            self.queries.append((path, json.loads(body)["data"][0]))
        return super().handle(method, path, headers, body, **kwargs)


PATHS = {path for path, _, _ in LOG_PATHS.values()}


def connector_for(sim: Simulator, clock: Clock, waits: WaitClock, **changes: object) -> MimecastConnector:
    parameters = {
        "api_base_url": sim.base_url,
        "client_key": CLIENT_ID,
        "client_secret": SECRET,
        "event_types": list(NAMES),
        "initial_lookback_hours": 24,
        "overlap_minutes": 30,
        "page_size": 40,
        **changes,
    }
    return MimecastConnector(parameters, environ={}, now_ms=clock.ms, sleep=waits.sleep, clock=waits.monotonic)


@dataclass
class Scenario:
    sim: RecordingSimulator
    clock: Clock
    waits: WaitClock
    output: Path
    state: Path
    summaries: list[Any]


def host_run(connector: MimecastConnector, store: CheckpointStore, sink: NdjsonSink) -> Any:
    """Write each batch durably, then commit its checkpoint."""
    batches = connector.collect(store.load())
    try:
        for batch in batches:
            sink.write(batch)
            if batch.checkpoint is not None:
                sink.sync()
                store.save(batch.checkpoint)
    finally:
        batches.close()
    return connector.summary


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("ttp-e2e")
    output, state = root / "out", root / "state.json"
    clock, waits = Clock(NOW), WaitClock()
    # A day of history before "now" and half a day more that becomes visible as the clock moves.
    spec = TenantSpec(seed=13, users=40, groups=2, days=1.5, end=NOW + 12 * HOUR)
    faults = FaultPlan(lag_max_seconds=LAG_MAX, lag_fraction=0.3)
    sim = RecordingSimulator(spec, client_id=CLIENT_ID, client_secret=SECRET, clock=clock.seconds, faults=faults,
                             ttp=RATES)  # fmt: skip
    store = CheckpointStore(state)
    sink = NdjsonSink(str(output), per_table=True)
    summaries = []
    with sim:
        connector = connector_for(sim, clock, waits)
        try:
            sim.faults.expire_tokens_after_calls = 5  # a 401 in the middle of a listing
            summaries.append(host_run(connector, store, sink))
            for step, arm in (
                (2 * HOUR, {"rate_limit_next": 3, "rate_limit_reset_ms": 2500}),
                (10 * MINUTE, {"server_error_next": 2}),
                (10 * MINUTE, {"fail_next": 2, "fail_retryable": True}),
                (25 * MINUTE, {}),  # the connector's token expired on the simulator's clock meanwhile
                (LAG_MAX + 5 * MINUTE, {}),  # past the longest lag: all before the previous run is visible
            ):
                clock.t += step
                for name, value in arm.items():
                    setattr(sim.faults, name, value)
                summaries.append(host_run(connector, store, sink))
        finally:
            connector.close()
            sink.close()
    yield Scenario(sim, clock, waits, output, state, summaries)


def delivered(scenario: Scenario, table: str) -> list[dict[str, Any]]:
    path = scenario.output / f"{table}.ndjson"
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def expected_uids(scenario: Scenario, name: str) -> list[str]:
    """What the simulator shows at the end, mapped as ``map --source NAME`` maps it (the uid derivation is the
    mapping's business; the stream's is to hand it the same key for the same record)."""
    sim, now = scenario.sim, int(scenario.clock.t)
    log = sim.ttp.log(name)
    visible = [log.render(i) for i in log.visible(0, now, now, sim.faults, True)]
    transformer = Transformer(Mapper(), EventValidator())
    mapped = list(stream_registry.stream(name).map_sources[name](transformer, visible, scenario.clock.ms()))
    assert len(mapped) == len(visible) and not transformer.report.failures
    return [m.event["metadata"]["uid"] for m in mapped]


def test_the_faults_were_injected_on_the_log_endpoints_and_handled(scenario: Scenario) -> None:
    counters = scenario.sim.counters
    assert counters.unauthorized >= 2 and counters.tokens_issued >= 3
    assert counters.rate_limited == 3 and counters.server_errors == 2 and counters.fail_responses == 2
    assert len([s for s in scenario.waits.sleeps if 2.5 <= s <= 2.75]) == 3  # the X-RateLimit-Reset waits
    for summary in scenario.summaries:
        assert summary.ok, summary.lines()
    late = [summary.sections[name].max_late_ms for summary in scenario.summaries for name in NAMES]
    assert max(late) > 0  # index lag really made records appear after a run had passed their time


@pytest.mark.parametrize("name", NAMES)
def test_nothing_is_lost_and_nothing_duplicated_by_uid(scenario: Scenario, name: str) -> None:
    events = delivered(scenario, TABLES[name])
    uids = [event["metadata"]["uid"] for event in events]
    duplicated = [uid for uid, count in Counter(uids).items() if count > 1]
    assert duplicated == []
    expected = expected_uids(scenario, name)
    assert sorted(uids) == sorted(expected)
    # every record up to the run before the last was certainly visible by the end: all of them are in
    before_last = (scenario.clock.t - LAG_MAX - 5 * MINUTE) * 1000
    assert sum(1 for event in events if event["time"] <= before_last) == sum(
        1 for r in scenario.sim.ttp.records(name) if parse_mimecast_time_ms(r[LOG_PATHS[name][2]]) <= before_last
    )
    overlap_skips = sum(summary.sections[name].duplicates for summary in scenario.summaries)
    assert overlap_skips > 0  # the overlap was re-read and skipped, by id or by content


def test_dlp_keeps_both_actions_of_one_message(scenario: Scenario) -> None:
    records = scenario.sim.ttp.records("dlp", until=int(scenario.clock.t) - LAG_MAX)
    assert len(delivered(scenario, "data_security_finding")) >= len(records)
    messages = Counter(r["messageId"] for r in records)
    assert set(messages.values()) == {2}  # each message twice (hold or block, and notification): both kept


def test_every_request_asks_for_the_oldest_record_first_in_the_mimecast_time_format(scenario: Scenario) -> None:
    queries = scenario.sim.queries
    assert {path for path, _ in queries} == PATHS
    for _, query in queries:
        assert query["oldestFirst"] is True
        assert set(query) == {"from", "to", "oldestFirst"}
        for bound in (query["from"], query["to"]):
            assert len(bound) == 24 and bound.endswith("+0000"), bound
        assert parse_mimecast_time_ms(query["from"]) <= parse_mimecast_time_ms(query["to"])


def test_each_stream_writes_its_table_and_its_cursor(scenario: Scenario) -> None:
    assert sorted(p.stem for p in scenario.output.glob("*.ndjson")) == sorted(TABLES.values())
    stored = json.loads(scenario.state.read_text())
    checkpoint = Checkpoint.from_dict(stored)
    for log in LOGS:
        state = checkpoint.streams[log.name]
        assert state.cursor_ms == scenario.clock.ms()  # type: ignore[attr-defined]
        for event in delivered(scenario, log.table):
            assert event["metadata"]["uid"] and event["class_uid"] == {
                "email_url_activity": 4012, "email_file_activity": 4011, "detection_finding": 2004,
                "data_security_finding": 2006,
            }[log.table]  # fmt: skip
    assert isinstance(checkpoint.streams["ttp_impersonation"], WindowState)
    assert all(key.startswith("MTOKEN:") for key in checkpoint.streams["ttp_impersonation"].seen)  # type: ignore[attr-defined]
    for name in ("ttp_url", "ttp_attachment", "dlp"):
        state = checkpoint.streams[name]
        assert isinstance(state, KeyedWindowState)
        kept = KeySnapshot.parse(stored["streams"][name]["keys"], "keys")
        # pruned to the overlap (30 min, whole minutes kept) and the last slice, not all ever delivered
        window_ms = (30 + 2) * 60_000 + (LAG_MAX + 5 * MINUTE) * 1000
        recent = [r for r in scenario.sim.ttp.records(name, until=int(scenario.clock.t))
                  if parse_mimecast_time_ms(r[LOG_PATHS[name][2]]) >= scenario.clock.ms() - window_ms]  # fmt: skip
        assert 0 < len(kept) <= len(recent)


def test_a_missing_product_is_named_by_the_preflight() -> None:
    with Simulator(TenantSpec(seed=2, users=5, groups=1, days=0.1, end=NOW), clock=lambda: float(NOW)) as sim:
        sim.ttp.forbidden.add("ttp_impersonation")
        parameters = {"api_base_url": sim.base_url, "client_key": "simulator-client-id",
                      "client_secret": sim.client_secret, "event_types": ["ttp_url", "ttp_impersonation"]}  # fmt: skip
        connector = MimecastConnector(parameters, environ={}, now_ms=lambda: NOW * 1000)
        with connector, pytest.raises(PermissionDeniedError) as caught:
            connector.check()
    message = str(caught.value)
    assert "ttp_impersonation" in message and "Security Events" in message


def test_a_cursor_older_than_the_history_is_clamped_and_the_gap_reported(tmp_path: Path) -> None:
    stale = NOW * 1000 - HISTORY_MS - 5 * 24 * HOUR * 1000  # five days beyond the 30-day history
    checkpoint = Checkpoint().with_state("ttp_impersonation", WindowState(cursor_ms=stale), NOW * 1000)
    spec = TenantSpec(seed=2, users=5, groups=1, days=0.5, end=NOW)
    with RecordingSimulator(spec, clock=lambda: float(NOW)) as sim:
        parameters = {"api_base_url": sim.base_url, "client_key": "simulator-client-id",
                      "client_secret": sim.client_secret, "event_types": ["ttp_impersonation"]}  # fmt: skip
        with MimecastConnector(parameters, environ={}, now_ms=lambda: NOW * 1000) as connector:
            list(connector.collect(checkpoint))
            lines = connector.summary.lines()
    assert any("NOT COLLECTED (older than Mimecast's 30-day history)" in line for line in lines), lines
    first = sim.queries[0][1]
    assert parse_mimecast_time_ms(first["from"]) == NOW * 1000 - HISTORY_MS
    assert connector.summary.ok
