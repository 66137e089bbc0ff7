"""The embedded Mimecast API 2.0 server: stdlib ``ThreadingHTTPServer`` on 127.0.0.1.

Endpoints (all ``POST`` with the ``{"meta": {"pagination": ...}, "data": [...]}`` envelope, see
``docs/mimecast-api.md``)::

    /oauth/token                        form-encoded client credentials -> Bearer token
    /api/audit/get-audit-events         window, categories; newest-first by default; index lag
    /api/audit/get-categories           (also GET)
    /api/domain/get-internal-domain
    /api/user/get-internal-users        data[0].domain, paginated -> data[0].users
    /api/directory/find-groups          data[0].query/source, paginated -> data[0].folders
    /api/directory/get-group-members    data[0].id, paginated -> data[0].group, data[0].groupMembers
    /api/ttp/url/get-logs               from/to, oldestFirst; newest first by default; index lag -> data[0].clickLogs
    /api/ttp/attachment/get-logs        the same -> data[0].attachmentLogs
    /api/ttp/impersonation/get-logs     the same -> data[0].impersonationLogs
    /api/dlp/get-logs                   the same -> data[0].dlpLogs   (ttp.py)

Built with ``siem=`` (a :class:`~connector.simulator.siem_data.SiemSpec`), it also answers the SIEM Cloud Gateway
endpoints ``GET /siem/v1/batch/events/cg`` and ``GET /siem/v1/events/cg`` behind the same gateway, and runs a second
loopback host with the batch files (``siem.py``, ``siem_files.py``; ``docs/simulator.md``).

Configured with :class:`~connector.simulator.api_v1.ApiV1Keys` (``api_keys_v1=``), it answers as a regional API
1.0 host instead: the same ``/api/...`` endpoints, each request authenticated by its HMAC-SHA1 signature (see
``api_v1.py``), and no ``/oauth/token``. Without them the OAuth 2.0 behaviour is unchanged.

Every response carries ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` (Reset in milliseconds until the quota
window resets). Page tokens are opaque, signed and bound to the query they came from, and an audit token also
pins the "as of" instant of its first page so a listing stays consistent while the clock moves. The server
shares no code with the connector: it formats dates, builds envelopes and checks tokens itself.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import orjson

from connector.simulator.api_v1 import ApiV1Keys, verify_request
from connector.simulator.audit_plans import AuditPlans
from connector.simulator.faults import MALFORMED_KINDS, FaultPlan
from connector.simulator.http import Handler, Server
from connector.simulator.layouts import parse_request_time
from connector.simulator.paging import PageTokens
from connector.simulator.replies import Reply, fail_reply, gateway_reply, ok_reply
from connector.simulator.siem import SIEM_PATHS, SiemService
from connector.simulator.siem_data import SIEM_TYPES, SiemSpec
from connector.simulator.tenant import SIZE_PRESETS, MembershipChanges, Tenant, TenantSpec
from connector.simulator.ttp import LOG_NAMES, Route, TtpLogs, TtpSpec

__all__ = ["ORDERS", "Counters", "Reply", "RequestRecord", "Simulator", "serve"]

#: Orders the audit endpoint can return a window's records in.
ORDERS = ("newest_first", "oldest_first", "shuffled")
ListingRoute = Callable[[Mapping[str, Any], float], list[Any]]
"""A listing route: (the request's ``data[0]``, now in epoch seconds) -> every record the query matches."""

_AUDIT_PATHS = frozenset({"/api/audit/get-audit-events", "/api/audit/get-categories"})
_DIRECTORY_PATHS = frozenset(
    {
        "/api/domain/get-internal-domain",
        "/api/user/get-internal-users",
        "/api/directory/find-groups",
        "/api/directory/get-group-members",
    }
)
_REMEMBERED_REQUEST_IDS = 100_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the server answered."""

    method: str
    path: str
    status: int
    at: float


@dataclass(frozen=True, slots=True)
class Counters:
    """A snapshot of the server's counters."""

    requests: int = 0
    api_requests: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    rate_limited: int = 0
    unauthorized: int = 0
    forbidden: int = 0
    server_errors: int = 0
    fail_responses: int = 0
    audit_records_served: int = 0
    malformed_served: int = 0
    repeated_request_ids: int = 0  # API 1.0: correctly signed requests whose x-mc-req-id was seen before


def _malformed(kind: str, serial: int) -> object:
    base: dict[str, object] = {
        "id": f"malformed-{serial}",
        "auditType": "User Logged On",
        "category": "authentication_logs",
        "eventTime": "2026-01-01T00:00:00+0000",
        "user": "nobody@example.invalid",
        "eventInfo": "Malformed entry mixed in by the simulator",
    }
    if kind == "missing_id":
        del base["id"]
    elif kind == "bad_event_time":
        base["eventTime"] = "yesterday at noon"
    elif kind == "not_an_object":
        return f"malformed entry {serial}"
    elif kind == "missing_event_info":
        del base["eventInfo"]
    elif kind == "null_id":
        base["id"] = None
    elif kind == "missing_audit_type":
        del base["auditType"]
    return base


class Simulator:
    """An embedded Mimecast API 2.0 for tests, benchmarks and demos.

    Use it as a context manager (``with Simulator(...) as sim: sim.base_url``) or call :meth:`start` and
    :meth:`stop`. Mutate :attr:`faults` to inject faults; move :meth:`advance` to make late records appear.
    """

    def __init__(
        self,
        spec: TenantSpec | None = None,
        *,
        client_id: str = "simulator-client-id",
        client_secret: str = "simulator-client-secret",
        token_ttl: float = 1799,
        clock: Callable[[], float] | None = None,
        order: str = "newest_first",
        default_page_size: int = 100,
        max_page_size: int = 500,
        history_days: float = 60.0,
        end_inclusive: bool = True,
        rate_limit: int = 10000,
        rate_limit_window_seconds: float = 3600.0,
        record_served_ids: bool = True,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        routes: Mapping[str, ListingRoute] | None = None,
        api_keys_v1: ApiV1Keys | None = None,
        ttp: TtpSpec | None = None,
        siem: SiemSpec | None = None,
    ) -> None:
        """Configure the simulator (the tenant is built now, the server starts in :meth:`start`).

        Args:
            spec: the tenant; default ``TenantSpec()`` (the "small" preset, seed 1).
            client_id: the accepted client id.
            client_secret: the accepted client secret.
            token_ttl: ``expires_in`` of issued tokens, in seconds of the simulator's clock.
            clock: "now" in epoch seconds; default ``time.time``. :meth:`advance` adds an offset to it.
            order: order of audit records within a window, one of :data:`ORDERS`.
            default_page_size: page size when the request gives none.
            max_page_size: larger requested page sizes are clamped to this.
            history_days: audit records older than this (relative to now) are not served.
            end_inclusive: whether ``endDateTime`` is inclusive (then a record exactly on a shared window
                boundary is served by both windows, as clients must tolerate).
            rate_limit: nominal ``X-RateLimit-Limit`` when no quota is enforced.
            rate_limit_window_seconds: the nominal limit's window.
            record_served_ids: keep every served audit id for :meth:`served_audit_ids` (8 bytes per record).
            faults: initial fault plan; default all off.
            host: interface to bind.
            port: port to bind; 0 picks a free one.
            routes: more ``POST /api/...`` listings (a new stream's routes, or a test's made-up one): path ->
                a function of the request's ``data[0]`` and now (epoch s) that returns every record the query
                matches; the simulator pages them with its usual tokens, auth, rate limits and faults.
            api_keys_v1: answer as an API 1.0 host that accepts requests signed with these keys (and no
                bearer tokens); None: an API 2.0 host (OAuth 2.0).
            ttp: records per day of the TTP and DLP logs (``ttp.py``); default in proportion to the audit rate.
            siem: also serve SIEM Cloud Gateway logs (``GET /siem/v1/batch/events/cg``, ``GET /siem/v1/events/cg``)
                and a second loopback host with their batch files; reach it as :attr:`siem` (see ``siem.py``).
        """
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
        self._clock = clock or time.time
        self._offset = 0.0
        self.tenant = Tenant(spec or TenantSpec(), now=self.now())
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.order = order
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size
        self.history_days = history_days
        self.end_inclusive = end_inclusive
        self.rate_limit = rate_limit
        self.rate_limit_window_seconds = rate_limit_window_seconds
        self.record_served_ids = record_served_ids
        self.faults = faults or FaultPlan()
        self.ttp = TtpLogs(self.tenant, ttp)
        self.routes: dict[str, ListingRoute | Route] = {**self.ttp.routes(), **(routes or {})}
        self.api_keys_v1 = api_keys_v1
        self._binding_expired = False
        self._request_ids: set[str] = set()
        self._request_id_order: deque[str] = deque()
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._counters: dict[str, int] = dict.fromkeys(Counters.__slots__, 0)
        self._log: deque[RequestRecord] = deque(maxlen=200_000)
        self._served = array("q")
        self._malformed_ids: list[str | None] = []
        self._malformed_serial = 0
        self._window_start = -1.0
        self._window_count = 0
        self._plans = AuditPlans(self.tenant, self)
        self._page_tokens = PageTokens()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.siem: SiemService | None = None
        if siem is not None:
            self.siem = SiemService(
                siem, now=self.now(), clock=self.now, faults=lambda: self.faults, api_url=lambda: self.base_url
            )

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread; return the base URL (``http://127.0.0.1:<port>``)."""
        if self._server is not None:
            return self.base_url
        handler = type("BoundHandler", (Handler,), {"simulator": self})
        server = Server((self._host, self._port), handler)
        self._server = server
        port = server.server_address[1]
        self.base_url = f"http://{self._host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="mimecast-simulator", daemon=True
        )
        self._thread.start()
        if self.siem is not None:
            self.siem.start(self._host)
        return self.base_url

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.siem is not None:
            self.siem.stop()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- clock, tokens, directory -------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator's "now" in epoch seconds (the clock plus any :meth:`advance`)."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (late records appear, tokens and quota windows expire)."""
        with self._lock:
            self._offset += seconds

    def expire_tokens(self) -> None:
        """Expire every issued token now (the next API call answers 401 ``token_expired``)."""
        with self._lock:
            self._tokens.clear()

    def expire_binding(self) -> None:
        """API 1.0: from now on every request answers 418 ``err_xdk_binding_expired`` (the access and secret key
        pair has outlived its TTL)."""
        with self._lock:
            self._binding_expired = True

    def mutate_memberships(self, seed: int, changes: int = 10) -> MembershipChanges:
        """Add and remove some group members (deterministic from ``seed``); return what changed."""
        with self._lock:
            return self.tenant.mutate_memberships(seed, changes)

    # --- observability ------------------------------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        """A snapshot of the counters."""
        with self._lock:
            return Counters(**self._counters)

    def request_log(self) -> list[RequestRecord]:
        """Every request answered (the latest 200,000), oldest first."""
        with self._lock:
            return list(self._log)

    def served_audit_ids(self) -> list[str | None]:
        """Every audit id returned, in the order served, duplicates included.

        Malformed entries contribute their id (``None`` for those without one).
        """
        with self._lock:
            served = array("q", self._served)
            malformed = list(self._malformed_ids)
        tenant = self.tenant
        return [tenant.audit_id(i) if i >= 0 else malformed[-i - 1] for i in served]

    def reset_observations(self) -> None:
        """Forget the request log, served ids and records and counters (faults and tokens stay)."""
        with self._lock:
            self._log.clear()
            self._served = array("q")
            self._malformed_ids.clear()
            self._counters = dict.fromkeys(Counters.__slots__, 0)
            self.ttp.served.clear()
        if self.siem is not None:
            self.siem.reset_observations()

    def _count(self, name: str, by: int = 1) -> None:
        self._counters[name] += by

    # --- request pipeline ---------------------------------------------------------------------------------

    def _rate_headers(self, now: float, consume: bool) -> tuple[dict[str, str], bool]:
        """Rate-limit headers, and whether the quota refuses this request. Caller holds the lock."""
        quota = self.faults.quota_limit
        limit = quota if quota is not None else self.rate_limit
        window = self.faults.quota_window_seconds if quota is not None else self.rate_limit_window_seconds
        window = max(window, 0.001)
        start = math.floor(now / window) * window
        if start != self._window_start:
            self._window_start, self._window_count = start, 0
        refused = False
        if consume:
            if quota is not None and self._window_count >= quota:
                refused = True
            else:
                self._window_count += 1
        reset_ms = max(1, math.ceil((start + window - now) * 1000))
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - self._window_count)),
            "X-RateLimit-Reset": str(reset_ms),
        }
        return headers, refused

    def _take(self, name: str) -> bool:
        left = getattr(self.faults, name)
        if left > 0:
            setattr(self.faults, name, left - 1)
            return True
        return False

    def handle(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        *,
        received: float | None = None,
        query: str = "",
    ) -> Reply:
        """Answer one request (the HTTP layer calls this; tests may too).

        With ``faults.latency_seconds`` set, the answer is returned no sooner than that long after the request
        came in (``received``, a ``time.perf_counter()`` reading; default now), and the server's own work (HTTP
        parsing, rendering a page of records) happens inside that time instead of on top of it: a fixed
        per-request latency, not latency plus this process's CPU time. The request is handled as arriving at
        the end of the latency, as before (quota windows, token expiry). ``query`` is the URL's query string
        (only the SIEM endpoints read one).
        """
        latency = self.faults.latency_seconds
        if latency <= 0:
            return self._answer(method, path, headers, body, self.now(), query)
        began = time.perf_counter() if received is None else received
        reply = self._answer(method, path, headers, body, self.now() + latency, query)
        remaining = latency - (time.perf_counter() - began)
        if remaining > 0:
            time.sleep(remaining)
        return reply

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes, now: float, query: str = ""
    ) -> Reply:
        faults = self.faults
        if path == "/oauth/token" and self.api_keys_v1 is None:  # an API 1.0 host has no token endpoint
            with self._lock:
                self._count("requests")
                self._count("token_requests")
                rate, _ = self._rate_headers(now, consume=False)
            reply = (
                self._token(method, headers, body, now)
                if method == "POST"
                else Reply(405, {"error": "invalid_request", "error_description": "use POST"})
            )
            reply.headers.update(rate)
            return reply
        slow = False
        with self._lock:
            self._count("requests")
            self._count("api_requests")
            refusal, rate = self._gate(path, headers, now)
            if refusal is None:
                slow = self._take("slow_next")
        if slow:
            time.sleep(faults.slow_seconds)
        if refusal is None and self.siem is not None and path in SIEM_PATHS:
            refusal = self.siem.answer(method, path, query, now)
        api_reply = refusal if refusal is not None else self._route(method, path, headers, body, now)
        api_reply.headers = {**rate, **api_reply.headers}  # an endpoint's own budget headers win
        if api_reply.status == 200 and isinstance(api_reply.body, dict) and api_reply.body.get("fail"):
            with self._lock:
                self._count("fail_responses")
        return api_reply

    def _gate(self, path: str, headers: dict[str, str], now: float) -> tuple[Reply | None, dict[str, str]]:
        """Gateway checks and injected gateway faults, in the gateway's order. Caller holds the lock."""
        faults = self.faults
        rate, _ = self._rate_headers(now, consume=False)
        siem = self.siem is not None and path in SIEM_PATHS
        known = path in _AUDIT_PATHS or path in _DIRECTORY_PATHS or path in self.routes or siem
        if not known:
            return Reply(404, {"fail": [{"code": "not_found", "message": f"No such endpoint: {path}"}]}), rate
        keys = self.api_keys_v1
        refusal = self._bearer_refusal(headers, now) if keys is None else self._v1_refusal(keys, path, headers)
        if refusal is not None:
            self._count("unauthorized")
            return refusal, rate
        if (
            (faults.forbid_audit and path in _AUDIT_PATHS)
            or (faults.forbid_directory and path in _DIRECTORY_PATHS)
            or (faults.forbid_siem and siem)
        ):
            self._count("forbidden")
            return gateway_reply(403, "app_forbidden", "Forbidden to perform the requested operation"), rate
        rate, refused = self._rate_headers(now, consume=True)
        if refused or self._take("rate_limit_next"):
            self._count("rate_limited")
            reply = Reply(
                429,
                {
                    "meta": {"status": 429},
                    "data": [],
                    "fail": [
                        {
                            "errors": [
                                {
                                    "code": "err_rate_limit_exceeded",
                                    "message": "Rate limit exceeded",
                                    "retryable": True,
                                }
                            ]
                        }
                    ],
                },
            )
            rate = dict(rate)
            if not refused:
                rate["X-RateLimit-Reset"] = str(faults.rate_limit_reset_ms)
            rate["X-RateLimit-Remaining"] = "0"
            return reply, rate
        if self._take("server_error_next"):
            self._count("server_errors")
            status = faults.server_error_status
            if faults.server_error_html:
                # What a load balancer in front of the API answers: not JSON at all.
                page = f"<html><body><h1>{status} Service Unavailable</h1></body></html>".encode()
                return Reply(status, page), rate
            return fail_reply(
                "err_server_unavailable",
                "The service is temporarily unavailable",
                retryable=True,
                status=status,
            ), rate
        if self._take("fail_next"):
            return fail_reply(faults.fail_code, "Injected failure", key={}, retryable=faults.fail_retryable), rate
        return None, rate

    def _bearer_refusal(self, headers: dict[str, str], now: float) -> Reply | None:
        """The OAuth gateway's answer to a missing, unknown or expired bearer token. Caller holds the lock."""
        faults = self.faults
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return gateway_reply(401, "unauthorized", "Bearer token required")
        expiry = self._tokens.get(token.strip())
        if expiry is not None and now >= expiry:
            del self._tokens[token.strip()]
            expiry = None
        if expiry is not None and faults.expire_tokens_after_calls is not None:
            if faults.expire_tokens_after_calls <= 0:
                faults.expire_tokens_after_calls = None
                self._tokens.clear()
                expiry = None
            else:
                faults.expire_tokens_after_calls -= 1
        if expiry is None:
            return gateway_reply(401, "token_expired", "The access token is invalid or has expired")
        return None

    def _v1_refusal(self, keys: ApiV1Keys, path: str, headers: dict[str, str]) -> Reply | None:
        """The API 1.0 answer to a request not correctly signed with ``keys``. Caller holds the lock."""
        if self._binding_expired:
            return fail_reply("err_xdk_binding_expired", "The access key binding has expired", status=418)
        refusal = verify_request(keys, path, headers)
        if refusal is not None:
            return fail_reply(refusal.code, refusal.message, status=refusal.status)
        request_id = headers.get("x-mc-req-id", "")
        if request_id in self._request_ids:
            self._count("repeated_request_ids")
        else:
            self._request_ids.add(request_id)
            self._request_id_order.append(request_id)
            if len(self._request_id_order) > _REMEMBERED_REQUEST_IDS:
                self._request_ids.discard(self._request_id_order.popleft())
        return None

    def _token(self, method: str, headers: dict[str, str], body: bytes, now: float) -> Reply:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return Reply(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Body must be application/x-www-form-urlencoded",
                },
            )
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return Reply(400, {"error": "invalid_request", "error_description": "Body is not UTF-8"})
        grant = form.get("grant_type", [""])[0]
        client_id = form.get("client_id", [None])[0]
        client_secret = form.get("client_secret", [None])[0]
        if grant != "client_credentials":
            return Reply(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be client_credentials",
                },
            )
        if client_id is None or client_secret is None:
            return Reply(400, {"error": "invalid_request", "error_description": "client_id and client_secret required"})
        id_ok = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        if not (id_ok and secret_ok):
            return Reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = now + self.token_ttl
            self._count("tokens_issued")
        ttl = int(self.token_ttl) if float(self.token_ttl).is_integer() else self.token_ttl
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl})

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes, now: float) -> Reply:
        if path == "/api/audit/get-categories":
            return ok_reply(
                [{"category": c} for c in self.tenant.categories()], 100, len(self.tenant.categories()), None
            )
        if method != "POST":
            return fail_reply("err_method_not_allowed", f"{path} answers POST only", status=405)
        try:
            request = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return fail_reply("err_request_malformed", "The request body is not JSON", status=400)
        if not isinstance(request, dict):
            return fail_reply("err_request_malformed", "The request body is not a JSON object", status=400)
        meta = request.get("meta")
        pagination = meta.get("pagination") if isinstance(meta, dict) else None
        if not isinstance(pagination, dict):
            pagination = {}
        size = pagination.get("pageSize", self.default_page_size)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            return fail_reply("err_validation_page_size", "pageSize must be a positive integer", key={"pageSize": size})
        size = min(size, self.max_page_size)
        token = pagination.get("pageToken")
        data = request.get("data")
        item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        route = self.routes.get(path)
        if isinstance(route, Route):
            return self._window_listing(path, item, route, size, token, now)
        if route is not None:
            query = orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()
            return self._listing(path, query, route(item, now), size, token, lambda page: page)
        if path == "/api/audit/get-audit-events":
            return self._audit(item, size, token, now)
        if path == "/api/domain/get-internal-domain":
            domains = [{"domain": d, "inboundType": "known"} for d in self.tenant.domains]
            return self._listing(path, "", domains, size, token, lambda page: page)
        if path == "/api/user/get-internal-users":
            domain = item.get("domain")
            if not isinstance(domain, str) or not domain:
                return fail_reply("err_validation_null", "domain is required", key=item)
            users = [u.to_api() for u in self.tenant.users_in(domain)]
            return self._listing(path, domain.lower(), users, size, token, lambda page: [{"users": page}])
        if path == "/api/directory/find-groups":
            query = item.get("query", "")
            source = item.get("source", "")
            if not isinstance(query, str) or not isinstance(source, str):
                return fail_reply("err_validation_type", "query and source must be strings", key=item)
            if source and source not in ("cloud", "ldap"):
                return fail_reply("err_validation_source", "source must be cloud or ldap", key=item)
            with self._lock:
                groups = [g.to_api() for g in self.tenant.find_groups(query, source)]
            return self._listing(path, f"{query}\x00{source}", groups, size, token, lambda page: [{"folders": page}])
        # /api/directory/get-group-members
        group_id = item.get("id")
        if not isinstance(group_id, str) or not group_id:
            return fail_reply("err_validation_null", "id is required", key=item)
        with self._lock:
            group = self.tenant.group(group_id)
            members = [m.to_api() for m in group.members] if group is not None else []
        if group is None:
            return fail_reply("err_folder_not_found", f"No group with id {group_id}", key=item)
        summary = {"id": group.id, "description": group.description, "source": group.source}
        return self._listing(
            path, group_id, members, size, token, lambda page: [{"group": summary, "groupMembers": page}]
        )

    # --- pagination tokens --------------------------------------------------------------------------------

    def _next_token(self, query: str, offset: int, size: int, total: int, asof: int, used: object) -> str | None:
        with self._lock:
            repeat = self._take("repeat_page_token_next")
            tail = self.faults.next_on_last_page
        if repeat:
            return used if isinstance(used, str) and used else self._page_tokens.encode(query, offset, asof)
        if offset + size < total:
            return self._page_tokens.encode(query, offset + size, asof)
        if tail and total > 0 and offset < total:
            return self._page_tokens.encode(query, total, asof)
        return None

    def _listing(
        self,
        path: str,
        key: str,
        items: list[Any],
        size: int,
        token: object,
        wrap: Callable[[list[Any]], list[Any]],
    ) -> Reply:
        query = self._page_tokens.digest(path, key)
        offset = 0
        if token is not None and token != "":
            decoded = self._page_tokens.decode(token, query)
            if isinstance(decoded, Reply):
                return decoded
            offset = decoded[0]
        page = items[offset : offset + size]
        return ok_reply(wrap(page), size, len(items), self._next_token(query, offset, size, len(items), 0, token))

    def _window_listing(
        self, path: str, item: dict[str, Any], route: Route, size: int, token: object, now: float
    ) -> Reply:
        """A :class:`Route`'s listing: served as of its first page's instant, which the page token carries."""
        query = self._page_tokens.digest(path, orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode())
        offset, asof = 0, int(now)
        if token is not None and token != "":
            decoded = self._page_tokens.decode(token, query)
            if isinstance(decoded, Reply):
                return decoded
            offset, asof = decoded
        records = route.select(item, asof, self.faults)
        if isinstance(records, Reply):
            return records
        page = list(records[offset : offset + size])
        data = [{route.records_at: page}] if route.records_at is not None else page
        return ok_reply(data, size, len(records), self._next_token(query, offset, size, len(records), asof, token))

    # --- audit events -------------------------------------------------------------------------------------

    def _audit(self, item: dict[str, Any], size: int, token: object, now: float) -> Reply:
        raw_start, raw_end = item.get("startDateTime"), item.get("endDateTime")
        if raw_start is None or raw_end is None:
            missing = "startDateTime" if raw_start is None else "endDateTime"
            return fail_reply("err_validation_null", f"{missing} must not be null", key={missing: None})
        start, end = parse_request_time(raw_start), parse_request_time(raw_end)
        if start is None or end is None:
            # The key names only the offending field, as the real API's fail entries do.
            field = "startDateTime" if start is None else "endDateTime"
            return fail_reply("err_validation_date_format", "Invalid date format", key={field: item[field]})
        if start > end:
            return fail_reply(
                "err_validation_date_range",
                "startDateTime is after endDateTime",
                key={"startDateTime": raw_start, "endDateTime": raw_end},
            )
        raw_categories = item.get("categories")
        categories: frozenset[str] | None = None
        if raw_categories is not None and raw_categories != []:
            if not isinstance(raw_categories, list) or not all(isinstance(c, str) for c in raw_categories):
                return fail_reply("err_validation_type", "categories must be a list of strings", key=item)
            categories = frozenset(raw_categories)
        query = self._page_tokens.digest("/api/audit/get-audit-events", start, end, sorted(categories or ()))
        offset, asof = 0, int(now)
        if token is not None and token != "":
            decoded = self._page_tokens.decode(token, query)
            if isinstance(decoded, Reply):
                return decoded
            offset, asof = decoded
        with self._lock:
            plan = self._plans.plan(start, end, categories, asof, self.faults)
            malformed_count = 0
            if self.faults.malformed_per_page > 0 and self.faults.malformed_pages != 0:
                malformed_count = self.faults.malformed_per_page
                if self.faults.malformed_pages is not None:
                    self.faults.malformed_pages -= 1
        total = plan.total
        stop = min(total, offset + size)
        indices = [self._plans.position(plan, k) for k in range(offset, stop)] if offset < total else []
        records: list[object] = [self.tenant.audit_record(i) for i in indices]
        served = array("q", indices)
        if malformed_count:
            with self._lock:
                for n in range(malformed_count):
                    serial = self._malformed_serial
                    self._malformed_serial += 1
                    entry = _malformed(MALFORMED_KINDS[serial % len(MALFORMED_KINDS)], serial)
                    position = (n * 7 + serial) % (len(records) + 1)
                    records.insert(position, entry)
                    self._malformed_ids.append(entry.get("id") if isinstance(entry, dict) else None)
                    served.append(-len(self._malformed_ids))
                self._count("malformed_served", malformed_count)
        with self._lock:
            if self.record_served_ids:
                self._served.extend(served)
            self._count("audit_records_served", len(indices))
        next_token = self._next_token(query, offset, size, total, asof, token)
        return ok_reply(records, size, total, next_token)

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._log.append(RequestRecord(method, path, status, time.time()))


