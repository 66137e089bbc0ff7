"""The time-window cursor: read ``[cursor - overlap, now)`` in slices, skip what was delivered, move past whole slices.

Shared by every stream whose API is queried by a time window (audit today; TTP and DLP logs next). See
docs/mimecast-api.md, "Audit events" (history, ordering, index lag):

* The window runs from the cursor minus the overlap (or now minus the initial lookback) to now, clamped to the
  API's history with a warning for what cannot be collected.
* A cursor after now (the clock went back, or the checkpoint was edited or damaged) is treated as no cursor at
  all, loudly: such a cursor says nothing about what was read in terms of the current clock, so "cursor minus
  the overlap" could skip. Re-delivering keeps the same ``metadata.uid``, and the dedup set still skips.
* Long windows are read in slices. Results are not assumed to be ordered, so the cursor moves only when a whole
  slice has been read: to its end. Records that become visible late are caught by re-reading the overlap.
* A catch-up of several slices reads up to ``catchup_concurrency`` of them at once (``MimecastClient.ordered_pages``)
  but takes their pages slice after slice, so what follows sees a sequential pass: a failure in slice 3 leaves
  the cursor at the end of slice 2 even when slices 4 and later had been read already (they are dropped).
* Every record delivered is remembered (its id, or its content key for records without one) with its event
  time, and skipped when seen again; keys older than ``cursor - overlap`` can never be read again and are
  pruned, so the set stays bounded by the overlap plus one slice.
* Each page becomes one output per table; only the last carries the state, covering exactly the records of that
  page and before: a crash before the host commits it re-delivers, never skips.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

from connector.api.client import Listing
from connector.errors import MappingError, UnkeyableRecordError
from connector.events import MappedEvent
from connector.streams.base import StreamContext, StreamOutput, iso, span, table_outputs
from connector.streams.keys import KeyLog, KeySnapshot, content_key
from connector.streams.state import InvalidState, StreamState, epoch_ms, exact_object
from connector.timefmt import ms_to_datetime, parse_mimecast_time_ms

if TYPE_CHECKING:
    from connector.config import Config

__all__ = [
    "MINUTE_MS",
    "KeyedWindowState",
    "WindowRun",
    "WindowSettings",
    "WindowSpec",
    "WindowState",
    "WindowSummary",
]

_log = logging.getLogger("connector.streams.window")
MINUTE_MS: Final = 60_000


@dataclass(frozen=True)
class WindowState:
    """Progress of a window stream whose records have ids.

    Attributes:
        cursor_ms: Start of the next window (epoch ms); ``None`` before the first run.
        seen: Record id -> event time (epoch ms) of records delivered within the overlap.
    """

    cursor_ms: int | None = None
    seen: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seen", MappingProxyType(dict(self.seen)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``seen`` sorted by id so saves are reproducible)."""
        return {"cursor_ms": self.cursor_ms, "seen": dict(sorted(self.seen.items()))}

    @classmethod
    def parse(cls, data: object, where: str) -> WindowState:
        """Strictly parse the JSON form (``InvalidState`` naming ``where``)."""
        obj = exact_object(data, where, {"cursor_ms", "seen"})
        cursor = epoch_ms(obj["cursor_ms"], f"{where}.cursor_ms", optional=True)
        seen = obj["seen"]
        if not isinstance(seen, dict):
            raise InvalidState(f"{where}.seen must be an object")
        parsed: dict[str, int] = {}
        for key, value in seen.items():
            event_ms = epoch_ms(value, f"{where}.seen[{key!r}]")
            parsed[key] = 0 if event_ms is None else event_ms
        return cls(cursor_ms=cursor, seen=parsed)


