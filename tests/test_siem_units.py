"""Unit tests of the SIEM pieces: bounded gzip NDJSON reading, auth-less downloads, the compact key buckets and the
state's JSON form, the call budget, and the listing envelope's refusals."""

from __future__ import annotations

import gzip
import io
import json
import zlib

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connector.api.budget import CallBudget
from connector.api.download import (
    DownloadPolicy,
    FileFetcher,
    FileLimits,
    FileRefusedError,
    LinkGoneError,
    link_name,
    link_refusal,
    read_ndjson,
)
from connector.errors import ApiError, MappingError, PermissionDeniedError, UnkeyableRecordError
from connector.streams.keys import BUCKET_MS, KeySnapshot, content_key
from connector.streams.siem_listing import BATCH_PATH, SiemListing, batch_files
from connector.streams.siem_records import key_time, record_time, record_type, siem_key
from connector.streams.siem_state import (
    FUTURE_SLACK_MS,
    KEY_HORIZON_MS,
    BatchCursor,
    KeyBuckets,
    KeysSnapshot,
    SiemState,
    StreamCursor,
)
from connector.streams.state import InvalidState

T0 = 1_781_524_800_000
LINK = "https://files.example.com/CUS1/receipt/2026/06/15/0.ndjson.gz?X-Amz-Expires=900&X-Amz-Signature=deadbeef42"


