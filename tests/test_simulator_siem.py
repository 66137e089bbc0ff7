"""The simulator's SIEM Cloud Gateway side, over real HTTP on 127.0.0.1 with plain httpx (no connector code).

The batch listing and the stream endpoint on the API host (bearer token, gateway faults), the pre-signed gzip
NDJSON files on the second host (no bearer token, signature and expiry checks), durable tokens, the faults, and
the generator behind them.
"""

from __future__ import annotations

import calendar
import gzip
import itertools
import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from connector.simulator import (
    SIEM_BATCH_PATH,
    SIEM_STREAM_PATH,
    SIEM_TYPES,
    FaultPlan,
    SiemSpec,
    Simulator,
    TenantSpec,
    serve,
)
from connector.simulator.cli import build_parser
from connector.simulator.siem_data import REPEAT_OFFSET_SHIFT, SiemData
from connector.simulator.siem_samples import SAMPLES

NOW = calendar.timegm((2026, 6, 15, 12, 0, 0, 0, 0, 0))
FIXTURE = Path(__file__).parent / "fixtures" / "streams" / "siem_cg.jsonl"
TENANT = TenantSpec(seed=7, users=20, groups=3, audit_events_per_day=200, days=1, end=NOW)


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


class Clock:
    """A clock the test moves; the simulator's own ``advance`` moves it too."""

    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def make_sim(spec: SiemSpec | None = None, **kwargs: Any) -> Simulator:
    return Simulator(
        TENANT,
        client_id="cid",
        client_secret="secret",
        clock=kwargs.pop("clock", lambda: float(NOW)),
        siem=spec or SiemSpec(seed=3, records_per_type=120),
        **kwargs,
    )


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with make_sim() as running:
        yield running


