"""End to end: the connector against the embedded simulator over real HTTP on 127.0.0.1, with faults.

The simulator and the connector read one fake clock (``Clock``), moved forward between runs, so index lag and
token expiry play out deterministically without waiting; the connector's ``sleep`` records instead of sleeping.
A small host loop (``host_run``) does what a SIEM host does: write each batch durably (``NdjsonSink`` write + sync) and
only then commit its checkpoint (``CheckpointStore``); it can also "crash" between a write and its commit.

One module-scoped scenario runs five consecutive collections with faults injected (401 token expiry mid-run,
429 bursts with ``X-RateLimit-Reset``, 5xx, HTTP 200 with a retryable ``fail``, index lag, malformed records, a
crash before a commit, membership changes between directory pulls); the tests below check what it produced.
The CLI tests (bad credentials, a missing product) run ``connector.cli.main`` against their own simulator.

No ``httpx_mock`` here: every request goes through a real socket to the simulator.
"""

from __future__ import annotations

import calendar
import io
import json
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import connector.cli
from connector.cli import main
from connector.collector import RunSummary
from connector.host import MimecastConnector
from connector.log import configure_logging
from connector.ocsf.validate import EventValidator
from connector.simulator import FaultPlan, MembershipChanges, Reply, Simulator, TenantSpec
from connector.sinks.ndjson import NdjsonSink
from connector.store import CheckpointStore

NOW = calendar.timegm((2026, 6, 15, 12, 0, 0, 0, 0, 0))  # the fake clock's start, epoch seconds
HOUR = 3600
MINUTE = 60
CLIENT_ID = "e2e-client-id"
SECRET = "e2e-S3cr3t/with+odd=chars&more"
LAG_MAX = 20 * MINUTE  # index lag, below the 30-minute overlap so no late record can be missed
AUDIT_TABLES = ("authentication", "account_change", "group_management", "base_event")
DIRECTORY_FEATURE = "User and Group Management"  # metadata.product.feature.name of directory-derived events
CRASH_AFTER_BATCHES = 7


class Clock:
    """The one clock both sides read: the simulator in epoch seconds, the connector in epoch milliseconds."""

    def __init__(self, start: float) -> None:
        self.t = float(start)

    def seconds(self) -> float:
        return self.t

    def ms(self) -> int:
        return int(self.t * 1000)

    def advance(self, seconds: float) -> None:
        self.t += seconds


