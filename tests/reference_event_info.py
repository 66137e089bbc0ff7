"""The eventInfo parser as it was before it was made linear (commit 5650180), kept as a test oracle only.

tests/test_event_info_linear.py checks on many short texts that the linear parser returns exactly what this one
did. Do not use it on long texts: its regexes backtrack (quadratic and worse).
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Final

__all__ = ["KNOWN_KEYS", "LAYOUTS", "parse_event_info"]

# Keys Mimecast writes as "Key: value"; the parsed dict uses the snake_case name on the right.
KNOWN_KEYS: Final[dict[str, str]] = {
    "Date": "date",
    "Time": "time",
    "IP": "ip",
    "Application": "application",
    "Method": "method",
    "2FA": "two_factor",
    "Reason": "reason",
    "Source": "source",
    "Search Criteria": "search_criteria",
}
# A known key at the start of the text or after whitespace or a comma. The check sits after each key's first letter
# ("D(?<![^\s,].)ate": the character before the "D" is not something other than a separator) so that the pattern
# starts with a set of literal letters, which lets the regex engine skip ahead instead of trying every position.
_KEY_SCAN = re.compile(
    "(" + "|".join(re.escape(key[0]) + r"(?<![^\s,].)" + re.escape(key[1:]) for key in KNOWN_KEYS) + r"):[ \t]*"
)

_ADDRESS = r"[^\s,<>]+"
# "Successful authentication for a@b.com <A B>, Date: ..., Time: ..., IP: ..., Application: ..."
_AUTH = re.compile(
    rf"(?P<outcome>Successful|Failed|Intermediate) authentication for (?P<subject>{_ADDRESS})?"
    r"\s*(?:<(?P<subject_name>[^>]*)>)?\s*,?\s*(?P<rest>.*)\Z",
    re.S,
)
# "Action Performed - <what> by a@b.com<A B> Date: ... Time: ... IP: ... Application: ..." (no commas)
_ACTION = re.compile(
    rf"Action Performed\s*-\s*(?P<action>.*?)\s+by\s+(?P<actor>{_ADDRESS}?)\s*<(?P<actor_name>[^>]*)>\s*(?P<rest>.*)\Z",
    re.S,
)
# "Password reset for user: a@b.com User Password Changed, Remote IP is 198.51.100.5"
_PASSWORD = re.compile(
    rf"Password reset for user:\s*(?P<subject>{_ADDRESS})\s*(?P<detail>.*?),?\s*Remote IP is (?P<ip>\S+?)\.?\s*\Z",
    re.S,
)
# "Executed Search - Source: Search, Search Criteria: {...}, Date: ..." (a title, a dash, then pairs)
_TITLED = re.compile(r"(?P<action>[A-Z][^\n]{0,80}?)\s+-\s+(?P<rest>.*\b(?:IP|Application|Date|Source):.*)\Z", re.S)

LAYOUTS: Final[tuple[str, ...]] = ("authentication", "action_performed", "password_reset", "titled", "unknown")

# Verbs of "Action Performed - <Verb> <object>" texts; the group/account tables pick activities from them.
_VERB = re.compile(
    r"(?P<verb>Created|Deleted|Added|Removed|Enabled|Disabled|Locked|Unlocked|Reset|Changed|Updated)\b\s*(?P<object>.*)",
    re.S,
)
_MEMBER_CHANGE = re.compile(
    rf"(?P<member>{_ADDRESS}@{_ADDRESS})\s+(?:to|from)\s+(?:group\s+)?(?P<group>.+?)\.?\s*\Z", re.S
)
_FIRST_ADDRESS = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# One intended change since: the prefix is a word of its own ("Groupware" and "Folders" are names).
_GROUP_OBJECT = re.compile(r"(?:(?:group|folder)\s+)?\s*(?P<group>.+?)\.?\s*\Z", re.S | re.I)

# "18:17:30 BST", "11:00:00 +0100", "16:20:00+0000"
_TIME = re.compile(
    r"(?P<clock>\d{1,2}:\d{2}(?::\d{2})?)\s*(?:(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})|(?P<zone>[A-Z]{2,5}))?\Z"
)
# Zone abbreviations seen in Mimecast texts and their offsets in minutes; ambiguous ones (IST) are left out.
_ZONES: Final[dict[str, int]] = {
    "UTC": 0, "GMT": 0, "Z": 0, "BST": 60, "WET": 0, "WEST": 60, "CET": 60, "CEST": 120, "EET": 120,
    "EEST": 180, "SAST": 120, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
}  # fmt: skip


def _scan_pairs(text: str, into: dict[str, object]) -> None:
    # split() gives [before, key, value, key, value, ...]: each value runs up to the next key
    parts = _KEY_SCAN.split(text)
    for index in range(1, len(parts), 2):
        value = parts[index + 1].strip().rstrip(",").strip()
        if value:
            into[KNOWN_KEYS[parts[index]]] = value


def _read_time(parsed: dict[str, object]) -> None:
    raw_time = parsed.get("time")
    if not isinstance(raw_time, str):
        return
    match = _TIME.match(raw_time)
    if match is None:
        return
    clock, sign, hh, mm, zone = match.groups()
    if sign:
        minutes = int(hh) * 60 + int(mm)
        parsed["timezone_offset"] = -minutes if sign == "-" else minutes
    elif zone in _ZONES:
        parsed["timezone_offset"] = _ZONES[zone]
    if "date" in parsed:
        parsed["local_time"] = f"{parsed['date']}T{clock}"


def _read_action(action: str, parsed: dict[str, object]) -> None:
    verb = _VERB.match(action)
    if verb is not None:
        parsed["verb"] = verb.group("verb")
        obj = verb.group("object").strip()
        member = _MEMBER_CHANGE.match(obj)
        if member is not None:
            parsed["member"] = member.group("member")
            parsed["group"] = member.group("group").strip()
        elif obj and _FIRST_ADDRESS.search(obj) is None:
            group = _GROUP_OBJECT.match(obj)
            if group is not None and group.group("group"):
                parsed["group"] = group.group("group").strip()
    target = _FIRST_ADDRESS.search(action)
    if target is not None:
        parsed["target"] = target.group(0)


def _decode_search_criteria(parsed: dict[str, object]) -> None:
    criteria = parsed.get("search_criteria")
    if isinstance(criteria, str) and criteria.startswith("{"):
        # keep the text when it is not JSON: a truncated criteria string is still worth having
        with contextlib.suppress(ValueError):
            parsed["search_criteria"] = json.loads(criteria)


def parse_event_info(text: str) -> dict[str, object]:
    """Parse one ``eventInfo`` text into named fields. Never raises.

    Returns a dict with ``layout`` (one of ``LAYOUTS``) and, when found: ``outcome``, ``subject``,
    ``subject_name``, ``actor``, ``actor_name``, ``action``, ``verb``, ``target``, ``member``, ``group``,
    ``detail``, the ``KNOWN_KEYS`` values, ``timezone_offset`` (minutes) and ``local_time``.
    """
    parsed: dict[str, object] = {}
    text = text.strip()
    if match := _AUTH.match(text):
        outcome, subject, subject_name, rest = match.groups()
        parsed["layout"] = "authentication"
        parsed["outcome"] = outcome
        if subject:
            parsed["subject"] = subject
        if subject_name:
            parsed["subject_name"] = subject_name.strip()
        _scan_pairs(rest, parsed)
    elif match := _ACTION.match(text):
        action, actor, actor_name, rest = match.groups()
        parsed["layout"] = "action_performed"
        action = action.strip()
        parsed["action"] = action
        if actor:
            parsed["actor"] = actor
        if actor_name:
            parsed["actor_name"] = actor_name.strip()
        _read_action(action, parsed)
        _scan_pairs(rest, parsed)
    elif match := _PASSWORD.match(text):
        parsed["layout"] = "password_reset"
        parsed["subject"] = match.group("subject")
        if match.group("detail"):
            parsed["detail"] = match.group("detail").strip()
        parsed["ip"] = match.group("ip")
    elif match := _TITLED.match(text):
        parsed["layout"] = "titled"
        parsed["action"] = match.group("action").strip()
        _scan_pairs(match.group("rest"), parsed)
    else:
        parsed["layout"] = "unknown"
        _scan_pairs(text, parsed)
    _read_time(parsed)
    _decode_search_criteria(parsed)
    return parsed
