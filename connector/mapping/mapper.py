"""Turn raw Mimecast records into OCSF 1.8.0 events by executing the compiled field tables.

Per record the work is: parse ``eventInfo`` (one regex match plus one key scan), compute the source values, copy a
cached classification header, set each row's value at its OCSF path, and collect what is left into
``unmapped``. Everything table-shaped (classification, captions, paths) was compiled by ``rules.load_rules``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from connector.errors import MappingError
from connector.events import MappedEvent
from connector.mapping.event_info import parse_event_info
from connector.mapping.rules import FieldTable, MappingRules, load_rules
from connector.mapping.snapshot import MembershipChange
from connector.mapping.values import UNKNOWN_IDENTITY, build_user, new_user, record_uid, valid_ip
from connector.ocsf.catalog import OCSF_VERSION, OcsfEnums, load_enums
from connector.timefmt import parse_mimecast_time_ms

__all__ = ["MappedEvent", "Mapper", "now_ms"]

# Observables the mapper adds when the attribute is present: (path, observable type_id).
_OBSERVABLES: Final[tuple[tuple[tuple[str, ...], int], ...]] = (
    (("user", "email_addr"), 5),
    (("actor", "user", "email_addr"), 5),
    (("src_endpoint", "ip"), 2),
    (("group", "name"), 32),
    (("group", "uid"), 33),
)
_HEADER_CACHE_LIMIT: Final = 4096
# info.<key> sources whose value the mapper checks and puts in the source values (the others are read from the
# parsed eventInfo as they are).
_CHECKED_INFO: Final = frozenset({"info.ip"})


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds (the default clock)."""
    return time.time_ns() // 1_000_000