class WaitClock:
    """The connector's monotonic clock in these tests: it moves only by what the connector sleeps, which is
    recorded instead of slept. (A real clock would keep the rate gate closed for the whole test.)"""

    def __init__(self, sleeps: list[float]) -> None:
        self.sleeps = sleeps
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
    """The simulator, also remembering every access token it issued (to prove none leaks)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued_tokens: list[str] = []

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, **kwargs: Any) -> Reply:
        reply = super().handle(method, path, headers, body, **kwargs)
        if path == "/oauth/token" and reply.status == 200 and isinstance(reply.body, dict):
            self.issued_tokens.append(str(reply.body["access_token"]))
        return reply


@dataclass
class RunResult:
    """What one host run wrote, committed and reported."""

    name: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (table, event) in write order
    uncommitted: list[dict[str, Any]] = field(default_factory=list)  # written after the last commit
    crashed: bool = False
    commits: int = 0
    summary: RunSummary | None = None
    served_before: int = 0  # len(served_audit_ids()) when the run started
    served_after: int = 0
    started_ms: int = 0


def host_run(
    name: str,
    connector: MimecastConnector,
    store: CheckpointStore,
    sink: NdjsonSink,
    sim: Simulator,
    clock: Clock,
    *,
    crash_after_batches: int | None = None,
) -> RunResult:
    """One scheduled run as a host performs it: write a batch durably, then commit its checkpoint.

    With ``crash_after_batches``, the host dies right after writing that many non-empty batches: it stops
    consuming and does not commit the checkpoint of the last one (nor anything after it).
    """
    result = RunResult(name, served_before=len(sim.served_audit_ids()), started_ms=clock.ms())
    written = 0
    batches = connector.collect(store.load())
    try:
        for batch in batches:
            sink.write(batch)
            if batch.table is not None:
                result.events.extend((batch.table, event) for event in batch.events)
            result.uncommitted.extend(batch.events)
            if batch.events:
                written += 1
                if crash_after_batches is not None and written >= crash_after_batches:
                    result.crashed = True
                    break
            if batch.checkpoint is not None:
                sink.sync()  # the events reach the disk before the checkpoint that covers them
                store.save(batch.checkpoint)
                result.commits += 1
                result.uncommitted = []
    finally:
        batches.close()
    result.summary = connector.summary
    result.served_after = len(sim.served_audit_ids())
    return result


def make_connector(sim: Simulator, clock: Clock, sleeps: list[float], page_size: int = 100) -> MimecastConnector:
    parameters = {
        "api_base_url": sim.base_url,
        "client_key": CLIENT_ID,
        "client_secret": SECRET,
        "initial_lookback_hours": 24,
        "overlap_minutes": 30,
        "page_size": page_size,
        "emit_other_audit_types": True,
        "inventory_interval_minutes": 0,
        "log_level": "DEBUG",
    }
    waited = WaitClock(sleeps)
    return MimecastConnector(parameters, environ={}, now_ms=clock.ms, sleep=waited.sleep, clock=waited.monotonic)


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def is_audit_event(table: str, event: dict[str, Any]) -> bool:
    feature = event.get("metadata", {}).get("product", {}).get("feature", {}).get("name")
    return table in AUDIT_TABLES and feature != DIRECTORY_FEATURE


def membership_events(run: RunResult) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(group uid, member address) pairs of the run's inventory-diff Add User and Remove User events."""
    added: set[tuple[str, str]] = set()
    removed: set[tuple[str, str]] = set()
    for table, event in run.events:
        if table != "group_management" or is_audit_event(table, event):
            continue
        user = event["user"]
        address = str(user.get("email_addr") or user.get("uid") or user.get("name")).lower()
        assert event["activity_id"] in (3, 4), event
        (added if event["activity_id"] == 3 else removed).add((event["group"]["uid"], address))
    return added, removed


def expected_pairs(changes: MembershipChanges) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    added = {(gid, address.lower()) for gid, address in changes.added}
    removed = {(gid, address.lower()) for gid, address in changes.removed}
    return added - removed, removed - added