def spool(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def ndjson(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


# -- reading files ----------------------------------------------------------------------------------------------


def test_gzip_plain_and_multi_member_files_are_read_line_by_line() -> None:
    body = ndjson({"type": "receipt", "n": 1}, {"type": "receipt", "n": 2})
    both = gzip.compress(body) + gzip.compress(ndjson({"n": 3}) + b'{"n": 4}')  # no final newline
    assert [r["n"] for r in read_ndjson(spool(both), "f")] == [1, 2, 3, 4]  # type: ignore[index]
    assert [r["n"] for r in read_ndjson(spool(body), "f")] == [1, 2]  # type: ignore[index]


def test_a_line_that_is_not_an_object_is_a_counted_refusal_and_the_rest_is_read() -> None:
    body = gzip.compress(b'{"n": 1}\n\nnot json\n[1, 2]\n{"n": 5}\n')
    out = list(read_ndjson(spool(body), "host/path"))
    assert out[0] == {"n": 1} and out[-1] == {"n": 5}
    errors = [r for r in out if isinstance(r, MappingError)]
    assert [e.record_id for e in errors] == ["host/path#3", "host/path#4"]  # line numbers count the blank line


@pytest.mark.parametrize(
    ("body", "limits", "match"),
    [
        (gzip.compress(b"x" * 5000), FileLimits(line_bytes=1000), "longer than 1000 bytes"),
        (gzip.compress(b"\n" * (4 << 20)), FileLimits(max_ratio=10, slack_bytes=0), "decompression bomb"),
        (gzip.compress(ndjson({"n": 1}) * 100)[:-12], FileLimits(), "truncated|inflate"),
        (b"\x1f\x8b" + b"garbage" * 10, FileLimits(), "inflate"),
    ],
)
def test_an_endless_line_a_bomb_and_a_broken_body_are_refused_not_buffered(
    body: bytes, limits: FileLimits, match: str
) -> None:
    with pytest.raises(FileRefusedError, match=match):
        list(read_ndjson(spool(body), "f", limits))


def test_reading_a_large_file_never_holds_more_than_a_step_and_a_line() -> None:
    """A 64 MB file of short lines is read with a buffer that never grows past one step plus one line."""
    line = json.dumps({"type": "receipt", "x": "y" * 200}).encode() + b"\n"
    compressed = zlib.compress(line * 300_000, 1, wbits=31)  # gzip
    count = sum(1 for _ in read_ndjson(spool(compressed), "f", FileLimits(line_bytes=4096)))
    assert count == 300_000


# -- downloading ------------------------------------------------------------------------------------------------


def test_a_download_carries_no_authorization_and_its_errors_show_no_signature(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=LINK, status_code=503)
    httpx_mock.add_response(url=LINK, content=gzip.compress(ndjson({"n": 1})))
    sleeps: list[float] = []
    fetcher = FileFetcher(policy=DownloadPolicy(attempts=2, backoff=0.01), sleep=sleeps.append)
    with fetcher, fetcher.fetch(LINK) as file:
        assert list(read_ndjson(file, link_name(LINK))) == [{"n": 1}]
    assert len(sleeps) == 1
    assert all("authorization" not in {k.lower() for k in r.headers} for r in httpx_mock.get_requests())
    assert link_name(LINK) == "files.example.com/CUS1/receipt/2026/06/15/0.ndjson.gz"


@pytest.mark.parametrize("status", [403, 404])
def test_an_expired_or_missing_link_is_not_retried_but_raised_for_a_new_listing(
    httpx_mock: HTTPXMock, status: int
) -> None:
    httpx_mock.add_response(url=LINK, status_code=status, text="<Error><Code>AccessDenied</Code></Error>")
    with FileFetcher() as fetcher, pytest.raises(LinkGoneError) as caught:
        fetcher.fetch(LINK)
    assert caught.value.status_code == status
    assert "deadbeef" not in str(caught.value) and "Signature" not in str(caught.value)
    assert len(httpx_mock.get_requests()) == 1


def test_a_file_host_that_keeps_failing_is_a_retryable_error_after_the_policys_attempts(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url=LINK, status_code=500, is_reusable=True)
    fetcher = FileFetcher(policy=DownloadPolicy(attempts=3, backoff=0.0), sleep=lambda s: None)
    with fetcher, pytest.raises(ApiError, match="failed 3 times") as caught:
        fetcher.fetch(LINK)
    assert caught.value.retryable and "deadbeef" not in str(caught.value)


def test_a_file_larger_than_the_wire_cap_is_refused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=LINK, content=b"x" * 10_000)
    with FileFetcher(limits=FileLimits(wire_bytes=1000)) as fetcher, pytest.raises(FileRefusedError):
        fetcher.fetch(LINK)


# -- keys and state ---------------------------------------------------------------------------------------------


def test_a_siem_key_ignores_transport_fields_and_reads_both_field_name_styles() -> None:
    batch = {"type": "Receipt", "timestamp": "1781524800123", "_offset": 5, "_partition": 1, "a": 1}
    again = {**batch, "_offset": 99}
    assert siem_key(batch) == siem_key(again) == content_key(batch, frozenset({"_offset", "_partition"}))
    assert record_type(batch) == "receipt" and record_type({"eventType": "url protect"}) == "url protect"
    assert record_time(batch) == 1781524800123 and record_time({"timestamp": "soon"}) is None


def test_key_buckets_drop_what_they_hold_and_snapshots_do_not_change_afterwards() -> None:
    keys = KeyBuckets()
    a, b = content_key({"a": 1}), content_key({"b": 2})
    assert keys.add(a, T0) and not keys.add(a, T0 + 30_000)  # the same minute
    assert keys.seen(a, T0 + 59_999) and not keys.seen(a, T0 + BUCKET_MS)  # a record's minute is its content
    first = keys.snapshot(T0)
    keys.add(b, T0)
    second = keys.snapshot(T0)
    assert first.texts == {T0: a} and second.texts == {T0: a + b}
    third = keys.snapshot(T0)
    assert third.texts[T0] is second.texts[T0]  # an unchanged minute reuses its text: nothing re-serialised


def test_key_buckets_prune_behind_the_newest_minute_and_drop_a_minute_dated_far_ahead() -> None:
    keys = KeyBuckets()
    old, new, future = content_key({"n": 1}), content_key({"n": 2}), content_key({"n": 3})
    keys.add(old, T0)
    keys.add(new, T0 + KEY_HORIZON_MS + BUCKET_MS)
    keys.add(future, T0 + 365 * 24 * 3600_000)  # garbage time: does not prune everything before it, is not kept
    snapshot = keys.snapshot(T0 + KEY_HORIZON_MS + BUCKET_MS)
    assert T0 not in snapshot.texts and len(snapshot) == 1 and len(keys) == 1
    assert snapshot.texts == {T0 + KEY_HORIZON_MS + BUCKET_MS: new}


def test_the_key_form_is_keysnapshot_s_and_is_parsed_as_strictly() -> None:
    keys = KeyBuckets()
    for n in range(50):
        keys.add(content_key({"n": n}), T0 + n * 7_000)
    data = json.loads(json.dumps(keys.snapshot(T0).to_dict()))
    assert sorted(k for k, _ in KeySnapshot.parse(data, "keys").items()) == sorted(
        content_key({"n": n}) for n in range(50)
    )
    parsed = KeysSnapshot.parse(data, "keys")
    restored = KeyBuckets(parsed)
    assert len(restored) == 50 and restored.seen(content_key({"n": 3}), T0 + 21_000)
    for bad in ({"bucket_ms": 1, "buckets": {}}, {"bucket_ms": 60000, "buckets": {"60000": "short"}}):
        with pytest.raises(InvalidState):
            KeysSnapshot.parse(bad, "keys")


def test_the_siem_state_round_trips_and_refuses_what_it_does_not_understand() -> None:
    state = SiemState(
        batch={"receipt": BatchCursor("tok-1", T0, True)},
        stream=StreamCursor(("receipt", "av"), "s-tok", T0, T0 - 5),
        keys={"receipt": KeysSnapshot({T0: content_key({"x": 1})})},
        batch_calls=(T0 - 10, T0),
        stream_calls=(),
    )
    data = json.loads(json.dumps(state.to_dict()))
    assert SiemState.parse(data, "s").to_dict() == data
    for change, where in [
        ({"batch": {"receipt": {"next_page": 5, "listed_at_ms": None, "caught_up": False}}}, "next_page"),
        ({"batch_calls": [T0] * 51}, "batch_calls"),
        ({"stream": {"types": [1], "next_page": None, "token_ms": None, "cursor_ms": None}}, "types"),
        ({"extra": 1}, "unexpected"),
    ]:
        with pytest.raises(InvalidState, match=where):
            SiemState.parse({**data, **change}, "s")


def test_a_call_budget_counts_a_sliding_window() -> None:
    budget = CallBudget(calls=3, window_ms=1000)
    for t in (0, 100, 200):
        budget = budget.spend(t)
    assert budget.left(500) == 0 and budget.free_at(500) == 1000
    assert budget.left(1000) == 1 and budget.left(1250) == 3
    assert CallBudget(3, 1000).with_times([5, 1, 9, 7]).times() == [5, 7, 9]


# -- the listing envelope ---------------------------------------------------------------------------------------


def answer(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("GET", "https://api.example.com" + BATCH_PATH))


def test_the_listing_reads_its_answer_and_names_the_product_on_403() -> None:
    listing = SiemListing(BATCH_PATH, {"type": "receipt"})
    call = listing.call(100, "NP")
    assert call.method == "GET" and call.params == {"type": "receipt", "pageSize": "100", "nextPage": "NP"}
    payload = listing.interpret(answer(200, {"value": [{"url": LINK, "size": 10}], "@nextPage": "N2"}))
    listed = listing.listed(payload)
    assert listed.next_page == "N2" and not listed.caught_up
    [file] = batch_files(listed)
    assert file.size == 10 and "Signature" not in repr(file)
    with pytest.raises(PermissionDeniedError, match="Threats, Security Events, and Data"):
        listing.interpret(answer(403, {"fail": [{"code": "app_forbidden", "message": "no"}]}))
    refused = {"fail": [{"errors": [{"code": "err_validation_date_range", "message": "x", "retryable": False}]}]}
    with pytest.raises(ApiError) as caught:
        listing.interpret(answer(400, refused))
    assert caught.value.code == "err_validation_date_range" and not caught.value.retryable
    with pytest.raises(ApiError, match="without a 'value' list"):
        listing.interpret(answer(200, {"data": []}))
    with pytest.raises(ApiError, match="without a url"):
        batch_files(listing.listed(listing.interpret(answer(200, {"value": [{"size": 1}]}))))


# -- hostile links, times and records ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "loopback_api", "refused"),
    [
        ("https://bucket.s3.eu-west-1.amazonaws.com/k.gz?X-Amz-Signature=x", False, None),
        ("https://93.184.216.34/k.gz", False, None),  # a public address
        ("http://bucket.s3.amazonaws.com/k.gz", False, "not https"),
        ("ftp://bucket.example.com/k.gz", False, "not https"),
        ("https://169.254.169.254/latest/meta-data/", False, "non-public"),
        ("https://10.1.2.3/k.gz", False, "non-public"),
        ("https://192.168.0.1/k.gz", False, "non-public"),
        ("https://0.0.0.0/k.gz", False, "non-public"),
        ("https://[fe80::1]/k.gz", False, "non-public"),
        ("https://[::ffff:10.0.0.1]/k.gz", False, "non-public"),
        ("https://127.0.0.1:8500/v1/kv", False, "loopback"),
        ("https://localhost/k.gz", False, "loopback"),
        ("https://[::1]/k.gz", False, "loopback"),
        ("http://127.0.0.1:8500/k.gz", True, None),  # the simulator: the API is on loopback too
        ("http://169.254.169.254/latest/meta-data/", True, "not https"),
        ("not a url at all", False, "no host"),
    ],
)
def test_a_link_is_fetched_only_over_https_from_a_public_or_named_host(
    link: str, loopback_api: bool, refused: str | None
) -> None:
    reason = link_refusal(link, allow_loopback=loopback_api)
    assert reason is None if refused is None else (reason is not None and refused in reason), reason


