"""Golden scenarios: one file per scenario, {input, expected}. `make golden` regenerates; any diff fails here."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from connector.ocsf.validate import EventValidator
from connector.testing import golden_mapper, run_scenario

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SCENARIOS = sorted(GOLDEN.rglob("*.json"))


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mapper_and_validator() -> tuple[object, EventValidator]:
    return golden_mapper(), EventValidator()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(GOLDEN).with_suffix("")))
def test_scenario_matches_expected(path: Path, mapper_and_validator: tuple) -> None:
    mapper, validator = mapper_and_validator
    data = json.loads(path.read_text(encoding="utf-8"))
    cap = data.get("raw_data_max_bytes", 0)
    result = run_scenario(mapper, validator, data["source"], data["input"], raw_data_max_bytes=cap)
    assert result["error"] == data["error"]
    assert result["expected"] == data["expected"], "mapping changed: run `make golden` and review the diff"
    # The file is in canonical form, so `make golden` on an unchanged mapping is a no-op.
    assert path.read_text(encoding="utf-8") == _script("generate_golden").render(data)


def test_every_expected_event_is_valid() -> None:
    validator = EventValidator()
    for path in SCENARIOS:
        expected = json.loads(path.read_text(encoding="utf-8"))["expected"]
        for event in expected if isinstance(expected, list) else [expected] if expected else []:
            assert validator.problems(event) == [], path.name


def test_scenarios_cover_the_four_classes_and_the_ugly_cases() -> None:
    classes: Counter[int] = Counter()
    for path in SCENARIOS:
        expected = json.loads(path.read_text(encoding="utf-8"))["expected"]
        for event in expected if isinstance(expected, list) else [expected] if expected else []:
            classes[event["class_uid"]] += 1
    assert len(SCENARIOS) >= 25
    assert all(classes[uid] >= 3 for uid in (3001, 3002, 3006, 5003)), classes
    names = {p.stem for p in SCENARIOS}
    for ugly in ("logon_empty_user", "logon_user_not_an_email", "logon_success_saml_2fa_ipv6",
                 "password_changed_remote_ip_null", "logon_multiline_text", "search_action_json_in_text",
                 "unknown_type_unknown_layout"):  # fmt: skip
        assert ugly in names


def test_every_shared_sample_record_is_a_golden_input() -> None:
    inputs = [json.loads(p.read_text(encoding="utf-8"))["input"] for p in SCENARIOS]
    for line in (ROOT / "tests" / "fixtures" / "audit-records.jsonl").read_text(encoding="utf-8").splitlines():
        assert json.loads(line) in inputs


EMAIL_SAMPLES = {"siem": "siem_cg", "ttp_url": "ttp_url", "ttp_attachment": "ttp_attachment",
                 "ttp_impersonation": "ttp_impersonation", "dlp": "dlp"}  # fmt: skip


@pytest.mark.parametrize("source", sorted(EMAIL_SAMPLES))
def test_every_email_sample_record_is_a_golden_input_mapped_to_one_event(source: str) -> None:
    scenarios = [json.loads(p.read_text(encoding="utf-8")) for p in SCENARIOS]
    by_input = [(s["input"], s) for s in scenarios if s["source"] == source]
    lines = (ROOT / "tests" / "fixtures" / "streams" / f"{EMAIL_SAMPLES[source]}.jsonl").read_text(encoding="utf-8")
    for line in lines.splitlines():
        record = json.loads(line)
        matches = [s for raw, s in by_input if raw == record]
        assert matches, f"no golden scenario for {source} sample {line[:80]}"
        assert all(s["error"] is None and isinstance(s["expected"], dict) for s in matches), matches[0]["scenario"]


def test_email_scenarios_cover_every_class_and_the_ugly_cases() -> None:
    classes: Counter[int] = Counter()
    for path in SCENARIOS:
        expected = json.loads(path.read_text(encoding="utf-8"))["expected"]
        if isinstance(expected, dict):
            classes[expected["class_uid"]] += 1
    assert all(classes[uid] >= 3 for uid in (4009, 4011, 4012, 2004, 2006)), classes
    names = {p.stem for p in SCENARIOS}
    for ugly in ("ugly_event_type_subtype_style", "ugly_numbers_and_booleans_as_strings", "ugly_direction_upper_case",
                 "ugly_null_sender_angle_brackets", "ugly_message_id_missing_bracket", "ugly_fifteen_attachments",
                 "ugly_quoted_attachment_names_with_commas_and_quotes", "ugly_attachment_name_with_quotes",
                 "ugly_analysis_json_string", "ugly_rejection_info_pseudo_structured", "ugly_internal_ip_user_click",
                 "ugly_multiline_details_malicious", "email_unknown_siem_type"):  # fmt: skip
        assert ugly in names


def test_review_document_is_fresh() -> None:
    review = _script("generate_review")
    assert (ROOT / "mappings" / "REVIEW.md").read_text(encoding="utf-8") == review.render(), (
        "mappings/REVIEW.md is stale: run `make golden`"
    )


def test_committed_schemas_equal_a_fresh_generation() -> None:
    generated = _script("generate_schemas").render()
    assert set(generated) >= {"authentication.json", "account_change.json", "group_management.json",
                              "user_inventory.json", "base_event.json", "ocsf_enums.json"}  # fmt: skip
    for name, text in generated.items():
        assert (ROOT / "schemas" / name).read_text(encoding="utf-8") == text, f"schemas/{name} is stale: make schemas"
