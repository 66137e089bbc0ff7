"""Tests of the embedded Mimecast API 2.0 simulator, over real HTTP on 127.0.0.1 with plain httpx."""

from __future__ import annotations

import ast
import calendar
import json
import re
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.simulator import (
    LAYOUTS,
    MALFORMED_KINDS,
    SIZE_PRESETS,
    ApiV1Keys,
    FaultPlan,
    Simulator,
    Tenant,
    TenantSpec,
    serve,
)
from connector.simulator.cli import build_parser

NOW = calendar.timegm((2026, 6, 15, 12, 0, 0, 0, 0, 0))
AUDIT = "/api/audit/get-audit-events"
EVENT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000\Z")
SECRET = "s3cr+t&with=odd/chars"


def fmt(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))


def parse(text: str) -> int:
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


def make_sim(**kwargs: Any) -> Simulator:
    spec = kwargs.pop("spec", TenantSpec(seed=7, users=60, groups=8, audit_events_per_day=2000, days=2, end=NOW))
    clock = kwargs.pop("clock", lambda: float(NOW))
    return Simulator(spec, client_id="cid", client_secret=SECRET, clock=clock, **kwargs)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with make_sim() as running:
        yield running


class Api:
    """A few lines of plain httpx: this file must not use the connector's client."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.base_url, timeout=10)
        self.token = ""

    def get_token(self, client_id: str = "cid", secret: str = SECRET) -> httpx.Response:
        response = self.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    def post(
        self, path: str, data: list[Any] | None = None, size: int = 100, page_token: str | None = None
    ) -> httpx.Response:
        if not self.token:
            self.get_token()
        pagination: dict[str, Any] = {"pageSize": size}
        if page_token is not None:
            pagination["pageToken"] = page_token
        body = {"meta": {"pagination": pagination}, "data": data if data is not None else []}
        return self.http.post(path, json=body, headers={"Authorization": f"Bearer {self.token}"})

    def audit(
        self, start: float, end: float, size: int = 100, page_token: str | None = None, **extra: Any
    ) -> httpx.Response:
        return self.post(AUDIT, [{"startDateTime": fmt(start), "endDateTime": fmt(end), **extra}], size, page_token)

    def pull(self, path: str, data: list[Any], size: int = 100) -> tuple[list[Any], list[dict[str, Any]]]:
        """Every page of a listing: (data entries, raw bodies)."""
        entries: list[Any] = []
        bodies: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(10_000):
            body = self.post(path, data, size, token).json()
            assert body["fail"] == [], body["fail"]
            bodies.append(body)
            entries.extend(body["data"])
            token = body["meta"]["pagination"].get("next")
            if not token:
                return entries, bodies
        raise AssertionError("pagination did not end")

    def pull_audit(self, start: float, end: float, size: int = 100, **extra: Any) -> list[dict[str, Any]]:
        data = [{"startDateTime": fmt(start), "endDateTime": fmt(end), **extra}]
        return self.pull(AUDIT, data, size)[0]


# --- token and gateway ----------------------------------------------------------------------------------------


def test_token_with_good_credentials(sim: Simulator) -> None:
    response = Api(sim).get_token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1799
    assert len(body["access_token"]) > 20
    assert sim.counters.tokens_issued == 1


@pytest.mark.parametrize(("client_id", "secret"), [("cid", "wrong"), ("other", SECRET), ("cid", SECRET[:-1])])
def test_token_with_bad_credentials(sim: Simulator, client_id: str, secret: str) -> None:
    response = Api(sim).get_token(client_id, secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert sim.counters.tokens_issued == 0


def test_token_needs_form_body_and_grant(sim: Simulator) -> None:
    http = httpx.Client(base_url=sim.base_url)
    as_json = http.post("/oauth/token", json={"grant_type": "client_credentials", "client_id": "cid"})
    assert as_json.status_code == 400
    wrong_grant = http.post(
        "/oauth/token", data={"grant_type": "password", "client_id": "cid", "client_secret": SECRET}
    )
    assert wrong_grant.status_code == 400
    # A secret sent without URL-encoding ("+" becomes a space, "&" splits the field) is rejected.
    raw = f"grant_type=client_credentials&client_id=cid&client_secret={SECRET}"
    unencoded = http.post("/oauth/token", content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert unencoded.status_code == 401


def test_bearer_required(sim: Simulator) -> None:
    http = httpx.Client(base_url=sim.base_url)
    body = {"data": [{"startDateTime": fmt(NOW - 60), "endDateTime": fmt(NOW)}]}
    missing = http.post(AUDIT, json=body)
    assert missing.status_code == 401
    assert missing.json()["fail"][0]["code"]
    unknown = http.post(AUDIT, json=body, headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401
    assert unknown.json() == {"fail": [{"code": "token_expired", "message": unknown.json()["fail"][0]["message"]}]}
    assert sim.counters.unauthorized == 2


def test_token_expires_on_the_clock() -> None:
    with make_sim(token_ttl=30) as sim:
        api = Api(sim)
        assert api.audit(NOW - 60, NOW).status_code == 200
        sim.advance(31)
        expired = api.audit(NOW - 60, NOW)
        assert expired.status_code == 401
        assert expired.json()["fail"][0]["code"] == "token_expired"
        api.get_token()
        assert api.audit(NOW - 60, NOW).status_code == 200


def test_rate_limit_headers_on_every_response(sim: Simulator) -> None:
    api = Api(sim)
    responses = [api.get_token(), api.get_token("x", "y"), api.audit(NOW - 60, NOW)]
    responses.append(httpx.post(sim.base_url + AUDIT, json={}))
    responses.append(api.post("/api/nope"))
    for response in responses:
        assert int(response.headers["X-RateLimit-Limit"]) > 0
        assert int(response.headers["X-RateLimit-Remaining"]) >= 0
        assert 0 < int(response.headers["X-RateLimit-Reset"]) <= 3600 * 1000


# --- audit events ---------------------------------------------------------------------------------------------


def test_audit_pagination_end_to_end(sim: Simulator) -> None:
    api = Api(sim)
    records = api.pull_audit(NOW - 3 * 86400, NOW, size=500)
    tenant = sim.tenant
    assert len(records) == tenant.event_count == 4000
    assert len({r["id"] for r in records}) == len(records)
    first = api.audit(NOW - 3 * 86400, NOW, size=500).json()
    assert first["meta"]["pagination"]["totalCount"] == 4000
    assert first["meta"]["pagination"]["pageSize"] == 500
    for record in records:
        assert set(record) == {"id", "auditType", "category", "eventTime", "user", "eventInfo"}
        assert EVENT_TIME.match(record["eventTime"])


def test_window_selects_by_event_time(sim: Simulator) -> None:
    api = Api(sim)
    start, end = NOW - 7200, NOW - 3600
    records = api.pull_audit(start, end)
    expected = [i for i in range(sim.tenant.event_count) if start <= sim.tenant.event_time(i) <= end]
    assert sorted(r["id"] for r in records) == sorted(sim.tenant.audit_id(i) for i in expected)
    assert all(start <= parse(r["eventTime"]) <= end for r in records)


def test_end_is_inclusive_so_boundaries_repeat() -> None:
    with make_sim() as sim:
        api = Api(sim)
        boundary = sim.tenant.event_time(sim.tenant.event_count - 100)
        left = {r["id"] for r in api.pull_audit(boundary - 600, boundary)}
        right = {r["id"] for r in api.pull_audit(boundary, boundary + 600)}
        assert left & right
    with make_sim(end_inclusive=False) as sim:
        api = Api(sim)
        left = {r["id"] for r in api.pull_audit(boundary - 600, boundary)}
        right = {r["id"] for r in api.pull_audit(boundary, boundary + 600)}
        assert not left & right


def test_page_token_is_bound_to_its_window(sim: Simulator) -> None:
    api = Api(sim)
    first = api.audit(NOW - 7200, NOW, size=10).json()
    token = first["meta"]["pagination"]["next"]
    other = api.audit(NOW - 3600, NOW, size=10, page_token=token)
    assert other.status_code == 200
    errors = other.json()["fail"][0]["errors"]
    assert errors[0]["code"] == "err_pagination_token_invalid"
    assert errors[0]["retryable"] is False
    categories = api.audit(NOW - 7200, NOW, size=10, page_token=token, categories=["authentication_logs"]).json()
    assert categories["fail"]
    forged = api.audit(NOW - 7200, NOW, size=10, page_token=token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert forged.json()["fail"]
    same = api.audit(NOW - 7200, NOW, size=10, page_token=token).json()
    assert same["fail"] == []
    assert {r["id"] for r in same["data"]}.isdisjoint(r["id"] for r in first["data"])


def test_default_order_is_newest_first_not_ascending(sim: Simulator) -> None:
    records = Api(sim).pull_audit(NOW - 86400, NOW, size=250)
    times = [parse(r["eventTime"]) for r in records]
    assert times == sorted(times, reverse=True)
    assert times != sorted(times)


@pytest.mark.parametrize("order", ["oldest_first", "shuffled"])
def test_configurable_order(order: str) -> None:
    with make_sim(order=order) as sim:
        records = Api(sim).pull_audit(NOW - 86400, NOW, size=250)
        times = [parse(r["eventTime"]) for r in records]
        assert len({r["id"] for r in records}) == len(records) > 500
        if order == "oldest_first":
            assert times == sorted(times)
        else:
            assert times != sorted(times)
            assert times != sorted(times, reverse=True)


def test_invalid_order_refused() -> None:
    with pytest.raises(ValueError, match="order"):
        make_sim(order="random")


def test_missing_and_badly_formatted_dates_fail_with_http_200(sim: Simulator) -> None:
    api = Api(sim)
    missing = api.post(AUDIT, [{"endDateTime": fmt(NOW)}])
    assert missing.status_code == 200
    assert missing.json()["fail"][0]["errors"][0]["code"] == "err_validation_null"
    assert missing.json()["data"] == []
    empty = api.post(AUDIT, [])
    assert empty.json()["fail"][0]["errors"][0]["code"] == "err_validation_null"
    for bad in (
        "2026-06-15T10:00:00+00:00",
        "2026-06-15T10:00:00Z",
        "2026-06-15 10:00:00+0000",
        "2026-02-30T00:00:00+0000",
    ):
        response = api.post(AUDIT, [{"startDateTime": bad, "endDateTime": fmt(NOW)}])
        assert response.status_code == 200
        assert response.json()["fail"][0]["errors"][0]["code"] == "err_validation_date_format", bad
    reversed_window = api.audit(NOW, NOW - 60)
    assert reversed_window.json()["fail"]


def test_request_offsets_other_than_utc_are_honoured(sim: Simulator) -> None:
    api = Api(sim)
    utc = api.audit(NOW - 3600, NOW).json()["meta"]["pagination"]["totalCount"]
    local = time.strftime("%Y-%m-%dT%H:%M:%S+0100", time.gmtime(NOW + 3600))
    local_start = time.strftime("%Y-%m-%dT%H:%M:%S+0100", time.gmtime(NOW))
    body = api.post(AUDIT, [{"startDateTime": local_start, "endDateTime": local}]).json()
    assert body["meta"]["pagination"]["totalCount"] == utc


def test_categories_filter(sim: Simulator) -> None:
    api = Api(sim)
    wanted = ["profile_group_logs", "user_account_and_role_logs"]
    records = api.pull_audit(NOW - 86400, NOW, size=200, categories=wanted)
    tenant = sim.tenant
    expected = {
        tenant.audit_id(i)
        for i in range(tenant.event_count)
        if tenant.event_time(i) >= NOW - 86400 and tenant.layout_of(i).category in wanted
    }
    assert {r["id"] for r in records} == expected
    assert {r["category"] for r in records} == set(wanted)
    unknown = api.audit(NOW - 86400, NOW, categories=["no_such_logs"]).json()
    assert unknown["data"] == [] and unknown["meta"]["pagination"]["totalCount"] == 0


def test_history_is_limited_to_sixty_days() -> None:
    spec = TenantSpec(seed=3, users=10, groups=2, audit_events_per_day=24, days=90, end=NOW)
    with make_sim(spec=spec) as sim:
        records = Api(sim).pull_audit(NOW - 90 * 86400, NOW, size=500)
        oldest = min(parse(r["eventTime"]) for r in records)
        assert oldest >= NOW - 60 * 86400
        assert len(records) < sim.tenant.event_count


def test_future_events_are_not_served_until_the_clock_reaches_them() -> None:
    spec = TenantSpec(seed=5, users=10, groups=2, audit_events_per_day=8640, days=1, start=NOW - 43200)
    with make_sim(spec=spec) as sim:
        api = Api(sim)
        before = api.audit(NOW - 86400, NOW + 86400).json()["meta"]["pagination"]["totalCount"]
        sim.advance(3600)
        api.get_token()
        after = api.audit(NOW - 86400, NOW + 86400).json()["meta"]["pagination"]["totalCount"]
        assert 4000 < before < after < 8640


def test_index_lag_hides_records_until_the_clock_moves() -> None:
    faults = FaultPlan(lag_max_seconds=1800, lag_fraction=0.5)
    with make_sim(faults=faults, token_ttl=86400) as sim:
        api = Api(sim)
        window = (NOW - 3 * 3600, NOW)
        early = {r["id"] for r in api.pull_audit(*window, size=500)}
        everything = [i for i in range(sim.tenant.event_count) if sim.tenant.event_time(i) >= window[0]]
        assert len(early) < len(everything)
        missing = {sim.tenant.audit_id(i) for i in everything} - early
        # Only records from the last half hour can still be hidden.
        assert all(sim.tenant.event_time(i) > NOW - 1800 for i in everything if sim.tenant.audit_id(i) in missing)
        sim.advance(900)
        middle = {r["id"] for r in api.pull_audit(*window, size=500)}
        assert early < middle
        sim.advance(901)
        late = {r["id"] for r in api.pull_audit(*window, size=500)}
        assert late == {sim.tenant.audit_id(i) for i in everything}


def test_listing_is_consistent_while_the_clock_moves() -> None:
    faults = FaultPlan(lag_max_seconds=600, lag_fraction=1.0)
    with make_sim(faults=faults) as sim:
        api = Api(sim)
        first = api.audit(NOW - 3600, NOW, size=50).json()
        total = first["meta"]["pagination"]["totalCount"]
        sim.advance(600)
        rest = first["data"]
        token = first["meta"]["pagination"].get("next")
        while token:
            page = api.audit(NOW - 3600, NOW, size=50, page_token=token).json()
            rest += page["data"]
            token = page["meta"]["pagination"].get("next")
        assert len(rest) == len({r["id"] for r in rest}) == total


# --- directory ------------------------------------------------------------------------------------------------


def test_domains_users_groups_and_members(sim: Simulator) -> None:
    api = Api(sim)
    domains = api.post("/api/domain/get-internal-domain").json()
    names = [d["domain"] for d in domains["data"]]
    assert names == sim.tenant.domains
    users: list[dict[str, Any]] = []
    for domain in names:
        entries, bodies = api.pull("/api/user/get-internal-users", [{"domain": domain}], size=7)
        assert len(bodies) > 1
        users.extend(u for entry in entries for u in entry["users"])
    assert len(users) == len(sim.tenant.users) == 60
    assert set(users[0]) == {"emailAddress", "name", "alias", "domain", "addressType", "source"}
    assert any(u["alias"] for u in users)
    entries, _ = api.pull("/api/directory/find-groups", [{"query": "", "source": ""}], size=3)
    folders = [f for entry in entries for f in entry["folders"]]
    assert len(folders) == 8
    assert set(folders[0]) == {"id", "description", "source", "parentId", "userCount", "folderCount"}
    cloud, _ = api.pull("/api/directory/find-groups", [{"query": "", "source": "cloud"}])
    assert all(f["source"] == "cloud" for entry in cloud for f in entry["folders"])
    by_name, _ = api.pull("/api/directory/find-groups", [{"query": "finance", "source": ""}])
    assert [f["description"] for entry in by_name for f in entry["folders"]] == ["Finance Approvers"]
    for folder in folders:
        entries, _ = api.pull("/api/directory/get-group-members", [{"id": folder["id"]}], size=5)
        members = [m for entry in entries for m in entry["groupMembers"]]
        assert len(members) == folder["userCount"]
        assert all(entry["group"]["id"] == folder["id"] for entry in entries)
        for member in members:
            assert set(member) == {"emailAddress", "name", "domain", "type", "internal"}


def test_directory_validation(sim: Simulator) -> None:
    api = Api(sim)
    assert (
        api.post("/api/user/get-internal-users", [{}]).json()["fail"][0]["errors"][0]["code"] == "err_validation_null"
    )
    assert api.post("/api/directory/get-group-members", [{}]).json()["fail"]
    unknown = api.post("/api/directory/get-group-members", [{"id": "nope"}])
    assert unknown.status_code == 200 and unknown.json()["fail"]
    nobody = api.post("/api/user/get-internal-users", [{"domain": "unknown.example"}]).json()
    assert nobody["data"] == [{"users": []}]
    bad_source = api.post("/api/directory/find-groups", [{"query": "", "source": "both"}]).json()
    assert bad_source["fail"]


def test_membership_changes_between_pulls(sim: Simulator) -> None:
    api = Api(sim)

    def snapshot() -> set[tuple[str, str]]:
        pairs = set()
        for group in sim.tenant.groups:
            entries, _ = api.pull("/api/directory/get-group-members", [{"id": group.id}], size=50)
            pairs |= {(group.id, m["emailAddress"]) for entry in entries for m in entry["groupMembers"]}
        return pairs

    before = snapshot()
    changes = sim.mutate_memberships(seed=1, changes=12)
    after = snapshot()
    assert changes.added or changes.removed
    assert after - before == set(changes.added) - set(changes.removed)
    assert before - after == set(changes.removed) - set(changes.added)


# --- faults ---------------------------------------------------------------------------------------------------


def test_token_expiry_after_n_calls(sim: Simulator) -> None:
    api = Api(sim)
    sim.faults.expire_tokens_after_calls = 3
    statuses = [api.audit(NOW - 60, NOW).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 401]
    assert api.audit(NOW - 60, NOW).status_code == 401
    api.get_token()
    assert api.audit(NOW - 60, NOW).status_code == 200
    assert sim.counters.tokens_issued == 2


def test_rate_limit_burst(sim: Simulator) -> None:
    api = Api(sim)
    sim.faults.rate_limit_next = 2
    sim.faults.rate_limit_reset_ms = 3200
    first, second, third = (api.audit(NOW - 60, NOW) for _ in range(3))
    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["X-RateLimit-Reset"] == "3200"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.json()["fail"][0]["errors"][0] == {
            "code": "err_rate_limit_exceeded",
            "message": "Rate limit exceeded",
            "retryable": True,
        }
    assert third.status_code == 200
    assert sim.counters.rate_limited == 2


def test_quota_enforcement_resets_with_the_window() -> None:
    start = float(NOW - NOW % 60)
    clock = [start + 10]
    with make_sim(clock=lambda: clock[0], faults=FaultPlan(quota_limit=3, quota_window_seconds=60)) as sim:
        api = Api(sim)
        responses = [api.audit(NOW - 60, NOW) for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
        assert responses[0].headers["X-RateLimit-Limit"] == "3"
        assert int(responses[3].headers["X-RateLimit-Reset"]) == 50_000
        clock[0] = start + 61
        assert api.audit(NOW - 60, NOW).status_code == 200


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(sim: Simulator, status: int) -> None:
    api = Api(sim)
    sim.faults.server_error_next = 2
    sim.faults.server_error_status = status
    codes = [api.audit(NOW - 60, NOW).status_code for _ in range(3)]
    assert codes == [status, status, 200]
    assert sim.counters.server_errors == 2


def test_latency_and_slow_responses(sim: Simulator) -> None:
    api = Api(sim)
    api.get_token()
    sim.faults.latency_seconds = 0.05
    began = time.perf_counter()
    assert api.audit(NOW - 60, NOW).status_code == 200
    assert time.perf_counter() - began >= 0.05
    sim.faults.latency_seconds = 0
    sim.faults.slow_next = 1
    sim.faults.slow_seconds = 0.5
    with pytest.raises(httpx.ReadTimeout):
        api.http.post(AUDIT, json={}, headers={"Authorization": f"Bearer {api.token}"}, timeout=0.1)
    began = time.perf_counter()
    assert api.audit(NOW - 60, NOW).status_code == 200
    assert time.perf_counter() - began < 0.4


@pytest.mark.parametrize("retryable", [True, False])
def test_fail_with_http_200(sim: Simulator, retryable: bool) -> None:
    api = Api(sim)
    sim.faults.fail_next = 1
    sim.faults.fail_retryable = retryable
    failed = api.audit(NOW - 60, NOW)
    assert failed.status_code == 200
    body = failed.json()
    assert body["data"] == []
    assert body["fail"][0]["errors"][0]["retryable"] is retryable
    assert api.audit(NOW - 60, NOW).json()["fail"] == []
    assert sim.counters.fail_responses == 1


def test_permission_switches(sim: Simulator) -> None:
    api = Api(sim)
    sim.faults.forbid_audit = True
    forbidden = api.audit(NOW - 60, NOW)
    assert forbidden.status_code == 403
    assert forbidden.json()["fail"][0]["code"] == "app_forbidden"
    assert api.post("/api/domain/get-internal-domain").status_code == 200
    sim.faults.forbid_audit = False
    sim.faults.forbid_directory = True
    assert api.audit(NOW - 60, NOW).status_code == 200
    for path in (
        "/api/domain/get-internal-domain",
        "/api/user/get-internal-users",
        "/api/directory/find-groups",
        "/api/directory/get-group-members",
    ):
        assert api.post(path, [{}]).status_code == 403
    assert sim.counters.forbidden == 5


def test_malformed_records_are_mixed_in(sim: Simulator) -> None:
    api = Api(sim)
    sim.faults.malformed_per_page = len(MALFORMED_KINDS)
    sim.faults.malformed_pages = 1
    page = api.audit(NOW - 3600, NOW, size=20).json()
    entries = page["data"]
    assert len(entries) == 20 + len(MALFORMED_KINDS)
    assert any(not isinstance(e, dict) for e in entries)
    objects = [e for e in entries if isinstance(e, dict)]
    assert any("id" not in e for e in objects)
    assert any(e.get("id") is None and "id" in e for e in objects)
    assert any(e.get("eventTime") == "yesterday at noon" for e in objects)
    assert any("eventInfo" not in e for e in objects)
    clean = api.audit(NOW - 3600, NOW, size=20).json()["data"]
    assert len(clean) == 20
    assert sim.counters.malformed_served == len(MALFORMED_KINDS)


def test_repeated_page_token_and_next_on_last_page(sim: Simulator) -> None:
    api = Api(sim)
    first = api.audit(NOW - 3600, NOW, size=10).json()
    token = first["meta"]["pagination"]["next"]
    sim.faults.repeat_page_token_next = 1
    stuck = api.audit(NOW - 3600, NOW, size=10, page_token=token).json()
    assert stuck["meta"]["pagination"]["next"] == token
    sim.faults.next_on_last_page = True
    total = first["meta"]["pagination"]["totalCount"]
    last = api.audit(NOW - 3600, NOW, size=total).json()
    assert len(last["data"]) == total
    beyond = last["meta"]["pagination"]["next"]
    empty = api.audit(NOW - 3600, NOW, size=total, page_token=beyond).json()
    assert empty["data"] == [] and empty["fail"] == []
    assert "next" not in empty["meta"]["pagination"]


def test_fault_plan_reset() -> None:
    plan = FaultPlan(rate_limit_next=3, forbid_audit=True, lag_max_seconds=5)
    plan.reset()
    assert plan == FaultPlan()


# --- observability --------------------------------------------------------------------------------------------


def test_served_ids_request_log_and_counters(sim: Simulator) -> None:
    api = Api(sim)
    records = api.pull_audit(NOW - 7200, NOW, size=100)
    api.pull_audit(NOW - 600, NOW, size=100)
    served = sim.served_audit_ids()
    assert served[: len(records)] == [r["id"] for r in records]
    assert len(served) > len(set(served))  # the overlap was served twice
    log = sim.request_log()
    assert log[0].path == "/oauth/token" and log[0].method == "POST" and log[0].status == 200
    assert all(entry.path == AUDIT and entry.status == 200 for entry in log[1:])
    counters = sim.counters
    assert counters.requests == len(log)
    assert counters.api_requests == len(log) - 1
    assert counters.audit_records_served == len(served)
    sim.reset_observations()
    assert sim.served_audit_ids() == [] and sim.request_log() == [] and sim.counters.requests == 0


# --- the tenant -----------------------------------------------------------------------------------------------


def test_same_seed_same_tenant() -> None:
    spec = TenantSpec(seed=42, users=100, groups=10, audit_events_per_day=1000, days=2, end=NOW)
    one, two = Tenant(spec), Tenant(spec)
    assert one.users == two.users
    assert [g.to_api() for g in one.groups] == [g.to_api() for g in two.groups]
    assert [[m.to_api() for m in g.members] for g in one.groups] == [
        [m.to_api() for m in g.members] for g in two.groups
    ]
    assert [one.audit_record(i) for i in range(0, 2000, 7)] == [two.audit_record(i) for i in range(0, 2000, 7)]
    other = Tenant(TenantSpec(seed=43, users=100, groups=10, audit_events_per_day=1000, days=2, end=NOW))
    assert [one.audit_record(i) for i in range(50)] != [other.audit_record(i) for i in range(50)]


def test_same_seed_same_answers_over_http() -> None:
    pulls = []
    for _ in range(2):
        with make_sim() as sim:
            pulls.append(Api(sim).pull_audit(NOW - 7200, NOW, size=100))
    assert pulls[0] == pulls[1]


def test_event_times_never_decrease_and_ids_are_unique() -> None:
    tenant = Tenant(TenantSpec(seed=9, users=20, groups=2, audit_events_per_day=50_000, days=1, end=NOW))
    times = [tenant.event_time(i) for i in range(tenant.event_count)]
    assert times == sorted(times)
    assert times[0] >= NOW - 86400 and times[-1] < NOW
    assert len({tenant.audit_id(i) for i in range(tenant.event_count)}) == tenant.event_count
    for epoch in (NOW - 86400, NOW - 4321, NOW - 1, NOW):
        index = tenant.first_index_at_or_after(epoch)
        assert all(t < epoch for t in times[:index][-5:])
        assert all(t >= epoch for t in times[index : index + 5])


def test_million_event_tenant_is_fast_and_small() -> None:
    spec = TenantSpec(seed=1, users=200, groups=20, audit_events_per_day=100_000, days=10, end=NOW)
    tracemalloc.start()
    began = time.perf_counter()
    tenant = Tenant(spec)
    built = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert tenant.event_count == 1_000_000
    assert built < 1.0
    assert peak < 5 * 1024 * 1024
    # Computing a page costs the page, not the window: a page of the whole history is as cheap as one of an hour.
    with make_sim(spec=spec) as sim:
        api = Api(sim)
        api.get_token()
        timings = {}
        for label, start in (("hour", NOW - 3600), ("all", NOW - 10 * 86400)):
            api.audit(start, NOW, size=500)
            began = time.perf_counter()
            body = api.audit(start, NOW, size=500).json()
            timings[label] = time.perf_counter() - began
            assert len(body["data"]) == 500
        assert body["meta"]["pagination"]["totalCount"] == 1_000_000
        assert timings["all"] < 0.25
        assert timings["all"] < timings["hour"] * 5 + 0.02
        sim.tenant.audit_record(0)
        began = time.perf_counter()
        for index in range(0, 1_000_000, 2000):
            sim.tenant.audit_record(index)
        assert time.perf_counter() - began < 0.1


def test_large_preset_builds_quickly() -> None:
    began = time.perf_counter()
    tenant = Tenant(SIZE_PRESETS["large"])
    assert time.perf_counter() - began < 1.5
    assert tenant.event_count == 1_000_000 and len(tenant.users) == 20_000 and len(tenant.groups) == 500
    assert SIZE_PRESETS["medium"].audit_event_count == 200_000


def test_every_layout_appears_in_a_modest_tenant(sim: Simulator) -> None:
    tenant = sim.tenant
    seen = {tenant.layout_of(i).name for i in range(tenant.event_count)}
    assert seen == {layout.name for layout in LAYOUTS}
    records = Api(sim).pull_audit(NOW - 3 * 86400, NOW, size=500)
    infos = [r["eventInfo"] for r in records]
    types = {r["auditType"] for r in records}
    assert {
        "User Logged On",
        "Logon Authentication Failed",
        "Logon Requires Challenge",
        "Mimecast Support Login",
        "User Password Changed",
        "Folder Log Entry",
        "User Account Created",
        "User Account Disabled",
        "User Account Locked",
        "User Account Unlocked",
        "Two Factor Authentication Enabled",
        "Two Factor Authentication Disabled",
        "Search Action",
        "Completed Directory Sync",
        "Message Action",
        "Connectors Management",
    } <= types
    categories = {r["category"] for r in records}
    assert {
        "authentication_logs",
        "user_account_and_role_logs",
        "account_logs",
        "profile_group_logs",
        "mimecast_access_logs",
        "case_review_logs",
    } <= categories
    ipv4 = re.compile(r"IP: \d+\.\d+\.\d+\.\d+")
    ipv6 = re.compile(r"IP: 2001:db8:")
    successful = [i for i in infos if i.startswith("Successful authentication for ")]
    assert any(", 2FA: " in i for i in successful) and any(", 2FA: " not in i for i in successful)
    assert any(ipv4.search(i) for i in successful) and any(ipv6.search(i) for i in successful)
    assert any(re.search(r"Time: \d\d:\d\d:\d\d BST,", i) for i in successful)
    assert any(i.startswith("Failed authentication for ") and ", Reason: " in i for i in infos)
    assert any(i.startswith("Intermediate authentication for ") for i in infos)
    support = [i for i in infos if "logged into this account. by " in i]
    assert support and all("," not in i for i in support)
    assert any(i.endswith("User Password Changed, Remote IP is null") for i in infos)
    assert any(re.search(r"Remote IP is \d+\.\d+\.\d+\.\d+$", i) for i in infos)
    for verb in ("Created ", "Deleted ", "Added ", "Removed "):
        assert any(i.startswith(f"Action Performed - {verb}") and " Application: " in i for i in infos), verb
    assert any(re.search(r"Action Performed - Added \S+@\S+ to ", i) for i in infos)
    assert any('Search Criteria: {"keywords":' in i for i in infos)
    assert "No changes found." in infos
    assert any("\n" in i for i in infos)
    users = [r["user"] for r in records]
    assert "" in users
    assert any(u and "@" not in u for u in users)
    known = {"User Logged On", "Logon Authentication Failed", "Folder Log Entry", "Search Action"}
    assert any(r["auditType"] not in known and "=" in r["eventInfo"] for r in records)


def test_event_info_times_match_event_time_in_uk_local_time() -> None:
    tenant = Tenant(TenantSpec(seed=2, users=20, groups=2, audit_events_per_day=2000, days=1, end=NOW))
    for index in range(tenant.event_count):
        record = tenant.audit_record(index)
        if record["auditType"] == "User Logged On":
            info = str(record["eventInfo"])
            event_time = parse(str(record["eventTime"]))
            match = re.search(r"Date: (\S+), Time: (\S+) (BST|GMT)", info)
            assert match is not None
            local = calendar.timegm(time.strptime(f"{match[1]} {match[2]}", "%Y-%m-%d %H:%M:%S"))
            assert local - event_time == (3600 if match[3] == "BST" else 0)
            assert match[3] == "BST"  # June


# --- CLI ------------------------------------------------------------------------------------------------------


def test_serve_runs_until_stopped() -> None:
    stop = threading.Event()
    started: list[Simulator] = []
    result: list[int] = []

    def ready(simulator: Simulator) -> None:
        started.append(simulator)

    thread = threading.Thread(
        target=lambda: result.append(serve(0, seed=3, size_preset="tiny", ready=ready, stop_event=stop))
    )
    thread.start()
    for _ in range(100):
        if started:
            break
        time.sleep(0.02)
    assert started
    simulator = started[0]
    response = httpx.post(
        simulator.base_url + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "simulator-client-id",
            "client_secret": "simulator-client-secret",
        },
    )
    assert response.status_code == 200
    stop.set()
    thread.join(timeout=5)
    assert result == [0]
    with pytest.raises(ValueError, match="size_preset"):
        serve(0, size_preset="galactic")


def test_cli_parser() -> None:
    args = build_parser().parse_args(["--port", "9999", "--seed", "4", "--size", "medium"])
    assert (args.port, args.seed, args.size, args.host) == (9999, 4, "medium", "127.0.0.1")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--size", "huge"])


def test_server_errors_can_be_html(sim: Simulator) -> None:
    api = Api(sim)
    sim.faults.server_error_next = 1
    sim.faults.server_error_status = 502
    sim.faults.server_error_html = True
    response = api.audit(NOW - 60, NOW)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<html>")


# --- fidelity and honesty -------------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"


def assert_same_shape(sample: Any, ours: Any, where: str = "$") -> None:
    """``ours`` has every key of ``sample`` with values of the same JSON type, and no keys the sample lacks
    (except ``pagination``, which the simulator sends on every listing)."""
    if isinstance(sample, dict):
        assert isinstance(ours, dict), where
        assert set(sample) <= set(ours), (where, set(sample) - set(ours))
        assert set(ours) - set(sample) <= {"pagination", "next"}, (where, set(ours) - set(sample))
        for key, value in sample.items():
            assert_same_shape(value, ours[key], f"{where}.{key}")
    elif isinstance(sample, list):
        assert isinstance(ours, list), where
        if sample and ours:
            assert_same_shape(sample[0], ours[0], f"{where}[0]")
    else:
        assert type(sample) is type(ours), (where, sample, ours)


def test_response_shapes_match_the_recorded_samples(sim: Simulator) -> None:
    samples = json.loads((FIXTURES / "api-responses.json").read_text())
    api = Api(sim)
    assert_same_shape(samples["token_ok"], api.get_token().json())
    first = api.audit(NOW - 3600, NOW, size=2).json()
    assert_same_shape(samples["audit_page_1"], first)
    total = first["meta"]["pagination"]["totalCount"]
    last = api.audit(NOW - 3600, NOW, size=2, page_token=first["meta"]["pagination"]["next"]).json()
    assert_same_shape(samples["audit_page_1"]["data"][0], last["data"][0])
    whole = api.audit(NOW - 3600, NOW, size=total).json()
    assert "next" not in whole["meta"]["pagination"]
    assert_same_shape(samples["audit_page_last"], whole)
    bad = api.post(AUDIT, [{"startDateTime": "2026-01-01T00:00:00+00:00", "endDateTime": fmt(NOW)}]).json()
    assert_same_shape(samples["fail_with_200"], bad)
    sim.faults.rate_limit_next = 1
    limited = api.audit(NOW - 60, NOW)
    assert limited.status_code == samples["rate_limited_429"]["status"]
    assert limited.json() == samples["rate_limited_429"]["body"]
    assert all(name in limited.headers for name in samples["rate_limited_429"]["headers"])
    assert_same_shape(samples["internal_domains"], api.post("/api/domain/get-internal-domain").json())
    users = api.post("/api/user/get-internal-users", [{"domain": sim.tenant.domains[0]}]).json()
    assert_same_shape(samples["internal_users_page"], users)
    groups = api.post("/api/directory/find-groups", [{"query": "", "source": ""}]).json()
    assert_same_shape(samples["find_groups_page"], groups)
    group_id = next(g.id for g in sim.tenant.groups if g.members)
    members = api.post("/api/directory/get-group-members", [{"id": group_id}]).json()
    assert_same_shape(samples["group_members_page"], members)


def test_simulator_shares_no_code_with_the_connector() -> None:
    package = Path(__file__).parent.parent / "connector" / "simulator"
    for module in package.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{module.name}: relative import"
                names = [node.module or ""]
            for name in names:
                if name == "connector" or name.startswith("connector."):
                    assert name.startswith("connector.simulator"), f"{module.name} imports {name}"


def test_cli_main_passes_options_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.simulator.cli as cli

    calls: list[dict[str, Any]] = []

    def fake_serve(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 0

    monkeypatch.setattr(cli, "serve", fake_serve)
    argv = ["--port", "0", "--size", "tiny", "--quota", "5", "--lag-max", "60", "--future-days", "1"]
    assert cli.main(argv) == 0
    (call,) = calls
    assert (call["port"], call["size_preset"], call["future_days"]) == (0, "tiny", 1.0)
    assert call["faults"].quota_limit == 5 and call["faults"].lag_max_seconds == 60
    assert call["api_keys_v1"] is None
    assert cli.main(["--port", "0", "--auth", "api_keys_v1", "--app-id", "a1", "--access-key", "k1"]) == 0
    assert calls[1]["api_keys_v1"] == ApiV1Keys(app_id="a1", access_key="k1")


def test_serve_with_future_days_keeps_records_arriving() -> None:
    stop = threading.Event()
    started: list[Simulator] = []
    thread = threading.Thread(
        target=serve, args=(0, 2, "tiny"), kwargs={"ready": started.append, "stop_event": stop, "future_days": 1}
    )
    thread.start()
    try:
        for _ in range(100):
            if started:
                break
            time.sleep(0.02)
        tenant = started[0].tenant
        now = time.time()
        visible = tenant.first_index_at_or_after(int(now) + 1)
        assert 0 < visible < tenant.event_count
    finally:
        stop.set()
        thread.join(timeout=5)


def test_concurrent_clients(sim: Simulator) -> None:
    api = Api(sim)
    api.get_token()
    headers = {"Authorization": f"Bearer {api.token}"}
    groups = sim.tenant.groups

    def members(group_id: str) -> int:
        with httpx.Client(base_url=sim.base_url, timeout=10) as http:
            body = http.post("/api/directory/get-group-members", json={"data": [{"id": group_id}]}, headers=headers)
            return len(body.json()["data"][0]["groupMembers"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = list(pool.map(members, [g.id for g in groups] * 4))
    assert counts == [min(len(g.members), 100) for g in groups] * 4
    assert sim.counters.api_requests == len(counts)
