"""Validate OCSF events before they leave the connector.

Two layers, both compiled once per process:

* the generated OCSF 1.8.0 JSON Schema of the event's class, checked by a compiled ``jsonschema-rs`` validator
  (about 1-4 µs per event); when an event fails, python ``jsonschema`` re-checks it to name the failing JSON path;
* the semantic rules the schema cannot express (see OCSF notes): ``type_uid = class_uid * 100 + activity_id``,
  captions consistent with their ids, ``time`` and ``*_time`` in epoch milliseconds, ``metadata.version`` equal to
  the OCSF version, ``metadata.profiles`` naming exactly the profiles the class schema was generated with
  (``manifest.json``), and observable names that resolve to real attributes of the class.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs

from connector.errors import EventValidationError
from connector.ocsf.catalog import OCSF_VERSION, SCHEMA_FILES, class_schema, load_enums, path_problem
from connector.registry import registry

__all__ = ["EventValidator", "Problem"]

# Epoch milliseconds between 2001-09-09 and 2286-11-20: a seconds value (~1.7e9) can never fall in here.
_MIN_MS = 10**12
_MAX_MS = 10**13
# (attribute, JSON path) of the epoch-millisecond attributes, at the top level and in metadata
_TIME_FIELDS = tuple((name, f"$.{name}") for name in ("time", "start_time", "end_time"))
_METADATA_TIME_FIELDS = tuple(
    (name, f"$.metadata.{name}") for name in ("logged_time", "modified_time", "processed_time")
)

# Every field the header checks read: an event with the same values has the same header problems. Once the schema
# has passed they are integers (bools are refused) and strings, so the tuple is hashable.
_HEADER_FIELDS = (
    "class_uid", "class_name", "category_uid", "category_name", "activity_id", "activity_name", "type_uid",
    "type_name", "status_id", "status", "severity_id", "severity",
)  # fmt: skip
_HEADER = operator.itemgetter(*_HEADER_FIELDS)
_HEADER_MEMO_LIMIT = 4096


@dataclass(frozen=True)
class Problem:
    """One reason an event is invalid: the JSON path that fails and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class _ClassSchema:
    """One class's schema, compiled both ways, with a memo of observable paths that resolve."""

    def __init__(self, schema: dict[str, Any], profiles: tuple[str, ...]) -> None:
        self.schema = schema
        # what metadata.profiles must hold: the schema allows the profiles' attributes, so the event must say so
        self.profiles = sorted(profiles)
        self.fast = jsonschema_rs.validator_for(schema)
        self._diagnostic: jsonschema.Draft202012Validator | None = None
        self._paths: dict[str, bool] = {}
        # the header fields (``_HEADER``) of events already checked -> their problems
        self.headers: dict[tuple[Any, ...], tuple[Problem, ...]] = {}

    @property
    def diagnostic(self) -> jsonschema.Draft202012Validator:
        if self._diagnostic is None:
            self._diagnostic = jsonschema.Draft202012Validator(self.schema)
        return self._diagnostic

    def resolves(self, dotted: str) -> bool:
        known = self._paths.get(dotted)
        if known is None:
            known = self._paths[dotted] = path_problem(self.schema, dotted) is None
        return known


