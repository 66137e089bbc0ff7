"""The SIEM stream's checkpoint state: a cursor per log type, the stream-mode cursor, the listing budgets, and a
bounded, time-pruned set of content keys per log type.

SIEM records have no id, so each is recognised by its content key (``connector.streams.keys.content_key``). The
keys are kept in the JSON form of ``KeySnapshot`` (per-minute buckets, each one string of 16-character keys, parsed
strictly by the same rules), but held differently in memory, because a busy tenant keeps a million keys per type:

* A record's minute is part of its content (its ``timestamp``), so a record read again lands in the same minute:
  membership is asked of one bucket only. A bucket is its JSON text (16 bytes a key, no object per key); the
  first time a run asks a bucket, a set of its keys is built (``_hot``), and buckets no page touched are let go
  again at the next snapshot. A ``KeyLog`` costs about 140 bytes a key (a str, a set slot, two list slots and an
  int); this costs 16 plus the hot minutes (bench/bench_siem.py).
* A snapshot (one per page) folds the keys added since the last one into their buckets' text, prunes, and copies
  the small minute -> text map: O(what changed + number of buckets), never O(keys). The text of a bucket that did
  not change is the same string object in every later snapshot, so a save serialises only what it must and
  ``json.dumps`` copies the rest as it is.
* Pruning is relative to the newest minute kept (the type's high-water mark, capped at now + 1 h so that a record
  dated in the far future cannot prune everything): ``KEY_HORIZON_MS`` behind it, and at most ``MAX_KEYS_PER_TYPE``
  keys (the oldest minutes go first). Minutes beyond now + 1 h are dropped (a record dated there is filed under
  its collection time instead: ``siem_records.key_time``). A catch-up of old files keeps deduplicating, since the
  horizon follows the records, not the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from connector.api.budget import CallBudget
from connector.streams.keys import BUCKET_MS, KEY_CHARS, parse_buckets
from connector.streams.state import InvalidState, epoch_ms, exact_object

__all__ = [
    "BATCH_BUDGET",
    "KEY_HORIZON_MS",
    "MAX_KEYS_PER_TYPE",
    "STREAM_BUDGET",
    "BatchCursor",
    "KeyBuckets",
    "KeysSnapshot",
    "SiemState",
    "StreamCursor",
]

KEY_HORIZON_MS: Final = 2 * 3600_000
"""Keys are kept for records up to this long before the newest one of their type (a record repeated in the next
batch file, a file re-read after its link expired, a stream window restarted from its cursor: all within minutes)."""
MAX_KEYS_PER_TYPE: Final = 1_000_000
"""At most this many keys per type (16 MB of checkpoint text); the oldest minutes are dropped first."""
FUTURE_SLACK_MS: Final = 3600_000
"""How far past the clock a record's time is still taken as it is (clocks differ); a later time is not kept as a
key's minute or a cursor, and minutes kept beyond it (a checkpoint written before this rule) are pruned."""
BATCH_BUDGET: Final = CallBudget(calls=50, window_ms=15 * 60_000)
"""The batch listing's documented budget: 50 calls per 15 minutes."""
STREAM_BUDGET: Final = CallBudget(calls=300, window_ms=3600_000)
"""The stream endpoint's documented budget: 300 calls per hour."""
_MAX_TOKEN_CHARS: Final = 8192
_MAX_TYPE_CHARS: Final = 64


def _minute(time_ms: int) -> int:
    return time_ms - time_ms % BUCKET_MS


