"""Map, validate and account for records: the per-record path shared by the CLI and the collector.

A record either becomes a valid OCSF event, or is counted and reported with its id (mapping or validation
error), or is counted as an audit type outside the four classes. Nothing disappears without a count.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from connector.errors import MappingError, UnkeyableRecordError
from connector.events import MappedEvent
from connector.log import safe_line
from connector.mapping.email import map_email
from connector.mapping.mapper import Mapper
from connector.nesting import MAX_RECORD_DEPTH, nests_deeper_than
from connector.ocsf.validate import EventValidator
from connector.raw_data import with_raw_data
from connector.streams.keys import content_key

__all__ = ["TRANSPORT_FIELDS", "RecordError", "Report", "Transformer", "email_record_key", "too_deep"]

TRANSPORT_FIELDS: Final = frozenset({"_offset", "_partition"})
"""Fields of SIEM batch records that say where the record sat in Mimecast's log, not what it says: left out of
the content key, so a record re-delivered at another offset is recognised."""

_log = logging.getLogger("connector.pipeline")
_KEEP_ERRORS = 200


@dataclass(frozen=True)
class RecordError:
    """A record that was not emitted: its id (or ``#position``), the stage that refused it, and why."""

    record_id: str
    stage: str  # "mapping" | "validation"
    message: str


@dataclass
class Report:
    """Counts for one run: events per table, refused records, audit types outside the four classes."""

    emitted: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    other_types: Counter[str] = field(default_factory=Counter)
    errors: list[RecordError] = field(default_factory=list)
    # Events whose original record was larger than raw_data_max_bytes: emitted with raw_data_size, no raw_data.
    raw_data_omitted: int = 0

    @property
    def failures(self) -> int:
        """Records refused by mapping or validation."""
        return sum(self.failed.values())

    def add_error(self, error: RecordError) -> None:
        """Count a refused record and keep the first few for the summary."""
        self.failed[error.stage] += 1
        if len(self.errors) < _KEEP_ERRORS:
            self.errors.append(error)
        _log.warning(
            "record not emitted",
            extra={"record_id": error.record_id, "stage": error.stage, "reason": error.message},
        )

    def summary_lines(self, delivered: Mapping[str, int] | None = None) -> list[str]:
        """Human-readable lines for stderr (through ``safe_line``: secrets masked, control characters escaped).

        Args:
            delivered: events per table the consumer took (a pass's batches); without it (``map``, which writes
                every event it emits) the emitted counts are printed. Events mapped but never handed out (the
                pass failed first) are named as such rather than counted as if they were written.
        """
        if delivered is None:
            lines = [f"  {table}: {count} events" for table, count in sorted(self.emitted.items())]
        else:
            lines = [_delivered_line(table, delivered.get(table, 0), self.emitted.get(table, 0))
                     for table in sorted(set(self.emitted) | set(delivered))]  # fmt: skip
        if not lines:
            lines.append("  no events emitted")
        if self.other_types:
            kinds = ", ".join(f"{name} x{count}" for name, count in self.other_types.most_common())
            lines.append(
                f"  not emitted, audit types outside the four tables ({sum(self.other_types.values())}): {kinds}"
                " (set emit_other_audit_types to emit them as OCSF Base Event)"
            )
        if self.raw_data_omitted:
            lines.append(f"  raw_data left out of {self.raw_data_omitted} events: the original record was larger "
                         "than raw_data_max_bytes (raw_data_size gives its size)")  # fmt: skip
        for stage, count in sorted(self.failed.items()):
            lines.append(f"  refused at {stage}: {count} records")
        for error in self.errors[:20]:
            lines.append(f"    {error.record_id}: {error.message}")
        if self.failures > 20:
            lines.append(f"    ... and {self.failures - 20} more (see the log)")
        return [safe_line(line) for line in lines]  # ids and audit types are the tenant's text


def _delivered_line(table: str, delivered: int, mapped: int) -> str:
    line = f"  {table}: {delivered} events delivered"
    if mapped > delivered:
        line += (
            f" ({mapped} mapped, {mapped - delivered} not handed out: the pass ended first, the next run sends them)"
        )
    return line


def email_record_key(source: str, record: object) -> str | None:
    """The dedup key of an email-security record: its ``id`` for TTP impersonation (``MTOKEN:...``), the content
    key (``streams.keys.content_key`` without ``TRANSPORT_FIELDS``) for the sources whose records have none (SIEM,
    TTP URL and attachment, DLP). None for a record that has no key (not an object, an impersonation record
    without a string id, content that cannot be keyed: ``UnkeyableRecordError``): ``Transformer.email_record``
    refuses it. The streams and ``map --source`` share this rule, so ``metadata.uid`` is the same whichever way a
    record came in.
    """
    if not isinstance(record, dict):
        return None
    if source == "ttp_impersonation":
        record_id = record.get("id")
        return record_id if isinstance(record_id, str) and record_id else None
    try:
        return content_key(record, TRANSPORT_FIELDS)
    except UnkeyableRecordError:
        return None  # refused by Transformer.email_record, which names the nesting


def too_deep(record: object, record_id: str) -> MappingError | None:
    """The refusal of a record nested deeper than ``MAX_RECORD_DEPTH`` (``connector.nesting``), else None: checked
    before mapping, so nothing deeper reaches the mapping, ``unmapped`` or a sink."""
    if nests_deeper_than(record, MAX_RECORD_DEPTH):
        return MappingError(f"record {record_id} nests deeper than {MAX_RECORD_DEPTH} levels", record_id=record_id)
    return None


class Transformer:
    """Runs records through the mapper and the validator and keeps the report.

    ``raw_data_max_bytes`` (the parameter of that name; 0: off) puts each record into its event's ``raw_data``
    after mapping and before validation (``connector.raw_data.with_raw_data``, through ``with_raw``).
    """

    def __init__(
        self, mapper: Mapper, validator: EventValidator, report: Report | None = None, *, raw_data_max_bytes: int = 0
    ) -> None:
        self.mapper = mapper
        self.validator = validator
        self.report = report if report is not None else Report()
        self.raw_data_max_bytes = raw_data_max_bytes

    def with_raw(self, mapped: MappedEvent, record: object) -> MappedEvent:
        """``mapped`` with its original ``record`` in ``raw_data`` when the parameter asks for it (counting an
        omission above the cap); call it between mapping and ``accept``."""
        if self.raw_data_max_bytes and not with_raw_data(mapped.event, record, self.raw_data_max_bytes):
            self.report.raw_data_omitted += 1
        return mapped

    def accept(self, mapped: MappedEvent) -> bool:
        """Validate one mapped event; count it as emitted, or as refused with its record id."""
        problems = self.validator.problems(mapped.event)
        if problems:
            first = problems[0]
            self.report.add_error(RecordError(mapped.record_id, "validation", f"{first.path}: {first.message}"))
            return False
        self.report.emitted[mapped.table] += 1
        return True

    def audit(self, records: Iterable[object], start: int = 0) -> Iterator[MappedEvent]:
        """Map and validate audit records, yielding the valid events; ``start`` offsets reported positions.

        A ``MappingError`` in place of a record (an unreadable input line) is reported like a failed record.
        """
        for position, record in enumerate(records, start):
            mapped = self.audit_record(record, position)
            if mapped is not None:
                yield mapped

    def audit_record(self, record: object, position: int) -> MappedEvent | None:
        """Map and validate one audit record: the valid event, or None once the record is counted as refused
        (mapping or validation error) or as an audit type outside the four tables."""
        if isinstance(record, MappingError):
            self._refuse(record, position)
            return None
        record_id = record.get("id") if isinstance(record, dict) else None
        deep = too_deep(record, record_id if isinstance(record_id, str) and record_id else f"#{position}")
        if deep is not None:
            self._refuse(deep, position)
            return None
        try:
            mapped = self.mapper.map_audit(record, position)
        except MappingError as exc:
            self._refuse(exc, position)
            return None
        if mapped is None:
            assert isinstance(record, dict)
            self.report.other_types[str(record.get("auditType"))] += 1
            return None
        return mapped if self.accept(self.with_raw(mapped, record)) else None

    def email_record(self, source: str, record: object, key: str | None, collected_ms: int) -> MappedEvent | None:
        """Map and validate one email-security record (``connector.mapping.email``): the valid event, or None once
        it is counted as refused. ``key`` is its dedup key (a record without one is refused)."""
        if isinstance(record, MappingError):
            self._refuse(record, 0)
            return None
        deep = too_deep(record, key or "#?")
        if deep is not None:
            self._refuse(deep, 0)
            return None
        if key is None:
            self._refuse(MappingError(f"{source} record without a key", record_id="#?"), 0)
            return None
        try:
            mapped = map_email(source, record, key, collected_ms)
        except MappingError as exc:
            self._refuse(exc, 0)
            return None
        return mapped if self.accept(self.with_raw(mapped, record)) else None

    def email(self, source: str, records: Iterable[object], collected_ms: int) -> Iterator[MappedEvent]:
        """Map and validate email-security records of ``source`` (``map --source``), keyed by
        ``email_record_key``, yielding the valid events; the others are counted and reported."""
        for position, record in enumerate(records):
            if isinstance(record, MappingError):
                self._refuse(record, position)
                continue
            key = email_record_key(source, record)
            deep = too_deep(record, f"#{position}") if key is None else None
            if deep is not None:
                self._refuse(deep, position)
                continue
            if key is None:
                what = ("is not a JSON object" if not isinstance(record, dict) else
                        "has no id" if source == "ttp_impersonation" else "cannot be keyed")  # fmt: skip
                self._refuse(MappingError(f"{source} record #{position} {what}", record_id=f"#{position}"), position)
                continue
            mapped = self.email_record(source, record, key, collected_ms)
            if mapped is not None:
                yield mapped

    def users(self, records: Iterable[object], collected_ms: int, start: int = 0) -> Iterator[MappedEvent]:
        """Map and validate directory users into User Inventory Info events."""
        for position, record in enumerate(records, start):
            try:
                if isinstance(record, MappingError):
                    raise record
                deep = too_deep(record, f"#{position}")
                if deep is not None:
                    raise deep
                mapped = self.mapper.map_user(record, position, collected_ms)
            except MappingError as exc:
                self._refuse(exc, position)
                continue
            if self.accept(self.with_raw(mapped, record)):
                yield mapped

    def _refuse(self, error: MappingError, position: int) -> None:
        self.report.add_error(RecordError(error.record_id or f"#{position}", "mapping", str(error)))