@dataclass(frozen=True)
class KeyedWindowState:
    """Progress of a window stream whose records have no id: the cursor and the content keys in the overlap."""

    cursor_ms: int | None = None
    keys: KeySnapshot = field(default_factory=KeySnapshot.empty)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"cursor_ms": self.cursor_ms, "keys": self.keys.to_dict()}

    @classmethod
    def parse(cls, data: object, where: str) -> KeyedWindowState:
        """Strictly parse the JSON form (``InvalidState`` naming ``where``)."""
        obj = exact_object(data, where, {"cursor_ms", "keys"})
        cursor = epoch_ms(obj["cursor_ms"], f"{where}.cursor_ms", optional=True)
        return cls(cursor_ms=cursor, keys=KeySnapshot.parse(obj["keys"], f"{where}.keys"))


class _Seen(Protocol):
    """The dedup set of one run."""

    def __contains__(self, key: object) -> bool: ...

    def add(self, key: str, time_ms: int) -> None: ...

    def prune(self, keep_from_ms: int) -> None: ...

    def state(self, cursor_ms: int) -> StreamState: ...


class _SeenIds:
    """Ids with their event times (a window stream with record ids)."""

    def __init__(self, seen: Mapping[str, int]) -> None:
        self._seen = dict(seen)

    def __contains__(self, key: object) -> bool:
        return key in self._seen

    def add(self, key: str, time_ms: int) -> None:
        self._seen[key] = time_ms

    def prune(self, keep_from_ms: int) -> None:
        self._seen = {key: t for key, t in self._seen.items() if t >= keep_from_ms}

    def state(self, cursor_ms: int) -> StreamState:
        return WindowState(cursor_ms=cursor_ms, seen=self._seen)


class _SeenKeys:
    """Content keys (a window stream without record ids); snapshots cost nothing per page."""

    def __init__(self, keys: KeySnapshot) -> None:
        self._log = KeyLog(keys)

    def __contains__(self, key: object) -> bool:
        return key in self._log

    def add(self, key: str, time_ms: int) -> None:
        self._log.add(key, time_ms)

    def prune(self, keep_from_ms: int) -> None:
        self._log.prune(keep_from_ms)

    def state(self, cursor_ms: int) -> StreamState:
        return KeyedWindowState(cursor_ms=cursor_ms, keys=self._log.snapshot())


@dataclass(frozen=True)
class WindowSettings:
    """The window parameters, in milliseconds."""

    lookback_ms: int
    overlap_ms: int
    lag_warning_ms: int = 0

    @classmethod
    def from_config(cls, config: Config) -> WindowSettings:
        """The parameters every window stream shares: ``initial_lookback_hours``, ``overlap_minutes`` and
        ``lag_warning_minutes``."""
        return cls(
            lookback_ms=config.initial_lookback_hours * 60 * MINUTE_MS,
            overlap_ms=config.overlap_minutes * MINUTE_MS,
            lag_warning_ms=config.lag_warning_minutes * MINUTE_MS,
        )


@dataclass(frozen=True)
class WindowSpec:
    """What a window stream declares.

    Attributes:
        label: The stream's name (``audit``): in summaries and logs, and the event type a 401/403 names.
        listing: The request for one slice ``[start, end)``.
        map_record: Maps and validates one record, given its position in the pass and its dedup key (the id, the
            content key, or None): the event, or None once it is counted as refused or skipped. A stream keyed by
            content derives ``metadata.uid`` from the key it is handed rather than hashing the record again.
        time_field: The field holding the event time (Mimecast time format), used for records that were not
            mapped.
        id_field: The record id field, or ``None`` for records without one (dedup by content key).
        ignore_fields: Fields that are not content (with ``id_field`` None): left out of the content key.
        history_ms: How far back the API serves records.
        slice_ms: The length of one slice.
    """

    label: str
    listing: Callable[[datetime, datetime], Listing]
    map_record: Callable[[object, int, str | None], MappedEvent | None]
    time_field: str
    id_field: str | None
    history_ms: int
    slice_ms: int
    ignore_fields: frozenset[str] = frozenset()