@dataclass(frozen=True, slots=True)
class KeysSnapshot:
    """The keys of one type as one checkpoint holds them: minute -> that minute's keys as one string. Read-only."""

    texts: Mapping[int, str]

    @classmethod
    def empty(cls) -> KeysSnapshot:
        """No keys."""
        return cls(MappingProxyType({}))

    def __len__(self) -> int:
        return sum(len(text) for text in self.texts.values()) // KEY_CHARS

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``KeySnapshot``: ``{"bucket_ms": 60000, "buckets": {"<minute ms>": "<key><key>..."}}``."""
        return {"bucket_ms": BUCKET_MS, "buckets": {str(minute): self.texts[minute] for minute in sorted(self.texts)}}

    @classmethod
    def parse(cls, data: object, where: str) -> KeysSnapshot:
        """Strictly parse the JSON form (the rules of ``KeySnapshot.parse``), without an object per key.

        Raises:
            InvalidState: another bucket width, a minute that is no epoch-ms minute, or key text that is not whole
                16-character base64url keys.
        """
        texts = parse_buckets(data, where)
        return cls(MappingProxyType(texts))


class KeyBuckets:
    """The live key set of one type in one run (see the module docstring).

    Args:
        snapshot: The keys the checkpoint held.
    """

    def __init__(self, snapshot: KeysSnapshot | None = None) -> None:
        self._texts: dict[int, str] = dict((snapshot or KeysSnapshot.empty()).texts)
        self._hot: dict[int, set[str]] = {}
        self._added: dict[int, list[str]] = {}
        self._count = sum(len(text) for text in self._texts.values()) // KEY_CHARS

    def __len__(self) -> int:
        return self._count

    def _members(self, minute: int) -> set[str]:
        members = self._hot.get(minute)
        if members is None:
            text = self._texts.get(minute, "")
            members = {text[i : i + KEY_CHARS] for i in range(0, len(text), KEY_CHARS)}
            self._hot[minute] = members
        return members

    def seen(self, key: str, time_ms: int) -> bool:
        """Whether ``key`` (of a record of ``time_ms``) is kept."""
        return key in self._members(_minute(time_ms))

    def add(self, key: str, time_ms: int) -> bool:
        """Keep ``key``; False when it was kept already."""
        minute = _minute(time_ms)
        members = self._members(minute)
        if key in members:
            return False
        members.add(key)
        self._added.setdefault(minute, []).append(key)
        self._count += 1
        return True

    def snapshot(self, now_ms: int) -> KeysSnapshot:
        """Fold in the keys added since the last settle, prune, and return what a checkpoint holds."""
        self.settle(now_ms)
        return KeysSnapshot(MappingProxyType(dict(self._texts)))

    def settle(self, now_ms: int) -> None:
        """Fold in the keys added since the last settle into their minutes' text, prune, and let go of the sets of
        minutes not touched since: called after every file, so memory follows a file, not a listing page."""
        texts = self._texts
        for minute, keys in self._added.items():
            texts[minute] = texts.get(minute, "") + "".join(keys)
        touched = set(self._added)
        self._added = {}
        # buckets that this page did not touch are not asked again soon: their sets go, their text stays
        for minute in [m for m in self._hot if m not in touched]:
            del self._hot[minute]
        self._prune(now_ms)

    def _prune(self, now_ms: int) -> None:
        texts = self._texts
        if not texts:
            return
        ceiling = now_ms + FUTURE_SLACK_MS
        newest = max((m for m in texts if m <= ceiling), default=None)
        floor = None if newest is None else newest - KEY_HORIZON_MS
        drop = [m for m in texts if m > ceiling or (floor is not None and m < floor)]
        if self._count - sum(len(texts[m]) for m in drop) // KEY_CHARS > MAX_KEYS_PER_TYPE:
            kept = 0
            for minute in sorted((m for m in texts if m not in set(drop)), reverse=True):
                kept += len(texts[minute]) // KEY_CHARS
                if kept > MAX_KEYS_PER_TYPE:
                    drop.append(minute)
        for minute in drop:
            self._count -= len(texts.pop(minute)) // KEY_CHARS
            self._hot.pop(minute, None)


@dataclass(frozen=True, slots=True)
class BatchCursor:
    """Where the batch listing of one type stands.

    Attributes:
        next_page: The last committed ``@nextPage`` token (kept when the type is caught up: losing it re-lists
            seven days); ``None`` before the type's first page.
        listed_at_ms: When the type was last listed (the least recently listed type goes first).
        caught_up: Whether the last listing said ``isCaughtUp``.
    """

    next_page: str | None = None
    listed_at_ms: int | None = None
    caught_up: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"next_page": self.next_page, "listed_at_ms": self.listed_at_ms, "caught_up": self.caught_up}

    @classmethod
    def parse(cls, data: object, where: str) -> BatchCursor:
        obj = exact_object(data, where, {"next_page", "listed_at_ms", "caught_up"})
        return cls(
            next_page=_token(obj["next_page"], f"{where}.next_page"),
            listed_at_ms=epoch_ms(obj["listed_at_ms"], f"{where}.listed_at_ms", optional=True),
            caught_up=_flag(obj["caught_up"], f"{where}.caught_up"),
        )


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """Where the stream-mode listing stands.

    Attributes:
        types: The log types the token was issued for (a token is bound to its set of types).
        next_page: The last committed ``@nextPage`` token.
        token_ms: When that token was received: one older than the stream's 24 hours is not used.
        cursor_ms: The newest record time delivered (or the start of the first window): where a window restarts.
    """

    types: tuple[str, ...] = ()
    next_page: str | None = None
    token_ms: int | None = None
    cursor_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "types": list(self.types),
            "next_page": self.next_page,
            "token_ms": self.token_ms,
            "cursor_ms": self.cursor_ms,
        }

    @classmethod
    def parse(cls, data: object, where: str) -> StreamCursor:
        obj = exact_object(data, where, {"types", "next_page", "token_ms", "cursor_ms"})
        types = obj["types"]
        if not isinstance(types, list) or not all(_is_type_name(t) for t in types):
            raise InvalidState(f"{where}.types must be a list of log type names")
        return cls(
            types=tuple(types),
            next_page=_token(obj["next_page"], f"{where}.next_page"),
            token_ms=epoch_ms(obj["token_ms"], f"{where}.token_ms", optional=True),
            cursor_ms=epoch_ms(obj["cursor_ms"], f"{where}.cursor_ms", optional=True),
        )


@dataclass(frozen=True)
class SiemState:
    """The SIEM stream's slice of the checkpoint.

    Attributes:
        batch: Log type -> its batch cursor.
        stream: The stream-mode cursor (``None`` before the first stream-mode run).
        keys: Log type -> the content keys of its recent records.
        batch_calls: Times of the batch listing calls in the budget's window.
        stream_calls: Times of the stream calls in the budget's window.
    """

    batch: Mapping[str, BatchCursor] = field(default_factory=dict)
    stream: StreamCursor | None = None
    keys: Mapping[str, KeysSnapshot] = field(default_factory=dict)
    batch_calls: tuple[int, ...] = ()
    stream_calls: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch", MappingProxyType(dict(self.batch)))
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (types sorted)."""
        return {
            "batch": {name: self.batch[name].to_dict() for name in sorted(self.batch)},
            "stream": self.stream.to_dict() if self.stream is not None else None,
            "keys": {name: self.keys[name].to_dict() for name in sorted(self.keys)},
            "batch_calls": list(self.batch_calls),
            "stream_calls": list(self.stream_calls),
        }

    @classmethod
    def parse(cls, data: object, where: str) -> SiemState:
        """Strictly parse the JSON form (``InvalidState`` naming ``where``)."""
        obj = exact_object(data, where, {"batch", "stream", "keys", "batch_calls", "stream_calls"})
        batch = _named(obj["batch"], f"{where}.batch", BatchCursor.parse)
        stream = None if obj["stream"] is None else StreamCursor.parse(obj["stream"], f"{where}.stream")
        keys = _named(obj["keys"], f"{where}.keys", KeysSnapshot.parse)
        return cls(
            batch=batch,
            stream=stream,
            keys=keys,
            batch_calls=_times(obj["batch_calls"], f"{where}.batch_calls", BATCH_BUDGET.calls),
            stream_calls=_times(obj["stream_calls"], f"{where}.stream_calls", STREAM_BUDGET.calls),
        )


def _is_type_name(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_TYPE_CHARS and value.isprintable()


def _named(value: object, where: str, parse: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidState(f"{where} must be an object")
    out = {}
    for name, item in value.items():
        if not _is_type_name(name):
            raise InvalidState(f"{where} has a key that is no log type name")
        out[name] = parse(item, f"{where}[{name!r}]")
    return out


def _token(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_TOKEN_CHARS or not value.isprintable():
        raise InvalidState(f"{where} must be a page token (printable text up to {_MAX_TOKEN_CHARS} characters) or null")
    return value


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidState(f"{where} must be true or false")
    return value


def _times(value: object, where: str, most: int) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > most:
        raise InvalidState(f"{where} must be a list of at most {most} epoch-ms times")
    times: Iterable[int | None] = (epoch_ms(item, f"{where}[{i}]") for i, item in enumerate(value))
    return tuple(sorted(t for t in times if t is not None))
