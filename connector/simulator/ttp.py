"""The simulator's TTP URL / Attachment / Impersonation Protect and DLP logs, and their listing routes.

Each log is generated from the real records in ``ttp_samples`` (their shapes: fields, ``"<>"`` senders,
``"Internal IP"``, multi-line ``details``, a ``+0700`` offset) with times spread over the tenant's history and
addresses, message ids and impersonation ids varied deterministically from the tenant's seed. Record ``i`` of a log
is rendered from ``(seed, log, i)`` when a page needs it; only the times are kept (8 bytes a record). DLP records
come in pairs, as Mimecast logs them: one message, one time, two actions (``hold`` and ``notification``, or
``block`` and ``notification``).

A query (``data[0]``) has ``from`` and ``to`` (both inclusive; ``from`` defaults to the start of the current UTC
day and ``to`` to now, as Mimecast documents) and ``oldestFirst`` (default false: newest first, as Mimecast answers
without it). Records become visible with the fault plan's index lag, as audit records do, and a listing is served
as of the instant of its first page (pinned in the page token by the server), so it stays consistent while the
clock moves. The server applies the gateway faults (401, 403, 429, 5xx, HTTP 200 with ``fail``) to these paths as
to any other; ``TtpLogs.forbidden`` names logs whose endpoint answers 403 (an application without "Security
Events"). Nothing here is shared with the client.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, overload

from connector.simulator.faults import FaultPlan
from connector.simulator.layouts import mix64, parse_request_time
from connector.simulator.replies import Reply, fail_reply, gateway_reply
from connector.simulator.tenant import Tenant, TenantSpec
from connector.simulator.ttp_samples import SAMPLES

__all__ = ["LOG_NAMES", "LOG_PATHS", "Route", "TtpLogs", "TtpSpec"]

_DAY: Final = 86400
# log name -> (path, where its records sit in data[0], the record's time field)
LOG_PATHS: Final[Mapping[str, tuple[str, str, str]]] = {
    "ttp_url": ("/api/ttp/url/get-logs", "clickLogs", "date"),
    "ttp_attachment": ("/api/ttp/attachment/get-logs", "attachmentLogs", "date"),
    "ttp_impersonation": ("/api/ttp/impersonation/get-logs", "impersonationLogs", "eventTime"),
    "dlp": ("/api/dlp/get-logs", "dlpLogs", "eventTime"),
}
LOG_NAMES: Final = tuple(LOG_PATHS)
_EXTERNAL_DOMAINS: Final = ("mail.example.net", "partner.example.com", "newsletters.example.org", "b41.example.one")
_EXTERNAL_LOCALS: Final = ("billing", "noreply", "ceo.office", "updates", "terry.m", "hr-notice", "it.support")
_SENDER_FIELDS: Final = ("fromUserEmailAddress", "senderAddress")
_RECIPIENT_FIELDS: Final = ("userEmailAddress", "recipientAddress")


@dataclass(frozen=True, slots=True)
class TtpSpec:
    """How many records each log holds per day of the tenant's history.

    Attributes:
        per_day: log name -> records per day (DLP is rounded up to whole pairs).
    """

    per_day: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def for_tenant(cls, spec: TenantSpec) -> TtpSpec:
        """Rates in proportion to the tenant's audit rate (the ``small`` preset: 200 clicks a day)."""
        rate = spec.audit_events_per_day
        return cls({"ttp_url": rate / 10, "ttp_attachment": rate / 30, "ttp_impersonation": rate / 100,
                    "dlp": rate / 50})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Route:
    """A time-window listing the server pages for one endpoint.

    Attributes:
        select: (the request's ``data[0]``, the listing's instant in epoch seconds, the fault plan) -> every record
            the query matches in the order served (sliced per page, so a lazy sequence costs a page's rendering),
            or an error reply.
        records_at: The page is served as ``data[0].<records_at>``; ``None``: as ``data`` itself.
    """

    select: Callable[[Mapping[str, Any], int, FaultPlan], Sequence[Any] | Reply]
    records_at: str | None = None


