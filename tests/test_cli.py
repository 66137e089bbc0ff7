"""`mimecast-connector map` and `validate`: input shapes, exit codes, and the pipe from the issue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector.cli import main

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
