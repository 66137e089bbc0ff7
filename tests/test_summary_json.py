"""`run --summary-json FILE`: the human summary's figures as JSON, written atomically, masked, on failures too."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_http import AUDIT_URL, BASE, CLIENT_KEY, SECRET_VALUE, TOKEN_URL, token_json
from pytest_httpx import HTTPXMock

from connector.cli import main
from connector.collector import RunSummary
from connector.log import MASK
from connector.summary_json import SUMMARY_VERSION, summary_document, write_summary_json

pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMECAST_CLIENT_SECRET", SECRET_VALUE)


def write_config(tmp_path: Path) -> Path:
    config = {"api_base_url": BASE, "client_key": CLIENT_KEY, "event_types": ["audit"], "initial_lookback_hours": 1}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def rec(rid: str, when: datetime) -> dict[str, Any]:
    return {
        "id": rid,
        "auditType": "User Logged On",
        "category": "authentication_logs",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "user": "alice.ng@contoso.example.org",
        "eventInfo": "Successful authentication for alice.ng@contoso.example.org <Alice Ng>, IP: 198.51.100.23, "
        "Application: Mimecast Personal Portal, Method: Cloud",
    }


def serve(httpx_mock: HTTPXMock, records: list[dict[str, Any]]) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("cli-token"))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"status": 200, "pagination": {}}, "data": records, "fail": []})

    httpx_mock.add_callback(answer, method="POST", url=AUDIT_URL)


def run(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    summary = tmp_path / "report" / "summary.json"
    summary.parent.mkdir(exist_ok=True)
    argv = ["run", "--config", str(write_config(tmp_path)), "--state", str(tmp_path / "state.json")]
    code = main([*argv, "--output", str(tmp_path / "events.ndjson"), "--summary-json", str(summary), *extra])
    return code, summary


def test_the_json_carries_the_figures_of_the_human_summary(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    serve(httpx_mock, [rec("r1", now), rec("r2", now - timedelta(minutes=1))])
    code, path = run(tmp_path)
    err = capsys.readouterr().err
    assert code == 0, err
    doc = json.loads(path.read_text(encoding="ascii"))
    assert doc["version"] == SUMMARY_VERSION and doc["exit_code"] == 0 and doc["ok"] is True and doc["error"] is None
    assert "authentication: 2 events delivered" in err
    assert doc["tables"] == {"authentication": {"delivered": 2, "mapped": 2}}
    audit = doc["streams"]["audit"]
    assert audit["events"] == {"authentication": 2} and audit["refused"] == {}
    assert f"{audit['pages']} pages, {audit['records']} records read" in err
    assert f"audit window {audit['window']['start']} -> {audit['window']['end']}" in err
    assert f"audit cursor: {audit['cursor']}" in err
    h = doc["http"]
    assert f"http: {h['requests']} requests, {h['pages']} pages" in err and h["token_refreshes"] == 1
    assert doc["refused"] == {"total": 0, "by_stage": {}, "first": []}
    assert doc["duration_seconds"] >= 0 and doc["started_at"].endswith("Z")
    assert os.listdir(path.parent) == ["summary.json"]  # the temporary file was renamed, none left over


def test_refused_records_are_named_and_a_secret_in_tenant_text_is_masked(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    broken = rec(f"id-{SECRET_VALUE}", now)
    broken["eventTime"] = f"not a time {SECRET_VALUE}"
    serve(httpx_mock, [broken, rec("good", now)])
    code, path = run(tmp_path)
    err = capsys.readouterr().err
    text = path.read_text(encoding="ascii")
    assert code == 1
    assert SECRET_VALUE not in text and SECRET_VALUE not in err
    doc = json.loads(text)
    assert doc["exit_code"] == 1 and doc["ok"] is False
    assert doc["refused"]["total"] == 1 and doc["refused"]["by_stage"] == {"mapping": 1}
    (first,) = doc["refused"]["first"]
    assert first["record_id"] == f"id-{MASK}" and first["stage"] == "mapping"
    assert f"id-{MASK}: " in err  # the human summary names the same record
    assert doc["streams"]["audit"]["refused"] == {"mapping": 1}


def test_a_command_that_fails_before_a_pass_still_writes_its_exit_code_and_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    code, path = run(tmp_path)
    assert code == 6  # CheckpointError: nothing is pulled (no HTTP answer is registered)
    doc = json.loads(path.read_text(encoding="ascii"))
    assert doc["exit_code"] == 6 and "not JSON" in doc["error"] and "streams" not in doc
    assert capsys.readouterr().err.startswith("error: ")


def test_an_unwritable_summary_folder_fails_fast_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--config", str(write_config(tmp_path)), "--state", str(tmp_path / "state.json")]
    code = main([*argv, "--summary-json", str(tmp_path / "missing" / "summary.json")])
    assert code == 2
    assert "--summary-json" in capsys.readouterr().err
    assert not (tmp_path / "state.json").exists()


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "summary.json"
    write_summary_json(path, {"exit_code": 0})

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(Exception, match="No space left on device"):
        write_summary_json(path, {"exit_code": 1})
    assert json.loads(path.read_text()) == {"exit_code": 0}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_a_section_without_to_dict_falls_back_to_its_lines() -> None:
    class Plain:
        def lines(self) -> list[str]:
            return ["  plain: 3 things"]

    summary = RunSummary()
    summary.sections["plain"] = Plain()
    doc = summary_document(summary, exit_code=0, started_at_ms=0, duration_seconds=1.0)
    assert doc["streams"]["plain"] == {"lines": ["plain: 3 things"], "events": {}, "refused": {}}
    assert doc["started_at"] == "1970-01-01T00:00:00.000Z"
