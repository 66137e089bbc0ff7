"""The connector's durable state: a versioned checkpoint of per-stream states, and an atomic file store for it.

Version 2: ``{"version": 2, "updated_at_ms": ..., "streams": {name: state}}``. Each registered stream
(``connector.streams``) parses and writes its own slice with its own schema: positions and record keys, never
configuration or credentials. The state of a stream this connector does not know (a newer connector wrote it,
or an extension that is not installed) is kept as it is and written back unchanged, never dropped.

Version 1 (``{"version": 1, "audit": {...}, "inventory": {...}}``) is read and migrated on load: its audit slice
becomes stream ``audit`` and its inventory slice stream ``user_management``, unchanged, so the cursor, the ids in
the overlap and the membership snapshot all carry over (no re-delivery, no lost diff).

``from_dict`` is strict (unknown keys, wrong types, unknown version are errors): a checkpoint that is not
fully understood must stop the run rather than silently restart collection from scratch or skip data. Such
a file is never overwritten; the error tells the operator how to start over.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Final, TypeVar

from connector.durability import fsync_directory
from connector.errors import CheckpointError, StateLockedError
from connector.streams.base import Stream
from connector.streams.directory_state import GroupMembership, InventoryState
from connector.streams.registry import streams as registered_streams
from connector.streams.state import InvalidState, StreamState, epoch_ms, exact_object
from connector.streams.window import WindowState

__all__ = [
    "CHECKPOINT_VERSION",
    "AuditState",
    "Checkpoint",
    "CheckpointStore",
    "GroupMembership",
    "InventoryState",
    "RawState",
    "StateLock",
]

if sys.platform != "win32":
    import fcntl

_log = logging.getLogger("connector.checkpoint")

CHECKPOINT_VERSION: Final = 2
"""The checkpoint layout this connector writes; version 1 is read and migrated."""

V1_STREAMS: Final = {"audit": "audit", "inventory": "user_management"}
"""Version 1's top-level keys and the stream each became."""

AuditState = WindowState
"""The audit stream's state (a window state with audit ids): the name version 1 used."""

HOST_SOURCE = "host checkpoint"

Writer = Callable[[IO[bytes], bytes], None]
"""Writes the serialized checkpoint into the open temporary file (injectable to simulate a crash)."""


def _write_all(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)


@dataclass(frozen=True)
class RawState:
    """The stored state of a stream this connector has no descriptor for, kept as it was read."""

    data: Any

    def to_dict(self) -> Any:
        """The state exactly as read (a fresh copy)."""
        return json.loads(json.dumps(self.data))


