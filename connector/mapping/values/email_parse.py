"""Linear-time readers for the values Mimecast's email-security records carry as text.

Tenant data is attacker-controlled (a subject, a file name, a URL are the sender's choice), so every reader here
runs in time linear in its input, bounds what it returns, and answers None (or an empty result) for anything it
does not recognise instead of raising: the caller keeps the raw value in ``unmapped``.

What each reader accepts (docs/email-mapping.md has the record shapes they come from):

* ``flag``: booleans, also as strings (``"true"``, ``"False"``, ``"yes"``);
* ``count``: non-negative integers, also as strings of ASCII digits (``"31363"``), below 2**63;
* ``epoch_ms``: an epoch-millisecond timestamp (integer or digit string) inside the OCSF range;
* ``email_address``: an address that passes the OCSF ``email_t`` pattern, nothing else;
* ``ip_address``: an IPv4/IPv6 address that passes the OCSF ``ip_t`` pattern (``"Internal IP"`` does not);
* ``split_addresses``: ``recipients`` as one string separated by ``,`` or ``;`` (or a list), at most
  ``MAX_RECIPIENTS``;
* ``attachment_names``: ``attachments`` as one string of quoted, comma-separated names (``"a.pdf", "b, c.jpg"``),
  or one unquoted name that may hold quotes (``so-called "TPS REPORTS" we need to fill``), at most
  ``MAX_ATTACHMENTS``;
* ``json_value``: a JSON object given as a JSON string (``spamProcessingDetail``, ``analysis``), or as an object;
  the string ``"null"`` is no value; a text nested beyond ``MAX_JSON_DEPTH`` stays raw;
* ``bracket_fields``: ``rejectionInfo`` texts such as ``[Type: [Phishing & Fraud],Url: [https://…],UrlBlock: […]``;
* ``hex_digest``: an md5 / sha1 / sha256 as hexadecimal of the right length.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any, Final

import orjson

from connector.nesting import nests_deeper_than

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_JSON_DEPTH",
    "MAX_JSON_TEXT",
    "MAX_LIST_ITEMS",
    "MAX_RECIPIENTS",
    "attachment_names",
    "bracket_fields",
    "count",
    "email_address",
    "epoch_ms",
    "flag",
    "hex_digest",
    "ip_address",
    "json_value",
    "split_addresses",
    "word",
]

MAX_RECIPIENTS: Final = 100
"""Recipients read from one record; the rest stay in the raw ``recipients`` value, kept in ``unmapped``."""
MAX_ATTACHMENTS: Final = 100
"""Attachment names read from one ``attachments`` string; with more, the raw string is kept in ``unmapped``."""
MAX_LIST_ITEMS: Final = 50
"""Items read from a list-valued field (impersonation ``identifiers``, URL categories)."""
MAX_JSON_TEXT: Final = 65_536
"""Longest JSON-in-a-string parsed (``analysis``, ``spamProcessingDetail``); a longer one stays raw."""
MAX_JSON_DEPTH: Final = 32
"""Deepest JSON-in-a-string parsed; a deeper one stays raw (it lands in ``unmapped``, and the sinks' JSON writer
takes at most 254 levels)."""
_MAX_BRACKET_TEXT: Final = 8192
_MAX_INT: Final = 2**63 - 1
_MIN_MS: Final = 10**12  # the validator's epoch-millisecond range (2001-09-09 .. 2286-11-20)
_MAX_MS: Final = 10**13

# The OCSF 1.8.0 email_t pattern, matched whole (as the Rust validator does: no trailing newline slips through).
_EMAIL: Final = re.compile(r"[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_IP_MAX_LENGTH: Final = 40  # ip_t maxLength
_TRUE: Final = frozenset({"true", "yes", "1", "y"})
_FALSE: Final = frozenset({"false", "no", "0", "n"})
_ADDRESS_SEPARATORS: Final = re.compile(r"[,;]")
# Between two quoted names: a closing quote, a comma, an opening quote (spaces allowed around the comma).
_QUOTED_SEPARATOR: Final = re.compile(r'"\s*,\s*"')
# ``Key: [value]`` in a rejectionInfo text; a value holds no bracket (an unclosed last one runs to the end).
_BRACKET_FIELD: Final = re.compile(r"([A-Za-z][A-Za-z ]{0,40}):\s*\[([^\[\]]*)(?:\]|$)")
_HEX_LENGTHS: Final = {"md5": 32, "sha1": 40, "sha256": 64}
_HEX: Final = re.compile(r"[0-9a-fA-F]+")


def word(value: object) -> str | None:
    """A decision word: a string stripped and lower-cased, a boolean as ``true``/``false``, an integer as digits."""
    if isinstance(value, str):
        text = value.strip().lower()
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return None


def flag(value: object) -> bool | None:
    """True / False from a boolean or a boolean-as-string; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= 8:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def count(value: object) -> int | None:
    """A non-negative integer below 2**63 from an integer or a string of ASCII digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= _MAX_INT else None
    if isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= 19 and text.isascii() and text.isdigit():
            number = int(text)
            return number if number <= _MAX_INT else None
    return None


def epoch_ms(value: object) -> int | None:
    """An epoch-millisecond time (integer or digits) inside the range OCSF times may take; None otherwise."""
    number = count(value)
    return number if number is not None and _MIN_MS <= number < _MAX_MS else None


def email_address(value: object) -> str | None:
    """The text when it is an address OCSF accepts (``<>``, ``null`` and display names are not)."""
    if isinstance(value, str) and 3 <= len(value) <= 320 and _EMAIL.fullmatch(value):
        return value
    return None


def ip_address(value: object) -> str | None:
    """The text when it is an IPv4/IPv6 address OCSF accepts (``"Internal IP"`` is not)."""
    if not isinstance(value, str) or not value or len(value) > _IP_MAX_LENGTH:
        return None
    if _IPV4.fullmatch(value):
        return value
    if ":" not in value or not value.isascii():
        return None
    try:  # the C parser first: 0.2 µs
        socket.inet_pton(socket.AF_INET6, value)
    except (OSError, ValueError):
        try:  # a scope id ("fe80::1%eth0"), which ip_t allows too
            address, _, scope = value.partition("%")
            if not scope or scope.strip() != scope:
                return None
            ipaddress.IPv6Address(address)
        except ValueError:
            return None
    return value


def split_addresses(value: object) -> tuple[list[str], bool]:
    """(valid addresses, whether everything was read): a string split on ``,``/``;`` or a list of strings.

    At most ``MAX_RECIPIENTS`` are read; anything left out (an invalid part, more than the cap, a value of
    another type) makes the second item False, so the caller keeps the raw value.
    """
    if isinstance(value, str):
        parts: Iterable[object] = _ADDRESS_SEPARATORS.split(value, maxsplit=MAX_RECIPIENTS)
    elif isinstance(value, list):
        parts = value[: MAX_RECIPIENTS + 1]
    else:
        return [], value is None
    found: list[str] = []
    complete = True
    for part in parts:
        if len(found) == MAX_RECIPIENTS:
            complete = False
            break
        text = part.strip() if isinstance(part, str) else None
        if not text:
            complete = complete and text == ""
            continue
        address = email_address(text)
        if address is None:
            complete = False
        elif address not in found:
            found.append(address)
    if isinstance(value, list) and len(value) > MAX_RECIPIENTS:
        complete = False
    return found, complete


def attachment_names(value: object) -> tuple[list[str], bool]:
    """(names, whether all were read) from an ``attachments`` string; see the module docstring for the forms."""
    if not isinstance(value, str):
        return [], value is None
    text = value.strip()
    if not text or text == "null":
        return [], True
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        parts = _QUOTED_SEPARATOR.split(text[1:-1], maxsplit=MAX_ATTACHMENTS)
    else:  # one name, quotes and commas in it included
        parts = [text]
    names = [part for part in parts[:MAX_ATTACHMENTS] if part]
    return names, len(parts) <= MAX_ATTACHMENTS


def json_value(value: object) -> tuple[Any, bool]:
    """(the value, whether it was understood): an object or list as it is, a JSON text parsed, ``"null"`` None.

    Too long, malformed or too deeply nested text (beyond ``MAX_JSON_DEPTH``) answers ``(None, False)``: the caller
    keeps the raw string. A value given as an object is bounded by the record's own depth check
    (``connector.nesting``).
    """
    if value is None or isinstance(value, dict | list):
        return value, True
    if not isinstance(value, str):
        return None, False
    text = value.strip()
    if not text or text == "null":
        return None, True
    if len(text) > MAX_JSON_TEXT or text[0] not in "{[":
        return None, False
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None, False
    if nests_deeper_than(parsed, MAX_JSON_DEPTH):  # orjson reads 1024 levels, and writes only 254
        return None, False
    return parsed, True


def bracket_fields(value: object) -> dict[str, str]:
    """``Key: [value]`` pairs of a pseudo-structured text (first occurrence of each key); empty for plain text."""
    if not isinstance(value, str) or "[" not in value or len(value) > _MAX_BRACKET_TEXT:
        return {}
    fields: dict[str, str] = {}
    for match in _BRACKET_FIELD.finditer(value):
        key = match.group(1).strip()
        fields.setdefault(key, match.group(2).strip())
    return fields


def hex_digest(value: object, algorithm: str) -> str | None:
    """The lower-cased digest when it is hexadecimal of the algorithm's length (md5, sha1, sha256)."""
    if isinstance(value, str) and len(value) == _HEX_LENGTHS[algorithm] and _HEX.fullmatch(value):
        return value.lower()
    return None
