"""The original record in OCSF ``raw_data``, when asked (parameter ``raw_data_max_bytes``), as Elastic's
``preserve_original_event`` keeps ``event.original``.

One function for every record kind, called after mapping and before validation (``connector.pipeline``): the
audit and directory paths call it in the ``Transformer``; the email sources' ``Transformer.email_record`` calls it
the same way. Membership-change events (Group Management Add/Remove User) are derived from two directory pulls and
have no original record: they never get ``raw_data``.

What is written:

* ``raw_data``: the record as compact JSON (no spaces, keys in the order Mimecast sent them, non-ASCII kept as
  UTF-8), when it is at most ``cap`` UTF-8 bytes.
* ``raw_data_size``: the size of that JSON text in bytes, always (when the feature is on). It is also what tells
  an analyst that a record was too large: OCSF ``raw_data`` is a string, and a JSON text cut at the cap is not
  JSON, so a record above the cap keeps its ``raw_data_size`` but gets no ``raw_data``; the Transformer counts it
  (``Report.raw_data_omitted``, a line in the run summary).

The record is tenant data like the mapped fields themselves: it is not redacted (no connector credential is in
a Mimecast record), and the JSON encoders of every sink escape what needs escaping.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

__all__ = ["RAW_DATA_SUGGESTED_CAP", "raw_json", "with_raw_data"]

RAW_DATA_SUGGESTED_CAP: Final = 16_384
"""A cap that keeps every ordinary Mimecast record (an audit record is a few hundred bytes, a user with many
groups a few kilobytes) while bounding what one event can add to the output."""


def raw_json(record: object) -> bytes:
    """``record`` as compact UTF-8 JSON. orjson first (fast); the standard library for what orjson refuses (an
    integer beyond 64 bits, a lone surrogate that Python's own JSON parser accepted), written as ASCII with
    escapes so that the text is valid UTF-8 whatever the record holds."""
    try:
        return orjson.dumps(record)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(record, separators=(",", ":"), ensure_ascii=True, default=str).encode("ascii")


def with_raw_data(event: dict[str, Any], record: object, cap: int) -> bool:
    """Add ``raw_data`` and ``raw_data_size`` to ``event`` (in place) for ``record``, under ``cap`` bytes.

    Args:
        event: The mapped OCSF event (not validated yet).
        record: The Mimecast record it was mapped from.
        cap: ``raw_data_max_bytes``; 0 turns the feature off (the event is left untouched).

    Returns:
        False when the record was larger than ``cap`` (only ``raw_data_size`` was set): the caller counts it.
        True otherwise (also when the feature is off).
    """
    if cap <= 0:
        return True
    data = raw_json(record)
    event["raw_data_size"] = len(data)
    if len(data) > cap:
        return False
    event["raw_data"] = data.decode("utf-8")
    return True
