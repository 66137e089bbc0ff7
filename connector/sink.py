"""Where the CLI puts events: OCSF NDJSON, flushed and fsynced per batch before the checkpoint is committed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

import orjson

from connector.collector import Batch

__all__ = ["NdjsonSink"]


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
        if per_table:
            assert self._directory is not None
            self._directory.mkdir(parents=True, exist_ok=True)
            self._single: IO[bytes] | None = None
        elif output == "-":
            self._single = sys.stdout.buffer
        else:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            self._single = open(output, "ab")  # noqa: SIM115 - closed in close()

    def write(self, batch: Batch) -> None:
        """Append the batch's events and make them durable (flush + fsync) before returning."""
        if not batch.events or batch.table is None:
            return
        stream = self._stream(batch.table)
        stream.write(b"".join(orjson.dumps(event) + b"\n" for event in batch.events))
        stream.flush()
        if stream is not sys.stdout.buffer:
            os.fsync(stream.fileno())

    def _stream(self, table: str) -> IO[bytes]:
        if self._single is not None:
            return self._single
        stream = self._files.get(table)
        if stream is None:
            assert self._directory is not None
            stream = self._files[table] = open(self._directory / f"{table}.ndjson", "ab")  # noqa: SIM115
        return stream

    def paths(self) -> list[Path]:
        """The per-table files written so far."""
        return sorted(Path(f.name) for f in self._files.values())

    def close(self) -> None:
        """Close every file this sink opened."""
        for stream in self._files.values():
            stream.close()
        if self._single is not None and self._single is not sys.stdout.buffer:
            self._single.close()