class _Rendered(Sequence[dict[str, Any]]):
    """Record indices that render into records only when sliced (a page at a time)."""

    def __init__(self, indices: Sequence[int], render: Callable[[int], dict[str, Any]],
                 served: Callable[[int], None]) -> None:  # fmt: skip
        self._indices = indices
        self._render = render
        self._served = served

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            page = [self._render(i) for i in self._indices[index]]
            self._served(len(page))
            return page
        return self._render(self._indices[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._render(i) for i in self._indices)


def _format(epoch: int, offset: str) -> str:
    """``yyyy-MM-ddTHH:mm:ss±hhmm`` of ``epoch`` in the offset ``±hhmm``."""
    sign = -1 if offset[0] == "-" else 1
    shift = sign * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60)
    t = time.gmtime(epoch + shift)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}{offset}"


def _opaque(*parts: object) -> str:
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=24).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class _Log:
    """One generated log: record ``i`` has time ``times[i]`` (non-decreasing) and is rendered on demand."""

    def __init__(self, name: str, tenant: Tenant, count: int) -> None:
        self.name = name
        self.time_field = LOG_PATHS[name][2]
        self.templates = SAMPLES[name]
        self._seed = tenant.spec.seed
        self._salt = mix64(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") ^ self._seed)
        self._internal = [u.email_address for u in tenant.users if not u.alias] or [f"admin@{tenant.domains[0]}"]
        self._domain = tenant.domains[0]
        start, span = tenant.start, tenant.spec.days * _DAY
        paired = name == "dlp"
        slots = (count + 1) // 2 if paired else count
        spacing = span / slots if slots else 1.0
        times = array("q")
        for slot in range(slots):
            jitter = (mix64(self._salt ^ slot) >> 11) / 9007199254740992.0
            moment = start + int((slot + jitter) * spacing)
            times.append(moment)
            if paired:
                times.append(moment)  # the pair's second record: the same message, another action
        self.times = times

    def __len__(self) -> int:
        return len(self.times)

    def lag(self, index: int, fraction: float, max_lag: float) -> float:
        """The index lag of record ``index`` (seconds; 0 for the records lag does not touch)."""
        h = mix64(self._salt ^ (index * 2654435761 + 97))
        if (h >> 11) / 9007199254740992.0 >= fraction:
            return 0.0
        return (mix64(h) >> 11) / 9007199254740992.0 * max_lag

    def visible(self, start: int, end: int, asof: int, faults: FaultPlan, oldest_first: bool) -> list[int]:
        """Indices of the records with ``start <= time <= end`` visible at ``asof``, in the order served."""
        times = self.times
        low = bisect.bisect_left(times, start)
        high = bisect.bisect_right(times, min(end, asof))
        max_lag = faults.lag_max_seconds if faults.lag_fraction > 0 else 0.0
        if max_lag > 0:
            settled = bisect.bisect_right(times, asof - max_lag, low, high)
            tail = [i for i in range(settled, high) if times[i] + self.lag(i, faults.lag_fraction, max_lag) <= asof]
            indices = [*range(low, settled), *tail]
        else:
            indices = list(range(low, high))
        if not oldest_first:
            indices.reverse()
        return indices

    def render(self, index: int) -> dict[str, Any]:
        """Record ``index``: a sample with this record's time, addresses and message id."""
        paired = self.name == "dlp"
        slot = index // 2 if paired else index
        h = mix64(self._salt ^ (slot * 0x9E3779B1 + 1))
        record = dict(self.templates[slot % len(self.templates)])
        route = record.get("route", "inbound")
        internal = self._internal[h % len(self._internal)]
        other = self._internal[(h >> 20) % len(self._internal)]
        external = f"{_EXTERNAL_LOCALS[(h >> 8) % len(_EXTERNAL_LOCALS)]}@{_EXTERNAL_DOMAINS[(h >> 16) % 4]}"
        sender, recipient = {"outbound": (internal, external), "internal": (other, internal)}.get(
            str(route), (external, internal)
        )
        for name in _SENDER_FIELDS:
            if name in record and record[name] != "<>":  # a null sender stays a null sender
                record[name] = sender
        for name in _RECIPIENT_FIELDS:
            if name in record:
                record[name] = recipient
        original = record.get(self.time_field)
        offset = original[-5:] if isinstance(original, str) and original[-5] in "+-" else "+0000"
        record[self.time_field] = _format(self.times[index], offset)
        record["messageId"] = f"<sim{self._seed}-{self.name}-{slot}.{_opaque(self._seed, self.name, slot)[:10]}@" \
                              f"{self._domain}>"  # fmt: skip
        if "id" in record:
            record["id"] = "MTOKEN:eNq" + _opaque(self._seed, self.name, "id", slot)
        if paired:
            first = record["action"] if record.get("action") != "notification" else "hold"
            record["action"] = first if index % 2 == 0 else "notification"
        return record


def _window(item: Mapping[str, Any], asof: int) -> tuple[int, int, bool] | Reply:
    """``(from, to, oldestFirst)`` of a query, Mimecast's defaults filled in; the ``fail`` reply otherwise."""
    bounds: list[int] = []
    for name, default in (("from", asof - asof % _DAY), ("to", asof)):
        raw = item.get(name)
        if raw is None:
            bounds.append(default)
            continue
        parsed = parse_request_time(raw)
        if parsed is None:
            return fail_reply("err_validation_date_format", "Invalid date format", key={name: raw})
        bounds.append(parsed)
    start, end = bounds
    if start > end:
        return fail_reply(
            "err_validation_date_range", "from is after to", key={"from": item.get("from"), "to": item.get("to")}
        )
    oldest_first = item.get("oldestFirst", False)
    if not isinstance(oldest_first, bool):
        return fail_reply("err_validation_type", "oldestFirst must be a boolean", key={"oldestFirst": oldest_first})
    return start, end, oldest_first


class TtpLogs:
    """The four logs of one tenant (each generated on its first request) and their routes.

    Args:
        tenant: Whose users, domains, seed and history the records use.
        spec: Records per day per log; default in proportion to the tenant's audit rate.
    """

    def __init__(self, tenant: Tenant, spec: TtpSpec | None = None) -> None:
        self.tenant = tenant
        self.spec = spec or TtpSpec.for_tenant(tenant.spec)
        self.forbidden: set[str] = set()
        self.served: Counter[str] = Counter()  # records served per log (overlap re-reads included)
        self._logs: dict[str, _Log] = {}
        self._lock = threading.Lock()  # the server answers on several threads

    def log(self, name: str) -> _Log:
        """The generated log ``name`` (built on first use)."""
        with self._lock:
            log = self._logs.get(name)
            if log is None:
                count = round(self.spec.per_day.get(name, 0) * self.tenant.spec.days)
                log = self._logs[name] = _Log(name, self.tenant, count)
            return log

    def _count(self, name: str, records: int) -> None:
        with self._lock:
            self.served[name] += records

    def records(self, name: str, until: int | None = None) -> list[dict[str, Any]]:
        """Every record of log ``name`` with a time up to ``until`` (epoch s; default all), oldest first."""
        log = self.log(name)
        end = len(log) if until is None else bisect.bisect_right(log.times, until)
        return [log.render(i) for i in range(end)]

    def routes(self) -> dict[str, Route]:
        """path -> route, for the four endpoints."""
        return {path: Route(self._select(name), records_at) for name, (path, records_at, _) in LOG_PATHS.items()}

    def _select(self, name: str) -> Callable[[Mapping[str, Any], int, FaultPlan], Sequence[Any] | Reply]:
        def select(item: Mapping[str, Any], asof: int, faults: FaultPlan) -> Sequence[Any] | Reply:
            if name in self.forbidden:
                return gateway_reply(403, "app_forbidden", "Forbidden to perform the requested operation")
            window = _window(item, asof)
            if isinstance(window, Reply):
                return window
            log = self.log(name)
            indices = log.visible(*window[:2], asof, faults, window[2])
            return _Rendered(indices, log.render, lambda records: self._count(name, records))

        return select
