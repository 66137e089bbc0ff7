"""Tolerant parsers for Mimecast's free-text ``eventInfo``, in time linear in the length of the text.

Mimecast puts the useful fields of an audit record inside one free-text string whose layout varies by audit type
and has changed over time (docs/mimecast-eventinfo.md). Each known layout is recognised by its fixed prefix and
then cut at its fixed words; they are tried in order and the first match wins. ``Key: value`` pairs (``IP``,
``Application``, ``Method``, ``2FA``, ``Reason``, ``Date``, ``Time``...) are then read by one compiled key scanner
that works with and without the commas between pairs. When that gives no valid ``IP``, the first address under
a source label in any of its phrasings is taken ("Remote IP is x", "remote IP : x", "IP Address = x", "from IP
x"). Parsing never fails: an unknown layout yields ``layout="unknown"`` plus whatever pairs the scanner found, and
the caller keeps the whole text in ``message``.

The text is written by whoever controls a tenant's data (a folder name, a search string, a display name), so
every step is linear: no pattern here may try a quantified run again from each of its positions. The regexes use
possessive quantifiers (``*+``, ``++``) and look-behinds that only let a run be entered at its first character;
where a layout needs "the first place where the rest fits" (``... by <actor><Name>``), the candidates are found
by one scan and each is checked once. Only the first ``MAX_PARSED_CHARS`` characters are parsed at all.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
from typing import Final

__all__ = ["KNOWN_KEYS", "LAYOUTS", "MAX_PARSED_CHARS", "parse_event_info"]

# How much of an eventInfo text is parsed. Real texts are under 2 KB (the longest seen in public samples, a page
# export with its column list, is about 0.5 KB); anything past this is not read for fields, but the whole text
# still goes to the event's `message`, and the parsed fields say `truncated: true`.
MAX_PARSED_CHARS: Final = 16 * 1024
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

# "Successful authentication for a@b.com <A B>, Date: ..., Time: ..., IP: ..., Application: ..."; anchored, and
# `rest` always matches, so nothing is retried (the possessive runs only say so).
_AUTH = re.compile(
    r"(?P<outcome>Successful|Failed|Intermediate) authentication for (?P<subject>[^\s,<>]++)?"
    r"\s*+(?:<(?P<subject_name>[^>]*+)>)?\s*,?\s*(?P<rest>.*)\Z",
    re.S,
)
# "Action Performed - <what> by a@b.com<A B> Date: ... Time: ... IP: ... Application: ..." (no commas): the action
# runs up to the first " by <actor> <" that is followed by a ">" (see _match_action).
_ACTION_PREFIX = re.compile(r"Action Performed\s*+-")
# " by a@b.com <" at the first character of a whitespace run (so each run is entered once)
_ACTION_BY = re.compile(r"(?<!\s)\s++by\s++(?P<actor>[^\s,<>]++)\s*+<")
_ACTION_BY_HERE = re.compile(r"\s++by\s++(?P<actor>[^\s,<>]++)\s*+<")
_SPACES = re.compile(r"\s*+")  # always matches


def _skip_spaces(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not whitespace."""
    match = _SPACES.match(text, pos)
    return match.end() if match is not None else pos


# "Password reset for user: a@b.com User Password Changed, Remote IP is 198.51.100.5": the text ends with
# "Remote IP is <token>" (see _match_password)
_PASSWORD_PREFIX = re.compile(r"Password reset for user:\s*+(?P<subject>[^\s,<>]++)")
_REMOTE_IP_IS = "Remote IP is "
# "Executed Search - Source: Search, Search Criteria: {...}, Date: ..." (a title of at most 81 characters, a dash,
# then pairs, one of which is IP/Application/Date/Source)
_TITLED = re.compile(r"(?P<action>[A-Z][^\n]{0,80}?)(?<!\s)\s++-\s++")
_TITLED_KEY = re.compile(r"\b(?:IP|Application|Date|Source):")

LAYOUTS: Final[tuple[str, ...]] = ("authentication", "action_performed", "password_reset", "titled", "unknown")

