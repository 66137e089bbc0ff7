"""connector.api.retry.Retrier without Mimecast: a sender and an interpreter, as an HTTP sink would give it."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from helpers_http import FakeClock, ZeroRandom

from connector.api.ratelimit import RateGate, RetryPolicy
from connector.api.retry import Retrier
from connector.api.stats import ClientStats
from connector.errors import ApiError, RateLimitExhaustedError, RequestCancelledError

HEC = "https://hec.example.net:8088/services/collector/event"
POLICY = RetryPolicy(max_attempts=3, base_backoff=1.0, max_backoff=5.0, jitter=0.0)


def answers(*items: httpx.Response | Exception) -> Callable[[], httpx.Response]:
    """A sender that answers (or raises) each of ``items`` in turn."""
    queue: Iterator[httpx.Response | Exception] = iter(items)

    def send() -> httpx.Response:
        item = next(queue)
        if isinstance(item, Exception):
            raise item
        return item

    return send


def response(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(status, headers=headers, content=body, request=httpx.Request("POST", HEC))


def accept(answer: httpx.Response) -> int:
    """An HEC-like interpreter: 503 is retryable (server busy), another non-2xx final."""
    if answer.status_code == 503:
        raise ApiError("HEC is busy", status_code=503, retryable=True)
    if answer.status_code >= 400:
        raise ApiError(f"HEC refused the batch: HTTP {answer.status_code}", status_code=answer.status_code)
    return answer.status_code


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def retrier(clock: FakeClock, **kw: object) -> Retrier:
    return Retrier(POLICY, ClientStats(), sleep=clock.sleep, clock=clock, rng=ZeroRandom(), **kw)  # type: ignore[arg-type]


def test_an_interpreters_retryable_error_is_retried_with_backoff(clock: FakeClock) -> None:
    loop = retrier(clock)
    assert loop.call("hec", answers(response(503), response(503), response(200)), accept) == 200
    assert clock.sleeps == [1.0, 2.0]
    assert isinstance(loop.counters, ClientStats)
    assert (loop.counters.requests, loop.counters.retries) == (3, 2)


def test_a_final_interpretation_is_raised_at_once(clock: FakeClock) -> None:
    with pytest.raises(ApiError, match="HTTP 400"):
        retrier(clock).call("hec", answers(response(400)), accept)
    assert clock.sleeps == []


def test_a_429_closes_the_shared_gate_and_names_the_callers_service_and_advice(clock: FakeClock) -> None:
    gate = RateGate(clock)
    loop = retrier(clock, gate=gate, service="Splunk HEC", rate_limit_advice="Raise the HEC queue size.")
    limited = response(429, {"Retry-After": "4"})
    with pytest.raises(RateLimitExhaustedError) as caught:
        loop.call("hec", answers(limited, limited, limited), accept)
    assert str(caught.value) == (
        "Splunk HEC kept answering HTTP 429 (rate limited) to hec after 3 attempts; Raise the HEC queue size."
    )
    assert clock.sleeps == [4.0, 4.0]
    assert gate.opens_at() == clock.now  # the shared gate was closed for each wait, and is open again


def test_transport_errors_are_retried_but_a_certificate_failure_is_not(clock: FakeClock) -> None:
    loop = retrier(clock)
    assert loop.call("hec", answers(httpx.ReadTimeout("slow"), response(200)), accept) == 200
    assert clock.sleeps == [1.0]
    bad = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed", request=httpx.Request("POST", HEC))
    bad.__cause__ = ssl.SSLCertVerificationError(1, "self-signed")
    with pytest.raises(ApiError, match=r"TLS certificate of hec\.example\.net") as caught:
        loop.call("hec", answers(bad), accept)
    assert caught.value.retryable is False


def test_transport_errors_exhausted_name_the_host_they_were_sending_to(clock: FakeClock) -> None:
    refused = httpx.ConnectError("refused", request=httpx.Request("POST", HEC))
    with pytest.raises(ApiError) as caught:
        retrier(clock).call("hec", answers(refused, refused, refused), accept)
    assert str(caught.value) == (
        "hec failed 3 times; last error: ConnectError "
        "(network problem or timeout reaching https://hec.example.net:8088)"
    )
    assert caught.value.retryable


def test_a_retryable_error_while_sending_gives_up_with_the_callers_advice(clock: FakeClock) -> None:
    busy = ApiError("token endpoint busy; will be retried", endpoint="https://idp.example/token", status_code=503,
                    retryable=True)  # fmt: skip
    loop = retrier(clock, service="Splunk", give_up_advice="Check the IdP.")
    with pytest.raises(ApiError) as caught:
        loop.call("hec", answers(busy, busy, busy), accept)
    message = str(caught.value)
    assert "failed 3 times" in message and "HTTP 503" in message and "giving up. Check the IdP." in message
    assert "will be retried" not in message
    assert "Splunk at https://idp.example/token failed" in message
    anonymous = ApiError("busy", status_code=502, retryable=True)
    with pytest.raises(ApiError, match="Splunk at hec failed 3 times"):
        loop.call("hec", answers(anonymous, anonymous, anonymous), accept)


def test_low_remaining_closes_the_gate_until_the_reset(clock: FakeClock) -> None:
    loop = retrier(clock)
    spent = response(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1500"})
    assert loop.call("hec", answers(spent), accept) == 200
    assert clock.sleeps == []
    assert loop.call("hec", answers(response(200)), accept) == 200
    assert clock.sleeps == [1.5]  # the next request waited for the reset first


def test_nothing_is_sent_once_cancelled() -> None:
    cancel = threading.Event()
    cancel.set()
    sent: list[int] = []

    def send() -> httpx.Response:
        sent.append(1)
        return response(200)

    with pytest.raises(RequestCancelledError):
        Retrier(POLICY, ClientStats()).call("hec", send, accept, cancel=cancel)
    assert sent == []


def test_a_real_wait_ends_at_once_when_cancelled() -> None:
    cancel = threading.Event()
    stats = ClientStats()
    loop = Retrier(RetryPolicy(max_attempts=3, max_rate_limit_wait=60.0, jitter=0.0), stats)
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(RequestCancelledError):
        loop.call("hec", answers(response(429, {"X-RateLimit-Reset": "60000"})), accept, cancel=cancel)
    assert time.monotonic() - started < 2.0
    assert 0.05 < stats.slept_seconds < 2.0  # what was really waited, not the 60 s asked for
