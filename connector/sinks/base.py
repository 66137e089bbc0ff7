"""The sink protocol: where batches go, and what ``sync`` promises.

A sink takes batches (``write``), makes everything written so far durable (``sync``) and releases what it holds
(``close``, which syncs first). The runner commits a checkpoint only after ``sync`` returned on every sink, so a
sink must not return from ``sync`` before the events it was given would survive a crash of this process and the
machine (an fsync, an acknowledged upload, an indexer acknowledgement). Every failure is a ``SinkError`` naming the
sink, after which the runner commits nothing more.

A sink for which every ``sync`` has a cost beyond its latency (the Parquet sink closes a file at each one) may set
``sync_interval_seconds``: the runner then commits no more often than that during a pass (``runner.commit_interval``),
trading a longer re-delivery after a crash for fewer, larger files. It still syncs and commits at the end of a pass.
"""

from __future__ import annotations

from typing import Protocol

from connector.errors import SinkError
from connector.events import Batch

__all__ = ["Sink", "SinkError"]


class Sink(Protocol):
    """A destination for batches."""

    def write(self, batch: Batch) -> None:
        """Take the batch's events (a batch without events or table does nothing). Not durable until ``sync``.

        Raises:
            SinkError: the events were not taken; the caller must not commit the batch's checkpoint.
        """
        ...

    def sync(self) -> None:
        """Make everything written so far durable.

        Raises:
            SinkError: it is not; the caller must not commit (the next run delivers the events again).
        """
        ...

    def close(self) -> None:
        """Sync, then release files and connections (its ``SinkError`` is raised after releasing them)."""
        ...
