"""What OCSF 1.8.0 offers the connector: the version, the classes' schemas and attribute paths, enums and captions.

Everything here is read from files generated from the official export (``schemas/``, ``make schemas``) and from
``manifest.json`` (through ``connector.registry``), once per process. The validator checks events against it; the
mapping tables are checked against it when they load; the mapper and the review document take captions from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from connector.registry import registry
from connector.resources import schemas_dir

__all__ = [
    "OCSF_VERSION",
    "SCHEMA_FILES",
    "OcsfEnums",
    "class_schema",
    "load_enums",
    "path_problem",
]

OCSF_VERSION = registry().ocsf_version
SCHEMA_FILES: Mapping[int, str] = MappingProxyType(registry().schema_files())
"""class_uid -> generated schema file, for every table in ``manifest.json``."""


class OcsfEnums:
    """Captions for the ids the connector sets, from ``schemas/ocsf_enums.json`` (generated from the export)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version: str = data["ocsf_version"]
        self._classes: Mapping[str, Any] = data["classes"]
        self._objects: Mapping[str, Any] = data["objects"]

    def class_info(self, class_uid: int) -> Mapping[str, Any]:
        """Name, caption, category and enum captions of a class; KeyError for a class we do not emit."""
        return self._classes[str(class_uid)]

    def caption(self, class_uid: int, attribute: str, value: int) -> str:
        """The caption of an enumerated class attribute (``activity_id``, ``status_id``...)."""
        return self._classes[str(class_uid)][attribute][str(value)]

    def class_header(self, class_uid: int, activity_id: int, other_word: str | None = None) -> dict[str, Any]:
        """The class, category, activity and type attributes of an event, captions included; with activity 99
        (Other) the source's own ``other_word`` is the activity's caption (OCSF asks for it)."""
        info = self._classes[str(class_uid)]
        activity_name = other_word if activity_id == 99 and other_word else info["activity_id"][str(activity_id)]
        return {
            "class_uid": class_uid,
            "class_name": info["caption"],
            "category_uid": info["category_uid"],
            "category_name": info["category_name"],
            "activity_id": activity_id,
            "activity_name": activity_name,
            "type_uid": class_uid * 100 + activity_id,
            "type_name": f"{info['caption']}: {activity_name}",
        }

    def object_caption(self, obj: str, attribute: str, value: int) -> str:
        """The caption of an enumerated object attribute (``account.type_id``, ``observable.type_id``)."""
        return self._objects[obj][attribute][str(value)]


@cache
def load_enums() -> OcsfEnums:
    """The caption table, loaded once per process."""
    text = schemas_dir().joinpath("ocsf_enums.json").read_text(encoding="utf-8")
    return OcsfEnums(json.loads(text))


@cache
def class_schema(class_uid: int) -> dict[str, Any]:
    """The generated JSON Schema of a class some table emits, loaded once per process; KeyError for another class.

    Shared by every caller: read it, never modify it.
    """
    text = schemas_dir().joinpath(SCHEMA_FILES[class_uid]).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def path_problem(schema: Mapping[str, Any], dotted: str, *, through_arrays: bool = True) -> str | None:
    """Why ``dotted`` (``src_endpoint.ip``) is not an attribute path of a class schema; None when it is one.

    Object references (``$ref`` into ``$defs``) are followed. An array attribute may end the path; in its middle
    (``user.groups.name``) it is followed into its items when ``through_arrays`` (an observable's name may say so),
    and is a problem otherwise (a mapping row sets an attribute of one object, not of each item of a list).
    """
    node = schema
    walked: list[str] = []
    for part in dotted.split("."):
        node = _deref(schema, node)
        if node.get("type") == "array":
            if not through_arrays:
                return f"{'.'.join(walked)!r} is an array"
            node = _deref(schema, node.get("items", {}))
        props = node.get("properties")
        walked.append(part)
        if not props or part not in props:
            return f"{'.'.join(walked)!r} is not an attribute"
        node = props[part]
    return None


def _deref(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        defs: Mapping[str, Any] = schema["$defs"]
        return defs[ref.removeprefix("#/$defs/")]
    return node
