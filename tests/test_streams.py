"""Tests for connector.streams: content keys and the key log, the registry's checks, and a made-up stream
collected end to end against the simulator without touching the collector, the client core, the runner or the CLI.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.checkpoint import Checkpoint
from connector.collector import Collector
from connector.config import Config
from connector.events import MappedEvent
from connector.host import MimecastConnector
from connector.mapping.values.common import record_uid
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.runner import deliver
from connector.simulator.server import Simulator
from connector.simulator.tenant import TenantSpec
from connector.sinks.ndjson import NdjsonSink
from connector.store import CheckpointStore
from connector.streams import registry as stream_registry
from connector.streams.base import CursorKind, Endpoint, RecordKey, Stream, StreamContext, StreamState
from connector.streams.keys import BUCKET_MS, KeyLog, KeySnapshot, content_key
from connector.streams.state import InvalidState
from connector.streams.window import KeyedWindowState, WindowRun, WindowSettings, WindowSpec
from connector.timefmt import format_mimecast_time, ms_to_datetime, parse_mimecast_time_ms

T0 = 1_781_524_800_000  # 2026-06-15T12:00:00Z


# -- content keys and the key log -----------------------------------------------------------------------------


def test_a_content_key_ignores_field_order_at_every_level_and_the_fields_named_as_transport() -> None:
    a = {"to": ["x@y.io"], "meta": {"b": 1, "a": [1, {"d": 2, "c": 3}]}, "_offset": 7}
    b = {"meta": {"a": [1, {"c": 3, "d": 2}], "b": 1}, "_offset": 9, "to": ["x@y.io"]}
    assert content_key(a, frozenset({"_offset"})) == content_key(b, frozenset({"_offset"}))
    assert content_key(a) != content_key(b)  # the offsets differ
    assert content_key({"to": ["x@y.io", "z@y.io"]}) != content_key(
        {"to": ["z@y.io", "x@y.io"]}
    )  # order of a list is content
    assert len(content_key(a)) == 16


def test_a_snapshot_does_not_change_when_the_log_grows_or_is_pruned() -> None:
    log = KeyLog()
    log.add("A" * 16, T0)
    log.add("B" * 16, T0 + 5 * BUCKET_MS)
    first = log.snapshot()
    log.add("C" * 16, T0 + 9 * BUCKET_MS)
    log.prune(T0 + 5 * BUCKET_MS)
    assert [key for key, _ in first.items()] == ["A" * 16, "B" * 16]
    assert [key for key, _ in log.snapshot().items()] == ["B" * 16, "C" * 16]
    assert "A" * 16 not in log and "B" * 16 in log


def test_pruning_keeps_every_key_whose_minute_reaches_the_limit() -> None:
    """Times are kept to the minute: a key is dropped only once its whole minute lies before the limit."""
    log = KeyLog()
    log.add("A" * 16, T0 + 59_999)  # minute T0
    log.prune(T0 + 59_999)
    assert "A" * 16 in log
    log.prune(T0 + BUCKET_MS)
    assert "A" * 16 not in log


@given(st.lists(st.tuples(st.binary(min_size=12, max_size=12), st.integers(0, 10**13)), max_size=50))
def test_the_json_form_round_trips(entries: list[tuple[bytes, int]]) -> None:
    log = KeyLog()
    for raw, time_ms in entries:
        log.add(content_key({"k": raw.hex()}), time_ms)
    snapshot = log.snapshot()
    data = json.loads(json.dumps(snapshot.to_dict()))
    parsed = KeySnapshot.parse(data, "keys")
    assert sorted(parsed.items()) == sorted(snapshot.items())
    assert parsed.to_dict() == snapshot.to_dict()


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({"bucket_ms": 1000, "buckets": {}}, "bucket_ms must be 60000"),
        ({"bucket_ms": 60000, "buckets": {"60001": ""}}, "not the start of a minute"),
        ({"bucket_ms": 60000, "buckets": {"x": ""}}, "epoch-ms minute"),
        ({"bucket_ms": 60000, "buckets": {"60000": "short"}}, "16-character base64url keys"),
        ({"bucket_ms": 60000, "buckets": {"60000": "A" * 15 + "="}}, "16-character base64url keys"),
        ({"bucket_ms": 60000, "buckets": {"60000": 5}}, "16-character base64url keys"),
        ({"bucket_ms": 60000}, "missing keys"),
    ],
)
def test_a_key_snapshot_is_parsed_strictly(data: object, detail: str) -> None:
    with pytest.raises(InvalidState, match=detail):
        KeySnapshot.parse(data, "keys")


# -- the registry ---------------------------------------------------------------------------------------------


def test_a_stream_must_use_an_event_type_and_tables_the_manifest_declares() -> None:
    made_up = widget_stream(lambda item, now: [])
    with pytest.raises(ValueError, match=r"not an event type of manifest\.json"):
        stream_registry.register(made_up)
    with pytest.raises(ValueError, match="already registered"):
        stream_registry.register(stream_registry.stream("audit"))
    bad_table = dataclasses.replace(made_up, tables=("widget_table",))
    with pytest.raises(ValueError, match=r"tables manifest.json does not declare: \['widget_table'\]"):
        stream_registry.register(bad_table, event_types=["widgets"])
    assert [s.name for s in stream_registry.streams()] == [
        "audit", "user_management", "ttp_url", "ttp_attachment", "ttp_impersonation", "dlp", "siem"
    ]  # fmt: skip


# -- a made-up stream, end to end ----------------------------------------------------------------------------

WIDGET_LOGS = Endpoint("/api/widgets/get-logs")
WIDGET_HISTORY_MS = 7 * 24 * 3600 * 1000


def widget_record(index: int) -> dict[str, Any]:
    """Id-less records (like TTP URL logs): two rows may differ only in their action."""
    return {
        "date": format_mimecast_time(ms_to_datetime(T0 - 3 * 3600_000 + index * 60_000)),
        "widget": f"widget-{index // 2}",
        "action": "hold" if index % 2 else "notify",
    }


WIDGETS = [widget_record(i) for i in range(240)]  # one every minute over 4 hours: some in the future at first


def widget_route(item: Mapping[str, Any], now: float) -> list[Any]:
    """The simulator's side: records with from <= date < to that are already visible (date <= now)."""
    start, end = parse_mimecast_time_ms(item["from"]), parse_mimecast_time_ms(item["to"])
    return [r for r in WIDGETS if start <= parse_mimecast_time_ms(r["date"]) < min(end, now * 1000 + 1)]


