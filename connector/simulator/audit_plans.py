"""Which audit records a window query serves, as of one instant, and in which order (index lag included).

The tenant's events are generated lazily by index; a plan names the visible, matching records of one query as ranks
(a "bulk" of settled records, plus a "tail" of recent ones that passed their lag), so a page is rendered without
materialising the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from connector.simulator.faults import FaultPlan
from connector.simulator.layouts import mix64
from connector.simulator.tenant import Tenant

__all__ = ["AuditPlans", "Plan"]

_LAG_SALT = 0x5DEECE66D


@dataclass(frozen=True, slots=True)
class Plan:
    """The visible, matching records of one audit query as of one instant, in ascending index order."""

    bulk_rank: int  # rank (among matching events) of the first bulk record
    bulk_count: int
    tail: tuple[int, ...]  # near-"now" records that passed the per-record lag check
    categories: frozenset[str] | None
    multiplier: int  # for the shuffled order

    @property
    def total(self) -> int:
        return self.bulk_count + len(self.tail)


class Settings(Protocol):
    """The server settings a plan depends on (read per call: tests change them on a running simulator)."""

    order: str
    history_days: float
    end_inclusive: bool


class AuditPlans:
    """Plans of audit queries for one tenant under the server's order and history settings."""

    def __init__(self, tenant: Tenant, settings: Settings) -> None:
        self.tenant = tenant
        self._settings = settings
        self._cache: dict[tuple[object, ...], Plan] = {}

    @property
    def order(self) -> str:
        return self._settings.order

    @property
    def history_days(self) -> float:
        return self._settings.history_days

    @property
    def end_inclusive(self) -> bool:
        return self._settings.end_inclusive

    @staticmethod
    def lag(index: int, fraction: float, max_lag: float) -> float:
        """The index lag of record ``index`` in seconds (0 for the records lag does not affect)."""
        h = mix64(_LAG_SALT ^ index)
        if (h >> 11) / 9007199254740992.0 >= fraction:
            return 0.0
        return (mix64(h) >> 11) / 9007199254740992.0 * max_lag

    def plan(self, start: int, end: int, categories: frozenset[str] | None, asof: int, faults: FaultPlan) -> Plan:
        """The records a query for ``[start, end]`` matches as of ``asof`` (cached per query and instant)."""
        max_lag = faults.lag_max_seconds if faults.lag_fraction > 0 else 0.0
        fraction = faults.lag_fraction
        key = (start, end, categories, asof, max_lag, fraction, self.history_days, self.end_inclusive)
        plan = self._cache.get(key)
        if plan is not None:
            return plan
        tenant = self.tenant
        low = max(start, math.ceil(asof - self.history_days * 86400))
        high = min(end if self.end_inclusive else end - 1, asof)
        if high < low:
            first = last = 0
        else:
            first = tenant.first_index_at_or_after(low)
            last = tenant.first_index_at_or_after(high + 1)
        settled = tenant.first_index_at_or_after(math.floor(asof - max_lag) + 1) if max_lag > 0 else last
        bulk_end = max(first, min(last, settled))
        bulk_rank = tenant.count_matching_before(first, categories)
        bulk_count = tenant.count_matching_before(bulk_end, categories) - bulk_rank
        tail = tuple(
            i
            for i in range(max(first, settled), last)
            if tenant.matches(i, categories) and tenant.event_time(i) + self.lag(i, fraction, max_lag) <= asof
        )
        total = bulk_count + len(tail)
        multiplier = 1
        if total > 1:
            multiplier = max(1, int(total * 0.6180339887)) | 1
            while math.gcd(multiplier, total) != 1:
                multiplier += 2
        plan = Plan(bulk_rank, bulk_count, tail, categories, multiplier)
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[key] = plan
        return plan

    def position(self, plan: Plan, k: int) -> int:
        """The tenant index of the ``k``-th record the plan serves, in the configured order."""
        total = plan.total
        if self.order == "newest_first":
            p = total - 1 - k
        elif self.order == "oldest_first":
            p = k
        else:
            p = (plan.multiplier * k + 7) % total
        if p < plan.bulk_count:
            return self.tenant.nth_matching(plan.bulk_rank + p, plan.categories)
        return plan.tail[p - plan.bulk_count]
