"""The simulator's TTP and DLP log routes: their records come from the real samples, ``oldestFirst`` orders them
(newest first without it, as Mimecast answers), a listing stays pinned to its first page's instant while index lag
reveals records, bad queries get Mimecast's ``fail`` answers, and a forbidden log answers 403."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from connector.simulator import FaultPlan, Simulator, TenantSpec
from connector.simulator.ttp import LOG_PATHS, TtpSpec
from connector.simulator.ttp_samples import SAMPLES
from connector.timefmt import parse_mimecast_time_ms

NOW = calendar.timegm((2026, 6, 15, 12, 0, 0, 0, 0, 0))
FIXTURES = Path(__file__).parent / "fixtures" / "streams"
RATES = TtpSpec({"ttp_url": 96, "ttp_attachment": 48, "ttp_impersonation": 24, "dlp": 48})


class Client:
    """Requests straight into ``Simulator.handle`` (no socket), with a bearer token."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        form = urlencode({"grant_type": "client_credentials", "client_id": sim.client_id,
                          "client_secret": sim.client_secret}).encode()  # fmt: skip
        reply = sim.handle("POST", "/oauth/token", {"content-type": "application/x-www-form-urlencoded"}, form)
        assert isinstance(reply.body, dict)
        self.token = reply.body["access_token"]

    def post(self, path: str, item: dict[str, Any], size: int = 100, token: str | None = None) -> Any:
        pagination: dict[str, Any] = {"pageSize": size}
        if token:
            pagination["pageToken"] = token
        body = orjson.dumps({"meta": {"pagination": pagination}, "data": [item]})
        reply = self.sim.handle("POST", path, {"authorization": f"Bearer {self.token}"}, body)
        return reply.status, reply.body


def make_sim(**kwargs: Any) -> Simulator:
    spec = TenantSpec(seed=5, users=12, groups=1, days=1, end=NOW)
    return Simulator(spec, clock=lambda: float(NOW), ttp=RATES, **kwargs)


def fmt(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))


def window(hours_back: float = 24, **extra: Any) -> dict[str, Any]:
    return {"from": fmt(NOW - hours_back * 3600), "to": fmt(NOW), **extra}


def times(body: Any, records_at: str, field: str) -> list[int]:
    return [parse_mimecast_time_ms(r[field]) for r in body["data"][0][records_at]]


def test_the_records_are_built_from_the_samples_which_are_the_fixture_files() -> None:
    for name in LOG_PATHS:
        lines = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == list(SAMPLES[name]), name
    sim = make_sim()
    for name, (_, _, time_field) in LOG_PATHS.items():
        records = sim.ttp.records(name)
        assert len(records) == RATES.per_day[name]
        # every record has exactly a sample's fields, and no two records are the same content
        shapes = {tuple(sorted(sample)) for sample in SAMPLES[name]}
        assert {tuple(sorted(r)) for r in records} <= shapes
        assert len({orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records}) == len(records)
        stamps = [parse_mimecast_time_ms(r[time_field]) for r in records]
        assert stamps == sorted(stamps) and stamps[0] >= (NOW - 86400) * 1000 and stamps[-1] < NOW * 1000
    urls = sim.ttp.records("ttp_url")
    assert "Internal IP" in {r["sendingIp"] for r in urls}
    assert len({r["userEmailAddress"] for r in urls}) > 3  # addresses vary
    assert {r["senderAddress"] for r in sim.ttp.records("ttp_attachment")} == {"<>"}  # as in every sample
    assert all(r["id"].startswith("MTOKEN:") for r in sim.ttp.records("ttp_impersonation"))
    assert any(r["eventTime"].endswith("+0700") for r in sim.ttp.records("dlp"))


def test_dlp_records_come_in_pairs_of_one_message_with_two_actions() -> None:
    records = make_sim().ttp.records("dlp")
    pairs = [records[i : i + 2] for i in range(0, len(records), 2)]
    for first, second in pairs:
        assert first["messageId"] == second["messageId"] and first["eventTime"] == second["eventTime"]
        assert first["action"] in ("hold", "block") and second["action"] == "notification"
        assert {k: v for k, v in first.items() if k != "action"} == {k: v for k, v in second.items() if k != "action"}
    assert len({first["messageId"] for first, _ in pairs}) == len(pairs)