@dataclass
class WindowSummary:
    """A window stream's section of the run summary."""

    label: str
    history_days: int
    window: tuple[int, int] | None = None
    cursor_ms: int | None = None
    records: int = 0
    duplicates: int = 0
    pages: int = 0
    max_late_ms: int = 0
    lag_warnings: int = 0
    history_gap: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The section as JSON-ready data (``--summary-json``): the figures of ``lines()``, times as ISO 8601 and
        epoch ms."""
        window = self.window
        gap = self.history_gap
        return {
            "window": None if window is None else span(window),
            "cursor": iso(self.cursor_ms) if self.cursor_ms else None,
            "cursor_ms": self.cursor_ms,
            "pages": self.pages,
            "records": self.records,
            "duplicates": self.duplicates,
            "max_late_ms": self.max_late_ms,
            "lag_warnings": self.lag_warnings,
            "history_days": self.history_days,
            "not_collected": None if gap is None else span(gap),
        }

    def lines(self) -> list[str]:
        """The stream's lines of the human summary."""
        out = []
        if self.window:
            start, end = self.window
            read = f"{self.pages} pages, {self.records} records read"
            out.append(f"  {self.label} window {iso(start)} -> {iso(end)}, {read}, "
                       f"{self.duplicates} already delivered (overlap re-read)")  # fmt: skip
            out.append(f"  {self.label} cursor: {iso(self.cursor_ms) if self.cursor_ms else 'not set'}")
            if self.max_late_ms:
                out.append(f"  latest-indexed record appeared {self.max_late_ms / 60000:.1f} min after the previous "
                           f"cursor had passed it ({self.lag_warnings} lag warnings)")  # fmt: skip
        if self.history_gap:
            out.append(f"  NOT COLLECTED (older than Mimecast's {self.history_days}-day history): "
                       f"{iso(self.history_gap[0])} -> {iso(self.history_gap[1])}")  # fmt: skip
        return out


def _whole_second(ms: int) -> int:
    """``ms`` rounded down to a whole second: what a Mimecast window start actually asks for (no fraction)."""
    return ms - ms % 1000