@dataclass(frozen=True)
class Checkpoint:
    """Everything the connector remembers between runs: one state per stream.

    Attributes:
        version: Layout version (always ``CHECKPOINT_VERSION`` once loaded).
        streams: Stream name -> its state (``RawState`` for a stream without a descriptor here).
        updated_at_ms: When this checkpoint was produced (epoch ms), for operators reading the file.
    """

    version: int = CHECKPOINT_VERSION
    streams: Mapping[str, StreamState] = field(default_factory=dict)
    updated_at_ms: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", MappingProxyType(dict(self.streams)))

    @classmethod
    def of(cls, *, updated_at_ms: int | None = None, **states: StreamState) -> Checkpoint:
        """A checkpoint of the states given by stream name (``Checkpoint.of(audit=AuditState(...))``)."""
        return cls(streams=states, updated_at_ms=updated_at_ms)

    def state(self, stream: Stream) -> StreamState:
        """``stream``'s state, or its initial state when this checkpoint has none."""
        state = self.streams.get(stream.name)
        return state if state is not None else stream.initial_state()

    def with_state(self, name: str, state: StreamState, updated_at_ms: int) -> Checkpoint:
        """A copy with stream ``name``'s state replaced (every other stream's kept)."""
        return Checkpoint(streams={**self.streams, name: state}, updated_at_ms=updated_at_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the exact content of the checkpoint file."""
        return {
            "version": self.version,
            "updated_at_ms": self.updated_at_ms,
            "streams": {name: state.to_dict() for name, state in sorted(self.streams.items())},
        }

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its JSON form and rebuilt through ``from_dict`` (its read-only maps are not picklable, and
        the copy is checked as a loaded checkpoint is)."""
        return (_checkpoint_from_dict, (self.to_dict(),))

    @classmethod
    def from_dict(
        cls, data: object, *, source: str = HOST_SOURCE, streams: Iterable[Stream] | None = None
    ) -> Checkpoint:
        """Strictly parse a checkpoint of version 2, or migrate one of version 1.

        Args:
            data: The decoded JSON (or the host's stored state).
            source: What to call the origin in errors: the file path, or ``"host checkpoint"``.
            streams: The stream descriptors whose states are parsed; default the registered ones. The state of
                any other stream is kept as a ``RawState``.

        Raises:
            CheckpointError: The data is no checkpoint this connector reads. The message names ``source`` and
                says how to start over; the connector never overwrites such data by itself.
        """
        if isinstance(data, dict) and "version" in data and data["version"] not in (1, CHECKPOINT_VERSION):
            version = data["version"]
            raise CheckpointError(
                f"{source}: checkpoint version {version!r} is not supported (this connector reads versions 1 and "
                f"{CHECKPOINT_VERSION}). It may come from a newer connector: upgrade, or move the checkpoint "
                "away to start over from initial_lookback_hours. The connector will not overwrite it.",
                path=None if source == HOST_SOURCE else source,
            )
        known = {stream.name: stream for stream in (registered_streams() if streams is None else streams)}
        return _parse(source, lambda: cls._parse(data, known))

    @classmethod
    def _parse(cls, data: object, known: Mapping[str, Stream]) -> Checkpoint:
        if isinstance(data, dict) and data.get("version") == 1:
            return cls._migrate_v1(data, known)
        obj = exact_object(data, "checkpoint", {"version", "updated_at_ms", "streams"})
        epoch_ms(obj["version"], "version")
        updated = epoch_ms(obj["updated_at_ms"], "updated_at_ms", optional=True)
        raw = obj["streams"]
        if not isinstance(raw, dict):
            raise InvalidState("streams must be an object")
        states = {name: _state(known.get(name), value, f"streams.{name}") for name, value in raw.items()}
        return cls(streams=states, updated_at_ms=updated)

    @classmethod
    def _migrate_v1(cls, data: Mapping[str, Any], known: Mapping[str, Stream]) -> Checkpoint:
        """Version 1's two slices become the states of the streams they belonged to, unchanged."""
        obj = exact_object(data, "checkpoint", {"version", *V1_STREAMS, "updated_at_ms"})
        updated = epoch_ms(obj["updated_at_ms"], "updated_at_ms", optional=True)
        states = {name: _state(known.get(name), obj[key], key) for key, name in V1_STREAMS.items()}
        _log.info("checkpoint version 1 read; it is written as version 2 at the next commit")
        return cls(streams=states, updated_at_ms=updated)


def _state(stream: Stream | None, value: object, where: str) -> StreamState:
    if stream is None:
        try:
            return RawState(json.loads(json.dumps(value)))
        except (TypeError, ValueError, RecursionError):
            raise InvalidState(f"{where} is not JSON data") from None
    return stream.parse_state(value, where)


_T = TypeVar("_T")


def _parse(source: str, parse: Callable[[], _T]) -> _T:
    try:
        return parse()
    except InvalidState as exc:
        raise _corrupt(source, str(exc)) from None


def _corrupt(source: str, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{source}: checkpoint is corrupt ({detail}). Move it away to start over from initial_lookback_hours "
        "(records already delivered may be sent again); the connector will not overwrite it.",
        path=None if source == HOST_SOURCE else source,
    )


def _checkpoint_from_dict(data: dict[str, Any]) -> Checkpoint:
    return Checkpoint.from_dict(data)


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
            raise _corrupt(source, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            self._refuse_overwrite = True
            raise _corrupt(source, f"not JSON: {exc.msg} at line {exc.lineno}") from None
        except RecursionError:  # a checkpoint is a few levels deep; this one was not written by the connector
            self._refuse_overwrite = True
            raise _corrupt(source, "nested too deeply to be a checkpoint") from None
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
