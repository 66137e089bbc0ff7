"""Load the analyst-reviewed mapping tables in ``mappings/``, check them and compile them once.

The YAML files hold decisions only (which class, activity, status and severity an auditType gets; which source
value lands on which OCSF attribute; which raw fields are dropped). They are validated against
``mappings/schema.json`` and cross-checked when loaded, so a bad edit fails at start-up with the file and the row
named, never per event:

* each file's ``table`` and ``class_uid`` are the manifest's (``connector.registry``);
* every classification targets the class of an audit table, with an activity that exists in that class;
* every ``from:`` is a source of the kind of records the table maps (``connector.mapping.values``), and every
  ``ocsf:`` path an attribute of the class's schema (``connector.ocsf.catalog``).

What a table consumes (the raw fields and parsed eventInfo fields that do not go to ``unmapped``) is derived from
what its rows' sources declare they read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any, Final

import jsonschema
import yaml

from connector.errors import ConfigError
from connector.mapping.values.audit import AUDIT
from connector.mapping.values.directory import DIRECTORY_USER, MEMBERSHIP
from connector.mapping.values.source import Source, SourceKind
from connector.ocsf.catalog import OCSF_VERSION, OcsfEnums, class_schema, load_enums, path_problem
from connector.registry import registry
from connector.resources import mappings_dir

__all__ = [
    "AUDIT_CLASS_FILES",
    "AUDIT_TABLES",
    "Classification",
    "FieldRow",
    "FieldTable",
    "MappingRules",
    "fail",
    "field_table",
    "load_rules",
    "mapping_validator",
    "read_mapping",
]

AUDIT_TABLES: Final = ("authentication", "account_change", "group_management", "base_event")
"""The manifest's tables audit records are mapped to, each by the field table ``mappings/<table>.yaml``."""
_AUDIT_FILES: Final = tuple((f"{name}.yaml", name) for name in AUDIT_TABLES)
AUDIT_CLASS_FILES: Mapping[int, str] = MappingProxyType(
    {registry().table(name).class_uid: filename for filename, name in _AUDIT_FILES}
)
"""class_uid -> field table file, for each audit table (the class is the manifest's)."""
# The directory's tables: (file, manifest table). Its membership changes go to the same table as the audit
# records' group changes, from a field table of their own.
_USER_INVENTORY: Final = ("user_inventory.yaml", "user_inventory")
_MEMBERSHIP: Final = ("membership.yaml", "group_management")
# Parsed eventInfo fields the classification itself reads (outcome word, action verb).
_CLASSIFICATION_INFO: Final = frozenset({"outcome", "verb"})
FROM_OUTCOME = "from_outcome"
# eventInfo lead word → (status_id, caption when the id is 99)
_OUTCOME_STATUS: Mapping[str, tuple[int, str | None]] = {
    "Successful": (1, None),
    "Failed": (2, None),
    "Intermediate": (99, "Challenge"),
}


@dataclass(frozen=True)
class FieldRow:
    """One row of a field table: the OCSF attribute path and the source value that fills it.

    ``source`` is the name the row gives in ``from:``; ``definition`` is that source as its kind registered it.
    """

    ocsf: str
    source: str
    note: str
    path: tuple[str, ...]
    definition: Source[Any]


@dataclass(frozen=True)
class FieldTable:
    """A class's compiled field table: rows in order, raw fields consumed or dropped, eventInfo keys consumed."""

    class_uid: int
    table: str
    feature: str
    rows: tuple[FieldRow, ...]
    consumes: frozenset[str]
    drop: frozenset[str]
    info_consumed: frozenset[str]
    auth_methods: Mapping[str, int] = field(default_factory=dict)
    header: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Classification:
    """What an auditType becomes: one row of ``audit_types.yaml`` (or the category/default fallback)."""

    class_uid: int
    activity_id: int
    status_id: int | str
    severity_id: int
    note: str
    status: str | None = None
    activity_by_verb: Mapping[str, int] = field(default_factory=dict)
    source: str = "audit_types"

    def activity(self, verb: object) -> int:
        """The activity id, refined by the action verb when the row has an ``activity_by_verb`` table."""
        if self.activity_by_verb and isinstance(verb, str):
            return self.activity_by_verb.get(verb, self.activity_id)
        return self.activity_id

    def outcome(self, outcome: object) -> tuple[int, str | None]:
        """(status_id, status caption override) for this row and the eventInfo outcome word."""
        if self.status_id == FROM_OUTCOME:
            if isinstance(outcome, str) and outcome in _OUTCOME_STATUS:
                return _OUTCOME_STATUS[outcome]
            return 0, None
        assert isinstance(self.status_id, int)
        return self.status_id, self.status


