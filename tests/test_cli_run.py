"""`mimecast-connector run` and `check` in-process, against pytest-httpx (it patches every httpx transport).

The CLI runs on the real clock, so audit answers are callbacks that check the request body's format and serve
records placed inside whatever window was asked for.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_http import (
    AUDIT_URL,
    BASE,
    CLIENT_KEY,
    DOMAINS_URL,
    FIND_GROUPS_URL,
    GROUP_MEMBERS_URL,
    SECRET_VALUE,
    TOKEN_URL,
    USERS_URL,
    fixture,
    token_json,
)
from pytest_httpx import HTTPXMock

import connector.sinks.ndjson as sink_module
from connector.cli import main
from connector.errors import StateLockedError
from connector.store import StateLock

MC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000")


@pytest.fixture
def anchor() -> datetime:
    """Ten minutes ago, in whole seconds: inside the first window and inside the overlap of the next."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMECAST_CLIENT_SECRET", SECRET_VALUE)


def write_config(tmp_path: Path, **params: Any) -> Path:
    config = {
        "api_base_url": BASE,
        "client_key": CLIENT_KEY,
        "event_types": ["audit"],
        "initial_lookback_hours": 1,
        "overlap_minutes": 30,
        "log_level": "DEBUG",
        **params,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def rec(rid: str, when: datetime, audit_type: str = "User Logged On") -> dict[str, Any]:
    return {
        "id": rid,
        "auditType": audit_type,
        "category": "authentication_logs",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "user": "alice.ng@contoso.example.org",
        "eventInfo": "Successful authentication for alice.ng@contoso.example.org <Alice Ng>, IP: 198.51.100.23, "
        "Application: Mimecast Personal Portal, Method: Cloud",
    }


def serve_audit(records: list[dict[str, Any]]) -> Callable[[httpx.Request], httpx.Response]:
    """An audit answer: checks the body format, serves the records that fall inside the requested window."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        query = sent["data"][0]
        assert MC_TIME.fullmatch(query["startDateTime"]) and MC_TIME.fullmatch(query["endDateTime"])
        assert "pageToken" not in sent["meta"]["pagination"]
        start = datetime.strptime(query["startDateTime"], "%Y-%m-%dT%H:%M:%S%z")
        end = datetime.strptime(query["endDateTime"], "%Y-%m-%dT%H:%M:%S%z")
        assert end - start <= timedelta(hours=6)
        inside = [r for r in records if start <= datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%S%z") <= end]
        return httpx.Response(200, json={"meta": {"status": 200, "pagination": {}}, "data": inside, "fail": []})

    return answer


def expect_run(httpx_mock: HTTPXMock, records: list[dict[str, Any]]) -> None:
    """One CLI run = one connector = one token, then one audit request (a one-hour window is one slice)."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("cli-token"))
    httpx_mock.add_callback(serve_audit(records), method="POST", url=AUDIT_URL)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


# -- run ---------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("secret_env")
def test_run_writes_ndjson_and_state_and_a_second_run_writes_nothing_new(
    anchor: datetime, tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    state = tmp_path / "state" / "checkpoint.json"
    out = tmp_path / "events.ndjson"
    records = [rec("r1", anchor), rec("r2", anchor - timedelta(minutes=1))]
    argv = ("run", "--config", str(config), "--state", str(state), "--output", str(out))

    expect_run(httpx_mock, records)
    code, err = run(capsys, *argv)
    assert code == 0, err
    events = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(e["metadata"]["original_event_uid"] for e in events) == ["r1", "r2"]
    assert {e["class_uid"] for e in events} == {3002}
    checkpoint = json.loads(state.read_text())
    assert checkpoint["version"] == 2 and sorted(checkpoint["streams"]["audit"]["seen"]) == ["r1", "r2"]
    first_cursor = checkpoint["streams"]["audit"]["cursor_ms"]
    assert "run summary:" in err and "authentication: 2 events delivered" in err

    expect_run(httpx_mock, records)  # the overlap re-read returns both records again
    code, err = run(capsys, *argv)
    assert code == 0, err
    assert len(out.read_bytes().splitlines()) == 2  # nothing new
    assert "2 already delivered" in err
    assert json.loads(state.read_text())["streams"]["audit"]["cursor_ms"] >= first_cursor

    for text in (out.read_text(encoding="utf-8"), state.read_text(encoding="utf-8"), err):
        assert SECRET_VALUE not in text and "cli-token" not in text


def test_secret_in_the_config_file_stays_out_of_state_output_and_logs(
    anchor: datetime,
    tmp_path: Path,
    httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path, client_secret=SECRET_VALUE, event_types=["audit", "user_management"])
    state = tmp_path / "checkpoint.json"
    folder = tmp_path / "out"
    expect_run(httpx_mock, [rec("r1", anchor), rec("pw", anchor, "User Password Changed")])
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    httpx_mock.add_response(method="POST", url=GROUP_MEMBERS_URL, json=fixture("group_members_page"))
    httpx_mock.add_response(method="POST", url=GROUP_MEMBERS_URL, json=fixture("group_members_page"))
    httpx_mock.add_response(method="POST", url=DOMAINS_URL, json=fixture("internal_domains"))
    httpx_mock.add_response(method="POST", url=USERS_URL, json=fixture("internal_users_page"))
    httpx_mock.add_response(method="POST", url=USERS_URL, json=fixture("internal_users_page"))

    with caplog.at_level(logging.DEBUG):
        code, err = run(capsys, "run", "--config", str(config), "--state", str(state), "--output-dir", str(folder))
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == [
        "account_change.ndjson",
        "authentication.ndjson",
        "user_inventory.ndjson",
    ]
    for path in folder.iterdir():
        tables = {json.loads(line)["class_uid"] for line in path.read_bytes().splitlines()}
        assert len(tables) == 1
    assert json.loads(state.read_text())["streams"]["user_management"]["memberships"] is not None
    written = "".join(p.read_text(encoding="utf-8") for p in folder.iterdir()) + state.read_text() + err
    assert SECRET_VALUE not in written
    # The log really was at DEBUG (records as logged, before any redaction), and still no secret.
    assert any(r.levelno == logging.DEBUG and r.name.startswith("connector.") for r in caplog.records)
    assert SECRET_VALUE not in caplog.text + "".join(repr(vars(r)) for r in caplog.records)


@pytest.mark.usefixtures("secret_env")
def test_run_exits_1_when_records_were_refused_but_writes_the_good_ones(
    anchor: datetime, tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = rec("broken", anchor)
    broken["eventTime"] = "not a time"
    good = rec("good", anchor)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"status": 200}, "data": [broken, good], "fail": []})

    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t"))
    httpx_mock.add_callback(answer, method="POST", url=AUDIT_URL)
    out = tmp_path / "events.ndjson"
    state = tmp_path / "checkpoint.json"
    code, err = run(capsys, "run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output", str(out))
    assert code == 1
    assert [json.loads(line)["metadata"]["original_event_uid"] for line in out.read_bytes().splitlines()] == ["good"]
    assert "refused at mapping: 1 records" in err and "broken: " in err
    assert state.exists()


