"""Mapper behaviour beyond the golden files: dispatch, accounting, determinism, errors, options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.errors import MappingError
from connector.mapping.mapper import Mapper
from connector.mapping.snapshot import GroupMembers, diff_memberships
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer

SAMPLES = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "audit-records.jsonl").open()]
CLOCK = 1_790_000_000_000


def record(**overrides: Any) -> dict[str, Any]:
    base = dict(SAMPLES[0])
    base.update(overrides)
    return base


@pytest.fixture
def mapper() -> Mapper:
    return Mapper(clock_ms=lambda: CLOCK)


def test_samples_map_to_the_prescribed_class_activity_status(mapper: Mapper) -> None:
    got = []
    for position, raw in enumerate(SAMPLES):
        mapped = mapper.map_audit(raw, position)
        got.append(
            None if mapped is None else (mapped.class_uid, mapped.event["activity_id"], mapped.event["status_id"])
        )
    assert got == [
        (3002, 1, 1), (3002, 1, 1), (3002, 1, 2), (3002, 1, 99), (3002, 1, 1),
        (3001, 3, 1), (3006, 6, 1), None, None,
    ]  # fmt: skip


def test_time_is_utc_milliseconds_and_logged_time_is_the_clock(mapper: Mapper) -> None:
    mapped = mapper.map_audit(record(eventTime="2026-03-02T10:14:05+0100"), 0)
    assert mapped is not None
    assert mapped.event["time"] == 1772442845000
    assert mapped.event["metadata"]["logged_time"] == CLOCK


def test_uid_is_deterministic_per_audit_id(mapper: Mapper) -> None:
    first, again, other = (mapper.map_audit(record(id=i), 0) for i in ("A1", "A1", "A2"))
    assert first and again and other
    assert first.event["metadata"]["uid"] == again.event["metadata"]["uid"] != other.event["metadata"]["uid"]
    assert (
        Mapper(clock_ms=lambda: 1).map_audit(record(id="A1"), 0).event["metadata"]["uid"]
        == (  # type: ignore[union-attr]
            first.event["metadata"]["uid"]
        )
    )


def test_every_raw_field_is_mapped_dropped_or_unmapped(mapper: Mapper) -> None:
    mapped = mapper.map_audit(record(auditTypeId=42, extra={"nested": True}), 0)
    assert mapped is not None
    assert mapped.event["unmapped"]["auditTypeId"] == 42
    assert mapped.event["unmapped"]["extra"] == {"nested": True}
    assert "id" not in mapped.event["unmapped"]


def test_parsed_fields_without_a_home_go_to_unmapped(mapper: Mapper) -> None:
    mapped = mapper.map_audit(SAMPLES[5], 0)  # password reset: "detail" has no OCSF home
    assert mapped is not None
    assert mapped.event["unmapped"]["event_info"]["detail"] == "User Password Changed"


def test_invalid_ip_is_not_mapped_but_kept(mapper: Mapper) -> None:
    raw = record(eventInfo=SAMPLES[0]["eventInfo"].replace("198.51.100.23", "999.1.1.1"))
    mapped = mapper.map_audit(raw, 0)
    assert mapped is not None
    assert "src_endpoint" not in mapped.event
    assert mapped.event["unmapped"]["event_info"]["ip"] == "999.1.1.1"


def test_base_event_only_when_asked() -> None:
    assert Mapper().map_audit(SAMPLES[8], 0) is None
    mapped = Mapper(emit_other=True).map_audit(SAMPLES[8], 0)
    assert mapped is not None and mapped.class_uid == 0
    assert mapped.event["activity_name"] == "Completed Directory Sync"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("text", "#7 is not a JSON object"),
        ({"auditType": "User Logged On"}, "#7 has no id"),
        ({"id": "", "auditType": "x"}, "#7 has no id"),
        ({"id": "R1", "eventTime": "2026-01-01T00:00:00+0000"}, "R1 has no auditType"),
        (
            {"id": "R2", "auditType": "User Logged On", "eventTime": "2026-01-01 00:00"},
            "R2 has an unparseable eventTime",
        ),
        ({"id": "R3", "auditType": "User Logged On"}, "R3 has an unparseable eventTime None"),
    ],
)
def test_unmappable_records_name_the_record(mapper: Mapper, raw: object, expected: str) -> None:
    with pytest.raises(MappingError, match=expected):
        mapper.map_audit(raw, 7)


def test_transformer_counts_errors_and_other_types_and_keeps_going() -> None:
    transformer = Transformer(Mapper(), EventValidator())
    records: list[object] = [SAMPLES[0], "junk", {"id": "X"}, SAMPLES[8], SAMPLES[7], SAMPLES[1]]
    events = list(transformer.audit(records))
    assert [e.record_id for e in events] == [SAMPLES[0]["id"], SAMPLES[1]["id"]]
    report = transformer.report
    assert report.failed == {"mapping": 2}
    assert [e.record_id for e in report.errors] == ["#1", "X"]
    assert report.other_types == {"Completed Directory Sync": 1, "Search Action": 1}
    assert report.emitted == {"authentication": 2}


def test_validation_failure_is_reported_with_the_record_id() -> None:
    class BrokenMapper(Mapper):
        def map_audit(self, record: object, position: int):  # type: ignore[no-untyped-def]
            mapped = super().map_audit(record, position)
            assert mapped is not None
            mapped.event["time"] = 1772442845  # seconds, not ms
            return mapped

    transformer = Transformer(BrokenMapper(), EventValidator())
    assert list(transformer.audit([SAMPLES[0]])) == []
    assert transformer.report.errors[0].record_id == SAMPLES[0]["id"]
    assert "$.time" in transformer.report.errors[0].message


def test_membership_diff_events() -> None:
    before = {"g1": GroupMembers("Finance", frozenset({"a@x.example.com", "b@x.example.com"}))}
    after = {"g1": GroupMembers("Finance", frozenset({"a@x.example.com", "c@x.example.com"})),
             "g2": GroupMembers("New", frozenset({"d@x.example.com"}))}  # fmt: skip
    changes = diff_memberships(before, after)
    assert [(c.group_id, c.member, c.added) for c in changes] == [
        ("g1", "c@x.example.com", True), ("g1", "b@x.example.com", False), ("g2", "d@x.example.com", True),
    ]  # fmt: skip
    events = Mapper().map_membership_changes(changes, CLOCK, baseline_ms=CLOCK - 3_600_000)
    assert [e.event["activity_id"] for e in events] == [3, 4, 3]
    assert events[0].event["group"] == {"uid": "g1", "name": "Finance"}
    assert all(EventValidator().problems(e.event) == [] for e in events)
    assert diff_memberships(after, after) == []


def test_membership_change_uids_are_stable_when_the_same_diff_is_pulled_again() -> None:
    # A crash after the host stored the changes but before it committed the new snapshot: the next pull, minutes
    # later, diffs against the same baseline and must re-deliver the same uids (at-least-once, droppable).
    changes = diff_memberships({"g1": GroupMembers("F", frozenset())}, {"g1": GroupMembers("F", frozenset({"a@x.io"}))})
    baseline = CLOCK - 3_600_000
    first = Mapper().map_membership_changes(changes, CLOCK, baseline_ms=baseline)
    retry = Mapper().map_membership_changes(changes, CLOCK + 300_000, baseline_ms=baseline)
    assert [e.event["metadata"]["uid"] for e in first] == [e.event["metadata"]["uid"] for e in retry]
    assert first[0].event["time"] != retry[0].event["time"]
    later = Mapper().map_membership_changes(changes, CLOCK + 300_000, baseline_ms=CLOCK)  # a new baseline
    assert later[0].event["metadata"]["uid"] != first[0].event["metadata"]["uid"]


def test_user_inventory_joins_audit_user_uid(mapper: Mapper) -> None:
    audit = mapper.map_audit(SAMPLES[0], 0)
    user = mapper.map_user({"emailAddress": "Alice.Ng@contoso.example.org", "name": "Alice Ng"}, 0, CLOCK)
    assert audit is not None
    assert user.event["user"]["uid"] == audit.event["user"]["uid"] == "alice.ng@contoso.example.org"
    assert user.event["user"]["account"]["type_id"] == 18


@pytest.mark.parametrize("key", ["eNqrVkqpSswMTlSyUqpIzAlOKS0qTk7JzEnNVqoFAJ8NCT0", "", "ü:1780000000000", "a" * 500])
def test_record_uid_is_exactly_uuid5(key: str) -> None:
    import uuid

    from connector.mapping.values.common import _UID_NAMESPACE, record_uid

    assert record_uid("audit", key) == str(uuid.uuid5(_UID_NAMESPACE, f"mimecast:audit:{key}"))


def test_record_uid_is_exactly_uuid5_for_random_keys() -> None:
    """Covers every value of the variant nibble (the fast path rewrites it as text)."""
    import random
    import uuid

    from connector.mapping.values.common import _UID_NAMESPACE, record_uid

    rng = random.Random(5)
    variants = set()
    for number in range(3000):
        key = "".join(rng.choice("abcXYZ019:-_ü@.") for _ in range(rng.randint(0, 60)))
        kind = ("audit", "user", "membership")[number % 3]
        expected = str(uuid.uuid5(_UID_NAMESPACE, f"mimecast:{kind}:{key}"))
        assert record_uid(kind, key) == expected
        variants.add(expected[19])
    assert variants == set("89ab")


@pytest.mark.parametrize(
    "text",
    ["198.51.100.23", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "\uff11.2.3.4",
     "2001:db8::1", "2001:db8:85a3::8a2e:370:7334", "::1", "fe80::1%eth0", "null", "", " 1.2.3.4", "1.2.3.4\n",
     "::", "2001:DB8::1", "::ffff:1.2.3.4", "::ffff:01.2.3.4", "::ffff:256.1.1.1", "::ffff:1.2.3", "1::2::3",
     "12345::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:1.2.3.4", ":::", ":1", "1:", "[::1]",
     " ::1", "::1 ", "fe80::1%1", "::1\x00", "2001:db8::g"],
)  # fmt: skip
def test_valid_ip_agrees_with_ipaddress(text: str) -> None:
    import ipaddress

    from connector.mapping.values.common import valid_ip

    try:
        ipaddress.ip_address(text)
        expected: str | None = text
    except ValueError:
        expected = None
    assert valid_ip(text) == expected


def test_valid_ip_agrees_with_ipaddress_on_random_ipv6_like_text() -> None:
    import ipaddress
    import random

    from connector.mapping.values.common import valid_ip

    rng = random.Random(6)
    alphabet = "0123456789abcdefABCDEF:.%g "
    accepted = 0
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 20)))
        if rng.random() < 0.5:  # bias towards well-formed groups so both answers occur often
            text = ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(rng.randint(2, 9)))
            text = text.replace(":", "::", 1) if rng.random() < 0.5 else text
        try:
            ipaddress.ip_address(text)
            expected: str | None = text
        except ValueError:
            expected = None
        assert valid_ip(text) == expected, text
        accepted += expected is not None
    assert accepted > 1000


def test_attributes_come_out_in_the_order_of_the_field_table(mapper: Mapper) -> None:
    """The event reads like the reviewed table (and keeps the same bytes across versions): the attributes the rows
    set appear in the order of each attribute's first row."""
    checked = 0
    for position, record in enumerate(SAMPLES):
        mapped = mapper.map_audit(record, position)
        if mapped is None:
            continue
        table = mapper.rules.audit_tables[mapped.class_uid]
        order = list(dict.fromkeys(row.path[0] for row in table.rows))
        set_by_rows = [key for key in mapped.event if key in order]
        assert set_by_rows == sorted(set_by_rows, key=order.index), record["id"]
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize(
    "groups",
    [5, True, 1.5, "g1", {"id": "g1"}, [1], [{"id": 3}], [{"id": ""}], [{"id": "g1", "description": ["x"]}]],
)
def test_a_user_whose_groups_are_malformed_is_refused_by_uid_and_the_rest_delivered(
    mapper: Mapper, groups: object
) -> None:
    transformer = Transformer(mapper, EventValidator())
    users = [
        {"emailAddress": "Bad@contoso.example.org", "groups": groups},
        {"emailAddress": "good@contoso.example.org", "groups": [{"id": "g1", "description": "Finance"}]},
        {"emailAddress": "none@contoso.example.org", "groups": None},
    ]
    events = list(transformer.users(users, CLOCK, start=1))
    assert [e.record_id for e in events] == ["good@contoso.example.org", "none@contoso.example.org"]
    assert events[0].event["user"]["groups"] == [{"uid": "g1", "name": "Finance"}]
    report = transformer.report
    assert report.failed == {"mapping": 1}
    assert report.errors[0].record_id == "bad@contoso.example.org" and "groups" in report.errors[0].message


