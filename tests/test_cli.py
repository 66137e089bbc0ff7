"""`mimecast-connector map` and `validate`: input shapes, exit codes, and the pipe from the issue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector.cli import main
from connector.errors import ConnectorError

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
    assert main(["map", "--source", "audit", "--input", "/does/not/exist"]) == 1
    assert "cannot read --input /does/not/exist" in capsys.readouterr().err


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
    from connector.collector import Batch

    return [
        Batch("authentication", 3002, [{"n": i}], Checkpoint(audit=AuditState(cursor_ms=i, seen={f"id{i}": i})))
        for i in range(1, n + 1)
    ]


class _Store:
    def __init__(self) -> None:
        self.saved: list[int | None] = []

    def load(self) -> None:
        return None

    def save(self, checkpoint) -> None:  # type: ignore[no-untyped-def]
        self.saved.append(checkpoint.audit.cursor_ms)


class _Sink:
    def __init__(self) -> None:
        self.written: list[int] = []

    def write(self, batch) -> None:  # type: ignore[no-untyped-def]
        self.written.extend(e["n"] for e in batch.events)


def test_run_commits_the_newest_checkpoint_at_most_every_interval_and_at_the_end() -> None:
    from connector.cli import _run_once

    ticks = iter(range(0, 100))  # one second per clock read
    store, sink = _Store(), _Sink()
    code = _run_once(_ScriptedConnector(_batches(6)), store, sink, commit_interval=3.0, clock=lambda: next(ticks))  # type: ignore[arg-type]
    assert code == 0
    assert sink.written == [1, 2, 3, 4, 5, 6]
    assert store.saved[-1] == 6  # the last checkpoint is always committed
    assert len(store.saved) < 6  # not after every batch
    assert store.saved == sorted(store.saved)


def test_run_commits_what_was_written_when_the_pass_fails() -> None:
    from connector.cli import _run_once

    store, sink = _Store(), _Sink()
    with pytest.raises(ConnectorError):
        _run_once(_ScriptedConnector(_batches(3), fail=True), store, sink, commit_interval=1e9, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert sink.written == [1, 2, 3]
    assert store.saved == [3]  # covers exactly the written batches, nothing beyond