# Verbs of "Action Performed - <Verb> <object>" texts; the group/account tables pick activities from them.
_VERB = re.compile(
    r"(?P<verb>Created|Deleted|Added|Removed|Enabled|Disabled|Locked|Unlocked|Reset|Changed|Updated)\b\s*(?P<object>.*)",
    re.S,
)
# "<member> to|from [group ]<group>[.]": the member is the object's first token, with an "@" inside it
_MEMBER_TOKEN = re.compile(r"[^\s,<>]++")
_TO_FROM = re.compile(r"\s++(?:to|from)\s++")
_GROUP_WORD = re.compile(r"group\s++")
# The first e-mail-like address; it can only start where a run of local-part characters starts.
_FIRST_ADDRESS = re.compile(r"(?<![A-Za-z0-9._%+'-])[A-Za-z0-9._%+'-]++@[A-Za-z0-9-]++(?:\.[A-Za-z0-9-]++)++")
# "group " / "folder " as a word of its own: "Groupware Team" and "Folders" are names, not a prefix and a name.
_GROUP_PREFIX = re.compile(r"(?:(?:group|folder)\s++)?", re.I)

# A source address under another label than "IP:": "Remote IP is x", "remote IP : x", "IP Address :x",
# "ip address = x", "Source IP: x", "Client IP x", "from IP x"... (docs/mimecast-eventinfo.md). Label words in any
# case, then ":" / "=" / "is" / "was" or just spaces (a second lone ":" is skipped: "IP: : x"), then the value.
# The regex starts at the "ip" itself (a two-letter set the engine scans for quickly); a qualifier before it is
# checked by _IP_QUALIFIER on the few characters before the match.
_IP_LABEL = re.compile(
    r"[Ii][Pp](?i:[ _-]?(?:address|addr))?(?i:[ _-]?v[46])?(?![\w-])"
    r"(?:\s*+(?:[:=]|(?i:is|was)\b)(?:\s++:(?=\s))?)?\s*+\[?(?P<value>[0-9A-Fa-f.:]++(?:%[\w.-]++)?)"
)
_IP_LETTERS = re.compile(r"[Ii][Pp]")  # where _IP_LABEL can match: found by a fast scan, then matched there
_IP_QUALIFIER = re.compile(r"(?<![\w-])(?i:remote|source|src|client|sender|origin|originating|login|user)[ _-]?\Z")
# Words that may stand right before a bare "IP" label ("Login from IP x"); after any other word ("Blocked IP: x",
# "Permitted IP: x") the address is something the text is about, not where the action came from.
_IP_LEAD_WORDS: Final = frozenset({"from", "via", "using", "with", "by", "at", "on", "and", "the"})
_LAST_WORD = re.compile(r"(?<!\w)\w++\Z")
# Labels looked at per text: real texts have one or two; a text full of "IP" words is not read past this many.
_MAX_IP_LABELS: Final = 32
# A dotted quad (the common "IP:" value), checked without building an ipaddress object
_IPV4: Final = re.compile(
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)

# "18:17:30 BST", "11:00:00 +0100", "16:20:00+0000", "06:43:25 GMT-04:00"
_TIME = re.compile(
    r"(?P<clock>\d{1,2}:\d{2}(?::\d{2})?)\s*+"
    r"(?:(?:GMT|UTC)?(?P<sign>[+-])(?P<hh>\d{2}):?(?P<mm>\d{2})|(?P<zone>[A-Z]{2,5}))?\Z"
)
# Zone abbreviations seen in Mimecast texts and their offsets in minutes; ambiguous ones (IST) are left out.
_ZONES: Final[dict[str, int]] = {
    "UTC": 0, "GMT": 0, "Z": 0, "BST": 60, "WET": 0, "WEST": 60, "CET": 60, "CEST": 120, "EET": 120,
    "EEST": 180, "SAST": 120, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
}  # fmt: skip
# Decoded `Search Criteria` JSON deeper than this stays text: the encoders downstream refuse deep nesting (orjson
# stops at 255 levels), and real criteria are two or three levels deep.
_MAX_JSON_DEPTH: Final = 32


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


