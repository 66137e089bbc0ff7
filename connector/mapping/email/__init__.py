"""Mapping of Mimecast's email-security records (SIEM logs, TTP URL / Attachment / Impersonation, DLP) to OCSF.

The interface the streams and ``map --source`` use is ``map_email(source, record, key, collected_ms)``. This first
version is a skeleton: it builds only the attributes each class requires, so the streams can be collected end to
end while the reviewed tables (``mappings/``) are written; those replace its internals, not its signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from connector.errors import MappingError
from connector.events import MappedEvent
from connector.mapping.values.common import record_uid
from connector.ocsf.catalog import OCSF_VERSION, load_enums
from connector.timefmt import parse_mimecast_time_ms

__all__ = ["EMAIL_SOURCES", "map_email"]

EMAIL_SOURCES: Final = ("siem", "ttp_url", "ttp_attachment", "ttp_impersonation", "dlp")
"""The record kinds this module maps; each is the event type of the stream that collects it."""

_PRODUCT: Final = {"name": "Email Security Cloud Gateway", "vendor_name": "Mimecast"}
# SIEM type -> (table, class_uid, activity_id)
_SIEM_TYPES: Final[Mapping[str, tuple[str, int, int]]] = {
    "receipt": ("email_activity", 4009, 2),
    "process": ("email_activity", 4009, 3),
    "spam": ("email_activity", 4009, 3),
    "delivery": ("email_activity", 4009, 5),
    "journal": ("email_activity", 4009, 99),
    "av": ("email_file_activity", 4011, 3),
    "attachment protect": ("email_file_activity", 4011, 3),
    "url protect": ("email_url_activity", 4012, 3),
    "impersonation protect": ("detection_finding", 2004, 1),
    "internal email protect": ("detection_finding", 2004, 1),
}
_SOURCE_CLASS: Final[Mapping[str, tuple[str, int, int]]] = {
    "ttp_url": ("email_url_activity", 4012, 3),
    "ttp_attachment": ("email_file_activity", 4011, 3),
    "ttp_impersonation": ("detection_finding", 2004, 1),
    "dlp": ("data_security_finding", 2006, 1),
}


def _time_ms(source: str, record: Mapping[str, Any], key: str) -> int:
    raw = record.get("timestamp") if source == "siem" else record.get("date", record.get("eventTime"))
    try:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            return int(raw) if raw.isdigit() else parse_mimecast_time_ms(raw)
    except ValueError:
        pass
    raise MappingError(f"{source} record {key} has no readable time {raw!r}", record_id=key)


def map_email(source: str, record: object, key: str, collected_ms: int) -> MappedEvent:
    """One email-security record as an OCSF event of its class (not yet validated).

    Args:
        source: One of ``EMAIL_SOURCES``.
        record: The raw record (transport fields included).
        key: Its dedup key (id or content key): ``metadata.uid`` is derived from it.
        collected_ms: When it was collected (``metadata.logged_time``).

    Raises:
        MappingError: the record cannot be mapped (named by ``key``).
    """
    if not isinstance(record, dict):
        raise MappingError(f"{source} record {key} is not a JSON object", record_id=key)
    if source == "siem":
        kind = record.get("type", record.get("eventType"))
        target = _SIEM_TYPES.get(kind) if isinstance(kind, str) else None
    else:
        target = _SOURCE_CLASS.get(source)
    if target is None:
        raise MappingError(f"{source} record {key} has an unknown type", record_id=key)
    table, class_uid, activity_id = target
    info = load_enums().class_info(class_uid)
    event: dict[str, Any] = {
        "class_uid": class_uid,
        "class_name": info["caption"],
        "category_uid": info["category_uid"],
        "category_name": info["category_name"],
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": 1,
        "time": _time_ms(source, record, key),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": record_uid(source, key),
            "product": _PRODUCT,
            "profiles": ["security_control"],
            "logged_time": collected_ms,
        },
    }
    if activity_id == 99:
        event["activity_name"] = str(kind).title()
    message_uid = str(record.get("aggregateId") or record.get("messageId") or key)
    if class_uid == 4009:
        event["direction_id"] = 0
        email: dict[str, Any] = {"uid": message_uid}
        sender = record.get("senderHeader") or record.get("senderEnvelope")
        if isinstance(sender, str) and "@" in sender and "<" not in sender:
            email["from"] = sender
        recipients = record.get("recipients")
        if isinstance(recipients, str) and recipients:
            email["to"] = [part.strip() for part in recipients.replace(";", ",").split(",") if part.strip()]
        event["email"] = email
    elif class_uid == 4011:
        event["email_uid"] = message_uid
        event["file"] = {"name": str(record.get("fileName") or "unknown"), "type_id": 1}
    elif class_uid == 4012:
        event["email_uid"] = message_uid
        event["url"] = {"url_string": str(record.get("url") or "")}
    else:
        event["finding_info"] = {"uid": str(record.get("id") or key), "title": source}
    event["unmapped"] = record
    return MappedEvent(table, class_uid, event, key)