@dataclass
class Scenario:
    """Everything the consecutive runs produced, for the tests to inspect."""

    sim: RecordingSimulator
    clock: Clock
    runs: list[RunResult]
    changes: dict[str, MembershipChanges]
    sleeps: list[float]
    output: Path
    state: Path
    log_text: str


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("e2e")
    output, state = root / "out", root / "state" / "checkpoint.json"
    clock = Clock(NOW)
    # A day of history before "now" and more in the future, which becomes visible as the clock moves.
    spec = TenantSpec(seed=11, users=60, groups=8, domains=2, audit_events_per_day=2400, days=1.5, end=NOW + 12 * HOUR)
    faults = FaultPlan(lag_max_seconds=LAG_MAX, lag_fraction=0.3)
    sim = RecordingSimulator(spec, client_id=CLIENT_ID, client_secret=SECRET, clock=clock.seconds, faults=faults)
    log_stream = io.StringIO()
    root_logger = logging.getLogger()
    saved_level = root_logger.level
    configure_logging("DEBUG", stream=log_stream, secrets=[SECRET])
    sleeps: list[float] = []
    runs: list[RunResult] = []
    changes: dict[str, MembershipChanges] = {}
    store = CheckpointStore(state)
    sink = NdjsonSink(str(output), per_table=True)
    sim.start()
    try:
        # Run 1, the first: the tokens expire after a few calls (401 mid-run); pages carry malformed entries.
        sim.faults.expire_tokens_after_calls = 4
        sim.faults.malformed_per_page = 2
        sim.faults.malformed_pages = 3
        with make_connector(sim, clock, sleeps) as connector:
            runs.append(host_run("first", connector, store, sink, sim, clock))

        # Two hours later the host crashes after writing a few batches, before committing the last one.
        clock.advance(2 * HOUR)
        with make_connector(sim, clock, sleeps, page_size=40) as connector:
            runs.append(host_run("crash", connector, store, sink, sim, clock, crash_after_batches=CRASH_AFTER_BATCHES))

        # The host restarts (a new connector) 5 minutes later; 429 bursts with X-RateLimit-Reset.
        clock.advance(5 * MINUTE)
        sim.faults.rate_limit_next = 3
        sim.faults.rate_limit_reset_ms = 2500
        connector = make_connector(sim, clock, sleeps)
        try:
            runs.append(host_run("restart", connector, store, sink, sim, clock))

            # 10 minutes later, memberships changed; 5xx and HTTP-200-with-retryable-fail answers.
            clock.advance(10 * MINUTE)
            changes["diff1"] = sim.mutate_memberships(seed=1, changes=8)
            sim.faults.server_error_next = 2
            sim.faults.fail_next = 2
            sim.faults.fail_retryable = True
            runs.append(host_run("diff1", connector, store, sink, sim, clock))

            # 25 minutes later (the token the connector holds expired on the simulator's clock), more changes.
            clock.advance(25 * MINUTE)
            changes["diff2"] = sim.mutate_memberships(seed=2, changes=6)
            runs.append(host_run("diff2", connector, store, sink, sim, clock))

            # Past the longest index lag: every record up to the previous run is visible now.
            clock.advance(LAG_MAX + 5 * MINUTE)
            runs.append(host_run("settled", connector, store, sink, sim, clock))
        finally:
            connector.close()
    finally:
        sim.stop()
        sink.close()
        for handler in list(root_logger.handlers):
            if getattr(handler, "stream", None) is log_stream:
                root_logger.removeHandler(handler)
        root_logger.setLevel(saved_level)
    yield Scenario(sim, clock, runs, changes, sleeps, output, state, log_stream.getvalue())


def output_events(scenario: Scenario) -> list[tuple[str, dict[str, Any]]]:
    """Every event in the output files, with its table."""
    events = []
    for path in sorted(scenario.output.glob("*.ndjson")):
        events.extend((path.stem, event) for event in read_ndjson(path))
    return events


# ------------------------------------------------------------------------------------------ the scenario


def test_faults_were_really_injected_and_handled(scenario: Scenario) -> None:
    counters = scenario.sim.counters
    assert counters.unauthorized >= 2  # the mid-run expiry, and the token that expired on the clock
    assert counters.rate_limited == 3
    assert counters.server_errors == 2
    assert counters.fail_responses == 2
    assert counters.malformed_served == 6
    assert counters.tokens_issued >= 3
    # The 429s were waited out through the injected sleep, for the X-RateLimit-Reset duration (+ <= 10 % jitter).
    rate_limit_waits = [s for s in scenario.sleeps if 2.5 <= s <= 2.75]
    assert len(rate_limit_waits) == 3, scenario.sleeps
    for run in scenario.runs:
        assert run.summary is not None
        assert run.summary.failures == {}, (run.name, run.summary.failures)
    # Two 5xx then two retryable fails on one request: exponential backoff through the injected sleep.
    assert scenario.sleeps[3:] == [1.0, 2.0, 4.0, 8.0]


def test_every_line_is_valid_ocsf(scenario: Scenario) -> None:
    validator = EventValidator()
    events = output_events(scenario)
    assert {table for table, _ in events} >= {
        "authentication", "account_change", "group_management", "user_inventory", "base_event",
    }  # fmt: skip
    for table, event in events:
        assert validator.problems(event) == [], (table, event["metadata"]["uid"])


