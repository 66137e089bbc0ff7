"""The checkpoint file: read it strictly, replace it atomically, and lock it so that one collector runs per state.

A save writes a temporary file in the same folder, fsyncs it, renames it over the checkpoint and fsyncs the
folder, so a crash at any point leaves the old or the new checkpoint, never a torn one. A file that could not be
read is never overwritten: an operator decides.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from connector.checkpoint import Checkpoint, corrupt
from connector.durability import fsync_directory
from connector.errors import CheckpointError, StateLockedError

__all__ = ["CheckpointStore", "StateLock"]

if sys.platform != "win32":
    import fcntl

_log = logging.getLogger("connector.store")

Writer = Callable[[IO[bytes], bytes], None]
"""Writes the serialized checkpoint into the open temporary file (injectable to simulate a crash)."""


def _write_all(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)


class CheckpointStore:
    """Reads and atomically writes one checkpoint file.

    A save writes a temporary file in the same directory, flushes and fsyncs it, renames it over the
    checkpoint with ``os.replace`` (atomic on POSIX and Windows) and fsyncs the directory, so a crash at any
    point leaves either the old or the new checkpoint, never a torn one. After ``load()`` found a corrupt or
    unknown-version file, ``save()`` refuses to replace it: an operator decides, not the connector.

    Args:
        path: The checkpoint file. Its directory is created on the first save.
        writer: Writes the bytes into the open temporary file; injectable so tests can simulate a crash
            mid-write without patching ``os``.
        replace: Renames the temporary file over the checkpoint; injectable for the same reason.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        writer: Writer = _write_all,
        replace: Callable[[str, str], None] = os.replace,
    ) -> None:
        self.path = Path(path)
        self._writer = writer
        self._replace = replace
        self._refuse_overwrite = False

    def __repr__(self) -> str:
        return f"CheckpointStore({str(self.path)!r})"

    def load(self) -> Checkpoint | None:
        """Read the checkpoint.

        Returns:
            The checkpoint, or ``None`` when the file does not exist yet (first run).

        Raises:
            CheckpointError: The file cannot be read, is not JSON, or is not a version-1 checkpoint. The file
                is left untouched and later saves through this store are refused.
        """
        source = str(self.path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckpointError(
                f"{source}: cannot read the checkpoint ({exc.strerror or exc}). Check its permissions.",
                path=source,
            ) from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self._refuse_overwrite = True
            raise corrupt(source, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            self._refuse_overwrite = True
            raise corrupt(source, f"not JSON: {exc.msg} at line {exc.lineno}") from None
        except RecursionError:  # a checkpoint is a few levels deep; this one was not written by the connector
            self._refuse_overwrite = True
            raise corrupt(source, "nested too deeply to be a checkpoint") from None
        try:
            return Checkpoint.from_dict(data, source=source)
        except CheckpointError:
            self._refuse_overwrite = True
            raise

    def check_writable(self) -> None:
        """Fail before a pass pulls anything when ``save`` could not write: creates the folder if needed, then
        creates and removes a temporary file there (what ``save`` does before its rename).

        Without it an unwritable ``--state`` was found only at the first commit, after a whole pull (and its
        output) had been made for nothing.

        Raises:
            CheckpointError: the folder cannot be created or written, or the checkpoint path is a folder.
        """
        source = str(self.path)
        directory = self.path.parent
        try:
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "it is a folder, not a file")
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            os.close(fd)
            os.unlink(tmp_name)
        except OSError as exc:
            raise CheckpointError(
                f"{source}: the checkpoint could not be written ({exc.strerror or exc}); nothing was collected. "
                "Make its folder writable (or choose another --state).",
                path=source,
            ) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[StateLock]:
        """For the whole of a ``run`` (all its passes): check that the checkpoint can be written, then hold its
        ``StateLock``, so a second collector on the same state stops before it pulls anything.

        Raises:
            CheckpointError: the checkpoint cannot be written (see ``check_writable``).
            StateLockedError: another process holds the lock.
        """
        self.check_writable()
        with StateLock(self.path) as held:
            yield held

    def save(self, checkpoint: Checkpoint) -> None:
        """Atomically replace the checkpoint file with ``checkpoint``.

        Raises:
            CheckpointError: The file could not be written (the previous checkpoint is intact), or ``load()``
                found the existing file unreadable and it must not be overwritten.
        """
        source = str(self.path)
        if self._refuse_overwrite:
            raise CheckpointError(
                f"{source}: not overwriting a checkpoint that could not be read; move it away to start over.",
                path=source,
            )
        text = json.dumps(checkpoint.to_dict(), sort_keys=True, separators=(",", ":"))
        data = (text + "\n").encode("utf-8")
        directory = self.path.parent
        tmp_name: str | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            with os.fdopen(fd, "wb") as stream:
                self._writer(stream, data)
                stream.flush()
                os.fsync(stream.fileno())
            self._replace(tmp_name, source)
            tmp_name = None
            fsync_directory(directory)
        except OSError as exc:
            raise CheckpointError(
                f"{source}: cannot write the checkpoint ({exc.strerror or exc}); the previous checkpoint is "
                "unchanged. Check free space and permissions of its directory.",
                path=source,
            ) from exc
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)


