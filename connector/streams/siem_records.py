"""The per-record path of the SIEM stream (both modes): key, drop what was delivered, map, hand out in chunks; and
the stream's section of the run summary.

A SIEM record has no id: its key is ``content_key(record)`` without the transport fields ``_offset`` and
``_partition`` (the same record re-delivered in another file sits at another offset). A key kept for the record's
type (``siem_state.KeyBuckets``) drops it here; otherwise it is mapped with that key
(``Transformer.email_record``: ``metadata.uid`` derives from it, so a duplicate that still gets through, after a
crash before a commit, carries the same uid) and its key is kept. Events are handed out in chunks of
``CHUNK_EVENTS`` without a state: only the caller knows when a state may cover them (a whole listing page).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from connector.config import parameter_specs
from connector.errors import MappingError, UnkeyableRecordError
from connector.mapping.values.email_parse import epoch_ms
from connector.pipeline import TRANSPORT_FIELDS
from connector.registry import registry
from connector.streams.base import StreamContext, StreamOutput, iso, span
from connector.streams.keys import content_key
from connector.streams.siem_state import FUTURE_SLACK_MS, KeyBuckets

__all__ = [
    "CHUNK_EVENTS",
    "IGNORE_FIELDS",
    "SIEM_TYPES",
    "Gap",
    "RecordPath",
    "SiemSummary",
    "TypeCounts",
    "key_time",
    "record_time",
    "record_type",
    "siem_key",
]

SIEM_TYPES: Final = tuple(parameter_specs()["siem_log_types"].choices)
"""The Cloud Gateway log types, as the ``type`` query parameter and the records name them (the choices of the
``siem_log_types`` parameter, ``manifest.json``)."""
IGNORE_FIELDS: Final = TRANSPORT_FIELDS
CHUNK_EVENTS: Final = 500
OTHER_TYPE: Final = "other"


def siem_key(record: Mapping[str, Any]) -> str:
    """The dedup key of a SIEM record (and the input of its ``metadata.uid``): ``email_record_key``'s rule.

    Raises:
        UnkeyableRecordError: the record cannot be serialised (``content_key``).
    """
    return content_key(record, TRANSPORT_FIELDS)


def record_type(record: Mapping[str, Any]) -> str | None:
    """The record's log type in either field-name style (``type`` in batch files, ``eventType`` in the stream)."""
    kind = record.get("type", record.get("eventType"))
    return kind.strip().lower() if isinstance(kind, str) and kind.strip() else None


def record_time(record: Mapping[str, Any]) -> int | None:
    """``timestamp`` in epoch ms (an integer, or digits as a string) inside the range OCSF times may take, or None.

    The range is the validator's (``email_parse.epoch_ms``): a time outside it would be stored in the checkpoint
    (a key's minute, the stream cursor) where the next load refuses it.
    """
    return epoch_ms(record.get("timestamp"))


def key_time(record: Mapping[str, Any], collected_ms: int) -> int:
    """The time a record's key is filed under (and the stream cursor may take): its ``timestamp``, or
    ``collected_ms`` when it has none or names a time past ``collected_ms + FUTURE_SLACK_MS`` (a key in the far
    future would never be pruned, and a cursor there would start the next window after its end)."""
    time_ms = record_time(record)
    return time_ms if time_ms is not None and time_ms <= collected_ms + FUTURE_SLACK_MS else collected_ms


@dataclass
class TypeCounts:
    """What one pass read of one log type."""

    files: int = 0
    records: int = 0
    duplicates: int = 0
    pages: int = 0
    relists: int = 0


@dataclass(frozen=True)
class Gap:
    """A batch file that could not be had at all: reported, counted, never skipped in silence."""

    log_type: str
    listed_ms: int
    size: int | None
    name: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--summary-json``): type, listing time, size, host and why; never the link's query."""
        return {
            "type": self.log_type,
            "listed_at": iso(self.listed_ms),
            "listed_at_ms": self.listed_ms,
            "size": self.size,
            "host": self.name.split("/", 1)[0],
            "reason": self.reason,
        }

    def line(self) -> str:
        size = f"{self.size} bytes" if self.size is not None else "size unknown"
        return (
            f"  siem GAP: a {self.log_type} file listed {iso(self.listed_ms)} ({size}, {self.name}) was not "
            f"collected: {self.reason}"
        )


