"""The connector's durable state: a small, versioned checkpoint and an atomic file store for it.

The checkpoint holds only positions and identifiers, never configuration or credentials:

- ``audit.cursor_ms``: start of the next audit window (epoch ms); everything before it was delivered.
- ``audit.seen``: audit ``id`` -> ``eventTime`` (epoch ms) of records already delivered inside the
  trailing overlap window, so re-reading it (Mimecast's index lag) emits no duplicate after restarts.
- ``inventory``: when the directory was last read, and the group memberships seen then, so the next pull can
  turn membership differences into Group Management events.

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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, TypeVar

from connector.durability import fsync_directory
from connector.errors import CheckpointError, StateLockedError
from connector.timefmt import MAX_EPOCH_MS

__all__ = [
    "CHECKPOINT_VERSION",
    "AuditState",
    "Checkpoint",
    "CheckpointStore",
    "GroupMembership",
    "InventoryState",
    "StateLock",
]

if sys.platform != "win32":
    import fcntl

_log = logging.getLogger("connector.checkpoint")

CHECKPOINT_VERSION = 1
"""The only checkpoint layout this connector reads and writes."""

HOST_SOURCE = "host checkpoint"

Writer = Callable[[IO[bytes], bytes], None]
"""Writes the serialized checkpoint into the open temporary file (injectable to simulate a crash)."""


def _write_all(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)


class _Invalid(Exception):
    """Internal: a structural problem, turned into a CheckpointError naming the source."""


def _int(value: object, where: str, *, optional: bool = False) -> int | None:
    """A non-negative integer no larger than ``MAX_EPOCH_MS``: every number in a checkpoint is a time in epoch
    milliseconds (or the small version), and a larger one is no time at all (year 10000 and beyond) that would
    only fail later, far from the file that holds it."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EPOCH_MS:
        raise _Invalid(
            f"{where} must be an integer from 0 to {MAX_EPOCH_MS} (epoch ms up to 9999-12-31)"
            f"{' or null' if optional else ''}"
        )
    return value


def _obj(value: object, where: str, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be an object")
    extra = set(value) - keys
    missing = keys - set(value)
    if extra:
        raise _Invalid(f"{where} has unexpected keys {sorted(extra)}")
    if missing:
        raise _Invalid(f"{where} is missing keys {sorted(missing)}")
    return value


@dataclass(frozen=True)
class GroupMembership:
    """One group's name and members at the last directory pull.

    Members are stored lower-cased, de-duplicated and sorted: Mimecast addresses are case-insensitive, the
    checkpoint stays compact, and two pulls compare with plain set/tuple equality.
    """

    name: str
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(sorted({member.lower() for member in self.members})))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "members": list(self.members)}

    @classmethod
    def from_dict(cls, data: object, *, source: str = HOST_SOURCE) -> GroupMembership:
        """Strictly parse the JSON form. Raises ``CheckpointError`` naming ``source``."""
        return _parse(source, lambda: cls._parse(data, "group membership"))

    @classmethod
    def _parse(cls, data: object, where: str) -> GroupMembership:
        obj = _obj(data, where, {"name", "members"})
        name, members = obj["name"], obj["members"]
        if not isinstance(name, str):
            raise _Invalid(f"{where}.name must be a string")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise _Invalid(f"{where}.members must be a list of strings")
        return cls(name=name, members=tuple(members))


@dataclass(frozen=True)
class AuditState:
    """Audit collection progress.

    Attributes:
        cursor_ms: Start of the next audit window in epoch milliseconds; ``None`` before the first run.
        seen: Audit record ``id`` -> ``eventTime`` (epoch ms) of records delivered within the overlap window.
            The collector prunes entries older than the overlap; the event time is kept so it can.
    """

    cursor_ms: int | None = None
    seen: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seen", MappingProxyType(dict(self.seen)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``seen`` sorted by id so saves are reproducible)."""
        return {"cursor_ms": self.cursor_ms, "seen": dict(sorted(self.seen.items()))}

    @classmethod
    def from_dict(cls, data: object, *, source: str = HOST_SOURCE) -> AuditState:
        """Strictly parse the JSON form. Raises ``CheckpointError`` naming ``source``."""
        return _parse(source, lambda: cls._parse(data, "audit"))

    @classmethod
    def _parse(cls, data: object, where: str) -> AuditState:
        obj = _obj(data, where, {"cursor_ms", "seen"})
        cursor = _int(obj["cursor_ms"], f"{where}.cursor_ms", optional=True)
        seen = obj["seen"]
        if not isinstance(seen, dict):
            raise _Invalid(f"{where}.seen must be an object")
        parsed: dict[str, int] = {}
        for key, value in seen.items():
            event_ms = _int(value, f"{where}.seen[{key!r}]")
            parsed[key] = 0 if event_ms is None else event_ms
        return cls(cursor_ms=cursor, seen=parsed)


