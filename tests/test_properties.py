"""Property-based tests of the hostile-input contract (issue 10, item 7).

Whatever a tenant, a host or a disk hands the connector, only the documented errors come out (``ConfigError``,
``CheckpointError``, ``MappingError``...), never a traceback; and every input record ends as exactly one of
emitted, refused with its id (``#<position>`` when it has none), or counted as an audit type outside the tables.
The profile (200 derandomized examples) is in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import string
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connector.checkpoint import Checkpoint
from connector.cli import read_records
from connector.config import Config, parameter_specs
from connector.errors import CheckpointError, ConfigError, MappingError
from connector.mapping.mapper import Mapper
from connector.ocsf.validate import EventValidator
from connector.pipeline import Report, Transformer
from connector.store import CheckpointStore

SAMPLES = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "audit-records.jsonl").open()]
CLOCK = 1_790_000_000_000
MAPPER = Mapper(clock_ms=lambda: CLOCK)
MAPPER_OTHER = Mapper(clock_ms=lambda: CLOCK, emit_other=True)
VALIDATOR = EventValidator()

# Any JSON value (what orjson can decode), nested a few levels deep.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# Python values a host may pass that JSON cannot carry.
PY_VALUES = JSON | st.floats() | st.binary(max_size=8) | st.sets(st.integers(), max_size=3) | st.tuples(SCALARS)


def _maybe(real: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A realistic value most of the time, any JSON value (wrong type, nested) otherwise."""
    return real | JSON


AUDIT_TEXT = st.sampled_from([s.get("eventInfo") or "" for s in SAMPLES]) | st.text(
    alphabet=string.printable + "éß\u202e\u0000", max_size=200
)
AUDIT_RECORDS = st.one_of(
    st.sampled_from(SAMPLES),
    st.fixed_dictionaries(
        {},
        optional={
            "id": _maybe(st.text(min_size=1, max_size=20)),
            "auditType": _maybe(st.sampled_from(sorted({s["auditType"] for s in SAMPLES}) + ["Unknown Thing"])),
            "category": _maybe(st.sampled_from(sorted({str(s.get("category")) for s in SAMPLES}))),
            "eventTime": _maybe(st.sampled_from([s["eventTime"] for s in SAMPLES] + ["2026-13-40T99:99:99+9999"])),
            "eventInfo": _maybe(AUDIT_TEXT),
            "user": _maybe(st.emails() | st.text(max_size=20)),
            "extra": JSON,
        },
    ),
    st.builds(lambda base, key, value: {**base, key: value}, st.sampled_from(SAMPLES), st.text(max_size=10), JSON),
    JSON,
)
GROUP = st.fixed_dictionaries({}, optional={"id": _maybe(st.text(max_size=10)), "description": JSON})
USER_RECORDS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "emailAddress": _maybe(st.emails() | st.text(max_size=20)),
            "name": JSON,
            "domain": _maybe(st.text(max_size=20)),
            "groups": _maybe(st.lists(GROUP | JSON, max_size=3)),
            "alias": JSON,
        },
    ),
    JSON,
)


def _expected_audit_id(record: object, position: int) -> str:
    if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
        return record["id"]
    return f"#{position}"


def _expected_user_id(record: object, position: int) -> str:
    if isinstance(record, dict):
        address = record.get("emailAddress")
        if isinstance(address, str) and address.strip():
            return address.strip().lower()
    return f"#{position}"


def _outcome(report: Report, before: tuple[int, int, int, int]) -> tuple[int, int, int, list[str]]:
    """What one record did to the report: (emitted, refused, other) increments and the ids of the new errors."""
    emitted = sum(report.emitted.values()) - before[0]
    refused = report.failures - before[1]
    other = sum(report.other_types.values()) - before[2]
    return emitted, refused, other, [e.record_id for e in report.errors[before[3] :]]


def _snapshot(report: Report) -> tuple[int, int, int, int]:
    return sum(report.emitted.values()), report.failures, sum(report.other_types.values()), len(report.errors)


@given(st.lists(AUDIT_RECORDS, max_size=5), st.booleans())
def test_every_audit_record_is_emitted_refused_with_its_id_or_counted_as_other(records: list[Any], other: bool) -> None:
    transformer = Transformer(MAPPER_OTHER if other else MAPPER, VALIDATOR)
    for position, record in enumerate(records, 1):
        before = _snapshot(transformer.report)
        mapped = transformer.audit_record(record, position)
        emitted, refused, counted_other, ids = _outcome(transformer.report, before)
        assert (emitted, refused, counted_other) in {(1, 0, 0), (0, 1, 0), (0, 0, 1)}
        assert (mapped is not None) == (emitted == 1)
        if refused:
            assert ids == [_expected_audit_id(record, position)]
        if mapped is not None:
            assert VALIDATOR.problems(mapped.event) == []
            orjson.dumps(mapped.event)  # serialisable as it is written


@given(st.lists(USER_RECORDS, max_size=5))
@example([{"emailAddress": "0@A.COM"}, {"groups": [{}], "emailAddress": "0@A.COM"}])  # same id: one out, one refused
@example([{"emailAddress": "0@a.com"}, {"emailAddress": "0@a.com", "groups": 5}])  # one address emitted and refused
def test_every_directory_user_is_emitted_or_refused_with_its_id(records: list[Any]) -> None:
    transformer = Transformer(MAPPER, VALIDATOR)
    emitted = list(transformer.users(records, CLOCK, start=1))
    report = transformer.report
    assert len(emitted) + report.failures == len(records)
    assert sum(report.emitted.values()) == len(emitted)
    # Counted, not compared as sets: two users may share an address (one emitted, the other refused).
    ids = Counter(_expected_user_id(record, position) for position, record in enumerate(records, 1))
    emitted_ids = Counter(m.record_id for m in emitted)
    assert not emitted_ids - ids  # every emitted user is one of the records, by its id
    assert sorted(e.record_id for e in report.errors) == sorted((ids - emitted_ids).elements())
    for mapped in emitted:
        orjson.dumps(mapped.event)


