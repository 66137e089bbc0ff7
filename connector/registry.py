"""The connector's declared facts, read once from ``manifest.json``: OCSF version, tables, classes, event types.

``manifest.json`` is the one place these are written down (the host reads it too). Everything that needs one of
them asks this module: the validator (which class schemas to compile), the rules loader (which class a mapping
table may target), the schema generator (which OCSF classes to export), the review generator, the preflight
(which Mimecast product an event type needs) and the streams (which tables they emit). ``tests/test_registry.py``
fails when any of them could disagree with the manifest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType

from connector.resources import manifest_text

__all__ = ["EventTypeSpec", "Registry", "TableSpec", "registry"]


@dataclass(frozen=True)
class TableSpec:
    """One output table: an OCSF class and the generated schema its events are validated against.

    Attributes:
        name: The table name events are delivered to (``batch.table``).
        label: What the host shows.
        class_uid: The OCSF class of every event in the table.
        schema: The schema file's name in ``schemas/`` (``authentication.json``); its stem is the OCSF class name.
        optional: Emitted only when a parameter asks for it (Base Event).
        profiles: The OCSF profiles the class schema is generated with; every event of the table names them in
            ``metadata.profiles`` (``security_control`` for the email classes, whose ``action_id`` and
            ``disposition_id`` only that profile allows).
    """

    name: str
    label: str
    class_uid: int
    schema: str
    optional: bool = False
    profiles: tuple[str, ...] = ()

    @property
    def ocsf_class(self) -> str:
        """The OCSF class name (``authentication``), as the official export names it."""
        return PurePosixPath(self.schema).stem


@dataclass(frozen=True)
class EventTypeSpec:
    """One value of the ``event_types`` parameter and the Mimecast API product an application needs for it."""

    value: str
    label: str
    product: str


@dataclass(frozen=True)
class Registry:
    """The manifest's facts, by name."""

    ocsf_version: str
    tables: Mapping[str, TableSpec]
    event_types: Mapping[str, EventTypeSpec]

    def table(self, name: str) -> TableSpec:
        """The table called ``name``; KeyError naming the known ones otherwise."""
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r} in manifest.json (known: {', '.join(self.tables)})") from None

    def product(self, event_type: str) -> str:
        """The Mimecast product ``event_type`` needs; KeyError for an event type the manifest does not declare."""
        return self.event_types[event_type].product

    def schema_files(self) -> dict[int, str]:
        """class_uid -> schema file name, for every class some table emits."""
        return {table.class_uid: table.schema for table in self.tables.values()}

    def ocsf_classes(self) -> dict[str, int]:
        """OCSF class name -> class_uid, for the schema generator."""
        return {table.ocsf_class: table.class_uid for table in self.tables.values()}

    def class_profiles(self) -> dict[int, tuple[str, ...]]:
        """class_uid -> the OCSF profiles its schema is generated with and its events declare."""
        profiles: dict[int, tuple[str, ...]] = {}
        for table in self.tables.values():
            known = profiles.setdefault(table.class_uid, table.profiles)
            if known != table.profiles:
                raise ValueError(f"manifest.json: two tables of class {table.class_uid} name different profiles")
        return profiles


def _build(manifest: Mapping[str, object]) -> Registry:
    tables = {}
    for raw in manifest["tables"]:  # type: ignore[attr-defined]
        tables[raw["name"]] = TableSpec(
            name=raw["name"],
            label=raw["label"],
            class_uid=raw["class_uid"],
            schema=PurePosixPath(raw["schema"]).name,
            optional=raw.get("optional", False),
            profiles=tuple(raw.get("profiles", ())),
        )
    event_types = {
        raw["value"]: EventTypeSpec(raw["value"], raw["label"], raw["product"])
        for raw in manifest["event_types"]  # type: ignore[attr-defined]
    }
    return Registry(
        ocsf_version=str(manifest["ocsf_version"]),
        tables=MappingProxyType(tables),
        event_types=MappingProxyType(event_types),
    )


@functools.cache
def registry() -> Registry:
    """The registry of the shipped ``manifest.json``, parsed once per process."""
    return _build(json.loads(manifest_text()))
