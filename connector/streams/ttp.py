"""The Targeted Threat Protection and DLP log streams: four time-window listings declared from one table.

``POST /api/ttp/url/get-logs``, ``/api/ttp/attachment/get-logs``, ``/api/ttp/impersonation/get-logs`` and
``/api/dlp/get-logs`` (docs/ttp-dlp.md) share the ``/api`` POST envelope, the page token and the window query
(``from``/``to`` in the Mimecast time format). They differ only in where the records sit in the answer, which
field holds the event time, whether a record has an id, and which OCSF table it becomes; so they are one table
(``LOGS``) and one way of building a ``Stream`` from a row, rather than four modules that would repeat each other.

Why they look like the audit stream (``WindowRun``): Mimecast returns these logs newest first unless the request
says ``oldestFirst: true``, documents neither their history nor when a record becomes visible, and a record may
show up late. So every request sends ``oldestFirst: true`` (a listing read oldest first ends on the window's
newest page, not its oldest), the window re-reads a trailing overlap, long windows are read in slices, and the
cursor moves only past a slice read whole. Only Impersonation Protect records have an id (``MTOKEN:...``); URL,
Attachment and DLP records are recognised by a content key. Two DLP records of one message with different actions
(``hold`` and ``notification``) differ in content, so both are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from connector.api.client import Listing
from connector.events import MappedEvent
from connector.pipeline import TRANSPORT_FIELDS, Transformer, email_record_key
from connector.streams.base import CursorKind, Endpoint, MapRecords, RecordKey, Stream, StreamContext
from connector.streams.state import StreamState
from connector.streams.window import MINUTE_MS, KeyedWindowState, WindowRun, WindowSettings, WindowSpec, WindowState
from connector.timefmt import format_mimecast_time, ms_to_datetime

__all__ = [
    "DLP",
    "HISTORY_MS",
    "LOGS",
    "SLICE_MS",
    "STREAMS",
    "TTP_ATTACHMENT",
    "TTP_IMPERSONATION",
    "TTP_URL",
    "LogSpec",
    "log_query",
    "record_key",
]

# Mimecast documents no history for these logs (docs/ttp-dlp.md, "History"). 30 days is our assumption: a
# window reaching further back is clamped there and the summary names what was not collected, so a long outage
# shows up as a reported gap instead of a silent one or a refused request.
HISTORY_MS: Final = 30 * 24 * 60 * MINUTE_MS
SLICE_MS: Final = 6 * 60 * MINUTE_MS  # catch-up windows are read in 6-hour slices, as audit's


@dataclass(frozen=True)
class LogSpec:
    """One row of the table: what differs between the four logs.

    Attributes:
        name: The event type (``manifest.json``), the checkpoint namespace and the mapping source.
        path: The endpoint.
        records_at: The records are ``data[0].<records_at>[]``.
        time_field: The record field holding the event time (Mimecast time format).
        id_field: The record id field, or ``None``: dedup by content key.
        table: The ``manifest.json`` table its records become.
    """

    name: str
    path: str
    records_at: str
    time_field: str
    id_field: str | None
    table: str

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint, with where its records are."""
        return Endpoint(self.path, self.records_at)


LOGS: Final = (
    LogSpec("ttp_url", "/api/ttp/url/get-logs", "clickLogs", "date", None, "email_url_activity"),
    LogSpec("ttp_attachment", "/api/ttp/attachment/get-logs", "attachmentLogs", "date", None, "email_file_activity"),
    LogSpec("ttp_impersonation", "/api/ttp/impersonation/get-logs", "impersonationLogs", "eventTime", "id",
            "detection_finding"),
    LogSpec("dlp", "/api/dlp/get-logs", "dlpLogs", "eventTime", None, "data_security_finding"),
)  # fmt: skip
"""The four logs (docs/ttp-dlp.md)."""


def log_query(start: datetime, end: datetime) -> dict[str, Any]:
    """The ``data[0]`` of a request for ``[start, end]``, oldest record first.

    Raises:
        ValueError: a naive datetime, or ``start`` after ``end``.
    """
    if start > end:
        raise ValueError("window start must not be after its end")
    return {"from": format_mimecast_time(start), "to": format_mimecast_time(end), "oldestFirst": True}


def record_key(log: LogSpec, record: object) -> str | None:
    """The dedup key the window uses for ``record``: the rule of ``email_record_key`` (its id for impersonation,
    its content key otherwise); None for a record that has neither, which the mapping step refuses.

    ``map --source`` computes it here too, so a record mapped offline gets the ``metadata.uid`` it gets when
    collected.
    """
    return email_record_key(log.name, record)


def _probe(log: LogSpec) -> Callable[[int], Listing]:
    def probe(now_ms: int) -> Listing:
        """One record of the last hour."""
        end = ms_to_datetime(now_ms)
        return log.endpoint.listing([log_query(end - timedelta(hours=1), end)])

    return probe


def _start(log: LogSpec) -> Callable[[StreamContext, StreamState], WindowRun]:
    endpoint = log.endpoint

    def start(context: StreamContext, state: StreamState) -> WindowRun:
        assert isinstance(state, WindowState | KeyedWindowState)
        config, transformer = context.config, context.transformer
        collected_ms = context.now_ms()
        spec = WindowSpec(
            label=log.name,
            listing=lambda a, b: endpoint.listing([log_query(a, b)]),
            map_record=lambda record, _position, key: transformer.email_record(log.name, record, key, collected_ms),
            time_field=log.time_field,
            id_field=log.id_field,
            ignore_fields=TRANSPORT_FIELDS,  # the content key of email_record_key, so uids agree with map --source
            history_ms=HISTORY_MS,
            slice_ms=SLICE_MS,
        )
        return WindowRun(spec, WindowSettings.from_config(config), context, state)

    return start


def _map_source(log: LogSpec) -> MapRecords:
    def map_records(transformer: Transformer, records: Iterable[object], collected_ms: int) -> Iterator[MappedEvent]:
        """``map --source NAME``: each record keyed as the collected stream keys it, then mapped and validated."""
        for record in records:
            mapped = transformer.email_record(log.name, record, record_key(log, record), collected_ms)
            if mapped is not None:
                yield mapped

    return map_records


def _stream(log: LogSpec) -> Stream:
    keyed = log.id_field is None
    return Stream(
        name=log.name,
        endpoints=(log.endpoint,),
        record_key=RecordKey.CONTENT if keyed else RecordKey.ID,
        time_field=log.time_field,
        cursor=CursorKind.WINDOW,
        mapping_tables=("email_types", "email_common", log.table),
        tables=(log.table,),
        parse_state=KeyedWindowState.parse if keyed else WindowState.parse,
        initial_state=KeyedWindowState if keyed else WindowState,
        probe=_probe(log),
        start=_start(log),
        map_sources={log.name: _map_source(log)},
    )


STREAMS: Final = tuple(_stream(log) for log in LOGS)
"""The four streams, in ``LOGS`` order (registered by ``connector.streams.registry``)."""
TTP_URL, TTP_ATTACHMENT, TTP_IMPERSONATION, DLP = STREAMS