@dataclass
class SiemSummary:
    """The SIEM stream's section of the run summary, read by the progress display and the metrics through the
    section protocol (``connector.snapshot``: ``window``, ``cursor_ms``, ``pages``, ``records``, ``gaps``) and by
    ``--summary-json`` (``to_dict``).

    Attributes:
        window: Stream mode: the window of the pass; batch mode: None (a listing has no window).
        cursor_ms: Stream mode: the newest record time delivered (the stream cursor). Batch mode: the oldest
            ``listed_at_ms`` among the configured types that have a committed token, i.e. how long ago the least
            recently listed type was read (None before any type has one). Updated as states are handed out.
        gaps: How many batch files could not be had (each in ``gap_list``).
        pages: Listing pages of every type plus stream pages; records: records read (duplicates included).
    """

    mode: str
    types: dict[str, TypeCounts] = field(default_factory=dict)
    gap_list: list[Gap] = field(default_factory=list)
    caught_up: list[str] = field(default_factory=list)
    budget_left: list[str] = field(default_factory=list)
    budget_free_ms: int | None = None
    budget_text: str = ""
    history_gap: tuple[int, int] | None = None
    history_text: str = ""
    window: tuple[int, int] | None = None
    stream_pages: int = 0
    stream_gap: tuple[int, int] | None = None
    cursor_ms: int | None = None

    @property
    def gaps(self) -> int:
        """Batch files reported as gaps in this pass."""
        return len(self.gap_list)

    @property
    def pages(self) -> int:
        """Listing pages of every type (re-listings included) plus stream pages."""
        return self.stream_pages + sum(c.pages for c in tuple(self.types.values()))  # one C copy: thread-safe

    @property
    def records(self) -> int:
        """Records read in this pass, duplicates included."""
        return sum(c.records for c in tuple(self.types.values()))

    def to_dict(self) -> dict[str, Any]:
        """The section as JSON-ready data (``--summary-json``): the figures of ``lines()``, times as ISO 8601 and
        epoch ms. No link, page token or secret is in it (a gap names its host)."""
        budget_free = self.budget_free_ms
        return {
            "mode": self.mode,
            "window": None if self.window is None else span(self.window),
            "cursor": iso(self.cursor_ms) if self.cursor_ms is not None else None,
            "cursor_ms": self.cursor_ms,
            "pages": self.pages,
            "records": self.records,
            "types": {
                name: {
                    "files": c.files,
                    "records": c.records,
                    "duplicates": c.duplicates,
                    "pages": c.pages,
                    "relists": c.relists,
                    "caught_up": name in self.caught_up,
                }
                for name, c in sorted(self.types.items())
            },
            "gaps": [gap.to_dict() for gap in self.gap_list],
            "budget": {
                "limit": self.budget_text,
                "not_reached": list(self.budget_left),
                "free_at": iso(budget_free) if budget_free is not None else None,
                "free_at_ms": budget_free,
            },
            "not_collected": None if self.history_gap is None else span(self.history_gap),
            "stream_not_collected": None if self.stream_gap is None else span(self.stream_gap),
        }

    def of(self, log_type: str) -> TypeCounts:
        """The counts of ``log_type`` (created on first use)."""
        counts = self.types.get(log_type)
        if counts is None:
            counts = self.types[log_type] = TypeCounts()
        return counts

    def lines(self) -> list[str]:
        """The stream's lines of the human summary: one per type, then gaps, budget and history."""
        out = []
        if self.window:
            out.append(f"  siem ({self.mode}) window {iso(self.window[0])} -> {iso(self.window[1])}, "
                       f"{self.stream_pages} pages")  # fmt: skip
        for name in sorted(self.types):
            c = self.types[name]
            files = f"{c.files} files, " if self.mode == "batch" else ""
            extra = f", {c.relists} re-listings" if c.relists else ""
            done = ", caught up" if name in self.caught_up else ""
            pages = f" ({c.pages} pages{extra})" if self.mode == "batch" else ""
            out.append(f"  siem {name}: {files}{c.records} records, {c.duplicates} already delivered{pages}{done}")
        out.extend(gap.line() for gap in self.gap_list)
        if self.budget_left:
            out.append(f"  siem listing budget ({self.budget_text}) spent: {', '.join(self.budget_left)} "
                       f"go on at the next run (after {iso(self.budget_free_ms)})")  # fmt: skip
        if self.history_gap:
            out.append(f"  NOT COLLECTED (older than {self.history_text}): "
                       f"{iso(self.history_gap[0])} -> {iso(self.history_gap[1])}")  # fmt: skip
        if self.stream_gap:
            out.append(f"  NOT COLLECTED (the stream cursor was older than the API's 24 hours): "
                       f"{iso(self.stream_gap[0])} -> {iso(self.stream_gap[1])}")  # fmt: skip
        return out


