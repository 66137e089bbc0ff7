"""The values of an email-security record: SIEM logs (all ten types, either field-name style), TTP URL /
Attachment / Impersonation Protect logs and DLP logs (kind ``EMAIL``).

The five email field tables (``mappings/email_common.yaml`` and one file per class) name these in ``from:``. One
kind serves every source because the sources share their vocabulary (``messageId``, ``subject``, the sender and
the recipients under a few spellings); each value's description names every raw field it reads.

Every value is defensive: a raw value that would fail an OCSF format (``"<>"`` as a sender, ``"Internal IP"``,
``"31363"`` where OCSF wants an integer and the text is not one, a digest of the wrong length) is not emitted; it is
*kept* (``EmailRecord.keep``) so that it lands in ``unmapped`` under its Mimecast name. Only a class's required
attribute without any usable source (a URL activity without a URL) refuses the record (``MappingError``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any, Final

from connector.errors import MappingError
from connector.mapping.values import email_parse as parse
from connector.mapping.values.common import COLLECTED_MS, RecordInput, record_uid
from connector.mapping.values.source import Source, SourceKind
from connector.ocsf.catalog import load_enums

__all__ = ["EMAIL", "IMPERSONATION_FLAGS", "EmailRecord"]

# The SIEM impersonation-protect identifiers, sent as booleans-as-strings; the true ones are the finding's types.
IMPERSONATION_FLAGS: Final = (
    "internalUserName", "newDomain", "replyMismatch", "similarInternalDomain", "similarMimecastExternalDomain",
    "similarCustomExternalDomain", "customNameMatch", "customThreatDictionary", "mimecastThreatDictionary",
)  # fmt: skip
_SENDERS: Final = ("senderHeader", "senderEnvelope", "senderAddress")
_RECIPIENTS: Final = ("recipients", "recipient", "recipientAddress")
_SENDER_IPS: Final = ("senderIp", "sourceIp", "senderIpAddress")
_HASHES: Final = (("md5", "md5", 1), ("sha1", "sha1", 2), ("sha256", "sha256", 3), ("fileHash", "sha256", 3))
_DIRECTIONS: Final = {"inbound": 1, "outbound": 2, "internal": 3}
_ENUMS = load_enums()
_ALGORITHMS: Final = {i: _ENUMS.object_caption("fingerprint", "algorithm_id", i) for i in (1, 2, 3)}
_DIRECTION_CAPTIONS: Final = {i: _ENUMS.caption(4009, "direction_id", i) for i in (0, 1, 2, 3)}
_REGULAR_FILE: Final = _ENUMS.object_caption("file", "type_id", 1)
_RULE: Final = {"type_id": 1, "type": _ENUMS.object_caption("analytic", "type_id", 1)}
_DLP_SYSTEM: Final = {
    "detection_system_id": 6,
    "detection_system": _ENUMS.object_caption("data_security", "detection_system_id", 6),
    "data_lifecycle_state_id": 2,
    "data_lifecycle_state": _ENUMS.object_caption("data_security", "data_lifecycle_state_id", 2),
}
_FEATURE_TITLES: Final = {
    "impersonation protect": "Impersonation Protect",
    "internal email protect": "Internal Email Protect",
    "ttp_impersonation": "Impersonation Protect",
}


class EmailRecord(RecordInput):
    """One email-security record as its values see it.

    Attributes:
        source: The record kind (``siem``, ``ttp_url``...): the first part of the uid.
        key: Its dedup key (content key, or the impersonation ``id``).
        record: The raw record.
        log_name: The SIEM type (``receipt``...), or the source for the other kinds.
        time_ms: Its time in epoch ms (the mapper refuses a record without one).
        kept: Raw fields (or what is left of them) a value could not use, by Mimecast name, for ``unmapped``.
    """

    __slots__ = ("kept", "log_name", "record", "source", "time_ms")

    def __init__(
        self, source: str, key: str, collected_ms: int, record: Mapping[str, Any], log_name: str, time_ms: int
    ) -> None:
        self.source = source
        self.key = key
        self.collected_ms = collected_ms
        self.record = record
        self.log_name = log_name
        self.time_ms = time_ms
        self.kept: dict[str, Any] | None = None

    def keep(self, name: str, value: object) -> None:
        """Send ``value`` to ``unmapped`` as ``name`` (a raw field a value refused, or its unused part)."""
        if self.kept is None:
            self.kept = {}
        self.kept[name] = value

    def text(self, name: str) -> str | None:
        """The raw field as text: a non-blank string as sent, a number as its digits; None when absent. Any
        other type (an object, a list, a boolean) is kept for ``unmapped``."""
        value = self.record.get(name)
        if isinstance(value, str):
            return value if value.strip() else None
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.keep(name, value)
        return None

    def first_text(self, names: tuple[str, ...]) -> str | None:
        """The first of ``names`` with a text; the later ones that also have one are kept for ``unmapped``."""
        found = None
        for name in names:
            text = self.text(name)
            if text is None:
                continue
            if found is None:
                found = text
            else:
                self.keep(name, self.record[name])
        return found


def _record_uid(record: EmailRecord) -> str:
    return record_uid(record.source, record.key)


EMAIL: Final = SourceKind[EmailRecord](
    "email record",
    (
        Source("record_uid", "UUIDv5 of the source kind and the record's dedup key", compute=_record_uid),
        COLLECTED_MS,
        Source(
            "observables",
            "IP addresses, email addresses, hashes, URLs and host names present in the event (by attribute path); "
            "in classes without an email object, also the valid addresses and IPs of the raw sender, recipient "
            "and clicker fields (without a name: they live in `unmapped`)",
            origin="event",
        ),
        Source(
            "event_time_ms",
            "`timestamp` (SIEM, epoch ms, also as a string), else `date` / `eventTime` (TTP, DLP: "
            "yyyy-MM-ddTHH:mm:ss±hhmm) in epoch ms",
            raw_inputs=("timestamp", "date", "eventTime"),
            compute=operator.attrgetter("time_ms"),
        ),
        Source(
            "log_name",
            "the SIEM `type` / `eventType` as the classification matched it; the source name for TTP and DLP",
            raw_inputs=("type", "eventType"),
            compute=operator.attrgetter("log_name"),
        ),
    ),
)


def _text_source(name: str, description: str) -> None:
    EMAIL.add(Source(name, description, raw_inputs=(name,), compute=lambda record: record.text(name)))


for _name, _description in (
    ("accountId", "raw `accountId` (the Mimecast account code)"),
    ("aggregateId", "raw `aggregateId`: groups the receipt / process / delivery rows of one message"),
    ("subject", "raw `subject`"),
    ("rejectionCode", "raw `rejectionCode` (SMTP code), as text"),
    ("Hostname", "raw `Hostname` (delivery: the host the message was delivered to)"),
    ("fileExtension", "raw `fileExtension`"),
    ("id", "raw `id` (TTP impersonation `MTOKEN:...`)"),
):
    _text_source(_name, _description)


@EMAIL.derived("subtype", "raw `subtype` / `subType` (the SIEM type's own code: Acc, Rej, Hld, ...)",
               raw_inputs=("subtype", "subType"))  # fmt: skip
def subtype(record: EmailRecord) -> str | None:
    return record.first_text(("subtype", "subType"))


@EMAIL.derived("original_time", "raw `date` / `eventTime` (TTP, DLP) as sent", raw_inputs=("date", "eventTime"))
def original_time(record: EmailRecord) -> str | None:
    value = record.record.get("date") or record.record.get("eventTime")
    return value if isinstance(value, str) else None


# ------------------------------------------------------------------------------------------------ the email
@EMAIL.derived("message_uid", "raw `messageId` exactly as sent (angle brackets kept, or missing)",
               raw_inputs=("messageId",))  # fmt: skip
def message_uid(record: EmailRecord) -> str | None:
    return record.text("messageId")


def _address(record: EmailRecord, name: str) -> str | None:
    """A raw address field when OCSF accepts it; any other non-empty value is kept for ``unmapped``."""
    value = record.record.get(name)
    if value is None or value == "":
        return None
    address = parse.email_address(value.strip() if isinstance(value, str) else value)
    if address is None:
        record.keep(name, value)
    return address


@EMAIL.derived(
    "sender",
    "`senderHeader` (the From: header) when it is a valid address, else `senderEnvelope` (MAIL FROM), else "
    "`senderAddress` (TTP, DLP); `<>` and other invalid values are kept in `unmapped`",
    raw_inputs=_SENDERS,
)
def sender(record: EmailRecord) -> str | None:
    found = None
    for name in _SENDERS:
        address = _address(record, name)
        if found is None:
            found = address
    return found


@EMAIL.derived("return_path", "`senderEnvelope` (MAIL FROM) when it is a valid address", raw_inputs=("senderEnvelope",))
def return_path(record: EmailRecord) -> str | None:
    return _address(record, "senderEnvelope")


def _recipients(record: EmailRecord) -> list[str] | None:
    found: list[str] = []
    for name in _RECIPIENTS:
        value = record.record.get(name)
        if value is None:
            continue
        addresses, complete = parse.split_addresses(value)
        found.extend(a for a in addresses if a not in found)
        if not complete:
            record.keep(name, value)
    if found:
        return found[: parse.MAX_RECIPIENTS]
    # OCSF's email object needs a from or a to; with no valid address at all (a "<>" bounce with no recipient
    # field) an empty list says "no recipient known" and keeps the event, the raw values being in unmapped.
    return None if sender(record) is not None else []


@EMAIL.derived(
    "recipients",
    f"`recipients` / `recipient` / `recipientAddress` split on `,` and `;` into valid addresses (at most "
    f"{parse.MAX_RECIPIENTS}); with an invalid part or more than that, the raw value is kept in `unmapped` too; "
    "an empty list when neither they nor the sender give a valid address (OCSF needs email.from or email.to)",
    raw_inputs=_RECIPIENTS,
)
def recipients(record: EmailRecord) -> list[str] | None:
    return _recipients(record)


@EMAIL.derived("email_size", "`emailSize` as an integer (Mimecast sends a string)", raw_inputs=("emailSize",))
def email_size(record: EmailRecord) -> int | None:
    return _count(record, "emailSize")


def _count(record: EmailRecord, name: str) -> int | None:
    value = record.record.get(name)
    if value is None or value == "":
        return None
    number = parse.count(value)
    if number is None:
        record.keep(name, value)
    return number


def _attachments(record: EmailRecord) -> list[dict[str, Any]] | None:
    value = record.record.get("attachments")
    names, complete = parse.attachment_names(value)
    if not complete:
        record.keep("attachments", value)
    return [{"name": name, "type_id": 1, "type": _REGULAR_FILE} for name in names] or None


@EMAIL.derived(
    "attachments",
    f'`attachments` (one string of quoted, comma-separated names: `"a.pdf", "b.jpg"`, or one unquoted name) as '
    f"files (at most {parse.MAX_ATTACHMENTS}; with more, the raw string is kept in `unmapped`)",
    raw_inputs=("attachments",),
)
def attachments(record: EmailRecord) -> list[dict[str, Any]] | None:
    return _attachments(record)


@EMAIL.derived(
    "rejection_urls",
    "the `Url: [...]` of a pseudo-structured `rejectionInfo` (`[Type: [...],Url: [...],UrlBlock: [...]`, "
    "QR-code phishing) as a URL",
    raw_inputs=("rejectionInfo",),
)
def rejection_urls(record: EmailRecord) -> list[dict[str, str]] | None:
    url = parse.bracket_fields(record.record.get("rejectionInfo")).get("Url")
    return [{"url_string": url}] if url else None


@EMAIL.derived(
    "email_auth",
    "`spamProcessingDetail` (a JSON string or an object): `spf` / `dkim` / `dmarc` `.info`; the other parts "
    "(`rbl`, `permittedSender`, `managedSender`...) are kept in `unmapped.spamProcessingDetail`",
    raw_inputs=("spamProcessingDetail",),
)
def email_auth(record: EmailRecord) -> dict[str, str] | None:
    raw = record.record.get("spamProcessingDetail")
    detail, understood = parse.json_value(raw)
    if not understood or not isinstance(detail, dict | None):
        record.keep("spamProcessingDetail", raw)
        return None
    if not detail:
        return None
    auth: dict[str, str] = {}
    rest: dict[str, Any] = {}
    for name, part in detail.items():
        info = part.get("info") if name in ("spf", "dkim", "dmarc") and isinstance(part, dict) else None
        if isinstance(info, str) and info:
            auth[name] = info  # its "allow" flag says the same as the verdict
            if not set(part) <= {"allow", "info"}:
                rest[name] = part
        else:
            rest[name] = part
    if rest:
        record.keep("spamProcessingDetail", rest)
    return auth or None


def _direction_id(record: EmailRecord) -> int:
    """``direction`` decides, ``route`` when there is none; the one that names no direction (a route that is a
    connector name) or contradicts the other is kept for ``unmapped``."""
    raw = record.record
    direction_word, route_word = parse.word(raw.get("direction")), parse.word(raw.get("route"))
    by_direction = _DIRECTIONS.get(direction_word) if direction_word else None
    by_route = _DIRECTIONS.get(route_word) if route_word else None
    if direction_word is not None and by_direction is None:
        record.keep("direction", raw["direction"])
    if route_word is not None and (by_route is None or (by_direction is not None and by_route != by_direction)):
        record.keep("route", raw["route"])
    return by_direction or by_route or 0


@EMAIL.derived(
    "direction_id",
    "`direction`, else `route`, in any case: inbound 1, outbound 2, internal 3; anything else (a route that is "
    "a connector name such as `Accept and drop messages`) 0 Unknown, with the raw value kept in `unmapped`",
    raw_inputs=("direction", "route"),
)
def direction_id(record: EmailRecord) -> int:
    return _direction_id(record)


@EMAIL.derived("direction", "caption of direction_id", raw_inputs=("direction", "route"))
def direction(record: EmailRecord) -> str:
    return _DIRECTION_CAPTIONS[_direction_id(record)]


def _ip(record: EmailRecord, names: tuple[str, ...]) -> str | None:
    found = None
    for name in names:
        value = record.record.get(name)
        if value is None or value == "":
            continue
        ip = parse.ip_address(value)
        if ip is None or found is not None:
            record.keep(name, value)
        else:
            found = ip
    return found


@EMAIL.derived(
    "sender_ip",
    "`senderIp` (SIEM) / `sourceIp` (url protect) / `senderIpAddress` (TTP impersonation) when it is an IP",
    raw_inputs=_SENDER_IPS,
)
def sender_ip(record: EmailRecord) -> str | None:
    return _ip(record, _SENDER_IPS)


@EMAIL.derived("destination_ip", "`destinationIp` (delivery) when it is an IP", raw_inputs=("destinationIp",))
def destination_ip(record: EmailRecord) -> str | None:
    return _ip(record, ("destinationIp",))


@EMAIL.derived(
    "email_status_detail",
    "the first of `rejectionInfo`, `deliveryErrors`, `receiptErrors`, `holdReason` (Spm, Oth) with a text; the "
    "others are kept in `unmapped`",
    raw_inputs=("rejectionInfo", "deliveryErrors", "receiptErrors", "holdReason"),
)
def email_status_detail(record: EmailRecord) -> str | None:
    return record.first_text(("rejectionInfo", "deliveryErrors", "receiptErrors", "holdReason"))


@EMAIL.derived(
    "malware",
    "`virusFound` (the AV verdict name) as a malware object with classification 0 Unknown",
    raw_inputs=("virusFound",),
)
def malware(record: EmailRecord) -> list[dict[str, Any]] | None:
    name = record.text("virusFound")
    if name is None or name == "null":
        return None
    return [{"name": name, "classification_ids": [0], "classifications": ["Unknown"]}]


def _email_object(record: EmailRecord) -> dict[str, Any]:
    """The email object of a finding's evidence: the same values as Email Activity's ``email.*`` rows."""
    email: dict[str, Any] = {}
    for attribute, value in (
        ("uid", record.text("aggregateId")),
        ("message_uid", record.text("messageId")),
        ("subject", record.text("subject")),
        ("from", sender(record)),
        ("return_path", return_path(record)),
        ("to", _recipients(record)),
        ("size", _count(record, "emailSize")),
    ):
        if value is not None:
            email[attribute] = value
    return email


# ------------------------------------------------------------------------------------------- files and URLs
@EMAIL.derived(
    "email_uid",
    "`aggregateId` (SIEM), else `messageId` (TTP has no aggregateId); a record with neither is refused (OCSF "
    "requires email_uid in these classes)",
    raw_inputs=("aggregateId", "messageId"),
)
def email_uid(record: EmailRecord) -> str:
    uid = record.text("aggregateId") or record.text("messageId")
    if uid is None:
        raise MappingError(f"{record.source} record {record.key} has no aggregateId or messageId", record_id=record.key)
    return uid


@EMAIL.derived("file_name", "`fileName`; a record without one is refused (OCSF requires file.name)",
               raw_inputs=("fileName",))  # fmt: skip
def file_name(record: EmailRecord) -> str:
    name = record.text("fileName")
    if name is None:
        raise MappingError(f"{record.source} record {record.key} has no fileName", record_id=record.key)
    return name


EMAIL.add(Source("file_type_id", "1 Regular File (an attachment)", compute=lambda record: 1))
EMAIL.add(Source("file_type", "caption of file_type_id", compute=lambda record: _REGULAR_FILE))


@EMAIL.derived("file_mime", "`fileMime` (SIEM attachment protect) / `fileType` (TTP attachment: a MIME type)",
               raw_inputs=("fileMime", "fileType"))  # fmt: skip
def file_mime(record: EmailRecord) -> str | None:
    return record.first_text(("fileMime", "fileType"))


@EMAIL.derived("attachment_size", "`sizeAttachment` as an integer", raw_inputs=("sizeAttachment",))
def attachment_size(record: EmailRecord) -> int | None:
    return _count(record, "sizeAttachment")


@EMAIL.derived(
    "hashes",
    "`md5` → 1 MD5, `sha1` → 2 SHA-1, `sha256` / `fileHash` → 3 SHA-256, each only when it is hexadecimal of the "
    "right length (lower-cased); the others are kept in `unmapped`",
    raw_inputs=tuple(name for name, _, _ in _HASHES),
)
def hashes(record: EmailRecord) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] = []
    for name, algorithm, algorithm_id in _HASHES:
        value = record.record.get(name)
        if value is None or value == "":
            continue
        digest = parse.hex_digest(value, algorithm)
        if digest is None:
            record.keep(name, value)
        elif not any(h["value"] == digest for h in found):
            found.append({"algorithm_id": algorithm_id, "algorithm": _ALGORITHMS[algorithm_id], "value": digest})
    return found or None


@EMAIL.derived("file_status_detail", "`details` (TTP attachment: the sandbox's free text, line breaks kept)",
               raw_inputs=("details",))  # fmt: skip
def file_status_detail(record: EmailRecord) -> str | None:
    return record.text("details")


@EMAIL.derived("url", "`url`; a record without one is refused (OCSF requires url)", raw_inputs=("url",))
def url(record: EmailRecord) -> str:
    value = record.text("url")
    if value is None:
        raise MappingError(f"{record.source} record {record.key} has no url", record_id=record.key)
    return value


def _categories(record: EmailRecord, name: str) -> list[str] | None:
    value = record.record.get(name)
    if isinstance(value, str):
        return [value] if value.strip() else None
    if isinstance(value, list) and all(isinstance(item, str) for item in value[: parse.MAX_LIST_ITEMS]):
        if len(value) > parse.MAX_LIST_ITEMS:
            record.keep(name, value)
        return [item for item in value[: parse.MAX_LIST_ITEMS] if item.strip()] or None
    if value is not None:
        record.keep(name, value)
    return None


@EMAIL.derived("url_categories", "`urlCategory` (SIEM) / `category` (TTP URL) as a one-item list",
               raw_inputs=("urlCategory", "category"))  # fmt: skip
def url_categories(record: EmailRecord) -> list[str] | None:
    return _categories(record, "urlCategory") or _categories(record, "category")


@EMAIL.derived(
    "url_status_detail",
    "`blockReason` (SIEM url protect: malicious...) / `scanResult` (TTP URL: clean, malicious)",
    raw_inputs=("blockReason", "scanResult"),
)
def url_status_detail(record: EmailRecord) -> str | None:
    return record.first_text(("blockReason", "scanResult"))


@EMAIL.derived(
    "analysis",
    '`analysis` (a JSON string, an object, or the string `"null"`) parsed, as `unmapped.analysis`; text that is '
    "not JSON stays as sent",
    raw_inputs=("analysis",),
)
def analysis(record: EmailRecord) -> dict[str, Any] | None:
    raw = record.record.get("analysis")
    value, understood = parse.json_value(raw)
    if not understood:
        return {"analysis": raw}
    return {"analysis": value} if value is not None else None


@EMAIL.derived("policy_name", "`ttpDefinition` (TTP URL) / `definition` (TTP attachment): the policy that applied",
               raw_inputs=("ttpDefinition", "definition"))  # fmt: skip
def policy_name(record: EmailRecord) -> str | None:
    return record.first_text(("ttpDefinition", "definition"))


# ------------------------------------------------------------------------------------------------ findings
@EMAIL.derived("finding_uid", "`id` (TTP impersonation), else the record's dedup key", raw_inputs=("id",))
def finding_uid(record: EmailRecord) -> str:
    return record.text("id") or record.key


@EMAIL.derived(
    "finding_title",
    "the feature (Impersonation Protect, Internal Email Protect) and what it found: `scanResults` (internal "
    "email protect), else `policyDefinition` / `definition`",
    raw_inputs=("scanResults",),
)
def finding_title(record: EmailRecord) -> str:
    feature = _FEATURE_TITLES.get(record.log_name, record.log_name)
    detail = record.text("scanResults") or _definition(record)
    return f"{feature}: {detail}" if detail else feature


def _definition(record: EmailRecord) -> str | None:
    return record.text("policyDefinition") or record.text("definition")


@EMAIL.derived("analytic", "`policyDefinition` (SIEM) / `definition` (TTP) as the analytic, type 1 Rule",
               raw_inputs=("policyDefinition", "definition"))  # fmt: skip
def analytic(record: EmailRecord) -> dict[str, Any] | None:
    name = _definition(record)
    return {"name": name, **_RULE} if name else None


@EMAIL.derived(
    "finding_types",
    "the impersonation identifiers that are true (`internalUserName`, `newDomain`, `replyMismatch`, ... as "
    "booleans or strings; SIEM), the `identifiers` list (TTP), or `urlCategory` (internal email protect)",
    raw_inputs=(*IMPERSONATION_FLAGS, "identifiers", "urlCategory"),
)
def finding_types(record: EmailRecord) -> list[str] | None:
    raw = record.record
    found: list[str] = []
    for name in IMPERSONATION_FLAGS:
        value = raw.get(name)
        if value is None:
            continue
        truth = parse.flag(value)
        if truth:
            found.append(name)
        elif truth is None:
            record.keep(name, value)
    found += _categories(record, "identifiers") or []
    found += _categories(record, "urlCategory") or []
    return found or None


@EMAIL.derived(
    "evidence",
    "one evidence: the email (uid ← aggregateId, message_uid, subject, from, return_path, to, size: the same "
    "values as Email Activity's rows) and `src_endpoint.ip` ← the sender IP",
    raw_inputs=("aggregateId", "messageId", "subject", *_SENDERS, *_RECIPIENTS, "emailSize", *_SENDER_IPS),
)
def evidence(record: EmailRecord) -> list[dict[str, Any]] | None:
    item: dict[str, Any] = {}
    email = _email_object(record)
    if email:
        item["email"] = email
    ip = _ip(record, _SENDER_IPS)
    if ip is not None:
        item["src_endpoint"] = {"ip": ip}
    return [item] if item else None


@EMAIL.derived("dlp_title", '"DLP: " and the `policy` that matched', raw_inputs=("policy",))
def dlp_title(record: EmailRecord) -> str:
    policy = record.text("policy")
    return f"DLP: {policy}" if policy else "DLP"


@EMAIL.derived(
    "data_security",
    "detection system 6 Secure Email Gateway, lifecycle 2 Data in-Transit, policy.name ← `policy`",
    raw_inputs=("policy",),
)
def data_security(record: EmailRecord) -> dict[str, Any]:
    policy = record.text("policy")
    return {**_DLP_SYSTEM, "policy": {"name": policy}} if policy else dict(_DLP_SYSTEM)


@EMAIL.derived(
    "sender_user",
    "user of the sender (`senderAddress`) when it is a valid address: name, uid (lower-cased), email_addr; "
    "`<>` (null sender) is kept in `unmapped`",
    raw_inputs=("senderAddress",),
)
def sender_user(record: EmailRecord) -> dict[str, Any] | None:
    address = _address(record, "senderAddress")
    if address is None:
        return None
    return {"name": address, "uid": address.lower(), "email_addr": address}
