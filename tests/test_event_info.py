"""eventInfo parsers: each known layout, and graceful degradation on text they do not know."""

from __future__ import annotations

import pytest

from connector.mapping.event_info import parse_event_info


def test_authentication_layout_with_commas() -> None:
    parsed = parse_event_info(
        "Failed authentication for bob@contoso.example.org <Bob Okafor>, Date: 2026-06-15, Time: 15:01:10 BST, "
        "IP: 198.51.100.77, Application: Mimecast for Outlook, Method: Domain Authentication, "
        "Reason: Invalid credentials"
    )
    assert parsed == {
        "layout": "authentication", "outcome": "Failed", "subject": "bob@contoso.example.org",
        "subject_name": "Bob Okafor", "date": "2026-06-15", "time": "15:01:10 BST", "ip": "198.51.100.77",
        "application": "Mimecast for Outlook", "method": "Domain Authentication", "reason": "Invalid credentials",
        "timezone_offset": 60, "local_time": "2026-06-15T15:01:10",
    }  # fmt: skip


def test_action_performed_layout_without_commas_reads_actor_and_pairs() -> None:
    parsed = parse_event_info(
        "Action Performed - Added bob@x.example.com to Finance Approvers by admin@x.example.com<Contoso Admin> "
        "Date: 2026-05-03 Time: 13:45:19 +0100 IP: 203.0.113.40 Application: Administration Console"
    )
    assert parsed["layout"] == "action_performed"
    assert (parsed["actor"], parsed["actor_name"]) == ("admin@x.example.com", "Contoso Admin")
    assert (parsed["verb"], parsed["member"], parsed["group"]) == ("Added", "bob@x.example.com", "Finance Approvers")
    assert (parsed["ip"], parsed["application"], parsed["timezone_offset"]) == (
        "203.0.113.40", "Administration Console", 60,
    )  # fmt: skip


def test_password_reset_layout_keeps_null_ip_as_text() -> None:
    parsed = parse_event_info("Password reset for user: carol@x.example.org User Password Changed, Remote IP is null")
    assert parsed == {"layout": "password_reset", "subject": "carol@x.example.org",
                      "detail": "User Password Changed", "ip": "null"}  # fmt: skip


def test_json_inside_the_text_is_decoded() -> None:
    parsed = parse_event_info(
        'Executed Search - Source: Search, Search Criteria: {"keywords":"invoice","route":"ALL"}, '
        "Date: 2026-05-04, Time: 16:20:00+0000, IP: 203.0.113.41, Application: mimecast-case-review"
    )
    assert parsed["layout"] == "titled"
    assert parsed["search_criteria"] == {"keywords": "invoice", "route": "ALL"}
    assert parsed["timezone_offset"] == 0


def test_truncated_json_stays_text() -> None:
    parsed = parse_event_info('Executed Search - Source: Search, Search Criteria: {"keywords":"inv, IP: 192.0.2.1')
    assert parsed["search_criteria"] == '{"keywords":"inv'


def test_multiline_text_is_parsed() -> None:
    parsed = parse_event_info(
        "Successful authentication for a@b.example.com <A B>\nDate: 2026-01-01\nTime: 10:00:00 GMT\n"
        "IP: 2001:db8::1\nApplication: X"
    )
    assert (parsed["subject"], parsed["ip"], parsed["application"]) == ("a@b.example.com", "2001:db8::1", "X")


def test_negative_numeric_zone() -> None:
    assert (
        parse_event_info("Successful authentication for a@b.example.com, Date: 2026-01-01, Time: 09:00:00 -0430")[
            "timezone_offset"
        ]
        == -270
    )


@pytest.mark.parametrize("text", ["", "No changes found.", "<<<>>>", "by <", "Action Performed - ", "IP:", "\n\n"])
def test_unknown_text_never_raises(text: str) -> None:
    parsed = parse_event_info(text)
    assert parsed["layout"] in {"unknown", "titled", "action_performed", "authentication", "password_reset"}


def test_unknown_layout_still_collects_pairs() -> None:
    assert parse_event_info("Something new happened. IP: 192.0.2.9 Application: API")["ip"] == "192.0.2.9"
