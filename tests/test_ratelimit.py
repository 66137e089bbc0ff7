"""Exact-value tests for connector.api.ratelimit: the reset header is a ms duration, clamped when absurd."""

from __future__ import annotations

import random

import httpx
import pytest
from helpers_http import ZeroRandom

from connector.api.ratelimit import RetryPolicy, parse_remaining, parse_reset_delay


class OneRandom(random.Random):
    def random(self) -> float:
        return 1.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Reset": "2500"}, 2.5),
        ({"X-RateLimit-Reset": "2000"}, 2.0),
        ({"X-RateLimit-Reset": "5000"}, 5.0),
        ({"x-ratelimit-reset": "750"}, 0.75),
        ({"X-RateLimit-Reset": " 1200 "}, 1.2),
        ({"X-RateLimit-Reset": "0"}, 0.0),
        ({"X-RateLimit-Reset": "-40"}, 0.0),
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "3", "X-RateLimit-Reset": "2500"}, 3.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "X-RateLimit-Reset": "2500"}, 2.5),
        ({"X-RateLimit-Reset": "1732350000"}, 3600.0),  # epoch seconds misread as ms: clamped, not 20 days
        ({"X-RateLimit-Reset": "1732350000000"}, 3600.0),  # epoch milliseconds: clamped
        ({"X-RateLimit-Reset": "inf"}, 3600.0),
        ({"Retry-After": "999999"}, 3600.0),
        ({"X-RateLimit-Reset": "soon"}, None),
        ({"X-RateLimit-Reset": "nan"}, None),
        ({"X-RateLimit-Reset": ""}, None),
        ({}, None),
    ],
)
def test_parse_reset_delay(headers: dict[str, str], expected: float | None) -> None:
    assert parse_reset_delay(headers) == expected


def test_parse_reset_delay_custom_cap_and_httpx_headers() -> None:
    assert parse_reset_delay(httpx.Headers({"X-RateLimit-Reset": "1732350000"}), cap=30.0) == 30.0
    assert parse_reset_delay(httpx.Headers({"x-ratelimit-reset": "2500"})) == 2.5


@pytest.mark.parametrize(
    ("value", "expected"), [("0", 0), ("1", 1), ("99", 99), ("abc", None), ("inf", None), (None, None)]
)
def test_parse_remaining(value: str | None, expected: int | None) -> None:
    headers = {} if value is None else {"X-RateLimit-Remaining": value}
    assert parse_remaining(headers) == expected


def test_backoff_is_exponential_with_a_cap() -> None:
    policy = RetryPolicy(base_backoff=1.0, max_backoff=10.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert RetryPolicy(base_backoff=0.5, max_backoff=60.0).backoff(3) == 2.0
    assert policy.backoff(10_000) == 10.0  # no overflow


def test_rate_limit_wait_uses_the_reset_duration_without_jitter() -> None:
    policy = RetryPolicy(jitter=0.0)
    assert policy.rate_limit_wait({"X-RateLimit-Reset": "2500"}, random.Random(1)) == 2.5


def test_rate_limit_wait_jitter_is_bounded() -> None:
    policy = RetryPolicy(jitter=0.2)
    headers = {"X-RateLimit-Reset": "2500"}
    assert policy.rate_limit_wait(headers, ZeroRandom()) == 2.5
    assert policy.rate_limit_wait(headers, OneRandom()) == pytest.approx(3.0)
    rng = random.Random(42)
    for _ in range(200):
        assert 2.5 <= policy.rate_limit_wait(headers, rng) <= 3.0


def test_rate_limit_wait_clamps_epoch_values_to_the_policy_cap() -> None:
    policy = RetryPolicy(max_rate_limit_wait=60.0, jitter=0.0)
    assert policy.rate_limit_wait({"X-RateLimit-Reset": "1732350000000"}, ZeroRandom()) == 60.0
    assert RetryPolicy(max_rate_limit_wait=60.0, jitter=0.5).rate_limit_wait(
        {"X-RateLimit-Reset": "1732350000000"}, OneRandom()
    ) == pytest.approx(90.0)


def test_rate_limit_wait_without_headers_falls_back_to_backoff() -> None:
    policy = RetryPolicy(base_backoff=1.0, jitter=0.0)
    assert policy.rate_limit_wait({}, ZeroRandom(), attempt=3) == 4.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2500"}, 2.5),
        ({"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "4000"}, 4.0),
        ({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "4000"}, 0.0),
        ({"X-RateLimit-Remaining": "0"}, 0.0),
        ({"X-RateLimit-Reset": "4000"}, 0.0),
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1732350000000"}, 60.0),
    ],
)
def test_preemptive_wait(headers: dict[str, str], expected: float) -> None:
    assert RetryPolicy().preemptive_wait(headers) == expected


def test_preemptive_wait_can_be_turned_off() -> None:
    assert RetryPolicy(low_remaining=-1).preemptive_wait({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9"}) == 0


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_backoff": -1.0}, {"jitter": 1.5}, {"max_rate_limit_wait": -2.0}]
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
