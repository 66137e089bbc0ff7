"""The SIEM stream: Mimecast Cloud Gateway email-security logs -> Email Activity, Email File Activity, Email URL
Activity and Detection Finding (docs/siem.md).

The descriptor only: ``siem_mode`` picks the run (``siem_batch.BatchRun``: files of each log type from a page
token per type, 7 days of recovery; ``siem_stream.StreamModeRun``: records inline, 24 hours), both sharing the
per-record path (``siem_records``: content keys, dedup, mapping) and one state (``siem_state.SiemState``), so a
switch of mode keeps the keys and each mode's cursor. API 2.0 only (API 1.0 keys cannot reach ``/siem/v1``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

from connector.api.download import DownloadPolicy, FileFetcher
from connector.api.urls import is_loopback_host
from connector.errors import MappingError, UnkeyableRecordError
from connector.events import MappedEvent
from connector.mapping.email.rules import load_email_rules
from connector.pipeline import Transformer
from connector.registry import registry
from connector.streams.base import CursorKind, Endpoint, RecordKey, Stream, StreamContext, StreamRun
from connector.streams.siem_batch import BatchRun, BatchSettings
from connector.streams.siem_listing import BATCH_PATH, STREAM_PATH, SiemListing
from connector.streams.siem_records import siem_key
from connector.streams.siem_state import SiemState
from connector.streams.siem_stream import StreamModeRun, StreamSettings, iso_ms
from connector.streams.state import StreamState
from connector.timefmt import ms_to_datetime

__all__ = ["SIEM", "SIEM_NAME"]

SIEM_NAME: Final = "siem"
HOUR_MS: Final = 3600_000
# the tables the reviewed mapping sends SIEM log types to (mappings/email_types.yaml), in manifest order
SIEM_TABLES: Final = tuple(
    name for name in registry().tables if name in {kind.table.table for kind in load_email_rules().siem_types.values()}
)

BATCH_LISTING: Final = Endpoint(BATCH_PATH, records_at="value", method="GET")
STREAM_EVENTS: Final = Endpoint(STREAM_PATH, records_at="value", method="GET")


def _probe(now_ms: int) -> SiemListing:
    """One receipt record of the last hour from the stream endpoint: the same product as the batch listing, and a
    far larger budget (300 calls / hour against 50 / 15 min), so the preflight does not spend what batch needs."""
    end = ms_to_datetime(now_ms)
    start = end - timedelta(hours=1)
    params = {"types": "receipt", "dateRangeStartsAt": iso_ms(int(start.timestamp() * 1000)),
              "dateRangeEndsAt": iso_ms(now_ms)}  # fmt: skip
    return SiemListing(STREAM_PATH, params, probe=True)


def _start(context: StreamContext, state: StreamState) -> StreamRun:
    assert isinstance(state, SiemState)
    config = context.config
    lookback = config.siem_initial_lookback_hours * HOUR_MS
    page_size = min(config.page_size, 100)
    if config.siem_mode == "stream":
        return StreamModeRun(
            context, state, StreamSettings(config.siem_log_types, lookback, page_size, config.max_pages_per_call)
        )
    loopback = is_loopback_host(urlsplit(config.api_base_url).hostname or "")  # the simulator's files: loopback too
    settings = BatchSettings(config.siem_log_types, lookback, page_size, config.max_pages_per_call,
                             fetcher=lambda: FileFetcher(policy=DownloadPolicy(), allow_loopback=loopback))  # fmt: skip
    return BatchRun(context, state, settings)


def _map_siem(transformer: Transformer, records: Iterable[object], collected_ms: int) -> Iterator[MappedEvent]:
    """``map --source siem``: raw records in either field-name style, each keyed as the stream keys it."""
    for position, record in enumerate(records):
        if isinstance(record, dict):
            try:
                key = siem_key(record)
            except UnkeyableRecordError as exc:
                record, key = MappingError(f"siem record #{position}: {exc}", record_id=f"#{position}"), None
            mapped = transformer.email_record("siem", record, key, collected_ms)
        elif isinstance(record, MappingError):
            mapped = transformer.email_record("siem", record, None, collected_ms)
        else:
            mapped = transformer.email_record(
                "siem", MappingError("a SIEM record that is not an object"), None, collected_ms
            )
        if mapped is not None:
            yield mapped


SIEM: Final = Stream(
    name=SIEM_NAME,
    endpoints=(BATCH_LISTING, STREAM_EVENTS),
    record_key=RecordKey.CONTENT,
    time_field="timestamp",
    cursor=CursorKind.PAGE_TOKEN,
    mapping_tables=("email_types", "email_common", *SIEM_TABLES),
    tables=SIEM_TABLES,
    parse_state=SiemState.parse,
    initial_state=SiemState,
    probe=_probe,
    start=_start,
    map_sources={"siem": _map_siem},
    api_versions=frozenset({"2.0"}),
)