def map_widget(record: object, position: int, key: str | None) -> MappedEvent | None:
    assert isinstance(record, dict) and key == content_key(record)  # the window hands over the key it deduped by
    event = {
        "class_uid": 0, "class_name": "Base Event", "category_uid": 0, "category_name": "Uncategorized",
        "activity_id": 99, "activity_name": record["action"], "type_uid": 99,
        "type_name": f"Base Event: {record['action']}", "severity_id": 1, "severity": "Informational",
        "status_id": 0, "status": "Unknown", "time": parse_mimecast_time_ms(record["date"]),
        "message": record["widget"],
        "metadata": {"version": "1.8.0", "uid": record_uid("widget", key),
                     "product": {"name": "Mimecast", "vendor_name": "Mimecast"}},
    }  # fmt: skip
    return MappedEvent("base_event", 0, event, key)


def validated(transformer: Transformer, mapped: MappedEvent | None) -> MappedEvent | None:
    """What a stream's mapping step does: only events that pass the validator leave it (the rest are counted)."""
    return mapped if mapped is not None and transformer.accept(mapped) else None


def widget_stream(route: object) -> Stream:
    def start(context: StreamContext, state: StreamState) -> WindowRun:
        assert isinstance(state, KeyedWindowState)
        spec = WindowSpec(
            label="widgets",
            listing=lambda a, b: WIDGET_LOGS.listing(
                [{"from": format_mimecast_time(a), "to": format_mimecast_time(b)}]
            ),
            map_record=lambda record, position, key: validated(context.transformer, map_widget(record, position, key)),
            time_field="date",
            id_field=None,
            history_ms=WIDGET_HISTORY_MS,
            slice_ms=3600_000,
        )
        return WindowRun(spec, WindowSettings(lookback_ms=6 * 3600_000, overlap_ms=30 * 60_000), context, state)

    return Stream(
        name="widgets",
        endpoints=(WIDGET_LOGS,),
        record_key=RecordKey.CONTENT,
        time_field="date",
        cursor=CursorKind.WINDOW,
        mapping_tables=(),
        tables=("base_event",),
        parse_state=KeyedWindowState.parse,
        initial_state=KeyedWindowState,
        probe=lambda now: WIDGET_LOGS.listing([{"from": "x", "to": "y"}]),
        start=start,
    )