@dataclass(frozen=True)
class MappingRules:
    """Every compiled table the mapper needs."""

    product: Mapping[str, str]
    audit_types: Mapping[str, Classification]
    categories: Mapping[str, Classification]
    default: Classification
    audit_feature: str
    audit_tables: Mapping[int, FieldTable]
    user_inventory: FieldTable
    membership: FieldTable

    def classify(self, audit_type: str, category: object) -> Classification:
        """The row for an auditType: by name, else by category, else the default (Base Event)."""
        row = self.audit_types.get(audit_type)
        if row is not None:
            return row
        if isinstance(category, str) and category in self.categories:
            return self.categories[category]
        return self.default


def _fail(filename: str, message: str) -> ConfigError:
    return ConfigError(f"mappings/{filename}: {message}", parameter=f"mappings/{filename}")


def _read(folder: Traversable, filename: str, validator: jsonschema.Draft202012Validator) -> dict[str, Any]:
    text = folder.joinpath(filename).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(filename, f"is not valid YAML ({exc})") from None
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        raise _fail(filename, f"{error.json_path}: {error.message}")
    assert isinstance(data, dict)
    return data


def _classification(filename: str, where: str, row: Mapping[str, Any], enums: OcsfEnums) -> Classification:
    class_uid = row["class_uid"]
    if class_uid not in AUDIT_CLASS_FILES:
        known = ", ".join(f"{uid} ({name})" for uid, name in AUDIT_CLASS_FILES.items())
        raise _fail(filename, f"{where}: class_uid {class_uid} is the class of no audit table (known: {known})")
    activities = enums.class_info(class_uid)["activity_id"]
    for activity in (row["activity_id"], *row.get("activity_by_verb", {}).values()):
        if str(activity) not in activities:
            raise _fail(filename, f"{where}: activity_id {activity} does not exist in class {class_uid}")
    if row["status_id"] == 99 and not row.get("status"):
        raise _fail(filename, f"{where}: status_id 99 needs a 'status' caption")
    return Classification(
        class_uid=class_uid,
        activity_id=row["activity_id"],
        status_id=row["status_id"],
        severity_id=row["severity_id"],
        note=" ".join(row["note"].split()),
        status=row.get("status"),
        activity_by_verb=dict(row.get("activity_by_verb", {})),
        source=where,
    )


def _rows(filename: str, rows: Iterable[Mapping[str, Any]], kind: SourceKind[Any], class_uid: int) -> list[FieldRow]:
    """Compile rows; each names a source of ``kind`` and an attribute path of the class ``class_uid``."""
    schema = class_schema(class_uid)
    compiled = []
    for row in rows:
        ocsf, name = row["ocsf"], row["from"]
        if name not in kind:
            known = ", ".join(kind.names())
            raise _fail(filename, f"row {ocsf!r}: unknown source {name!r} (known {kind.name} sources: {known})")
        problem = path_problem(schema, ocsf, through_arrays=False)
        if problem is not None:
            caption = load_enums().class_info(class_uid)["caption"]
            raise _fail(filename, f"row {ocsf!r}: {problem} of {caption} ({class_uid}) in OCSF {OCSF_VERSION}")
        compiled.append(FieldRow(ocsf, name, " ".join(row.get("note", "").split()), tuple(ocsf.split(".")), kind[name]))
    return compiled