class StateLock:
    """An exclusive ``flock`` on ``<checkpoint>.lock``, holding the holder's pid: one collector per state.

    Two runs on one checkpoint both read the same cursor and write every event twice. The lock is advisory,
    taken without waiting (``LOCK_EX | LOCK_NB``), and released by the kernel when the holder's file closes,
    even when the process is killed, so a crash never leaves a stale lock: the file stays (removing it would
    let a third run lock a new file while a second still holds the old one) and only its lock matters. flock
    locks belong to the open file, so two ``StateLock`` objects conflict inside one process too. On Windows,
    which has no ``flock``, no lock is taken (a warning says so).

    Args:
        checkpoint: the checkpoint file; the lock file is that path with ``.lock`` appended.
    """

    def __init__(self, checkpoint: str | os.PathLike[str]) -> None:
        self.checkpoint = Path(checkpoint)
        self.path = self.checkpoint.with_name(self.checkpoint.name + ".lock")
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"StateLock({str(self.path)!r}, held={self._fd is not None})"

    def acquire(self) -> None:
        """Take the lock and write this process's pid into the lock file.

        Raises:
            StateLockedError: another open file (another process, or another ``StateLock``) holds it.
            CheckpointError: the lock file cannot be created or locked.
        """
        if sys.platform == "win32":  # pragma: no cover - no flock
            _log.warning("no lock on this platform: run one collector per state", extra={"path": str(self.path)})
            return
        source = str(self.checkpoint)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise CheckpointError(
                f"{source}: cannot create the lock file {self.path} ({exc.strerror or exc}). Check the permissions "
                "of its folder.",
                path=source,
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder is not None else "a process that is just starting (pid not written yet)"
            raise StateLockedError(
                f"{source}: another collector ({who}) is running on this checkpoint and holds {self.path}; two "
                "runs on one state would deliver every event twice. Let it finish (or stop it), or give this run "
                "its own --state.",
                path=source,
                holder_pid=holder,
            ) from None
        except OSError as exc:
            os.close(fd)
            raise CheckpointError(
                f"{source}: cannot lock {self.path} ({exc.strerror or exc}); the file system may not support locks.",
                path=source,
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # the lock is held all the same; only the pid in messages is missing
            _log.warning("could not write the pid into the lock file", extra={"path": str(self.path)})
        self._fd = fd

    def release(self) -> None:
        """Release the lock (closing the file releases it); a second call does nothing."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _holder_pid(fd: int) -> int | None:
    """The pid the holder wrote into the lock file, or None (not written yet, or not a number)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and len(text) <= 10 else None
