"""eventInfo parsing is linear and capped: hostile texts map at once, and the parser still says what it said.

Two kinds of evidence. The adversarial texts (100 KB runs of the characters the old patterns backtracked over,
alone and behind each layout's real prefix) go through the whole mapper and the validator; with the backtracking
parser the first of them took minutes (bench/RESULTS.md, "eventInfo parsing"), so a regression hangs the suite
rather than passing. The property tests compare the linear parser with the previous one
(tests/reference_event_info.py) on many short texts built from the tokens those layouts are made of: the same
fields, but for an ``ip`` the previous one did not find valid, which may now come from a labelled address.
"""

from __future__ import annotations

from typing import Any

import pytest
import reference_event_info
from hypothesis import given
from hypothesis import strategies as st

from connector.mapping.event_info import MAX_PARSED_CHARS, parse_event_info
from connector.mapping.mapper import Mapper
from connector.mapping.values.common import valid_ip
from connector.ocsf.validate import EventValidator

SIZE = 100_000
# Each run is SIZE characters long (what the old patterns retried from every position).
RUNS = {
    "spaces": " " * SIZE,
    "tabs": "\t" * SIZE,
    "at": "a@" * (SIZE // 2),
    "dot": "a." * (SIZE // 2),
    "lt": "<" * SIZE,
    "by": " by " * (SIZE // 4),
    "by_lt": " by a<" * (SIZE // 6),
    "brace": "{" * SIZE,
    "bracket": "[" * SIZE,
    "ip_label": "ip " * (SIZE // 3),
    "source_ip": "Source IP: 1 " * (SIZE // 13),
    "remote_ip": "Remote IP is " * (SIZE // 13),
    "mixed": " \t a@b.c <by IP " * (SIZE // 16),
}
# (auditType, prefix) pairs: each layout's real prefix, so the run reaches the pattern of that layout
PREFIXES = {
    "none": ("Search Action", "Note"),
    "auth": ("User Logged On", "Successful authentication for "),
    "action": ("Folder Log Entry", "Action Performed - "),
    "password": ("User Password Changed", "Password reset for user: "),
    "member": ("Folder Log Entry", "Action Performed - Added a@b.com to group "),
    "titled": ("Search Action", "Executed Search - Search Criteria: "),
}
# (layout, text) shapes with a known answer after the run
TAILED = {
    "password": "Password reset for user: a@b.example.com{run}, Remote IP is 192.0.2.1",
    "action": "Action Performed - Deleted{run} by admin@b.example.com<Admin> IP: 192.0.2.2",
    "auth": "Successful authentication for a@b.example.com{run}<A B>, IP: 192.0.2.3",
}


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper(clock_ms=lambda: 1_790_000_000_000, emit_other=True)


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator()


def _record(audit_type: str, text: str) -> dict[str, Any]:
    return {"id": "eNqHOSTILE", "auditType": audit_type, "category": "account_logs", "user": "u@b.example.com",
            "eventTime": "2026-05-01T08:30:00+0000", "eventInfo": text}  # fmt: skip


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
@pytest.mark.parametrize("run", sorted(RUNS))
def test_adversarial_100kb_texts_map_whole_with_the_parsed_part_capped(
    run: str, prefix: str, mapper: Mapper, validator: EventValidator
) -> None:
    audit_type, head = PREFIXES[prefix]
    text = head + RUNS[run] + " IP: 192.0.2.1 Application: X"
    mapped = mapper.map_audit(_record(audit_type, text), 1)
    assert mapped is not None
    assert mapped.event["message"] == text  # the whole text, though only the first 16 KB were parsed
    assert mapped.event["unmapped"]["event_info"]["truncated"] is True
    assert "192.0.2.1" not in str(mapped.event.get("src_endpoint"))  # it lies beyond the parsed part
    assert validator.problems(mapped.event) == []


# (" by a<" runs are left out of the action shape: the run itself holds the first " by a<" a ">" follows)
@pytest.mark.parametrize(
    ("shape", "run"),
    [(shape, run) for shape in sorted(TAILED) for run in ("spaces", "tabs", "lt", "by", "by_lt")
     if (shape, run) != ("action", "by_lt")],
)  # fmt: skip
def test_layouts_are_still_recognised_across_a_long_run(shape: str, run: str) -> None:
    run_text = RUNS[run][: MAX_PARSED_CHARS // 2]  # long, but the layout's tail stays inside the parsed part
    parsed = parse_event_info(TAILED[shape].format(run=run_text))
    assert parsed.get("truncated") is None
    if shape == "password":
        assert (parsed["layout"], parsed["subject"], parsed["ip"]) == ("password_reset", "a@b.example.com", "192.0.2.1")
    elif shape == "action":
        assert (parsed["layout"], parsed["actor"], parsed["ip"]) == (
            "action_performed",
            "admin@b.example.com",
            "192.0.2.2",
        )
    else:
        assert (parsed["layout"], parsed["subject"], parsed["ip"]) == ("authentication", "a@b.example.com", "192.0.2.3")


def test_text_past_the_cap_is_not_parsed_and_the_message_keeps_it(mapper: Mapper) -> None:
    head = "Successful authentication for a@b.example.com <A B>, Reason: "
    text = head + "x" * (MAX_PARSED_CHARS - len(head) - 10) + " IP: 192.0.2.44, Application: Late"
    parsed = parse_event_info(text)
    assert parsed["truncated"] is True and "application" not in parsed
    assert parsed["ip"] == "192.0"  # cut inside the address: the mapper refuses it, as any invalid IP
    mapped = mapper.map_audit(_record("User Logged On", text), 1)
    assert mapped is not None and "src_endpoint" not in mapped.event
    assert mapped.event["message"] == text
    assert mapped.event["unmapped"]["event_info"]["ip"] == "192.0"


def test_a_text_of_exactly_the_cap_is_parsed_whole() -> None:
    text = "Reason: " + "y" * (MAX_PARSED_CHARS - len("Reason: ") - len(" IP: 192.0.2.9")) + " IP: 192.0.2.9"
    assert len(text) == MAX_PARSED_CHARS
    parsed = parse_event_info(text)
    assert parsed["ip"] == "192.0.2.9" and "truncated" not in parsed


@pytest.mark.parametrize("nesting", ["[", '{"a":'])
def test_deeply_nested_search_criteria_stay_text(nesting: str) -> None:
    criteria = '{"k":' + nesting * (12_000 // len(nesting))  # deep, and inside the parsed part
    parsed = parse_event_info(f"Executed Search - Source: Search, Search Criteria: {criteria}")
    assert parsed["search_criteria"] == criteria  # json raised RecursionError here before


def test_moderately_nested_search_criteria_are_decoded_up_to_the_depth_limit() -> None:
    shallow = '{"a":' * 31 + "1" + "}" * 31
    deep = '{"a":' * 33 + "1" + "}" * 33
    assert isinstance(parse_event_info(f"X - Source: S, Search Criteria: {shallow}")["search_criteria"], dict)
    assert parse_event_info(f"X - Source: S, Search Criteria: {deep}")["search_criteria"] == deep


# Tokens the layouts are made of, and the characters the old patterns backtracked over.
TOKENS = st.sampled_from([
    "Successful authentication for ", "Failed authentication for ", "Action Performed", "Action Performed - ",
    "Password reset for user:", "Password reset for user: ", "Remote IP is ", "Remote IP is", " by ", "by", " ",
    "  ", "\t", "\n", "-", " - ", "<", ">", "<A B>", "@", ".", ",", ", ", "a", "A", "Z", "x@y.z", "a@b", "b.c",
    "IP:", "IP: ", "Date: ", "Time: ", "Application: ", "Source: ", "Search Criteria: ", "Reason: ", "2FA: ",
    "192.0.2.1", "null", "10:00:00 GMT", "10:00 +0100", "2026-01-01", "Added ", "Removed ", "Created ",
    "Deleted ", "Changed", " to ", " from ", "to", "group ", "Group ", "folder", "Folder ", "{", "}", '{"a":1}',
    "[", "]", '"', ":", "'", "%", "+", "ip", "Source IP", "from IP ", " = ", " is ", "2001:db8::1",
])  # fmt: skip


def assert_same_as_before(text: str) -> None:
    """What the previous parser said, but for ``ip``: where it had no valid address, a labelled one may now be."""
    new, old = parse_event_info(text), reference_event_info.parse_event_info(text)
    if new.get("ip") != old.get("ip"):
        assert valid_ip(old.get("ip")) is None and valid_ip(new["ip"]) is not None, (text, new, old)
        assert new["ip"] in text
        new.pop("ip")
        old.pop("ip", None)
    assert new == old


@given(st.lists(TOKENS, max_size=30).map("".join))
def test_linear_parser_says_what_the_backtracking_one_said(text: str) -> None:
    assert_same_as_before(text)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_linear_parser_agrees_on_arbitrary_short_text(text: str) -> None:
    assert_same_as_before(text)


@given(st.sampled_from(sorted(PREFIXES)), st.lists(TOKENS, max_size=30).map("".join))
def test_linear_parser_agrees_behind_each_prefix(prefix: str, text: str) -> None:
    assert_same_as_before(PREFIXES[prefix][1] + text)
