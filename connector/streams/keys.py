"""Dedup for records without an id: a content key per record, and a time-pruned set of keys with cheap snapshots.

Some Mimecast logs (SIEM, TTP URL and attachment, DLP) carry no record id, so a record re-read in a window's
overlap can only be recognised by its content. ``content_key`` hashes the record's canonical JSON (keys sorted at
every level, transport fields left out) to 12 bytes of SHA-256, written as 16 URL-safe base64 characters: a
collision among a million keys has a probability of about 10^-17.

``KeyLog`` is the live set a run adds to; every page's checkpoint holds a ``KeySnapshot`` of it. A snapshot is
the log's lists and a length, not a copy: the log only ever appends (pruning builds new lists), so the first
``length`` entries a snapshot names never change. A page costs O(its records) however many keys are kept; only
``to_dict`` (a save) walks them all. Times are kept to the minute (``BUCKET_MS``), and the JSON form groups the
keys per minute into one string, which is what keeps the state small (bench/bench_state.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from connector.errors import UnkeyableRecordError
from connector.streams.state import InvalidState, epoch_ms, exact_object

__all__ = ["BUCKET_MS", "KEY_CHARS", "KeyLog", "KeySnapshot", "content_key", "parse_buckets"]

KEY_BYTES: Final = 12
KEY_CHARS: Final = 16  # base64 of 12 bytes, no padding
BUCKET_MS: Final = 60_000
_KEYS_TEXT: Final = re.compile(r"[A-Za-z0-9_-]*")


def content_key(record: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> str:
    """The record's content key: the same content always gives the same key, whatever the order of its fields.

    Args:
        record: A decoded JSON object.
        ignore: Top-level fields that are not content (transport offsets, partitions) and are left out.

    Raises:
        UnkeyableRecordError: the record cannot be written as JSON (nested beyond orjson's 254 levels, which the
            parsers accept; an integer beyond 64 bits): the caller refuses it as one record.
    """
    content = {name: value for name, value in record.items() if name not in ignore} if ignore else record
    try:
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise UnkeyableRecordError(f"the record cannot be keyed: {exc}") from None
    digest = hashlib.sha256(canonical).digest()[:KEY_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii")


def _bucket(time_ms: int) -> int:
    return time_ms - time_ms % BUCKET_MS


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """The first ``length`` entries of a key log: what one checkpoint covers. Read-only by construction."""

    keys: list[str]
    times: list[int]
    length: int

    @classmethod
    def empty(cls) -> KeySnapshot:
        """No keys."""
        return cls([], [], 0)

    def __len__(self) -> int:
        return self.length

    def items(self) -> Iterator[tuple[str, int]]:
        """(key, minute in epoch ms) of every entry."""
        for index in range(self.length):
            yield self.keys[index], self.times[index]

    def to_dict(self) -> dict[str, Any]:
        """``{"bucket_ms": 60000, "buckets": {"<minute ms>": "<key><key>..."}}``, minutes and keys sorted."""
        buckets: dict[int, list[str]] = {}
        for key, minute in self.items():
            buckets.setdefault(minute, []).append(key)
        return {
            "bucket_ms": BUCKET_MS,
            "buckets": {str(minute): "".join(sorted(keys)) for minute, keys in sorted(buckets.items())},
        }

    @classmethod
    def parse(cls, data: object, where: str) -> KeySnapshot:
        """Strictly parse the JSON form.

        Raises:
            InvalidState: another bucket width, a minute that is no epoch-ms time, or key text that is not whole
                16-character base64url keys.
        """
        keys: list[str] = []
        times: list[int] = []
        for minute, text in parse_buckets(data, where).items():
            for start in range(0, len(text), KEY_CHARS):
                keys.append(text[start : start + KEY_CHARS])
                times.append(minute)
        return cls(keys, times, len(keys))


def parse_buckets(data: object, where: str) -> dict[int, str]:
    """The minutes and key texts of the JSON form of a key set, ``{"bucket_ms": 60000, "buckets": {"<minute ms>":
    "<key><key>..."}}``, checked strictly (empty buckets left out); shared by every key set kept this way.

    Raises:
        InvalidState: another bucket width, a minute that is no epoch-ms minute, or key text that is not whole
            16-character base64url keys.
    """
    obj = exact_object(data, where, {"bucket_ms", "buckets"})
    if obj["bucket_ms"] != BUCKET_MS or isinstance(obj["bucket_ms"], bool):
        raise InvalidState(f"{where}.bucket_ms must be {BUCKET_MS}")
    buckets = obj["buckets"]
    if not isinstance(buckets, dict):
        raise InvalidState(f"{where}.buckets must be an object")
    texts: dict[int, str] = {}
    for name, text in buckets.items():
        spot = f"{where}.buckets[{name[:20]!r}]"
        if not (name.isascii() and name.isdigit() and len(name) <= 16):
            raise InvalidState(f"{spot}: the bucket name must be an epoch-ms minute")
        minute = epoch_ms(int(name), spot)
        assert minute is not None
        if minute % BUCKET_MS:
            raise InvalidState(f"{spot}: {minute} is not the start of a minute")
        if not isinstance(text, str) or len(text) % KEY_CHARS or not _KEYS_TEXT.fullmatch(text):
            raise InvalidState(f"{spot} must be a string of {KEY_CHARS}-character base64url keys")
        if text:
            texts[minute] = text
    return texts


class KeyLog:
    """The live key set of one run: membership, append, prune, snapshot.

    Args:
        snapshot: The keys the checkpoint held (each kept once).
    """

    def __init__(self, snapshot: KeySnapshot | None = None) -> None:
        self._keys: list[str] = []
        self._times: list[int] = []
        self._index: set[str] = set()
        for key, minute in (snapshot or KeySnapshot.empty()).items():
            self.add(key, minute)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, time_ms: int) -> None:
        """Remember ``key`` for a record of ``time_ms``; a key already kept keeps its first time."""
        if key in self._index:
            return
        self._index.add(key)
        self._keys.append(key)
        self._times.append(_bucket(time_ms))

    def prune(self, keep_from_ms: int) -> None:
        """Forget keys of records that lie wholly before ``keep_from_ms`` (their minute ended before it).

        New lists are built, so the snapshots taken before stay as they were.
        """
        keys: list[str] = []
        times: list[int] = []
        for key, minute in zip(self._keys, self._times, strict=True):
            if minute + BUCKET_MS > keep_from_ms:
                keys.append(key)
                times.append(minute)
        self._keys, self._times, self._index = keys, times, set(keys)

    def snapshot(self) -> KeySnapshot:
        """The keys as they are now, without copying them."""
        return KeySnapshot(self._keys, self._times, len(self._keys))
