"""Tests for connector.runner with several sinks: every sink syncs before a commit, and a sink that fails stops
the commits (tests/test_cli.py covers the commit interval and the failure paths with one sink)."""

from __future__ import annotations

import errno
import io
import sys

import pytest

from connector.checkpoint import AuditState, Checkpoint
from connector.errors import SinkError
from connector.events import Batch
from connector.runner import COMMIT_INTERVAL_SECONDS, close_all, commit_interval, deliver
from connector.sinks.stdout import StdoutSink


def batches(n: int) -> list[Batch]:
    return [
        Batch("authentication", 3002, [{"n": i}], Checkpoint.of(audit=AuditState(cursor_ms=i))) for i in range(1, n + 1)
    ]


class Recorder:
    """A sink that logs what it is asked to do into a shared list."""

    def __init__(self, name: str, calls: list[str], *, fail_sync_at: int | None = None) -> None:
        self.name, self.calls, self.fail_sync_at = name, calls, fail_sync_at
        self.written = 0

    def write(self, batch: Batch) -> None:
        self.written += len(batch.events)
        self.calls.append(f"{self.name}.write")

    def sync(self) -> None:
        if self.fail_sync_at is not None and self.written >= self.fail_sync_at:
            raise SinkError(f"{self.name} could not sync")
        self.calls.append(f"{self.name}.sync")

    def close(self) -> None:
        self.calls.append(f"{self.name}.close")


class Store:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.saved: list[int | None] = []

    def save(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.streams["audit"]
        assert isinstance(state, AuditState)
        self.saved.append(state.cursor_ms)
        self.calls.append("save")


def test_every_sink_gets_every_batch_and_syncs_before_each_commit() -> None:
    calls: list[str] = []
    store = Store(calls)
    deliver(batches(2), [Recorder("a", calls), Recorder("b", calls)], store, commit_interval=0.0, clock=lambda: 0.0)
    assert calls == ["a.write", "b.write", "a.sync", "b.sync", "save"] * 2
    assert store.saved == [1, 2]


def test_a_sink_that_cannot_sync_stops_the_commits_and_nothing_past_it_is_committed() -> None:
    calls: list[str] = []
    store = Store(calls)
    sinks = [Recorder("a", calls), Recorder("b", calls, fail_sync_at=2)]
    with pytest.raises(SinkError, match="b could not sync"):
        deliver(batches(3), sinks, store, commit_interval=0.0, clock=lambda: 0.0)
    assert store.saved == [1]  # the second batch reached a but not b durably: never committed
    assert calls[-2:] == ["b.write", "a.sync"]


def test_closing_every_sink_reports_the_first_failure_after_closing_the_others() -> None:
    calls: list[str] = []

    class Failing(Recorder):
        def close(self) -> None:
            super().close()
            raise SinkError("a full disk")

    with pytest.raises(SinkError, match="a full disk"):
        close_all([Failing("a", calls), Recorder("b", calls)])
    assert calls == ["a.close", "b.close"]
    close_all([Failing("a", calls)], after=RuntimeError("the run's own error"))  # logged, not raised


def test_stdout_write_errors_are_sink_errors_and_a_reader_going_away_is_a_broken_pipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(Full(), buffer_size=1)))
    sink = StdoutSink()
    with pytest.raises(SinkError, match=r"standard output: No space left on device \[ENOSPC\]") as caught:
        sink.write(batches(1)[0])
    assert caught.value.exit_code == 7

    class Gone(Full):
        def write(self, data: object) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(Gone(), buffer_size=1)))
    with pytest.raises(BrokenPipeError):
        StdoutSink().write(batches(1)[0])


def test_a_reader_gone_after_a_checkpoint_only_batch_still_commits_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run | head`: the slice finished (checkpoint-only batch) is committed although the next write breaks the pipe;
    sync does not flush the broken buffer again."""

    class GoneAfterFirst(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(GoneAfterFirst(), buffer_size=1)))
    calls: list[str] = []
    store = Store(calls)
    slice_done = Batch(None, None, [], Checkpoint.of(audit=AuditState(cursor_ms=7)))
    with pytest.raises(BrokenPipeError):
        deliver([slice_done, *batches(1)], [StdoutSink()], store, commit_interval=1e9, clock=lambda: 0.0)
    assert store.saved == [7]
    close_all([StdoutSink()])  # nothing to flush again, nothing logged


def test_a_run_killed_between_two_sinks_syncs_commits_nothing_and_the_next_run_delivers_again() -> None:
    """The first sink synced, the process dies in the second's sync (KeyboardInterrupt stands for the kill): no
    commit; the next run re-delivers the same batches to both and commits them."""
    calls: list[str] = []
    store = Store(calls)

    class Killed(Recorder):
        def sync(self) -> None:
            raise KeyboardInterrupt

    first, second = Recorder("a", calls), Killed("b", calls)
    with pytest.raises(KeyboardInterrupt):
        deliver(batches(2), [first, second], store, commit_interval=1e9, clock=lambda: 0.0)
    assert store.saved == [] and calls[-1] == "a.sync"
    calls.clear()
    deliver(batches(2), [first, Recorder("b", calls)], store, commit_interval=1e9, clock=lambda: 0.0)
    assert store.saved == [2] and calls == ["a.write", "b.write"] * 2 + ["a.sync", "b.sync", "save"]


def test_the_commit_interval_is_the_longest_a_sink_asks_for() -> None:
    class Plain:
        pass

    class Spaced:
        sync_interval_seconds = 300.0

    assert commit_interval([]) == COMMIT_INTERVAL_SECONDS
    assert commit_interval([Plain()]) == COMMIT_INTERVAL_SECONDS  # type: ignore[list-item]
    assert commit_interval([Plain(), Spaced()]) == 300.0  # type: ignore[list-item]
    assert commit_interval([Spaced()], default=600.0) == 600.0  # type: ignore[list-item]