def test_an_audit_record_with_a_field_nested_300_deep_is_refused_before_mapping_and_the_sink_writes_the_rest(
    tmp_path: Path,
) -> None:
    """The mapper would copy the field into ``unmapped``, and the NDJSON sink's ``orjson.dumps`` (254 levels at
    most) would raise ``TypeError`` mid-run: one depth check (``connector.nesting``) refuses the record first."""
    from connector.events import Batch
    from connector.sinks.ndjson import NdjsonSink

    deep = {**SAMPLES[0], "id": "DEEP", "extra": json.loads("[" * 300 + "]" * 300)}
    transformer = Transformer(Mapper(), EventValidator())
    events = list(transformer.audit([deep, SAMPLES[1]]))
    assert [e.record_id for e in events] == [SAMPLES[1]["id"]]
    [error] = transformer.report.errors
    assert error.record_id == "DEEP" and "nests deeper than 64 levels" in error.message
    sink = NdjsonSink(str(tmp_path / "out"), per_table=True)
    sink.write(Batch(events[0].table, events[0].class_uid, [e.event for e in events], None))
    sink.close()
    assert len((tmp_path / "out" / f"{events[0].table}.ndjson").read_text().splitlines()) == 1


def test_a_directory_user_nested_too_deep_is_refused_by_position() -> None:
    transformer = Transformer(Mapper(), EventValidator())
    user = {"emailAddress": "a@example.com", "deep": json.loads('{"a":' * 70 + "1" + "}" * 70)}
    assert list(transformer.users([user], 1_781_524_800_000, start=4)) == []
    assert [e.record_id for e in transformer.report.errors] == ["#4"]
