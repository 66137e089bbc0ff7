"""Load, check and compile the email-security mapping tables once: ``mappings/email_types.yaml`` (what each kind
of record becomes), ``mappings/email_common.yaml`` and the five class field tables.

A bad edit fails at start-up with the file and the row named, never per event:

* every kind's table is one of the five email tables of ``manifest.json``, and the field table file of that
  table says the manifest's ``table`` and ``class_uid``;
* every id a kind sets (activity, disposition, action, status, severity) exists in its class's OCSF 1.8.0 enums,
  and an activity 99 has the source's own word as its caption;
* the non-SIEM kinds are exactly the email sources;
* every ``from:`` is a source of the email kind and every ``ocsf:`` an attribute path of the class (as for the
  audit tables, by ``connector.mapping.tables``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any, Final

from connector.mapping.tables import FieldTable, fail, field_table, mapping_validator, read_mapping
from connector.mapping.values.email import EMAIL
from connector.ocsf.catalog import load_enums
from connector.registry import registry
from connector.resources import mappings_dir

__all__ = ["EMAIL_SOURCES", "EMAIL_TABLE_FILES", "EmailKind", "EmailRules", "Lookup", "load_email_rules"]

EMAIL_SOURCES: Final = ("siem", "ttp_url", "ttp_attachment", "ttp_impersonation", "dlp")
"""The record kinds the email mapping takes; each is the event type of the stream that collects it."""
_EMAIL_TABLES: Final = (
    "email_activity", "email_file_activity", "email_url_activity", "detection_finding", "data_security_finding",
)  # fmt: skip
EMAIL_TABLE_FILES: Mapping[str, str] = MappingProxyType({name: f"{name}.yaml" for name in _EMAIL_TABLES})
"""Manifest table -> its field table file in ``mappings/``."""
_TYPES_FILE: Final = "email_types.yaml"
_COMMON_FILE: Final = "email_common.yaml"
_OUTCOME_IDS: Final = ("activity_id", "disposition_id", "action_id", "status_id", "severity_id")


@dataclass(frozen=True)
class Lookup:
    """One ``by:`` entry: the raw field read and what each of its (lower-cased) values sets."""

    field: str
    prefix: bool
    values: Mapping[str, Mapping[str, Any]]

    def match(self, word: str) -> str | None:
        """The row ``word`` selects (the value itself, or with ``prefix`` the first row it starts with)."""
        if not self.prefix:
            return word if word in self.values else None
        for start in self.values:  # a handful of rows
            if word.startswith(start):
                return start
        return None


@dataclass(frozen=True)
class EmailKind:
    """What one kind of record becomes: a SIEM log type (``receipt``) or a non-SIEM source (``ttp_url``)."""

    name: str
    source: str
    table: FieldTable
    feature: str
    base: Mapping[str, Any]
    lookups: tuple[Lookup, ...]
    note: str

    @property
    def lookup_fields(self) -> frozenset[str]:
        """Raw fields the outcome reads (consumed: they are not copied to ``unmapped`` when a row matched)."""
        return frozenset(lookup.field for lookup in self.lookups)


@dataclass(frozen=True)
class EmailRules:
    """Every compiled email table."""

    product: Mapping[str, str]
    siem_type_fields: tuple[str, ...]
    siem_types: Mapping[str, EmailKind]
    kinds: Mapping[str, EmailKind]
    tables: Mapping[str, FieldTable]


def _check_outcome(filename: str, where: str, outcome: Mapping[str, Any], class_uid: int) -> None:
    info = load_enums().class_info(class_uid)
    for name in _OUTCOME_IDS:
        if name in outcome and str(outcome[name]) not in info[name]:
            raise fail(filename, f"{where}: {name} {outcome[name]} does not exist in class {class_uid}")


def _kind(
    filename: str, name: str, source: str, row: Mapping[str, Any], tables: Mapping[str, FieldTable], feature: str
) -> EmailKind:
    where = f"{'siem_types' if source == 'siem' else 'kinds'}.{name}"
    table_name = row["table"]
    if table_name not in tables:
        raise fail(filename, f"{where}: table {table_name!r} is not an email table ({', '.join(tables)})")
    table = tables[table_name]
    base = {"activity_id": row["activity_id"], **row["base"]}
    if "activity_name" in row:
        base["activity_name"] = row["activity_name"]
    outcomes = [(where, base)]
    lookups = []
    for index, entry in enumerate(row.get("by", ())):
        values = {value: dict(outcome) for value, outcome in entry["values"].items()}
        outcomes += [(f"{where}.by[{index}].{value}", outcome) for value, outcome in values.items()]
        lookups.append(Lookup(entry["field"], entry.get("match") == "prefix", values))
    for at, outcome in outcomes:
        _check_outcome(filename, at, outcome, table.class_uid)
        if outcome.get("activity_id") == 99 and not outcome.get("activity_name"):
            raise fail(filename, f"{at}: activity_id 99 needs an activity_name")
    return EmailKind(
        name=name,
        source=source,
        table=table,
        feature=row.get("feature", feature),
        base=base,
        lookups=tuple(lookups),
        note=" ".join(row["note"].split()),
    )


@cache
def load_email_rules(folder: Traversable | None = None) -> EmailRules:
    """Load, check and compile the email tables (once per process and folder).

    Raises:
        ConfigError: a file is malformed or disagrees with the manifest or the OCSF schema (file and row named).
    """
    folder = folder or mappings_dir()
    validator = mapping_validator(folder)
    types_doc = read_mapping(folder, _TYPES_FILE, validator)
    common = (_COMMON_FILE, read_mapping(folder, _COMMON_FILE, validator)["email"])
    tables = {}
    for table_name, filename in EMAIL_TABLE_FILES.items():
        if table_name not in registry().tables:
            raise fail(filename, f"table {table_name!r} is not in manifest.json")
        tables[table_name] = table = field_table(folder, validator, filename, EMAIL, common)
        if table.table != table_name:
            raise fail(filename, f"table must be {table_name!r}, not {table.table!r}")
    feature = types_doc["siem"]["feature"]
    siem_types = {
        name: _kind(_TYPES_FILE, name, "siem", row, tables, feature) for name, row in types_doc["siem_types"].items()
    }
    kinds = {name: _kind(_TYPES_FILE, name, name, row, tables, feature) for name, row in types_doc["kinds"].items()}
    if set(kinds) != set(EMAIL_SOURCES) - {"siem"}:
        raise fail(_TYPES_FILE, f"kinds must be exactly {sorted(set(EMAIL_SOURCES) - {'siem'})}, not {sorted(kinds)}")
    return EmailRules(
        product=dict(types_doc["product"]),
        siem_type_fields=tuple(types_doc["siem"]["type_fields"]),
        siem_types=siem_types,
        kinds=kinds,
        tables=tables,
    )
