"""Property tests of the email mapping's hostile-input contract: whatever junk sits in any field of a SIEM, TTP or
DLP record, ``map_email`` returns an event that passes the OCSF validator or refuses the record with a
``MappingError`` naming its key; never a traceback, never an invalid event. The profile (200 derandomized
examples) is in tests/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from connector.errors import MappingError
from connector.mapping.email import map_email
from connector.mapping.mapper import Mapper
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer, email_record_key

FIXTURES = Path(__file__).parent / "fixtures" / "streams"
FILES = {"siem": "siem_cg", "ttp_url": "ttp_url", "ttp_attachment": "ttp_attachment",
         "ttp_impersonation": "ttp_impersonation", "dlp": "dlp"}  # fmt: skip
SAMPLES = [
    (source, json.loads(line))
    for source, name in FILES.items()
    for line in (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
]
VALIDATOR = EventValidator()
COLLECTED = 1_790_000_000_000

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["<>", "Internal IP", "null", "", " ", "true", "FALSE", "31363", "1@x.y>", "a@b.c\n",
                       "::1", "fe80::1%eth0", "1.2.3.4 ", "0" * 64, "inbound", "Hold", '"a", "b"', "{}", "[]",
                       "[Url: [x", '{"spf": 1}', "1731621865697", "2021-10-16T14:45:34+0000"])
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _check(source: str, record: Any) -> None:
    key = email_record_key(source, record) or "#1"
    try:
        mapped = map_email(source, record, key, COLLECTED)
    except MappingError as exc:
        assert exc.record_id == key
        return
    assert VALIDATOR.problems(mapped.event) == [], (mapped.event, VALIDATOR.problems(mapped.event))
    orjson.dumps(mapped.event)  # what the sinks do: no value they cannot write


@given(
    sample=st.sampled_from(SAMPLES),
    changes=st.dictionaries(st.text(max_size=24), JSON, max_size=4),
    replace=st.lists(st.integers(min_value=0, max_value=60), max_size=4),
    value=JSON,
)
@example(sample=SAMPLES[0], changes={"timestamp": "1731621865697"}, replace=[], value=None)
def test_junk_in_any_field_maps_to_a_valid_event_or_a_refusal(
    sample: tuple[str, dict[str, Any]], changes: dict[str, Any], replace: list[int], value: Any
) -> None:
    source, record = sample
    record = dict(record)
    names = list(record)
    for index in replace:  # an existing field gets junk (keeps the record recognisable otherwise)
        if names:
            record[names[index % len(names)]] = value
    record.update(changes)
    _check(source, record)


@given(source=st.sampled_from(sorted(FILES)), record=JSON)
def test_any_json_value_as_a_record_is_mapped_or_refused(source: str, record: Any) -> None:
    _check(source, record)


@given(
    sample=st.sampled_from(SAMPLES),
    name=st.sampled_from(["recipients", "attachments", "rejectionInfo", "analysis", "spamProcessingDetail",
                          "senderEnvelope", "senderHeader", "messageId", "url", "details", "identifiers"]),
    text=st.text(alphabet='"[],:; <>@.\\\r\nabcXY1-_{}', max_size=300),
)  # fmt: skip
def test_structured_text_fields_never_break_the_event(sample: tuple[str, dict[str, Any]], name: str, text: str) -> None:
    source, record = sample
    _check(source, {**record, name: text})


def test_the_transformer_counts_refusals_by_key_and_emits_the_rest() -> None:
    transformer = Transformer(Mapper(), VALIDATOR)
    records = [SAMPLES[0][1], {"type": "mailflow", "timestamp": 1731621865697}, "not an object"]
    events = list(transformer.email("siem", records, COLLECTED))
    assert len(events) == 1
    assert transformer.report.failed["mapping"] == 2
    unknown = transformer.report.errors[0]
    assert unknown.record_id == email_record_key("siem", records[1]) and "unknown type 'mailflow'" in unknown.message
    assert transformer.report.errors[1].record_id == "#2"
