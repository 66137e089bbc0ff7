"""Generate schemas/ from the official OCSF 1.8.0 export bundled in the PyPI package ``ocsf-json-schema``.

Writes one JSON Schema per class the connector emits (with the profiles its manifest table names) and
``ocsf_enums.json``, the caption table the mapper and the semantic validator derive captions from. ``--check``
exits 1 when the committed files differ from a fresh generation (the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from connector.registry import registry

OCSF_VERSION = registry().ocsf_version
CLASSES = registry().ocsf_classes()  # every class a table of manifest.json emits
PROFILES = registry().class_profiles()  # what each class's events name in metadata.profiles
# Enumerated attributes whose captions the mapper derives, per object they live on.
OBJECT_ENUMS = {
    "account": ["type_id"],
    "analytic": ["type_id"],
    "data_security": ["data_lifecycle_state_id", "detection_system_id"],
    "file": ["type_id"],
    "fingerprint": ["algorithm_id"],
    "observable": ["type_id"],
    "user": ["type_id"],
}
CLASS_ENUMS = [
    "activity_id", "status_id", "severity_id", "auth_protocol_id", "action_id", "disposition_id", "direction_id",
    "confidence_id",
]  # fmt: skip
SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"


def _captions(attribute: dict[str, Any]) -> dict[str, str]:
    enum = attribute.get("enum", {})
    return {key: enum[key]["caption"] for key in sorted(enum, key=int)}


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Every generated file's name and text."""
    export = get_ocsf_schema(version=OCSF_VERSION)
    embedded = OcsfJsonSchemaEmbedded(export)
    files: dict[str, str] = {}
    enums: dict[str, Any] = {"ocsf_version": OCSF_VERSION, "classes": {}, "objects": {}}
    for name, uid in CLASSES.items():
        schema = embedded.get_class_schema(name, profiles=list(PROFILES[uid]))
        files[f"{name}.json"] = _dump(schema)
        cls = export["classes"][name]
        if cls["uid"] != uid:
            raise SystemExit(f"class {name} has uid {cls['uid']}, expected {uid}")
        attributes = cls["attributes"]
        enums["classes"][str(uid)] = {
            "name": name,
            "caption": cls["caption"],
            "category_uid": cls.get("category_uid", 0),
            "category_name": cls.get("category_name", "Uncategorized"),
            **{attr: _captions(attributes[attr]) for attr in CLASS_ENUMS if attr in attributes},
        }
    for obj, attrs in OBJECT_ENUMS.items():
        attributes = export["objects"][obj]["attributes"]
        enums["objects"][obj] = {attr: _captions(attributes[attr]) for attr in attrs}
    files["ocsf_enums.json"] = _dump(enums)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if schemas/ differs from a fresh generation")
    args = parser.parse_args(argv)
    stale = []
    for filename, text in render().items():
        path = SCHEMAS_DIR / filename
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(filename)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run `make schemas`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
