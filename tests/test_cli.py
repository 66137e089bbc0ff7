"""`mimecast-connector map` and `validate`: input shapes, exit codes, and the pipe from the issue."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.cli import main
from connector.errors import CheckpointError, ConnectorError
from connector.sinks.ndjson import NdjsonSink

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = FIXTURES / "audit-records.jsonl"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_map_samples_then_validate_pipe_exits_zero() -> None:
    cmd = [sys.executable, "-m", "connector"]
    mapped = subprocess.run(
        [*cmd, "map", "--source", "audit", "--input", str(SAMPLES)], capture_output=True, check=True
    )
    checked = subprocess.run([*cmd, "validate"], input=mapped.stdout, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    events = [json.loads(line) for line in mapped.stdout.splitlines()]
    assert [(e["class_uid"], e["activity_id"], e["status_id"]) for e in events] == [
        (3002, 1, 1), (3002, 1, 1), (3002, 1, 2), (3002, 1, 99), (3002, 1, 1), (3001, 3, 1), (3006, 6, 1),
    ]  # fmt: skip
    assert b"Search Action x1" in mapped.stderr


EMAIL_SAMPLES = {
    "siem": ("siem_cg.jsonl", {4009, 4011, 4012, 2004}),
    "ttp_url": ("ttp_url.jsonl", {4012}),
    "ttp_attachment": ("ttp_attachment.jsonl", {4011}),
    "ttp_impersonation": ("ttp_impersonation.jsonl", {2004}),
    "dlp": ("dlp.jsonl", {2006}),
}


@pytest.mark.parametrize("source", sorted(EMAIL_SAMPLES))
def test_map_email_samples_then_validate_pipe_exits_zero_one_event_per_sample(source: str) -> None:
    filename, classes = EMAIL_SAMPLES[source]
    path = FIXTURES / "streams" / filename
    cmd = [sys.executable, "-m", "connector"]
    mapped = subprocess.run([*cmd, "map", "--source", source, "--input", str(path)], capture_output=True, check=True)
    checked = subprocess.run([*cmd, "validate"], input=mapped.stdout, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    events = [json.loads(line) for line in mapped.stdout.splitlines()]
    assert len(events) == len(path.read_bytes().splitlines())  # every sample: exactly one event, none refused
    assert {e["class_uid"] for e in events} == classes
    assert len({e["metadata"]["uid"] for e in events}) == len(events)


def test_map_reads_a_whole_api_response_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    responses = json.loads((FIXTURES / "api-responses.json").read_text())
    body = tmp_path / "page.json"
    body.write_text(json.dumps(responses["audit_page_1"], indent=2))
    code, events, _ = run(capsys, "map", "--source", "audit", "--input", str(body))
    assert code == 0 and len(events) == 2
    users = tmp_path / "users.json"
    users.write_text(json.dumps(responses["internal_users_page"]))
    code, events, _ = run(capsys, "map", "--source", "users", "--input", str(users))
    assert code == 0 and [e["user"]["uid"] for e in events] == [
        "alice.ng@contoso.example.org",
        "finance@contoso.example.org",
    ]


def test_bad_records_exit_one_but_good_ones_are_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = SAMPLES.read_text().splitlines()
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join([lines[0], "{not json", '{"auditType": "User Logged On"}', lines[1]]) + "\n")
    code, events, err = run(capsys, "map", "--source", "audit", "--input", str(data))
    assert code == 1
    assert len(events) == 2
    assert "line 2" in err and "#3 has no id" in err and "refused at mapping: 2 records" in err


def test_usage_errors_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map"]) == 2
    assert main(["map", "--source", "nope"]) == 2
    assert main(["map", "--source", "audit", "--input", "/does/not/exist"]) == 2
    assert "cannot read --input /does/not/exist" in capsys.readouterr().err
    assert main(["validate", "/does/not/exist"]) == 2  # exit 1 is "records refused"
    err = capsys.readouterr().err
    assert "error: cannot read /does/not/exist: No such file" in err and "--input" not in err


def test_validate_reports_position_uid_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = json.loads((Path(__file__).parent / "golden/authentication/logon_success_cloud.json").read_text())[
        "expected"
    ]
    bad = dict(good, time=12)
    data = tmp_path / "events.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in (good, bad)) + "\nnot json\n")
    code = main(["validate", str(data)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"line 2 uid={good['metadata']['uid']}: $.time" in err
    assert "line 3: not valid JSON" in err
    assert "1 valid, 2 invalid of 3 events" in err


class _ScriptedConnector:
    """Stands in for MimecastConnector in `_run_once`: yields prepared batches, optionally fails after them."""

    def __init__(self, batches: list, fail: bool = False) -> None:
        from connector.collector import RunSummary

        self._batches, self._fail, self.summary = batches, fail, RunSummary()

    def collect(self, checkpoint: object):  # type: ignore[no-untyped-def]
        yield from self._batches
        if self._fail:
            raise ConnectorError("page 3 failed")


def _batches(n: int) -> list:
    from connector.checkpoint import AuditState, Checkpoint
    from connector.events import Batch

    return [
        Batch("authentication", 3002, [{"n": i}], Checkpoint.of(audit=AuditState(cursor_ms=i, seen={f"id{i}": i})))
        for i in range(1, n + 1)
    ]


class _Store:
    def __init__(self, calls: list[tuple[str, int]] | None = None) -> None:
        self.saved: list[int | None] = []
        self.calls = [] if calls is None else calls

    def load(self) -> None:
        return None

    def save(self, checkpoint) -> None:  # type: ignore[no-untyped-def]
        self.saved.append(checkpoint.streams["audit"].cursor_ms)
        self.calls.append(("save", checkpoint.streams["audit"].cursor_ms))


class _Sink:
    def __init__(self, calls: list[tuple[str, int]] | None = None, sync_error: ConnectorError | None = None) -> None:
        self.written: list[int] = []
        self.syncs = 0
        self.calls = [] if calls is None else calls
        self._sync_error = sync_error

    def write(self, batch) -> None:  # type: ignore[no-untyped-def]
        self.written.extend(e["n"] for e in batch.events)
        self.calls.extend(("write", e["n"]) for e in batch.events)

    def sync(self) -> None:
        self.syncs += 1
        if self._sync_error is not None:
            raise self._sync_error
        self.calls.append(("sync", self.written[-1] if self.written else 0))


def _assert_every_save_follows_a_sync_of_what_it_covers(calls: list[tuple[str, int]]) -> None:
    """At each save: a sync since the previous save, no write since the last sync, and the saved checkpoint
    covers nothing beyond what that sync made durable (batch n carries cursor n)."""
    synced, written, synced_since_save = 0, 0, False
    for what, n in calls:
        if what == "write":
            written = n
        elif what == "sync":
            synced, synced_since_save = n, True
        else:
            assert synced_since_save, f"save of {n} without a sync since the previous save: {calls}"
            assert written == synced, f"save of {n} with writes after the last sync: {calls}"
            assert n <= synced, f"save of {n} covers batches not synced: {calls}"
            synced_since_save = False


def test_run_commits_the_newest_checkpoint_at_most_every_interval_and_at_the_end() -> None:
    from connector.cli import _run_once

    ticks = iter(range(0, 100))  # one second per clock read
    store, sink = _Store(), _Sink()
    code = _run_once(_ScriptedConnector(_batches(6)), store, [sink], commit_interval=3.0, clock=lambda: next(ticks))  # type: ignore[arg-type]
    assert code == 0
    assert sink.written == [1, 2, 3, 4, 5, 6]
    assert store.saved[-1] == 6  # the last checkpoint is always committed
    assert len(store.saved) < 6  # not after every batch
    assert store.saved == sorted(store.saved)


def test_run_commits_what_was_written_when_the_pass_fails() -> None:
    from connector.cli import _run_once

    store, sink = _Store(), _Sink()
    with pytest.raises(ConnectorError):
        _run_once(_ScriptedConnector(_batches(3), fail=True), store, [sink], commit_interval=1e9, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert sink.written == [1, 2, 3]
    assert store.saved == [3]  # covers exactly the written batches, nothing beyond


@pytest.mark.parametrize("fail", [False, True])
@pytest.mark.parametrize(("interval", "saves"), [(0.0, [1, 2, 3, 4, 5, 6]), (3.0, [3, 6]), (1e9, [6])])
def test_every_commit_is_preceded_by_a_sync_of_every_batch_it_covers(
    fail: bool, interval: float, saves: list[int]
) -> None:
    from connector.cli import _run_once

    ticks = iter(range(0, 100))  # one second per clock read
    calls: list[tuple[str, int]] = []
    store, sink = _Store(calls), _Sink(calls)
    connector = _ScriptedConnector(_batches(6), fail=fail)
    with pytest.raises(ConnectorError, match="page 3 failed") if fail else contextlib.nullcontext():
        _run_once(connector, store, [sink], commit_interval=interval, clock=lambda: next(ticks))  # type: ignore[arg-type]
    assert sink.written == [1, 2, 3, 4, 5, 6]
    assert store.saved == saves
    _assert_every_save_follows_a_sync_of_what_it_covers(calls)


def test_the_invariant_check_catches_a_save_before_the_sync() -> None:
    with pytest.raises(AssertionError, match="writes after the last sync"):
        _assert_every_save_follows_a_sync_of_what_it_covers([("write", 1), ("sync", 1), ("write", 2), ("save", 2)])
    with pytest.raises(AssertionError, match="without a sync"):
        _assert_every_save_follows_a_sync_of_what_it_covers([("write", 1), ("sync", 1), ("save", 1), ("save", 1)])


@pytest.mark.parametrize("interval", [0.0, 1e9])
def test_a_failed_sync_commits_nothing_and_is_not_retried(interval: float) -> None:
    from connector.cli import _run_once

    store, sink = _Store(), _Sink(sync_error=ConnectorError("cannot sync events to out.ndjson"))
    with pytest.raises(ConnectorError, match="cannot sync events to"):
        _run_once(_ScriptedConnector(_batches(3)), store, [sink], commit_interval=interval, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert store.saved == []
    assert sink.syncs == 1
    assert sink.written == ([1] if interval == 0.0 else [1, 2, 3])  # a periodic commit failing ends the pass


def test_when_the_pass_fails_and_the_sync_too_nothing_is_committed_and_the_pass_error_is_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from connector.cli import _run_once

    store, sink = _Store(), _Sink(sync_error=ConnectorError("cannot sync events to out.ndjson"))
    with pytest.raises(ConnectorError, match="page 3 failed"):
        _run_once(_ScriptedConnector(_batches(3), fail=True), store, [sink], commit_interval=1e9, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert store.saved == [] and sink.syncs == 1
    assert [r.error for r in caplog.records if r.message.startswith("checkpoint not committed")] == [  # type: ignore[attr-defined]
        "cannot sync events to out.ndjson"
    ]


def _run_cli_with_a_failing_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_once: Callable[..., int]
) -> tuple[int, Path]:
    """`run --output <file>` with the pass replaced by ``run_once`` and every fsync failing with EIO."""
    import connector.cli as cli
    import connector.sinks.ndjson as sink_module

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(sink_module.os, "fsync", broken)
    monkeypatch.setattr(cli, "_connector", lambda args: contextlib.nullcontext(None))
    monkeypatch.setattr(cli, "_run_once", run_once)
    out = tmp_path / "events.ndjson"
    return main(["run", "--config", "unused", "--state", str(tmp_path / "s.json"), "--output", str(out)]), out


def test_a_sync_error_when_the_run_closes_its_output_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_once(connector: object, store: object, sinks: list[NdjsonSink], **_: object) -> int:
        (sink,) = sinks
        sink.write(_batches(1)[0])  # written, never synced by the pass
        return 0

    code, out = _run_cli_with_a_failing_disk(tmp_path, monkeypatch, run_once)
    assert code == 7  # SinkError: the output could not be written
    assert capsys.readouterr().err.startswith(f"error: cannot sync events to {out}: Input/output error")


def test_a_sync_error_at_close_does_not_hide_the_error_that_ended_the_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def run_once(connector: object, store: object, sinks: list[NdjsonSink], **_: object) -> int:
        (sink,) = sinks
        sink.write(_batches(1)[0])
        raise CheckpointError("the checkpoint file is corrupt")

    code, out = _run_cli_with_a_failing_disk(tmp_path, monkeypatch, run_once)
    assert code == CheckpointError.exit_code != 1
    err = capsys.readouterr().err
    assert err.startswith("error: the checkpoint file is corrupt") and "cannot sync" not in err
    logged = [r.error for r in caplog.records if r.message == "output not synced at close"]  # type: ignore[attr-defined]
    assert len(logged) == 1 and logged[0].startswith(f"cannot sync events to {out}")


def test_a_failed_sync_is_reported_once_even_when_close_fails_with_it_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def run_once(connector: object, store: object, sinks: list[NdjsonSink], **_: object) -> int:
        (sink,) = sinks
        sink.write(_batches(1)[0])
        sink.sync()
        return 0

    code, out = _run_cli_with_a_failing_disk(tmp_path, monkeypatch, run_once)
    assert code == 7  # SinkError: the output could not be written
    assert capsys.readouterr().err.startswith(f"error: cannot sync events to {out}")
    assert not [r for r in caplog.records if r.message == "output not synced at close"]


def _map(tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, text: str) -> tuple[int, list[dict], str]:
    data = tmp_path / "input.json"
    data.write_text(text)
    return run(capsys, "map", "--source", source, "--input", str(data))


def test_a_users_page_whose_users_are_not_a_list_is_refused_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, events, err = _map(tmp_path, capsys, "users", '{"data":[{"users":null}]}')
    assert (code, events) == (1, []) and "data[0]: data[0].users is not a list" in err
    body = {"data": [{"users": [{"emailAddress": "a@contoso.example.org"}]}, {"users": 5}]}
    code, events, err = _map(tmp_path, capsys, "users", json.dumps(body))
    assert code == 1 and [e["user"]["uid"] for e in events] == ["a@contoso.example.org"]
    assert "refused at mapping: 1 records" in err and "data[1]" in err


def test_an_empty_response_body_is_zero_records_but_a_record_with_a_data_key_is_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = SAMPLES.read_text().splitlines()[0]
    code, events, err = _map(tmp_path, capsys, "audit", '{"data": [], "meta": {"status": 200}}\n' + line + "\n")
    assert code == 0 and len(events) == 1 and "refused" not in err
    code, events, err = _map(tmp_path, capsys, "audit", '{"data": [], "auditType": "Logon"}\n' + line + "\n")
    assert code == 1 and len(events) == 1 and "#1 has no id" in err and "refused at mapping: 1 records" in err
    code, events, err = _map(tmp_path, capsys, "audit", '{\n  "data": 5\n}\n')  # a whole, pretty-printed record
    assert code == 1 and events == [] and "#1 has no id" in err


@pytest.mark.parametrize("metadata", [[], 5, "x", None])
def test_validate_reports_an_event_whose_metadata_is_not_an_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], metadata: object
) -> None:
    data = tmp_path / "events.jsonl"
    data.write_text(json.dumps({"class_uid": 3002, "metadata": metadata}) + "\n")
    assert main(["validate", str(data)]) == 1
    assert "line 1 uid=None: " in capsys.readouterr().err


def test_validate_output_escapes_control_characters_from_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"class_uid": 3002, "metadata": {"uid": 'x\u001b[2J\n{"level":"forged"}'}}
    data = tmp_path / "events.jsonl"
    data.write_text(json.dumps(event) + "\n")
    assert main(["validate", str(data)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and '\n{"level"' not in err
    assert len(err.splitlines()) == 2  # one problem line and the summary: no forged line


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_map_to_a_full_device_is_exit_7_with_one_error_line() -> None:
    """Before: a traceback ending in OSError ENOSPC, exit 1 (read as "records refused")."""
    fixture = Path(__file__).parent / "fixtures" / "audit-records.jsonl"
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "connector.cli", "map", "--source", "audit", "--input", str(fixture)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == "error: cannot write the standard output: No space left on device (ENOSPC)"
