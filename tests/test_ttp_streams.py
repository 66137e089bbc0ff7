"""The TTP and DLP stream descriptors: what they request, how they key records, and ``map --source`` on the real
samples (``tests/fixtures/streams/``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connector.cli import main
from connector.mapping.mapper import Mapper
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.streams import registry as stream_registry
from connector.streams.base import RecordKey
from connector.streams.keys import content_key
from connector.streams.ttp import LOGS, STREAMS, log_query, record_key
from connector.streams.window import KeyedWindowState, WindowState

FIXTURES = Path(__file__).parent / "fixtures" / "streams"
NOW_MS = 1_781_524_800_000  # 2026-06-15T12:00:00Z
CLASSES = {"email_url_activity": 4012, "email_file_activity": 4011, "detection_finding": 2004,
           "data_security_finding": 2006}  # fmt: skip


def samples(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_four_streams_are_registered_with_their_endpoint_key_and_table() -> None:
    declared = {
        s.name: (s.endpoints[0].path, s.endpoints[0].records_at, s.time_field, s.record_key, s.tables) for s in STREAMS
    }
    assert declared == {
        "ttp_url": ("/api/ttp/url/get-logs", "clickLogs", "date", RecordKey.CONTENT, ("email_url_activity",)),
        "ttp_attachment": ("/api/ttp/attachment/get-logs", "attachmentLogs", "date", RecordKey.CONTENT,
                           ("email_file_activity",)),
        "ttp_impersonation": ("/api/ttp/impersonation/get-logs", "impersonationLogs", "eventTime", RecordKey.ID,
                              ("detection_finding",)),
        "dlp": ("/api/dlp/get-logs", "dlpLogs", "eventTime", RecordKey.CONTENT, ("data_security_finding",)),
    }  # fmt: skip
    for stream in STREAMS:
        assert stream_registry.stream(stream.name) is stream
        assert stream.product == "Security Events"
        state = stream.initial_state()
        assert isinstance(state, WindowState if stream.record_key is RecordKey.ID else KeyedWindowState)
        assert stream.parse_state(state.to_dict(), stream.name) == state


def test_a_query_is_a_window_in_the_mimecast_time_format_oldest_first() -> None:
    start, end = datetime(2026, 6, 15, 10, 0, 5, 900_000, tzinfo=UTC), datetime(2026, 6, 15, 16, tzinfo=UTC)
    assert log_query(start, end) == {"from": "2026-06-15T10:00:05+0000", "to": "2026-06-15T16:00:00+0000",
                                     "oldestFirst": True}  # fmt: skip
    with pytest.raises(ValueError, match="start must not be after its end"):
        log_query(end, start)
    for stream in STREAMS:
        probe = stream.probe(NOW_MS)
        assert probe.endpoint == stream.endpoints[0].path and probe.records_at == stream.endpoints[0].records_at
        assert probe.data == [{"from": "2026-06-15T11:00:00+0000", "to": "2026-06-15T12:00:00+0000",
                               "oldestFirst": True}]  # fmt: skip


def test_impersonation_is_keyed_by_id_and_the_others_by_content() -> None:
    by_name = {log.name: log for log in LOGS}
    impersonation = samples("ttp_impersonation")[0]
    assert record_key(by_name["ttp_impersonation"], impersonation) == impersonation["id"]
    assert record_key(by_name["ttp_impersonation"], {**impersonation, "id": ""}) is None
    assert record_key(by_name["ttp_impersonation"], {k: v for k, v in impersonation.items() if k != "id"}) is None
    url = samples("ttp_url")[0]
    assert record_key(by_name["ttp_url"], url) == content_key(url)
    assert record_key(by_name["ttp_url"], dict(reversed(url.items()))) == content_key(url)  # field order is no content
    assert record_key(by_name["dlp"], "not an object") is None
    hold, notification = samples("dlp")[:2]  # one message, two actions: two records
    assert hold["messageId"] == notification["messageId"] and hold["action"] != notification["action"]
    assert record_key(by_name["dlp"], hold) != record_key(by_name["dlp"], notification)


@pytest.mark.parametrize("log", LOGS, ids=lambda log: log.name)
def test_map_source_maps_every_sample_to_one_valid_event_of_its_class(
    log: Any, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    records = samples(log.name)
    code = main(["map", "--source", log.name, "--input", str(FIXTURES / f"{log.name}.jsonl")])
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert len(events) == len(records)
    assert {event["class_uid"] for event in events} == {CLASSES[log.table]}
    validator = EventValidator()
    assert [validator.problems(event) for event in events] == [[]] * len(records)
    uids = [event["metadata"]["uid"] for event in events]
    assert len(set(uids)) == len(uids)  # the DLP hold and notification of one message are two events
    # the uid is what the collected stream gives the same record: it derives from the key the window uses
    transformer = Transformer(Mapper(), EventValidator())
    again = list(stream_registry.map_sources()[log.name](transformer, reversed(records), NOW_MS))
    assert sorted(m.event["metadata"]["uid"] for m in again) == sorted(uids)
    assert [m.record_id for m in again] == [record_key(log, r) for r in reversed(records)]


def test_an_impersonation_record_without_an_id_is_refused_and_counted_and_the_rest_mapped() -> None:
    good, *_ = samples("ttp_impersonation")
    transformer = Transformer(Mapper(), EventValidator())
    records = [good, {k: v for k, v in good.items() if k != "id"}, "not a record"]
    mapped = list(stream_registry.map_sources()["ttp_impersonation"](transformer, records, NOW_MS))
    assert [m.record_id for m in mapped] == [good["id"]]
    assert transformer.report.failures == 2


@pytest.mark.parametrize(
    ("name", "named", "why"), [("ttp_url", "#?", "nests deeper than 64 levels"), ("siem", "#0", "cannot be keyed")]
)
def test_map_source_refuses_a_record_nested_300_deep_and_maps_the_rest(name: str, named: str, why: str) -> None:
    """``content_key`` cannot serialise it (orjson writes 254 levels): refused as one record, never a traceback."""
    good = samples("ttp_url" if name == "ttp_url" else "siem_cg")[0]
    deep = {**good, "deep": json.loads("[" * 300 + "]" * 300)}
    transformer = Transformer(Mapper(), EventValidator())
    mapped = list(stream_registry.map_sources()[name](transformer, [deep, good], NOW_MS))
    assert len(mapped) == 1 and transformer.report.failures == 1
    [error] = transformer.report.errors
    assert error.record_id == named and why in error.message


def test_a_collected_ttp_url_record_nested_300_deep_is_refused_and_the_window_goes_on(
    tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    """The window's content key (``WindowRun._key``) meets the record before the mapping does."""
    from helpers_http import FakeClock

    from connector.host import MimecastConnector

    good = samples("ttp_url")[0]
    deep = {**good, "deep": json.loads("[" * 300 + "]" * 300)}
    page = {"meta": {"status": 200}, "data": [{"clickLogs": [good, deep]}], "fail": []}
    token = {"access_token": "ttp-bearer-token-0001", "token_type": "Bearer", "expires_in": 1800}
    httpx_mock.add_response(
        url="https://api.services.mimecast.com/oauth/token", method="POST", json=token, is_reusable=True
    )
    httpx_mock.add_response(url="https://api.services.mimecast.com/api/ttp/url/get-logs", json=page, is_reusable=True)
    params = {"client_key": "ttp-client", "client_secret": "ttp-client-secret-0123456789", "event_types": ["ttp_url"]}
    clock = FakeClock()
    with MimecastConnector(params, environ={}, now_ms=lambda: NOW_MS, sleep=clock.sleep, clock=clock) as connector:
        batches = list(connector.collect(None))
        summary = connector.summary
    events = [event for batch in batches for event in batch.events]
    assert len({event["metadata"]["uid"] for event in events}) == 1 and not summary.failures
    assert summary.report.failures >= 1
    assert all(e.record_id.startswith("#") and "cannot be keyed" in e.message for e in summary.report.errors)
