"""Strict parsing of a stream's slice of the checkpoint, and the protocol each stream's state follows.

A stream's state is a small frozen object with ``to_dict()`` (its JSON form) and a ``parse`` class method that
refuses anything it does not fully understand: unknown keys, wrong types, numbers that are no epoch-ms time. A
checkpoint half understood must stop the run, never restart collection from scratch or skip data
(``connector.checkpoint`` turns ``InvalidState`` into a ``CheckpointError`` naming the file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from connector.timefmt import MAX_EPOCH_MS

__all__ = ["InvalidState", "StreamState", "epoch_ms", "exact_object"]


class InvalidState(Exception):
    """A structural problem in a stored state; the message names where (``streams.audit.cursor_ms``)."""


class StreamState(Protocol):
    """What the checkpoint stores for one stream."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (deterministic: sorted where order carries no meaning)."""
        ...


def epoch_ms(value: object, where: str, *, optional: bool = False) -> int | None:
    """A non-negative integer no larger than ``MAX_EPOCH_MS``: every number in a checkpoint is a time in epoch
    milliseconds (or the small version), and a larger one is no time at all (year 10000 and beyond) that would
    only fail later, far from the file that holds it.

    Raises:
        InvalidState: anything else (``None`` only when ``optional``).
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EPOCH_MS:
        raise InvalidState(
            f"{where} must be an integer from 0 to {MAX_EPOCH_MS} (epoch ms up to 9999-12-31)"
            f"{' or null' if optional else ''}"
        )
    return value


def exact_object(value: object, where: str, keys: set[str]) -> Mapping[str, Any]:
    """``value`` as an object with exactly ``keys``.

    Raises:
        InvalidState: not an object, or a key missing or unexpected.
    """
    if not isinstance(value, dict):
        raise InvalidState(f"{where} must be an object")
    extra = set(value) - keys
    missing = keys - set(value)
    if extra:
        raise InvalidState(f"{where} has unexpected keys {sorted(extra)}")
    if missing:
        raise InvalidState(f"{where} is missing keys {sorted(missing)}")
    return value
