"""The standard output as a sink: one JSON event per line, flushed per batch (``run --output -``).

A pipe or a terminal has nothing to make durable: ``sync`` flushes, and what the reader has taken is as far as the
connector can vouch. A reader that goes away (``run | head``) raises ``BrokenPipeError`` for the CLI to end quietly;
any other write error is a ``SinkError``. The stream is never closed: it is not this sink's.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import IO

import orjson

from connector.errors import SinkError
from connector.events import Batch

__all__ = ["StdoutSink"]


class StdoutSink:
    """Writes every table's events to the standard output (bound when the sink is built)."""

    def __init__(self) -> None:
        # Remembered here: sys.stdout may be swapped later (redirect_stdout, test capture).
        self._stream: IO[bytes] = sys.stdout.buffer

    def write(self, batch: Batch) -> None:
        """Write and flush the batch's events.

        Raises:
            BrokenPipeError: the reader went away.
            SinkError: any other write error.
        """
        if not batch.events or batch.table is None:
            return
        data = b"".join(orjson.dumps(event) + b"\n" for event in batch.events)
        self._do(lambda: self._stream.write(data))
        self.sync()

    def sync(self) -> None:
        """Flush (there is nothing to fsync on a pipe or a terminal)."""
        self._do(self._stream.flush)

    @staticmethod
    def _do(operation: Callable[[], object]) -> None:
        try:
            operation()
        except BrokenPipeError:
            raise  # the reader went away (`run | head`): the CLI ends quietly
        except OSError as exc:
            raise _error(exc) from None

    def close(self) -> None:
        """Flush; the stream stays open."""
        self.sync()


def _error(exc: OSError) -> SinkError:
    name = errno.errorcode.get(exc.errno or 0)
    detail = (exc.strerror or str(exc)) + (f" [{name}]" if name else "")
    return SinkError(
        f"cannot write events to the standard output: {detail}; the checkpoint was not advanced past these "
        "events, so the next run delivers them again.",
        path="-",
        errno=exc.errno,
    )
