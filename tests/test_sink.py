"""NdjsonSink: one JSON event per line, flushed by ``write`` and made durable (fsynced) by ``sync``."""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from pathlib import Path
from stat import S_ISDIR
from typing import IO, Any

import pytest

import connector.sinks.ndjson as sink_module
from connector.checkpoint import Checkpoint
from connector.errors import ConnectorError, SinkError
from connector.events import Batch
from connector.sinks.ndjson import NdjsonSink
from connector.sinks.stdout import StdoutSink


def event(class_uid: int, uid: str) -> dict[str, Any]:
    return {"class_uid": class_uid, "metadata": {"uid": uid}, "message": "naïve ✓"}


AUTH = Batch("authentication", 3002, [event(3002, "a1"), event(3002, "a2")], None)
ACCOUNT = Batch("account_change", 3001, [event(3001, "c1")], Checkpoint())
CHECKPOINT_ONLY = Batch(None, None, [], Checkpoint())
EMPTY_TABLE = Batch("group_management", 3006, [], Checkpoint())


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_single_file_gets_one_line_per_event_and_skips_empty_batches(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "events.ndjson"
    sink = NdjsonSink(str(out))
    for batch in (AUTH, CHECKPOINT_ONLY, EMPTY_TABLE, ACCOUNT):
        sink.write(batch)
    sink.close()
    assert [e["metadata"]["uid"] for e in lines(out)] == ["a1", "a2", "c1"]
    assert out.read_bytes().endswith(b"\n")
    assert "naïve ✓" in out.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


def test_a_second_sink_appends(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    for batch in (AUTH, ACCOUNT):
        sink = NdjsonSink(str(out))
        sink.write(batch)
        sink.close()
    assert [e["metadata"]["uid"] for e in lines(out)] == ["a1", "a2", "c1"]


def test_per_table_files(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    sink = NdjsonSink(str(folder), per_table=True)
    for batch in (AUTH, ACCOUNT, CHECKPOINT_ONLY, EMPTY_TABLE, AUTH):
        sink.write(batch)
    assert sink.paths() == [folder / "account_change.ndjson", folder / "authentication.ndjson"]
    sink.close()
    assert sorted(p.name for p in folder.iterdir()) == ["account_change.ndjson", "authentication.ndjson"]
    assert [e["metadata"]["uid"] for e in lines(folder / "authentication.ndjson")] == ["a1", "a2", "a1", "a2"]
    assert {e["class_uid"] for e in lines(folder / "account_change.ndjson")} == {3001}


def record_fsyncs(monkeypatch: pytest.MonkeyPatch, folders: list[int] | None = None) -> list[tuple[int, int]]:
    """Replace os.fsync: each call on a file is recorded as (inode, size on disk when the sync was asked for); a
    call on a folder (a new file's entry) goes to ``folders`` as its inode."""
    synced: list[tuple[int, int]] = []

    def fsync(fd: int) -> None:
        stat = os.fstat(fd)
        if S_ISDIR(stat.st_mode):
            if folders is not None:
                folders.append(stat.st_ino)
            return
        synced.append((stat.st_ino, stat.st_size))

    monkeypatch.setattr(sink_module.os, "fsync", fsync)
    return synced


def on_disk(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size


def test_write_flushes_without_fsync_and_sync_fsyncs_each_written_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = record_fsyncs(monkeypatch)
    folder = tmp_path / "out"
    sink = NdjsonSink(str(folder), per_table=True)
    for batch in (AUTH, ACCOUNT, AUTH, CHECKPOINT_ONLY, EMPTY_TABLE, ACCOUNT, AUTH):
        sink.write(batch)
    assert synced == []
    # Flushed: a reader sees every line before any sync.
    assert len(lines(folder / "authentication.ndjson")) == 6 and len(lines(folder / "account_change.ndjson")) == 2

    sink.sync()
    # One fsync per file written to (not one per batch), each asked for once everything was written to it.
    assert sorted(synced) == sorted(
        on_disk(folder / name) for name in ("authentication.ndjson", "account_change.ndjson")
    )
    sink.sync()
    assert len(synced) == 2  # nothing written since: nothing to sync

    sink.write(ACCOUNT)
    sink.write(CHECKPOINT_ONLY)
    sink.sync()
    assert len(synced) == 3 and synced[-1] == on_disk(folder / "account_change.ndjson")
    sink.close()
    assert len(synced) == 3  # close syncs, but nothing is left to sync


def test_a_new_file_s_folder_is_synced_after_the_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the sink created is durable only once its name is: the folder is fsynced at the next sync, once."""
    folders: list[int] = []
    synced = record_fsyncs(monkeypatch, folders)
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "authentication.ndjson").write_bytes(b"")
    appending = NdjsonSink(str(existing), per_table=True)
    appending.write(AUTH)
    appending.sync()
    assert folders == [] and len(synced) == 1  # the file was already there: its name is durable

    folder = tmp_path / "out"
    sink = NdjsonSink(str(folder), per_table=True)
    sink.write(AUTH)
    sink.write(ACCOUNT)
    sink.sync()
    assert folders == [folder.stat().st_ino]  # once for both new files
    sink.write(AUTH)
    sink.sync()
    sink.close()
    assert folders == [folder.stat().st_ino]  # not again: no new file


def test_one_stream_is_synced_once_for_many_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = record_fsyncs(monkeypatch)
    out = tmp_path / "events.ndjson"
    sink = NdjsonSink(str(out))
    for batch in (AUTH, ACCOUNT, AUTH):
        sink.write(batch)
    assert synced == []
    sink.sync()
    assert synced == [on_disk(out)] and len(lines(out)) == 5
    sink.sync()
    assert len(synced) == 1
    sink.close()


def test_close_syncs_what_was_written_since_the_last_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = record_fsyncs(monkeypatch)
    out = tmp_path / "events.ndjson"
    sink = NdjsonSink(str(out))
    sink.write(AUTH)
    sink.close()
    assert synced == [on_disk(out)]


def test_stdout_is_written_and_never_closed(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    sink = StdoutSink()
    sink.write(AUTH)
    sink.close()
    assert not sys.stdout.buffer.closed
    out = capsysbinary.readouterr().out
    assert [json.loads(line)["metadata"]["uid"] for line in out.splitlines()] == ["a1", "a2"]


def test_stdout_swapped_after_the_sink_was_built_is_neither_fsynced_nor_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_fd, write_fd = os.pipe()
    original = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write_fd, "wb")))
    monkeypatch.setattr(sys, "stdout", original)
    try:
        sink = StdoutSink()
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO()))  # e.g. contextlib.redirect_stdout
        sink.write(AUTH)
        sink.sync()  # a pipe cannot be fsynced: must not raise EINVAL
        sink.close()
        assert not original.buffer.closed
        original.buffer.close()
        with os.fdopen(read_fd, "rb") as reader:
            assert len(reader.read().splitlines()) == 2
    finally:
        if not original.buffer.closed:
            original.buffer.close()


def test_stdout_is_never_fsynced(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    synced = record_fsyncs(monkeypatch)
    sink = StdoutSink()
    sink.write(AUTH)
    sink.sync()
    sink.write(ACCOUNT)
    sink.close()
    assert synced == []
    assert len(capsysbinary.readouterr().out.splitlines()) == 3


def test_a_device_that_cannot_be_synced_is_accepted() -> None:
    sink = NdjsonSink(os.devnull)  # fsync(/dev/null) fails with EINVAL, like a pipe or /dev/stdout
    sink.write(AUTH)
    sink.sync()
    sink.close()


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOTSUP, errno.ENOTTY])
def test_a_stream_that_cannot_be_synced_is_skipped_and_not_retried(
    code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def unsyncable(fd: int) -> None:
        if not S_ISDIR(os.fstat(fd).st_mode):  # the new file's folder is synced too (best effort)
            calls.append(fd)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(sink_module.os, "fsync", unsyncable)
    sink = NdjsonSink(str(tmp_path / "events.ndjson"))
    sink.write(AUTH)
    sink.sync()
    assert len(calls) == 1
    sink.sync()
    assert len(calls) == 1  # not dirty any more
    sink.close()


class _FillsUp(io.FileIO):
    """An output file on a disk with ``room`` bytes left: writes take what fits, then fail with ENOSPC (or EDQUOT)."""

    room = 0
    code = errno.ENOSPC

    def write(self, data: Any) -> int:
        if self.room <= 0:
            raise OSError(self.code, os.strerror(self.code))
        written = super().write(bytes(data[: self.room]))
        self.room -= written
        return written


def fill_up(monkeypatch: pytest.MonkeyPatch, room: int, code: int = errno.ENOSPC) -> None:
    """Every output file the sink opens for appending from now on lies on a disk with ``room`` bytes left."""

    def opener(path: Any, mode: str, buffering: int = -1) -> IO[bytes]:
        if "a" not in mode:
            return open(path, mode, buffering=buffering)
        stream = _FillsUp(path, mode)
        stream.room, stream.code = room, code
        return stream

    monkeypatch.setattr(sink_module, "open", opener, raising=False)


def test_a_full_disk_is_a_sink_error_naming_the_file_and_enospc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "events.ndjson"
    fill_up(monkeypatch, 0)
    sink = NdjsonSink(str(out))
    with pytest.raises(SinkError) as caught:
        sink.write(AUTH)
    sink.close()
    assert isinstance(caught.value, ConnectorError) and caught.value.exit_code == 7
    assert str(caught.value).startswith(f"cannot write events to {out}: No space left on device [ENOSPC]: the disk")
    assert "checkpoint was not advanced" in str(caught.value)
    assert caught.value.path == str(out) and caught.value.errno == errno.ENOSPC


def test_a_full_quota_is_named_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_up(monkeypatch, 5, errno.EDQUOT)
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    with pytest.raises(SinkError, match=r"\[EDQUOT\]: the disk \(or the quota\) is full"):
        sink.write(AUTH)
    sink.close()
    assert (tmp_path / "out" / "authentication.ndjson").read_bytes() == b""  # the 5 bytes were cut off again


def test_a_batch_that_fails_half_written_is_cut_off_so_the_next_run_starts_on_a_line_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen on a 2 MB tmpfs: ENOSPC after part of a batch, and the next run's first event glued onto the torn line."""
    out = tmp_path / "events.ndjson"
    sink = NdjsonSink(str(out))
    sink.write(AUTH)
    sink.close()
    before = out.read_bytes()

    fill_up(monkeypatch, 40)  # the first event line of ACCOUNT is longer than that
    sink = NdjsonSink(str(out))
    with pytest.raises(SinkError, match="ENOSPC"):
        sink.write(ACCOUNT)
    sink.close()
    assert out.read_bytes() == before

    monkeypatch.undo()  # the disk has room again: the next run delivers the batch
    sink = NdjsonSink(str(out))
    sink.write(ACCOUNT)
    sink.close()
    assert [e["metadata"]["uid"] for e in lines(out)] == ["a1", "a2", "c1"]


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b'{"metadata":{"uid":"x1"}}\n{"metadata":{"ui', b'{"metadata":{"uid":"x1"}}\n'),
        (b'{"metadata":{"uid":"x1"}}\n' + b"y" * 200_000, b'{"metadata":{"uid":"x1"}}\n'),  # a tail of chunks
        (b'{"metadata":{"ui', b""),
    ],
)
def test_an_output_that_ends_in_a_partial_line_is_cut_back_to_its_last_newline_when_opened(
    tmp_path: Path, content: bytes, kept: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash in the middle of a write left a fragment that no committed checkpoint covers."""
    for per_table in (False, True):
        out = tmp_path / f"{per_table}" / "authentication.ndjson"
        out.parent.mkdir()
        out.write_bytes(content)
        with caplog.at_level("WARNING", logger="connector.sinks.ndjson"):
            sink = NdjsonSink(str(out.parent if per_table else out), per_table=per_table)
            sink.write(AUTH)
        sink.close()
        assert out.read_bytes().startswith(kept)
        assert [e["metadata"]["uid"] for e in lines(out)] == (["x1"] if kept else []) + ["a1", "a2"]
    warnings = [r for r in caplog.records if "partial line" in r.getMessage()]
    assert len(warnings) == 2 and warnings[0].__dict__["bytes_removed"] == len(content) - len(kept)


def test_an_output_that_ends_in_a_newline_is_left_as_it_is(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "events.ndjson"
    out.write_bytes(b"{}\n")
    with caplog.at_level("WARNING", logger="connector.sinks.ndjson"):
        NdjsonSink(str(out)).close()
    assert out.read_bytes() == b"{}\n" and not caplog.records


def test_sync_failure_is_a_connector_error_naming_the_file_and_every_later_sync_fails_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    sink = NdjsonSink(str(folder), per_table=True)
    sink.write(AUTH)

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(sink_module.os, "fsync", broken)
    with pytest.raises(ConnectorError) as caught:
        sink.sync()
    assert str(caught.value).startswith(f"cannot sync events to {folder / 'authentication.ndjson'}: Input/output error")
    assert "checkpoint was not advanced" in str(caught.value)

    # The disk recovers, but what the failed fsync covered may be lost: the sink cannot vouch for it any more.
    synced = record_fsyncs(monkeypatch)
    sink.write(ACCOUNT)
    with pytest.raises(ConnectorError, match="cannot sync events to"):
        sink.sync()
    with pytest.raises(ConnectorError, match="cannot sync events to"):
        sink.close()
    assert synced == []
    with pytest.raises(ValueError, match="closed file"):  # close closed the files all the same
        sink.write(AUTH)
    assert len(lines(folder / "authentication.ndjson")) == 2 and len(lines(folder / "account_change.ndjson")) == 1


def test_unopenable_output_is_a_connector_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConnectorError, match="cannot open the output file"):
        NdjsonSink(str(blocker / "events.ndjson"))
    with pytest.raises(ConnectorError, match="cannot create the output folder"):
        NdjsonSink(str(blocker / "out"), per_table=True)


def test_the_ndjson_sink_refuses_the_standard_output_name() -> None:
    with pytest.raises(ValueError, match="StdoutSink"):
        NdjsonSink("-")
