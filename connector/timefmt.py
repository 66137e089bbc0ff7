"""Mimecast's date-time format: ``yyyy-MM-ddTHH:mm:ss±hhmm`` (offset without a colon, so not RFC 3339).

Requests carry it in ``startDateTime``/``endDateTime``; records carry it in ``eventTime``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["MAX_EPOCH_MS", "MIN_EPOCH_MS", "format_mimecast_time", "ms_to_datetime", "parse_mimecast_time_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_ONE_MS = timedelta(milliseconds=1)
MIN_EPOCH_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
"""0001-01-01T00:00:00.000Z, the earliest instant a ``datetime`` holds."""
MAX_EPOCH_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _ONE_MS
"""9999-12-31T23:59:59.999Z, the latest instant a ``datetime`` holds: a larger epoch value is not a time."""
_DAY_MS = 86_400_000
# ASCII digits only: ``\d`` would also take Arabic-Indic and other Unicode digits, which int() then reads.
_MIMECAST_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
    r"(?:(Z)|([+-])([0-9]{2}):?([0-9]{2}))\Z"
)
# The shape Mimecast sends in every eventTime, ``2026-06-15T14:02:41+0000``: read without building a datetime.
_PLAIN_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})([+-])([0-9]{2})([0-9]{2})\Z")
# "yyyy-MM-dd" -> epoch ms of that day's UTC midnight. Audit records of one pull span a few days; bounded anyway.
_DAYS: dict[str, int] = {}
_DAYS_LIMIT = 4096


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
    plain = _PLAIN_TIME.match(text)
    if plain is not None:
        day, hour, minute, second, sign, off_h, off_m = plain.groups()
        day_ms = _DAYS.get(day)
        if day_ms is None:
            day_ms = _day_ms(day)
        hours, minutes, seconds = int(hour), int(minute), _second(int(second))
        offset_hours, offset_minutes = int(off_h), int(off_m)
        if hours > 23 or minutes > 59 or seconds > 59 or offset_hours > 23 or offset_minutes > 59:
            raise ValueError(f"not a Mimecast date-time: {text!r}")  # what the general path refuses too
        offset = offset_hours * 60 + offset_minutes
        ms = day_ms + hours * 3_600_000 + minutes * 60_000 + seconds * 1000
        return ms + offset * 60_000 if sign == "-" else ms - offset * 60_000
    return _parse_general(text)


def _second(second: int) -> int:
    """A leap second (``23:59:60``) is read as the second before it: the record is kept, in order, instead of
    being refused (its id would then be remembered as delivered and the record lost for good)."""
    return 59 if second == 60 else second


def _day_ms(day: str) -> int:
    try:
        ordinal = date(int(day[:4]), int(day[5:7]), int(day[8:10])).toordinal()
    except ValueError:
        raise ValueError(f"not a Mimecast date-time: {day!r}") from None
    if len(_DAYS) >= _DAYS_LIMIT:
        _DAYS.clear()
    _DAYS[day] = day_ms = (ordinal - _EPOCH_ORDINAL) * _DAY_MS
    return day_ms


def _parse_general(text: str) -> int:
    """The tolerant path: ``Z``, a colon in the offset, fractional seconds."""
    match = _MIMECAST_TIME.match(text)
    if match is None:
        raise ValueError(f"not a Mimecast date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        tz = UTC
    else:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"not a Mimecast date-time: {text!r}")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    micros = int(fraction.ljust(6, "0")) if fraction else 0
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), _second(int(second)), micros, tzinfo=tz
        )
    except ValueError:
        raise ValueError(f"not a Mimecast date-time: {text!r}") from None
    return (moment - _EPOCH) // _ONE_MS


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds to an aware UTC datetime (exact: integer arithmetic, no float seconds).

    Raises:
        ValueError: ``ms`` lies outside ``MIN_EPOCH_MS..MAX_EPOCH_MS`` (years 1 to 9999), so it is no time at all
            (``datetime.fromtimestamp`` would raise OverflowError, OSError or ValueError depending on the size).
    """
    if not MIN_EPOCH_MS <= ms <= MAX_EPOCH_MS:
        raise ValueError(f"epoch milliseconds {ms} lie outside the years 1 to 9999")
    return _EPOCH + timedelta(milliseconds=ms)
