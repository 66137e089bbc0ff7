"""The Arrow schema of each table: pinned by golden files, bounded in depth, and rows that always fit it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from parquet_events import email_events

from connector.registry import registry
from connector.sinks.arrow_schema import MAX_STRUCT_DEPTH, UNFIT_KEY, arrow_schema, table_converter

GOLDEN = Path(__file__).parent / "golden" / "arrow"
TABLES = sorted(registry().tables)


@pytest.mark.parametrize("table", TABLES)
def test_each_table_schema_equals_its_golden_file(table: str) -> None:
    """Regenerate with PARQUET_GOLDEN_UPDATE=1 (review the diff: a changed type breaks Security Lake's table)."""
    text = str(arrow_schema(table)) + "\n"
    path = GOLDEN / f"{table}.txt"
    if os.environ.get("PARQUET_GOLDEN_UPDATE"):
        path.write_text(text)
    assert path.read_text() == text


def _depth(data_type: pa.DataType) -> int:
    if pa.types.is_struct(data_type):
        return 1 + max((_depth(f.type) for f in data_type), default=0)
    if pa.types.is_list(data_type):
        return _depth(data_type.value_type)
    return 0


@pytest.mark.parametrize("table", TABLES)
def test_structs_stop_at_the_depth_bound_and_every_column_has_a_real_type(table: str) -> None:
    schema = arrow_schema(table)
    assert max(_depth(f.type) for f in schema) <= MAX_STRUCT_DEPTH
    assert all(not pa.types.is_null(f.type) for f in schema)
    assert schema.names == sorted(schema.names)
    assert schema.field("time").type == pa.int64()  # epoch ms, bigint in Athena
    assert schema.field("activity_id").type == pa.int32()  # an enum
    assert schema.field("unmapped").type == pa.string()  # free-form: JSON text
    assert schema.field("raw_data").type == pa.string()
    metadata = schema.field("metadata").type
    assert metadata.field("product").type.field("feature").type == pa.string()  # depth 3: JSON text


def test_recursive_objects_are_cut_into_json_text() -> None:
    actor = arrow_schema("authentication").field("actor").type
    process = actor.field("process").type
    assert process.field("parent_process").type == pa.string()  # a cycle (process in process)
    assert actor.field("user").type.field("groups").type == pa.string()  # depth 3


def _convert(table: str, events: list[dict[str, Any]]) -> tuple[pa.RecordBatch, list[str]]:
    unfit: list[str] = []
    batch = table_converter(table).record_batch(events, lambda event, path: unfit.append(path))
    return batch, unfit


@pytest.mark.parametrize("table", sorted(email_events()))
def test_events_convert_to_exactly_the_schema_with_json_text_where_it_has_no_shape(table: str) -> None:
    event = email_events()[table]
    batch, unfit = _convert(table, [event])
    assert unfit == []
    assert batch.schema == arrow_schema(table)
    row = batch.to_pylist()[0]
    assert row["time"] == event["time"]
    assert row["metadata"]["uid"] == event["metadata"]["uid"]
    assert row["metadata"]["product"]["feature"] == '{"name":"TTP"}'
    assert row["raw_data"] is None  # absent: a typed null


def test_a_value_that_does_not_fit_is_nulled_and_kept_in_unmapped_not_lost() -> None:
    good, bad = email_events()["email_activity"], email_events()["email_activity"]
    bad["email"]["size"] = 2**63  # JSON Schema's integer has no bound; int64 has
    bad["metadata"]["not_an_attribute"] = "x"
    batch, unfit = _convert("email_activity", [good, bad])
    assert sorted(unfit) == ["email.size", "metadata.not_an_attribute"]
    rows = batch.to_pylist()
    assert rows[0]["email"]["size"] == 12345
    assert rows[1]["email"]["size"] is None
    assert rows[1]["email"]["from"] == "sender@example.net"  # the rest of the event is there
    unmapped = json.loads(rows[1]["unmapped"])
    assert unmapped["route"] == "inbound"
    assert unmapped[UNFIT_KEY] == {"email.size": 2**63, "metadata.not_an_attribute": "x"}
