"""Mimecast date-times: the fast path for the shape Mimecast sends must agree with the general datetime path."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from connector import timefmt
from connector.timefmt import MAX_EPOCH_MS, MIN_EPOCH_MS, format_mimecast_time, ms_to_datetime, parse_mimecast_time_ms


def test_parses_the_colon_less_offset_mimecast_sends() -> None:
    assert parse_mimecast_time_ms("2026-06-15T14:02:41+0000") == 1781532161000
    assert parse_mimecast_time_ms("2026-06-15T15:02:41+0100") == 1781532161000
    assert parse_mimecast_time_ms("2026-06-15T09:02:41-0500") == 1781532161000
    assert parse_mimecast_time_ms("1970-01-01T00:00:00+0000") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-15T14:02:41Z", 1781532161000),
        ("2026-06-15T15:02:41+01:00", 1781532161000),
        ("2026-06-15T14:02:41.5+0000", 1781532161500),
        ("2026-06-15T14:02:41.123456-00:00", 1781532161123),
    ],
)
def test_tolerates_other_mimecast_surfaces(text: str, expected: int) -> None:
    assert parse_mimecast_time_ms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "15/06/2026 14:02",
        "2026-06-15 14:02:41+0000",
        "2026-06-15T14:02:41",
        "2026-02-30T14:02:41+0000",  # no such day
        "2026-13-01T14:02:41+0000",
        "0000-01-01T00:00:00+0000",
        "2026-06-15T24:00:00+0000",
        "2026-06-15T14:60:00+0000",
        "2026-06-15T14:02:61+0000",
        "2026-06-15T14:02:41+2400",
        "2026-06-15T14:02:41+2360",
        "2026-06-15T14:02:41+1399",  # 99 offset minutes
        "2026-06-15T14:02:41+13:99",
        "\u0662\u0660\u0662\u0666-\u0660\u0666-\u0661\u0665T14:02:41+0000",  # Arabic-Indic digits
        "2026-06-15T14:02:41+\u0966\u0967\u0966\u0966",  # Devanagari
        "2026-06-15T14:02:41.\uff15+0000",  # a fullwidth digit in the fraction
        "2026-06-15T14:02:41+0000 ",
        "2026-06-15T14:02:41+000",
    ],
)
def test_refuses_what_is_not_a_date_time(text: str) -> None:
    with pytest.raises(ValueError, match="not a Mimecast date-time"):
        parse_mimecast_time_ms(text)


@pytest.mark.parametrize("text", ["2016-12-31T23:59:60+0000", "2016-12-31T23:59:60Z", "2016-12-31T23:59:60.5+00:00"])
def test_a_leap_second_is_read_as_the_second_before_it(text: str) -> None:
    # Refusing it would refuse the record for good (its id is remembered as handled); 23:59:59 keeps it in order.
    assert parse_mimecast_time_ms(text) // 1000 == parse_mimecast_time_ms("2016-12-31T23:59:59+0000") // 1000


def test_fast_path_agrees_with_the_datetime_path_on_random_times() -> None:
    rng = random.Random(20261123)
    for _ in range(5000):
        text = (
            f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 31):02d}"
            f"T{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}"
            f"{rng.choice('+-')}{rng.randint(0, 24):02d}{rng.randint(0, 99):02d}"
        )
        try:
            expected: int | None = timefmt._parse_general(text)
        except (ValueError, OverflowError):
            expected = None
        try:
            actual: int | None = parse_mimecast_time_ms(text)
        except ValueError:
            actual = None
        assert actual == expected, text


def test_day_memo_is_bounded() -> None:
    for day in range(timefmt._DAYS_LIMIT + 10):
        parse_mimecast_time_ms(format_mimecast_time(datetime.fromtimestamp(day * 86400, tz=UTC)))
    assert len(timefmt._DAYS) <= timefmt._DAYS_LIMIT


def test_format_needs_an_aware_datetime() -> None:
    assert format_mimecast_time(datetime(2026, 6, 15, 15, 2, 41, tzinfo=UTC)) == "2026-06-15T15:02:41+0000"
    with pytest.raises(ValueError, match="aware"):
        format_mimecast_time(datetime(2026, 6, 15))


@pytest.mark.parametrize("ms", [10**17, MAX_EPOCH_MS + 1, MIN_EPOCH_MS - 1, -(10**17)])
def test_epoch_ms_outside_the_years_1_to_9999_is_a_value_error(ms: int) -> None:
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        ms_to_datetime(ms)


def test_epoch_ms_converts_exactly_up_to_the_bounds() -> None:
    assert ms_to_datetime(MAX_EPOCH_MS) == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert ms_to_datetime(MIN_EPOCH_MS) == datetime(1, 1, 1, tzinfo=UTC)
    assert ms_to_datetime(1_772_452_800_250) == datetime(2026, 3, 2, 12, 0, 0, 250000, tzinfo=UTC)
