"""Send one HTTP request until it succeeds or the retry policy says stop, pacing every thread by one rate gate.

This module knows HTTP and quotas, not Mimecast: a caller gives :meth:`Retrier.call` something that sends one
request and an interpreter that turns the answer into a value or raises. The same loop serves the Mimecast
client and could serve an HTTP sink (Splunk HEC) that spends a quota of its own. One attempt:

* wait until the shared ``RateGate`` is open (a 429 or a spent budget closed it, on this thread or another);
* send; a timeout or a connection/read error is retried after an exponential backoff, except a failed TLS
  certificate verification (the same certificate fails the same way: ``ApiError`` at once). A retryable
  ``ApiError`` raised while sending (the auth's token endpoint answered 429/5xx) is retried the same way;
* HTTP 429: wait ``X-RateLimit-Reset`` (capped, with jitter), closing the gate for that long so that no thread
  sends into the block, then send again; ``RateLimitExhaustedError`` once ``max_attempts`` are spent;
* any other answer: pre-emptive slow-down (``X-RateLimit-Remaining``, less what other threads have in flight,
  at or below ``low_remaining`` closes the gate until the reset), then the interpreter. An ``ApiError`` with
  ``retryable=True`` from it is retried after a backoff; anything else is raised as it is.

Every wait ends at once when the caller's ``cancel`` event is set (``RequestCancelledError``), and no request is
sent once it is set. Counters go to a ``RetryCounters`` (requests, retries, 429s, seconds slept).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import httpx

from connector.api.ratelimit import RateGate, RetryPolicy, parse_remaining, parse_reset_delay
from connector.api.transport import OverallTimeoutError
from connector.errors import ApiError, RateLimitExhaustedError, RequestCancelledError

__all__ = ["RateGate", "Retrier", "RetryCounters", "RetryPolicy"]

_log = logging.getLogger("connector.api.retry")

T = TypeVar("T")

_RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class RetryCounters(Protocol):
    """Where the loop counts what it did (``ClientStats`` is one); ``add`` must be thread-safe."""

    def add(
        self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0, slept_seconds: float = 0.0
    ) -> None: ...


def _is_certificate_failure(exc: BaseException) -> bool:
    """Whether a transport error is a failed TLS certificate verification (anywhere in its cause chain)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _request_url(exc: httpx.HTTPError) -> httpx.URL | None:
    try:
        return exc.request.url
    except RuntimeError:  # an error raised without a request
        return None


def _certificate_error(name: str, exc: httpx.HTTPError) -> ApiError:
    """Not retried: the same certificate fails the same way; the fix is on this machine or the proxy."""
    url = _request_url(exc)
    host = url.host if url is not None else "the server"
    return ApiError(
        f"The TLS certificate of {host} could not be verified ({name}): this is a certificate problem, not a "
        f"network one, so the request was not retried. Check that the system CA store is up to date, and if a "
        f"TLS-inspecting proxy sits in between, that its CA certificate is installed in the system CA store "
        f"(or SSL_CERT_FILE points to a bundle that holds it).",
        endpoint=name,
    )


@dataclass(frozen=True, slots=True)
class _Done(Generic[T]):
    """An attempt whose answer the interpreter accepted."""

    value: T


@dataclass(frozen=True, slots=True)
class _Retry:
    """An attempt worth sending again: why, and what to raise once no attempt is left.

    Attributes:
        reason: For the log (the exception's class, the error code...).
        status: The HTTP status, if there was an answer.
        final: The error raised when this was the last attempt.
        cause: What ``final`` is raised from (``None``: ``final`` is the interpreter's own error, raised as it is).
        limited: The headers of a 429: wait its reset, for every thread, instead of a backoff.
    """

    reason: str
    status: int | None
    final: ApiError
    cause: BaseException | None = None
    limited: httpx.Headers | None = None


