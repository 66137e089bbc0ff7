"""Mimecast's date-time format: ``yyyy-MM-ddTHH:mm:ss±hhmm`` (offset without a colon, so not RFC 3339).

Requests carry it in ``startDateTime``/``endDateTime``; records carry it in ``eventTime``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["format_mimecast_time", "ms_to_datetime", "parse_mimecast_time_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_MIMECAST_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:(Z)|([+-])(\d{2}):?(\d{2}))\Z"
)


def format_mimecast_time(moment: datetime) -> str:
    """Format an aware datetime in UTC as Mimecast wants it, e.g. ``2024-01-01T00:00:00+0000``.

    Raises:
        ValueError: ``moment`` is naive (a naive time would silently shift the window).
    """
    if moment.tzinfo is None:
        raise ValueError("format_mimecast_time needs an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_mimecast_time_ms(text: str) -> int:
    """Parse a Mimecast ``eventTime`` into epoch milliseconds (UTC).

    Accepts the colon-less offset Mimecast sends, and tolerates ``Z``, a colon in the offset and fractional
    seconds, which other Mimecast surfaces produce.

    Raises:
        ValueError: the text is not a date-time in that format.
    """
    match = _MIMECAST_TIME.match(text)
    if match is None:
        raise ValueError(f"not a Mimecast date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        tz = UTC
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    micros = int(fraction.ljust(6, "0")) if fraction else 0
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tz)
    return (moment - _EPOCH) // _ONE_MS


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
