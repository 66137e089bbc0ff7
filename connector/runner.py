"""Write -> sync -> commit: hand batches to every sink and commit a checkpoint only once all of them made it durable.

A batch's checkpoint covers that batch and every batch before it, so committing only the newest one every
``commit_interval`` seconds (and always at the end, or when the pass fails after writing) keeps delivery
at-least-once while a catch-up does not rewrite and fsync the checkpoint after every page. Every commit is
preceded by ``sync()`` of every sink, in order: the events reach each destination durably before the checkpoint
that covers them. A sync or save that fails is not tried again in this pass, and the checkpoint is then not
committed: the next run delivers those events again, with the same ``metadata.uid``.

With several outputs (``run --output ... --output ...``) the syncs go one sink after the other, and a sink that
fails (its ``SinkError`` names it; exit code 7) ends the pass: nothing is committed past it, whether the sinks
before it synced or not. A process killed between two sinks' syncs has committed nothing past the last full
commit either, so the next run delivers those events to every sink again (``tests/test_outputs_e2e.py`` kills one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

from connector.checkpoint import Checkpoint
from connector.errors import ConnectorError
from connector.events import Batch
from connector.sinks.base import Sink

__all__ = ["COMMIT_INTERVAL_SECONDS", "CheckpointSaver", "commit_interval", "deliver"]

_log = logging.getLogger("connector.runner")

COMMIT_INTERVAL_SECONDS: Final = 2.0


class CheckpointSaver(Protocol):
    """Where commits go (``CheckpointStore``, or a host's own store)."""

    def save(self, checkpoint: Checkpoint) -> None:
        """Durably replace the committed checkpoint."""
        ...


def commit_interval(sinks: Sequence[Sink], default: float = COMMIT_INTERVAL_SECONDS) -> float:
    """How often ``deliver`` commits for these sinks: ``default``, or the longest ``sync_interval_seconds`` a sink
    asks for (``connector.sinks.base``)."""
    asked = [getattr(sink, "sync_interval_seconds", 0.0) for sink in sinks]
    return max([default, *(value for value in asked if isinstance(value, int | float))])


def _sync_all(sinks: Sequence[Sink]) -> None:
    for sink in sinks:
        sink.sync()


def deliver(
    batches: Iterable[Batch],
    sinks: Sequence[Sink],
    store: CheckpointSaver,
    *,
    commit_interval: float = COMMIT_INTERVAL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Write every batch to every sink and commit the checkpoints they carry (see the module docstring).

    Raises:
        ConnectorError: a sink, the store or the pass failed; what was committed before stays committed.
    """
    pending: Checkpoint | None = None
    last_commit = clock()
    try:
        for batch in batches:
            for sink in sinks:
                sink.write(batch)
            if batch.checkpoint is not None:
                pending = batch.checkpoint
            if pending is not None and clock() - last_commit >= commit_interval:
                checkpoint, pending = pending, None  # a failed sync or save is not retried below
                _sync_all(sinks)
                store.save(checkpoint)
                last_commit = clock()
    except BaseException:
        if pending is not None:  # its batches are written: committing it re-delivers less after a failure
            try:
                _sync_all(sinks)
            except ConnectorError as sync_error:  # not committed; the pass's own error is the one reported
                _log.error("checkpoint not committed: the output could not be synced", extra={"error": str(sync_error)})
            else:
                store.save(pending)
        raise
    if pending is not None:
        _sync_all(sinks)
        store.save(pending)


def close_all(sinks: Sequence[Sink], *, after: BaseException | None = None) -> None:
    """Close every sink (each syncs first). With ``after`` (the run is already failing), close errors are logged
    and the earlier error stays the one reported; otherwise the first close error is raised once all are closed.
    """
    first: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as close_error:
            if after is not None:
                if close_error is not after:  # a failed sync raises the same error again
                    _log.error("output not synced at close", extra={"error": str(close_error)})
            elif first is None:
                first = close_error
    if first is not None:
        raise first
