"""The Parquet layout read back with DuckDB equals the NDJSON of the same run, table by table, event by event.

One run of the connector against the embedded simulator (audit + directory tables) goes through ``deliver`` into an
``NdjsonSink`` and a ``ParquetSink`` at once; a hand-built valid event of each email class is delivered too. Every
Parquet file is then read with ``read_parquet('<root>/**/*.parquet', hive_partitioning=true)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from parquet_events import email_events

from connector.events import Batch
from connector.host import MimecastConnector
from connector.ocsf.validate import EventValidator
from connector.runner import deliver
from connector.simulator import Simulator, TenantSpec
from connector.sinks.ndjson import NdjsonSink
from connector.sinks.parquet import ParquetSink, default_source_name
from connector.store import CheckpointStore

CLIENT_ID = "parquet-client"
SECRET = "parquet-S3cret/+="


def _restore(value: Any, original: Any) -> Any:
    """A Parquet value back in the event's shape: nulls dropped, JSON-text columns parsed where the event has JSON."""
    if isinstance(value, str) and not isinstance(original, str):
        return json.loads(value)
    if isinstance(value, dict):
        source = original if isinstance(original, dict) else {}
        return {k: _restore(v, source.get(k)) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        source = original if isinstance(original, list) else []
        return [_restore(v, source[i] if i < len(source) else None) for i, v in enumerate(value)]
    return value


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("parquet-e2e")
    spec = TenantSpec(seed=7, users=30, groups=5, domains=1, audit_events_per_day=600, days=2)
    with Simulator(spec, client_id=CLIENT_ID, client_secret=SECRET) as sim:
        parameters = {
            "api_base_url": sim.base_url,
            "client_key": CLIENT_ID,
            "client_secret": SECRET,
            "event_types": ["audit", "user_management"],
            "initial_lookback_hours": 72,
            "inventory_interval_minutes": 0,
            "log_level": "WARNING",
        }
        ndjson = NdjsonSink(str(root / "ndjson"), per_table=True)
        parquet = ParquetSink(str(root / "lake"), region="us-east-1", account_id="123456789012", buffer_rows=500)
        store = CheckpointStore(root / "state.json")
        with MimecastConnector(parameters, environ={}) as connector:
            extra = [Batch(table, None, [event], None) for table, event in email_events().items()]
            deliver([*connector.collect(None), *extra], [ndjson, parquet], store)
        ndjson.close()
        parquet.close()
    yield root / "ndjson", root / "lake"


def _ndjson(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text().splitlines() if line]
        for path in sorted(folder.glob("*.ndjson"))
    }


def test_every_parquet_row_equals_its_ndjson_event(outputs: tuple[Path, Path]) -> None:
    ndjson_dir, lake = outputs
    expected = _ndjson(ndjson_dir)
    assert {"authentication", "account_change", "group_management", "user_inventory"} <= set(expected)
    assert set(email_events()) <= set(expected)
    validator = EventValidator()
    connection = duckdb.connect()
    for table, events in expected.items():
        assert all(not validator.problems(event) for event in events[:50])
        glob = f"{lake}/ext/{default_source_name(table)}/**/*.parquet"
        result = connection.execute(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true)")
        names = [column[0] for column in result.description]
        rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        assert len(rows) == len(events), table
        by_uid = {event["metadata"]["uid"]: event for event in events}
        for row in rows:
            assert (row.pop("region"), str(row.pop("accountId"))) == ("us-east-1", "123456789012")  # hive: typed
            day = str(row.pop("eventDay"))
            original = by_uid[row["metadata"]["uid"]]
            assert _restore(row, original) == original, table
            assert day == _utc_day(original["time"])


def test_counts_per_table_with_one_duckdb_query_over_the_whole_lake(outputs: tuple[Path, Path]) -> None:
    ndjson_dir, lake = outputs
    expected = {table: len(events) for table, events in _ndjson(ndjson_dir).items()}
    counts = duckdb.sql(
        f"SELECT regexp_extract(filename, '/ext/([^/]+)/', 1) AS source, count(*) "
        f"FROM read_parquet('{lake}/**/*.parquet', hive_partitioning=true, filename=true, union_by_name=true) "
        "GROUP BY source"
    ).fetchall()
    assert dict(counts) == {default_source_name(table): count for table, count in expected.items()}


def _utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d")
