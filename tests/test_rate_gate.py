"""One 429 stops the whole client, not one thread (issue 10, item 6).

Mimecast counts its quota per application: after a 429 no request of any thread may be sent before
``X-RateLimit-Reset`` has passed. The first tests pin the gate's rules on a fake clock; the last one runs
concurrent group-member reads (as the directory pull does) against a server that answers 429 and records when
every request arrived.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from client_calls import group_members
from helpers_http import BASE, CLIENT_KEY, GROUP_MEMBERS_URL, SECRET_VALUE, TOKEN_URL, FakeClock, ZeroRandom, token_json
from pytest_httpx import HTTPXMock

from connector.api.auth import MimecastAuth
from connector.api.client import MimecastClient
from connector.api.ratelimit import RateGate, RetryPolicy
from connector.secret import Secret


def test_a_closed_gate_opens_after_the_reset() -> None:
    clock = FakeClock(start=100.0)
    gate = RateGate(clock)
    assert gate.delay() == 0
    assert gate.close_for(2.5) == 102.5
    clock.now = 101.0
    assert gate.delay() == pytest.approx(1.5)
    clock.now = 103.0
    assert gate.delay() == 0


def test_a_later_longer_reset_extends_the_gate_and_a_shorter_one_never_shortens_it() -> None:
    clock = FakeClock(start=0.0)
    gate = RateGate(clock)
    gate.close_for(1.5)
    clock.now = 0.5
    assert gate.close_for(0.2) == 1.5  # would open at 0.7: too early, the first block still holds
    assert gate.close_for(3.0) == 3.5  # a longer one, later: extends
    assert gate.close_for(-5) == 3.5


def test_a_thread_retrying_after_a_500_waits_for_another_threads_429(httpx_mock: HTTPXMock) -> None:
    """Thread A gets a 429 (reset 1.5 s) while thread B is backing off after a 500 (1 s): B's retry must wait
    for the 429's reset too. Before the gate, B sent its retry into the block. The clock stands still (the
    injected sleep only records), so every wait shows up exactly in the thread that waited it."""
    clock = FakeClock(start=0.0)
    a_blocked, b_sent = threading.Event(), threading.Event()
    served: dict[str, int] = {"gA": 0, "gB": 0}
    slept: dict[str, list[float]] = {}
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        group = "gA" if b'"gA"' in request.read() else "gB"
        with lock:
            served[group] += 1
            first = served[group] == 1
        if group == "gA" and first:
            assert b_sent.wait(5)  # B's first request is in flight before the block begins
            a_blocked.set()
            return httpx.Response(429, headers={"X-RateLimit-Reset": "1500"})
        if group == "gB" and first:
            b_sent.set()
            assert a_blocked.wait(5)
            return httpx.Response(500)
        return httpx.Response(200, json={"meta": {"status": 200}, "data": [{"groupMembers": []}], "fail": []})

    gate = RateGate(clock)

    def sleep(seconds: float) -> None:
        name = threading.current_thread().name
        with lock:
            slept.setdefault(name, []).append(seconds)
        if name == "gB" and len(slept["gB"]) == 1:  # B's backoff lasts until A's client has seen the 429
            deadline = time.monotonic() + 5
            while gate.opens_at() == 0 and time.monotonic() < deadline:
                time.sleep(0.001)

    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("token-gate-0123"))
    httpx_mock.add_callback(answer, url=GROUP_MEMBERS_URL, is_reusable=True)
    auth = MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(SECRET_VALUE), clock=clock)
    policy = RetryPolicy(max_attempts=4, base_backoff=1.0, jitter=0.0)
    results: dict[str, list[Any]] = {}
    with MimecastClient(BASE, auth, retry=policy, sleep=sleep, clock=clock, rng=ZeroRandom(), gate=gate) as client:

        def read(group: str) -> None:
            results[group] = list(group_members(client, group))

        threads = [threading.Thread(target=read, args=(group,), name=group) for group in ("gA", "gB")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert results == {"gA": [], "gB": []}
    assert slept["gA"] == [1.5]  # its own 429, waited once
    assert slept["gB"] == [1.0, 1.5]  # its backoff after the 500, then what is left of A's block


def test_concurrent_member_reads_send_nothing_into_a_429_block(httpx_mock: HTTPXMock) -> None:
    """Four threads read members of 48 groups; every 12th request is answered 429 with a 400 ms reset. No request
    may arrive inside a block, except one already in flight when it began (a grace of 150 ms). Real time: the
    server's clock and the client's must agree."""
    lock = threading.Lock()
    blocks: list[tuple[float, float]] = []
    inside: list[float] = []
    count = [0]

    def answer(request: httpx.Request) -> httpx.Response:
        now = time.monotonic()
        with lock:
            count[0] += 1
            for start, end in blocks:
                if start + 0.15 < now < end:
                    inside.append(now - start)
            if count[0] % 12 == 0:
                blocks.append((now, now + 0.4))
                return httpx.Response(429, headers={"X-RateLimit-Reset": "400"})
        time.sleep(0.003)
        return httpx.Response(200, json={"meta": {"status": 200}, "data": [{"groupMembers": []}], "fail": []})

    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_json("token-gate-4567"))
    httpx_mock.add_callback(answer, url=GROUP_MEMBERS_URL, is_reusable=True)
    auth = MimecastAuth(TOKEN_URL, CLIENT_KEY, Secret(SECRET_VALUE))
    policy = RetryPolicy(max_attempts=6, jitter=0.0, low_remaining=-1)
    with MimecastClient(BASE, auth, retry=policy) as client:

        def read(group: str) -> list[Any]:
            return list(group_members(client, group))

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert all(result == [] for result in pool.map(read, [f"g{n}" for n in range(48)]))
        assert client.stats.rate_limited == len(blocks) >= 3
    assert inside == []