class Api:
    """A few lines of plain httpx against the API host."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.base_url, timeout=10)
        self.token = self.http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "secret"}
        ).json()["access_token"]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def batch(self, **params: Any) -> httpx.Response:
        return self.http.get(SIEM_BATCH_PATH, params=params, headers=self.auth)

    def stream(self, **params: Any) -> httpx.Response:
        return self.http.get(SIEM_STREAM_PATH, params=params, headers=self.auth)

    def walk(self, log_type: str, page_size: int = 100, **params: Any) -> tuple[list[dict[str, Any]], str]:
        """Every listed file of a type, paging until caught up; the files and the last token."""
        files: list[dict[str, Any]] = []
        query: dict[str, Any] = {"type": log_type, "pageSize": page_size, **params}
        for _ in range(1000):
            page = self.batch(**query)
            assert page.status_code == 200, page.text
            body = page.json()
            files.extend(body["value"])
            query = {"type": log_type, "pageSize": page_size, "nextPage": body["@nextPage"]}
            if body["isCaughtUp"]:
                return files, body["@nextPage"]
        raise AssertionError("the listing never caught up")


FILES = httpx.Client(timeout=10)  # the file host's client: no bearer token, one pool for every test


def download(url: str, **kwargs: Any) -> httpx.Response:
    return FILES.get(url, **kwargs)


def records_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert "content-encoding" not in response.headers
    assert response.headers["content-type"] == "application/gzip"
    text = gzip.decompress(response.content).decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def object_path(url: str) -> str:
    return urlsplit(url).path


# --- auth on the two hosts -------------------------------------------------------------------------------


def test_the_api_host_wants_a_bearer_token_and_the_file_host_refuses_one(sim: Simulator) -> None:
    anonymous = httpx.get(sim.base_url + SIEM_BATCH_PATH, params={"type": "receipt"})
    assert anonymous.status_code == 401
    assert anonymous.json()["fail"][0]["code"] == "unauthorized"
    assert httpx.get(sim.base_url + SIEM_STREAM_PATH).status_code == 401
    api = Api(sim)
    listed = api.batch(type="receipt", pageSize=2)
    assert listed.status_code == 200
    url = listed.json()["value"][0]["url"]
    assert sim.siem is not None
    assert url.startswith(sim.siem.files_url + "/") and sim.siem.files_url != sim.base_url
    refused = download(url, headers=api.auth)
    assert refused.status_code == 400
    assert "<Code>InvalidArgument</Code>" in refused.text
    assert refused.headers["content-type"] == "application/xml"
    assert api.token not in refused.text
    assert download(url).status_code == 200
    counters = sim.siem.counters
    assert (counters.downloads_refused_auth, counters.downloads_ok) == (1, 1)


def test_a_tampered_link_fails_its_signature(sim: Simulator) -> None:
    api = Api(sim)
    first, second = api.batch(type="receipt", pageSize=2).json()["value"]
    # Another object's path with this object's signature.
    forged = first["url"].replace(object_path(first["url"]), object_path(second["url"]))
    answer = download(forged)
    assert answer.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in answer.text
    assert download(first["url"].split("?")[0]).status_code == 403


def test_post_on_a_siem_endpoint_is_refused_and_without_siem_the_paths_do_not_exist() -> None:
    with make_sim() as sim:
        api = Api(sim)
        assert api.http.post(SIEM_BATCH_PATH, headers=api.auth, json={}).status_code == 405
    with Simulator(TENANT, client_id="cid", client_secret="secret", clock=lambda: float(NOW)) as plain:
        assert plain.siem is None
        assert httpx.get(plain.base_url + SIEM_BATCH_PATH).status_code == 404


# --- batch files ---------------------------------------------------------------------------------------


def test_files_are_gzip_ndjson_in_the_batch_style_with_exact_sizes(sim: Simulator) -> None:
    api = Api(sim)
    assert sim.siem is not None
    for log_type in SIEM_TYPES:
        listed = api.batch(type=log_type, pageSize=3).json()
        assert listed["value"], log_type
        for entry, file in zip(listed["value"], sim.siem.files(log_type), strict=False):
            assert set(entry) == {"url", "size", "expiry"}
            assert entry["expiry"] == iso(NOW + 900)
            response = download(entry["url"])
            assert entry["size"] == len(response.content) == int(response.headers["content-length"])
            records = records_of(response)
            assert len(records) == file.count
            for record in records:
                assert record["type"] == log_type
                assert "subtype" in record and "eventType" not in record and "subType" not in record
                assert isinstance(record["_offset"], int) and isinstance(record["_partition"], int)
                assert record["accountId"] == "CSIM4A001"
                assert isinstance(record["timestamp"], int)
                assert file.published_at - 900 <= record["timestamp"] / 1000 < file.published_at


def test_numbers_and_booleans_stay_strings_as_in_the_samples() -> None:
    data = SiemData(SiemSpec(seed=5, records_per_type=300), now=NOW)
    seen: dict[str, set[type]] = {}
    for log_type in ("receipt", "process", "delivery", "impersonation protect"):
        for index in range(300):
            record = data.record(log_type, index)
            for name in ("numberAttachments", "emailSize", "delivered", "spamScore", "newDomain"):
                if record.get(name) is not None:
                    seen.setdefault(name, set()).add(type(record[name]))
    assert set(seen) == {"numberAttachments", "emailSize", "delivered", "spamScore", "newDomain"}
    assert all(kinds == {str} for kinds in seen.values()), seen


def test_a_full_walk_of_every_type_yields_exactly_what_was_published(sim: Simulator) -> None:
    api = Api(sim)
    assert sim.siem is not None
    for log_type in SIEM_TYPES:
        files, _ = api.walk(log_type, page_size=7, dateRangeStartsAt=day(NOW - 7 * 86400))
        got = [record for entry in files for record in records_of(download(entry["url"]))]
        expected = list(sim.siem.published(log_type))
        assert got == expected
        assert len(got) == sim.siem.published_count(log_type) == 120
        assert len({r["processingId"] for r in got}) == len(got)


def test_date_filters_pick_files_by_publication_day(sim: Simulator) -> None:
    api = Api(sim)
    assert sim.siem is not None
    one_day = day(NOW - 2 * 86400)
    files, _ = api.walk("receipt", dateRangeStartsAt=one_day, dateRangeEndsAt=one_day)
    published = {time.strftime("%Y-%m-%d", time.gmtime(f.published_at)) for f in sim.siem.files("receipt")}
    assert one_day in published
    assert files and all(f"/{one_day.replace('-', '/')}/" in object_path(entry["url"]) for entry in files)
    expected = [f for f in sim.siem.files("receipt") if day(f.published_at) == one_day]
    assert len(files) == len(expected)


# --- tokens ---------------------------------------------------------------------------------------------


def test_tokens_are_durable_relisting_gives_the_same_files_with_fresh_links() -> None:
    clock = Clock()
    with make_sim(clock=clock) as sim:
        api = Api(sim)
        first = api.batch(type="spam", pageSize=4).json()
        token = first["@nextPage"]
        again = api.batch(type="spam", pageSize=4, nextPage=token).json()
        clock.now += 600
        later = api.batch(type="spam", pageSize=4, nextPage=token).json()
        assert [object_path(e["url"]) for e in again["value"]] == [object_path(e["url"]) for e in later["value"]]
        assert again["value"][0]["url"] != later["value"][0]["url"]  # signed again, later expiry
        assert later["value"][0]["expiry"] == iso(NOW + 600 + 900)
        assert later["@nextPage"] == again["@nextPage"]
        assert not set(map(object_path, (e["url"] for e in first["value"]))) & set(
            map(object_path, (e["url"] for e in again["value"]))
        )
        # Bound to its type, and signed.
        wrong = api.batch(type="receipt", nextPage=token)
        assert wrong.status_code == 400
        assert wrong.json()["fail"][0]["errors"][0]["code"] == "err_pagination_token_invalid"
        assert api.batch(type="spam", nextPage=token[:-2] + "00").status_code == 400
    # The same seed signs the same way: a token and a link outlive the simulator that issued them.
    with make_sim(clock=clock) as other:
        api = Api(other)
        replay = api.batch(type="spam", pageSize=4, nextPage=token).json()
        assert [object_path(e["url"]) for e in replay["value"]] == [object_path(e["url"]) for e in later["value"]]


def test_a_caught_up_type_keeps_a_token_that_new_files_appear_after() -> None:
    spec = SiemSpec(seed=4, records_per_type=3000, end=NOW + 3600)  # an hour of data still to come
    with make_sim(spec) as sim:
        api = Api(sim)
        assert sim.siem is not None
        files, token = api.walk("receipt")
        assert files and token
        seen = {r["processingId"] for entry in files for r in records_of(download(entry["url"]))}
        idle = api.batch(type="receipt", nextPage=token).json()
        assert idle == {"value": [], "@nextPage": token, "isCaughtUp": True}
        before = sim.siem.published_count("receipt")
        sim.advance(900)
        fresh = api.batch(type="receipt", nextPage=token).json()
        assert len(fresh["value"]) == 1 and fresh["isCaughtUp"] is True
        new = records_of(download(fresh["value"][0]["url"]))
        assert len(new) == sim.siem.published_count("receipt") - before > 0
        assert not seen & {r["processingId"] for r in new}
        assert fresh["@nextPage"] != token


def test_bad_batch_requests_answer_400_with_the_fail_shape(sim: Simulator) -> None:
    api = Api(sim)
    cases = [
        ({}, "err_validation_type"),
        ({"type": "receipt,spam"}, "err_validation_type"),
        ({"type": "nope"}, "err_validation_type"),
        ({"type": "receipt", "pageSize": 0}, "err_validation_page_size"),
        ({"type": "receipt", "pageSize": 101}, "err_validation_page_size"),
        ({"type": "receipt", "dateRangeStartsAt": "2026-06-15T00:00:00Z"}, "err_validation_date_format"),
        ({"type": "receipt", "dateRangeEndsAt": "15/06/2026"}, "err_validation_date_format"),
        ({"type": "receipt", "nextPage": "garbage"}, "err_pagination_token_invalid"),
    ]
    for params, code in cases:
        answer = api.batch(**params)
        assert answer.status_code == 400, params
        body = answer.json()
        assert body["meta"] == {"status": 400} and body["data"] == []
        assert body["fail"][0]["errors"][0]["code"] == code, params
    twice = api.http.get(SIEM_BATCH_PATH + "?type=receipt&type=spam", headers=api.auth)
    assert twice.status_code == 400


# --- faults on downloads ----------------------------------------------------------------------------------


def test_expired_links_answer_403_and_a_relisting_gives_working_ones() -> None:
    clock = Clock()
    with make_sim(clock=clock) as sim:
        api = Api(sim)
        assert sim.siem is not None
        listed = api.batch(type="delivery", pageSize=2).json()
        url = listed["value"][0]["url"]
        clock.now += 901
        expired = download(url)
        assert expired.status_code == 403
        assert "<Code>AccessDenied</Code>" in expired.text and "Request has expired" in expired.text
        # Listing again from the same position (here: no token, the same dates) gives fresh links.
        relisted = api.batch(type="delivery", pageSize=2).json()
        assert object_path(relisted["value"][0]["url"]) == object_path(url)
        assert records_of(download(relisted["value"][0]["url"]))
        # The injected fault: the next two downloads answer 403 whatever the expiry.
        sim.faults.siem_expire_links_next = 2
        fresh = relisted["value"][1]["url"]
        assert [download(fresh).status_code for _ in range(3)] == [403, 403, 200]
        assert sim.siem.counters.downloads_expired == 3


def test_missing_links_and_server_errors() -> None:
    with make_sim() as sim:
        api = Api(sim)
        assert sim.siem is not None
        url = api.batch(type="av", pageSize=1).json()["value"][0]["url"]
        sim.faults.siem_missing_links_next = 1
        missing = download(url)
        assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
        sim.faults.siem_download_error_next = 1
        failing = download(url)
        assert failing.status_code == 503 and "<Code>SlowDown</Code>" in failing.text
        assert download(url).status_code == 200
        counters = sim.siem.counters
        assert (counters.downloads_missing, counters.downloads_failed, counters.downloads_ok) == (1, 1, 1)


def test_files_past_retention_are_gone() -> None:
    clock = Clock()
    spec = SiemSpec(seed=3, records_per_type=120, link_ttl_seconds=30 * 86400)
    with make_sim(spec, clock=clock) as sim:
        api = Api(sim)
        assert sim.siem is not None
        oldest = api.batch(type="journal", pageSize=1).json()["value"][0]["url"]
        assert download(oldest).status_code == 200
        clock.now += 86400
        gone = download(oldest)
        assert gone.status_code == 404 and "<Code>NoSuchKey</Code>" in gone.text
        assert sim.siem.published_count("journal") < 120
        api = Api(sim)  # the bearer token expired meanwhile
        assert api.batch(type="journal", pageSize=1).json()["value"][0]["url"] != oldest


def test_download_latency_is_a_floor(sim: Simulator) -> None:
    api = Api(sim)
    url = api.batch(type="receipt", pageSize=1).json()["value"][0]["url"]
    sim.faults.siem_download_latency_seconds = 0.05
    began = time.perf_counter()
    assert download(url).status_code == 200
    assert time.perf_counter() - began >= 0.05


def test_a_record_repeated_in_two_files() -> None:
    with make_sim() as sim:
        api = Api(sim)
        assert sim.siem is not None
        sim.faults.siem_repeat_last = 1
        files, _ = api.walk("process", page_size=5)
        batches = [records_of(download(entry["url"])) for entry in files]
        assert [entry["size"] for entry in files] == [int(download(e["url"]).headers["content-length"]) for e in files]
        for previous, current in itertools.pairwise(batches):
            copy, original = current[0], previous[-1]
            assert copy["_offset"] == original["_offset"] + REPEAT_OFFSET_SHIFT
            assert {**copy, "_offset": 0} == {**original, "_offset": 0}
        flat = [record for batch in batches for record in batch]
        assert len(flat) == sim.siem.published_count("process") + len(files) - 1
        unique = {json.dumps({k: v for k, v in r.items() if k != "_offset"}, sort_keys=True) for r in flat}
        assert len(unique) == sim.siem.published_count("process")
        assert sim.siem.counters.records_repeated >= len(files) - 1


# --- faults on listings -----------------------------------------------------------------------------------


def test_caught_up_and_empty_types() -> None:
    spec = SiemSpec(seed=3, records_per_type={t: 50 for t in SIEM_TYPES if t != "journal"})
    with make_sim(spec) as sim:
        api = Api(sim)
        assert sim.siem is not None
        no_data = api.batch(type="journal").json()
        assert no_data["value"] == [] and no_data["isCaughtUp"] is True and no_data["@nextPage"]
        assert sim.siem.published_count("journal") == 0
        assert all(r["eventType"] != "journal" for r in api.stream(pageSize=100).json()["value"])

        first = api.batch(type="spam", pageSize=2).json()
        sim.faults.siem_caught_up_types = {"spam"}
        stalled = api.batch(type="spam", pageSize=2, nextPage=first["@nextPage"]).json()
        assert stalled == {"value": [], "@nextPage": first["@nextPage"], "isCaughtUp": True}
        sim.faults.siem_caught_up_types = set()
        resumed = api.batch(type="spam", pageSize=2, nextPage=stalled["@nextPage"]).json()
        assert len(resumed["value"]) == 2

        sim.faults.siem_empty_types = {"receipt"}
        hidden = api.batch(type="receipt").json()
        assert hidden["value"] == [] and hidden["isCaughtUp"] is True
        assert all(r["eventType"] != "receipt" for r in api.stream(types="receipt,spam").json()["value"])
        sim.faults.reset()
        assert api.batch(type="receipt").json()["value"]


def test_the_listing_budget_answers_429_with_the_reset_headers() -> None:
    clock = Clock()
    with make_sim(clock=clock) as sim:
        api = Api(sim)
        assert sim.siem is not None
        sim.faults.siem_list_budget = 50
        clock.now += 100  # 100 s into a 15-minute window
        answers = [api.batch(type=SIEM_TYPES[n % len(SIEM_TYPES)], pageSize=1) for n in range(51)]
        assert [a.status_code for a in answers[:50]] == [200] * 50
        assert answers[49].headers["X-RateLimit-Remaining"] == "0"
        assert answers[0].headers["X-RateLimit-Limit"] == "50"
        refused = answers[50]
        assert refused.status_code == 429
        assert refused.json()["fail"][0]["errors"][0]["code"] == "err_rate_limit_exceeded"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert refused.headers["X-RateLimit-Reset"] == str(800 * 1000)
        # Other endpoints do not spend it, and a new window restores it.
        assert api.stream(pageSize=1).status_code == 200
        assert api.http.post("/api/audit/get-categories", headers=api.auth).status_code == 200
        clock.now += 800
        assert api.batch(type="receipt", pageSize=1).status_code == 200
        assert sim.siem.counters.list_refused == 1


def test_the_stream_budget() -> None:
    with make_sim() as sim:
        api = Api(sim)
        sim.faults.siem_stream_budget = 2
        assert [api.stream(pageSize=1).status_code for _ in range(3)] == [200, 200, 429]
        assert api.batch(type="receipt", pageSize=1).status_code == 200


def test_the_siem_product_missing_is_403_on_both_endpoints_and_audit_still_works(sim: Simulator) -> None:
    api = Api(sim)
    sim.faults.forbid_siem = True
    for answer in (api.batch(type="receipt"), api.stream()):
        assert answer.status_code == 403
        assert answer.json() == {
            "fail": [{"code": "app_forbidden", "message": "Forbidden to perform the requested operation"}]
        }
    audit = api.http.post(
        "/api/audit/get-audit-events",
        headers=api.auth,
        json={"data": [{"startDateTime": "2026-06-15T00:00:00+0000", "endDateTime": "2026-06-15T12:00:00+0000"}]},
    )
    assert audit.status_code == 200 and audit.json()["data"]


@pytest.mark.parametrize(
    ("fault", "status"),
    [("rate_limit_next", 429), ("server_error_next", 503), ("fail_next", 200)],
)
def test_app_wide_faults_apply_to_siem_calls(fault: str, status: int) -> None:
    with make_sim() as sim:
        api = Api(sim)
        setattr(sim.faults, fault, 1)
        hit = api.batch(type="receipt", pageSize=1)
        assert hit.status_code == status
        assert "fail" in hit.json()
        assert api.batch(type="receipt", pageSize=1).json()["value"]


def test_token_expiry_and_the_app_wide_quota_apply_to_siem_calls() -> None:
    with make_sim(faults=FaultPlan(quota_limit=2, quota_window_seconds=60)) as sim:
        api = Api(sim)
        assert [api.batch(type="receipt", pageSize=1).status_code for _ in range(3)] == [200, 200, 429]
    with make_sim() as sim:
        api = Api(sim)
        sim.faults.expire_tokens_after_calls = 1
        assert api.stream(pageSize=1).status_code == 200
        expired = api.batch(type="receipt")
        assert expired.status_code == 401 and expired.json()["fail"][0]["code"] == "token_expired"


# --- the stream endpoint ------------------------------------------------------------------------------------


def test_the_stream_pages_every_record_of_the_window_in_time_order() -> None:
    spec = SiemSpec(seed=9, records_per_type=2000, days=7)
    with make_sim(spec) as sim:
        api = Api(sim)
        assert sim.siem is not None
        data = sim.siem.data
        types = ["receipt", "url protect"]
        start, end = NOW - 6 * 3600, NOW - 3600
        params: dict[str, Any] = {"types": ",".join(types), "dateRangeStartsAt": iso(start), "pageSize": 25}
        params["dateRangeEndsAt"] = iso(end)
        got: list[dict[str, Any]] = []
        for _ in range(100):
            body = api.stream(**params).json()
            assert set(body) == {"value", "@nextPage", "@nextLink", "pageSize", "isCaughtUp"}
            assert body["pageSize"] == 25
            got.extend(body["value"])
            if body["isCaughtUp"]:
                params["nextPage"] = body["@nextPage"]
                break
            # @nextLink is the next page, ready to call.
            assert (
                api.http.get(body["@nextLink"], headers=api.auth).json()["value"]
                == api.stream(**{**params, "nextPage": body["@nextPage"]}).json()["value"]
            )
            params["nextPage"] = body["@nextPage"]
        expected = sorted(
            (
                (data.timestamp_ms(t, i), n, i)
                for n, t in enumerate(types)
                for i in range(data.count(t))
                if start * 1000 <= data.timestamp_ms(t, i) < end * 1000
            ),
        )
        assert [r["timestamp"] for r in got] == [ts for ts, _, _ in expected]
        assert [r["processingId"] for r in got] == [data.record(types[n], i)["processingId"] for _, n, i in expected]
        for record in got:
            assert record["eventType"] in types and "subType" in record
            assert "type" not in record and "subtype" not in record and "_offset" not in record
        # Caught up: the token stays, and a later window end continues from it.
        last = api.stream(**params).json()
        assert last["value"] == [] and last["isCaughtUp"] is True
        more = api.stream(**{**params, "dateRangeEndsAt": iso(NOW), "nextPage": last["@nextPage"]}).json()
        assert more["value"] and all(r["timestamp"] >= end * 1000 for r in more["value"])


def test_the_stream_refuses_a_window_reaching_back_past_24_hours(sim: Simulator) -> None:
    api = Api(sim)
    assert api.stream(dateRangeStartsAt=iso(NOW - 86400)).status_code == 200
    refused = api.stream(dateRangeStartsAt=iso(NOW - 86400 - 1), dateRangeEndsAt=iso(NOW))
    assert refused.status_code == 400
    body = refused.json()
    assert body["meta"] == {"status": 400} and body["data"] == []
    (entry,) = body["fail"]
    assert entry["key"] == {"dateRangeStartsAt": iso(NOW - 86400 - 1)}
    assert entry["errors"] == [
        {
            "code": "err_validation_date_range",
            "message": "dateRangeStartsAt must be within the last 24 hours",
            "retryable": False,
        }
    ]


def test_bad_stream_requests(sim: Simulator) -> None:
    api = Api(sim)
    cases = [
        ({"types": "receipt,bogus"}, "err_validation_type"),
        ({"dateRangeStartsAt": "2026-06-15"}, "err_validation_date_format"),
        ({"dateRangeEndsAt": "2026-06-15T12:00:00"}, "err_validation_date_format"),  # no zone
        ({"dateRangeStartsAt": iso(NOW - 60), "dateRangeEndsAt": iso(NOW - 120)}, "err_validation_date_range"),
        ({"pageSize": 500}, "err_validation_page_size"),
        ({"nextPage": "x.y"}, "err_pagination_token_invalid"),
    ]
    for params, code in cases:
        answer = api.stream(**params)
        assert answer.status_code == 400, params
        assert answer.json()["fail"][0]["errors"][0]["code"] == code, params
    token = api.stream(types="receipt", pageSize=1).json()["@nextPage"]
    assert api.stream(types="spam", nextPage=token).status_code == 400  # bound to its types
    assert api.stream(dateRangeStartsAt="2026-06-15T11:00:00+00:00", pageSize=1).status_code == 200


# --- the generator --------------------------------------------------------------------------------------


def test_the_templates_are_the_fixture_records() -> None:
    fixture = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert list(SAMPLES) == fixture
    assert all("_source" not in r and "_provenance" not in r for r in fixture)
    types = {r.get("type", r.get("eventType")) for r in fixture}
    assert types == set(SIEM_TYPES)
    provenance = (FIXTURE.parent / "PROVENANCE.md").read_text()
    assert all(f"| {n} |" in provenance for n in range(1, len(fixture) + 1))


def test_generated_records_keep_their_samples_fields_and_vary_the_rest() -> None:
    data = SiemData(SiemSpec(seed=11, records_per_type=400), now=NOW)
    fields: dict[str, set[frozenset[str]]] = {}
    for sample in SAMPLES:
        kind = sample.get("type", sample.get("eventType"))
        names = {{"eventType": "type", "subType": "subtype"}.get(k, k) for k in sample} | {"_offset", "_partition"}
        fields.setdefault(str(kind), set()).add(frozenset(names))
    for log_type in SIEM_TYPES:
        records = [data.record(log_type, i) for i in range(400)]
        for record in records:
            assert frozenset(record) in fields[log_type]
        assert len({r["processingId"] for r in records}) == 400
        addresses = {r.get("senderEnvelope") for r in records}
        assert len(addresses) > 20 or log_type == "attachment protect"
        timestamps = [r["timestamp"] for r in records]
        assert timestamps == sorted(timestamps)
        assert data.start_ms <= timestamps[0] and timestamps[-1] < data.end_ms


def test_the_generator_is_deterministic_from_its_seed() -> None:
    one = SiemData(SiemSpec(seed=1, records_per_type=50), now=NOW)
    same = SiemData(SiemSpec(seed=1, records_per_type=50), now=NOW)
    other = SiemData(SiemSpec(seed=2, records_per_type=50), now=NOW)
    for log_type in SIEM_TYPES:
        assert [one.record(log_type, i) for i in range(50)] == [same.record(log_type, i) for i in range(50)]
        assert [one.record(log_type, i) for i in range(50)] != [other.record(log_type, i) for i in range(50)]
    file = next(iter(one.files("receipt", one.end_ms)))
    assert one.file_bytes(file) == same.file_bytes(file)


def test_a_large_tenant_is_laid_out_without_holding_its_records() -> None:
    tracemalloc.start()
    try:
        spec = SiemSpec(seed=1, records_per_type={"receipt": 1_000_000}, file_interval_seconds=7 * 86400 / 500)
        data = SiemData(spec, now=NOW)
        files = list(data.files("receipt", data.end_ms))
        total = sum(f.count for f in files)
        body = data.file_bytes(files[250])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 1_000_000 and len(files) == 500
    assert [f.first for f in files[1:]] == [f.stop for f in files[:-1]]
    assert len(gzip.decompress(body).splitlines()) == files[250].count
    assert peak < 40 * 2**20  # one file's records at a time, never the million


@pytest.mark.parametrize(
    "kwargs",
    [
        {"records_per_type": -1},
        {"records_per_type": {"bogus": 1}},
        {"days": 0},
        {"file_interval_seconds": float("nan")},
        {"link_ttl_seconds": -5},
    ],
)
def test_bad_specs_fail_fast_naming_the_parameter(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SiemSpec(**kwargs)


# --- CLI ------------------------------------------------------------------------------------------------


def test_the_cli_serves_siem_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.simulator.cli as cli

    args = build_parser().parse_args(["--siem-records", "30", "--siem-interval", "600"])
    assert (args.siem_records, args.siem_interval) == (30, 600.0)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "serve", lambda **kwargs: calls.append(kwargs) or 0)
    assert cli.main(["--port", "0", "--siem-records", "30", "--siem-future-hours", "2"]) == 0
    assert cli.main(["--port", "0"]) == 0
    spec = calls[0]["siem"]
    assert isinstance(spec, SiemSpec) and spec.count("journal") == 30
    assert spec.end is not None and spec.end > time.time() + 3600
    assert calls[1]["siem"] is None


def test_serve_prints_the_file_host(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(serve(0, size_preset="tiny", stop_event=stop, siem=SiemSpec(records_per_type=10)))
    )
    thread.start()
    for _ in range(200):
        if "batch files on http://127.0.0.1:" in capsys.readouterr().out:
            break
        time.sleep(0.02)
    else:
        pytest.fail("serve never printed the SIEM file host")
    stop.set()
    thread.join(timeout=5)
    assert result == [0]
