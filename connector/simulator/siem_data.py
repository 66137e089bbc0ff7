"""The simulated SIEM Cloud Gateway log data: which records exist, when, and in which batch file.

Nothing is stored. Record ``i`` of a type is a pure function of ``(seed, type, i)``: a real sample of that type
(:data:`~connector.simulator.siem_samples.SAMPLES`) with its ids, addresses, IPs and timestamp varied. Records
of a type are spread evenly over ``[end - days, end]`` (timestamps non-decreasing in ``i``), and the batch file of
time slot ``k`` (``file_interval_seconds`` long) holds the records whose timestamp falls in it; it is published
when its slot ends. So a tenant of a million records costs nothing until a file is asked for, and then only that
file. The HTTP side lives in ``siem.py`` (the API routes) and ``siem_files.py`` (the file host).
"""

from __future__ import annotations

import base64
import bisect
import gzip
import hashlib
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from connector.simulator.layouts import mix64
from connector.simulator.siem_samples import SAMPLES

__all__ = ["SIEM_TYPES", "SiemData", "SiemFile", "SiemSpec"]

#: The Cloud Gateway log types, in the order the batch endpoint documents them.
SIEM_TYPES: tuple[str, ...] = (
    "receipt",
    "process",
    "delivery",
    "av",
    "spam",
    "attachment protect",
    "impersonation protect",
    "url protect",
    "internal email protect",
    "journal",
)

_MS_PER_DAY = 86_400_000
#: The real samples' own internal domain: addresses in it become the simulated tenant's.
_SAMPLE_INTERNAL = "demo-int.elastic.mime-api.com"
_INTERNAL_DOMAINS = ("sim-tenant.example", "eu.sim-tenant.example")
_EXTERNAL_DOMAINS = (
    "partner.example.net",
    "mail.example.org",
    "news.example.com",
    "billing.example.net",
    "b41.example.org",
    "cloud-mailer.example.com",
)
_LOCALS = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yasmin",
)
_SURNAMES = ("smith", "jones", "taylor", "brown", "wilson", "evans", "thomas", "roberts", "walker", "wright")
_IPV4_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")  # documentation ranges only (RFC 5737)
_ADDRESS_FIELDS = ("senderEnvelope", "recipients", "recipient")
_IP_FIELDS = ("senderIp", "sourceIp", "destinationIp")
#: ``_offset`` of a record repeated into a later file is its own plus this: a re-delivery sits elsewhere in the
#: log, so only the transport fields tell the copy apart.
REPEAT_OFFSET_SHIFT = 10_000_000


