"""Public eventInfo samples (tests/fixtures/public-eventinfo/, see PROVENANCE.md) are golden scenarios, and the
source address comes out of every phrasing they use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.testing import golden_mapper

ROOT = Path(__file__).resolve().parent
SAMPLES = sorted((ROOT / "fixtures" / "public-eventinfo").glob("*.jsonl"))
RECORDS = [json.loads(line) for path in SAMPLES for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_public_sample_is_a_golden_input() -> None:
    inputs = [json.loads(p.read_text(encoding="utf-8"))["input"] for p in (ROOT / "golden").rglob("*.json")]
    assert len(RECORDS) >= 16
    for record in RECORDS:
        assert record in inputs, record["id"]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["auditType"])
def test_every_public_sample_that_names_an_address_yields_it(record: dict[str, object]) -> None:
    mapped = golden_mapper().map_audit(record, 1)
    assert mapped is not None
    ip = "67.43.156.15" if "67.43.156.15" in str(record["eventInfo"]) else "54.243.138.179"
    assert ip in str(record["eventInfo"])
    event = mapped.event
    found = event.get("src_endpoint", {}).get("ip") or event["unmapped"]["event_info"].get("ip")
    assert found == ip
