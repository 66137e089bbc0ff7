"""The live progress of `run`: only on a terminal, nothing changes otherwise; log lines stay whole above it."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_http import AUDIT_URL, BASE, CLIENT_KEY, SECRET_VALUE, TOKEN_URL, token_json
from pytest_httpx import HTTPXMock
from rich.console import Console

import connector.cli
from connector.cli import main
from connector.collector import StreamCounts
from connector.log import configure_logging
from connector.progress import Progress, render, wanted
from connector.snapshot import PassSnapshot, StreamSnapshot

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)")


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMECAST_CLIENT_SECRET", SECRET_VALUE)


def write_config(tmp_path: Path) -> Path:
    config = {
        "api_base_url": BASE,
        "client_key": CLIENT_KEY,
        "event_types": ["audit"],
        "initial_lookback_hours": 1,
        "log_level": "DEBUG",
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def serve(httpx_mock: HTTPXMock) -> None:
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    record = {
        "id": "r1",
        "auditType": "User Logged On",
        "category": "authentication_logs",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "user": "alice.ng@contoso.example.org",
        "eventInfo": "Successful authentication for alice.ng@contoso.example.org <Alice Ng>, IP: 198.51.100.23",
    }
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("cli-token"))

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"status": 200, "pagination": {}}, "data": [record], "fail": []})

    httpx_mock.add_callback(answer, method="POST", url=AUDIT_URL)


def argv(tmp_path: Path, name: str) -> list[str]:
    config = write_config(tmp_path)
    return [
        "run",
        "--config",
        str(config),
        "--state",
        str(tmp_path / f"{name}.json"),
        "--output-dir",
        str(tmp_path / name),
    ]


def normalised(text: str) -> str:
    """The output with what differs between two runs a second apart (times, durations) blanked."""
    text = ISO.sub("<time>", text)
    return re.sub(r'"(elapsed|duration)[a-z_]*": [0-9.e-]+', r'"\1": <n>', text)


def test_progress_is_wanted_only_on_a_terminal_and_not_over_events_on_the_same_terminal() -> None:
    tty, pipe = Terminal(), io.StringIO()
    assert wanted(tty, disabled=False, events_to_stdout=False, stdout=tty) is True
    assert wanted(pipe, disabled=False, events_to_stdout=False, stdout=tty) is False
    assert wanted(tty, disabled=True, events_to_stdout=False, stdout=tty) is False  # --no-progress
    assert wanted(tty, disabled=False, events_to_stdout=True, stdout=tty) is False
    assert wanted(tty, disabled=False, events_to_stdout=True, stdout=pipe) is True  # run | jq


def test_without_a_terminal_the_output_is_the_same_as_with_no_progress(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    serve(httpx_mock)
    assert main(argv(tmp_path, "a")) == 0
    plain = capsys.readouterr()
    serve(httpx_mock)
    assert main([*argv(tmp_path, "b"), "--no-progress"]) == 0
    disabled = capsys.readouterr()
    assert "run summary:" in plain.err and "\x1b" not in plain.err
    assert normalised(plain.err) == normalised(disabled.err)
    assert plain.out == disabled.out == ""


def test_on_a_terminal_the_display_shows_and_goes_and_log_lines_stay_whole(
    tmp_path: Path, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(connector.cli.sys, "stderr", terminal)
    serve(httpx_mock)
    assert main(argv(tmp_path, "tty")) == 0
    text = terminal.getvalue()
    shown = ANSI.sub("", text)
    assert "records/s" in shown and "http: " in shown and "events: authentication 1" in shown
    summary = shown[shown.index("run summary:") :]
    assert "records/s" not in summary  # transient: the summary follows the display, not inside it
    assert "authentication: 1 events delivered" in summary
    # Each log line is printed whole above the display: the redraw's cursor codes come before it, never inside it.
    logs = [json.loads(line[line.index('{"level"') :]) for line in text.splitlines() if '{"level"' in line]
    assert {"access token obtained", "page fetched"} <= {log["message"] for log in logs}
    assert SECRET_VALUE not in text and "cli-token" not in text


def test_log_lines_go_back_to_their_stream_when_the_display_ends() -> None:
    before = io.StringIO()
    configure_logging("INFO", stream=before)
    terminal = Terminal()
    progress = Progress(terminal, lambda: PassSnapshot())
    with progress.showing():
        logging.getLogger("connector.test").info("during", extra={"n": 1})
    logging.getLogger("connector.test").info("after")
    assert '"message": "during"' in terminal.getvalue() and '"message": "during"' not in before.getvalue()
    assert '"message": "after"' in before.getvalue()


def test_the_rendering_shows_window_coverage_pages_records_rate_events_and_waits() -> None:
    hour = 3_600_000
    audit = StreamSnapshot(
        "audit",
        window=(0, 4 * hour),
        cursor_ms=hour,
        pages=12,
        records=3400,
        counts=StreamCounts({"authentication": 3000, "account_change": 100}, {"mapping": 2}, 5),
    )
    siem = StreamSnapshot("siem", pages=3, records=30, gaps=1)
    snapshot = PassSnapshot(
        (audit, siem),
        emitted={"authentication": 3000, "account_change": 100},
        refused={"mapping": 2},
        http={"requests": 20, "pages": 15, "retries": 4, "rate_limited": 3, "slept_seconds": 7.5, "token_refreshes": 2},
    )
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(render(snapshot, {"requests": 5, "token_refreshes": 1}, elapsed=10.0))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "audit" in text and " 25% of 1970-01-01T00:00:00Z -> 1970-01-01T04:00:00Z" in text
    assert "12 pages, 3,400 records, 3,100 events, 2 refused" in text and "340 records/s" in text
    assert "siem" in text and "1 gaps" in text
    assert "events: account_change 100, authentication 3,000; refused 2" in text
    assert "http: 15 requests, 15 pages, 4 retries, 3 x 429, waited 7.5 s, 1 tokens" in text


def test_a_failing_snapshot_does_not_end_the_pass(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Any:
        raise KeyError("boom")

    terminal = Terminal()
    with Progress(terminal, broken).showing():
        pass
    assert "progress unavailable" in ANSI.sub("", terminal.getvalue())


@pytest.mark.parametrize(
    ("argv", "to_stdout"),
    [
        ([], True),
        (["--output", "-"], True),
        (["--output", "ndjson:out", "--output", "-"], True),
        (["--output", "ndjson:out"], False),
        (["--output-dir", "out"], False),
        (["--output", "events.ndjson"], False),
    ],
)
def test_the_display_knows_when_events_share_the_terminal(argv: list[str], to_stdout: bool) -> None:
    from connector.cli import _events_to_stdout, build_parser

    args = build_parser().parse_args(["run", "--config", "c.json", *argv])
    assert _events_to_stdout(args) is to_stdout
