"""One source for each fact: every place that needs a table, a class, a schema file, an event type or a product
derives it from manifest.json (connector.registry), and these tests fail when any two could disagree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import yaml

from connector.api.client import EVENT_TYPE_PRODUCTS
from connector.cli import build_parser
from connector.config import parameter_specs
from connector.ocsf.catalog import OCSF_VERSION, SCHEMA_FILES
from connector.ocsf.validate import EventValidator
from connector.registry import registry
from connector.streams.registry import map_sources, streams

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_registry_is_the_manifest() -> None:
    facts = registry()
    assert facts.ocsf_version == MANIFEST["ocsf_version"] == OCSF_VERSION
    assert [(t.name, t.class_uid, f"schemas/{t.schema}") for t in facts.tables.values()] == [
        (t["name"], t["class_uid"], t["schema"]) for t in MANIFEST["tables"]
    ]
    assert {e.value: e.product for e in facts.event_types.values()} == {
        e["value"]: e["product"] for e in MANIFEST["event_types"]
    }


def test_every_event_type_has_exactly_one_stream_and_every_stream_an_event_type() -> None:
    assert [s.name for s in streams()] == list(registry().event_types)
    assert list(parameter_specs()["event_types"].choices) == list(registry().event_types)


def test_every_table_is_emitted_by_some_stream_and_no_stream_emits_an_undeclared_table() -> None:
    emitted = {table for stream in streams() for table in stream.tables}
    assert emitted == set(registry().tables)


def test_the_validator_compiles_exactly_the_manifest_s_classes() -> None:
    assert dict(SCHEMA_FILES) == {t.class_uid: t.schema for t in registry().tables.values()}
    problems = EventValidator().problems({"class_uid": 4001})
    known = "0, 2004, 2006, 3001, 3002, 3006, 4009, 4011, 4012, 5003"
    assert problems and f"not one this connector emits ({known})" in problems[0].message


def test_the_schema_generator_exports_exactly_the_manifest_s_classes() -> None:
    generator = script("generate_schemas")
    assert {Path(t["schema"]).stem: t["class_uid"] for t in MANIFEST["tables"]} == generator.CLASSES
    assert MANIFEST["ocsf_version"] == generator.OCSF_VERSION


def test_the_preflight_names_the_manifest_s_products() -> None:
    assert dict(EVENT_TYPE_PRODUCTS) == {e["value"]: e["product"] for e in MANIFEST["event_types"]}
    assert {s.name: s.product for s in streams()} == dict(EVENT_TYPE_PRODUCTS)


def test_map_source_choices_are_the_streams_record_sources() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    map_parser = subparsers.choices["map"]  # type: ignore[attr-defined]
    source = next(a for a in map_parser._actions if a.dest == "source")
    assert list(source.choices) == sorted(map_sources())
    assert sorted(map_sources()) == ["audit", "dlp", "siem", "ttp_attachment", "ttp_impersonation", "ttp_url", "users"]


def test_every_stream_s_mapping_tables_exist_and_name_its_tables_and_their_classes() -> None:
    for stream in streams():
        for name in stream.mapping_tables:
            path = ROOT / "mappings" / f"{name}.yaml"
            assert path.is_file(), f"{stream.name}: {path} is missing"
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            if "table" in doc:
                assert doc["table"] in stream.tables, (stream.name, name)
                assert doc["class_uid"] == registry().table(doc["table"]).class_uid, (stream.name, name)


def test_the_mapping_loader_and_the_audit_stream_name_the_same_tables() -> None:
    """The loader needs the audit tables below the stream layer; the stream declares them: they must agree."""
    from connector.mapping.tables import AUDIT_TABLES
    from connector.streams.audit import AUDIT

    assert tuple(AUDIT_TABLES) == AUDIT.tables


def test_the_siem_log_types_are_one_list_for_the_parameter_the_stream_the_mapping_and_the_simulator() -> None:
    from connector.mapping.email.rules import load_email_rules
    from connector.simulator import SIEM_TYPES as SIMULATED
    from connector.streams.siem_records import SIEM_TYPES

    declared = list(parameter_specs()["siem_log_types"].choices)
    assert list(SIEM_TYPES) == declared == list(parameter_specs()["siem_log_types"].default)
    assert sorted(SIMULATED) == sorted(declared)
    assert sorted(load_email_rules().siem_types) == sorted(declared)