def test_every_served_record_is_delivered_exactly_once_after_dedup_by_uid(scenario: Scenario) -> None:
    served = scenario.sim.served_audit_ids()
    well_formed = {rid for rid in served if rid is not None and not rid.startswith("malformed-")}
    audit = [(table, e) for table, e in output_events(scenario) if is_audit_event(table, e)]
    by_uid: dict[str, set[str]] = defaultdict(set)
    for _, event in audit:
        by_uid[event["metadata"]["uid"]].add(event["metadata"]["original_event_uid"])
    # One metadata.uid per record: the host's dedup by uid is exactly dedup by record.
    assert all(len(ids) == 1 for ids in by_uid.values())
    delivered = Counter(next(iter(ids)) for ids in by_uid.values())
    assert all(count == 1 for count in delivered.values()), delivered.most_common(3)
    delivered_well_formed = {rid for rid in delivered if not rid.startswith("malformed-")}
    assert delivered_well_formed == well_formed
    # Raw lines: every record once, except those re-delivered after the crash (twice, with the same uid).
    lines = Counter(event["metadata"]["original_event_uid"] for _, event in audit)
    redelivered = {rid for rid, count in lines.items() if count > 1}
    assert all(lines[rid] == 2 for rid in redelivered)
    crash = scenario.runs[1]
    assert redelivered == {e["metadata"]["original_event_uid"] for e in crash.uncommitted}


def test_the_whole_tenant_history_up_to_the_settled_instant_is_collected(scenario: Scenario) -> None:
    tenant = scenario.sim.tenant
    last = scenario.runs[-1]
    settled_until = last.started_ms // 1000 - int(LAG_MAX)  # no record older than this can still be invisible
    first = tenant.first_index_at_or_after(NOW - 24 * HOUR)
    until = tenant.first_index_at_or_after(settled_until + 1)
    expected = {tenant.audit_id(i) for i in range(first, until)}
    delivered = {e["metadata"]["original_event_uid"] for t, e in output_events(scenario) if is_audit_event(t, e)}
    assert len(expected) > 2000
    assert expected - delivered == set()


def test_late_records_are_collected_by_a_later_run(scenario: Scenario) -> None:
    tenant = scenario.sim.tenant
    times = {tenant.audit_id(i): tenant.event_time(i) for i in range(tenant.event_count)}
    first_run_of: dict[str, int] = {}
    for number, run in enumerate(scenario.runs):
        for table, event in run.events:
            if is_audit_event(table, event):
                first_run_of.setdefault(event["metadata"]["original_event_uid"], number)
    late = [
        rid
        for rid, number in first_run_of.items()
        if number > 0 and rid in times and times[rid] * 1000 < scenario.runs[number - 1].started_ms
    ]
    # Records that existed (by eventTime) before the previous run started, but only became visible afterwards.
    assert len(late) >= 5
    assert any(run.summary is not None and run.summary.sections["audit"].max_late_ms > 0 for run in scenario.runs[1:])


def test_malformed_records_are_refused_and_counted_not_lost(scenario: Scenario) -> None:
    first = scenario.runs[0]
    assert first.summary is not None
    report = first.summary.report
    emitted_malformed = {
        e["metadata"].get("original_event_uid")
        for t, e in first.events
        if is_audit_event(t, e) and str(e["metadata"].get("original_event_uid")).startswith("malformed-")
    }
    # Each of the 6 malformed entries is refused with a reason, or (still a mappable record) emitted and valid.
    assert report.failures >= 4
    assert report.failures + len(emitted_malformed) == 6
    assert all(error.stage in ("mapping", "validation") and error.message for error in report.errors)
    for run in scenario.runs[1:]:
        assert run.summary is not None and run.summary.report.failures == 0


