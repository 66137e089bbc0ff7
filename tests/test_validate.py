"""The validator: schema failures name the JSON path; semantic rules the schema cannot check."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from connector.errors import EventValidationError
from connector.ocsf.validate import EventValidator

GOOD: dict[str, Any] = json.loads(
    (Path(__file__).parent / "golden" / "authentication" / "logon_success_cloud.json").read_text()
)["expected"]


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator()


def broken(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        node = event
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return event


def test_golden_event_is_valid(validator: EventValidator) -> None:
    assert validator.problems(GOOD) == []


@pytest.mark.parametrize(
    ("event", "path"),
    [
        (broken(user=KeyError), "$"),
        (broken(user={"email_addr": "a@b.example.com"}), "$.user"),
        (broken(user__email_addr="someone@example"), "$.user.email_addr"),
        (broken(src_endpoint__ip="not-an-ip"), "$.src_endpoint.ip"),
        (broken(unexpected_key=1), "$"),
        (broken(activity_id=42), "$.activity_id"),
        (broken(type_uid=300299), "$.type_uid"),
        (broken(activity_name="Logoff"), "$.activity_name"),
        (broken(status="Failure"), "$.status"),
        (broken(class_name="Account Change"), "$.class_name"),
        (broken(time=1772442845), "$.time"),
        (broken(metadata__logged_time=1780000000), "$.metadata.logged_time"),
        (broken(metadata__version="1.7.0"), "$.metadata.version"),
        (broken(observables=[{"name": "user.nope", "type_id": 5, "value": "x"}]), "$.observables[0].name"),
        (broken(class_uid=4001), "$.class_uid"),
    ],
)
def test_each_rule_names_the_failing_path(validator: EventValidator, event: dict[str, Any], path: str) -> None:
    problems = validator.problems(event)
    assert problems, "expected the event to be refused"
    assert problems[0].path == path


def test_activity_other_needs_the_source_word(validator: EventValidator) -> None:
    event = broken(activity_id=99, type_uid=300299, activity_name="", type_name="Authentication: ")
    assert validator.problems(event)[0].path == "$.activity_name"
    event = broken(activity_id=99, type_uid=300299, activity_name="Application Password Logon",
                   type_name="Authentication: Application Password Logon")  # fmt: skip
    assert validator.problems(event) == []


def test_check_raises_with_record_id(validator: EventValidator) -> None:
    with pytest.raises(EventValidationError, match=r"record R9 produced an invalid OCSF event at \$\.time") as info:
        validator.check(broken(time=5), record_id="R9")
    assert info.value.path == "$.time"


def test_not_an_object(validator: EventValidator) -> None:
    assert validator.problems([1])[0].path == "$"


def test_header_memo_gives_the_same_answers_as_a_fresh_check() -> None:
    """The header checks are memoised per combination of header fields: a memo hit must never hide a problem."""
    shared = EventValidator()
    variants = [
        GOOD,
        broken(activity_name="Logoff"),
        broken(activity_id=1.0),  # passes the schema as an integer, equals 1 as a key, but has no caption "1.0"
        broken(type_uid=300101.0, activity_id=1.0),
        broken(status_id=1.0),
        broken(class_name=KeyError),  # an optional caption absent: checked without the memo
        broken(type_name="Authentication: Logoff"),
        broken(severity="High"),
        GOOD,
    ]
    for event in variants * 2:  # the second round is all memo hits
        assert shared.problems(event) == EventValidator().problems(event)
    assert shared.problems(broken(activity_name="Logoff")) != []
    assert shared.problems(GOOD) == []


def test_header_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.ocsf.validate as validate_module

    monkeypatch.setattr(validate_module, "_HEADER_MEMO_LIMIT", 3)
    validator = EventValidator()
    for word in ("a", "b", "c", "d", "e"):
        assert validator.problems(broken(status=word)) != []
    assert len(validator._classes[3002].headers) == 3
    assert validator.problems(broken(status="e")) != []  # not in the memo, still checked


def _email_url_event(**metadata: Any) -> dict[str, Any]:
    return {
        "class_uid": 4012, "category_uid": 4, "activity_id": 3, "type_uid": 401203, "severity_id": 1,
        "time": 1_764_547_200_000, "email_uid": "agg-1", "url": {"url_string": "https://example.com/x"},
        "disposition_id": 2, "action_id": 2,
        "metadata": {"version": "1.8.0", "product": {"name": "Email Security", "vendor_name": "Mimecast"},
                     **metadata},
    }  # fmt: skip


def test_an_email_class_needs_the_security_control_profile_it_was_generated_with(validator: EventValidator) -> None:
    # the schema of 4012 is generated with security_control (disposition_id and action_id are its attributes) ...
    assert validator.problems(_email_url_event(profiles=["security_control"])) == []
    # ... and an event that uses them without naming the profile would mislead a consumer that checks profiles
    for wrong in ({}, {"profiles": []}, {"profiles": ["security_control", "cloud"]}):
        assert [p.path for p in validator.problems(_email_url_event(**wrong))] == ["$.metadata.profiles"]
    # the identity classes have no profile, so an event that names one is refused too
    assert [p.path for p in validator.problems(broken(metadata__profiles=["security_control"]))] == [
        "$.metadata.profiles"
    ]
