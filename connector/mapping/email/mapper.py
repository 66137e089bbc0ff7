"""Turn one email-security record into an OCSF event by executing the compiled email tables.

Per record the work is: find its kind (the SIEM ``type`` / ``eventType``, or the source), read its time, look up
its outcome words in the kind's compiled lookups, copy the memoised header of that outcome, compute each source
value the class's rows read (once however many rows read it), set it at its path, add the observables of what was
set, and collect the raw fields no row consumed into ``unmapped``. Everything table-shaped was compiled by
``rules.load_email_rules`` and is prepared here once per table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from connector.errors import MappingError
from connector.events import MappedEvent
from connector.mapping.email.observables import ObservablePlan
from connector.mapping.email.rules import EmailKind, EmailRules, load_email_rules
from connector.mapping.tables import FieldTable
from connector.mapping.values import email_parse as parse
from connector.mapping.values.email import EmailRecord
from connector.ocsf.catalog import OCSF_VERSION, load_enums
from connector.registry import registry
from connector.timefmt import parse_mimecast_time_ms

__all__ = ["EmailMapper"]

_HEADER_MEMO_LIMIT: Final = 4096
_MAX_TIME_TEXT: Final = 64
_MIN_MS: Final = 10**12  # the validator's epoch-millisecond range
_MAX_MS: Final = 10**13
_TTP_TIME_FIELDS: Final = ("date", "eventTime")


@dataclass(frozen=True, slots=True)
class _Plan:
    """A class's field table prepared for the per-record loop.

    ``computes`` are the distinct source values its rows read, in the order of their first row; ``rows`` are
    (parent path, attribute, slot in ``computes``); ``merge_unmapped`` is the slot of a row that fills
    ``unmapped`` itself (the other leftovers join it). ``consumed`` names the raw fields the rows read.
    """

    table: FieldTable
    computes: tuple[Callable[[Any], object], ...]
    rows: tuple[tuple[tuple[str, ...], str, int], ...]
    consumed: frozenset[str]
    observables: ObservablePlan

    @classmethod
    def of(cls, table: FieldTable) -> _Plan:
        rows = [row for row in table.rows if row.definition.origin != "event"]
        slots: dict[str, int] = {}
        computes: list[Callable[[Any], object]] = []
        for row in rows:
            if row.source not in slots:
                compute = row.definition.compute
                assert compute is not None, f"email source {row.source} is computed"
                slots[row.source] = len(computes)
                computes.append(compute)
        has_observables = any(row.definition.origin == "event" for row in table.rows)
        return cls(
            table=table,
            computes=tuple(computes),
            rows=tuple((row.path[:-1], row.path[-1], slots[row.source]) for row in rows),
            consumed=table.consumes | table.drop,
            observables=ObservablePlan.of(table.class_uid, {row.path[0] for row in rows}, enabled=has_observables),
        )


class EmailMapper:
    """Maps email-security records. Build once (it compiles the tables); ``map`` is the per-record call."""

    def __init__(self, rules: EmailRules | None = None) -> None:
        self.rules = rules or load_email_rules()
        self._enums = load_enums()
        self._plans = {name: _Plan.of(table) for name, table in self.rules.tables.items()}
        self._profiles = {name: list(registry().table(name).profiles) for name in self.rules.tables}
        # (source, kind) -> (raw fields that do not go to unmapped as they are: its table's, its lookups' and the
        # SIEM type fields; lookup fields no row reads, whose unlisted values are kept for unmapped)
        self._kept: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}
        for kind in (*self.rules.siem_types.values(), *self.rules.kinds.values()):
            consumed = self._plans[kind.table.table].consumed
            kept = consumed | kind.lookup_fields | frozenset(self.rules.siem_type_fields)
            self._kept[kind.source, kind.name] = (kept, kind.lookup_fields - consumed)
        self._headers: dict[tuple[str, str, tuple[str | None, ...]], dict[str, Any]] = {}
        self._type_fields = self.rules.siem_type_fields

    def map(self, source: str, record: object, key: str, collected_ms: int) -> MappedEvent:
        """One record as an OCSF event of its class (not yet validated).

        Raises:
            MappingError: not an object, an unknown source or SIEM type, no readable time, or a class's required
                attribute without a source value (named by ``key``).
        """
        if not isinstance(record, dict):
            raise MappingError(f"{source} record {key} is not a JSON object", record_id=key)
        kind = self._kind(source, record, key)
        time_ms = self._time_ms(source, record, key)
        plan = self._plans[kind.table.table]
        record_input = EmailRecord(source, key, collected_ms, record, kind.name, time_ms)
        kept, lookup_only = self._kept[kind.source, kind.name]
        matched = tuple(self._match(kind, record, record_input, lookup_only))
        event = dict(self._header(kind, matched))
        event["metadata"] = {
            "version": OCSF_VERSION,
            "product": {**self.rules.product, "feature": {"name": kind.feature}},
            "profiles": self._profiles[kind.table.table],
        }
        values = [compute(record_input) for compute in plan.computes]
        merged: dict[str, Any] | None = None
        for parents, attribute, slot in plan.rows:
            value = values[slot]
            if value is None:
                continue
            node = event
            for name in parents:
                node = node.setdefault(name, {})
            if attribute == "unmapped" and not parents:
                merged = value  # type: ignore[assignment]
            node[attribute] = value
        observables = plan.observables.collect(event, record)
        if observables:
            event["observables"] = observables
        unmapped = dict(merged) if merged else {}
        for name, value in record.items():
            if name not in kept:
                unmapped[name] = value
        if record_input.kept:
            unmapped.update(record_input.kept)
        if unmapped:
            event["unmapped"] = unmapped
        else:
            event.pop("unmapped", None)
        return MappedEvent(kind.table.table, kind.table.class_uid, event, key)

    def _kind(self, source: str, record: Mapping[str, Any], key: str) -> EmailKind:
        if source != "siem":
            kind = self.rules.kinds.get(source)
            if kind is None:
                raise MappingError(f"unknown email source {source!r} for record {key}", record_id=key)
            return kind
        raw = None
        for name in self._type_fields:
            raw = record.get(name)
            if raw is not None:
                break
        word = parse.word(raw) if isinstance(raw, str) and len(raw) <= 64 else None
        kind = self.rules.siem_types.get(" ".join(word.split())) if word else None
        if kind is None and raw is None:
            fields = " or ".join(self._type_fields)
            raise MappingError(f"siem record {key} has no type ({fields})", record_id=key)
        if kind is None:
            shown = raw if isinstance(raw, str) and len(raw) <= 64 else type(raw).__name__
            raise MappingError(f"siem record {key} has an unknown type {shown!r}", record_id=key)
        return kind

    @staticmethod
    def _time_ms(source: str, record: Mapping[str, Any], key: str) -> int:
        if source == "siem":
            raw = record.get("timestamp")
            ms = parse.epoch_ms(raw)
        else:
            raw = next((record[name] for name in _TTP_TIME_FIELDS if record.get(name) is not None), None)
            try:
                text_ok = isinstance(raw, str) and len(raw) <= _MAX_TIME_TEXT
                ms = parse_mimecast_time_ms(raw) if text_ok else None  # type: ignore[arg-type]
            except (ValueError, OverflowError):
                ms = None
            if ms is not None and not _MIN_MS <= ms < _MAX_MS:
                ms = None
        if ms is None:
            shown = raw if isinstance(raw, str | int) and len(str(raw)) <= _MAX_TIME_TEXT else type(raw).__name__
            raise MappingError(f"{source} record {key} has no readable time ({shown!r})", record_id=key)
        return ms

    @staticmethod
    def _match(
        kind: EmailKind, record: Mapping[str, Any], record_input: EmailRecord, lookup_only: frozenset[str]
    ) -> list[str | None]:
        """The row each lookup selects; a value no row names is kept for ``unmapped`` (unless a field row reads
        the field: then it is in the event already)."""
        matched: list[str | None] = []
        for lookup in kind.lookups:
            value = record.get(lookup.field)
            word = parse.word(value) if value is not None else None
            row = lookup.match(word) if word is not None and len(word) <= 256 else None
            if row is None and value is not None and lookup.field in lookup_only:
                record_input.keep(lookup.field, value)
            matched.append(row)
        return matched

    def _header(self, kind: EmailKind, matched: tuple[str | None, ...]) -> dict[str, Any]:
        memo_key = (kind.source, kind.name, matched)
        header = self._headers.get(memo_key)
        if header is None:
            outcome = dict(kind.base)
            for lookup, row in zip(kind.lookups, matched, strict=True):
                if row is not None:
                    outcome.update(lookup.values[row])
            header = self._build_header(kind.table.class_uid, outcome)
            if len(self._headers) < _HEADER_MEMO_LIMIT:
                self._headers[memo_key] = header
        return header

    def _build_header(self, class_uid: int, outcome: Mapping[str, Any]) -> dict[str, Any]:
        info = self._enums.class_info(class_uid)
        activity_id = outcome["activity_id"]
        header = self._enums.class_header(class_uid, activity_id, outcome.get("activity_name"))
        for name, caption in (
            ("status_id", "status"),
            ("severity_id", "severity"),
            ("disposition_id", "disposition"),
            ("action_id", "action"),
        ):
            header[name] = outcome[name]
            header[caption] = info[name][str(outcome[name])]
        if "is_alert" in outcome:
            header["is_alert"] = outcome["is_alert"]
        return header