@pytest.fixture
def widgets() -> Iterator[Stream]:
    stream = widget_stream(widget_route)
    stream_registry.register(stream, event_types=["widgets"])
    yield stream
    stream_registry.unregister("widgets")


def test_a_made_up_stream_is_collected_end_to_end_without_duplicates_across_runs(
    widgets: Stream, tmp_path: Path
) -> None:
    clock = {"now": T0 / 1000}
    sim = Simulator(TenantSpec(seed=3, users=5, groups=1, days=0.1), clock=lambda: clock["now"],
                    routes={WIDGET_LOGS.path: widget_route})  # fmt: skip
    store = CheckpointStore(tmp_path / "state.json")
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    summaries = []
    with sim:
        config = Config.from_parameters(
            {"api_base_url": sim.base_url, "client_key": "simulator-client-id",
             "client_secret": "simulator-client-secret", "page_size": 25},
            environ={},
        )  # fmt: skip
        with MimecastConnector(config, now_ms=lambda: int(clock["now"] * 1000)) as connector:
            for _ in range(3):  # three runs, 40 minutes apart: each re-reads a 30-minute overlap
                collector = Collector(
                    connector.client,
                    Transformer(connector._mapper, EventValidator()),
                    streams=[widgets],
                    config=config,
                    now_ms=lambda: int(clock["now"] * 1000),
                )
                deliver(collector.collect(store.load()), [sink], store)
                assert collector.summary.ok, collector.summary.lines()
                summaries.append(collector.summary)
                clock["now"] += 40 * 60
    sink.close()
    events = [json.loads(line) for line in (tmp_path / "out" / "base_event.ndjson").read_text().splitlines()]
    visible = [r for r in WIDGETS if parse_mimecast_time_ms(r["date"]) <= T0 + 80 * 60_000]
    assert sorted(e["metadata"]["uid"] for e in events) == sorted(record_uid("widget", content_key(r)) for r in visible)
    assert summaries[1].sections["widgets"].duplicates > 0  # the overlap was re-read and skipped by content
    assert all(s.ok for s in summaries)
    stored = json.loads((tmp_path / "state.json").read_text())
    assert set(stored["streams"]) == {"widgets"}
    assert stored["streams"]["widgets"]["cursor_ms"] == T0 + 80 * 60_000
    kept = KeySnapshot.parse(stored["streams"]["widgets"]["keys"], "keys")
    assert 0 < len(kept) <= 2 * 40  # pruned to the overlap and the last slice, not every key ever seen
    assert isinstance(Checkpoint.from_dict(stored).streams["widgets"], KeyedWindowState)


def test_a_stream_that_exists_only_on_api_2_is_refused_with_api_1_keys_naming_auth_method() -> None:
    from helpers_v1 import V1_PARAMETERS

    from connector.errors import ConfigError
    from connector.host import _require_api_generation

    only_v2 = dataclasses.replace(widget_stream(widget_route), api_versions=frozenset({"2.0"}))
    v1 = Config.from_parameters(V1_PARAMETERS, environ={})
    with pytest.raises(ConfigError, match=r"event types widgets exist only on Mimecast API 2\.0") as caught:
        _require_api_generation(v1, [stream_registry.stream("audit"), only_v2])
    assert caught.value.parameter == "auth_method"
    _require_api_generation(v1, stream_registry.selected(["audit", "user_management"]))  # API 1.0 serves them too
    v2 = Config.from_parameters({"client_key": "id", "client_secret": "s" * 16}, environ={})
    _require_api_generation(v2, [only_v2])