def test_crash_between_write_and_commit_redelivers_only_the_uncommitted_batch(scenario: Scenario) -> None:
    crash, restart = scenario.runs[1], scenario.runs[2]
    assert crash.crashed and crash.commits >= 1 and crash.uncommitted
    crash_uids = {e["metadata"]["uid"] for e in crash.uncommitted}
    committed_uids = {e["metadata"]["uid"] for _, e in crash.events} - crash_uids
    restart_uids = {e["metadata"]["uid"] for t, e in restart.events if is_audit_event(t, e)}
    assert crash_uids <= restart_uids  # re-delivered, with the same metadata.uid
    assert not committed_uids & restart_uids  # what was committed is not delivered again
    for run in scenario.runs[3:]:
        assert not crash_uids & {e["metadata"]["uid"] for _, e in run.events}


def test_inventory_diffs_are_exactly_the_membership_changes(scenario: Scenario) -> None:
    by_name = {run.name: run for run in scenario.runs}
    for name in ("diff1", "diff2"):
        want_added, want_removed = expected_pairs(scenario.changes[name])
        assert want_added or want_removed
        assert membership_events(by_name[name]) == (want_added, want_removed), name
    for name in ("first", "crash", "restart", "settled"):
        assert membership_events(by_name[name]) == (set(), set()), name
    users = [e for t, e in by_name["diff2"].events if t == "user_inventory"]
    assert len(users) == 60


def test_no_secret_reaches_output_logs_or_state(scenario: Scenario) -> None:
    tokens = scenario.sim.issued_tokens
    assert len(tokens) >= 3
    # The capture worked, and it holds the lines most likely to carry a credential.
    for message in ("access token obtained", "token refused by API, refreshing once", "rate limited, waiting",
                    "retrying request", "record not emitted", "HTTP Request: POST"):  # fmt: skip
        assert message in scenario.log_text, message
    files = [*scenario.output.glob("*.ndjson"), scenario.state]
    texts = {str(path): path.read_text() for path in files}
    texts["log"] = scenario.log_text
    for where, text in texts.items():
        assert SECRET not in text, where
        for token in tokens:
            assert token not in text, where


def test_the_committed_checkpoint_is_current_and_bounded(scenario: Scenario) -> None:
    state = json.loads(scenario.state.read_text())
    last = scenario.runs[-1]
    assert state["streams"]["audit"]["cursor_ms"] == last.started_ms
    seen_times = (
        list(state["streams"]["audit"]["seen"].values()) if isinstance(state["streams"]["audit"]["seen"], dict) else []
    )
    overlap_ms = 30 * MINUTE * 1000
    assert seen_times
    assert all(t >= last.started_ms - overlap_ms - 1000 for t in seen_times)


def test_a_crash_in_the_first_run_skips_nothing_at_the_start_of_the_lookback(tmp_path: Path) -> None:
    """The first run crashes after committing a few pages but before finishing its first 6-hour slice; the host
    restarts 5 minutes later. Every record from the first run's lookback start on must still be delivered: the page
    checkpoints pin that start (cursor = start + overlap, so the next window begins exactly there)."""
    clock = Clock(NOW)
    spec = TenantSpec(seed=3, users=10, groups=2, domains=1, audit_events_per_day=2400, days=1, end=NOW)
    store = CheckpointStore(tmp_path / "state.json")
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    sleeps: list[float] = []
    with Simulator(spec, client_id=CLIENT_ID, client_secret=SECRET, clock=clock.seconds) as sim:
        with make_connector(sim, clock, sleeps, page_size=20) as connector:
            crash = host_run("crash", connector, store, sink, sim, clock, crash_after_batches=8)
        assert crash.crashed and crash.commits >= 1
        checkpoint = store.load()
        assert checkpoint is not None and checkpoint.streams["audit"].seen
        assert checkpoint.streams["audit"].cursor_ms == (NOW - 24 * HOUR + 30 * MINUTE) * 1000
        clock.advance(5 * MINUTE)
        with make_connector(sim, clock, sleeps) as connector:
            host_run("restart", connector, store, sink, sim, clock)
    sink.close()
    delivered = {
        event["metadata"]["original_event_uid"]
        for path in (tmp_path / "out").glob("*.ndjson")
        for event in read_ndjson(path)
        if is_audit_event(path.stem, event)
    }
    tenant = sim.tenant
    expected = {tenant.audit_id(i) for i in range(tenant.first_index_at_or_after(NOW - 24 * HOUR), tenant.event_count)}
    missing = sorted(
        tenant.event_time(i) - NOW for i in range(tenant.event_count) if tenant.audit_id(i) in expected - delivered
    )
    assert missing == [], (
        f"{len(missing)} records never delivered, eventTime - NOW from {missing[0]} to {missing[-1]} s"
    )


