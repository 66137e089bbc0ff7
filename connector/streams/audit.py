"""The audit stream: ``POST /api/audit/get-audit-events`` by time window -> Authentication, Account Change, Group
Management (and Base Event when asked), deduplicated by audit id in the overlap (docs/mimecast-api.md, "Audit
events")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from connector.api.client import Listing
from connector.events import MappedEvent
from connector.pipeline import Transformer
from connector.streams.base import CursorKind, Endpoint, RecordKey, Stream, StreamContext
from connector.streams.state import StreamState
from connector.streams.window import MINUTE_MS, WindowRun, WindowSettings, WindowSpec, WindowState
from connector.timefmt import format_mimecast_time, ms_to_datetime

__all__ = ["AUDIT", "AUDIT_EVENTS", "HISTORY_MS", "SLICE_MS", "audit_query"]

# Mimecast serves about 60 days of audit history; start 10 minutes inside it so a request at the very edge is
# not refused (which would fail every run of a long catch-up on its first slice).
HISTORY_MS: Final = 60 * 24 * 60 * MINUTE_MS - 10 * MINUTE_MS
SLICE_MS: Final = 6 * 60 * MINUTE_MS  # catch-up windows are read in 6-hour slices

AUDIT_EVENTS: Final = Endpoint("/api/audit/get-audit-events")


def audit_query(start: datetime, end: datetime, categories: Sequence[str] | None = None) -> dict[str, Any]:
    """The ``data[0]`` of an audit request for ``[start, end)``.

    Raises:
        ValueError: a naive datetime, or ``start`` after ``end``.
    """
    if start > end:
        raise ValueError("audit window start must not be after its end")
    query: dict[str, Any] = {"startDateTime": format_mimecast_time(start), "endDateTime": format_mimecast_time(end)}
    if categories:
        query["categories"] = list(categories)
    return query


def _probe(now_ms: int) -> Listing:
    """One audit event from the last hour."""
    end = ms_to_datetime(now_ms)
    return AUDIT_EVENTS.listing([audit_query(end - timedelta(hours=1), end)])


def _start(context: StreamContext, state: StreamState) -> WindowRun:
    assert isinstance(state, WindowState)
    config = context.config
    categories = tuple(config.audit_categories)
    spec = WindowSpec(
        label="audit",
        listing=lambda start, end: AUDIT_EVENTS.listing([audit_query(start, end, categories)]),
        map_record=lambda record, position, _key: context.transformer.audit_record(record, position),
        time_field="eventTime",
        id_field="id",
        history_ms=HISTORY_MS,
        slice_ms=SLICE_MS,
    )
    return WindowRun(spec, WindowSettings.from_config(config), context, state)


def _map_audit(transformer: Transformer, records: Iterable[object], collected_ms: int) -> Iterator[MappedEvent]:
    return transformer.audit(records, start=1)


AUDIT: Final = Stream(
    name="audit",
    endpoints=(AUDIT_EVENTS,),
    record_key=RecordKey.ID,
    time_field="eventTime",
    cursor=CursorKind.WINDOW,
    mapping_tables=("audit_types", "common", "authentication", "account_change", "group_management", "base_event"),
    tables=("authentication", "account_change", "group_management", "base_event"),
    parse_state=WindowState.parse,
    initial_state=WindowState,
    probe=_probe,
    start=_start,
    map_sources={"audit": _map_audit},
)
