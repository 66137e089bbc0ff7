"""The connector's durable state: a versioned checkpoint of per-stream states (``connector.store`` writes it).

Version 2: ``{"version": 2, "updated_at_ms": ..., "streams": {name: state}}``. Each registered stream
(``connector.streams``) parses and writes its own slice with its own schema: positions and record keys, never
configuration or credentials. The state of a stream this connector does not know (a newer connector wrote it,
or an extension that is not installed) is kept as it is and written back unchanged, never dropped.

Version 1 (``{"version": 1, "audit": {...}, "inventory": {...}}``) is read and migrated on load: its audit slice
becomes stream ``audit`` and its inventory slice stream ``user_management``, unchanged, so the cursor, the ids in
the overlap and the membership snapshot all carry over (no re-delivery, no lost diff).

``from_dict`` is strict (unknown keys, wrong types, unknown version are errors): a checkpoint that is not
fully understood must stop the run rather than silently restart collection from scratch or skip data. Such
a file is never overwritten; the error tells the operator how to start over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypeVar

from connector.errors import CheckpointError
from connector.streams.base import Stream
from connector.streams.directory_state import GroupMembership, InventoryState
from connector.streams.registry import streams as registered_streams
from connector.streams.state import InvalidState, StreamState, epoch_ms, exact_object
from connector.streams.window import WindowState

__all__ = [
    "CHECKPOINT_VERSION",
    "AuditState",
    "Checkpoint",
    "GroupMembership",
    "InventoryState",
    "RawState",
    "corrupt",
]

_log = logging.getLogger("connector.checkpoint")

CHECKPOINT_VERSION: Final = 2
"""The checkpoint layout this connector writes; version 1 is read and migrated."""

V1_STREAMS: Final = {"audit": "audit", "inventory": "user_management"}
"""Version 1's top-level keys and the stream each became."""

AuditState = WindowState
"""The audit stream's state (a window state with audit ids): the name version 1 used."""

HOST_SOURCE = "host checkpoint"


@dataclass(frozen=True)
class RawState:
    """The stored state of a stream this connector has no descriptor for, kept as it was read."""

    data: Any

    def to_dict(self) -> Any:
        """The state exactly as read (a fresh copy)."""
        return json.loads(json.dumps(self.data))