@dataclass(frozen=True)
class InventoryState:
    """Directory collection progress.

    Attributes:
        collected_at_ms: When the last complete directory pull finished (epoch ms); ``None`` before any.
        memberships: Group id -> ``GroupMembership`` from that pull; ``None`` when never read.
    """

    collected_at_ms: int | None = None
    memberships: Mapping[str, GroupMembership] | None = None

    def __post_init__(self) -> None:
        if self.memberships is not None:
            object.__setattr__(self, "memberships", MappingProxyType(dict(self.memberships)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (groups sorted by id)."""
        memberships = (
            None
            if self.memberships is None
            else {key: value.to_dict() for key, value in sorted(self.memberships.items())}
        )
        return {"collected_at_ms": self.collected_at_ms, "memberships": memberships}

    @classmethod
    def from_dict(cls, data: object, *, source: str = HOST_SOURCE) -> InventoryState:
        """Strictly parse the JSON form. Raises ``CheckpointError`` naming ``source``."""
        return _parse(source, lambda: cls._parse(data, "inventory"))

    @classmethod
    def _parse(cls, data: object, where: str) -> InventoryState:
        obj = _obj(data, where, {"collected_at_ms", "memberships"})
        collected = _int(obj["collected_at_ms"], f"{where}.collected_at_ms", optional=True)
        raw = obj["memberships"]
        if raw is None:
            return cls(collected_at_ms=collected, memberships=None)
        if not isinstance(raw, dict):
            raise _Invalid(f"{where}.memberships must be an object or null")
        memberships = {
            key: GroupMembership._parse(value, f"{where}.memberships[{key!r}]") for key, value in raw.items()
        }
        return cls(collected_at_ms=collected, memberships=memberships)


@dataclass(frozen=True)
class Checkpoint:
    """Everything the connector remembers between runs (version 1).

    Attributes:
        version: Layout version; only ``CHECKPOINT_VERSION`` is understood.
        audit: Audit collection progress.
        inventory: Directory collection progress.
        updated_at_ms: When this checkpoint was produced (epoch ms), for operators reading the file.
    """

    version: int = CHECKPOINT_VERSION
    audit: AuditState = field(default_factory=AuditState)
    inventory: InventoryState = field(default_factory=InventoryState)
    updated_at_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the exact content of the checkpoint file."""
        return {
            "version": self.version,
            "updated_at_ms": self.updated_at_ms,
            "audit": self.audit.to_dict(),
            "inventory": self.inventory.to_dict(),
        }

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled as its JSON form and rebuilt through ``from_dict`` (its read-only maps are not picklable, and
        the copy is checked as a loaded checkpoint is)."""
        return (_checkpoint_from_dict, (self.to_dict(),))

    @classmethod
    def from_dict(cls, data: object, *, source: str = HOST_SOURCE) -> Checkpoint:
        """Strictly parse a checkpoint.

        Args:
            data: The decoded JSON (or the host's stored state).
            source: What to call the origin in errors: the file path, or ``"host checkpoint"``.

        Returns:
            The checkpoint.

        Raises:
            CheckpointError: The data is not a version-1 checkpoint. The message names ``source`` and says how
                to start over; the connector never overwrites such data by itself.
        """
        if isinstance(data, dict) and "version" in data and data["version"] != CHECKPOINT_VERSION:
            version = data["version"]
            raise CheckpointError(
                f"{source}: checkpoint version {version!r} is not supported (this connector reads version "
                f"{CHECKPOINT_VERSION}). It may come from a newer connector: upgrade, or move the checkpoint "
                "away to start over from initial_lookback_hours. The connector will not overwrite it.",
                path=None if source == HOST_SOURCE else source,
            )
        return _parse(source, lambda: cls._parse(data))

    @classmethod
    def _parse(cls, data: object) -> Checkpoint:
        obj = _obj(data, "checkpoint", {"version", "updated_at_ms", "audit", "inventory"})
        version = _int(obj["version"], "version")
        updated = _int(obj["updated_at_ms"], "updated_at_ms", optional=True)
        return cls(
            version=CHECKPOINT_VERSION if version is None else version,
            audit=AuditState._parse(obj["audit"], "audit"),
            inventory=InventoryState._parse(obj["inventory"], "inventory"),
            updated_at_ms=updated,
        )


_T = TypeVar("_T")


def _parse(source: str, parse: Callable[[], _T]) -> _T:
    try:
        return parse()
    except _Invalid as exc:
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
