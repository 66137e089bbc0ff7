"""Turn raw Mimecast records into OCSF 1.8.0 events by executing the compiled field tables.

Per record the work is: parse ``eventInfo`` (one regex match plus one key scan), compute the source values the
table's rows read (``connector.mapping.values``), copy a cached classification header, set each row's value at its
OCSF path, and collect what is left into ``unmapped``. Everything table-shaped (classification, captions, paths,
which sources a table reads) was compiled by ``tables.load_rules`` and is prepared once per table here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from connector.errors import MappingError
from connector.events import MappedEvent
from connector.mapping.event_info import parse_event_info
from connector.mapping.snapshot import MembershipChange
from connector.mapping.tables import FieldTable, MappingRules, load_rules
from connector.mapping.values.audit import AuditRecord
from connector.mapping.values.common import OBSERVABLE_PATHS, RecordInput
from connector.mapping.values.directory import DirectoryUser, Membership
from connector.ocsf.catalog import OCSF_VERSION, OcsfEnums, load_enums
from connector.timefmt import parse_mimecast_time_ms

__all__ = ["MappedEvent", "Mapper", "now_ms"]

_HEADER_CACHE_LIMIT: Final = 4096
_NO_FIELDS: Final[Mapping[str, Any]] = {}


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds (the default clock)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class _TablePlan:
    """A field table prepared for the per-record loop.

    The source values the rows read, and only those, are computed per record, each once however many rows read
    it, into a list of ``size`` slots: ``raw_copies`` and ``info_copies`` as ``(slot, field)`` copied from the raw
    record and the parsed eventInfo, ``computed`` as ``(slot, compute)``. ``steps`` group the rows by the object
    their value lands in, keeping the table's order (so the event's attributes come out in the order the analysts
    wrote them): each step is ``(outer keys, parent key, ((attribute, slot), ...))``, with ``None`` as parent key
    for a run of rows at the event's top level, and all the rows of one parent object (``metadata.*``) in the
    step of its first row, so each object is built in one go. The observables row, wherever it is in the table,
    is filled last, from everything the other rows set. ``kept_raw`` names the raw fields that do not go to
    ``unmapped`` (consumed or dropped); ``observables`` the observable kinds (see ``Mapper._observable_kinds``)
    whose path starts at an attribute some row sets (the others cannot be in the event).
    """

    size: int
    raw_copies: tuple[tuple[int, str], ...]
    info_copies: tuple[tuple[int, str], ...]
    computed: tuple[tuple[int, Callable[[Any], object]], ...]
    steps: tuple[tuple[tuple[str, ...], str | None, tuple[tuple[str, int], ...]], ...]
    kept_raw: frozenset[str]
    observables: tuple[tuple[tuple[str, ...], str, int, str], ...]

    @classmethod
    def of(cls, table: FieldTable, observable_kinds: tuple[tuple[tuple[str, ...], str, int, str], ...]) -> _TablePlan:
        rows = [row for row in table.rows if row.definition.origin != "event"]
        definitions = {row.source: row.definition for row in rows}  # in the order of each source's first row
        slots = {name: slot for slot, name in enumerate(definitions)}
        sources = [(slots[name], source) for name, source in definitions.items()]
        steps: list[tuple[tuple[str, ...], str | None, list[tuple[str, int]]]] = []
        parents: dict[tuple[str, ...], list[tuple[str, int]]] = {}
        for row in rows:
            leaf = (row.path[-1], slots[row.source])
            if len(row.path) == 1:
                if not steps or steps[-1][1] is not None:
                    steps.append(((), None, []))
                steps[-1][2].append(leaf)
            elif row.path[:-1] in parents:
                parents[row.path[:-1]].append(leaf)
            else:
                parents[row.path[:-1]] = [leaf]
                steps.append((row.path[:-2], row.path[-2], parents[row.path[:-1]]))
        has_observables = any(row.definition.origin == "event" for row in table.rows)
        tops = {row.path[0] for row in rows}
        return cls(
            size=len(definitions),
            raw_copies=tuple((slot, s.raw_inputs[0]) for slot, s in sources if s.origin == "raw"),
            info_copies=tuple((slot, s.info_inputs[0]) for slot, s in sources if s.origin == "info"),
            computed=tuple((slot, s.compute) for slot, s in sources if s.compute is not None),
            steps=tuple((outer, key, tuple(leaves)) for outer, key, leaves in steps),
            kept_raw=table.consumes | table.drop,
            observables=tuple(kind for kind in observable_kinds if kind[0][0] in tops) if has_observables else (),
        )


class Mapper:
    """Maps audit records, directory users and membership changes. Build once; the ``map_*`` calls are per record.

    Args:
        rules: compiled mapping tables (default: the shipped ``mappings/``).
        clock_ms: collection clock for ``metadata.logged_time`` and inventory times (inject in tests).
        emit_other: emit audit types outside the four classes as Base Event (class 0) instead of skipping them.
    """

    def __init__(
        self,
        rules: MappingRules | None = None,
        *,
        clock_ms: Callable[[], int] = now_ms,
        emit_other: bool = False,
    ) -> None:
        self.rules = rules or load_rules()
        self._enums: OcsfEnums = load_enums()
        self._clock_ms = clock_ms
        self.emit_other = emit_other
        self._headers: dict[tuple[int, int, str, int, str | None, int], dict[str, Any]] = {}
        # (path, name, type_id, type caption) of each observable the mapper may add
        self._observable_kinds = tuple(
            (path, ".".join(path), type_id, self._enums.object_caption("observable", "type_id", type_id))
            for path, type_id in OBSERVABLE_PATHS
        )
        # Each table prepared once. Audit tables by class_uid: (table, plan, eventInfo Method -> (auth_protocol_id,
        # auth_protocol)).
        self._audit_plans = {
            class_uid: (table, _TablePlan.of(table, self._observable_kinds), self._auth_methods(table))
            for class_uid, table in self.rules.audit_tables.items()
        }
        self._user_plan = _TablePlan.of(self.rules.user_inventory, self._observable_kinds)
        self._membership_plan = _TablePlan.of(self.rules.membership, self._observable_kinds)

    def _auth_methods(self, table: FieldTable) -> dict[str, tuple[int, str]]:
        """A table's ``auth_methods`` with the caption of each id in its class (an id of 99 keeps the Method text)."""
        if not table.auth_methods:
            return {}
        captions = self._enums.class_info(table.class_uid)["auth_protocol_id"]
        return {
            method: (protocol_id, method if protocol_id == 99 else captions[str(protocol_id)])
            for method, protocol_id in table.auth_methods.items()
        }

    # ----------------------------------------------------------------------------------------------- audit
    def map_audit(self, record: object, position: int) -> MappedEvent | None:
        """Map one audit record. Returns None for an audit type outside the four classes when ``emit_other`` is off.

        Raises:
            MappingError: the record is not an object, has no id, no auditType or an unparseable eventTime.
        """
        if not isinstance(record, dict):
            raise MappingError(f"audit record #{position} is not a JSON object", record_id=f"#{position}")
        record_id = record.get("id")
        if not isinstance(record_id, str) or not record_id:
            raise MappingError(f"audit record #{position} has no id", record_id=f"#{position}")
        audit_type = record.get("auditType")
        if not isinstance(audit_type, str) or not audit_type:
            raise MappingError(f"audit record {record_id} has no auditType", record_id=record_id)
        event_time = record.get("eventTime")
        try:
            event_time_ms = parse_mimecast_time_ms(event_time) if isinstance(event_time, str) else None
        except ValueError:
            event_time_ms = None
        if event_time_ms is None:
            raise MappingError(
                f"audit record {record_id} has an unparseable eventTime {event_time!r} "
                "(expected yyyy-MM-ddTHH:mm:ss±hhmm)",
                record_id=record_id,
            )
        category = record.get("category")
        row = self.rules.classify(audit_type, category)
        if row.class_uid == 0 and not self.emit_other:
            return None
        table, plan, methods = self._audit_plans[row.class_uid]
        text = record.get("eventInfo")
        info = parse_event_info(text) if isinstance(text, str) else {}
        record_input = AuditRecord(record_id, self._clock_ms(), record, info, event_time_ms, methods)
        status_id, status = row.outcome(info.get("outcome"))
        event = self._start_event(
            table, row.class_uid, row.activity(info.get("verb")), audit_type, status_id, status, row.severity_id
        )
        self._fill(event, plan, record_input, record, info)
        unmapped = {}
        kept_raw = plan.kept_raw
        for name, value in record.items():
            if name not in kept_raw:
                unmapped[name] = value
        leftover = {}
        consumed = table.info_consumed
        for name, value in info.items():
            if name not in consumed:
                leftover[name] = value
        if record_input.rejected:
            leftover.update(record_input.rejected)
        if leftover:
            unmapped["event_info"] = leftover
        if unmapped:
            event["unmapped"] = unmapped
        return MappedEvent(table.table, row.class_uid, event, record_id)

    # ------------------------------------------------------------------------------------------- directory
    def map_user(self, record: object, position: int, collected_ms: int) -> MappedEvent:
        """Map one directory user (optionally with ``groups: [{id, description}]``) to User Inventory Info.

        Raises:
            MappingError: the record is not an object, has no ``emailAddress``, or has ``groups`` that are not a
                list of ``{id, description}`` objects (named by the user's uid).
        """
        if not isinstance(record, dict):
            raise MappingError(f"directory user #{position} is not a JSON object", record_id=f"#{position}")
        address = record.get("emailAddress")
        if not isinstance(address, str) or not address.strip():
            raise MappingError(f"directory user #{position} has no emailAddress", record_id=f"#{position}")
        table = self.rules.user_inventory
        plan = self._user_plan
        record_input = DirectoryUser(record, address, collected_ms)
        event = self._start_event(
            table, table.class_uid, table.header["activity_id"], "", table.header["status_id"], None,
            table.header["severity_id"],
        )  # fmt: skip
        self._fill(event, plan, record_input, record)
        kept_raw = plan.kept_raw
        unmapped = {k: v for k, v in record.items() if k not in kept_raw}
        if unmapped:
            event["unmapped"] = unmapped
        return MappedEvent(table.table, table.class_uid, event, record_input.uid)

    def map_membership_change(self, change: MembershipChange, collected_ms: int, *, baseline_ms: int) -> MappedEvent:
        """Map a membership change seen between two inventory snapshots to Group Management Add/Remove User.

        Args:
            change: One difference between the snapshots.
            collected_ms: When the newer snapshot was pulled: the event's time.
            baseline_ms: When the older snapshot (the one in the checkpoint) was pulled. The uid is derived from
                it, not from ``collected_ms``: after a crash between storing these events and committing the new
                snapshot, the next pull diffs against the same baseline and re-delivers the same changes with the
                same uids, so the SIEM can drop them.
        """
        table = self.rules.membership
        plan = self._membership_plan
        record_input = Membership(change, collected_ms, baseline_ms)
        activity_id = 3 if change.added else 4
        event = self._start_event(
            table, table.class_uid, activity_id, "", table.header["status_id"], None, table.header["severity_id"]
        )
        self._fill(event, plan, record_input, _NO_FIELDS)
        return MappedEvent(table.table, table.class_uid, event, record_input.key)

    def map_membership_changes(
        self, changes: Iterable[MembershipChange], collected_ms: int, *, baseline_ms: int
    ) -> list[MappedEvent]:
        """Map a whole diff (see ``snapshot.diff_memberships`` and ``map_membership_change``)."""
        return [self.map_membership_change(change, collected_ms, baseline_ms=baseline_ms) for change in changes]

    # --------------------------------------------------------------------------------------------- shared
    def _start_event(
        self,
        table: FieldTable,
        class_uid: int,
        activity_id: int,
        source_word: str,
        status_id: int,
        status: str | None,
        severity_id: int,
    ) -> dict[str, Any]:
        key = (class_uid, activity_id, source_word if activity_id == 99 else "", status_id, status, severity_id)
        header = self._headers.get(key)
        if header is None:
            header = self._header(*key)
            if len(self._headers) < _HEADER_CACHE_LIMIT:
                self._headers[key] = header
        event = dict(header)
        event["metadata"] = {
            "version": OCSF_VERSION,
            "product": {**self.rules.product, "feature": {"name": table.feature}},
        }
        return event

    def _header(
        self, class_uid: int, activity_id: int, word: str, status_id: int, status: str | None, severity_id: int
    ) -> dict[str, Any]:
        info = self._enums.class_info(class_uid)
        return {
            **self._enums.class_header(class_uid, activity_id, word),
            "status_id": status_id,
            "status": status or info["status_id"][str(status_id)],
            "severity_id": severity_id,
            "severity": info["severity_id"][str(severity_id)],
        }

    def _fill(
        self,
        event: dict[str, Any],
        plan: _TablePlan,
        record_input: RecordInput,
        raw: Mapping[str, Any],
        info: Mapping[str, Any] = _NO_FIELDS,
    ) -> None:
        """Compute the source values the rows read (from the record's input, its raw fields and its parsed
        eventInfo), set each at its row's path (rows without a value are skipped), then add the observables of
        what was set. One call per event: the values are computed here rather than in a call of their own."""
        values: list[Any] = [None] * plan.size
        if plan.raw_copies:
            for slot, field in plan.raw_copies:
                values[slot] = raw.get(field)
        if plan.info_copies:
            for slot, field in plan.info_copies:
                values[slot] = info.get(field)
        for slot, compute in plan.computed:
            values[slot] = compute(record_input)
        for outer, key, leaves in plan.steps:
            if key is None:  # a run of top-level rows
                for attribute, slot in leaves:
                    value = values[slot]
                    if value is not None:
                        event[attribute] = value
                continue
            child: dict[str, Any] = {}
            for attribute, slot in leaves:
                value = values[slot]
                if value is not None:
                    child[attribute] = value
            if not child:  # no value: no parent object either (nor the objects around it)
                continue
            node = event
            for name in outer:
                node = node.setdefault(name, {})
            existing = node.get(key)
            if existing is None:
                node[key] = child
            else:
                existing.update(child)
        if plan.observables:
            observables = self._observables(event, plan)
            if observables:
                event["observables"] = observables

    @staticmethod
    def _observables(event: dict[str, Any], plan: _TablePlan) -> list[dict[str, Any]]:
        found = []
        for path, name, type_id, caption in plan.observables:
            value: Any = event
            for key in path:  # events are built from plain dicts only
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                found.append({"name": name, "type_id": type_id, "type": caption, "value": str(value)})
        return found
