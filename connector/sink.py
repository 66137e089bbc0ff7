"""Where the CLI puts events: OCSF NDJSON, flushed and fsynced per batch before the checkpoint is committed."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import IO

import orjson

from connector.collector import Batch
from connector.errors import ConnectorError

__all__ = ["NdjsonSink"]

# fsync on a pipe, a terminal or /dev/null fails with these: such a stream has nothing to make durable.
_NOT_SYNCABLE = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTTY})


class NdjsonSink:
    """Writes batches as one JSON event per line: all tables to one stream, or one ``<table>.ndjson`` per table.

    Args:
        output: a file path, ``-`` for stdout, or (with ``per_table``) a directory.
        per_table: write ``<directory>/<table>.ndjson`` files instead of one stream.
    """

    def __init__(self, output: str, *, per_table: bool = False) -> None:
        self._per_table = per_table
        self._files: dict[str, IO[bytes]] = {}
        self._directory = Path(output) if per_table else None
        self._single: IO[bytes] | None = None
        # Remembered here: sys.stdout may be swapped later (redirect_stdout, test capture), and the stream
        # this sink writes to must never be closed or fsynced as if it were a file of ours.
        self._stdout = not per_table and output == "-"
        if self._directory is not None:
            try:
                self._directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._error(self._directory, exc, "create the output folder") from None
        elif self._stdout:
            self._single = sys.stdout.buffer
        else:
            try:
                Path(output).parent.mkdir(parents=True, exist_ok=True)
                self._single = open(output, "ab")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise self._error(Path(output), exc, "open the output file") from None

    def write(self, batch: Batch) -> None:
        """Append the batch's events and make them durable (flush + fsync) before returning.

        Raises:
            ConnectorError: the events could not be written or synced; the caller must not commit the
                batch's checkpoint (the next run delivers them again).
        """
        if not batch.events or batch.table is None:
            return
        stream = self._stream(batch.table)
        try:
            stream.write(b"".join(orjson.dumps(event) + b"\n" for event in batch.events))
            stream.flush()
            if not self._stdout:
                _fsync(stream)
        except BrokenPipeError:
            raise  # the reader went away (`run | head`): the CLI ends quietly
        except OSError as exc:
            raise self._error(Path(getattr(stream, "name", "-")), exc, "write events to") from None

    def _stream(self, table: str) -> IO[bytes]:
        if self._single is not None:
            return self._single
        stream = self._files.get(table)
        if stream is None:
            assert self._directory is not None
            path = self._directory / f"{table}.ndjson"
            try:
                stream = self._files[table] = open(path, "ab")  # noqa: SIM115 - closed in close()
            except OSError as exc:
                raise self._error(path, exc, "open the output file") from None
        return stream

    @staticmethod
    def _error(path: Path, exc: OSError, action: str) -> ConnectorError:
        return ConnectorError(
            f"cannot {action} {path}: {exc.strerror or exc}; the checkpoint was not advanced past these events, "
            "so the next run delivers them again."
        )

    def paths(self) -> list[Path]:
        """The per-table files written so far."""
        return sorted(Path(f.name) for f in self._files.values())

    def close(self) -> None:
        """Close every file this sink opened (never stdout)."""
        for stream in self._files.values():
            stream.close()
        if self._single is not None and not self._stdout:
            self._single.close()


def _fsync(stream: IO[bytes]) -> None:
    try:
        os.fsync(stream.fileno())
    except OSError as exc:
        if exc.errno not in _NOT_SYNCABLE:
            raise
