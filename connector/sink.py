"""Where the CLI puts events: OCSF NDJSON, one JSON event per line.

``write`` appends a batch and flushes it (a reader such as ``tail -f`` sees the lines at once, and OS errors
surface at write time) but does not fsync. ``sync`` fsyncs every file written to since the previous sync (and
the folder of a file it created, so the new name survives a crash too); the
caller syncs right before it commits a checkpoint, so every event the checkpoint covers is on disk before the
checkpoint is. That is one fsync per file per commit instead of one per table per API page. ``close`` syncs too.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import IO

import orjson

from connector.collector import Batch
from connector.durability import fsync_directory
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
        # Files written to since the last sync (an ordered set). stdout is never in it: it is not ours to sync.
        self._dirty: dict[IO[bytes], None] = {}
        # Folders in which this sink created a file since the last sync: the new entry must be durable too.
        self._new_entries: dict[Path, None] = {}
        # The first failed sync: later syncs raise it again. After fsync reported an error, Linux may have dropped
        # the unwritten pages and a second fsync can succeed without them, so no later sync can vouch for them.
        self._sync_error: ConnectorError | None = None
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
                self._single = self._open(Path(output))
            except OSError as exc:
                raise self._error(Path(output), exc, "open the output file") from None

    def write(self, batch: Batch) -> None:
        """Append the batch's events and flush them to the OS; they are not durable until ``sync`` returns.

        Raises:
            ConnectorError: the events could not be written; the caller must not commit the batch's checkpoint
                (the next run delivers them again).
        """
        if not batch.events or batch.table is None:
            return
        stream = self._stream(batch.table)
        if not self._stdout:
            self._dirty[stream] = None  # before writing: a failed write may still have left bytes in the file
        try:
            stream.write(b"".join(orjson.dumps(event) + b"\n" for event in batch.events))
            stream.flush()
        except BrokenPipeError:
            raise  # the reader went away (`run | head`): the CLI ends quietly
        except OSError as exc:
            raise self._error(Path(getattr(stream, "name", "-")), exc, "write events to") from None

    def sync(self) -> None:
        """Make everything written so far durable: fsync each file written to since the last sync.

        Call it right before committing a checkpoint that covers the written batches. stdout, pipes and devices
        that cannot be fsynced are skipped; a sync with nothing new written does nothing.

        Raises:
            ConnectorError: a file could not be synced; the caller must not commit the checkpoint (the next run
                delivers the events again). Every later ``sync`` (and ``close``) raises it again.
        """
        if self._sync_error is not None:
            raise self._sync_error
        while self._dirty:
            stream = next(iter(self._dirty))
            try:
                _fsync(stream)
            except OSError as exc:
                self._sync_error = self._error(Path(getattr(stream, "name", "-")), exc, "sync events to")
                raise self._sync_error from None
            del self._dirty[stream]
        while self._new_entries:  # after the files: a new file's name is durable once its folder is synced
            folder = next(iter(self._new_entries))
            fsync_directory(folder)
            del self._new_entries[folder]

    def _stream(self, table: str) -> IO[bytes]:
        if self._single is not None:
            return self._single
        stream = self._files.get(table)
        if stream is None:
            assert self._directory is not None
            path = self._directory / f"{table}.ndjson"
            try:
                stream = self._files[table] = self._open(path)
            except OSError as exc:
                raise self._error(path, exc, "open the output file") from None
        return stream

    def _open(self, path: Path) -> IO[bytes]:
        """Open ``path`` for appending, noting its folder when the file is new (``sync`` makes the entry durable)."""
        created = not path.exists()
        stream = open(path, "ab")  # noqa: SIM115 - closed in close()
        if created:
            self._new_entries[path.parent] = None
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
        """Sync (see ``sync``), then close every file this sink opened (never stdout).

        The files are closed even when the sync fails; its ``ConnectorError`` is raised after that.
        """
        try:
            self.sync()
        finally:
            self._dirty.clear()
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
