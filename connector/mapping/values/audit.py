"""The values of an audit record: its raw fields, the fields parsed from its ``eventInfo`` and what derives from them.

The tables of the audit kind (``common.yaml``'s audit rows and the four class tables) name these in ``from:``.
Users, groups and the source IP come from the parsed text first (``event_info.parse_event_info``), the record's
``user`` field second; OCSF requires a user or a group, so a record naming none gets ``UNKNOWN_IDENTITY``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from connector.mapping.event_info import KNOWN_KEYS
from connector.mapping.values.common import UNKNOWN_IDENTITY, RecordInput, build_user, common_sources, valid_ip
from connector.mapping.values.source import Source, SourceKind, info_field, raw_field

__all__ = ["AUDIT", "AuditRecord"]


class AuditRecord(RecordInput):
    """One audit record as its values see it (``key`` is the audit id).

    Attributes:
        record: The raw record.
        info: Its parsed ``eventInfo`` (empty when it has none).
        event_time_ms: Its ``eventTime`` in epoch ms (the mapper refuses a record without one).
        auth_methods: The table's eventInfo ``Method`` -> (auth_protocol_id, caption).
        rejected: Parsed fields a value refused as invalid (they go to ``unmapped.event_info``), or None.
    """

    __slots__ = ("auth_methods", "event_time_ms", "info", "record", "rejected")
    uid_kind: ClassVar[str] = "audit"

    def __init__(
        self,
        record_id: str,
        collected_ms: int,
        record: Mapping[str, Any],
        info: Mapping[str, Any],
        event_time_ms: int,
        auth_methods: Mapping[str, tuple[int, str]],
    ) -> None:
        self.key = record_id
        self.collected_ms = collected_ms
        self.record = record
        self.info = info
        self.event_time_ms = event_time_ms
        self.auth_methods = auth_methods
        self.rejected: dict[str, Any] | None = None


AUDIT: Final = SourceKind[AuditRecord](
    "audit",
    (
        *common_sources("the audit id", raw_inputs=("id",)),
        raw_field("id", "raw `id`"),
        raw_field("auditType", "raw `auditType`"),
        raw_field("category", "raw `category`"),
        raw_field("eventTime", "raw `eventTime`"),
        Source(  # parsed by the mapper, which refuses a record without one; attrgetter spares a Python call
            "event_time_ms",
            "`eventTime` parsed (±hhmm offset) to UTC epoch ms",
            raw_inputs=("eventTime",),
            compute=operator.attrgetter("event_time_ms"),
        ),
        *(info_field(key, f"eventInfo `{raw}`") for raw, key in KNOWN_KEYS.items() if key != "ip"),
        info_field(
            "timezone_offset",
            "minutes from UTC of the eventInfo local `Time` zone (BST=60, +0100=60)",
            also=("time", "date"),
        ),
    ),
)


@AUDIT.derived("eventInfo", "raw `eventInfo` (full text)", raw_inputs=("eventInfo",))
def event_info_text(record: AuditRecord) -> object:
    """The whole text; an empty one is no value."""
    return record.record.get("eventInfo") or None


@AUDIT.derived(
    "info.ip",
    "eventInfo `IP` / `Remote IP is`, else the first labelled address (`remote IP : x`, `IP Address = x`, "
    "`Source IP`, `Client IP`, `from IP x`...; docs/mimecast-eventinfo.md); only when a valid IPv4/IPv6 address",
    info_inputs=("ip",),
)
def source_ip(record: AuditRecord) -> str | None:
    """The parsed address when it is one; anything else is kept in ``unmapped.event_info`` (``Remote IP is null``)."""
    info = record.info
    if "ip" not in info:
        return None
    ip = valid_ip(info["ip"])
    if ip is None:
        record.rejected = {"ip": info["ip"]}
    return ip


@AUDIT.derived(
    "subject_user",
    "user object of the subject: eventInfo subject (`for <address> <Name>`, `for user: <address>`, the address in "
    "the action), else raw `user`; uid = lower-cased address, email_addr only if valid, domain after @",
    raw_inputs=("user",),
    info_inputs=("subject", "subject_name", "target"),
)
def subject_user(record: AuditRecord) -> dict[str, Any]:
    info = record.info
    subject = info.get("subject") or info.get("target") or record.record.get("user")
    return build_user(subject, info.get("subject_name")) or {"name": UNKNOWN_IDENTITY}


@AUDIT.derived(
    "actor_user",
    "user object of who acted: eventInfo `by <address><Name>`, else raw `user`",
    raw_inputs=("user",),
    info_inputs=("actor", "actor_name"),
)
def actor_user(record: AuditRecord) -> dict[str, Any] | None:
    actor = record.info.get("actor")
    if actor:
        return build_user(actor, record.info.get("actor_name"))
    return build_user(record.record.get("user"))


@AUDIT.derived(
    "member_user",
    "user object of the member added/removed: eventInfo `<Verb> <address> to/from <group>`, else the first address "
    "in the action",
    info_inputs=("member", "target"),
)
def member_user(record: AuditRecord) -> dict[str, Any] | None:
    return build_user(record.info.get("member") or record.info.get("target"))


@AUDIT.derived(
    "group",
    f'group object: the group eventInfo names (`Created <group>`, `to/from <group>`), else name "{UNKNOWN_IDENTITY}"',
    info_inputs=("group",),
)
def group(record: AuditRecord) -> dict[str, str]:
    name = record.info.get("group")
    return {"name": name} if isinstance(name, str) and name else {"name": UNKNOWN_IDENTITY}


@AUDIT.derived("service_name", 'eventInfo `Application`, else "Mimecast"', info_inputs=("application",))
def service_name(record: AuditRecord) -> str:
    application = record.info.get("application")
    return application if isinstance(application, str) and application else "Mimecast"


def _auth_protocol(record: AuditRecord) -> tuple[int, str] | None:
    """(auth_protocol_id, auth_protocol) of the eventInfo ``Method``; None without one."""
    method = record.info.get("method")
    if isinstance(method, str) and method:
        return record.auth_methods.get(method) or (99, method)
    return None


@AUDIT.derived(
    "auth_protocol_id",
    "eventInfo `Method` looked up in auth_methods; 99 when unlisted, absent when the text has no Method",
    info_inputs=("method",),
)
def auth_protocol_id(record: AuditRecord) -> int | None:
    protocol = _auth_protocol(record)
    return protocol[0] if protocol else None


@AUDIT.derived(
    "auth_protocol",
    "caption of auth_protocol_id, or the raw Method text when the id is 99",
    info_inputs=("method",),
)
def auth_protocol(record: AuditRecord) -> str | None:
    protocol = _auth_protocol(record)
    return protocol[1] if protocol else None


@AUDIT.derived("is_mfa", "true when eventInfo has a `2FA` field", info_inputs=("two_factor",))
def is_mfa(record: AuditRecord) -> bool | None:
    return True if record.info.get("two_factor") else None
