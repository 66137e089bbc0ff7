"""OCSF NDJSON files, one JSON event per line: one file for every table, or one file per table.

``write`` appends a batch and flushes it (a reader such as ``tail -f`` sees the lines at once, and OS errors
surface at write time) but does not fsync. ``sync`` fsyncs every file written to since the previous sync (and
the folder of a file it created, so the new name survives a crash too); the
caller syncs right before it commits a checkpoint, so every event the checkpoint covers is on disk before the
checkpoint is. That is one fsync per file per commit instead of one per table per API page. ``close`` syncs too.

No torn line survives: a batch that fails half-written (ENOSPC after some bytes) is cut off again (``ftruncate``
to the file's size before the batch), and a file that does not end in ``\n`` when opened (a crash in the middle of
a write) is cut back to its last ``\n``. Cutting, rather than starting a new line after the fragment, loses
nothing: every write is whole lines, a checkpoint is committed only after ``sync`` of writes that completed, so
bytes after the last newline belong to a batch no checkpoint covers, and the next run delivers it again; a kept
fragment would be an invalid JSON line in the output forever, for every reader to trip on. Every failure is a
``SinkError`` (exit code 7), which names ENOSPC or EDQUOT when the disk or the quota is full.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path
from typing import IO

import orjson

from connector.durability import fsync_directory
from connector.errors import SinkError
from connector.events import Batch

__all__ = ["NdjsonSink"]

_log = logging.getLogger("connector.sinks.ndjson")
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_TAIL_CHUNK = 64 * 1024

# fsync on a pipe, a terminal or /dev/null fails with these: such a stream has nothing to make durable.
_NOT_SYNCABLE = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOTTY})


class NdjsonSink:
    """Writes batches as one JSON event per line: all tables to one stream, or one ``<table>.ndjson`` per table.

    Args:
        output: a file path, or (with ``per_table``) a directory (the standard output is ``StdoutSink``).
        per_table: write ``<directory>/<table>.ndjson`` files instead of one stream.
    """

    def __init__(self, output: str, *, per_table: bool = False) -> None:
        if output == "-":
            raise ValueError("NdjsonSink writes files; the standard output is StdoutSink (connector.sinks.stdout)")
        self._per_table = per_table
        self._files: dict[str, IO[bytes]] = {}
        self._directory = Path(output) if per_table else None
        self._single: IO[bytes] | None = None
        # Files written to since the last sync (an ordered set).
        self._dirty: dict[IO[bytes], None] = {}
        # Folders in which this sink created a file since the last sync: the new entry must be durable too.
        self._new_entries: dict[Path, None] = {}
        # The first failed sync: later syncs raise it again. After fsync reported an error, Linux may have dropped
        # the unwritten pages and a second fsync can succeed without them, so no later sync can vouch for them.
        self._sync_error: SinkError | None = None
        if self._directory is not None:
            try:
                self._directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._error(self._directory, exc, "create the output folder") from None
        else:
            try:
                Path(output).parent.mkdir(parents=True, exist_ok=True)
                self._single = self._open(Path(output))
            except OSError as exc:
                raise self._error(Path(output), exc, "open the output file") from None

    def write(self, batch: Batch) -> None:
        """Append the batch's events and flush them to the OS; they are not durable until ``sync`` returns.

        A write that fails is cut off again (the file is truncated to its size before the batch), so the next
        write, or the next run, starts on a line of its own.

        Raises:
            SinkError: the events could not be written; the caller must not commit the batch's checkpoint
                (the next run delivers them again).
        """
        if not batch.events or batch.table is None:
            return
        stream = self._stream(batch.table)
        data = b"".join(orjson.dumps(event) + b"\n" for event in batch.events)
        path = Path(getattr(stream, "name", "-"))
        self._dirty[stream] = None  # before writing: a failed write may still have left bytes in the file
        size: int | None = None
        try:
            size = _size_if_regular(stream)
            _write_fully(stream, data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            error = self._error(path, exc, "write events to")
            if size is not None:
                _cut_back(stream, path, size)
            raise error from None

    def sync(self) -> None:
        """Make everything written so far durable: fsync each file written to since the last sync.

        Call it right before committing a checkpoint that covers the written batches. Pipes and devices
        that cannot be fsynced are skipped; a sync with nothing new written does nothing.

        Raises:
            SinkError: a file could not be synced; the caller must not commit the checkpoint (the next run
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
        """Open ``path`` for appending, noting its folder when the file is new (``sync`` makes the entry durable).

        An existing regular file that does not end in a newline is cut back to its last one first (see the module
        docstring). Unbuffered: each batch is one ``write`` call (looped on short writes), so a failed batch leaves
        no bytes in a buffer that a later flush or close would still append after the cut.
        """
        created = not path.exists()
        _repair_torn_tail(path)
        stream = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        if created:
            self._new_entries[path.parent] = None
        return stream

    @staticmethod
    def _error(path: Path, exc: OSError, action: str) -> SinkError:
        detail = exc.strerror or str(exc)
        name = errno.errorcode.get(exc.errno or 0)
        if name:
            detail = f"{detail} [{name}]"
        if exc.errno in _FULL:
            detail += ": the disk (or the quota) is full, free space there and run again"
        return SinkError(
            f"cannot {action} {path}: {detail}; the checkpoint was not advanced past these events, "
            "so the next run delivers them again.",
            path=str(path),
            errno=exc.errno,
        )

    def paths(self) -> list[Path]:
        """The per-table files written so far."""
        return sorted(Path(f.name) for f in self._files.values())

    def close(self) -> None:
        """Sync (see ``sync``), then close every file this sink opened.

        The files are closed even when the sync fails; its ``SinkError`` is raised after that.
        """
        try:
            self.sync()
        finally:
            self._dirty.clear()
            for stream in self._files.values():
                stream.close()
            if self._single is not None:
                self._single.close()


def _write_fully(stream: IO[bytes], data: bytes) -> None:
    """Write all of ``data`` to an unbuffered file: a raw write may take only part of it."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:  # None (would block) or 0: a regular file or blocking pipe never does this
            raise OSError(errno.EIO, "the output accepted no bytes")
        view = view[written:]


def _size_if_regular(stream: IO[bytes]) -> int | None:
    """The file's size, or None when it is no regular file (a FIFO, a device): only a regular file can be cut."""
    status = os.fstat(stream.fileno())
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _cut_back(stream: IO[bytes], path: Path, size: int) -> None:
    """Truncate a failed batch off again; if even that fails, the next open cuts back to the last newline."""
    try:
        os.ftruncate(stream.fileno(), size)
    except OSError as exc:
        _log.error(
            "a failed batch could not be cut off the output; the next run cuts it back to the last whole line",
            extra={"path": str(path), "error": exc.strerror or str(exc)},
        )


def _repair_torn_tail(path: Path) -> None:
    """Cut an existing regular file that does not end in ``\n`` back to its last ``\n`` (a crash mid-write).

    Reads backwards in chunks, so a healthy file costs one one-byte read.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(status.st_mode) or status.st_size == 0:
        return
    with open(path, "r+b", buffering=0) as stream:
        fd = stream.fileno()
        end = status.st_size
        if os.pread(fd, 1, end - 1) == b"\n":
            return
        keep = 0
        position = end
        while position > 0:
            start = max(0, position - _TAIL_CHUNK)
            newline = os.pread(fd, position - start, start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        os.ftruncate(fd, keep)
        os.fsync(fd)
    _log.warning(
        "the output ended in a partial line (an earlier run stopped while writing); it was cut back to the last "
        "whole line, and those events are delivered again",
        extra={"path": str(path), "bytes_removed": end - keep},
    )


def _fsync(stream: IO[bytes]) -> None:
    try:
        os.fsync(stream.fileno())
    except OSError as exc:
        if exc.errno not in _NOT_SYNCABLE:
            raise