def test_a_refused_link_is_never_sent_and_raises_for_a_gap(httpx_mock: HTTPXMock) -> None:
    with FileFetcher() as fetcher, pytest.raises(FileRefusedError, match=r"169\.254\.169\.254.* was not fetched"):
        fetcher.fetch("https://169.254.169.254/latest/meta-data/iam/security-credentials/x")
    assert httpx_mock.get_requests() == []


def test_a_record_time_counts_only_inside_the_ocsf_range_and_a_key_time_at_most_an_hour_ahead() -> None:
    assert record_time({"timestamp": "9999999999999999"}) is None  # year ~318000
    assert record_time({"timestamp": 10**13}) is None and record_time({"timestamp": 1_700_000_000}) is None  # s
    assert record_time({"timestamp": T0}) == T0
    assert key_time({"timestamp": T0 - 5}, T0) == T0 - 5
    assert key_time({"timestamp": T0 + FUTURE_SLACK_MS}, T0) == T0 + FUTURE_SLACK_MS
    assert key_time({"timestamp": T0 + FUTURE_SLACK_MS + 1}, T0) == T0  # filed under the collection time
    assert key_time({}, T0) == T0


def test_a_content_key_of_a_record_orjson_cannot_write_is_an_unkeyable_record_error() -> None:
    with pytest.raises(UnkeyableRecordError, match="cannot be keyed"):
        content_key({"deep": json.loads("[" * 300 + "]" * 300)})
    with pytest.raises(UnkeyableRecordError):
        content_key({"big": 2**70})  # json.loads (the lone-surrogate fallback) gives such integers
    assert issubclass(UnkeyableRecordError, MappingError)
