"""Source values declare themselves: one registration per value, with its description and its inputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connector.mapping.event_info import KNOWN_KEYS
from connector.mapping.snapshot import MembershipChange
from connector.mapping.values.audit import AUDIT, AuditRecord
from connector.mapping.values.common import RecordInput, record_uid
from connector.mapping.values.directory import DIRECTORY_USER, MEMBERSHIP, DirectoryUser, Membership
from connector.mapping.values.source import Source, SourceKind, raw_field


def _key(record: RecordInput) -> str:
    return record.key


def _compute(kind: SourceKind[Any], name: str, record: RecordInput) -> object:
    compute = kind[name].compute
    assert compute is not None
    return compute(record)


def test_derived_registers_the_function_with_its_declaration() -> None:
    kind = SourceKind[RecordInput]("test")

    @kind.derived("key_twice", "the key, twice", raw_inputs=("id",))
    def key_twice(record: RecordInput) -> str:
        return record.key * 2

    source = kind["key_twice"]
    assert (source.compute, source.raw_inputs, source.info_inputs, source.origin) == (
        key_twice,
        ("id",),
        (),
        "computed",
    )
    assert key_twice(RecordInput(key="ab", collected_ms=1)) == "abab"
    assert "key_twice" in kind and kind.names() == ["key_twice"] and list(kind) == [source]


def test_a_name_is_registered_once() -> None:
    kind = SourceKind[object]("test", (raw_field("id", "raw `id`"),))
    with pytest.raises(ValueError, match="test: source 'id' is registered twice"):
        kind.add(Source("id", "the same name again", origin="event"))


@pytest.mark.parametrize(
    "declare",
    [
        lambda: Source("x", "computed without a function"),
        lambda: Source("x", "a copy with a function", raw_inputs=("x",), compute=_key, origin="raw"),
        lambda: Source("x", "a raw copy of two fields", raw_inputs=("x", "y"), origin="raw"),
        lambda: Source("info.x", "an eventInfo copy of nothing", origin="info"),
    ],
)
def test_a_declaration_the_mapper_could_not_execute_is_refused(declare: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"source '(info\.)?x'"):
        declare()


def test_every_kind_has_the_common_sources_and_describes_every_source() -> None:
    for kind in (AUDIT, DIRECTORY_USER, MEMBERSHIP):
        assert {"record_uid", "collected_ms", "observables"} <= set(kind.names()), kind.name
        assert all(source.description.strip() for source in kind), kind.name


def test_every_eventinfo_key_has_an_info_source() -> None:
    assert {f"info.{key}" for key in KNOWN_KEYS.values()} <= set(AUDIT.names())
    assert AUDIT["info.timezone_offset"].info_inputs == ("timezone_offset", "time", "date")


def test_record_uid_is_the_kinds_word_and_the_natural_key() -> None:
    audit = AuditRecord("a1", 5, {}, {}, 1, {})
    user = DirectoryUser({"emailAddress": " Bob@x.example "}, " Bob@x.example ", 7)
    change = Membership(MembershipChange("g1", "bob@x.example", True, "Finance"), 9, 8)
    assert _compute(AUDIT, "record_uid", audit) == record_uid("audit", "a1")
    assert _compute(DIRECTORY_USER, "record_uid", user) == record_uid("user", "bob@x.example:7")
    assert _compute(MEMBERSHIP, "record_uid", change) == record_uid("membership", "g1:bob@x.example:add:8")


def test_an_invalid_source_ip_is_no_value_and_is_kept_as_rejected() -> None:
    record = AuditRecord("a1", 5, {}, {"ip": "null"}, 1, {})
    assert _compute(AUDIT, "info.ip", record) is None and record.rejected == {"ip": "null"}
    record = AuditRecord("a1", 5, {}, {"ip": "::1"}, 1, {})
    assert _compute(AUDIT, "info.ip", record) == "::1" and record.rejected is None
