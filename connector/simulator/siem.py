"""The SIEM Cloud Gateway endpoints of the simulated API host: the batch listing and the stream.

``GET /siem/v1/batch/events/cg`` lists, for one ``type``, pre-signed links to gzip NDJSON files on the file host
(``siem_files.py``), with an ``@nextPage`` token that is a durable position in the type's file sequence: listing
again from the same token answers the same files with fresh links, and a caught-up type still gets a token that
new files will appear after. ``GET /siem/v1/events/cg`` answers the records inline (``eventType``/``subType``
names) for a window that may reach back 24 hours at most. The gateway in ``server.py`` authenticates these calls
and applies the app-wide faults first; this module adds the endpoints' own budgets, checks and faults. Tokens and
link signatures are keyed by the spec's seed, so a token stays valid across simulators built with the same seed.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson

from connector.simulator.faults import FaultPlan
from connector.simulator.replies import Reply, fail_reply
from connector.simulator.siem_data import SIEM_TYPES, SiemData, SiemFile, SiemSpec
from connector.simulator.siem_files import DownloadCounters, SiemFileHost

__all__ = ["SIEM_BATCH_PATH", "SIEM_PATHS", "SIEM_STREAM_PATH", "SiemCounters", "SiemService"]

SIEM_BATCH_PATH = "/siem/v1/batch/events/cg"
SIEM_STREAM_PATH = "/siem/v1/events/cg"
SIEM_PATHS = frozenset({SIEM_BATCH_PATH, SIEM_STREAM_PATH})
_MAX_PAGE = 100
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\Z")


@dataclass(frozen=True, slots=True)
class SiemCounters(DownloadCounters):
    """What the SIEM endpoints answered, and the file host's downloads (:class:`DownloadCounters`)."""

    list_calls: int = 0
    list_refused: int = 0
    files_listed: int = 0
    stream_calls: int = 0
    stream_refused: int = 0
    stream_records_served: int = 0


_API_COUNTERS = SiemCounters.__slots__  # the fields this class adds: the API's own counters