def serve(
    port: int = 8080,
    seed: int = 1,
    size_preset: str = "small",
    *,
    host: str = "127.0.0.1",
    client_id: str = "simulator-client-id",
    client_secret: str = "simulator-client-secret",
    ready: Callable[[Simulator], None] | None = None,
    stop_event: threading.Event | None = None,
    future_days: float = 0.0,
    token_ttl: float = 1799,
    order: str = "newest_first",
    faults: FaultPlan | None = None,
    api_keys_v1: ApiV1Keys | None = None,
    siem: SiemSpec | None = None,
) -> int:
    """Run a simulator in the foreground until interrupted (the ``simulate`` CLI command).

    Args:
        port: port to listen on (0 picks a free one).
        seed: tenant seed.
        size_preset: one of :data:`~connector.simulator.tenant.SIZE_PRESETS`.
        host: interface to bind.
        client_id: accepted client id.
        client_secret: accepted client secret.
        ready: called with the running simulator (default: print the base URL and credentials).
        stop_event: set it to stop serving (default: run until Ctrl-C).
        future_days: part of the preset's history that lies in the future, so records keep arriving in real
            time while the simulator runs (0: the whole history is already past).
        token_ttl: ``expires_in`` of issued tokens.
        order: order of audit records within a window, one of :data:`ORDERS`.
        faults: faults to inject from the start (for example a quota).
        api_keys_v1: serve as an API 1.0 host accepting requests signed with these keys (no OAuth 2.0).
        siem: also serve SIEM Cloud Gateway logs (and their file host).

    Returns:
        0, the process exit code.

    Raises:
        ValueError: unknown ``size_preset``.
    """
    if size_preset not in SIZE_PRESETS:
        raise ValueError(f"size_preset must be one of {sorted(SIZE_PRESETS)}, not {size_preset!r}")
    spec = replace(SIZE_PRESETS[size_preset], seed=seed)
    if future_days:
        spec = replace(spec, start=None, end=time.time() + future_days * 86400)
    simulator = Simulator(
        spec,
        client_id=client_id,
        client_secret=client_secret,
        host=host,
        port=port,
        token_ttl=token_ttl,
        order=order,
        faults=faults,
        api_keys_v1=api_keys_v1,
        siem=siem,
    )
    simulator.start()
    try:
        if ready is not None:
            ready(simulator)
        else:
            print(f"Mimecast simulator listening on {simulator.base_url}", flush=True)
            if api_keys_v1 is None:
                print(f"  client_id={client_id} client_secret={client_secret}", flush=True)
            else:
                print(
                    f"  API 1.0 keys: app_id={api_keys_v1.app_id} app_key={api_keys_v1.app_key} "
                    f"access_key={api_keys_v1.access_key} secret_key={api_keys_v1.secret_key}",
                    flush=True,
                )
            print(
                f"  tenant: preset={size_preset} seed={seed} audit events={simulator.tenant.event_count}",
                flush=True,
            )
            logs = ", ".join(f"{name}={len(simulator.ttp.log(name))}" for name in LOG_NAMES)
            print(f"  TTP and DLP log records: {logs}", flush=True)
            if simulator.siem is not None:
                total = sum(simulator.siem.data.count(t) for t in SIEM_TYPES)
                print(f"  SIEM: {total} records; batch files on {simulator.siem.files_url}", flush=True)
        event = stop_event or threading.Event()
        try:
            while not event.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        simulator.stop()
    return 0
