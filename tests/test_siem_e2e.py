"""The SIEM stream end to end against the simulator's SIEM service (batch files on a second loopback host, the stream
endpoint, their faults): consecutive runs lose nothing and duplicate nothing by ``metadata.uid``.

Expected events are the simulator's published records run through ``map --source siem`` (the same keying and
mapping as the stream), so these tests pin uids, counts, tables, cursors and gaps, not mapped field values.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_http import FakeClock

from connector.checkpoint import Checkpoint
from connector.collector import RunSummary
from connector.errors import PermissionDeniedError
from connector.host import MimecastConnector
from connector.mapping.mapper import Mapper
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.runner import deliver
from connector.simulator import SiemSpec, Simulator
from connector.simulator.tenant import TenantSpec
from connector.sinks.ndjson import NdjsonSink
from connector.store import CheckpointStore
from connector.streams.registry import map_sources
from connector.streams.siem_records import SIEM_TYPES, SiemSummary
from connector.streams.siem_state import SiemState

NOW = 1_781_524_800.0  # 2026-06-15T12:00:00Z
TABLES = ("email_activity", "email_file_activity", "email_url_activity", "detection_finding")
_VALIDATOR = EventValidator()


class Harness:
    """One simulator, one checkpoint file, one output directory; ``run`` is one scheduled run of the connector."""

    def __init__(self, sim: Simulator, tmp_path: Path, clock: dict[str, float]) -> None:
        self.sim = sim
        self.clock = clock
        self.out = tmp_path / "out"
        self.store = CheckpointStore(tmp_path / "state.json")
        # waits of the client's rate gate and retry loop pass on this clock, not in real time
        self.monotonic = FakeClock()

    def parameters(self, **changes: object) -> dict[str, object]:
        return {
            "api_base_url": self.sim.base_url,
            "client_key": "simulator-client-id",
            "client_secret": "simulator-client-secret",
            "event_types": ["siem"],
            "siem_initial_lookback_hours": 168,
            **changes,
        }

    def now_ms(self) -> int:
        return int(self.clock["now"] * 1000)

    def run(self, **changes: object) -> RunSummary:
        sink = NdjsonSink(str(self.out), per_table=True)
        connector = self.connector(**changes)
        with connector:
            try:
                deliver(connector.collect(self.store.load()), [sink], self.store)
            finally:
                sink.close()
            return connector.summary

    def connector(self, **changes: object) -> MimecastConnector:
        clock = self.monotonic
        return MimecastConnector(
            self.parameters(**changes), environ={}, now_ms=self.now_ms, sleep=clock.sleep, clock=clock
        )

    def events(self) -> list[dict[str, Any]]:
        events = []
        for table in TABLES:
            path = self.out / f"{table}.ndjson"
            if path.exists():
                events.extend(json.loads(line) for line in path.read_text().splitlines())
        return events

    def uids(self) -> Counter[str]:
        return Counter(event["metadata"]["uid"] for event in self.events())

    def expected(self, types: tuple[str, ...] = SIEM_TYPES) -> Counter[str]:
        """The uids of every record the simulator has published for ``types``, each once."""
        transformer = Transformer(Mapper(clock_ms=self.now_ms), _VALIDATOR)
        records = [record for log_type in types for record in self.sim_published(log_type)]
        return Counter(m.event["metadata"]["uid"] for m in map_sources()["siem"](transformer, records, self.now_ms()))

    def sim_published(self, log_type: str) -> Iterator[dict[str, Any]]:
        assert self.sim.siem is not None
        return self.sim.siem.published(log_type)

    def state(self) -> SiemState:
        checkpoint = self.store.load()
        assert checkpoint is not None
        state = checkpoint.streams["siem"]
        assert isinstance(state, SiemState)
        return state


def section(summary: RunSummary) -> SiemSummary:
    siem = summary.sections["siem"]
    assert isinstance(siem, SiemSummary)
    return siem


@pytest.fixture
def clock() -> dict[str, float]:
    return {"now": NOW}


def simulator(clock: dict[str, float], **spec: Any) -> Simulator:
    return Simulator(TenantSpec(seed=3, users=2, groups=1, days=0.1), clock=lambda: clock["now"], siem=SiemSpec(**spec))


def test_consecutive_batch_runs_with_faults_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, clock: dict[str, float]
) -> None:
    counts = {"receipt": 40, "process": 30, "url protect": 20, "av": 10}  # every other type has no data
    with simulator(clock, records_per_type=counts, days=1.0, end=NOW + 2 * 3600, link_ttl_seconds=900) as sim:
        assert sim.siem is not None
        h = Harness(sim, tmp_path, clock)
        faults = sim.faults
        faults.siem_expire_links_next = 2  # two downloads answer 403: the page is listed again, nothing skipped
        faults.siem_missing_links_next = 1  # one answers 404 once: listed again, found
        faults.siem_repeat_last = 2  # every file repeats the last two records of the one before
        faults.siem_caught_up_types = {"av"}  # caught up at first: its files appear after the token it was given
        first = h.run()
        assert first.ok, first.lines()
        siem = section(first)
        assert siem.gaps == 0
        assert siem.types["receipt"].relists >= 1
        assert siem.types["receipt"].duplicates > 0  # the repeats were dropped here
        assert "av" in siem.caught_up and "journal" in siem.caught_up  # a type with no data is caught up too
        state = h.state()
        assert state.batch["av"].next_page is not None  # caught up, and its token kept
        assert all(state.batch[t].next_page is not None for t in SIEM_TYPES)
        counters = sim.siem.counters
        assert counters.downloads_expired == 2 and counters.downloads_missing == 1
        assert counters.downloads_refused_auth == 0  # no download carried the bearer token

        faults.siem_caught_up_types = set()
        clock["now"] += 3600
        sim.advance(0)
        second = h.run()
        assert second.ok, second.lines()
        clock["now"] += 3600
        third = h.run()
        assert third.ok, third.lines()
        uids = h.uids()
        assert max(uids.values()) == 1, "a record was delivered twice"
        assert uids == h.expected()  # everything published by now, each once
        assert section(third).types["av"].records >= 0
        assert sum(uids.values()) == sum(counts.values())  # all of it: the data ended at NOW + 2 h


def test_a_file_that_cannot_be_had_is_a_counted_gap_and_the_token_moves_on(
    tmp_path: Path, clock: dict[str, float]
) -> None:
    # at most four receipt files, all fetched at once: the downloads of the first three listings all answer 404
    with simulator(clock, records_per_type={"receipt": 4}, days=1.0, file_interval_seconds=6 * 3600) as sim:
        assert sim.siem is not None
        h = Harness(sim, tmp_path, clock)
        files = sim.siem.files("receipt")
        assert 2 <= len(files) <= 4
        sim.faults.siem_missing_links_next = 3 * len(files)
        summary = h.run(siem_log_types=["receipt"])
        siem = section(summary)
        assert siem.gaps == 1
        [gap] = siem.gap_list
        assert gap.log_type == "receipt" and gap.size is not None and gap.size > 0
        assert gap.listed_ms <= h.now_ms() and "404" in gap.reason
        assert "/receipt/" in gap.name
        lines = "\n".join(summary.lines())
        assert "siem GAP: a receipt file listed 2026-06-15T12:00:00Z" in lines
        assert "X-Amz-Signature" not in lines and "?" not in gap.name  # host and path only
        delivered = h.uids()
        lost = files[0].stop - files[0].first
        assert sum(delivered.values()) == 4 - lost and set(delivered) < set(h.expected(("receipt",)))
        token = h.state().batch["receipt"].next_page
        again = h.run(siem_log_types=["receipt"])
        assert section(again).gaps == 0 and h.uids() == delivered  # the gap is not re-read, nothing is re-sent
        assert h.state().batch["receipt"].next_page == token


def test_the_listing_budget_stops_a_pass_and_the_next_run_goes_on(tmp_path: Path, clock: dict[str, float]) -> None:
    # about 28 files a type at 5 per listing page: 6 listings a type, over 50 in all
    with simulator(clock, records_per_type=112, days=0.3, file_interval_seconds=900) as sim:
        assert sim.siem is not None
        h = Harness(sim, tmp_path, clock)
        sim.faults.siem_list_budget = 50  # the simulator enforces the documented budget too
        first = h.run(page_size=5)
        assert section(first).budget_left, first.lines()
        assert "listing budget (50 calls / 15 min) spent" in "\n".join(first.lines())
        assert len(h.state().batch_calls) == 50
        second = h.run(page_size=5)  # the same 15 minutes: the budget is in the checkpoint, nothing is listed
        assert sorted(section(second).budget_left) == sorted(SIEM_TYPES)
        runs = 0
        while section(second).budget_left and runs < 4:
            clock["now"] += 16 * 60
            second = h.run(page_size=5)
            runs += 1
        assert not section(second).budget_left
        assert sim.siem.counters.list_refused == 0  # never ran into the server's 429
        uids = h.uids()
        assert max(uids.values()) == 1 and uids == h.expected()


def test_a_run_killed_after_writing_and_before_the_commit_redelivers_with_the_same_uids(
    tmp_path: Path, clock: dict[str, float]
) -> None:
    with simulator(clock, records_per_type={"receipt": 30, "av": 30}, days=1.0) as sim:
        h = Harness(sim, tmp_path, clock)
        written: list[dict[str, Any]] = []
        with h.connector() as connector:
            for batch in connector.collect(None):  # written, never committed: the process dies here
                written.extend(batch.events)
        assert written and h.store.load() is None
        h.run()
        again = h.uids()
        assert max(again.values()) == 1
        assert {e["metadata"]["uid"] for e in written} <= set(again)
        assert again == h.expected(("receipt", "av"))


def test_stream_mode_reads_records_inline_and_reports_a_cursor_older_than_24_hours(
    tmp_path: Path, clock: dict[str, float]
) -> None:
    with simulator(clock, records_per_type=200, days=3.0, end=NOW + 40 * 3600) as sim:
        h = Harness(sim, tmp_path, clock)
        first = h.run(siem_mode="stream", siem_log_types=["receipt", "url protect"], page_size=25)
        assert first.ok, first.lines()
        assert "NOT COLLECTED (older than the 24 hours the SIEM stream serves)" in "\n".join(first.lines())
        cursor = h.state().stream
        assert cursor is not None and cursor.next_page is not None and cursor.types == ("receipt", "url protect")
        clock["now"] += 3600
        second = h.run(siem_mode="stream", siem_log_types=["receipt", "url protect"], page_size=25)
        assert second.ok and section(second).stream_gap is None
        clock["now"] += 30 * 3600  # the connector was off for more than the stream keeps
        third = h.run(siem_mode="stream", siem_log_types=["receipt", "url protect"], page_size=25)
        assert third.ok, third.lines()  # a gap, reported; not a failed run
        gap = section(third).stream_gap
        assert gap is not None and gap[1] > gap[0]
        assert "the stream cursor was older than the API's 24 hours" in "\n".join(third.lines())
        uids = h.uids()
        assert max(uids.values()) == 1


@pytest.mark.parametrize(("hours", "reported"), [(24, False), (25, True)])
def test_a_first_stream_mode_run_reports_only_a_look_back_longer_than_the_24_hours_the_mode_keeps(
    tmp_path: Path, clock: dict[str, float], hours: int, reported: bool
) -> None:
    # the default look-back (24 h) is what the mode keeps: its 10-minute safety edge is not a gap to warn about
    with simulator(clock, records_per_type=20, days=2.0) as sim:
        h = Harness(sim, tmp_path, clock)
        first = h.run(siem_mode="stream", siem_log_types=["receipt"], siem_initial_lookback_hours=hours)
        assert first.ok, first.lines()
        assert ("NOT COLLECTED" in "\n".join(first.lines())) is reported


def test_a_tenant_without_the_siem_product_is_refused_naming_it(tmp_path: Path, clock: dict[str, float]) -> None:
    with simulator(clock, records_per_type=5) as sim:
        sim.faults.forbid_siem = True
        h = Harness(sim, tmp_path, clock)
        with h.connector() as connector:
            with pytest.raises(PermissionDeniedError, match="Threats, Security Events, and Data") as caught:
                connector.check()
            assert caught.value.event_type == "siem"
        summary = h.run(event_types=["audit", "siem"])
        assert "Threats, Security Events, and Data" in summary.failures["siem"]
        assert "audit" not in summary.failures  # the other event types still run
        assert not h.uids()
        checkpoint = h.store.load()
        assert isinstance(checkpoint, Checkpoint) and "audit" in checkpoint.streams