@pytest.mark.parametrize("name", list(LOG_PATHS))
def test_oldest_first_orders_ascending_and_its_absence_newest_first(name: str) -> None:
    path, records_at, time_field = LOG_PATHS[name]
    client = Client(make_sim())
    status, oldest = client.post(path, window(oldestFirst=True))
    assert status == 200 and oldest["fail"] == []
    ascending = times(oldest, records_at, time_field)
    assert len(ascending) == RATES.per_day[name] and ascending == sorted(ascending)
    for query in (window(), window(oldestFirst=False)):
        _, newest = client.post(path, query)
        assert times(newest, records_at, time_field) == sorted(ascending, reverse=True)


def test_from_and_to_are_inclusive_and_filter_the_records() -> None:
    path, records_at, field = LOG_PATHS["ttp_url"]
    sim = make_sim()
    records = sim.ttp.records("ttp_url")
    middle = records[len(records) // 2][field]
    status, body = Client(sim).post(path, {"from": middle, "to": middle, "oldestFirst": True})
    assert status == 200
    assert [r[field] for r in body["data"][0][records_at]] == [r[field] for r in records if r[field] == middle]


def test_a_listing_is_pinned_to_its_first_page_while_lag_reveals_records() -> None:
    clock = {"now": float(NOW)}
    spec = TenantSpec(seed=5, users=12, groups=1, days=1, end=NOW + 3600)
    faults = FaultPlan(lag_max_seconds=1200, lag_fraction=1)
    sim = Simulator(spec, clock=lambda: clock["now"], ttp=TtpSpec({"ttp_url": 2000}), faults=faults)
    path, records_at, _ = LOG_PATHS["ttp_url"]
    client = Client(sim)
    query = window(oldestFirst=True, to=fmt(NOW + 3600))  # up to an hour after now
    _, first = client.post(path, query, size=500)
    total = first["meta"]["pagination"]["totalCount"]
    clock["now"] += 1500  # more records are visible now (the token is still valid), but not to this listing
    seen = list(first["data"][0][records_at])
    token = first["meta"]["pagination"].get("next")
    while token:
        _, page = client.post(path, query, size=500, token=token)
        assert page["meta"]["pagination"]["totalCount"] == total
        seen.extend(page["data"][0][records_at])
        token = page["meta"]["pagination"].get("next")
    assert len(seen) == total > 500 and len({r["messageId"] for r in seen}) == total  # several pages, no repeat
    _, fresh = client.post(path, query, size=500)
    assert fresh["meta"]["pagination"]["totalCount"] > total  # a new listing sees what the lag held back
    # with every record lagged, records of the last 20 minutes before the instant are not all visible yet
    recent = [
        r for r in sim.ttp.records("ttp_url", until=NOW) if parse_mimecast_time_ms(r["date"]) > (NOW - 1200) * 1000
    ]
    assert recent and total < len(sim.ttp.records("ttp_url", until=NOW))


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"from": "2026-06-15T10:00:00Z", "to": "2026-06-15T11:00:00+0000"}, "err_validation_date_format"),
        ({"from": "2026-06-15T11:00:00+0000", "to": "2026-06-15T10:00:00+0000"}, "err_validation_date_range"),
        ({"from": "2026-06-15T10:00:00+0000", "oldestFirst": "yes"}, "err_validation_type"),
    ],
)
def test_a_bad_query_gets_a_fail_answer(item: dict[str, Any], code: str) -> None:
    status, body = Client(make_sim()).post("/api/dlp/get-logs", item)
    assert status == 200 and body["fail"][0]["errors"][0]["code"] == code


def test_without_from_and_to_the_listing_is_today_up_to_now() -> None:
    sim = make_sim()
    path, records_at, field = LOG_PATHS["ttp_impersonation"]
    _, body = Client(sim).post(path, {"oldestFirst": True})
    today = (NOW - NOW % 86400) * 1000
    expected = [r for r in sim.ttp.records("ttp_impersonation") if parse_mimecast_time_ms(r[field]) >= today]
    assert body["data"][0][records_at] == expected and expected


def test_a_forbidden_log_answers_403_and_the_others_still_answer() -> None:
    sim = make_sim()
    sim.ttp.forbidden.add("dlp")
    client = Client(sim)
    assert client.post("/api/dlp/get-logs", window())[0] == 403
    assert client.post("/api/ttp/url/get-logs", window())[0] == 200


def test_gateway_faults_apply_to_the_log_routes() -> None:
    sim = make_sim(faults=FaultPlan(rate_limit_next=1, server_error_next=1, fail_next=1))
    client = Client(sim)
    answers = [client.post("/api/ttp/attachment/get-logs", window()) for _ in range(4)]
    assert [status for status, _ in answers] == [429, 503, 200, 200]
    assert answers[2][1]["fail"] and not answers[3][1]["fail"]
    assert sim.ttp.served["ttp_attachment"] == RATES.per_day["ttp_attachment"]  # only the answered listing
