"""The registered streams: the built-in ones, in collection order, and any a test or an extension adds.

Registering checks the descriptor against ``manifest.json`` (its event type and tables must be declared there), so
a stream cannot emit into a table the host does not know or be selected by a value the host cannot offer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connector.registry import registry
from connector.streams.audit import AUDIT
from connector.streams.base import MapRecords, Stream
from connector.streams.directory import DIRECTORY
from connector.streams.siem import SIEM
from connector.streams.ttp import STREAMS as TTP_STREAMS

__all__ = ["map_sources", "register", "selected", "stream", "streams", "unregister"]

_STREAMS: dict[str, Stream] = {}


def register(descriptor: Stream, *, event_types: Iterable[str] | None = None) -> None:
    """Add a stream (collected after the ones already registered).

    Args:
        descriptor: The stream.
        event_types: The event type values it may use besides the manifest's (a test's made-up stream);
            ``None``: the manifest's only.

    Raises:
        ValueError: the name is taken, or the event type or a table is not declared in ``manifest.json``.
    """
    facts = registry()
    allowed = set(facts.event_types) | set(event_types or ())
    if descriptor.name in _STREAMS:
        raise ValueError(f"a stream named {descriptor.name!r} is already registered")
    if descriptor.name not in allowed:
        raise ValueError(f"stream {descriptor.name!r} is not an event type of manifest.json")
    unknown = [table for table in descriptor.tables if table not in facts.tables]
    if unknown:
        raise ValueError(f"stream {descriptor.name!r} emits tables manifest.json does not declare: {unknown}")
    _STREAMS[descriptor.name] = descriptor


def unregister(name: str) -> None:
    """Remove a stream registered by ``register`` (tests)."""
    _STREAMS.pop(name, None)


def streams() -> tuple[Stream, ...]:
    """Every registered stream, in collection order."""
    return tuple(_STREAMS.values())


def stream(name: str) -> Stream:
    """The stream selected by event type ``name``; KeyError naming the known ones otherwise."""
    try:
        return _STREAMS[name]
    except KeyError:
        raise KeyError(f"no stream {name!r} (known: {', '.join(_STREAMS)})") from None


def selected(event_types: Iterable[str]) -> tuple[Stream, ...]:
    """The streams of ``event_types``, in the order given."""
    return tuple(stream(name) for name in event_types)


def map_sources() -> Mapping[str, MapRecords]:
    """What ``map --source`` accepts: every stream's record sources."""
    sources: dict[str, MapRecords] = {}
    for descriptor in _STREAMS.values():
        sources.update(descriptor.map_sources)
    return sources


for _builtin in (AUDIT, DIRECTORY, *TTP_STREAMS, SIEM):
    register(_builtin)