def _is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4/IPv6 address, as ``values.valid_ip`` decides (the mapper asks it again)."""
    if _IPV4.fullmatch(text):
        return True
    if ":" not in text:
        return False
    try:  # the C parser first (0.2 µs); ipaddress (4 µs) for what it refuses but ipaddress accepts ("fe80::1%eth0")
        socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return False
    return True


def _ip_from_value(value: str) -> str | None:
    """The address in a labelled value: as written, without a final full stop, or without a ":port"."""
    for candidate in (value, value.rstrip(".:"), value.partition(":")[0] if value.count(":") == 1 else ""):
        if (candidate.count(".") == 3 or ":" in candidate) and _is_ip(candidate):  # cheap shape test first
            return candidate
    return None


def _labelled_ip(text: str) -> str | None:
    """The first valid address after a source-address label in any of its phrasings (see ``_IP_LABEL``)."""
    count = 0
    for letters in _IP_LETTERS.finditer(text):
        start = letters.start()
        match = _IP_LABEL.match(text, start)
        if match is None:
            continue
        count += 1
        if count > _MAX_IP_LABELS:
            break
        if _IP_QUALIFIER.search(text, max(0, start - 12), start) is None:  # a bare "ip"
            if start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
                continue  # part of a word ("VIP", "zip") or of an unknown compound ("x-ip")
            window = text[max(0, start - 40) : start]
            if window != window.rstrip():  # a word and spaces before the label: which word?
                before = _LAST_WORD.search(window.rstrip())
                if before is not None and before.group().lower() not in _IP_LEAD_WORDS:
                    continue
        ip = _ip_from_value(match.group("value"))
        if ip is not None:
            return ip
    return None


def _read_labelled_ip(text: str, parsed: dict[str, object]) -> None:
    """When the layout gave no usable ``ip`` (none, "null", "1.2.3.4.", ": 1.2.3.4"...), take a labelled one.

    Most records have a dotted quad here: recognised by its shape alone (the mapper checks it is valid).
    """
    ip = parsed.get("ip")
    if isinstance(ip, str):
        if ":" not in ip and ip.count(".") == 3 and ip.isascii() and ip.replace(".", "").isdigit():
            return  # a dotted quad, or digits shaped like one ("999.1.1.1"): no labelled one will do better
        if ":" in ip and _is_ip(ip):
            return
    labelled = _labelled_ip(text)
    if labelled is not None:
        parsed["ip"] = labelled


def _drop_final_dot(text: str) -> str:
    """``text`` without one final ``.`` (a sentence's full stop), unless that dot is all there is."""
    return text[:-1] if len(text) > 1 and text.endswith(".") else text


def _member_change(obj: str) -> tuple[str, str] | None:
    """``(member, group)`` of "a@b.com to|from [group ]Name[.]" (``obj`` is stripped), else None."""
    token = _MEMBER_TOKEN.match(obj)
    if token is None or "@" not in token.group()[1:-1]:
        return None
    joint = _TO_FROM.match(obj, token.end())
    if joint is None:
        return None
    start = joint.end()
    word = _GROUP_WORD.match(obj, start)
    if word is not None:  # "group " is a prefix, not the name (obj is stripped, so a name follows)
        start = word.end()
    return token.group(), _drop_final_dot(obj[start:]).strip()


def _group_object(obj: str) -> str:
    """The group named by "[group|folder ]Name[.]" (``obj`` is stripped and not empty)."""
    prefix = _GROUP_PREFIX.match(obj)
    rest = obj[prefix.end() :] if prefix is not None else ""
    return _drop_final_dot(rest if rest else obj)


def _read_action(action: str, parsed: dict[str, object]) -> None:
    verb = _VERB.match(action)
    if verb is not None:
        parsed["verb"] = verb.group("verb")
        obj = verb.group("object").strip()
        member = _member_change(obj)
        if member is not None:
            parsed["member"], parsed["group"] = member
        elif obj and _FIRST_ADDRESS.search(obj) is None:
            group = _group_object(obj)
            if group:
                parsed["group"] = group.strip()
    target = _FIRST_ADDRESS.search(action)
    if target is not None:
        parsed["target"] = target.group(0)


def _json_depth(value: object) -> int:
    """Nesting depth of decoded JSON, counted without recursion."""
    depth, level = 0, [(value, 1)]
    while level:
        item, at = level.pop()
        if isinstance(item, dict | list):
            depth = max(depth, at)
            level.extend((child, at + 1) for child in (item.values() if isinstance(item, dict) else item))
    return depth


def _decode_search_criteria(parsed: dict[str, object]) -> None:
    criteria = parsed.get("search_criteria")
    if isinstance(criteria, str) and criteria.startswith("{"):
        # keep the text when it is not JSON: a truncated criteria string is still worth having; deep nesting
        # ("[[[[...") makes json raise RecursionError, and is kept as text as well
        with contextlib.suppress(ValueError, RecursionError):
            decoded = json.loads(criteria)
            if _json_depth(decoded) <= _MAX_JSON_DEPTH:
                parsed["search_criteria"] = decoded


def _match_action(text: str) -> tuple[str, str, str, str] | None:
    """``(action, actor, actor_name, rest)`` of an "Action Performed - <action> by <actor><Name> <rest>" text.

    The action ends at the first " by <actor> <" after the dash (and its spaces) that a ">" follows. Each candidate
    is found by one forward scan and checked once; the first whose "<" has no ">" after it ends the search, since
    no later "<" can have one either. Only when nothing after the dash's spaces fits, " by" right at the dash is
    tried (an empty action), as a backtracking regex would.
    """
    prefix = _ACTION_PREFIX.match(text)
    if prefix is None:
        return None
    action_start = _skip_spaces(text, prefix.end())
    by = _ACTION_BY.search(text, action_start)
    if by is not None and (gt := text.find(">", by.end())) >= 0:
        action = text[action_start : by.start()]
    else:
        by = _ACTION_BY_HERE.match(text, prefix.end()) if action_start > prefix.end() else None
        if by is None or (gt := text.find(">", by.end())) < 0:
            return None
        action = ""
    rest_start = _skip_spaces(text, gt + 1)
    return action, by.group("actor"), text[by.end() : gt], text[rest_start:]


def _match_password(text: str) -> tuple[str, str, str] | None:
    """``(subject, detail, ip)`` of "Password reset for user: <subject> <detail>[,] Remote IP is <ip>[.]".

    The text (stripped) must end with "Remote IP is " and one token; so that place is found from the end, and the
    subject and detail are read from what comes before it.
    """
    tokens = text.rsplit(None, 1)
    if not tokens:
        return None
    token = tokens[-1]
    label_at = len(text) - len(token) - len(_REMOTE_IP_IS)
    if label_at < 0 or not text.startswith(_REMOTE_IP_IS, label_at):
        return None
    head = _PASSWORD_PREFIX.match(text, 0, label_at)
    if head is None:
        return None
    detail = text[head.end() : label_at].lstrip().rstrip()
    if detail.endswith(","):
        detail = detail[:-1]
    return head.group("subject"), detail, _drop_final_dot(token)


def _match_titled(text: str) -> tuple[str, str] | None:
    """``(action, rest)`` of "<Title> - <pairs>": a title of 1-81 characters starting with a capital, without a
    newline, then a dash between spaces; the rest names IP, Application, Date or Source somewhere."""
    match = _TITLED.match(text)
    if match is None or _TITLED_KEY.search(text, match.end()) is None:
        return None  # a later dash leaves less text after it, so it cannot do better
    return match.group("action"), text[match.end() :]


def parse_event_info(text: str) -> dict[str, object]:
    """Parse one ``eventInfo`` text into named fields. Never raises; linear in ``len(text)``.

    Returns a dict with ``layout`` (one of ``LAYOUTS``) and, when found: ``outcome``, ``subject``,
    ``subject_name``, ``actor``, ``actor_name``, ``action``, ``verb``, ``target``, ``member``, ``group``,
    ``detail``, the ``KNOWN_KEYS`` values, ``timezone_offset`` (minutes) and ``local_time``; ``truncated: True``
    when the text is longer than ``MAX_PARSED_CHARS`` and only its beginning was parsed.
    """
    parsed: dict[str, object] = {}
    text = text.strip()
    truncated = len(text) > MAX_PARSED_CHARS
    if truncated:
        text = text[:MAX_PARSED_CHARS].rstrip()
    if match := _AUTH.match(text):
        outcome, subject, subject_name, rest = match.groups()
        parsed["layout"] = "authentication"
        parsed["outcome"] = outcome
        if subject:
            parsed["subject"] = subject
        if subject_name:
            parsed["subject_name"] = subject_name.strip()
        _scan_pairs(rest, parsed)
    elif action_parts := _match_action(text):
        action, actor, actor_name, rest = action_parts
        parsed["layout"] = "action_performed"
        action = action.strip()
        parsed["action"] = action
        if actor:
            parsed["actor"] = actor
        if actor_name:
            parsed["actor_name"] = actor_name.strip()
        _read_action(action, parsed)
        _scan_pairs(rest, parsed)
    elif password := _match_password(text):
        subject, detail, ip = password
        parsed["layout"] = "password_reset"
        parsed["subject"] = subject
        if detail:
            parsed["detail"] = detail.strip()
        parsed["ip"] = ip
    elif titled := _match_titled(text):
        parsed["layout"] = "titled"
        parsed["action"] = titled[0].strip()
        _scan_pairs(titled[1], parsed)
    else:
        parsed["layout"] = "unknown"
        _scan_pairs(text, parsed)
    _read_labelled_ip(text, parsed)
    _read_time(parsed)
    _decode_search_criteria(parsed)
    if truncated:
        parsed["truncated"] = True
    return parsed
