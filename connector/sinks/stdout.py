"""The standard output as a sink: one JSON event per line, flushed per batch (``run --output -``).

A pipe or a terminal has nothing to make durable: each batch is flushed when written, and what the reader has taken
is as far as the connector can vouch. A reader that goes away (``run | head``) raises ``BrokenPipeError`` for the
CLI to end quietly; any other write error is a ``SinkError``. The stream is never closed: it is not this sink's.
"""

from __future__ import annotations

import errno
import sys
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
        try:
            self._stream.write(data)
            self._stream.flush()
        except BrokenPipeError:
            raise  # the reader went away (`run | head`): the CLI ends quietly
        except OSError as exc:
            raise _error(exc) from None

    def sync(self) -> None:
        """Nothing to do: every batch was flushed by ``write``, and a pipe or a terminal cannot be fsynced.

        Not flushing again matters after a failed write: the bytes left in the buffer would fail again (a reader
        gone, a full disk) and stop the runner from committing what earlier, whole writes delivered.
        """

    def close(self) -> None:
        """Nothing to release: the stream stays open (it is not this sink's)."""


def _error(exc: OSError) -> SinkError:
    name = errno.errorcode.get(exc.errno or 0)
    detail = (exc.strerror or str(exc)) + (f" [{name}]" if name else "")
    return SinkError(
        f"cannot write events to the standard output: {detail}; the checkpoint was not advanced past these "
        "events, so the next run delivers them again.",
        path="-",
        errno=exc.errno,
    )