@dataclass(frozen=True)
class SiemSpec:
    """What SIEM data a simulator serves. Every field has a default; the same spec gives the same bytes.

    Attributes:
        seed: varies every generated value; page tokens and link signatures are keyed by it too, so they stay
            valid across simulator instances built with the same seed.
        records_per_type: records of every type (an ``int``), or per type (a mapping; absent types have no data).
        days: the records span ``[end - days, end]``.
        end: epoch seconds of the end of the data; ``None``: the simulator's "now" when it is built. In the
            future, files keep being published as the clock moves.
        file_interval_seconds: a batch file per type per interval, published when its interval ends.
        retention_days: files published longer ago than this are gone (not listed, 404 on download).
        link_ttl_seconds: lifetime of a listed download link.
        account_id: ``accountId`` of every record.
        stream_window_hours: how far back the stream endpoint's ``dateRangeStartsAt`` may reach.
    """

    seed: int = 1
    records_per_type: int | Mapping[str, int] = 100
    days: float = 7.0
    end: float | None = None
    file_interval_seconds: float = 900.0
    retention_days: float = 7.0
    link_ttl_seconds: float = 900.0
    account_id: str = "CSIM4A001"
    stream_window_hours: float = 24.0

    def __post_init__(self) -> None:
        counts = self.records_per_type
        if isinstance(counts, Mapping):
            unknown = sorted(set(counts) - set(SIEM_TYPES))
            if unknown:
                raise ValueError(f"records_per_type: unknown SIEM types {unknown}; known: {list(SIEM_TYPES)}")
            values = list(counts.values())
        else:
            values = [counts]
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
            raise ValueError("records_per_type: counts must be integers >= 0")
        for name in ("days", "file_interval_seconds", "retention_days", "link_ttl_seconds", "stream_window_hours"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, not {value!r}")

    def count(self, log_type: str) -> int:
        """How many records ``log_type`` has."""
        counts = self.records_per_type
        return counts.get(log_type, 0) if isinstance(counts, Mapping) else counts


@dataclass(frozen=True, slots=True)
class SiemFile:
    """One batch file: the records ``[first, stop)`` of ``type``, published at ``published_at`` (epoch s)."""

    type: str
    index: int
    published_at: float
    first: int
    stop: int

    @property
    def count(self) -> int:
        """Records in the file (repeats injected by the ``siem_repeat_last`` fault not included)."""
        return self.stop - self.first


def _normalise(sample: Mapping[str, Any]) -> dict[str, Any]:
    """A sample in the batch file style: ``type``/``subtype`` names, transport fields dropped (added back fresh)."""
    names = {"eventType": "type", "subType": "subtype"}
    return {names.get(k, k): v for k, v in sample.items() if k not in ("_offset", "_partition")}


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to vary in one template, worked out once: the per-record work is then a copy and a few strings."""

    base: dict[str, Any]
    addresses: tuple[tuple[str, bool], ...]  # (field, internal)
    header: str | None  # "same" as the envelope, "own", or None (absent or not an address)
    sender_domain: bool
    ips: tuple[str, ...]
    message_id: str | None  # "angle" (<...@...>), "bare" (...@... without brackets), or None (kept)


def _is_address(value: object) -> bool:
    return isinstance(value, str) and "@" in value and not value.startswith("<")


def _plan(template: dict[str, Any], account_id: str, partition: int) -> _Plan:
    base: dict[str, Any] = {"_offset": 0, "_partition": partition, **template, "accountId": account_id}
    addresses = []
    for name in _ADDRESS_FIELDS:
        value = template.get(name)
        if _is_address(value):
            domain = str(value).rpartition("@")[2].lower()
            internal = domain == _SAMPLE_INTERNAL or (name != "senderEnvelope" and domain == "example.com")
            addresses.append((name, internal))
    header = None
    if _is_address(template.get("senderHeader")):
        header = "same" if template.get("senderHeader") == template.get("senderEnvelope") else "own"
    envelope_varies = _is_address(template.get("senderEnvelope"))
    ips = tuple(
        name
        for name in _IP_FIELDS
        if isinstance(template.get(name), str) and ("." in template[name] or ":" in template[name])
    )
    message_id = template.get("messageId")
    style = None
    if isinstance(message_id, str) and "@" in message_id:
        style = "angle" if message_id.startswith("<") else "bare"
    if header == "same" and not envelope_varies:
        header = "own"
    sender_domain = isinstance(template.get("senderDomain"), str) and envelope_varies
    return _Plan(base, tuple(addresses), header, sender_domain, ips, style)


@dataclass(frozen=True, slots=True)
class _TypeData:
    number: int
    count: int
    key: bytes
    plans: tuple[_Plan, ...]


class SiemData:
    """The records and batch files of every type for one :class:`SiemSpec` (see the module docstring)."""

    def __init__(self, spec: SiemSpec, now: float) -> None:
        """Lay the data out; ``now`` (epoch s) is the end of the data when ``spec.end`` is ``None``."""
        self.spec = spec
        self.end_ms = round((spec.end if spec.end is not None else now) * 1000)
        self.span_ms = max(1, round(spec.days * _MS_PER_DAY))
        self.start_ms = self.end_ms - self.span_ms
        self.interval_ms = max(1, round(spec.file_interval_seconds * 1000))
        self.slots = -(-self.span_ms // self.interval_ms)
        self.retention_ms = round(spec.retention_days * _MS_PER_DAY)
        self._seed = mix64(spec.seed & ((1 << 64) - 1))
        templates: dict[str, list[dict[str, Any]]] = {t: [] for t in SIEM_TYPES}
        for sample in SAMPLES:
            record = _normalise(sample)
            templates[str(record["type"])].append(record)
        seed_bytes = self._seed.to_bytes(8, "little")
        self._aggregate_key = b"aggregate\x00" + seed_bytes
        self._types = {
            t: _TypeData(
                number,
                spec.count(t),
                f"{t}\x00".encode() + seed_bytes,
                tuple(_plan(r, spec.account_id, (spec.seed + number) % 64) for r in templates[t]),
            )
            for number, t in enumerate(SIEM_TYPES, start=1)
        }

    # --- layout -------------------------------------------------------------------------------------------

    def count(self, log_type: str) -> int:
        """Records ``log_type`` has over the whole span (published or not yet)."""
        return self._types[log_type].count

    def timestamp_ms(self, log_type: str, index: int) -> int:
        """``timestamp`` of record ``index``: in the ``index``-th equal share of the span, jittered within it."""
        data = self._types[log_type]
        low = (index * self.span_ms) // data.count
        width = ((index + 1) * self.span_ms) // data.count - low
        jitter = mix64(self._seed ^ (data.number << 56) ^ index) % width if width > 1 else 0
        return self.start_ms + low + jitter

    def first_at_or_after(self, log_type: str, ms: int) -> int:
        """The first record index whose timestamp is ``>= ms`` (``count`` if none)."""
        count = self._types[log_type].count
        return bisect.bisect_left(range(count), ms, key=lambda i: self.timestamp_ms(log_type, i))

    def slot_start_ms(self, slot: int) -> int:
        """Start of time slot ``slot`` (its file holds the records from here to the next slot's start)."""
        return self.start_ms + slot * self.interval_ms

    def published_at_ms(self, slot: int) -> int:
        """When slot ``slot``'s file is published: the end of the slot."""
        return self.start_ms + (slot + 1) * self.interval_ms

    def slot_of(self, ms: int) -> int:
        """The slot an instant (epoch ms) falls in."""
        return (ms - self.start_ms) // self.interval_ms

    def file(self, log_type: str, slot: int) -> SiemFile | None:
        """Slot ``slot``'s file of ``log_type``; ``None`` when the slot holds no record (no file is published)."""
        if not 0 <= slot < self.slots:
            return None
        first = self.first_at_or_after(log_type, self.slot_start_ms(slot))
        stop = self.first_at_or_after(log_type, self.slot_start_ms(slot + 1))
        if first >= stop:
            return None
        return SiemFile(log_type, slot, self.published_at_ms(slot) / 1000, first, stop)

    def next_file(self, log_type: str, slot: int) -> SiemFile | None:
        """The first file of ``log_type`` at slot ``slot`` or later (whether published yet or not), or ``None``."""
        first = self.first_at_or_after(log_type, self.slot_start_ms(max(0, slot)))
        if first >= self.count(log_type):
            return None
        return self.file(log_type, self.slot_of(self.timestamp_ms(log_type, first)))

    def previous_file(self, log_type: str, slot: int) -> SiemFile | None:
        """The last file of ``log_type`` before slot ``slot``, or ``None``."""
        last = self.first_at_or_after(log_type, self.slot_start_ms(slot)) - 1
        if last < 0:
            return None
        return self.file(log_type, self.slot_of(self.timestamp_ms(log_type, last)))

    def retained_from(self, now_ms: int) -> int:
        """The first slot whose file is still kept at ``now_ms`` (published less than ``retention_days`` ago)."""
        return max(0, (now_ms - self.retention_ms - self.start_ms) // self.interval_ms)

    def visible(self, file: SiemFile, now_ms: int) -> bool:
        """Whether ``file`` is listed and served at ``now_ms``: published, and not yet past retention."""
        published = self.published_at_ms(file.index)
        return published <= now_ms and file.index >= self.retained_from(now_ms)

    def files(self, log_type: str, now_ms: int) -> Iterator[SiemFile]:
        """Every file of ``log_type`` visible at ``now_ms``, oldest first."""
        slot = self.retained_from(now_ms)
        while True:
            found = self.next_file(log_type, slot)
            if found is None or not self.visible(found, now_ms):
                return
            yield found
            slot = found.index + 1

    # --- records ------------------------------------------------------------------------------------------

    def record(self, log_type: str, index: int) -> dict[str, Any]:
        """Record ``index`` of ``log_type`` as a batch file holds it (``type``/``subtype``, ``_offset``...)."""
        data = self._types[log_type]
        # One hash gives the record's id bytes and 256 bits of choices; another, shared by record ``index`` of
        # every type, its aggregateId (the rows of one message).
        digest = hashlib.blake2b(index.to_bytes(8, "little"), digest_size=64, key=data.key).digest()
        choices = [int.from_bytes(digest[k : k + 8], "little") for k in range(32, 64, 8)]
        plan = data.plans[choices[0] % len(data.plans)]
        timestamp = self.timestamp_ms(log_type, index)
        second = timestamp // 1000 - (choices[0] >> 40) % 8
        aggregate = hashlib.blake2b(index.to_bytes(8, "little"), digest_size=16, key=self._aggregate_key).digest()
        record = dict(plan.base)
        record["_offset"] = 70_000 + index
        record["aggregateId"] = f"{base64.urlsafe_b64encode(aggregate).decode().rstrip('=')}_{second}"
        record["processingId"] = f"{base64.urlsafe_b64encode(digest[:32]).decode().rstrip('=')}_{second}"
        record["timestamp"] = timestamp
        value = choices[1]
        envelope = None
        for name, internal in plan.addresses:
            address = _address(value, internal)
            value = mix64(value)
            record[name] = address
            if name == "senderEnvelope":
                envelope = address
        if plan.header is not None:
            record["senderHeader"] = envelope if plan.header == "same" else _address(value, False)
        if plan.sender_domain and envelope is not None:
            record["senderDomain"] = envelope.rpartition("@")[2]
        value = choices[2]
        for name in plan.ips:
            record[name] = _ip(value)
            value = mix64(value)
        serial = choices[3]
        if plan.message_id == "angle":
            record["messageId"] = f"<{serial >> 8:014x}-{index}@mta.{_INTERNAL_DOMAINS[0]}>"
        elif plan.message_id == "bare":
            record["messageId"] = f"{serial:016x}{index}@{_EXTERNAL_DOMAINS[serial % len(_EXTERNAL_DOMAINS)]}"
        return record

    def stream_record(self, log_type: str, index: int) -> dict[str, Any]:
        """Record ``index`` as the stream endpoint answers it: ``eventType``/``subType``, no transport fields."""
        names = {"type": "eventType", "subtype": "subType"}
        return {
            names.get(k, k): v for k, v in self.record(log_type, index).items() if k not in ("_offset", "_partition")
        }

    def file_records(self, file: SiemFile, repeat: int = 0) -> Iterator[dict[str, Any]]:
        """The records of ``file`` in order; with ``repeat``, first the last ``repeat`` records of the previous
        file again (their ``_offset`` moved by :data:`REPEAT_OFFSET_SHIFT`)."""
        if repeat > 0:
            previous = self.previous_file(file.type, file.index)
            if previous is not None:
                for index in range(max(previous.first, previous.stop - repeat), previous.stop):
                    copy = self.record(file.type, index)
                    copy["_offset"] += REPEAT_OFFSET_SHIFT
                    yield copy
        for index in range(file.first, file.stop):
            yield self.record(file.type, index)

    def repeated_in(self, file: SiemFile, repeat: int) -> int:
        """How many repeated records :meth:`file_records` puts at the start of ``file``."""
        if repeat <= 0:
            return 0
        previous = self.previous_file(file.type, file.index)
        return 0 if previous is None else min(repeat, previous.count)

    def file_bytes(self, file: SiemFile, repeat: int = 0) -> bytes:
        """``file`` as served: gzip-compressed NDJSON (deterministic: no name, mtime 0)."""
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=3, mtime=0) as writer:
            batch: list[bytes] = []
            for record in self.file_records(file, repeat):
                batch.append(orjson.dumps(record))
                if len(batch) >= 512:
                    writer.write(b"\n".join(batch) + b"\n")
                    batch.clear()
            if batch:
                writer.write(b"\n".join(batch) + b"\n")
        return out.getvalue()


def _address(value: int, internal: bool) -> str:
    """A generated address (internal or external domain) from the bits of ``value``."""
    local = f"{_LOCALS[value % len(_LOCALS)]}.{_SURNAMES[(value >> 8) % len(_SURNAMES)]}"
    if (value >> 16) % 4 == 0:
        local += str((value >> 20) % 100)
    pool = _INTERNAL_DOMAINS if internal else _EXTERNAL_DOMAINS
    return f"{local}@{pool[(value >> 32) % len(pool)]}"


def _ip(value: int) -> str:
    """A documentation-range IP address from the bits of ``value``, one in twenty IPv6."""
    if value % 20 == 0:
        return f"2001:db8:{(value >> 8) & 0xFFFF:x}::{1 + (value >> 24) % 0xFFFE:x}"
    return f"{_IPV4_PREFIXES[(value >> 8) % len(_IPV4_PREFIXES)]}.{1 + (value >> 16) % 254}"