class RecordPath:
    """Keys, drops, maps and buffers the records of one pass.

    Args:
        context: The run's transformer and clock.
        keys: Log type -> its live key set (shared with the caller, which snapshots it into states).
        summary: Where the counts go.
        collected_ms: When this pass collected (``metadata.logged_time``).
    """

    def __init__(
        self, context: StreamContext, keys: dict[str, KeyBuckets], summary: SiemSummary, collected_ms: int
    ) -> None:
        self.context = context
        self.keys = keys
        self.summary = summary
        self.collected_ms = collected_ms
        self.touched: set[str] = set()
        self._pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._count = 0
        self._classes = {name: spec.class_uid for name, spec in registry().tables.items()}

    def take(self, record: object, listed_type: str | None) -> int | None:
        """One record of a listing of ``listed_type`` (``None``: the stream mode, the record names its type).

        Returns:
            The record's time when it was new (mapped or refused), else None.
        """
        kind = record_type(record) if isinstance(record, dict) else None
        log_type = listed_type or (kind if kind in SIEM_TYPES else OTHER_TYPE)
        counts = self.summary.of(log_type)
        counts.records += 1
        transformer = self.context.transformer
        if not isinstance(record, dict):
            error = record if isinstance(record, MappingError) else MappingError("a SIEM record that is not an object")
            transformer.email_record("siem", error, None, self.collected_ms)
            return None
        try:
            key = siem_key(record)
        except UnkeyableRecordError as exc:  # refused as one record, by its type and position in the pass
            where = f"{log_type}#{counts.records}"
            transformer.email_record("siem", MappingError(f"siem record {where}: {exc}", record_id=where), None,
                                     self.collected_ms)  # fmt: skip
            return None
        bucket_ms = key_time(record, self.collected_ms)
        keys = self.keys.get(log_type)
        if keys is None:
            keys = self.keys[log_type] = KeyBuckets()
        if keys.seen(key, bucket_ms):
            counts.duplicates += 1
            return None
        mapped = transformer.email_record("siem", record, key, self.collected_ms)
        keys.add(key, bucket_ms)  # a refused record read again is not counted twice either
        self.touched.add(log_type)
        if mapped is not None:
            self._pending[mapped.table].append(mapped.event)
            self._count += 1
        return bucket_ms

    def full(self) -> bool:
        """Whether a chunk is ready to hand out."""
        return self._count >= CHUNK_EVENTS

    def drain(self) -> Iterator[StreamOutput]:
        """The buffered events, one output per table (no state: the caller yields it once a page is complete)."""
        pending, self._pending, self._count = self._pending, defaultdict(list), 0
        for table in sorted(pending):
            yield StreamOutput(table, self._classes[table], pending[table], None)
