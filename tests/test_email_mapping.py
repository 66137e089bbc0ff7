"""The email mapping: every stream sample maps to one valid event of its class, the dedup key rule, the readers of
Mimecast's text values, the caps, and the load-time checks of the email tables."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.mapping.email import map_email
from connector.mapping.email.rules import load_email_rules
from connector.mapping.mapper import Mapper
from connector.mapping.values import email_parse as parse
from connector.mapping.values.common import record_uid
from connector.ocsf.validate import EventValidator
from connector.pipeline import Transformer, email_record_key
from connector.resources import mappings_dir

FIXTURES = Path(__file__).parent / "fixtures" / "streams"
COLLECTED = 1_790_000_000_000
SIEM_CLASS = {"receipt": 4009, "process": 4009, "spam": 4009, "delivery": 4009, "journal": 4009, "av": 4011,
              "attachment protect": 4011, "url protect": 4012, "impersonation protect": 2004,
              "internal email protect": 2004}  # fmt: skip
SOURCE_CLASS = {"ttp_url": 4012, "ttp_attachment": 4011, "ttp_impersonation": 2004, "dlp": 2006}


def _records(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("source", "name"),
    [("siem", "siem_cg"), ("ttp_url", "ttp_url"), ("ttp_attachment", "ttp_attachment"),
     ("ttp_impersonation", "ttp_impersonation"), ("dlp", "dlp")],
)  # fmt: skip
def test_every_sample_maps_to_exactly_one_valid_event_of_its_class(source: str, name: str) -> None:
    records = _records(name)
    transformer = Transformer(Mapper(), EventValidator())
    events = list(transformer.email(source, records, COLLECTED))
    assert transformer.report.failures == 0, transformer.report.errors
    assert len(events) == len(records)
    for record, mapped in zip(records, events, strict=True):
        kind = record.get("type", record.get("eventType"))
        expected = SIEM_CLASS[str(kind)] if source == "siem" else SOURCE_CLASS[source]
        assert mapped.class_uid == mapped.event["class_uid"] == expected
        assert mapped.event["metadata"]["profiles"] == ["security_control"]
        assert mapped.event["metadata"]["uid"] == record_uid(source, email_record_key(source, record) or "")
    assert sum(transformer.report.emitted.values()) == len(records)


def test_dlp_hold_and_notification_of_one_message_are_two_events() -> None:
    records = _records("dlp")
    by_message = Counter(str(r["messageId"]) for r in records)
    twice = next(m for m, n in by_message.items() if n > 1)
    pair = [r for r in records if r["messageId"] == twice]
    uids = {map_email("dlp", r, email_record_key("dlp", r) or "", COLLECTED).event["metadata"]["uid"] for r in pair}
    assert len(uids) == len(pair)


def test_the_key_ignores_transport_fields_and_uses_the_impersonation_id() -> None:
    record = _records("siem_cg")[0]
    moved = {**record, "_offset": 1, "_partition": 2}
    assert email_record_key("siem", moved) == email_record_key("siem", record)
    assert email_record_key("siem", {**record, "subject": "other"}) != email_record_key("siem", record)
    impersonation = _records("ttp_impersonation")[0]
    assert email_record_key("ttp_impersonation", impersonation) == impersonation["id"]
    assert email_record_key("ttp_impersonation", {**impersonation, "id": 7}) is None
    assert email_record_key("siem", ["not", "an", "object"]) is None


def test_both_field_name_styles_give_the_same_event() -> None:
    record = next(r for r in _records("siem_cg") if r.get("type") == "receipt")
    stream_style = {("eventType" if k == "type" else "subType" if k == "subtype" else k): v for k, v in record.items()}
    a = map_email("siem", record, "k", COLLECTED).event
    b = map_email("siem", stream_style, "k", COLLECTED).event
    assert a == b


def test_recipients_and_attachments_are_capped_and_the_raw_value_kept() -> None:
    record = next(r for r in _records("siem_cg") if r.get("type") == "receipt")
    many = ", ".join(f"user{i}@example.com" for i in range(parse.MAX_RECIPIENTS + 20))
    event = map_email("siem", {**record, "recipients": many}, "k", COLLECTED).event
    assert len(event["email"]["to"]) == parse.MAX_RECIPIENTS
    assert event["unmapped"]["recipients"] == many
    names = ", ".join(f'"f{i}.pdf"' for i in range(parse.MAX_ATTACHMENTS + 5))
    assert parse.attachment_names(names) == ([f"f{i}.pdf" for i in range(parse.MAX_ATTACHMENTS)], False)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('"a.pdf"', ["a.pdf"]),
        ('"a, b.pdf", "c \\"d\\".jpg"', ["a, b.pdf", 'c \\"d\\".jpg']),
        ('"x.pdf","y.pdf" , "z.pdf"', ["x.pdf", "y.pdf", "z.pdf"]),
        ('so-called "TPS REPORTS" we need to fill', ['so-called "TPS REPORTS" we need to fill']),
        ("null", []),
        ("", []),
    ],
)
def test_attachment_names(text: str, names: list[str]) -> None:
    assert parse.attachment_names(text) == (names, True)


def test_readers_refuse_what_ocsf_formats_refuse() -> None:
    assert parse.email_address("<>") is None
    assert parse.email_address("a@b.co\n") is None  # the Rust validator's `$` is the end of the text
    assert parse.email_address("jane.doe@example.com") == "jane.doe@example.com"
    assert parse.ip_address("Internal IP") is None
    assert parse.ip_address("1.2.3.4 ") is None
    assert parse.ip_address("01.2.3.4") is None
    assert parse.ip_address("fe80::1%eth0") == "fe80::1%eth0"
    assert parse.ip_address("1:2:3:4:5:6:7:8%" + "x" * 30) is None  # ip_t maxLength 40
    assert parse.count("31363") == 31363 and parse.count("-1") is None and parse.count(2**64) is None
    assert parse.count(True) is None and parse.count("١٢") is None  # Arabic-Indic digits are digits to str
    assert parse.epoch_ms(1731621865) is None and parse.epoch_ms("1731621865697") == 1731621865697
    assert parse.flag("TRUE") is True and parse.flag("no") is False and parse.flag("maybe") is None
    assert parse.hex_digest("A" * 32, "md5") == "a" * 32 and parse.hex_digest("g" * 32, "md5") is None


def test_json_and_bracket_readers() -> None:
    assert parse.json_value('{"spf": {"info": "ALLOW"}}') == ({"spf": {"info": "ALLOW"}}, True)
    assert parse.json_value("null") == (None, True)
    assert parse.json_value('{"a": tru') == (None, False)
    assert parse.json_value("Status: clean") == (None, False)
    text = "[Type: [Phishing & Fraud],Url: [https://example.com/p.php],UrlBlock: [ORIGINAL:https://example.com/p"
    assert parse.bracket_fields(text) == {
        "Type": "Phishing & Fraud",
        "Url": "https://example.com/p.php",
        "UrlBlock": "ORIGINAL:https://example.com/p",
    }
    assert parse.bracket_fields("Envelope blocked - User Entry") == {}


def test_a_json_string_nested_deeper_than_the_cap_stays_raw() -> None:
    """orjson reads 1024 levels but writes 254: a deeper ``analysis`` in ``unmapped`` would break every JSON sink."""
    depth = parse.MAX_JSON_DEPTH
    assert parse.json_value("[" * depth + "]" * depth)[1] is True
    assert parse.json_value("[" * (depth + 1) + "]" * (depth + 1)) == (None, False)
    assert parse.json_value("[" * 400 + "]" * 400) == (None, False)


def test_a_bad_decision_fails_at_load_naming_the_file_and_row(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(str(mappings_dir()), folder)
    text = (folder / "email_types.yaml").read_text(encoding="utf-8")
    (folder / "email_types.yaml").write_text(text.replace("disposition_id: 17", "disposition_id: 170"), "utf-8")
    with pytest.raises(ConfigError, match=r"email_types.yaml: siem_types.journal: disposition_id 170 does not exist"):
        load_email_rules(folder)


def test_a_row_naming_an_unknown_source_fails_at_load(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(str(mappings_dir()), folder)
    text = (folder / "email_url_activity.yaml").read_text(encoding="utf-8")
    (folder / "email_url_activity.yaml").write_text(text.replace("from: url_categories", "from: categories"), "utf-8")
    with pytest.raises(
        ConfigError, match=r"email_url_activity.yaml: row 'url.categories': unknown source 'categories'"
    ):
        load_email_rules(folder)