class _Tokens:
    """Signed, opaque page tokens bound to what they page (a type, or a set of types)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, bound: str, positions: list[int]) -> str:
        payload = base64.urlsafe_b64encode(orjson.dumps([bound, positions])).decode().rstrip("=")
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:20]
        return f"{payload}.{mac}"

    def decode(self, token: str, bound: str, width: int) -> list[int] | None:
        payload, _, mac = token.partition(".")
        expected = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:20]
        if not mac or not hmac.compare_digest(mac, expected):
            return None
        try:
            got_bound, positions = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return None
        if got_bound != bound or not isinstance(positions, list) or len(positions) != width:
            return None
        if not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in positions):
            return None
        return positions


def _bad(code: str, message: str, key: dict[str, object]) -> Reply:
    """The API 2.0 refusal of a bad request: HTTP 400 with the ``fail[]`` envelope."""
    return fail_reply(code, message, key=key, status=400)


def _rate_limited(limit: int, reset_ms: int) -> Reply:
    return Reply(
        429,
        {
            "meta": {"status": 429},
            "data": [],
            "fail": [
                {"errors": [{"code": "err_rate_limit_exceeded", "message": "Rate limit exceeded", "retryable": True}]}
            ],
        },
        {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)},
    )


def _parse_day(text: str) -> int | None:
    """Epoch ms of ``YYYY-MM-DD`` 00:00 UTC, or ``None``."""
    if _DATE.match(text) is None:
        return None
    try:
        return round(datetime.fromisoformat(text + "T00:00:00+00:00").timestamp() * 1000)
    except ValueError:
        return None


def _parse_instant(text: str) -> int | None:
    """Epoch ms of an ISO-8601 date-time with a zone (``Z`` or ``±hh:mm``), or ``None``."""
    if _DATE_TIME.match(text) is None:
        return None
    try:
        return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


class SiemService:
    """The SIEM side of a simulator: its data, its file host and its two API endpoints.

    Built by :class:`~connector.simulator.server.Simulator` when given ``siem=``; reach it as ``sim.siem``.
    """

    def __init__(
        self,
        spec: SiemSpec,
        *,
        now: float,
        clock: Callable[[], float],
        faults: Callable[[], FaultPlan],
        api_url: Callable[[], str],
    ) -> None:
        """Lay out ``spec``'s data (ending at ``now`` unless the spec says otherwise); nothing is served yet."""
        self.spec = spec
        self.data = SiemData(spec, now)
        key = hashlib.sha256(f"mimecast-simulator-siem\x00{spec.seed}".encode()).digest()
        self._tokens = _Tokens(key)
        self._clock = clock
        self._faults = faults
        self._api_url = api_url
        self.files_host = SiemFileHost(self.data, key=key, clock=clock, faults=faults)
        self._lock = threading.Lock()
        self._counters: dict[str, int] = dict.fromkeys(_API_COUNTERS, 0)
        self._budgets: dict[str, tuple[float, int]] = {}

    @property
    def files_url(self) -> str:
        """Base URL of the file host (empty until started)."""
        return self.files_host.base_url

    def start(self, host: str = "127.0.0.1") -> str:
        """Start the file host; return its base URL."""
        return self.files_host.start(host)

    def stop(self) -> None:
        """Stop the file host."""
        self.files_host.stop()

    # --- what was published -------------------------------------------------------------------------------

    def _now_ms(self, now: float | None) -> int:
        return round((self._clock() if now is None else now) * 1000)

    def files(self, log_type: str, now: float | None = None) -> list[SiemFile]:
        """The files of ``log_type`` a listing can show at ``now`` (default the simulator's now), oldest first."""
        return list(self.data.files(log_type, self._now_ms(now)))

    def published(self, log_type: str, now: float | None = None) -> Iterator[dict[str, Any]]:
        """Every record of those files, each once, in file order, as the files hold them (faults do not change
        it: records repeated by ``siem_repeat_last`` are copies of records it yields once)."""
        for file in self.data.files(log_type, self._now_ms(now)):
            for index in range(file.first, file.stop):
                yield self.data.record(log_type, index)

    def published_count(self, log_type: str, now: float | None = None) -> int:
        """How many records :meth:`published` yields (without generating them)."""
        return sum(file.count for file in self.data.files(log_type, self._now_ms(now)))

    @property
    def counters(self) -> SiemCounters:
        """A snapshot of the SIEM counters (API endpoints and file host)."""
        with self._lock:
            api = dict(self._counters)
        downloads: DownloadCounters = self.files_host.counters
        return SiemCounters(**api, **{name: getattr(downloads, name) for name in DownloadCounters.__slots__})

    def reset_observations(self) -> None:
        """Zero the counters (faults, budgets and data stay)."""
        with self._lock:
            self._counters = dict.fromkeys(_API_COUNTERS, 0)
        self.files_host.reset_observations()

    # --- requests -----------------------------------------------------------------------------------------

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counters[name] += by

    def _budget(self, name: str, limit: int | None, window: float, now: float) -> tuple[Reply | None, dict[str, str]]:
        """Consume one call of a per-endpoint budget; the 429 when it is spent, and the budget's headers."""
        if limit is None:
            return None, {}
        window = max(window, 0.001)
        start = math.floor(now / window) * window
        with self._lock:
            began, used = self._budgets.get(name, (start, 0))
            if began != start:
                used = 0
            refused = used >= limit
            if not refused:
                used += 1
            self._budgets[name] = (start, used)
        reset_ms = max(1, math.ceil((start + window - now) * 1000))
        if refused:
            return _rate_limited(limit, reset_ms), {}
        return None, {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - used)),
            "X-RateLimit-Reset": str(reset_ms),
        }

    def answer(self, method: str, path: str, query: str, now: float) -> Reply:
        """Answer a SIEM API call the gateway let through (authenticated, not rate limited)."""
        if method != "GET":
            return fail_reply("err_method_not_allowed", f"{path} answers GET only", key={"method": method}, status=405)
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=64)
        except ValueError:
            return _bad("err_validation_query", "Too many query parameters", {})
        faults = self._faults()
        if path == SIEM_BATCH_PATH:
            self._count("list_calls")
            refusal, headers = self._budget(
                "list", faults.siem_list_budget, faults.siem_list_budget_window_seconds, now
            )
            reply = refusal or self._batch(params, now, faults)
            if refusal is not None:
                self._count("list_refused")
        else:
            self._count("stream_calls")
            refusal, headers = self._budget(
                "stream", faults.siem_stream_budget, faults.siem_stream_budget_window_seconds, now
            )
            reply = refusal or self._stream(params, now, faults)
            if refusal is not None:
                self._count("stream_refused")
        reply.headers.update(headers)
        return reply

    @staticmethod
    def _one(params: dict[str, list[str]], name: str) -> str | Reply | None:
        values = params.get(name)
        if values is None:
            return None
        if len(values) != 1:
            return _bad("err_validation_query", f"{name} must be given once", {name: values})
        return values[0]

    @staticmethod
    def _page_size(raw: str | None) -> int | Reply:
        if raw is None:
            return _MAX_PAGE
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
            return _bad("err_validation_page_size", f"pageSize must be between 1 and {_MAX_PAGE}", {"pageSize": raw})
        return int(raw)

    # --- batch --------------------------------------------------------------------------------------------

    def _batch(self, params: dict[str, list[str]], now: float, faults: FaultPlan) -> Reply:
        fields: dict[str, str | None] = {}
        for name in ("type", "dateRangeStartsAt", "dateRangeEndsAt", "pageSize", "nextPage"):
            value = self._one(params, name)
            if isinstance(value, Reply):
                return value
            fields[name] = value
        log_type = fields["type"]
        if log_type not in SIEM_TYPES:
            return _bad("err_validation_type", f"type must be one of {', '.join(SIEM_TYPES)}", {"type": log_type})
        size = self._page_size(fields["pageSize"])
        if isinstance(size, Reply):
            return size
        data, now_ms = self.data, round(now * 1000)
        cap_ms: int | None = None
        if fields["dateRangeEndsAt"] is not None:
            end_day = _parse_day(fields["dateRangeEndsAt"])
            if end_day is None:
                return _bad(
                    "err_validation_date_format",
                    "dateRangeEndsAt must be a date (YYYY-MM-DD)",
                    {"dateRangeEndsAt": fields["dateRangeEndsAt"]},
                )
            cap_ms = end_day + 86_400_000
        token = fields["nextPage"]
        if token:
            positions = self._tokens.decode(token, f"batch\x00{log_type}", 1)
            if positions is None:
                return _bad("err_pagination_token_invalid", "nextPage is not valid for this type", {"nextPage": token})
            position = positions[0]
        else:
            position = 0
            raw_start = fields["dateRangeStartsAt"]
            if raw_start is not None:
                start_day = _parse_day(raw_start)
                if start_day is None:
                    return _bad(
                        "err_validation_date_format",
                        "dateRangeStartsAt must be a date (YYYY-MM-DD)",
                        {"dateRangeStartsAt": raw_start},
                    )
                # The first slot published on or after the start day.
                position = max(0, -(-(start_day - data.start_ms) // data.interval_ms) - 1)
        if log_type in faults.siem_caught_up_types or log_type in faults.siem_empty_types:
            return self._listing([], position, True, log_type, now, 0)
        slot = max(position, data.retained_from(now_ms))

        def listable(file: SiemFile | None) -> bool:
            if file is None or data.published_at_ms(file.index) > now_ms:
                return False
            return cap_ms is None or data.published_at_ms(file.index) < cap_ms

        files: list[SiemFile] = []
        while len(files) < size:
            found = data.next_file(log_type, slot)
            if not listable(found):
                break
            assert found is not None
            files.append(found)
            slot = found.index + 1
        caught_up = not listable(data.next_file(log_type, slot))
        return self._listing(files, slot if files else position, caught_up, log_type, now, faults.siem_repeat_last)

    def _listing(
        self, files: list[SiemFile], position: int, caught_up: bool, log_type: str, now: float, repeat: int
    ) -> Reply:
        self._count("files_listed", len(files))
        value = [self.files_host.link(file, now, max(0, repeat)) for file in files]
        token = self._tokens.encode(f"batch\x00{log_type}", [position])
        return Reply(200, {"value": value, "@nextPage": token, "isCaughtUp": caught_up})

    # --- stream -------------------------------------------------------------------------------------------

    def _stream(self, params: dict[str, list[str]], now: float, faults: FaultPlan) -> Reply:
        fields: dict[str, str | None] = {}
        for name in ("types", "dateRangeStartsAt", "dateRangeEndsAt", "pageSize", "nextPage"):
            value = self._one(params, name)
            if isinstance(value, Reply):
                return value
            fields[name] = value
        raw_types = fields["types"]
        if raw_types is None or raw_types == "":
            wanted = set(SIEM_TYPES)
        else:
            wanted = {t.strip() for t in raw_types.split(",")}
            unknown = sorted(wanted - set(SIEM_TYPES))
            if unknown:
                return _bad("err_validation_type", f"unknown types {unknown}", {"types": raw_types})
        types = [t for t in SIEM_TYPES if t in wanted]
        size = self._page_size(fields["pageSize"])
        if isinstance(size, Reply):
            return size
        now_ms = round(now * 1000)
        oldest_ms = now_ms - round(self.spec.stream_window_hours * 3_600_000)
        bounds: dict[str, int] = {}
        for name, default in (("dateRangeStartsAt", oldest_ms), ("dateRangeEndsAt", now_ms)):
            raw = fields[name]
            if raw is None:
                bounds[name] = default
                continue
            parsed = _parse_instant(raw)
            if parsed is None:
                return _bad("err_validation_date_format", f"{name} must be an ISO-8601 date-time", {name: raw})
            bounds[name] = parsed
        start_ms, end_ms = bounds["dateRangeStartsAt"], bounds["dateRangeEndsAt"]
        if start_ms < oldest_ms:
            return _bad(
                "err_validation_date_range",
                f"dateRangeStartsAt must be within the last {self.spec.stream_window_hours:g} hours",
                {"dateRangeStartsAt": fields["dateRangeStartsAt"]},
            )
        if start_ms > end_ms:
            return _bad(
                "err_validation_date_range",
                "dateRangeStartsAt is after dateRangeEndsAt",
                {"dateRangeStartsAt": fields["dateRangeStartsAt"], "dateRangeEndsAt": fields["dateRangeEndsAt"]},
            )
        bound = "stream\x00" + ",".join(types)
        token = fields["nextPage"]
        positions = [0] * len(types)
        if token:
            decoded = self._tokens.decode(token, bound, len(types))
            if decoded is None:
                return _bad(
                    "err_pagination_token_invalid", "nextPage is not valid for these types", {"nextPage": token}
                )
            positions = decoded
        data = self.data
        limit_ms = min(end_ms, now_ms + 1)  # records up to now, before the window's end
        heap: list[tuple[int, int, int]] = []
        stops: list[int] = []
        for k, log_type in enumerate(types):
            if data.count(log_type) == 0 or log_type in faults.siem_empty_types:
                stops.append(0)
                continue
            low = max(positions[k], data.first_at_or_after(log_type, start_ms))
            stop = data.first_at_or_after(log_type, limit_ms)
            stops.append(stop)
            if low < stop:
                positions[k] = low
                heapq.heappush(heap, (data.timestamp_ms(log_type, low), k, low))
        records: list[dict[str, Any]] = []
        while heap and len(records) < size:
            _, k, index = heapq.heappop(heap)
            records.append(data.stream_record(types[k], index))
            positions[k] = index + 1
            if index + 1 < stops[k]:
                heapq.heappush(heap, (data.timestamp_ms(types[k], index + 1), k, index + 1))
        self._count("stream_records_served", len(records))
        next_token = self._tokens.encode(bound, positions)
        link_params = {k: v[0] for k, v in params.items()}
        link_params["nextPage"] = next_token
        return Reply(
            200,
            {
                "value": records,
                "@nextPage": next_token,
                "@nextLink": f"{self._api_url()}{SIEM_STREAM_PATH}?{urlencode(link_params)}",
                "pageSize": size,
                "isCaughtUp": not heap,
            },
        )