# ----------------------------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_sim() -> Iterator[RecordingSimulator]:
    spec = TenantSpec(seed=5, users=20, groups=4, domains=1, audit_events_per_day=200, days=2)
    with RecordingSimulator(spec, client_id=CLIENT_ID, client_secret=SECRET) as sim:
        yield sim


@pytest.fixture
def cli_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The CLI's JSON log lines (its own handler, redaction included), captured instead of going to stderr."""
    stream = io.StringIO()

    def configure(level: str = "INFO", stream_: object = None, secrets: Iterable[str] = ()) -> None:
        configure_logging(level, stream=stream, secrets=secrets)

    monkeypatch.setattr(connector.cli, "configure_logging", configure)
    root_logger = logging.getLogger()
    saved_level = root_logger.level
    yield stream
    for handler in list(root_logger.handlers):
        if getattr(handler, "stream", None) is stream:
            root_logger.removeHandler(handler)
    root_logger.setLevel(saved_level)


def write_config(path: Path, sim: Simulator, secret: str) -> str:
    path.write_text(json.dumps({"api_base_url": sim.base_url, "client_key": CLIENT_ID, "client_secret": secret}))
    return str(path)


def test_cli_bad_credentials_end_with_a_clear_message_and_non_zero_exit(
    cli_sim: RecordingSimulator, cli_log: io.StringIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "not-the-S3cret-123"
    config = write_config(tmp_path / "bad.json", cli_sim, wrong)
    assert main(["check", "--config", config]) == 3  # AuthError
    err = capsys.readouterr().err
    assert err.startswith("error: Mimecast rejected the client key or secret"), err
    state, out = tmp_path / "state.json", tmp_path / "out"
    code = main(["run", "--config", config, "--state", str(state), "--output-dir", str(out), "--log-level", "DEBUG"])
    err = capsys.readouterr().err
    assert code == 3
    assert "FAILED audit: Mimecast rejected the client key or secret" in err
    assert "FAILED user_management: Mimecast rejected the client key or secret" in err
    assert not state.exists() and not list(out.glob("*.ndjson"))
    assert cli_sim.issued_tokens == []
    log = cli_log.getvalue()
    assert "collection failed" in log
    assert wrong not in err + log


def test_cli_forbidden_audit_names_the_audit_events_product(
    cli_sim: RecordingSimulator, cli_log: io.StringIO, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_sim.faults.forbid_audit = True
    config = write_config(tmp_path / "cfg.json", cli_sim, SECRET)
    assert main(["check", "--config", config]) == 4  # PermissionDeniedError
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'Audit Events' product" in err, err
    state, out = tmp_path / "state.json", tmp_path / "out"
    code = main(["run", "--config", config, "--state", str(state), "--output-dir", str(out), "--log-level", "DEBUG"])
    err = capsys.readouterr().err
    assert code == 4
    assert "FAILED audit:" in err and "'Audit Events' product" in err, err
    # The directory does not need that product: it was still collected, and its checkpoint committed.
    assert len(read_ndjson(out / "user_inventory.ndjson")) == 20
    assert json.loads(state.read_text())["streams"]["user_management"]["collected_at_ms"] is not None
    assert not (out / "authentication.ndjson").exists()
    log = cli_log.getvalue()
    assert cli_sim.issued_tokens and "Audit Events" in log
    for text in (err, log, state.read_text()):
        assert SECRET not in text
        assert not any(token in text for token in cli_sim.issued_tokens)
