"""Mapping tables fail at load, naming the file and the row, when an edit breaks them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.mapping.tables import AUDIT_CLASS_FILES, AUDIT_TABLES, load_rules
from connector.registry import registry
from connector.resources import mappings_dir

SOURCE = Path(str(mappings_dir()))


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(SOURCE, folder)
    return folder


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_shipped_tables_load() -> None:
    rules = load_rules()
    assert rules.audit_types["Logon Authentication Failed"].status_id == 2
    assert rules.classify("Brand New Type", "authentication_logs").class_uid == 3002
    assert rules.classify("Brand New Type", "archive_service_logs").class_uid == 0


def test_activity_that_does_not_exist_in_the_class(tables: Path) -> None:
    edit(tables, "audit_types.yaml", "activity_id: 12", "activity_id: 13")
    with pytest.raises(
        ConfigError, match=r"audit_types.yaml: .*'User Account Unlocked': activity_id 13 does not exist"
    ):
        load_rules(tables)


def test_unknown_source_name(tables: Path) -> None:
    edit(tables, "authentication.yaml", "from: info.reason", "from: info.reasons")
    with pytest.raises(ConfigError, match=r"authentication.yaml: row 'status_detail': unknown source 'info.reasons'"):
        load_rules(tables)


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        pytest.param(  # a membership change is not an audit record: the error lists the sources it has
            "membership.yaml", "from: member_user}", "from: subject_user}",
            r"membership.yaml: row 'user': unknown source 'subject_user' \(known membership change sources: "
            r"collected_ms, group, member_user, message, observables, record_uid\)",
            id="source of another kind",
        ),
        pytest.param(
            "account_change.yaml", "ocsf: src_endpoint.ip", "ocsf: src_endpont.ip",
            r"account_change.yaml: row 'src_endpont.ip': 'src_endpont' is not an attribute of Account Change \(3001\)",
            id="typo in an OCSF path",
        ),
        pytest.param(
            "authentication.yaml", "ocsf: service.name", "ocsf: service.nmae",
            r"authentication.yaml: row 'service.nmae': 'service.nmae' is not an attribute",
            id="typo in a nested attribute names the first unknown part",
        ),
        pytest.param(  # Base Event has no user: common.yaml is checked against every audit class
            "common.yaml", "    - {ocsf: time,", "    - {ocsf: user.name, from: id}\n    - {ocsf: time,",
            r"common.yaml: row 'user.name': 'user' is not an attribute of Base Event \(0\)",
            id="common row missing from one audit class",
        ),
        pytest.param(  # a row sets an attribute of one object; user.groups is a list of them
            "user_inventory.yaml", "  - {ocsf: observables,",
            "  - {ocsf: user.groups.name, from: collected_ms}\n  - {ocsf: observables,",
            r"user_inventory.yaml: row 'user.groups.name': 'user.groups' is an array",
            id="path through an array",
        ),
        pytest.param(
            "membership.yaml", "class_uid: 3006", "class_uid: 3001",
            r"membership.yaml: class_uid 3001 is not the class of table 'group_management' in manifest.json \(3006\)",
            id="class_uid not the manifest's",
        ),
        pytest.param(
            "user_inventory.yaml", "table: user_inventory", "table: users",
            r"user_inventory.yaml: table must be 'user_inventory', not 'users'",
            id="table not the file's",
        ),
        pytest.param(
            "audit_types.yaml", "class_uid: 3001", "class_uid: 5003",
            r"audit_types.yaml: audit_types\[6\] 'User Password Changed': class_uid 5003 is the class of no "
            r"audit table",
            id="audit type to a class without an audit table",
        ),
    ],
)  # fmt: skip
def test_a_table_that_disagrees_with_its_kind_the_ocsf_schema_or_the_manifest_fails_at_load(
    tables: Path, name: str, old: str, new: str, message: str
) -> None:
    edit(tables, name, old, new)
    with pytest.raises(ConfigError, match=message):
        load_rules(tables)


def test_audit_tables_are_the_manifests() -> None:
    rules = load_rules()
    assert {uid: f"{t.table}.yaml" for uid, t in rules.audit_tables.items()} == dict(AUDIT_CLASS_FILES)
    for name in AUDIT_TABLES:
        assert rules.audit_tables[registry().table(name).class_uid].table == name
    assert rules.user_inventory.class_uid == registry().table("user_inventory").class_uid
    assert rules.membership.class_uid == registry().table("group_management").class_uid


def test_consumed_fields_are_what_the_rows_sources_read() -> None:
    rules = load_rules()
    authentication = rules.audit_tables[registry().table("authentication").class_uid]
    assert authentication.consumes == {"id", "auditType", "category", "eventTime", "eventInfo", "user"}
    assert {"subject", "actor", "method", "two_factor", "reason", "ip", "time", "date"} <= authentication.info_consumed
    assert rules.user_inventory.consumes == {"emailAddress", "name", "domain", "groups"}
    assert rules.membership.consumes == frozenset()  # a membership change has no raw fields


def test_schema_violation_names_the_path(tables: Path) -> None:
    edit(tables, "audit_types.yaml", "severity_id: 3", "severity_id: 7")
    with pytest.raises(ConfigError, match=r"audit_types.yaml"):
        load_rules(tables)


def test_duplicate_audit_type(tables: Path) -> None:
    edit(tables, "audit_types.yaml", "audit_type: User Logged Off", "audit_type: User Logged On")
    with pytest.raises(ConfigError, match="appears twice"):
        load_rules(tables)


def test_status_other_needs_a_caption(tables: Path) -> None:
    edit(tables, "audit_types.yaml", "    status: Challenge\n", "")
    with pytest.raises(ConfigError, match="status_id 99 needs a 'status' caption"):
        load_rules(tables)


def test_a_nested_row_without_a_value_creates_no_objects_around_it(tables: Path) -> None:
    """A three-level row whose source has no value must leave no empty ``{}`` behind (the schema may refuse it,
    and it is noise); the same row with a value creates the objects."""
    from connector.mapping.mapper import Mapper

    edit(
        tables,
        "authentication.yaml",
        "  - {ocsf: status_detail, from: info.reason, note: Reason text of failed logons}",
        "  - {ocsf: status_detail, from: info.reason, note: Reason text of failed logons}\n"
        "  - {ocsf: src_endpoint.location.city, from: info.reason, note: a made-up row for this test}",
    )
    mapper = Mapper(load_rules(tables), clock_ms=lambda: 1_780_000_000_000)
    record = {
        "id": "r1",
        "auditType": "Logon Authentication Failed",
        "category": "authentication_logs",
        "eventTime": "2026-06-15T14:02:41+0000",
        "user": "a@b.example.com",
    }
    without = mapper.map_audit({**record, "eventInfo": "Failed authentication for a@b.example.com <A B>"}, 1)
    assert without is not None and "src_endpoint" not in without.event
    with_reason = mapper.map_audit(
        {**record, "eventInfo": "Failed authentication for a@b.example.com <A B>, Reason: Wrong password"}, 1
    )
    assert with_reason is not None
    assert with_reason.event["src_endpoint"] == {"location": {"city": "Wrong password"}}