class WindowRun:
    """One pass of a window stream from its state.

    Args:
        spec: The stream's window declaration.
        settings: Lookback, overlap and lag warning.
        context: Client, clock and warnings.
        state: The stored state (``WindowState`` for streams with ids, ``KeyedWindowState`` without).
    """

    def __init__(
        self,
        spec: WindowSpec,
        settings: WindowSettings,
        context: StreamContext,
        state: WindowState | KeyedWindowState,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.context = context
        self.state = state
        self.summary = WindowSummary(spec.label, round(spec.history_ms / (24 * 60 * MINUTE_MS)))

    def outputs(self) -> Iterator[StreamOutput]:
        """Read the window slice by slice (see the module docstring)."""
        spec, settings = self.spec, self.settings
        now = self.context.now_ms()
        previous_cursor = self.state.cursor_ms
        if previous_cursor is not None and previous_cursor > now:
            restart = iso(now - settings.lookback_ms)
            self.context.warn(
                f"{spec.label} cursor {iso(previous_cursor)} lies after now ({iso(now)}): the clock went back or the "
                f"checkpoint is wrong; {spec.label} collected from now - initial lookback ({restart}), as on a first "
                "run (records already delivered may be sent again)",
                f"{spec.label} cursor after now",
                stored=iso(previous_cursor),
                now=iso(now),
            )
            previous_cursor = None
        start = now - settings.lookback_ms if previous_cursor is None else previous_cursor - settings.overlap_ms
        floor = now - spec.history_ms
        if start < floor:
            self.summary.history_gap = (start, floor)
            _log.warning(f"{spec.label} history gap", extra={"from": iso(start), "to": iso(floor)})
            start = floor
        self.summary.window = (start, now)
        self.summary.cursor_ms = previous_cursor
        seen: _Seen = (
            _SeenKeys(self.state.keys) if isinstance(self.state, KeyedWindowState) else _SeenIds(self.state.seen)
        )
        # Page states of the first slice pin this window's start (the next window begins at cursor - overlap):
        # without a cursor yet (first run) or with one older than the history, a restart would otherwise
        # recompute the start from its own "now" and skip what lies between the two starts.
        cursor = start + settings.overlap_ms
        slices: list[tuple[int, int]] = []
        slice_start = start
        while slice_start < now:
            slices.append((slice_start, min(slice_start + spec.slice_ms, now)))
            slice_start = slices[-1][1]
        # One stream of pages over all the slices, in slice order: with read-ahead the client asks for the next
        # slice's first page while this one's last page is still being mapped; with catchup_concurrency > 1 it
        # reads up to that many slices at once. Pages still come slice after slice, so the cursor and the dedup
        # below see exactly what a sequential pass sees.
        listings = [spec.listing(ms_to_datetime(a), ms_to_datetime(b)) for a, b in slices]
        concurrency = self.context.config.catchup_concurrency
        for page in self.context.client.ordered_pages(listings, concurrency=concurrency, event_type=spec.label):
            slice_end = slices[page.window][1]
            if page.records:
                yield from self._page(page.records, slice_end, seen, cursor, previous_cursor)
            if not page.last:
                continue
            cursor = slice_end
            # The next window is sent in whole seconds, so it re-reads the whole second it starts in.
            seen.prune(_whole_second(cursor - settings.overlap_ms))
            self.summary.cursor_ms = cursor
            yield StreamOutput(None, None, [], seen.state(cursor))

    def _page(
        self, page: list[Any], end: int, seen: _Seen, cursor: int, previous_cursor: int | None
    ) -> Iterator[StreamOutput]:
        """Map one page of a slice ending at ``end``; one output per table, the last carrying a state that keeps
        the cursor where it was (the slice is not complete yet)."""
        spec, summary = self.spec, self.summary
        summary.pages += 1
        by_table: dict[str, list[MappedEvent]] = defaultdict(list)
        fresh = False
        for record in page:
            summary.records += 1
            try:
                key = self._key(record)
            except UnkeyableRecordError as exc:  # refused as one record, by its position in the pass
                where = f"#{summary.records}"
                record, key = MappingError(f"{spec.label} record {where}: {exc}", record_id=where), None
            if key is not None and key in seen:
                summary.duplicates += 1
                continue
            fresh = True
            # the position in this pass is what names a record without an id
            mapped = spec.map_record(record, summary.records, key)
            if mapped is not None:
                by_table[mapped.table].append(mapped)
            if key is not None:
                # reuse the time the mapper parsed; parse only records it did not emit
                event_time = mapped.event["time"] if mapped is not None else self._event_time(record, end)
                seen.add(key, event_time)
                if previous_cursor is not None and event_time < previous_cursor:
                    self._note_late(key, previous_cursor - event_time)
        if not fresh:
            return
        yield from table_outputs(by_table, seen.state(cursor))
        if summary.pages % 20 == 0:
            _log.info(f"{spec.label} progress", extra={"pages": summary.pages, "records": summary.records})

    def _key(self, record: object) -> str | None:
        """The record's dedup key: its id, or its content key; None for a record that has neither.

        Raises:
            UnkeyableRecordError: a content-keyed record that cannot be serialised (``content_key``).
        """
        if not isinstance(record, dict):
            return None
        if self.spec.id_field is None:
            return content_key(record, self.spec.ignore_fields)
        record_id = record.get(self.spec.id_field)
        return record_id if isinstance(record_id, str) and record_id else None

    def _event_time(self, record: Mapping[str, Any], fallback: int) -> int:
        text = record.get(self.spec.time_field)
        if isinstance(text, str):
            try:
                return parse_mimecast_time_ms(text)
            except ValueError:
                pass
        return fallback

    def _note_late(self, record_id: str, late_ms: int) -> None:
        summary, settings = self.summary, self.settings
        summary.max_late_ms = max(summary.max_late_ms, late_ms)
        if settings.lag_warning_ms and late_ms >= settings.lag_warning_ms:
            summary.lag_warnings += 1
            _log.warning(
                f"{self.spec.label} record indexed late, close to the overlap edge",
                extra={"record_id": record_id, "late_minutes": round(late_ms / MINUTE_MS, 1),
                       "overlap_minutes": settings.overlap_ms // MINUTE_MS},
            )  # fmt: skip
