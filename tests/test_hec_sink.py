"""connector.sinks.hec against the local HEC receiver (tests/hec_receiver.py) over real HTTP on 127.0.0.1.

Waits (backoff, Retry-After, ack polls) go to a fake clock that the injected sleep moves, so nothing really waits
and ack timeouts play out deterministically.
"""

from __future__ import annotations

import io
import logging
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hec_receiver import HecReceiver
from pytest_httpx import HTTPXMock

from connector.api.ratelimit import RetryPolicy
from connector.errors import ConfigError, SinkError
from connector.events import Batch
from connector.log import configure_logging
from connector.secret import Secret
from connector.sinks.hec import HecSettings, HecSink, validate_url

TOKEN = "5b6c4d1e-0f3a-4e2b-9c8d-7a6b5c4d3e2f"
OCSF_TIME_MS = 1_781_524_800_123


class FakeClock:
    """Monotonic seconds that only ``sleep`` moves; every wait is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def receiver() -> Iterator[HecReceiver]:
    with HecReceiver(TOKEN) as hec:
        yield hec


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def event(uid: str, pad: int = 40) -> dict[str, Any]:
    return {"time": OCSF_TIME_MS, "class_uid": 3002, "metadata": {"uid": uid}, "message": "x" * pad}


def batch(table: str, uids: list[str], pad: int = 40) -> Batch:
    return Batch(table, 3002, [event(uid, pad) for uid in uids], None)


def make_sink(receiver: HecReceiver, clock: FakeClock, **settings: Any) -> HecSink:
    params: dict[str, Any] = {"token": Secret(TOKEN), "ack": True, "ack_poll_seconds": 0.5, **settings}
    return HecSink(
        receiver.url,
        HecSettings(**params),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(0),
        retry=RetryPolicy(max_attempts=4, base_backoff=1.0, jitter=0.0),
    )


def uids(n: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# -- what is sent -------------------------------------------------------------------------------------------


def test_each_event_goes_in_the_hec_envelope_with_time_sourcetype_index_source_and_host(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    sink = make_sink(receiver, clock, index="mimecast", source="mimecast:audit", host="collector-1")
    sink.write(batch("authentication", ["a1"]))
    sink.write(batch("account_change", ["c1"]))
    sink.close()
    first, second = receiver.indexed
    assert first == {
        "time": OCSF_TIME_MS / 1000,
        "host": "collector-1",
        "source": "mimecast:audit",
        "sourcetype": "ocsf:authentication",
        "index": "mimecast",
        "event": event("a1"),
    }
    assert second["sourcetype"] == "ocsf:account_change" and second["time"] == 1_781_524_800.123
    (request,) = receiver.event_requests()
    assert request.authorization == f"Splunk {TOKEN}"
    assert request.channel is not None and uuid.UUID(request.channel).version == 4


def test_without_index_and_host_the_tokens_defaults_apply_and_without_ack_no_channel_is_sent(clock: FakeClock) -> None:
    with HecReceiver(TOKEN, ack=False) as receiver:
        sink = make_sink(receiver, clock, ack=False, sourcetype_prefix="mimecast:ocsf:")
        sink.write(batch("authentication", ["a1"]))
        sink.sync()
        assert set(receiver.indexed[0]) == {"time", "source", "sourcetype", "event"}
        assert receiver.indexed[0]["sourcetype"] == "mimecast:ocsf:authentication"
        assert receiver.event_requests()[0].channel is None
        assert receiver.ack_queries == 0  # sync returned on the 200 alone
        sink.close()


def test_bodies_are_split_under_max_request_bytes_and_every_event_arrives_once(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    sink = make_sink(receiver, clock, max_request_bytes=2048)
    sink.write(batch("authentication", uids(120)))
    sink.write(batch("group_management", uids(30, "g")))
    sink.close()
    sizes = [r.size for r in receiver.event_requests()]
    assert max(sizes) <= 2048 and len(sizes) >= sum(sizes) // 2048 + 1
    assert receiver.uids("ocsf:authentication") == dict.fromkeys(uids(120), 1)
    assert receiver.uids("ocsf:group_management") == dict.fromkeys(uids(30, "g"), 1)
    assert sink.stats.bodies == len(sizes) and sink.stats.acknowledged == len(sizes)


def test_full_bodies_leave_from_write_and_only_the_last_partial_one_waits_for_sync(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    sink = make_sink(receiver, clock, max_request_bytes=2048)
    sink.write(batch("authentication", uids(40)))
    sent = len(receiver.event_requests())
    assert sent >= 1 and len(receiver.indexed) < 40
    sink.sync()
    assert len(receiver.event_requests()) == sent + 1 and len(receiver.indexed) == 40
    sink.close()


# -- acknowledgement ----------------------------------------------------------------------------------------


def test_sync_returns_only_once_every_body_is_acknowledged_slow_acks_are_polled(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    receiver.faults.slow_ack_polls = 3  # each id is false three times, true the fourth
    sink = make_sink(receiver, clock, max_request_bytes=2048)
    sink.write(batch("authentication", uids(50)))
    sink.sync()
    assert receiver.ack_queries == 4 and clock.sleeps == [0.5] * 3
    assert sink.stats.acknowledged == sink.stats.bodies and sink.stats.resent_bodies == 0
    sink.sync()  # nothing pending: no query
    assert receiver.ack_queries == 4
    sink.close()


def test_a_lost_ack_is_resent_after_the_timeout_and_its_events_may_be_indexed_twice(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    receiver.faults.lose_acks = 1  # the first body's ack id never turns true (its events were indexed)
    sink = make_sink(receiver, clock, ack_timeout_seconds=5.0, max_request_bytes=2048)
    sink.write(batch("authentication", uids(30)))
    sink.sync()
    assert sink.stats.resent_bodies == 1
    assert clock.now - 1000.0 >= 5.0  # resent only after the timeout
    counts = receiver.uids()
    assert set(counts) == set(uids(30))
    twice = {uid for uid, n in counts.items() if n == 2}
    first_body = receiver.indexed[: len(twice)]
    assert twice and {e["event"]["metadata"]["uid"] for e in first_body} == twice  # exactly the resent body
    assert max(counts.values()) == 2
    sink.close()


def test_an_ack_that_never_comes_fails_after_the_resends_naming_the_events(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    receiver.faults.crash_before_ack = True  # accepted, then lost with the indexer: never indexed, never acked
    sink = make_sink(receiver, clock, ack_timeout_seconds=2.0, max_resends=2)
    sink.write(batch("authentication", ["a1", "a2"]))
    with pytest.raises(SinkError) as caught:
        sink.sync()
    message = str(caught.value)
    assert message.startswith(f"Splunk HEC at {receiver.url} never acknowledged 2 events")
    assert "table authentication, metadata.uid a1" in message and "after 3 sends" in message
    assert len(receiver.event_requests()) == 3 and receiver.indexed == []
    with pytest.raises(SinkError) as again:  # failed for good: nothing can be committed past it
        sink.sync()
    assert again.value is caught.value
    with pytest.raises(SinkError):
        sink.write(batch("authentication", ["a3"]))
    with pytest.raises(SinkError):
        sink.close()
    assert len(receiver.event_requests()) == 3


def test_a_token_without_indexer_acknowledgement_is_named_when_ack_is_asked_for(clock: FakeClock) -> None:
    with HecReceiver(TOKEN, ack=False) as receiver:
        sink = make_sink(receiver, clock, ack=True)
        sink.write(batch("authentication", ["a1"]))
        with pytest.raises(SinkError, match="without an ackId: indexer acknowledgement is not enabled"):
            sink.sync()


# -- retries and refusals -----------------------------------------------------------------------------------


def test_503_server_busy_is_retried_with_backoff_and_delivered_once(receiver: HecReceiver, clock: FakeClock) -> None:
    receiver.faults.busy = 2
    sink = make_sink(receiver, clock)
    sink.write(batch("authentication", ["a1", "a2"]))
    sink.sync()
    assert [r.status for r in receiver.event_requests()] == [503, 503, 200]
    assert clock.sleeps[:2] == [1.0, 2.0]  # the policy's exponential backoff
    assert receiver.uids() == {"a1": 1, "a2": 1} and sink.stats.retries == 2
    sink.close()


def test_429_waits_retry_after_then_sends_again(receiver: HecReceiver, clock: FakeClock) -> None:
    receiver.faults.throttle, receiver.faults.retry_after = 1, "7"
    sink = make_sink(receiver, clock)
    sink.write(batch("authentication", ["a1"]))
    sink.sync()
    assert [r.status for r in receiver.event_requests()] == [429, 200]
    assert clock.sleeps[0] == 7.0 and sink.stats.rate_limited == 1
    sink.close()


def test_a_server_that_stays_busy_fails_naming_the_sink_after_the_attempts(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    receiver.faults.busy = 100
    sink = make_sink(receiver, clock)
    sink.write(batch("authentication", ["a1"]))
    with pytest.raises(SinkError) as caught:
        sink.sync()
    assert str(caught.value).startswith(
        f"Splunk HEC at {receiver.url} answered HTTP 503 (HEC code 9, 'Server is busy')"
    )
    assert "gave up after 4 attempts" in str(caught.value) and caught.value.exit_code == 7
    assert len(receiver.event_requests()) == 4


@pytest.mark.parametrize(
    ("token", "status", "code", "advice"),
    [
        ("0" * 36, 403, 4, "Splunk does not know this token"),
        ("", 401, 3, "the Authorization header was refused"),
    ],
)
def test_a_refused_token_fails_at_once_with_the_hec_code_and_never_shows_the_token(
    receiver: HecReceiver, clock: FakeClock, token: str, status: int, code: int, advice: str
) -> None:
    sink = make_sink(receiver, clock)
    sink._http.headers["Authorization"] = f"Splunk {token}".strip()
    sink.write(batch("authentication", ["a1"]))
    with pytest.raises(SinkError) as caught:
        sink.sync()
    message = str(caught.value)
    assert f"refused the request: HTTP {status} (HEC code {code}," in message and advice in message
    assert len(receiver.event_requests()) == 1  # not retried
    for text in (message, repr(sink), repr(sink.settings), str(sink.settings)):
        assert TOKEN not in text


def test_invalid_data_names_the_table_and_uid_the_server_pointed_at(receiver: HecReceiver, clock: FakeClock) -> None:
    sink = make_sink(receiver, clock)
    bad = Batch("account_change", 3001, [event("ok-1"), {"metadata": {"uid": "bad-2"}}, event("ok-3")], None)
    sink._envelope = lambda sourcetype, e: (  # type: ignore[method-assign]
        b'{"event": ""}' if e["metadata"]["uid"] == "bad-2" else HecSink._envelope(sink, sourcetype, e)
    )
    sink.write(bad)
    with pytest.raises(
        SinkError, match=r"refused event 1 of a request \(HEC code 13, .*table account_change, metadata.uid bad-2"
    ):
        sink.sync()


# -- sizes --------------------------------------------------------------------------------------------------


def test_413_splits_the_body_delivers_every_event_and_keeps_later_bodies_smaller(clock: FakeClock) -> None:
    with HecReceiver(TOKEN, max_body_bytes=3000) as receiver:
        sink = make_sink(receiver, clock, max_request_bytes=10_000)
        sink.write(batch("authentication", uids(60)))
        sink.sync()
        statuses = [r.status for r in receiver.event_requests()]
        assert statuses[0] == 413 and sink.stats.split_bodies >= 1
        assert receiver.uids() == dict.fromkeys(uids(60), 1)
        sent = len(statuses)
        sink.write(batch("authentication", uids(60, "v")))
        sink.sync()
        assert [r.status for r in receiver.event_requests()[sent:]] == [200] * (len(receiver.event_requests()) - sent)
        sink.close()


def test_an_event_larger_than_max_request_bytes_is_sent_alone(receiver: HecReceiver, clock: FakeClock) -> None:
    sink = make_sink(receiver, clock, max_request_bytes=2048)
    sink.write(Batch("authentication", 3002, [event("s1"), event("big", pad=5000), event("s2")], None))
    sink.sync()
    sizes = [r.size for r in receiver.event_requests()]
    assert len(sizes) == 3 and sizes[1] > 5000 and receiver.uids() == {"s1": 1, "big": 1, "s2": 1}
    sink.close()


def test_an_event_the_server_refuses_as_too_large_alone_is_named_not_dropped(clock: FakeClock) -> None:
    with HecReceiver(TOKEN, max_body_bytes=4000) as receiver:
        sink = make_sink(receiver, clock, max_request_bytes=2048)
        with pytest.raises(SinkError, match=r"table authentication \(metadata.uid huge\) as too large \(HTTP 413"):
            sink.write(Batch("authentication", 3002, [event("s1"), event("huge", pad=6000)], None))  # sent at once
        assert receiver.uids() == {"s1": 1}  # the event before it went; the run stops, nothing is committed
        with pytest.raises(SinkError, match=r"metadata\.uid huge"):
            sink.sync()


# -- secrets and settings -----------------------------------------------------------------------------------


def test_the_token_is_masked_in_logs(receiver: HecReceiver, clock: FakeClock) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("DEBUG", stream=stream)
        sink = make_sink(receiver, clock)
        logging.getLogger("test").warning(f"server echoed Splunk {TOKEN}")
        sink.write(batch("authentication", ["a1"]))
        sink.close()
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    log = stream.getvalue()
    assert "server echoed" in log and "splunk hec output closed" in log and TOKEN not in log


def test_settings_come_from_the_file_or_the_environment_and_bad_ones_name_the_key() -> None:
    settings = HecSettings.from_mapping(
        {"ack": "true", "max_request_bytes": "4096"}, environ={"SPLUNK_HEC_TOKEN": TOKEN}
    )
    assert settings.token == Secret(TOKEN) and settings.ack is True and settings.max_request_bytes == 4096
    assert settings.source == "mimecast" and settings.sourcetype_prefix == "ocsf:" and settings.index == ""
    cases = [
        ({}, "outputs.hec.token", "SPLUNK_HEC_TOKEN"),
        ({"token": TOKEN, "tokn": 1}, "outputs.hec.tokn", "did you mean 'outputs.hec.token'"),
        ({"token": "tiny-tok"}, "outputs.hec.token", "at least 16 characters"),
        ({"token": TOKEN, "max_request_bytes": 10}, "outputs.hec.max_request_bytes", "between 1024"),
        ({"token": TOKEN, "ack": "maybe"}, "outputs.hec.ack", "boolean"),
        ({"token": TOKEN, "ca_file": "/no/such/ca.pem"}, "outputs.hec.ca_file", "not a readable file"),
    ]
    for raw, parameter, text in cases:
        with pytest.raises(ConfigError) as caught:
            HecSettings.from_mapping(raw, environ={})
        assert caught.value.parameter == parameter and text in str(caught.value)
        assert "tiny-tok" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://splunk.example.com:8088", "https://splunk.example.com:8088"),
        ("https://splunk.example.com:8088/services/collector/event", "https://splunk.example.com:8088"),
        ("https://gw.example.com/splunk/services/collector/", "https://gw.example.com/splunk"),
        ("http://127.0.0.1:8088", "http://127.0.0.1:8088"),
    ],
)
def test_the_url_may_be_the_base_or_the_endpoint(url: str, base: str) -> None:
    assert validate_url(url) == base


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://splunk.example.com:8088", "must use https"),
        ("https://user:pw@splunk.example.com", "user name or password"),
        ("https://splunk.example.com?token=x", "query string"),
        ("splunk.example.com:8088", "absolute https URL"),
    ],
)
def test_a_url_that_would_leak_the_token_is_refused(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        validate_url(url)
    assert caught.value.parameter == "--output" and "pw" not in str(caught.value)


def test_tls_is_verified_by_default(clock: FakeClock, tmp_path: Any) -> None:
    """A self-signed or unknown server certificate is a certificate error, not retried; a ca_file is used."""
    sink = HecSink("https://127.0.0.1:1", HecSettings(token=Secret(TOKEN)), sleep=clock.sleep, clock=clock)
    transport = sink._http._transport._inner  # type: ignore[attr-defined]
    context = transport._pool._ssl_context
    assert context.verify_mode.name == "CERT_REQUIRED" and context.check_hostname
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"outputs\.hec\.ca_file"):
        HecSink("https://127.0.0.1:1", HecSettings(token=Secret(TOKEN), ca_file=str(bad)))
    sink.close()


def test_an_ack_id_given_again_by_a_restarted_server_resends_the_body_that_waited_for_it(
    receiver: HecReceiver, clock: FakeClock
) -> None:
    sink = make_sink(receiver, clock, max_request_bytes=1024)
    receiver.faults.hold_acks = True
    sink.write(batch("authentication", ["a1"], pad=600))
    sink.write(batch("authentication", ["a2"], pad=600))  # a1's body leaves with ack id 0; a2 waits in the partial body
    receiver._channels.clear()  # the server restarts: its ack ids count from 0 again, id 0 is forgotten
    receiver.faults.hold_acks = False
    sink.sync()  # a2's body gets id 0 again: a1's body is resent at once, not taken for acknowledged
    assert sink.stats.resent_bodies == 1 and receiver.uids() == {"a1": 2, "a2": 1}
    assert [e["event"]["metadata"]["uid"] for e in receiver.indexed] == ["a1", "a2", "a1"]
    sink.close()


# -- an answer that is not HEC's ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"<html><body>Welcome to the proxy</body></html>", b"", b"[]", b'{"text": "Fail", "code": null}']
)
def test_a_200_that_is_not_hecs_success_answer_fails_the_sync_naming_the_sink_not_taken_for_delivery(
    httpx_mock: HTTPXMock, clock: FakeClock, body: bytes
) -> None:
    """A captive portal or misrouted load balancer answering 200 must not make the runner commit past events
    Splunk never received: only a JSON object with ``code`` exactly 0 is success; the rest fails at once."""
    url = "https://splunk.example.com:8088"
    httpx_mock.add_response(url=f"{url}/services/collector/event", content=body)
    sink = HecSink(url, HecSettings(token=Secret(TOKEN)), sleep=clock.sleep, clock=clock,
                   retry=RetryPolicy(max_attempts=2, base_backoff=0.01, jitter=0.0))  # fmt: skip
    sink.write(batch("authentication", ["u1"]))
    with pytest.raises(SinkError, match=r"Splunk HEC at https://splunk\.example\.com:8088 answered HTTP 200 without"):
        sink.sync()
    assert len(httpx_mock.get_requests()) == 1 and clock.sleeps == []  # not retried
    with pytest.raises(SinkError, match="without HEC's success answer"):
        sink.close()  # the sink stays failed: nothing is committed past it