def _table(
    folder: Traversable,
    validator: jsonschema.Draft202012Validator,
    files: tuple[str, str],
    kind: SourceKind[Any],
    common: tuple[str, Mapping[str, Any]] | None = None,
) -> FieldTable:
    """Load the field table in ``files`` = (file name, manifest table) mapping records of ``kind``.

    ``common`` is (file name, its section) whose ``fields`` come first in the table and whose ``feature`` is the
    default one (``common.yaml``'s audit section for the audit tables).
    """
    filename, name = files
    data = _read(folder, filename, validator)
    class_uid = registry().table(name).class_uid
    if data["table"] != name:
        raise _fail(filename, f"table must be {name!r}, not {data['table']!r}")
    if data["class_uid"] != class_uid:
        wrong = data["class_uid"]
        raise _fail(filename, f"class_uid {wrong} is not the class of table {name!r} in manifest.json ({class_uid})")
    rows: list[FieldRow] = []
    feature = ""
    if common is not None:
        rows += _rows(common[0], common[1]["fields"], kind, class_uid)
        feature = common[1]["feature"]
    rows += _rows(filename, data["fields"], kind, class_uid)
    drop = frozenset(data["drop"])
    consumed = frozenset(raw for row in rows for raw in row.definition.raw_inputs)
    if drop & consumed:
        raise _fail(filename, f"drop lists fields that rows map: {sorted(drop & consumed)}")
    return FieldTable(
        class_uid=class_uid,
        table=name,
        feature=data.get("feature", feature),
        rows=tuple(rows),
        consumes=consumed,
        drop=drop,
        info_consumed=_CLASSIFICATION_INFO.union(key for row in rows for key in row.definition.info_inputs),
        auth_methods=dict(data.get("auth_methods", {})),
        header={k: data[k] for k in ("activity_id", "status_id", "severity_id") if k in data},
    )


@cache
def load_rules(folder: Traversable | None = None) -> MappingRules:
    """Load, check and compile every mapping table (once per process and folder).

    Args:
        folder: where the tables are; default the shipped ``mappings/``.

    Raises:
        ConfigError: a mapping file is malformed or disagrees with the manifest or the OCSF schema; the message
            names the file and the row.
    """
    folder = folder or mappings_dir()
    schema = json.loads(folder.joinpath("schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    enums = load_enums()
    types_doc = _read(folder, "audit_types.yaml", validator)
    common_doc = _read(folder, "common.yaml", validator)
    audit_types: dict[str, Classification] = {}
    for index, row in enumerate(types_doc["audit_types"]):
        name = row["audit_type"]
        if name in audit_types:
            raise _fail("audit_types.yaml", f"audit_type {name!r} appears twice")
        audit_types[name] = _classification("audit_types.yaml", f"audit_types[{index}] {name!r}", row, enums)
    categories = {
        name: _classification("audit_types.yaml", f"categories.{name}", row, enums)
        for name, row in types_doc["categories"].items()
    }
    default = _classification("audit_types.yaml", "default", types_doc["default"], enums)
    audit = ("common.yaml", common_doc["audit"])
    audit_tables = [_table(folder, validator, files, AUDIT, audit) for files in _AUDIT_FILES]
    return MappingRules(
        product=dict(common_doc["product"]),
        audit_types=audit_types,
        categories=categories,
        default=default,
        audit_feature=common_doc["audit"]["feature"],
        audit_tables={table.class_uid: table for table in audit_tables},
        user_inventory=_table(folder, validator, _USER_INVENTORY, DIRECTORY_USER),
        membership=_table(folder, validator, _MEMBERSHIP, MEMBERSHIP),
    )


# ------------------------------------------------------------------------------------------ for other kinds
# The email-security tables (connector.mapping.email.rules) are loaded with the same reader, row compiler and checks.
def mapping_validator(folder: Traversable) -> jsonschema.Draft202012Validator:
    """The validator of ``mappings/schema.json`` in ``folder``."""
    return jsonschema.Draft202012Validator(json.loads(folder.joinpath("schema.json").read_text(encoding="utf-8")))


def read_mapping(folder: Traversable, filename: str, validator: jsonschema.Draft202012Validator) -> dict[str, Any]:
    """A mapping file parsed and validated against ``schema.json``.

    Raises:
        ConfigError: naming the file and the failing JSON path.
    """
    return _read(folder, filename, validator)


def field_table(
    folder: Traversable,
    validator: jsonschema.Draft202012Validator,
    filename: str,
    kind: SourceKind[Any],
    common: tuple[str, Mapping[str, Any]] | None = None,
) -> FieldTable:
    """The field table ``filename`` of records of ``kind`` (its ``table`` is a manifest table), compiled and checked
    like the audit tables; ``common`` is (file name, section with ``fields``) whose rows come first.

    Raises:
        ConfigError: naming the file and the row.
    """
    table = _read(folder, filename, validator)["table"]
    section = {"feature": "", **common[1]} if common is not None else None
    return _table(folder, validator, (filename, table), kind, (common[0], section) if common and section else None)


def fail(filename: str, message: str) -> ConfigError:
    """The error for a mapping file that is wrong, naming it (and the parameter ``mappings/<file>``)."""
    return _fail(filename, message)