@dataclass(frozen=True)
class Checkpoint:
    """Everything the connector remembers between runs: one state per stream.

    Attributes:
        version: Layout version (always ``CHECKPOINT_VERSION`` once loaded).
        streams: Stream name -> its state (``RawState`` for a stream without a descriptor here).
        updated_at_ms: When this checkpoint was produced (epoch ms), for operators reading the file.
    """

    version: int = CHECKPOINT_VERSION
    streams: Mapping[str, StreamState] = field(default_factory=dict)
    updated_at_ms: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", MappingProxyType(dict(self.streams)))

    @classmethod
    def of(cls, *, updated_at_ms: int | None = None, **states: StreamState) -> Checkpoint:
        """A checkpoint of the states given by stream name (``Checkpoint.of(audit=AuditState(...))``)."""
        return cls(streams=states, updated_at_ms=updated_at_ms)

    def state(self, stream: Stream) -> StreamState:
        """``stream``'s state, or its initial state when this checkpoint has none."""
        state = self.streams.get(stream.name)
        return state if state is not None else stream.initial_state()

    def with_state(self, name: str, state: StreamState, updated_at_ms: int) -> Checkpoint:
        """A copy with stream ``name``'s state replaced (every other stream's kept)."""
        return Checkpoint(streams={**self.streams, name: state}, updated_at_ms=updated_at_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the exact content of the checkpoint file."""
        return {
            "version": self.version,
            "updated_at_ms": self.updated_at_ms,
            "streams": {name: state.to_dict() for name, state in sorted(self.streams.items())},
        }

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its JSON form and rebuilt through ``from_dict`` (its read-only maps are not picklable, and
        the copy is checked as a loaded checkpoint is)."""
        return (_checkpoint_from_dict, (self.to_dict(),))

    @classmethod
    def from_dict(
        cls, data: object, *, source: str = HOST_SOURCE, streams: Iterable[Stream] | None = None
    ) -> Checkpoint:
        """Strictly parse a checkpoint of version 2, or migrate one of version 1.

        Args:
            data: The decoded JSON (or the host's stored state).
            source: What to call the origin in errors: the file path, or ``"host checkpoint"``.
            streams: The stream descriptors whose states are parsed; default the registered ones. The state of
                any other stream is kept as a ``RawState``.

        Raises:
            CheckpointError: The data is no checkpoint this connector reads. The message names ``source`` and
                says how to start over; the connector never overwrites such data by itself.
        """
        version = data.get("version") if isinstance(data, dict) else None
        if isinstance(data, dict) and "version" in data and not (type(version) is int and version in (1, 2)):
            version = data["version"]
            raise CheckpointError(
                f"{source}: checkpoint version {version!r} is not supported (this connector reads versions 1 and "
                f"{CHECKPOINT_VERSION}). It may come from a newer connector: upgrade, or move the checkpoint "
                "away to start over from initial_lookback_hours. The connector will not overwrite it.",
                path=None if source == HOST_SOURCE else source,
            )
        known = {stream.name: stream for stream in (registered_streams() if streams is None else streams)}
        return _parse(source, lambda: cls._parse(data, known))

    @classmethod
    def _parse(cls, data: object, known: Mapping[str, Stream]) -> Checkpoint:
        if isinstance(data, dict) and type(data.get("version")) is int and data["version"] == 1:
            return cls._migrate_v1(data, known)
        obj = exact_object(data, "checkpoint", {"version", "updated_at_ms", "streams"})
        epoch_ms(obj["version"], "version")
        updated = epoch_ms(obj["updated_at_ms"], "updated_at_ms", optional=True)
        raw = obj["streams"]
        if not isinstance(raw, dict):
            raise InvalidState("streams must be an object")
        states = {name: _state(known.get(name), value, f"streams.{name}") for name, value in raw.items()}
        return cls(streams=states, updated_at_ms=updated)

    @classmethod
    def _migrate_v1(cls, data: Mapping[str, Any], known: Mapping[str, Stream]) -> Checkpoint:
        """Version 1's two slices become the states of the streams they belonged to, unchanged."""
        obj = exact_object(data, "checkpoint", {"version", *V1_STREAMS, "updated_at_ms"})
        updated = epoch_ms(obj["updated_at_ms"], "updated_at_ms", optional=True)
        states = {name: _state(known.get(name), obj[key], key) for key, name in V1_STREAMS.items()}
        _log.info("checkpoint version 1 read; it is written as version 2 at the next commit")
        return cls(streams=states, updated_at_ms=updated)


def _state(stream: Stream | None, value: object, where: str) -> StreamState:
    if stream is None:
        try:
            return RawState(json.loads(json.dumps(value)))
        except (TypeError, ValueError, RecursionError):
            raise InvalidState(f"{where} is not JSON data") from None
    return stream.parse_state(value, where)


_T = TypeVar("_T")


def _parse(source: str, parse: Callable[[], _T]) -> _T:
    try:
        return parse()
    except InvalidState as exc:
        raise corrupt(source, str(exc)) from None


def corrupt(source: str, detail: str) -> CheckpointError:
    """The error for a checkpoint that is not fully understood: it names the source and says how to start over."""
    return CheckpointError(
        f"{source}: checkpoint is corrupt ({detail}). Move it away to start over from initial_lookback_hours "
        "(records already delivered may be sent again); the connector will not overwrite it.",
        path=None if source == HOST_SOURCE else source,
    )


def _checkpoint_from_dict(data: dict[str, Any]) -> Checkpoint:
    return Checkpoint.from_dict(data)
