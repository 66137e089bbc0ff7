"""NdjsonSink: one JSON event per line, durable (flushed and fsynced) before ``write`` returns."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import connector.sink as sink_module
from connector.checkpoint import Checkpoint
from connector.collector import Batch
from connector.errors import ConnectorError
from connector.sink import NdjsonSink


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


def test_every_write_is_flushed_and_fsynced_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "events.ndjson"
    synced: list[int] = []

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)  # what is on disk when the sync is asked for

    monkeypatch.setattr(sink_module.os, "fsync", fsync)
    sink = NdjsonSink(str(out))
    sink.write(AUTH)
    assert len(synced) == 1 and synced[0] == out.stat().st_size > 0
    sink.write(CHECKPOINT_ONLY)
    assert len(synced) == 1  # nothing written, nothing to sync
    sink.write(ACCOUNT)
    assert len(synced) == 2
    sink.close()


def test_stdout_is_written_and_never_closed(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    sink = NdjsonSink("-")
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
        sink = NdjsonSink("-")
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO()))  # e.g. contextlib.redirect_stdout
        sink.write(AUTH)  # a pipe cannot be fsynced: must not raise EINVAL
        sink.close()
        assert not original.buffer.closed
        original.buffer.close()
        with os.fdopen(read_fd, "rb") as reader:
            assert len(reader.read().splitlines()) == 2
    finally:
        if not original.buffer.closed:
            original.buffer.close()


def test_a_device_that_cannot_be_synced_is_accepted() -> None:
    sink = NdjsonSink(os.devnull)  # fsync(/dev/null) fails with EINVAL, like a pipe or /dev/stdout
    sink.write(AUTH)
    sink.close()


def test_write_failure_is_a_connector_error_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "events.ndjson"

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sink_module.os, "fsync", full)
    sink = NdjsonSink(str(out))
    with pytest.raises(ConnectorError) as caught:
        sink.write(AUTH)
    sink.close()
    assert str(out) in str(caught.value) and "No space left on device" in str(caught.value)
    assert "checkpoint was not advanced" in str(caught.value)


def test_unopenable_output_is_a_connector_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConnectorError, match="cannot open the output file"):
        NdjsonSink(str(blocker / "events.ndjson"))
    with pytest.raises(ConnectorError, match="cannot create the output folder"):
        NdjsonSink(str(blocker / "out"), per_table=True)
