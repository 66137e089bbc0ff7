"""The SIEM stream against a misbehaving server and hostile records (pytest-httpx, one run of the connector each):
nothing may stop the connector beyond the pass, make its checkpoint unreadable, reach inside its host, or spend
its budget for nothing; and the stream's section feeds the metrics and ``--summary-json``."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_http import FakeClock
from pytest_httpx import HTTPXMock

from connector.collector import RunSummary
from connector.host import MimecastConnector
from connector.metrics import ConnectorMetrics
from connector.runner import deliver
from connector.sinks.ndjson import NdjsonSink
from connector.snapshot import take_snapshot
from connector.store import CheckpointStore
from connector.streams.siem_records import SiemSummary
from connector.streams.siem_state import FUTURE_SLACK_MS, SiemState
from connector.summary_json import summary_document

BASE = "https://api.services.mimecast.com"
TOKEN_URL = f"{BASE}/oauth/token"
SECRET = "siem-hostile-client-secret-0123456789"
BEARER = "bearer-token-XYZ-siem-hostile-0001"
NOW_MS = 1_781_524_800_000  # 2026-06-15T12:00:00Z
STREAM_URL = f"{BASE}/siem/v1/events/cg"
BATCH_URL = f"{BASE}/siem/v1/batch/events/cg"
SIGNATURE = "X-Amz-Signature=deadbeef42"
FILE_URL = f"https://files.example.com/CUS1/receipt/0.ndjson.gz?{SIGNATURE}"


def _token(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=TOKEN_URL,
        method="POST",
        json={"access_token": BEARER, "token_type": "Bearer", "expires_in": 1800},
        is_reusable=True,
        is_optional=True,
    )


def _route(httpx_mock: HTTPXMock, url: str, handler: Any) -> None:
    """Every request to ``url`` (any query) answered by ``handler``."""
    httpx_mock.add_callback(handler, url=re.compile(re.escape(url) + r"(\?.*)?$"), is_reusable=True, is_optional=True)


def _run(tmp_path: Path, **changes: object) -> tuple[RunSummary, CheckpointStore]:
    """One run of the connector into ``tmp_path/out`` with the checkpoint ``tmp_path/state.json``."""
    clock = FakeClock()
    params: dict[str, object] = {
        "client_key": "siem-hostile-client-id",
        "client_secret": SECRET,
        "event_types": ["siem"],
        **changes,
    }
    store = CheckpointStore(tmp_path / "state.json")
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    with MimecastConnector(params, environ={}, now_ms=lambda: NOW_MS, sleep=clock.sleep, clock=clock) as connector:
        try:
            deliver(connector.collect(store.load()), [sink], store)
        finally:
            sink.close()
        return connector.summary, store


def _record(n: int, **extra: object) -> dict[str, Any]:
    return {
        "type": "receipt",
        "timestamp": NOW_MS - 60_000 + n,
        "aggregateId": f"agg-{n}",
        "processingId": f"proc-{n}",
        "senderEnvelope": "a@example.com",
        "recipients": "b@example.org",
        "subject": f"s{n}",
        "action": "Acc",
        **extra,
    }


def _gzip(*records: dict[str, Any]) -> bytes:
    return gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))


def _batch(httpx_mock: HTTPXMock, urls: list[str], body: bytes) -> None:
    """A batch listing of ``urls`` for every type (caught up), each answering ``body``."""
    _token(httpx_mock)
    listing = {"value": [{"url": u, "size": len(body), "expiry": "2026-06-15T12:15:00Z"} for u in urls],
               "@nextPage": "PAGE-TOKEN-batch-1", "isCaughtUp": True}  # fmt: skip
    _route(httpx_mock, BATCH_URL, lambda r: httpx.Response(200, json=listing))
    for url in dict.fromkeys(urls):
        _route(httpx_mock, url.split("?")[0], lambda r: httpx.Response(200, content=body))


def _stored(store: CheckpointStore) -> SiemState:
    """The SIEM state the next run would load (``CheckpointError`` when it cannot)."""
    checkpoint = store.load()
    assert checkpoint is not None
    state = checkpoint.streams["siem"]
    assert isinstance(state, SiemState)
    return state


def _lines(tmp_path: Path, table: str = "email_activity") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "out" / f"{table}.ndjson").read_text().splitlines()]


# -- the stream mode ----------------------------------------------------------------------------------------------


def test_stream_mode_a_page_token_that_never_changes_ends_the_pass_instead_of_spending_the_hourly_budget(
    tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    """As batch mode does: a page that is not caught up and gives back the same token is a PaginationError."""
    _token(httpx_mock)
    page = {"value": [_record(1)], "@nextPage": "STUCK", "isCaughtUp": False}
    _route(httpx_mock, STREAM_URL, lambda r: httpx.Response(200, json=page))
    summary, store = _run(tmp_path, siem_mode="stream")
    listings = [r for r in httpx_mock.get_requests() if r.url.path == "/siem/v1/events/cg"]
    assert len(listings) == 2, f"{len(listings)} listings of a page whose token never changes"
    assert "not advancing" in summary.failures["siem"]
    assert len(_lines(tmp_path)) == 1  # the page read before is delivered and committed
    stored = _stored(store).stream
    assert stored is not None and stored.next_page == "STUCK"


@pytest.mark.parametrize("timestamp", ["9999999999999999", 9_999_999_999_999, NOW_MS + 30 * 24 * 3600_000])
def test_stream_mode_a_record_dated_far_ahead_moves_no_cursor_and_the_checkpoint_stays_readable(
    tmp_path: Path, httpx_mock: HTTPXMock, timestamp: object
) -> None:
    """A ``timestamp`` beyond year 9999 (16 digits), beyond the OCSF range or a month ahead is not a cursor: the
    next ``CheckpointStore.load`` would refuse the first, the next window would start after its end for the
    others."""
    _token(httpx_mock)
    page = {"value": [_record(1, timestamp=timestamp)], "@nextPage": "T1", "isCaughtUp": True}
    _route(httpx_mock, STREAM_URL, lambda r: httpx.Response(200, json=page))
    _, store = _run(tmp_path, siem_mode="stream")
    siem = _stored(store)  # no CheckpointError
    assert siem.stream is not None and siem.stream.cursor_ms is not None
    assert siem.stream.cursor_ms <= NOW_MS + FUTURE_SLACK_MS
    assert all(minute <= NOW_MS + FUTURE_SLACK_MS for keys in siem.keys.values() for minute in keys.texts)


# -- the batch mode -----------------------------------------------------------------------------------------------


def test_batch_mode_a_record_dated_beyond_year_9999_is_keyed_under_the_collection_time_and_the_checkpoint_loads(
    tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    """Its key was filed under the minute of its ``timestamp``, which ``KeysSnapshot.parse`` refuses on the next
    load (and which pruning never reached, being in the future)."""
    _batch(httpx_mock, [FILE_URL], _gzip(_record(1, timestamp="9999999999999999")))
    _run(tmp_path, siem_log_types=["receipt"])
    siem = _stored(CheckpointStore(tmp_path / "state.json"))
    assert list(siem.keys["receipt"].texts) == [NOW_MS - NOW_MS % 60_000]


def test_a_siem_record_nested_300_deep_is_refused_as_one_record_and_the_rest_of_the_file_is_delivered(
    tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    """``content_key`` cannot serialise it (orjson writes 254 levels; the parser read 1024): refused, named by type
    and position, never a traceback that loses the run."""
    deep = json.loads("[" * 300 + "]" * 300)
    _batch(httpx_mock, [FILE_URL], _gzip(_record(1), _record(2, deep=deep), _record(3)))
    summary, _ = _run(tmp_path, siem_log_types=["receipt"])
    assert len(_lines(tmp_path)) == 2 and not summary.failures
    [error] = summary.report.errors
    assert error.record_id == "receipt#2" and "cannot be keyed" in error.message


def test_a_siem_record_nested_80_deep_is_refused_before_mapping(tmp_path: Path, httpx_mock: HTTPXMock) -> None:
    """Keyable (under orjson's 254 levels) but deeper than ``MAX_RECORD_DEPTH``: refused by the Transformer."""
    deep = json.loads("[" * 80 + "]" * 80)
    _batch(httpx_mock, [FILE_URL], _gzip(_record(1), _record(2, deep=deep)))
    summary, _ = _run(tmp_path, siem_log_types=["receipt"])
    assert len(_lines(tmp_path)) == 1
    [error] = summary.report.errors
    assert "nests deeper than 64 levels" in error.message


def test_an_analysis_json_string_nested_400_deep_stays_raw_and_every_event_is_written(
    tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    """``json_value`` parsed it (orjson reads 1024 levels) into ``unmapped.analysis``, which no JSON sink can write
    (254 levels): the record itself is flat, so only the parse depth cap keeps the run alive."""
    nested = "[" * 400 + "]" * 400
    record = _record(1, type="url protect", url="https://evil.example.com/x", analysis=nested)
    _batch(httpx_mock, [FILE_URL], _gzip(record))
    summary, _ = _run(tmp_path, siem_log_types=["url protect"])
    assert summary.ok
    [event] = _lines(tmp_path, "email_url_activity")
    assert event["unmapped"]["analysis"] == nested


@pytest.mark.parametrize(
    "link",
    [
        f"http://files.example.com/CUS1/receipt/0.ndjson.gz?{SIGNATURE}",  # the signature in clear text
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/x",  # cloud metadata (SSRF)
        "https://127.0.0.1:8500/v1/kv/secret",  # a loopback service of the connector's host
        "https://10.0.0.7/internal",  # a private address
        "https://[::ffff:169.254.169.254]/latest",  # the metadata service, IPv4-mapped
    ],
)
def test_a_listed_link_that_is_not_https_or_points_inside_is_a_gap_never_fetched(
    tmp_path: Path, httpx_mock: HTTPXMock, link: str
) -> None:
    _batch(httpx_mock, [link], _gzip(_record(1)))
    summary, _ = _run(tmp_path, siem_log_types=["receipt"])
    fetched = [str(r.url) for r in httpx_mock.get_requests() if r.url.host != "api.services.mimecast.com"]
    assert fetched == [], f"fetched {fetched}"
    section = summary.sections["siem"]
    assert isinstance(section, SiemSummary)
    [gap] = section.gap_list
    assert gap.log_type == "receipt" and "was not fetched" in gap.reason and SIGNATURE not in gap.line()


# -- what the progress display, the metrics and --summary-json see ------------------------------------------------


def test_a_batch_run_feeds_pages_records_gaps_and_cursor_to_the_snapshot_metrics_and_summary_json(
    tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    bad = f"http://files.example.com/CUS1/receipt/1.ndjson.gz?{SIGNATURE}"
    _batch(httpx_mock, [FILE_URL, bad], _gzip(_record(1), _record(2)))
    summary, _ = _run(tmp_path, siem_log_types=["receipt"])
    [stream] = take_snapshot(summary).streams
    assert (stream.name, stream.pages, stream.records, stream.gaps) == ("siem", 1, 2, 1)
    assert stream.cursor_ms == NOW_MS  # batch mode: the oldest listing time of a committed token

    metrics = ConnectorMetrics(lambda: NOW_MS + 90_000)
    metrics.begin(summary, None, None)
    metrics.end(summary, 0, 1.0)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in metrics.collect() for s in f.samples}
    siem = (("stream", "siem"),)
    assert samples["mimecast_connector_stream_pages_total", siem] == 1
    assert samples["mimecast_connector_records_read_total", siem] == 2
    assert samples["mimecast_connector_gaps_total", siem] == 1
    assert samples["mimecast_connector_cursor_lag_seconds", siem] == 90

    document = summary_document(summary, exit_code=0, started_at_ms=NOW_MS, duration_seconds=1.0)
    section = document["streams"]["siem"]
    assert section["mode"] == "batch" and section["pages"] == 1 and section["records"] == 2
    assert section["cursor_ms"] == NOW_MS
    assert section["types"]["receipt"] == {"files": 1, "records": 2, "duplicates": 0, "pages": 1, "relists": 0,
                                           "caught_up": True}  # fmt: skip
    [gap] = section["gaps"]
    assert gap["type"] == "receipt" and gap["host"] == "files.example.com" and gap["listed_at_ms"] == NOW_MS
    assert gap["size"] is not None and section["budget"]["limit"] == "50 calls / 15 min"
    text = json.dumps(document)
    assert SIGNATURE not in text and "deadbeef42" not in text and SECRET not in text and BEARER not in text
    assert "PAGE-TOKEN-batch-1" not in json.dumps(section)  # no page token


def test_a_stream_run_feeds_its_window_and_cursor_to_the_snapshot_and_summary_json(
    tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    _token(httpx_mock)
    page = {"value": [_record(1), _record(2)], "@nextPage": "PAGE-TOKEN-stream-1", "isCaughtUp": True}
    _route(httpx_mock, STREAM_URL, lambda r: httpx.Response(200, json=page))
    summary, _ = _run(tmp_path, siem_mode="stream")
    [stream] = take_snapshot(summary).streams
    assert (stream.pages, stream.records, stream.cursor_ms) == (1, 2, NOW_MS - 60_000 + 2)
    assert stream.window is not None and stream.window[1] == NOW_MS and stream.covered() is not None
    document = summary_document(summary, exit_code=0, started_at_ms=NOW_MS, duration_seconds=1.0)
    section = document["streams"]["siem"]
    assert section["mode"] == "stream" and section["window"]["end_ms"] == NOW_MS
    assert section["cursor_ms"] == NOW_MS - 60_000 + 2 and "PAGE-TOKEN-stream-1" not in json.dumps(section)
