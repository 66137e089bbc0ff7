"""End to end: `mimecast-connector run --output ndjson:DIR [--output parquet:DIR] --output hec:URL` against the
embedded simulator and the local HEC receiver (indexer acknowledgement on), over real sockets on 127.0.0.1.

What must hold: every table's events reach every output, the same ``metadata.uid`` set in each; a run whose HEC
output fails (an indexer that accepts and then loses the events) stops with the sink's exit code, names it, and
commits nothing, and the next run delivers again; a run killed (SIGKILL, a real subprocess) after the NDJSON and
Parquet outputs synced and while HEC's acknowledgements were pending commits nothing either, and the next run
delivers the same uids again to every output. Duplicates appear only after such a re-delivery, and then with the
same uids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hec_receiver import HecReceiver

from connector.cli import main
from connector.simulator import Simulator, TenantSpec

CLIENT_ID = "outputs-e2e-client"
SECRET = "outputs-e2e-S3cret/with+odd=chars"
TOKEN = "0e7c2b9a-5d41-4f8e-a3b6-9c1d2e3f4a5b"
SPEC = TenantSpec(seed=7, users=20, groups=4, domains=1, audit_events_per_day=300, days=2)


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SPEC, client_id=CLIENT_ID, client_secret=SECRET) as simulator:
        yield simulator


@pytest.fixture
def hec() -> Iterator[HecReceiver]:
    with HecReceiver(TOKEN, ack=True) as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMECAST_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)


def write_config(path: Path, sim: Simulator, event_types: list[str], **hec: Any) -> Path:
    settings = {"ack": True, "ack_poll_seconds": 0.01, "max_request_bytes": 16_384, "index": "mimecast", **hec}
    config = {
        "api_base_url": sim.base_url,
        "client_key": CLIENT_ID,
        "event_types": event_types,
        "log_level": "DEBUG",
        "outputs": {"hec": settings, "parquet": {"region": "eu-west-2", "account_id": "123456789012"}},
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def argv(config: Path, state: Path, out: Path, hec: HecReceiver, lake: Path | None = None) -> list[str]:
    """``run`` to NDJSON, then (with ``lake``) Parquet, then HEC: the runner syncs them in that order."""
    parquet = ["--output", f"parquet:{lake}"] if lake is not None else []
    return ["run", "--config", str(config), "--state", str(state), "--output", f"ndjson:{out}", *parquet,
            "--output", f"hec:{hec.url}"]  # fmt: skip


def ndjson_uids(out: Path) -> dict[str, Counter[str]]:
    """table -> how often each uid is in its file."""
    return {
        path.stem: Counter(json.loads(line)["metadata"]["uid"] for line in path.read_bytes().splitlines())
        for path in sorted(out.glob("*.ndjson"))
    }


def indexed_uids(hec: HecReceiver) -> dict[str, Counter[str]]:
    tables = {event["sourcetype"].removeprefix("ocsf:") for event in hec.indexed}
    return {table: hec.uids(f"ocsf:{table}") for table in sorted(tables)}


def parquet_uids(lake: Path) -> dict[str, Counter[str]]:
    """table -> how often each uid is in its Security Lake source (``ext/mimecast_<table>/...``)."""
    import pyarrow.parquet as pq

    found: dict[str, Counter[str]] = {}
    for path in sorted(lake.glob("ext/*/region=eu-west-2/accountId=123456789012/eventDay=*/*.parquet")):
        table = path.relative_to(lake).parts[1].removeprefix("mimecast_")
        uids = pq.read_table(path, columns=["metadata"]).column("metadata").combine_chunks().field("uid")
        found.setdefault(table, Counter()).update(uids.to_pylist())
    return found


def test_ndjson_parquet_and_hec_at_once_get_the_same_events_per_table(
    sim: Simulator, hec: HecReceiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.json", sim, ["audit", "user_management"])
    out, state, lake = tmp_path / "out", tmp_path / "state.json", tmp_path / "lake"
    code = main(argv(config, state, out, hec, lake))
    err = capsys.readouterr().err
    assert code == 0, err
    files, indexed, parquet = ndjson_uids(out), indexed_uids(hec), parquet_uids(lake)
    assert set(files) >= {"authentication", "user_inventory"}
    assert {table: set(c) for table, c in files.items()} == {table: set(c) for table, c in indexed.items()}
    assert {table: set(c) for table, c in files.items()} == {table: set(c) for table, c in parquet.items()}
    assert not list(lake.rglob("*.tmp"))  # every part was published whole before the commit
    for counts in (*files.values(), *indexed.values(), *parquet.values()):
        assert set(counts.values()) == {1}  # one run, no re-delivery: no duplicate anywhere
    first = json.loads((out / "authentication.ndjson").read_bytes().splitlines()[0])
    (envelope,) = [e for e in hec.indexed if e["event"]["metadata"]["uid"] == first["metadata"]["uid"]]
    assert envelope == {
        "time": first["time"] / 1000,
        "source": "mimecast",
        "sourcetype": "ocsf:authentication",
        "index": "mimecast",
        "event": first,
    }
    requests = hec.event_requests()
    assert len(requests) > 1 and max(r.size for r in requests) <= 16_384 and hec.ack_queries >= 1
    assert {r.channel for r in requests} == {requests[0].channel} and requests[0].channel
    assert json.loads(state.read_text())["streams"]["audit"]["cursor_ms"]
    for text in (err, state.read_text(), *(p.read_text() for p in out.glob("*.ndjson"))):
        assert TOKEN not in text and SECRET not in text


def test_a_failing_hec_stops_the_run_names_the_sink_commits_nothing_and_the_next_run_delivers_again(
    sim: Simulator, hec: HecReceiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.json", sim, ["audit"], ack_timeout_seconds=0.05, max_resends=1)
    out, state = tmp_path / "out", tmp_path / "state.json"
    hec.faults.crash_before_ack = True  # the indexer takes the events, then dies before indexing them
    code = main(argv(config, state, out, hec))
    err = capsys.readouterr().err
    assert code == 7, err  # SinkError: an output did not take the events
    assert f"error: Splunk HEC at {hec.url} never acknowledged" in err and "next run delivers them again" in err
    assert not state.exists() and hec.indexed == []
    first = ndjson_uids(out)
    assert first and all(set(c.values()) == {1} for c in first.values())  # NDJSON synced before HEC's sync

    hec.faults.crash_before_ack = False
    code = main(argv(config, state, out, hec))
    assert code == 0, capsys.readouterr().err
    files, indexed = ndjson_uids(out), indexed_uids(hec)
    assert {t: set(c) for t, c in files.items()} == {t: set(c) for t, c in indexed.items()}
    for table, counts in files.items():
        assert {uid for uid, n in counts.items() if n == 2} == set(first[table])  # re-delivered: the same uids
        assert max(counts.values()) == 2 and set(indexed[table].values()) == {1}
    assert state.exists()


def test_a_run_killed_between_the_file_syncs_and_the_hec_sync_redelivers_and_never_commits_past_hec(
    sim: Simulator, hec: HecReceiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.json", sim, ["audit"], ack_timeout_seconds=600)
    out, state, lake = tmp_path / "out", tmp_path / "state.json", tmp_path / "lake"
    hec.faults.hold_acks = True  # indexed, but no ack turns true: the run waits in HEC's sync
    env = {**os.environ, "MIMECAST_CLIENT_SECRET": SECRET, "SPLUNK_HEC_TOKEN": TOKEN}
    log = tmp_path / "killed-run.log"  # a file, not a pipe: a full pipe would block the run before it gets there
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", *argv(config, state, out, hec, lake)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            reached = hec.first_ack_query.wait(timeout=120)  # a bound on a hang, not a timing assertion
        finally:
            process.kill()
            process.wait()
    assert reached, log.read_text(errors="replace")[-2000:]
    assert process.returncode == -9
    assert not state.exists()  # nothing committed past the sink that had not synced
    first = ndjson_uids(out)
    killed_run = indexed_uids(hec)
    assert first and {t: set(c) for t, c in first.items()} == {t: set(c) for t, c in killed_run.items()}
    # the Parquet output synced before HEC's sync too: its parts are published, whole, and hold the same events
    assert {t: set(c) for t, c in parquet_uids(lake).items()} == {t: set(c) for t, c in first.items()}

    hec.faults.hold_acks = False
    code = main(argv(config, state, out, hec, lake))
    assert code == 0, capsys.readouterr().err
    files, indexed, parquet = ndjson_uids(out), indexed_uids(hec), parquet_uids(lake)
    assert {t: set(c) for t, c in files.items()} == {t: set(c) for t, c in indexed.items()}
    assert {t: set(c) for t, c in files.items()} == {t: set(c) for t, c in parquet.items()}
    for table in files:
        for counts in (
            files[table],
            indexed[table],
            parquet[table],
        ):  # in both outputs, twice: exactly the killed run's uids
            assert {uid for uid, n in counts.items() if n == 2} == set(first[table])
            assert max(counts.values()) == 2
    assert json.loads(state.read_text())["streams"]["audit"]["cursor_ms"]
