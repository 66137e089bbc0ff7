"""What flows between the layers: a mapped event, and a batch of events with the checkpoint that covers it.

Neutral on purpose: the mapper produces ``MappedEvent`` s, the streams pack them into ``Batch`` es, the runner hands
batches to the sinks and commits their checkpoints. None of those needs to import another to agree on the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from connector.checkpoint import Checkpoint

__all__ = ["Batch", "MappedEvent"]


class MappedEvent(NamedTuple):
    """One OCSF event and where it goes: ``table`` (and ``class_uid``) and the record it came from.

    A named tuple rather than a frozen dataclass: one is built per event, and this is 3x cheaper to build.
    """

    table: str
    class_uid: int
    event: dict[str, Any]
    record_id: str


@dataclass(frozen=True)
class Batch:
    """Events for one table, and the checkpoint to commit once the host has durably accepted them (and all before).

    ``checkpoint`` is None when there is nothing new to commit; ``events`` is empty for a checkpoint-only batch.
    """

    table: str | None
    class_uid: int | None
    events: list[dict[str, Any]]
    checkpoint: Checkpoint | None
