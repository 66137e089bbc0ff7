"""eventInfo parsers: each known layout, and graceful degradation on text they do not know."""

from __future__ import annotations

import pytest

from connector.mapping.event_info import parse_event_info
from connector.mapping.values.common import valid_ip


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


# Source-address phrasings seen in public samples (docs/mimecast-eventinfo.md) and their variants of case,
# spacing around the separator and joining verb: each gives the address, and only a valid one.
@pytest.mark.parametrize(
    "text",
    [
        "Something happened, IP: 192.0.2.1",
        "Something happened, IP Address: 192.0.2.1",
        "Something happened, IP Address :192.0.2.1, Columns exported :Name",
        "Something happened, ip address = 192.0.2.1",
        "Something happened, IP=192.0.2.1",
        "Succesfully enrolled user for user device enrollment, Remote IP is 192.0.2.1",
        "Succesfully enrolled user, remote ip is 192.0.2.1.",
        "Address@4a3bcd11[accountId=75,aliases={}] remote IP : 192.0.2.1 application : LFS",
        "Login from IP 192.0.2.1",
        "Login via ip 192.0.2.1 (web)",
        "Source IP: 192.0.2.1",
        "source-ip=192.0.2.1",
        "Client IP 192.0.2.1:443",
        "CLIENT IP ADDRESS was 192.0.2.1",
        "Sender IPv4: 192.0.2.1",
        "Failed authentication for a@b.example.com <A B>, IP: : 192.0.2.1,, Application: X",
        "Successful authentication for a@b.example.com, IP: null, Remote IP is 192.0.2.1",
    ],
)
def test_labelled_source_address_in_any_phrasing(text: str) -> None:
    assert parse_event_info(text)["ip"] == "192.0.2.1"


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("Remote IP is 2001:db8::7", "2001:db8::7"),
        ("Client IP: [2001:db8::7]", "2001:db8::7"),
        ("IP address = ::1", "::1"),
        ("Source IP: fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_labelled_ipv6_addresses(text: str, ip: str) -> None:
    assert parse_event_info(text)["ip"] == ip


@pytest.mark.parametrize(
    "text",
    [
        "Device IP 192.0.2.1",  # a bare "IP" after another word names something else
        "Permitted IP range 192.0.2.0/24 added",
        "IP address was added to the list",
        "Remote IP is unknown",
        "VIP 192.0.2.1",
        "zip 192.0.2.1",
    ],
)
def test_no_address_is_taken_from_what_is_not_a_labelled_valid_one(text: str) -> None:
    assert "ip" not in parse_event_info(text)


def test_an_invalid_ip_value_stays_as_before_when_no_labelled_address_is_found() -> None:
    # the mapper keeps it out of src_endpoint.ip and reports it in unmapped.event_info, as before
    assert parse_event_info("Successful authentication for a@b.example.com, IP: null")["ip"] == "null"
    assert parse_event_info("Password reset for user: a@b.example.org x, Remote IP is null")["ip"] == "null"


def test_an_invalid_labelled_value_stays_out_of_the_valid_addresses() -> None:
    assert valid_ip(parse_event_info("Source IP: 999.1.1.1").get("ip")) is None
    assert valid_ip(parse_event_info("Note, remote ip is 192.0.2.256").get("ip")) is None


def test_the_first_labelled_address_is_taken_when_the_ip_pair_runs_on() -> None:
    # "IP: " values run to the next known key, so here the pair is "192.0.2.1, then remote ip is 192.0.2.2"
    assert parse_event_info("Note, IP: 192.0.2.1, then remote ip is 192.0.2.2")["ip"] == "192.0.2.1"


def test_gmt_offset_zone() -> None:
    parsed = parse_event_info(
        "Successful authentication for a@b.example.com, Date: 2022-05-29, Time: 06:43:25 GMT-04:00"
    )
    assert (parsed["timezone_offset"], parsed["local_time"]) == (-240, "2022-05-29T06:43:25")


@pytest.mark.parametrize(
    ("action", "group"),
    [
        ("Created Groupware Team", "Groupware Team"),  # before: "ware Team"
        ("Deleted Folders", "Folders"),  # before: "s"
        ("Deleted Folder", "Folder"),
        ("Deleted group Sales", "Sales"),
        ("Created Folder  Legal.", "Legal"),
    ],
)
def test_a_group_or_folder_prefix_is_only_dropped_as_a_word_of_its_own(action: str, group: str) -> None:
    assert parse_event_info(f"Action Performed - {action} by x@y.example<X>")["group"] == group