def _user_groups(raw: object, uid: str) -> list[dict[str, str]]:
    """The ``groups`` of a directory user as OCSF groups; absent or null is none.

    Anything else than a list of objects with a non-empty string ``id`` (and a string or absent ``description``)
    refuses the user: a half-understood membership list would publish an inventory that looks complete.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MappingError(f"directory user {uid} has groups that are not a list", record_id=uid)
    groups = []
    for index, group in enumerate(raw):
        group_id = group.get("id") if isinstance(group, dict) else None
        description = group.get("description") if isinstance(group, dict) else None
        if not isinstance(group_id, str) or not group_id or not isinstance(description, str | None):
            raise MappingError(
                f"directory user {uid} has groups[{index}] that is not an object with a string id and description",
                record_id=uid,
            )
        groups.append({"uid": group_id, "name": description or group_id})
    return groups


@dataclass(frozen=True, slots=True)
class _TablePlan:
    """A field table prepared for the per-record loop.

    ``steps`` group the rows by the object their value lands in, keeping the table's order (so the event's
    attributes come out in the order the analysts wrote them): each step is ``(outer keys, parent key,
    ((attribute, source), ...))``, with ``None`` as parent key for a run of rows at the event's top level, and all
    the rows of one parent object (``metadata.*``) in the step of its first row, so each object is built in one go.
    ``info_sources`` are the ``info.<key>`` sources read as they are from the parsed eventInfo (``info.ip`` is
    checked by the mapper first). The observables row, wherever it is in the table, is filled last, from
    everything the other rows set. ``kept_raw`` names the raw fields that do not go to ``unmapped`` (consumed or
    dropped); ``sources`` the source values the rows read (the mapper skips computing the others); ``observables``
    the observable kinds (see ``Mapper._observable_kinds``) whose path starts at an attribute some row sets (the
    others cannot be in the event).
    """

    steps: tuple[tuple[tuple[str, ...], str | None, tuple[tuple[str, str], ...]], ...]
    info_sources: tuple[tuple[str, str], ...]
    kept_raw: frozenset[str]
    sources: frozenset[str]
    observables: tuple[tuple[tuple[str, ...], str, int, str], ...]

    @classmethod
    def of(cls, table: FieldTable, observable_kinds: tuple[tuple[tuple[str, ...], str, int, str], ...]) -> _TablePlan:
        rows = [row for row in table.rows if row.source != "observables"]
        steps: list[tuple[tuple[str, ...], str | None, list[tuple[str, str]]]] = []
        parents: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for row in rows:
            leaf = (row.path[-1], row.source)
            if len(row.path) == 1:
                if not steps or steps[-1][1] is not None:
                    steps.append(((), None, []))
                steps[-1][2].append(leaf)
            elif row.path[:-1] in parents:
                parents[row.path[:-1]].append(leaf)
            else:
                parents[row.path[:-1]] = [leaf]
                steps.append((row.path[:-2], row.path[-2], parents[row.path[:-1]]))
        has_observables = any(row.source == "observables" for row in table.rows)
        tops = {row.path[0] for row in rows}
        return cls(
            steps=tuple((outer, key, tuple(leaves)) for outer, key, leaves in steps),
            info_sources=tuple(
                (row.source, row.source.removeprefix("info."))
                for row in rows
                if row.source.startswith("info.") and row.source not in _CHECKED_INFO
            ),
            kept_raw=table.consumes | table.drop,
            sources=frozenset(row.source for row in table.rows),
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
        self._protocol_captions = self._enums.class_info(3002)["auth_protocol_id"]
        self._account_type = {"type_id": 18, "type": self._enums.object_caption("account", "type_id", 18)}
        # (path, name, type_id, type caption) of each observable the mapper may add
        self._observable_kinds = tuple(
            (path, ".".join(path), type_id, self._enums.object_caption("observable", "type_id", type_id))
            for path, type_id in _OBSERVABLES
        )
        tables = (*self.rules.audit_tables.values(), self.rules.user_inventory, self.rules.membership)
        # Prepared once per table; keyed by identity because two tables share the name "group_management".
        self._plans: dict[int, _TablePlan] = {id(t): _TablePlan.of(t, self._observable_kinds) for t in tables}
        # class_uid -> (table, plan, eventInfo Method -> (auth_protocol_id, auth_protocol)) of the audit tables
        self._audit_plans = {
            class_uid: (table, self._plans[id(table)], self._auth_methods(table))
            for class_uid, table in self.rules.audit_tables.items()
        }

    def _auth_methods(self, table: FieldTable) -> dict[str, tuple[int, str]]:
        """A table's ``auth_methods`` with the caption of each id (an id of 99 keeps the Method text)."""
        return {
            method: (protocol_id, method if protocol_id == 99 else self._protocol_captions[str(protocol_id)])
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
        values: dict[str, Any] = {
            "id": record_id,
            "auditType": audit_type,
            "category": category,
            "eventTime": event_time,
            "eventInfo": text or None,
            "record_uid": record_uid("audit", record_id),
            "collected_ms": self._clock_ms(),
            "event_time_ms": event_time_ms,
        }
        rejected = self._audit_values(values, record.get("user"), info, plan, methods)
        status_id, status = row.outcome(info.get("outcome"))
        event = self._start_event(
            table, row.class_uid, row.activity(info.get("verb")), audit_type, status_id, status, row.severity_id
        )
        self._fill(event, plan, values)
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
        if rejected:
            leftover.update(rejected)
        if leftover:
            unmapped["event_info"] = leftover
        if unmapped:
            event["unmapped"] = unmapped
        return MappedEvent(table.table, row.class_uid, event, record_id)

    def _audit_values(
        self,
        values: dict[str, Any],
        raw_user: object,
        info: Mapping[str, Any],
        plan: _TablePlan,
        methods: Mapping[str, tuple[int, str]],
    ) -> dict[str, Any] | None:
        """Add the eventInfo-derived source values of an audit record to ``values``; return the parsed fields
        rejected as invalid (they go to ``unmapped.event_info``), or None.

        User and group objects are built only when one of the table's rows reads them (``plan.sources``).
        """
        rejected = None
        needed = plan.sources
        for source, key in plan.info_sources:
            values[source] = info.get(key)
        if "ip" in info:
            ip = values["info.ip"] = valid_ip(info["ip"])
            if ip is None:
                rejected = {"ip": info["ip"]}
        if "subject_user" in needed:
            subject = info.get("subject") or info.get("target") or raw_user
            values["subject_user"] = build_user(subject, info.get("subject_name")) or {"name": UNKNOWN_IDENTITY}
        if "actor_user" in needed:
            actor = info.get("actor")
            values["actor_user"] = build_user(actor, info.get("actor_name")) if actor else build_user(raw_user)
        if "member_user" in needed:
            values["member_user"] = build_user(info.get("member") or info.get("target"))
        if "group" in needed:
            group = info.get("group")
            values["group"] = {"name": group} if isinstance(group, str) and group else {"name": UNKNOWN_IDENTITY}
        application = info.get("application")
        values["service_name"] = application if isinstance(application, str) and application else "Mimecast"
        method = info.get("method")
        if isinstance(method, str) and method:
            values["auth_protocol_id"], values["auth_protocol"] = methods.get(method) or (99, method)
        if info.get("two_factor"):
            values["is_mfa"] = True
        return rejected

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
        user = new_user(address, record.get("name"))  # each address once per pull: nothing to memoise
        assert user is not None
        domain = record.get("domain")
        if isinstance(domain, str) and domain:
            user["domain"] = domain.lower()
        user["account"] = {**self._account_type, "name": address, "uid": user["uid"]}
        groups = _user_groups(record.get("groups"), user["uid"])
        if groups:
            user["groups"] = groups
        values = {
            "record_uid": record_uid("user", f"{user['uid']}:{collected_ms}"),
            "collected_ms": collected_ms,
            "inventory_user": user,
        }
        event = self._start_event(
            table, table.class_uid, table.header["activity_id"], "", table.header["status_id"], None,
            table.header["severity_id"],
        )  # fmt: skip
        plan = self._plan(table)
        self._fill(event, plan, values)
        unmapped = {k: v for k, v in record.items() if k not in plan.kept_raw}
        if unmapped:
            event["unmapped"] = unmapped
        return MappedEvent(table.table, table.class_uid, event, user["uid"])

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
        activity_id = 3 if change.added else 4
        verb = "added to" if change.added else "removed from"
        key = f"{change.group_id}:{change.member}:{'add' if change.added else 'remove'}:{baseline_ms}"
        values = {
            "record_uid": record_uid("membership", key),
            "collected_ms": collected_ms,
            "group": {"uid": change.group_id, "name": change.group_name or change.group_id},
            "member_user": build_user(change.member),
            "message": f"{change.member} was {verb} group {change.group_name or change.group_id} "
            "(seen between two directory pulls)",
        }
        event = self._start_event(
            table, table.class_uid, activity_id, "", table.header["status_id"], None, table.header["severity_id"]
        )
        self._fill(event, self._plan(table), values)
        return MappedEvent(table.table, table.class_uid, event, key)

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
        activity_name = word if activity_id == 99 and word else info["activity_id"][str(activity_id)]
        return {
            "class_uid": class_uid,
            "class_name": info["caption"],
            "category_uid": info["category_uid"],
            "category_name": info["category_name"],
            "activity_id": activity_id,
            "activity_name": activity_name,
            "type_uid": class_uid * 100 + activity_id,
            "type_name": f"{info['caption']}: {activity_name}",
            "status_id": status_id,
            "status": status or info["status_id"][str(status_id)],
            "severity_id": severity_id,
            "severity": info["severity_id"][str(severity_id)],
        }

    def _plan(self, table: FieldTable) -> _TablePlan:
        """The plan prepared in ``__init__`` for one of ``self.rules``' tables."""
        return self._plans[id(table)]

    def _fill(self, event: dict[str, Any], plan: _TablePlan, values: Mapping[str, Any]) -> None:
        """Set each row's value from ``values`` at its path; rows without a value are skipped. Then add the
        observables of what was set."""
        get = values.get
        for outer, key, leaves in plan.steps:
            if key is None:  # a run of top-level rows
                for attribute, source in leaves:
                    value = get(source)
                    if value is not None:
                        event[attribute] = value
                continue
            child: dict[str, Any] = {}
            for attribute, source in leaves:
                value = get(source)
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
