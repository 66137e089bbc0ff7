"""Helpers shared by the benchmarks: deterministic raw-record generators, best-of-N timing, machine description.

The generators start from the golden scenario inputs (``tests/golden``), so every eventInfo layout and audit type
the mapper knows about is represented, and vary what changes from record to record in production: ids, addresses
and display names, IP addresses, event times (with the local Date/Time inside eventInfo kept consistent), group
names and directory attributes. Everything is driven by one ``random.Random(seed)``: the same arguments give the
same bytes.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
GOLDEN: Final = ROOT / "tests" / "golden"

# Relative weights of the golden audit scenarios by folder: most audit traffic is logons; Base Event types
# (outside the four classes) are kept near 2% of records, as the issue asks.
_FOLDER_WEIGHTS: Final[dict[str, float]] = {
    "authentication": 0.70,
    "account_change": 0.16,
    "group_management": 0.12,
    "base_event": 0.02,
}
_FIRST: Final = (
    "alice", "bob", "carol", "dana", "erin", "frank", "gina", "hal", "ivy", "jack", "kim", "liam", "mia", "noah",
    "olga", "pete", "quinn", "rosa", "sam", "tara", "uma", "victor", "wendy", "xavier", "yara", "zoe", "amir",
    "bea", "chen", "dev", "eli", "fatima", "goran", "hana", "igor", "jana", "kofi", "lena", "marco", "nina", "omar",
    "priya",
)  # fmt: skip
_LAST: Final = (
    "ng", "okafor", "diaz", "lee", "cho", "ito", "park", "ruiz", "chen", "moss", "lowe", "ross", "smith", "garcia",
    "kim", "patel", "novak", "silva", "haddad", "mensah", "tanaka", "weber", "costa", "nowak", "ali", "berg",
)  # fmt: skip
_DOMAINS: Final = ("contoso.example.org", "fabrikam.example.com", "northwind.example.net")
_GROUPS: Final = (
    "Finance Approvers", "VIP Protection", "Sales EMEA", "Engineering", "Legal Hold", "Contractors", "HR Partners",
    "Board", "Support Tier 2", "Marketing Lists",
)  # fmt: skip
_ADDRESS: Final = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_IPV4: Final = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6: Final = re.compile(r"\b2001:db8:[0-9a-f:]*[0-9a-f]\b")
_DATE_TIME: Final = re.compile(r"Date: (\d{4}-\d{2}-\d{2})([,\s]+)Time: (\d{2}:\d{2}:\d{2})")
_ID_CHARS: Final = string.ascii_letters + string.digits


def golden_inputs(source: str) -> dict[str, list[Any]]:
    """Golden scenario inputs of one source (``audit``/``users``), grouped by folder (``errors`` included)."""
    found: dict[str, list[Any]] = {}
    for path in sorted(GOLDEN.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["source"] == source:
            found.setdefault(path.parent.name, []).append(data["input"])
    return found


@dataclass(frozen=True)
class Person:
    """A generated directory person: address as Mimecast writes it (mixed case sometimes) and display name."""

    address: str
    name: str


def _people(rng: random.Random, count: int) -> list[Person]:
    people = []
    for index in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        local = f"{first}.{last}{index}" if index >= len(_FIRST) else f"{first}.{last}"
        address = f"{local}@{rng.choice(_DOMAINS)}"
        if rng.random() < 0.1:
            address = address[0].upper() + address[1:]
        people.append(Person(address, f"{first.title()} {last.title()}"))
    return people


def _record_id(rng: random.Random) -> str:
    return "eNq" + "".join(rng.choices(_ID_CHARS, k=40))


def _ipv4(rng: random.Random) -> str:
    prefix = rng.choice(("198.51.100", "203.0.113", "192.0.2", f"10.{rng.randrange(256)}.{rng.randrange(256)}"))
    return f"{prefix}.{rng.randrange(1, 255)}"


def _ipv6(rng: random.Random) -> str:
    return f"2001:db8:{rng.randrange(0x10000):x}::{rng.randrange(1, 0x10000):x}"


@dataclass(frozen=True)
class _Template:
    """A golden input turned into a format string: ``{p0}``/``{n0}`` people, ``{ip0}`` IPs, ``{date}``/``{time}``."""

    record: dict[str, Any]
    text: str
    user: str | None
    people: int
    ipv4: int
    ipv6: int
    local_offset: timedelta


def _compile_template(record: dict[str, Any]) -> _Template:
    text: str = record.get("eventInfo", "").replace("{", "{{").replace("}", "}}")
    user = record.get("user") or ""
    addresses = list(dict.fromkeys(a for a in [*_ADDRESS.findall(user), *_ADDRESS.findall(text)]
                                   if not a.endswith("@mail.example.com")))  # fmt: skip
    for index, address in enumerate(addresses):
        # a display name right after the address ("a@b <A B>", "a@b<A B>") follows the person, unless it repeats
        # the address itself (Mimecast support logins)
        named = re.escape(address) + r"(\s?)<(?!" + re.escape(address) + r")[^>]*>"
        text = re.sub(named, rf"{{p{index}}}\1<{{n{index}}}>", text)
        text = text.replace(address, f"{{p{index}}}")
        user = user.replace(address, f"{{p{index}}}")
    ipv6 = len(_IPV6.findall(text))
    for index in range(ipv6):
        text = _IPV6.sub(f"{{v{index}}}", text, count=1)
    ipv4 = len(_IPV4.findall(text))
    for index in range(ipv4):
        text = _IPV4.sub(f"{{i{index}}}", text, count=1)
    event_time = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC).replace(tzinfo=None)
    offset = timedelta()
    found = _DATE_TIME.search(text)
    if found:
        offset = datetime.strptime(f"{found.group(1)}T{found.group(3)}", "%Y-%m-%dT%H:%M:%S") - event_time
        text = _DATE_TIME.sub(r"Date: {date}\2Time: {time}", text)
    return _Template(record, text, user if record.get("user") else None, len(addresses), ipv4, ipv6, offset)


class AuditGenerator:
    """Varies the golden audit inputs into as many distinct, realistic records as asked for."""

    def __init__(self, seed: int = 20260315, malformed_rate: float = 0.001) -> None:
        self.rng = random.Random(seed)
        self.malformed_rate = malformed_rate
        self.people = _people(self.rng, 2000)
        groups = golden_inputs("audit")
        self.malformed: list[Any] = groups.pop("errors", [])
        # the class folders only: other folders (raw_data/) hold variants of the same records under another setting
        groups = {folder: items for folder, items in groups.items() if folder in _FOLDER_WEIGHTS}
        self.templates = [_compile_template(t) for items in groups.values() for t in items]
        self.weights = [_FOLDER_WEIGHTS[folder] / len(items) for folder, items in groups.items() for _ in items]
        self.start = datetime(2026, 1, 1)

    def record(self) -> Any:
        """One raw record (a dict, or for the malformed share the odd thing a broken feed sends)."""
        if self.rng.random() < self.malformed_rate:
            return self.rng.choice(self.malformed)
        return self.vary(self.rng.choices(self.templates, weights=self.weights)[0])

    def vary(self, template: _Template) -> dict[str, Any]:
        """A copy of the template with new id, people, IPs and time (local Date/Time in eventInfo kept consistent)."""
        rng = self.rng
        fields: dict[str, str] = {}
        for index in range(template.people):
            person = rng.choice(self.people)
            fields[f"p{index}"], fields[f"n{index}"] = person.address, person.name
        for index in range(template.ipv4):
            fields[f"i{index}"] = _ipv4(rng)
        for index in range(template.ipv6):
            fields[f"v{index}"] = _ipv6(rng)
        when = self.start + timedelta(seconds=rng.randrange(180 * 86400))
        local = when + template.local_offset
        fields["date"], fields["time"] = f"{local:%Y-%m-%d}", f"{local:%H:%M:%S}"
        record = dict(template.record)
        record["id"] = _record_id(rng)
        record["eventTime"] = f"{when:%Y-%m-%dT%H:%M:%S}+0000"
        if "eventInfo" in record:
            record["eventInfo"] = template.text.format_map(fields)
        if template.user is not None:
            record["user"] = template.user.format_map(fields)
        return record


class UserGenerator:
    """Directory users shaped like the golden inputs: mailboxes with 0-5 groups, aliases, rooms, odd addresses."""

    def __init__(self, seed: int = 20260316, malformed_rate: float = 0.001) -> None:
        self.rng = random.Random(seed)
        self.malformed_rate = malformed_rate
        self.count = 0
        self.malformed = golden_inputs("users").get("errors", [])
        self.group_ids = {name: "eNoV" + "".join(self.rng.choices(_ID_CHARS, k=20)) for name in _GROUPS}

    def record(self) -> Any:
        """One directory user record."""
        rng = self.rng
        roll = rng.random()
        if roll < self.malformed_rate:
            return rng.choice(self.malformed)
        if roll < 0.03:  # rooms and resources: no e-mail shaped address, no domain
            number = rng.randrange(100, 999)
            return {"addressType": "internal", "alias": False, "domain": "", "emailAddress": f"room-{number}",
                    "groups": [], "name": f"Meeting Room {number}", "source": "cloud"}  # fmt: skip
        self.count += 1  # directory addresses are unique
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        address = f"{first}.{last}{self.count}@{rng.choice(_DOMAINS)}"
        person = Person(address.capitalize() if rng.random() < 0.1 else address, f"{first.title()} {last.title()}")
        user: dict[str, Any] = {
            "addressType": "internal",
            "alias": roll < 0.10,
            "domain": person.address.rsplit("@", 1)[1],
            "emailAddress": person.address,
            "name": person.name,
            "source": rng.choice(("ldap", "cloud", "ldap", "azure")),
        }
        if roll >= 0.10:
            names = rng.sample(_GROUPS, k=rng.choice((0, 1, 1, 2, 2, 3, 5)))
            user["groups"] = [{"description": name, "id": self.group_ids[name]} for name in names]
        return user


def jsonl(records: Sequence[Any]) -> list[bytes]:
    """The records as JSON lines (compact, like the API's NDJSON), with a couple of truncated lines mixed in."""
    lines = [json.dumps(record, separators=(",", ":")).encode() for record in records]
    for index in range(max(1, len(lines) // 50_000)):  # an unreadable line now and then (cut-off transfer)
        at = (index * 7919 + 13) % len(lines) if lines else 0
        if lines:
            lines[at] = lines[at][: len(lines[at]) // 2]
    return lines


def generate_audit_lines(count: int, seed: int = 20260315) -> list[bytes]:
    """``count`` audit records as JSON lines bytes."""
    generator = AuditGenerator(seed)
    return jsonl([generator.record() for _ in range(count)])


def generate_user_lines(count: int, seed: int = 20260316) -> list[bytes]:
    """``count`` directory users as JSON lines bytes."""
    generator = UserGenerator(seed)
    return jsonl([generator.record() for _ in range(count)])


def best_of(runs: int, func: Callable[[], object]) -> float:
    """Smallest wall-clock seconds of ``runs`` calls (the least disturbed run on a shared machine)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


def cpu_model() -> str:
    """CPU model from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description() -> dict[str, str]:
    """What the numbers were measured on."""
    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
        load = ", ".join(f"{value:.2f}" for value in psutil.getloadavg())
    except ImportError:  # pragma: no cover - psutil is in the bench extra
        memory, load = "unknown", "unknown"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": memory,
        "load average (1/5/15 min, at start)": load,
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "platform": platform.platform(),
    }
