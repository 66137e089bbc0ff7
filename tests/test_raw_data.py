"""``raw_data_max_bytes``: the original record in OCSF ``raw_data`` (off by default), capped, on every record path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from connector.host import MimecastConnector
from connector.mapping.mapper import Mapper
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer
from connector.raw_data import RAW_DATA_SUGGESTED_CAP, raw_json, with_raw_data
from connector.simulator import Simulator, TenantSpec

GOLDEN = Path(__file__).resolve().parent / "golden"

AUDIT = {
    "id": "eNqRAW-1",
    "auditType": "User Logged On",
    "category": "authentication_logs",
    "eventTime": "2026-06-15T14:02:41+0000",
    "user": "zoe.ng@contoso.example.org",
    "eventInfo": "Successful authentication for zoe.ng@contoso.example.org <Zoë Ng>, IP: 198.51.100.23, "
    "Application: Mimecast Personal Portal, Method: Cloud",
}
USER = {"emailAddress": "zoe.ng@contoso.example.org", "name": "Zoë Ng", "domain": "contoso.example.org"}


def transformer(cap: int) -> Transformer:
    return Transformer(Mapper(clock_ms=lambda: 1_780_000_000_000), EventValidator(), raw_data_max_bytes=cap)


def test_off_leaves_the_event_untouched() -> None:
    event: dict[str, Any] = {"class_uid": 3002}
    assert with_raw_data(event, AUDIT, 0) is True
    assert event == {"class_uid": 3002}


def test_on_the_record_is_compact_json_in_the_senders_key_order_with_its_utf8_size() -> None:
    event: dict[str, Any] = {}
    assert with_raw_data(event, AUDIT, RAW_DATA_SUGGESTED_CAP) is True
    assert event["raw_data"].startswith('{"id":"eNqRAW-1","auditType":"User Logged On",')
    assert '", "' not in event["raw_data"] and '": ' not in event["raw_data"]  # compact: no separator spaces
    assert json.loads(event["raw_data"]) == AUDIT
    assert "Zoë" in event["raw_data"]  # kept as UTF-8, not escaped
    assert event["raw_data_size"] == len(event["raw_data"].encode("utf-8")) > len(event["raw_data"])


def test_a_record_at_the_cap_is_kept_and_one_byte_above_it_keeps_only_its_size() -> None:
    size = len(raw_json(AUDIT))
    at: dict[str, Any] = {}
    assert with_raw_data(at, AUDIT, size) is True and at["raw_data_size"] == size and "raw_data" in at
    above: dict[str, Any] = {}
    assert with_raw_data(above, AUDIT, size - 1) is False
    assert above == {"raw_data_size": size}  # a cut JSON text would not be JSON: no raw_data at all


def test_what_orjson_refuses_is_still_written_as_valid_json() -> None:
    record = {"id": "x", "big": 2**70, "lone": "\ud800"}
    text = raw_json(record).decode("utf-8")
    assert json.loads(text) == record


@pytest.mark.parametrize("cap", [0, RAW_DATA_SUGGESTED_CAP])
def test_the_transformer_adds_raw_data_to_audit_and_user_events_before_validation(cap: int) -> None:
    t = transformer(cap)
    audit = t.audit_record(dict(AUDIT), 1)
    (user,) = t.users([dict(USER)], 1_780_000_000_000)
    assert audit is not None
    for mapped, record in ((audit, AUDIT), (user, USER)):
        if cap:
            assert orjson.loads(mapped.event["raw_data"]) == record
            assert mapped.event["raw_data_size"] == len(orjson.dumps(record))
        else:
            assert "raw_data" not in mapped.event and "raw_data_size" not in mapped.event
    assert t.report.failures == 0 and t.report.raw_data_omitted == 0


def test_records_above_the_cap_are_emitted_without_raw_data_and_counted_in_the_summary() -> None:
    t = transformer(100)
    big = {**AUDIT, "eventInfo": AUDIT["eventInfo"] + " " + "x" * 200}
    small = {"id": "s", "auditType": "User Logged On", "category": "authentication_logs"}
    mapped = t.audit_record(big, 1)
    assert mapped is not None and "raw_data" not in mapped.event
    assert mapped.event["raw_data_size"] == len(orjson.dumps(big))
    assert t.report.raw_data_omitted == 1 and t.report.emitted["authentication"] == 1
    assert any("raw_data left out of 1 events" in line for line in t.report.summary_lines())
    # a record refused by the mapper is refused as before, and not counted as an omission
    assert t.audit_record({**small, "eventTime": "not a time"}, 2) is None
    assert t.report.raw_data_omitted == 1


def test_golden_scenarios_have_raw_data_exactly_when_they_ask_for_it() -> None:
    on = off = 0
    for path in sorted(GOLDEN.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        expected = data["expected"]
        events = expected if isinstance(expected, list) else [expected] if expected else []
        cap = data.get("raw_data_max_bytes", 0)
        for event in events:
            if not cap:
                off += 1
                assert "raw_data" not in event and "raw_data_size" not in event, path.name
                continue
            on += 1
            size = len(orjson.dumps(data["input"]))
            assert event["raw_data_size"] == size, path.name
            if size <= cap:
                assert orjson.loads(event["raw_data"]) == data["input"], path.name
            else:
                assert "raw_data" not in event, path.name
    assert on >= 5 and off >= 25


def test_a_pass_with_raw_data_on_puts_it_into_audit_and_inventory_events_but_not_membership_changes() -> None:
    """Through the whole connector against the simulator: the second directory pull sees membership changes."""
    with Simulator(TenantSpec(users=30, groups=6, domains=1, audit_events_per_day=200, days=1)) as sim:
        params = {
            "api_base_url": sim.base_url,
            "client_key": sim.client_id,
            "client_secret": sim.client_secret,
            "initial_lookback_hours": 2,
            "inventory_interval_minutes": 0,
            "raw_data_max_bytes": RAW_DATA_SUGGESTED_CAP,
        }
        with MimecastConnector(params) as connector:
            first = list(connector.collect(None))
            checkpoint = next(b.checkpoint for b in reversed(first) if b.checkpoint is not None)
            sim.mutate_memberships(seed=7, changes=4)
            second = list(connector.collect(checkpoint))
    by_table: dict[str, list[dict[str, Any]]] = {}
    for batch in first + second:
        if batch.table is None:
            continue
        by_table.setdefault(batch.table, []).extend(batch.events)
    assert by_table["authentication"] and by_table["user_inventory"]
    for table, events in by_table.items():
        for event in events:
            # Add User / Remove User derived from two directory pulls (audit group events are Audit Events)
            derived = event["metadata"]["product"]["feature"]["name"] == "User and Group Management" and (
                table == "group_management"
            )
            if derived:
                assert "raw_data" not in event and "raw_data_size" not in event
            else:
                raw = orjson.loads(event["raw_data"])
                assert isinstance(raw, dict), table
                if table == "user_inventory":
                    assert raw["emailAddress"].lower() == event["user"]["email_addr"].lower()
                else:
                    assert raw["id"] == event["metadata"]["original_event_uid"]
    assert any("raw_data" not in e for e in by_table["group_management"])  # some membership changes were seen