class Retrier:
    """The retry loop and the pacing of one quota; shared by every thread that spends that quota.

    Args:
        policy: Attempts, backoff and rate-limit caps.
        counters: Where requests, retries, 429s and waits are counted.
        gate: The rate gate every request waits for; share one between retriers of the same quota.
        sleep: Injected so tests never really wait (called once per wait, cancellation or not). Default: real
            time, cut short by the caller's ``cancel`` event.
        rng: Jitter source for 429 waits.
        clock: Monotonic seconds, the gate's clock.
        service: Who answers, for messages (``"Mimecast"``).
        rate_limit_advice: What to do when 429s keep coming, appended to ``RateLimitExhaustedError``.
        give_up_advice: What to do when a retryable error raised while sending (a token endpoint's 5xx) persists.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        counters: RetryCounters,
        *,
        gate: RateGate | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        service: str = "The server",
        rate_limit_advice: str = "Send less often.",
        give_up_advice: str = "Try again later.",
    ) -> None:
        self.policy = policy
        self.counters = counters
        self.gate = gate if gate is not None else RateGate(clock)
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._service = service
        self._rate_limit_advice = rate_limit_advice
        self._give_up_advice = give_up_advice
        # per thread: the gate opening time this thread has already waited for (see ``_wait_for_gate``)
        self._waited = threading.local()
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    def call(
        self,
        name: str,
        send: Callable[[], httpx.Response],
        interpret: Callable[[httpx.Response], T],
        *,
        cancel: threading.Event | None = None,
    ) -> T:
        """Send until ``interpret`` accepts an answer, and return what it made of it.

        Args:
            name: What is requested, for messages and logs (an endpoint path; never a URL with a signed query).
            send: Sends the request once and returns the answer (read); raises httpx's transport errors.
            interpret: Turns an answer other than 429 into the result; raises ``ApiError(retryable=True)`` to
                have the request sent again, any other exception to stop.
            cancel: Once set, nothing more is sent and a wait in progress ends (``RequestCancelledError``).

        Raises:
            ApiError: Transport errors or retryable answers after ``max_attempts`` sends, or a certificate failure.
            RateLimitExhaustedError: HTTP 429 on every attempt.
            RequestCancelledError: ``cancel`` was set.
        """
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_gate(name, cancel)
            if cancel is not None and cancel.is_set():
                raise _cancelled(name)
            outcome = self._attempt(name, send, interpret, attempt)
            if isinstance(outcome, _Done):
                return outcome.value
            if attempt >= self.policy.max_attempts:
                if outcome.cause is None:
                    raise outcome.final
                raise outcome.final from outcome.cause
            self._wait_to_retry(name, attempt, outcome, cancel)

    def _attempt(
        self, name: str, send: Callable[[], httpx.Response], interpret: Callable[[httpx.Response], T], attempt: int
    ) -> _Done[T] | _Retry:
        """Send once and say what came of it: a result, a reason to send again, or (raised) a final error."""
        try:
            response = self._send(send)
        except _RETRYABLE_TRANSPORT_ERRORS as exc:
            self.counters.add(requests=1)
            if _is_certificate_failure(exc):  # the same certificate fails the same way on every attempt
                raise _certificate_error(name, exc) from exc
            return _Retry(type(exc).__name__, None, self._transport_error(name, attempt, exc), exc)
        except ApiError as exc:  # raised while sending: a token endpoint failed, or an answer was too large
            if not exc.retryable:
                raise
            return _Retry(exc.code or "failed while sending", exc.status_code, self._gave_up(name, exc, attempt), exc)
        # An auth may have re-sent the call once (after a 401); that first answer is in the history.
        resent = sum(1 for earlier in response.history if earlier.request.url == response.request.url)
        self.counters.add(requests=1 + resent)
        if response.status_code == 429:
            self.counters.add(rate_limited=1)
            exhausted = RateLimitExhaustedError(
                f"{self._service} kept answering HTTP 429 (rate limited) to {name} after {attempt} attempts; "
                f"{self._rate_limit_advice}",
                endpoint=name,
                status_code=429,
                retryable=True,
            )
            return _Retry("rate limited", 429, exhausted, limited=response.headers)
        self._note_rate_headers(response.headers)
        try:
            return _Done(interpret(response))
        except ApiError as exc:
            if not exc.retryable:
                raise
            return _Retry(exc.code or "server error", exc.status_code, exc)

    # -- waits ---------------------------------------------------------------------------------------------

    def _pause(self, seconds: float, name: str, cancel: threading.Event | None) -> None:
        """Wait ``seconds``; a real-time wait ends early when ``cancel`` is set (``RequestCancelledError``)."""
        if cancel is not None and cancel.is_set():
            raise _cancelled(name)
        if seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
        elif cancel is None:
            time.sleep(seconds)
        else:
            started = time.monotonic()
            if cancel.wait(seconds):
                self.counters.add(slept_seconds=time.monotonic() - started)
                raise _cancelled(name)
        self.counters.add(slept_seconds=seconds)

    def _wait_for_gate(self, name: str, cancel: threading.Event | None) -> None:
        """Wait until the rate gate is open (a 429 or a spent budget closed it, on this thread or another).

        A wait that another thread extends meanwhile is waited out too. The opening time this thread has waited
        for is remembered, so a thread never waits twice for the same closing (its own 429 wait included; with an
        injected ``sleep`` the clock does not move while it "sleeps").
        """
        while True:
            opens_at = self.gate.opens_at()
            if opens_at <= getattr(self._waited, "until", 0.0):
                return
            delay = opens_at - self._clock()
            if delay > 0:
                _log.info("rate limited, waiting for the gate", extra={"endpoint": name, "delay_s": delay})
                self._pause(delay, name, cancel)
            self._waited.until = opens_at

    def _wait_to_retry(self, name: str, attempt: int, retry: _Retry, cancel: threading.Event | None) -> None:
        """The wait before attempt ``attempt + 1``: after a 429 its reset, for every thread (the gate closes for
        that long); after anything else the policy's backoff, for this thread only."""
        self.counters.add(retries=1)
        if retry.limited is None:
            delay = self.policy.backoff(attempt)
            _log.warning(
                "retrying request",
                extra={"endpoint": name, "attempt": attempt, "reason": retry.reason, "status": retry.status,
                       "delay_s": delay},
            )  # fmt: skip
            self._pause(delay, name, cancel)
            return
        wait = self.policy.rate_limit_wait(retry.limited, self._rng, attempt)
        _log.warning("rate limited, waiting", extra={"endpoint": name, "attempt": attempt, "delay_s": round(wait, 3)})
        mine = self._clock() + wait
        self.gate.close_for(wait)
        self._pause(wait, name, cancel)
        self._waited.until = max(getattr(self._waited, "until", 0.0), mine)

    # -- pacing --------------------------------------------------------------------------------------------

    def _send(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """Send once, counting the request as in flight while it is (for :meth:`_note_rate_headers`)."""
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            return send()
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _note_rate_headers(self, headers: httpx.Headers) -> None:
        """Close the gate until the reset when the window's budget is (nearly) spent.

        ``X-RateLimit-Remaining`` was counted when the server answered; the requests other threads still have
        in flight will spend part of it too, so they are subtracted before comparing with the policy's
        ``low_remaining`` (a sequential caller has none in flight: exactly ``RetryPolicy.preemptive_wait``).
        """
        remaining = parse_remaining(headers)
        if remaining is None:
            return
        with self._in_flight_lock:
            others = self._in_flight
        if remaining - others > self.policy.low_remaining:
            return
        delay = parse_reset_delay(headers)
        if delay is None:
            return
        wait = min(delay, self.policy.max_rate_limit_wait)
        if wait > 0:
            self.gate.close_for(wait)

    # -- final errors --------------------------------------------------------------------------------------

    def _transport_error(self, name: str, attempt: int, exc: httpx.HTTPError) -> ApiError:
        """The final error after ``attempt`` network failures or timeouts."""
        if isinstance(exc, OverallTimeoutError):
            cause = f"{exc}: the overall timeout per request was exceeded (a server too slow to answer)"
        else:
            url = _request_url(exc)
            where = f"{url.scheme}://{url.netloc.decode('ascii')}" if url is not None else self._service
            cause = f"network problem or timeout reaching {where}"
        return ApiError(
            f"{name} failed {attempt} times; last error: {type(exc).__name__} ({cause})",
            endpoint=name,
            retryable=True,
        )

    def _gave_up(self, name: str, exc: ApiError, attempts: int) -> ApiError:
        """The final error once a retryable error raised while sending came on every attempt (its own message
        says that it will be retried)."""
        status = f"HTTP {exc.status_code}" if exc.status_code is not None else "an error"
        where = exc.endpoint or name  # the token endpoint, say, when it was what failed
        return ApiError(
            f"{self._service} at {where} failed {attempts} times (last answer: {status}); giving up. "
            f"{self._give_up_advice}",
            endpoint=where,
            status_code=exc.status_code,
            retryable=True,
        )


def _cancelled(name: str) -> RequestCancelledError:
    return RequestCancelledError(
        f"{name} was not requested: the listing it belonged to was closed before it was sent.", endpoint=name
    )
