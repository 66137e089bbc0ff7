"""Generate mappings/REVIEW.md from the mapping tables and the golden scenarios (``make golden``/``make review``).

An analyst reviews a mapping change from this one file: per class, the audit types it takes with their activity,
status and severity, the field table (OCSF attribute ← source), and one raw → OCSF example. ``--check`` exits 1
when the committed file is stale (the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from connector.mapping.email.rules import EmailKind, EmailRules, load_email_rules
from connector.mapping.tables import Classification, FieldTable, MappingRules, load_rules
from connector.mapping.values.common import UNKNOWN_IDENTITY
from connector.mapping.values.email_parse import MAX_ATTACHMENTS, MAX_RECIPIENTS
from connector.ocsf.catalog import OCSF_VERSION, load_enums

ROOT = Path(__file__).resolve().parent.parent
REVIEW = ROOT / "mappings" / "REVIEW.md"
GOLDEN = ROOT / "tests" / "golden"
# Table → golden scenario shown as its example: one for each audit table (in the manifest's order), and one each
# for the directory's membership changes and users.
AUDIT_EXAMPLES: dict[str, str] = {
    "authentication": "authentication/logon_failed_invalid_credentials",
    "account_change": "account_change/account_disabled",
    "group_management": "group_management/folder_member_added",
    "base_event": "base_event/search_action_json_in_text",
}
MEMBERSHIP_EXAMPLE = "group_management/membership_diff_add_and_remove"
USER_EXAMPLE = "user_inventory/user_with_groups"
# Email table → golden scenario shown as its example.
EMAIL_EXAMPLES: dict[str, str] = {
    "email_activity": "email_activity/ugly_rejection_info_pseudo_structured",
    "email_file_activity": "email_file_activity/sample_ttp_attachment_01",
    "email_url_activity": "email_url_activity/ugly_analysis_json_string",
    "detection_finding": "detection_finding/sample_ttp_impersonation_01",
    "data_security_finding": "data_security_finding/sample_dlp_01",
}
_OUTCOME_CAPTIONS = ("activity_id", "disposition_id", "action_id", "status_id", "severity_id")
# What a heading adds to the class caption, for the tables that need it.
HEADING_NOTES: dict[str, str] = {"base_event": ": audit types outside the four tables"}


def _heading(table: FieldTable) -> str:
    """``Authentication (3002)``: the class caption and uid of a table."""
    return f"{load_enums().class_info(table.class_uid)['caption']} ({table.class_uid})"


def _status(row: Classification) -> str:
    if row.status_id == "from_outcome":
        return "from outcome (Successful 1 / Failed 2 / Intermediate 99 Challenge)"
    caption = row.status or load_enums().caption(row.class_uid, "status_id", int(row.status_id))
    return f"{row.status_id} {caption}"


def _activity(row: Classification, name: str) -> str:
    enums = load_enums()
    if row.activity_by_verb:
        verbs = ", ".join(
            f"{verb} → {a} {enums.caption(row.class_uid, 'activity_id', a)}" for verb, a in row.activity_by_verb.items()
        )
        return f"by verb: {verbs}; else {row.activity_id} {name}"
    caption = name if row.activity_id == 99 else enums.caption(row.class_uid, "activity_id", row.activity_id)
    return f"{row.activity_id} {caption}"


def _types_table(rules: MappingRules, class_uid: int) -> list[str]:
    enums = load_enums()
    lines = ["| auditType | activity | status | severity | note |", "|---|---|---|---|---|"]
    rows = [(name, row) for name, row in rules.audit_types.items() if row.class_uid == class_uid]
    rows += [
        (f"*any other type in category `{c}`*", r) for c, r in rules.categories.items() if r.class_uid == class_uid
    ]
    if class_uid == rules.default.class_uid:
        rows.append(("*any other type*", rules.default))
    for name, row in rows:
        word = "*the auditType*" if name.startswith("*") else name
        severity = f"{row.severity_id} {enums.caption(row.class_uid, 'severity_id', row.severity_id)}"
        lines.append(f"| {name} | {_activity(row, word)} | {_status(row)} | {severity} | {row.note} |")
    return lines


def _field_table(table: FieldTable) -> list[str]:
    lines = ["| OCSF attribute | ← source | how the source is computed | note |", "|---|---|---|---|"]
    for row in table.rows:
        lines.append(f"| `{row.ocsf}` | `{row.source}` | {row.definition.description} | {row.note} |")
    lines.append("")
    lines.append(
        f"Raw fields consumed: {', '.join(f'`{f}`' for f in sorted(table.consumes)) or 'none'}; "
        f"dropped by name: {', '.join(f'`{f}`' for f in sorted(table.drop)) or 'none'}; every other raw field "
        "goes to `unmapped`, and parsed eventInfo fields no row uses go to `unmapped.event_info`."
    )
    return lines


def _outcome(class_uid: int, outcome: dict[str, Any]) -> str:
    enums = load_enums()
    parts = []
    for name in _OUTCOME_CAPTIONS:
        if name in outcome:
            value = outcome[name]
            caption = outcome.get("activity_name") if name == "activity_id" and value == 99 else None
            parts.append(f"{name.removesuffix('_id')} {value} {caption or enums.caption(class_uid, name, value)}")
    if "is_alert" in outcome:
        parts.append(f"is_alert {str(outcome['is_alert']).lower()}")
    return ", ".join(parts)


def _kinds_table(rules: EmailRules, table: FieldTable) -> list[str]:
    lines = ["| record kind | base outcome | decided by (lower-cased value → outcome) | note |", "|---|---|---|---|"]
    kinds: list[tuple[str, EmailKind]] = [(f"SIEM `{name}`", kind) for name, kind in rules.siem_types.items()]
    kinds += [(f"`{name}`", kind) for name, kind in rules.kinds.items()]
    for label, kind in kinds:
        if kind.table.table != table.table:
            continue
        lookups = "; ".join(
            f"`{lookup.field}`{' (prefix)' if lookup.prefix else ''}: "
            + ", ".join(f"{value} → ({_outcome(table.class_uid, dict(out))})" for value, out in lookup.values.items())
            for lookup in kind.lookups
        )
        base = _outcome(table.class_uid, dict(kind.base))
        lines.append(f"| {label} (feature {kind.feature}) | {base} | {lookups or '—'} | {kind.note} |")
    return lines


def _email_field_table(table: FieldTable) -> list[str]:
    lines = _field_table(table)[:-1]
    lines.append(
        f"Raw fields consumed: {', '.join(f'`{f}`' for f in sorted(table.consumes))}, and the fields the outcome "
        "reads; every other raw field goes to `unmapped` under its Mimecast name, and so does a consumed value "
        "that would fail an OCSF format (kept as sent)."
    )
    return lines


def _email_sections() -> list[str]:
    rules = load_email_rules()
    out = [
        "## Email security (SIEM logs, TTP URL / Attachment / Impersonation Protect, DLP)",
        "",
        f"Every email event carries `metadata.product` = {json.dumps(dict(rules.product))} plus the feature, "
        '`metadata.profiles` = `["security_control"]` (disposition_id, action_id and policy need it) and '
        f"`metadata.version` = {json.dumps(OCSF_VERSION)}. A SIEM record's kind is its `type` (or `eventType`); "
        "an unknown one is refused with its key. Rows of `mappings/email_common.yaml` come first in every table. "
        f"Caps: {MAX_RECIPIENTS} recipients and {MAX_ATTACHMENTS} attachment names per record (the raw value is "
        "kept in `unmapped` beyond them). Decisions and facts: `docs/email-mapping.md`.",
        "",
    ]
    for table in rules.tables.values():
        out += [f"### {_heading(table)}", "", "#### Record kinds", ""]
        out += _kinds_table(rules, table)
        out += ["", "#### Field table (rows run in order)", ""]
        out += _email_field_table(table)
        out += [""] + _example(EMAIL_EXAMPLES[table.table]) + [""]
    return out


def _example(scenario: str) -> list[str]:
    data = json.loads((GOLDEN / f"{scenario}.json").read_text(encoding="utf-8"))
    return [
        f"Example (`tests/golden/{scenario}.json`), raw:",
        "",
        "```json",
        json.dumps(data["input"], indent=2, sort_keys=True, ensure_ascii=False),
        "```",
        "",
        "OCSF:",
        "",
        "```json",
        json.dumps(data["expected"], indent=2, sort_keys=True, ensure_ascii=False),
        "```",
    ]


def _golden_index() -> list[str]:
    lines = ["| scenario | result |", "|---|---|"]
    for path in sorted(GOLDEN.rglob("*.json")):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        expected = data["expected"]
        if data.get("error"):
            result = f"refused: {data['error']}"
        elif isinstance(expected, list):
            result = "; ".join(f"{e['class_name']}: {e['activity_name']} {e['user']['name']}" for e in expected)
        elif expected is None:
            result = "not emitted"
        else:
            result = f"{expected['type_name']}, status {expected['status']}"
            if "disposition" in expected:
                result += f", disposition {expected['disposition']}"
        lines.append(f"| `{path.relative_to(GOLDEN).with_suffix('')}` | {result} |")
    return lines


def render() -> str:
    """The full text of REVIEW.md."""
    rules = load_rules()
    out = [
        f"# Mapping review: Mimecast → OCSF {OCSF_VERSION}",
        "",
        "Generated by `make golden` from `mappings/*.yaml` and `tests/golden/`; do not edit by hand (a test fails",
        "when this file is stale). Captions (`activity_name`, `status`, `class_name`...) and `type_uid` are derived",
        "from the ids and the OCSF export, never typed in the tables. With activity 99 the caption is the auditType.",
        "",
        f"Every event carries `metadata.product` = {json.dumps(dict(rules.product))} plus the feature "
        f"(`{rules.audit_feature}` for audit events), and `metadata.version` = {json.dumps(OCSF_VERSION)}; "
        "no profiles.",
        f"When a record names no user (or a group event names no group), the name `{UNKNOWN_IDENTITY}` is used: OCSF",
        "requires the object, and the raw value stays visible.",
        "",
    ]
    for table in rules.audit_tables.values():
        out += [f"## {_heading(table)}{HEADING_NOTES.get(table.table, '')}", "", "### Audit types", ""]
        out += _types_table(rules, table.class_uid)
        out += ["", "### Field table (rows run in order)", ""]
        out += _field_table(table)
        if table.auth_methods:
            methods = ", ".join(f"{m} → {i}" for m, i in table.auth_methods.items())
            out += ["", f"`Method` → `auth_protocol_id`: {methods}; any other method → 99 with the text."]
        out += [""] + _example(AUDIT_EXAMPLES[table.table]) + [""]
    out += [f"## {_heading(rules.membership)} from inventory diffs", ""]
    out += [
        "A member present in the current directory pull but not the previous one → activity 3 Add User; absent now",
        "but present before → 4 Remove User (a group that disappeared loses all members). No events on the first",
        "pull. Time is the collection time: the diff says when the change was seen, not when it happened.",
        "",
    ]
    out += _field_table(rules.membership) + [""] + _example(MEMBERSHIP_EXAMPLE) + [""]
    out += [
        f"## {_heading(rules.user_inventory)}",
        "",
        "One event per directory user per collection: activity 2 Collect.",
        "",
    ]
    out += _field_table(rules.user_inventory) + [""] + _example(USER_EXAMPLE) + [""]
    out += _email_sections()
    out += ["## Every golden scenario", ""] + _golden_index() + [""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if mappings/REVIEW.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not REVIEW.exists() or REVIEW.read_text(encoding="utf-8") != text:
            print("mappings/REVIEW.md is stale; run `make golden` and review the diff", file=sys.stderr)
            return 1
        return 0
    REVIEW.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
