"""The stream descriptor: one declaration per Mimecast data stream, and what a stream's run hands the collector.

A ``Stream`` names everything that differs between Mimecast's data streams: the event type that selects it (a
``manifest.json`` value, which also names the Mimecast product it needs), its endpoints and how records are
selected from their answers, the record key used for dedup, the time field, the cursor strategy, the mapping
tables and the output tables, the state it keeps in the checkpoint, the preflight request, and the records
``map --source`` accepts. The collector, the client core, the runner and the CLI know streams only through this
type (docs/architecture.md, "Adding a stream").
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from connector.api.client import Listing
from connector.api.envelope import Envelope
from connector.events import MappedEvent
from connector.registry import registry
from connector.streams.state import StreamState
from connector.timefmt import ms_to_datetime

if TYPE_CHECKING:
    from connector.api.client import MimecastClient
    from connector.config import Config
    from connector.pipeline import Transformer

__all__ = [
    "CursorKind",
    "Endpoint",
    "MapRecords",
    "RecordKey",
    "Stream",
    "StreamContext",
    "StreamOutput",
    "StreamRun",
    "Summary",
    "iso",
    "span",
    "table_outputs",
]

_log = logging.getLogger("connector.streams")


class CursorKind(enum.Enum):
    """How a stream knows where it stopped."""

    WINDOW = "time window with a trailing overlap, read in slices; the cursor moves past whole slices"
    PAGE_TOKEN = "the server's page token, kept per partition"
    SNAPSHOT = "a full snapshot, diffed against the previous one"


class RecordKey(enum.Enum):
    """What recognises a record read twice."""

    ID = "the record's Mimecast id"
    CONTENT = "a hash of the record's canonical content"
    NONE = "none (each pull is a complete snapshot)"


@dataclass(frozen=True)
class Endpoint:
    """One Mimecast endpoint a stream reads, and where its records are in the answer.

    Attributes:
        path: ``/api/audit/get-audit-events``.
        records_at: ``data[].<records_at>[]`` holds the records; ``None`` for the ``data[]`` items.
        method: The HTTP method.
    """

    path: str
    records_at: str | None = None
    method: str = "POST"

    def listing(self, data: list[dict[str, Any]]) -> Listing:
        """A paginated request of this endpoint with ``data`` as its query."""
        return Listing(self.path, data, self.records_at)


class Summary(Protocol):
    """A stream's section of the run summary."""

    def lines(self) -> list[str]:
        """Human lines (the collector masks and escapes them)."""
        ...


@dataclass(frozen=True)
class StreamOutput:
    """What a run yields: events for one table and/or the stream's new state (covering them and all before)."""

    table: str | None
    class_uid: int | None
    events: list[dict[str, Any]]
    state: StreamState | None


class StreamRun(Protocol):
    """One pass of one stream."""

    @property
    def summary(self) -> Summary:
        """Its section of the run summary (filled in as it runs)."""
        ...

    def outputs(self) -> Iterator[StreamOutput]:
        """Pull, map and yield; a state is yielded only once everything it covers has been yielded."""
        ...


@dataclass(frozen=True)
class StreamContext:
    """What a run may use: the shared client, the mapping pipeline, the clock, the configuration, warnings."""

    client: MimecastClient
    transformer: Transformer
    now_ms: Callable[[], int]
    config: Config
    warnings: list[str] = field(default_factory=list)

    def warn(self, summary_line: str, message: str, **extra: object) -> None:
        """A WARNING line of the run summary and a log warning."""
        self.warnings.append(summary_line)
        _log.warning(message, extra=extra)


MapRecords = Callable[["Transformer", Iterable[object], int], Iterator[MappedEvent]]
"""``map --source``: (transformer, records, collection time in epoch ms) -> valid events."""


@dataclass(frozen=True)
class Stream:
    """The declaration of one Mimecast data stream.

    Attributes:
        name: The ``event_types`` value that selects it (``manifest.json``); also its checkpoint namespace.
        endpoints: What it reads.
        record_key: What recognises a record read twice.
        time_field: The record field that holds the event time (``None``: the collection time).
        cursor: How it knows where it stopped.
        mapping_tables: The files in ``mappings/`` that map its records.
        tables: The ``manifest.json`` tables it emits.
        parse_state: Strict parser of its stored state (``InvalidState`` on anything else).
        initial_state: The state before its first run.
        probe: The preflight request at a given now (epoch ms): one record of one endpoint (a ``/api`` listing, or
            an envelope built as a probe for an endpoint of another shape).
        start: Begins one pass from a state.
        map_sources: What ``map --source NAME`` reads and how it is mapped.
        api_versions: The Mimecast API generations that serve it (``check`` names a stream that API 1.0 lacks).
    """

    name: str
    endpoints: tuple[Endpoint, ...]
    record_key: RecordKey
    time_field: str | None
    cursor: CursorKind
    mapping_tables: tuple[str, ...]
    tables: tuple[str, ...]
    parse_state: Callable[[object, str], StreamState]
    initial_state: Callable[[], StreamState]
    probe: Callable[[int], Listing | Envelope]
    start: Callable[[StreamContext, StreamState], StreamRun]
    map_sources: Mapping[str, MapRecords] = field(default_factory=dict)
    api_versions: frozenset[str] = frozenset({"2.0", "1.0"})

    @property
    def product(self) -> str:
        """The Mimecast API product this stream's event type needs (``manifest.json``)."""
        return registry().product(self.name)


def iso(ms: int | None) -> str:
    """An epoch-ms time as ``2026-12-01T10:00:00Z`` for summaries and logs (``-`` for none)."""
    if ms is None:
        return "-"
    try:
        return ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:  # a host may hand over a Checkpoint object it built itself, unchecked
        return f"{ms} ms (not a date)"


def span(window: tuple[int, int]) -> dict[str, Any]:
    """A time span of a summary section as JSON-ready data (``--summary-json``): ISO 8601 and epoch ms."""
    return {"start": iso(window[0]), "end": iso(window[1]), "start_ms": window[0], "end_ms": window[1]}


def table_outputs(by_table: Mapping[str, list[MappedEvent]], state: StreamState) -> Iterator[StreamOutput]:
    """One output per table (sorted by name); only the last carries ``state`` (it covers them all)."""
    tables = sorted(by_table)
    if not tables:
        yield StreamOutput(None, None, [], state)
        return
    for index, table in enumerate(tables):
        mapped = by_table[table]
        last = index == len(tables) - 1
        yield StreamOutput(table, mapped[0].class_uid, [m.event for m in mapped], state if last else None)