NDJSON_LINES = st.lists(
    st.one_of(
        st.builds(orjson.dumps, AUDIT_RECORDS),
        st.binary(max_size=20),
        st.sampled_from(
            [b"", b"   ", b"{", b'{"data": []}', b'{"meta":{},"data":[]}', b"[]", b'{"data":[{"users":null}]}']
        ),
    ),
    max_size=6,
)


@given(st.binary(max_size=200) | NDJSON_LINES.map(b"\n".join), st.sampled_from(["audit", "users"]))
def test_read_records_never_raises_and_the_transformer_accounts_for_every_record(data: bytes, source: str) -> None:
    records = list(read_records(io.BytesIO(data), source))
    transformer = Transformer(MAPPER, VALIDATOR)
    if source == "audit":
        emitted = list(transformer.audit(records, start=1))
    else:
        emitted = list(transformer.users(records, CLOCK, start=1))
    report = transformer.report
    assert len(emitted) + report.failures + sum(report.other_types.values()) == len(records)


@given(st.lists(AUDIT_RECORDS.filter(lambda r: isinstance(r, dict)), min_size=1, max_size=5))
def test_ndjson_of_records_yields_one_record_per_line(records: list[dict[str, Any]]) -> None:
    """Every line of NDJSON that is a JSON object is one record, even the first, even with a ``data`` key,
    unless the first line is a response envelope (only meta/data/fail keys)."""
    data = b"\n".join(orjson.dumps(r) for r in records)
    got = list(read_records(io.BytesIO(data), "audit"))
    if set(records[0]) <= {"meta", "data", "fail"} and isinstance(records[0].get("data"), list):
        assert got == records[0]["data"] + records[1:]
    else:
        assert got == records


EVENT_BASES = [MAPPER_OTHER.map_audit(sample, 0) for sample in SAMPLES]
EVENTS = st.one_of(
    JSON,
    st.builds(
        lambda base, key, value: {**base, key: value},
        st.sampled_from([m.event for m in EVENT_BASES if m is not None]),
        st.sampled_from(["metadata", "observables", "time", "class_uid", "activity_id", "type_uid", "status"])
        | st.text(max_size=8),
        JSON,
    ),
    st.builds(
        lambda base, key, value: {**base, "metadata": {**base["metadata"], key: value}},
        st.sampled_from([m.event for m in EVENT_BASES if m is not None]),
        st.sampled_from(["version", "uid", "logged_time", "product"]),
        JSON,
    ),
)


@given(EVENTS)
def test_validator_returns_problems_for_any_json_event(event: Any) -> None:
    problems = VALIDATOR.problems(event)
    assert all(isinstance(p.path, str) and isinstance(p.message, str) for p in problems)


GOOD_PARAMETERS = {
    "api_base_url": "https://api.services.mimecast.com",
    "client_key": "key",
    "client_secret": "a-long-enough-client-secret",
}


@given(st.sampled_from(sorted(parameter_specs())), PY_VALUES | st.text(alphabet="0123456789.,+-eE \u0660\u0661\u00b2x"))
def test_config_refuses_any_bad_value_with_a_config_error_naming_it(name: str, value: Any) -> None:
    try:
        config = Config.from_parameters({**GOOD_PARAMETERS, name: value}, environ={})
    except ConfigError as exc:
        assert exc.parameter in {name, "api_base_url", "token_url"}
    else:
        assert config.api_base_url.isascii()


@given(JSON)
def test_checkpoint_from_dict_refuses_any_bad_json_with_a_checkpoint_error(data: Any) -> None:
    try:
        checkpoint = Checkpoint.from_dict(data)
    except CheckpointError:
        return
    assert Checkpoint.from_dict(checkpoint.to_dict()) == checkpoint


@given(
    st.binary(max_size=100)
    | st.builds(lambda v: json.dumps(v).encode(), JSON)
    | st.builds(
        lambda key, value: json.dumps({**Checkpoint().to_dict(), key: value}).encode(),
        st.sampled_from(["version", "audit", "inventory", "updated_at_ms"]),
        JSON,
    )
)
def test_checkpoint_store_load_refuses_any_bad_file_with_a_checkpoint_error(tmp_path_factory: Any, data: bytes) -> None:
    path = tmp_path_factory.mktemp("state") / "checkpoint.json"
    path.write_bytes(data)
    with contextlib.suppress(CheckpointError):  # a loaded checkpoint, or the documented error
        CheckpointStore(path).load()


@pytest.mark.parametrize("depth", [100_000])
def test_deeply_nested_checkpoint_is_a_checkpoint_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(b"[" * depth + b"]" * depth)
    with pytest.raises(CheckpointError, match="corrupt"):
        CheckpointStore(path).load()


def test_mapping_error_is_the_only_error_of_map_user_on_wrong_groups() -> None:
    for groups in (5, True, 1.5, "g", {"id": "x"}):
        with pytest.raises(MappingError) as caught:
            MAPPER.map_user({"emailAddress": "A@example.com", "groups": groups}, 3, CLOCK)
        assert caught.value.record_id == "a@example.com"
