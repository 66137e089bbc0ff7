"""`run --loop --metrics-port`: Prometheus metrics scraped over HTTP during a real run against the simulator."""

from __future__ import annotations

import json
import socket
import threading
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import connector.cli
from connector.cli import main
from connector.collector import RunSummary, StreamCounts
from connector.metrics import ConnectorMetrics
from connector.simulator import Simulator, TenantSpec

SECRET = "metrics-S3cret-value-0123456789"
WAIT = 30.0  # seconds a step may take before the test gives up (never reached when it works)


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode("utf-8")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_metrics_are_scraped_during_a_loop_and_match_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = Simulator(TenantSpec(users=20, groups=4, domains=1, audit_events_per_day=400, days=1), client_secret=SECRET)
    # The first audit request waits until the test has scraped once: a scrape in the middle of a pass, for sure.
    in_pass, go_on = threading.Event(), threading.Event()
    answer_audit = sim._audit

    def held_audit(*args: Any) -> Any:
        if not in_pass.is_set():
            in_pass.set()
            go_on.wait(WAIT)
        return answer_audit(*args)

    monkeypatch.setattr(sim, "_audit", held_audit)
    # The loop's sleep between passes: say the pass is over, then stop the command as Ctrl-C would.
    between, stop = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        between.set()
        stop.wait(WAIT)
        raise KeyboardInterrupt

    monkeypatch.setattr(connector.cli, "time", types.SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    monkeypatch.setenv("MIMECAST_CLIENT_SECRET", SECRET)
    port = free_port()
    with sim:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"api_base_url": sim.base_url, "client_key": sim.client_id,
                                      "initial_lookback_hours": 6}))  # fmt: skip
        summary_path = tmp_path / "summary.json"
        argv = ["run", "--config", str(config), "--state", str(tmp_path / "state.json"), "--output-dir",
                str(tmp_path / "out"), "--loop", "60", "--metrics-port", str(port),
                "--summary-json", str(summary_path)]  # fmt: skip
        result: list[int] = []
        command = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
        command.start()
        try:
            assert in_pass.wait(WAIT), "the pass never asked for audit events"
            text, during = scrape(port)
            assert during[("mimecast_connector_run_in_progress", ())] == 1.0
            assert during[("mimecast_connector_token_refreshes_total", ())] == 1.0
            assert ("mimecast_connector_last_run_exit_code", ()) not in during  # no pass has finished yet
            go_on.set()
            assert between.wait(WAIT), "the first pass never ended"
            text, after = scrape(port)
        finally:
            go_on.set()
            stop.set()
            command.join(WAIT)
    assert result == [130]  # interrupted between passes, as Ctrl-C ends a loop
    summary = json.loads(summary_path.read_text())
    assert summary["exit_code"] == 0
    assert after[("mimecast_connector_run_in_progress", ())] == 0.0
    assert after[("mimecast_connector_runs_total", ())] == 1.0
    assert after[("mimecast_connector_last_run_exit_code", ())] == 0.0
    assert after[("mimecast_connector_last_run_duration_seconds", ())] > 0
    for stream, section in summary["streams"].items():
        for table, count in section["events"].items():
            assert after[("mimecast_connector_events_total", (("stream", stream), ("table", table)))] == count
    for table, figures in summary["tables"].items():
        assert after[("mimecast_connector_events_delivered_total", (("table", table),))] == figures["delivered"]
    audit = summary["streams"]["audit"]
    assert after[("mimecast_connector_records_read_total", (("stream", "audit"),))] == audit["records"] > 0
    assert after[("mimecast_connector_stream_pages_total", (("stream", "audit"),))] == audit["pages"]
    for key, name in (("requests", "requests"), ("pages", "pages"), ("rate_limited", "rate_limited"),
                      ("retries", "retries"), ("token_refreshes", "token_refreshes")):  # fmt: skip
        assert after[(f"mimecast_connector_{name}_total", ())] == summary["http"][key], name
    assert after[("mimecast_connector_wait_seconds_total", ())] == pytest.approx(summary["http"]["slept_seconds"])
    lag = after[("mimecast_connector_cursor_lag_seconds", (("stream", "audit"),))]
    assert 0 <= lag < 60 + summary["duration_seconds"]  # the cursor reached the window's end, "now" of the pass
    assert 0 <= after[("mimecast_connector_checkpoint_age_seconds", ())] < 60 + summary["duration_seconds"]
    # Only the connector's own labels, and no credential anywhere.
    labels = {name for (_, pairs) in after for name, _ in pairs}
    assert labels <= {"stream", "table", "stage"}
    assert SECRET not in text and "Bearer" not in text
    assert all(name.startswith(("mimecast_connector_", "process_", "python_")) for name, _ in after)


def test_metrics_need_a_loop_and_a_free_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_base_url": "https://api.services.mimecast.com", "client_key": "id"}))
    assert main(["run", "--config", str(config), "--metrics-port", "9000"]) == 2
    assert "--metrics-port needs --loop" in capsys.readouterr().err
    assert main(["run", "--config", str(config), "--loop", "5", "--metrics-port", "70000"]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["run", "--config", str(config), "--state", str(tmp_path / "s.json"), "--loop", "5"]
        env_secret = {"MIMECAST_CLIENT_SECRET": SECRET}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env_secret.items():
                patch.setenv(name, value)
            code = main([*argv, "--metrics-port", str(port), "--output", str(tmp_path / "e.ndjson")])
    assert code == 2
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_counters_never_go_down_across_passes() -> None:
    metrics = ConnectorMetrics(lambda: 0)
    first, second = RunSummary(), RunSummary()
    for summary, count in ((first, 3), (second, 2)):
        summary.marks["audit"] = StreamCounts()  # the stream started with the report empty
        metrics.begin(summary, None, None)
        summary.report.emitted["authentication"] += count
        summary.delivered["authentication"] += count
        live = {s.name: s for f in metrics.collect() for s in f.samples}
        metrics.end(summary, 0, 1.0)
        ended = {s.name: s for f in metrics.collect() for s in f.samples}
        assert (
            live["mimecast_connector_events_delivered_total"].value
            == ended["mimecast_connector_events_delivered_total"].value
        )
    assert ended["mimecast_connector_events_delivered_total"].value == 5
    assert ended["mimecast_connector_runs_total"].value == 2