@pytest.mark.usefixtures("secret_env")
def test_run_exits_with_the_permission_code_and_names_the_product(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t"))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, status_code=403, json={"fail": [{"code": "app_forbidden"}]})
    state = tmp_path / "checkpoint.json"
    out = tmp_path / "events.ndjson"
    code, err = run(capsys, "run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output", str(out))
    assert code == 4
    assert "FAILED audit:" in err and "'Audit Events'" in err
    assert not state.exists()  # nothing to commit
    assert out.read_bytes() == b""


def test_run_with_a_bad_config_exits_2_and_names_the_parameter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIMECAST_CLIENT_SECRET", raising=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_base_url": BASE, "client_secret": SECRET_VALUE}))
    code, err = run(capsys, "run", "--config", str(config), "--state", str(tmp_path / "s.json"), "--output", "-")
    assert code == 2
    assert "client_key" in err and str(config) in err
    assert SECRET_VALUE not in err


@pytest.mark.usefixtures("secret_env")
def test_run_refuses_a_corrupt_state_file_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.json"
    state.write_text('{"version": 1, "audit": ')
    code, err = run(capsys, "run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output", "-")
    assert code == 6
    assert "corrupt" in err and str(state) in err
    assert state.read_text() == '{"version": 1, "audit": '


@pytest.mark.usefixtures("secret_env")
def test_run_refuses_a_state_file_whose_cursor_is_no_time_at_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cursor of 10**17 ms (year 3 million) crashed in ms_to_datetime; it is a corrupt checkpoint, left alone."""
    state = tmp_path / "checkpoint.json"
    text = json.dumps({"version": 1, "updated_at_ms": None, "audit": {"cursor_ms": 10**17, "seen": {}},
                       "inventory": {"collected_at_ms": None, "memberships": None}})  # fmt: skip
    state.write_text(text)
    code, err = run(capsys, "run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output", "-")
    assert code == 6, err
    assert "corrupt (audit.cursor_ms must be an integer from 0 to" in err and "Traceback" not in err
    assert state.read_text() == text


@pytest.mark.usefixtures("secret_env")
def test_run_to_stdout(
    anchor: datetime, tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_run(httpx_mock, [rec("r1", anchor)])
    code = main(["run", "--config", str(write_config(tmp_path)), "--state", str(tmp_path / "s.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [json.loads(line)["metadata"]["original_event_uid"] for line in captured.out.splitlines()] == ["r1"]
    assert "run summary:" not in captured.out  # the summary goes to stderr


# -- check -------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("secret_env")
def test_check_passes(tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t"))
    httpx_mock.add_callback(serve_audit([]), method="POST", url=AUDIT_URL)
    httpx_mock.add_response(method="POST", url=FIND_GROUPS_URL, json=fixture("find_groups_page"))
    code, err = run(capsys, "check", "--config", str(write_config(tmp_path, event_types=["audit", "user_management"])))
    assert code == 0, err
    assert "check passed: the API application may collect audit, user_management" in err


@pytest.mark.usefixtures("secret_env")
def test_check_names_the_proxy_without_its_password(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t"))
    httpx_mock.add_callback(serve_audit([]), method="POST", url=AUDIT_URL)
    proxy = "http://alice:pr0xy-pa55word-3@127.0.0.1:3128"
    code, err = run(capsys, "check", "--config", str(write_config(tmp_path, proxy_url=proxy)))
    assert code == 0, err
    assert "requests go through the proxy http://***@127.0.0.1:3128 (from proxy_url)" in err
    assert "pr0xy-pa55word-3" not in err


@pytest.mark.usefixtures("secret_env")
def test_check_403_names_audit_events(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("t"))
    httpx_mock.add_response(method="POST", url=AUDIT_URL, status_code=403, json={"fail": [{"code": "app_forbidden"}]})
    code, err = run(capsys, "check", "--config", str(write_config(tmp_path)))
    assert code == 4
    assert err.startswith("error: ") or "\nerror: " in err
    assert "'Audit Events'" in err and "app_forbidden" in err
    assert SECRET_VALUE not in err


@pytest.mark.usefixtures("secret_env")
def test_check_with_rejected_credentials_exits_3(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx_mock.add_response(
        method="POST",
        url=TOKEN_URL,
        status_code=401,
        json={"error": "invalid_client", "error_description": "Client authentication failed"},
    )
    code, err = run(capsys, "check", "--config", str(write_config(tmp_path)))
    assert code == 3
    assert SECRET_VALUE not in err


@pytest.mark.usefixtures("secret_env")
def test_run_with_an_unwritable_output_reports_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    state = tmp_path / "checkpoint.json"
    argv = ("run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output-dir", str(blocker / "out"))
    code, err = run(capsys, *argv)
    assert code == 7
    assert err.startswith("error: cannot create the output folder") and "Traceback" not in err
    assert not state.exists()


@pytest.mark.usefixtures("secret_env")
def test_run_whose_output_cannot_be_synced_does_not_advance_the_checkpoint(
    anchor: datetime,
    tmp_path: Path,
    httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "checkpoint.json"
    out = tmp_path / "events.ndjson"
    argv = ("run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output", str(out))
    expect_run(httpx_mock, [rec("r1", anchor)])
    code, err = run(capsys, *argv)
    assert code == 0, err
    committed = state.read_bytes()

    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the output's disk fails; the checkpoint's would still work
        if os.path.samestat(os.fstat(fd), out.stat()):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(sink_module.os, "fsync", fsync)
    expect_run(httpx_mock, [rec("r1", anchor), rec("r2", anchor + timedelta(seconds=1))])
    code, err = run(capsys, *argv)
    assert code == 7
    assert f"error: cannot sync events to {out}: Input/output error" in err
    assert state.read_bytes() == committed  # the checkpoint still ends before r2
    assert "r2" not in json.loads(committed)["streams"]["audit"]["seen"]
    assert [json.loads(line)["metadata"]["original_event_uid"] for line in out.read_bytes().splitlines()] == [
        "r1",
        "r2",
    ]  # r2 was written (and flushed), just not made durable: the next run delivers it again


@pytest.mark.usefixtures("secret_env")
@pytest.mark.parametrize("seconds", ["-1", "0", "-0.5", "nan", "inf", "-inf", "soon"])
def test_run_refuses_a_loop_interval_that_is_not_a_finite_positive_number(
    seconds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.json"
    argv = ("run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output-dir", str(tmp_path / "o"))
    code, err = run(capsys, *argv, f"--loop={seconds}")
    assert code == 2  # a usage error, before any request (pytest-httpx fails the test on an unexpected one)
    assert "argument --loop" in err and "Traceback" not in err
    assert not state.exists() and not (tmp_path / "o").exists()


@pytest.mark.usefixtures("secret_env")
def test_run_with_an_unwritable_state_fails_before_pulling(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    state = blocker / "checkpoint.json"
    out = tmp_path / "out"
    argv = ("run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output-dir", str(out))
    code, err = run(capsys, *argv)
    assert code == 6
    assert err.startswith(f"error: {state}: the checkpoint could not be written (File exists); nothing was"), err
    assert httpx_mock.get_requests() == [] and not out.exists()  # no token, no pull, no output


class _FillsUp(io.FileIO):
    """An output file on a disk with ``ROOM`` bytes left for it."""

    ROOM = 0

    def write(self, data: Any) -> int:
        room = self.ROOM - os.fstat(self.fileno()).st_size
        if room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(bytes(data[:room]))


@pytest.mark.usefixtures("secret_env")
def test_run_on_a_full_disk_exits_7_leaves_no_torn_line_and_keeps_the_checkpoint(
    anchor: datetime,
    tmp_path: Path,
    httpx_mock: HTTPXMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "checkpoint.json"
    out = tmp_path / "events.ndjson"
    argv = ("run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output", str(out))
    expect_run(httpx_mock, [rec("r1", anchor)])
    assert run(capsys, *argv)[0] == 0
    committed, written = state.read_bytes(), out.read_bytes()
    monkeypatch.setattr(_FillsUp, "ROOM", len(written) * 3 // 2)  # room for part of the next event line only

    real_open = open
    monkeypatch.setattr(
        sink_module,
        "open",
        lambda path, mode, buffering=-1: _FillsUp(path, mode) if "a" in mode else real_open(path, mode, buffering),
        raising=False,
    )
    expect_run(httpx_mock, [rec("r1", anchor), rec("r2", anchor + timedelta(seconds=1))])
    code, err = run(capsys, *argv)
    assert code == 7  # not 1 ("records refused")
    assert f"error: cannot write events to {out}: No space left on device [ENOSPC]: the disk" in err
    assert out.read_bytes() == written  # the half-written line was cut off again
    assert state.read_bytes() == committed

    monkeypatch.delattr(sink_module, "open")  # the disk has room again
    expect_run(httpx_mock, [rec("r1", anchor), rec("r2", anchor + timedelta(seconds=1))])
    assert run(capsys, *argv)[0] == 0
    assert [json.loads(line)["metadata"]["original_event_uid"] for line in out.read_bytes().splitlines()] == [
        "r1",
        "r2",
    ]


_HOLD_LOCK = """
import sys
from connector.store import StateLock
with StateLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.mark.usefixtures("secret_env")
def test_a_second_run_on_the_same_state_exits_8_naming_the_holder_and_pulls_nothing(
    tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs on one --state both succeeded and wrote every table twice; now the second stops before it pulls."""
    state = tmp_path / "checkpoint.json"
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(state)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        argv = ("run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output-dir", str(out))
        code, err = run(capsys, *argv)
    finally:
        holder.communicate(input="", timeout=30)
    assert code == 8
    assert err.startswith(f"error: {state}: another collector (pid {holder.pid}) is running on this checkpoint")
    assert httpx_mock.get_requests() == [] and not out.exists() and not state.exists()


@pytest.mark.usefixtures("secret_env")
def test_the_state_lock_is_held_for_the_whole_run_and_released_after_it(
    anchor: datetime, tmp_path: Path, httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "checkpoint.json"
    argv = ("run", "--config", str(write_config(tmp_path)), "--state", str(state), "--output", str(tmp_path / "e"))
    refused: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        try:  # while the pass pulls, the state is locked
            StateLock(state).acquire()
        except StateLockedError as exc:
            refused.append(str(exc))
        return serve_audit([rec("r1", anchor)])(request)

    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("cli-token"))
    httpx_mock.add_callback(answer, method="POST", url=AUDIT_URL)
    assert run(capsys, *argv)[0] == 0
    assert len(refused) == 1 and f"(pid {os.getpid()})" in refused[0]
    with StateLock(state):  # released at the end of the run
        pass
