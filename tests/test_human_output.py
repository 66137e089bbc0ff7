"""Secrets and terminal control in every line a person reads (issue 10, items 3 and 12).

A server that echoes the access token and the client secret in an error, and a tenant whose record ids or audit
types carry ANSI escapes, newlines or bidi overrides, must not reach the terminal summary, the ``error:`` line or
the JSON logs as they are. These tests run the real CLI in-process against pytest-httpx.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from client_calls import audit_events
from helpers_http import AUDIT_URL, BASE, CLIENT_KEY, SECRET_VALUE, TOKEN_URL, token_json
from pytest_httpx import HTTPXMock

from connector.api.auth import MimecastAuth
from connector.api.client import MimecastClient
from connector.cli import main
from connector.collector import RunSummary
from connector.errors import ApiError
from connector.log import MASK, safe_line
from connector.pipeline import RecordError, Report
from connector.secret import Secret

TOKEN = "tok-echoed-by-the-server-0123456789"
HOSTILE_ID = 'evil\x1b[2J\x1b[31m\n{"level": "ERROR", "message": "forged"}\u202e'


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMECAST_CLIENT_SECRET", SECRET_VALUE)


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    params = {
        "api_base_url": BASE,
        "client_key": CLIENT_KEY,
        "event_types": ["audit"],
        "log_level": "DEBUG",
        "initial_lookback_hours": 1,
    }
    path.write_text(json.dumps(params), encoding="utf-8")
    return path


def echoing_error() -> dict[str, Any]:
    message = f"request with Authorization {TOKEN} for client secret {SECRET_VALUE} is not allowed"
    return {"meta": {"status": 400}, "data": [], "fail": [{"errors": [{"code": "err_echo", "message": message}]}]}


def assert_clean(text: str) -> None:
    assert TOKEN not in text
    assert SECRET_VALUE not in text
    assert "\x1b" not in text
    assert "\u202e" not in text


def test_a_server_error_echoing_the_token_and_secret_is_masked_in_summary_and_logs(
    httpx_mock: HTTPXMock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json(TOKEN))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, status_code=400, json=echoing_error())
    argv = ["run", "--config", str(write_config(tmp_path)), "--state", str(tmp_path / "s.json")]
    code = main([*argv, "--output", str(tmp_path / "out.ndjson")])
    err = capsys.readouterr().err
    assert code == 5
    summary = [line for line in err.splitlines() if line.startswith("  FAILED audit")]
    assert summary and MASK in summary[0] and "err_echo" in summary[0]
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line["message"] == "collection failed" and MASK in line["error"] for line in logs)
    assert_clean(err)


def test_the_error_itself_holds_no_echoed_secret(httpx_mock: HTTPXMock) -> None:
    """Not only the printed lines: ``str(error)`` and ``repr(error)`` too, for a host that logs or stores them
    itself (before, both held the token and the secret)."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json(TOKEN))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, status_code=400, json=echoing_error())
    end = datetime.now(UTC)
    with (
        MimecastClient(BASE, MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(SECRET_VALUE))) as client,
        pytest.raises(ApiError) as caught,
    ):
        list(audit_events(client, end - timedelta(hours=1), end))
    assert "err_echo" in str(caught.value) and MASK in str(caught.value)
    assert_clean(str(caught.value))
    assert_clean(repr(caught.value))


def test_the_error_line_of_check_is_masked(
    httpx_mock: HTTPXMock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json(TOKEN))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, status_code=400, json=echoing_error())
    code = main(["check", "--config", str(write_config(tmp_path))])
    err = capsys.readouterr().err
    assert code == 5
    [error_line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert MASK in error_line
    assert_clean(err)


def test_hostile_record_ids_and_audit_types_cannot_repaint_the_terminal_or_forge_a_log_line(
    httpx_mock: HTTPXMock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    when = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    records = [
        {"id": HOSTILE_ID, "auditType": "User Logged On", "eventTime": "not a time", "eventInfo": "x"},
        {"id": "ok-1", "auditType": "Strange\x1b]0;pwned\x07Type\n", "eventTime": when, "eventInfo": "y"},
    ]
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json(TOKEN))
    httpx_mock.add_response(
        method="POST", url=AUDIT_URL, json={"meta": {"status": 200, "pagination": {}}, "data": records, "fail": []}
    )
    argv = ["run", "--config", str(write_config(tmp_path)), "--state", str(tmp_path / "s.json")]
    main([*argv, "--output", str(tmp_path / "out.ndjson")])
    err = capsys.readouterr().err
    assert_clean(err)
    assert "\x07" not in err
    # Every stderr line is either a JSON log line or a summary line: the newline in the id forged neither.
    for line in err.splitlines():
        if line.startswith("{"):
            assert json.loads(line)["message"] != "forged"
    assert "evil\\x1b[2J\\x1b[31m\\x0a" in err
    assert "Strange\\x1b]0;pwned\\x07Type\\x0a" in err


def test_summary_lines_are_safe_whatever_the_host_prints_them_with() -> None:
    report = Report()
    report.add_error(RecordError(HOSTILE_ID, "mapping", "bad\rtext"))
    report.other_types["Type\u2028Two"] += 1
    summary = RunSummary(report=report, failures={"audit": f"server said {SECRET_VALUE}\x1b[0m"})
    text = "\n".join(summary.lines())
    assert_clean(text)
    assert "\r" not in text and "\u2028" not in text
    assert len(summary.lines()) == len(text.split("\n"))  # no line holds a line break


def test_safe_line_is_idempotent_and_keeps_ordinary_text() -> None:
    ordinary = "  authentication: 12 events — Zoë's logon from 198.51.100.7 ✓"
    assert safe_line(ordinary) == ordinary
    once = safe_line(HOSTILE_ID)
    assert safe_line(once) == once


def test_an_unregistered_short_token_is_not_needed_for_the_bearer_form_to_be_masked() -> None:
    # The Bearer pattern masks tokens of any length; registration covers the echoes without the word Bearer.
    assert "t1" not in safe_line("Authorization: Bearer t1").split("Bearer")[1]