class EventValidator:
    """Validates events of the classes in ``SCHEMA_FILES``. Build once; ``check`` is the per-event call."""

    def __init__(self) -> None:
        profiles = registry().class_profiles()
        self._classes = {uid: _ClassSchema(class_schema(uid), profiles[uid]) for uid in SCHEMA_FILES}
        self._enums = load_enums()

    def problems(self, event: Any) -> list[Problem]:
        """Every reason ``event`` is invalid; an empty list means it may be emitted."""
        if not isinstance(event, dict):
            return [Problem("$", "an OCSF event must be a JSON object")]
        class_uid = event.get("class_uid")
        compiled = self._classes.get(class_uid) if isinstance(class_uid, int) else None
        if compiled is None or not isinstance(class_uid, int):
            known = ", ".join(str(uid) for uid in sorted(self._classes))
            return [Problem("$.class_uid", f"class_uid {class_uid!r} is not one this connector emits ({known})")]
        if not compiled.fast.is_valid(event):
            return [self._schema_problem(compiled, event)]
        return self._semantic_problems(compiled, class_uid, event)

    def check(self, event: Any, *, record_id: str | None = None) -> None:
        """Raise ``EventValidationError`` naming the record and the first failing path if ``event`` is invalid."""
        found = self.problems(event)
        if found:
            first = found[0]
            subject = f"record {record_id}" if record_id else "event"
            raise EventValidationError(
                f"{subject} produced an invalid OCSF event at {first.path}: {first.message}",
                record_id=record_id,
                path=first.path,
            )

    @staticmethod
    def _schema_problem(compiled: _ClassSchema, event: dict[str, Any]) -> Problem:
        best = jsonschema.exceptions.best_match(compiled.diagnostic.iter_errors(event))
        if best is None:  # the two validators disagree; report the fast one's reason rather than nothing
            error = next(iter(compiled.fast.iter_errors(event)))
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
            return Problem(path, error.message)
        message = best.message if len(best.message) <= 300 else best.message[:297] + "..."
        return Problem(best.json_path, message)

    def _semantic_problems(self, compiled: _ClassSchema, class_uid: int, event: dict[str, Any]) -> list[Problem]:
        try:
            header = _HEADER(event)
        except KeyError:  # an optional caption is absent: check this one event without the memo
            header = None
        # 1.0 passes the schema as an integer and equals 1 as a memo key, but its caption lookup differs: only
        # exact ints (and the strings the schema requires) go through the memo.
        if header is None or not (
            type(header[2]) is int  # category_uid
            and type(header[4]) is int  # activity_id
            and type(header[6]) is int  # type_uid
            and type(header[8]) is int  # status_id
            and type(header[10]) is int  # severity_id
        ):
            found = self._header_problems(class_uid, event)
        else:
            # The header fields take a few dozen distinct combinations per class: check each combination once.
            known = compiled.headers.get(header)
            if known is None:
                known = tuple(self._header_problems(class_uid, event))
                if len(compiled.headers) < _HEADER_MEMO_LIMIT:
                    compiled.headers[header] = known
            found = list(known)
        self._check_ms(found, event, _TIME_FIELDS)
        metadata = event["metadata"]
        if metadata.get("version") != OCSF_VERSION:
            found.append(Problem("$.metadata.version", f"must be {OCSF_VERSION!r}"))
        declared = metadata.get("profiles", [])
        if declared != compiled.profiles and sorted(declared) != compiled.profiles:
            found.append(Problem("$.metadata.profiles", f"must name the class's profiles {compiled.profiles}"))
        self._check_ms(found, metadata, _METADATA_TIME_FIELDS)
        for index, observable in enumerate(event.get("observables", ())):
            name = observable.get("name")
            if name and not compiled.resolves(name):
                found.append(Problem(f"$.observables[{index}].name", f"{name!r} is not an attribute of the class"))
        return found

    def _header_problems(self, class_uid: int, event: dict[str, Any]) -> list[Problem]:
        """type_uid, category and the captions of the ids, against the class's enums."""
        found: list[Problem] = []
        info = self._enums.class_info(class_uid)
        activity_id = event["activity_id"]
        if event["type_uid"] != class_uid * 100 + activity_id:
            found.append(Problem("$.type_uid", f"must be class_uid*100+activity_id = {class_uid * 100 + activity_id}"))
        if event["category_uid"] != info["category_uid"]:
            found.append(Problem("$.category_uid", f"class {class_uid} belongs to category {info['category_uid']}"))
        self._check_caption(found, event, "class_name", info["caption"])
        self._check_caption(found, event, "category_name", info["category_name"])
        for id_field, caption_field in (
            ("activity_id", "activity_name"),
            ("status_id", "status"),
            ("severity_id", "severity"),
        ):
            value = event.get(id_field)
            if value is None:
                continue
            expected = info[id_field].get(str(value))
            if value == 99:
                # OCSF: with "Other" the caption carries the source's own word, so it must be present.
                if not event.get(caption_field):
                    found.append(Problem(f"$.{caption_field}", f"{id_field} 99 needs the source's own caption"))
            else:
                self._check_caption(found, event, caption_field, expected)
        if "type_name" in event and "activity_name" in event:
            self._check_caption(found, event, "type_name", f"{info['caption']}: {event['activity_name']}")
        return found

    @staticmethod
    def _check_caption(found: list[Problem], event: Mapping[str, Any], field: str, expected: str | None) -> None:
        actual = event.get(field)
        if actual is not None and actual != expected:
            found.append(Problem(f"$.{field}", f"{actual!r} does not match its id (expected {expected!r})"))

    @staticmethod
    def _check_ms(found: list[Problem], node: Mapping[str, Any], fields: tuple[tuple[str, str], ...]) -> None:
        for name, path in fields:
            value = node.get(name)
            if value is not None and not _MIN_MS <= value < _MAX_MS:
                found.append(Problem(path, f"{value} is not epoch milliseconds"))
